"""torch.distributions' argument and sample checks, staged as graph assertions.

A distribution built with validation on (torch's default outside `python -O`) checks its
parameters in `__init__` and each value given to `log_prob` / `cdf` / ... in `_validate_sample`:

    valid = constraint.check(value)
    if not torch._is_all_true(valid):
        raise ValueError(...)

Under a tracer `valid` has no value, so Python's `not` asks for one and torch raises its
data-dependent error: `Normal(mu, sigma)` in a traced function failed in every mode but
torch.compile (dynamo stages the check itself). The check is an assertion, not a branch: the
code after it is the same whatever the outcome, except that the outcome False raises. So while
converted code calls into torch.distributions under a tracer, `torch._is_all_true` called by
those two checks (torch/distributions/distribution.py) answers True to the Python code and puts
`_assert_async(valid.all(), "ValueError: ...")` into the graph instead: the graph raises when it
runs on invalid parameters or values (autoconv's replay raises the ValueError, a torch.export
program or compiled graph a RuntimeError whose message starts "ValueError:", NOTE [exceptions
raised by graphs]). Python's message prints the invalid values, which the trace does not know;
the graph's names the parameter, the constraint and the distribution.

Other checks in torch.distributions written as `if not t.all():` (a few distributions' own
constraints) still ask for a value; their error says to pass `validate_args=False`
(autoconv/tracebacks.py).
"""

from __future__ import annotations

import sys

import torch
from torch.overrides import TorchFunctionMode

from ..errors import graph_error_message
from . import registry

__all__ = ["calls_distribution", "call_validated"]

_IS_ALL_TRUE = torch._is_all_true
_DISTRIBUTION = torch.distributions.Distribution
# The module whose two checks are staged (see the module docstring): they are written as
# `if not torch._is_all_true(valid): raise ValueError(...)`, and nothing else reads the answer.
_CHECKS_MODULE = "torch.distributions.distribution"


def calls_distribution(fn) -> bool:
    """Whether calling `fn` runs torch.distributions code that may check its arguments: a
    Distribution class, or a method of a Distribution instance. Cheap: asked of every library
    call converted code makes while it traces. False under dynamo, which stages the checks."""
    if torch.compiler.is_dynamo_compiling():
        return False
    if isinstance(fn, type):
        return issubclass(fn, _DISTRIBUTION)
    return isinstance(getattr(fn, "__self__", None), _DISTRIBUTION)


def call_validated(fn, args, kwargs):
    """`fn(*args, **kwargs)` with torch.distributions' checks of traced values staged as graph
    assertions (see the module docstring)."""
    with _StagedChecks():
        return fn(*args, **kwargs)


class _StagedChecks(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is _IS_ALL_TRUE and not kwargs and registry.is_staged(args[0]):
            frame = _checking_frame()
            if frame is not None:
                valid = args[0]
                torch._assert_async(valid.all() if valid.dim() else valid,
                                    graph_error_message(ValueError(_message(frame))))
                return True  # read only by the check's `not`
        return func(*args, **kwargs)


def _checking_frame():
    """The frame of torch.distributions' check calling `_is_all_true`, or None when another
    caller asked (its answer is used as a value there: called as it is)."""
    frame = sys._getframe(2)
    for _ in range(4):  # this mode's handler sits a frame or two below the caller
        if frame is None:
            return None
        if frame.f_globals.get("__name__") == _CHECKS_MODULE:
            return frame
        frame = frame.f_back
    return None


def _message(frame) -> str:
    local = frame.f_locals
    owner = local.get("self")
    name = type(owner).__name__ if owner is not None else "a distribution"
    if "param" in local:  # Distribution.__init__: a parameter against its constraint
        return (f"Expected parameter {local['param']} of distribution {name} to satisfy the "
                f"constraint {local.get('constraint')!r}, but the graph found invalid values "
                "(checked when the graph ran; validate_args=False turns the check off)")
    return (f"Expected value argument to be within the support ({local.get('support')!r}) of "
            f"the distribution {name}, but the graph found invalid values (checked when the "
            "graph ran; validate_args=False turns the check off)")
