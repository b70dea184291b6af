"""Python constants (a str, None, an enum member) chosen under tensor control flow: carried as
an int64 index into a table of the constants.

NOTE [constants under tensor control flow]
Library code sets status values under tensor conditions:

    if gtd > -gtd_tol:
        warnflag = 4                                  # a number: a 0-d tensor, as any number
        msg = 'A non-descent direction was encountered.'
        break

Every value `msg` can take is a constant of the program, so the choice among them is data: the
index of the constant in a table. Each constant gets an int64 id the first time it is met (one
table per process, never shrinking: constants are few and small); a staged statement carries
`msg` as a `StagedConstant`, a pytree whose one leaf is the 0-d index tensor, so torch.cond and
torch.while_loop carry it as any other state. When a graph returns one, the replay looks the
constant up (the StagedConstant pytree node unflattens a concrete index into its constant).

Uses that need the value while tracing (a StagedConstant's truth value, `str()`, `+`, `len`
and the like) specialise the graph on it at the top level of the function (NOTE
[specialisation] in specialize.py: a guard `index == k` per constant of the table in turn, up
to the one the inputs give); in a staged body, whose traced values are not the runtime ones,
and under torch.compile, they raise a StagingError at the user's line. Comparisons with `==` / `!=` and `is` / `is not` (which
converted code routes through `ac.is_` / `ac.is_not`) compare indices, giving a 0-d bool tensor
that a converted `if` stages. A torch.export program outputs tensors only, so returning one
from exported code is refused too (its index would mean nothing in another process).
"""

from __future__ import annotations

import enum
import os
import sys
import threading

import torch
from torch.utils import _pytree as pytree
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

from .. import augmented
from . import python_bools
from ..errors import StagingError, user_location
from ..identity import type_in

__all__ = ["StagedConstant", "is_constant", "staged", "Retabled", "carry_slot", "lookup",
           "is_", "is_not", "isinstance_of"]


class _Unset:
    """Entry 0 of the table: the placeholder a carried constant has before any body set it."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()
_table: list = [_UNSET]  # id -> constant
_ids: dict = {}  # (type, constant) -> id
_lock = threading.Lock()


def is_constant(value) -> bool:
    """True for a Python value a graph can carry as an index into the table: None, a str, bytes,
    Ellipsis, an enum member that is not a number (an IntEnum is a number: a 0-d tensor)."""
    if value is None or value is Ellipsis or type_in(value, (str, bytes)):
        return True
    return isinstance(value, enum.Enum) and not isinstance(value, (int, float))


def _intern(value) -> int:
    key = (type(value), value)
    found = _ids.get(key)
    if found is None:
        with _lock:
            found = _ids.get(key)
            if found is None:
                found = _ids[key] = len(_table)
                _table.append(value)
    return found


# Dynamo (which traces the bodies of torch.cond / while_loop) refuses the table's writes; it
# calls a function so marked as a constant instead (torch.compiler.assume_constant_result).
_intern._dynamo_marked_constant = True


def lookup(index: int):
    """The constant with id `index`."""
    value = _table[index]
    if value is _UNSET:
        # A placeholder (a loop that ran no iteration, an early return's unset value) reached
        # the output: Python would have had no value here.
        raise UnboundLocalError("a variable set under a tensor condition was read on a path "
                                "where it has no value")
    return value


class StagedConstant:
    """One of several Python constants, chosen by tensor values: `lookup(index)` when the graph
    runs. `name` is the variable it was assigned to and `where` the statement's (file, line)."""

    def __init__(self, index, name: str = "a value", where=None, kind: str = "constant"):
        self.index = index
        self.name = name
        self.where = where
        self.kind = kind  # the constant's type, where one constant made it (for messages)

    def __repr__(self) -> str:
        if _concrete(self.index):
            return f"StagedConstant({self.value!r})"
        return f"StagedConstant({self.name!r})"

    @property
    def value(self):
        """The constant, once the graph has run (torch.compile returns a StagedConstant)."""
        return self._needed("`.value`")

    def _needed(self, use: str):
        """The constant, for a `use` that needs its value. While tracing at the top level of the
        function the graph is specialised on it (NOTE [specialisation]: a guard `index == k`
        for each constant k of the table in turn, up to the one the inputs give); in a staged
        body, or under torch.compile, that is refused at the user's line."""
        if _concrete(self.index):
            return lookup(int(self.index))
        error = self._refusal(use)
        if torch.compiler.is_dynamo_compiling() or not isinstance(self.index, torch.Tensor):
            raise error
        from . import context, specialize

        probing = context.probing()
        in_body = context.in_staged_body() or probing
        try:
            for k in range(1, len(_table)):  # (entry 0 is the placeholder, never a value)
                if specialize.specialize(self.index == k, "if statement or loop", error,
                                         in_body, probing):
                    return lookup(k)
        except GuardOnDataDependentSymNode:
            # (a constant a conditional expression chose, `"a" if c else "b"`: its index is an
            # output of a torch.cond, which cannot be read back while tracing)
            raise error from None
        raise error

    def _refusal(self, use: str) -> StagingError:
        problem = (f"'{self.name}' is a Python constant chosen by tensor values (set under a "
                   f"tensor condition{_at(self.where)}), and {use} needs its value, which is "
                   "only known when the graph runs")
        if use.startswith(("hashing", "indexing", "naming an attribute")):
            # `table[key]` / `getattr(obj, key)` with `key = "a" if c else "b"`: the graph
            # cannot pick a dict entry or an attribute
            problem += f": a {self.kind} cannot be chosen by a tensor"
            example = ("obj.a * x, obj.b * x" if use.startswith("naming")
                       else "table['a'] * x, table['b'] * x")
            fix = (f"Compute the result for each choice and select it with torch.where "
                   f"(`torch.where(c, {example})`), or put the whole use of "
                   f"'{self.name}' in each branch of the tensor `if`")
        else:
            fix = (f"Compare '{self.name}' with == or `is` (a staged test), or keep the result "
                   "as a number or a tensor (e.g. a status code) and turn it into text after "
                   "the graph runs")
        return StagingError("if statement or loop", problem, fix)

    def __bool__(self):
        return bool(self._needed("its truth value"))

    def __str__(self):
        return str(self._needed("str()"))

    def __format__(self, spec):
        return format(self._needed("formatting it"), spec)

    def __len__(self):
        return len(self._needed("len()"))

    def __iter__(self):
        return iter(self._needed("iterating over it"))

    def __contains__(self, item):
        return item in self._needed("`in`")

    def __getitem__(self, key):
        return self._needed("indexing it")[key]

    def __hash__(self):
        return hash(self._needed("hashing it (a dict key, a set)"))

    def __add__(self, other):
        return self._needed("`+`") + other

    def __radd__(self, other):
        return other + self._needed("`+`")

    def __mod__(self, other):
        return self._needed("`%`") % other

    def __rmod__(self, other):
        return other % self._needed("`%`")

    def __mul__(self, other):
        return self._needed("`*`") * other

    __rmul__ = __mul__

    def __eq__(self, other):
        return _same(self, other)

    def __ne__(self, other):
        same = _same(self, other)
        return not same if isinstance(same, bool) else torch.logical_not(same)


def _at(where) -> str:
    return f" at {where[0]}:{where[1]}" if where else ""


def _same(value: StagedConstant, other):
    """`value == other` (or `value is other`) as a 0-d bool tensor; a Python bool once the
    graph has run."""
    if _concrete(value.index):
        other = other.value if isinstance(other, StagedConstant) else other
        return is_constant(other) and _intern(other) == int(value.index)
    if isinstance(other, StagedConstant):
        return other.index == value.index
    if is_constant(other):
        return value.index == _intern(other)
    # A carried constant is never equal to a tensor, a number or an object (its values are all
    # constants of the kinds above, and none of them equals those).
    return torch.zeros((), dtype=torch.bool, device=value.index.device)


def is_(left, right):
    """`left is right`; a StagedConstant on either side compares indices (a 0-d bool tensor);
    a number's stand-in is the number it stands for (`_number_identity`); a StagedOptional
    against None is its flag (optionals.py)."""
    if type(left) is StagedOptional or type(right) is StagedOptional:
        return optionals.is_(left, right)
    if isinstance(left, StagedConstant):
        return _same(left, right)
    if isinstance(right, StagedConstant):
        return _same(right, left)
    if isinstance(left, torch.Tensor) and type_in(right, _NUMBERS):
        return _number_identity(left, right)
    if isinstance(right, torch.Tensor) and type_in(left, _NUMBERS):
        return _number_identity(right, left)
    if type(right) is bool and _symbolic_bool(left):
        return _symbolic_bool_is(left, right)  # NOTE [bool of a traced tensor tested by `is`]
    if type(left) is bool and _symbolic_bool(right):
        return _symbolic_bool_is(right, left)
    if type_in(left, _IDENTITY_NUMBERS) and type_in(right, _IDENTITY_NUMBERS):
        _refuse_identity_of_equal_numbers(left, right)
    return left is right


# NOTE [bool of a traced tensor tested by `is`]
# `b = bool(x.sum() > 0)` then `if b is True:`, or `match bool(...)` / `match t.item()` with
# `case True:` (a literal pattern of True, False or None tests by `is`): Python's `b` is a bool,
# so `b is True` is `b == True`. A traced tensor's `bool()` is a 0-d bool tensor marked as
# Python's bool (NOTE [bool() of a traced tensor stored into argument objects] in
# runtime/builtins.py), a bool tensor's `.item()` a symbolic bool: `is` took them for objects
# other than True and False, and the test was False on every path (x - 1 for Python's x + 1,
# and a `match` fell through both `case True:` and `case False:`, in every mode, silently:
# break52). Each is now its value compared with the bool: the mark goes with the tensor into
# the bodies that read it and into the probes' copies (`_stand_in_as` in torch.py,
# augmented.copy_of), under dynamo on a view (which takes an attribute where an operator's
# output does not). A tensor without the mark is the function's own (`match x.sum() > 0:`),
# never True or False, as in Python. A staged statement's outputs are marked where its paths
# give Python's bool (NOTE [Python's bools across staged statements] in python_bools.py).
def _symbolic_bool(value) -> bool:
    """Whether `value` is a bool only the running graph knows (`t.item()` of a bool tensor:
    a SymBool, which dynamo shows as a bool)."""
    from ..values import is_symbolic

    return (isinstance(value, torch.SymBool) or type(value) is bool) and is_symbolic(value)


def _symbolic_bool_is(value, flag: bool):
    """`value is flag` of a symbolic bool (a Python bool in the function's Python)."""
    return value if flag else torch.sym_not(value)


def _python_bool_is(value: torch.Tensor, flag: bool):
    """`value is flag` of a tensor marked as the bool of a traced tensor (NOTE [bool of a
    traced tensor tested by `is`]), else None (a tensor is neither True nor False)."""
    mark = getattr(value, augmented.PYTHON_BOOL, False)
    if mark is True:
        return value == flag
    if mark is not False:  # (on some paths only: NOTE [Python's bools across staged statements])
        raise python_bools.refusal(mark, flag)
    return None




# NOTE [identity of equal numbers]
# `NUMBER is DEFAULT` of two floats (ints, complex numbers) read from outside the function:
# a number read from outside is guarded by its value (`SCALE = 2.0` again keeps the graph),
# so a number rebound to an equal one of another object kept the graph that took the
# identity's branch at the trace (2x for Python's x, silently: break45b s04). Numbers of
# different values, or types, are never one object, and CPython's small ints (-5 to 256)
# are one object for each value: `is` of those is known by value. For two equal numbers
# otherwise, the identity is refused while a graph is traced (at the user's line), never
# guessed; in eager runs it is Python's `is`.
_IDENTITY_NUMBERS = (int, float, complex)


def _refuse_identity_of_equal_numbers(left, right) -> None:
    if type(left) is not type(right):
        return
    if left != right and not (left != left and right != right):
        return  # (different values: never one object; two nans may be one)
    if type(left) is int and -5 <= left <= 256:
        return
    from ..values import eager

    if eager():
        return
    raise StagingError(
        "identity test",
        f"`is` compares two equal {type(left).__name__}s ({left!r}) by which objects they "
        "are, which the graph cannot keep: a number read from outside the function is "
        "checked by its value, so an equal number of another object would replay the "
        "branch the trace took",
        "Compare numbers with `==` (`math.isnan(v)` for nan), or compare a flag (`v is "
        "None`, a bool) that says which one was given")


def is_not(left, right):
    """`left is not right`; see `is_`."""
    if type(left) is StagedOptional or type(right) is StagedOptional:
        return optionals.is_not(left, right)
    if (isinstance(left, StagedConstant) or isinstance(right, StagedConstant)
            or (isinstance(left, torch.Tensor) and type_in(right, _NUMBERS))
            or (isinstance(right, torch.Tensor) and type_in(left, _NUMBERS))):
        same = is_(left, right)
        return not same if isinstance(same, bool) else torch.logical_not(same)
    if type_in(left, _IDENTITY_NUMBERS) and type_in(right, _IDENTITY_NUMBERS):
        _refuse_identity_of_equal_numbers(left, right)  # NOTE [identity of equal numbers]
    return left is not right


_NUMBERS = (bool, int, float)


def _number_identity(value: torch.Tensor, number):
    """`value is number` of a tensor and a Python number. A bool stand-in is True or False,
    which are the only bools: `flag is False` is `flag == False`, staged (a tensor is never
    either, nor a number of another kind). A value that is a number on some paths and a
    tensor on others (NOTE [types on some paths] in runtime/augmented.py) is refused where the
    number may be `number`."""
    tagged = augmented.types_in(value)
    if tagged is not None or augmented.mixed_in(value) is not None:
        kind = augmented.kind_of(number)
        if kind != (tagged[1] if tagged else augmented.kind_of(value)):
            return False  # (neither a tensor nor a number of another type is `number`)
        raise augmented.types_error(value, f"`is {number!r}`", "False",
                                    f"whether it is that {kind}", augmented.mixed_in(value))
    if augmented.is_stand_in(value) and type(number) is bool:
        kinds = augmented.number_kinds(value)
        if kinds == ("bool",):
            return value == number
        if "bool" in kinds:  # (NOTE [identity of a bool of two kinds])
            narrow = augmented.kinds_in(value)[3]
            if narrow is None:
                raise augmented.kinds_error(value, f"`is {number!r}`",
                                            f"it is {number!r} only where it is a bool")
            return torch.logical_and(narrow, value == number)
    if type(number) is bool:
        same = _python_bool_is(value, number)  # NOTE [bool of a traced tensor tested by `is`]
        if same is not None:
            return same
    return value is number


# NOTE [identity of a bool of two kinds]
# A number that is a bool on some paths and an int (a float) on others (`m = True` under one
# branch of a tensor `if`, `m = 1` under the other) is one int64 stand-in: `m is True` holds
# only on the bool paths, where the stand-in is 1, and never where it is the int 1 (`case
# True:` of a `match`, which must not match 1: match50 s01, 20 for Python's 10, silently).
# The tag's `narrow` tensor (the bool's paths: bool is the narrowest kind) gives the test;
# where the tag does not know the paths, the identity is refused.


def isinstance_of(value: StagedConstant, classinfo):
    """`isinstance(value, classinfo)` for a carried constant: a Python bool where every constant
    of the table agrees (none, or all, are instances), else a 0-d bool tensor, true where the
    index is one of an instance's (a staged test, as `==`). Every index a graph can carry was
    interned while tracing it, so the table as it is now lists them all."""
    if _concrete(value.index):
        return isinstance(value.value, classinfo)
    ids = [k for k in range(1, len(_table)) if isinstance(_table[k], classinfo)]
    if not ids:
        return False
    if len(ids) == len(_table) - 1:
        return True
    test = value.index == ids[0]
    for k in ids[1:]:
        test = torch.logical_or(test, value.index == k)
    return test


def staged(value, name: str, like=None):
    """`value` as state a staged statement carries: a constant becomes a StagedConstant of its
    index (placed on `like`'s device); anything else is returned as it is."""
    if not is_constant(value):
        return value
    device = like.device if isinstance(like, torch.Tensor) else None
    index = torch.full((), _intern(value), dtype=torch.int64, device=device)
    return StagedConstant(index, name, _location(), type(value).__name__)


def _location():
    if torch.compiler.is_dynamo_compiling():
        return None  # only for messages; dynamo cannot trace the frame walk
    return user_location()


class Retabled(Exception):
    """A body gave `state[slot]`, a constant the statement was to leave as it is, another
    constant (or left a variable unbound that the statement was to bind, `keep`): the statement
    is staged again with that slot carried, or kept unbound (see `restaged`)."""

    def __init__(self, state, slot: int, keep: bool = False):
        Exception.__init__(self, f"state slot {slot} is staged again")
        self.state, self.slot, self.keep = state, slot, keep


class Kept:
    """An unbound variable no branch of a staged if binds (`if return_all: allvecs = [x]` under
    a traced condition, with return_all False): a constant of the statement, which stays
    unbound. A branch that binds it after all is refused as binding it on one path only."""

    def __init__(self, unbound):
        self.unbound = unbound

    @staticmethod
    def other(where: str) -> str:
        return where.replace("true", "false") if "true" in where else where.replace(
            "false", "true")


def restaged(error: BaseException, state, names, like):
    """The state to stage this statement again with when `error` is its Retabled, else None."""
    if not (isinstance(error, Retabled) and error.state is state):
        return None
    if error.keep:
        state = list(state)
        state[error.slot] = Kept(state[error.slot])
        return tuple(state)
    return carry_slot(state, error.slot, names[error.slot], like)


def settled(results, state):
    """The results of a statement staged with `state` (from `restaged`): kept variables are
    unbound again."""
    return tuple(value.unbound if isinstance(value, Kept) and value is before else value
                 for value, before in zip(results, state))


def can_carry(before, after) -> bool:
    """True when a slot that is the constant `before` may become `after` by carrying its index."""
    return is_constant(before) and (is_constant(after) or isinstance(after, StagedConstant))


def held(state, kinds, constant_kind) -> bool:
    """True when a slot of `state` the statement would leave as it is holds a constant."""
    return any(k == constant_kind and is_constant(v) for v, k in zip(state, kinds))


def carry_changed(state, kinds, constant_kind, names, outputs, like):
    """`state` with each constant slot that some body's `outputs` change carried (a new tuple),
    or `state` itself when no body changes one."""
    changed = [slot for slot, (value, kind) in enumerate(zip(state, kinds))
               if kind == constant_kind and is_constant(value)
               and any(can_carry(value, out[slot]) and out[slot] is not value
                       for out in outputs)]
    for slot in changed:
        state = carry_slot(state, slot, names[slot], like)
    return state


def carry_slot(state, slot: int, name: str, like):
    """`state` with the constant at `slot` made a StagedConstant, which the statement carries
    (an unbound slot gets a placeholder that every body must replace)."""
    state = list(state)
    value = state[slot]
    if is_constant(value):
        state[slot] = staged(value, name, like)
    else:
        device = like.device if isinstance(like, torch.Tensor) else None
        state[slot] = StagedConstant(torch.zeros((), dtype=torch.int64, device=device), name,
                                     _location())
    return tuple(state)


def refuse_unbound_under_dynamo(name: str, statement: str):
    """Under dynamo a branch's constant for a variable with no value before the statement
    cannot be told apart from a tensor after it (dynamo's cond outputs tensors only)."""
    if name == "<value>":  # a conditional expression's value (`"a" if c else "b"`)
        raise StagingError(
            statement,
            "a conditional expression on a tensor chooses a Python constant (a str, a "
            "number): a str cannot be chosen by a tensor, and under torch.compile no Python "
            "constant can",
            "Compute the result for each choice and select it with torch.where "
            "(`torch.where(c, table['a'] * x, table['b'] * x)`), or use a tensor `if` "
            "statement with the whole use of the value in each branch")
    raise StagingError(
        statement,
        f"'{name}' has no value before the statement and becomes a Python constant in a "
        "branch; under torch.compile such a constant needs a value to start from",
        f"Assign '{name}' a constant (e.g. None) before the {statement}")


def index_of(value):
    """Under dynamo, a StagedConstant's index tensor (dynamo's torch.cond takes tensors, not
    other pytree nodes, as outputs); `value` itself otherwise (make_fx's cond keeps the
    structure of the true branch's outputs, see tracers/make_fx.py)."""
    if isinstance(value, StagedConstant) and torch.compiler.is_dynamo_compiling():
        return value.index
    return value


def like(before, out):
    """`out`, an operator's output for a slot that was `before`: a StagedConstant again when
    `before` was one."""
    if isinstance(before, StagedConstant) and not isinstance(out, StagedConstant):
        return StagedConstant(out, before.name, before.where)
    return out


def _concrete(index) -> bool:
    from ..values import is_staged

    return isinstance(index, torch.Tensor) and not is_staged(index)


def _flatten(value: StagedConstant):
    if (torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling()
            and not _in_staging() and not _flattened_by_the_runtime()):
        # The exported program would output the bare index, meaningless in another process.
        raise StagingError.at(
            value.where, "if statement or loop",
            f"'{value.name}' is a Python constant chosen by tensor values, and it leaves the "
            "exported program, which can only output tensors",
            f"Return a number or a tensor (e.g. a status code) instead of '{value.name}', or "
            "return it from an autoconv Function, whose graph maps the choice back to the "
            "constant")
    if _concrete(value.index):
        # One torch.compile returned: its constant, as the plain function returns.
        return [value.value], _CONCRETE
    return [value.index], _Info(value.name, value.where, value.kind)


_PYTREE_FILE = os.path.abspath(pytree.__file__)
_RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _flattened_by_the_runtime() -> bool:
    """Whether autoconv's runtime flattens the constant for its own bookkeeping (the state of
    a Python loop's later staged `if`, which holds the constant an earlier iteration chose):
    that is no output of the program. Only torch's flattening of what the program returns is
    refused (torchmin's l-bfgs, tester 2026-12-02: its `msg`, chosen in an unrolled loop's
    first iterations, refused at the next `if` where only the result's `.x` is returned)."""
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename) == _PYTREE_FILE:
        frame = frame.f_back
    return frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _RUNTIME_DIR)


def _in_staging() -> bool:
    from .torch import in_staged_body

    return in_staged_body()


def _unflatten(children, context):
    (index,) = children
    if context is _CONCRETE:
        return index
    if _concrete(index):
        # A graph's output: the constant the function returned.
        return lookup(int(index))
    return StagedConstant(index, context.name, context.where, context.kind)


_CONCRETE = "constant"


class _Info:
    """A StagedConstant's (or StagedOptional's) name and origin, for messages only: equal to
    any other, so that branches that set the value in different places give one pytree
    structure. `kind` is the constant's; None for an optional."""

    def __init__(self, name, where, kind):
        self.name, self.where, self.kind = name, where, kind

    def __eq__(self, other):
        return isinstance(other, _Info)

    def __hash__(self):
        return 0

    def __repr__(self) -> str:
        return repr(self.name)


pytree.register_pytree_node(StagedConstant, _flatten, _unflatten)

from . import optionals  # noqa: E402  (it builds on this module)
from .optionals import StagedOptional  # noqa: E402
