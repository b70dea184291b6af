"""Errors raised while converted code stages control flow, located at the user's line."""

from __future__ import annotations

import importlib.util
import linecache
import os
import re
import sys

import torch
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

__all__ = ["StagingError", "user_location", "users_file", "add_converted_library_file",
           "is_converted_library_file", "graph_error_message", "user_exception", "located",
           "DataDependentGuard", "data_dependent_error", "set_data_dependent_handler",
           "asked_by_a_kernel", "UNNAMED_SIZE"]

# With the separator: torchdiffeq's, torchmin's and torchcrf's files start with torch's directory
# name too, and they are user code (converted like any other).
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
# sympy runs for torch's symbolic shapes only (a line tracer looking for the user's line that
# stored a value found sympy's `numbers.py` run last before it)
_TORCH_DIRS = (_TORCH_DIR, *(os.path.dirname(os.path.abspath(spec.origin)) + os.sep
                             for spec in [importlib.util.find_spec("sympy")]
                             if spec is not None and spec.origin))


def user_location() -> tuple[str, int] | None:
    """The (file, line) of the innermost frame that is neither the runtime's nor torch's.

    Converted code is compiled with the user's file name and line numbers, so that frame is the
    user's own statement. Only called on error paths. (torch's tracers call bodies through
    code they generate with `eval`, named "<string>", which has no source to show.)
    """
    frame = sys._getframe(1)
    while frame is not None:
        if users_file(frame.f_code.co_filename):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


# torch's files whose functions autoconv converts (runtime/calls.py,
# `_CONVERTED_LIBRARY_FUNCTIONS`): a refusal in them names their line, as in user code.
_CONVERTED_TORCH_FILES: set = set()


def add_converted_library_file(filename: str) -> None:
    """Count `filename`, one of torch's, as the user's for locating errors (its functions that
    autoconv converts are run as user code)."""
    _CONVERTED_TORCH_FILES.add(os.path.abspath(filename))


def is_converted_library_file(filename: str) -> bool:
    """Whether `filename` is one of torch's files whose functions autoconv converts."""
    return os.path.abspath(filename) in _CONVERTED_TORCH_FILES


def users_file(filename: str) -> bool:
    """Neither the runtime's nor torch's file (but one of torch's whose functions autoconv
    converts), nor code generated without source."""
    generated = filename.startswith("<") and filename not in linecache.cache
    if generated:
        return False
    path = os.path.abspath(filename)
    return not path.startswith((_RUNTIME_DIR, *_TORCH_DIRS)) or path in _CONVERTED_TORCH_FILES


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
        # (torch.export's non-strict tracing runs Python: frames are the user's there)
        if torch.compiler.is_dynamo_compiling():
            _raise_under_dynamo(statement, problem, fix)  # NOTE [StagingError under dynamo]
        self._describe(statement, problem, fix, user_location())

    @classmethod
    def at(cls, location: tuple[str, int] | None, statement: str, problem: str,
           fix: str) -> "StagingError":
        """The error located at `location` (file, line) rather than at the caller's frame."""
        error = cls.__new__(cls)
        error._describe(statement, problem, fix, location)
        return error

    def _describe(self, statement, problem, fix, location) -> None:
        self.filename, self.lineno = location if location else (None, None)
        where = f"{self.filename}:{self.lineno}: " if location else ""
        problem, fix = _own_names(problem), _own_names(fix)
        self.statement, self.problem, self.fix = statement, problem, fix
        super().__init__(f"{where}in a tensor-dependent {statement}: {problem}. {fix}")


# NOTE [StagingError under dynamo]
# Dynamo traces the runtime (and the bodies of torch.cond / while_loop) as Python. It cannot
# trace an exception's `super().__init__`, and an exception raised in code it traces reaches
# the user as its own Unsupported / UncapturedHigherOrderOpError. So under dynamo the error is
# raised for real while dynamo traces: dynamo calls a function marked as having a constant
# result (what torch.compiler.assume_constant_result marks, set here without importing
# dynamo) instead of tracing it, and lets an exception that is a ShortenTraceback through its
# frame compiler unchanged. The error raised is a subclass of StagingError and of that class,
# located at the user's line in the stack dynamo is tracing.


# NOTE [a refused if whose branch raises, under dynamo]
# A helper's `if not ok: raise ValueError(...)` whose other branch is the rest of the function
# (torchsde's check_contract, tester44 s05) becomes, in autoconv's trace and torch.export, an
# assertion that the graph takes the other branch (NOTE [branches that always raise] in
# staging/context.py). Under dynamo the raises cannot be watched, and the `if` is refused for
# the other branch's values ("the return value is unbound before the statement and is
# reassigned in the false branch"), whose fix (a tensor value before the statement) does not
# fit. Each staged `if` under dynamo tells, through functions dynamo calls for real, whether
# exactly one branch raises at its own level (`ac.raise_` in the branch's own code, where
# converted code lowers a `raise`; a nested statement's or a callee's is in other code); a
# refusal of that `if` then names the raise and the fixes that fit it. (A refusal that
# escapes dynamo leaves its `if`s recorded, beneath the next trace's own.)
_RAISING_IFS: list = []


def enter_if_under_dynamo(true_code, false_code) -> int:
    """Records a staged `if` under dynamo and whether one branch raises at its own level;
    the mark `leave_if_under_dynamo` takes (NOTE [a refused if whose branch raises, under
    dynamo])."""
    mark = len(_RAISING_IFS)
    raises = [code is not None and "raise_" in code.co_names for code in (true_code, false_code)]
    _RAISING_IFS.append(("true", "false")[raises.index(True)] if raises.count(True) == 1
                        else None)
    return mark


enter_if_under_dynamo._dynamo_marked_constant = True  # (dynamo calls it for real)


def leave_if_under_dynamo(mark: int) -> int:
    del _RAISING_IFS[mark:]
    return mark


leave_if_under_dynamo._dynamo_marked_constant = True


def _raising_branch_fix(statement: str, fix: str) -> str:
    if statement != "if statement" or not _RAISING_IFS or _RAISING_IFS[-1] is None:
        return fix
    return (f"(Its {_RAISING_IFS[-1]} branch raises: under torch.compile autoconv cannot make "
            "that raise an assertion that the graph takes the other branch, as its replay and "
            "torch.export do.) Check the condition before the compiled function, or assert it "
            "in the graph instead of the `if` (`torch._assert_async(torch.as_tensor(ok), "
            "message)`); else: " + fix)


# (a refusal raised under dynamo in place of any other while a loop's peeled first trip is
# staged: NOTE [a loop's first trip peeled under dynamo] in staging/peeling.py; each with the
# compile it belongs to, as one that escapes dynamo is left here)
_REFUSALS_INSTEAD: list = []


def refuse_instead_under_dynamo(refusal) -> int:
    """Until `leave_refusing_instead(mark)`: a StagingError raised under dynamo is `refusal`
    ((statement, problem, fix, location)) instead; the mark."""
    from torch._guards import CompileContext

    mark = len(_REFUSALS_INSTEAD)
    _REFUSALS_INSTEAD.append((CompileContext.current_compile_id(), refusal))
    return mark


refuse_instead_under_dynamo._dynamo_marked_constant = True


def leave_refusing_instead(mark: int) -> int:
    del _REFUSALS_INSTEAD[mark:]
    return mark


leave_refusing_instead._dynamo_marked_constant = True


def _instead(statement: str, problem: str, fix: str, location):
    """The refusal to raise under dynamo: the innermost `refuse_instead_under_dynamo`'s of this
    compile, else the one given. (The raise ends the compile: the records go with it.)"""
    if _REFUSALS_INSTEAD:
        from torch._guards import CompileContext

        compile_id, refusal = _REFUSALS_INSTEAD[-1]
        del _REFUSALS_INSTEAD[:]
        if compile_id == CompileContext.current_compile_id():
            return refusal
    return statement, problem, fix, location


def _raise_under_dynamo(statement: str, problem: str, fix: str):
    fix = _raising_branch_fix(statement, fix)  # NOTE [a refused if whose branch raises, ...]
    statement, problem, fix, location = _instead(statement, problem, fix,
                                                 _dynamo_user_location())
    error = _under_dynamo_class().__new__(_under_dynamo_class())
    error._describe(statement, problem, fix, location)
    error.first_useful_frame = None
    raise error


_raise_under_dynamo._dynamo_marked_constant = True


def raise_at_under_dynamo(location, statement: str, problem: str, fix: str):
    """As `_raise_under_dynamo`, located at `location` ((file, line), constants) rather than at
    the frame dynamo traces: for refusals that name the line of a body's code."""
    fix = _raising_branch_fix(statement, fix)  # NOTE [a refused if whose branch raises, ...]
    statement, problem, fix, location = _instead(statement, problem, fix, location)
    error = _under_dynamo_class().__new__(_under_dynamo_class())
    error._describe(statement, problem, fix, location)
    error.first_useful_frame = None
    raise error


raise_at_under_dynamo._dynamo_marked_constant = True


_classes: dict = {}


def _under_dynamo_class() -> type:
    if not _classes:
        from torch._dynamo.exc import ShortenTraceback  # loaded: dynamo is running

        _classes["dynamo"] = type("StagingError", (StagingError, ShortenTraceback),
                                  {"__module__": __name__, "__qualname__": "StagingError"})
    return _classes["dynamo"]


def _dynamo_user_location() -> tuple[str, int] | None:
    """The innermost user frame of the code dynamo is tracing."""
    try:
        from torch._guards import TracingContext

        stack = TracingContext.extract_stack()
    except Exception:  # no tracing context: no location rather than a second error
        return None
    for frame in reversed(stack):
        if users_file(frame.filename):
            return frame.filename, frame.lineno
    return None


def dynamo_user_location() -> tuple[str, int] | None:
    """Under dynamo: the (file, line) of the innermost user frame of the code it traces, a
    constant (dynamo calls this function for real)."""
    return _dynamo_user_location()


dynamo_user_location._dynamo_marked_constant = True


def located(text: str, under_dynamo: bool) -> str:
    """`text` prefixed with the user's "file:line: " (of the frame dynamo traces, where the
    caller is traced by dynamo: it calls this function for real), for the message of a graph
    assertion."""
    location = _dynamo_user_location() if under_dynamo else None
    if location is None:
        frame = sys._getframe(1)
        while frame is not None and not users_file(frame.f_code.co_filename):
            frame = frame.f_back
        location = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
    return f"{location[0]}:{location[1]}: {text}" if location else text


located._dynamo_marked_constant = True  # (dynamo calls it rather than tracing it)


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


# NOTE [data-dependent guards in converted code]
# Python code asking for a traced tensor's value (`[v for v in x if v > 0]`, `math.floor(t)`,
# `layers[i.item()]`) makes torch raise GuardOnDataDependentSymNode, with no user line and no fix.
# autoconv's entry points (tracing, Function.export) turn it into a StagingError at the user's
# line, but torch.export of a module calling `autoconv.convert(f)` goes through no entry point of
# autoconv's: so each converted function's converted body (not its eager fast path, emit.py) is
# compiled inside `try: ... except ac.DataDependentGuard: raise ac.data_dependent_error()`. The
# compiler gives the conversion (autoconv.tracebacks, which the runtime does not import); an
# error it cannot place (not raised in converted code) is re-raised as it is.
#
# The same handler places torch's RuntimeError for a traced tensor that numpy converts
# (`x - MEAN` with MEAN a numpy array: torch's operator refuses the array, numpy's reflected one
# asks the tensor for its values, ".numpy() is not supported for tensor subclasses"), so the
# handler catches RuntimeError (GuardOnDataDependentSymNode is one) and gives back any other
# as it is, its context kept: the converted code raises it without `from None`.
DataDependentGuard = RuntimeError
_data_dependent_handler = [None]


def set_data_dependent_handler(handler) -> None:
    """`handler(error)` gives the error to raise for torch's GuardOnDataDependentSymNode raised
    in converted code (NOTE [data-dependent guards in converted code])."""
    _data_dependent_handler[0] = handler


def data_dependent_error() -> BaseException:
    """The error converted code raises for the GuardOnDataDependentSymNode being handled."""
    error = sys.exc_info()[1]
    handler = _data_dependent_handler[0]
    placed = handler(error) if handler is not None else error
    if placed is not error:  # torch's error is kept as `torch_error`, not shown as the context
        placed.__suppress_context__ = True
    return placed


# torch's error where an op broadcasts a fake tensor whose size only the graph knows (rows that
# `nonzero()` or a boolean mask chose) through a kernel that reads concrete sizes
UNNAMED_SIZE = "SymIntArrayRef expected to contain only concrete integers"


def asked_by_a_kernel(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is torch's GuardOnDataDependentSymNode,
    or its refusal to broadcast a size it cannot name (`UNNAMED_SIZE`), raised inside
    FakeTensorMode's dispatch of an op: a C++ kernel, not Python code, asked for a size only
    the graph knows (NOTE [torch's C++ kernels asking a size only the graph knows] in
    autoconv/capture.py); False once the Python dispatcher is on, which traced it already."""
    if torch._C._dispatch_tls_is_dispatch_key_included(torch._C.DispatchKey.PythonDispatcher):
        return False
    seen, pending = set(), [error]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, GuardOnDataDependentSymNode) or (
                isinstance(error, RuntimeError) and UNNAMED_SIZE in str(error)):
            frame = error.__traceback__
            while frame is not None:
                code = frame.tb_frame.f_code
                if code.co_name == "_dispatch_impl" and code.co_filename.endswith(
                        "fake_tensor.py"):
                    return True
                frame = frame.tb_next
        pending += [getattr(error, "torch_error", None), error.__cause__, error.__context__]
    return False
