r"""A method of another object that counts its calls in a list the object holds
(`self.state[0] += 1`, the caller's `state = [0]`), called in the test of a staged `if` that
returns, inside a staged loop (`while` or `for`; fuzz seed 3801, program 2, the generator's
first counting callables, session 38): under torch.compile the count came back one more than
Python's (7 for 6, on the input that never returns), silently; autoconv's replay and
torch.export are right. Found, not fixed: the same loop with `break` for `return` is right, and
so is the count set by a partial (refused by dynamo, "HOP: Unsafe side effect"). The +1 is the
count of one run of the loop body more than Python's, on the list itself: a run of the body
that is not the staged one (a probe) reaching the caller's list through the bound method."""

import torch


class Meter:

    def __init__(self, state):
        self.state = state

    def tick(self, t):
        self.state[0] += 1
        return t % 4 + 1


def fuzz_fn(x, y, k):
    state = [0]
    meter = Meter(state)
    guard0 = 0
    while guard0 < y % 3 + 1:
        guard0 += 1
        if meter.tick(x) <= 1:
            return x
    return x + state[0]


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 2, 1), (0, 1, 1), (2, 5, 1)]
XFAIL = ('fuzz38 s38: under torch.compile a count a bound method keeps in its object\'s list, '
         'called in a staged loop that may return, is one more than Python\'s')
