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
