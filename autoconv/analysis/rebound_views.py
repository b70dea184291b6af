"""The names a loop body never gives its trip-start value after an in-place update (NOTE [a
view rebound after every update]).

NOTE [a view rebound after every update]
`u = t[1:]` before a staged loop whose body updates `t` in place and rebinds `u`: the runtime
refuses the loop unless each body binds `u` before any read in its straight-line code (NOTE
[views carried as state slots] in runtime/operators.py), since a state slot loses the view's
relation to `t`. That reading of the bytecode stops at the first jump or nested statement, and
a `break` or `continue` before the update puts the rest of the trip in a nested `if`, which
the body gives `u`: refused (optim47), though no path sees the old view after an update. Here
the body's statements (as the loop converter gets them: jumps already lowered to flags and
`if not did_break:`) are walked along every path, with two facts per path: whether `u` may
still hold its value from the start of the trip, and whether anything was updated in place in
the trip. A name is safe where no path reads `u`, or ends the trip, while both hold. Then at
the start of each trip `u` holds the view from before the loop only where no earlier trip
updated anything, so its staged copy has Python's values; on every other path it holds a
value the trip made. (`t.add_(1); if i > 2: break; u = ...` ends a trip with both: refused.)
Anything but an assignment, an expression and an `if` that mentions the name, or a call the
walk cannot tell updates nothing, counts against it: the runtime's bytecode check decides
then, as before.
"""

from __future__ import annotations

import re

import gast

from .nodes import walk

__all__ = ["never_stale", "StatementFacts"]

_IN_PLACE = re.compile(r"^[a-z][a-z0-9_]*[a-z0-9]_$")
# (calls that update nothing of the caller's: torch's functions but for `out=` and `*_`,
# Python's builtins that only read)
_PURE_ROOTS = frozenset({"torch", "math", "F"})
_PURE_BUILTINS = frozenset({"len", "range", "float", "int", "bool", "abs", "min", "max",
                            "isinstance", "tuple", "list", "enumerate", "zip"})
# (tensor methods that only read; another method may be a user object's that updates)
_READING_METHODS = frozenset({
    "sum", "mean", "clone", "detach", "item", "abs", "max", "min", "size", "dim", "view",
    "reshape", "t", "float", "long", "int", "double", "numel", "norm", "exp", "log", "sqrt",
    "pow", "matmul", "mm", "unsqueeze", "squeeze", "expand", "contiguous", "any", "all",
    "argmax", "argmin", "tolist", "prod", "flatten", "transpose", "permute"})
# (the runtime's operators the jump and logical lowerings and the alias checks write)
_READING_OPERATORS = frozenset({"not_", "and_", "or_", "check_aliases", "if_exp", "binary",
                                "compare", "negative", "positive", "invert", "ld",
                                "Undefined", "range_", "len_"})
_START = (True, False)  # (may hold the trip-start value, updated in place in the trip)
_STALE = (True, True)


def never_stale(body, names, runtime) -> set:
    """The names among `names` whose trip-start value no path of `body` reads, or leaves
    for the next trip, after an in-place update in the trip; none where `body` updates
    nothing in place as written (the runtime then checks nothing)."""
    if not any(_updates_as_written(n, runtime) for n in walk(list(body))):
        return set()
    safe = set()
    facts = StatementFacts(_updates)
    for name in names:
        ends = _walk(body, name, {_START}, runtime, facts)
        if ends is not None and _STALE not in ends:
            safe.add(name)
    return safe


def _walk(statements, name, paths, runtime, facts):
    """The (may hold, updated) facts of the paths after `statements`, or None where one
    reads the name stale or the walk cannot follow a statement. `facts`: a `StatementFacts`
    of `_updates`."""
    for statement in statements:
        cls = statement.__class__
        if cls is gast.If:
            if facts.reads(statement.test, name) and _STALE in paths:
                return None
            if facts.updates(statement.test, runtime):
                paths = {(held, True) for held, _ in paths}
            taken = _walk(statement.body, name, paths, runtime, facts)
            other = _walk(statement.orelse, name, paths, runtime, facts)
            if taken is None or other is None:
                return None
            paths = taken | other
        elif cls in (gast.Assign, gast.Expr, gast.AugAssign, gast.AnnAssign, gast.Pass):
            if facts.reads(statement, name) and _STALE in paths:
                return None
            updated = facts.updates(statement, runtime)
            binds = _binds(statement, name)
            paths = {(held and not binds, dirty or updated) for held, dirty in paths}
        elif facts.mentions(statement, name) or facts.updates(statement, runtime):
            return None
    return paths


# NOTE [one walk of a statement per question]
# `never_stale` and `views_read_first.read_first` follow the paths of a body once per name
# they are asked about, and each step asked the statement whether it reads or mentions the
# name and whether it updates in place: a walk of the statement each, again for every name.
# A `StatementFacts`, one per question, walks each statement once
# for the names it reads and mentions and asks its update question once per arguments, the
# answers the same as the per-name walks': the tree is not changed while a question is asked,
# so a node's id() stands for it.

class StatementFacts:
    """The names the nodes asked about read and mention, and the answers of `updates`
    (called as `updates(node, *args)`), each found once per node (and arguments)."""

    __slots__ = ("_names", "_updated", "_updates")

    def __init__(self, updates):
        self._names, self._updated, self._updates = {}, {}, updates

    def _names_of(self, node) -> tuple:
        found = self._names.get(id(node))
        if found is None:
            reads, mentions = set(), set()
            for n in walk(node):
                if n.__class__ is gast.Name:
                    mentions.add(n.id)
                    if n.ctx.__class__ is not gast.Store or _augmented(node, n):
                        reads.add(n.id)
            found = self._names[id(node)] = (reads, mentions)
        return found

    def reads(self, node, name) -> bool:
        """Whether `node` reads `name`: loads it, or updates it (`name += 1`)."""
        return name in self._names_of(node)[0]

    def mentions(self, node, name) -> bool:
        """Whether a `Name` of `name` is under `node`, in any context."""
        return name in self._names_of(node)[1]

    def updates(self, node, *args) -> bool:
        key = (id(node), *args)
        answer = self._updated.get(key)
        if answer is None:
            answer = self._updated[key] = self._updates(node, *args)
        return answer


def _updates_as_written(n, runtime) -> bool:
    """Whether the node `n` itself is an in-place update the converter sees (`t += 1`, `t[0] =
    v`, `t.add_(1)`, `out=t`)."""
    cls = n.__class__
    if cls is gast.AugAssign:
        return True
    if cls is gast.Assign:
        return any(t.__class__ is not gast.Name for t in n.targets)
    if cls is gast.Call:
        func = n.func
        if any(k.arg == "out" for k in n.keywords):
            return True
        return (func.__class__ is gast.Attribute and _IN_PLACE.match(func.attr) is not None
                and not (func.value.__class__ is gast.Name and func.value.id == runtime))
    return False


def _augmented(node, target) -> bool:
    return node.__class__ is gast.AugAssign and node.target is target


def _binds(statement, name) -> bool:
    """Whether `statement` binds `name` itself (`u = ...`, `u, v = ...`), not an item."""
    cls = statement.__class__
    if cls is gast.Assign:
        targets = statement.targets
    elif cls is gast.AnnAssign and statement.value is not None:
        targets = [statement.target]
    else:
        return False
    stack = list(targets)
    while stack:
        target = stack.pop()
        if target.__class__ is gast.Name and target.id == name:
            return True
        if target.__class__ in (gast.Tuple, gast.List):
            stack.extend(target.elts)
    return False


def _updates(node, runtime) -> bool:
    """Whether `node` may update a tensor in place: an augmented or item assignment, an
    in-place method, `out=`, or a call the walk does not know updates nothing."""
    for n in walk(node):
        cls = n.__class__
        if cls is gast.AugAssign or (cls is gast.Assign and any(
                t.__class__ is not gast.Name for t in n.targets)):
            return True
        if cls is gast.Call:
            if any(k.arg == "out" for k in n.keywords):
                return True
            func = n.func
            if func.__class__ is gast.Attribute:
                root = func.value
                while root.__class__ is gast.Attribute:
                    root = root.value
                if root.__class__ is gast.Name and root.id == runtime:
                    if func.attr in _READING_OPERATORS:
                        continue  # (a converted call, an item's write may update)
                    return True
                if _IN_PLACE.match(func.attr):
                    return True
                if root.__class__ is gast.Name and root.id in _PURE_ROOTS:
                    continue
                if func.attr in _READING_METHODS:
                    continue
                return True
            if func.__class__ is gast.Name and func.id in _PURE_BUILTINS:
                continue
            return True
    return False
