"""A variable that is None on some paths of a staged statement and a tensor or a number on
others: carried as an "is None" flag and a value.

NOTE [None or a value under tensor control flow]
Adaptive solvers keep a value of the previous step that does not exist before the first one:

    prev_error_ratio = None                      # torchsde's adaptive sdeint
    while curr_t < out_t:
        ...                                      # `if prev is None: prev = ratio` in a helper
        if step_size < self.dt_min:
            prev_error_ratio = None

A torch.cond or torch.while_loop output has one kind of value on every path, and None is no
tensor. So such a variable is carried as a `StagedOptional`: a pytree of two leaves, `missing`
(a 0-d bool tensor, True where Python holds None) and `value` (the value, or a placeholder of
its dtype and shape where it is None: a Python zero for a number, zeros for a tensor). AutoGraph
does the like for a loop variable undefined before the loop (its `Undefined` placeholder and
a `UndefinedReturnValue` flag), but refuses None meeting a tensor; here None is one more value.

How a statement comes to carry one: a body's output that is None where the slot held a tensor
or a number before the statement (or the reverse: a value where it held None, a loop carrying
`prev = None` into its body) ends the operator's trace with `Optioned`, a `constants.Retabled`
that the engine takes as its own (`retable` here), and the statement is staged again with the
slot a StagedOptional; each body's output for it is then made one (`output_of`).

Reading one back: `x is None` / `x is not None` (converted code's `ac.is_` / `ac.is_not`)
give the flag, a 0-d bool tensor that a converted `if` stages; that `if` narrows the variable
as Python's reader would (NOTE [an if on `is None` narrows the variable]). A graph output that
is one becomes None or the value when the graph runs (the pytree node unflattens a concrete
flag). Every other use needs Python to know which it is (arithmetic, an attribute, its truth
value): at the top level of the function the graph is specialised on the flag (a guard, as for
a StagedConstant), and in a staged body, where it cannot be, it is refused at the user's line,
with the `is None` test as the fix. A torch.export program
outputs tensors only: returning one from exported code is refused, as a StagedConstant is.
torch.compile is not covered: its operators cannot be staged again after a body's output
(dynamo refuses the body's None where a tensor came in, as before).
"""

from __future__ import annotations

import operator

import torch
from torch.fx.experimental.symbolic_shapes import (GuardOnDataDependentSymNode,
                                                   free_unbacked_symbols)
from torch.utils import _pytree as pytree

from .. import augmented
from ..values import is_undefined
from ..errors import StagingError, user_location
from . import constants

__all__ = ["StagedOptional", "Optioned", "is_optional", "output_of", "retable", "is_",
           "is_not", "narrowed", "narrowed_operands", "combined"]


class StagedOptional:
    """None where `missing` is true when the graph runs, else `value`. `name` is the variable
    and `where` the (file, line) of the statement that made it one, for messages."""

    def __init__(self, missing, value, name: str = "a value", where=None):
        self.missing = missing
        self.value = value
        self.name = name
        self.where = where

    def __repr__(self) -> str:
        return f"StagedOptional({self.name!r})"

    def _needed(self, use: str):
        """None or the value, for a `use` that needs to know which. While tracing at the top
        level of the function the graph is specialised on the flag (NOTE [specialisation] in
        specialize.py: a guard, and a trace of its own for the inputs that take the other
        path); in a staged body, or under torch.compile, that is refused at the user's line."""
        if constants._concrete(self.missing):
            return None if bool(self.missing) else self.value
        error = self._refusal(use)
        if torch.compiler.is_dynamo_compiling() or not isinstance(self.missing, torch.Tensor):
            raise error
        from . import context, specialize

        probing = context.probing()
        try:
            missing = specialize.specialize(self.missing, "if statement or loop", error,
                                            context.in_staged_body() or probing, probing)
        except GuardOnDataDependentSymNode:
            raise error from None
        return None if missing else self.value

    def _refusal(self, use: str) -> StagingError:
        at = f" at {self.where[0]}:{self.where[1]}" if self.where else ""
        return OptionalValueError(
            "if statement or loop",
            f"'{self.name}' is None on some paths of a tensor condition{at} and a value on "
            f"others, and {use} needs to know which, which is only known when the graph runs",
            f"Test it first (`if {self.name} is None:` / `if {self.name} is not None:`, a "
            f"staged test) and use it in the branch where it holds its value, or give "
            f"'{self.name}' a value instead of None with a flag tensor saying that it has none")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._needed(f"reading its attribute `.{name}`"), name)

    def __bool__(self):
        return bool(self._needed("its truth value"))

    def __iter__(self):
        return iter(self._needed("iterating over it"))

    def __len__(self):
        return len(self._needed("len()"))

    def __getitem__(self, key):
        return self._needed("indexing it")[key]

    def __call__(self, *args, **kwargs):
        return self._needed("calling it")(*args, **kwargs)

    def __float__(self):
        return float(self._needed("float()"))

    def __int__(self):
        return int(self._needed("int()"))

    def __index__(self):
        return operator.index(self._needed("using it as an index"))

    def __format__(self, spec):
        return format(self._needed("formatting it"), spec)

    def __str__(self):
        return str(self._needed("str()"))

    # (the runtime keys its records by identity; a user's dict key of one is rare)
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self._needed("`==`") == other

    def __ne__(self, other):
        return self._needed("`!=`") != other

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", func)
        args, kwargs = pytree.tree_map_only(
            StagedOptional, lambda v: v._needed(f"torch's `{name}`"), (args, kwargs or {}),
            is_leaf=is_optional)
        return func(*args, **kwargs)


# (a comparison of a tensor on the left with one on the right reaches it reflected: torch
# returns NotImplemented, and Python asks the optional's `<` of `s > best`; the message names
# both spellings, since which the user wrote is not known here)
_REFLECTED_COMPARISON = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _arithmetic(name: str, symbol: str, reflected: bool):
    use = f"`{symbol}`"
    if symbol in _REFLECTED_COMPARISON:
        use = (f"a comparison (`{symbol}`, or `{_REFLECTED_COMPARISON[symbol]}` with it on "
               "the right)")

    def needed(self, *other):
        value = self._needed(use)
        if not other:
            return getattr(operator, name)(value)
        return getattr(operator, name)(*((other[0], value) if reflected else (value, other[0])))
    return needed


for _name, _symbol in [("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"),
                       ("floordiv", "//"), ("mod", "%"), ("pow", "**"), ("matmul", "@"),
                       ("and_", "&"), ("or_", "|"), ("xor", "^"), ("lt", "<"), ("le", "<="),
                       ("gt", ">"), ("ge", ">="), ("neg", "-"), ("pos", "+"), ("abs", "abs()")]:
    _dunder = _name.rstrip("_")
    setattr(StagedOptional, f"__{_dunder}__", _arithmetic(_name, _symbol, False))
    if _name not in ("lt", "le", "gt", "ge", "neg", "pos", "abs"):
        setattr(StagedOptional, f"__r{_dunder}__", _arithmetic(_name, _symbol, True))


class OptionalValueError(StagingError, AttributeError):
    """A use of a StagedOptional that needs its value (an AttributeError too, so that
    `hasattr` and `getattr(x, name, default)` see no attribute)."""


def is_optional(value) -> bool:
    return type(value) is StagedOptional


# --- made by the engine ------------------------------------------------------------------------

class Optioned(constants.Retabled):
    """A body gave None for `state[slot]`, a value before the statement, or a value where it
    held None: the statement is staged again carrying the slot as a StagedOptional whose
    value is like `like` (a number, or a tensor's (shape, dtype, device))."""

    # (kept as a restaging verdict without the statement, given again where it is raised
    # again: NOTE [retabled slots kept] in restaging.py)
    unkept = ("state",)

    def __init__(self, state, slot: int, like):
        constants.Retabled.__init__(self, state, slot)
        self.like = like


def optioned(state, slot: int, before, out):
    """The `Optioned` for a body's output `out` of a slot that was `before`, where one of them
    is None (or a StagedOptional) and the other a tensor or a number; None otherwise."""
    from .context import raised_in_watched_bodies

    if raised_in_watched_bodies():  # (the None of a helper that raised: none Python gives)
        return None
    value = (before.value if is_optional(before) else out.value if is_optional(out)
             else out if before is None else before)
    if value is None or not _is_value(value):
        return None
    if isinstance(value, torch.Tensor) and not augmented.is_stand_in(value):
        like = (tuple(value.shape), value.dtype, value.device)
    else:
        like = _zero(value)
    return Optioned(state, slot, like)


def _is_value(value) -> bool:
    return isinstance(value, (torch.Tensor, bool, int, float, torch.SymInt, torch.SymFloat,
                              torch.SymBool))


def _zero(number):
    """The placeholder of a number (or a number's stand-in): a Python zero of its kind."""
    kind = augmented.kind_of(number)
    return {"bool": False, "int": 0, "float": 0.0, "complex": 0j}.get(kind, 0.0)


def retable(statement, error: Optioned) -> None:
    """Carry the slot `error` names in `statement` (a staging Statement) as a StagedOptional."""
    slot = error.slot
    before = statement.state[slot]
    name = statement.names[slot]
    if is_optional(before):
        return
    where = _location()
    if before is None or is_undefined(before):  # (unbound: every branch binds it)
        statement.state[slot] = StagedOptional(_flag(True, statement.like),
                                               _placeholder(error.like, name, where), name,
                                               where)
    else:
        statement.state[slot] = StagedOptional(_flag(False, statement.like), before, name,
                                               where)


def _flag(missing: bool, like):
    device = like.device if isinstance(like, torch.Tensor) else None
    return torch.full((), missing, dtype=torch.bool, device=device)


def _placeholder(like, name: str, where):
    if not isinstance(like, tuple):
        return like
    shape, dtype, device = like
    try:
        return torch.zeros(shape, dtype=dtype, device=device)
    except RuntimeError as failed:
        # A size the body computed from the data (`~mask` of `r[m]`, botorch's nested
        # case_dispatcher) has no meaning where the placeholder is made: torch's own "u51 is not
        # tracked with proxy" says nothing of the user's code.
        if not free_unbacked_symbols(shape):
            raise
        at = f" at {where[0]}:{where[1]}" if where else ""
        raise OptionalValueError(
            "if statement or loop",
            f"'{name}' is None before a tensor condition{at} and, on some paths, a tensor of "
            f"shape {tuple(shape)}, a size known only when the graph runs (a boolean mask's "
            "count, `nonzero`) that a staged body computed; the staged statement carries one "
            "value of one shape on every path, and autoconv cannot make one of that size here "
            "for the paths where it is None",
            f"Give '{name}' a tensor of that size before the statement (with a flag tensor "
            "saying that it has no value yet), or compute it outside the tensor-dependent "
            "statement") from failed


def _location():
    if torch.compiler.is_dynamo_compiling():
        return None
    return user_location()


def output_of(before: StagedOptional, out):
    """A body's output `out` for a slot carried as `before`: a StagedOptional of the same
    leaves. None where `out` is neither None, a StagedOptional nor a value (the engine
    reports it as any other)."""
    if is_optional(out):
        return out
    value = before.value
    if out is None:
        placeholder = (_zero(value) if not isinstance(value, torch.Tensor)
                       or augmented.is_stand_in(value) else torch.zeros_like(value))
        return StagedOptional(_flag(True, before.missing), placeholder, before.name,
                              before.where)
    if not _is_value(out):
        return None
    return StagedOptional(_flag(False, before.missing), out, before.name, before.where)


# --- read back ---------------------------------------------------------------------------------

# NOTE [an if on `is None` narrows the variable]
# `if prev is None: prev = ratio` then `factor = ratio / prev`: Python's reader knows that
# `prev` holds its value after the `if`, on both paths. The test `prev is None` of a
# StagedOptional is its flag, marked with the variable it tests (`_tests`); a converted `if`
# or conditional expression on a test so marked (operators.if_stmt, operators.if_exp: `mask =
# pred if active is None else pred & active`) stages its branches with the variable None in the
# branch where the test says so and its value in the other (`narrowed`), so that the
# branches' outputs are plain values where both bind one, and a StagedOptional only where a
# branch leaves it None. `not` keeps the mark, the other way round (`negated`). A test
# combined with others keeps it on one side (NOTE [a combined test narrows one branch]).
# The right side of such an `and` / `or` is narrowed all the same (`narrowed_operands`):
# Python evaluates the right side of `best is None or s > best` only where `best` holds its
# value, so it reads the value there. The argmax idiom (`if best is None or s > best: best =
# s` in a loop over a tensor) was refused at its `>` (tester51). Where the graph evaluates
# that side beside the left one (NOTE [a comparison beside a traced test] in
# runtime/operators.py) it reads the placeholder where the variable is None, and the left
# side's truth decides the test there: the placeholder's comparison is never read.

# NOTE [a combined test narrows one branch]
# `if best is not None and s > best: gain = s - best` reads `best` in the true branch, where
# Python's reader knows it holds its value: the test is true only where `best is not None` was.
# Its false branch knows nothing (`best` None, or `s <= best`), nor does the true branch of
# `if best is None or s > best:` (its false branch knows `best` holds its value). So the
# result of an `and` whose left side is a `x is not None` test (or a test marked so), or of an
# `or` whose left side is a `x is None` test, is marked one-sided (`combined`): the `if` on it
# gives the branch its truth decides `x`'s value, and the other the StagedOptional as before
# (`narrowed`). `not` flips the side. Such a body was refused at its first use of `x`
# (tester51's open item; OptionalValueError "needs to know which"). A side the mark does not
# decide is not narrowed: the right side of `(x is not None and c) or d` reads `x` where the
# left is false, where it may be None.

def combined(left, result, none_when_true: bool, inputs=(), right=None):
    """`result`, the value (or truth) of `left and right(*inputs)` (`none_when_true=False`)
    or `left or right(*inputs)` (True), marked one-sided where `left` tests a StagedOptional,
    so that the branch where the result's truth decides it narrows it (NOTE [a combined test
    narrows one branch]): `and` is truthy only where `left` was, `or` falsy only where `left`
    was. `right`: the right side's mark where it was read (`reading`), whose optionals tested
    the same way are narrowed too (NOTE [two optionals in one combined test]). Only a 0-d
    tensor the operator made is marked, never one of the user's."""
    if torch.compiler.is_dynamo_compiling():  # (no StagedOptional there; nor a getattr)
        return result
    marked = _mark_of(left)
    if (marked is None or marked[1] is not none_when_true or not isinstance(result, torch.Tensor)
            or result.dim() != 0 or any(result is v for v in (left, *inputs))):
        return result
    tested = _tested(marked)
    if right is not None and right[1] is none_when_true:
        tested += tuple(o for o in right[0] if not any(o is t for t in tested))
    return _marked_test(result, tested if len(tested) > 1 else tested[0], none_when_true,
                        one_sided=True)


# NOTE [two optionals in one combined test]
# `if a is not None and b is not None and a > b: d = a - b`, both None on some paths: the
# true branch knows both hold their values, the right side `a > b` is read only where both do.
# The mark of an `and` whose sides are both `is not None` tests (or an `or` of `is None`
# tests) names every optional its sides test (a tuple), and each is narrowed where the mark
# decides: in the right side of a further `and` / `or`, and in the branch of the `if`.


def reading(left, right, inputs):
    """(`right`, or a function calling it that keeps the mark of its value, and a function
    giving that mark or None): where `left` is a test of a StagedOptional, the right side's
    own mark is read, its optionals those of `inputs` (the right side may run on copies: a
    branch of a cond), NOTE [two optionals in one combined test]; elsewhere `right` as it
    is."""
    if torch.compiler.is_dynamo_compiling() or _mark_of(left) is None:
        return right, _nothing
    marks = []

    def kept(*given):
        value = right(*given)
        marked = _mark_of(value)
        if marked is not None:
            # (each optional as the caller's inputs hold it, by its place among them)
            outer = tuple(next((inputs[i] for i, g in enumerate(given[-len(inputs):])
                                if inputs and g is o and i < len(inputs)), None)
                          for o in _tested(marked))
            if all(o is not None and is_optional(o) for o in outer):
                marks.append((outer, marked[1]))
                return value
        marks.append(None)
        return value

    return kept, lambda: marks[-1] if marks else None


def _nothing():
    return None


def _tested(marked) -> tuple:
    """The optionals a test's mark names."""
    return marked[0] if type(marked[0]) is tuple else (marked[0],)


def is_(left, right):
    """`left is right` where one side is a StagedOptional: against None, its flag (marked for
    `narrowed`); against anything else, refused."""
    optional, other = (left, right) if is_optional(left) else (right, left)
    if other is not None:
        raise optional._refusal("`is` with a value other than None")
    return _marked_test(optional.missing.clone(), optional, True)


def is_not(left, right):
    """`left is not right`; see `is_`."""
    optional, other = (left, right) if is_optional(left) else (right, left)
    if other is not None:
        raise optional._refusal("`is not` with a value other than None")
    return _marked_test(torch.logical_not(optional.missing), optional, False)


def _marked_test(test, optional, none_when_true: bool, one_sided: bool = False):
    # (an attribute of the test tensor: it lives as long as the test, and dynamo, which
    # refuses such writes, never gets here: see the module's NOTE)
    # (`one_sided`: only where the test is `not none_when_true` is the variable known, to hold
    # its value: NOTE [a combined test narrows one branch])
    test._autoconv_optional_test = (optional, none_when_true, one_sided)
    return test


def _mark_of(test):
    # Only a tensor can carry the mark: any attribute of a torch.fx Proxy (symbolic_trace's
    # value) is a new graph node, never None, and the graph would read it from the real tensor.
    if not isinstance(test, torch.Tensor):
        return None
    return getattr(test, "_autoconv_optional_test", None)


def negated(test, negation):
    """`negation`, `not test`, marked as a test of the StagedOptional `test` tests, if any."""
    if torch.compiler.is_dynamo_compiling():  # (no StagedOptional there; nor a getattr)
        return negation
    marked = _mark_of(test)
    if marked is None:
        return negation
    return _marked_test(negation, marked[0], not marked[1], marked[2])


def narrowed_operands(left, inputs, none_when_true: bool):
    """`inputs` of the right side of `left or right(*inputs)` (`none_when_true=True`) or `left
    and right(*inputs)` (False) where `left` is a `x is None` (`x is not None`) test of a
    StagedOptional among them: with its value in its places, since Python evaluates that side
    only where `x` holds one (NOTE [an if on `is None` narrows the variable])."""
    if torch.compiler.is_dynamo_compiling():  # (no StagedOptional there; nor a getattr)
        return inputs
    marked = _mark_of(left)
    if marked is None or marked[1] is not none_when_true:
        return inputs
    tested = _tested(marked)
    return tuple(next((o.value for o in tested if v is o), v) for v in inputs)


def narrowed(cond, state, inputs):
    """None, or `(narrow, state, inputs)` for an `if` on `cond` that tests a StagedOptional of
    its state or inputs for None: the state and inputs with its value in its places, and
    `narrow(if_true, if_false)` the branches, the one where it is None given None there."""
    if torch.compiler.is_dynamo_compiling():  # (no StagedOptional there; nor a getattr)
        return None
    marked = _mark_of(cond)
    if marked is None:
        return None
    optional, none_when_true, one_sided = marked
    tested = _tested(marked)
    places = [i for i, v in enumerate(tuple(state) + tuple(inputs))
              if any(v is o for o in tested)]
    if not places:
        return None
    count = len(state)
    if one_sided:  # NOTE [a combined test narrows one branch]
        def value_in(fn):
            def run(*args):
                args = list(args)
                for i in places:
                    args[i] = args[i].value if is_optional(args[i]) else args[i]
                return fn(*args)

            run.__wrapped__ = fn
            return run

        def narrow_one(if_true, if_false):
            return (if_true, value_in(if_false)) if none_when_true else (value_in(if_true),
                                                                         if_false)
        return narrow_one, state, inputs
    state = tuple(optional.value if i in places else v for i, v in enumerate(state))
    inputs = tuple(optional.value if count + i in places else v for i, v in enumerate(inputs))

    def none_in(fn):
        def run(*args):
            args = list(args)
            for i in places:
                args[i] = None
            return fn(*args)

        run.__wrapped__ = fn
        return run

    def narrow(if_true, if_false):
        return (none_in(if_true), if_false) if none_when_true else (if_true, none_in(if_false))

    return narrow, state, inputs


# --- as a pytree -------------------------------------------------------------------------------

def _flatten(value: StagedOptional):
    if (torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling()
            and not constants._in_staging() and not constants._flattened_by_the_runtime()):
        # The exported program would output a flag and a placeholder, not None.
        raise StagingError.at(
            value.where, "if statement or loop",
            f"'{value.name}' is None on some paths of a tensor condition and a value on "
            "others, and it leaves the exported program, which can only output tensors",
            f"Return '{value.name}' with a flag tensor instead of None (`torch.tensor(True), "
            f"x` and `torch.tensor(False), torch.zeros_like(x)`), or return it from an "
            "autoconv Function, whose graph gives None back")
    return [value.missing, value.value], constants._Info(value.name, value.where, None)


def _unflatten(children, context):
    missing, value = children
    if constants._concrete(missing):
        # A graph's output: what the function returned.
        return None if bool(missing) else value
    return StagedOptional(missing, value, context.name, context.where)


pytree.register_pytree_node(StagedOptional, _flatten, _unflatten)
