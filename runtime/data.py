"""A tensor's `.data` read and written by converted code (NOTE [writes through .data] in
autoconv/converters/control_flow.py).

`w.data` shares `w`'s memory but has a version counter of its own, and no tracer follows it:
make_fx records it as a `detach` of the traced tensor, but the write through it updates
neither `w`'s version (which the runtime's staged bodies compare, NOTE [inputs updated unseen]
in staging/torch.py) nor, under torch.export, the functional value of `w` (torch's "fake tensor
in the exported program constant's list"); dynamo refuses a `.data` store. Under a tracer the
read is `w.detach()` instead: the same values and memory, no autograd history, and `w`'s version
counter, so an update in place through it is an update of `w` that every tracer sees. The one
difference, a version `w`'s saved tensors see, shows only as autograd's own error where a
tensor saved for backward is updated (Python would compute that backward with the new values).
"""

from __future__ import annotations

import torch

from .errors import StagingError
from .values import is_staged

__all__ = ["data_", "data_or_", "data_update_", "set_data_"]


def data_(owner, /):
    """`owner.data`; under a tracer, `owner.detach()` for a traced tensor."""
    if isinstance(owner, torch.Tensor) and is_staged(owner):
        return owner.detach()
    return owner.data


def data_or_(owner, missing, /):
    """`owner.data` as `data_` reads it, or `missing` where `owner` has no attribute `data`: the
    alias of a chain `x.data` a statement's bodies update in place (NOTE [attributes updated in
    place] in autoconv/converters/control_flow.py)."""
    if isinstance(owner, torch.Tensor):
        return data_(owner)
    return getattr(owner, "data", missing)


def data_update_(owner, value, /) -> None:
    """`owner.data = value`, where `value` is `owner.data` updated in place by `op=` or an item
    store (`w.data -= v`, `w.data[i] = v`): for a traced tensor the update was made through
    `data_(owner)` already, and Python's store binds `.data` to the memory it had, which does
    nothing."""
    if isinstance(owner, torch.Tensor) and is_staged(owner):
        if isinstance(value, torch.Tensor):
            return None
        # (a Python number from `op=`: Python's store would raise; so does `set_data_`)
    set_data_(owner, value)
    return None


def set_data_(owner, value, /) -> None:
    """`owner.data = value`.

    Raises:
        StagingError: for a traced tensor `owner`: binding its `.data` to another tensor is
            not seen by any tracer (the graph would keep `owner`'s old values).
    """
    if isinstance(owner, torch.Tensor) and is_staged(owner):
        raise StagingError(
            "function", "`.data = ...` binds a tensor's data to another tensor, which torch's "
            "tracers do not see: writes through `.data` are invisible to them, and the graph "
            "would keep the old values",
            "Update the tensor in place without autograd instead (`with torch.no_grad(): "
            "w.copy_(v)`, or `w.data.copy_(v)`), or bind the name to a new tensor "
            "(`w = v.detach()`)")
    owner.data = value
    return None
