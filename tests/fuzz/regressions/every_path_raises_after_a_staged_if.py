r"""Every path raises: one `raise` in each branch of a staged `if`, an unreachable `return`.

No return statement runs, so the return value autoconv holds for early returns stayed unbound,
and the trace ended with "fuzz_fn returns local variable 'return value', which has no value on
the path taken" (an internal variable, an UnboundLocalError Python never raises) instead of a
graph whose assertions raise the ValueError. Fuzz seed 8, program 634."""

import torch


def fuzz_fn(x, y, k):
    if 0 < x:
        raise ValueError('fuzz')
    raise ValueError('fuzz')
    return 0


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (3, 0, 1)]
XFAIL = None
