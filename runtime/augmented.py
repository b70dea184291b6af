"""Augmented assignment (`name op= value`) in converted bodies, and the number stand-ins it
tells apart from tensors.

NOTE [number stand-ins]
A Python number in the state of a staged statement crosses it as a 0-d tensor (staging/torch.py
`Statement.staged_view`): inside a staged body `k` of `k = 0` is a tensor standing in for the
number. Python's `k += 0.5` rebinds a number to `k + 0.5` (promoted to float; other names bound
to the old value keep it), while `t += 0.5` updates a tensor in place (its dtype cannot change).
The engine marks each stand-in it gives a body (`mark`, an attribute of the tensor object:
dynamo traces it, where an id() table would not be), and `aug_assign` updates a marked
tensor out of place, as Python updates the number, and any other tensor in place. The dtype
the statement then carries is decided by the engine's promotion rounds, as for `k = k + 0.5`.

A value an operator computes from stand-ins only (`j = k + 1`, runtime/arithmetic.py `binary`)
is marked too, as Python's result would be a number: `j += 0.5` then rebinds it to a float.

NOTE [numbers on some paths]
A number that a body turns into a tensor (`total = 0`, then `total += v` with an int64 `v` in a
loop) is a tensor after the statement on the paths that ran the body and still the number on
the others (a loop that ran no trip). Where the tensor has the number's own dtype the slot
cannot tell them apart, so the engine marks such an output `mark_mixed`, with the statement's
kind: `aug_assign`, `binary` and `compare` (runtime/arithmetic.py) then compute it where both
readings give the same dtype, and raise a StagingError where they differ (`total += v / 2`
raises in Python on the paths where `total` is an int64 tensor, and makes a float on the
others).

NOTE [types on some paths]
A Python number that a staged statement's body makes a tensor on some paths only (`s = 0.0`,
then `if x.sum() > 0: s = x.sum()`) is one tensor in the graph on every path: of the number's
dtype (`mark_mixed`) or, where it met a tensor of another dtype, of that tensor's (a float32
tensor, NOTE [weak numbers] in runtime/arithmetic.py). Its values are right (or refused) as
the note above says; its type is not: `isinstance(s, torch.Tensor)`, `torch.is_tensor(s)`,
`type(s)`, `hasattr(s, "shape")` or `s is False` would answer for the tensor on every path,
and a function that dispatches on the answer would take the tensor's branch where Python
takes the number's (types30). So the engine tags such an output (`mark_types`: its name, the
number's kind, the statement and where it is), a body's copy of it in the loop iterations after
the first, and an operator's result of it with a number; the type tests (runtime/builtins.py,
`is_` in staging/constants.py) raise a StagingError at the user's line where the tensor's
answer and the number's differ, and answer where they agree (`isinstance(s, object)`,
`s is None`).
"""

from __future__ import annotations

import operator

import torch
from torch.fx.experimental.symbolic_shapes import guard_or_false

from . import libm
from .staging import grad_mode
from .errors import StagingError
from .values import number_dtype, promote_types, tensors_dtype, with_number

__all__ = ["aug_assign", "aug_assign_attribute", "copy_of", "mark", "mark_view", "is_stand_in",
           "mark_mixed", "mixed_in", "mark_kinds", "kinds_in", "number_kinds", "kinds_error", "kind_of", "kind_seen",
           "kinds_without_paths", "kinds_as_index", "kinds_returned",
           "mixed_error", "python_dtype", "check_operands",
           "float_power_operands", "graph_check", "mark_types", "types_in", "types_error"]

_NUMBER = "_autoconv_number"

# op -> (Python's in-place operator, the out-of-place one)
_OPERATORS = {
    "+=": (operator.iadd, operator.add),
    "-=": (operator.isub, operator.sub),
    "*=": (operator.imul, operator.mul),
    "/=": (operator.itruediv, operator.truediv),
    "//=": (operator.ifloordiv, operator.floordiv),
    "%=": (operator.imod, operator.mod),
    "**=": (operator.ipow, operator.pow),
    "<<=": (operator.ilshift, operator.lshift),
    ">>=": (operator.irshift, operator.rshift),
    "&=": (operator.iand, operator.and_),
    "|=": (operator.ior, operator.or_),
    "^=": (operator.ixor, operator.xor),
    "@=": (operator.imatmul, operator.matmul),
}


def mark(t):
    """`t`, marked as standing in for a Python number (see NOTE [number stand-ins])."""
    if isinstance(t, torch.Tensor):
        setattr(t, _NUMBER, True)
    return t


def mark_view(t):
    """`t` marked as a number's stand-in as `mark`; under dynamo a view of it is (dynamo
    refuses an attribute set on an operator's output, and lets one be set on a view)."""
    if isinstance(t, torch.Tensor) and torch.compiler.is_dynamo_compiling():
        t = t.view(t.shape)
    return mark(t)


def is_stand_in(value) -> bool:
    """Whether `value` is a tensor standing in for a Python number of a staged statement."""
    return isinstance(value, torch.Tensor) and getattr(value, _NUMBER, False) is True


# `sum(vals)` of a list a staged statement grew: a tensor where the list has items, Python's
# `start` (the int 0) where it is empty, where `sum(vals) / len(vals)` raises ZeroDivisionError
# (a mean of an empty list: tester21b s19). The sum is marked with the list's count.
_EMPTY = "_autoconv_empty_count"


def empty_is_start(t, count) -> None:
    """Mark `t` (a grown list's sum) as Python's number `start` where `count` is 0."""
    if isinstance(t, torch.Tensor):
        setattr(t, _EMPTY, count)


def empty_count(value):
    """The count `empty_is_start` marked `value` with, or None."""
    return getattr(value, _EMPTY, None) if isinstance(value, torch.Tensor) else None


def mark_mixed(t, statement: str):
    """`t`, marked as a number on some paths of the `statement` ("while loop", ...) that made
    it and a tensor on the others (NOTE [numbers on some paths])."""
    if isinstance(t, torch.Tensor):
        setattr(t, _NUMBER, statement)
    return t


def mixed_in(value) -> str | None:
    """The kind of statement after which `value` is a number on some paths and a tensor on
    others (NOTE [numbers on some paths]), or None."""
    if not isinstance(value, torch.Tensor):
        return None
    mark_ = getattr(value, _NUMBER, False)
    return mark_ if type(mark_) is str else None


_TYPES = "_autoconv_types"


def mark_types(t, what: str, kind: str, statement: str, location):
    """`t`, tagged as a Python number of `kind` ('float', ...) on some paths of the `statement`
    ("if statement", ...) at `location` ((file, line) or None) and a tensor on the others,
    `what` it is for messages ("'s'"): NOTE [types on some paths]."""
    if isinstance(t, torch.Tensor):
        setattr(t, _TYPES, (what, kind, statement, location))
    return t


def types_in(value):
    """(what, kind, statement, location) of a tensor `mark_types` tagged, or None."""
    return getattr(value, _TYPES, None) if isinstance(value, torch.Tensor) else None


def is_untagged(value) -> bool:
    """Whether `value` is a tensor with none of the marks `is_stand_in`, `mixed_in` and
    `types_in` read: a plain tensor, told in one call (the staging engine asks it of every
    tensor of a statement's state on every run of a body, which dynamo traces)."""
    return (isinstance(value, torch.Tensor) and getattr(value, _NUMBER, None) is None
            and getattr(value, _TYPES, None) is None)


def types_error(value, use: str, as_tensor: str, as_number: str,
                statement: str | None = None) -> StagingError:
    """The error for `use` ("isinstance(s, torch.Tensor)") of a value that is a number on some
    paths and a tensor on others (tagged by `mark_types`, or only `mark_mixed` with its
    `statement`), which gives `as_tensor` where it is the tensor and `as_number` where it is
    the number (NOTE [types on some paths])."""
    what, kind, statement, location = types_in(value) or (
        "a value", kind_of(value), statement, None)
    where = f" at {location[0]}:{location[1]}" if location else ""
    example = {"bool": "False", "int": "0", "float": "0.0", "complex": "0j"}[kind]
    name = what[1:-1] if what.startswith("'") else "v"
    return StagingError(
        "type test",
        f"{what} is a Python {kind} on some paths and a tensor on others (the {statement}{where} "
        "merged them into one tensor: a graph gives a value one type on every path), and "
        f"{use} gives {as_tensor} where it is the tensor and {as_number} where it is the "
        f"{kind}: its answer is only known when the graph runs",
        f"Make it a tensor on every path (`{name} = torch.tensor({example})` where it is a "
        f"number), or a number on every path (`{name} = {kind}(...)` where it is a tensor)")


def mixed_error(statement: str, expression: str, as_tensor, as_number) -> StagingError:
    """The error for `expression`, which gives `as_tensor` (a dtype, or a sentence) where a
    value is the tensor a `statement` made of a number and `as_number` where it is still the
    number (NOTE [numbers on some paths])."""
    def said(what):
        return what if isinstance(what, str) else f"a {what} value"
    return StagingError(
        statement,
        f"a Python number the {statement} carries becomes a tensor where its body made it one "
        "(a number meeting a tensor is a tensor: after an iteration, or a branch) and stays a "
        "number elsewhere (before the first iteration, after no trip, in the other branch); "
        f"{expression} gives {said(as_tensor)} where it is the tensor and {said(as_number)} "
        "where it is the number",
        "Make it one kind on every path: a tensor before the statement "
        "(`total = torch.zeros((), dtype=...)`), or a number of the type it ends with in the "
        "body (`total = 0.0`, `total += float(v)`), or rebind it (`total = total + ...`) "
        "rather than update it in place")


# NOTE [numbers of two kinds]
# A graph gives a value one dtype on every path, so a number that is an int on some paths of a
# staged statement and a float on others (`k = 0; if c: k = 0.5`), or a bool and a float (`n >
# 1 and h`), is a float64 stand-in on every path: its value is right, its kind is not. Where
# the kind is not seen (`x * k` of a float tensor, `k < 1`, `math.sqrt(k)`) that is enough.
# Where it is seen (`torch.tensor(k)`: int64 or float32; `type(k)`; `str(k)`: '1' or '1.0';
# an int tensor times `k`) no value of the graph can give Python's answer on every path, so
# the stand-in is tagged with the kinds it may be and what it is ('k', "`and` / `or`"), and
# those uses raise a StagingError at the user's line. Where the value knows on which paths it
# is the narrower kind (a 0-d bool tensor of its graph: `sum(vals)`, where the list is empty;
# `n > 1 and h`, where it is the bool; `[1, 0.5, 2][k]`, where `k` chooses an int) the use is
# a graph assertion on those paths instead, and right on the others (`kind_seen`).
# Arithmetic of a tagged number keeps the tag where its result's kind still differs between
# the paths (`k + 1`; not `k * 0.5`), and a statement's number keeps it (without the paths,
# a tensor of another graph) across later statements (`Statement.stand_ins`). An int that a
# body adds a float read from a tensor to (`total += float(v)`, a symbolic float) is Python's
# float64 and tagged so too (`_python_dtype`: torch's own promotion made it its default
# float32 on every path). Returned by the function traced, a tagged number is refused or
# checked (NOTE [numbers of two kinds returned]); used as an index, a size or a range bound
# (`x[k]`, `torch.zeros(k)`, `range(k)`) it is refused (`kinds_as_index`): an int counts
# where a float raises TypeError. Not seen: a tagged number appended to a list grown under
# tensor control flow and read back under torch.compile (dynamo keeps no attribute on the
# loop's outputs: `torch.tensor(vals[-1])` is float32 where Python's int gives int64).

_KINDS = "_autoconv_kinds"
_KIND_ORDER = ("bool", "int", "float", "complex")


def kind_of(value) -> str:
    """'bool', 'int', 'float' or 'complex': the Python type a number (or its stand-in) is."""
    if isinstance(value, torch.Tensor):
        return _dtype_kind(value.dtype)
    if isinstance(value, (bool, torch.SymBool)):
        return "bool"
    if isinstance(value, (int, torch.SymInt)):
        return "int"
    return "complex" if isinstance(value, complex) else "float"


def _dtype_kind(dtype) -> str:
    return ("bool" if dtype == torch.bool else "complex" if dtype.is_complex else
            "float" if dtype.is_floating_point else "int")


def mark_kinds(t, kinds, what: str, fix: str | None = None, narrow=None):
    """`t`, tagged as a number of each of `kinds` on some paths (NOTE [numbers of two kinds]),
    `what` it is for messages (and `fix`, what to write, where not the default); `t` as it is
    where there is one kind. `narrow`: where there are two kinds, a 0-d bool tensor of the
    graph `t` is in, true on the paths where `t` is the narrower one (the graph's dtype is
    the wider one's); None where only the set of kinds is known."""
    # (most stand-ins are of one kind, or none: told before any set is made, a step for
    # dynamo, which traces this for every number of every body it stages)
    if len(kinds) < 2 or not isinstance(t, torch.Tensor):
        return t
    kinds = set(kinds)
    kinds = tuple(k for k in _KIND_ORDER if k in kinds)
    if len(kinds) > 1:
        setattr(t, _KINDS, (kinds, what, fix, narrow if len(kinds) == 2 else None))
    return t


def kinds_without_paths(value) -> tuple:
    """The tag of `value` (`kinds_in`) without its `narrow` tensor, for a copy another graph
    (a staged body) holds: a tensor of this graph must not be read there."""
    tagged = kinds_in(value)
    return (*tagged[:3], None) if tagged else ((), "")


def number_kinds(value) -> tuple:
    """The Python kinds a number (or its stand-in, tagged or not) may be."""
    tagged = kinds_in(value)
    return tagged[0] if tagged else (kind_of(value),)


def kinds_in(value):
    """(the kinds, what it is) of a number tagged by `mark_kinds`, or None."""
    return getattr(value, _KINDS, None) if isinstance(value, torch.Tensor) else None


def kinds_error(value, use: str, seen: str) -> StagingError:
    """The error for `use` of a number `mark_kinds` tagged, whose kind it shows (`seen`: how,
    on which path)."""
    return StagingError("expression", *_kinds_text(value, use, seen))


def _kinds_text(value, use: str, seen: str) -> tuple:
    kinds, what, fix, _ = kinds_in(value)
    widest = kinds[-1]
    return (
        f"{what} is {' on some paths and '.join(_a(k) for k in kinds)} on others (a graph "
        "gives a value one dtype on every path: which kind it is is only known when the graph "
        f"runs), and {use} shows the kind: {seen}",
        fix or (f"Give it one kind on every path: make it {_a(widest)} where it is bound ("
                + ("`k = 0.0` rather than `k = 0`" if widest == "float" else
                   f"`{widest}(...)`") + f"), or convert it where it is used (`{widest}(...)`)"))


def kind_seen(value, use: str, seen: str) -> None:
    """`use` of a number `mark_kinds` tagged shows its kind: where the tag knows the paths of
    the narrower kind (`narrow`), a graph assertion that raises a RuntimeError at the user's
    line on those paths only (the value is right on the others: `torch.tensor(sum(vals))` of
    a grown list of floats that has items); else a StagingError now (NOTE [numbers of two
    kinds])."""
    narrow = kinds_in(value)[3]
    if narrow is None:
        raise kinds_error(value, use, seen)
    problem, fix = _kinds_text(value, use, seen)
    graph_check(torch.logical_not(narrow), RuntimeError,
                f"{problem}; here it is {_a(kinds_in(value)[0][0])}, which the graph cannot "
                f"give. {fix}")


# NOTE [numbers of two kinds returned]
# The function's result is the graph's output: a number it returns is a 0-d tensor of its
# Python dtype (int64 for an int, float64 for a float), so a number of two kinds, a float64 on
# every path, is the int's wrong dtype on the int paths. A converted function that stages a
# statement returns through `returned_` (runtime/text.py), which shows the kind where that
# function is the outermost one traced (a helper's number goes on to its caller, tag and all).


def kinds_returned(value) -> None:
    """A number `mark_kinds` tagged, returned by the traced function (NOTE [numbers of two
    kinds returned]): refused, or a graph assertion on its narrower kind's paths."""
    kinds = kinds_in(value)[0]
    kind_seen(value, "returning it from the function", "the result is a 0-d tensor of its "
              "Python dtype: "
              + " and ".join(f"{KIND_DTYPES[k]} where it is {_a(k)}" for k in kinds))


def kinds_as_index(values, use: str) -> None:
    """A StagingError where a number `mark_kinds` tagged is among `values` (leaves: an index's
    parts, sizes) of `use` ("indexing with it", "range() of it"): an int counts and indexes
    where a float raises TypeError in Python, and a bool indexes as a mask, so the use shows
    the kind; the graph's one dtype cannot be both (NOTE [numbers of two kinds])."""
    for value in values:
        if kinds_in(value) is not None:
            problem, _ = _kinds_text(value, use, " and ".join(
                f"{_a(k)} " + ("raises TypeError" if k in ("float", "complex") else
                               "is a mask" if k == "bool" else "counts")
                for k in kinds_in(value)[0]))
            raise StagingError("expression", problem, (
                "Give it one kind on every path: an int where it is bound (`int(...)` of what "
                "each path assigns), or convert it where it is used (`int(...)`)"))


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


KIND_DTYPES = {"bool": torch.bool, "int": torch.int64, "float": torch.float64,
               "complex": torch.complex128}
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


def _operand_kinds(value):
    tagged = kinds_in(value)
    if tagged is not None:
        return tagged[0]
    if is_stand_in(value) or isinstance(value, (bool, int, float, complex)):
        return (kind_of(value),)
    return None


def kinds_after(result, left, op: str, right):
    """`result` of `left op right` where an operand is a number `mark_kinds` tagged: tagged
    with the kinds Python's result is on the paths (`k + 1` of an int-or-float `k` is one
    too; `k * 0.5` is a float); a StagingError where a tensor operand's result dtype depends
    on the kind (an int64 tensor times `k`). NOTE [numbers of two kinds]."""
    tagged = kinds_in(left) or kinds_in(right)
    if tagged is None or op in _COMPARISONS:
        return result
    left_kinds, right_kinds = _operand_kinds(left), _operand_kinds(right)
    if left_kinds is None or right_kinds is None:
        tensor = left if left_kinds is None else right
        if not isinstance(tensor, torch.Tensor):
            return result
        dtypes = {}
        for kind in left_kinds or right_kinds:
            dtype = with_number(tensor.dtype, KIND_DTYPES[kind])
            if op == "/" and not (dtype.is_floating_point or dtype.is_complex):
                dtype = torch.get_default_dtype()
            dtypes[kind] = dtype
        if len(set(dtypes.values())) > 1:
            kind_seen(left if kinds_in(left) else right, f"`{op}` with a {tensor.dtype} tensor",
                      " and ".join(f"a {d} tensor where it is {_a(k)}"
                                   for k, d in dtypes.items()))
        return result
    exponent = None if isinstance(right, torch.Tensor) else right
    pairs = [(a, b) for a in left_kinds for b in right_kinds]
    kinds = [_dtype_kind(python_dtype(KIND_DTYPES[a], op, KIND_DTYPES[b], exponent))
             for a, b in pairs]
    # (the narrower kind's paths stay the narrower result's where one operand is tagged and
    # the results keep the operands' order: `k + 1`; else only the kinds are known)
    order = [_KIND_ORDER.index(k) for k in kinds]
    kept = (len(pairs) == 2 and not (kinds_in(left) and kinds_in(right))
            and order[0] < order[1])
    return mark_kinds(result, kinds, *tagged[1:3], tagged[3] if kept else None)


# The mark of the 0-d bool tensor `bool()` makes of a traced tensor, which is Python's bool
# (NOTE [bool() of a traced tensor stored into argument objects] in runtime/builtins.py).
PYTHON_BOOL = "_autoconv_python_bool"


def copy_of(t, unknown: bool = False):
    """A clone of the tensor `t` with its mark (a number's stand-in, or a number on some
    paths) kept: a probe's copy of a statement's numbers reads as they do (NOTE [number
    stand-ins]). With `unknown`, a copy whose value the trace does not know, even where it
    knows `t`'s (NOTE [a loop's probe knows no values] in staging/torch.py)."""
    numel = t.numel()
    # (guard_or_false: a size the data decides, `order[idx + 1]` of a nonzero, is no value the
    # trace knows; under dynamo `numel <= 1` on it stopped in torch's "Could not guard on
    # data-dependent expression", naming autoconv's line: tester37 s04)
    if unknown and isinstance(numel, int) and guard_or_false(numel <= 1):
        copy = torch.stack((t, t))[0].clone()  # (two elements: no value known)
    else:
        copy = t.clone()
    mark_ = getattr(t, _NUMBER, False)
    if mark_ is not False:
        setattr(copy, _NUMBER, mark_)
    if kinds_in(t) is not None:
        setattr(copy, _KINDS, kinds_without_paths(t))
    if getattr(t, PYTHON_BOOL, False) is not False:  # NOTE [bool of a traced tensor tested
        setattr(copy, PYTHON_BOOL, getattr(t, PYTHON_BOOL))  # by `is`] in staging/constants.py
    return copy


def aug_assign(target, op, value):
    """`target op= value` (op one of '+=', '-=', ...); returns what Python binds the target to.

    On a number stand-in the update is out of place, as on the Python number it stands for
    (NOTE [number stand-ins]): the result is a stand-in too where `value` is a number (or a
    stand-in), and a plain tensor where `value` is a tensor, as in Python.
    """
    in_place, out_of_place = _OPERATORS[op]
    if is_stand_in(target) and (kinds_in(target) or kinds_in(value)):
        # (NOTE [numbers of two kinds])
        return kinds_after(_aug_assign_stand_in(target, op, value, out_of_place), target,
                           op[:-1], value)
    if is_stand_in(target):
        return _aug_assign_stand_in(target, op, value, out_of_place)
    statement = mixed_in(target)
    if statement is not None:
        return _aug_assign_mixed(target, op, value, statement, out_of_place)
    if isinstance(target, (bool, int, float, complex)) and (is_stand_in(value)
                                                             or mixed_in(value)):
        # a Python number and a stand-in: Python's arithmetic, not the tensor's reflected
        # operator (`1.0 / k` would be a float32 tensor)
        from .arithmetic import binary

        return binary(target, op[:-1], value)
    if torch.compiler.is_dynamo_compiling():  # NOTE [leaves updated in place in staged bodies]
        grad_mode.refuse_leaf_update_under_dynamo(target)
    return in_place(target, value)


def _aug_assign_stand_in(target, op, value, out_of_place):
    """`target op= value` on a number stand-in `target`: out of place (`aug_assign`)."""
    number = not isinstance(value, torch.Tensor) or is_stand_in(value)
    numpy_of = libm.numpy_mark(target, value)  # (before `target` is cast)
    dtype = _python_dtype(target.dtype, value, op) if number else _wrapped_dtype(
        target.dtype, value)
    if dtype is not None and dtype != target.dtype:
        target = target.to(dtype)
    if number:
        check_operands(target, op, value)
        if op == "**=":
            target, value = float_power_operands(target, value, dtype or target.dtype)
    if op == "/=" and not number:
        # Python's `k /= t` of a number is `t.__rtruediv__(k)`: `t.reciprocal() * k`
        # (NOTE [a number divided by a tensor] in runtime/arithmetic.py)
        return value.reciprocal() * target
    result = out_of_place(target, value)
    if number and result.dtype == torch.int64 and isinstance(target, torch.Tensor):
        # NOTE [carried ints past int64] in runtime/arithmetic.py
        from .arithmetic import check_int_range

        check_int_range(target, op[:-1], value, result)
    if not number:
        return result
    # (numpy's with a number is numpy's: NOTE [numpy's numbers of graph numbers] in libm.py)
    return libm.mark_numpy(mark(result), numpy_of)


def _aug_assign_mixed(target, op, value, statement, out_of_place):
    """`target op= value` on a value that is a number on some paths of `statement` and a
    tensor on others (NOTE [numbers on some paths]): the tensor is updated in place, its dtype
    kept (or Python raises), the number rebound to the promoted value. Staged where the two
    agree (out of place: the statement made the tensor, no other name holds it), else a
    StagingError."""
    number = not isinstance(value, torch.Tensor) or is_stand_in(value)
    if not isinstance(value, (torch.Tensor, bool, int, float, complex)):
        return out_of_place(target, value)
    as_number = (_python_dtype(target.dtype, value, op) if number
                 else _wrapped_dtype(target.dtype, value))
    if isinstance(value, torch.Tensor) and not is_stand_in(value):
        result = tensors_dtype(target.dtype, target.dim(), value.dtype, value.dim())
    else:
        result = with_number(target.dtype, value.dtype if isinstance(value, torch.Tensor)
                             else number_dtype(value))
    if op == "/=" and not (result.is_floating_point or result.is_complex):
        result = torch.get_default_dtype()
    if not _can_cast(result, target.dtype):
        raise mixed_error(
            statement, f"`{op}` of {_kind(value)}",
            f"torch's error (an in-place {op} cannot make a {target.dtype} tensor "
            f"{result}: 'result type can't be cast to the desired output type')", as_number)
    if as_number != target.dtype:
        raise mixed_error(statement, f"`{op}` of {_kind(value)}", target.dtype, as_number)
    out = out_of_place(target, value)
    return mark_mixed(out, statement) if number else out


def _can_cast(source: torch.dtype, target: torch.dtype) -> bool:
    """`torch.can_cast`, which dynamo cannot trace: no complex to real, float to integer or
    number to bool."""
    if source.is_complex and not target.is_complex:
        return False
    if source.is_floating_point and not (target.is_floating_point or target.is_complex):
        return False
    return source == torch.bool or target != torch.bool


def _kind(value) -> str:
    if isinstance(value, torch.Tensor) and not is_stand_in(value):
        return f"a {value.dtype} tensor"
    dtype = value.dtype if isinstance(value, torch.Tensor) else number_dtype(value)
    return {torch.bool: "a bool", torch.int64: "an int", torch.float64: "a float"}.get(
        dtype, "a number")


def aug_assign_attribute(owner, name, alias, op, value):
    """`owner.name op= value` in a statement's body, where the converter read `owner.name` into
    the local `alias` before the statement (NOTE [attributes updated in place] in
    autoconv/converters/control_flow.py); returns the alias's new value, which the body's later
    reads of `owner.name` see.

    A tensor's `op=` is in place and Python's store then rebinds the attribute to the same
    object: the update goes to the alias, which the statement carries (each staged body on its
    own copy) and writes back into the attribute's tensor (`copy_`) after it. Writing the
    attribute inside a staged body instead would change a module's buffer in torch.cond's
    branch (dynamo refuses it) or in the probe run that learns a returned value's type (the
    graph would then update it on every call). Any other value (a Python number) is stored
    into the attribute as Python does, and a plain object's own copy in a staged body (the
    statement carries the object too) is updated as well.
    """
    if not isinstance(alias, torch.Tensor) or is_stand_in(alias):
        # the body reads `owner.name` through the alias from here on: it must see the update
        updated = aug_assign(getattr(owner, name), op, value)
        setattr(owner, name, updated)
        return updated
    if isinstance(owner, torch.nn.Module):  # not carried: its tensors are read by name
        return aug_assign(alias, op, value)
    if isinstance(owner, torch.Tensor) and name == "data":
        # `w.data -= v`: the alias is `w`'s memory (`ac.data_or_`), and Python's store binds
        # `.data` to the memory it had (NOTE [writes through .data] in the converters)
        return aug_assign(alias, op, value)
    # A plain object is carried by the statement too (staging/objects.py), each body on its own
    # copy: the update goes to that copy and to the alias alike, so both write-backs agree.
    held = getattr(owner, name)
    if held is not alias:
        setattr(owner, name, aug_assign(held, op, value))
    return aug_assign(alias, op, value)


def _python_dtype(dtype, value, op):
    """The dtype of `number op value` for the number a stand-in of `dtype` is and a number (or
    stand-in) `value`, as Python computes it (`python_dtype`)."""
    # (a symbolic number read from a tensor, `float(v)` in a staged body, is Python's number
    # too: torch's own promotion made `int + float(v)` its default float32)
    other = value.dtype if isinstance(value, torch.Tensor) else number_dtype(value) \
        if isinstance(value, (bool, int, float, complex, torch.SymBool, torch.SymInt,
                              torch.SymFloat)) else None
    if other is None:
        return None
    return python_dtype(dtype, op.rstrip("="), other, value)


# NOTE [Python's number rules]
# torch computes on 0-d tensors by its own rules where Python's differ: an int meeting a float
# is a float64 in Python (torch: its default float32), `/` of ints a float; arithmetic of bools
# is an int in Python (`True + True` is 2; torch keeps bool: True, and refuses `-`); and
# `k ** -1` of an int is a float in Python (torch refuses "Integers to negative integer powers",
# and `2 ** j` with a negative int64 tensor `j` gives 0, silently). Only `&`, `|`, `^` keep
# bools bools.
_BOOL_OPERATORS = frozenset({"&", "|", "^"})


def python_dtype(left: torch.dtype, op: str, right: torch.dtype, exponent=None) -> torch.dtype:
    """The dtype of `left op right` for Python numbers of those dtypes (NOTE [Python's number
    rules]); `exponent`, for `**`, the right operand (a Python int below 0 makes a float)."""
    dtype = promote_types(left, right)
    if dtype == torch.bool and op not in _BOOL_OPERATORS:
        dtype = torch.int64
    if dtype.is_floating_point or dtype.is_complex:
        return dtype
    if op == "/" or (op == "**" and isinstance(exponent, int) and exponent < 0):
        return torch.float64
    return dtype


def check_operands(left, op: str, right):
    """Python's errors for `left op right` of numbers, one of them a stand-in whose value is
    only known when the graph runs, as graph assertions (NOTE [Python's number rules]): a
    division by zero (torch gives inf or nan) and a zero raised to a negative power raise
    ZeroDivisionError; an int raised to a negative int stand-in, a float in Python, raises
    (an int graph value cannot be one, and torch gives a wrong int).

    Raises:
        ZeroDivisionError: at once for a division by a Python zero, as Python.
    """
    op = op.rstrip("=")
    if op not in ("/", "//", "%", "**"):
        return
    if op != "**":
        if isinstance(right, torch.Tensor):
            graph_check(right != 0, ZeroDivisionError, "division by zero")
        elif right == 0:
            raise ZeroDivisionError("division by zero")
        return
    _check_fractional_power(left, right)
    if isinstance(right, torch.Tensor):
        negative = right < 0
    elif isinstance(right, (int, float)) and right < 0:
        negative = None  # (known: a Python number)
    else:
        return
    if isinstance(left, torch.Tensor):
        zero = left == 0 if negative is None else (left == 0) & negative
        graph_check(~zero, ZeroDivisionError, "0.0 cannot be raised to a negative power")
    elif left == 0 and negative is not None:
        graph_check(~negative, ZeroDivisionError,
                     "0.0 cannot be raised to a negative power")
    left_dtype = left.dtype if isinstance(left, torch.Tensor) else number_dtype(left)
    if (negative is not None and right.dtype != torch.bool and not _is_float(right.dtype)
            and not _is_float(left_dtype)):
        graph_check(~negative, ValueError, (
            "`**` of an int by a negative int is a float in Python, which this int graph value "
            "cannot be (the exponent is an int a staged statement carries, its sign only known "
            "when the graph runs): make an operand a float (`float(k) ** j`) where the exponent "
            "may be negative"))


def float_power_operands(left, right, dtype):
    """`left`, `right` of a float `**` of numbers, both as tensors: torch's pow by a Python
    float takes shortcuts (`** 0.5`, `** -0.5`) that differ from Python's `**` (libm's pow)
    in the last bit, where pow by a tensor agrees with it."""
    if not _is_float(dtype) or dtype.is_complex:
        return left, right
    like = left if isinstance(left, torch.Tensor) else right
    if not isinstance(left, torch.Tensor):
        left = torch.full_like(like, left, dtype=dtype)
    if not isinstance(right, torch.Tensor):
        right = torch.full_like(like, right, dtype=dtype)
    return left, right


def _check_fractional_power(left, right):
    """A negative number raised to a fractional power is a complex in Python (torch: nan)."""
    if isinstance(right, torch.Tensor):
        if not right.dtype.is_floating_point:
            return
        fractional = right != torch.trunc(right)
    elif isinstance(right, float) and not right.is_integer():
        fractional = None
    else:
        return
    if isinstance(left, torch.Tensor):
        if left.dtype.is_complex:
            return
        bad = left < 0 if fractional is None else (left < 0) & fractional
    elif isinstance(left, (int, float)) and left < 0:
        bad = fractional
    else:
        return
    graph_check(~bad, ValueError, (
        "a negative number raised to a fractional power is a complex in Python, which this "
        "float graph value cannot be: write `complex(t) ** p`, or keep the base positive"))


def _is_float(dtype) -> bool:
    return dtype.is_floating_point or dtype.is_complex


def graph_check(valid, kind: type, text: str):
    """A graph assertion of `valid` that raises `kind(text)`, located at the user's line (NOTE
    [exceptions raised by graphs] in runtime/errors.py)."""
    from .errors import graph_error_message, located
    from .staging import context

    if context.probing():
        return
    if torch.compiler.is_dynamo_compiling() and context.dry_try(0, 0)[0]:
        context.dry_try(0, 1)  # (NOTE [a staged try under dynamo] in runtime/fallible.py)
        return
    if collecting(kind):
        # (a `try` staged as its failure: NOTE [a try around a value the graph checks] in
        # runtime/fallible.py)
        _COLLECTING[-1][1].append(torch.logical_not(valid))
        return
    _refuse_if_caught(kind(text))
    torch._assert_async(valid, graph_error_message(kind(
        located(text, torch.compiler.is_dynamo_compiling()))))


# [caught, failing checks] of each `try_value` running (NOTE [a try around a value the graph
# checks] in runtime/fallible.py), innermost last
_COLLECTING: list = []


def collecting(kind: type) -> bool:
    """Whether a graph check of `kind` is collected, not asserted (`collect_checks`): the
    operation then computes a value where it fails too (an int `//` by zero: torch raises)."""
    if _COLLECTING:
        return issubclass(kind, _COLLECTING[-1][0])
    if not torch.compiler.is_dynamo_compiling():
        return False
    from .staging import context
    return context.dry_try(0, 0)[0] > 0




def collect_checks(caught) -> list:
    """Start collecting the failures of the graph checks whose error `caught` catches (instead
    of asserting them); returns the entry for `collected_checks`."""
    entry = [caught, []]
    _COLLECTING.append(entry)
    return entry


def collected_checks(entry) -> list:
    """Stop collecting for `entry`; the failures collected (bool tensors, true where a check
    fails)."""
    _COLLECTING.pop()
    return entry[1]


def _refuse_if_caught(error: BaseException) -> None:
    """A StagingError where a `try` of converted code on the stack would catch `error`, which
    the graph raises by an assertion on values only it knows (runtime/handlers.py): Python runs
    the handler where the graph would fail whole (tester21 s05: `10.0 / n` of a carried int
    `n` in `try: ... except ZeroDivisionError:` raised out of the function on n == 0)."""
    from . import handlers

    caught = handlers.catching(error)
    if caught is None:
        return
    filename, line, clause = caught
    raise StagingError(
        "expression",
        f"{type(error).__name__} ({error}) is raised here on values only the graph knows, and "
        f"`{clause}` at {filename}:{line} would catch it: a graph cannot take the path into an "
        "except handler (its check fails the whole graph)",
        "Test for the case instead of catching it (`m = 10.0 / n if n != 0 else -1.0`), or put "
        "the try/except outside the function autoconv traces")


def _wrapped_dtype(dtype, value):
    """The dtype of `number op tensor` for the number a stand-in of `dtype` is: Python's
    number is a wrapped number, which only raises the category (`0.0 + float32 tensor` is
    float32), so the stand-in first takes that dtype."""
    if not isinstance(value, torch.Tensor):
        return None
    return with_number(value.dtype, dtype)
