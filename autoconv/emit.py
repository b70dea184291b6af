"""Converted trees to code objects (compiled with the user's file and line numbers) and to source.

astor is imported here and nowhere else, so it can be swapped for `ast.unparse`.
"""

from __future__ import annotations

import ast

import astor
import gast

__all__ = ["to_source", "compile_factory"]


def _unwrapped(source_parts) -> str:
    # astor wraps lines at 79 columns in awkward places; generated code reads better unwrapped.
    return "".join(source_parts)


def to_source(node) -> str:
    """Readable Python source of a gast tree."""
    return astor.to_source(gast.gast_to_ast(node), pretty_source=_unwrapped)


def _inherit_positions(node, lineno=1, col=0) -> None:
    # Generated nodes take the position of the nearest enclosing user node.
    if "lineno" in getattr(node, "_attributes", ()):
        if getattr(node, "lineno", None) is None:
            node.lineno, node.col_offset = lineno, col
            node.end_lineno, node.end_col_offset = lineno, col
        lineno, col = node.lineno, node.col_offset or 0
        if getattr(node, "end_lineno", None) is None or node.end_lineno < node.lineno:
            node.end_lineno, node.end_col_offset = node.lineno, node.col_offset
    for child in gast.iter_child_nodes(node):
        _inherit_positions(child, lineno, col)


def compile_factory(factory, filename: str):
    """Compile a module holding one factory function; returns the factory's code object.

    Positions are the user's, so tracebacks through converted code show the user's lines.
    """
    _inherit_positions(factory, factory.body[-1].lineno or 1)
    module = gast.gast_to_ast(gast.Module(body=[factory], type_ignores=[]))
    ast.fix_missing_locations(module)
    code = compile(module, filename, "exec", dont_inherit=True)
    return next(c for c in code.co_consts if hasattr(c, "co_code"))
