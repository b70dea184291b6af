r"""A `while` that grows a list makes no trip: under torch.compile the probe of its body (the
types of the items) appended at the count of a buffer sized for no trip, and dynamo's graph,
which keeps that dead code, raised "index is out of bounds for dimension with size 0" when run
by the eager backend (found while widening the generator to grown lists). A probe's append
writes nothing."""

import torch


def fuzz_fn(x, y, k):
    b = y + 1
    vs = []
    guard0 = 0
    while b > 0 and guard0 < 3:
        guard0 += 1
        vs.append(b % 7)
        b -= 2
    return b + len(vs)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, -1, 2), (0, 2, 2), (0, 5, 2)]
XFAIL = None
