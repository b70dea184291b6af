"""The `try` blocks of converted code, so that a staged `raise` can tell whether one catches it.

A `raise` (or `assert`) under a tensor condition becomes a graph assertion: nothing raises while
tracing, and the graph raises when it runs on an input that takes that path. That is what Python
does only where nothing in the traced code catches the exception. A handler around it, in the
function itself or in any converted caller (a decorator's wrapper, `try: y = helper(x) except
ValueError: y = fallback`), would turn the raise into the handler's value in Python; the graph,
which has no path into the handler, would raise instead. Python's choice between the two paths
depends on the tensor, and a graph cannot stage an `except`, so such a raise is refused (a
StagingError at its line that names the `try`).

The compiler registers, for each code object it makes (nested ones included), the line span of
each `try` body that has `except` handlers and the source of the handlers' types
(`register`). A staged raise walks the Python frames above it (`catching`): a frame of
converted code that is running a line of such a body, whose handler types match the exception,
catches it. Handler types are evaluated in that frame, as Python would when the exception
arrived; a type expression other than names, attributes and tuples of them is taken to catch.
"""

from __future__ import annotations

import ast
import sys
import weakref
from typing import NamedTuple

import torch

__all__ = ["TryBlock", "register", "catching"]


class TryBlock(NamedTuple):
    """A `try` body's lines (first, last, in the user's file) and its handlers as (line, type
    source; None for a bare `except:`)."""

    first: int
    last: int
    handlers: tuple


# Converted code object -> its try blocks. Weak: the entry goes with the code.
_blocks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def register(code, blocks) -> None:
    """Record `blocks` (TryBlocks) for `code` and the code objects nested in it."""
    blocks = tuple(blocks)
    if not blocks:
        return
    _blocks[code] = blocks
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            register(const, blocks)


def catching(error: BaseException):
    """(filename, line of the handler, its `except` clause text) of the innermost handler of a
    converted frame on the stack that would catch `error`, or None. Only called while a raise
    is staged (a trace), never on the eager path."""
    if torch.compiler.is_dynamo_compiling() or not _blocks:
        # dynamo cannot trace frame inspection: under torch.compile the raise stays a graph
        # assertion (README, known limits). Asked first: dynamo reading the weak table's length
        # guarded on its keys, and a code object collected before the guards were built made
        # the compile fail with an IndexError in dynamo's guard code
        return None
    frame = sys._getframe(1)
    while frame is not None:
        blocks = _blocks.get(frame.f_code)
        if blocks:
            line = frame.f_lineno
            for block in blocks:
                if block.first <= line <= block.last:
                    for handler_line, kind in block.handlers:
                        if _catches(kind, error, frame):
                            clause = f"except {kind}:" if kind is not None else "except:"
                            return frame.f_code.co_filename, handler_line, clause
        frame = frame.f_back
    return None


def _catches(kind: str | None, error: BaseException, frame) -> bool:
    if kind is None:
        return True
    try:
        tree = ast.parse(kind, mode="eval")
    except SyntaxError:
        return True
    if not all(isinstance(node, (ast.Expression, ast.Name, ast.Attribute, ast.Tuple, ast.Load))
               for node in ast.walk(tree)):
        return True  # computed at run time: it may catch
    try:
        types = eval(compile(tree, "<except>", "eval"), frame.f_globals, frame.f_locals)  # noqa: S307 - names and attributes only, checked above
    except Exception:  # noqa: BLE001 - a name not bound yet: Python would fail there too
        return True
    try:
        return isinstance(error, types)
    except TypeError:  # not exception classes
        return False
