r"""Minimised (seed 41, program 49): internal at trace: UnboundLocalError: cannot access local variable 'did_continue' where it is not associated with a value"""

import torch


def fuzz_fn(x, y, k):
    c = y
    for i0 in range(1):
        if 0 <= 0 == y:
            if 0:
                continue
            else:
                continue
            p = 0
        else:
            return c


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(5, -5, 2)]
XFAIL = None
