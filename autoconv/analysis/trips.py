"""A bound on the trips of a `while` loop, read from its test: a counter that each iteration
moves by a constant towards a bound the body leaves alone.

    while token != eos and steps < max_len:     # a conjunct `counter < bound`
        ...
        steps += 1                              # once per iteration, at the body's top level

makes at most ceil((max_len - steps) / 1) more trips, whatever `token` does. The counter may
also be the length of a list the body appends to once per iteration, at its top level:

    while len(toks) < max_len:                  # `len(list) < bound`
        ...
        toks.append(tok)                        # (ac.list_append by then, converters/lists.py)

A list the loop
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
    expression of its own (a copy). With `length`, the counter is `len(counter)`, of a list
    each trip appends one item to."""

    def __init__(self, counter: str, op: str, bound, step: int, length: bool = False):
        self.counter, self.op, self.bound, self.step = counter, op, bound, step
        self.length = length


def trip_bounds(loop: gast.While, builtin_len: bool = False) -> list[TripBound]:
    """The conjuncts of `loop`'s test that bound its trips (see the module's docstring).

    The loop's body must still have its `continue`s (this runs before they are lowered): a
    `continue` could skip the counter's step. A `break` or `return` only ends the loop sooner.
    `builtin_len`: whether `len` is the builtin in the function (a test `len(toks) < n` counts
    only then); its appends must already be `ac.list_append` calls.
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
        if _counter(left, builtin_len) is None:
            left, right, op = right, left, _FLIPPED[op]
        counter = _counter(left, builtin_len)
        if counter is None:
            continue
        length = not isinstance(left, gast.Name)
        step = _appends(counter, loop.body) if length else _step(counter, loop.body)
        if step is None or (step > 0) != (op in (gast.Lt, gast.LtE)):
            continue
        if not _pure(right) or _names(right) & (writes | mutated):
            continue
        bounds.append(TripBound(counter, _SYMBOLS[op], copy_tree(right), step, length))
    return bounds


def _counter(expr, builtin_len: bool) -> str | None:
    """The name counted by `expr`: `counter`, or `toks` in `len(toks)` (the builtin's)."""
    if isinstance(expr, gast.Name):
        return expr.id
    if (builtin_len and isinstance(expr, gast.Call) and isinstance(expr.func, gast.Name)
            and expr.func.id == "len" and len(expr.args) == 1 and not expr.keywords
            and isinstance(expr.args[0], gast.Name)):
        return expr.args[0].id
    return None


def _appends(name: str, body) -> int | None:
    """1 where one statement at the body's top level appends to the list `name`
    (`name = ac.list_append(name, item)`) and no other statement binds or changes it."""
    appends = 0
    for stmt in body:
        if (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name) and stmt.targets[0].id == name
                and isinstance(stmt.value, gast.Call)
                and isinstance(stmt.value.func, gast.Attribute)
                and stmt.value.func.attr == "list_append" and len(stmt.value.args) == 2
                and isinstance(stmt.value.args[0], gast.Name) and stmt.value.args[0].id == name
                and name not in _names(stmt.value.args[1])):
            appends += 1
            continue
        _, writes, mutated = activity_of(stmt)
        if name in writes or name in mutated:
            return None
    return 1 if appends == 1 else None


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
