"""Findings of tester 25 (repros in the session's tester25 folder, s02 and s06): a Python float a
staged loop carried keeps Python's promotion where it leaves the function that staged it."""

import math

import pytest
import torch

from support import assert_same_exactly

T = torch.tensor
# the first traced; the second breaks out of the loop on the second trip
_PATHS = [(T([0.1, 0.2, 0.3, 0.7]),), (T([0.1, -0.2, 0.3, 0.7]),)]


class _Meter:
    def __init__(self):
        self.n = 0
        self.s = 0.0

    @property
    def avg(self):
        return self.s / self.n

    def update(self, v):
        self.s += v
        self.n += 1


class _Box:
    def __init__(self, v):
        self.v = v


def _epoch(x, m):
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        m.update(x[i].item())


def _epoch_returning(x, m):
    _epoch(x, m)
    return m


def _accumulated(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        s += x[i].item()
    return s


# (s02 a) the object a helper returns, its field changed by the helper's loop
def object_a_helper_returns(x):
    m = _epoch_returning(x, _Meter())
    return torch.tensor(m.s), x.sum() * m.s


# (s02 b) a @property of the fields, the loop inline or in a helper
def property_after_an_inline_loop(x):
    m = _Meter()
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        m.update(x[i].item())
    return torch.tensor(m.avg), x.sum() * m.avg


def property_after_a_helper(x):
    m = _Meter()
    _epoch(x, m)
    return torch.tensor(m.avg), x.sum() * m.avg


# (s02 c, tester21b s07) the float a helper's loop accumulated and returned
def float_a_helper_returns(x):
    s = _accumulated(x)
    return torch.tensor(s), x.sum() * s


# and where it flows from there: a closure, a default, *args, **kwargs, a tuple, math, torch's
# factories and tensor methods given a scalar
def float_read_by_a_closure(x):
    s = _accumulated(x)

    def f(y):
        return y * s
    return f(x.sum())


def float_as_a_default(x):
    s = _accumulated(x)

    def f(y, k=s):
        return y * k
    return f(x.sum())


def object_given_through_star_args(x):
    s = _accumulated(x)

    def f(*a):
        return torch.tensor(a[0].v), a[0].v * a[1]
    return f(_Box(s), x.sum())


def float_as_keyword_default_and_kwargs(x):
    s = _accumulated(x)

    def f(y, *, k=s, **kw):
        return y * k + kw["z"]
    return f(x.sum(), z=s)


def float_in_a_tuple(x):
    s = _accumulated(x)
    t = (s, 2)
    return x.sum() * t[0], torch.tensor(t[0])


def float_given_to_math(x):
    s = _accumulated(x)
    return x.sum() * math.cos(s), torch.tensor(math.sqrt(s))


def float_given_to_factories_and_methods(x):
    s = _accumulated(x)
    return (torch.full((2,), s), torch.zeros(2) + s, x.add(s), x.clamp(max=s),
            torch.where(x > 0.15, x, s), torch.tensor([s, 1.0]))


# (s06) a best-so-far float put into a dict (or a list) after the loop
def _best(losses):
    best = 1e9
    for ep in range(losses.shape[0]):
        v = losses[ep].item()
        if v < best - 1e-3:
            best = v
        else:
            break
    return best


def dict_built_after_the_loop(losses):
    best = 1e9
    for ep in range(losses.shape[0]):
        v = losses[ep].item()
        if v < best - 1e-3:
            best = v
        else:
            break
    hist = {"best": best}
    return torch.tensor(hist["best"]), losses.sum() * hist["best"]


def list_built_after_the_loop(losses):
    best = 1e9
    for ep in range(losses.shape[0]):
        v = losses[ep].item()
        if v < best - 1e-3:
            best = v
        else:
            break
    rec = [best]
    return torch.tensor(rec[0]), losses.sum() * rec[0]


def dict_of_a_helper_result(losses):
    hist = {"best": _best(losses)}
    return torch.tensor(hist["best"]), losses.sum() * hist["best"]


class _Schedule:
    def __init__(self):
        self.lr = 0.1

    def step(self, x):
        for i in range(x.shape[0]):
            if x[i] < 0:
                break
            self.lr = self.lr * 0.5 + x[i].item()

    def get_lr(self):
        return self.lr


# (README's "a method's float result in a function with no staged statement")
def method_result_after_a_method_staged(x):
    s = _Schedule()
    s.step(x)
    return torch.tensor(s.get_lr()), x.sum() * s.get_lr()


def _reads_first(*objs):
    return torch.tensor(objs[0].v), objs[1] * objs[0].v


# (README's "an object given through *args whose fields hold a carried float")
def object_given_to_a_helper_through_star_args(x):
    objs = [_Box(_accumulated(x)), x.sum()]
    return _reads_first(*objs)


@pytest.mark.parametrize("fn", [
    method_result_after_a_method_staged, object_given_to_a_helper_through_star_args,
    object_a_helper_returns, property_after_an_inline_loop, property_after_a_helper,
    float_a_helper_returns, float_read_by_a_closure, float_as_a_default,
    object_given_through_star_args, float_as_keyword_default_and_kwargs, float_in_a_tuple,
    float_given_to_math, float_given_to_factories_and_methods],
    ids=lambda f: f.__name__)
def test_a_carried_float_leaving_its_function_keeps_python_promotion(fn):
    assert_same_exactly(fn, _PATHS)


@pytest.mark.parametrize("fn", [dict_built_after_the_loop, list_built_after_the_loop,
                                dict_of_a_helper_result], ids=lambda f: f.__name__)
def test_a_carried_float_put_in_a_container_after_the_loop(fn):
    assert_same_exactly(fn, [(T([1.0, 0.9, 0.95, 0.96, 0.5]),),
                             (T([1.0, 0.9, 0.8, 0.7, 0.6]),)])
