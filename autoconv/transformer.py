"""The base every converter derives from: positions of replaced nodes carry over to new ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import gast

from .analysis.annos import Anno, copy_origin, get_anno
from .naming import Namer

__all__ = ["Context", "Converter"]


@dataclass
class Context:
    """What a conversion shares across converters: the user's file, names, and the globals."""

    filename: str
    namer: Namer
    globals: dict = field(default_factory=dict)


class Converter(gast.NodeTransformer):
    """A gast.NodeTransformer that gives new nodes the position of the node they replace.

    Subclasses list the annotations they read in `reads`; `anno()` refuses any other, so what a
    converter depends on is declared where it is defined.
    """

    reads: tuple = ()

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def anno(self, node, key: Anno):
        """The analysis result `key` on `node`; `key` must be declared in `reads`."""
        if key not in self.reads:
            raise RuntimeError(f"{type(self).__name__} reads {key} without declaring it")
        return get_anno(node, key)

    def visit(self, node):
        result = super().visit(node)
        if result is not None and result is not node:
            for new in result if isinstance(result, list) else [result]:
                copy_origin(new, node)
        return result

    @classmethod
    def transform(cls, node, ctx: Context):
        """Run this converter over `node`."""
        return cls(ctx).visit(node)
