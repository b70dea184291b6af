"""Reference tests: session 44's break of shared44's fixes (break44b): parts two carried holders
share (NOTE [parts two holders share]), here a list of tensors two fields of an object hold.

Each case is compared with plain Python, the caller's objects included; the inputs take other
paths than the traced one.
"""

import dataclasses

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_exactly

T = torch.tensor
_COUNTED = [(T([1.0, -2.0, 3.0, 0.5]),), (T([-1.0, -2.0, -3.0, 0.5]),),
            (T([4.0, 2.0, 3.0, 5.0]),)]


# --- s01: one list of tensors held by two fields of an object (`d.xs is d.ys`) -------------
# Items set through both fields in a staged body: each field's list is carried as a HeldList
# of its own (the converter's `kept=`), which the sharing of parts did not see as the one user
# list, so each was set back on its own after the statement and the last undid the first's
# items (0 for Python's 1, in the result and in the caller's list, silently). A HeldList is now
# the user's list among the parts (`_user_list` in runtime/staging/objects.py).

@dataclasses.dataclass
class _Buffers:
    xs: list
    ys: list


class _Node:
    pass


def _buffers():
    items = [torch.zeros(()), torch.ones(())]
    return _Buffers(items, items)


def _node():
    items = [torch.zeros(()), torch.ones(())]
    node = _Node()
    node.xs = node.ys = items
    return node


def _set_through_both(x, d):
    if x.sum() > 0:
        d.xs[0] = d.ys[0] + 1
        d.ys[1] = d.xs[0] * 2
    else:
        d.ys[0] = d.xs[1] - 1
    return d.xs[0] * 1, d.ys[1] * 1


def _read_through_the_other_in_a_loop(x, d):
    for v in x:
        if v > 0:
            d.xs[0] = d.xs[0] + v
            d.ys[1] = d.ys[0] * 2
    return d.xs[1] * 1


def _names_bound_first(x, d):
    first, second = d.ys, d.xs
    if x.sum() > 0:
        first[1] = second[0] + 3
        d.xs[0] = d.ys[1] * 2
    return d.ys[0] * 1, first[1] * 1


def _check_replay(fn, make):
    run = autoconv.autoconv(fn)
    for (x,) in _COUNTED:
        want_obj, got_obj = make(), make()
        want, got = fn(x, want_obj), run(x, got_obj)
        want, got = (want if isinstance(want, tuple) else (want,),
                     got if isinstance(got, tuple) else (got,))
        assert all(torch.equal(g, w) for g, w in zip(got, want)), (x, got, want)
        assert got_obj.xs is got_obj.ys
        assert all(torch.equal(g, w) for g, w in zip(got_obj.xs, want_obj.xs))


def test_s01_a_list_two_fields_hold_set_through_both():
    # (a dataclass and a plain object are carried alike: one holder kind per function)
    for fn, make in ((_set_through_both, _buffers), (_read_through_the_other_in_a_loop, _node),
                     (_names_bound_first, _buffers)):
        _check_replay(fn, make)


def _built_in_the_function(x):
    d = _buffers()
    if x.sum() > 0:
        d.xs[0] = d.ys[0] + 1
        d.ys[1] = d.xs[0] * 2
    return d.xs[0] * 1, d.ys[1] * 1, d.ys[0] * 1


def test_s01_a_list_two_fields_hold_in_every_mode():
    assert_same_exactly(_built_in_the_function, _COUNTED)


# --- s02: a method replaced on a module's class between calls --------------------------------
# `Gate.forward = other` or `Gate.score = ...` (a patch, applied and undone) left every guard
# holding: the old method's graph was replayed, silently (NOTE [methods found through the
# class] and NOTE [a module's class's forward] in autoconv/captures.py).

class _Gate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4))

    def score(self, x):
        return x * 2

    def forward(self, x):
        if x.sum() > 0:
            return self.score(x) * self.w + 1
        return x - 1


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = _Gate()

    def forward(self, x):
        y = self.gate(x)
        for v in x:
            if v > 0:
                y = y + v
        return y


def test_s02_a_method_replaced_on_a_modules_class_traces_again():
    net = _Net()
    run = autoconv.autoconv(net)
    forward, score = _Gate.forward, _Gate.score
    patches = [lambda: None,
               lambda: setattr(_Gate, "forward", lambda self, x: x * 7),
               lambda: setattr(_Gate, "forward", forward),
               lambda: setattr(_Gate, "score", lambda self, x: x * 5),
               lambda: setattr(_Gate, "score", score)]
    try:
        with torch.no_grad():
            for patch in patches:
                patch()
                for (x,) in _COUNTED:
                    assert torch.equal(run(x), net(x)), patch
    finally:
        _Gate.forward, _Gate.score = forward, score
    assert run.trace_count == 3  # (the patches undone replay the first graph)


def test_s02_a_method_set_on_the_instance_later_traces_again():
    # (an instance's own `score`, shadowing its class's, was replayed as the class's, silently)
    net = _Net()
    run = autoconv.autoconv(net)
    with torch.no_grad():
        for patch in (lambda: None, lambda: setattr(net.gate, "score", lambda x: x * 9),
                      lambda: delattr(net.gate, "score")):
            patch()
            for (x,) in _COUNTED:
                assert torch.equal(run(x), net(x)), patch
    assert run.trace_count == 2


# --- s03: an object a slotted argument holds, its field set under a tensor `if` --------------
# `s.inner.v = s.inner.v + 1` (s of a class declaring __slots__, `inner` a plain object): the
# staged `if` refused it and ran the branch as Python, which left the trace's FakeTensor in the
# caller's `s.inner.v` (an internal error, "left a value of the trace as the graph constant",
# and the caller's object broken). It is refused and put back as a dict the slotted object
# holds is (NOTE [containers held by slotted objects] in autoconv/object_paths.py).

class _Slotted:
    __slots__ = ("inner",)


def _slotted():
    s = _Slotted()
    s.inner = _Node()
    s.inner.v = torch.zeros(())
    return s


def _set_a_field_of_a_slotted_objects_part(x, s):
    if x.sum() > 0:
        s.inner.v = s.inner.v + 1
    return s.inner.v * 1


def test_s03_a_field_of_an_object_a_slotted_argument_holds_is_refused_and_put_back():
    s = _slotted()
    before = s.inner.v
    with pytest.raises(StagingError, match=r"stores a tensor it computes into a dict, list or "
                       r"object held by an object of a class declaring __slots__ \(under the "
                       r"key 'v'\)"):
        autoconv.autoconv(_set_a_field_of_a_slotted_objects_part)(_COUNTED[0][0], s)
    assert s.inner.v is before
