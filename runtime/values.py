"""What kind of value an operator got: plain Python, an eager tensor, or a tensor under a tracer."""

from __future__ import annotations

import torch
from torch.fx import _symbolic_trace
from torch.fx.experimental.symbolic_shapes import (
    free_unbacked_symbols,
    guard_or_false,
    guard_or_true,
)

from .identity import type_in
from .staging import registry

__all__ = ["Undefined", "undefined", "probe_row", "eager", "is_staged", "is_symbolic", "is_undefined",
           "known_empty", "to_tensor",
           "as_staged_tensor", "number_dtype", "promote_types", "tensors_dtype", "with_number"]


class Undefined:
    """Stands for a local variable that has no value yet on the path taken.

    Converted code creates one before a control-flow statement that may or may not bind the
    variable, so that the variable can be passed to the statement's body functions. Testing its
    truth raises, as reading the unbound local would have in the original function. (No
    `__getattr__` trick: dynamo must be able to trace this class.)
    """

    def __init__(self, name: str, created: bool = False, checked: bool = False):
        self.name = name
        # True where converted code checks the variable's bound flag at each read that may
        # find it unbound (autoconv/converters/unbound.py): a loop creating it need not check.
        self.checked = checked
        # True while a staged loop's body runs to learn the type of a variable the loop
        # creates: a statement in the body leaving it unbound on a path gives it a placeholder
        # there (runtime/staging/torch.py, NOTE [loop-created variables]).
        self.created = created

    def __repr__(self) -> str:
        return f"Undefined({self.name!r})"

    def __bool__(self):
        raise UnboundLocalError(
            f"local variable '{self.name}' is used before it has a value on this path"
        )


def undefined(name: str, created: bool = False, checked: bool = False) -> Undefined:
    """`Undefined(name, ...)`, as converted code writes it: `ac.Undefined('y')` calls this.

    A function, not the class, because dynamo instantiates a user class only when it knows
    where the class came from, and converted code reaches the runtime through a closure cell
    of the converted function: a function dynamo meets without that path (a staticmethod read
    through `self` of an object made in the compiled code, kornia's `KMeans.fit`) would give
    the class none, and dynamo refused to call it (tester t13 repro 21). A function is inlined
    whatever its path, and the class it reads is this module's global, which has one.
    """
    return Undefined(name, created, checked)


# The variable that holds a function's return value while early returns are lowered into flags.
# It may be unset on paths that are guarded by `do_return`, so staging fills it with a placeholder
# instead of reporting it as defined in one branch only.
RETURN_VALUE = "return value"


def is_undefined(value) -> bool:
    """True for the placeholder of a variable that has no value yet."""
    return type(value) is Undefined


_dispatch_depth = torch._C._len_torch_dispatch_stack
_transform_stack_top = torch._C._functorch.peek_interpreter_stack


def eager() -> bool:
    """True when no tracer and no function transform runs, so that no value can be staged.

    Converted functions then run their original body: plain Python, at plain Python's speed.
    It errs on the side of False (any dispatch mode counts, not only tracers'): the converted
    body is correct in every case. Under dynamo `is_dynamo_compiling()` is a constant True, so
    the check folds away and the traced code is the converted body (torch.export without dynamo
    traces with dispatch modes, which the depth counts; torch.fx.symbolic_trace sets its flag).
    This is the summary of every registered tracer's `is_tracing()` (see
    staging/registry.py), kept to a few reads because every call of a converted function
    makes it.
    """
    return (not torch.compiler.is_dynamo_compiling() and _dispatch_depth() == 0
            and _transform_stack_top() is None and not _symbolic_trace._is_fx_tracing_flag
            and not (_third_party and _third_party_tracing()))


_third_party = registry.third_party  # the list itself: one lookup less on the hot path


def _third_party_tracing() -> bool:
    return any(tracer.is_tracing() for tracer in _third_party)


def is_staged(value) -> bool:
    """True when `value`'s contents are unknown until a graph runs: some tracer owns it.

    That is a tensor seen by a tracer (dynamo, make_fx / torch.export's proxy, fake and
    functional modes), a vmap batch, a torch.fx Proxy, or a value of a registered tracer (see
    staging/registry.py); or a number read from a traced tensor (`t.item()`, `t.tolist()`),
    which the tracer gives as a SymInt / SymFloat / SymBool whose value it does not know (see
    `is_symbolic`). A concrete eager tensor is not staged: its value is at hand, so Python
    control flow on it is both correct and cheaper than a staged operator.
    """
    return registry.is_staged(value) or is_symbolic(value)


_SYMBOLIC = (torch.SymBool, torch.SymInt, torch.SymFloat)
_NUMBERS = (bool, int, float)


def is_symbolic(value) -> bool:
    """True for a SymBool / SymInt / SymFloat whose value only the running graph knows.

    That is one with an unbacked symbol: a number read from a traced tensor (`.item()`). A
    Python `if` on it raises torch's "data-dependent" guard error, so conditions on it are
    staged. A size under `dynamic=True` (a backed symbol) has a hint: a branch on it is taken
    as Python and guarded, so a new path retraces. Dynamo shows symbolic numbers to the code it
    traces as plain bool / int / float, so there the test is whether their truth value is known.
    """
    if torch.compiler.is_dynamo_compiling():
        if not (isinstance(value, _NUMBERS) and type_in(value, _NUMBERS)):
            # (isinstance first: a tensor or another value costs dynamo no call)
            return False
        truth = value if type(value) is bool else value != 0
        # Both give a constant back as it is, and a backed symbol's value (with a guard); only
        # an unknown value takes each one's default.
        return guard_or_false(truth) != guard_or_true(truth)
    return isinstance(value, _SYMBOLIC) and bool(free_unbacked_symbols(value))


def known_empty(size) -> bool:
    """True where a dimension's `size` is known to be 0 while tracing.

    A size only the running graph knows (a grown list's count, `x[x > 0]`) is not asked for its
    value: that raised torch's "Could not guard on data-dependent expression" under dynamo,
    which shows such a size to the code it traces as a plain int. Another tracer's size (an fx
    Proxy) is no number: not known to be 0.
    """
    if torch.compiler.is_dynamo_compiling():
        return guard_or_false(size == 0)
    return (type(size) is int and size == 0) or (
        isinstance(size, torch.SymInt) and guard_or_false(size == 0))


def probe_row(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Row `index` (a 0-d int64 tensor) of `tensor`, or zeros where the index is not a row, as a
    probe reads it.

    A probe's ops stay in torch.export's and torch.compile's graphs as dead code, which runs on
    whatever the data is: a read of the first row of a list or tensor that has no rows when the
    program runs (a loop that made no trip grew it) raised torch's "index out of range". A
    probe that counts a loop's trips gives its values to the graph, so a valid index must read
    the row itself, not zeros (zeros made such a count never end). Hence a zero row past the
    end, and the index clamped to it.
    """
    padded = torch.cat([tensor, tensor.new_zeros((1, *tensor.shape[1:]))])
    size = tensor.shape[0]
    index = torch.as_tensor(index, dtype=torch.int64, device=tensor.device)
    inside = torch.logical_and(index >= 0, index < size)
    index = torch.where(inside, index, torch.full_like(index, size))
    return torch.index_select(padded, 0, index.reshape(1)).squeeze(0)


def as_staged_tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """A staged value as a tensor: a symbolic number becomes a 0-d tensor computed from it."""
    if isinstance(value, torch.Tensor):
        return value
    return to_tensor(value, like)


def number_dtype(value) -> torch.dtype:
    """The dtype of the 0-d tensor that stands for the Python (or symbolic) number `value` in a
    graph: bool for a bool, int64 for an int, float64 for a float (Python's float is a double:
    a float32 stand-in would round `t += 0.1` differently and make a loop on it take another
    number of trips, NOTE [numbers as tensors]), complex128 for a complex."""
    if isinstance(value, (bool, torch.SymBool)):
        return torch.bool
    if isinstance(value, (int, torch.SymInt)):
        return torch.int64
    if isinstance(value, complex):
        return torch.complex128
    return torch.float64


def _category(dtype: torch.dtype) -> int:
    """bool < integer < floating < complex, torch's type categories."""
    if dtype == torch.bool:
        return 0
    if dtype.is_complex:
        return 3
    if dtype.is_floating_point:
        return 2
    return 1


def _promotion_table() -> dict:
    dtypes = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
              torch.complex128)
    return {(a, b): torch.promote_types(a, b) for a in dtypes for b in dtypes}


# `torch.promote_types` is an aten op: asked while torch.export traces (pre-dispatch), it becomes
# a node of the graph, in a cond branch one without a value, which export's verifier rejects
# ("Node.meta promote_types is missing val field"). The runtime reads this table instead.
_PROMOTED = _promotion_table()


def promote_types(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """`torch.promote_types(a, b)`, computed before any tracer runs (see `_PROMOTED`)."""
    found = _PROMOTED.get((a, b))
    return found if found is not None else torch.promote_types(a, b)


def with_number(dtype: torch.dtype, number: torch.dtype) -> torch.dtype:
    """The dtype torch gives a tensor of `dtype` combined with a Python number whose stand-in
    has dtype `number` (`number_dtype`): the number is a 'wrapped number' that only raises the
    result's category (`float32 tensor + 0.5` stays float32, `int tensor + 0.5` is the default
    float dtype), as in Python (NOTE [numbers as tensors])."""
    if _category(number) <= _category(dtype):
        return dtype
    if number.is_complex:
        return promote_types(dtype, torch.complex64 if torch.get_default_dtype()
                             == torch.float32 else torch.complex128)
    if number.is_floating_point:
        return promote_types(dtype, torch.get_default_dtype())
    return promote_types(dtype, torch.int64)


def tensors_dtype(left: torch.dtype, left_dim: int, right: torch.dtype, right_dim: int
                  ) -> torch.dtype:
    """`torch.result_type` of two tensors from their dtypes and dims alone (a 0-d tensor's dtype
    counts only where its category is higher), which dynamo can trace."""
    dims = [d for d, n in ((left, left_dim), (right, right_dim)) if n > 0]
    zeros = [d for d, n in ((left, left_dim), (right, right_dim)) if n == 0]
    return _combine(_promote(dims), _promote(zeros))


def _promote(dtypes):
    return None if not dtypes else dtypes[0] if len(dtypes) == 1 else promote_types(*dtypes)


def _combine(higher, lower):
    """torch's `combine_categories`: the tensors of dimensions' dtype (`higher`) over the 0-d
    tensors' (`lower`), which only counts where its category is higher."""
    if higher is None or lower is None:
        return higher or lower
    if higher.is_complex:
        return higher
    if lower.is_complex:
        return higher.to_complex() if higher.is_floating_point else lower
    if higher.is_floating_point:
        return higher
    if higher == torch.bool or lower.is_floating_point:
        return promote_types(higher, lower)
    return higher


# NOTE [numbers as tensors]
# A Python number that a staged statement carries (or that a graph must hold as a tensor)
# becomes a 0-d tensor of the dtype that keeps its Python meaning: int64 for an int, float64
# for a float (Python's float is a C double), bool for a bool. Where such a number meets a
# tensor on another path of the statement, the slot takes the dtype torch gives `tensor op
# number` (`with_number`: the number only raises the category), so mixing a carried float with
# a user's float32 tensors still gives float32, as in Python.


def to_tensor(value, like: torch.Tensor | None = None, dtype: torch.dtype | None = None
              ) -> torch.Tensor:
    """Promote a Python number to a 0-d tensor so it can be staged state.

    bool stays bool, int becomes int64 (torch 2.13's Inductor cannot carry Python ints through a
    while_loop), float becomes float64 (NOTE [numbers as tensors]); `dtype` overrides that.
    Placed on `like`'s device when given.
    """
    if isinstance(value, torch.Tensor) or (not isinstance(value, (int, float))
                                           and registry.is_staged(value)):
        return value  # a tensor, or another tracer's value (an fx Proxy)
    device = like.device if like is not None else None
    if dtype is None:
        dtype = number_dtype(value)
    # torch.full, not torch.tensor: a symbolic size (a loop over a tensor whose length is left
    # free) stays symbolic instead of being specialized through a float, and under dynamo a
    # torch.tensor(0) carried by a while_loop read back a wrong .item().
    return torch.full((), value, dtype=dtype, device=device)
