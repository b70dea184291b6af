"""torch.optim steps that read their step count into Python while autoconv traces.

NOTE [optimizer steps that read their count]
torch.optim's Adam, AdamW, Adagrad, Adamax, NAdam, RAdam and ASGD keep `state["step"]`, a 0-d
tensor, and (unless built with `fused=True`, or `capturable=True` on a GPU) read it into a
Python float in their step (`_get_value(step_t)`, an `.item()`) to compute the bias correction
or the learning-rate decay, after adding one to it. A trace bakes that float into the graph, and
the step changes the count it was read from, so no graph holds for the next call: autoconv's
guard saw the count changed "right after tracing" and raised a RuntimeError that named neither
the optimizer nor the line (optim47). The read is refused where it happens, at the user's line
that steps the optimizer, naming its class and the form that stages: `fused=True` (torch's fused
kernel takes the count as a tensor: Adam, AdamW, Adagrad on CPU and GPU), `capturable=True` (the
count stays a tensor; torch allows it for parameters on a GPU), or the step called outside the
autoconv function. RMSprop, SGD, Adadelta and Rprop count steps without reading the count, and
stage as they are.
"""

from __future__ import annotations

import os
import sys

import torch

from ..errors import StagingError

__all__ = ["refuse_count_read"]

_OPTIM_DIR = os.path.dirname(torch.optim.__file__) + os.sep
# the classes with a fused kernel, whose count stays a tensor with `fused=True`
_FUSED = ("Adam", "AdamW", "Adagrad")


def refuse_count_read(tensor) -> None:
    """Raise where `tensor`, read into Python, is the step count of a torch.optim optimizer
    whose step is running (NOTE [optimizer steps that read their count])."""
    optimizer = _stepping_owner(tensor)
    if optimizer is None:
        return
    from ..errors import user_location

    kind = type(optimizer).__name__
    if any(cls.__name__ in _FUSED and cls.__module__.startswith("torch.optim")
           for cls in type(optimizer).__mro__):
        options = (f"Construct the {kind} with `fused=True` (torch's fused kernel keeps the "
                   "count a tensor, and autoconv stages the step)")
    else:
        options = (f"Construct the {kind} with `capturable=True`, its parameters on a GPU "
                   "(the count stays a tensor)")
    raise StagingError.at(
        user_location(), "function",
        f"the step of torch.optim.{kind} reads its step count (`state['step']`) into a Python "
        "number, after adding one to it: autoconv traces the function once into a graph, "
        "which would keep this call's count for every later call",
        f"{options}, or call the optimizer's step() outside the autoconv function (return the "
        "loss, or the gradients)")


def _stepping_owner(tensor):
    """The optimizer whose `step` (torch.optim's code, on the stack) holds `tensor` in its
    state, or None."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_OPTIM_DIR):
            owner = frame.f_locals.get("self")
            if isinstance(owner, torch.optim.Optimizer):
                for state in owner.state.values():
                    if isinstance(state, dict) and state.get("step") is tensor:
                        return owner
        frame = frame.f_back
    return None
