"""The operators a staged statement becomes: `cond` and `while_loop`, each built by the tracer
that owns the statement (see `registry.py`; one implementation per tracer in `tracers/`).

Bodies here are plain callables over flat tuples of operands. `while_loop` passes the carried
values and then the loop's read-only values (`additional`) to both of its bodies.
"""

from __future__ import annotations

from . import registry

__all__ = ["cond", "while_loop"]


def cond(pred, true_fn, false_fn, operands):
    """`true_fn(*operands) if pred else false_fn(*operands)` as one `cond` node of the tracer
    that owns `pred`. The branches may return any pytree of tensors (of one structure)."""
    return registry.cond(pred, true_fn, false_fn, operands)


def while_loop(cond_fn, body_fn, carried, additional=()):
    """`while cond_fn(*carried, *additional): carried = body_fn(*carried, *additional)` as one
    `while_loop` node of the tracer that owns the operands."""
    return registry.while_loop(cond_fn, body_fn, carried, additional)
