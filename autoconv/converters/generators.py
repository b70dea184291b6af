"""Generators are not converted: a generator nested in a converted function stays as written.

A generator's body cannot become a graph (its `yield`s would move into the body functions of
staged statements), but the function around it can: it calls the generator as plain Python.
Each converter is wrapped with `leaves_generators_alone`, so that every pass walks past a nested
generator's `def`; the function being converted is itself refused as a generator by the returns
pass.
"""

from __future__ import annotations

import gast

from ..analysis.nodes import children

__all__ = ["first_yield", "leaves_generators_alone"]

_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)


def _enclosing_scope_parts(scope):
    """The parts of a nested scope's node that run in the enclosing scope (decorators,
    defaults, base classes), where a `yield` belongs to the enclosing function."""
    parts = list(getattr(scope, "decorator_list", ()))
    args = getattr(scope, "args", None)
    if isinstance(args, gast.arguments):
        parts += [d for d in args.defaults + args.kw_defaults if d is not None]
    return parts + list(getattr(scope, "bases", ())) + list(getattr(scope, "keywords", ()))


def first_yield(function):
    """The first `yield` / `yield from` of `function` itself (a FunctionDef), in source order,
    not counting those of functions and lambdas nested in it; None if it is not a generator."""
    found = None
    stack = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (gast.Yield, gast.YieldFrom)):
            if found is None or (node.lineno, node.col_offset) < (found.lineno, found.col_offset):
                found = node
        if isinstance(node, _SCOPES):
            stack.extend(_enclosing_scope_parts(node))
        else:
            stack.extend(children(node))
    return found


def leaves_generators_alone(converter):
    """Class decorator: `converter` returns a nested generator's `def` as it is."""
    visit_function = getattr(converter, "visit_FunctionDef", None) or converter.generic_visit

    def visit_FunctionDef(self, node):
        # Namer.has_yield: most functions have no yield at all, and then nothing is searched.
        if self.ctx.namer.has_yield and first_yield(node) is not None:
            return node
        return visit_function(self, node)

    visit_FunctionDef.__doc__ = visit_function.__doc__
    converter.visit_FunctionDef = visit_FunctionDef
    return converter
