"""The torch operators a staged statement becomes: `cond` and `while_loop`.

Bodies here are plain callables over flat tuples of tensors. `while_loop` passes the carried
tensors and then the loop's read-only tensors (`additional`) to both of its bodies.
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.while_loop import while_loop as _torch_while_loop

__all__ = ["cond", "while_loop"]


def cond(pred, true_fn, false_fn, operands):
    """`true_fn(*operands) if pred else false_fn(*operands)` as one `cond` node."""
    return torch.cond(pred, true_fn, false_fn, tuple(operands))


def while_loop(cond_fn, body_fn, carried, additional=()):
    """`while cond_fn(*carried, *additional): carried = body_fn(*carried, *additional)` as one
    `while_loop` node."""
    additional = tuple(additional)
    return _torch_while_loop(lambda *c: cond_fn(*c, *additional),
                             lambda *c: body_fn(*c, *additional), tuple(carried))
