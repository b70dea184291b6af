"""Fixes to torch's fake implementations of operators, which every mode traces with.

NOTE [a negative dim of unique_consecutive]
torch 2.13's fake `aten.unique_consecutive` (torch/_subclasses/fake_impls.py) passes its `dim`
to the shared `_unique` as given, where `unique_dim` first makes it non-negative; `_unique`
builds the result's shape as `shape[:dim] + (nnz,) + shape[dim + 1:]`, so `dim=-1` of a 1-d
input of 6 gives the fake shape `(u0, 6)` where the op gives `(5,)`, and its counts the length
6 (torchaudio's greedy CTC decoder, tester40 s09). autoconv's replay, torch.export and
torch.compile all trace with fake tensors: `.shape[-1]`, `.numel()` and a loop over the result
were silently wrong. A negative `dim` means `dim % ndim` to the real kernel, so making it
non-negative before the fake implementation runs changes no meaning, only the fake shape; it is
done for every caller in the process (plain torch.export too), as torch's own `unique_dim`
does, and is a no-op for a torch whose fake implementation already does it.
"""

import torch

__all__ = ["install"]

_FIXED = "_autoconv_normalised_dim"


def install() -> None:
    """Wrap torch's fake `unique_consecutive` so that its `dim` is non-negative (NOTE [a
    negative dim of unique_consecutive]). Idempotent; does nothing where torch has no such
    implementation."""
    try:
        from torch._subclasses import fake_impls
    except ImportError:
        return
    op = torch.ops.aten.unique_consecutive.default
    impl = fake_impls.op_implementations_dict.get(op)
    if impl is None or getattr(impl, _FIXED, False):
        return

    def unique_consecutive(fake_mode, func, arg, return_inverse=False, return_counts=False,
                           dim=None):
        if dim is not None and -max(arg.ndim, 1) <= dim < 0:  # (out of range: torch's error)
            dim = dim % max(arg.ndim, 1)
        return impl(fake_mode, func, arg, return_inverse, return_counts, dim)

    setattr(unique_consecutive, _FIXED, True)
    fake_impls.op_implementations_dict[op] = unique_consecutive
