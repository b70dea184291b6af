"""Binary operators and comparisons where an operand is a tensor standing in for a Python
number (NOTE [number stand-ins] in runtime/augmented.py).

NOTE [weak numbers]
torch's type promotion treats a Python number as a 'wrapped number' that only raises the
result's category (`float32 tensor * 0.5` is float32, `int tensor * 0.5` the default float),
but a 0-d tensor as a tensor (`float32 0-d * float64 0-d` is float64). A number a staged
statement carries is a 0-d tensor of its Python dtype (int64, float64, bool; NOTE [numbers as
tensors] in runtime/values.py), so torch alone would compute `y * t` with a carried float `t`
in float64 where Python keeps `y`'s float32, and compare `t < T` in float64 where Python
compares a float with a float32 tensor in float32 (another number of trips). The converter
sends each binary operator and comparison with an operand the function's staged statements
carry through `binary` / `compare` (autoconv/converters/numbers.py), which give the stand-in
the dtype torch gives the Python number it stands for, decided from dtypes alone (static
while tracing):
- a stand-in and a tensor: the stand-in takes `torch.result_type(tensor, number)`'s dtype
  (`with_number`) and the result is a tensor, as in Python;
- a stand-in and a Python number or another stand-in: Python's arithmetic (int and float give
  a float64, `/` of ints a float64), and the result stands for a number too.
Only stand-ins of Python's own dtypes (bool, int64, float64, complex128) are numbers here: a
slot promoted because the number met a tensor (a float32 accumulator) is a tensor on a path in
Python, and is left to torch. Converted code runs only under tracers (plain Python runs the
original body), so none of this is on an eager call's path.
"""

from __future__ import annotations

import bisect
import math
import operator

import numpy
import torch

from .augmented import (check_operands, collecting, empty_count, float_power_operands, mark_view,
                        graph_check, is_stand_in, kind_of, kind_seen, kinds_after, kinds_as_index,
                        kinds_in, mark, mark_kinds, mark_mixed, mark_types, mixed_error,
                        mixed_in, python_dtype, types_in, KIND_DTYPES)
from .errors import StagingError
from .identity import type_in
from .libm import (EXACT_MATH, MATH_POW, graph_number, mark_numpy, math_call, numpy_in,
                   numpy_mark, numpy_paths_error, numpy_some, numpy_state)
from .lists import StagedList
from .text import percent_
from .values import (is_staged, is_symbolic, known_empty, number_dtype, promote_types,
                     tensors_dtype, with_number)

__all__ = ["binary", "compare", "negative", "positive", "invert", "number_call",
           "number_method_call", "comprehension_test"]

_BINARY = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<<": operator.lshift,
    ">>": operator.rshift, "&": operator.and_, "|": operator.or_, "^": operator.xor,
    "@": operator.matmul,
}

_COMPARE = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}

_CHECKED = frozenset({"/", "//", "%"})  # (ZeroDivisionError)
_PYTHON_DTYPES = (torch.bool, torch.int64, torch.float64, torch.complex128)
_NUMBERS = (bool, int, float, complex, torch.SymBool, torch.SymInt, torch.SymFloat)


def binary(left, op, right):
    """`left op right` (op one of '+', '-', '*', '/', ...), a number stand-in taking part as the
    Python number it stands for (NOTE [weak numbers])."""
    if op == "%" and isinstance(left, str):  # `"%.2f" % s`: text, not arithmetic
        return percent_(left, right)
    return _apply(_BINARY[op], left, right, op == "/", op)


def compare(left, op, right):
    """`left op right` (op one of '<', '<=', '>', '>=', '==', '!='), a number stand-in compared
    as the Python number it stands for: a carried float with a float32 tensor in float32, as
    Python compares them (NOTE [weak numbers])."""
    return _apply(_COMPARE[op], left, right, False, op)


def negative(value):
    """`-value`, a number stand-in's negation standing for a number too (of a bool, an int:
    `-True` is -1, NOTE [Python's number rules] in runtime/augmented.py)."""
    return _unary(operator.neg, value)


def positive(value):
    """`+value`: of a bool stand-in, the int it is (`+True` is 1)."""
    return _unary(operator.pos, value)


def invert(value):
    """`~value`: of a bool stand-in, the int's inversion (`~True` is -2, where torch's `~` of a
    bool tensor is the logical not: False)."""
    return _unary(operator.invert, value)


def _unary(fn, value):
    if fn is operator.neg and _float_of_symbols(value, "-", value):
        # (`-v` of a symbolic float: torch's symbolic shapes write `0.0 - v` as `-v`, whose
        # -0.0 Python's `0.0 - v` does not give; as its stand-in, neither is rewritten)
        return _numpy_after(fn(_symbolic_stand_in(value)).item(), numpy_state(value))
    if _is_number(value):
        tagged = kinds_in(value)  # (NOTE [numbers of two kinds] in augmented.py)
        if value.dtype == torch.bool:
            value = value.to(torch.int64)
        result = _numpy_after(mark(fn(value)), numpy_state(value))
        if tagged:
            kinds = {"int" if k == "bool" else k for k in tagged[0]}
            mark_kinds(result, kinds, *tagged[1:3], tagged[3] if len(kinds) == 2 else None)
        return result
    statement = mixed_in(value)
    if statement is not None and value.dtype == torch.bool:
        raise mixed_error(statement, "a unary `-`, `+` or `~`", "a bool tensor", torch.int64)
    return fn(value) if statement is None else mark_mixed(fn(value), statement)


def _apply(fn, left, right, divides, op=None):
    if kinds_in(left) or kinds_in(right):  # NOTE [numbers of two kinds] in augmented.py
        return kinds_after(_apply_plain(fn, left, right, divides, op), left, op, right)
    if types_in(left) or types_in(right):  # NOTE [types on some paths] in augmented.py
        return _types_after(_apply_plain(fn, left, right, divides, op), left, right)
    return _apply_plain(fn, left, right, divides, op)


# NOTE [a size joined with carried numbers]
# `src.size()[:dim] + (dim_size,) + src.size()[dim + 1:]` (torch_geometric's `scatter`) where
# `dim_size` is a number a staged statement chose (`int(index.max()) + 1 if index.numel() > 0
# else 0` on a size only known when the graph runs): torch.Size's `+` takes ints only, and
# raised "torch.Size() takes an iterable of 'int' (item 0 is 'FakeTensor')" with no line of
# the user's (tester45 s03). Joined as plain tuples, the sizes reach the call that takes them
# (`new_zeros(size)`), which reads the stand-ins as the numbers they are, as it does for a
# tuple written out (NOTE [numbers as arguments]).
def _size_and_stand_ins(left, right) -> bool:
    return (isinstance(left, tuple) and isinstance(right, tuple)
            and (type(left) is torch.Size or type(right) is torch.Size)
            and any(_is_number(v) or mixed_in(v) for v in (*left, *right)))


def _types_after(result, left, right):
    """`result` of an operator of a value that is a number on some paths and a tensor on
    others: the same where the other operand is a number too (`s * 2` is a float where `s`
    is), a tensor on every path where it is a tensor (`s * x`)."""
    tagged = types_in(left) or types_in(right)
    other = right if types_in(left) else left
    if not isinstance(result, torch.Tensor) or (
            isinstance(other, torch.Tensor) and not (_is_number(other) or mixed_in(other)
                                                     or types_in(other))):
        return result
    if torch.compiler.is_dynamo_compiling():  # (an operator's output: see `mark_view`)
        result = result.view(result.shape)
    what = tagged[0] if tagged[0].startswith("a value computed") else (
        f"a value computed from {tagged[0]}")
    return mark_types(result, what, *tagged[1:])


def _apply_plain(fn, left, right, divides, op=None):
    if (isinstance(left, numpy.integer) or isinstance(right, numpy.integer)) and any(
            _is_number(v) or _symbolic(v) for v in (left, right)):
        return _with_numpy_int(fn, left, right, divides, op)
    if op in _CHECKED and (is_symbolic(right) or is_symbolic(left)) and (collecting(
            ZeroDivisionError) or _caught(ZeroDivisionError)):
        # `1.0 / n` of `n = int(v)` in a staged `try`: the symbolic number's own division
        # raised out of the graph where the handler runs in Python; as its stand-in, the
        # division is checked as the try's failure (NOTE [a try around a value the graph
        # checks] in runtime/fallible.py)
        # (read back as a symbolic number, as the operands were: `s = r * 2` after it, in
        # the `try`'s lambda, was torch's float64 product of the stand-in, tester23 brief)
        result = _apply(fn, _symbolic_stand_in(left), _symbolic_stand_in(right), divides, op)
        return result.item() if _is_number(result) else result
    if _float_of_symbols(left, op, right):
        # NOTE [float arithmetic of numbers read from tensors]
        result = _apply_plain(fn, _symbolic_stand_in(left), _symbolic_stand_in(right),
                              divides, op)
        return result if op in _COMPARE else _numpy_after(result.item(), numpy_state(result))
    if _symbolic_bool(left) or _symbolic_bool(right):
        # (a bool read from a tensor has no arithmetic of torch's own: `b + 1`, `b == c` of a
        # SymBool asked for its value; as its stand-in, it is Python's bool there too)
        result = _apply_plain(fn, _symbolic_stand_in(left) if _symbolic_bool(left) else left,
                              _symbolic_stand_in(right) if _symbolic_bool(right) else right,
                              divides, op)
        return result.item() if _is_number(result) and op not in _COMPARE else result
    if mixed_in(left) or mixed_in(right):
        return _apply_mixed(fn, left, right, divides, op)
    left_number, right_number = _is_number(left), _is_number(right)
    if not (left_number or right_number):
        if fn is operator.add and _size_and_stand_ins(left, right):
            return tuple(left) + tuple(right)  # (NOTE [a size joined with carried numbers])
        return fn(left, right)
    left_tensor = isinstance(left, torch.Tensor) and not left_number
    right_tensor = isinstance(right, torch.Tensor) and not right_number
    if left_tensor or right_tensor:
        # a tensor and a number: the number as torch's wrapped number, the result a tensor
        tensor, number = (left, right) if left_tensor else (right, left)
        if not isinstance(number, torch.Tensor):
            return fn(left, right)  # a Python number already is a wrapped number
        count = empty_count(left) if left_tensor and op in ("/", "//", "%") else None
        if count is not None:
            # (`sum(vals) / len(vals)`: Python's `0 / 0` where the list is empty)
            graph_check((count != 0) | (number != 0), ZeroDivisionError, "division by zero")
        dtype = with_number(tensor.dtype, number.dtype)
        if number.dtype != dtype:
            number = number.to(dtype)
        if divides and not left_tensor:
            # NOTE [a number divided by a tensor]: Python's `f / t` is torch's
            # `Tensor.__rtruediv__`, `t.reciprocal() * f`, which rounds otherwise than a
            # division (a float32 ulp or two: torch.optim.lbfgs's `3 * (f1 - f2) / (x1 - x2)`
            # with torchmin's float values moved the line search's step by 3e-7)
            return tensor.reciprocal() * number
        return fn(tensor, number) if left_tensor else fn(number, tensor)
    if op not in _COMPARE and any(_is_number(v) or isinstance(v, torch.SymInt)
                                  for v in (left, right)):
        _refuse_narrow_numpy_int(left, op, right)
    if not (isinstance(left, (torch.Tensor, *_NUMBERS))
            and isinstance(right, (torch.Tensor, *_NUMBERS))):
        return fn(left, right)  # (a list, a string: whatever Python does with it)
    # numbers only: Python's arithmetic (NOTE [Python's number rules] in runtime/augmented.py)
    numpy_of = numpy_mark(left, right)
    if op in _COMPARE:
        dtype = promote_types(_dtype(left), _dtype(right))
    else:
        if op == "**" and _sign_decides_type(left, right) and _specialized_sign(right):
            left = float(left) if not isinstance(left, torch.Tensor) else left.double()
        dtype = python_dtype(_dtype(left), op, _dtype(right), right)
        check_operands(left, op, right)
    if isinstance(left, torch.Tensor) and left.dtype != dtype:
        left = left.to(dtype)
    if isinstance(right, torch.Tensor) and right.dtype != dtype:
        right = right.to(dtype)
    if op in ("/", "//", "%") and isinstance(right, torch.Tensor) and not isinstance(
            left, torch.Tensor):
        # (`1e-3 / m`: Python's number over a tensor is torch's reciprocal-multiply, NOTE [a
        # number divided by a tensor]; a division of two tensors is IEEE's)
        left = torch.full_like(right, left)
    if op == "**":
        left, right = float_power_operands(left, right, dtype)
        if dtype.is_floating_point:
            # Python's float `**` raises where the result overflows (`1e308 ** 2`), where
            # torch's pow gives inf
            result = fn(left, right)
            graph_check(~(torch.isinf(result) & torch.isfinite(left) & torch.isfinite(right)),
                        OverflowError, "(34, 'Numerical result out of range')")
            return _numpy_after(mark(result), numpy_of)
    if (op in ("//", "%") and dtype == torch.int64 and isinstance(right, torch.Tensor)
            and collecting(ZeroDivisionError)):
        # (its check is a `try`'s failure, not an assertion: the value where it fails is
        # replaced, but torch's int division by zero raises; NOTE [a try around a value the
        # graph checks] in runtime/fallible.py)
        right = torch.where(right == 0, torch.ones_like(right), right)
    result = fn(left, right)
    if dtype == torch.int64:
        check_int_range(left, op, right, result)
    # (a comparison of numpy's is numpy's bool: `isinstance(np.exp(k) > 3, bool)` is False)
    return _numpy_after(mark(result), numpy_of)


def _with_numpy_int(fn, left, right, divides, op):
    """`left op right` of numpy's int and a number only the graph knows: numpy's scalar of
    the graph's int64 (`np.int64(3) * k` an np.int64, its `/ 2` an np.float64, float64 under
    torch.tensor: it was a plain number, float32 there, silently), refused for numpy's narrower
    ints (NOTE [numpy's numbers of graph numbers] in runtime/libm.py)."""
    if op not in _COMPARE:
        _refuse_narrow_numpy_int(left, op, right)
    result = _apply_plain(fn, int(left) if isinstance(left, numpy.integer) else left,
                          int(right) if isinstance(right, numpy.integer) else right, divides, op)
    if op in _COMPARE:
        return result
    if torch.compiler.is_dynamo_compiling() and type_in(result, (int, float)) and is_symbolic(
            result):
        # (dynamo shows a symbolic number as a Python number, which takes no mark: its
        # stand-in does, as libm's `math_call` gives there)
        result = _symbolic_stand_in(result)
    return mark_numpy(result)


# NOTE [numpy's scalar types of graph numbers]
# `a = np.float64(k)` of a number only the graph knows (a staged loop's count, `int(t)`) is
# numpy's float64 in Python. numpy asked the stand-in for its value: torch's "tensor
# subclasses" error in autoconv's trace, and under torch.compile dynamo traced it as numpy
# on a tensor, whose `while a < 10:` it took for a Python test ("Data-dependent branching",
# break44c). The graph's number converts as numpy's does: np.float64 / np.int64 / np.bool_
# of it is the graph's float64 / int64 (toward zero, as numpy's of a float) / bool number,
# marked numpy's (NOTE [numpy's numbers of graph numbers] in libm.py); numpy's narrower types
# are refused, as their arithmetic with graph numbers is (`_refuse_narrow_numpy_int`).
_NUMPY_SCALAR_TYPES = (numpy.float64, numpy.int64, numpy.bool_, numpy.float32, numpy.float16,
                       numpy.int32, numpy.int16, numpy.int8, numpy.uint8, numpy.uint16,
                       numpy.uint32, numpy.uint64, numpy.complex64, numpy.complex128)
_NUMPY_SCALAR_DTYPES = ((numpy.float64, torch.float64), (numpy.int64, torch.int64),
                        (numpy.bool_, torch.bool))


def _numpy_scalar(fn, value):
    """`fn(value)` of numpy's scalar type `fn` and a number only the graph knows (NOTE
    [numpy's scalar types of graph numbers])."""
    statement = mixed_in(value)
    if statement is not None:
        raise mixed_error(statement, f"numpy.{fn.__name__}() of it", "numpy's array",
                          "numpy's scalar")
    dtype = next((d for known, d in _NUMPY_SCALAR_DTYPES if known is fn), None)
    if dtype is None:
        name = fn.__name__
        raise StagingError(
            "expression", f"numpy.{name}() of a number only the graph knows (one a staged "
            f"statement carries, a callee returns, or read from a tensor) is numpy's {name} in "
            "Python, which the graph's float64 / int64 number does not keep (its dtype under "
            "torch.tensor, its rounding or wrap-around)",
            "Make it numpy's float64 or int64 (`np.float64(v)`), or keep it a tensor of that "
            f"dtype (`torch.as_tensor(v).to(torch.{name})`)")
    if not isinstance(value, torch.Tensor):
        value = _symbolic_stand_in(value)
    if value.dtype.is_complex:
        raise StagingError(
            "expression", f"numpy.{fn.__name__}() of a complex number only the graph knows",
            "Take its real part first (`v.real`), as numpy would warn about")
    if dtype == torch.bool:
        out = value != 0
    elif dtype == torch.int64 and value.dtype.is_floating_point:
        out = torch.trunc(value).to(torch.int64)
    else:
        out = value.to(dtype)
    return mark_numpy(mark_view(out.clone() if out is value else out))


def _refuse_narrow_numpy_int(left, op, right) -> None:
    """Refuses numpy's int narrower than int64 (or unsigned) with a graph number: Python's
    `np.int32(3) * k` is an np.int32 (NEP 50: Python's int takes numpy's type), which
    torch.tensor makes int32 and which wraps at 2**31, where the graph's number is an int64
    (break43b s05: torch.tensor of it was int64, silently)."""
    for value in (left, right):
        if isinstance(value, numpy.integer) and (
                value.dtype.itemsize < 8 or value.dtype.kind == "u"):
            raise StagingError(
                "expression", f"`{op}` of numpy's {value.dtype} ({value!r}) and a number only "
                "the graph knows (one a staged statement carries, a callee returns, or read "
                "from a tensor) is numpy's {value.dtype} in Python, which the graph's int64 "
                "number does not keep (its dtype under torch.tensor, its "
                "wrap-around)".replace("{value.dtype}", str(value.dtype)),
                "Make the constant a Python int (`int(c)`) or an np.int64, or give "
                "torch.tensor the dtype (`torch.tensor(v, dtype=torch.int32)`)")
        if isinstance(value, (numpy.floating, numpy.complexfloating)) and (
                value.dtype.itemsize < (16 if value.dtype.kind == "c" else 8)):
            # (break44c s03: `np.float32(0.5) * k` of a carried float is numpy's float32 in
            # Python (NEP 50: Python's float takes numpy's type), torch.tensor's float32; the
            # graph gave numpy's float64's, float64, silently; np.float16 with a count gave
            # float32 for Python's float16)
            raise StagingError(
                "expression", f"`{op}` of numpy's {value.dtype} ({value!r}) and a number only "
                "the graph knows (one a staged statement carries, a callee returns, or read "
                f"from a tensor) is numpy's {value.dtype} in Python, which the graph's "
                "float64 number does not keep (its dtype under torch.tensor, its rounding)",
                "Make the constant a Python float (`float(c)`) or an np.float64, or compute "
                f"in a tensor of that dtype (`torch.tensor(c, dtype=torch.{value.dtype})`)")


def _numpy_after(result, numpy_of):
    """`result`, marked as numpy's scalar where an operand was (NOTE [numpy's numbers of graph
    numbers] in runtime/libm.py), or as numpy's on some paths (`numpy_of` a tag: NOTE [numpy's
    numbers across staged statements] there)."""
    return mark_numpy(result, numpy_of)


# NOTE [an int power whose sign only the graph knows]
# `2 ** direction`, `direction = 1 if threshold < -delta else -1` (pyro's step-size search): an
# int raised to an int stand-in is Python's int where the exponent is 0 or more and a float
# where it is negative, a type the data decides, and a graph gives one type on every path. The
# graph's check refused the negative ones when the graph ran (`check_operands`), where Python
# gives 0.5 (tester42 s03). In autoconv's own trace, outside a staged body, the graph is
# specialised on the exponent's sign instead (NOTE [specialisation] in staging/specialize.py):
# a negative one computes Python's float, and a call taking the other sign traces its own
# graph. Under dynamo, in a staged body, or where the sign cannot be computed, the check stays.
def _sign_decides_type(left, right) -> bool:
    return (isinstance(right, torch.Tensor) and right.dtype == torch.int64
            and (left.dtype == torch.int64 if isinstance(left, torch.Tensor)
                 else type(left) is int))


def _specialized_sign(right) -> bool:
    """Whether the int stand-in `right` is negative, the graph specialised on it; False where
    it cannot be (NOTE [an int power whose sign only the graph knows])."""
    if torch.compiler.is_dynamo_compiling():
        return False
    from .staging import context, specialize

    error = StagingError(
        "`**`", "`**` of an int by an int whose sign only the graph knows is an int or a "
        "float by that sign", "Make an operand a float (`float(k) ** j`)")
    try:
        return specialize.specialize(right < 0, "`**`", error,
                                     in_body=context.in_staged_body())
    except StagingError:
        return False


# NOTE [float arithmetic of numbers read from tensors]
# `v = x.sum().item()` (or `float(t)`) of a traced tensor is torch's unbacked SymFloat, whose
# arithmetic torch's symbolic shapes record as a sympy expression and simplify as real
# algebra, not IEEE floats (tester24 s06, s08; plain torch.export / torch.compile do the same):
# `v - v` and `v * 0.0` were 0.0 for inf / nan, `v != v` was False for a NaN (`if v != v:
# continue` never skipped), `v >= v` True, `(v + 1e16) - 1e16` kept v (Python rounds it away).
# An operator or comparison the converter sends here (autoconv/converters/numbers.py: every one
# that may read a number read from a tensor) with a symbolic operand whose result is a float
# (a float operand, or `/`) is computed on the operands' float64 stand-ins, by the rules of
# Python numbers above (IEEE double arithmetic, ZeroDivisionError, `**`'s errors), and read
# back with `.item()`: a new symbol, of which torch knows nothing to simplify. A comparison
# gives its bool stand-in, which a staged `if` takes and `torch.tensor(ok)` reads as the bool.
# Ints of symbols (`n + 1`, `n // 2`) stay torch's: sympy's int algebra is Python's, and sizes
# and indices need the relations it keeps.

def _float_of_symbols(left, op, right) -> bool:
    """Whether `left op right` is float arithmetic or a float comparison of numbers, one of
    them read from a traced tensor (NOTE [float arithmetic of numbers read from tensors])."""
    if not (_symbolic(left) or _symbolic(right)):
        return False
    kinds = []
    for value in (left, right):
        if _is_number(value):
            kinds.append(value.dtype)
        elif isinstance(value, (torch.SymFloat, float)):
            kinds.append(torch.float64)
        elif isinstance(value, (bool, int, torch.SymBool, torch.SymInt)):
            kinds.append(torch.int64)
        else:
            return False  # (a tensor, a complex, a list: as before)
    return torch.float64 in kinds or op == "/"


def _symbolic_bool(value) -> bool:
    """A bool read from a traced tensor (`(x > 0).all().item()`), as dynamo shows it too."""
    return type_in(value, (bool, torch.SymBool)) and _symbolic(value)


# NOTE [carried ints past int64]
# A Python int a staged statement carries is an int64 in the graph (NOTE [numbers as tensors]
# in runtime/values.py): past 2**63 - 1 it wrapped around, silently, where Python's int grows
# (a factorial loop's `fact(25)`). No graph holds an int of any size, so the graph checks the
# result of each operator that can leave int64's range on such an int and raises an
# OverflowError at the user's line where it did (a graph assertion, as for `raise`): `*` and
# `**` (computed again in float64, whose rounding cannot bring a result past the range back
# under 2**63 - 2**12), `<<` (shifted back), and `+` /
# `-` of two carried ints or of one with a Python int of 2**32 or more (the signs: a sum
# wrapped where it has another sign than both operands). A counter's `i + 1` is not checked:
# reaching 2**63 one step at a time takes centuries, and the check would cost every loop that
# counts (about five graph ops an iteration). A product or power by a Python int -1, 0 or 1
# is not checked either.
_OVERFLOWS = frozenset({"*", "**", "<<", "+", "-"})
_SMALL = 2 ** 32


def _as_float64(value):
    return value.to(torch.float64) if isinstance(value, torch.Tensor) else float(value)


def check_int_range(left, op, right, result) -> None:
    """A graph assertion that `left op right` (int64, standing for Python ints) did not leave
    int64's range (NOTE [carried ints past int64]); nothing for another operator."""
    if op not in _OVERFLOWS or not isinstance(result, torch.Tensor):
        return
    plain = right if not isinstance(right, torch.Tensor) else left if not isinstance(
        left, torch.Tensor) else None
    if (type(plain) is int or type(plain) is bool) and is_symbolic(plain):
        return  # (an int read from a tensor, as dynamo shows a SymInt: a size, as below)
    if type(plain) is int or type(plain) is bool:
        if op in ("+", "-") and -_SMALL < plain < _SMALL:
            return
        if op in ("*", "**") and -1 <= plain <= 1:
            return
    elif plain is not None:
        return  # (a SymInt: a size, never near 2**63)
    if op in ("*", "**"):
        # in float64: each rounding is within 2**-53, so a result of 2**63 or more in size
        # is at least 2**63 - 3 * 2**10 there (never missed; one within 2**12 of the bound
        # is refused too). Fewer ops than checking the int64 product by dividing back, and
        # ones the python backend's loops over numbers run as Python (scalar_loops.py)
        exact = (_as_float64(left) * _as_float64(right) if op == "*"
                 else _as_float64(left) ** _as_float64(right))
        bad = exact.abs() >= 2.0 ** 63 - 2.0 ** 12
    elif op == "+":
        bad = ((left ^ result) & (right ^ result)) < 0
    elif op == "-":
        bad = ((left ^ right) & (left ^ result)) < 0
    else:  # "<<"
        bad = (result >> right) != left
    graph_check(torch.logical_not(bad), OverflowError, (
        f"a Python int carried by a staged statement left int64's range at `{op}` (past "
        "2**63 - 1, where the graph's int64 wraps around and Python's int grows): carry a "
        "float (`f = 1.0`) where values grow that large, or compute it in Python "
        "outside the staged statement"))


def _is_number(value) -> bool:
    """A stand-in of one of Python's number dtypes (see NOTE [weak numbers])."""
    return is_stand_in(value) and value.dtype in _PYTHON_DTYPES


def _dtype(value) -> torch.dtype:
    return value.dtype if isinstance(value, torch.Tensor) else number_dtype(value)


# A value that is a number on some paths of the statement that made it and a tensor on the
# others (NOTE [numbers on some paths] in runtime/augmented.py): computed where both readings
# give one dtype, else a StagingError.

def _apply_mixed(fn, left, right, divides, op):
    readings = set()
    for left_as in _readings(left):
        for right_as in _readings(right):
            readings.add(_reading_dtype(left_as, right_as, divides, op, right))
    statement = mixed_in(left) or mixed_in(right)
    if None in readings:
        return fn(left, right)  # (not numbers and tensors: whatever Python does with them)
    if len(readings) > 1:
        as_tensor = _reading_dtype(_readings(left)[0], _readings(right)[0], divides, op, right)
        as_number = _reading_dtype(_readings(left)[-1], _readings(right)[-1], divides, op,
                                   right)
        raise mixed_error(statement, f"`{op}`" + (" (compared in)" if op in _COMPARE else ""),
                          as_tensor, as_number)
    dtype = readings.pop()
    operands = [v.to(dtype) if isinstance(v, torch.Tensor) and op not in _COMPARE and
                (mixed_in(v) or _is_number(v)) and v.dtype != dtype else v
                for v in (left, right)]
    result = fn(*operands)
    plain = any(isinstance(v, torch.Tensor) and not (mixed_in(v) or _is_number(v))
                for v in (left, right))
    return result if plain else mark_mixed(result, statement)


def _readings(value):
    """What `value` may be on the paths: ('tensor', dtype, dim) / ('number', dtype)."""
    if mixed_in(value):
        return [("tensor", value.dtype, value.dim()), ("number", value.dtype)]
    if _is_number(value):
        return [("number", value.dtype)]
    if isinstance(value, torch.Tensor):
        return [("tensor", value.dtype, value.dim())]
    if isinstance(value, _NUMBERS):
        return [("number", number_dtype(value))]
    return [None]


def _reading_dtype(left, right, divides, op=None, right_value=None):
    """The dtype torch (or Python) computes `left op right` in, for one reading of each."""
    if left is None or right is None:
        return None
    if left[0] == "number" and right[0] == "number":  # Python's arithmetic
        if op in _COMPARE:
            return promote_types(left[1], right[1])
        return python_dtype(left[1], op, right[1], right_value)
    if left[0] == "tensor" and right[0] == "tensor":
        dtype = tensors_dtype(left[1], left[2], right[1], right[2])
    else:
        tensor, number = (left, right) if left[0] == "tensor" else (right, left)
        dtype = with_number(tensor[1], number[1])
    if divides and not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.get_default_dtype()
    return dtype


# NOTE [numbers as arguments]
# A carried number passed to a torch function is a 0-d tensor there: `torch.tensor(s)` copies a
# float64 where Python's float makes the default float32, `torch.tensor([k, 2])` calls `.item()`
# on it (which a tracer refuses: "data is not allocated yet"), and a float64 0-d tensor meeting
# an int tensor or a float32 0-d one raises the result to float64 where Python's float would
# not. The converter writes a call of a function (not one of the user's: those get the tensor)
# with an argument that may read a carried number as `ac.number_call(fn, ...)`, which builds
# torch.tensor's data from the numbers as torch would infer them, and gives a float stand-in
# the dtype torch gives a Python float meeting the call's other tensors.

def number_call(fn, /, *args, _receiver=None, **kwargs):
    """`fn(*args, **kwargs)`, the number stand-ins among the arguments (and in the lists of
    torch.tensor's data) taking part as the Python numbers they stand for (NOTE [numbers as
    arguments]).

    Raises StagingError for a float that is a number on some paths and a tensor on others
    where the two give different dtypes."""
    if _receiver is None and any(fn is known for known in _BISECTS) and len(args) == 2 and (
            not kwargs) and (graph_number(args[1]) or _is_number(args[1])):
        return _bisect(fn, *args)
    if _receiver is None and _is_export_pow(fn):
        fn = MATH_POW  # (math's own, read at import: `math.pow` is the lambda now)
    if any(fn is known for known in EXACT_MATH) and not kwargs and _receiver is None and any(
            graph_number(arg) or _is_number(arg) for arg in args):
        # (NOTE [math functions of graph numbers] in runtime/libm.py)
        for arg in args:
            statement = mixed_in(arg)
            if statement is not None:
                raise mixed_error(statement, f"{_name(fn)}() of it", "torch's TypeError",
                                  "a number")
        return math_call(fn, args, symbolic=not any(_is_number(arg) for arg in args))
    if any(fn is known for known in _SYMBOLIC_ARGUMENTS) and any(
            isinstance(arg, (torch.SymFloat, torch.SymInt)) or is_symbolic(arg) for arg in args):
        # `math.sqrt(float(t))` of a traced `t` (tester t16 repro 3): the symbolic float
        # `float()` gives has no `__sqrt__`, and math asks it for its value (torch.tensor
        # too): it becomes the stand-in it stands for (under dynamo, which shows it as a
        # float, too: `math.isfinite(x.max().item())` asked it, tester22 s17)
        args = tuple(_symbolic_stand_in(arg) for arg in args)
    elif fn is divmod and any(is_symbolic(arg) for arg in args):
        # (torch's symbolic numbers have no divmod at all: `divmod(int(v), 3)`, tester21 s07;
        # under dynamo, which shows them as ints and floats, too)
        args = tuple(_symbolic_stand_in(arg) if is_symbolic(arg) else arg for arg in args)
    elif any(fn is known for known in _UNSERIALIZED_ON_SYMBOLS) and args and isinstance(
            args[0], (torch.SymFloat, torch.SymInt)) and is_symbolic(args[0]):
        args = (_symbolic_stand_in(args[0]), *args[1:])
    if _receiver is None and not kwargs and len(args) == 1 and any(
            fn is known for known in _NUMPY_SCALAR_TYPES) and (
            graph_number(args[0]) or _is_number(args[0]) or mixed_in(args[0])):
        return _numpy_scalar(fn, args[0])  # NOTE [numpy's scalar types of graph numbers]
    if (fn is torch.tensor or fn is torch.as_tensor) and args and isinstance(
            args[0], StagedList):
        return _tensor_of_grown(args[0], *args[1:], **kwargs)
    if (fn is torch.tensor or fn is torch.as_tensor) and args and type_in(
            args[0], (list, tuple)) and any(_symbolic(leaf) for leaf in _leaves(args[0])):
        # `torch.tensor([int(b), 1.5])` of a traced `b`: torch asks a symbolic number in a
        # list for its value (autoconv's trace refused it: tester22 s02); as the stand-in it
        # stands for, the data is stacked from tensors (`_tensor_from`)
        args = (_mapped(lambda leaf: _symbolic_stand_in(leaf) if _symbolic(leaf) else leaf,
                        args[0]), *args[1:])
    leaves = [leaf for value in (*args, *kwargs.values()) for leaf in _leaves(value)]
    if not any(_is_number(leaf) or mixed_in(leaf) for leaf in leaves):
        if (fn is torch.tensor or fn is torch.as_tensor) and args and _holds_traced(args[0]):
            return _tensor_of_traced(fn, *args, **kwargs)  # NOTE [torch.tensor of traced items]
        return fn(*args, **kwargs)
    _check_kinds_seen(fn, args, kwargs, _receiver)
    if _receiver is None and any(fn is known for known in _SIZED):
        kinds_as_index(leaves, f"torch.{_name(fn)}() of it")
    # (by identity: a bound method, which dynamo cannot hash, is never one of them)
    staged = None if _receiver is not None else next(
        (staged for known, staged in _NUMBER_FUNCTIONS.items() if known is fn), None)
    if staged is not None:
        return _number_function(fn, staged, args, kwargs)
    fill = None if _receiver is not None else next(
        (filled for known, filled in _FILLS.items() if known is fn), None)
    if fill is not None:
        return fill(*args, **kwargs)
    if _receiver is None and any(fn is known for known in _MATH_FUNCTIONS):
        raise StagingError(
            "expression", f"{_name(fn)}() of a Python number a staged statement carries needs "
            "the number's value, which is only known when the graph runs (the number is a 0-d "
            "tensor standing in for it) and this function is not staged",
            "Keep the value a tensor across the statement (start it as `torch.tensor(0.0, "
            f"dtype=torch.float64)`) and call torch's function on it (`torch.{_name(fn)}`), or "
            "call this one after the function returns")
    if (fn is torch.tensor or fn is torch.as_tensor) and args:
        return _tensor_from(args[0], *args[1:], **kwargs)
    if fn is torch.full and kwargs.get("dtype") is None:
        # torch.full infers its dtype from the fill (an int's int64, a bool's bool), and read
        # a 0-d tensor's under dynamo as the default float: float32 where Python's int gives
        # int64 (tester21b s03); the dtype the number's would be is given to it
        fill = args[1] if len(args) > 1 else kwargs.get("fill_value")
        if _is_number(fill) or mixed_in(fill):
            kwargs = {**kwargs, "dtype": _inferred(fill)}
    floats = [leaf for leaf in leaves if (_is_number(leaf) or mixed_in(leaf))
              and (leaf.dtype.is_floating_point or leaf.dtype.is_complex)]
    if not floats:
        return fn(*args, **kwargs)  # (an int or bool: as a 0-d tensor, see README)
    others = [leaf.dtype for leaf in (*leaves, _receiver) if isinstance(leaf, torch.Tensor)
              and not (_is_number(leaf) or mixed_in(leaf))]
    def weak(value):
        if not (isinstance(value, torch.Tensor) and (_is_number(value) or mixed_in(value))
                and (value.dtype.is_floating_point or value.dtype.is_complex)):
            return value
        dtype = kwargs.get("dtype")
        if not isinstance(dtype, torch.dtype):
            dtype = (with_number(_promote_all(others), value.dtype) if others
                     else with_number(torch.bool, value.dtype))
        if mixed_in(value) and dtype != value.dtype:
            raise mixed_error(mixed_in(value), f"passing it to {_name(fn)}", value.dtype, dtype)
        return value.to(dtype) if dtype != value.dtype else value
    return fn(*[_mapped(weak, a) for a in args],
              **{k: _mapped(weak, v) for k, v in kwargs.items()})


# torch's functions and tensor methods whose number arguments are sizes, counts or dims (an
# int's; a float raises TypeError): a number of two kinds there shows its kind
_SIZED = (torch.zeros, torch.ones, torch.empty, torch.rand, torch.randn, torch.randint,
          torch.randperm, torch.eye, torch.zeros_like, torch.ones_like, torch.narrow,
          torch.split, torch.chunk, torch.topk, torch.kthvalue, torch.roll, torch.select,
          torch.unsqueeze, torch.squeeze, torch.flatten, torch.reshape, torch.tril, torch.triu,
          torch.diag, torch.linspace, torch.logspace)
_SIZED_METHODS = frozenset({
    "view", "reshape", "expand", "repeat", "new_zeros", "new_ones", "new_empty", "narrow",
    "split", "chunk", "topk", "kthvalue", "roll", "select", "unsqueeze", "squeeze", "flatten",
    "tril", "triu", "diag", "unfold", "movedim", "transpose", "permute", "size", "tile",
    "repeat_interleave"})


# Functions whose result's dtype is inferred from a number argument's kind (NOTE [numbers of
# two kinds] in runtime/augmented.py); math.* and the like only read the value, and a tensor's
# `new_tensor` / `new_full` take the tensor's dtype.
_KIND_INFERRING = (torch.tensor, torch.as_tensor, torch.full, torch.arange)


def _check_kinds_seen(fn, args, kwargs, receiver) -> None:
    """A StagingError where `fn` infers its result's dtype from a number that is an int on
    some paths and a float on others (NOTE [numbers of two kinds] in runtime/augmented.py)."""
    if kwargs.get("dtype") is not None:
        return
    if receiver is not None or not any(fn is known for known in _KIND_INFERRING):
        return
    for value in (*args, *kwargs.values()):
        for leaf in _leaves(value):
            tagged = kinds_in(leaf)
            if tagged is not None:
                default = torch.get_default_dtype()
                called = (f"torch.{_name(fn)}" if getattr(fn, "__module__", None) == "torch"
                          else f".{_name(fn)}")
                kind_seen(leaf, f"{called}() of it", " and ".join(
                    f"{default if k == 'float' else KIND_DTYPES[k]} where it is "
                    f"{'an' if k == 'int' else 'a'} {k}" for k in tagged[0]))


# NOTE [functions of numbers]
# A builtin or math function of a carried number (`round(t, 1)`, `math.floor(t)`, `divmod(k,
# 3)`) would ask the 0-d tensor standing for it for its value (FakeTensor has no __round__;
# math.floor calls __floor__, which reads the value). The ones below are staged with Python's
# result type: an int for round(t), floor, ceil and trunc, a float for round(t, n), sqrt and
# fabs, and Python's error for a value outside the domain becomes a graph assertion
# (math.sqrt(-1.0) raises ValueError, where torch gives nan). sqrt and the others (exp, log,
# sin, ...) are Python's own `math` in the graph (NOTE [math functions of graph numbers] in
# runtime/libm.py): libm and torch's kernels differ in the last bit, and a loop on the result
# could then take another number of trips.

def _round(x, ndigits=None):
    if ndigits is None:
        return _rounding(torch.round)(x)  # (both round half to even)
    ndigits = operator.index(ndigits)
    if _is_float(x):
        if ndigits < 0:
            raise StagingError(
                "expression", "round(t, n) with a negative n of a float a staged statement "
                "carries is not staged", "Write round(t / 10 ** -n) * 10 ** -n, or round it "
                "after the function returns")
        return mark(_round_digits(x, ndigits))
    if ndigits >= 0:
        return _to_int(x)  # (an int rounded to digits after the point is itself)
    # (an int64 below 2**53 is exact as a float64, and so is 10 ** -n: the digits are exact)
    return _to_int(_round_digits(x.to(torch.float64) / 10.0 ** -ndigits, 0) * 10 ** -ndigits)


def _round_digits(x, ndigits: int):
    """Python's `round(x, ndigits)` of float64 `x`: the multiple of 10**-ndigits nearest to the
    exact value of x, ties to even. torch.round(x, decimals=n) rounds x * 10**n, whose rounding
    can land on a tie the exact product is not at (round(2.15, 1) is 2.1 in Python, 2.15 being
    2.1499..., and 2.2 by torch's). The product's error is computed exactly (Dekker's
    two-product) and decides those ties."""
    if ndigits > 22:  # (10**n is no longer exact)
        raise StagingError(
            "expression", f"round(t, {ndigits}) of a float a staged statement carries is not "
            "staged (more than 22 digits)", "Round after the function returns")
    scale = 10.0 ** ndigits
    product = x * scale
    error = _product_error(x, scale, product)
    floor = torch.floor(product)
    tie = (product - floor) == 0.5
    rounded = torch.where(tie & (error > 0), floor + 1,
                          torch.where(tie & (error < 0), floor, torch.round(product)))
    # From 2**52 the product is a whole number (a spacing of 1 up to 2**53), and only an error
    # of exactly a half moves the rounding, to the even neighbour; from 2**53 (a spacing of 2
    # or more) the rounded decimal is nearer to x than half its spacing: x itself (and inf,
    # nan are x too).
    odd = torch.remainder(product, 2) != 0
    whole = torch.where(odd & (error == 0.5), product + 1,
                        torch.where(odd & (error == -0.5), product - 1, product))
    magnitude = torch.abs(product)
    return torch.where(magnitude < 2.0 ** 52, rounded / scale,
                       torch.where(magnitude < 2.0 ** 53, whole / scale, x))


def _product_error(a, b: float, product):
    """The exact `a * b - product` of float64s (Veltkamp's split, no fused multiply-add)."""
    def split(value):
        c = 134217729.0 * value  # 2**27 + 1
        high = c - (c - value)
        return high, value - high
    a_high, a_low = split(a)
    b_high = 134217729.0 * b - (134217729.0 * b - b)
    b_low = b - b_high
    return ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low


def _rounding(fn):
    def staged(x):
        if not _is_float(x):
            return _to_int(x)
        check_int_of_float(x)
        return _to_int(fn(x))
    return staged


def check_int_of_float(x) -> None:
    """Python's errors of `int(x)` of the float64 tensor `x` as graph assertions, and a
    refusal past int64's range, where Python's int grows and the graph's int64 cannot hold it
    (`int(1e300)`: torch's conversion gave a wrong int, or failed after the graph ran)."""
    graph_check(~torch.isnan(x), ValueError, "cannot convert float NaN to integer")
    graph_check(~torch.isinf(x), OverflowError, "cannot convert float infinity to integer")
    graph_check((x < 2.0 ** 63) & (x >= -(2.0 ** 63)), OverflowError, (
        "an int read from a tensor (int(), round(), math.floor() of a float) is past "
        "int64's range, where Python's int grows and the graph's int64 cannot hold it: keep "
        "such values floats"))


def _domain_checked(fn, valid):
    def staged(x):
        x = _as_float(x)
        graph_check(valid(x), ValueError, "math domain error")
        return mark(fn(x))
    return staged


def _divmod(a, b):
    return binary(a, "//", b), binary(a, "%", b)


def _pow(base, exponent, mod=None):
    if mod is not None:
        raise StagingError(
            "expression", "pow(a, b, mod) of a Python number a staged statement carries is "
            "not staged", "Write (a ** b) % mod")
    return binary(base, "**", exponent)


def _abs(x):
    return mark(torch.abs(x.to(torch.int64) if x.dtype == torch.bool else x))


def _is_float(x) -> bool:
    return x.dtype.is_floating_point or x.dtype.is_complex


def _to_int(x):
    return mark(x.to(torch.int64))


def _as_float(x):
    return x if _is_float(x) else x.to(torch.float64)


_NUMBER_FUNCTIONS = {
    round: _round, divmod: _divmod, pow: _pow, abs: _abs,
    math.floor: _rounding(torch.floor), math.ceil: _rounding(torch.ceil),
    math.trunc: _rounding(torch.trunc),
    math.sqrt: _domain_checked(torch.sqrt, lambda x: (x >= 0) | torch.isnan(x)),
    math.fabs: lambda x: mark(torch.abs(_as_float(x))),
    math.isnan: lambda x: mark(torch.isnan(x)),
    math.isinf: lambda x: mark(torch.isinf(x)),
    math.isfinite: lambda x: mark(torch.isfinite(x)),
}


# NOTE [a number's stand-in as a fill value]
# `torch.full_like(x, n)` / `torch.scalar_tensor(n)` of a number a staged statement carries
# (tester21b s22): torch takes the 0-d tensor as a Python scalar, which dynamo reads with
# `.item()` into an unbacked symbol that no output holds (PendingUnbackedSymbolNotFound under
# torch.compile). The value is copied into the new tensor instead (`copy_` broadcasts a 0-d
# tensor), in the dtype torch gives the Python number: the input's for full_like, the
# default float for scalar_tensor.

def _full_like(input, fill_value, *, dtype=None, layout=None, device=None,
               requires_grad=False, memory_format=torch.preserve_format):
    if not isinstance(fill_value, torch.Tensor):
        return torch.full_like(input, fill_value, dtype=dtype, layout=layout, device=device,
                               requires_grad=requires_grad, memory_format=memory_format)
    out = torch.empty_like(input, dtype=dtype, layout=layout, device=device,
                           memory_format=memory_format)
    out = out.copy_(fill_value)
    return out.requires_grad_() if requires_grad else out


def _scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False,
                   pin_memory=None):
    if not isinstance(s, torch.Tensor):
        return torch.scalar_tensor(s, dtype=dtype, layout=layout, device=device,
                                   requires_grad=requires_grad, pin_memory=pin_memory)
    out = torch.empty((), dtype=dtype or torch.get_default_dtype(), layout=layout,
                      device=device if device is not None else s.device)
    out = out.copy_(s)
    return out.requires_grad_() if requires_grad else out


_FILLS = {torch.full_like: _full_like, torch.scalar_tensor: _scalar_tensor}
_MATH_FUNCTIONS = tuple(value for value in vars(math).values() if callable(value))
# (the others take a symbolic number as it is)
_SYMBOLIC_ARGUMENTS = (math.sqrt, math.fabs, math.isnan, math.isinf, math.isfinite,
                       torch.tensor, torch.as_tensor)
# These take one as it is too, but torch.export's graph then holds Python's function
# (`operator.abs`, `builtins.round`, `math.floor`, `math.ceil`), which torch.export.save cannot
# write ("Failed serializing node abs_3": a tutorial's power iteration, `abs(lam_new - lam)` of
# `.item()` values). A number read from a traced tensor becomes its stand-in, and the function
# the tensor op of _NUMBER_FUNCTIONS.
_UNSERIALIZED_ON_SYMBOLS = (abs, round, math.floor, math.ceil)


def _symbolic(value) -> bool:
    """A symbolic int or float read from a traced tensor (as dynamo shows it, too)."""
    return isinstance(value, (torch.SymFloat, torch.SymInt, torch.SymBool)) or (
        type_in(value, (bool, int, float)) and is_symbolic(value))


def _symbolic_stand_in(value):
    """A symbolic float, int or bool (`float(t)` of a traced `t`) as a number's stand-in."""
    if isinstance(value, torch.SymFloat):  # NOTE [numpy's numbers of graph numbers] in libm.py
        return _numpy_after(mark(torch.scalar_tensor(value, dtype=torch.float64)),
                            numpy_state(value))
    if isinstance(value, torch.SymInt):
        return _numpy_after(mark(torch.scalar_tensor(value, dtype=torch.int64)),
                            numpy_state(value))
    if isinstance(value, torch.SymBool):  # (`b = (x > 0).all().item()`)
        return mark(torch.scalar_tensor(value, dtype=torch.bool))
    if torch.compiler.is_dynamo_compiling() and type_in(value, (bool,)) and is_symbolic(value):
        return mark(torch.scalar_tensor(torch.sym_ite(value, 1, 0), dtype=torch.int64).to(
            torch.bool).view(()))
    if torch.compiler.is_dynamo_compiling() and type_in(value, (int, float)) and is_symbolic(value):
        # (dynamo shows a symbolic number as an int or a float, and marks only a view of an
        # op's output: as staging/torch.py's `_marked`)
        dtype = torch.int64 if type(value) is int else torch.float64
        return mark(torch.scalar_tensor(value, dtype=dtype).view(()))
    return value


def _number_function(fn, staged, args, kwargs):
    """`fn(*args, **kwargs)` (a function of NOTE [functions of numbers]) of number stand-ins
    and Python numbers."""
    for value in (*args, *kwargs.values()):
        statement = mixed_in(value)
        if statement is not None:
            raise mixed_error(statement, f"{_name(fn)}() of it", "torch's TypeError", "a number")
    first = args[0] if args else None
    if fn is divmod or fn is pow or _is_number(first):
        digits = args[1] if len(args) > 1 else kwargs.get("ndigits")
        # (numpy's `abs(v)`, `round(v, n)` are numpy's scalars, `round(v)` Python's int: NOTE
        # [numpy's numbers of graph numbers] in runtime/libm.py; divmod, pow are operators)
        return _numpy_after(staged(*args, **kwargs), numpy_state(first) if (
            fn is abs or fn is round and digits is not None) else False)
    return fn(*args, **kwargs)  # (a stand-in only among the other arguments: `round(2.5, n)`)


def number_method_call(obj, name: str, /, *args, **kwargs):
    """`obj.name(*args, **kwargs)` (a tensor's method: `y.add(t)`, `x.new_full(size, t)`),
    the number stand-ins among the arguments taking part as the Python numbers they stand for,
    as `number_call` (NOTE [numbers as arguments])."""
    method = getattr(obj, name)
    if not isinstance(obj, torch.Tensor) or _is_number(obj) or mixed_in(obj):
        return method(*args, **kwargs)
    if not any(_is_number(leaf) or mixed_in(leaf)
               for value in (*args, *kwargs.values()) for leaf in _leaves(value)):
        return method(*args, **kwargs)
    if name in _SIZED_METHODS:  # (NOTE [numbers of two kinds] in runtime/augmented.py)
        kinds_as_index([leaf for value in (*args, *kwargs.values()) for leaf in _leaves(value)],
                       f".{name}() of it")
    if name == "new_tensor" and args:
        return _tensor_from(args[0], kwargs.get("dtype", obj.dtype),
                            kwargs.get("device", obj.device), kwargs.get("requires_grad", False))
    if name == "new_full" and len(args) == 2 and not kwargs:
        # (a tensor fill: dynamo reads it with .item(), which it cannot keep)
        return args[1].to(device=obj.device, dtype=obj.dtype).expand(args[0]).clone()
    return number_call(method, *args, _receiver=obj, **kwargs)


def _tensor_from(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """torch.tensor(data, ...) where `data` holds number stand-ins: their dtype inferred as
    torch infers a Python number's, the tensor stacked from them (no `.item()`)."""
    leaves = _leaves(data)
    if dtype is None:
        dtype = _promote_all([_inferred(leaf, numpy_kept=True) for leaf in leaves])
        for leaf in leaves:  # (a float64 tensor on some paths, a float on others)
            statement = mixed_in(leaf)
            if statement and _inferred(leaf) != leaf.dtype:
                raise mixed_error(statement, "torch.tensor of it", leaf.dtype, dtype)
    like = next((leaf for leaf in leaves if isinstance(leaf, torch.Tensor)), None)
    def build(value):
        if isinstance(value, (list, tuple)):
            return torch.stack([build(item) for item in value])
        if isinstance(value, torch.Tensor):
            return value.detach().to(dtype)
        return torch.tensor(value, dtype=dtype, device=like.device)
    out = build(data)
    if device is not None:
        out = out.to(device)
    if pin_memory:
        out = out.pin_memory()
    if requires_grad:
        out.requires_grad_(True)
    return out


# NOTE [torch.tensor of traced items]
# `torch.tensor([U[i, j] for ...])` (tensorly's svd_flip), `torch.tensor([x[0], 2 * x[1]])`:
# eager torch reads each one-element tensor of the list as its number, which a tracer cannot
# give ("The tensor has a non-zero number of elements, but its data is not allocated yet": the
# first tester46 finding, every mode). Dynamo itself stages such a call as torch._refs.tensor,
# which stacks the items (their dtypes promoted as torch.tensor's inference does, detached, on
# the cpu as eager's); autoconv's trace and torch.export call that too. `_refs` gives a
# many-element item its rows where eager raises: that ValueError is raised first, as eager's,
# and so is eager's TypeError for a float item given an integer or bool `dtype=` (`_refs`
# truncates it).

def _holds_traced(data) -> bool:
    return type_in(data, (list, tuple)) and any(
        isinstance(leaf, torch.Tensor) and is_staged(leaf) for leaf in _leaves(data))


def _tensor_of_traced(fn, data, dtype=None, device=None, requires_grad=False,
                      pin_memory=False):
    """torch.tensor(data, ...) (or torch.as_tensor) of a list holding traced tensors."""
    integral = dtype is not None and not (dtype.is_floating_point or dtype.is_complex)
    for leaf in _leaves(data):
        if isinstance(leaf, torch.Tensor) and leaf.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        if integral and isinstance(leaf, torch.Tensor) and (
                leaf.dtype.is_floating_point or leaf.dtype.is_complex):
            # (eager reads such an item as an index; `_refs` casts it: break47 s01)
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
    return torch._refs.tensor(data, dtype=dtype, device=device, requires_grad=requires_grad,
                              pin_memory=pin_memory)


def _tensor_of_grown(items, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """torch.tensor(items) of a list grown under tensor control flow (a StagedList): its rows
    stacked, a list of numbers' float rows (float64 stand-ins) of the default float dtype, as
    torch infers a Python float's (tester21 s09: `torch.tensor(lrs)` of carried floats was
    float64 under torch.compile, and torch's "data is not allocated" elsewhere: torch.tensor
    asked each 0-d row of the trace for its value)."""
    stacked = items.stacked()
    if not items.numbers and stacked.dim() > 1:
        raise StagingError(
            "expression", f"torch.tensor of '{items.name}', a list grown under tensor control "
            "flow whose items are tensors of shape " f"{tuple(stacked.shape[1:])} (torch.tensor "
            "takes numbers or one-element tensors)", f"Write torch.stack({items.name})")
    if dtype is None:
        dtype = stacked.dtype
        if items.numbers and (dtype.is_floating_point or dtype.is_complex):
            dtype = with_number(torch.bool, dtype)  # (as `_inferred` of a number's)
        if dtype != torch.get_default_dtype():
            if known_empty(items.capacity):
                dtype = torch.get_default_dtype()  # (no append ran: Python's `[]`)
            else:
                _check_not_empty_data(items, dtype)
    out = stacked.detach().to(dtype=dtype, copy=True)
    if device is not None:
        out = out.to(device)
    if pin_memory:
        out = out.pin_memory()
    if requires_grad:
        out.requires_grad_(True)
    return out


# NOTE [torch.tensor of an empty grown list]
# torch.tensor([]) is of the default float dtype (float32), torch.tensor of a list of ints
# int64 (of bools bool, of float64 tensors float64): the dtype depends on whether the list is
# empty, which for a list grown under tensor control flow only the running graph knows, and a
# graph's output has one dtype. The graph gave the items' dtype on every path: int64 of shape
# [0] where Python gives float32 (tester21b s02). There the graph raises a StagingError (from
# an exported or compiled program a RuntimeError with its text) at the user's line, with the
# fix: `dtype=` makes the dtype one on every path. Not on the paths where the list has items,
# nor for a list whose items are of the default dtype (floats).

class _GraphStagingError(StagingError):
    """A StagingError a graph raises when it runs (`graph_check` makes it from its text)."""

    def __init__(self, text: str):
        TypeError.__init__(self, text)
        self.filename = self.lineno = None
        self.statement, self.problem, self.fix = "expression", text, ""


_GraphStagingError.__name__ = _GraphStagingError.__qualname__ = "StagingError"


def _check_not_empty_data(items, dtype) -> None:
    # (dynamo cannot build an exception of a class of ours: a RuntimeError with the text there)
    kind = RuntimeError if torch.compiler.is_dynamo_compiling() else _GraphStagingError
    graph_check(items.count > 0, kind, (
        f"torch.tensor of '{items.name}', a list grown under tensor control flow, is empty "
        f"here: Python gives torch.tensor([]) the default float dtype, and {dtype} to this "
        "list with items, and a graph has one dtype on every path. Give the dtype: "
        f"`torch.tensor({items.name}, dtype={dtype})`"))


def _inferred(leaf, numpy_kept: bool = False) -> torch.dtype:
    """The dtype torch.tensor infers for one item: a Python float (or its stand-in) is the
    default float, a tensor its own dtype; with `numpy_kept`, numpy's float64 is float64 (as
    torch.tensor's, not torch.full's, which takes the default float)."""
    if isinstance(leaf, torch.Tensor) and not (_is_number(leaf) or mixed_in(leaf)):
        return leaf.dtype
    dtype = _dtype(leaf)
    if numpy_kept and dtype.is_floating_point and numpy_in(leaf):
        return torch.float64  # NOTE [numpy's numbers of graph numbers] in runtime/libm.py
    if numpy_kept and dtype.is_floating_point and numpy_some(leaf):
        # (NOTE [numpy's numbers across staged statements] in runtime/libm.py)
        raise numpy_paths_error(leaf, "torch.tensor of it", "float64",
                                str(with_number(torch.bool, dtype)).removeprefix("torch."))
    return with_number(torch.bool, dtype) if dtype.is_floating_point or dtype.is_complex \
        else dtype


def _leaves(value) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _mapped(fn, value):
    if isinstance(value, (list, tuple)):
        return type(value)(_mapped(fn, item) for item in value)
    return fn(value)


def _promote_all(dtypes):
    out = dtypes[0]
    for dtype in dtypes[1:]:
        out = promote_types(out, dtype)
    return out


def comprehension_test(test):
    """`test` of a comprehension's `if` that reads a number (NOTE [a count of conditions on a
    number] in autoconv/converters/numbers.py): as it is where Python knows it, refused where
    only the graph does."""
    if not (isinstance(test, torch.Tensor) or is_symbolic(test)):
        return test
    raise StagingError(
        "expression", "a generator's or comprehension's `if` tests a number only the graph "
        "knows (a number a staged statement carries, or one read from a tensor), which "
        "decides which items there are",
        "Count with the condition as a value: `sum(k >= m for m in M)` (or `sum(1 for ...)` "
        "with the `if`), `bisect.bisect_right(M, k)` of a sorted M, or `sum(w if k >= m else "
        "0.0 for ...)`")


_BISECTS = (bisect.bisect_right, bisect.bisect_left, bisect.bisect)


def _bisect(fn, items, x):
    """`bisect.bisect_right(M, k)` / `bisect_left` of a number only the graph knows and a sorted
    list of Python numbers (a MultiStepLR-style schedule's milestone count, tester23 s11): the
    count of the items at most `k` (below `k` for bisect_left), which is where Python's binary
    search lands in a sorted list, as an int's stand-in (read back as a symbolic int where `k`
    was one)."""
    name = f"bisect.{fn.__name__}"
    if not (type_in(items, (list, tuple)) and all(
            type_in(m, (bool, int, float)) for m in items)):
        raise StagingError(
            "expression", f"{name}(a, k) of a number only the graph knows is staged for a "
            f"list or tuple of Python numbers, not a {type(items).__name__}",
            "Give it a list of numbers, or search a tensor: `torch.searchsorted(torch.tensor(a),"
            " k, right=True)`")
    if any(b < a for a, b in zip(items, items[1:])):
        raise StagingError(
            "expression", f"{name}(a, k) of a number only the graph knows is staged for a "
            "sorted list (Python's binary search of an unsorted one lands where its halvings "
            "take it)", "Sort the list first (`sorted(a)`), or count: `sum(k >= m for m in a)`")
    symbolic = not _is_number(x)
    value = _symbolic_stand_in(x) if symbolic else x
    if not isinstance(value, torch.Tensor):
        value = torch.scalar_tensor(value, dtype=torch.float64 if type_in(
            value, (float,)) or isinstance(value, torch.SymFloat) else torch.int64)
    right = fn is not bisect.bisect_left
    count = torch.zeros((), dtype=torch.int64, device=value.device)
    for m in items:
        count = count + ((value >= m) if right else (value > m)).to(torch.int64)
    return count.item() if symbolic else mark(count)


def _caught(kind) -> bool:
    """Whether a `try` of converted code on the stack catches `kind` (runtime/handlers.py):
    there a symbolic number's division is checked as a stand-in's, whose check refuses the
    `try` at the line (`_refuse_if_caught` in runtime/augmented.py), where Python's division of
    two symbols raised out of the graph that Python's `try` catches."""
    from . import handlers

    return handlers.catching(kind("")) is not None


def _is_export_pow(fn) -> bool:
    """Whether `fn` is what `math.pow` is while torch.export traces without dynamo: a `lambda
    x, y: x ** y` of torch's (non_strict_utils._override_builtin_ops), whose `**` of a float's
    stand-in was torch's float32 pow (`math.pow(abs(e), 1.5)` of an `.item()` number was off
    in its eighth digit in the saved program only)."""
    return (getattr(fn, "__name__", None) == "<lambda>"
            and getattr(fn, "__module__", None) == "torch._export.non_strict_utils")


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__
