"""Any other torch dispatch mode (FakeTensorMode, FunctionalTensorMode, a proxy mode that is
not make_fx's): the public `torch.cond` / `torch.while_loop`, which bring their own tracing."""

from __future__ import annotations

import torch
from torch._C import _TorchDispatchModeKey, _get_dispatch_mode
from torch._higher_order_ops.while_loop import while_loop as _torch_while_loop

from ..registry import StagingTracer


def under_dispatch_mode() -> bool:
    """True under a proxy, fake or functional dispatch mode (or dynamo)."""
    if torch.compiler.is_compiling():
        return True
    return (
        _get_dispatch_mode(_TorchDispatchModeKey.PROXY) is not None
        or _get_dispatch_mode(_TorchDispatchModeKey.FAKE) is not None
        or _get_dispatch_mode(_TorchDispatchModeKey.FUNCTIONAL) is not None
    )


class DispatchModeTracer(StagingTracer):
    """Tensors under a tracing dispatch mode, and fake tensors: `torch.cond` runs dynamo over
    the branches and gives the mode one operator call."""

    name = "dispatch modes"
    bodies_under_dynamo = True

    def is_staged(self, value) -> bool:
        return isinstance(value, torch.Tensor) and (
            under_dispatch_mode() or isinstance(value, torch._subclasses.FakeTensor))

    def is_tracing(self) -> bool:
        return under_dispatch_mode()

    def cond(self, pred, true_fn, false_fn, operands):
        return torch.cond(pred, true_fn, false_fn, operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        return _torch_while_loop(lambda *c: cond_fn(*c, *additional),
                                 lambda *c: body_fn(*c, *additional), carried)
