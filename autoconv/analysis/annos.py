"""Annotations the analysis attaches to statements, keyed by an enum, read through declared access."""

from __future__ import annotations

import enum

import gast

__all__ = ["Anno", "set_anno", "get_anno", "copy_origin"]

_ATTR = "_autoconv_annos"


class Anno(enum.Enum):
    """What the analysis records on each compound statement (If, While, For)."""

    LIVE_OUT = "names read after the statement before being reassigned"
    BODY_LIVE_IN = "names read in the statement's bodies before being assigned there"
    WRITES = "names the statement's bodies may assign"
    READS = "names the statement's bodies (and loop tests) read"
    DEFINED_IN = "names certainly bound when the statement starts"
    MUTATED = "names whose objects the statement's bodies change through an attribute or item"
    EXTRA_TEST = "an extra loop condition added when break/return were lowered"
    TRIP_BOUND = "a while loop growing a list: a bound on its trips read from its test"

    # Enum's __hash__ is a Python function hashing the name; annotations are looked up
    # thousands of times per conversion. Members are singletons: identity is their equality.
    __hash__ = object.__hash__


def set_anno(node, key: Anno, value) -> None:
    """Attach `value` to `node` under `key`."""
    annos = getattr(node, _ATTR, None)
    if annos is None:
        annos = {}
        setattr(node, _ATTR, annos)
    annos[key] = value


def get_anno(node, key: Anno, default=None):
    """The value under `key`, or `default`."""
    return getattr(node, _ATTR, {}).get(key, default)


# gast class -> (whether it has a position, its fields)
_LAYOUT: dict = {}


def _layout(cls):
    layout = _LAYOUT[cls] = ("lineno" in cls._attributes, cls._fields)
    return layout


def copy_origin(new, old):
    """Give `new` and its descendants without a position the position of `old`.

    The walk stops at nodes that have a position: they are the user's (or placed already), and
    `emit` gives what is below them their position.
    """
    lineno = getattr(old, "lineno", 1)
    col = getattr(old, "col_offset", 0)
    stack = list(new) if new.__class__ is list else [new]
    pop, push, extend = stack.pop, stack.append, stack.extend
    layouts, leaves = _LAYOUT, _LEAVES
    while stack:
        node = pop()
        layout = layouts.get(node.__class__)
        if layout is None:
            if not hasattr(node, "_fields"):
                continue  # None, a string, a number in a list field
            layout = _layout(node.__class__)
        positioned, fields = layout
        # A node's fields and position are in its __dict__: dict lookups, not getattr.
        attrs = node.__dict__
        if positioned:
            if attrs.get("lineno") is not None:
                continue
            # Generated code spans only the first line of the statement it stands for.
            attrs["lineno"] = attrs["end_lineno"] = lineno
            attrs["col_offset"] = attrs["end_col_offset"] = col
        for field in fields:
            value = attrs.get(field)
            kind = value.__class__
            if kind is list:
                extend(value)
            elif kind not in leaves:  # (not None, a name's str, its context: half the pushes)
                push(value)
    return new


# Field values copy_origin need not push: no position to set and nothing below them (None,
# strings and numbers, contexts and operators).
_LEAVES = frozenset({type(None), str, int, float, bool, bytes, complex} | {
    cls for cls in vars(gast).values() if isinstance(cls, type) and issubclass(cls, gast.AST)
    and not cls._fields and not cls._attributes})
