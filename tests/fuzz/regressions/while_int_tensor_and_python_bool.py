r"""Minimised (seed 11, program 3): internal at trace: RuntimeError when making fake tensor call"""

import torch


def fuzz_fn(x, y, k):
    guard0 = 0
    while y and guard0 < 3:
        guard0 += 1
    return x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1)]
XFAIL = None
