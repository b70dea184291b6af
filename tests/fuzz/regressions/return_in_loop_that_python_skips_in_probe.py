r"""Reduced from fuzz seed 31, program 198: crash at trace: in a tensor-dependent for loop:
'retval' is unbound before the statement and is reassigned in the loop body.

The staged `for` probes its body once to learn the type of the return value, with the
`do_return` flag still the Python bool False: the inner `while not do_return and False` then runs
as Python and never reaches its `return`, so the return value stays unset. Staged, the flag is a
bool tensor, the inner loop is staged too, and its own probe does set the return value."""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-1)
    b = y + 1
    for i0 in range(b % 2):
        while False:
            return a
        else:
            b -= 1
    return b


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (0, 1, 1), (0, -3, 1)]
XFAIL = None
