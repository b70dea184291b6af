r"""A name bound only under a branch whose condition is a Python false (`elif 0:`) inside staged
loops, read after them.

Python raises UnboundLocalError on every input. The loops carried the name's bound flag as a
tensor, so the read became a graph assertion, but it handed on the name's placeholder: the trace
ended with "unsupported operand type(s) for +: 'FakeTensor' and 'Undefined'", an internal
TypeError. Fuzz seed 15, program 518 (minimised by hand)."""

import torch


def fuzz_fn(x, y, k):
    b = torch.tensor(0)
    c = torch.tensor(0)
    for i0 in range(y * -2 % 4):
        if not 5 != y:
            b -= 5
        elif 0:
            m = b + 3
        else:
            break
    return (c + m, y)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (7, -1, 1)]
XFAIL = None
