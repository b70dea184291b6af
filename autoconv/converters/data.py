"""Reads and writes of a tensor's `.data` in converted code go through the runtime.

    w.data       ->  ac.data_(w)
    w.data -= v  ->  ac.data_update_(w, ac.aug_assign(ac.data_(w), '-=', v))
    w.data = ac.setitem(w.data, i, v)  ->  ac.data_update_(w, ac.setitem(ac.data_(w), i, v))
    w.data = v   ->  ac.set_data_(w, v)

In staged bodies `w.data -= v` and `w.data[i] = v` reach this pass as assignments of
`ac.aug_assign(w.data, ...)` and `ac.setitem(w.data, ...)` (the augmented and subscript passes).
Under a tracer `.data` is `w.detach()`, which the tracers follow, and a store that only puts back
what was updated in place does nothing, as in Python; binding `.data` to another tensor is
refused there (NOTE [writes through .data] in converters/control_flow.py).
"""

from __future__ import annotations

import copy

import gast

from .. import templates
from ..transformer import Converter
from .subscripts import AUGMENTED_OPERATORS, _rereadable

# the runtime's operators whose result is their first argument, updated in place (a tensor's)
_UPDATES = frozenset(("aug_assign", "setitem"))


class DataConverter(Converter):
    """`x.data` -> `ac.data_(x)`; `x.data = v` -> `ac.set_data_(x, v)` (or `ac.data_update_`
    where `v` is `x.data` updated in place). Run after the control-flow conversion, whose
    analysis reads `w.data.mul_(...)` and `w.data -= v` as updates of `w`."""

    def visit_Assign(self, node):
        target = node.targets[0] if len(node.targets) == 1 else None
        if not (isinstance(target, gast.Attribute) and target.attr == "data"):
            return self.generic_visit(node)
        owner, value = target.value, node.value
        operator = self._runtime_call(value)
        if operator in _UPDATES and value.args and _same(value.args[0], target):
            name = "data_update_"
        else:
            name = "set_data_"
        node.value = self.visit(value)
        owner = self.visit(owner)
        call = gast.Call(func=self._runtime(name), args=[owner, node.value], keywords=[])
        return gast.copy_location(gast.Expr(value=call), node)

    def visit_AugAssign(self, node):
        # (outside control flow the augmented pass leaves `w.data -= v` as it is)
        target = node.target
        if not (isinstance(target, gast.Attribute) and target.attr == "data"
                and _rereadable(target.value)):  # (`f().data -= v`: left as it is)
            return self.generic_visit(node)
        owner, value = self.visit(target.value), self.visit(node.value)
        update = gast.Call(
            func=self._runtime("aug_assign"),
            args=[gast.Call(func=self._runtime("data_"), args=[owner], keywords=[]),
                  gast.Constant(value=AUGMENTED_OPERATORS[type(node.op)], kind=None), value],
            keywords=[])
        call = gast.Call(func=self._runtime("data_update_"),
                         args=[_copy(owner), update], keywords=[])
        return gast.copy_location(gast.Expr(value=call), node)

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr != "data" or not isinstance(node.ctx, gast.Load):
            return node
        return gast.copy_location(
            gast.Call(func=self._runtime("data_"), args=[node.value], keywords=[]), node)

    def _runtime(self, name):
        return gast.Attribute(value=templates.name(self.ctx.runtime), attr=name,
                              ctx=gast.Load())

    def _runtime_call(self, value):
        if (isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute)
                and isinstance(value.func.value, gast.Name)
                and value.func.value.id == self.ctx.runtime):
            return value.func.attr
        return None


def _copy(node):
    """A copy of the expression `node`, to read it a second time."""
    return copy.deepcopy(node)


def _same(read, target) -> bool:
    """Whether the read `read` is the place `target` stores to (`w.data` of `w.data = ...`)."""
    return _shape(read) == _shape(target)


def _shape(node):
    """`node`'s fields, recursively, without its load / store context or position."""
    if isinstance(node, gast.AST):
        return (type(node).__name__, *(_shape(getattr(node, f, None)) for f in node._fields
                                        if f not in ("ctx", "type_comment")))
    if isinstance(node, list):
        return tuple(_shape(n) for n in node)
    return node
