"""Errors raised while converted code stages control flow, located at the user's line."""

from __future__ import annotations

import linecache
import os
import sys

import torch

__all__ = ["StagingError", "user_location"]

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))


def user_location() -> tuple[str, int] | None:
    """The (file, line) of the innermost frame that is neither the runtime's nor torch's.

    Converted code is compiled with the user's file name and line numbers, so that frame is the
    user's own statement. Only called on error paths. (torch's tracers call bodies through
    code they generate with `eval`, named "<string>", which has no source to show.)
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        path = os.path.abspath(filename)
        generated = filename.startswith("<") and filename not in linecache.cache
        if not path.startswith((_RUNTIME_DIR, _TORCH_DIR)) and not generated:
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


class StagingError(TypeError):
    """A control-flow statement whose values cannot become one graph.

    Raised while tracing; the message names the statement, the variable, the user's file and line,
    and what to change. `filename` and `lineno` hold the location.
    """

    def __init__(self, statement: str, problem: str, fix: str):
        # Under dynamo (which traces staged bodies) frames cannot be inspected; the runtime
        # raises again outside the traced body, where they can.
        location = None if torch.compiler.is_compiling() else user_location()
        self.filename, self.lineno = location if location else (None, None)
        where = f"{self.filename}:{self.lineno}: " if location else ""
        self.statement, self.problem, self.fix = statement, problem, fix
        super().__init__(f"{where}in a tensor-dependent {statement}: {problem}. {fix}")
