"""`t.grad` read by converted code while a graph is traced.

A gradient autoconv's trace cannot read right is refused at the read: one of a tensor from
outside the function that is no guarded place (the parameters of a module argument: the graph
would hold the first call's gradient as a constant).

NOTE [gradients of arguments] (autoconv/capture.py) makes the `.grad` of a tensor argument an
input of autoconv's graph, and NOTE [places held by objects] (autoconv/captures.py) guards the
gradient of a tensor read from outside. An exported program has no `.grad` of its inputs:
torch put the gradient of a traced argument into the program as a constant of the trace
("We found a fake tensor in the exported program constant's list"), with no line. Converted
code asks `grad_(t)` before each read, which refuses that at the line.
"""

from __future__ import annotations

import contextlib

import torch
from torch._subclasses.fake_tensor import is_fake

from .errors import StagingError

__all__ = ["grad_", "guarded_gradients"]

# The ids of the gradients autoconv's trace guards as places (captures.py), while it traces;
# None otherwise (torch.export, other tracers: their constants are theirs)
_guarded = [None]


@contextlib.contextmanager
def guarded_gradients(ids):
    """Within it, `.grad` of a real tensor is refused unless its id is in `ids` (the
    gradients autoconv's trace guards: NOTE [gradients of arguments] in autoconv/capture.py)."""
    before, _guarded[0] = _guarded[0], ids
    try:
        yield
    finally:
        _guarded[0] = before


def grad_(value, /) -> None:
    """None, or a StagingError at the line for `value.grad` of a traced argument under
    torch.export. Converted code reads `(ac.grad_(t), t.grad)[1]`: the read itself stays in the
    user's frame, where dynamo follows it.

    Raises:
        StagingError: for `.grad` of a traced tensor that holds one, under torch.export.
    """
    if torch.compiler.is_dynamo_compiling():
        return None
    if _guarded[0] is not None and isinstance(value, torch.Tensor) and not is_fake(value) \
            and value.grad is not None and id(value.grad) not in _guarded[0]:
        raise StagingError(
            "function", "it reads `.grad` of a tensor from outside the function that autoconv "
            "does not guard (a parameter of a module passed in): the graph would hold this "
            "call's gradient as a constant, read and updated again on later calls",
            "Pass the gradients in as arguments (`clip([p.grad for p in model.parameters()])`) "
            "and update them in place there")
    if not torch.compiler.is_exporting():
        return None
    if isinstance(value, torch.Tensor) and is_fake(value) and value.grad is not None:
        raise StagingError(
            "function", "it reads `.grad` of an argument under torch.export: an exported "
            "program takes tensors, not their gradients (torch would keep the gradient of the "
            "trace as a constant)",
            "Pass the gradients in as arguments (`clip([p.grad for p in params])`) and update "
            "them in place there, or use the autoconv Function, whose graph reads `.grad`")
    return None
