"""Indexing with traced integer tensors.

`x[i]` with a 0-d integer tensor `i` asks torch for `i`'s value (`__index__`), which a tracer
cannot give. These operators select with advanced indexing / index_put_ instead, keeping
Python's meaning (NOTE [traced integer indices]); every other subscript runs as plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Set as AbstractSet

import torch

from .augmented import (PYTHON_BOOL, collecting, graph_check, is_stand_in, kinds_as_index,
                        kinds_in, mark, mark_kinds, number_kinds)
from .errors import StagingError
from .lists import StagedList
from . import staged_dicts
from .staged_dicts import StagedDict
from . import staged_aliases
from .staging import context
from .staging.constants import StagedConstant
from .identity import type_in
from .values import is_staged, is_symbolic, number_dtype, promote_types, to_tensor, with_number

__all__ = ["getitem", "setitem", "slice_", "check_key", "in_"]


class TracedSlice:
    """`start:stop:step` with a traced bound. Not a builtin slice: torch.compile's dynamo reads
    a slice's bounds as Python ints when it builds one, guarding on their values (a recompile
    per length)."""

    __slots__ = ("start", "stop", "step")

    def __init__(self, start, stop, step):
        self.start, self.stop, self.step = start, stop, step

    def as_slice(self) -> slice:
        return slice(self.start, self.stop, self.step)


def slice_(start, stop, step):
    """`slice(start, stop, step)` of a subscript in converted code; a TracedSlice when a bound
    is a traced tensor."""
    if any(is_staged(b) for b in (start, stop, step)):
        return TracedSlice(start, stop, step)
    return slice(start, stop, step)


def _is_index(key) -> bool:
    return (
        isinstance(key, torch.Tensor)
        and key.dim() == 0
        and not key.is_floating_point()
        and key.dtype != torch.bool
        and is_staged(key)
    )


def _symbolic_int(part) -> bool:
    """A symbolic int: a SymInt, or under dynamo an int whose value only the graph knows."""
    if isinstance(part, torch.SymInt):
        return True
    return (torch.compiler.is_dynamo_compiling() and type(part) is int
            and is_symbolic(part))


def _as_index(part):
    if _symbolic_int(part):
        return torch.scalar_tensor(part, dtype=torch.int64)
    return part


def _shown_as_int(target, key) -> bool:
    """Whether `key` is a number read from a tensor (`t.item()`, `int(t.argmax())`) indexing a
    Python list or tuple under dynamo, which shows it to the code it traces as a plain int.

    Python's `target[key]` asked torch for its value ("Could not extract specialized integer
    from data-dependent expression"); it indexes as the 0-d tensor it stands for instead, as
    the SymInt make_fx gives does (the Viterbi backtrace `best = bptrs[best]`).
    """
    return (torch.compiler.is_dynamo_compiling() and type_in(target, (list, tuple))
            and is_symbolic(key))


def _plain_slices(key):
    if isinstance(key, TracedSlice):
        return key.as_slice()
    if type(key) is tuple and any(isinstance(p, TracedSlice) for p in key):
        return tuple(p.as_slice() if isinstance(p, TracedSlice) else p for p in key)
    return key


def traced_slice_refusal(text: str | None = None) -> tuple[str, str]:
    """(problem, fix) for a tensor sliced by a traced bound (`x[:n]` with `n = (x > 0).sum()`,
    `A[i, :i]` in a loop over a tensor's range); `text` is the subscript's source where known.
    The slice's size is a value only the graph's run knows, and a traced tensor has sizes
    known while tracing (tester t14 repros 3 and 4)."""
    shown = f" (`{text}`)" if text else ""
    return (f"slices a tensor by a number the graph computes{shown}: autoconv traces slices of "
            "sizes known while tracing, and this bound is a traced tensor's value (a count of a "
            "tensor's values, a loop's index over a tensor's range)",
            "For a window of a fixed width at a traced start, index with a tensor "
            "(`x[i + torch.arange(2)]` for `x[i:i + 2]`); for a part whose size depends on "
            "values, mask instead (`keep = torch.arange(x.shape[0]) < n`, then "
            "`(x * keep).sum()` for `x[:n].sum()`)")


def _refuse_traced_slice(key) -> None:
    """Under dynamo, refuse a tensor sliced by a traced bound before torch is asked for the
    bound's value: dynamo turned torch's "Could not guard on data-dependent expression", which
    autoconv's replay and torch.export rewrite at the user's line with the subscript's source
    (autoconv/tracebacks.py), into its own UserError naming autoconv's line (tester19's Jacobi,
    `torch.dot(A[i, :i], x[:i])`)."""
    if not (torch.compiler.is_dynamo_compiling()
            and any(isinstance(p, TracedSlice) for p in _parts(key))):
        return
    from .errors import StagingError

    problem, fix = traced_slice_refusal()
    raise StagingError("subscript", "the line " + problem, fix)


# NOTE [indices of a probe's reads]
# A probe runs a body ahead of its staged statement, outside the condition that guards it, and
# some of its ops stay in the graph and run on every call: those computing a number read with
# `.item()`, whose symbol the tracer may hand to later ops (NOTE [dead ops of probes] in
# staging/dead_probes.py). `while i < x.shape[0] and float(x[i]) >= 0:` under torch.compile
# read `x[3]` of a 3-row `x` there, where Python's `and` stops at the left side (an IndexError
# from the graph). A probe's traced index is therefore clamped into the dimension: no value a
# probe reads is one the statement uses, and where the index is in range it is the same read.
def _normalized(index, size, probing: bool = False):
    if probing:
        index = index.clamp(-size, size - 1)
    return torch.where(index < 0, index + size, index).reshape(1)


def _parts(key):
    return key if type(key) is tuple else (key,)


def _staged_slice(part) -> bool:
    return isinstance(part, TracedSlice)


def getitem(target, key):
    """`target[key]`.

    Raises:
        StagingError: a traced integer index next to a tensor or list index.
        StagingError: a Python list or tuple indexed by a traced tensor whose items are not
            tensors of one shape, or sliced with a traced step.
        StagingError: a dict (a Mapping) looked up by a traced key.
    """
    if isinstance(key, torch.Tensor) or type(key) is tuple:
        # (NOTE [numbers of two kinds] in runtime/augmented.py)
        kinds_as_index(key if type(key) is tuple else (key,), "indexing with it")
    if isinstance(target, Mapping) and _traced_mapping_key(target, key):
        raise _traced_key(target, key, "looked up by")
    if type(key) is int:
        if _checked_row(target):
            return _row_or_failure(target, key)
        if not _shown_as_int(target, key):
            return target[key]
        key = torch.scalar_tensor(key, dtype=torch.int64)
    if isinstance(target, (torch.Tensor, list, tuple)) and (isinstance(key, torch.SymInt) or (
            type(key) is tuple and any(_symbolic_int(p) for p in key))):
        # A symbolic int (`t.item()` under a tracer) indexes as the 0-d tensor it stands for
        # (under dynamo, which shows it as an int, too: `TABLE[a, b]` of two `.item()`s gave
        # torch's "only integers ... are valid indices (got SymInt)", tester21 s13).
        key = tuple(_as_index(p) for p in key) if type(key) is tuple else _as_index(key)
    if type_in(target, (list, tuple)) and (
            _is_index(key) or _staged_slice(key) or isinstance(key, torch.SymInt)):
        return _sequence_item(target, key)
    if isinstance(target, Mapping) and type(key).__name__ == "StagedConstant":
        # `table[key]` with `key = "a" if c else "b"`: the lookup compares the key with `==`,
        # which for a constant chosen by a tensor is a staged comparison no dict can use. Its
        # value, where the graph can be specialised on it, else a StagingError at this line.
        return target[key._needed("indexing a dict with it")]
    if _zero_dim_mask(target, key):  # (NOTE [a 0-d mask])
        return target.unsqueeze(0)[key.unsqueeze(0)]
    # Anything else (a tensor) is sliced as Python would.
    if isinstance(target, torch.Tensor):
        _refuse_traced_slice(key)
    if type(target) is StagedList and context.probing():
        # A probe writes a list of its own: the StagedList it runs on may be the statement's
        # (the converted code rebinds the name to what this returns).
        target = target.with_flags(reserved=target.reserved)
    key = _plain_slices(key)
    if not isinstance(target, torch.Tensor):
        return target[key]
    if not any(_is_index(p) for p in _parts(key)):
        return target[key]
    view, dims, indices = _indexed_view(target, key, "read")
    row = view.movedim(dims, tuple(range(len(dims))))[indices].squeeze(0)
    # (a view of `target` in Python: NOTE [staged values that alias in Python])
    staged_aliases.register_row(row, target, key)
    return row


# NOTE [a 0-d mask]
# `x[m]` with `m` a 0-d bool tensor (torchmetrics' `gain[all_irrelevant] = 0` and r2's
# `raw_scores[cond] = 1 - rss[cond] / tss[cond]` on one sample's or one output's score) is
# `x` with a new leading dimension of 1 or 0 rows. torch 2.13 traces it as an index_put
# whose row count `u0` it must compare with 1 (`Eq(u0, 1)`: GuardOnDataDependentSymNode in
# autoconv's trace and torch.export, dynamo's UserError under torch.compile, tester45 s02),
# while the same mask with the dimension made explicit, `x.unsqueeze(0)[m.unsqueeze(0)]`,
# traces in every mode: the same rows read, and written through the view into `x`.
def _zero_dim_mask(target, key) -> bool:
    return (isinstance(target, torch.Tensor) and isinstance(key, torch.Tensor)
            and key.dtype == torch.bool and key.dim() == 0)


# NOTE [a row of a tensor of data-dependent length in a try]
# `try: first = x[x > 0][0].item() except IndexError: first = -1.0` (tester22 s11): the rows
# of `x[x > 0]` are only known when the graph runs, and torch's read of row 0 is an assertion
# on that length (export, compile: "Runtime assertion failed for expression u0 >= 1", no user
# line) or an IndexError from the replayed graph, where Python runs the handler. In a `try`
# staged as its failure (NOTE [a try around a value the graph checks] in runtime/fallible.py)
# that catches IndexError, the read is checked as the try's failure instead, and made from the
# rows with one filler row past their end, which no length can fail (the handler's value
# replaces it where the check fails).

def _checked_row(target) -> bool:
    """Whether `target[i]` of an int `i` is the checked read of NOTE [a row of a tensor of
    data-dependent length in a try]."""
    return (isinstance(target, torch.Tensor) and target.dim() > 0
            and is_symbolic(target.shape[0]) and collecting(IndexError))


def _row_or_failure(target, index: int):
    size = target.shape[0]
    length = torch.scalar_tensor(size, dtype=torch.int64, device=target.device)
    valid = length > index if index >= 0 else length >= -index
    graph_check(valid, IndexError,
                f"index {index} is out of bounds for dimension 0 with size {size}")
    padded = torch.cat([target, target.new_zeros((1, *target.shape[1:]))])
    position = torch.where(valid, length + index if index < 0 else
                           torch.full_like(length, index), length)
    return torch.index_select(padded, 0, position.reshape(1)).squeeze(0)


def _sequence_item(items, key):
    """`items[key]` of a Python list or tuple with a traced index or slice bound: the items
    stacked into one tensor, then one row of it, or (a slice) a StagedList of the rows, whose
    length is only known when the graph runs (the same value a list grown under tensor control
    flow is)."""
    from .errors import StagingError
    from .lists import StagedList

    what = "an index" if _is_index(key) else "a slice bound"
    rows = _as_rows(items) if items else None
    if rows is None:
        raise StagingError(
            "subscript", f"a Python {type(items).__name__} is given {what} that is a traced "
            f"tensor, and its items ({_kinds(items)}) are not tensors of one shape and dtype "
            "(or Python numbers next to 0-d tensors), so the graph cannot select them",
            "Index a tensor "
            "(torch.stack the items first), or make the index a Python int")
    stacked = torch.stack(rows)
    size = len(items)
    if _is_index(key):
        if not context.probing():  # Python raises IndexError; the graph raises RuntimeError
            torch._assert_async((key >= -size) & (key < size), "list index out of range")
        with staged_aliases.unregistered():
            item = getitem(stacked, key)
        if all(_number_like(v) for v in items):
            # (`[1, 0.5, 2][k]`: an int on some paths and a float on others, NOTE [numbers of
            # two kinds] in runtime/augmented.py)
            kinds = {k for v in items for k in number_kinds(v)}
            narrow = None
            if len(kinds) == 2 and not any(kinds_in(v) for v in items):
                # (the paths that choose an item of the narrower kind)
                wide = max(kinds, key=("bool", "int", "float", "complex").index)
                narrow = getitem(torch.tensor([number_kinds(v)[0] != wide for v in items],
                                              device=stacked.device), key)
            return mark_kinds(mark(item), kinds, f"the item of a {type(items).__name__} of "
                              f"{' and '.join(sorted(k + 's' for k in kinds))} chosen by a "
                              "traced index", None, narrow)
        # (the item itself in Python: NOTE [staged values that alias in Python])
        staged_aliases.register_row(item, items, key)
        return item
    if any(isinstance(b, torch.Tensor) and (b.dim() != 0 or b.is_floating_point()
                                            or b.dtype == torch.bool)
           for b in (key.start, key.stop)):
        raise StagingError(
            "subscript", f"a Python {type(items).__name__} is sliced by a tensor that is not a "
            "0-d integer tensor", "Slice with 0-d integer tensors or Python ints")
    if key.step is not None and (is_staged(key.step) or key.step != 1):
        raise StagingError(
            "subscript", f"a Python {type(items).__name__} is sliced with step {key.step!r}; "
            "a traced slice takes a start and a stop only", "Slice torch.stack(items) instead")

    def bound(value, default):
        if value is None:
            return torch.tensor(default)
        value = (value.to(torch.int64) if isinstance(value, torch.Tensor)
                 else torch.full((), value, dtype=torch.int64))
        return torch.where(value < 0, value + size, value).clamp(0, size)

    start, stop = bound(key.start, 0), bound(key.stop, size)
    count = (stop - start).clamp(min=0)
    rows = (start + torch.arange(size)).clamp(max=size - 1)
    return StagedList(torch.index_select(stacked, 0, rows), count, name="the slice")


def setitem(target, key, value):
    """`target[key] = value`; returns `target` (the same object, updated in place).

    Raises:
        StagingError: a traced integer index next to a tensor or list index.
        StagingError: a dict (a Mapping) written at a traced key.
    """
    if isinstance(target, torch.Tensor) and (isinstance(key, torch.SymInt) or (
            type(key) is tuple and any(isinstance(p, torch.SymInt) for p in key))):
        key = tuple(_as_index(p) for p in key) if type(key) is tuple else _as_index(key)
    if isinstance(key, torch.Tensor) or type(key) is tuple:
        kinds_as_index(key if type(key) is tuple else (key,), "indexing with it")
    if isinstance(target, Mapping) and _traced_mapping_key(target, key):
        raise _traced_key(target, key, "written at")
    if type(key) is int and _shown_as_int(target, key):
        key = torch.scalar_tensor(key, dtype=torch.int64)
    if type(target) is list and (_is_index(key) or isinstance(key, torch.SymInt)):
        _set_list_item(target, _as_index(key), value)
        return target
    if _zero_dim_mask(target, key):  # (NOTE [a 0-d mask])
        target.unsqueeze(0)[key.unsqueeze(0)] = value
        return target
    if isinstance(target, torch.Tensor):
        _refuse_traced_slice(key)
    key = _plain_slices(key)
    parts = _parts(key)
    if type(key) is int or not isinstance(target, torch.Tensor) or not any(
        _is_index(p) for p in parts
    ):
        target[key] = value
        return target
    view, dims, indices = _indexed_view(target, key, "write")
    if isinstance(value, (torch.SymInt, torch.SymFloat)) or type_in(value, (int, float)):
        # (NOTE [graph numbers written])
        value = torch.scalar_tensor(value, dtype=target.dtype, device=target.device)
    value = torch.as_tensor(value, dtype=target.dtype, device=target.device)
    # (`index_put_` on a view of `target` writes `target`, as Python's `target[key] = value`;
    # no `movedim` view where the indexed dimensions lead already: NOTE [writes through a
    # moved view under inductor])
    leading = tuple(range(len(dims)))
    (view if tuple(dims) == leading else view.movedim(dims, leading)).index_put_(indices, value)
    return target


# NOTE [graph numbers written]
# `out[n] = tok` with `tok = int(logits.argmax())` and `n` a traced index (greedy decoding into
# a buffer until EOS, in a staged loop) was refused as "asks Python for the value of a traced
# tensor": `torch.as_tensor` of a symbolic int (an unbacked one, from `.item()` in a while
# loop's body) reads its value. `torch.scalar_tensor` stages it as a graph number instead.
# Under dynamo such a number's type reads as `int` / `float`, so every Python number takes
# that way (for a plain one it gives `torch.as_tensor`'s value and dtype).

# NOTE [writes through a moved view under inductor]
# torch 2.13's inductor gave wrong gradients for a write in a while_loop's body through a
# `movedim` view of a carried tensor (`out.movedim((0,), (0,)).index_put_((t,), R)`): the
# gradient of what the loop read came out with the forward's values of the carry added
# (discounted returns of a reversed `for`: [9.146, 9.84, 9.31, 7.439] where Python gives
# [1.0, 1.9, 2.71, 3.439]; aot_eager right; with torch's while_loop alone, no autoconv:
# /work/repros/compile15/wl_torch3.py). The same write on the tensor itself, or on a slice
# `out[:]`, is right. A traced index of the leading dimensions (`out[t] = R`, `x[i, j] = v`)
# now writes without the identity `movedim`; one of a later dimension (`x[:, t] = v`) still
# writes through it.


# NOTE [list items at traced positions]
# A Python list keeps its length, which Python knows, when an item is read or written at a
# position a tensor chose (`bracket[high_pos] = t` with `low_pos, high_pos = (0, 1) if
# f[0] <= f[-1] else (1, 0)`, torch.optim.lbfgs's line search): a read stacks the items and
# selects one row, a write makes every item `torch.where(index == j, value, item_j)`, so each
# item holds Python's value whichever position the graph's run chooses. A Python number among
# the items (`bracket = [0, t]`) takes part as the 0-d tensor that stands for it, of the dtype
# torch gives it next to the tensor items (NOTE [numbers as tensors]); a number whose slot
# would give a tensor item another dtype (an int64 tensor next to 0.5), items of other
# shapes, or an item that is neither a tensor nor a number is refused: no one tensor holds
# them.


def _number_like(value) -> bool:
    """A Python number, a symbolic one (`float(t)` of a traced `t`), or a tensor standing for
    one (NOTE [number stand-ins])."""
    return type_in(value, (bool, int, float)) or isinstance(value, _SYMBOLIC) or is_stand_in(
        value)


def _as_rows(values):
    """`values` (tensors and Python numbers) as tensors of one shape and dtype, each the value
    it stands for, or None where no one shape and dtype keeps them (NOTE [list items at traced
    positions])."""
    tensors = [v for v in values if isinstance(v, torch.Tensor) and not is_stand_in(v)]
    numbers = [v for v in values if _number_like(v)]
    if len(tensors) + len(numbers) != len(values):
        return None
    if tensors:
        shape, dtype = tensors[0].shape, tensors[0].dtype
        if any(t.shape != shape or t.dtype != dtype for t in tensors):
            return None
        if numbers and shape != ():
            return None
        for n in numbers:
            dtype = with_number(dtype, n.dtype if isinstance(n, torch.Tensor)
                                else number_dtype(n))
        if dtype != tensors[0].dtype:
            return None
        like = tensors[0]
    else:  # numbers only: Python's own arithmetic of them
        dtype = torch.bool
        for n in numbers:
            dtype = promote_types(dtype, n.dtype if isinstance(n, torch.Tensor)
                                  else number_dtype(n))
        like = next((n for n in numbers if isinstance(n, torch.Tensor)), None)
    return [v.to(dtype) if isinstance(v, torch.Tensor) else to_tensor(v, like, dtype)
            for v in values]


def _kinds(values) -> str:
    def kind(v):
        if is_stand_in(v):
            return "a number"
        if isinstance(v, torch.Tensor):
            return f"a {str(v.dtype).replace('torch.', '')} tensor of shape {tuple(v.shape)}"
        return f"a {type(v).__name__}"
    return ", ".join(kind(v) for v in values)


def _set_list_item(items: list, index: torch.Tensor, value) -> None:
    """`items[index] = value` with a traced 0-d integer `index`: every item becomes
    `torch.where(index == j, value, item_j)` (NOTE [list items at traced positions]).

    Raises:
        StagingError: the items and the value are not tensors of one shape and dtype (or
            Python numbers next to 0-d tensors).
    """
    size = len(items)
    rows = _as_rows([*items, value])
    if rows is None:
        raise StagingError(
            "subscript", "a Python list is written at a position that is a traced tensor, and "
            f"its items ({_kinds(items)}) and the value ({_kinds([value])}) are not tensors of "
            "one shape and dtype (or Python numbers next to 0-d tensors), so the graph cannot "
            "keep each item's value",
            "Hold the items in one tensor and write it with the traced index (`t[i] = v`), or "
            "make the index a Python int")
    index = index.to(torch.int64)
    if not context.probing():  # Python raises IndexError; the graph raises RuntimeError
        torch._assert_async((index >= -size) & (index < size),
                            "list assignment index out of range")
    index = torch.where(index < 0, index + size, index)
    numbers = all(_number_like(v) for v in (*items, value))
    for j in range(size):
        item = torch.where(index == j, rows[-1], rows[j])
        items[j] = mark(item) if numbers else item


# NOTE [traced integer indices]
# `x[:, t]` with a traced 0-d integer tensor `t` would ask torch for `t`'s value (`__index__`).
# Python's meaning is `x[:, int(t)]`: every other part of the key (ints, slices, None, Ellipsis)
# indexes as it would, and `t` removes its dimension. So the other parts take a view of `x`
# (`t`'s dimension kept whole, as `:`), the traced indices' dimensions move to the front of
# that view, and one advanced index of shape (1,) per such dimension picks (reads) or writes
# (`index_put_`, which broadcasts the value over the (1, *rest) block as Python broadcasts it
# over `x[:, int(t)]`) the row. Negative indices count from the end, as Python's. A traced
# index next to other tensor or list indices (advanced indexing, whose result layout depends on
# where the advanced indices sit) is refused: no single meaning is staged for it.


def _indexed_view(target, key, use):
    """(view, dims, indices) for `target[key]`, a key with traced 0-d integer indices: `view`
    is `target` indexed by the key's other parts (a view), `dims` the positions in `view` of
    the traced indices' dimensions, `indices` those indices, each of shape (1,), made
    non-negative (NOTE [traced integer indices]).

    Raises:
        StagingError: a part other than an int, slice, None, Ellipsis or traced 0-d index (a
            tensor or list index) next to a traced index, or more indices than dimensions.
    """
    parts = _parts(key)
    for part in parts:
        if not (_is_index(part) or part is None or part is Ellipsis or type_in(part, (int, bool))
                or isinstance(part, slice)):
            raise _refused(part, use)
    consumed = sum(1 for p in parts if _is_index(p) or type(p) is int or isinstance(p, slice))
    if consumed > target.dim() or sum(p is Ellipsis for p in parts) > 1:
        from .errors import StagingError

        raise StagingError(
            "subscript", f"a tensor of {target.dim()} dimensions is indexed with "
            f"{consumed} indices (or more than one `...`)", "Index at most one part per "
            "dimension of the tensor")
    expanded = []
    for part in parts:
        if part is Ellipsis:
            expanded.extend([slice(None)] * (target.dim() - consumed))
        else:
            expanded.append(part)
    view_key, dims, indices, dim, view_dim = [], [], [], 0, 0
    for part in expanded:
        if _is_index(part):
            view_key.append(slice(None))
            dims.append(view_dim)
            indices.append(_normalized(part.to(torch.int64), target.shape[dim],
                                       context.probing()))
            dim, view_dim = dim + 1, view_dim + 1
        elif type(part) is int:
            view_key.append(part)
            dim += 1
        elif isinstance(part, slice):
            view_key.append(part)
            dim, view_dim = dim + 1, view_dim + 1
        else:  # None, True, False: a new dimension of the view
            view_key.append(part)
            view_dim += 1
    return target[tuple(view_key)], tuple(dims), tuple(indices)


def _refused(part, use):
    from .errors import StagingError

    what = ("a tensor" if isinstance(part, torch.Tensor) else
            f"a {type(part).__name__}")
    return StagingError(
        "subscript", f"a traced integer index is combined with {what} index in one subscript "
        f"({use}); torch's advanced indexing would place their dimensions by rules that differ "
        "from an int's", "Index in two steps, the traced index first (`x[:, t][mask]`)")


_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)


def _shown(key) -> str:
    return "a tensor" if isinstance(key, torch.Tensor) else \
        "a symbolic number from `int(t)` / `t.item()`"


def check_key(target, key, use: str) -> None:
    """Refuse a dict `target` used with a traced `key` (`use`: "looked up by", ...).

    Raises:
        StagingError: for a key known only when the graph runs.
    """
    if isinstance(target, Mapping) and _traced_mapping_key(target, key):
        raise _traced_key(target, key, use, "method call")


def in_(item, container, /) -> bool:
    """`item in container`; `item not in container` is `not in_(item, container)`.

    Raises:
        StagingError: for a dict or set asked for a traced value (`int(v) in counts`), whose
            answer is only known when the graph runs; torch's own error was "unhashable type:
            SymInt" with no line.
    """
    if (isinstance(container, Mapping) and _traced_mapping_key(container, item)) or (
            isinstance(container, AbstractSet) and _traced(item)):
        raise _traced_key(
            container, item, "searched (`in`) for", "comparison",
            "Test membership on tensors: `(v == keys).any()` or `torch.isin(v, keys)` with "
            "`keys = torch.tensor([...])`; to count by a tensor's values, write "
            "`torch.bincount(x, minlength=n)`; or do it outside the tensor-dependent code")
    if type(container) is StagedList:  # (NOTE [list methods of a grown list])
        return container.contains(item)
    if type(container) is StagedDict:  # NOTE [a dict the first trip gives keys]
        return staged_dicts.contains(item, container)
    if isinstance(item, StagedConstant) and isinstance(
            container, (tuple, list, Mapping, AbstractSet)):
        return _constant_in(item, container)
    if type_in(container, (list, tuple)) and _graph_number(item) and all(
            type_in(other, (bool, int, float)) for other in container):
        return _number_in(item, container)
    return item in container


def _graph_number(value) -> bool:
    """A number only the graph knows: a stand-in of a number a staged statement carries, or a
    symbolic one read from a traced tensor."""
    return (is_stand_in(value) and value.dim() == 0) or (
        not isinstance(value, torch.Tensor) and _traced(value))


def _number_in(item, container):
    """`k in M` of a number only the graph knows and a list of Python numbers (`if step in
    milestones:`, tester23 s11): `k == m` for some `m`, a bool's stand-in, where Python's `in`
    asked each comparison for its truth. (Python's `in` tests identity first: no number the
    graph computes is one of the list's objects, and == is the same test but for a NaN.)"""
    if not isinstance(item, torch.Tensor):
        item = to_tensor(item, dtype=torch.float64 if type_in(item, (float,)) or isinstance(
            item, torch.SymFloat) else torch.int64)
    found = torch.zeros((), dtype=torch.bool, device=item.device)
    for other in container:
        found = found | (item == other)
    return mark(found)


def _constant_in(item: StagedConstant, container):
    """`item in container` of a constant chosen by tensor values (`status in ("converged",
    "running")`): whether it equals one of the items, each compared as `==` stages it (a 0-d
    bool tensor), where Python's `in` would ask each comparison for its truth (tester22 s09)."""
    found = []
    for other in container:
        same = item == other
        if not isinstance(same, torch.Tensor):
            if same:
                return True
            continue
        found.append(same)
    if not found:
        return False
    result = found[0]
    for same in found[1:]:
        result = torch.logical_or(result, same)
    return result


def _traced(key) -> bool:
    """A key known only when the graph runs: a traced tensor, or a number read from one (under
    dynamo, which shows it as an int, `is_symbolic` tells it apart)."""
    return is_staged(key) or isinstance(key, _SYMBOLIC)


# NOTE [tensors as keys of a dict]
# Python hashes a tensor by its identity: `state[p]` of an optimizer's state keyed by its
# parameters (torch.optim's, torch_optimizer's `self.state[p]`), or a defaultdict filled with
# `state[p]["m"] = ...` and read back with the same `p`, finds the item of that very object,
# whatever its values. The object is the same while tracing, so the lookup is Python's: it was
# refused as a lookup by a traced value (tester25 s05: torch_optimizer's Lamb and AdamP stopped
# there). Only where the answer cannot differ from Python's: the key is a tensor of its own
# (not a number's stand-in, which Python hashes by value), and it is one of the dict's keys or
# the dict is empty; a Parameter, which no staged statement gives, always (an optimizer's first
# step over its parameters). A tensor missing from a dict with keys (a third-party optimizer's
# first step over plain tensors: `state[p2]` after `state[p1]` was filled) is missing in Python
# too where the tensor is one object on every run: an argument of the traced function (a
# placeholder: the same argument slot on every replay), or a tensor an operator made outside
# any staged body, which is a new object on every run, as in Python. It is refused where the
# graph's tensor stands for one of several Python objects: a staged statement's result
# (`p = a if c else b`: a new tensor in the graph, `a` or `b` in Python), a `torch.where` (how
# `max(a, b)` of tensors and list writes at traced positions are staged), a row selected from
# stacked items (a list read at a traced position), or any key inside a staged body (a body
# runs once in the graph, where Python makes a new key each trip). Under dynamo, which shows no
# graph node to the code it traces, it is refused as before; so is a value meant as an int key
# (`VOCAB[x[i]]`, a KeyError in Python).
def _traced_mapping_key(target, key) -> bool:
    """Whether a lookup of `key` in the Mapping `target` depends on a value known only when the
    graph runs (NOTE [tensors as keys of a dict])."""
    if not _traced(key):
        return False
    if not isinstance(key, torch.Tensor) or is_stand_in(key):
        return True
    if getattr(key, PYTHON_BOOL, False) is not False:
        # (Python's bool, `bool(t)`, which Python hashes by value: `counts[bool(x[i] > 0)]`
        # raised a KeyError naming a FakeTensor, brk54)
        return True
    if isinstance(key, torch.nn.Parameter):
        return False  # (no staged statement gives a Parameter: an optimizer's state)
    if len(target) == 0 or any(k is key for k in target.keys()):
        return False
    return not _one_object(key)


# Operators whose result stands for one of several Python objects (NOTE [tensors as keys of a
# dict]); a node that takes an item of a staged statement's results is `operator.getitem`.
_CHOOSING = frozenset({"aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther",
                       "aten.where.Scalar", "aten.index_select.default", "aten.index.Tensor",
                       "higher_order.cond", "higher_order.while_loop"})


def _one_object(key: torch.Tensor) -> bool:
    """Whether the traced tensor `key` is one Python object on every run of the function: an
    argument of it, or made by an operator outside staged bodies, not by a choice."""
    import operator

    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    if torch.compiler.is_dynamo_compiling() or context.in_staged_body():
        return False
    tracer = getattr(get_proxy_mode(), "tracer", None)
    slot = get_proxy_slot(key, tracer, None) if tracer is not None else None
    if slot is None:
        return False
    node = _written_node(slot.proxy.node)
    if node is None or node.op != "call_function" and node.op != "placeholder":
        return False
    if node.op == "placeholder":
        return True
    if node.target is operator.getitem:
        return False  # (an item of a staged statement's, or a multi-output operator's, results)
    return str(node.target) not in _CHOOSING


def _written_node(node):
    """The node that made the tensor `node` stands for, through the operators that updated it
    in place (`p.add_(1)`, `torch.mul(x, 2, out=p)`: the same Python object as before), or
    None where that cannot be told."""
    for _ in range(10_000):
        schema = getattr(node.target, "_schema", None) if node.op == "call_function" else None
        if schema is None:
            return node
        written = [(j, a) for j, a in enumerate(schema.arguments)
                   if a.alias_info is not None and a.alias_info.is_write]
        if not written:
            return node
        j, argument = written[0]
        source = node.kwargs.get(argument.name) if argument.kwarg_only or j >= len(
            node.args) else node.args[j]
        if not isinstance(source, torch.fx.Node):
            return None
        node = source
    return None


def _traced_key(target, key, use, statement="subscript", fix=None) -> StagingError:
    """A dict looked up or written at a key chosen by a tensor's value: which item (or which
    new key) is only known when the graph runs, and a graph holds no dict."""
    if isinstance(key, torch.Tensor) and not is_stand_in(key) and any(
            isinstance(k, torch.Tensor) for k in target.keys()):
        # (NOTE [tensors as keys of a dict]: a tensor object missing from a dict keyed by
        # tensor objects, whose identity the trace cannot vouch for)
        where = ("under torch.compile, where autoconv cannot see which operator made it"
                 if torch.compiler.is_dynamo_compiling() else
                 "inside a staged body, which runs once in the graph where Python makes a new "
                 "tensor each trip" if context.in_staged_body() else
                 "it is a staged choice of one of several tensors (a tensor `if`, `max`, a "
                 "list read at a traced position), a new tensor in the graph")
        return StagingError(
            statement,
            f"a {type(target).__name__} keyed by tensor objects (Python hashes a tensor by its "
            f"identity) is {use} a tensor that is not one of its keys, and the graph cannot "
            f"know which Python object it is: {where}",
            "Fill the dict with its tensor keys before the tensor-dependent code (an "
            "optimizer's `state[p]` for every `p` first), or key it by a Python value (the "
            "index of `p` in its list)" + (
                "; or run the function with autoconv.autoconv or torch.export, where an "
                "argument, a tensor made outside staged statements, or a tensor a staged "
                "statement carries in its own dict is looked up by its identity"
                if torch.compiler.is_dynamo_compiling() else ""))
    return StagingError(
        statement,
        f"a {type(target).__name__} is {use} a traced value ({_shown(key)}); its keys are "
        "Python values, so the item cannot depend on a value known only when the graph runs",
        fix or
        "Hold the values in a tensor and index it with the tensor (`table = torch.tensor([...])`,"
        " then `table[i]`); to count or sum by a tensor's values, write `torch.bincount(x, "
        "minlength=n)`, or `counts.index_add_(0, x, ones)` / `counts.scatter_add_(0, x, values)` "
        "into a tensor `counts = torch.zeros(n, dtype=...)`; or do it outside the "
        "tensor-dependent code")
