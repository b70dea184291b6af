"""Walking gast trees without `ast.walk`'s per-node generator and `iter_fields` overhead."""

from __future__ import annotations

from ast import AST

import gast

__all__ = ["walk", "children", "walked_fields", "WALKED_FIELDS", "own_statements"]


def children(node):
    """The child nodes of `node`, in field order: what `ast.iter_child_nodes` gives (contexts
    and operators included), as a list, without its two generators per node."""
    out = []
    attrs = node.__dict__
    for field in node._fields:
        value = attrs.get(field)
        kind = value.__class__
        if kind is list:
            out += [v for v in value if isinstance(v, AST)]
        elif kind not in _LEAVES and isinstance(value, AST):
            out.append(value)
    return out


# (field values that are never nodes, passed over without an isinstance call)
_LEAVES = frozenset((type(None), str, int, float, bool, bytes))
_NAME, _CONSTANT = gast.Name, gast.Constant


def walk(node):
    """Every node under `node` (itself included), in no particular order; a list of nodes is
    walked as if it were one node's children. A name's context (`ctx`: Load, Store, Del,
    Param) is not a node of its own here: read it as `node.ctx`."""
    stack = list(node) if node.__class__ is list else [node]
    out = []
    push, pop, emit, extend = stack.append, stack.pop, out.append, stack.extend
    fields_of = WALKED_FIELDS
    while stack:
        current = pop()
        # (`children` inlined: a call per node was a tenth of a whole-tree walk)
        cls = current.__class__
        # (names and constants, half of a converted tree's nodes, without the loop over their
        # fields: a constant's value is never a node, a name's only node a parameter's
        # annotation; a quarter of a walk's time, in the order the loop gives)
        if cls is _NAME:
            emit(current)
            annotation = current.__dict__.get("annotation")
            if annotation is not None:
                push(annotation)
            continue
        if cls is _CONSTANT:
            emit(current)
            continue
        fields = fields_of.get(cls)
        if fields is None:
            if not hasattr(cls, "_fields"):
                continue  # (a None or a string of a list field: lists are pushed unfiltered)
            fields = _walked_fields(cls)
        emit(current)
        attrs = current.__dict__  # (the fields by dict lookups, not getattr)
        for field in fields:
            value = attrs.get(field)
            if value is None:
                continue
            if value.__class__ is list:
                extend(value)
            elif hasattr(value, "_fields"):
                push(value)
    return out


# Fields of a gast class that never hold a node (names, identifiers, type comments, constant
# kinds), which `walk` does not look at; contexts too (a quarter of a function's nodes were
# contexts, which no analysis walks to). (An except handler's `name` is a Name in gast.)
_TEXT_FIELDS = {
    "Name": ("id", "type_comment"), "Attribute": ("attr",), "Constant": ("kind",),
    "FunctionDef": ("name", "type_comment"), "AsyncFunctionDef": ("name", "type_comment"),
    "ClassDef": ("name",), "keyword": ("arg",), "alias": ("name", "asname"),
    "Global": ("names",), "Nonlocal": ("names",), "ImportFrom": ("module", "level"),
    "Assign": ("type_comment",), "For": ("type_comment",), "AsyncFor": ("type_comment",),
    "With": ("type_comment",), "AsyncWith": ("type_comment",),
    "MatchClass": ("kwd_attrs",), "MatchMapping": ("rest",), "MatchStar": ("name",),
    "MatchAs": ("name",),
}
# class -> the fields `walk` reads (`walked_fields`), filled as classes are met: read directly
# by the hottest walks (a call per node was a tenth of them)
WALKED_FIELDS: dict = {}


def walked_fields(cls) -> tuple:
    """The fields of `cls` that may hold a node, in field order: not its text fields, nor a
    name's context."""
    fields = WALKED_FIELDS.get(cls)
    return fields if fields is not None else _walked_fields(cls)


def _walked_fields(cls) -> tuple:
    skipped = ("ctx",) + _TEXT_FIELDS.get(cls.__name__, ()) if cls.__module__.startswith(
        "gast") else ("ctx",)
    fields = WALKED_FIELDS[cls] = tuple(f for f in cls._fields if f not in skipped)
    return fields


_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def walk_statements(node):
    """`node` and every statement (and except handler, match case) under it; expressions are
    not entered, so no Lambda is found."""
    stack = [node]
    out = []
    pop, extend, emit, blocks_of = stack.pop, stack.extend, out.append, _BLOCKS_OF
    while stack:
        current = pop()
        emit(current)
        cls = current.__class__
        blocks = blocks_of.get(cls)
        if blocks is None:
            blocks = blocks_of[cls] = tuple(
                f for f in _STATEMENT_FIELDS if f in getattr(cls, "_fields", ()))
        attrs = current.__dict__  # (the blocks a class has, by dict lookups)
        for field in blocks:
            value = attrs.get(field)
            if value.__class__ is list:
                extend(value)
    return out


# class -> its fields of `_STATEMENT_FIELDS`, in that order
_BLOCKS_OF: dict = {}


_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)
_OWN_BLOCKS = ("body", "orelse", "finalbody", "handlers")


def own_statements(block, out=None) -> list:
    """The statements under `block` (a list of statements), not those of the functions and
    classes it defines, each before the statements nested in it. (A list built by plain calls:
    a generator per nested statement, each item passed up through every level by `yield from`,
    cost 1-2% of a conversion.) Not the cases of a `match`, which conversion refuses."""
    if out is None:
        out = []
    for s in block:
        out.append(s)
        if not isinstance(s, _SCOPES):
            for field in _OWN_BLOCKS:
                for child in getattr(s, field, None) or ():
                    own_statements(
                        child.body if isinstance(child, gast.ExceptHandler) else [child], out)
    return out


def copy_tree(node):
    """A deep copy of a gast node or list of nodes, annotations included (copy.deepcopy's memo
    and reduce protocol cost more than the copy itself here)."""
    if node.__class__ is list:
        return [copy_tree(n) for n in node]
    if not hasattr(node, "_fields"):
        return node
    cls = node.__class__
    new = cls.__new__(cls)
    for name, value in node.__dict__.items():
        if value.__class__ is list:
            value = [copy_tree(v) for v in value]
        elif hasattr(value, "_fields"):
            value = copy_tree(value)
        elif value.__class__ is dict:  # annotations
            value = {k: copy_tree(v) for k, v in value.items()}
        setattr(new, name, value)
    return new
