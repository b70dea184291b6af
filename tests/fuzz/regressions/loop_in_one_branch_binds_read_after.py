r"""A variable only a loop binds, the loop inside one branch of a staged `if`, read after the
`if`: Python raises UnboundLocalError where the other branch ran (or the loop made no trip).
Every trip of the loop binds it, so it had no bound flag, and the staged `if` saw it unbound on
one branch: specialised at the top level, the replay raised GuardFailed where Python raises
UnboundLocalError (fuzz seed 13, program 23). A loop inside an `if` now flags its names
(autoconv/converters/unbound.py), and the `if` carries the flag."""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(0)
    if not x > -2:
        x = y + 2
    else:
        for i1 in range(x % 2):
            m = a + x
    return x + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(1, 0, 0), (-8, 1, 0), (0, 0, 0)]
XFAIL = None
