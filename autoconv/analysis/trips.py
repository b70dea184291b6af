"""A bound on the trips of a `while` loop, read from its test: a counter that each iteration
moves by a constant towards a bound the body leaves alone.

    while token != eos and steps < max_len:     # a conjunct `counter < bound`
        ...
        steps += 1                              # once per iteration, at the body's top level

makes at most ceil((max_len - steps) / 1) more trips, whatever `token` does. A list the loop
grows under tensor control flow is then sized before the loop from this bound, instead of from
a first staged loop that only counts the trips (NOTE [lists in while loops] in
runtime/staging/torch.py).
"""

from __future__ import annotations

import gast

from .activity import activity_of
from .nodes import copy_tree, walk

__all__ = ["TripBound", "trip_bounds"]

# op -> the op with its operands swapped (`bound > counter` is `counter < bound`)
_FLIPPED = {gast.Lt: gast.Gt, gast.LtE: gast.GtE, gast.Gt: gast.Lt, gast.GtE: gast.LtE}
_SYMBOLS = {gast.Lt: "<", gast.LtE: "<=", gast.Gt: ">", gast.GtE: ">="}
# Expressions a bound may be made of: reading them twice (in the test and once for the bound)
# is the same as reading them once.
_PURE = (gast.Name, gast.Attribute, gast.Constant, gast.BinOp, gast.UnaryOp, gast.Load,
         gast.operator, gast.unaryop)
_LOOPS_AND_SCOPES = (gast.For, gast.AsyncFor, gast.While, gast.FunctionDef,
                     gast.AsyncFunctionDef, gast.ClassDef, gast.Lambda)


class TripBound:
    """`counter <op> bound` holds while the loop runs, and each trip adds `step` to `counter`
    (a Python int: positive for `<` / `<=`, negative for `>` / `>=`); `bound` is a gast
    expression of its own (a copy)."""

    def __init__(self, counter: str, op: str, bound, step: int):
        self.counter, self.op, self.bound, self.step = counter, op, bound, step


def trip_bounds(loop: gast.While) -> list[TripBound]:
    """The conjuncts of `loop`'s test that bound its trips (see the module's docstring).

    The loop's body must still have its `continue`s (this runs before they are lowered): a
    `continue` could skip the counter's step. A `break` or `return` only ends the loop sooner.
    """
    test = loop.test
    conjuncts = test.values if isinstance(test, gast.BoolOp) and isinstance(
        test.op, gast.And) else [test]
    if _continues(loop.body):
        return []
    bounds = []
    reads, writes, mutated = activity_of(loop.body)
    for conjunct in conjuncts:
        if not (isinstance(conjunct, gast.Compare) and len(conjunct.ops) == 1
                and type(conjunct.ops[0]) in _SYMBOLS):
            continue
        op, left, right = type(conjunct.ops[0]), conjunct.left, conjunct.comparators[0]
        if not isinstance(left, gast.Name):
            left, right, op = right, left, _FLIPPED[op]
        if not isinstance(left, gast.Name):
            continue
        step = _step(left.id, loop.body)
        if step is None or (step > 0) != (op in (gast.Lt, gast.LtE)):
            continue
        if not _pure(right) or _names(right) & (writes | mutated):
            continue
        bounds.append(TripBound(left.id, _SYMBOLS[op], copy_tree(right), step))
    return bounds


def _step(counter: str, body) -> int | None:
    """The constant the body adds to `counter` at its top level, where that statement is the
    body's only assignment to `counter`; None otherwise."""
    steps = []
    for stmt in body:
        step = _constant_step(counter, stmt)
        if step is not None:
            steps.append(step)
        elif counter in activity_of(stmt)[1]:
            return None
    return steps[0] if len(steps) == 1 and steps[0] != 0 else None


def _constant_step(counter: str, stmt) -> int | None:
    """`counter += c`, `counter -= c`, `counter = counter + c` / `- c` -> +c / -c."""
    if isinstance(stmt, gast.AugAssign):
        target, op, value = stmt.target, stmt.op, stmt.value
    elif (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
          and isinstance(stmt.value, gast.BinOp) and isinstance(stmt.value.left, gast.Name)
          and stmt.value.left.id == counter):
        target, op, value = stmt.targets[0], stmt.value.op, stmt.value.right
    else:
        return None
    if not (isinstance(target, gast.Name) and target.id == counter
            and isinstance(value, gast.Constant) and type(value.value) is int):
        return None
    if isinstance(op, gast.Add):
        return value.value
    if isinstance(op, gast.Sub):
        return -value.value
    return None


def _continues(body) -> bool:
    """Whether a `continue` of this loop (not of a loop inside it) is in `body`."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, gast.Continue):
            return True
        if isinstance(node, _LOOPS_AND_SCOPES):
            # a nested loop's own `continue`s are its own; its else clause is this loop's
            stack.extend(getattr(node, "orelse", ()) if isinstance(node, (gast.For, gast.While,
                                                                          gast.AsyncFor)) else ())
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            value = getattr(node, field, None)
            if value.__class__ is list:
                stack.extend(value)
    return False


def _pure(expr) -> bool:
    return all(isinstance(node, _PURE) for node in walk(expr))


def _names(expr) -> set[str]:
    return {node.id for node in walk(expr) if isinstance(node, gast.Name)}
