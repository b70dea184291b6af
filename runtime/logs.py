"""`logging` calls in converted code (NOTE [logging while tracing]).

NOTE [logging while tracing]
A logging call is a Python side effect: in a traced function it runs once, while the graph is
traced (README: side effects in staged bodies), and a graph never logs. Three things went wrong
on the way there, which this module keeps apart from the user's other calls:
- Under dynamo (`torch.compile` of converted code), `converted_call(log.info, ...)` took the
  type of `log.info`, which dynamo holds as an attribute of its logger variable with no type:
  "GetAttrVariable(LoggingLoggerVariable(), info) has no type" from inside `while_stmt`
  (tester25 s07), where plain `torch.compile` of the same call gives torch's own rule. The
  converter now sends a logging call (a method of a Logger or LoggerAdapter, or one of the
  `logging` module's functions) here with its receiver, and under dynamo the call is made as
  written, so that dynamo applies that rule: a no-op under strict `torch.export` and for the
  methods in `torch._dynamo.config.ignore_logging_functions`, its "logging.Logger method not
  supported" otherwise.
- While autoconv traces (replay, non-strict `torch.export`), an enabled logger read the clock
  for its record's time stamp, which autoconv refuses in traced code (the clock's number would
  be the graph's constant): logging's own reads are not the user's.
- A traced tensor given as an argument was formatted by the logger's handler from the tracer's
  placeholder (logging's "--- Logging error ---" for `%.3f` of it, or "FakeTensor(...)"), once,
  and never again on the calls the graph serves: refused at the line, where the logger would
  emit the record. A call the logger drops for its level makes no record at all, as in Python.
"""

from __future__ import annotations

import logging

import torch

from .errors import StagingError
from .staging import ambient, context
from .text import TracedText
from .values import is_staged

__all__ = ["LOG_METHODS", "is_logger", "log_call", "logging_call"]

# The methods of logging.Logger and logging.LoggerAdapter (and the `logging` module's functions
# of the same names, which log on the root logger) that make a record, by the level they log at
# (`log` takes its level as its first argument).
LOG_METHODS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "warn": logging.WARNING, "error": logging.ERROR, "exception": logging.ERROR,
               "critical": logging.CRITICAL, "fatal": logging.CRITICAL, "log": None}


def is_logger(obj) -> bool:
    """Whether `obj` is a logger (or the `logging` module, whose functions log on the root)."""
    return obj is logging or isinstance(obj, (logging.Logger, logging.LoggerAdapter))


def logging_call(obj, name: str, /, *args, **kwargs):
    """`obj.name(*args, **kwargs)` for a logging call the converter found through globals
    (`obj` None: the `logging` module's function `name`, imported by name)."""
    if obj is None:
        obj = logging
    if not is_logger(obj):  # (the global was rebound since the conversion)
        from .calls import converted_method_call
        return converted_method_call(obj, name, *args, **kwargs)
    return log_call(obj, name, args, kwargs)


def log_call(obj, name: str, args: tuple, kwargs: dict):
    """`obj.name(*args, **kwargs)` of a logger `obj` (`is_logger`) and a method of
    `LOG_METHODS`: NOTE [logging while tracing]."""
    if torch.compiler.is_dynamo_compiling():
        # (dynamo's own rule for a Logger's method; it has none for the module's functions,
        # which log on the root logger: "Unsupported python_type() call")
        return getattr(logging.root if obj is logging else obj, name)(*args, **kwargs)
    method = getattr(obj, name)
    level = LOG_METHODS[name]
    if level is None:
        level, args = (args[0], args[1:]) if args else (kwargs.pop("level"), args)
        method = _at_level(method, level)
    if not _enabled(logging.root if obj is logging else obj, level):
        return None
    staged = next((value for value in (*args, *kwargs.values()) if _traced(value)), None)
    if staged is not None:
        raise StagingError(
            context.staged_statement() or "logging call",
            f"logging.{name}() of a traced value: the logger would format the record once, "
            "while the graph is traced, from the tracer's placeholder, and never on the calls "
            "the graph serves (a graph does not log)",
            "Return the value and log it outside the autoconv function, or print(...) it "
            "(print of a traced value runs on every call of the graph)")
    with ambient.not_watched():  # (the record's time stamp is logging's read, not the user's)
        return method(*args, **kwargs)


def _at_level(method, level):
    return lambda *args, **kwargs: method(level, *args, **kwargs)


def _enabled(logger, level) -> bool:
    """`logger.isEnabledFor(level)`, without filling the logger's cache (a staged body that
    changed it was refused as an object's dict gaining keys)."""
    if isinstance(logger, logging.LoggerAdapter):
        logger = logger.logger
    if not isinstance(level, int) or not isinstance(logger, logging.Logger):
        return True  # (logging's own TypeError, or a Logger-like object: as Python)
    if logger.disabled or logger.manager.disable >= level:
        return False
    return level >= logger.getEffectiveLevel()


def _traced(value, depth=0) -> bool:
    if is_staged(value) or isinstance(value, TracedText):
        return True
    if depth < 2 and isinstance(value, (list, tuple)):
        return any(_traced(item, depth + 1) for item in value)
    if depth < 2 and isinstance(value, dict):
        return any(_traced(item, depth + 1) for item in value.values())
    return False
