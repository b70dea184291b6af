"""A view kept by a compound statement (a loop's item, `x[i]`, appended to a list), then
updated in place, or its tensor updated in place, is checked before the update (NOTE [views
kept by a staged statement] in runtime/staged_aliases.py).

    for v in x:                          for v in x:
        if v.sum() > m:                      if v.sum() > m:
            best = v                             best = v
    best.mul_(2)                  ->     ac.check_kept_view(best, x, 'best', 'x', 'item', 3)
    return best, x                       best.mul_(2)
"""

from __future__ import annotations

import builtins
import copy

import gast

from .. import templates
from ..analysis.annos import copy_origin
from ..analysis.nodes import own_statements as _own_statements, walk
from ..transformer import Converter
from .alias_checks import _tensor_method
from .generators import leaves_generators_alone
from .unbound import UNCHECKED

_BUILTINS = frozenset(dir(builtins))

_COMPOUND = (gast.If, gast.For, gast.While, gast.With, gast.Try, gast.AsyncFor, gast.AsyncWith)
_BLOCKS = ("body", "orelse", "finalbody", "handlers")
# Tensor methods and attributes that give a view of their receiver
_VIEWS = frozenset({
    "view", "view_as", "t", "transpose", "permute", "squeeze", "unsqueeze", "narrow", "select",
    "expand", "expand_as", "diagonal", "unfold", "as_strided", "detach", "movedim", "swapdims",
    "swapaxes", "unflatten", "T", "mT", "H", "mH", "real", "imag", "data"})


def _chain_root(node, basic_only: bool = False):
    """The name a chain of subscripts and view methods starts from (`x[i][0].t()`: `x`), and
    whether the chain has a step; (None, False) where `node` is no such chain. `basic_only`:
    only basic subscripts are steps (a subscript by a tensor, a list or a name ends it)."""
    steps = False
    while True:
        if isinstance(node, gast.Subscript) and (not basic_only or _basic_index(node.slice)):
            node = node.value
        elif isinstance(node, gast.Attribute) and node.attr in _VIEWS:
            node = node.value
        elif (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
              and node.func.attr in _VIEWS):
            node = node.func.value
        else:
            break
        steps = True
    return (node.id, steps) if isinstance(node, gast.Name) else (None, False)


def _view_of(node, targets: dict):
    """The tensor name `node` is a view of in Python: a loop's item (`targets`: item name ->
    the iterated name), a subscript or view method of a name or of an item; else None."""
    if isinstance(node, gast.IfExp):
        return _view_of(node.body, targets) or _view_of(node.orelse, targets)
    if isinstance(node, gast.Name):
        return targets.get(node.id)
    root, steps = _chain_root(node)
    if root is None or not steps:
        return None
    return targets.get(root, root)


def _loop_targets(loop, targets: dict) -> dict:
    """`targets` with the item names of the `for` `loop` over a tensor name (or a view of one,
    `enumerate` of one) mapped to that name."""
    it, target = loop.iter, loop.target
    if (isinstance(it, gast.Call) and isinstance(it.func, gast.Name)
            and it.func.id == "enumerate" and it.args and isinstance(target, gast.Tuple)
            and len(target.elts) == 2):
        it, target = it.args[0], target.elts[1]
    if not isinstance(target, gast.Name):
        return targets
    root = _view_of(it, targets) if not isinstance(it, gast.Name) else targets.get(it.id, it.id)
    if root is None or root == target.id:
        return targets
    return {**targets, target.id: root}


def _kept(statement, targets: dict, out: list, rest=()) -> None:
    """Appends to `out` (kept name, tensor name, kind, line) for the views the statements under
    `statement` bind or append; `rest`: the statements after it in its block."""
    if isinstance(statement, (gast.For, gast.AsyncFor)):
        targets = _loop_targets(statement, targets)
    if isinstance(statement, gast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, gast.Name):
            root = _view_of(statement.value, targets)
            if root is not None and root != target.id:
                kind = "item" if isinstance(statement.value, gast.Name) else "view"
                out.append((target.id, root, kind, statement.lineno))
            elif isinstance(statement.value, (gast.List, gast.ListComp)):
                # (a list a staged statement binds is a buffer of rows under dynamo: its
                # items' own updates, as a grown list's)
                out.append((target.id, None, "compiled grown", statement.lineno))
    elif isinstance(statement, gast.Expr) and isinstance(statement.value, gast.Call):
        call = statement.value
        if (isinstance(call.func, gast.Attribute) and call.func.attr in ("append", "insert")
                and isinstance(call.func.value, gast.Name) and call.args):
            arg, listed = call.args[-1], call.func.value.id
            root = _view_of(arg, targets)
            if root is not None and root != listed:
                out.append((listed, root, "list", statement.lineno))
            elif root is None:  # (its items' own updates: NOTE [views kept by a staged ...])
                if isinstance(arg, gast.Name) and arg.id != listed \
                        and not _rebound_after(arg.id, rest):
                    # (the tensor itself: NOTE [tensors appended, then updated in place])
                    out.append((listed, arg.id, "held list", statement.lineno))
                out.append((listed, None, "compiled grown", statement.lineno))
    for field in _BLOCKS:
        block = getattr(statement, field, None) or ()
        for i, child in enumerate(block):
            if isinstance(child, gast.ExceptHandler):
                for j, s in enumerate(child.body):
                    _kept(s, targets, out, child.body[j + 1:])
            elif isinstance(child, gast.stmt):
                _kept(child, targets, out, block[i + 1:])


def _rebound_after(name: str, rest) -> bool:
    """Whether the statements `rest` rebind `name` before anything could leave their block
    (`x = x * 0.5` after `out.append(x)`: the list no longer holds what `x` is)."""
    for s in rest:
        if isinstance(s, gast.Assign) and any(
                isinstance(t, gast.Name) and t.id == name for t in s.targets):
            return True
        if any(isinstance(n, (gast.Break, gast.Continue, gast.Return, gast.Raise))
               for n in walk(s)):
            return False
    return False


# NOTE [tensors appended, then updated in place]
# `out.append(x)` of a name (not a view: NOTE [views kept by a staged statement]) puts the
# tensor itself in Python's list; a list grown under tensor control flow is a buffer of copies
# (NOTE [lists in while loops]). An in-place update of `x` afterwards (`x /= 2`, `x.mul_(0.5)`)
# reached the item in Python and missed it staged, silently in every mode: in the loop that
# appends (`while ...: out.append(x); x /= 2` gave the trajectory where Python gives every item
# the last value), or after it (`x.add_(1)` reaching `out[-1]`, `out[-1].add_(1)` reaching
# `x`). After the statement, the append is followed as a kept view ("held list"), unless the
# block rebinds the name after it (`out.append(x); x = x * 0.5`, where the list no longer
# holds `x`). Inside a loop, an update of the name in the loop's body that a path from the
# append reaches without a rebinding at the body's top level (later in the trip, or in the
# next one) is checked too (`_appended_then_updated`); where both are under one top-level
# statement, the same rule holds in the innermost block holding both (`_reached_within`: `u_j =
# A[m].clone(); u_j[:, j] = z[j]; P.append(u_j)` under an `if` is no update of an item). Both
# refuse where the list is a grown
# one (`check_kept_view`); a list of a loop run in Python holds the tensor as Python does, and
# a number (`ks.append(k); k += 1` of an int, staged as a 0-d stand-in) rebinds in Python.

# NOTE [a row appended in a staged if, then updated]
# `P.append(u); P[-1][0] = 7.0; w = u * 1` (or `P.append(u); u[0] = 7.0; w = P[-1] * 1`) in
# one branch of a staged `if`: in Python the row is `u`, and each update reaches the other.
# The list grown there is a buffer that holds a copy of `u` (`StagedList.append`), so `w` was
# [1, -2, 3] for Python's [7, -2, 3] in the replay, torch.export and torch.compile (wrong50),
# silently. The rows read and written back (NOTE [staged values that alias in Python]) follow
# the list's items, not the name appended. So an update of the appended name after its append
# in the same branch, or of an item of the list where the name is read afterwards, is checked
# as a held list's (`check_kept_view`): refused where the list is a grown one, at the update's
# line in every mode. A loop's body is checked the same way (`_appended_then_updated`).


def _appended_then_updated(loop, block=None, read=None) -> list:
    """(update statement, list name, tensor name, line of the append) for the in-place updates
    in the body of `loop` of a name the body appends to a list, reached from the append
    without a rebinding (NOTE [tensors appended, then updated in place]). With `block` (a
    block of a staged `if`, `loop` None): the updates after the append in that block only.
    `read`: (name, line) -> whether `name` is read after `line`, for an update through the
    list (`P[-1][0] = 7.0`) that the appended name does not see staged."""
    body = [s for s in (loop.body if block is None else block) if isinstance(s, gast.stmt)]
    appends = []  # (index of the top statement, list name, tensor name, line)
    for i, top in enumerate(body):
        for simple, _ in _simple_statements([top]):
            if isinstance(simple, gast.Expr) and isinstance(simple.value, gast.Call):
                call = simple.value
                if not (isinstance(call.func, gast.Attribute)
                        and call.func.attr in ("append", "insert")
                        and isinstance(call.func.value, gast.Name) and call.args):
                    continue
                # the tensor itself, or a view of it (`out.append(x.detach())`, `x[:]`,
                # `x.view(-1)`: the same memory, which the update reaches in Python too)
                name, kind = _appended_memory(call.args[-1])
                if name is not None and name != call.func.value.id:
                    appends.append((i, call.func.value.id, name, simple, kind))
    if not appends:
        return []
    rebinds = {}
    for i, s in enumerate(body):
        for name in _bound_here(s) if isinstance(s, gast.Assign) else ():
            rebinds.setdefault(name, []).append(i)
    items = _item_names(body)
    found = []
    for u, top in enumerate(body):
        for simple, _ in _simple_statements([top]):
            roots = _updated_root(simple)
            for a, listed, name, append, kind in appends:
                if name not in roots and not (
                        read is not None and _item_updated(simple, listed, items)
                        and read(name, simple)):
                    continue
                if block is not None and u < a:
                    continue  # (an `if` runs its block once)
                between = rebinds.get(name, ())
                reached = (not any(a < r < u for r in between) if u > a else
                           _reached_within(top, append, simple, name) if u == a else
                           not any(r > a or r < u for r in between))
                if reached:
                    found.append((simple, listed, name, append.lineno, kind))
    return found


def _item_names(body) -> dict:
    """{name: list name} for the names `body` binds to an item of a list: `r = P[-1]`, and the
    choice pass's `P_item = ac.getitem(P, chosen)` before `P[-1][0] = v` (NOTE [in-place
    updates of a choice] in choices.py)."""
    found = {}
    for simple, _ in _simple_statements(body):
        if not (isinstance(simple, gast.Assign) and len(simple.targets) == 1
                and isinstance(simple.targets[0], gast.Name)):
            continue
        value = simple.value
        if isinstance(value, gast.Subscript) and isinstance(value.value, gast.Name):
            found[simple.targets[0].id] = value.value.id
        elif (isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute)
              and value.func.attr == "getitem" and value.args
              and isinstance(value.args[0], gast.Name)):
            found[simple.targets[0].id] = value.args[0].id
    return found


def _item_updated(simple, listed: str, items: dict) -> bool:
    """Whether `simple` updates an item of the list `listed` in place (`P[-1][0] = v`,
    `P[-1].add_(1)`, `r[0] = v` after `r = P[-1]`), not only replaces one (`P[-1] = v`)."""
    for n in _updated_chains(simple):
        root = _chain_root(n)[0]
        if root == listed and not (
                isinstance(n, gast.Subscript) and isinstance(n.value, gast.Name)
                and isinstance(simple, gast.Assign) and n in simple.targets):
            return True
        if root is not None and root != listed and items.get(root) == listed:
            return True
    return False


def _reached_within(top, append, update, name: str) -> bool:
    """Whether the update `update` may follow the append `append`, both under the compound
    statement `top`, without a rebinding of `name` between: the same rule as the loop body's,
    in the innermost block holding both (botorch's `compute_local_upper_bounds`: `u_j =
    A[add_z].clone(); u_j[:, j] = z[j]; P.append(u_j)` under `if add_z.any():` in a loop, the
    next trip's update reached only through the rebinding above it)."""
    around = [top]
    to_append, to_update = _path_to(around, append), _path_to(around, update)
    if to_append is None or to_update is None:
        return True
    for (block, i), (other, j) in zip(to_append, to_update):
        if block is not other:  # (two blocks of one statement: an `if`'s two branches)
            return True
        if i != j:
            rebinds = [r for r, s in enumerate(block)
                       if isinstance(s, gast.Assign) and name in _bound_here(s)]
            if j > i:
                return not any(i < r < j for r in rebinds)
            return not any(r > i or r < j for r in rebinds)
    return True


def _path_to(block, target):
    """[(block, index)] from the statements `block` down to the statement `target`, through
    the blocks of the compound statements around it; None where it is not under `block`."""
    for i, statement in enumerate(block):
        if statement is target:
            return [(block, i)]
        if not isinstance(statement, _COMPOUND):
            continue
        for field in _BLOCKS:
            children = getattr(statement, field, None) or ()
            inner = [c.body for c in children if isinstance(c, gast.ExceptHandler)]
            inner += [children] if children and isinstance(children[0], gast.stmt) else []
            for child in inner:
                found = _path_to(child, target)
                if found is not None:
                    return [(block, i)] + found
    return None


def _appended_memory(node):
    """(name, kind) where `node`, an appended value, is the tensor a name holds ("held list")
    or a view of it by view methods and basic subscripts ("list"); (None, None) otherwise. A
    subscript by a tensor, a list or a name (advanced indexing, a copy in Python) is none."""
    if isinstance(node, gast.Name):
        return node.id, "held list"
    root, steps = _chain_root(node, basic_only=True)
    return (root, "list") if steps else (None, None)


def _basic_index(index) -> bool:
    """Whether a subscript's index is certainly basic (a view in Python): integer constants,
    slices of them, `None` and `...`, or a tuple of those."""
    if isinstance(index, gast.Tuple):
        return all(_basic_index(i) for i in index.elts)
    if isinstance(index, gast.Slice):
        return all(part is None or _basic_index(part)
                   for part in (index.lower, index.upper, index.step))
    if isinstance(index, gast.UnaryOp) and isinstance(index.op, gast.USub):
        return _basic_index(index.operand)
    return isinstance(index, gast.Constant) and (
        index.value is None or index.value is Ellipsis or type(index.value) is int)


def _chosen(statement) -> list:
    """(name, tensor name, kind, line) for a view a simple statement binds that only dynamo
    makes a copy of (replay and torch.export follow it by version counters: NOTE [staged values
    that alias in Python]): a choice by a tensor condition (`r = data[0] if c else data[1]`,
    `max(data[0], data[1])`)."""
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], gast.Name):
        return []
    name, value = statement.targets[0].id, statement.value
    if isinstance(value, gast.IfExp):
        roots = {_view_of(value.body, {}), _view_of(value.orelse, {})}
        kind = "compiled view"
    elif (isinstance(value, gast.Call) and isinstance(value.func, gast.Name)
          and value.func.id in ("max", "min") and len(value.args) > 1):
        roots = {_view_of(a, {}) for a in value.args}
        kind = "compiled view"
    elif (isinstance(value, gast.Subscript) and isinstance(value.value, gast.Subscript)
          and not isinstance(value.value.slice, gast.Constant)):
        # (a row read by index, `c = data[k]`, is refreshed by name after an update of its
        # tensor under torch.compile too: NOTE [rows read with a traced index, their tensor
        # updated after] in runtime/choices.py; a part of one, `c = data[k][0]`, is not: a
        # copy under dynamo where `k` is traced, a view of `data` where it is not)
        roots = {_view_of(value, {})}
        kind = "compiled view"
    else:
        return []
    return [(name, root, kind, statement.lineno) for root in roots
            if root is not None and root != name]


def _in_loop(statement, line: int) -> bool:
    """Whether the statement on `line` under `statement` is in a loop there."""
    return any(isinstance(n, (gast.For, gast.While, gast.AsyncFor))
               and any(getattr(m, "lineno", None) == line for m in walk(n.body + n.orelse))
               for n in walk(statement) if isinstance(n, gast.stmt))


def _updated_chains(statement) -> list:
    """The expressions `statement` (a simple statement; a compound one's header) updates in
    place: an augmented assignment's or an item store's target, an in-place method's receiver
    (`x[0].add_(1)`: `x[0]`), `out=` (`out=(m, j)` too)."""
    found = []
    if isinstance(statement, _COMPOUND):  # (its header only)
        statement = _header(statement)
    if isinstance(statement, gast.AugAssign):
        found.append(statement.target)
    if isinstance(statement, gast.Assign):
        found += [t for t in statement.targets if isinstance(t, gast.Subscript)]
    for n in walk(statement):
        if not isinstance(n, gast.Call):
            continue
        func = n.func
        if (isinstance(func, gast.Attribute) and func.attr.endswith("_")
                and not func.attr.startswith("_")):
            found.append(func.value)
        for keyword in n.keywords:
            if keyword.arg == "out":
                found += (keyword.value.elts if isinstance(keyword.value, gast.Tuple)
                          else [keyword.value])
    return found


def _updated_root(statement):
    """The names `statement` (a simple statement) updates in place: an augmented assignment's
    or an item store's target, an in-place method's receiver (`x[0].add_(1)`: `x`), `out=`."""
    roots = {_chain_root(n)[0] for n in _updated_chains(statement)}
    roots.discard(None)
    return roots


# NOTE [parameters a function updates in place]
# A call given a kept view or its tensor (`bump(x)`, `obj.bump(t=best[0])`) updates it where
# the callee updates that parameter in place: an in-place tensor method on a chain of
# subscripts and view methods of it (`t[0].add_(1)`, `t.view(-1).zero_()`), an item or
# augmented assignment of one (`t[0] = v`, `t += 1`), `out=t`, or a call that gives it to a
# function (a global or closure name) which updates its own parameter so. Names bound to such
# a chain (`w = t[0]`, `for w in t`) are the parameter too. The converter reads this from the
# tree it converts, once per function (`parameter_updates`): the parameters updated here, and
# the calls that pass one on (resolved at the call, in the callee's namespace, by
# `_updated_parameters` in runtime/staged_aliases.py, since the function called is only known
# then). autoconv/conversion.py keeps it with the converted code, and reads a function it does
# not convert (a library's, one marked `do_not_convert`) the same way from its source, once; a
# function without source (a C function, exec) updates nothing as far as this can tell.


def parameter_updates(function) -> tuple:
    """(the names of `function`'s parameters it updates in place itself, ((callee name,
    position or keyword, parameter), ...) for the calls of a function by name given a chain of
    a parameter): NOTE [parameters a function updates in place]."""
    arguments = function.args
    params = {a.id for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
              if isinstance(a, gast.Name)}
    nodes = walk(function.body)
    alias = {p: p for p in params}  # name -> the parameter it is (or views)
    # (names and constants, half of the nodes, are none of the statements and calls below)
    nodes = [n for n in nodes if n.__class__ not in _NAMES_AND_CONSTANTS]
    bindings = []
    for n in nodes:
        if isinstance(n, gast.Assign) and len(n.targets) == 1 \
                and isinstance(n.targets[0], gast.Name):
            bindings.append((n.value, n.targets[0].id))
        elif isinstance(n, (gast.For, gast.AsyncFor)) and isinstance(n.target, gast.Name):
            bindings.append((n.iter, n.target.id))
    changed = True
    while changed:
        changed = False
        for value, bound in bindings:
            root, _ = _chain_root(value)
            if root in alias and bound not in alias:
                alias[bound] = alias[root]
                changed = True
    updated, passes = set(), []
    for n in nodes:
        if isinstance(n, gast.stmt) and not isinstance(
                n, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
            updated.update(alias[r] for r in _updated_root(n) if r in alias)
        elif isinstance(n, gast.Call) and isinstance(n.func, gast.Name):
            given = [(i, a) for i, a in enumerate(n.args) if not isinstance(a, gast.Starred)]
            given += [(k.arg, k.value) for k in n.keywords if k.arg is not None]
            for where, value in given:
                root, _ = _chain_root(value)
                if root in alias:
                    passes.append((n.func.id, where, alias[root]))
    return frozenset(updated), tuple(passes)


_NAMES_AND_CONSTANTS = frozenset((gast.Name, gast.Constant))

# Module names whose functions update a tensor in place only through `out=` (a call of one
# is no user function's)
_MODULES = frozenset({"torch", "F", "nn", "functional", "math", "np", "numpy", "random"})

# Methods of Python's lists and dicts that store or read a tensor and never update one (`out.
# extend(xs)`): no check before them, which would only crowd the converted code. (`update`,
# `pop`, `sort` are left out: user classes define methods of those names that do.)
_CONTAINER_METHODS = frozenset({"append", "extend", "insert", "index", "count", "copy",
                                "keys", "values", "items", "get"})


def _calls_given(statement, names: dict, runtime: str) -> list:
    """(call, [(position or keyword, side)]) for the calls in `statement` (a simple statement,
    or a compound one's header) of a function or method that may be the user's, given a
    chain of subscripts and view methods of a name in `names` (its side, "kept" or
    "tensor"): the callee may update it in place (NOTE [views kept by a staged statement])."""
    found = []
    for n in walk(_header(statement) if isinstance(statement, _COMPOUND) else statement):
        if isinstance(n, gast.Call):
            given = _given(n, names, runtime)
            if given:
                found.append((n, given))
    return found


def _given(call, names, runtime: str) -> list:
    """[(position or keyword, side)] of `_calls_given` for one call: [] where the callee is
    no user's function or method, or no argument is a chain of a name in `names`."""
    func = call.func
    root = func
    while isinstance(root, gast.Attribute):
        root = root.value
    if not isinstance(root, gast.Name) or root.id in _MODULES or root.id == runtime or (
            isinstance(func, gast.Name) and func.id in _BUILTINS):
        return []
    if isinstance(func, gast.Attribute) and (
            func.attr.endswith("_") or _tensor_method(func.attr)
            or func.attr in _CONTAINER_METHODS):
        return []  # (a tensor's own method: `_updated_root` reads in-place ones)
    given = []
    for i, arg in enumerate(call.args):
        if isinstance(arg, gast.Starred):
            break
        name, _ = _chain_root(arg)
        if name in names:
            given.append((i, names[name]))
    for keyword in call.keywords:
        name, _ = _chain_root(keyword.value) if keyword.arg else (None, False)
        if name in names:
            given.append((keyword.arg, names[name]))
    return given


class _EveryName(dict):
    """Every name as "kept": the names `_given` asks about, for `may_check`."""

    def __contains__(self, name):
        return name is not None

    def __missing__(self, name):
        return "kept"


_EVERY_NAME = _EveryName()


# NOTE [kept views with nothing updated]
# Every check this pass adds stands before an update that may reach a kept view or its tensor:
# an in-place update (`_updated_chains`: an augmented assignment, an item store, an in-place
# method, `out=`) or a call of a function that may be the user's given a chain of a name
# (`_calls_given`), in the function or a function nested in it. Where the function holds
# neither, nothing the pass finds is ever followed by an update, it adds nothing and changes
# no name, and the pipeline skips it (NOTE [passes with nothing to do] in autoconv/pipeline.py):
# one walk (0.03 ms) instead of the pass's dozen (0.14 ms; 5 of the 9 benchmark functions).
# `may_check` asks the same questions as the two functions, through the same `_given`, with
# every name counted as a kept one: a superset of what the pass checks, never fewer.


def may_check(function, runtime: str) -> bool:
    """Whether KeptViewConverter may add a check to the function `function` (a gast
    FunctionDef, nested functions included): False where it certainly adds none (NOTE [kept
    views with nothing updated])."""
    for n in walk(function):
        cls = n.__class__
        if cls is gast.AugAssign:
            return True
        if cls is gast.Assign:
            if any(t.__class__ is gast.Subscript for t in n.targets):
                return True
        elif cls is gast.Call:
            func = n.func
            if func.__class__ is gast.Attribute and func.attr.endswith("_") \
                    and not func.attr.startswith("_"):
                return True
            if any(k.arg == "out" for k in n.keywords) or _given(n, _EVERY_NAME, runtime):
                return True
    return False


def _simple_statements(statements):
    """The simple statements under `statements`, in order, each with the compound statements
    around it (inside `statements`), outermost first."""
    for s in statements:
        if isinstance(s, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
            continue
        if isinstance(s, _COMPOUND):
            yield s, ()  # (its header: a loop's iterable, an `if`'s test)
            for field in _BLOCKS:
                block = getattr(s, field, None) or ()
                inner = [h for c in block if isinstance(c, gast.ExceptHandler) for h in c.body]
                inner += [c for c in block if isinstance(c, gast.stmt)]
                for simple, around in _simple_statements(inner):
                    yield simple, (s,) + around
        else:
            yield s, ()


def _reads(node, name: str) -> bool:
    return any(isinstance(n, gast.Name) and n.id == name and isinstance(n.ctx, gast.Load)
               for n in walk(node))


def _header(statement):
    """The expressions a compound statement evaluates itself."""
    if isinstance(statement, (gast.If, gast.While)):
        return [statement.test]
    if isinstance(statement, (gast.For, gast.AsyncFor)):
        return [statement.iter]
    if isinstance(statement, (gast.With, gast.AsyncWith)):
        return list(statement.items)
    if isinstance(statement, _COMPOUND):
        return []
    return statement


class _Function:
    """The kept views of one function and the checks before their updates."""

    def __init__(self, function, runtime: str):
        self.function = function
        self.runtime = runtime
        self.outside = {a.id for a in walk(function.args) if isinstance(a, gast.Name)}
        # (one walk of the body for its names and declarations)
        names, bound, declared = [], set(), []
        for n in walk(function.body):
            cls = n.__class__
            if cls is gast.Name:
                names.append(n.id)
                if n.ctx.__class__ is not gast.Load:
                    bound.add(n.id)
            elif cls is gast.Global or cls is gast.Nonlocal:
                declared += n.names
        self.outside |= {name for name in names if name not in bound}
        self.outside.update(declared)
        self.checks = {}  # id(statement) -> [(kept, tensor, kind, line)]

    def run(self) -> None:
        self._block(self.function.body, ())
        for loop in _own_statements(self.function.body):
            if isinstance(loop, (gast.For, gast.While, gast.AsyncFor)):
                found = _appended_then_updated(loop, read=self._read_after)
            elif isinstance(loop, gast.If):
                # NOTE [a row appended in a staged if, then updated]
                found = [f for block in (loop.body, loop.orelse) if block
                         for f in _appended_then_updated(None, block, self._read_after)]
            else:
                continue
            for simple, listed, name, line, kind in found:
                self.checks.setdefault(id(simple), []).append((listed, name, kind, line))

    def _read_after(self, name: str, update) -> bool:
        """Whether the function reads `name` on a line after the statement `update`'s (or
        anywhere in a loop around it, for its next trip)."""
        line = update.lineno
        # (a loop that binds the name again in its body reads the next trip's tensor there)
        loops = [n for n in walk(self.function.body)
                 if isinstance(n, (gast.For, gast.While, gast.AsyncFor))
                 and any(m is update for m in walk(n.body))
                 and not any(isinstance(s, gast.Assign) and name in _bound_here(s)
                             for s in n.body)]
        around = {id(m) for loop in loops for m in walk(loop.body)}
        return any(isinstance(n, gast.Name) and n.id == name
                   and isinstance(n.ctx, gast.Load) and (
                       getattr(n, "lineno", 0) > line or id(n) in around)
                   for n in walk(self.function.body))

    def _block(self, statements, rest) -> None:
        """`rest`: the blocks' statements that run after `statements` (innermost first)."""
        for i, s in enumerate(statements):
            after = (statements[i + 1:],) + rest
            if isinstance(s, (gast.With, gast.AsyncWith, gast.Try)):
                # (not staged: what its blocks keep is followed after their statements)
                for field in _BLOCKS:
                    for child in getattr(s, field, None) or ():
                        body = child.body if isinstance(child, gast.ExceptHandler) else None
                        if body is not None:
                            self._block(body, after)
                    inner = [c for c in getattr(s, field, None) or ()
                             if isinstance(c, gast.stmt)]
                    if inner:
                        self._block(inner, after)
            elif isinstance(s, gast.Assign):
                for fact in _chosen(s):
                    self._follow(fact, after)
            elif isinstance(s, _COMPOUND):
                # (the views kept anywhere in a staged statement are followed after it: an
                # update inside the loop that keeps them is the loop's own, NOTE [views kept
                # by a staged statement])
                kept = []
                _kept(s, {}, kept)
                for fact in kept:
                    if fact[2] not in ("list", "held list") \
                            and not fact[2].startswith("compiled ") \
                            and not _in_loop(s, fact[3]):
                        # (a view an `if` binds is its output's: the version counters follow
                        # it in replay and torch.export, NOTE [staged values that alias in
                        # Python]; dynamo gives none)
                        fact = fact[:2] + ("compiled " + fact[2],) + fact[3:]
                    self._follow(fact, after)

    def _follow(self, fact, after) -> None:
        kept, tensor, kind, line = fact
        names = {kept: "kept", tensor: "tensor"} if tensor is not None else {kept: "kept"}
        sequence = [s for block in after for s in block]
        for k, s in enumerate(sequence):
            if isinstance(s, gast.Assign) and any(
                    isinstance(t, gast.Name) and t.id in (kept, tensor) for t in s.targets):
                return  # (rebound on every path: no longer the view)
            for simple, around in _simple_statements([s]):
                self._aliases(simple, names)
                if kind.endswith(("list", "grown")) and isinstance(simple, gast.Assign) and all(
                        isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name)
                        and t.value.id == kept for t in simple.targets):
                    continue  # (`vals[0] = t` replaces an item: no tensor is updated)
                updated = {names[n] for n in _updated_root(simple) if n in names}
                calls = _calls_given(simple, names, self.runtime)
                if not updated and not calls:
                    continue
                later = self._later(simple, around, sequence[k + 1:])
                reads_kept = kept in self.outside or any(
                    _reads(n, m) for n in later for m, r in names.items() if r == "kept")
                reads_tensor = tensor in self.outside or any(_reads(n, tensor) for n in later)
                if tensor is None:  # (a grown list's item: the list read after)
                    reads_tensor = reads_kept
                shared = {side for side, other_read in (("kept", reads_tensor),
                                                        ("tensor", reads_kept)) if other_read}
                if updated & shared:
                    self.checks.setdefault(id(simple), []).append(fact)
                for call, given in calls:
                    given = [(where, side) for where, side in given if side in shared]
                    if given and tensor is not None:
                        self.checks.setdefault(id(simple), []).append(
                            fact + ((call.func, tuple(w for w, _ in given)),))

    @staticmethod
    def _aliases(simple, names) -> None:
        """A loop's item over a kept list or view, or a name bound to one (`w = vals[0]`), is
        the kept side too."""
        if isinstance(simple, (gast.For, gast.AsyncFor)):
            root = _view_of(simple.iter, {}) if not isinstance(simple.iter, gast.Name) \
                else simple.iter.id
            if root in names and isinstance(simple.target, gast.Name):
                names.setdefault(simple.target.id, names[root])
        elif isinstance(simple, gast.Assign) and len(simple.targets) == 1 \
                and isinstance(simple.targets[0], gast.Name):
            root = _view_of(simple.value, {})
            if root in names:
                names.setdefault(simple.targets[0].id, names[root])

    @staticmethod
    def _later(simple, around, rest) -> list:
        """What runs after `simple`: the statements after it, and all of each loop around it."""
        later = list(rest)
        for compound in around:
            if isinstance(compound, (gast.For, gast.While, gast.AsyncFor)):
                later.append(compound)
        later += [s for compound in around for s in _after_in(compound, simple)]
        return later


def _after_in(compound, simple) -> list:
    """The statements of `compound`'s blocks after the one holding `simple`."""
    out = []
    for field in _BLOCKS:
        block = [c for c in getattr(compound, field, None) or () if isinstance(c, gast.stmt)]
        for i, s in enumerate(block):
            if s is simple or any(n is simple for n in walk(s)):
                out += block[i + 1:]
    return out


# NOTE [a view held in an object, updated in a tensor `if` that reads its tensor]
# `d = {"v": x[1:]}` (a list, an object's field), then a tensor `if` whose branch updates
# `d["v"]` in place and then reads `x`: in Python the read sees the update. Staged, the branch
# carries `d`'s tensor as a copy (written back into the view after the statement) and reads
# `x` as it was before the statement: silently wrong, in every mode (under torch.compile the
# dict's write is torch's "input mutation" error). A branch that reads `x` before the update,
# or not at all, is right (the write-back reaches `x` after the statement). The converter finds
# the branches that update an item or field of a name and afterwards read a name a view of
# which the function puts in that holder (`_views_stored`: a holder filled elsewhere, an
# object's field set in `__init__`, is not followed, nor is every `self.n += 1` checked); before
# the `if`, `ac.held_view_shared(d, path, (x, ...), names)` says (outside any staged body,
# where the memory of both is the caller's) which of those names shares memory with the held
# tensor, and the branch begins with `ac.check_held_view(...)`, which refuses where the `if`
# is staged (placed at the update's line: a staged `if` traces both branches whole). Not
# followed: an `if` inside another staged statement's body, where the held tensor and its
# tensor are that body's copies (a loop refuses its own: NOTE [a view held in an object, its
# tensor read by a loop] in runtime/staging/objects.py).


def _held_chain(node):
    """(name, path) for an item or field of a name reached by a chain (`d["v"]`, `b.v[1:]`,
    `d[0].t()`): path, the steps from the name while they are constant items and fields
    (("item", key) / ("attr", name)); None for another expression."""
    steps = []
    while True:
        if isinstance(node, gast.Subscript):
            steps.append(("item", node.slice.value) if isinstance(node.slice, gast.Constant)
                         else None)
            node = node.value
        elif isinstance(node, gast.Attribute) and node.attr not in _VIEWS:
            steps.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, gast.Attribute):
            steps.append(None)
            node = node.value
        elif (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
              and node.func.attr in _VIEWS):
            steps.append(None)
            node = node.func.value
        else:
            break
    if not isinstance(node, gast.Name) or not steps or steps[-1] is None:
        return None
    path = []
    for step in reversed(steps):
        if step is None:
            break
        path.append(step)
    return node.id, tuple(path)


def _views_stored(statements) -> dict:
    """Holder name -> the names a view of which `statements` put in it (`d = {"v": x[1:]}`,
    `d = [x.t()]`, `d["v"] = x[1:]`, `b.v = x[1:]`, `d.append(x[0])`)."""
    stored = {}

    def views(node):
        values = (node.elts if isinstance(node, (gast.List, gast.Tuple)) else
                  node.values if isinstance(node, gast.Dict) else [node])
        return {root for root, steps in map(_chain_root, values) if steps}

    for s in statements:
        if isinstance(s, gast.Assign):
            for target in s.targets:
                holder = (target.id if isinstance(target, gast.Name)
                          and isinstance(s.value, (gast.List, gast.Tuple, gast.Dict))
                          else (_held_chain(target) or (None,))[0])
                if holder is not None:
                    stored.setdefault(holder, set()).update(views(s.value) - {holder})
        elif isinstance(s, gast.Expr) and isinstance(s.value, gast.Call):
            func = s.value.func
            if isinstance(func, gast.Attribute) and func.attr in ("append", "insert") \
                    and isinstance(func.value, gast.Name) and s.value.args:
                stored.setdefault(func.value.id, set()).update(views(s.value.args[-1]))
    return stored


def _held_updates(branch, bound, stored) -> list:
    """(update statement, held expression, name, path, names read after) for the in-place
    updates in the block `branch` of an item or field of a name in `bound`, followed in the
    block by a read of names in `bound` a view of which the function puts in it (`stored`:
    `_views_stored`; NOTE [a view held in an object, updated in a tensor `if` that reads its
    tensor])."""
    found = []
    for i, top in enumerate(branch):
        for simple, around in _simple_statements([top]):
            for chain in _updated_chains(simple):
                held = _held_chain(chain)
                if held is None or held[0] not in bound or not stored.get(held[0]):
                    continue
                later = _Function._later(simple, around, branch[i + 1:])
                reads = sorted({n.id for n in walk(later) if isinstance(n, gast.Name)
                                and isinstance(n.ctx, gast.Load) and n.id in bound
                                and n.id in stored[held[0]]})
                if reads:
                    found.append((simple, chain, held[0], held[1], reads))
    return found


def _placed(statement, new: list) -> list:
    """`new`, placed at `statement`'s line."""
    for node in new:
        copy_origin(node, statement)
    return new


def _bound_here(statement) -> set:
    """The names a simple statement binds (on every path through it)."""
    if isinstance(statement, gast.Assign):
        return {n.id for t in statement.targets for n in walk(t)
                if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
    if isinstance(statement, (gast.AugAssign, gast.AnnAssign)) \
            and isinstance(statement.target, gast.Name):
        return {statement.target.id}
    return set()


# NOTE [a view of a loop's item given to a call]
# `for row in x: helper(row[:1])` where `helper` updates its parameter in place: replay and
# torch.export see the item's version counter change and write the row back; under
# torch.compile a loop that cannot write its items back (inside another staged statement, or
# over a tensor that requires grad) refuses a call given the item itself whose function updates
# that parameter (NOTE [loop items updated by a call] in runtime/operators.py), but a view of
# the item is a new tensor to dynamo, unmarked, and the update was lost silently. A call in a
# `for` body given a chain of subscripts and view methods of the loop's item is preceded by
# `ac.check_item_view_call(func, positions, keywords, item)`, which refuses it there as the
# item's own.


def _item_view_calls(loop, runtime) -> list:
    """(statement, call, positions, keywords, item name) for the calls in the body of the
    `for` `loop` given a view of its item (not the item itself: `converted_call` reads that)."""
    targets = _loop_targets(loop, {})
    item = next(iter(targets), None) if len(targets) == 1 else None
    if item is None:
        return []
    found = []
    for simple, around in _simple_statements(loop.body):
        if any(isinstance(a, (gast.For, gast.AsyncFor)) and _loop_targets(a, {}).get(item)
               for a in around):
            continue  # (rebound by an inner loop)
        for call, given in _calls_given(simple, {item: "kept"}, runtime):
            views = [w for w, _ in given if not isinstance(
                call.args[w] if isinstance(w, int) else
                next(k.value for k in call.keywords if k.arg == w), gast.Name)]
            if views:
                found.append((simple, call, tuple(w for w in views if isinstance(w, int)),
                              tuple(w for w in views if isinstance(w, str)), item))
    return found


@leaves_generators_alone
class KeptViewConverter(Converter):
    """Adds `ac.check_kept_view(...)` before an in-place update of a view a compound statement
    kept, or of its tensor, where both are read after (NOTE [views kept by a staged
    statement])."""

    statements_only = True

    def visit_FunctionDef(self, node):
        function = _Function(node, self.ctx.runtime)
        function.run()
        self._checks = function.checks
        if self._checks:
            self._before(node, self._checks_before)
        self._item_views(node)
        arguments = node.args
        self._stored = _views_stored(_own_statements(node.body))
        if self._stored:
            self._held(node.body, {a.id for a in (*arguments.posonlyargs, *arguments.args,
                                                   *arguments.kwonlyargs)
                                   if isinstance(a, gast.Name)})
        for s in walk(node.body):  # (nested functions: their own views)
            if isinstance(s, (gast.FunctionDef, gast.AsyncFunctionDef)):
                self.visit_FunctionDef(s)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def _item_views(self, node) -> None:
        """Adds the checks of NOTE [a view of a loop's item given to a call]."""
        checks = {}
        for loop in _own_statements(node.body):
            if isinstance(loop, (gast.For, gast.AsyncFor)):
                for simple, call, positions, keywords, item in _item_view_calls(
                        loop, self.ctx.runtime):
                    checks.setdefault(id(simple), []).extend(_placed(simple, templates.replace(
                        f"ac.check_item_view_call(func, {positions!r}, {keywords!r}, item)",
                        ac=self.ctx.runtime, func=copy.deepcopy(call.func), item=item)))
        if checks:
            self._before(node, lambda statement: checks.get(id(statement), ()))

    def _before(self, node, checks_of) -> None:
        """Puts `checks_of(statement)` before each statement under `node`."""
        for field in _BLOCKS:
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            out = []
            for s in block:
                if isinstance(s, gast.ExceptHandler):
                    self._before(s, checks_of)
                elif isinstance(s, gast.stmt) and not isinstance(
                        s, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                    out.extend(checks_of(s))
                    if isinstance(s, _COMPOUND):
                        self._before(s, checks_of)
                out.append(s)
            block[:] = out

    def _held(self, block, bound) -> None:
        """Adds the checks of NOTE [a view held in an object, updated in a tensor `if` that
        reads its tensor] to the `if` statements under `block`; `bound`: the names bound on
        every path to it."""
        bound = set(bound)
        out = []
        for s in block:
            if isinstance(s, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                out.append(s)
                bound.add(s.name)
                continue
            if isinstance(s, gast.If):
                for branch in (s.body, s.orelse):
                    checks = []
                    for update, chain, holder, path, reads in _held_updates(branch, bound,
                                                                         self._stored):
                        shared = self.ctx.namer.new(holder + "_shared")
                        out.extend(_placed(s, templates.replace(
                            f"shared = ac.held_view_shared(holder, {path!r}, "
                            f"({', '.join(reads)},), {tuple(reads)!r})",
                            ac=self.ctx.runtime, shared=shared, holder=holder)))
                        checks.extend(_placed(update, templates.replace(
                            f"ac.check_held_view(shared, {gast.unparse(chain).strip()!r}, "
                            f"{holder!r})", ac=self.ctx.runtime, shared=shared)))
                    branch[:0] = checks
            for field in _BLOCKS:
                inner = getattr(s, field, None)
                if isinstance(inner, list):
                    for child in inner:
                        if isinstance(child, gast.ExceptHandler):
                            self._held(child.body, bound)
                    if inner and isinstance(inner[0], gast.stmt):
                        self._held(inner, bound)
            out.append(s)
            bound |= _bound_here(s)
        block[:] = out

    def _checks_before(self, statement) -> list:
        # (the staged statement's own first: a `best = x[0]` it may rebind is only dynamo's)
        facts = self._checks.get(id(statement), ())
        return [check for fact in sorted(facts, key=lambda f: f[2].startswith("compiled "))
                for check in self._check(statement, fact)]

    def _check(self, statement, fact) -> list:
        kept, tensor, kind, line = fact[:4]
        if len(fact) > 4:  # (a call given either side: the callee's source decides)
            func, given = fact[4]
            positions = tuple(w for w in given if isinstance(w, int))
            keywords = tuple(w for w in given if isinstance(w, str))
            check = templates.replace(
                f"ac.check_kept_view_call(func, {positions!r}, {keywords!r}, kept, tensor, "
                f"{kept!r}, {tensor!r}, {kind!r}, {line})", ac=self.ctx.runtime,
                func=copy.deepcopy(func), kept=kept, tensor=tensor)
            return _unchecked_reads(check, statement, 3, 4)
        check = templates.replace(
            f"ac.check_kept_view(kept, {'tensor' if tensor else 'None'}, {kept!r}, {tensor!r}, "
            f"{kind!r}, {line})", ac=self.ctx.runtime, kept=kept, tensor=tensor or "None")
        return _unchecked_reads(check, statement, 0, 1)


# NOTE [kept-view checks read names that may be unbound]
# A check reads the kept name and its tensor's wherever the update is, and the path there may
# not have bound them: `if return_all: allvecs = [x]` ... `allvecs.append(x)` under the same
# flag, then a call given `x` (torchmin's newton.py, `OptimizeResult(x=x.view_as(x0), ...)`).
# Checked like the user's reads (`ac.ld`), the check raised UnboundLocalError where Python,
# whose own reads are all under the flag, returns: at the trace for a flag false in Python, a
# graph assertion failing every run inside a staged body. A name unbound on this path holds no
# view, so the check reads it as it is: the Undefined placeholder, which no check refuses.
def _unchecked_reads(check, statement, *positions) -> list:
    """`check` (one statement calling a kept-view check) at `statement`'s place, its
    arguments at `positions` read without the check of a bound flag."""
    for new in check:
        copy_origin(new, statement)
        for position in positions:
            argument = new.value.args[position]
            if isinstance(argument, gast.Name):
                setattr(argument, UNCHECKED, True)
    return check
