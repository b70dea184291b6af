"""Indexing with traced integer tensors.

`x[i]` with a 0-d integer tensor `i` asks torch for `i`'s value (`__index__`), which a tracer
cannot give. These operators select with index_select / index_put instead, keeping Python's
negative-index meaning; every other subscript runs as plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .errors import StagingError
from .staging import context
from .values import is_staged

__all__ = ["getitem", "setitem", "slice_"]


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


def _as_index(part):
    if isinstance(part, torch.SymInt):
        return torch.scalar_tensor(part, dtype=torch.int64)
    return part


def _plain_slices(key):
    if isinstance(key, TracedSlice):
        return key.as_slice()
    if type(key) is tuple and any(isinstance(p, TracedSlice) for p in key):
        return tuple(p.as_slice() if isinstance(p, TracedSlice) else p for p in key)
    return key


def _normalized(index, size):
    return torch.where(index < 0, index + size, index).reshape(1)


def _parts(key):
    return key if type(key) is tuple else (key,)


def _staged_slice(part) -> bool:
    return isinstance(part, TracedSlice)


def getitem(target, key):
    """`target[key]`.

    Raises:
        StagingError: a Python list or tuple indexed by a traced tensor whose items are not
            tensors of one shape, or sliced with a traced step.
    """
    if type(key) is int:
        return target[key]
    if isinstance(target, (torch.Tensor, list, tuple)) and (isinstance(key, torch.SymInt) or (
            type(key) is tuple and any(isinstance(p, torch.SymInt) for p in key))):
        # A symbolic int (`t.item()` under a tracer) indexes as the 0-d tensor it stands for.
        key = tuple(_as_index(p) for p in key) if type(key) is tuple else _as_index(key)
    if type(target) in (list, tuple) and (
            _is_index(key) or _staged_slice(key) or isinstance(key, torch.SymInt)):
        return _sequence_item(target, key)
    if isinstance(target, Mapping) and (is_staged(key) or isinstance(key, _SYMBOLIC)):
        raise StagingError(
            "subscript",
            f"a {type(target).__name__} is looked up by a traced value ({_shown(key)}); its keys "
            "are Python values, so the item cannot depend on a value known only when the graph "
            "runs",
            "Hold the values in a tensor and index it with the tensor (`table = torch.tensor("
            "[...])`, then `table[i]`), or do the lookup outside the tensor-dependent code")
    # Anything else (a tensor) is sliced as Python would.
    key = _plain_slices(key)
    if not isinstance(target, torch.Tensor):
        return target[key]
    parts = _parts(key)
    if not any(_is_index(p) for p in parts):
        return target[key]
    dim = 0
    for part in parts:
        if _is_index(part):
            target = torch.index_select(target, dim, _normalized(part, target.shape[dim]))
            target = target.squeeze(dim)
        elif isinstance(part, int):
            target = target.select(dim, part)
        elif isinstance(part, slice):
            target = target[(slice(None),) * dim + (part,)]
            dim += 1
        else:
            raise TypeError(
                f"cannot index a traced tensor with {part!r} next to a traced integer index; "
                "use ints, slices and 0-d integer tensors"
            )
    return target


def _sequence_item(items, key):
    """`items[key]` of a Python list or tuple with a traced index or slice bound: the items
    stacked into one tensor, then one row of it, or (a slice) a StagedList of the rows, whose
    length is only known when the graph runs (the same value a list grown under tensor control
    flow is)."""
    from .errors import StagingError
    from .lists import StagedList

    what = "an index" if _is_index(key) else "a slice bound"
    tensors = [v for v in items if isinstance(v, torch.Tensor)]
    if (not items or len(tensors) != len(items)
            or any(t.shape != tensors[0].shape or t.dtype != tensors[0].dtype for t in tensors)):
        raise StagingError(
            "subscript", f"a Python {type(items).__name__} is given {what} that is a traced "
            "tensor, and its items are not tensors of one shape and dtype, so the graph cannot "
            "select them", "Index a tensor (torch.stack the items first), or make the index a "
            "Python int")
    stacked = torch.stack(items)
    size = len(items)
    if _is_index(key):
        if not context.probing():  # Python raises IndexError; the graph raises RuntimeError
            torch._assert_async((key >= -size) & (key < size), "list index out of range")
        return getitem(stacked, key)
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
    """`target[key] = value`; returns `target` (the same object, updated in place)."""
    key = _plain_slices(key)
    parts = _parts(key)
    if type(key) is int or not isinstance(target, torch.Tensor) or not any(
        _is_index(p) for p in parts
    ):
        target[key] = value
        return target
    if not all(_is_index(p) or isinstance(p, int) for p in parts):
        raise TypeError(
            "cannot assign through a traced integer index combined with slices; "
            "use one index per leading dimension"
        )
    indices = tuple(
        _normalized(p if isinstance(p, torch.Tensor) else torch.tensor(p), target.shape[d])
        for d, p in enumerate(parts)
    )
    value = torch.as_tensor(value, dtype=target.dtype, device=target.device)
    target.index_put_(indices, value.unsqueeze(0))
    return target


_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)


def _shown(key) -> str:
    return "a symbolic int from `int(t)` / `t.item()`" if isinstance(key, _SYMBOLIC) else "a tensor"
