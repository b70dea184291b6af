"""Process state a traced function reads in Python: guarded (grad mode, inference mode,
deterministic algorithms, environment variables) or refused (clocks).

NOTE [process state read while tracing]
A traced function's Python runs once; what it reads from the process becomes a constant of the
graph. `if torch.is_grad_enabled():` took the trace's path on every later call, in either grad
mode (tester t13 repro 11: a first call under no_grad, then a normal call, gave [4, 4] for
[3, 3]), and so did `torch.is_inference_mode_enabled()`, `are_deterministic_algorithms_enabled()`
and `os.environ.get("MODE")`. While autoconv traces, those reads made by the user's code (not
torch's own) are recorded with their values: the graph holds for those values only, and the
Function keys its graphs by them (`Function._extra`), so a call in another grad mode, or with
another value in the environment, traces again; a ConcreteFunction refuses such a call.

`time.time()`, `time.perf_counter()` and the other clocks of the `time` module read while
tracing would be the trace's numbers on every call (a step time that never changes): refused,
as Python's random numbers are (NOTE [Python's random numbers while tracing] in
autoconv/capture.py). So are `datetime.now()`, `utcnow()` and `today()`: methods of a C type,
which cannot be replaced in their class, so they are seen from converted code only (below).

The functions are wrapped in their modules while a trace runs, so calls through a name bound
before (`from time import perf_counter`) are seen only from converted code, which calls them
through `converted_call` (`wrapped`). The wrapping is for code the trace runs that autoconv does
not convert (a `do_not_convert` helper, a generator): its reads are refused or guarded too.
Every other caller in the process gets the real function's value (other threads: `_state` is
per thread), and so do the callers of NOTE [reads the interpreter makes between two steps].

NOTE [reads the interpreter makes between two steps]
The wrappers are the module's functions for the whole process while a trace runs, and the
interpreter runs code of its own between any two steps of the trace's: gc callbacks (and the
finalisers the collector runs), the profile and trace functions (`sys.setprofile`: a profiler,
a coverage tool), signal handlers (a sampling profiler's timer) and finalisers (`__del__`,
`weakref.finalize`); and `logging` reads the clock for each record's time stamp, from whatever
called the logger. Such a frame's caller is the trace's frame it interrupted, which made every
such clock read a read of the user's line: a gc callback that timed collections with
`time.process_time()` failed every trace that collected ("tracing f read the clock
(time.process_time())", errs43), and a profile function's read failed every trace it saw. No
read made in such a frame, or in what it calls, is the trace's: `_user_caller` passes over a
read with one of them between it and the frame that started the trace.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import logging
import os
import signal
import sys
import sysconfig
import threading
import time
import weakref

import torch

from ..errors import _RUNTIME_DIR, StagingError, users_file

__all__ = ["watching", "wrapped", "not_watched", "values_now", "refuse_clock_reads", "C_CLOCKS"]

_GUARDED = [(torch, "is_grad_enabled"), (torch, "is_inference_mode_enabled"),
            (torch, "are_deterministic_algorithms_enabled"),
            (torch, "is_deterministic_algorithms_warn_only_enabled")]
_CLOCKS = [(time, name) for name in ("time", "time_ns", "perf_counter", "perf_counter_ns",
                                     "monotonic", "monotonic_ns", "process_time",
                                     "process_time_ns", "thread_time", "thread_time_ns")]
# (looked up by `wrapped` only: a C type's attributes cannot be set; converted code calls them
# through `converted_call`, autoconv/converters/calls.py)
C_CLOCKS = [(datetime.datetime, "now"), (datetime.datetime, "utcnow"),
             (datetime.datetime, "today"), (datetime.date, "today")]
# frames passed over to find who read: the standard library's (`os.environ.get` is
# Mapping.get's, a frozen module's) and `converted_call`'s
_PASSED = (os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep,
           os.path.join(_RUNTIME_DIR, "calls.py"))
_MISSING = "<not set>"


class _State(threading.local):
    reads = None  # {label: (getter, args, value)} while a trace runs in this thread
    entry = None  # the frame that started that trace (`watching`'s caller)
    clock = None  # (file, line, name) of the first clock read while tracing
    unwatched = 0  # >0 while a library call autoconv makes for the user reads for itself


_state = _State()
_watchers = 0
_lock = threading.Lock()
_wrappers: dict = {}  # the original function -> its wrapper


def _user_caller():
    """(file, line) of the nearest caller outside the standard library and this module, where
    that is the user's code (converted code carries the user's file name); else None (torch's,
    autoconv's own)."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen ") or os.path
                                 .abspath(frame.f_code.co_filename).startswith(_PASSED)):
        frame = frame.f_back
    if frame is None or not users_file(frame.f_code.co_filename) \
            or frame.f_globals.get("__name__", "").partition(".")[0] == "autoconv":
        return None
    # A read made by an import that the trace started runs once per process, not once per
    # call: it is no input of the graph. torch imports modules lazily while a trace runs (its
    # first unbacked size imports torch.export, whose partitioner imports networkx, which reads
    # ~40 environment variables at import): each became a guard that every later call of
    # the Function and of the ConcreteFunction read again (perf18: 86 `os.environ` reads a
    # call of the greedy decoder benchmark). Imports around the trace (a script imported
    # that calls the function at its top level) are not the trace's: the walk stops at the
    # frame that started it.
    # (frame 2: the read's caller)
    if _not_the_traces(sys._getframe(2)):  # NOTE [reads the interpreter makes between two steps]
        return None
    return frame.f_code.co_filename, frame.f_lineno


# the signals a sampling profiler's or a time limit's timer sends (`signal.setitimer`), and the
# user's own (all 62 signals' handlers took 0.5 ms to look up)
_TIMER_SIGNALS = tuple(getattr(signal, name) for name in ("SIGALRM", "SIGVTALRM", "SIGPROF",
                                                           "SIGUSR1", "SIGUSR2")
                       if hasattr(signal, name))
_LOGGING_DIR = os.path.dirname(os.path.abspath(logging.__file__)) + os.sep
_FINALIZE = weakref.finalize.__call__.__code__


def _not_the_traces(frame) -> bool:
    """Whether a frame from `frame` to the one that started the trace is an import's, one the
    interpreter called on its own, or logging's (NOTE [reads the interpreter makes between two
    steps])."""
    hooks = None
    while frame is not None and frame is not _state.entry:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib._bootstrap") \
                or code.co_name == "__del__" or code is _FINALIZE \
                or code.co_filename.startswith(_LOGGING_DIR):
            return True
        if hooks is None:
            hooks = _hook_codes()
        if code in hooks:
            return True
        frame = frame.f_back
    return False


def _hook_codes() -> set:
    """The code of the functions the interpreter calls on its own in this thread now."""
    hooks = [*gc.callbacks, sys.getprofile(), sys.gettrace()]
    if threading.current_thread() is threading.main_thread():  # (handlers run there only)
        hooks += [signal.getsignal(number) for number in _TIMER_SIGNALS]
    codes = set()
    for hook in hooks:
        for _ in range(4):  # a bound method, a partial, an object with __call__
            if isinstance(hook, functools.partial):
                hook = hook.func
            elif hasattr(hook, "__func__"):
                hook = hook.__func__
            elif hook is not None and not hasattr(hook, "__code__") and callable(hook):
                hook = getattr(type(hook), "__call__", None)
            else:
                break
        code = getattr(hook, "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def _environ_value(key):
    return os.environ.get(key, _MISSING)


def _guarded(getter, label):
    @functools.wraps(getter)
    def read(*args, **kwargs):
        value = getter(*args, **kwargs)
        if _state.reads is not None and _user_caller() is not None:
            _state.reads.setdefault(label, (getter, args, value))
        return value

    return read


def _clock(getter, name):
    @functools.wraps(getter)
    def read(*args, **kwargs):
        if _state.reads is not None and _state.clock is None and not _state.unwatched:
            where = _user_caller()
            if where is not None:
                _state.clock = (*where, name)
        return getter(*args, **kwargs)

    return read


# NOTE [the wrappers seen by dynamo in another thread]
# The wrappers are the module's functions for every thread while a trace runs, dynamo's too.
# dynamo keeps tables of torch's functions built on its first compile in the process (its rule
# for each function, `trace_rules.get_torch_obj_rule_map`, and the handlers that fold
# `torch.is_grad_enabled()` and the like to a guarded constant, `_get_handlers`), looked up by
# the module's attribute then. A `torch.compile`d function first run in another thread while
# a trace ran built them with the wrappers: that compile failed ("torch.* op returned
# non-Tensor ... is_grad_enabled"), and so did every later compile, in the process's life, of
# code reading the grad mode, with no trace running (break52). They are built before the
# first wrapper is set (a trace imports dynamo anyway; once built, a dict lookup); a compile
# that meets a wrapper then traces its Python, which calls the function it wraps.
def _dynamo_tables_built() -> None:
    """Builds dynamo's tables of torch's functions (once a process; a trace imports dynamo
    anyway) before the wrappers replace them."""
    from torch._dynamo import trace_rules
    from torch._dynamo.variables.torch import TorchInGraphFunctionVariable

    trace_rules.get_torch_obj_rule_map()
    TorchInGraphFunctionVariable._get_handlers()


_ENVIRON_GETITEM = type(os.environ).__getitem__


def _environ_getitem(self, key):
    try:
        value = _ENVIRON_GETITEM(self, key)
    except KeyError:
        value = _MISSING
        raise
    finally:
        if _state.reads is not None and self is os.environ and _user_caller() is not None:
            _state.reads.setdefault(("os.environ", key), (_environ_value, (key,), value))
    return value


for _module, _name in _GUARDED:
    _original = getattr(_module, _name)
    _wrappers[_original] = _guarded(_original, f"{_module.__name__}.{_name}()")
for _module, _name in _CLOCKS + C_CLOCKS:
    _original = getattr(_module, _name)
    _wrappers[_original] = _clock(_original, f"{_module.__name__}.{_name}()")


def wrapped(fn):
    """The watching wrapper of `fn` while a trace runs in this thread, else `fn` (for calls
    through a name bound before the trace: `converted_call`)."""
    if _state.reads is None:
        return fn
    try:
        return _wrappers.get(fn, fn)
    except TypeError:  # unhashable
        return fn


@contextlib.contextmanager
def watching():
    """While autoconv traces: records the reads (yields {label: (getter, args, value)})."""
    global _watchers
    outer = _state.reads, _state.clock, _state.entry
    # (frame 0 is this generator, 1 contextlib's __enter__, 2 the `with` statement's)
    _state.reads, _state.clock, _state.entry = {}, None, sys._getframe(2)
    with _lock:
        _watchers += 1
        if _watchers == 1:
            _dynamo_tables_built()  # NOTE [the wrappers seen by dynamo in another thread]
            for module, name in _GUARDED + _CLOCKS:
                setattr(module, name, _wrappers[getattr(module, name)])
            type(os.environ).__getitem__ = _environ_getitem
    try:
        yield _state.reads
    finally:
        with _lock:
            _watchers -= 1
            if _watchers == 0:
                for module, name in _GUARDED + _CLOCKS:
                    setattr(module, name, getattr(module, name).__wrapped__)
                type(os.environ).__getitem__ = _ENVIRON_GETITEM
        clock = _state.clock
        _state.reads, _state.clock, _state.entry = outer
        _state.last_clock = clock


@contextlib.contextmanager
def not_watched():
    """Clock reads made inside are not the user's (a logger's time stamp for its record)."""
    _state.unwatched += 1
    try:
        yield
    finally:
        _state.unwatched -= 1


def values_now(reads) -> tuple:
    """The values that `reads`, (getter, args) pairs, give now."""
    return tuple(getter(*args) for getter, args in reads)


def refuse_clock_reads(name: str) -> None:
    """Raise a StagingError at the user's line if the trace just ended read a clock."""
    clock, _state.last_clock = getattr(_state, "last_clock", None), None
    if clock is None:
        return
    filename, line, what = clock
    raise StagingError.at(
        (filename, line), "function",
        f"tracing {name} read the clock ({what}): that runs once, while the graph is traced, "
        "and its number would be a constant of the graph, the same on every call",
        "Read the clock outside the autoconv function (around the call) and pass the number in "
        "if the function needs it")
