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
