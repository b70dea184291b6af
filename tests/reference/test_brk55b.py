"""Reference tests: brk55b (issue 10), breaking what Session 55 merged: a module's own fields
named with `_` and numbers read from tensors stored into the bound self (order55)."""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError

T = torch.tensor


class _NumbersInATuple(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._t = (0, 0.0)

    def forward(self, x):
        self._t = (int(x.sum()), float(x.max()))
        return x * self._t[0]


# (order55 let numbers read from tensors reach a field of the bound self; a tuple of them put
# back after the trace raised Python's internal "'tuple' object does not support item
# assignment": the trace's undo stored into the tuple's items. A tuple is put back rebuilt, and
# the store of a new tuple is refused as an argument object's is.)
def test_a_tuple_of_numbers_stored_into_self_is_refused_at_the_line():
    python = _NumbersInATuple()
    assert python(T([1.0, 2.0])).tolist() == [3.0, 6.0] and python._t == (3, 2.0)
    module = _NumbersInATuple()
    with pytest.raises(StagingError, match=r"test_brk55b.py:18:.*stores a new tuple in self._t"):
        autoconv.autoconv(module)(T([1.0, 2.0]))
    assert module._t == (0, 0.0)


class _Scaler:
    def __init__(self, k):
        self.k = k

    def scale(self, x):
        return x * self.k


class _HoldsAScalerAndItsMethod(torch.nn.Module):
    def __init__(self, scaler):
        super().__init__()
        self.scaler = scaler
        self.act = scaler.scale

    def forward(self, x):
        if x.sum() > 0:
            return self.act(x)
        return x


# (silently wrong in replay until session 56: the object reached first as `self.scaler`, whose
# fields `forward` reads none of, was walked once, so reached again as `self.act.__self__` the
# field its method reads (`k`) was never guarded: [2, 4] for Python's [5, 10]. NOTE [objects
# reached by two routes] in autoconv/captures.py; its other routes in
# test_objects_reached_by_two_routes.py)
def test_a_field_read_by_a_held_method_of_an_object_also_held_by_another_field():
    scaler = _Scaler(2)
    module = _HoldsAScalerAndItsMethod(scaler)
    function = autoconv.autoconv(module)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    scaler.k = 5
    assert module(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]  # replay: was [2.0, 4.0]
    assert function(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]
    assert function.trace_count == 2
