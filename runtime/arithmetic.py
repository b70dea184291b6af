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

import operator

import torch

from .augmented import is_stand_in, mark
from .values import number_dtype, promote_types, with_number

__all__ = ["binary", "compare", "negative"]

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

_PYTHON_DTYPES = (torch.bool, torch.int64, torch.float64, torch.complex128)
_NUMBERS = (bool, int, float, complex, torch.SymBool, torch.SymInt, torch.SymFloat)


def binary(left, op, right):
    """`left op right` (op one of '+', '-', '*', '/', ...), a number stand-in taking part as the
    Python number it stands for (NOTE [weak numbers])."""
    return _apply(_BINARY[op], left, right, op == "/")


def compare(left, op, right):
    """`left op right` (op one of '<', '<=', '>', '>=', '==', '!='), a number stand-in compared
    as the Python number it stands for: a carried float with a float32 tensor in float32, as
    Python compares them (NOTE [weak numbers])."""
    return _apply(_COMPARE[op], left, right, False)


def negative(value):
    """`-value`, a number stand-in's negation standing for a number too."""
    return mark(-value) if _is_number(value) else -value


def _apply(fn, left, right, divides):
    left_number, right_number = _is_number(left), _is_number(right)
    if not (left_number or right_number):
        return fn(left, right)
    left_tensor = isinstance(left, torch.Tensor) and not left_number
    right_tensor = isinstance(right, torch.Tensor) and not right_number
    if left_tensor or right_tensor:
        # a tensor and a number: the number as torch's wrapped number, the result a tensor
        tensor, number = (left, right) if left_tensor else (right, left)
        if not isinstance(number, torch.Tensor):
            return fn(left, right)  # a Python number already is a wrapped number
        dtype = with_number(tensor.dtype, number.dtype)
        if number.dtype != dtype:
            number = number.to(dtype)
        return fn(tensor, number) if left_tensor else fn(number, tensor)
    if not (isinstance(left, (torch.Tensor, *_NUMBERS))
            and isinstance(right, (torch.Tensor, *_NUMBERS))):
        return fn(left, right)  # (a list, a string: whatever Python does with it)
    # numbers only: Python's arithmetic
    dtype = promote_types(_dtype(left), _dtype(right))
    if divides and not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.float64  # int / int is a float
    if isinstance(left, torch.Tensor) and left.dtype != dtype:
        left = left.to(dtype)
    if isinstance(right, torch.Tensor) and right.dtype != dtype:
        right = right.to(dtype)
    return mark(fn(left, right))


def _is_number(value) -> bool:
    """A stand-in of one of Python's number dtypes (see NOTE [weak numbers])."""
    return is_stand_in(value) and value.dtype in _PYTHON_DTYPES


def _dtype(value) -> torch.dtype:
    return value.dtype if isinstance(value, torch.Tensor) else number_dtype(value)
