"""Builtins and torch functions that turn tensors into Python values, staged under a tracer.

Converted code calls these in place of `len`, `min`, `max`, `sum`, `any`, `all`, `bool`, `int`,
`float`, `torch.equal`, `torch.allclose` and `torch.is_nonzero` (as AutoGraph's `py_builtins`).
On Python values and concrete tensors each is the builtin (checked first, so eager calls cost a
type check). On a traced tensor the builtin would read the tensor's value, which the tracer does
not have; the staged version computes the same value as a 0-d tensor (or a symbolic number)
that a condition then stages:

    len(vals)             a list grown under tensor control flow: its count, a 0-d int64 tensor;
                          a tensor of data-dependent length: its size, a symbolic int
    bool(t), torch.is_nonzero(t)      t != 0 as a 0-d bool tensor
    int(t), float(t)      t.item() as a symbolic number (truncated toward zero for int)
    min(a, b), max(...)   torch.where folds with Python's comparisons and tie rules
    sum(t), any(t), all(t)            reductions over the first dimension
    torch.equal(a, b)     same shape (a Python bool) and (a == b).all()
    torch.allclose(a, b)  torch.isclose(a, b).all()
    isinstance(c, cls)    a Python constant chosen by tensor values (a StagedConstant, NOTE
                          [constants under tensor control flow]): whether the constant it
                          holds is an instance, a bool where every constant agrees
    isinstance(v, cls), type(v)       a number's stand-in, a symbolic number or a grown list:
    hasattr, getattr, torch.is_tensor of the Python value it stands for (NOTE [type tests of
                          staged values]); of a number on some paths and a tensor on others,
                          refused where the answers differ (NOTE [types on some paths])
    getattr(o, c), hasattr, setattr, delattr   with such a constant as the name: the graph
                          specialised on it, as a dict key (`table[c]`)
    callable(f)           Python's answer, also where dynamo has none (`callable(A.matmul)`)

`abs`, `round` and arithmetic need nothing here: they work on traced tensors and symbolic
numbers (arithmetic.number_call makes `abs` / `round` of a number read from a traced tensor a
tensor op, which a saved torch.export program can hold).
"""

from __future__ import annotations

import ast
import builtins
import types

import numpy
import torch

from .chosen_calls import ChosenCall
from .lists import StagedList, check_not_empty
from . import staged_dicts
from .staged_dicts import StagedDict
from .staging.constants import StagedConstant, is_constant, isinstance_of
from .staging.constants import staged as staged_constant
from .staging import python_bools
from .staging.optionals import is_optional
from .staging.torch import as_predicate
from .arithmetic import binary, comprehension_test
from .augmented import (PYTHON_BOOL, empty_is_start, graph_check, is_stand_in, kinds_error,
                        kinds_in, mark, mark_kinds, mark_view, mixed_in, number_kinds,
                        types_error, types_in)
from .errors import StagingError, dynamo_user_location, user_location
from .identity import type_in
from .libm import (mark_numpy, mark_numpy_some, numpy_in, numpy_paths_error, numpy_some,
                   numpy_state)
from .values import (as_staged_tensor, is_staged, known_empty, probe_row, to_tensor,
                     with_number)

__all__ = ["len_", "min_", "max_", "sum_", "any_", "all_", "bool_", "int_", "float_",
           "equal_", "allclose_", "is_nonzero_", "tolist_", "reversed_", "isinstance_", "type_",
           "getattr_", "hasattr_", "is_tensor_", "setattr_", "delattr_", "callable_", "counted_",
           "filter_test", "math_argument"]

_MISSING = object()


def _predicate(value) -> torch.Tensor:
    """`bool(value)` of a staged value, as a 0-d bool tensor."""
    return as_predicate(as_staged_tensor(value), "call of bool()")


# NOTE [type tests of staged values]
# Staging gives some Python values another type inside the graph: a number a staged statement
# carries is a 0-d tensor standing in for it (NOTE [number stand-ins] in runtime/augmented.py),
# `.item()` / `int(t)` of a traced tensor a symbolic number (torch.SymFloat / SymInt / SymBool),
# a list grown under tensor control flow a StagedList. Python's `isinstance` / `type` of them
# would send a helper that dispatches on the type (`if isinstance(lr, torch.Tensor)`, `if
# isinstance(v, (list, tuple))`) down the path Python never takes (tester22 s16, s17, s12).
# They answer for the Python value each stands for, as AutoGraph's py_builtins answer for a
# TensorArray; so do `hasattr`, `getattr`, `torch.is_tensor` and `is` (`flag is False`). A
# number on some paths and a tensor on others (NOTE [types on some paths] in
# runtime/augmented.py) has a type only the graph knows: a test whose answer differs between
# the two is refused.

_MIXED = object()
_PYTHON_EXAMPLES = {"bool": False, "int": 0, "float": 0.0, "complex": 0j}


def _python_example(value):
    """A Python value of the type `value` stands for, or `value` itself; _MIXED where `value`
    is a number on some paths and a tensor on others (NOTE [types on some paths] in
    runtime/augmented.py)."""
    if type(value) is StagedList:
        return []
    if not isinstance(value, torch.Tensor):
        if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return _PYTHON_EXAMPLES[_kind(value)]
        return value
    if types_in(value) is not None or mixed_in(value) is not None:
        return _MIXED
    if is_stand_in(value):
        return _PYTHON_EXAMPLES[_kind(value)]
    mark = getattr(value, PYTHON_BOOL, False)  # NOTE [type tests of Python's bools]
    if mark is True:
        return _PYTHON_EXAMPLES["bool"]
    if mark is not False:
        raise python_bools.type_test_refusal(mark)
    return value


# NOTE [type tests of Python's bools]
# `bool(t)` of a traced tensor is a 0-d bool tensor marked as Python's bool (NOTE [bool() of a
# traced tensor stored into argument objects]), and a staged statement's outputs keep the mark
# where every path gives one (NOTE [Python's bools across staged statements]). `is True` read
# the mark, `isinstance` / `type` did not: `ok = bool(x.max() > 4)` in both branches of a
# tensor `if`, then `100 * isinstance(ok, bool)` gave 0 for Python's 100, in every mode,
# silently (brk54). They answer for the bool; a value that is Python's bool on some paths
# only (a bool tensor on others) has a type only the graph knows, and is refused.


# numpy's scalars of each kind (NOTE [numpy's numbers of graph numbers] in runtime/libm.py)
_NUMPY_EXAMPLES = {"bool": numpy.False_, "int": numpy.int64(0), "float": numpy.float64(0.0),
                   "complex": numpy.complex128(0j)}


def _numpy_type(kind: str) -> type:
    """The type of numpy's scalar of `kind`. (Called for real under dynamo, which makes
    numpy's scalars its tensors: there `isinstance(np.float64(0.0), np.floating)` is False.)"""
    return type(_NUMPY_EXAMPLES[kind])


_numpy_type._dynamo_marked_constant = True

# The attributes of numpy's scalars of each kind, read here once: dynamo traces numpy's
# scalars as its tensors, and a function it calls for real gives a global it cannot guard
_NUMPY_ATTRIBUTES = {kind: frozenset(dir(example)) for kind, example in _NUMPY_EXAMPLES.items()}


def _numpy_kind_test(value, test: str, classinfo=None, numpy_=True):
    """`isinstance(v, classinfo)` (`test` "isinstance") or `type(v)` ("type") of the number `v`
    a stand-in or symbolic number `value` stands for: numpy's scalar of its kind where
    `numpy_`, else Python's."""
    kind = _numpy_type(_kind(value)) if numpy_ else type(_PYTHON_EXAMPLES[_kind(value)])
    return issubclass(kind, classinfo) if test == "isinstance" else kind


def _numpy_by_paths(value, use: str, test: str, classinfo=None):
    """`_numpy_kind_test` for a number numpy's on some paths only: the answer where numpy's and
    Python's agree, else a StagingError (NOTE [numpy's numbers across staged statements] in
    runtime/libm.py)."""
    as_numpy = _numpy_kind_test(value, test, classinfo, True)
    as_python = _numpy_kind_test(value, test, classinfo, False)
    if as_numpy != as_python:
        raise numpy_paths_error(value, use, _said(as_numpy), _said(as_python))
    return as_numpy


def _numpy_number(value) -> bool:
    """A number's stand-in or a symbolic number marked numpy's (on some paths or all)."""
    return (numpy_state(value) is not False and (
        isinstance(value, (torch.SymInt, torch.SymFloat)) or is_stand_in(value)))


def _number_example(value):
    """The Python number a value that is a number on some paths (_MIXED) is on those paths."""
    tagged = types_in(value)
    return _PYTHON_EXAMPLES[tagged[1] if tagged else _kind(value)]


def _mixed_type_error(value, use: str, as_tensor, as_number) -> StagingError:
    return types_error(value, use, _said(as_tensor), _said(as_number), mixed_in(value))


def _said(answer) -> str:
    if isinstance(answer, type):  # (a FakeTensor while traced: the user's is a torch.Tensor)
        return "torch.Tensor" if issubclass(answer, torch.Tensor) else answer.__name__
    return repr(answer)


def _by_paths(value, use: str, test):
    """`test(value)`, for a value that is a number on some paths and a tensor on others: the
    answer where the tensor's and the number's agree, else a StagingError (NOTE [types on
    some paths] in runtime/augmented.py)."""
    as_tensor, as_number = test(value), test(_number_example(value))
    if as_tensor != as_number:
        raise _mixed_type_error(value, use, as_tensor, as_number)
    return as_tensor


def _classes(classinfo) -> str:
    if isinstance(classinfo, tuple):
        return "(" + ", ".join(_classes(c) for c in classinfo) + ")"
    return getattr(classinfo, "__name__", repr(classinfo))


def _which(value, use: str):
    """`value`; for a StagedOptional, None or its value (a guard at the top level, refused in a
    staged body): its own class says neither (break45c s01: `isinstance(y, torch.Tensor)` of a
    tensor-or-None was False on both paths, `callable(y)` True)."""
    return value._needed(use) if is_optional(value) else value


def isinstance_(value, classinfo, /):
    """`isinstance(value, classinfo)`; for a StagedConstant, of the constant it holds (an enum
    member chosen by `if t > 0: mode = Mode.A else: mode = Mode.B` is still a Mode); for a
    number's stand-in, a symbolic number or a grown list, of the Python value it stands for
    (NOTE [type tests of staged values])."""
    if type(value) is ChosenCall:  # (NOTE [functions chosen by a tensor condition])
        value = value.taken("call of isinstance()")
    value = _which(value, "isinstance()")
    if type(value) is StagedConstant:
        return isinstance_of(value, classinfo)
    if kinds_in(value) is not None:  # (NOTE [numbers of two kinds] in runtime/augmented.py)
        answers = {k: isinstance(_PYTHON_EXAMPLES[k], classinfo) for k in kinds_in(value)[0]}
        if len(set(answers.values())) > 1:
            raise kinds_error(value, "isinstance()", " and ".join(
                f"{a} where it is a{'n' if k == 'int' else ''} {k}" for k, a in answers.items()))
        return answers.popitem()[1]
    if _numpy_number(value):  # NOTE [numpy's numbers across staged statements] in libm.py
        if numpy_in(value):
            return _numpy_kind_test(value, "isinstance", classinfo)
        return _numpy_by_paths(value, f"isinstance(..., {_classes(classinfo)})", "isinstance",
                               classinfo)
    example = _python_example(value)
    if example is _MIXED:
        return _by_paths(value, f"isinstance(..., {_classes(classinfo)})",
                         lambda v: isinstance(v, classinfo))
    return isinstance(example, classinfo)


def type_(value, *args, **kwargs):
    """`type(value)`; for a number's stand-in, a symbolic number or a grown list, the type of
    the Python value it stands for (NOTE [type tests of staged values])."""
    if args or kwargs:
        return type(value, *args, **kwargs)
    if type(value) is ChosenCall:  # (NOTE [functions chosen by a tensor condition])
        value = value.taken("call of type()")
    value = _which(value, "type()")
    if kinds_in(value) is not None:  # (NOTE [numbers of two kinds] in runtime/augmented.py)
        raise kinds_error(value, "type()", " and ".join(
            f"{k} where it is a{'n' if k == 'int' else ''} {k}" for k in kinds_in(value)[0]))
    if _numpy_number(value):  # NOTE [numpy's numbers across staged statements] in libm.py
        if numpy_in(value):
            return _numpy_kind_test(value, "type")
        return _numpy_by_paths(value, "type()", "type")
    example = _python_example(value)
    if example is _MIXED:
        return _by_paths(value, "type()", type)
    return _user_type(example)


# NOTE [the type of a traced tensor]
# While autoconv or torch.export traces, a tensor is the tracer's FakeTensor (or, under export,
# its FunctionalTensor), whose class is no user's: `type(x) == torch.Tensor` was False and
# `type(x).__name__` 'FakeTensor' for any traced tensor, the branch taken that Python never
# takes, in replay and the exported program, silently (break46 s03). Python's answer for a
# tensor the function makes or is given is torch.Tensor; for a module's Parameter,
# nn.Parameter: torch's fake of a Parameter keeps its `_is_param` mark (which Parameter's
# isinstance reads), and `type(self.w) is nn.Parameter` was False, silently (break46 s04).
# Dynamo answers type() itself.
_TRACER_TENSORS = (torch._subclasses.fake_tensor.FakeTensor,
                   torch._subclasses.functional_tensor.FunctionalTensor)


def _user_type(example) -> type:
    kind = type(example)
    if kind in _TRACER_TENSORS:
        return torch.nn.Parameter if getattr(example, "_is_param", False) else torch.Tensor
    return kind


def _attribute_name(name):
    """An attribute's name; for a StagedConstant (`name = "w1" if x.sum() > 0 else "w2"`), the
    str it holds, with the graph specialised on it at the top level of the function as for a
    dict key, else a StagingError at the user's line (no graph can choose an attribute)."""
    if type(name) is StagedConstant:
        return name._needed("naming an attribute with it (getattr, hasattr, setattr)")
    return name


def getattr_(obj, name, *default):
    """`getattr(obj, name[, default])`, where `name` may be a str chosen by tensor values; of
    a number's stand-in, an attribute the number has (NOTE [type tests of staged values])."""
    name = _attribute_name(name)
    if isinstance(obj, torch.Tensor) and not _has(obj, name, "getattr"):
        if default:
            return default[0]  # (`getattr(lr, "device", None)` of a float: None)
        raise AttributeError(f"'{type(_python_example(obj)).__name__}' object has no "
                             f"attribute '{name}'")
    return getattr(obj, name, *default)


def hasattr_(obj, name, /):
    """`hasattr(obj, name)`, where `name` may be a str chosen by tensor values; of a number's
    stand-in, a symbolic number or a grown list, of the Python value it stands for (NOTE
    [type tests of staged values])."""
    name = _attribute_name(name)
    if isinstance(obj, torch.Tensor):
        return _has(obj, name, "hasattr")
    return hasattr(obj, name)


def _has(value, name: str, call: str) -> bool:
    """Whether the Python value the tensor `value` is has the attribute `name`: a number's
    stand-in the number's; a StagingError where `value` is a number on some paths and a
    tensor on others and only one of them has it."""
    if _numpy_number(value):  # NOTE [numpy's numbers across staged statements] in libm.py
        # (numpy's scalar has `.item()`, `.dtype`, ... which Python's float has not:
        # `a.item() if hasattr(a, "item") else a` took `a` of `a = np.exp(k)`, break44c s01)
        as_numpy = name in _NUMPY_ATTRIBUTES[_kind(value)]
        if numpy_in(value):
            return as_numpy
        as_python = hasattr(_PYTHON_EXAMPLES[_kind(value)], name)
        if as_numpy != as_python:
            raise numpy_paths_error(value, f"{call}(..., {name!r})", repr(as_numpy),
                                    repr(as_python))
        return as_numpy
    example = _python_example(value)
    if example is _MIXED:
        return _by_paths(value, f"{call}(..., {name!r})", lambda v: hasattr(v, name))
    return hasattr(example, name)


# NOTE [methods of numbers the graph computes]
# A number computed from traced tensors (`k` counted under a staged `if`, `a = np.exp(k)`,
# `float(t)`) is a 0-d tensor standing for it (NOTE [number stand-ins] in augmented.py), and a
# method of the number that tensors lack (`a.conjugate()`, numpy's `a.astype(np.float32)`,
# `v.is_integer()`) was looked up on the tensor: "'FakeTensor' object has no attribute
# 'conjugate'" in autoconv's trace and dynamo's "Unhandled tensor method" under torch.compile
# (break44c). A method the number has not raises Python's AttributeError; `conjugate()` of a
# real number is the number itself, and `astype` of numpy's scalar to its own type is too;
# every other is refused at the line: its result's value or type would be numpy's or Python's
# own computation on a value only the running graph has.
def number_method_(obj, name: str, args, kwargs):
    """`obj.name(*args, **kwargs)` of a number's stand-in, `name` not a tensor's method (NOTE
    [methods of numbers the graph computes])."""
    kind = _kind(obj)
    if not _has(obj, name, "method"):
        python = (f"numpy.{_numpy_type(kind).__name__}" if _numpy_number(obj) and numpy_in(obj)
                  else type(_python_example(obj)).__name__)
        raise AttributeError(f"'{python}' object has no attribute '{name}'")
    if name == "conjugate" and not args and not kwargs and kind != "complex":
        return obj
    if name == "astype" and len(args) == 1 and not kwargs and numpy_in(obj) \
            and args[0] in (_numpy_type(kind), _NUMPY_DTYPE_NAMES.get(kind)):
        return obj
    number = (f"numpy's {_NUMPY_DTYPE_NAMES[kind]}" if _numpy_number(obj) else f"a {kind}")
    raise StagingError(
        "expression", f"`.{name}()` of {number} computed from traced tensors: autoconv "
        "holds such a number as a 0-d tensor, which has no such method, and the method's "
        "result is Python's or numpy's computation on a value only the running graph has",
        "Compute it with torch's operations on a tensor of the number (`torch.as_tensor(v)`, "
        "`.to(dtype)` for numpy's astype), or call the method on a number that does not come "
        "from tensors")


_NUMPY_DTYPE_NAMES = {"bool": "bool", "int": "int64", "float": "float64", "complex": "complex128"}


def is_tensor_(obj, /):
    """`torch.is_tensor(obj)`; False for a number's stand-in, a symbolic number or a grown list
    (NOTE [type tests of staged values])."""
    example = _python_example(_which(obj, "torch.is_tensor()"))
    if example is _MIXED:
        return _by_paths(obj, "torch.is_tensor()", torch.is_tensor)
    return torch.is_tensor(example)


def setattr_(obj, name, value, /):
    """`setattr(obj, name, value)`, where `name` may be a str chosen by tensor values."""
    setattr(obj, _attribute_name(name), value)


def delattr_(obj, name, /):
    """`delattr(obj, name)`, where `name` may be a str chosen by tensor values."""
    delattr(obj, _attribute_name(name))


# Functions and methods of every kind, which are always callable: dynamo answers `isinstance` of
# them, and has no rule for `callable` of a bound method of a tensor (`linear_cg(A.matmul, b)`
# asks `callable(matmul_closure)`: "Failed to trace builtin operator `callable`", with or
# without autoconv).
_FUNCTION_TYPES = (types.BuiltinMethodType, types.MethodWrapperType, types.MethodType,
                   types.FunctionType)


def callable_(value, /):
    """`callable(value)`, which dynamo can trace for a tensor's bound method too."""
    value = _which(value, "callable()")
    if isinstance(value, _FUNCTION_TYPES):
        return True
    return callable(value)


def reversed_(sequence, /):
    """`reversed(sequence)`; a list whose length is only known when the graph runs (a
    StagedList) gives the StagedList of its items in reverse order. A `range` with a traced
    bound (StagedRange) gives the reversed StagedRange (its own `__reversed__`).

    Raises:
        TypeError: as Python's, for a staged `enumerate` / `zip` (not reversible).
    """
    from .lists import StagedList, check_not_empty

    if not isinstance(sequence, StagedList):
        return reversed(sequence)
    capacity = sequence.buffer.shape[0]
    # Row i of the result is item count-1-i; the rows past the count are never read.
    rows = (sequence.count - 1 - torch.arange(capacity, device=sequence.buffer.device)).clamp(
        min=0)
    return StagedList(torch.index_select(sequence.buffer, 0, rows), sequence.count,
                      name=sequence.name, numbers=sequence.numbers)


def len_(value):
    """`len(value)`; a list grown under tensor control flow gives its count (a 0-d tensor), and
    a tensor whose length is only known when the graph runs (`x[x > 0]`) its symbolic size, as
    `.shape[0]` does: Python's `len` would ask for its value (tester t13 repro 26, kornia's
    `match_snn`: `if len(dists) == 0:`)."""
    if type(value) is StagedList and is_staged(value.count):
        # an int's stand-in, as Python's len is an int: `10.0 / len(vals)` is checked as
        # Python's division (NOTE [the length of a grown list] in
        # autoconv/converters/numbers.py) and `sum(s) / len(s)` divides in float64 (NOTE [sums
        # of numbers]); a view, so that the mark is not the list's count's (dynamo also
        # refuses an attribute set on torch.while_loop's output, not on a view of it)
        return mark(value.count.view(()))
    if type(value) is StagedDict:  # NOTE [a dict the first trip gives keys]
        return staged_dicts.length(value)
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        size = value.shape[0]
        if isinstance(size, torch.SymInt):
            return size
    return len(value)


def bool_(value=False):
    """`bool(value)`; a traced tensor (or symbolic number) gives a 0-d bool tensor, marked as
    Python's bool (NOTE [bool() of a traced tensor stored into argument objects])."""
    if type(value) is StagedDict:  # NOTE [a dict the first trip gives keys]
        return staged_dicts.truth(value)
    if type(value) is bool or not (is_staged(value) or type(value) is StagedList):
        return bool(value)
    if type(value) is StagedList:
        return value.count > 0
    result = _predicate(value)
    if torch.compiler.is_dynamo_compiling():
        # (dynamo refuses an attribute set on an operator's output, not on a view: the mark
        # that `is True` reads, NOTE [bool of a traced tensor tested by `is`])
        result = result.view(result.shape)
    elif result is value:  # (the user's own tensor stays a tensor: `o.t = c; o.f = bool(c)`)
        result = result.clone()
    setattr(result, PYTHON_BOOL, True)
    return result


# NOTE [bool() of a traced tensor stored into argument objects]
# `bool(t)` of a traced tensor is a 0-d bool tensor (a Python bool would need the graph's
# value at trace time). Stored into an argument object (`o.flag = bool(x.sum() > 0)`), the
# caller's field held tensor(True) where Python's holds True (break45 s05), while `int(t)`,
# `float(t)` are symbolic numbers the write plan stores as Python numbers (NOTE [numbers read
# from tensors stored into argument objects] in autoconv/capture.py). The tensor bool() makes
# is marked (`PYTHON_BOOL`, on that object only: any operator on it gives a tensor without the
# mark, which is not a number in the graph's sense), and the write plan stores the field as
# the Python bool the graph computed (`PythonOutput(bool)`), as it stores a number's stand-in.
# Not under torch.compile, where dynamo refuses the attribute: there the field still gets the
# tensor (README, Limitations).


def is_nonzero_(value):
    """`torch.is_nonzero(value)`; a traced tensor gives a 0-d bool tensor."""
    if not is_staged(value):
        return torch.is_nonzero(value)
    if value.numel() != 1:
        return torch.is_nonzero(value)  # torch's own error: more than one value is ambiguous
    return _predicate(value)


def tolist_(value):
    """`value.tolist()`. Under torch.compile a float or complex tensor gives the nested list
    of its items read one by one (`.item()`, a symbolic number each, nested as its
    dimensions): dynamo refuses `tolist()` of a non-integer tensor itself (tester36b s06)."""
    if not (isinstance(value, torch.Tensor) and torch.compiler.is_dynamo_compiling()
            and (value.dtype.is_floating_point or value.dtype.is_complex)):
        return value.tolist()
    if value.dim() == 0:
        return value.item()
    return [tolist_(row) for row in value.unbind(0)]


def _number(value):
    """A staged tensor's value as a symbolic number (what `.item()` gives under a tracer)."""
    if value.numel() != 1:  # (torch's own error for an eager tensor, type and text)
        raise ValueError("only one element tensors can be converted to Python scalars")
    return value.reshape(()).item()


def int_(value=0, *args, **kwargs):
    """`int(value)`; a traced tensor gives its value as a symbolic int, truncated toward zero."""
    if args or kwargs or not is_staged(value):
        return int(value, *args, **kwargs)
    if isinstance(value, torch.Tensor):
        value = _real_part(value, "int64_t")
        if value.is_floating_point():
            from .arithmetic import check_int_of_float
            # (Python raises for nan, inf; torch's conversion gave a wrong int)
            check_int_of_float(value.to(torch.float64))
            value = value.trunc()
        return _number(value.to(torch.int64))
    if isinstance(value, torch.SymFloat) or (
            torch.compiler.is_dynamo_compiling() and type_in(value, (float,))):
        # `int(v)` of `v = t.item()`: torch.sym_int of it was unchecked (nan, inf)
        return int_(torch.scalar_tensor(value, dtype=torch.float64))
    return torch.sym_int(value)


def float_(value=0.0):
    """`float(value)`; a traced tensor gives its value as a symbolic float."""
    if not is_staged(value):
        return float(value)
    if isinstance(value, torch.Tensor):
        return _number(_real_part(value, "double").to(torch.float64))
    return torch.sym_float(value)


def _real_part(value, kind: str):
    """The real part of a complex traced tensor, checked in the graph to be all there is: torch's
    `float(t)` / `int(t)` (and math's functions of `t`) raise where the imaginary part is not
    0, where `.to(torch.float64)` dropped it silently (break47b s01: `math.sqrt` of a complex
    sum gave a number where Python raises). Any other tensor as it is."""
    if not value.is_complex():
        return value
    graph_check(value.imag == 0, RuntimeError,
                f"value cannot be converted to type {kind} without overflow")
    return value.real


# NOTE [math functions of traced tensors]
# `math.sqrt(t)` (or `sqrt(t)` imported from math) of a one-element tensor is Python's float of
# it: math's float functions read their argument's `__float__` (tensorly's tucker:
# `sqrt(tl.abs(norm ** 2 - tl.norm(core) ** 2))`, tester46 s04). Of a traced tensor that read
# was refused ("asks Python for the value of a traced tensor"). The converter gives each
# argument such a function gets to `math_argument`, which reads a traced tensor as `float(t)`
# does (a symbolic float: the function then runs as for `math.sqrt(float(t))`, NOTE [math
# functions of graph numbers] in runtime/libm.py), and leaves any other value to math's own
# conversion and errors (`math.sqrt("4")` is math's TypeError, where `float("4")` is 4.0).

def math_argument(value):
    """An argument of one of `math`'s float functions: a traced tensor as the symbolic float
    `float(value)` gives, anything else as it is (NOTE [math functions of traced tensors]).

    Raises ValueError (torch's) for a traced tensor of more than one element."""
    if isinstance(value, torch.Tensor) and is_staged(value):
        return float_(value)
    return value


def _items(args):
    """The values `min` / `max` compare: the arguments, or the items of a single iterable."""
    if len(args) != 1:
        return list(args), False
    (iterable,) = args
    if isinstance(iterable, torch.Tensor) or type(iterable) is StagedList:
        return iterable, True
    return list(iterable), False


def _fold(items, key, better, keyed=False):
    """The first item whose key no later key beats (`better(new, old)` as a tensor or SymBool).
    `keyed`: `key` gives the key of the item at an index (the keys computed already)."""
    if key is None:
        key = _identity
    best, best_key = items[0], key(0 if keyed else items[0])
    for position, item in enumerate(items[1:], 1):
        item_key = key(position if keyed else item)
        take = better(item_key, best_key)
        if not (is_staged(take) or is_staged(item) or is_staged(best)):
            if take:
                best, best_key = item, item_key
            continue
        take = _predicate(take)  # one truth value, as Python's `if new < old` needs
        best = _where(take, item, best, chosen=True)
        best_key = best if key is _identity else _where(take, item_key, best_key)
    return best


def _constant_like(value) -> bool:
    return isinstance(value, StagedConstant) or is_constant(value)


def _choose_constant(take, new, old) -> StagedConstant:
    """`new` where `take` else `old`, of Python constants: a StagedConstant."""
    indices = [v.index if isinstance(v, StagedConstant) else
               staged_constant(v, "min() / max()", take).index for v in (new, old)]
    chosen = staged_constant(new if isinstance(new, StagedConstant) else new, "min() / max()", take)
    chosen.index = torch.where(take, *indices)
    kinds = {v.kind if isinstance(v, StagedConstant) else type(v).__name__ for v in (new, old)}
    chosen.kind = kinds.pop() if len(kinds) == 1 else "constant"
    return chosen


def _identity(value):
    return value


def _where(take, new, old, chosen=False):
    """`new` where `take` else `old`; `chosen`: these are what min / max returns (not keys),
    whose type Python keeps (NOTE [min and max of an int and a float])."""
    if chosen and _constant_like(new) and _constant_like(old):
        # (NOTE [min and max of Python values by traced keys])
        return _choose_constant(take, new, old)
    if type(new) is tuple and type(old) is tuple and len(new) == len(old):
        # items of `enumerate` / `zip` (`max(enumerate(x), key=lambda p: p[1])`)
        return tuple(_where(take, n, o, chosen) for n, o in zip(new, old))
    if not (isinstance(new, (torch.Tensor, int, float, bool, torch.SymInt, torch.SymFloat))
            and isinstance(old, (torch.Tensor, int, float, bool, torch.SymInt, torch.SymFloat))):
        raise TypeError(
            f"min() / max() under tensor control flow choose between tensors and numbers, not "
            f"{type(new).__name__} and {type(old).__name__}")
    like = next((v for v in (new, old) if isinstance(v, torch.Tensor)), None)
    weak = (_number_like(new), _number_like(old))
    if chosen and weak[0] and weak[1] and _kind(new) != _kind(old):
        raise _mixed_kinds(new, old)
    # NOTE [min and max of symbolic numbers]
    symbolic = (chosen and like is None and _kind(new) in ("int", "float")
                and _kind(old) == _kind(new))
    new, old = (as_staged_tensor(v, like) if is_staged(v) else v for v in (new, old))
    if weak[0] != weak[1]:
        # A number (or its stand-in) and a tensor: Python gives one or the other, and the
        # graph's slot takes the dtype torch gives the tensor next to that number (NOTE [weak
        # numbers]): `min(max(min_pos, lo), hi)` with a float32 `min_pos` and float bounds is
        # float32 (torch.optim.lbfgs's _cubic_interpolate; float64 made its branches differ).
        tensor, number = (old, new) if weak[0] else (new, old)
        if isinstance(number, torch.Tensor) and isinstance(tensor, torch.Tensor):
            number = number.to(with_number(tensor.dtype, number.dtype))
            new, old = (number, tensor) if weak[0] else (tensor, number)
    if not isinstance(new, torch.Tensor) and not isinstance(old, torch.Tensor):
        new = to_tensor(new, take)
    if symbolic:
        dtype = torch.int64 if _kind(new) == "int" else torch.float64
        return torch.where(take, to_tensor(new, dtype=dtype), to_tensor(old, dtype=dtype)).item()
    result = torch.where(take, new, old)
    return mark(result) if weak[0] and weak[1] else result


# NOTE [min and max of symbolic numbers]
# `max(float(err), 1e-12)` chooses between numbers none of which is a stand-in: a symbolic
# float read from a tensor and a Python float. Python's arithmetic on the result is left to
# Python by the converter (only names a statement carries are rewritten), so a marked 0-d
# tensor met plain operators there: `tol / m` became torch's `m.reciprocal() * tol` and `m **
# 0.5` torch's pow, both a few ulps off Python's float ops, and the result lost its mark, so
# a carried `h = h * min(2.0, max(0.2, fac))` became a tensor on some paths (tester22 s18:
# its `min(h, t_end - t)` was then refused as an alias, and h drifted in its last bits).
# Read back as a symbolic number, the choice is what `float(t)` gives: Python's own float
# arithmetic in the graph (operator.truediv, operator.pow on the values), serialisable by
# torch.export, and traced alike by dynamo (which shows the symbol as a Python number).


# NOTE [min and max of an int and a float]
# Python's min / max return the first best argument itself, of its own type: `max(n, 0.5)` is
# the int `n` where it wins and the float 0.5 elsewhere. A number a graph chooses has one dtype
# on every path, and torch.where made both a float (`torch.tensor(max(n, 0.5))` float32 where
# Python's is int64: tester21 s10). Between numbers of two kinds (bool, int, float) whose choice
# only the graph knows, the result's type is data-dependent: refused at the line, with the
# conversion that makes it one kind. Keys (`key=`) only compare, and are not refused.

def _kind(value) -> str:
    """'bool', 'int', 'float' or 'complex': the Python type a number (or its stand-in) is."""
    if isinstance(value, torch.Tensor):
        dtype = value.dtype
        return ("bool" if dtype == torch.bool else "complex" if dtype.is_complex else
                "float" if dtype.is_floating_point else "int")
    if isinstance(value, (bool, torch.SymBool)):
        return "bool"
    if isinstance(value, (int, torch.SymInt)):
        return "int"
    return "complex" if isinstance(value, complex) else "float"


def _mixed_kinds(new, old) -> StagingError:
    kinds = sorted({_kind(new), _kind(old)})
    widest = "float" if "float" in kinds else "int"
    return StagingError(
        "min() / max()",
        f"min() / max() chooses between {_a(kinds[0])} and {_a(kinds[1])} by values only the "
        "graph knows; Python returns the chosen argument itself, so the result's type depends "
        "on the values, and a graph gives one type on every path",
        f"Make the arguments one type: `max({widest}(n), 0.5)` (convert each with "
        f"{widest}(...))")


def _a(kind: str) -> str:
    return "a Python " + kind


def _number_like(value) -> bool:
    """A Python number, a symbolic one, or a tensor standing for one (NOTE [number
    stand-ins])."""
    return type_in(value, (bool, int, float)) or isinstance(
        value, (torch.SymInt, torch.SymFloat, torch.SymBool)) or is_stand_in(value)


def _reduce_list(items: StagedList, key, smallest: bool, default):
    """min / max of a list grown under tensor control flow, whose count (maybe 0) only the
    running graph knows: Python's ValueError for an empty one (a graph assertion at the user's
    line), or `default`. The reduction runs over the whole buffer with one filler row past its
    end: amax of the first `count` rows gave torch's "Runtime assertion failed for expression
    u0 >= 1" (no line) where the list was empty, and ignored `default`."""
    buffer = items.buffer
    if key is not None:
        return _fold_rows(items, key, smallest, default)
    if buffer.dim() > 1:
        return _reduce_tensor(items.stacked(), key, smallest)
    if default is _MISSING:
        check_not_empty(items, _empty_error(smallest))
    dtype = buffer.dtype
    if dtype == torch.bool:
        fill = smallest
    elif dtype.is_floating_point:
        fill = float("inf") if smallest else float("-inf")
    else:
        info = torch.iinfo(dtype)
        fill = info.max if smallest else info.min
    padded = torch.cat([buffer, buffer.new_full((1,), fill)])
    live = torch.arange(padded.shape[0], device=buffer.device) < items.count
    if dtype.is_floating_point:
        plain = torch.where(live & ~padded.isnan(), padded, fill)
        best = plain.amin(0) if smallest else plain.amax(0)
        best = torch.where(padded[0].isnan(), padded[0], best)  # (Python keeps a first NaN)
    else:
        plain = torch.where(live, padded, fill)
        best = plain.amin(0) if smallest else plain.amax(0)
    if default is _MISSING:
        return items.as_read(best)
    if items.numbers and _number_like(default) and _kind(best) != _kind(default):
        # Python gives the default itself where the list is empty (`min(vals, default=7)` of
        # floats is the int 7 there, tester22 s06): a type only the graph's count decides
        raise StagingError(
            "min() / max()",
            f"{'min' if smallest else 'max'}({items.name}, default=...) of '{items.name}', a "
            f"list of {_kind(best)}s grown under tensor control flow, is the default, "
            f"{_a(_kind(default))}, where the list is empty and {_a(_kind(best))} elsewhere; "
            "a graph gives one type on every path",
            f"Give a default of the items' type (`default={_kind(best)}(...)`)")
    chosen = torch.where(items.count > 0, best, default)
    # (a number where the list's items and the default are: `max(lrs, default=0.0)`)
    return items.as_read(chosen) if _number_like(default) else chosen


def _fold_rows(items: StagedList, key, smallest: bool, default):
    """min / max with a `key` of a grown list: the key of every row of the buffer at once
    (torch.func.vmap: the key as Python calls it, on one item), then the first best live row,
    as Python's fold takes it. The stacked items' fold asked for their number, which only the
    graph knows (tester22 s07: a TypeError with no line, and torch's "Could not guard on
    data-dependent expression" under dynamo)."""
    call = f"{'min' if smallest else 'max'}({items.name}, key=...)"
    if default is _MISSING:
        check_not_empty(items, _empty_error(smallest))
    try:
        keys = torch.func.vmap(lambda row: key(items.as_read(row)))(items.buffer)
    except StagingError:
        raise
    except Exception as error:  # noqa: BLE001 - a key vmap cannot run (a Python value of it)
        raise StagingError(
            "min() / max()", f"{call} of a list grown under tensor control flow computes its "
            f"key of each item as a tensor op, which this key is not ({error})",
            f"Reduce tensors: `s = torch.stack({items.name}); s[keys_of(s).argmax()]`") from None
    if not isinstance(keys, torch.Tensor) or keys.dim() != 1:
        raise StagingError(
            "min() / max()", f"{call}: the key gives "
            + ("a tensor of more than one value" if isinstance(keys, torch.Tensor) else
               f"a {type(keys).__name__}") + " per item; a graph compares one number per item",
            "Give a key of one number per item")
    if keys.dtype == torch.bool:
        keys = keys.to(torch.int64)
    live = torch.arange(items.capacity, device=keys.device) < items.count
    if keys.is_floating_point():
        fill = float("inf") if smallest else float("-inf")
    else:
        info = torch.iinfo(keys.dtype)
        fill = info.max if smallest else info.min
    # (argmin / argmax give the first best, as Python's fold; a row past the count never wins,
    # the filler tying with a live key is after it)
    keys = torch.where(live, keys, fill)
    at = keys.argmin() if smallest else keys.argmax()
    best = items.as_read(probe_row(items.buffer, at))
    if default is _MISSING:
        return best
    if _number_like(default) and _kind(best) != _kind(default):
        raise StagingError(
            "min() / max()", f"{call} with a default of another type than the items' is the "
            "default where the list is empty; a graph gives one type on every path",
            "Give a default of the items' type")
    return _where(items.count > 0, best, default, chosen=True)


def _python_error(call) -> str:
    try:
        call([])
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{call.__name__} of an empty list did not raise")


# Python's texts for min / max of an empty iterable (changed in 3.12), read at import: dynamo
# cannot trace the builtin's own error.
_EMPTY = {True: _python_error(builtins.min), False: _python_error(builtins.max)}


def _empty_error(smallest: bool) -> ValueError:
    return ValueError(_EMPTY[smallest])


def _reduce_tensor(values, key, smallest: bool):
    """min / max over the first dimension of a tensor, with Python's rules: an item is taken
    when it compares strictly better, so a NaN first item stays and a later NaN is skipped."""
    if values.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    if key is not None or values.dim() > 1:
        if isinstance(values.shape[0], int):
            return _fold(list(values.unbind(0)), key, _less if smallest else _greater)
        raise TypeError("min() / max() of a traced tensor with a key or of more than one "
                        "dimension needs a known length")
    if values.is_floating_point():
        fill = float("inf") if smallest else float("-inf")
        plain = torch.where(values.isnan(), fill, values)
        best = plain.amin(0) if smallest else plain.amax(0)
        return torch.where(values[0].isnan(), values[0], best)
    return values.amin(0) if smallest else values.amax(0)


def _less(a, b):
    return a < b


def _greater(a, b):
    return a > b


def _materialized(args):
    # min / max consume a generator whole anyway; a list shows whether any item is staged.
    # (a traced tensor is a FakeTensor or a FunctionalTensor, not of the class torch.Tensor
    # itself: listing its rows asked for a length only the graph knows)
    if len(args) == 1 and not type_in(args[0], _SEQUENCES) and not isinstance(
            args[0], torch.Tensor):
        return (list(args[0]),)
    return args


_SEQUENCES = (list, tuple, StagedList, torch.Tensor, range, str, dict, set, frozenset)


def _min_max(smallest, args, key, default):
    items, whole = _items(args)
    if whole and type(items) is StagedList and is_staged(items.count):
        return _reduce_list(items, key, smallest, default)
    if whole and is_staged(items):
        return _reduce_tensor(items, key, smallest)
    if whole:
        items = list(items)
    if not items:
        if default is not _MISSING:
            return default
        raise ValueError(f"{'min' if smallest else 'max'}() iterable argument is empty")
    chosen = _fold(items, key, _less if smallest else _greater)
    if builtins.all(numpy_in(v) for v in items):
        # (whichever is chosen, it is numpy's scalar: NOTE [numpy's numbers of graph numbers]
        # in runtime/libm.py)
        chosen = mark_numpy(chosen)
    elif is_stand_in(chosen) and not builtins.any(chosen is v for v in items) and (
            builtins.any(numpy_state(v) is not False for v in items)):
        # (numpy's where a numpy's item is chosen, Python's elsewhere: NOTE [numpy's numbers
        # across staged statements] in runtime/libm.py)
        call = f"call of {'min' if smallest else 'max'}()"
        location = (dynamo_user_location() if torch.compiler.is_dynamo_compiling()
                    else user_location())
        chosen = mark_numpy_some(chosen, f"the {call[8:]}", call, location)
    if (builtins.len(items) > 1 and builtins.all(
            isinstance(v, torch.Tensor) and not is_stand_in(v) for v in items)
            and not builtins.any(chosen is v for v in items)):
        # (one of the items itself in Python: NOTE [staged values that alias in Python])
        from . import staged_aliases

        staged_aliases.register_choice(chosen, items, f"{'min' if smallest else 'max'}(...)")
    return chosen


def _any_staged(args):
    for arg in args:
        if is_staged(arg) or type(arg) is StagedList:
            return True
        if type_in(arg, (list, tuple)) and builtins.any(_holds_staged(v) for v in arg):
            return True
    return False


def _holds_staged(value) -> bool:
    """A staged value, or a tuple holding one (an item of `enumerate` / `zip`)."""
    if type(value) is tuple:
        return builtins.any(_holds_staged(v) for v in value)
    return is_staged(value)


def _given(key, default) -> dict:
    """The keywords the user's call gave: dynamo's `min` / `max` take none (its constant
    folding takes any, NOTE [builtins replaced while torch.export runs])."""
    given = {} if key is None else {"key": key}
    if default is not _MISSING:
        given["default"] = default
    return given


def min_(*args, key=None, default=_MISSING):
    """`min(...)`; with traced tensors (or symbolic numbers) a tensor chosen by torch.where."""
    args = _materialized(args)
    if not _any_staged(args):
        if key is not None:
            return _by_key(True, args, key, default)
        return builtins.min(*args, **_given(key, default))
    return _min_max(True, args, key, default)


def max_(*args, key=None, default=_MISSING):
    """`max(...)`; with traced tensors (or symbolic numbers) a tensor chosen by torch.where."""
    args = _materialized(args)
    if not _any_staged(args):
        if key is not None:
            return _by_key(False, args, key, default)
        return builtins.max(*args, **_given(key, default))
    return _min_max(False, args, key, default)


# NOTE [min and max of Python values by traced keys]
# `k = max(d, key=d.get)` (or `key=lambda n: d[n]`) of a dict of numbers read from tensors
# (tester24 s07: the best of named scores): the items are Python values, the keys only the
# graph knows. Python's fold asked the keys' comparisons for their truth (autoconv's trace:
# the generic "asks Python for the value"; dynamo: "invalid call to builtin op handler"). Each
# key is computed once, as Python's min / max does; where one is traced, the fold is staged as
# for tensors: a chain of staged comparisons chooses among the items, and Python constants (the
# dict's str keys) are chosen as a StagedConstant (NOTE [constants under tensor control flow]),
# which `==` compares and a lookup (`d[k]`) specialises the graph on where it can.
def _by_key(smallest, args, key, default):
    items = list(args[0]) if len(args) == 1 else list(args)
    if not items:
        return (builtins.min if smallest else builtins.max)(*args, **_given(key, default))
    keys = [key(v) for v in items]
    better = _less if smallest else _greater
    if not builtins.any(_holds_staged(k) for k in keys):
        best = 0
        for i in range(1, len(items)):
            if better(keys[i], keys[best]):
                best = i
        return items[best]
    return _fold(items, keys.__getitem__, better, keyed=True)


# NOTE [sorting by traced values]
# `cand.sort(key=lambda c: float(c[0]))` (a beam search step) or `sorted(xs)` of tensors orders
# a Python list by values only the graph knows: no graph can hold a Python list's order, and
# torch asked for the values with no line (export: "Could not guard on data-dependent
# expression zuf2 < zuf3"; dynamo: "sort with non-constant keys"; tester t14 repro 5). The keys
# are computed here once per item, as Python's sort does, and a traced one is refused at the
# user's line with the tensor way to write it; other lists are sorted as Python does.
#
# Tuples whose Python parts decide their order are not refused (`sorted(m.items())` of a dict
# carrying tensors: the str keys differ, so Python never compares the values; dicts27). Each
# tuple's part before its first traced item orders them, where every two differ within both
# parts (checked on neighbours once sorted: lexicographic order makes that hold for every
# pair), as Python's tuple comparison then never reaches a traced item.
def _sorting_order(items, key, reverse, call: str) -> list:
    keys = items if key is None else [key(v) for v in items]
    order = _order_by_python_parts(keys, reverse)
    if order is not None:
        return order
    if builtins.any(_holds_staged(k) for k in keys):
        raise StagingError(
            "sort",
            f"`{call}` orders a Python list by traced tensor values (its "
            + ("items" if key is None else "key") + "), which are only known when the graph "
            "runs: a graph cannot hold the order of a Python list",
            "Sort tensors instead: stack the scores and take their order "
            "(`order = torch.stack(scores).argsort(descending=True)`, or `torch.topk(torch."
            "stack(scores), k)` for the best k), then index stacked items with it "
            "(`torch.stack(items)[order]`)")
    return builtins.sorted(range(len(keys)), key=keys.__getitem__, reverse=reverse)


def _order_by_python_parts(keys, reverse):
    """The order of `keys` (tuples holding traced values) by their parts before the first
    traced item, where those parts decide it as Python's comparison would; else None (NOTE
    [sorting by traced values])."""
    if not keys or not builtins.all(type(k) is tuple for k in keys):
        return None
    parts = []
    for k in keys:
        n = 0
        while n < len(k) and not _holds_staged(k[n]) and not isinstance(k[n], torch.Tensor):
            n += 1
        parts.append(k[:n])
    if builtins.all(len(p) == len(k) for p, k in zip(parts, keys)):
        return None  # (no traced item: the plain sort below)
    order = builtins.sorted(range(len(keys)), key=parts.__getitem__, reverse=reverse)
    for a, b in zip(order, order[1:]):
        first, second = parts[a], parts[b]
        if not builtins.any(x != y for x, y in zip(first, second)):
            return None  # (equal up to the shorter part: Python would compare a traced item)
    return order


def sorted_(iterable, /, *, key=None, reverse=False):
    """`sorted(iterable, key=key, reverse=reverse)`; raises StagingError where the order
    depends on traced values (NOTE [sorting by traced values])."""
    if type(iterable) is StagedDict and key is None:
        # (its distinct keys sorted by themselves: in no order the data decides, which a
        # plain iteration reads, NOTE [keys set on some paths] in staging/flagged_keys.py)
        items = list(iterable._settled("sorted(...)"))
    else:
        items = list(iterable)
    return [items[i] for i in _sorting_order(items, key, reverse, "sorted(...)")]


def sort_(items, *args, **kwargs):
    """`items.sort(*args, **kwargs)` where the call passes `key` (no tensor's `sort` takes
    one); a list whose order depends on traced values raises StagingError (NOTE [sorting by
    traced values])."""
    if type(items) is not list or args or not set(kwargs) <= {"key", "reverse"}:
        return items.sort(*args, **kwargs)
    order = _sorting_order(items, kwargs.get("key"), kwargs.get("reverse", False),
                           "list.sort(key=...)")
    items[:] = [items[i] for i in order]
    return None


# NOTE [comprehensions filtered by traced tensors]
# `[v for v in x if v > 0]` or `sum(1 for v in x if v > 0)` over a traced tensor (tester24 s03):
# Python asks each condition for its truth while the items are chosen, which only the graph
# knows. autoconv's trace gave torch's data-dependent error, placed at the line with the
# generic advice (or the named one for a list comprehension), and dynamo its own "Data-
# dependent branching". The calls pass writes each comprehension's `if c` as
# `if ac.filter_test(c, "[v for v in x if c]")` (the comprehension's source, read only to
# write the refusal), which refuses a traced tensor's truth at the user's line in every mode
# with what to write. One form is staged instead: a count, `sum(1 for v in x if c)`
# (one `for`, one `if`, an int constant item), is written `sum(ac.counted_(c, 1) for v in x)`,
# the item where the condition holds and 0 where not, which adds nothing to an int sum: the
# sum of a mask over the items, an int's stand-in (the count is Python's int).
def counted_(test, item):
    """The item of a count `sum(item for ... if test)` (NOTE [comprehensions filtered by
    traced tensors]): `item` where `test` holds, else 0; a traced condition gives an int's
    stand-in."""
    if not is_staged(test):
        return item if test else 0
    if is_stand_in(test) or not isinstance(test, torch.Tensor):
        return binary(test, "*", item)  # (a number's condition: NOTE [a count of conditions on a number])
    chosen = torch.where(as_predicate(as_staged_tensor(test), "generator's if"),
                         torch.tensor(item, dtype=torch.int64), torch.tensor(0, dtype=torch.int64))
    return mark_view(chosen)


def filter_test(test, comprehension):
    """The `if` of a comprehension (NOTE [comprehensions filtered by traced tensors]): `test`
    itself, refused where it is a traced tensor, whose truth only the graph knows;
    `comprehension` is its source (written by the calls pass; None where it has none), read only
    for the refusal."""
    if not (isinstance(test, torch.Tensor) and is_staged(test)):
        return test  # (a symbolic bool of sizes is Python's to decide, with a guard)
    if is_stand_in(test):
        comprehension_test(test)  # (a number's: NOTE [a count of conditions on a number])
    raise StagingError("expression", *filter_refusal(comprehension))


_FILTER_FIX = ("Write it as a `for` statement that appends (`out = []`, then `for v in x: if c: "
               "out.append(v)`), which is staged as one loop; over one tensor, a boolean mask "
               "(`x[x > 0]`, `torch.where(x > 0, x, 0).sum()`); a count, `sum(1 for v in x if "
               "c)`, is staged as it is")


def filter_refusal(comprehension: str | None) -> tuple[str, str]:
    """(problem, fix) for the comprehension whose source is `comprehension`, filtered by a
    traced tensor, in the user's terms."""
    try:
        node = ast.parse(comprehension, mode="eval").body
    except (SyntaxError, TypeError, ValueError):  # (no source: the generic refusal)
        return ("a comprehension's `if` tests a traced tensor, whose truth is only known when "
                "the graph runs", _FILTER_FIX)
    named = filtered_list_comprehension(node)
    if named is not None:
        return named
    tests = " and ".join(ast.unparse(c) for loop in node.generators for c in loop.ifs)
    return (f"`{comprehension}` filters its items by a traced tensor (`{tests}`): Python would "
            "have to choose the items while tracing, and how many are kept is only known when "
            "the graph runs", _FILTER_FIX)


# (dynamo calls it for real, with the source a constant: it cannot trace `ast.parse`)
filter_refusal._dynamo_marked_constant = True


def filtered_list_comprehension(node: ast.AST) -> tuple[str, str] | None:
    """(problem, fix) for a list comprehension of one `for` filtered by `if` (`[best[i] for i
    in range(n) if best[i] != 0]`, tester21): Python's filter decides while tracing, where a
    `for` statement that appends is staged as one loop; None for anything else (also used by
    autoconv/tracebacks.py for torch's data-dependent errors at such a line)."""
    if not (isinstance(node, ast.ListComp) and len(node.generators) == 1
            and node.generators[0].ifs and not node.generators[0].is_async):
        return None
    loop = node.generators[0]
    test = " and ".join(ast.unparse(c) for c in loop.ifs)
    return (f"`{ast.unparse(node)}` filters a comprehension by a traced tensor (`{test}`): "
            "Python would have to choose the items while tracing, and how many are kept is "
            "only known when the graph runs",
            f"Write it as a `for` statement that appends, which is staged as one loop: `out "
            f"= []`, then `for {ast.unparse(loop.target)} in {ast.unparse(loop.iter)}: if "
            f"{test}: out.append({ast.unparse(node.elt)})`; or, over one tensor, a boolean "
            "mask (`x[x != 0]`)")


def sum_(iterable, /, start=0):
    """`sum(iterable, start)`; a traced tensor is summed over its first dimension in one op.
    The sum of a list of Python numbers (a grown one, or one holding number stand-ins) stands
    for the Python number it is (NOTE [sums of numbers])."""
    grown, numbers = None, False
    if not type_in(iterable, _SEQUENCES) and not isinstance(iterable, torch.Tensor):
        # (a generator, `m.values()` of a dict, an iterator: its items may be numbers'
        # stand-ins, `sum(ac.counted_(c, 1) for ...)`, a carried dict's floats: summed as the
        # numbers they stand for, a list's are; sum iterates it once, as the list does.
        # NOTE [values leaving a container] in autoconv/converters/numbers.py)
        iterable = list(iterable)
    if type(iterable) is StagedList and is_staged(iterable.count):
        grown = iterable
        numbers = iterable.numbers and _number_like(start)
        iterable = iterable.stacked()  # (torch.stack raises for an empty list; sum gives start)
    elif type_in(iterable, (list, tuple)) and _number_like(start) and builtins.any(
            is_stand_in(v) for v in iterable) and builtins.all(
            _number_like(v) for v in iterable):
        return _sum_of_numbers(iterable, start)
    elif not is_staged(iterable):
        return builtins.sum(iterable, start)
    if iterable.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    if known_empty(iterable.shape[0]):  # (a grown list's count is only known when it runs)
        return start
    total = iterable.sum(0, dtype=_sum_dtype(iterable.dtype, start))
    if numbers:
        # where the list is empty Python's sum is `start` itself: the int 0 of a list of
        # floats (NOTE [numbers of two kinds] in runtime/augmented.py)
        total = _sum_of_numbers([mark_view(total)], start)
        kinds = (*number_kinds(start), *number_kinds(total))
        # (the start's paths, where it is the narrower kind: the list is empty)
        narrow = grown.count == 0 if len(kinds) == 2 and kinds[0] == "int" else None
        return mark_kinds(total, kinds, f"sum({grown.name or 'the list'}), of a list grown "
                          "under tensor control flow that may stay empty,",
                          "Give sum a start of the items' kind (`sum(vals, 0.0)`), or test "
                          "`len(vals) == 0` first", narrow)
    total = total if type_in(start, (int, float, bool)) and start == 0 else start + total
    if grown is not None and not is_stand_in(total):
        # where the list is empty the sum is Python's `start`, not a tensor: `sum(vals) /
        # len(vals)` raises ZeroDivisionError there (runtime/arithmetic.py `binary`)
        empty_is_start(total, grown.count)
    return total


# NOTE [sums of numbers]
# `sum(vals)` of a list of Python numbers is a Python number: of a list grown under tensor
# control flow (its items' stand-ins), or of a Python list holding stand-ins (`[a, b]` of
# carried floats). torch's sum gave an unmarked float64 tensor, and `torch.tensor(sum(vals))`
# was float64 where Python's float makes float32 (tester21b s01, s08, s24). The total is a
# number's stand-in, added to `start` by Python's rules (`arithmetic.binary`). (Of an empty
# grown list the sum is a zero of the items' dtype where Python's is the int 0: the total is
# tagged as an int on some paths, NOTE [numbers of two kinds] in runtime/augmented.py.)

def _sum_of_numbers(values, start):
    total = start
    for value in values:
        if type_in(total, (int, bool)) and total == 0 and isinstance(value, torch.Tensor):
            # (`0 + v` is `v`, an int's or a float's, as Python's sum gives it; numpy's
            # scalar's view is numpy's: `sum([np.exp(k), 1.0])` under torch.compile was
            # float32 under torch.tensor for Python's float64, break44c s04)
            total = mark_numpy(mark_view(value.to(torch.int64) if value.dtype == torch.bool
                                         else value), numpy_state(value))
        else:
            total = binary(total, "+", value)
    return total


def _sum_dtype(dtype, start):
    """The dtype of `start + t[0] + t[1] + ...` (torch.result_type, which dynamo cannot trace)."""
    if isinstance(start, torch.Tensor):
        return None  # torch.sum's own rule, then promotion with `start`
    if type(start) is float and not (dtype.is_floating_point or dtype.is_complex):
        return torch.get_default_dtype()
    return torch.int64 if dtype == torch.bool else dtype


def _truths(iterable, name):
    """The truth values of the items of a traced tensor, as a 1-d bool tensor."""
    if type(iterable) is StagedList:
        iterable = iterable.stacked()  # (torch.stack raises for an empty list; any gives False)
    if iterable.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    item_size = 1
    for size in iterable.shape[1:]:
        item_size = item_size * size
    if isinstance(item_size, int) and item_size != 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    # (not reshape(n, -1): with no row, n = 0, the -1 is ambiguous)
    return iterable.reshape(iterable.shape[0]) != 0


def any_(iterable, /):
    """`any(iterable)`; over traced values, a 0-d bool tensor."""
    if is_staged(iterable) or type(iterable) is StagedList:
        return _truths(iterable, "any").any()
    staged = []
    for item in iterable:
        if is_staged(item):
            staged.append(_predicate(item))
        elif item:
            return True
    return torch.stack(staged).any() if staged else False


def all_(iterable, /):
    """`all(iterable)`; over traced values, a 0-d bool tensor."""
    if is_staged(iterable) or type(iterable) is StagedList:
        return _truths(iterable, "all").all()
    staged = []
    for item in iterable:
        if is_staged(item):
            staged.append(_predicate(item))
        elif not item:
            return False
    return torch.stack(staged).all() if staged else True


def equal_(a, b):
    """`torch.equal(a, b)`; on traced tensors a 0-d bool tensor (False when shapes differ)."""
    if not (is_staged(a) or is_staged(b)):
        return torch.equal(a, b)
    if a.shape != b.shape:
        return False
    return (a == b).all()


def allclose_(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """`torch.allclose(a, b, ...)`; on traced tensors a 0-d bool tensor."""
    if not (is_staged(a) or is_staged(b)):
        return torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan).all()
