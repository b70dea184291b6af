"""The source of a function as a gast tree whose line and column numbers are the user's."""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass

import gast

from .errors import ConversionError

__all__ = ["ParsedFunction", "parse_function", "parse_source"]


@dataclass
class ParsedFunction:
    """A function's tree (a `FunctionDef` or `Lambda`) and where it came from."""

    node: gast.AST
    filename: str
    first_line: int


def _source_lines(fn):
    try:
        lines, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError) as e:
        raise ConversionError(
            "no_source", getattr(fn.__code__, "co_filename", None), None,
            what=getattr(fn, "__qualname__", repr(fn)), reason=str(e),
        ) from None
    return lines, first_line


def parse_source(source: str, filename: str = "<string>") -> gast.Module:
    """Parse module source into gast, reporting syntax errors as `ConversionError`."""
    try:
        return gast.parse(source, filename=filename)
    except SyntaxError as e:
        raise ConversionError("syntax", filename, e.lineno, e.offset, reason=e.msg) from None


def _shift(tree, line_offset: int, col_offset: int) -> None:
    for node in gast.walk(tree):
        if hasattr(node, "lineno") and node.lineno is not None:
            node.lineno += line_offset
            if getattr(node, "end_lineno", None) is not None:
                node.end_lineno += line_offset
            if col_offset and getattr(node, "col_offset", None) is not None:
                node.col_offset += col_offset
                if getattr(node, "end_col_offset", None) is not None:
                    node.end_col_offset += col_offset


def parse_function(fn) -> ParsedFunction:
    """Parse `fn`'s source; node positions point into the user's file."""
    code = fn.__code__
    filename = code.co_filename
    lines, first_line = _source_lines(fn)
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    indent = len(lines[0]) - len(lines[0].lstrip())
    if fn.__name__ == "<lambda>":
        return ParsedFunction(_find_lambda(fn, dedented, filename, first_line, indent), filename,
                              first_line)
    if indent and first_line < 2:
        tree = parse_source(dedented, filename)
        _shift(tree, first_line - 1, indent)
    elif indent:
        # Parsed where it stands (no dedent, no shifting every node afterwards): blank lines up
        # to the line before, then an `if 1:` the indented source is the body of.
        tree = parse_source("\n" * (first_line - 2) + "if 1:\n" + source, filename)
        tree.body = tree.body[0].body
    else:
        tree = parse_source("\n" * (first_line - 1) + source, filename)
    for node in tree.body:
        if isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef)):
            if isinstance(node, gast.AsyncFunctionDef):
                raise ConversionError("async", filename, node.lineno, node.col_offset,
                                      construct="async def")
            node.decorator_list = []  # the decorators already ran; converting them again would loop
            return ParsedFunction(node, filename, first_line)
    raise ConversionError("not_function", filename, first_line, what=fn.__qualname__)


def _find_lambda(fn, source, filename, first_line, indent):
    # inspect gives the lines the lambda is on; they may hold a partial statement.
    try:
        tree = gast.parse(source)
    except SyntaxError:
        tree = gast.parse("(\n" + source.strip().rstrip(",:\\") + "\n)")
        _shift(tree, -1, 0)
    _shift(tree, first_line - 1, indent)
    code = fn.__code__
    args = code.co_varnames[: code.co_argcount]
    matches = [
        n for n in gast.walk(tree)
        if isinstance(n, gast.Lambda) and tuple(a.id for a in n.args.args) == args
        and n.lineno == code.co_firstlineno
    ]
    if len(matches) != 1:
        raise ConversionError("lambda_ambiguous", filename, code.co_firstlineno,
                              line=code.co_firstlineno)
    return matches[0]
