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


class _ShiftsANumber(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._m, self._n = 0, 0

    def forward(self, x):
        self._m = self._n
        self._n = int(x.sum())
        return x * self._m + self._n


def test_a_number_the_module_read_stored_into_another_field():
    # (loud56) The second call's trace stores the `_n` it read (a constant of the trace,
    # guarded by value where read) into `_m`: refused as a store the signature does not key
    # ("sets self._m ... to the Python value 3"), the first call right. NOTE [a constant stored
    # into the module]. Python: [3, 3], [16, 19], [9, 9], [9, 9] and the fields after each.
    inputs = [[1.0, 2.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]]
    python, module = _ShiftsANumber(), _ShiftsANumber()
    function = autoconv.autoconv(module)
    compiled_module = _ShiftsANumber()
    compiled = torch.compile(autoconv.convert(compiled_module), fullgraph=True, backend="eager")
    for x in inputs:
        expected = python(T(x))
        torch.testing.assert_close(function(T(x)), expected)
        torch.testing.assert_close(compiled(T(x)), expected)
        assert (module._m, module._n) == (python._m, python._n) == (
            compiled_module._m, compiled_module._n)
    assert (python._m, python._n) == (2, 2)


class _CachesTheLast(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cache = {}

    def forward(self, x):
        if x.sum() > 0:
            self.cache["last"] = x * 2
        else:
            self.cache["last"] = x - 1
        return self.cache["last"] + 1


def test_a_key_a_staged_if_adds_to_the_modules_dict_names_the_users_field():
    # (brk55b, loud56) Replay is right ([3, 5], [-1, -2]); under torch.compile the key added
    # to the module's dict is refused at the `if`. It names autoconv's alias `self_cache`:
    # loud56 showed the chain instead, by a display name that changed how the runtime carries
    # an attribute chain's list (tester43's PID controller: dynamo's "Unsafe side effect"), so
    # the lead reverted it.
    python, module = _CachesTheLast(), _CachesTheLast()
    function = autoconv.autoconv(module)
    for x in (T([1.0, 2.0]), T([-1.0, -2.0])):
        torch.testing.assert_close(function(x), python(x))
        assert set(module.cache) == {"last"}
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_CachesTheLast()), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match=r"test_brk55b.py:\d+: .*`self_cache` is a dict the "
                       r"caller passed in, to which the if statement adds 'last'"):
        compiled(T([1.0, 2.0]))
