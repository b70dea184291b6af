"""fx's `nn.Module` patches skipped in autoconv's own traces (NOTE [fx's module patches
skipped in autoconv's traces] in autoconv/module_patches.py): staged bodies traced with the
module methods left as they are, right values on both paths, and every other tracer (fx's
symbolic_trace, torch.export's) still patching and recording its modules."""

from __future__ import annotations

import threading

import torch
from torch.fx import _symbolic_trace

import autoconv
from autoconv.module_patches import unpatched_modules

ORIGINAL_CALL = torch.nn.Module.__call__


class _Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([2.0, 3.0]))

    def forward(self, x):
        return x * self.weight


class _Branch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = _Scale()

    def forward(self, x):
        if x.sum() > 0:
            y = self.scale(x)
        else:
            y = self.scale(-x) + 1
        return y


def test_staged_bodies_traced_with_the_original_methods(monkeypatch):
    patched = []
    patch = _symbolic_trace._PatchedFnSetAttr.patch

    def counted(self):
        if self.frame_dict is torch.nn.Module:
            patched.append(self.fn_name)
        patch(self)

    monkeypatch.setattr(_symbolic_trace._PatchedFnSetAttr, "patch", counted)
    model = _Branch()
    staged = autoconv.autoconv(model)
    for x, want in ((torch.tensor([1.0, 2.0]), [2.0, 6.0]),
                    (torch.tensor([-1.0, -2.0]), [3.0, 7.0])):
        assert staged(x).tolist() == want == model(x).tolist()
    assert patched == []  # fx's Tracer.trace patches nothing in the staged bodies' traces
    assert _symbolic_call_modules() == ["0"] and patched  # outside them it does
    model.scale.weight.data.fill_(10.0)  # the parameter is read, not baked
    assert staged(torch.tensor([1.0, 2.0])).tolist() == [10.0, 20.0]
    assert torch.nn.Module.__call__ is ORIGINAL_CALL


def _symbolic_call_modules():
    graph = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Linear(2, 2))).graph
    return [node.target for node in graph.nodes if node.op == "call_module"]


def test_other_tracers_still_patch():
    assert _symbolic_call_modules() == ["0"]
    # While this thread traces for autoconv, another thread's symbolic_trace still patches.
    found = {}
    with unpatched_modules():
        assert getattr(torch.nn.Module.__call__, "__fx_already_patched")
        thread = threading.Thread(target=lambda: found.update(there=_symbolic_call_modules()))
        thread.start()
        thread.join()
    assert found == {"there": ["0"]}
    assert not getattr(torch.nn.Module.__call__, "__fx_already_patched")


class _Calls(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_export_keeps_the_module_stack():
    """torch.export of converted code: export's tracer patches and records its modules."""
    program = torch.export.export(_Calls(autoconv.convert(_Branch())),
                                  (torch.tensor([1.0, 2.0]),), strict=False)
    stacks = [node.meta["nn_module_stack"] for node in program.graph.nodes
              if node.op == "call_function" and node.meta.get("nn_module_stack")]
    assert stacks
    module = program.module()
    for x, want in (([1.0, 2.0], [2.0, 6.0]), ([-1.0, -2.0], [3.0, 7.0])):
        assert module(torch.tensor(x)).tolist() == want
