"""The differential check: plain Python on eager tensors against one autoconv graph.

`check(source, k, inputs)` defines the function in `source` (registered with `linecache`, so
autoconv can read its source as if it were in a file), runs it as plain Python on every input,
traces one `ConcreteFunction` on the first input and replays it on all of them. Optionally
`torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")` runs them too, and
`torch.export(strict=False)` of the converted function, saved and loaded, runs them as a
deployment would. It returns None when everything agrees, else a `Failure`.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import random
import re
import signal
import sys
import traceback
from dataclasses import dataclass

import torch

import autoconv
from autoconv_runtime import StagingError

from .generator import FUNCTION_NAME, OPTIONAL, RAISES, TENSOR_PARAMS, UNBOUND

__all__ = ["Failure", "Invalid", "check", "choose_inputs", "define", "make_args", "forget"]

# Categories of failure, from the most to the least specific.
MISMATCH = "mismatch"  # graph and Python give different values, dtypes or structure
CRASH = "crash"  # autoconv refused a valid program with its own error (ConversionError, StagingError)
INTERNAL = "internal"  # any other exception inside conversion, tracing or replay
TIMEOUT = "timeout"  # conversion, tracing or replay ran past the time limit


@dataclass
class Failure:
    """How a program failed: `category`, where (`stage`), and a one-line `detail`."""

    category: str
    stage: str  # "trace", "replay", "export" or "compile"
    detail: str
    error_type: str = ""
    trace: str = ""

    def signature(self) -> tuple:
        """What must stay the same while minimising: the category, stage and exception type,
        and for an exception its message with names of places (numbers, files) removed."""
        if self.category == MISMATCH:
            return (self.category, self.stage)
        return (self.category, self.stage, self.error_type, _normalise(self.detail))

    def __str__(self) -> str:
        return f"{self.category} at {self.stage}: {self.detail}"


class Invalid(Exception):
    """The program itself is wrong as plain Python (a bug in the generator, or a minimiser
    candidate that broke the program)."""


class _Timeout(BaseException):
    """The time limit's alarm. Not an Exception: autoconv takes any Exception raised while it
    traces a staged branch for the branch's own (NOTE [a branch that raises while traced]) and
    specialised the statement on it, so a time-out at load became a GuardFailed at replay (fuzz
    seed 1, program 230)."""


def _normalise(message: str) -> str:
    message = re.sub(r"\S*<fuzz[^>]*>\S*|\S+\.py:\d+:(\d+:)?", "<file>", message)
    return re.sub(r"\d+", "N", message)[:300]


_counter = [0]


def define(source: str, name: str | None = None):
    """The function defined by `source`, readable by `inspect` through `linecache`."""
    _counter[0] += 1
    filename = name or f"<fuzz-{_counter[0]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"torch": torch}
    try:
        exec(compile(source, filename, "exec"), namespace)
    except SyntaxError as e:
        forget(filename)
        raise Invalid(f"does not compile: {e}") from None
    except Exception as e:  # noqa: BLE001 - e.g. a minimiser candidate without its import
        forget(filename)
        raise Invalid(f"does not define {FUNCTION_NAME}: {type(e).__name__}: {e}") from None
    if FUNCTION_NAME not in namespace:
        forget(filename)
        raise Invalid(f"does not define {FUNCTION_NAME}")
    return namespace[FUNCTION_NAME]


def forget(fn_or_filename) -> None:
    """Drop a defined function's source from `linecache`."""
    name = getattr(getattr(fn_or_filename, "__code__", None), "co_filename", fn_or_filename)
    linecache.cache.pop(name, None)


def make_args(row) -> tuple:
    """(x, y, k) as the function takes them: two 0-d int64 tensors and a Python int."""
    x, y, k = row
    return torch.tensor(x, dtype=torch.int64), torch.tensor(y, dtype=torch.int64), int(k)


@dataclass(frozen=True)
class Raised:
    """Plain Python's outcome when the program raises one of `generator.RAISES`: the graph must
    raise it too (autoconv's replay raises the same type; a torch.compile'd function raises
    RuntimeError("<Type>: <message>"), see README "raise under a tensor condition")."""

    type_name: str
    message: str

    def matches(self, error: BaseException) -> bool:
        if type(error).__name__ == self.type_name and str(error) == self.message:
            return True
        return isinstance(error, RuntimeError) and f"{self.type_name}: {self.message}" in str(error)


def _reference(fn, row):
    try:
        out = fn(*make_args(row))
    except Exception as e:  # noqa: BLE001 - any error means the program is not valid Python
        if type(e).__name__ in RAISES and _intended(e):
            return Raised(type(e).__name__, str(e))
        raise Invalid(f"plain Python raised {type(e).__name__}: {e}") from None
    leaves = out if isinstance(out, tuple) else (out,)
    if not all(isinstance(v, torch.Tensor) and v.dtype == torch.int64 and v.dim() == 0
               for v in leaves):
        raise Invalid(f"plain Python returned {out!r}, not int64 tensors")
    return out


def _intended(error: BaseException) -> bool:
    """Whether a raise is one the generator means: its own `raise ValueError('fuzz')`, or the
    read of `m` (generator.UNBOUND), which only loops bind. Any other variable read unbound (a
    minimiser candidate that deleted an assignment, or read a loop's variable after it)
    makes the program invalid: such a read is outside what the generator writes."""
    if not isinstance(error, UnboundLocalError):
        return True
    return str(error) == "fuzz" or f"'{UNBOUND}'" in str(error)


def choose_inputs(fn, k: int, rng: random.Random, count: int = 5, tries: int = 16) -> list:
    """Inputs whose plain-Python runs take different paths (different sets of lines), the
    first one tried first; at most `count`. Raises `Invalid` if plain Python fails."""
    filename = fn.__code__.co_filename
    chosen, seen = [], set()
    candidates = [(0, 0, k), (3, -2, k)] + [(rng.randint(-8, 8), rng.randint(-8, 8), k)
                                            for _ in range(tries - 2)]
    for row in candidates:
        lines = set()

        def tracer(frame, event, arg):
            if frame.f_code.co_filename != filename:
                return None
            if event == "line":
                lines.add(frame.f_lineno)
            return tracer

        sys.settrace(tracer)
        try:
            _reference(fn, row)
        finally:
            sys.settrace(None)
        key = frozenset(lines)
        if key not in seen:
            seen.add(key)
            chosen.append(row)
            if len(chosen) == count:
                break
    return chosen


# The time limit counts the process's CPU time (ITIMER_PROF), not wall time: on the shared
# machine (2 cores, load 9-16, the fuzzer at nice 19) wall time made time-outs of the machine
# (seed 16's first programs ran past 120 s of wall time on 2 s of CPU), and a time-out must
# mean a program autoconv takes too long on, which a CPU-bound hang is. A generous wall-time
# limit stays for a wait that uses no CPU.
WALL_FACTOR = 20


# NOTE [a time limit no finaliser can swallow]
# The alarm raises _Timeout wherever the program's Python is, and an exception raised inside a
# finaliser (a weakref callback, `__del__`, a gc callback) is printed and dropped ("Exception
# ignored in ..."): session 42's run saw one of torch's weakref finalisers swallow it, and the
# program ran about 160 s past its 60 s limit. So the timers repeat (every REPEAT seconds of
# CPU after the limit, and twenty times that of wall time) until the limit's block ends, and a
# block that ends normally after one fired raises _Timeout at its end: a swallowed alarm is a
# time-out one repeat late, never a program that runs on or counts as agreeing. (A process per
# program would be immune, but starting one that imports torch, autoconv and the fuzzer took
# 2.7-2.9 s of CPU, 8.7-9.7 s of wall time at load 12, where a program takes ~0.3 s.)
REPEAT = 1.0


@contextlib.contextmanager
def _time_limit(seconds):
    if not seconds or not hasattr(signal, "SIGALRM") or not hasattr(signal, "SIGPROF"):
        yield
        return
    fired = []

    def on_alarm(signum, frame):
        fired.append(signum)
        raise _Timeout

    previous = (signal.signal(signal.SIGALRM, on_alarm), signal.signal(signal.SIGPROF, on_alarm))
    signal.setitimer(signal.ITIMER_PROF, seconds, REPEAT)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_FACTOR, REPEAT * WALL_FACTOR)
    try:
        yield
        if fired:  # (every alarm was swallowed)
            raise _Timeout
    finally:
        try:
            _disarm()
        finally:  # (an alarm that fired before the first could end it)
            _disarm()
            signal.signal(signal.SIGALRM, previous[0])
            signal.signal(signal.SIGPROF, previous[1])


def _disarm():
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _outcome(call, expected, row, refusal=None) -> str | None:
    """Why calling `call()` does not give `expected` (a value, or `Raised`), or None. An
    exception where Python returns a value propagates, to be classified; so does one that
    `refusal` (a test of the error) takes for a documented refusal where Python raises."""
    try:
        actual = call()
    except Exception as e:  # noqa: BLE001
        if isinstance(expected, Raised) and expected.matches(e):
            return None
        if refusal is not None and refusal(e):
            raise
        if isinstance(expected, Raised) and not _timed_out(e):  # a time-out is classified
            return f"on {row}: raised {type(e).__name__}: {e}, Python raises {expected.type_name}"
        raise
    if isinstance(expected, Raised):
        return f"on {row}: got {actual!r}, Python raises {expected.type_name}: {expected.message}"
    return _compare(actual, expected, row)


def _compare(actual, expected, row) -> str | None:
    """Why `actual` differs from `expected` (values, dtypes, shapes, structure), or None."""
    a_leaves = actual if isinstance(actual, tuple) else (actual,)
    e_leaves = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(actual, tuple) != isinstance(expected, tuple) or len(a_leaves) != len(e_leaves):
        return f"on {row}: got {actual!r}, Python gives {expected!r}"
    for a, e in zip(a_leaves, e_leaves):
        if not isinstance(a, torch.Tensor):
            return f"on {row}: got {actual!r} (not a tensor), Python gives {expected!r}"
        if a.dtype != e.dtype or a.shape != e.shape or not torch.equal(a, e):
            return f"on {row}: got {actual!r}, Python gives {expected!r}"
    return None


def _documented_compile_refusal(error: BaseException) -> bool:
    """The refusals README documents under torch.compile: a staged body that changes an object's
    attribute (`s.v = t`; NOTE [dynamo loses attribute stores] in runtime/staging/objects.py;
    dynamo cannot build the StagingError itself, so its message names the raise instead), and a
    statement nested so deep that dynamo would pass Python's recursion limit (README "Deep
    nesting", NOTE [nesting under dynamo]: a StagingError at its line, never dynamo's
    RecursionError, which stays an internal error), and a staged body that changes a variable
    a nested function reads (generator `--with closure`: README "Closures see variables'
    current values ... under torch.compile that is refused"; `shares_cells` in
    runtime/operators.py), and a `None` of generator `--with optional`'s `o` on some paths of a
    staged statement (README: "under `torch.compile` the `None` is still refused")."""
    text = str(error)
    if isinstance(error, StagingError) and re.search(
            rf"'{OPTIONAL}' (is a Python NoneType before|.* becomes a Python NoneType in)", text):
        return True
    if isinstance(error, StagingError) and "would pass Python's recursion limit" in text:
        return True
    if isinstance(error, StagingError) and ("under torch.compile a staged body cannot update "
                                            "the variable the closure sees") in text:
        return True
    if _callee_side_effect(text):
        return True
    # (and its form where autoconv raises it for real, a number field of an object whose
    # change the run ahead of tracing did not see: `cnt.n += 1` beside a counter in a list)
    return ("loses attribute changes" in text or "can change under a tensor condition only "
            "where autoconv's run" in text.replace("\n", " ") or (
                "raise StagingError" in text and "staging/objects.py" in text))


# The counting callables of generator._Callees, whose updates dynamo may refuse
_COUNTING_CALLEES = ("__call__", "tick", "count_in")


def _callee_side_effect(text: str) -> bool:
    """Dynamo's refusal README documents under torch.compile for a count a callee keeps in
    Python state it reaches through a callable (a callable object's list, a bound method's or a
    partial's), changed in a staged loop: "HOP: Unsafe side effect", raised at the callee's
    line. Only there: the same refusal at a line of fuzz_fn is autoconv's to carry."""
    if "Unsafe side effect" not in text:
        return False
    frames = re.findall(r'File "<fuzz[^"]*>", line \d+, in (\w+)', text)
    return bool(frames) and frames[-1] in _COUNTING_CALLEES


def _documented_trace_refusal(error: BaseException) -> bool:
    """The refusal README documents for an argument (`x`, `y`) that a staged statement rebinds
    on some paths only and a compound statement after it updates in place and rebinds (`if c:
    y = t` then a loop with `y += v`): in Python the caller's tensor changes on the paths that
    kept it, which the graph's copy cannot reach (NOTE [in-place updates of a choice] in
    autoconv/converters/choices.py). The generator updates its arguments in place now and then;
    the runner compares return values only, so this is the honest outcome, not a crash."""
    if not isinstance(error, StagingError):
        return False
    found = re.search(r"`(\w+)` is updated in place and rebound inside this statement",
                      str(error))
    return found is not None and found.group(1) in TENSOR_PARAMS


def _timed_out(error: BaseException) -> bool:
    # torch wraps exceptions raised while dynamo traces (the alarm may fire there).
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, _Timeout) or str(error).startswith("_Timeout"):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _classify(error: BaseException, stage: str) -> Failure:
    if _timed_out(error):
        return Failure(TIMEOUT, stage, "ran past the time limit", "Timeout")
    own = isinstance(error, (autoconv.ConversionError, StagingError))
    category = CRASH if own else INTERNAL
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-12:])
    return Failure(category, stage, detail, type(error).__name__, trace)


def check(source: str, inputs: list, *, compile: bool = False, export: bool = False,
          time_limit: float = 60.0, filename: str | None = None,
          reset: bool = True, compile_time_limit: float | None = None) -> Failure | None:
    """Run the differential check; None if autoconv agrees with plain Python everywhere.

    With `export`, the converted function is also exported (strict=False) on the first input,
    saved, loaded and run on every input; with `compile`, run under torch.compile. With
    `reset`, dynamo's caches are cleared first. `time_limit` is the CPU seconds of the trace,
    replay and export together; the torch.compile stage has its own `compile_time_limit` (the
    same where None: NOTE [the compile stage's own time limit]). Raises `Invalid` when plain
    Python itself fails on an input.
    """
    fn = define(source, filename)
    try:
        expected = [_reference(fn, row) for row in inputs]
        if reset:
            # Dynamo traces staged bodies; a state leak between two similar programs
            # (tests/test_fuzz.py) would otherwise make every later program fail the same way.
            torch._dynamo.reset()
        return _differential(fn, inputs, expected, compile, export, time_limit,
                             time_limit if compile_time_limit is None else compile_time_limit)
    finally:
        forget(fn)


def _per_call(function, inputs, expected):
    """Compare `function` called on each input (retracing where its guards fail) with Python."""
    for row, want in zip(inputs, expected):
        why = _outcome(lambda: function(*make_args(row)), want, row)
        if why:
            return Failure(MISMATCH, "replay", why)
    return None


class _Calling(torch.nn.Module):
    """A module whose forward calls `fn` (what torch.export takes)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def _exported(fn, row):
    """`fn` converted, exported with strict=False on `row`, saved and loaded again: the module a
    deployment runs without autoconv or the source (as tests/support.py's `exported`)."""
    saved = io.BytesIO()
    torch.export.save(torch.export.export(_Calling(autoconv.convert(fn)), make_args(row),
                                          strict=False), saved)
    saved.seek(0)
    return torch.export.load(saved).module()


# NOTE [the compile stage's own time limit]
# torch.compile of a converted program costs dynamo's interpretation of autoconv's runtime:
# about 26k bytecode steps per staged statement, each statement staged once more for every
# statement it is nested in (fuzz54: a 4-deep `if`/`elif` chain staged 13 times, its innermost
# branches run 6 times; 337k steps, 20 s of CPU), so a program of a dozen nested statements
# takes minutes of CPU where its trace, replay and export take a second or two (seed 5311's
# program 50: 219 s of CPU, right). One limit for every stage either let a hung trace run for
# minutes or counted such a compile as a time-out: the compile stage has its own CPU budget
# (the CLI's --compile-time-limit, docs/fuzzing.md), and a time-out says which limit it passed.
def _differential(fn, inputs, expected, compile, export, time_limit, compile_time_limit):
    stage = "trace"
    try:
        with _time_limit(time_limit):
            function = autoconv.autoconv(fn)
            try:
                concrete = function.get_concrete_function(*make_args(inputs[0]))
            except Exception as e:  # noqa: BLE001
                # A raise that plain Python takes on every input (under a Python condition)
                # raises while tracing too.
                if all(isinstance(w, Raised) and w.matches(e) for w in expected):
                    return None
                # A statement that could not be staged is specialised on the traced input's
                # value (NOTE [specialisation]); where that input takes Python's raising path,
                # the trace raises as Python does, and each other input traces its own graph.
                if isinstance(expected[0], Raised) and expected[0].matches(e):
                    return _per_call(function, inputs, expected)
                if _documented_trace_refusal(e):
                    return None
                raise
            stage = "replay"
            for row, want in zip(inputs, expected):
                why = _outcome(lambda: concrete(*make_args(row)), want, row)
                if why:
                    return Failure(MISMATCH, stage, why)
            if function.trace_count != 1:
                return Failure(MISMATCH, stage, f"traced {function.trace_count} times, not once")
            # (a program whose first input raises as Python does at trace is specialised and
            # checked per call above; an exported program has no retrace to fall back on)
            if export:
                stage = "export"
                module = _exported(fn, inputs[0])
                for row, want in zip(inputs, expected):
                    why = _outcome(lambda: module(*make_args(row)), want, row)
                    if why:
                        return Failure(MISMATCH, stage, why)
        if compile:
            stage = "compile"
            with _time_limit(compile_time_limit):
                compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager",
                                         dynamic=False)
                for row, want in zip(inputs, expected):
                    try:
                        why = _outcome(lambda: compiled(*make_args(row)), want, row,
                                       refusal=_documented_compile_refusal)
                    except Exception as e:  # noqa: BLE001
                        if _documented_compile_refusal(e):
                            return None
                        raise
                    if why:
                        return Failure(MISMATCH, stage, why)
    except (Exception, _Timeout) as e:  # noqa: BLE001 - every error is a finding, classified
        return _classify(e, stage)
    return None
