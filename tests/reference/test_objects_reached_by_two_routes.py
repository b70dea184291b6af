"""Reference tests: an object held outside the function that the function reaches by two routes
(two fields, a list's or dict's item and a field, a helper's global and a closure cell) is
guarded on every field either route's code reads, and a tensor where either route holds it: a
change between calls gives what Python gives (NOTE [objects reached by two routes] in
autoconv/captures.py; the bound method's route is test_brk55b.py's)."""

import pytest
import torch

import autoconv
from support import exported

T = torch.tensor


class _Scaler:
    def __init__(self, k):
        self.k = k

    def scale(self, x):
        return x * self.k


class _Outer:  # (the scaler one step down: each object on the route is walked again)
    def __init__(self, scaler):
        self.inner = scaler


class _TwoFields(torch.nn.Module):
    def __init__(self, scaler):
        super().__init__()
        self.first = scaler  # (no code reads it: walked first, for its tensors only)
        self.scaler = scaler

    def forward(self, x):
        if x.sum() > 0:
            return x * self.scaler.k
        return x


class _AListItemAndAField(_TwoFields):
    def __init__(self, scaler):
        super().__init__(scaler)
        self.first = [scaler]


class _ADictValueAndAField(_TwoFields):
    def __init__(self, scaler):
        super().__init__(scaler)
        self.first = {"s": scaler}


class _TwoFieldsOneStepDown(torch.nn.Module):
    def __init__(self, scaler):
        super().__init__()
        self.first = _Outer(scaler)
        self.outer = _Outer(scaler)

    def forward(self, x):
        if x.sum() > 0:
            return x * self.outer.inner.k
        return x


# (each replayed the traced `k = 2` after `k = 5`, silently: [2, 4] for Python's [5, 10])
@pytest.mark.parametrize("holder", [_TwoFields, _AListItemAndAField, _ADictValueAndAField,
                                    _TwoFieldsOneStepDown])
def test_a_field_read_through_the_second_route_is_guarded(holder):
    scaler = _Scaler(2)
    module = holder(scaler)
    function = autoconv.autoconv(module)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    scaler.k = 5
    assert module(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]


CFG = _Scaler(2)
CFG.shift = 3.0


def _scaled(x):
    return x * CFG.k


def _with_the_config_in_a_cell(cfg):
    def fn(x):
        if x.sum() > 0:
            return _scaled(x) + cfg.shift  # (the helper's global `CFG` is the cell's `cfg`)
        return x
    return fn


# (the helper's global was walked first, for `k`; the closure's `shift` was left unguarded:
# [5, 7] for Python's [12, 14] after `shift = 10.0`)
def test_a_field_read_through_a_closure_cell_of_an_object_a_helper_holds_as_a_global():
    CFG.k, CFG.shift = 2, 3.0
    fn = _with_the_config_in_a_cell(CFG)
    function = autoconv.autoconv(fn)
    assert function(T([1.0, 2.0])).tolist() == [5.0, 7.0]
    CFG.shift = 10.0
    assert fn(T([1.0, 2.0])).tolist() == [12.0, 14.0]
    assert function(T([1.0, 2.0])).tolist() == [12.0, 14.0]
    CFG.k = 7
    assert function(T([1.0, 2.0])).tolist() == [17.0, 24.0]


class _Box:
    pass


class _TwoFieldsHoldingOneTensor(torch.nn.Module):
    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x):
        if x.sum() > 0:
            return x * self.second.w
        return x


# (a tensor held by two objects was a place of the first route only (`self.first.w`, which no
# code reads): `second.w` rebound between calls replayed the old tensor, [2, 4] for [5, 10])
def test_a_tensor_held_by_two_objects_is_guarded_where_the_code_reads_it():
    first, second = _Box(), _Box()
    first.w = second.w = T([2.0])
    module = _TwoFieldsHoldingOneTensor(first, second)
    function = autoconv.autoconv(module)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    second.w = T([5.0])
    assert module(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]


BOX = _Box()


def _reading_a_tensor_through_a_cell(box):
    def fn(x):
        if x.sum() > 0:
            return x * box.w + BOX.u  # (the global `BOX` holds the cell's tensor too)
        return x
    return fn


# (the globals are walked before the closure's cells: the tensor was `BOX.w`'s place only)
def test_a_tensor_held_by_a_global_and_a_closure_cell_object():
    box = _Box()
    BOX.w = box.w = T([2.0])
    BOX.u = 1.0
    fn = _reading_a_tensor_through_a_cell(box)
    function = autoconv.autoconv(fn)
    assert function(T([1.0, 2.0])).tolist() == [3.0, 5.0]
    box.w = T([5.0])
    assert fn(T([1.0, 2.0])).tolist() == [6.0, 11.0]
    assert function(T([1.0, 2.0])).tolist() == [6.0, 11.0]


class _HoldsAScalerAndItsMethod(torch.nn.Module):
    def __init__(self, scaler):
        super().__init__()
        self.scaler = scaler
        self.act = scaler.scale

    def forward(self, x):
        if x.sum() > 0:
            return self.act(x)
        return x


def test_under_torch_compile_a_change_through_the_other_route_is_seen():
    scaler = _Scaler(2)
    module = _HoldsAScalerAndItsMethod(scaler)
    compiled = torch.compile(autoconv.convert(module), fullgraph=True, backend="eager")
    assert compiled(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    scaler.k = 5
    assert compiled(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert compiled(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]


# (an exported program is fixed when it is exported: the object's `k` of that moment, on both
# paths of the staged `if`)
def test_exported_with_the_value_the_second_route_reads():
    scaler = _Scaler(2)
    module = _TwoFields(scaler)
    scaler.k = 5
    program = exported(module, (T([1.0, 2.0]),))
    assert program(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert program(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]
