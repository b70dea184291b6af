r"""A read of `m`, which only a loop in the other branch of a staged `if` binds, inside a branch
of an enclosing staged `if`: its bound flag is a Python False there, and the read raised
UnboundLocalError while tracing ("internal at trace: cannot access local variable 'm'"), for
every input, where Python raises only on the inputs that take that path (NOTE [unbound reads in
a staged body]). Hand-reduced from fuzz seed 1, program 5 (the minimiser's program read an
unbound `q`); program 18 is the same read under a `raise ValueError` in the other branch."""

import torch


def fuzz_fn(x, y, k):
    a = y + 3
    if a <= 0:
        for i0 in range(k):
            m = a % 10
    elif a < 2:
        if x > 5:
            raise ValueError('fuzz')
        return y
    return x + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 4), (-7, -3, 4), (0, -2, 4), (7, -2, 4)]
XFAIL = None
