"""Gradients taken inside the traced function through a staged body that torch's backward of
the operator cannot give as Python does: refused at the user's line.

NOTE [gradients inside the function through a staged body]
A gradient taken inside the function (`torch.autograd.grad(out.sum(), y)`, `out.backward()`)
runs autograd while the graph is traced (autoconv's own trace, torch.export's), and torch's
autograd rule for a `cond` / `while_loop` (`CondAutogradOp` in torch/_higher_order_ops/cond.py,
`WhileLoopAutogradOp`) saves only the operands: its backward traces the body again, from them,
and differentiates that trace. Three things in a body are then not Python's:

- A random op (dropout, `rand*`, `bernoulli`, `multinomial`, `normal_` ...: every op with
  torch's `nondeterministic_seeded` tag) draws a second time: another mask than the result's.
  `if x.sum() > 0: out = F.dropout(y, 0.5)` gave a gradient that was not `2 * (out != 0)` in
  autoconv's replay (both backends; err55, silently), and its backward drew numbers Python
  never draws; torch.export put the trace's fake mask into the program as a constant.
- A custom `autograd.Function`'s `apply` under torch.export (or another make_fx trace), where
  torch keeps the forward's ops (NOTE [custom autograd Functions] in autograd_functions.py):
  the body's trace differentiates those ops, not `Fn.backward` ([2, -4, 6] for Python's [20,
  -40, 60] with a backward scaled by 10, brk55; torch.export of the same torch.cond without
  autoconv gives [0, 0, 0]). Without the `if` torch runs `Fn.backward` itself and is right;
  autoconv's own trace keeps the call for its backward (NOTE [gradients through a Function
  taken while tracing]).
- A `@once_differentiable` backward, differentiated again (`create_graph=True`, then a second
  `grad`): Python raises; the operator's traced backward is plain ops that differentiate again
  ([6, -12, 18], brk55).

None of these can be given to torch's operator (no operator hands its backward the forward's
generator state or a Function's backward), so while a body runs for the operator with operands
that require grad (only then can a gradient reach it), the first such thing is noted with the
user's line. If one was, each output of the statement that requires grad gets a hook that
raises at that line, naming it and the line taking the gradient, when a gradient reaches it
during the trace (for a once_differentiable backward: when that gradient is taken with
`create_graph=True`, the only way to differentiate it again; a gradient so taken and never
differentiated again is refused too, a false refusal, since no hook sees the second one).
Without a gradient inside the function (the common case: `loss.backward()` after the call) no
hook runs: the trace's tensors are gone by then. Not under dynamo, which refuses
`torch.autograd.grad` in a graph itself.
"""

from __future__ import annotations

import contextlib
import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import StagingError, user_location

__all__ = ["watching", "note_function", "refuse_gradients"]

_DRAW, _EXPORTED, _ONCE = "draw", "exported", "once"
_ONCE_CODE = torch.autograd.function.once_differentiable(lambda ctx: None).__code__
_watches = threading.local()


class _Found:
    """The first thing a body did that torch's backward of it cannot give as Python does."""

    def __init__(self, kind, what, location):
        self.kind, self.what, self.location = kind, what, location


class _Watch(TorchDispatchMode):
    """Notes a body's first op tagged `nondeterministic_seeded` (and, by `note_function`, its
    first Function call) in every body being watched; runs every op as it is.

    A nested statement's operator (a higher-order op) runs with this mode popped (torch's
    rule), its bodies under their own watch, which notes into the enclosing ones too."""

    supports_higher_order_operators = True

    def __init__(self):
        super().__init__()
        self.found = None

    def note(self, kind, what, location) -> None:
        if self.found is None:
            self.found = _Found(kind, what, location)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if (not isinstance(func, torch._ops.HigherOrderOperator)
                and torch.Tag.nondeterministic_seeded in func.tags):
            location = user_location()
            for watch in _stack():
                watch.note(_DRAW, func.__name__, location)
        return func(*args, **(kwargs or {}))


def _stack() -> list:
    return _watches.__dict__.setdefault("stack", [])


def _may_be_differentiated(flat) -> bool:
    """Whether a gradient may reach a body run on `flat`: an operand requires grad, or an
    enclosing body's may (an operand made in it without grad, a mask, is used with one)."""
    if torch.compiler.is_dynamo_compiling():
        return False
    return bool(_stack()) or (torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in flat))


@contextlib.contextmanager
def watching(flat, found: dict, where: str):
    """Runs a body on its operands `flat`, noting in `found[where]` the first thing it does
    that torch's backward cannot give as Python does, where a gradient may reach the body
    (NOTE [gradients inside the function through a staged body])."""
    if not _may_be_differentiated(flat):
        yield
        return
    watch = _Watch()
    stack = _stack()
    stack.append(watch)
    try:
        with watch:
            yield
    finally:
        stack.pop()
    if watch.found is not None:
        found.setdefault(where, watch.found)


def note_function(function, location, *, kept: bool) -> None:
    """A call of the custom autograd Function `function` at `location` in the bodies being
    watched: `kept` where autoconv's trace keeps the call for its backward (NOTE [custom
    autograd Functions]), else torch traces its forward's ops."""
    stack = _stack()
    if not stack:
        return
    name = f"{function.__name__}.apply"
    if not kept:
        for watch in stack:
            watch.note(_EXPORTED, name, location)
    elif getattr(function.backward, "__code__", None) is _ONCE_CODE:
        for watch in stack:
            watch.note(_ONCE, name, location)


def refuse_gradients(flat, found: dict, kind: str, operator: str) -> None:
    """A hook on each output in `flat` of a staged `kind` (lowered onto `operator`) that
    requires grad, refusing a gradient through it where a body did what `found` notes (filled
    by `watching`)."""
    if not found:
        return
    where, first = next(iter(found.items()))

    def refuse(grad):
        if first.kind == _ONCE and not torch.is_grad_enabled():
            return None  # (a first gradient, not to be differentiated again: right)
        raise _refusal(first, where, kind, operator)

    for value in flat:
        if isinstance(value, torch.Tensor) and value.requires_grad:
            value.register_hook(refuse)


def _refusal(first: _Found, where: str, kind: str, operator: str) -> StagingError:
    taken = user_location()
    at = (f" (line {taken[1]})" if taken and first.location and taken[0] == first.location[0]
          else "")
    if first.kind == _DRAW:
        problem = (f"{first.what} draws random numbers {where}, and a gradient through the "
                   f"{kind} is taken inside the function{at}: {operator}'s backward runs that "
                   "body again, which would draw other numbers than the result's")
        fix = (f"Draw the random numbers before the {kind} (`mask = torch.rand_like(y) > p`) "
               "and use them in it, or take the gradient outside the autoconv function")
    elif first.kind == _EXPORTED:
        problem = (f"{first.what} is called {where}, and a gradient through the {kind} is "
                   f"taken inside the function{at} while torch traces it (torch.export): "
                   f"{operator}'s backward differentiates the forward's ops, not the "
                   "Function's backward")
        fix = (f"Call {first.what} outside the {kind}, or take the gradient outside the "
               "exported program")
    else:
        problem = (f"{first.what} is called {where}, its backward is @once_differentiable, "
                   f"and a gradient through the {kind} is taken with create_graph=True inside "
                   f"the function{at}: {operator}'s backward would differentiate that backward "
                   "again, where Python raises")
        fix = (f"Take the gradient without create_graph, or call {first.what} outside the "
               f"{kind}")
    return StagingError.at(first.location, kind, problem, fix)
