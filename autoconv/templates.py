"""Generated code written as Python source with placeholders, filled with gast nodes."""

from __future__ import annotations

import copy
import textwrap

import gast

__all__ = ["replace", "name", "names_tuple", "strings_tuple"]


class _Fill(gast.NodeTransformer):
    def __init__(self, subs):
        self.subs = subs

    def _value(self, key, ctx):
        value = self.subs[key]
        if value is None:
            return gast.Constant(value=None, kind=None)
        if isinstance(value, str):
            return gast.Name(id=value, ctx=ctx, annotation=None, type_comment=None)
        value = copy.deepcopy(value)
        if isinstance(value, (gast.Name, gast.Tuple, gast.List, gast.Attribute, gast.Subscript,
                              gast.Starred)):
            _set_ctx(value, ctx)
        return value

    def visit_Name(self, node):
        if node.id in self.subs:
            return self._value(node.id, node.ctx)
        return node

    def visit_FunctionDef(self, node):
        if node.name in self.subs:
            node.name = self.subs[node.name]
        self.generic_visit(node)
        node.body = _flatten(node.body)
        return node

    def visit_Expr(self, node):
        if isinstance(node.value, gast.Name) and node.value.id in self.subs:
            value = self.subs[node.value.id]
            if isinstance(value, list):
                return value  # a placeholder standing for statements
        self.generic_visit(node)
        return node

    def visit_arguments(self, node):
        new_args = []
        for arg in node.args:
            value = self.subs.get(arg.id)
            if isinstance(value, (list, tuple)):
                new_args.extend(
                    gast.Name(id=v, ctx=gast.Param(), annotation=None, type_comment=None)
                    for v in value
                )
            elif isinstance(value, str):
                new_args.append(
                    gast.Name(id=value, ctx=gast.Param(), annotation=None, type_comment=None)
                )
            else:
                new_args.append(arg)
        node.args = new_args
        return node


def _flatten(stmts):
    out = []
    for stmt in stmts:
        out.extend(stmt if isinstance(stmt, list) else [stmt])
    return out


def _set_ctx(node, ctx):
    node.ctx = ctx
    if isinstance(node, (gast.Tuple, gast.List)):
        for elt in node.elts:
            _set_ctx(elt, ctx)


def replace(template: str, **subs) -> list:
    """Statements of `template` with each placeholder name replaced.

    A value may be a str (a name), a gast expression, a list of statements (for a placeholder
    standing alone as a statement), or, for a function parameter, a list of names.
    """
    tree = gast.parse(textwrap.dedent(template))
    for node in gast.walk(tree):  # positions come from the replaced node (Converter.visit)
        if "lineno" in getattr(node, "_attributes", ()):
            node.lineno = node.end_lineno = node.col_offset = node.end_col_offset = None
    tree = _Fill(subs).visit(tree)
    return _flatten(tree.body)


def name(identifier: str, ctx=None):
    """A Name node."""
    return gast.Name(id=identifier, ctx=ctx or gast.Load(), annotation=None, type_comment=None)


def names_tuple(identifiers, ctx=None):
    """`(a, b)` as a Tuple of Names."""
    ctx = ctx or gast.Load()
    return gast.Tuple(elts=[name(i, ctx) for i in identifiers], ctx=ctx)


def strings_tuple(strings):
    """`('a', 'b')` as a Tuple of string constants."""
    return gast.Tuple(elts=[gast.Constant(value=s, kind=None) for s in strings], ctx=gast.Load())
