r"""A method of another object that counts its calls in a list the object holds
(`self.state[0] += 1`, the caller's `state = [0]`), called in the test of a staged `if` that
returns, inside a staged loop (`while` or `for`; fuzz seed 3801, program 2, the generator's
first counting callables, session 38): under torch.compile the count came back one more than
Python's (7 for 6, on the input that never returns), silently; autoconv's replay and
torch.export were right. The probe's run of the loop body that learns the return value's type
got the caller's `meter` itself, and dynamo applied its count after the call (NOTE [objects a
probe's run changes under dynamo] in runtime/staging/torch.py; fixed in session 39)."""

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
