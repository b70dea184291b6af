"""Floats a staged loop carried in a dict, read back through every way a dict's values leave it
(tester26 s01-s03; NOTE [values leaving a container] in autoconv/converters/numbers.py): Python's
float keeps a float32 tensor float32, and `torch.tensor` of it is float32."""

import pytest
import torch

import autoconv
from support import Calling, assert_same_exactly

T = torch.tensor
# the first traced; the second adds other items (and `n` another count)
_PATHS = [(T([0.1, -0.2, 0.3, 0.7]),), (T([-0.1, 0.2, -0.3, 0.5]),)]


def _carried(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    return m


def read_by_get(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    return x.sum() * m.get("s"), torch.tensor(m.get("n", 0.0))


def summed_values(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    return sum(m.values()) * x.sum(), torch.tensor(sum(m.values()))


def tensor_of_the_values(x):
    # (replay: torch.tensor of a list of traced 0-d tensors, "data is not allocated yet";
    # torch.compile: float64)
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    return torch.tensor(list(m.values())), torch.tensor([*m.values()])


def a_copy_by_dict(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    d = dict(m)
    return dict(m)["s"] * x.sum(), torch.tensor(d["n"]), x.sum() * m.copy()["s"]


def unpacked_into_a_literal(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    d = {**m, "k": 2.0}
    return d["s"] * x.sum(), torch.tensor(d["n"])


def comprehensions_of_the_items(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    d = {k: v * 2 for k, v in m.items()}
    vals = [v / 3 for v in m.values()]
    return (d["s"] * x.sum(), torch.tensor(d["n"]), torch.tensor(vals),
            x.sum() * sum(v for v in m.values()))


def items_listed_and_iterated(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    last = list(m.items())[-1][1]
    return (x.sum() * last, x.sum() * next(iter(m.values())), x.sum() * max(m.values()),
            torch.tensor(tuple(reversed(list(m.values())))))


def _scaled(m, x):
    return m["s"] * x.sum(), torch.tensor(m.get("n"))


def given_to_a_helper(x):
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    return _scaled(m, x)


def returned_by_a_helper(x):
    m = _carried(x)
    return x.sum() * m.get("s"), torch.tensor(sum(m.values()))


def filled_from_empty(x):
    # (a dict whose literal holds no number: its items are the loop's)
    m = {}
    m["s"] = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] = m["s"] + x[i].item()
    return x.sum() * m.get("s"), torch.tensor(list(m.values()))


def sorted_items(x):
    # (refused as a sort by traced values until session 28: the str keys order the items, so
    # Python never compares the values; NOTE [sorting by traced values])
    m = {"s": 0.0, "n": 0.0}
    for i in range(x.shape[0]):
        if x[i] > 0:
            m["s"] += x[i].item()
            m["n"] += 1.0
    values = [v for _, v in sorted(m.items(), reverse=True)]
    return x.sum() * values[0], torch.tensor([v for _, v in sorted(m.items())])


@pytest.mark.parametrize("fn", [
    read_by_get, summed_values, tensor_of_the_values, a_copy_by_dict, unpacked_into_a_literal,
    comprehensions_of_the_items, items_listed_and_iterated, given_to_a_helper,
    returned_by_a_helper, filled_from_empty, sorted_items], ids=lambda f: f.__name__)
def test_a_carried_dicts_floats_keep_python_promotion_however_read(fn):
    assert_same_exactly(fn, _PATHS)


def lambdas_kept_in_a_dict(x):
    # (tester26: `ops[key](y)` in a staged body raised "... not tracked with proxy")
    ops = {"a": lambda v: v + 1, "b": lambda v: v * 2}
    y = x
    for i in range(x.shape[0]):
        key = "a" if i % 2 == 0 else "b"
        if x[i] > 0:
            y = ops[key](y)
    return y


def lambdas_chosen_by_a_tensor_condition(x):
    ops = {"a": lambda v: v + 1, "b": lambda v: v * 2}
    y = x
    for i in range(x.shape[0]):
        key = "a" if x[i] > 0 else "b"
        y = ops[key](y)
    return y


def test_callbacks_kept_in_a_dict_called_in_a_staged_body():
    assert_same_exactly(lambdas_kept_in_a_dict, _PATHS)


def test_a_callback_chosen_from_a_dict_by_a_tensor_condition():
    # The key is a str a tensor chose: replay traces a graph per path (Python's values), and a
    # torch.export program, which holds the traced path only, refuses the other path's inputs
    # with the line, never a wrong value.
    function = autoconv.autoconv(lambdas_chosen_by_a_tensor_condition)
    for (x,) in _PATHS:
        got, want = function(x.clone()), lambdas_chosen_by_a_tensor_condition(x.clone())
        assert got.dtype == want.dtype and torch.equal(got, want)
    program = torch.export.export(Calling(autoconv.convert(lambdas_chosen_by_a_tensor_condition)),
                                  (_PATHS[0][0].clone(),), strict=False).module()
    assert torch.equal(program(_PATHS[0][0].clone()),
                       lambdas_chosen_by_a_tensor_condition(_PATHS[0][0].clone()))
    line = lambdas_chosen_by_a_tensor_condition.__code__.co_firstlineno + 5
    with pytest.raises(RuntimeError, match=rf"test_dict_numbers.py:{line}: autoconv "
                                           r"specialised this graph"):
        program(_PATHS[1][0].clone())
