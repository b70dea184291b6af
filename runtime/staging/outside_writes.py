"""Tensors from outside a traced function that it updates in place, put back after the trace.

NOTE [outside tensors updated while tracing]
make_fx keeps a tensor the function reads from a global, a closure or an attribute (not an
argument) as a constant of the graph: the tensor itself. An in-place op on it runs for real while
tracing (a fake trace of `STEP.add_(1)` leaves `STEP` one higher), and the graph's own op updates
the same tensor at every call: each trace added one update Python never made. While autoconv
traces, the first in-place update of each such tensor saves its value, and the trace ends by
putting the saved values back, so that only the graph's runs update it.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch._subclasses.fake_tensor import FakeTensor

__all__ = ["restoring", "note", "note_read", "VALUE_READS"]

_state = threading.local()


# The tensor methods that read a tensor's value into Python (make_fx then bakes the value read)
VALUE_READS = frozenset({torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__int__,
                         torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.tolist})


@contextlib.contextmanager
def restoring():
    """Within: outside tensors updated in place are saved first (`note`); on leaving (the
    outermost trace) each is put back. Gives the list of the values read from outside tensors
    (`note_read`): [(tensor, method, value)], complete once the context is left."""
    outer = getattr(_state, "saved", None)
    if outer is None:
        _state.saved = {}
        _state.reads = []
    reads = _state.reads
    try:
        yield reads
    finally:
        if outer is None:
            saved, _state.saved = _state.saved, None
            _state.reads = None
            from .specialize import untraced

            with untraced(), torch.no_grad():
                for tensor, value in saved.values():
                    tensor.copy_(value)


def _in_place(func) -> bool:
    name = getattr(func, "__name__", "")
    return ((name.endswith("_") and not name.startswith("_"))
            or (name.startswith("__i") and name.endswith("__") and name != "__init__")
            or name == "__setitem__")


def note(func, args, kwargs) -> None:
    """Save the value of a real (outside) tensor that `func` is about to update in place."""
    saved = getattr(_state, "saved", None)
    if saved is None:
        return
    targets = []
    if args and _in_place(func):
        targets.append(args[0])
    out = kwargs.get("out") if kwargs else None
    if out is not None:
        targets.extend(out if isinstance(out, (tuple, list)) else (out,))
    for tensor in targets:
        if (type(tensor) is torch.Tensor or type(tensor) is torch.nn.Parameter) \
                and id(tensor) not in saved:
            from .specialize import untraced

            with untraced():
                saved[id(tensor)] = (tensor, tensor.detach().clone())


def note_read(func, args, value) -> None:
    """Record that the trace read `value` from a real (outside) tensor with `func` (one of
    `VALUE_READS`): make_fx bakes it into the graph, so each call checks it again
    (NOTE [captured Python values] in autoconv/captures.py)."""
    reads = getattr(_state, "reads", None)
    if reads is None or not args:
        return
    tensor = args[0]
    if type(tensor) is torch.Tensor or type(tensor) is torch.nn.Parameter:
        reads.append((tensor, func, value))


# NOTE [outside tensors updated in a probe]
# The run of a statement's bodies that learns the types of the values they return (a staged
# `if` with an early return, runtime/staging/torch.py `_fill_return_placeholders`), or the rows
# they append to the lists they grow (`_probe_lists`), works on
# copies of the statement's values, but a tensor the body reaches from outside the function
# (a global, an item of a global dict, a module's plain attribute or dict item) is the real
# one: its in-place update (`STATS["n"] += 1`) would run, and be traced, outside torch.cond,
# updating it on every call. An in-place op never changes its target's type (dtype, shape), so
# the probe skips the update of such a tensor: the op gives back its target unchanged, and
# only the statement's real run (in torch.cond's branch) updates it.
class _SkipOutsideUpdates(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if args and _in_place(func) and func.__name__ not in _SHAPES \
                and (type(args[0]) is torch.Tensor or type(args[0]) is torch.nn.Parameter):
            return args[0]
        out = kwargs.get("out")
        if type(out) is torch.Tensor or type(out) is torch.nn.Parameter:
            return out
        return func(*args, **kwargs)


# in-place ops that may change their target's shape: run as they are
_SHAPES = frozenset({"resize_", "resize_as_", "set_", "squeeze_", "unsqueeze_", "t_",
                     "transpose_", "swapdims_", "swapaxes_", "as_strided_"})


def skipped_in_probe():
    """Within (a probe of a statement's bodies): in-place updates of real tensors
    (from outside the traced function) are skipped (NOTE [outside tensors updated in a
    probe])."""
    return _SkipOutsideUpdates()
