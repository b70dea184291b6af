r"""A list grown under a staged `if`, read by `sum` and `len`: under torch.compile `sum(vs)`
asked whether the stacked list's length, only known when the graph runs, is 0, and dynamo
raised "Could not guard on data-dependent expression Eq(u0, 0)" (found while widening the
generator to grown lists). runtime.values.known_empty asks guard_or_false."""

import torch


def fuzz_fn(x, y, k):
    a = x + 0
    vs = []
    if a > 1:
        vs.append(a % 5)
    return a + len(vs) + sum(vs)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (3, -2, 2)]
XFAIL = None
