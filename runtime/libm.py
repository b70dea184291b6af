"""`math` functions of numbers only the graph knows, computed by Python's own `math` module."""

from __future__ import annotations

import math

import numpy
import torch

from .errors import StagingError

__all__ = ["EXACT_MATH", "MATH_POW", "graph_number", "mark_numpy", "mark_numpy_some", "math_call",
           "numpy_in", "numpy_mark", "numpy_paths_error", "numpy_some", "numpy_state"]

# NOTE [math functions of graph numbers]
# `math.exp(e)` of `e = x[i].item()` (a symbolic float), or of a float a staged statement carries
# (a 0-d float64 stand-in), asks the number for its value, which only the running graph knows
# (tester23 s05: refused in replay and export, torch's "Could not guard on data-dependent
# expression" under dynamo). torch's float64 kernels are no substitute: on a one-element tensor
# they are not the C library's (measured 2026-12-03 on this AVX512 build, float64: torch.sqrt
# differs from math.sqrt in 54 of 3,291 values, torch.exp from math.exp in 19 of 5,005,
# torch.log10 in 347 of 3,291, lgamma in most), so a loop counting trips on the result could take
# another number of them. The graph holds one op, `autoconv::math_function(args, name)`, whose
# kernel calls `math.<name>` on the arguments' values: Python's own result, bit for bit, in
# every mode (autoconv's replay, torch.export, torch.compile). Python's exception for a value
# outside the function's domain (ValueError "math domain error", OverflowError "math range
# error", ZeroDivisionError of `math.log(x, 1)`) is a graph check at the user's line, from the
# code the kernel returns next to the value, so a staged `try` catches it as Python's does.
#
# A program torch.export saves holds the op by name: loading it needs `import autoconv` first
# (torch does not know the op otherwise), and AOTInductor cannot compile it.

# The `math` functions of floats giving a float that run through the op (the others are
# staged by runtime/arithmetic.py's _NUMBER_FUNCTIONS: floor, ceil, trunc, fabs, isnan, ...,
# whose results torch computes exactly, or refused there)
_NAMES = ("sqrt", "exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "cbrt", "sin",
          "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
          "acosh", "atanh", "erf", "erfc", "gamma", "lgamma", "degrees", "radians", "pow",
          "fmod", "remainder", "hypot", "copysign")
EXACT_MATH = {getattr(math, name): name for name in _NAMES if hasattr(math, name)}
# numpy's float ufuncs of a number, by numpy in the kernel (its own results, not libm's; it
# warns and gives nan or inf where math raises): POT's epsilon scaling computes
# `np.exp(-ii)` of a staged loop's counter (tester33 s05)
_NUMPY_NAMES = ("exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "sin",
                "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
                "arcsinh", "arccosh", "arctanh", "hypot", "deg2rad", "rad2deg")
# NOTE [numpy functions of graph numbers keep their kind]
# numpy's ufuncs that give an int of ints (`np.floor(k)`, `np.abs(k - 2)`, `np.power(2, k)`,
# `np.maximum(k, 1)`, `np.sign(k)`: an `np.int64`) run through the same op (tester41 s05: a
# staged loop's count was refused in replay; s06: `np.abs` of a symbolic int left
# `operator.abs`, which torch.export.save refuses). Their arguments are then an int64 tensor
# and so is the result, numpy's own int (its int64 wrap-around included), not a float64 that
# rounds past 2**53; which kind a call gives is numpy's answer for sample arguments of the
# same kinds (`_gives_int`), the same for every value.
_NUMPY_NAMES += ("floor", "ceil", "trunc", "rint", "fabs", "absolute", "sign", "power",
                 "float_power", "maximum", "minimum", "fmax", "fmin", "square")
EXACT_MATH.update({getattr(numpy, name): f"numpy.{name}" for name in _NUMPY_NAMES})
MATH_POW = math.pow

# The exceptions the kernel reports, by code (0: none), with Python's (numpy's) texts
_ERRORS = {1: (ValueError, "math domain error"), 2: (OverflowError, "math range error"),
           3: (ZeroDivisionError, "float division by zero"),
           4: (ValueError, "Integers to negative integer powers are not allowed.")}
_CODES = {ValueError: 1, OverflowError: 2, ZeroDivisionError: 3}


def _function(name: str):
    return getattr(numpy, name[6:]) if name.startswith("numpy.") else getattr(math, name)


@torch.library.custom_op("autoconv::math_function", mutates_args=())
def _math_function(args: torch.Tensor, name: str) -> torch.Tensor:
    """`[math.<name>(*args), 0]` (`numpy.<ufunc>` for a name "numpy.<ufunc>") of a 1-d float64
    tensor of the arguments, or `[nan, code]` where Python raises (`_ERRORS`). Of an int64
    tensor (a numpy function giving an int of ints), `[result, 0]` or `[0, code]`, int64."""
    try:
        result = _function(name)(*args.tolist())
        value = int(result) if args.dtype == torch.int64 else float(result)
        return torch.tensor([value, 0], dtype=args.dtype)
    except (ValueError, OverflowError, ZeroDivisionError) as error:
        code = next(c for kind, c in _CODES.items() if isinstance(error, kind))
        if name == "numpy.power" and isinstance(error, ValueError):
            code = 4
        if args.dtype == torch.int64:
            return torch.tensor([0, code], dtype=torch.int64)
        return torch.tensor([math.nan, float(code)], dtype=torch.float64)


@_math_function.register_fake
def _(args, name):
    return args.new_empty((2,))


# Values no number a program computes is likely to equal, and that no bound torch's symbolic
# reasoning knows of an expression rules out on both sides
_FAR = (1.2345678901234567e300, -1.2345678901234567e300)


def graph_number(value) -> bool:
    """A symbolic int or float only the running graph knows (`is_symbolic`). Under dynamo,
    which shows one as a Python number, whether `value != c` is unknown for 0 or one of
    `_FAR`: `is_symbolic` asks only `!= 0`, which torch knows of `abs(e) + 1` (and `math.log`
    of it asked the number for its value)."""
    from torch.fx.experimental.symbolic_shapes import guard_or_false, guard_or_true

    from .identity import type_in
    from .values import is_symbolic

    if is_symbolic(value):
        return True
    if not (torch.compiler.is_dynamo_compiling() and type_in(value, (int, float))):
        return False
    return any(guard_or_false(value != c) != guard_or_true(value != c) for c in _FAR)


def math_call(fn, args, symbolic: bool):
    """`fn(*args)` (`fn` in EXACT_MATH) of numbers' 0-d stand-ins and Python numbers, by
    Python's `math` in the graph (NOTE [math functions of graph numbers]). `symbolic`: the
    result is read back as a symbolic float (as `.item()` gives; a number read from a tensor
    stays one), else it is a float's stand-in."""
    from .augmented import graph_check, mark_view

    try:  # (Python's TypeError for the wrong number of arguments, while tracing)
        fn(*[0.5] * len(args))
    except (ValueError, OverflowError, ZeroDivisionError):
        pass
    dtype = torch.int64 if _gives_int(fn, args) else torch.float64
    operands = torch.stack([
        (a.to(dtype) if isinstance(a, torch.Tensor) else
         torch.scalar_tensor(a, dtype=dtype)).reshape(()) for a in args])
    result = _math_function(operands, EXACT_MATH[fn])
    value, code = result[0], result[1]
    for number, (kind, text) in _ERRORS.items():
        graph_check(code != number, kind, text)
    numpy_of = EXACT_MATH[fn].startswith("numpy.")
    if symbolic and numpy_of and torch.compiler.is_dynamo_compiling():
        symbolic = False  # NOTE [numpy's numbers of graph numbers]
    out = value.item() if symbolic else mark_view(value.clone())
    return mark_numpy(out) if numpy_of else out


# NOTE [numpy's numbers of graph numbers]
# numpy's function of a number gives numpy's scalar (`np.exp(k)` an np.float64, `np.floor(k)`
# of an int an np.int64), and so does Python's arithmetic of one with a Python number
# (`np.exp(k) / 2`, `np.floor(k) / 2` an np.float64). torch.tensor / torch.as_tensor infer
# float64 of an np.float64 where a Python float gives the default float32: of a graph number's
# stand-in, `torch.tensor(np.floor(k / 2))` was float32 where Python's is float64, silently
# (errs42 s01). The stand-in numpy's function gives is marked (`mark_numpy`), an operator's
# result of a marked one with a number is marked too (runtime/arithmetic.py `_apply_plain`,
# `_unary`), and torch.tensor's data infers float64 of a marked float (`_inferred` there).
# Python's functions that give numpy's scalar of one keep the mark too: `abs(v)`, `round(v,
# n)` (`_number_function` there; `round(v)` is Python's int) and `min` / `max` of numpy's
# scalars only (runtime/builtins.py `_min_max`; of numpy's and Python's floats the type is
# the chosen one's, which only the graph knows: tagged numpy's on some paths, NOTE [numpy's
# numbers across staged statements]).
# A symbolic number read back from the op (`np.exp(k)` of `k = int(t)`) is marked as well, and
# its stand-in (`_symbolic_stand_in`) takes the mark. Under dynamo, which shows a symbolic
# number as a Python float that takes no attribute, numpy's result is the marked stand-in.
# numpy's int64 with a number only the graph knows (`np.int64(3) * k`, an np.int64) is the
# graph's int64 number, marked (runtime/arithmetic.py `_with_numpy_int`); numpy's narrower
# ints are refused there (their dtype, their wrap-around).
# An np.float64 that meets a tensor is torch's wrapped number, as a Python float is.
# A staged statement keeps the mark per carried number (NOTE [numpy's numbers across staged
# statements]).
#
# NOTE [numpy's numbers across staged statements]
# A staged `if` / loop gives new tensors for the numbers it carries, which had lost the mark:
# `a = np.exp(k)` in both branches, or `a = np.float64(0.5)` counted up by a loop, was a plain
# float's stand-in after it, float32 under torch.tensor where Python's is float64, silently
# (break43b s02, s03). `Statement` (runtime/staging/torch.py) records per number whether each
# path (each body's output, and a loop's no trip) leaves numpy's scalar (`numpy_state`): numpy's
# on every path is marked again; numpy's on some paths and a Python number on others (`if k >
# 1: a = np.exp(k) else: a = 1.5`; `min(np.exp(k), 5.0)`, whichever is smaller) has a type only
# the graph knows, and is tagged with what it is and where that happened (`mark_numpy_some`).
# Arithmetic keeps the tag where no operand is numpy's (numpy's with anything is numpy's), a
# loop's body sees it on the trips after the first (`Statement.numpy_inputs`), and the uses
# that show the type refuse it at the user's line (`numpy_paths_error`): torch.tensor's float
# dtype (float64 or float32), isinstance / type. Where the type is not seen (`x * a`, `a < 1`,
# `math.sqrt(a)`) the value is right on every path.
_NUMPY = "_autoconv_numpy"
_NUMPY_TYPES = (torch.Tensor, torch.SymFloat, torch.SymInt)


def mark_numpy(value, mark=True):
    """`value`, a number's stand-in or a symbolic number, marked as numpy's scalar (NOTE
    [numpy's numbers of graph numbers]); `mark` may be a tag of `mark_numpy_some` instead, and
    None or False leaves `value` as it is."""
    if mark is None or mark is False:
        return value
    if isinstance(value, _NUMPY_TYPES) and not (
            not isinstance(value, torch.Tensor) and torch.compiler.is_dynamo_compiling()):
        setattr(value, _NUMPY, mark)
    return value


def mark_numpy_some(value, what: str, statement: str, location):
    """`value`, tagged as numpy's scalar on some paths of `statement` ("if statement", "call
    of min()") at `location` ((file, line) or None) and a Python number on the others, `what`
    it is for messages (NOTE [numpy's numbers across staged statements])."""
    return mark_numpy(value, (what, statement, location))


def numpy_in(value) -> bool:
    """Whether `value` is numpy's scalar or a value `mark_numpy` marked."""
    if isinstance(value, _NUMPY_TYPES):
        return getattr(value, _NUMPY, False) is True
    return isinstance(value, numpy.generic)


def numpy_some(value):
    """(what, statement, location) of a value numpy's on some paths only, or None."""
    if isinstance(value, _NUMPY_TYPES):
        mark = getattr(value, _NUMPY, None)
        return mark if isinstance(mark, tuple) else None
    return None


def numpy_state(value):
    """True for numpy's scalar (or a value marked one), the tag of `mark_numpy_some`, or False
    for a Python number: the mark a result of `value` with a Python number takes."""
    if isinstance(value, _NUMPY_TYPES):
        mark = getattr(value, _NUMPY, False)
        return mark if mark is True or isinstance(mark, tuple) else False
    return isinstance(value, numpy.generic)


def numpy_mark(*values):
    """The mark of Python's arithmetic of `values`: numpy's where one is numpy's (NEP 50),
    else numpy's on some paths where one is that (its tag), else False."""
    found = False
    for value in values:
        state = numpy_state(value)
        if state is True:
            return True
        found = found or state
    return found


def numpy_paths_error(value, use: str, as_numpy: str, as_python: str) -> StagingError:
    """The error for `use` of a number numpy's on some paths only (`numpy_some`), which gives
    `as_numpy` where it is numpy's and `as_python` where it is Python's."""
    what, statement, location = numpy_some(value)
    where = f" at {location[0]}:{location[1]}" if location else ""
    kind = "float" if not isinstance(value, torch.Tensor) or value.dtype.is_floating_point \
        else "int"
    return StagingError(
        "expression",
        f"{what} is numpy's {kind}64 on some paths and a Python {kind} on others (the "
        f"{statement}{where} gave either: a graph gives a value one type on every path), and "
        f"{use} gives {as_numpy} where it is numpy's and {as_python} where it is Python's: "
        "which is only known when the graph runs",
        f"Make it one type on every path: `np.{kind}64(...)` where it is Python's, or "
        f"`{kind}(...)` of numpy's (or give the dtype: `torch.tensor(v, dtype=torch.float64)`)")


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return ("bool" if value.dtype == torch.bool else
                "float" if value.dtype.is_floating_point else "int")
    if isinstance(value, (bool, torch.SymBool)):
        return "bool"
    return "int" if isinstance(value, (int, torch.SymInt)) else "float"


def _gives_int(fn, args) -> bool:
    """Whether numpy's `fn` of numbers of the kinds of `args` gives an int (NOTE [numpy
    functions of graph numbers keep their kind]); `math`'s functions give floats.

    Raises StagingError for a bool argument of a numpy function (numpy keeps its bool, or
    gives a float16 or an int8, kinds a graph number does not have)."""
    name = EXACT_MATH[fn]
    if not name.startswith("numpy."):
        return False
    kinds = [_kind(a) for a in args]
    if "bool" in kinds:
        raise StagingError(
            "expression", f"{name}() of a bool only the graph knows keeps numpy's bool kind, "
            "which a graph number does not have", "Pass int(b) or float(b)")
    return all(kind == "int" for kind in kinds) and name in _INT_OF_INTS


# The numpy functions giving an int of ints, asked of numpy once here (under dynamo a numpy
# call is dynamo's numpy, whose results are not numpy's types)
with numpy.errstate(all="ignore"):
    _INT_OF_INTS = frozenset(
        name for fn, name in EXACT_MATH.items() if name.startswith("numpy.")
        and isinstance(fn(*[1] * fn.nin), numpy.integer))
