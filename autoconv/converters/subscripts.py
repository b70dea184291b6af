"""Subscripts with computed indices go through the runtime, so traced integer indices work.

    x[i]        ->  ac.getitem(x, i)
    x[:, i]     ->  ac.getitem(x, (slice(None, None, None), i))
    x[i] = v    ->  x = ac.setitem(x, i, v)   (x local: the update becomes visible state)
    s.d[i] = v  ->  s.d = ac.setitem(s.d, i, v)   (the object `s` changes: see liveness)
    x[:n]       ->  ac.getitem(x, ac.slice_(None, n, None))
    x[i] += v   ->  x = ac.setitem(x, i, ac.aug_assign(ac.getitem(x, i), '+=', v))
    d[f(v)] += 1  ->  subscript_key = f(v); d = ac.setitem(d, subscript_key, ...)  (as above)
    x[0], x[1:], d['k']   stay as they are (constant indices)
    k in d      ->  ac.in_(k, d)   (a dict or set asked for a traced value is refused)
    k not in d  ->  not ac.in_(k, d)
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.activity import bound_names
from ..analysis.nodes import copy_tree
from ..transformer import Converter
from .generators import leaves_generators_alone


# The `op=` of each augmented assignment, as runtime/augmented.py's `aug_assign` takes it.
AUGMENTED_OPERATORS = {
    gast.Add: "+=", gast.Sub: "-=", gast.Mult: "*=", gast.Div: "/=", gast.FloorDiv: "//=",
    gast.Mod: "%=", gast.Pow: "**=", gast.LShift: "<<=", gast.RShift: ">>=", gast.BitAnd: "&=",
    gast.BitOr: "|=", gast.BitXor: "^=", gast.MatMult: "@="}


def _is_constant(node) -> bool:
    if isinstance(node, gast.Constant):
        return True
    if isinstance(node, gast.UnaryOp) and isinstance(node.operand, gast.Constant):
        return True
    return False


def _computed(key) -> bool:
    """True if the index has a part that is not constant: an index, or a slice bound (a traced
    bound slices a Python list into a list whose length is only known when the graph runs)."""
    parts = key.elts if isinstance(key, gast.Tuple) else [key]
    return any(
        any(b is not None and not _is_constant(b) for b in (p.lower, p.upper, p.step))
        if isinstance(p, gast.Slice) else not _is_constant(p)
        for p in parts)


def _rereadable(node) -> bool:
    """Whether evaluating `node` twice reads the same place: names, constants, attributes,
    items and arithmetic of them, and tuples and slices of those (no call runs twice)."""
    if isinstance(node, (gast.Name, gast.Constant)) or _is_constant(node):
        return True
    if isinstance(node, gast.Attribute):
        return _rereadable(node.value)
    if isinstance(node, gast.Subscript):  # `bufs[0][i] += 1`
        return _rereadable(node.value) and _rereadable(node.slice)
    if isinstance(node, gast.BinOp):  # `y[i + 1] -= 1`, `y[n - 1 - i] += v`
        return _rereadable(node.left) and _rereadable(node.right)
    if isinstance(node, gast.UnaryOp):
        return _rereadable(node.operand)
    if isinstance(node, gast.Tuple):
        return all(_rereadable(e) for e in node.elts)
    if isinstance(node, gast.Slice):
        return all(b is None or _rereadable(b) for b in (node.lower, node.upper, node.step))
    return False


def _as_expression(key, runtime):
    if isinstance(key, gast.Slice):
        bounds = [b if b is not None else gast.Constant(value=None, kind=None)
                  for b in (key.lower, key.upper, key.step)]
        if all(b is None or _is_constant(b) for b in (key.lower, key.upper, key.step)):
            return gast.Call(func=templates.name("slice"), args=bounds, keywords=[])
        # A computed bound may be a traced tensor: ac.slice_ keeps it one (see TracedSlice).
        func = gast.Attribute(value=templates.name(runtime), attr="slice_", ctx=gast.Load())
        return gast.Call(func=func, args=bounds, keywords=[])
    if isinstance(key, gast.Tuple):
        return gast.Tuple(elts=[_as_expression(e, runtime) for e in key.elts], ctx=gast.Load())
    return key


@leaves_generators_alone
class SubscriptConverter(Converter):
    """Rewrites loads and single-target assignments through computed subscripts."""

    # The names each nested function being visited binds itself, innermost last: a name it
    # only reads is its enclosing function's (a closure cell), which `x = ac.setitem(x, ...)`
    # would make its own, unbound at the read (tester31 s01: union-find's nested `find`
    # setting `parent[x]`). Outside them, the converted function's own (ctx.local_names).
    scopes = ()
    _root = None

    def _runtime(self, op):
        return gast.Attribute(value=templates.name(self.ctx.runtime), attr=op, ctx=gast.Load())

    def visit_FunctionDef(self, node):
        if self._root is None:
            self._root = node
            return self.generic_visit(node)
        outer = self.scopes
        self.scopes = outer + (bound_names(node),)
        try:
            return self.generic_visit(node)
        finally:
            self.scopes = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def _binds(self, name: str) -> bool:
        """Whether the function being visited binds `name` itself."""
        return name in (self.scopes[-1] if self.scopes else self.ctx.local_names)

    def visit_Subscript(self, node):
        self.generic_visit(node)
        if not isinstance(node.ctx, gast.Load) or not _computed(node.slice):
            return node
        return gast.Call(func=self._runtime("getitem"),
                         args=[node.value, _as_expression(node.slice, self.ctx.runtime)], keywords=[])

    def visit_Compare(self, node):
        """`k in d` / `k not in d` (one operator): `ac.in_(k, d)` / `not ac.in_(k, d)`, which
        refuses a dict or set asked for a traced value at the line."""
        self.generic_visit(node)
        if len(node.ops) != 1 or not isinstance(node.ops[0], (gast.In, gast.NotIn)):
            return node
        call = gast.Call(func=self._runtime("in_"), args=[node.left, node.comparators[0]],
                         keywords=[])
        if isinstance(node.ops[0], gast.NotIn):
            return gast.UnaryOp(op=gast.Not(), operand=call)
        return call

    def visit_Assign(self, node):
        target = node.targets[0]
        if len(node.targets) == 1 and isinstance(target, gast.Subscript) and _computed(target.slice):
            value = self.visit(node.value)
            target.value = self.visit(target.value)
            key = _as_expression(self.visit(target.slice), self.ctx.runtime)
            call = gast.Call(func=self._runtime("setitem"), args=[target.value, key, value],
                             keywords=[])
            if isinstance(target.value, gast.Name) and self._binds(target.value.id):
                # Assigning the result makes the updated tensor state of enclosing staged
                # loops and branches, which torch requires instead of mutation by closure.
                return gast.Assign(targets=[templates.name(target.value.id, gast.Store())],
                                   value=call, type_comment=None)
            if isinstance(target.value, gast.Attribute):
                # `s.d = ac.setitem(s.d, k, v)`: the object `s` changes, as the analysis sees.
                store = copy_tree(target.value)
                store.ctx = gast.Store()
                return gast.Assign(targets=[store], value=call, type_comment=None)
            return gast.Expr(value=call)
        self.generic_visit(node)
        return node

    def visit_AugAssign(self, node):
        # `x[i] += v` is `x[i] = x[i].__iadd__(v)`: with a traced `i` the read and the write go
        # through the runtime as a plain `x[i] = ...` would (the read is then a copy, updated
        # and written back). Only where reading the target twice reads one place.
        target = node.target
        if (isinstance(target, gast.Subscript) and _computed(target.slice)
                and _rereadable(target.value) and not _rereadable(target.slice)
                and not any(isinstance(p, gast.Slice) for p in gast.walk(target.slice))):
            # `counts[int(v)] += 1`: the key is computed once, into a variable, as Python
            # evaluates it once; the read and the write then go through the runtime, which
            # refuses a dict key that is a traced value at the user's line
            key = self.ctx.namer.new("subscript_key")
            self.ctx.local_names.add(key)  # (later passes pass locals to their lambdas)
            bind = gast.Assign(targets=[templates.name(key, gast.Store())],
                               value=self.visit(target.slice), type_comment=None)
            target.slice = templates.name(key)
            gast.copy_location(bind, node)
            return [bind, self.visit_AugAssign(node)]
        if not (isinstance(target, gast.Subscript) and _computed(target.slice)
                and _rereadable(target.value) and _rereadable(target.slice)):
            self.generic_visit(node)
            return node
        read = copy_tree(target)
        read.ctx = gast.Load()
        value = gast.Call(
            func=self._runtime("aug_assign"),
            args=[read, gast.Constant(value=AUGMENTED_OPERATORS[type(node.op)], kind=None),
                  node.value], keywords=[])
        return self.visit_Assign(gast.Assign(targets=[target], value=value, type_comment=None))
