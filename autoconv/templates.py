"""Generated code written as Python source with placeholders, filled with gast nodes.

Each template is parsed once; a fill copies the parsed statements, putting the substitutes in
place of the placeholders as it goes (one walk, no `deepcopy`, no parse per use).
"""

from __future__ import annotations

import copy
import textwrap

import gast

__all__ = ["replace", "name", "names_tuple", "strings_tuple"]

_PARSED: dict = {}
_POSITION = ("lineno", "col_offset", "end_lineno", "end_col_offset")
# Field values that are no node: copied as they are
_LEAVES = frozenset({type(None), str, int, float, bool, bytes, complex})
_EXPRESSION_SLOTS = (gast.Name, gast.Tuple, gast.List, gast.Attribute, gast.Subscript,
                     gast.Starred)


def _parsed(template: str):
    body = _PARSED.get(template)
    if body is None:
        body = gast.parse(textwrap.dedent(template)).body
        for node in gast.walk(gast.Module(body=body, type_ignores=[])):
            # positions come from the replaced node (Converter.visit)
            if "lineno" in node._attributes:
                for attr in _POSITION:
                    setattr(node, attr, None)
        _PARSED[template] = body
    return body


class _Fill:
    def __init__(self, subs):
        self.subs = subs
        self.used = set()

    def value(self, key, ctx):
        value = self.subs[key]
        if value is None:
            return gast.Constant(value=None, kind=None)
        if isinstance(value, str):
            return gast.Name(id=value, ctx=ctx, annotation=None, type_comment=None)
        # A node goes in as it is the first time; a placeholder used twice gets a copy.
        if key in self.used:
            value = copy.deepcopy(value)
        self.used.add(key)
        if isinstance(value, _EXPRESSION_SLOTS):
            _set_ctx(value, ctx)
        return value

    def copy(self, node):
        cls = node.__class__
        subs = self.subs
        if cls is gast.Name and node.id in subs:
            return self.value(node.id, self.copy(node.ctx))
        if cls is gast.Expr and node.value.__class__ is gast.Name and node.value.id in subs:
            value = subs[node.value.id]
            if isinstance(value, list):
                return value  # a placeholder standing for statements
        new = cls.__new__(cls)
        # (the fields through the nodes' __dict__s, leaves by their class: getattr, setattr and
        # isinstance per field were half of a fill)
        attrs, out = node.__dict__, new.__dict__
        leaves = _LEAVES
        for field in cls._fields:
            value = attrs[field]
            kind = value.__class__
            if kind is list:
                items = []
                for item in value:
                    if item.__class__ not in leaves and isinstance(item, gast.AST):
                        item = self.copy(item)
                        if item.__class__ is list:
                            items.extend(item)
                            continue
                    items.append(item)
                value = items
            elif kind not in leaves and isinstance(value, gast.AST):
                value = self.copy(value)
            out[field] = value
        for attr in cls._attributes:
            out[attr] = None
        if cls is gast.FunctionDef and node.name in subs:
            new.name = subs[node.name]
        elif cls is gast.arguments:
            new.args = self.params(node.args)
        return new

    def params(self, args):
        out = []
        for arg in args:
            value = self.subs.get(arg.id) if arg.__class__ is gast.Name else None
            if isinstance(value, (list, tuple)):
                out.extend(name(v, gast.Param()) for v in value)
            elif isinstance(value, str):
                out.append(name(value, gast.Param()))
            else:
                out.append(arg)
        return out


def _set_ctx(node, ctx):
    node.ctx = ctx
    if isinstance(node, (gast.Tuple, gast.List)):
        for elt in node.elts:
            _set_ctx(elt, ctx)


def replace(template: str, **subs) -> list:
    """Statements of `template` with each placeholder name replaced.

    A value may be a str (a name), a gast expression, a list of statements (for a placeholder
    standing alone as a statement), or, for a function parameter, a list of names. A node is put
    in the result itself (not a copy) at the first place its placeholder appears.
    """
    fill = _Fill(subs)
    out = []
    for stmt in _parsed(template):
        new = fill.copy(stmt)
        if isinstance(new, list):
            out.extend(new)
        else:
            out.append(new)
    return out


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
