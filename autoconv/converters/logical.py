"""`and`, `or`, `not`, conditional expressions and chained comparisons become runtime calls.

    a and b        ->  ac.and_(a, lambda: b)          (b is only evaluated when Python would)
    a or b         ->  ac.or_(a, lambda: b)
    not a          ->  ac.not_(a)
    a if c else b  ->  ac.if_exp(c, lambda: a, lambda: b)
    a < b < c      ->  ac.and_(a < b, lambda: b < c)  (b evaluated once, via a temporary if needed)
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.annos import Anno, get_anno, set_anno
from ..transformer import Converter


def _thunk(body):
    return gast.Lambda(
        args=gast.arguments(args=[], posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                            kwarg=None, defaults=[]),
        body=body,
    )


class LogicalConverter(Converter):
    """Rewrites boolean operators and conditional expressions into lazily evaluated calls."""

    def _call(self, op, *args):
        return gast.Call(
            func=gast.Attribute(value=templates.name(self.ctx.runtime), attr=op, ctx=gast.Load()),
            args=list(args), keywords=[],
        )

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        op = "and_" if isinstance(node.op, gast.And) else "or_"
        result = node.values[-1]
        for value in reversed(node.values[:-1]):
            result = self._call(op, value, _thunk(result))
        return result

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, gast.Not):
            return self._call("not_", node.operand)
        return node

    def visit_IfExp(self, node):
        self.generic_visit(node)
        return self._call("if_exp", node.test, _thunk(node.body), _thunk(node.orelse))

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1:
            return node
        operands = [node.left] + list(node.comparators)
        # Middle operands are evaluated once in Python; name the non-trivial ones.
        parts = []
        for i, (op, right) in enumerate(zip(node.ops, operands[1:])):
            left = operands[i]
            if i < len(node.ops) - 1 and not isinstance(right, (gast.Name, gast.Constant)):
                temp = self.ctx.namer.new("compared")
                operands[i + 1] = templates.name(temp)
                right = gast.NamedExpr(target=templates.name(temp, gast.Store()), value=right)
            parts.append(gast.Compare(left=left, ops=[op], comparators=[right]))
        result = parts[-1]
        for part in reversed(parts[:-1]):
            result = self._call("and_", part, _thunk(result))
        return result

    def visit_For(self, node):
        extra = get_anno(node, Anno.EXTRA_TEST)
        if extra is not None:
            set_anno(node, Anno.EXTRA_TEST, self.visit(extra))
        self.generic_visit(node)
        return node
