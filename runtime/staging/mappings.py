"""dict subclasses (scipy's `OptimizeResult`) as pytrees: their items, rebuilt with their type.

A function that builds its result as a dict subclass under tensor control flow (an early return
guarded by a traced flag) gives a staged statement, and a traced function's output, a mapping
torch's pytree takes for a leaf. `register` makes such a type a pytree node the first time a
staged statement meets one, so its tensors are carried and a replay rebuilds the same type.
"""

from __future__ import annotations

import threading

from torch.utils import _pytree as pytree

__all__ = ["register"]

_lock = threading.Lock()


def register(value) -> None:
    """Make `type(value)`, a dict subclass holding its state in its items only (no instance
    attributes), a pytree node; nothing for other values or types torch knows already."""
    cls = type(value)
    if cls is dict or not isinstance(value, dict) or cls in pytree.SUPPORTED_NODES:
        return
    if getattr(value, "__dict__", None):  # attributes besides its items: not rebuilt here
        return
    with _lock:
        if cls not in pytree.SUPPORTED_NODES:
            pytree.register_pytree_node(cls, _flatten, _unflatten_for(cls))


def _flatten(mapping):
    return list(mapping.values()), list(mapping.keys())


def _unflatten_for(cls):
    def unflatten(values, keys):
        mapping = dict.__new__(cls)
        dict.update(mapping, zip(keys, values))
        return mapping
    return unflatten
