r"""A variable every trip of a loop binds, read after a loop that runs as Python (a Python
test) and makes no trip: Python raises UnboundLocalError at the read. The name had no bound flag
(every trip binds it; a staged loop checks it ran), so the read went on with autoconv's
Undefined placeholder and the trace raised "unsupported operand type(s) for +: 'FakeTensor' and
'Undefined'". The read now checks for the placeholder (NOTE [reads after a loop of no trip]).
Fuzz seed 13, program 33."""

import torch


def fuzz_fn(x, y, k):
    p = k + 1
    guard0 = 0
    while -3 >= p and guard0 < 1:
        guard0 += 1
        m = torch.tensor(1)
    guard1 = torch.tensor(0)
    while guard1 < 4 and y < -2:
        guard1 += 1
    return y + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 0), (-1, -5, 0)]
XFAIL = None
