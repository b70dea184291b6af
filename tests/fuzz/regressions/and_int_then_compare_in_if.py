r"""An `and` in a staged `if` test whose sides have different dtypes (int64 tensor, bool tensor).

Plain Python only takes the truth value of `y and x > 0`; staging refuses it because the two
possible values of the `and` have different dtypes. Hand-reduced from fuzz seed 11."""

import torch


def fuzz_fn(x, y, k):
    a = x + 0
    if y and x > 0:
        a = a + 1
    return a


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(1, 1, 0), (1, 0, 0), (-1, 1, 0)]
XFAIL = None
