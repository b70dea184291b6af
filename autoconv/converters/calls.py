"""Calls go through `ac.converted_call`, so user functions they reach are converted too.

    f(x, k=1)          ->  ac.converted_call(f, x, k=1)
    range(n)           ->  ac.range_(n)          (also enumerate, zip, print)
    torch.sin(x), len(x)   stay as they are  (torch, numpy, the standard library, builtins)
    super().f(x)       ->  ac.converted_call(super(__class__, self).f, x)
"""

from __future__ import annotations

import builtins
import sys
import types

import gast

from .. import templates
from ..transformer import Converter

_STAGED_BUILTINS = {"range": "range_", "enumerate": "enumerate_", "zip": "zip_", "print": "print_"}
_DIRECT_MODULES = frozenset(sys.stdlib_module_names) | {"torch", "numpy", "autoconv"}


class CallConverter(Converter):
    """Routes calls through the runtime, except those that can never need conversion."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.first_params = []

    def visit_FunctionDef(self, node):
        args = node.args.posonlyargs + node.args.args
        self.first_params.append(args[0].id if args else None)
        self.generic_visit(node)
        self.first_params.pop()
        return node

    def _is_builtin(self, name: str) -> bool:
        return (
            name not in self.ctx.local_names
            and name not in self.ctx.globals
            and hasattr(builtins, name)
        )

    def _is_direct(self, func) -> bool:
        """True for `mod.attr...` where `mod` is a global module whose calls are never converted."""
        while isinstance(func, gast.Attribute):
            func = func.value
        if not isinstance(func, gast.Name) or func.id in self.ctx.local_names:
            return False
        value = self.ctx.globals.get(func.id)
        return isinstance(value, types.ModuleType) and (
            value.__name__.partition(".")[0] in _DIRECT_MODULES
        )

    def _is_runtime(self, func) -> bool:
        return (isinstance(func, gast.Attribute) and isinstance(func.value, gast.Name)
                and func.value.id == self.ctx.runtime)

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        ac = self.ctx.runtime
        if isinstance(func, gast.Name) and self._is_builtin(func.id):
            if func.id in _STAGED_BUILTINS:
                node.func = gast.Attribute(value=templates.name(ac), attr=_STAGED_BUILTINS[func.id],
                                           ctx=gast.Load())
            elif func.id == "super" and not node.args and self.first_params[-1:] != [None]:
                node.args = [templates.name("__class__"), templates.name(self.first_params[-1])]
                self.ctx.uses_class_cell = True
            return node
        if self._is_direct(func) or self._is_runtime(func):
            return node
        node.args = [func] + node.args
        node.func = gast.Attribute(value=templates.name(ac), attr="converted_call", ctx=gast.Load())
        return node
