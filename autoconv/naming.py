"""Fresh names with meaningful stems, unique within one converted function."""

from __future__ import annotations

import gast

__all__ = ["Namer"]


class Namer:
    """Hands out names like `if_true`, `if_true_1` that no name in the function uses."""

    def __init__(self, tree):
        self.taken = {n.id for n in gast.walk(tree) if isinstance(n, gast.Name)}
        self.taken |= {n.name for n in gast.walk(tree) if isinstance(n, gast.FunctionDef)}

    def new(self, stem: str) -> str:
        """A name starting with `stem` that is not used yet."""
        candidate, counter = stem, 0
        while candidate in self.taken:
            counter += 1
            candidate = f"{stem}_{counter}"
        self.taken.add(candidate)
        return candidate
