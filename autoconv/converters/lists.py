"""Appending to a list becomes an assignment, so loops and branches see the list as their state.

    vals.append(y)      ->  vals = ac.list_append(vals, y)
    vals.extend(ys)     ->  vals = ac.list_extend(vals, ys)
    d[k].append(y)      ->  d = ac.held_list_append(d, k, 'append', y)   (k a name or constant)
    d.setdefault(k, []).append(y)  ->  d = ac.held_setdefault(d, k)
                                       d = ac.held_list_append(d, k, 'append', y)

On Python values this is the same in-place append (the same list object comes back). A staged
statement that grows a list then has it in its state, where the runtime can carry it: as a
buffer and a count (`runtime/lists.py`), whose append returns the new list, or, in a loop of
known length that cannot stop early, as a Python list in an unrolled loop.

A `while` loop that grows a list gets the bounds on its trips its test gives, if any
(Anno.TRIP_BOUND, `analysis/trips.py`): read here, before `continue` is lowered.
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis import trips
from ..analysis.activity import bound_names
from ..analysis.annos import Anno, set_anno
from ..transformer import Converter
from .generators import leaves_generators_alone

_METHODS = {"append": "list_append", "extend": "list_extend"}


@leaves_generators_alone
class ListConverter(Converter):
    """Rewrites `name.append(x)` / `name.extend(xs)` statements."""

    statements_only = True
    appends = 0
    # The names local to each nested function being visited (the converted function's own:
    # ctx.local_names), innermost last
    scopes = ()

    def visit_FunctionDef(self, node):
        if node is self.ctx_root():
            return self.generic_visit(node)
        outer = self.scopes
        self.scopes = outer + (bound_names(node),)
        try:
            return self.generic_visit(node)
        finally:
            self.scopes = outer

    def ctx_root(self):
        return getattr(self, "_root", None)

    def visit(self, node):
        if getattr(self, "_root", None) is None:
            self._root = node
        return super().visit(node)

    def visit_While(self, node):
        before = self.appends
        self.generic_visit(node)
        if self.appends > before:
            builtin_len = "len" not in self.ctx.local_names and "len" not in self.ctx.globals
            bounds = trips.trip_bounds(node, builtin_len)
            if bounds:
                set_anno(node, Anno.TRIP_BOUND, bounds)
        return node

    def visit_Expr(self, node):
        call = node.value
        defaulted = _defaulted_list_append(call, self.ctx.local_names)
        if defaulted is not None and not self.scopes:
            # `hist.setdefault("loss", []).append(v)`: the key set first (the dict's own
            # setdefault, rebinding the name to it), then the append as `hist["loss"].append(v)`
            # is: a staged loop then carries the dict, and a first trip that gives it the key
            # is peeled (NOTE [a dict the first trip gives keys] in runtime/staged_dicts.py)
            self.appends += 1
            container, key = defaulted.func.value.id, defaulted.args[0]
            return templates.replace(
                "container = ac.held_setdefault(container, key)\n"
                f"container = ac.held_list_append(container, key, '{call.func.attr}', value)",
                container=container, key=key, ac=self.ctx.runtime, value=call.args[0])
        held = _held_list_append(call, self.ctx.local_names)
        if held is not None and not self.scopes:
            # `state["hist"].append(v)`: a list a dict (or list) of the function's holds, at a
            # constant or a name's key, is rebound there too where it grew into a new list
            # (ac.held_list_append), so that a staged statement that grows it gives the dict
            # the grown list (runtime/staging/dict_lists.py); the container is rebound to the
            # same object, which makes it a variable of the statements around the append
            self.appends += 1
            return templates.replace(
                f"container = ac.held_list_append(container, key, '{call.func.attr}', value)",
                container=held.value.id, key=held.slice, ac=self.ctx.runtime,
                value=call.args[0])
        if not (
            isinstance(call, gast.Call)
            and isinstance(call.func, gast.Attribute)
            and call.func.attr in _METHODS
            and isinstance(call.func.value, gast.Name)
            and len(call.args) == 1
            and not call.keywords
            # Only the function's own lists: assigning a global or closure variable would make
            # it local (a nested helper's `vals.append(v)` of its enclosing function's list
            # raised UnboundLocalError, tester t11 repro 12).
            and call.func.value.id in self.ctx.local_names
        ):
            return node
        target = call.func.value.id
        if self.scopes and target not in self.scopes[-1]:
            # a nested function's append to its enclosing function's list: refused under a
            # tensor condition (runtime enclosing_list_append)
            return templates.replace(
                f"ac.enclosing_list_append(target, '{call.func.attr}', value, '{target}')",
                target=target, ac=self.ctx.runtime, value=call.args[0])
        self.appends += 1
        return templates.replace(
            f"target = ac.{_METHODS[call.func.attr]}(target, value)",
            target=target, ac=self.ctx.runtime, value=call.args[0],
        )


def _held_list_append(call, local_names):
    """The target `d[k]` of a statement `d[k].append(x)` (or extend) where `d` is a local name
    and `k` a constant or a name, else None. (The store back is the runtime's, where `d` takes
    one: `t[i].append(x)` of a tuple `t` appends in place, as Python does.)"""
    if not (isinstance(call, gast.Call) and isinstance(call.func, gast.Attribute)
            and call.func.attr in _METHODS and len(call.args) == 1 and not call.keywords):
        return None
    target = call.func.value
    if not (isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name)
            and target.value.id in local_names
            and isinstance(target.slice, (gast.Name, gast.Constant))):
        return None
    return target


def _defaulted_list_append(call, local_names):
    """The call `d.setdefault(k, [])` of a statement `d.setdefault(k, []).append(x)` (or
    extend) where `d` is a local name and `k` a constant or a name, else None."""
    if not (isinstance(call, gast.Call) and isinstance(call.func, gast.Attribute)
            and call.func.attr in _METHODS and len(call.args) == 1 and not call.keywords):
        return None
    inner = call.func.value
    if not (isinstance(inner, gast.Call) and isinstance(inner.func, gast.Attribute)
            and inner.func.attr == "setdefault" and isinstance(inner.func.value, gast.Name)
            and inner.func.value.id in local_names and len(inner.args) == 2
            and not inner.keywords and isinstance(inner.args[0], (gast.Name, gast.Constant))
            and isinstance(inner.args[1], gast.List) and not inner.args[1].elts):
        return None
    return inner
