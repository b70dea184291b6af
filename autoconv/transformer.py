"""The base every converter derives from: positions of replaced nodes carry over to new ones."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import gast

from .analysis.annos import Anno, copy_origin, get_anno
from .analysis.nodes import walked_fields
from .naming import Namer

__all__ = ["Context", "Converter"]


@dataclass
class Context:
    """What a conversion shares across converters: the user's file, names, and the globals."""

    filename: str
    namer: Namer
    globals: dict = field(default_factory=dict)


_NO_FIELDS = frozenset(cls for cls in vars(gast).values()
                        if isinstance(cls, type) and issubclass(cls, gast.AST) and not cls._fields)
_LEAVES: dict = {}
# ast.NodeVisitor's own visit_Constant, which every converter inherits: it looks for the
# visitors of the classes Python 3.8 removed (`visit_Num`, ... through a getattr that raises
# AttributeError) and then visits the constant's fields, which hold no node. No converter has
# such a visitor, so a converter without a visit_Constant of its own has nothing to do there.
_INHERITED = {"visit_Constant": ast.NodeVisitor.visit_Constant}


def _own_visitor(converter, name: str):
    """`converter`'s visit_<name>, None where it has none but what it inherits from ast."""
    visitor = getattr(converter, name, None)
    return None if visitor is None or visitor is _INHERITED.get(name) else visitor


# (converter class, node class) -> the name of the converter's own visitor, or None: once per
# process, not per pass (a converter is made anew for every conversion)
_METHODS: dict = {}
# converter class -> {node class: the function visiting it}
_VISITORS: dict = {}

# NOTE [converters without reference cycles]
# A converter kept its visitors as bound methods in a dict of its own: a cycle (converter ->
# dict -> method -> converter) that refcounting cannot free, so every converter of a
# conversion, and what it held (the context, scopes, nodes: about a thousand objects a
# conversion), waited for the garbage collector. The table holds the class's functions
# instead, one table per converter class, and the converter is freed when its pass returns.
_UNKNOWN = object()


def _leaves(converter):
    """Node classes a walk of `converter` need not enter: no fields to walk (contexts,
    operators), or names and constants when it has no visitor for them."""
    leaves = _LEAVES.get(converter)
    if leaves is None:
        leaves = _LEAVES[converter] = _NO_FIELDS | {
            cls for cls in (gast.Name, gast.Constant)
            if _own_visitor(converter, "visit_" + cls.__name__) is None}
    return leaves


_STATEMENT_HOLDERS = (gast.stmt, gast.excepthandler, gast.match_case, gast.mod)
# class -> the fields `Converter.generic_visit` reads: those that may hold a node (not names,
# identifiers, contexts: `walked_fields`), and for a statements-only converter those that may
# hold statements
_WALKED: dict = {}
_BLOCK_FIELDS: dict = {}
_BLOCKS = frozenset(("body", "orelse", "finalbody", "handlers", "cases"))


def _fields_to_visit(cls, statements_only: bool) -> tuple:
    fields = walked_fields(cls)
    if statements_only:
        fields = _BLOCK_FIELDS[cls] = tuple(f for f in fields if f in _BLOCKS)
    else:
        _WALKED[cls] = fields
    return fields
_CLASS_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)


class Converter(gast.NodeTransformer):
    """A gast.NodeTransformer that gives new nodes the position of the node they replace.

    Subclasses list the annotations they read in `reads`; `anno()` refuses any other, so what a
    converter depends on is declared where it is defined. A converter with `statements_only`
    rewrites statements only, and its walk does not enter expressions (no statement is inside
    one), which is most of a tree.
    """

    reads: tuple = ()
    statements_only = False

    def __init__(self, ctx: Context):
        self.ctx = ctx
        # visit_<Class> lookups, once per class and converter class (NodeVisitor does a getattr
        # with string concatenation for every node): the class's functions, called with the
        # converter, not bound methods kept on it (NOTE [converters without reference cycles])
        table = _VISITORS.get(type(self))
        if table is None:
            table = _VISITORS[type(self)] = {}
        self._visitors = table
        self._leaves = _leaves(type(self))

    def anno(self, node, key: Anno):
        """The analysis result `key` on `node`; `key` must be declared in `reads`."""
        if key not in self.reads:
            raise RuntimeError(f"{type(self).__name__} reads {key} without declaring it")
        return get_anno(node, key)

    def visit(self, node):
        cls = node.__class__
        visitor = self._visitors.get(cls)
        if visitor is None:
            method = _METHODS.get((type(self), cls), _UNKNOWN)
            if method is _UNKNOWN:
                method = _METHODS[type(self), cls] = "visit_" + cls.__name__ if _own_visitor(
                    type(self), "visit_" + cls.__name__) is not None else None
            visitor = self._visitors[cls] = getattr(
                type(self), method if method is not None else "generic_visit")
        result = visitor(self, node)
        if result is not None and result is not node:
            if isinstance(result, list):
                for new in result:
                    copy_origin(new, node)
            else:
                copy_origin(result, node)
        return result

    def generic_visit(self, node):
        statements_only = self.statements_only
        # (the fields that may hold a node, by the node's __dict__; a statements-only walk
        # reads the blocks only: no other field holds a statement)
        cls = node.__class__
        fields = (_BLOCK_FIELDS if statements_only else _WALKED).get(cls)
        if fields is None:
            fields = _fields_to_visit(cls, statements_only)
        attrs = node.__dict__
        for name in fields:
            value = attrs.get(name)
            if value is None or value.__class__ is str:
                continue
            if value.__class__ is list:
                if not value:
                    continue
                if statements_only and not isinstance(value[0], _STATEMENT_HOLDERS):
                    continue
                new_values = []
                changed = False
                leaves = self._leaves
                for item in value:
                    if item.__class__ in leaves:
                        new_values.append(item)
                    elif isinstance(item, gast.AST):
                        new = self.visit(item)
                        if new is not item:
                            changed = True
                            if new is None:
                                continue
                            if isinstance(new, list):
                                new_values.extend(new)
                                continue
                        new_values.append(new)
                    else:
                        new_values.append(item)
                if changed:
                    value[:] = new_values
            elif value.__class__ in self._leaves:
                continue
            elif isinstance(value, gast.AST) and not statements_only:
                new = self.visit(value)
                if new is None:
                    delattr(node, name)
                elif new is not value:
                    setattr(node, name, new)
        return node

    def visit_ClassDef(self, node):
        # NOTE [class bodies stay Python]: a class statement's body runs once, when the class
        # is made, in a scope of its own whose names are class attributes, which functions and
        # lambdas made in it do not see. Rewritten as a function's body, its loops' jumps became
        # flags left behind as class attributes (and a `break` under `try` / `finally` ran an
        # extra trip), its `raise` a `return` outside a function, its `a and b` a lambda reading
        # a global `a`. So every converter leaves the body's own statements as written; the
        # methods in it are functions like any other, and the decorators, bases and keywords
        # run in the enclosing function.
        body = []
        for stmt in node.body:
            new = self.visit(stmt) if isinstance(stmt, _CLASS_SCOPES) else stmt
            if new is not None:
                body.extend(new if isinstance(new, list) else [new])
        node.body = body
        if not self.statements_only:
            for name in ("decorator_list", "bases", "keywords"):
                setattr(node, name, [self.visit(n) for n in getattr(node, name)])
        return node

    @classmethod
    def transform(cls, node, ctx: Context):
        """Run this converter over `node`."""
        return cls(ctx).visit(node)
