r"""Minimised (seed 2028, program 29): internal at trace: SyntaxError: duplicate argument 'item_false_branch' in function definition (<eval_with_key>.22065, line 4)"""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-1)
    b = torch.tensor(3)
    c = x + 0
    p = b % 5
    for i0 in range(1, (c - -1) % 3):
        for i1 in range(0, (x if k <= -3 else a) % 5):
            if (1 != x or 4 != i1 or 4 == i0) or not y <= i0 or 3 >= 5:
                p += (5 - 2 + -2) % 8
    return a % 2 + x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(1, -6, 1)]
XFAIL = None
