"""Findings of tester 23 (repros in the session's tester23 folder): values and dtypes of
numbers held in dicts and fields across staged loops."""

import pytest
import torch

import autoconv
from support import Calling, assert_same_exactly, assert_same_result

T = torch.tensor


# (s03) a dict item that starts as None and is set to `float(xs[i])` under a tensor `if` in a
# loop with a tensor break: the first iteration, run as Python, leaves a symbolic float in the
# dict, which the staged rest of the loop read as a constant of its own trace (torch: "zuf0 is
# not tracked with proxy"); under compile torch.tensor of the item was float64
def best_in_dict(xs):
    m = {"best": None}
    for i in range(xs.shape[0]):
        v = float(xs[i])
        if m["best"] is None or v < m["best"]:
            m["best"] = v
        if v < 0.1:
            break
    return torch.tensor(m["best"])


class _Best:
    def __init__(self):
        self.best = None


def best_in_field(xs):
    s = _Best()
    for i in range(xs.shape[0]):
        v = float(xs[i])
        if s.best is None or v < s.best:
            s.best = v
        if v < 0.1:
            break
    return torch.tensor(s.best)


_BEST = [(T([3.0, 2.0, 0.05, 0.5]),), (T([3.0, 4.0, 5.0, 1.0]),), (T([0.01, 4.0, 2.0, 3.0]),)]


def test_a_dict_item_none_then_a_number_read_from_a_tensor_in_a_loop():
    assert_same_result(best_in_dict, _BEST)
    assert_same_exactly(best_in_dict, _BEST)


def test_a_field_none_then_a_number_read_from_a_tensor_in_a_loop():
    assert_same_result(best_in_field, _BEST)
    assert_same_exactly(best_in_field, _BEST)


# (s10) a dict item None, set to a number read from a tensor under a top-level tensor `if`,
# then chosen by `is None`: the retrace for the other path refused at the return
def threshold_in_dict(xs):
    m = {"thr": None}
    if xs.sum() > 10:
        m["thr"] = float(xs.max())
    return torch.tensor(0.0 if m["thr"] is None else m["thr"])


def test_a_dict_item_none_then_a_number_under_a_tensor_if():
    inputs = [(T([3.0, 2.0, 0.05, 0.5]),), (T([3.0, 4.0, 5.0, 1.0]),)]
    assert_same_exactly(threshold_in_dict, inputs, compile=False, export=False)
    assert_same_exactly(threshold_in_dict, inputs[::-1], compile=False, export=False)
    # (torch.export holds the traced path only, as for a local `thr = None`: the other path
    # raises the specialisation's error at the user's line)
    for traced, other in (inputs, inputs[::-1]):
        assert_same_exactly(threshold_in_dict, [traced], compile=False)
        program = torch.export.export(Calling(autoconv.convert(threshold_in_dict)), traced,
                                      strict=False)
        with pytest.raises(RuntimeError, match="specialised this graph"):
            program.module()(*other)
    # (under torch.compile the statement cannot be staged again carrying the item: refused at
    # the user's line, naming the item)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(threshold_in_dict), fullgraph=True,
                             backend="eager", dynamic=False)
    with pytest.raises(Exception, match=r"m\['thr'\]` is changed in the true branch"):
        compiled(*inputs[0])


# (s04) torch.tensor of a list of floats held in a dict, grown in a loop with a tensor break:
# refused as a len() of the list (replay, export) and "stack it first" (compile), where a local
# list is right
def losses_in_dict(xs):
    m = {"loss": []}
    for i in range(xs.shape[0]):
        v = float(xs[i])
        m["loss"].append(v)
        if v < 0.1:
            break
    return torch.tensor(m["loss"]).sum()


def rows_in_dict(xs):
    m = {"rows": []}
    for i in range(xs.shape[0]):
        m["rows"].append(xs[i] * 2)
        if xs[i] < 0.1:
            break
    return torch.stack(m["rows"]).sum()


_LOSSES = [(T([3.0, 2.0, 0.05, 0.5]),), (T([3.0, 4.0, 5.0, 1.0]),)]


def test_torch_tensor_of_a_list_of_numbers_held_in_a_dict_grown_in_a_loop():
    assert_same_result(losses_in_dict, _LOSSES)
    assert_same_exactly(losses_in_dict, _LOSSES)


def test_torch_stack_of_a_list_of_tensors_held_in_a_dict_grown_in_a_loop():
    assert_same_result(rows_in_dict, _LOSSES)
    assert_same_exactly(rows_in_dict, _LOSSES)


# (s06) `abs(fx.item())` in a staged loop's test: Python's operator.abs of the symbolic number
# stayed in the graph, which torch.export.save cannot write
def newton(x):
    for it in range(50):
        fx = x * x * x - 2 * x - 5
        if abs(fx.item()) < 1e-6:
            break
        x = x - fx / (3 * x * x - 2)
    return x, torch.tensor(it)


def test_abs_of_a_number_read_from_a_tensor_in_a_loop_is_saved_by_export():
    inputs = [(T(2.0, dtype=torch.float64),), (T(10.0, dtype=torch.float64),)]
    assert_same_result(newton, inputs)
    for part in range(2):
        assert_same_exactly(lambda x, part=part: newton(x)[part], inputs)
