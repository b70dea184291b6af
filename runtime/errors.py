"""Errors raised while converted code stages control flow, located at the user's line."""

from __future__ import annotations

import os
import re
import sys

import torch

__all__ = ["StagingError", "user_location", "graph_error_message", "user_exception"]

# With the separator: torchdiffeq's, torchmin's and torchcrf's files start with torch's directory
# name too, and they are user code (converted like any other).
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
# Code torch generates (make_fx's argument-flattening wrapper, fx's GraphModule forwards).
_GENERATED = ("<string>", "<eval_with_key>")


def user_location() -> tuple[str, int] | None:
    """The (file, line) of the innermost frame that is neither the runtime's nor torch's (nor code
    torch generates).

    Converted code is compiled with the user's file name and line numbers, so that frame is the
    user's own statement. Only called on error paths.
    """
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith((_RUNTIME_DIR, _TORCH_DIR))
                or frame.f_code.co_filename.startswith(_GENERATED)):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


# Converted code passes autoconv's own variables (the return value, jump flags) under labels such
# as '<return value>', which no Python name can be; messages say what they stand for.
_OWN_NAME = re.compile(r"'<([^'<>]+)>'")


def _own_names(text: str) -> str:
    return _OWN_NAME.sub(r"the \1", text)


class StagingError(TypeError):
    """A control-flow statement whose values cannot become one graph.

    Raised while tracing; the message names the statement, the variable, the user's file and line,
    and what to change. `filename` and `lineno` hold the location.
    """

    def __init__(self, statement: str, problem: str, fix: str):
        # Under dynamo (which traces staged bodies) frames cannot be inspected; the runtime
        # raises again outside the traced body, where they can.
        location = None if torch.compiler.is_dynamo_compiling() else user_location()
        self.filename, self.lineno = location if location else (None, None)
        where = f"{self.filename}:{self.lineno}: " if location else ""
        problem, fix = _own_names(problem), _own_names(fix)
        self.statement, self.problem, self.fix = statement, problem, fix
        super().__init__(f"{where}in a tensor-dependent {statement}: {problem}. {fix}")


# NOTE [exceptions raised by graphs]
# A `raise` under a tensor condition becomes a graph assertion (`torch._assert_async`), which
# raises RuntimeError with a message when the graph runs. The message is "<Type>: <text>", so a
# torch.export program or a torch.compile'd function (RuntimeError) still says which exception it
# was; autoconv's own replay looks the message up here and raises the user's type instead.
_GRAPH_ERRORS: dict = {}


def graph_error_message(error: BaseException) -> str:
    """The assertion message standing for `error` in a graph; remembered for `user_exception`."""
    text = str(error)
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if not torch.compiler.is_dynamo_compiling():  # dynamo refuses the write in a body
        _GRAPH_ERRORS[message] = (type(error), error.args)
    return message


def user_exception(error: BaseException) -> BaseException | None:
    """The exception a graph assertion stands for (see `graph_error_message`), or None."""
    found = _GRAPH_ERRORS.get(str(error)) if type(error) is RuntimeError else None
    if found is None:
        return None
    kind, args = found
    try:
        return kind(*args)
    except Exception:  # noqa: BLE001 - a constructor that wants other arguments: keep torch's
        return None
