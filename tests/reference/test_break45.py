"""Reference tests: session 45's break of session 44's changes (break45): what a program reads
that changes between calls, and what the replay then gives, against plain Python.

Each case calls once, changes the program's state the way a practitioner does between calls,
and compares the next calls (on inputs that take other paths) with Python's.
"""

import pytest
import torch
from torch import nn

import autoconv
from support import assert_close

T = torch.tensor
_X = [T([[1.0, 2.0]]), T([[-1.0, -2.0]]), T([[0.5, -0.1]])]


# --- s01: a hook run inside the trace reads a global object's field ------------------------
# NOTE [what hooks in the trace read] (autoconv/captures.py): a submodule's forward hook or
# pre-hook, and torch's global module hooks, were not searched for the values they read, so
# `out * CFG.scale` replayed the old scale after `CFG.scale = 3.0`, silently, where a helper of
# forward reading it traces again.

class _Cfg:
    scale = 1.0


_CFG = _Cfg()


def _scaled_output(mod, inputs, output):
    return output * _CFG.scale if isinstance(mod, nn.Linear) else output


def _scaled_input(mod, inputs):
    return (inputs[0] * _CFG.scale,) if isinstance(mod, nn.Linear) else None


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        h = self.lin(x)
        if h.sum() > 0:
            h = h * 2
        return h - 1


def _hooks():
    yield "submodule_forward_hook", lambda m: m.lin.register_forward_hook(_scaled_output)
    yield "submodule_pre_hook", lambda m: m.lin.register_forward_pre_hook(_scaled_input)
    yield "global_forward_hook", lambda m: nn.modules.module.register_module_forward_hook(
        _scaled_output)
    yield "global_pre_hook", lambda m: nn.modules.module.register_module_forward_pre_hook(
        _scaled_input)


@pytest.mark.parametrize("what, register", list(_hooks()), ids=[w for w, _ in _hooks()])
def test_s01_a_hook_reading_a_global_objects_field_changed_between_calls(what, register):
    torch.manual_seed(0)
    model = _Net()
    handle = register(model)
    run = autoconv.autoconv(model)
    try:
        with torch.no_grad():
            for scale in (1.0, 3.0, -0.5):
                _CFG.scale = scale
                for x in _X:
                    assert_close(run(x), model(x))
    finally:
        handle.remove()
        _CFG.scale = 1.0
    assert run.trace_count == 3, what


_ENCODER = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
_ENCODER[0].register_forward_hook(lambda mod, inputs, output: output * _CFG.scale)


def _encoded(x):
    h = _ENCODER(x)
    if h.sum() > 0:
        h = h * 2
    return h


def test_s01_a_hook_on_a_global_modules_submodule_reading_a_changed_field():
    run = autoconv.autoconv(_encoded)
    try:
        with torch.no_grad():
            for scale in (1.0, 3.0):
                _CFG.scale = scale
                for x in _X:
                    assert_close(run(x), _encoded(x))
    finally:
        _CFG.scale = 1.0
    assert run.trace_count == 2
