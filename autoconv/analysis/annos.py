"""Annotations the analysis attaches to statements, keyed by an enum, read through declared access."""

from __future__ import annotations

import enum

__all__ = ["Anno", "set_anno", "get_anno", "copy_origin"]

_ATTR = "_autoconv_annos"


class Anno(enum.Enum):
    """What the analysis records on each compound statement (If, While, For)."""

    LIVE_OUT = "names read after the statement before being reassigned"
    BODY_LIVE_IN = "names read in the statement's bodies before being assigned there"
    WRITES = "names the statement's bodies may assign"
    READS = "names the statement's bodies (and loop tests) read"
    DEFINED_IN = "names certainly bound when the statement starts"
    EXTRA_TEST = "an extra loop condition added when break/return were lowered"


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


def copy_origin(new, old):
    """Give `new` and its descendants without a position the position of `old`."""
    import gast

    for node in gast.walk(new):
        if "lineno" in getattr(node, "_attributes", ()):
            if getattr(node, "lineno", None) is None:
                node.lineno = getattr(old, "lineno", 1)
                node.col_offset = getattr(old, "col_offset", 0)
                # Generated code spans only the first line of the statement it stands for.
                node.end_lineno = node.lineno
                node.end_col_offset = node.col_offset
    return new
