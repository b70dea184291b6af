r"""The same read of `m`, traced first on an input where the `if` never assigns it.

Whether `m` is bound is decided by the data, so tracing must not raise: the graph carries it
(and its value), and raises Python's UnboundLocalError when it runs on an input that leaves `m`
unbound. The graph returned y + 0 there. Found by the fuzzer's `m` programs (seed 3)."""

import torch


def fuzz_fn(x, y, k):
    guard0 = 0
    while x > 0 and guard0 < 2:
        guard0 += 1
        if y > 0:
            m = x + 1
    return y + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, -2, 0), (3, 2, 0)]
XFAIL = "a variable bound on some paths of a staged loop only: no bound flag yet (issue 10)"
