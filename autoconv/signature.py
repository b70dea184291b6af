"""Input signatures: the cache key of a traced graph, cheap to compute on every call."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils import _pytree as pytree

__all__ = ["TensorSpec", "Signature", "signature_of"]


@dataclass(frozen=True)
class TensorSpec:
    """A tensor argument described by its shape and dtype (and device), standing for any tensor
    that matches them. `None` in `shape` is a size that may vary."""

    shape: tuple
    dtype: torch.dtype = torch.float32
    device: str | torch.device = "cpu"
    requires_grad: bool = False

    def example(self) -> torch.Tensor:
        """A tensor matching the spec (zeros; sizes left open become 2)."""
        shape = tuple(2 if s is None else s for s in self.shape)
        return torch.zeros(shape, dtype=self.dtype, device=self.device,
                           requires_grad=self.requires_grad)


@dataclass(frozen=True)
class Signature:
    """What a `ConcreteFunction` was traced for: the argument structure, tensor metadata, and
    the Python values of every other argument."""

    key: tuple
    treespec: object

    def __str__(self) -> str:
        parts = []
        for leaf in self.key:
            if leaf[0] == "tensor":
                _, shape, dtype, device, grad = leaf
                parts.append(f"Tensor(shape={list(shape)}, dtype={dtype}, device={device}"
                             + (", requires_grad=True" if grad else "") + ")")
            else:
                parts.append(repr(leaf[2]))
        return f"({', '.join(parts)})"


def _leaf_key(leaf):
    if isinstance(leaf, torch.Tensor):
        return ("tensor", tuple(leaf.shape), leaf.dtype, leaf.device, leaf.requires_grad)
    if isinstance(leaf, TensorSpec):
        return ("tensor", tuple(leaf.shape), leaf.dtype, torch.device(leaf.device),
                leaf.requires_grad)
    try:
        hash(leaf)
        return ("value", type(leaf), leaf)
    except TypeError:
        return ("object", type(leaf), id(leaf))


def signature_of(args: tuple, kwargs: dict):
    """(Signature, flat leaves) of a call."""
    leaves, treespec = pytree.tree_flatten((args, kwargs))
    key = tuple(_leaf_key(leaf) for leaf in leaves)
    return Signature(key, treespec), leaves
