r"""Minimised (seed 11, program 6): crash at trace: <fuzz-86>:8: in a tensor-dependent if statement: 'compared' has no value in the false branch but is used afterwards. Assign 'compared' in every branch, or before the if"""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(1)
    b = x + 0
    c = torch.tensor(-2)
    p = 3
    if -1 - a:
        if a <= 3 + y == torch.abs(a):
            for i0 in range(c % 4):
                return i0 - x + (a if 5 != 1 else a)
            if 3 // 3:
                p %= 2
            elif c >= a:
                return a + q + b * 3
        elif not b == y and 1 <= -3:
            a += 5
    return x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, -2, 3)]
XFAIL = None
