r"""Minimised (seed 20261123, program 40; fixed): internal at compile: SyntaxError: duplicate argument 'child_9' in function definition (<eval_with_key>.36800, line 4)"""

import torch


def fuzz_fn(x, y, k):
    a = y + 3
    b = y + 0
    c = torch.tensor(0)
    guard0 = torch.tensor(0)
    while (b == x or a < 0) and guard0 < 2:
        guard0 += 1
        guard1 = torch.tensor(0)
        while not c != y and guard1 < 2:
            guard1 += 1
            y = torch.tensor(-1)
            for i0 in range(c % 5):
                return a
    return b - a - (-1 - 3)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(-4, -7, 4)]
XFAIL = None
