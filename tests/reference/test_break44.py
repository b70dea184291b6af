"""Reference tests: session 44's break of session 43's changes (break44): what a module call or
a method call runs, changed after the first call, against plain Python.

Each case calls once, changes the program the way a practitioner (or a library) does between
calls, and compares the next calls with Python's.
"""

import pytest
import torch
from torch import nn

import autoconv
from support import assert_close

_X = [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0]), torch.tensor([0.5, -0.1])]


# --- s01: a method found through the class, patched or shadowed after the first call -----------
# NOTE [a module's class's forward], NOTE [methods found through the class]
# (autoconv/captures.py): the trace inlines the method its class held; neither it nor the
# instance's lack of one was guarded, so the old method's graph was replayed, silently.

class _Sub(nn.Module):
    def helper(self, x):
        return x * 2

    def forward(self, x):
        if x.sum() > 0:
            return self.helper(x)
        return x - 1


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = _Sub()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        y = self.sub(x)
        return self.lin(y) if y.sum() > 1 else y + 1


class _Scaler:
    def scale(self, x):
        return x * 2


_SCALER = _Scaler()


def _scaled(x):
    if x.sum() > 0:
        return _SCALER.scale(x)
    return x


def _patch(cls, name, value):
    old = cls.__dict__[name]
    setattr(cls, name, value)
    return lambda: setattr(cls, name, old)


def _changes():
    yield "submodule_class_forward", lambda m: _patch(_Sub, "forward", lambda self, x: x * 7)
    yield "root_class_forward", lambda m: _patch(_Net, "forward", lambda self, x: self.sub(x) * 7)
    yield "torch_class_forward", lambda m: _patch(
        nn.Linear, "forward", lambda self, x: nn.functional.linear(x, self.weight) * 7)
    yield "submodule_class_helper", lambda m: _patch(_Sub, "helper", lambda self, x: x * 3)
    yield "submodule_instance_helper", lambda m: setattr(m.sub, "helper", lambda x: x * 5)


@pytest.mark.parametrize("what, change", list(_changes()), ids=[w for w, _ in _changes()])
def test_s01_a_method_patched_after_the_first_call_traces_again(what, change):
    torch.manual_seed(0)
    model = _Net()
    run = autoconv.autoconv(model)
    with torch.no_grad():
        run(_X[0])
        undo = change(model)
        try:
            for x in _X:
                assert_close(run(x), model(x))
        finally:
            if undo is not None:
                undo()
    assert run.trace_count >= 2, what


def test_s01_a_held_objects_method_patched_after_the_first_call_traces_again():
    run = autoconv.autoconv(_scaled)
    run(_X[0])
    undo = _patch(_Scaler, "scale", lambda self, x: x * 3)
    try:
        for x in _X:
            assert_close(run(x), _scaled(x))
        _SCALER.scale = lambda x: x * 5
        for x in _X:
            assert_close(run(x), _scaled(x))
    finally:
        undo()
        del _SCALER.scale


def _called(x, module):
    if x.sum() > 0:
        return module(x)
    return x


class _Doubling(nn.Module):
    def forward(self, x):
        return x * 2


def test_s01_a_module_arguments_class_forward_patched_traces_again():
    module = _Doubling()
    run = autoconv.autoconv(_called)
    run(_X[0], module)
    undo = _patch(_Doubling, "forward", lambda self, x: x * 9)
    try:
        for x in _X:
            assert_close(run(x, module), _called(x, module))
    finally:
        undo()
    for x in _X:  # (the old forward back: its graph again)
        assert_close(run(x, module), _called(x, module))


# --- s02: one tensor given as two arguments to an exported program ----------------------------

def _doubled_until(x, y):
    s = torch.zeros(())
    while s < 3:
        x.mul_(2)
        s = s + y.abs().sum() + 0.5
    return s, x


def test_s02_one_tensor_as_two_arguments_replays_as_python():
    # (autoconv's replay: which arguments share memory is part of the signature)
    run = autoconv.autoconv(_doubled_until)
    for same in (False, True, False):
        mine, python = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
        if same:
            got, want = run(mine, mine), _doubled_until(python, python)
        else:
            got = run(mine, torch.tensor([1.0, 2.0]))
            want = _doubled_until(python, torch.tensor([1.0, 2.0]))
        assert_close(got, want)
        assert torch.equal(mine, python)


def test_s02_one_tensor_as_two_arguments_of_an_exported_program_is_refused():
    # (traced on two tensors, it read `y` as before `x`'s updates: 3.5 for Python's 6.5;
    # NOTE [inputs that share memory under export])
    from support import exported
    module = exported(_doubled_until, (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])))
    c, d = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])
    assert_close(module(c, d), _doubled_until(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])))
    assert torch.equal(c, torch.tensor([2.0, 4.0]))
    for given in (lambda c: (c, c), lambda c: (c, c[:])):  # (one tensor, and a view of it)
        c = torch.tensor([1.0, 2.0])
        with pytest.raises(RuntimeError, match=r"test_break44\.py:\d+: a staged statement "
                           "updates an input of this exported program in place, and that input "
                           "shares memory with another input"):
            module(*given(c))
        assert torch.equal(c, torch.tensor([1.0, 2.0]))  # (refused before the update)
