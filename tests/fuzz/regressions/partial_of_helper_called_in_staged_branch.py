r"""A helper called through a `functools.partial` bound at the top of the function, in a branch
of a staged `if`: under torch.compile the search for symbolic floats the statement's inputs hold
(NOTE [symbolic floats held by objects]) read the partial's `__dict__` with `getattr(value,
"__dict__", None)`, which dynamo does not know for a partial: an AttributeError it did not
catch, "Observed exception" (fuzz seed 3703, program 17, the generator's first partials; the
kind of lead36 s01, a partial argument called in a staged `while`'s test). Replay and export
were right."""

import functools

import torch


def h0(x, y, k):
    x = x + 0
    y = y + 0
    return x + y + k


def fuzz_fn(x, y, k):
    a = x + 1
    ph0 = functools.partial(h0, y + 1)
    if a > 0:
        a = ph0(x + 0, k)
    return a


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(1, 2, 3), (-4, 2, 3), (0, -5, 3)]
XFAIL = None
