"""Indexing with traced integer tensors.

`x[i]` with a 0-d integer tensor `i` asks torch for `i`'s value (`__index__`), which a tracer
cannot give. These operators select with index_select / index_put instead, keeping Python's
negative-index meaning; every other subscript runs as plain Python.
"""

from __future__ import annotations

import torch

from .values import is_staged

__all__ = ["getitem", "setitem"]


def _is_index(key) -> bool:
    return (
        isinstance(key, torch.Tensor)
        and key.dim() == 0
        and not key.is_floating_point()
        and key.dtype != torch.bool
        and is_staged(key)
    )


def _normalized(index, size):
    return torch.where(index < 0, index + size, index).reshape(1)


def _parts(key):
    return key if type(key) is tuple else (key,)


def getitem(target, key):
    """`target[key]`."""
    if type(key) is int or not isinstance(target, torch.Tensor):
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


def setitem(target, key, value):
    """`target[key] = value`; returns `target` (the same object, updated in place)."""
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
