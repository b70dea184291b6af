"""Errors raised while tracing, shown as the user's code.

An exception that escapes a trace passes through make_fx, the higher-order operators, fake
tensors and autoconv's runtime: 60-odd frames, of which the user wrote two or three. Converted
code is compiled with the user's file names and line numbers (see emit.py), so those frames
already read as the user's source. Here the others are cut from the traceback, and a note says
where the error came from and how to see everything.

`AUTOCONV_TRACEBACK=full` in the environment keeps whole tracebacks.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import linecache
import logging
import os
import re
import types

import torch
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

import autoconv_runtime
from autoconv_runtime import builtins, calls, subscripts

from .conversion import is_generated_code

__all__ = ["for_user", "quiet_meta_failures"]

# NOTE [data-dependent guards in converted code] in autoconv_runtime/errors.py
autoconv_runtime.errors.set_data_dependent_handler(lambda error: _placed(error))

_SWITCH = "AUTOCONV_TRACEBACK"

_INTERNAL_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (torch, autoconv_runtime)
) + (os.path.dirname(os.path.abspath(__file__)) + os.sep,)

# torch's fake tensors log every failing meta kernel with its whole traceback before raising it;
# the same error then reaches the user, so during a trace that log is noise.
_FAKE_TENSOR_LOG = logging.getLogger("torch._subclasses.fake_tensor")


# Code torch generates: make_fx's argument-flattening wrapper and fx's GraphModule forwards.
_GENERATED = ("<string>", "<eval_with_key>")


def _at_user_line(error: BaseException, filename: str, line: int, problem: str,
                  fix: str, statement: str = "expression") -> BaseException:
    """A StagingError at the user's `filename:line` standing for torch's `error` (kept as its
    `torch_error`, for debugging), with `error`'s traceback."""
    staging_error = autoconv_runtime.StagingError.at((filename, line), statement, problem, fix)
    staging_error.torch_error = error  # torch's own message, for debugging
    return staging_error.with_traceback(error.__traceback__)


def _internal_file(filename: str) -> bool:
    """True for torch's and autoconv's own files and for code torch generates."""
    return ((filename.startswith(_INTERNAL_DIRS) or filename.startswith(_GENERATED))
            and not autoconv_runtime.errors.is_converted_library_file(filename))


def _user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """`tb` with only the frames of the user's files, in order."""
    kept = []
    while tb is not None:
        if not _internal_file(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    result = None
    for frame_tb in reversed(kept):
        result = types.TracebackType(result, frame_tb.tb_frame, frame_tb.tb_lasti,
                                     frame_tb.tb_lineno)
    return result


@contextlib.contextmanager
def quiet_meta_failures():
    """A context in which torch does not log failing meta kernels (the error itself is raised)."""
    level = _FAKE_TENSOR_LOG.level
    if not _full():
        _FAKE_TENSOR_LOG.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        _FAKE_TENSOR_LOG.setLevel(level)


def for_user(error: BaseException, what: str) -> BaseException:
    """`error` (the same object, so `except` clauses still match) with only the user's frames in
    its traceback and a note naming `what` (e.g. "tracing f") and the user's line that raised.

    Use as `raise for_user(error, ...)` in the except clause of the entry point: the frames
    above it stay, the ones below are filtered.
    """
    if isinstance(error, GuardOnDataDependentSymNode):
        error = _as_staging_error(error)  # in converted code; elsewhere a note says why
    error = _numpy_of_traced(error) or error
    if _full() or getattr(error, "_autoconv_filtered", False):
        return error
    trimmed = _user_traceback(error.__traceback__)
    if trimmed is None:  # nothing of the user's: keep everything rather than nothing
        return error
    error._autoconv_filtered = True
    context = error.__context__
    if context is not None and type(context) is type(error) and context.args == error.args:
        # autoconv ran the failing code a second time to name the variable at fault; the
        # first failure is the same error
        error.__suppress_context__ = True
    elif context is not None:
        for_user(context, what)
    code = _innermost(trimmed).tb_frame.f_code
    where = f"{code.co_filename}:{_innermost(trimmed).tb_lineno}"
    if getattr(error, "filename", None) and getattr(error, "lineno", None):
        # A ConversionError or StagingError knows its line: a callee's refused statement, which
        # no frame shows (the callee was being converted, not run).
        where = f"{error.filename}:{error.lineno}"
    if isinstance(error, GuardOnDataDependentSymNode) and not is_generated_code(code):
        error.add_note(_NOT_CONVERTED.format(name=code.co_qualname, where=where))
    if (isinstance(error, RuntimeError) and "does not have a grad_fn" in str(error)
            and _in_staged_body(trimmed)):
        error.add_note(_NO_AUTOGRAD.format(where=where))
    error.add_note(f"autoconv: raised while {what}, at {where}. Frames of torch and autoconv are "
                   f"hidden; set {_SWITCH}=full to see them.")
    return error.with_traceback(trimmed)


def _placed(error: RuntimeError) -> BaseException:
    """The error converted code raises for torch's RuntimeError `error`: a StagingError at the
    user's line for a data-dependent guard or a traced tensor numpy converts, else `error`."""
    if isinstance(error, GuardOnDataDependentSymNode):
        return _as_staging_error(error)
    return _numpy_of_traced(error) or error


def _user_line(error: BaseException, *, past_libraries: bool = False):
    """(file, line, its source stripped) of the innermost user frame of `error`'s traceback,
    or None where no frame is the user's. `past_libraries`: not a frame of numpy's or the
    standard library's code (`np.clip(k, 0, 2)` failed in numpy's fromnumeric.py), where the
    user's code called it."""
    trimmed = _user_traceback(error.__traceback__)
    if trimmed is None:
        return None
    innermost = _innermost(trimmed)
    if past_libraries:
        tb = trimmed
        while tb is not None:
            if not calls.is_library_module(tb.tb_frame.f_globals.get("__name__") or ""):
                innermost = tb
            tb = tb.tb_next
    filename, line = innermost.tb_frame.f_code.co_filename, innermost.tb_lineno
    return filename, line, linecache.getline(filename, line).strip()


# torch's error for `.numpy()` (or numpy's `__array__`) of a fake or functional tensor
_NUMPY_OF_SUBCLASS = ".numpy() is not supported for tensor subclasses"


def _numpy_of_traced(error: BaseException) -> BaseException | None:
    """torch's error for a traced tensor that numpy converts to an array (`x - MEAN` with MEAN a
    numpy array: torch's `-` refuses the array, and numpy's reflected `-` asks the tensor for
    its values) as a StagingError at the user's line; None for other errors (tester t14 repro
    18: "tensor subclasses" named none of the user's code)."""
    if not isinstance(error, RuntimeError) or _NUMPY_OF_SUBCLASS not in str(error):
        return None
    found = _user_line(error, past_libraries=True)
    if found is None:
        return None
    filename, line, source = found
    return _at_user_line(
        error, filename, line,
        f"`{source}` hands a traced tensor to numpy (a numpy array used with a tensor, or a "
        "numpy function called on one): numpy computes on the tensor's values, which only "
        "exist when the graph runs, so the graph cannot hold that computation",
        "Make the array a tensor first: `torch.as_tensor(array)` for a global or an attribute "
        "(once, outside the function, where it is a constant of the graph), and pass a tensor "
        "for an argument (`torch.as_tensor(w)` at the call); use torch's functions for numpy's")


# torch's error where an op broadcasts a fake tensor whose size only the graph knows (rows that
# `nonzero()` or a boolean mask chose) through a kernel that reads concrete sizes: make_fx's
# "fake" tracing, autoconv's trace with fixed sizes, takes no size it cannot name (torchode's
# interpolation, `torch.addcmul(b, y, x)` on `e[idx]`, stopped there with torch's message:
# tester38 s03); its "symbolic" tracing (dynamic=True), torch.export and torch.compile take it.
_UNNAMED_SIZE = autoconv_runtime.errors.UNNAMED_SIZE


def with_fixed_sizes(error: BaseException) -> BaseException:
    """`error`, raised by a trace with fixed sizes; torch's error for a size known only when the
    graph runs (`_UNNAMED_SIZE`) as a StagingError at the user's line saying to trace with
    symbolic sizes."""
    if not isinstance(error, RuntimeError) or _UNNAMED_SIZE not in str(error):
        return error
    found = _user_line(error)
    if found is None:
        return error
    filename, line, source = found
    return _at_user_line(
        error, filename, line,
        f"`{source}` broadcasts a tensor whose size is known only when the graph runs (rows "
        "chosen by `nonzero()` or a boolean mask), which torch cannot trace for this op with "
        "the fixed sizes autoconv traces with by default",
        "Trace with symbolic sizes: `autoconv.autoconv(fn, dynamic=True)` (torch.export and "
        "torch.compile trace so already)")


def _checks_arguments(code) -> bool:
    """Whether torch.distributions' `code` is a check of a distribution's arguments or sample
    (its `__init__`, `_validate_sample`, a constraint), which validate_args=False turns off; a
    sampler's own loop (VonMises' `while not done.all():` in `_rejection_sample`) is not, and
    the advice sent the user to a switch that changed nothing (tester37 s03)."""
    return (code.co_name == "__init__" or "_validate" in code.co_name
            or code.co_filename.endswith("constraints.py"))


def _as_staging_error(error: GuardOnDataDependentSymNode) -> BaseException:
    """torch's "Could not guard on data-dependent expression" as a StagingError at the user's
    line: Python code (int(), .item(), a size, a comparison outside a converted statement)
    asked for the value of a traced tensor, which only exists when the graph runs."""
    trimmed = _user_traceback(error.__traceback__)
    if trimmed is None:
        return error
    if not is_generated_code(_innermost(trimmed).tb_frame.f_code):
        return (_library_called_by_converted(error, trimmed) or _called_by_library(error)
                or _in_generator(error) or _called_implicitly(error) or error)
    innermost = _innermost(trimmed)
    filename, line = innermost.tb_frame.f_code.co_filename, innermost.tb_lineno
    source = linecache.getline(filename, line).strip()
    asker = _library_asker(error.__traceback__, innermost.tb_frame)
    statement = "expression"
    if asker is not None:
        module, code, asked_line = asker
        problem = (f"`{source}` calls into {module}, whose code asks Python for the value of a "
                   f"traced tensor ({code.co_filename}:{asked_line}: "
                   f"`{linecache.getline(code.co_filename, asked_line).strip()}` in "
                   f"{code.co_qualname}); autoconv never converts torch's code, so that "
                   "condition is not staged")
        fix = ("Pass validate_args=False to the distribution (the check of its arguments is "
               "what asks; torch.compile turns it off too), and check the values yourself "
               "with tensor operations if needed"
               if module.startswith("torch.distributions") and _checks_arguments(code) else
               "Make this call outside the autoconv function (eagerly), or write what it "
               "computes with tensor operations in your own code, which autoconv converts")
    elif _in_class_body(innermost.tb_frame):
        # NOTE [class bodies stay Python] in transformer.py
        name = innermost.tb_frame.f_code.co_name
        problem = (f"`{source}` asks Python for the value of a traced tensor in the body of the "
                   f"class {name}: a class body runs once, as plain Python, when the `class` "
                   "statement runs, and autoconv converts only the functions in it, never the "
                   "body's own statements, so an `if`, `while`, conditional expression or "
                   "conversion to a Python number there cannot be staged")
        statement = "class body"
        fix = ("Decide in the function, before the `class` statement, where the condition is "
               "staged (`scale = torch.where(x.sum() > 0, 2.0, 3.0)`, or an `if` there), and "
               f"bind the result in the class body under another name (`factor = scale`), or "
               f"pass the value to {name}'s methods, which are converted")
    elif _construct_at(source) is not None:
        problem, fix = _construct_at(source)
    elif _in_shape_check(error):
        # (tester50 s04: kornia's RANSAC solved a batch of sampled models whose count a mask
        # chose; the generic message sent the user looking for an .item() the line has not)
        size = re.search(r"data-dependent expression (.+?) \(unhinted", str(error))
        problem = (f"`{source}` calls a torch operation whose shape check needs a size known "
                   "only when the graph runs"
                   + (f" (`{size.group(1)}`)" if size else "") + ", a size that depends on "
                   "tensor values (rows chosen by a boolean mask or `nonzero()`, a size a "
                   "staged statement computes), which torch cannot check while tracing")
        fix = ("Keep the sizes fixed: mask the values instead of selecting rows "
               "(`torch.where(keep[:, None], x, filler)`), or make this call outside the "
               "autoconv function")
    else:
        problem = (f"`{source}` asks Python for the value of a traced tensor, which is only "
                   "known when the graph runs, and this use of it is not staged")
        fix = ("Keep the value a tensor: compare tensors directly (`if x.sum() > 0:` is staged) "
               "rather than calling .item(), int(), float() or bool() on them, use torch.where "
               "or masking for values, and give sizes that do not depend on tensor values")
    return _at_user_line(error, filename, line, problem, fix, statement)


_SHAPE_CHECKS = ("/torch/_meta_registrations.py", "/torch/_refs/", "/torch/_decomp/",
                 "/torch/_prims_common/", "/torch/_prims/")


def _in_shape_check(error) -> bool:
    """Whether torch's data-dependent guard was raised by an operator's own shape check (its
    meta function or reference), not by Python code that asked for a value."""
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace(os.sep, "/")
        if any(part in filename for part in _SHAPE_CHECKS):
            return True
        tb = tb.tb_next
    return False


# The standard library's modules that order Python values: their comparisons of traced keys
# ask for the keys' values (heapq's tuples compare keys with `==` first)
_ORDERING_MODULES = ("heapq", "bisect")


def _library_fix(routine: str, asked_module: str) -> str:
    """What to write instead of a library `routine` whose code (in `asked_module`) asked for a
    traced tensor's value: the routine's own replacement where one is known."""
    if routine == "collections.Counter.most_common":
        # (heapq's own code asks, but the user wrote most_common: the fix is for that line)
        return ("Make this call outside the autoconv function (eagerly), or write it with what "
                "autoconv converts: for the largest count, `c.most_common(1)[0][1]`, write "
                "`max(c.values())`")
    if asked_module.partition(".")[0] in _ORDERING_MODULES:
        return ("Order tensors instead (`torch.stack(scores)` first for a list of 0-d tensors): "
                "`torch.topk(scores, k).indices` for heapq.nlargest's best k "
                "(`largest=False` for nsmallest), `scores.argsort()` for an order, "
                "`torch.searchsorted` for bisect")
    return ("Make this call outside the autoconv function (eagerly), or write what it computes "
            "with tensor operations in your own code, which autoconv converts")


def _library_called_by_converted(error: GuardOnDataDependentSymNode,
                                 trimmed) -> BaseException | None:
    """torch's data-dependent error raised in a library's Python code (the standard library's:
    torch's files are hidden already) that converted code called directly
    (`heapq.nlargest(2, range(n), key=lambda i: scores[i])`, tester41 s12: torch's
    GuardOnDataDependentSymNode named only heapq's line): a StagingError at the user's line
    that called it, naming the library routine. None where the innermost frame is not a
    library's or no converted line called it."""
    frames = []
    tb = trimmed
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    asked = frames[-1]
    module = asked.tb_frame.f_globals.get("__name__") or ""
    if not calls.is_library_module(module):
        return None
    library = [asked]
    for frame in reversed(frames[:-1]):
        if is_generated_code(frame.tb_frame.f_code):
            break
        if not calls.is_library_module(frame.tb_frame.f_globals.get("__name__") or ""):
            return None
        library.append(frame)
    else:
        return None
    outer = library[-1]
    filename, line = frame.tb_frame.f_code.co_filename, frame.tb_lineno
    source = linecache.getline(filename, line).strip()
    asked_file, asked_line = asked.tb_frame.f_code.co_filename, asked.tb_lineno
    routine = f"{outer.tb_frame.f_globals['__name__']}.{outer.tb_frame.f_code.co_qualname}"
    fix = _library_fix(routine, module)
    return _at_user_line(
        error, filename, line,
        f"`{source}` calls {routine}, which runs unconverted and asks Python for the value of "
        f"a traced tensor ({asked_file}:{asked_line}: "
        f"`{linecache.getline(asked_file, asked_line).strip()}`): autoconv never converts "
        "torch's, numpy's or the standard library's code, so its comparisons and conversions "
        "of tensors to Python numbers are not staged", fix)


def _in_class_body(frame) -> bool:
    """Whether `frame` runs a class statement's body (a code object without fast locals, not a
    module's)."""
    code = frame.f_code
    return not code.co_flags & inspect.CO_NEWLOCALS and code.co_name != "<module>"


def _construct_at(source: str):
    """(problem, fix) for the constructs of the user's line `source` known to ask a traced
    tensor's value (tester t14 repros 3, 4 and 10, whose generic message named neither the
    construct nor a fix), or None: a slice bounded by a traced number (`x[:n]` with `n =
    (x > 0).sum()`, `x[i:i + 2]` in a loop over a tensor's range), and a number argument of
    torch's given a number a tensor condition chose (`.add_(w, alpha=1 - d)`)."""
    try:
        tree = ast.parse(source.rstrip(":") if source.endswith(":") else source)
    except SyntaxError:  # (a line of a statement over several lines)
        return None
    for node in ast.walk(tree):
        # (a conversion the line writes itself asks: the generic message's advice fits)
        if isinstance(node, ast.Call) and (
                isinstance(node.func, ast.Name) and node.func.id in ("int", "float", "bool")
                or isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "item", "tolist", "__index__")):
            return None
    for node in ast.walk(tree):
        filtered = builtins.filtered_list_comprehension(node)
        if filtered is not None:
            return filtered
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            bounds = [node.slice] if not isinstance(node.slice, ast.Tuple) else node.slice.elts
            sliced = [b for b in bounds if isinstance(b, ast.Slice) and any(
                part is not None and not isinstance(part, ast.Constant)
                for part in (b.lower, b.upper, b.step))]
            if sliced:
                problem, fix = subscripts.traced_slice_refusal(ast.unparse(node))
                return f"`{source}` {problem}", fix
    for node in ast.walk(tree):
        out = next((k for k in getattr(node, "keywords", ()) if k.arg == "out"), None)
        if isinstance(node, ast.Call) and out is not None:
            return _out_argument_refusal(source, node, out)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            numbers = [k for k in node.keywords if k.arg in ("alpha", "value", "beta")
                       and not isinstance(k.value, ast.Constant)]
            if numbers:
                keyword = numbers[0]
                return (f"`{source}` passes `{keyword.arg}={ast.unparse(keyword.value)}`, "
                        f"which torch takes as a Python number only, a number the graph "
                        "computes (one a tensor condition chose, or read from a tensor): "
                        "torch asks for its value while tracing",
                        f"Multiply the tensor instead (`.add_(w * ({ast.unparse(keyword.value)}"
                        "))` for `.add_(w, alpha=...)`), or use an operation that takes a "
                        "tensor weight (`ema.lerp_(w, 1 - d)` for `ema.mul_(d).add_(w, "
                        "alpha=1 - d)`)")
    return None


def _out_argument_refusal(source: str, call: ast.Call, out: ast.keyword):
    """(problem, fix) for a call of the user's line that writes into an `out=` tensor: torch
    resizes that tensor to the result's size, which the guard asked for (ssd.pytorch's NMS,
    `torch.index_select(x1, 0, idx, out=xx1)` with `idx` shrinking in a staged loop: the
    generic message named neither the `out=` nor a fix, tester27 s05)."""
    target = ast.unparse(out.value)
    plain = ast.Call(func=call.func, args=call.args,
                     keywords=[k for k in call.keywords if k is not out])
    return (f"`{source}` writes its result into `{target}` (`out={target}`), which torch "
            f"resizes to the result's size; that size depends on tensor values, known only "
            "when the graph runs, and a graph cannot resize a tensor it already holds",
            f"Bind the result to the name instead of passing `out=`: `{target} = "
            f"{ast.unparse(plain)}`")


# torch's own machinery between a library's Python code and the guard that failed (and
# torch/__init__.py, where SymInt / SymFloat / SymBool live)
_TORCH_MACHINERY = ("torch._", "torch.fx", "torch.utils", "torch.overrides", "torch.autograd")


def _library_asker(tb, user_frame):
    """(module, code, line) of the library code (torch, numpy, the standard library) that the
    user's converted line called and that asked for a traced tensor's value, or None when the
    user's line asked itself: the innermost such frame below `user_frame`, not counting torch's
    own tracing machinery."""
    below, asker = False, None
    while tb is not None:
        frame = tb.tb_frame
        if frame is user_frame:
            below = True
        elif below:
            module = frame.f_globals.get("__name__") or ""
            if (calls.is_library_module(module) and module != "torch"
                    and not module.startswith(_TORCH_MACHINERY)
                    and module.partition(".")[0] not in ("autoconv", "autoconv_runtime")):
                asker = (module, frame.f_code, tb.tb_lineno)
        tb = tb.tb_next
    return asker


def _called_by_library(error: GuardOnDataDependentSymNode) -> BaseException | None:
    """torch's data-dependent error raised in a user function that runs unconverted because
    library code called it (torchmin's objective called by `torch.optim.lbfgs._strong_wolfe`):
    a StagingError at the user's line that names that caller. None where no library frame
    called the function (converted code called it: `do_not_convert`, a method called by a
    tensor method's name; the note `_NOT_CONVERTED` covers those)."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    users = [i for i, f in enumerate(frames) if not _internal_file(f.tb_frame.f_code.co_filename)]
    if not users:
        return None
    asked = frames[users[-1]]
    caller = None  # the outermost frame of the library code that called the function
    for frame in reversed(frames[: users[-1]]):
        module = frame.tb_frame.f_globals.get("__name__") or ""
        if (is_generated_code(frame.tb_frame.f_code)
                or module.partition(".")[0] in ("autoconv", "autoconv_runtime")):
            break
        if calls.is_library_module(module):
            caller = frame
        elif caller is not None:
            break
    if caller is None:
        return None
    code, module = caller.tb_frame.f_code, caller.tb_frame.f_globals["__name__"]
    filename, line = asked.tb_frame.f_code.co_filename, asked.tb_lineno
    source = linecache.getline(filename, line).strip()
    if module == "torch.autograd.function" and code.co_name == "apply":
        forward = next((f for f in frames[frames.index(caller) + 1:]
                        if f.tb_frame.f_code.co_name == "forward"), asked)
        function = forward.tb_frame.f_code.co_qualname.rpartition(".")[0] or "a Function"
        # (torch calls the forward of `Fn.apply`, which autoconv keeps as one call for its
        # backward: NOTE [custom autograd Functions] in runtime/staging/autograd_functions.py)
        return _at_user_line(
            error, filename, line,
            f"`{source}` asks Python for the value of a traced tensor in "
            f"{asked.tb_frame.f_code.co_qualname}, which runs unconverted: it runs in the "
            f"forward of {function}, a custom torch.autograd.Function, which torch calls for "
            f"`{function}.apply` (autoconv leaves that call to torch, for its backward), so its "
            "conditions and conversions of tensors to Python numbers are not staged",
            f"Run `{function}.apply` outside the autoconv function (eagerly), or, where its "
            "backward is not needed, call the code its forward runs directly, which autoconv "
            "converts")
    outer = next((f for f in reversed(frames[:frames.index(caller)])
                  if not _internal_file(f.tb_frame.f_code.co_filename)), None)
    if (outer is not None and asked is not caller
            and calls.is_library_module(asked.tb_frame.f_globals.get("__name__") or "")):
        # The library's own code asked (heapq's `max` in `Counter.most_common(1)` of counts a
        # staged loop made, tester39): the error is at the user's line that called it.
        at_file, at_line = outer.tb_frame.f_code.co_filename, outer.tb_lineno
        return _at_user_line(
            error, at_file, at_line,
            f"`{linecache.getline(at_file, at_line).strip()}` calls {module}."
            f"{code.co_qualname}, which runs unconverted and asks Python for the value of a "
            f"traced tensor at {filename}:{line} (`{source}` in "
            f"{asked.tb_frame.f_code.co_qualname}): autoconv never converts torch's, numpy's "
            "or the standard library's code, so its conditions and conversions of tensors to "
            "Python numbers are not staged",
            _library_fix(f"{module}.{code.co_qualname}",
                         asked.tb_frame.f_globals.get("__name__") or ""))
    return _at_user_line(
        error, filename, line,
        f"`{source}` asks Python for the value of a traced tensor in "
        f"{asked.tb_frame.f_code.co_qualname}, which runs unconverted: {module}."
        f"{code.co_qualname} ({code.co_filename}:{caller.tb_lineno}) called it, and autoconv "
        "never converts torch's, numpy's or the standard library's code, so that code's own "
        "conditions and conversions of tensors to Python numbers are not staged either",
        "Run this call outside the autoconv function (eagerly), or replace the library "
        "routine by a loop of your own code, which autoconv converts")


def _called_implicitly(error: GuardOnDataDependentSymNode) -> BaseException | None:
    """torch's data-dependent error raised in a property getter or an operator method (`__add__`)
    of the user's that converted code reached without a call (`x * self.scale`, `a + b`), so
    it runs unconverted: converted code converts the functions it calls, and reads attributes
    and applies operators as Python does (tester t13 repro 18). A StagingError at the user's
    line, naming the function and what to write instead; None for other functions."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    # The outermost unconverted user frame below the innermost converted one: the function
    # Python called implicitly for the converted line.
    called = caller = None
    for frame in reversed(frames):
        code = frame.tb_frame.f_code
        if is_generated_code(code):
            caller = frame
            break
        if not _internal_file(code.co_filename):
            called = frame
    if called is None or caller is None:
        return None
    code = called.tb_frame.f_code
    kind = _implicit_kind(called.tb_frame)
    if kind is None:
        return None
    asked = next(f for f in reversed(frames) if not _internal_file(f.tb_frame.f_code.co_filename))
    filename, line = asked.tb_frame.f_code.co_filename, asked.tb_lineno
    source = linecache.getline(filename, line).strip()
    caller_source = linecache.getline(caller.tb_frame.f_code.co_filename, caller.tb_lineno).strip()
    if kind == "property":
        what = f"the property getter {code.co_qualname}"
        fix = (f"Make {code.co_name} a method and call it (`self.{code.co_name}()`), which "
               "converted code converts, or compute its value with torch.where")
    elif kind == "constructor":
        # (torchsde's `BrownianInterval(t0=ts[0], ...)` in sdeint, `if t0 > t1: raise`:
        # torch's GuardOnDataDependentSymNode named autoconv's grad_mode.py, tester44 s06;
        # such constructors are converted since init49, those a metaclass's own `__call__`
        # runs are not)
        what = f"the constructor {code.co_qualname}"
        fix = ("Decide it in a method of the class called after the object is made "
               "(`obj = Cls(...)`, then `obj.setup(x)`), which converted code converts, or in "
               "the function before the call (passing the result in), or compute the value "
               "with torch.where; for a library's class, construct the object outside the "
               "autoconv function and pass it in")
    else:
        what = f"the operator method {code.co_qualname}"
        fix = ("Call a method whose name is not a torch.Tensor method's (`a.plus(b)` defined "
               f"beside {code.co_name}), which converted code converts, or compute the value "
               "with torch.where")
    converts = ("the functions converted code calls, not properties or operators"
                if kind != "constructor" else
                "the `__init__` of a class converted code calls, but not one a metaclass's own "
                "`__call__` runs (NOTE [constructors of user classes] in "
                "autoconv_runtime/calls.py)")
    return _at_user_line(
        error, filename, line,
        f"`{source}` asks Python for the value of a traced tensor in {what}, which runs "
        f"unconverted: Python calls it implicitly for `{caller_source}` "
        f"({caller.tb_frame.f_code.co_filename}:{caller.tb_lineno}), and autoconv converts "
        f"{converts}", fix)


def _in_generator(error: GuardOnDataDependentSymNode) -> BaseException | None:
    """torch's data-dependent error raised in a generator function of the user's (`if row.sum()
    > 0: yield row`), which autoconv never converts (a `yield` cannot be staged), so its
    condition ran as Python (tester t14 repro 14: torch's message named autoconv's grad_mode.py
    and no line of the user's). A StagingError at the generator's line; None elsewhere."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        if not _internal_file(tb.tb_frame.f_code.co_filename):
            frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return None
    asked = frames[-1]
    code = asked.tb_frame.f_code
    if not code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR) or \
            is_generated_code(code) or code.co_name == "<genexpr>":
        return None
    filename, line = code.co_filename, asked.tb_lineno
    source = linecache.getline(filename, line).strip()
    return _at_user_line(
        error, filename, line,
        f"`{source}` asks Python for the value of a traced tensor in the generator function "
        f"{code.co_qualname}, which autoconv does not convert (a `yield` cannot be staged), so "
        "its condition runs as Python while tracing",
        "Write the loop in the function that consumes it, accumulating with a tensor `if` "
        "(`for row in x: if row.sum() > 0: total = total + row.sum()`, which autoconv stages), "
        "or mask the rows: `(x * (x.sum(1, keepdim=True) > 0)).sum()`")


def _implicit_kind(frame) -> str | None:
    """"property" for a frame of a property getter, "operator" for one of a dunder method (of the
    class of its first argument), None otherwise."""
    code = frame.f_code
    if not code.co_varnames or code.co_argcount == 0:
        return None
    owner = frame.f_locals.get(code.co_varnames[0])
    for klass in type(owner).__mro__:
        attr = klass.__dict__.get(code.co_name)
        if isinstance(attr, property) and getattr(attr.fget, "__code__", None) is code:
            return "property"
        if getattr(attr, "__code__", None) is code and code.co_name == "__init__":
            return "constructor"
        if (getattr(attr, "__code__", None) is code and code.co_name.startswith("__")
                and code.co_name.endswith("__")):
            return "operator"
    return None


# torch's error for Python control flow on a traced tensor: autoconv did not convert that code.
_NOT_CONVERTED = (
    "autoconv: {name} ({where}) was not converted, so Python evaluated its tensor condition. "
    "Converted code converts the functions it calls except torch's, numpy's and the standard "
    "library's, those marked do_not_convert, and a method called on a local value (not an "
    "attribute of `self`) by a name that is also a torch.Tensor method (`solver.clip(x)`): "
    "call that one through its class (`Solver.clip(solver, x)`) or on a local bound to "
    "`Solver(...)`.")


# torch traces the bodies of cond / while_loop below the autograd dispatch key.
_NO_AUTOGRAD = (
    "autoconv: {where} differentiates (autograd.grad / backward) inside the body of a "
    "tensor-dependent if or loop; this tracer traced those bodies without autograd, so nothing "
    "there has a grad_fn (autoconv's own graphs and torch.export trace them with autograd; "
    "torch.compile does not). Compute the gradient before or after the statement.")


def _in_staged_body(tb) -> bool:
    """True if a frame of `tb` looks like a branch or loop body autoconv made (by its name:
    only for a note)."""
    while tb is not None:
        if tb.tb_frame.f_code.co_name.startswith(("if_true", "if_false", "loop_body")):
            return True
        tb = tb.tb_next
    return False


def _innermost(tb):
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _full() -> bool:
    return os.environ.get(_SWITCH, "").lower() == "full"
