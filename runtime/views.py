"""A tensor's view attributes (`.mT`, `.T`, `.H`, `.mH`) read by converted code.

NOTE [view attributes under dynamo]
torch-kf's `KalmanFilter.update` reads `self.measurement_matrix.mT` in both branches of a
staged `if` (kf56). dynamo gives an attribute of a tensor it reached by attributes
(`kf.H.mT`) a source of its own, so it lifts both `kf.H` and the view into torch.cond's bodies
as two operands, and torch refuses operands that alias ("Higher order ops do not support
aliasing"; `torch.cond` written by hand fails the same). A call (`kf.H.transpose(-2, -1)`)
has no source: dynamo lifts `kf.H` alone and makes the view in the body's graph. So under
dynamo the attribute is read as the call that makes the same view; everywhere else it is the
attribute, as written (no tracer else gives it a source).
"""

from __future__ import annotations

import torch

__all__ = ["view_attribute_"]


def view_attribute_(value, name: str, /):
    """`value.<name>` for `name` one of `mT`, `T`, `H`, `mH` (NOTE [view attributes under
    dynamo])."""
    if not isinstance(value, torch.Tensor) or not torch.compiler.is_dynamo_compiling():
        return getattr(value, name)
    ndim = value.dim()
    if name == "mT" and ndim >= 2:
        return value.transpose(-2, -1)
    if name == "mH" and ndim >= 2:
        return value.transpose(-2, -1).conj()
    if name == "T" and ndim == 2:
        return value.transpose(0, 1)
    if name == "H" and ndim == 2:
        return value.transpose(0, 1).conj()
    # (torch's own errors for a tensor of too few dimensions; `.T` of another dimension count
    # is deprecated: read as written)
    return getattr(value, name)
