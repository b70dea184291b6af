r"""Minimised (seed 101, program 50): internal at trace: tracing fuzz_fn left a value of the trace
(FakeTensor) as the graph constant _tensor_constant0.

A class defined by exec() without `__name__` in its globals (as here, and in notebooks' and
tools' generated code) has `__module__ == "builtins"`, so runtime/staging/objects.py took its
instances for builtin values: `s.v = ...` in a staged branch was not carried and left the
trace's fake tensor in `s`. (Under torch.compile the change is refused, as README documents.)"""

import torch


class State:

    def __init__(self, v):
        self.v = v


def fuzz_fn(x, y, k):
    s = State(x + 1)
    if x > 0:
        s.v = y % 5 - 31
    return s.v


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(2, -1, 0), (-1, 0, 0)]
XFAIL = None
