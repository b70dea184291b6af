"""The tracer registry: which tracer stages a statement, and how another tracer plugs in.

A staged `if` becomes `cond(pred, true_fn, false_fn, operands)` and a staged loop
`while_loop(cond_fn, body_fn, carried, additional)`; `staging/torch.py` prepares the bodies and
operands, and the tracer that owns the statement builds its operator node. Each tracer is one
object (one module under `staging/tracers/`) that answers two questions and provides the two
operators:

- `is_staged(value)`: is this value mine, unknown until my graph runs? (a tensor under make_fx,
  an fx `Proxy`, a vmap batch ...)
- `is_tracing()`: is this moment mine? (make_fx is running, dynamo is compiling ...)
- `cond(...)`, `while_loop(...)`: build the node (or, for concrete values, run the statement).

A statement belongs to the first tracer, in registry order, that owns its predicate (a `while`:
one of its operands), else to the first that is tracing. The order:

    dynamo             torch.compile, torch.export(strict=True)       tracers/dynamo.py
    torch.func         vmap batches; vmap / grad / jvp of concrete     tracers/func.py
    make_fx            make_fx, torch.export (non-strict), autoconv    tracers/make_fx.py
    fx.symbolic_trace  torch.fx.Proxy values (any torch.fx.Tracer)      tracers/symbolic.py
    <registered>       third-party tracers (`register_tracer`)
    dispatch modes     any other torch dispatch mode: torch.cond       tracers/dispatch.py
    python             concrete values: a Python if / while            tracers/python.py

See docs/embedding.md for a worked third-party tracer.
"""

from __future__ import annotations

import torch

__all__ = ["StagingTracer", "register_tracer", "unregister_tracer", "tracers", "owner",
           "is_staged", "cond", "while_loop"]


class StagingTracer:
    """One tracer's answers and operators; subclass it to plug a tracer into autoconv.

    `name` identifies it in the registry. Subclasses implement `is_staged`, `cond` and
    `while_loop`, and `is_tracing` when their values are not torch tensors (see its docstring).
    """

    name = "tracer"
    # Whether `cond` / `while_loop` run the bodies under dynamo (torch.cond's own tracing), which
    # refuses the writes by which the staging engine watches them run: it then checks the
    # bodies' outputs by one probe run before calling the operator.
    bodies_under_dynamo = False

    def is_staged(self, value) -> bool:
        """True when `value` is this tracer's and its contents are unknown until the graph runs.

        Converted code asks this of every `if` / `while` test and `and` / `or` / `not` operand
        that is not a Python bool; True makes the statement staged. Must be cheap and must
        not raise (it sees any Python value).
        """
        raise NotImplementedError

    def is_tracing(self) -> bool:
        """True while this tracer is running.

        Converted functions run their original Python body, at Python's speed, when no tracer
        is running (`autoconv_runtime.eager()`); a tracer whose values are not torch tensors
        (or that traces tensors without a torch dispatch mode or transform) must return True
        here while it runs, or its values reach the original body's Python `if`.
        """
        return False

    def cond(self, pred, true_fn, false_fn, operands):
        """`true_fn(*operands) if pred else false_fn(*operands)` as one node of this tracer.

        `pred` is a staged value holding the condition's truth value (for torch tensors a 0-d
        bool tensor), `operands` a tuple of staged values and tensors. Both functions return
        tuples of one structure; the result is such a tuple.
        """
        raise NotImplementedError

    def while_loop(self, cond_fn, body_fn, carried, additional):
        """`while cond_fn(*carried, *additional): carried = body_fn(*carried, *additional)`,
        returning the final `carried` (a tuple), as one node of this tracer.

        `additional` are values both functions only read.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# Filled by tracers/__init__.py: built-in tracers in the order of the table above. Third-party
# tracers go in before the generic ones (dispatch modes, python) unless `before` says otherwise.
_tracers: list[StagingTracer] = []
_GENERIC = ("dispatch modes", "python")
# Whether a registered tracer can be running: `eager()` asks them only then (hot path).
third_party: list[StagingTracer] = []


def register_tracer(tracer: StagingTracer, *, before: str | None = None) -> StagingTracer:
    """Register `tracer` so that converted code stages its values with its cond / while_loop.

    It goes in before the tracer named `before` (default: before the generic "dispatch modes"
    and "python" ones, after the built-in tracers). Registering a tracer of the same name
    again replaces it. Returns `tracer`.

    Raises TypeError if `tracer` is not a `StagingTracer`, ValueError if no tracer is named
    `before`.
    """
    if not isinstance(tracer, StagingTracer):
        raise TypeError(f"register_tracer takes a StagingTracer, not {type(tracer).__name__}")
    names = [t.name for t in _tracers]
    if before is None:
        before = next(name for name in names if name in _GENERIC)
    if before not in names or before == tracer.name:
        raise ValueError(f"no tracer named {before!r} to register {tracer.name!r} before; "
                         f"the registered ones are {names}")
    unregister_tracer(tracer.name)
    _tracers.insert([t.name for t in _tracers].index(before), tracer)
    third_party.append(tracer)
    return tracer


def unregister_tracer(name: str) -> None:
    """Remove the third-party tracer registered as `name` (nothing if there is none).

    Raises ValueError for a built-in tracer's name."""
    for tracer in third_party:
        if tracer.name == name:
            third_party.remove(tracer)
            _tracers.remove(tracer)
            return
    if name in (t.name for t in _tracers):
        raise ValueError(f"{name!r} is a built-in tracer and cannot be removed")


def tracers() -> tuple[StagingTracer, ...]:
    """The registered tracers, in the order they are asked."""
    return tuple(_tracers)


# Under dynamo (which traces this module too, step by step) with only the built-in tracers
# registered, the first, dynamo's, owns every tensor and no other owns any other value, and it
# is tracing: `is_staged` and `owner` answer that in a step instead of asking each tracer.


def is_staged(value) -> bool:
    """True when some tracer owns `value` (see `StagingTracer.is_staged`)."""
    if torch.compiler.is_dynamo_compiling() and not third_party:
        return isinstance(value, torch.Tensor)
    for tracer in _tracers:
        if tracer.is_staged(value):
            return True
    return False


def owner(*values) -> StagingTracer:
    """The tracer a statement over `values` belongs to: the first that owns one of them, else
    the first that is tracing, else plain Python."""
    if torch.compiler.is_dynamo_compiling() and not third_party:
        return _tracers[0]  # (dynamo's)
    for tracer in _tracers:
        for value in values:
            if tracer.is_staged(value):
                return tracer
    for tracer in _tracers:
        if tracer.is_tracing():
            return tracer
    return _tracers[-1]


def cond(pred, true_fn, false_fn, operands):
    """`true_fn(*operands) if pred else false_fn(*operands)` by the tracer that owns `pred`."""
    return owner(pred).cond(pred, true_fn, false_fn, tuple(operands))


def while_loop(cond_fn, body_fn, carried, additional=()):
    """`while cond_fn(*carried, *additional): carried = body_fn(*carried, *additional)` by the
    tracer that owns one of the operands (else the one that is tracing)."""
    carried, additional = tuple(carried), tuple(additional)
    return owner(*carried, *additional).while_loop(cond_fn, body_fn, carried, additional)


# The built-in tracers (their modules subclass StagingTracer, defined above).
from .tracers import BUILTIN as _BUILTIN  # noqa: E402

_tracers.extend(_BUILTIN)
