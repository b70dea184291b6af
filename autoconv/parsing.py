"""The source of a function as a gast tree whose line and column numbers are the user's."""

from __future__ import annotations

import ast
import inspect
import linecache
import re
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
    # The code object's own lines: `inspect.getsourcelines(fn)` follows `__wrapped__`, and the
    # wrapper of a `functools.wraps` decorator would get the source of the function it wraps.
    try:
        lines, first_line = inspect.getsourcelines(fn.__code__)
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


def _block_lines(fn):
    """The lines of `fn`'s definition found by indentation (or None): a cheap stand-in for
    `inspect.getsourcelines`, which tokenizes them. A block cut short where a line is indented
    less than the `def` although it continues a statement (a bracket, a string) does not parse,
    and the caller then asks inspect."""
    code = fn.__code__
    filename = code.co_filename
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, fn.__globals__)
    start = code.co_firstlineno - 1
    if start < 0 or start >= len(lines):
        return None
    first = lines[start]
    header = first.lstrip()
    if not header.startswith(("def ", "@")):
        return None
    indent = len(first) - len(header)
    end = start + 1
    in_header = header.startswith("@")
    for end in range(start + 1, len(lines) + 1):
        if end == len(lines):
            break
        line = lines[end]
        text = line.lstrip()
        if not text or text.startswith("#") or _continues(lines[end - 1]):
            continue
        if len(line) - len(text) > indent:
            continue
        if text.startswith((")", "]", "}")):
            continue  # closes a bracket (`) -> int:` of a signature): never a new statement
        if in_header and text.startswith(("def ", "@")):
            in_header = text.startswith("@")
            continue
        break
    while end > start + 1 and _trailing_filler(lines[end - 1], lines[end - 2]):
        end -= 1
    return lines[start:end], start + 1


def _trailing_filler(line: str, before: str) -> bool:
    """True for a blank or comment line after a block that is not part of its last statement.

    After a backslash continuation (`y = x \\` then `# note` at the end of the file), such a
    line ends the statement: dropping it would leave the block ending in a backslash, which does
    not parse (and inspect then finds only the `def` line).
    """
    text = line.strip()
    return (not text or text.startswith("#")) and not _continues(before)


def _continues(line: str) -> bool:
    """True if `line` ends in a backslash continuation: the next line, however indented, is
    part of the same statement. (A code line whose comment ends in a backslash passes too: a
    line taken too many is a statement after the def, which parsing ignores, or does not parse,
    and then inspect is asked.)"""
    return line.rstrip("\r\n").endswith("\\") and not line.lstrip().startswith("#")


def parse_function(fn) -> ParsedFunction:
    """Parse `fn`'s source; node positions point into the user's file."""
    if fn.__code__.co_name != "<lambda>":
        found = _block_lines(fn)
        if found is not None:
            try:
                parsed = _parse_function(fn, *found)
            except ConversionError:
                parsed = None
            if parsed is not None and _covers_code(parsed.node, fn.__code__):
                return parsed
        # Lines found by indentation (or by inspect's tokenizer) can end the function early,
        # and still parse: a line holding only a backslash at column 0 continues a statement,
        # whose indentation then comes from the next line. Python's own parser knows.
        parsed = _parse_in_file(fn)
        if parsed is not None:
            return parsed
    return _parse_function(fn, *_source_lines(fn))


def _covers_code(node, code) -> bool:
    """True if the parsed def `node` spans every line `code` runs (else lines were missed)."""
    last = max((line for _, _, line in code.co_lines() if line is not None), default=0)
    return node.end_lineno is not None and last <= node.end_lineno


def _file_ast(fn):
    """(lines, stdlib ast) of `fn`'s whole file, or None where it cannot be read or parsed."""
    code = fn.__code__
    lines = linecache.getlines(code.co_filename, fn.__globals__)
    if not lines:
        return None
    try:
        return lines, ast.parse("".join(lines), filename=code.co_filename)
    except (SyntaxError, ValueError):
        return None


def _parse_in_file(fn):
    """`fn`'s def found in a parse of its whole file (by name and first line), or None."""
    code = fn.__code__
    parsed = _file_ast(fn)
    if parsed is None:
        return None
    lines, module = parsed
    for node in ast.walk(module):
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == code.co_name
                and min([node.lineno] + [d.lineno for d in node.decorator_list])
                == code.co_firstlineno):
            source = "".join(lines[node.lineno - 1:node.end_lineno])
            return _function(fn, to_gast(node), node, source, code.co_firstlineno)
    return None


def _parse_function(fn, lines, first_line) -> ParsedFunction:
    code = fn.__code__
    filename = code.co_filename
    source = "".join(lines)
    dedented = textwrap.dedent(source)
    indent = len(lines[0]) - len(lines[0].lstrip())
    if code.co_name == "<lambda>":
        return ParsedFunction(_find_lambda(fn, dedented, filename, first_line, indent), filename,
                              first_line)
    if indent and first_line < 2:
        tree = parse_source(dedented, filename)
        _shift(tree, first_line - 1, indent)
        original = None
    else:
        if indent:
            # Parsed where it stands (no dedent, no shifting every node afterwards): blank lines
            # up to the line before, then an `if 1:` the indented source is the body of.
            source = "\n" * (first_line - 2) + "if 1:\n" + source
        else:
            source = "\n" * (first_line - 1) + source
        original = _parse_ast(source, filename)
        if indent:
            original.body = original.body[0].body
        tree = to_gast(original)
    for i, node in enumerate(tree.body):
        if isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef)):
            return _function(fn, node, original.body[i] if original is not None else None,
                             source, first_line)
    raise ConversionError("not_function", filename, first_line, what=fn.__qualname__)


_SCOPE_STATEMENT = re.compile(r"\b(?:global|nonlocal)\b")


def _function(fn, node, original, source, first_line) -> ParsedFunction:
    """The parsed def `node` (gast) of `fn`, ready to convert; `original` is its ast node, or
    None, and `source` the text it was parsed from."""
    filename = fn.__code__.co_filename
    if isinstance(node, gast.AsyncFunctionDef):
        raise ConversionError("async", filename, node.lineno, node.col_offset,
                              construct="async def")
    node.decorator_list = []  # the decorators already ran; converting them again would loop
    # A `global` / `nonlocal` must come before any use of its names in the function, so
    # the original body cannot precede the converted one there (a cheap, coarse test: the
    # words, not a part of a name: `norm_global` lost the fast path and the converted body's
    # handler of torch's errors, NOTE [data-dependent guards in converted code]).
    if (original is not None and _SCOPE_STATEMENT.search(source) is None
            and not _defines_functions(fn.__code__)):
        node._autoconv_original_body = original.body
    return ParsedFunction(node, filename, first_line)


# ast class -> (gast class, fields, position attributes). gast's own converter probes every field
# of every node with hasattr / getattr through a generic NodeTransformer.
_CLASSES: dict = {}
_POSITION = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def _class_info(cls):
    info = _CLASSES.get(cls)
    if info is None:
        target = getattr(gast, cls.__name__)
        info = _CLASSES[cls] = (target, target._fields,
                                _POSITION if "lineno" in cls._attributes else ())
    return info


# Contexts and operators have no fields: one shared gast instance each (as emit does for ast).
_SHARED = {cls: getattr(gast, cls.__name__)() for cls in vars(ast).values()
           if isinstance(cls, type) and issubclass(cls, ast.AST) and not cls._fields
           and not cls._attributes and cls is not ast.AST and hasattr(gast, cls.__name__)}
_SCALARS = frozenset((str, int, bool, float))


def to_gast(node):
    """The gast tree of a stdlib `ast` tree (which is left as it is)."""
    cls = node.__class__
    info = _CLASSES.get(cls)
    if info is None:
        if node is None:
            return None
        if cls is list:
            return [to_gast(n) for n in node]
        shared = _SHARED.get(cls)
        if shared is not None:
            return shared
        if not isinstance(node, ast.AST):
            return node
        if cls is ast.arg:  # a parameter: a Name in Param context in gast
            new = gast.Name(id=node.arg, ctx=gast.Param(), annotation=to_gast(node.annotation),
                            type_comment=node.type_comment)
            for attr in _POSITION:
                setattr(new, attr, getattr(node, attr, None))
            return new
        info = _class_info(cls)
    target, fields, positions = info
    new = target.__new__(target)
    # (the parser's fields and positions by dict lookups, the new node's by item stores: a
    # getattr / setattr call per field was a third of the copy)
    attrs, out = node.__dict__, new.__dict__
    for attr in positions:
        out[attr] = attrs.get(attr)
    if cls is ast.Name:
        out["id"], out["ctx"], out["annotation"], out["type_comment"] = (
            attrs["id"], _SHARED[attrs["ctx"].__class__], None, None)
    elif cls is ast.ExceptHandler:
        new.type, new.body = to_gast(node.type), to_gast(node.body)
        new.name = None if node.name is None else gast.Name(
            id=node.name, ctx=gast.Store(), annotation=None, type_comment=None)
    else:
        for field in fields:
            value = attrs.get(field)
            kind = value.__class__
            if kind is list:
                value = [to_gast(v) for v in value]
            elif value is not None and kind not in _SCALARS:
                value = _SHARED.get(kind) or to_gast(value)
            out[field] = value
        if cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef) and new.type_params is None:
            new.type_params = []
    return new


_COMPREHENSIONS = ("<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>")


def _defines_functions(code) -> bool:
    """True if the function defines functions, lambdas or classes.

    Those would come from its original body when it runs eagerly, and count as autoconv's
    (`conversion.is_generated`, which marks every code object compiled with the converted one)
    without being converted: such a function gets no fast path.
    """
    return any(hasattr(c, "co_code") and c.co_name not in _COMPREHENSIONS for c in code.co_consts)


def _parse_ast(source, filename):
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise ConversionError("syntax", filename, e.lineno, e.offset, reason=e.msg) from None


def _find_lambda(fn, source, filename, first_line, indent):
    # inspect gives the lines the lambda is on; they may hold a partial statement.
    try:
        tree = gast.parse(source)
    except SyntaxError:
        try:
            tree = gast.parse("(\n" + source.strip().rstrip(",:\\") + "\n)")
        except SyntaxError:
            # One item of a dict or list literal spread over lines (`"relu": lambda x: ...,`,
            # a table of operations): its lines are no expression, the whole file is.
            parsed = _file_ast(fn)
            if parsed is None:
                raise ConversionError(
                    "syntax", filename, fn.__code__.co_firstlineno,
                    reason="the lambda's lines hold part of a statement that does not parse "
                    "on its own; put the lambda on a line of its own or use a def") from None
            tree = to_gast(parsed[1])
            first_line, indent = 1, 0  # (the file's own positions: nothing to shift)
        else:
            _shift(tree, -1, 0)
    if first_line != 1 or indent:
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
