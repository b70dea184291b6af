r"""A variable a staged `if` in a staged `while` assigns, read after the loop, on an input where it never is.

Plain Python raises UnboundLocalError for y <= 0; the graph traced on y = 2 (the `if` runs)
returned y + 0: the zero `m` starts as in the loop state. Found by the fuzzer's `m` programs (seed 3)."""

import torch


def fuzz_fn(x, y, k):
    guard0 = 0
    while x > 0 and guard0 < 2:
        guard0 += 1
        if y > 0:
            m = x + 1
    return y + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 2, 0), (3, -2, 0)]
XFAIL = "a variable bound on some paths of a staged loop only: no bound flag yet (issue 10)"
