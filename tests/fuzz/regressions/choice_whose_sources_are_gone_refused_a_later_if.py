r"""Seed 24, program 100 (minimised): a false refusal at trace. The probe of the staged `if`
ran the rest of the function and registered the choice `max(5 - y, b, a)`; its sources were
gone (weak references) when the staged `if` checked for in-place updates, and a dead source
read as updated: "a tensor chosen by a staged statement (max(...)) ... is updated in place
here". A choice whose sources are all gone can alias nothing (runtime/staged_aliases.py)."""

import torch


def h0(x, y, k):
    a = x + 2

def fuzz_fn(x, y, k):
    a = torch.tensor(3)
    b = torch.tensor(1)
    c = y + 2
    p = 2
    x %= 6
    if h0(c + 0, x + 0, 2) == p:
        pass
    elif b - a >= (c or y):
        if a * (0 % 3):
            raise UnboundLocalError('fuzz')
    return max(5 - y, b, a)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(5, -2, 1), (0, 0, 1), (-5, -5, 1), (5, 8, 1)]
XFAIL = None
