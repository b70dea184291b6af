"""`warnings.warn` in converted code (NOTE [warnings in staged bodies]).

NOTE [warnings in staged bodies]
A staged body runs once, while tracing, on both paths of a branch; its graph then runs on
every call. A graph cannot warn, and a `warnings.warn` run while the body is traced would warn
even where the program never takes its branch (a false warning), with the tracer's text for
the numbers it formats. So the graph does not give the warning, and autoconv says so, once per
line, while tracing: a UserWarning located at the user's `warnings.warn` ("... is in a staged
body: the graph does not give this warning"). Its arguments are not made there (the converter
passes them as a function, autoconv/converters/calls.py): text a graph cannot format (`"... %d"
% ii` of a traced `ii`, POT's `ot.sinkhorn`) is no refusal. The same holds in every mode
(replay, torch.export, torch.compile: dynamo calls the warning function for real while it
traces). Outside staged bodies `warnings.warn` runs as Python's, once while tracing (the code
around staged statements runs only then).
"""

from __future__ import annotations

import warnings

import torch

from .errors import dynamo_user_location, user_location
from .staging import context

__all__ = ["warn_"]

_warned: set = set()  # the (file, line)s autoconv has warned about


def warn_(warn, given):
    """`warn(*args, **kwargs)` (`warnings.warn`) where `given()` makes `(args, kwargs)`.

    Converted code calls this for the user's `warnings.warn(...)`."""
    if not context.in_staged_body():
        args, kwargs = given()
        if torch.compiler.is_dynamo_compiling():
            # (dynamo skips warnings.warn: given for real while dynamo traces, as in replay)
            return _warn_now(dynamo_user_location(), args, tuple(kwargs.items()))
        # (one level up: the user's line, which called this function)
        return warn(*args, **{**kwargs, "stacklevel": kwargs.get("stacklevel", 1) + 1})
    if torch.compiler.is_dynamo_compiling():
        return _not_given(dynamo_user_location())
    return _not_given(user_location())


def _warn_now(location, args, kwargs):
    """`warnings.warn(*args, **kwargs)` located at `location` ((file, line))."""
    kwargs = dict(kwargs)
    message = args[0] if args else kwargs["message"]
    category = args[1] if len(args) > 1 else kwargs.get("category")
    if isinstance(message, Warning):
        category = type(message)
    if location is None:
        return warnings.warn(message, category)
    warnings.warn_explicit(message, category or UserWarning, *location)


_warn_now._dynamo_marked_constant = True  # (dynamo calls it rather than tracing it)


def _not_given(location):
    if location is None or location in _warned:
        return
    _warned.add(location)
    filename, line = location
    warnings.warn_explicit(
        "autoconv: this warnings.warn is in a staged body (a branch or loop on tensor values): "
        "the graph does not give this warning (a graph cannot warn, and warning while tracing "
        "would warn even where the branch is never taken); warn from the function's results "
        "instead", UserWarning, filename, line)


_not_given._dynamo_marked_constant = True  # (dynamo calls it for real: once, while tracing)
