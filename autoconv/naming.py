"""Fresh names with meaningful stems, unique within one converted function."""

from __future__ import annotations

import gast

__all__ = ["Namer"]


class Namer:
    """Hands out names like `if_true`, `if_true_1` that no name in the function uses."""

    def __init__(self, nodes):
        """`nodes`: every node of the function's tree (`analysis.nodes.walk`)."""
        self.taken = set()
        # Whether the tree yields: converters skip their search for yields when it does not.
        self.has_yield = False
        for n in nodes:
            if n.__class__ is gast.Name:
                self.taken.add(n.id)
            elif n.__class__ is gast.FunctionDef:
                self.taken.add(n.name)
            elif n.__class__ in (gast.MatchAs, gast.MatchStar) and n.name is not None:
                self.taken.add(n.name)  # (a `match` pattern's capture: a Name once lowered)
            elif n.__class__ is gast.MatchMapping and n.rest is not None:
                self.taken.add(n.rest)
            elif n.__class__ in (gast.Yield, gast.YieldFrom):
                self.has_yield = True

    def new(self, stem: str) -> str:
        """A name starting with `stem` that is not used yet."""
        candidate, counter = stem, 0
        while candidate in self.taken:
            counter += 1
            candidate = f"{stem}_{counter}"
        self.taken.add(candidate)
        return candidate
