"""The names an `if` reads only before an in-place update that may reach their memory (NOTE [a
view read before the update]).

NOTE [a view read before the update]
`i_is_efficient = is_efficient[..., i]` before a staged `if i_is_efficient.any():` whose body
reads the view (`update[..., i] = i_is_efficient.clone()`, `is_efficient2[~i_is_efficient] =
False`), then updates `is_efficient` in place (botorch's `_is_non_dominated_loop`, tester49
s01): the runtime refuses a statement that reads a view of a tensor it updates (NOTE [views
carried as state slots] in runtime/operators.py), as its branches get the view as it was before
the statement, where Python's reads after the update see the update. Where no path of either
branch reads the name after an update that may reach any input's memory, Python reads the
value from before the statement too, and the write-back after the statement puts the update in
the view's memory as Python's did: the runtime leaves those names alone. An update reaches no
input's memory where its target's root is a name the branch bound, on every path before it, to
a new tensor (an arithmetic or comparison result, `.clone()`, a reduction, a torch factory:
`update = (Y > vals).any(dim=-1)`, `is_efficient2 = is_efficient.clone()`); any other in-place
update, and a call the walk cannot tell updates nothing, counts. Rebinding the name itself ends
its watch (what it holds then is made in the branch). A statement other than an assignment, an
expression and an `if` that mentions the name or may update ends the walk: refused as before.
"""

from __future__ import annotations

import gast

from .nodes import walk
from .rebound_views import _IN_PLACE, _PURE_BUILTINS, _PURE_ROOTS, _READING_METHODS, \
    _READING_OPERATORS, StatementFacts, _binds

__all__ = ["read_first"]

# (the runtime's operators that only read, besides the lowerings': a subscript's reads and
# bounds, the choice converter's check; `ac.setitem`, `ac.aug_assign` and the choice
# converter's write-back of a call's result update their first argument's tensor only)
_READING = _READING_OPERATORS | {"getitem", "slice_", "refuse_returned_update"}
_UPDATING_FIRST = frozenset({"setitem", "aug_assign", "write_back_returned"})

# (a tensor's methods and torch's functions that give a new tensor, never a view of an input)
_NEW_METHODS = frozenset({
    "clone", "sum", "mean", "any", "all", "prod", "norm", "cumsum", "cumprod", "argmax",
    "argmin", "abs", "exp", "log", "sqrt", "pow", "matmul", "mm", "logical_not", "logical_and",
    "logical_or", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isfinite", "isinf"})
_NEW_TORCH = frozenset({
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
    "arange", "linspace", "rand", "randn", "tensor", "where", "cat", "stack", "isnan",
    "logical_not", "logical_and", "logical_or", "clone"})


def read_first(branches, names, runtime) -> set:
    """The names among `names` that no path of the statement lists in `branches` reads after
    an in-place update that may reach an input's memory."""
    # (NOTE [one walk of a statement per question] in analysis/rebound_views.py)
    facts = StatementFacts(_updates)
    return {name for name in names
            if all(_walk(body, name, {(True, False, frozenset())}, runtime, facts) is not None
                   for body in branches)}


def _walk(statements, name, paths, runtime, facts):
    """The (holds its value from before, updated, names bound to new tensors) facts of the
    paths after `statements`, or None where one reads `name` after an update, or the walk
    cannot follow a statement. `facts`: a `StatementFacts` of `_updates`."""
    for statement in statements:
        cls = statement.__class__
        if cls is gast.If:
            if facts.reads(statement.test, name) and any(h and d for h, d, _ in paths):
                return None
            if facts.updates(statement.test, frozenset(), runtime):
                paths = {(h, True, f) for h, _, f in paths}
            taken = _walk(statement.body, name, paths, runtime, facts)
            other = _walk(statement.orelse, name, paths, runtime, facts)
            if taken is None or other is None:
                return None
            paths = taken | other
        elif cls in (gast.Assign, gast.Expr, gast.AugAssign, gast.AnnAssign, gast.Pass):
            reads, binds, after = facts.reads(statement, name), _binds(statement, name), set()
            for held, dirty, fresh in paths:
                updates = facts.updates(statement, fresh, runtime)
                # (a statement that reads the name and may update: a call may update first)
                if held and reads and (dirty or updates):
                    return None
                after.add((held and not binds, dirty or updates, _fresh_after(statement, fresh)))
            paths = after
        elif facts.reads(statement, name) or facts.updates(statement, frozenset(), runtime):
            return None
    return paths


def _fresh_after(statement, fresh) -> frozenset:
    """The names bound to new tensors after `statement`, `fresh` those before it."""
    if statement.__class__ is not gast.Assign or _updated_first(statement.value) is not None \
            and _updated_first(statement.value) == _root(statement.targets[0]):
        return fresh  # (`t = ac.setitem(t, k, v)`: `t[k] = v`, which does not rebind `t`)
    bound = {n.id for n in walk(statement.targets)
             if n.__class__ is gast.Name and n.ctx.__class__ is gast.Store}
    fresh = fresh - bound
    target = statement.targets[0]
    if len(statement.targets) == 1 and target.__class__ is gast.Name and _new(statement.value):
        fresh = fresh | {target.id}
    return fresh


def _new(value) -> bool:
    """Whether the expression `value` gives a new tensor, never a view of another."""
    cls = value.__class__
    if cls in (gast.BinOp, gast.Compare):
        return True
    if cls is gast.UnaryOp:
        return value.op.__class__ is not gast.Not
    if cls is gast.Call and value.func.__class__ is gast.Attribute:
        func = value.func
        if func.value.__class__ is gast.Name and func.value.id == "torch":
            return func.attr in _NEW_TORCH
        return func.attr in _NEW_METHODS
    return False


def _updated_first(value):
    """The name `ac.setitem(name, ...)` or `ac.aug_assign(name, ...)` updates, else None."""
    if value.__class__ is gast.Call and value.func.__class__ is gast.Attribute \
            and value.func.attr in _UPDATING_FIRST and value.args:
        return _root(value.args[0])
    return None


def _root(target):
    while target.__class__ in (gast.Subscript, gast.Attribute):
        target = target.value
    return target.id if target.__class__ is gast.Name else None


def _updates(node, fresh, runtime) -> bool:
    """Whether `node` may update in place a tensor other than one the names in `fresh` hold."""
    for n in walk(node):
        cls = n.__class__
        if cls is gast.AugAssign:
            if _root(n.target) not in fresh:
                return True
        elif cls is gast.Assign:
            if any(t.__class__ is not gast.Name and (
                    t.__class__ in (gast.Tuple, gast.List) or _root(t) not in fresh)
                   for t in n.targets):
                return True
        elif cls is gast.Call:
            if any(k.arg == "out" for k in n.keywords):
                return True
            func = n.func
            if func.__class__ is gast.Attribute:
                root = _root(func.value)
                if root == runtime:
                    if func.attr in _READING or func.attr in _UPDATING_FIRST and n.args \
                            and func.value.__class__ is gast.Name \
                            and n.args[0].__class__ is gast.Name and n.args[0].id in fresh:
                        continue
                    return True
                if _IN_PLACE.match(func.attr):
                    if root not in fresh or func.value.__class__ is not gast.Name:
                        return True
                    continue
                if root in _PURE_ROOTS or func.attr in _READING_METHODS \
                        or func.attr in _NEW_METHODS:
                    continue
                return True
            if func.__class__ is gast.Name and (func.id in _PURE_BUILTINS or func.id == "slice"):
                continue
            return True
    return False
