"""Calls that reach outside the program on each call, refused at the line where a graph would
run them once, while traced: clocks and Python's and numpy's random draws (their value), and
writes to files (in staged bodies).

NOTE [clocks and Python random draws under a tracer]
`time.time()`, `datetime.now()`, `random.random()`, `np.random.rand()` give a Python number.
A tracer runs the function's Python once: the number becomes a constant of the graph, the same
on every call (a time stamp that never moves, noise that never changes). autoconv's replay
refused them after the trace (a clock wrapped in its module, a move of Python's or numpy's
global generator: runtime/staging/ambient.py, autoconv/capture.py) but torch.export of
`autoconv.convert(fn)` baked them into the program silently (tester27 s03), as would make_fx
or torch.fx of converted code. So converted code calls them through `outside_value_`, which
refuses them at the user's line under every tracer that builds a graph (autoconv's, export,
make_fx, torch.fx, dynamo), with one exception where torch is right:

Under torch.compile, dynamo itself calls `random.randint`, `random.randrange` and
`random.uniform` of Python's module on each call of the compiled code, before the graph runs,
and passes the numbers in (torch/_dynamo/variables/user_defined.py, `call_random_fn`): the same
numbers as Python, seeded alike. That holds outside staged statements only: a draw in a branch
is made on every call, taken or not, and a draw in a loop body once for all the trips. So those
three are called as they are under dynamo outside staged bodies, and refused in them. dynamo
cannot trace the others (`random.random` itself in torch 2.13: "Attempted to call function
marked as skipped"; the clocks; numpy's draws it turns into torch's generator's, other numbers
than numpy's seeded stream): refused at the line too, with what to write instead.

A draw from a generator object (`rng = random.Random(0)`, `np.random.default_rng(0)`, a
`RandomState`) is refused like the module's functions: the global generator's state check
after a replay's trace did not see it (the object's numbers were baked in replay too). Under a
torch.func transform of concrete values, which runs the Python as it is, all are called.
"""

from __future__ import annotations

import builtins
import datetime
import io
import json
import marshal
import os
import pathlib
import pickle
import random
import shutil
import sys
import time

import torch

from .errors import StagingError
from .staging import context, registry, specialize
from .staging.tracers.dispatch import under_dispatch_mode
from .staging.tracers.symbolic import SymbolicTracer

__all__ = ["outside_value_", "outside_value", "refused_method", "is_generator", "refuse_call"]

_CLOCK, _DRAW, _WRITE = "clock", "draw", "write"

_CLOCK_FUNCTIONS = ("time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic",
                    "monotonic_ns", "process_time", "process_time_ns", "thread_time",
                    "thread_time_ns")
# class methods of datetime's C types (a new bound method on each lookup: known by name)
_CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
# random.Random's methods that draw (its state methods are runtime/random_state.py's)
_PYTHON_DRAWS = frozenset({
    "random", "uniform", "triangular", "randint", "choice", "randrange", "sample", "shuffle",
    "choices", "normalvariate", "lognormvariate", "expovariate", "vonmisesvariate",
    "gammavariate", "gauss", "betavariate", "paretovariate", "weibullvariate", "getrandbits",
    "randbytes", "binomialvariate"})
# drawn by dynamo itself on each call of compiled code (see the NOTE)
_DYNAMO_DRAWS = frozenset({"random.randint", "random.randrange", "random.uniform"})
# numpy's RandomState / Generator methods that are no draw (state methods: random_state.py)
_NUMPY_NOT_DRAWS = frozenset({"get_state", "set_state", "seed", "spawn", "bit_generator"})
# {id(function): (function, name)}
_TABLE = {id(getattr(time, name)): (getattr(time, name), f"time.{name}", _CLOCK)
          for name in _CLOCK_FUNCTIONS}
# NOTE [writes to files in staged bodies]
# `torch.save(model.state_dict(), path)` in a branch of a staged `if` (an early-stopping
# checkpoint, tester27 s04) ran while the branch was traced, on the trace's values: torch's
# pickler failed on them ("Can't pickle local object 'WeakValueDictionary...'"), and a write of
# Python values would have happened once, at tracing, whatever the calls' conditions, and
# never when the graph runs (a graph cannot write a file). Such calls are refused in the body
# of a staged statement, under every tracer, and never specialised instead (a retrace per
# condition value would still write once per trace, not per call). Outside staged bodies they
# run as Python does, while tracing (AutoGraph's rule): a save under a Python condition runs.
_WRITE_FUNCTIONS = [(torch, "save"), (pickle, "dump"), (json, "dump"), (marshal, "dump"),
                    (os, "remove"), (os, "unlink"), (os, "rename"), (os, "replace"),
                    (os, "makedirs"), (os, "mkdir"), (os, "rmdir"), (shutil, "copy"),
                    (shutil, "copyfile"), (shutil, "copy2"), (shutil, "move"),
                    (shutil, "rmtree")]
_TABLE.update({id(getattr(m, name)): (getattr(m, name), f"{m.__name__}.{name}", _WRITE)
               for m, name in _WRITE_FUNCTIONS})
_TABLE[id(builtins.open)] = (builtins.open, "open", _WRITE)
_NUMPY_WRITES = ("save", "savez", "savez_compressed", "savetxt")
# methods that write, of file objects and of paths
_FILE_WRITES = frozenset({"write", "writelines"})
_PATH_WRITES = frozenset({"write_text", "write_bytes", "unlink", "mkdir", "touch", "rename",
                          "replace", "rmdir"})
# classes whose attributes the converter may look up to resolve a callee
OWNERS = (datetime.datetime, datetime.date)


def _numpy_generator_types() -> tuple:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return ()
    return numpy.random.RandomState, numpy.random.Generator


def is_generator(value) -> bool:
    """Whether `value` is a Python or numpy random generator object."""
    return isinstance(value, random.Random) or isinstance(value, _numpy_generator_types())


def outside_value(fn) -> tuple[str, str] | None:
    """(name, kind) of the clock, random draw or write to files `fn` is (`time.time`,
    `random.random`, `numpy.random.rand`, a draw method of a generator object, `torch.save`,
    a file's `write`), or None. Asked by the converter of the callees it resolves, and by
    `converted_call` of the others."""
    if not _numpy_loaded and "numpy" in sys.modules:
        _load_numpy()
    try:  # (before unwrapping: numpy's functions wrap their dispatch)
        entry = _TABLE.get(id(fn))
    except TypeError:
        return None
    if entry is not None and entry[0] is fn:
        return entry[1], entry[2]
    for _ in range(8):  # ambient.py's watching wrappers, while a replay traces
        inner = getattr(fn, "__wrapped__", None) if callable(fn) else None
        if inner is None:
            break
        fn = inner
    try:
        entry = _TABLE.get(id(fn))
    except TypeError:
        return None
    if entry is not None and entry[0] is fn:
        return entry[1], entry[2]
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__name__", None)
    if owner is None or not isinstance(name, str):
        return None
    if isinstance(owner, type) and issubclass(owner, datetime.date) and name in _CLOCK_METHODS:
        return f"datetime.{owner.__name__}.{name}", _CLOCK
    if isinstance(owner, random.Random) and name in _PYTHON_DRAWS:
        return (f"random.{name}" if owner is random._inst
                else f"random.Random.{name}"), _DRAW
    if isinstance(owner, io.IOBase) and name in _FILE_WRITES:
        return f"{type(owner).__name__}.{name}", _WRITE
    if isinstance(owner, pathlib.PurePath) and name in _PATH_WRITES:
        return f"pathlib.Path.{name}", _WRITE
    numpy_types = _numpy_generator_types()
    if numpy_types and isinstance(owner, numpy_types) and not name.startswith("_") \
            and name not in _NUMPY_NOT_DRAWS:
        numpy = sys.modules["numpy"]
        if owner is numpy.random.mtrand._rand:
            return f"numpy.random.{name}", _DRAW
        return f"numpy.random.{type(owner).__name__}.{name}", _DRAW
    return None


_numpy_loaded = False


def _load_numpy() -> None:
    global _numpy_loaded
    numpy = sys.modules["numpy"]
    for name in _NUMPY_WRITES:
        function = getattr(numpy, name, None)
        if function is not None:
            _TABLE[id(function)] = (function, f"numpy.{name}", _WRITE)
    _numpy_loaded = True


def graph_tracing() -> bool:
    """True while a tracer that builds a graph runs (as runtime/random_state.py asks)."""
    if under_dispatch_mode():
        return True
    return any(tracer.is_tracing() for tracer in registry.tracers()
               if isinstance(tracer, SymbolicTracer) or tracer in registry.third_party)


def outside_value_(fn, name: str, kind: str, /):
    """`fn`, the callee of a call the converter resolved to the clock or random draw `name`
    (see `outside_value`), refused where a graph would hold its value (NOTE [clocks and Python
    random draws under a tracer]). The converter passes name and kind: under dynamo this runs
    as traced code.

    Raises:
        StagingError: under a tracer that builds a graph, at the user's line.
    """
    if not graph_tracing():
        return fn
    if kind == _WRITE:  # NOTE [writes to files in staged bodies]
        if not context.in_staged_body():
            return fn
        if name == "open":
            return _open_for_reading
        _refuse(name, kind)
    if torch.compiler.is_dynamo_compiling() and name in _DYNAMO_DRAWS \
            and not context.in_staged_body():
        return _drawn_by_dynamo(fn, name)  # dynamo draws it on each call, as Python does
    _refuse(name, kind)
    return fn  # (not reached)


def _open_for_reading(file, mode="r", *args, **kwargs):
    """`open(...)` in a staged body: refused for a mode that writes."""
    if any(c in mode for c in "wax+"):
        _refuse("open", _WRITE, f"open(..., {mode!r})")
    return open(file, mode, *args, **kwargs)


def _drawn_by_dynamo(fn, name):
    """`fn`, whose number dynamo draws before the graph runs and shows the code it traces as
    a tensor (`UnspecializedPythonVariable`): made a Python number of its own. autoconv's
    arithmetic asks a tensor operand for its tags (`ac.binary`), and dynamo then guards on
    that attribute of the drawn value, a guard it cannot build ("name 'random_value_0' is not
    defined", torch 2.13)."""
    # (by name: `isinstance(value, float)` is False there)
    kind = float if name == "random.uniform" else int

    def draw(*args, **kwargs):
        return kind(fn(*args, **kwargs))

    return draw


def _write_method(obj, name: str):
    if (isinstance(obj, io.IOBase) and name in _FILE_WRITES) \
            or (isinstance(obj, pathlib.PurePath) and name in _PATH_WRITES):
        return outside_value(getattr(obj, name, None))
    return None


def refused_method(obj, name: str) -> None:
    """Refuse `obj.name(...)`, a draw of a generator object, while a graph is traced
    (`converted_method_call`, for generators held in local names). Not under dynamo, which
    cannot ask a generator it made (`random.Random(seed)` in the compiled code) its class: it
    draws from it while tracing, the numbers Python draws from one seeded alike (an unseeded
    one it refuses itself)."""
    if torch.compiler.is_dynamo_compiling():
        return
    if is_generator(obj) and graph_tracing():
        found = outside_value(getattr(obj, name, None))
        if found is not None:
            _refuse(*found)
    written = _write_method(obj, name)
    if written is not None and graph_tracing() and context.in_staged_body():
        _refuse(*written)


def refuse_call(fn) -> None:
    """Refuse a call of a clock or random draw that the converter could not resolve (`clock =
    time.perf_counter` in the function, then `clock()`), reaching `converted_call`, while a
    graph other than dynamo's is traced (under dynamo the converter's path only: it cannot look
    a builtin up by identity)."""
    found = outside_value(fn)
    if found is not None and graph_tracing():
        outside_value_(fn, *found)


def _refuse(name: str, kind: str, call: str | None = None):
    if kind == _WRITE:
        call = call or f"{name}(...)"
        error = StagingError(
            "statement",
            f"`{call}` writes outside the program in the body of a staged if or loop: the "
            "body runs once, while the graph is traced, on the trace's values, and a graph "
            "cannot write a file, so it would not be written on the calls that take this path",
            "Move the call out of the staged statement: return what it writes from the "
            "autoconv function and write it after the call, or decide in Python there "
            "(`if bool(improved): torch.save(...)` outside the autoconv function)")
        raise specialize.never(error)
    if kind == _CLOCK:
        problem = (f"it reads the clock (`{name}()`) while the graph is traced: that runs once, "
                   "at tracing, and its number would be a constant of the graph, the same on "
                   "every call")
        fix = ("Read the clock outside the autoconv function (around the call) and pass the "
               "number in if the function needs it")
    else:
        python = "numpy's" if name.startswith("numpy.") else "Python's"
        problem = (f"it draws a number from {python} random generator (`{name}(...)`) while "
                   "the graph is traced: that runs once, at tracing, and its number would be a "
                   "constant of the graph, the same on every call")
        fix = ("Draw with torch instead (torch.rand(()), torch.randint, torch.bernoulli: ops "
               "of the graph, drawn again on each call), or draw outside the autoconv function "
               "and pass the number in")
    raise StagingError("function", problem, fix)
