"""Grad-mode changes inside a traced function, recorded into the captured graph.

make_fx records aten ops below the Autograd dispatch key, so `with torch.no_grad():`,
`@torch.no_grad()`, `torch.enable_grad()` and `torch.set_grad_enabled(...)` in the traced code
leave nothing in the graph: a replay that autograd records through (the python and fx backends,
inductor's compiled graph) would compute gradients through a region the Python function kept
out of autograd. Every one of those APIs ends in `torch._C._set_grad_enabled`, which has a
`__torch_function__` hook; `RecordGradMode` puts a `_set_grad_enabled(mode)` node into the
graph being traced at each call (as make_fx's `pre_dispatch=True` tracing and torch.export do,
see `PreDispatchTorchFunctionMode` in torch/fx/experimental/proxy_tensor.py), and the replay
runs them in order. `torch.fx.node` counts the call as side-effectful, so dead-code elimination
keeps it.

The recorded values are the modes the trace saw, restores included (`no_grad().__exit__`
sets the mode back to what it was at the trace's entry), so a graph holding such nodes is valid
only for the grad mode it was traced under: `Function` keeps one per mode (see
`ConcreteFunction.grad_mode`).

`torch.inference_mode()` does not go through `_set_grad_enabled` and makes inference tensors
that eager autograd later refuses; tracing refuses it (`StagingError`) rather than replay
something eager would not.
"""

from __future__ import annotations

import torch
from torch.fx.experimental import proxy_tensor
from torch.overrides import TorchFunctionMode

__all__ = ["RecordGradMode", "SET_GRAD_ENABLED", "recording", "sets_grad_mode"]

SET_GRAD_ENABLED = torch._C._set_grad_enabled


_recording = [0]  # >0 while an autoconv Function traces


def recording() -> bool:
    """Whether an autoconv Function is tracing: a staged body then records its changes too."""
    return _recording[0] > 0


class RecordGradMode(TorchFunctionMode):
    """While tracing under make_fx: each grad-mode change becomes a node of the graph being
    traced (the innermost one: a cond / while_loop body's graph while a body is traced; make_fx
    traces a body under a mode stack of its own, so the staging tracer enters one more of
    these around each body, see `tracers/make_fx.py`)."""

    def __enter__(self):
        _recording[0] += 1
        return super().__enter__()

    def __exit__(self, *exc):
        _recording[0] -= 1
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is SET_GRAD_ENABLED:
            mode = proxy_tensor.get_proxy_mode()
            if mode is not None:
                (enabled,) = args
                node = mode.tracer.create_node("call_function", SET_GRAD_ENABLED,
                                               (bool(enabled),), {})
                node.meta["val"] = None
        return func(*args, **kwargs)


def sets_grad_mode(graph_module: torch.fx.GraphModule) -> bool:
    """Whether `graph_module` (or a cond / while_loop body in it) changes grad mode."""
    return any(node.op == "call_function" and node.target is SET_GRAD_ENABLED
               for module in graph_module.modules() if isinstance(module, torch.fx.GraphModule)
               for node in module.graph.nodes)
