"""Findings of tester 24 (repros in the session's tester24 folder): objects rebuilt under
tensor control flow keep their number fields Python's kind."""

import dataclasses
import typing

import pytest
import torch

from support import assert_same_exactly

T = torch.tensor
_PATHS = [(T([1.0, -1.0, 1.0]),), (T([-1.0, -1.0, -1.0]),), (T([1.0, 1.0, 1.0]),)]


class _P:
    def __init__(self, lr, n):
        self.lr = lr
        self.n = n


@dataclasses.dataclass
class _S:
    lr: float
    n: int


@dataclasses.dataclass(frozen=True)
class _Frozen:
    lr: float
    n: int


class _Record(typing.NamedTuple):
    lr: float
    n: int


# (s02) a new object bound to the name that held the old one, in a branch of a tensor `if`:
# its float field came back a 0-d float64 tensor, and `x.sum() * s.lr` float64, on every path
def new_object_in_an_if(x):
    s = _P(0.1, 0)
    if x.sum() > 0:
        s = _P(s.lr * 0.5, s.n + 1)
    return torch.tensor(s.lr), torch.tensor(s.n), x.sum() * s.lr


def new_dataclass_in_a_loop(x):
    s = _S(0.1, 0)
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = _S(s.lr * 0.5, s.n + 1)
    return torch.tensor(s.lr), torch.tensor(s.n), x.sum() * s.lr


# (s01) an immutable state: float64 in replay and export, and under torch.compile the
# write-back into the frozen object raised FrozenInstanceError inside dynamo
def replaced_frozen_dataclass_in_a_loop(x):
    s = _Frozen(0.1, 0)
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = dataclasses.replace(s, lr=s.lr * 0.5, n=s.n + 1)
    return torch.tensor(s.lr), torch.tensor(s.n)


def new_frozen_dataclass_in_a_loop(x):
    s = _Frozen(0.1, 0)
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = _Frozen(s.lr * 0.5, s.n + 1)
    return torch.tensor(s.lr), torch.tensor(s.n), x.sum() * s.lr


def replaced_named_tuple_in_a_loop(x):
    s = _Record(0.1, 0)
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s._replace(lr=s.lr * 0.5, n=s.n + 1)
    return torch.tensor(s.lr), torch.tensor(s.n)


@pytest.mark.parametrize("fn", [new_object_in_an_if, new_dataclass_in_a_loop,
                                replaced_frozen_dataclass_in_a_loop,
                                new_frozen_dataclass_in_a_loop, replaced_named_tuple_in_a_loop],
                         ids=lambda f: f.__name__)
def test_number_fields_of_an_object_rebuilt_under_a_tensor_condition(fn):
    assert_same_exactly(fn, _PATHS)


def test_a_frozen_object_outside_is_left_as_it_was():
    # (rebuilt, not written back: the object the caller holds stays what it was, as in Python)
    start = _Frozen(0.1, 0)

    def halve(x, s):
        for i in range(x.shape[0]):
            if x[i] > 0:
                s = dataclasses.replace(s, lr=s.lr * 0.5, n=s.n + 1)
        return torch.tensor(s.lr)

    import autoconv

    for run in (autoconv.autoconv(halve), torch.compile(autoconv.convert(halve), fullgraph=True,
                                                        backend="eager", dynamic=False)):
        assert torch.equal(run(T([1.0, 1.0]), start), T(0.025))
        assert start == _Frozen(0.1, 0)


# (s13) a float a staged loop carries, given to a lambda or a nested def of the function: they
# are converted with it and called directly, and met the float32 sum as a 0-d float64
def float_given_to_a_lambda(x):
    s = 1.0
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        s = s * 0.3
    g = lambda a, b: a * b  # noqa: E731
    return g(x.sum(), s)


def float_given_to_a_nested_def(x):
    s = 1.0
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        s = s * 0.3

    def g(a, b=1.0):
        return a * b

    return g(x.sum(), b=s)


class _MinTracker:
    def __init__(self):
        self.best = -float("inf")
        self.vmin = float("inf")

    def __call__(self, v):
        if -v > self.best:
            self.best = -v
            self.vmin = v


# (s12) an object called (pytorchtools' EarlyStopping is used so): its `__call__` changes its
# fields as a method does; `vmin` came back float64
def object_called_with_item_numbers(x):
    a = _MinTracker()
    for i in range(x.shape[0]):
        a(x[i].item())
        if x[i] < 0.2:
            break
    return torch.tensor(a.vmin)


@pytest.mark.parametrize("fn", [float_given_to_a_lambda, float_given_to_a_nested_def],
                         ids=lambda f: f.__name__)
def test_a_carried_float_given_to_a_local_function_keeps_float32(fn):
    assert_same_exactly(fn, [(T([0.3, -0.8, 0.7]),), (T([0.3, 0.8, 0.7]),)])


def test_an_object_called_with_numbers_keeps_its_fields_python_numbers():
    assert_same_exactly(object_called_with_item_numbers,
                        [(T([0.9, 0.5, 0.6, 0.1]),), (T([0.3, 0.8, 0.7, 0.6]),)])


# ---- Issue 9 / Issue 10 item 5 (real code converts; errors point at the right place) ----

import io  # noqa: E402

import autoconv  # noqa: E402
from autoconv_runtime import StagingError  # noqa: E402
from support import Calling  # noqa: E402


def _modes(fn, example):
    """(name, run) of autoconv's replay, the saved torch.export program (exported on `example`)
    and torch.compile(fullgraph=True); a mode whose setup raises gives a run raising it."""
    converted = autoconv.convert(fn)
    runs = [("replay", autoconv.autoconv(fn))]
    try:
        saved = io.BytesIO()
        torch.export.save(torch.export.export(Calling(converted), example, strict=False), saved)
        saved.seek(0)
        runs.append(("export", torch.export.load(saved).module()))
    except Exception as error:  # noqa: BLE001 - raised again when the mode runs

        def refused(*args, error=error):
            raise error

        runs.append(("export", refused))
    torch._dynamo.reset()
    runs.append(("compile", torch.compile(converted, fullgraph=True, backend="eager",
                                          dynamic=False)))
    return runs


# (s03) a count written the Python way: the generator's `if` asked a traced tensor for its truth
def count_of_positives(x):
    c = sum(1 for v in x if v > 0)
    return torch.tensor(c)


def count_of_positive_rows(x):
    c = sum(1 for r in x if r.sum() > 0)
    return torch.tensor(c) * 2, torch.tensor(c / 2)


def test_a_count_by_a_generator_filtered_by_a_tensor_is_staged():
    assert_same_exactly(count_of_positives, _PATHS)
    assert_same_exactly(count_of_positive_rows, [(T([[1.0, -2.0], [3.0, 1.0], [-1.0, -1.0]]),),
                                                 (T([[-1.0, 2.0], [-3.0, -1.0], [1.0, 1.0]]),)])


def length_of_a_filtered_list(x):
    c = len([v for v in x if v > 0])
    return torch.tensor(c)


def sum_of_a_filtered_generator(x):
    return sum(v for v in x if v > 0)


@pytest.mark.parametrize("fn, named", [
    (length_of_a_filtered_list, r"`\[v for v in x if v > 0\]` filters a comprehension by a "
                                r"traced tensor \(`v > 0`\).*`for v in x: if v > 0: out\.append"),
    (sum_of_a_filtered_generator, r"`\(v for v in x if v > 0\)` filters its items by a traced "
                                  r"tensor \(`v > 0`\).*statement that appends"),
], ids=["list", "generator"])
def test_a_comprehension_filtered_by_a_tensor_is_refused_by_name_in_every_mode(fn, named):
    # (compile gave dynamo's "Data-dependent branching", the generator the generic message)
    line = fn.__code__.co_firstlineno + 1
    for mode, run in _modes(fn, _PATHS[0]):
        with pytest.raises(StagingError, match=named) as caught:
            run(*_PATHS[0])
        assert (caught.value.filename, caught.value.lineno) == (__file__, line), mode


# (s04) torchdiffeq's rk_common.py:245 assert: under torch.compile refused as "a function or
# lambda reads 'n'" (the assert's lazy message), and str.format put the trace's FakeTensors
# into the message in replay and export
def assert_formatted_in_a_loop(x):
    max_steps = torch.tensor(5, dtype=torch.int32)
    n = 0
    while x.sum() < 100:
        assert n < max_steps, 'max_num_steps exceeded ({}>={})'.format(n, max_steps)
        x = x * 2
        n += 1
    return x


def assert_f_string_in_a_loop(x):
    max_steps = torch.tensor(5, dtype=torch.int32)
    n = 0
    while x.sum() < 100:
        assert n < max_steps, f'max_num_steps exceeded ({n}>={max_steps})'
        x = x * 2
        n += 1
    return x


@pytest.mark.parametrize("fn", [assert_formatted_in_a_loop, assert_f_string_in_a_loop],
                         ids=lambda f: f.__name__)
def test_an_assert_message_reading_the_loop_counter(fn):
    fails, passes = (T([1.0]),), (T([60.0]),)
    for mode, run in _modes(fn, fails):
        assert torch.equal(run(*passes), fn(*passes)), mode
        with pytest.raises((AssertionError, RuntimeError)) as caught:
            run(*fails)
        # (a graph's message is written once, while tracing: each value as its expression)
        assert "max_num_steps exceeded ({n}>={max_steps})" in str(caught.value), mode
        assert "FakeTensor" not in str(caught.value)


def format_of_values(x):
    s = x.sum()
    if s > 0:
        raise ValueError("positive {} of {n}".format(s, n=x.shape[0]))
    return x, "{0}/{1!r}".format(1, "a")


def test_str_format_of_traced_and_python_values():
    # (a raise the trace reaches: the values of these inputs, as an f-string's; Python values
    # are formatted as Python does)
    assert format_of_values(T([-1.0]))[1] == "1/'a'"
    assert autoconv.autoconv(format_of_values)(T([-1.0]))[1] == "1/'a'"
    with pytest.raises(ValueError, match=r"^positive 3.0 of 2"):
        autoconv.autoconv(format_of_values)(T([1.0, 2.0]))


# (s07) the best of named scores: Python's fold asked the traced keys for their order
def best_key_of_a_dict(x):
    d = {"a": x[0].item(), "b": x[1].item(), "c": x[2].item()}
    k = max(d, key=d.get)
    return torch.tensor(d[k]), torch.tensor(k == "b")


def best_key_by_a_lambda(x):
    d = {"a": x[0].item(), "b": x[1].item(), "c": x[2].item()}
    k = min(d, key=lambda n: -d[n])
    return torch.tensor(k == "c"), torch.tensor(k != "a")


def test_max_of_a_dict_by_traced_keys_replays_on_every_path():
    function = autoconv.autoconv(best_key_of_a_dict)
    paths = [*_PATHS, (T([1.0, 2.0, 3.0]),), (T([1.0, 4.0, 3.0]),)]
    for args in paths:
        got, want = function(*args), best_key_of_a_dict(*args)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and torch.equal(g, w), (args, got, want)
    # (`d[k]` specialises the graph on the key chosen: one graph per key)
    assert function.trace_count == 3


def test_max_of_a_dict_by_traced_keys_compared_with_a_key_is_staged():
    assert_same_exactly(best_key_by_a_lambda, [*_PATHS, (T([1.0, 2.0, 3.0]),),
                                               (T([1.0, 4.0, 3.0]),)])


def test_max_of_a_dict_by_traced_keys_looked_up_under_compile_is_refused_at_the_line():
    compiled = torch.compile(autoconv.convert(best_key_of_a_dict), fullgraph=True,
                             backend="eager", dynamic=False)
    torch._dynamo.reset()
    with pytest.raises(StagingError, match="Python constant chosen by tensor values") as caught:
        compiled(*_PATHS[0])
    assert caught.value.filename == __file__
    assert caught.value.lineno == best_key_of_a_dict.__code__.co_firstlineno + 3


class _EarlyStop:
    # (pytorchtools' EarlyStopping, as widely copied: a field None at first, then a number)
    def __init__(self):
        self.best = None
        self.vmin = float("inf")

    def __call__(self, v):
        if self.best is None:
            self.best = -v
            self.vmin = v
        elif -v > self.best:
            self.best = -v
            self.vmin = v

    update = __call__


# (s12) the loop's first iteration, run as Python, left the trace's symbolic float in the object
# the staged rest of the loop only passes to a method: torch's "-zuf0 is not tracked with proxy"
# in replay and export (NOTE [symbolic numbers in objects a body reads])
def object_called_none_then_item_numbers(x):
    a = _EarlyStop()
    for i in range(x.shape[0]):
        a(x[i].item())
        if x[i] < 0.2:
            break
    return torch.tensor(a.vmin), x.sum() * a.vmin


def method_none_then_item_numbers(x):
    a = _EarlyStop()
    for i in range(x.shape[0]):
        a.update(x[i].item())
        if x[i] < 0.2:
            break
    return torch.tensor(a.vmin), torch.tensor(a.best)


def _keep_min(m, v):
    m["best"] = min(m["best"], v)


# (the same through a dict a helper updates: carried from the start too, and then
# torch.tensor(m["best"]) of its stand-in was float64)
def dict_item_number_updated_by_a_helper(x):
    m = {"best": x[0].item()}
    for i in range(x.shape[0]):
        if x[i] < 0.2:
            break
        _keep_min(m, x[i].item())
    return torch.tensor(m["best"])


@pytest.mark.parametrize("fn", [object_called_none_then_item_numbers,
                                method_none_then_item_numbers,
                                dict_item_number_updated_by_a_helper], ids=lambda f: f.__name__)
def test_a_field_none_then_an_item_number_set_by_a_method_in_a_loop(fn):
    assert_same_exactly(fn, [(T([0.9, 0.5, 0.6, 0.1]),), (T([0.3, 0.8, 0.7, 0.6]),),
                             (T([0.1, 0.8, 0.7, 0.6]),)])


class _Rate:
    def __init__(self, lr, n):
        self.lr = lr
        self.n = n

    def scaled(self, f):
        return _Rate(self.lr * f, self.n + 1)


# (try/p3 method_new) a method returning a new object of the carried one's fields, under a
# tensor `if` in a loop: under torch.compile its plain twin made `self.lr * f` a float64 tensor
# on the path that called it, refused as a number of two kinds
def method_returning_a_new_object(x):
    s = _Rate(0.1, 0)
    for i in range(x.shape[0]):
        if x[i] > 0:
            s = s.scaled(0.5)
    return torch.tensor(s.lr), torch.tensor(s.n), x.sum() * s.lr


def test_a_method_returning_a_new_object_under_a_tensor_condition():
    assert_same_exactly(method_returning_a_new_object, _PATHS)


def _grown(x):
    # one list per row, grown under tensor control flow (torchcrf's decode returns such lists)
    out = []
    for r in range(x.shape[0]):
        p = []
        for v in x[r]:
            if v > 0:
                p.append(int(v))
        out.append(p)
    return out


# (s10) `torch.tensor([len(p) for p in ...])` of lists a helper grew: torch.tensor asked the
# counts (0-d tensors of the trace) for their values ("data is not allocated yet"), and
# `torch.tensor(p)` of one asked its len(), refused as a len() of the helper's variable
def lengths_of_grown_lists(x):
    return torch.tensor([len(p) for p in _grown(x)])


def tensors_of_grown_lists(x):
    return [torch.tensor(p, dtype=torch.long) for p in _grown(x)]


@pytest.mark.parametrize("fn", [lengths_of_grown_lists, tensors_of_grown_lists],
                         ids=lambda f: f.__name__)
def test_tensors_of_lists_a_helper_grew(fn):
    assert_same_exactly(fn, [(T([[1.0, -1.0, 2.0], [-1.0, -1.0, 3.0]]),),
                             (T([[-1.0, -1.0, -2.0], [1.0, 4.0, 3.0]]),)])


def _matches(x, th):
    r = x[:, 0] / x[:, 1]
    mask = r <= th
    m = r[mask]
    if len(m) == 0:
        return torch.empty(0, 1), torch.empty(0, 2, dtype=torch.long)
    i = torch.arange(0, x.size(0))[mask]
    return m.view(-1, 1), torch.cat([i.view(-1, 1), i.view(-1, 1)], 1).view(-1, 2)


# (s11) kornia's match_snn shape: a mask-sized result, an early return of empty tensors where
# it is empty, views of it otherwise; refused in replay and export as a tensor "updated in
# place here" at the caller's line (fixed with session 24's write-back of data-sized results)
def matches_of_a_helper(x):
    d, idx = _matches(x, 0.8)
    return d, idx


def test_a_helper_returning_views_of_a_mask_sized_result_or_empty_tensors():
    assert_same_exactly(matches_of_a_helper, [(T([[1.0, 2.0], [3.0, 1.0]]),),
                                              (T([[3.0, 1.0], [3.0, 1.0]]),),
                                              (T([[1.0, 4.0], [1.0, 3.0]]),)])
