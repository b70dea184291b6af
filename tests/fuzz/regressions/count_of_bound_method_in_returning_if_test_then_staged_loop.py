r"""A method of another object that counts its calls in a list the object holds
(`self.state[0] += 1`, the caller's `state = [0]`), called in the test of a staged `if` that
returns, then again in a staged `for` loop that breaks on it (fuzz seed 20261129, program 19 at
size 5, tests/test_fuzz.py's sample once the generator wrote counting callables, session 38):
autoconv's replay gave a count one less than Python's on every input, silently: the `if`'s
else branch was given a copy of `meter` (which the count moved into the statement's state)
and the caller's `state`, so its `x + state[0]` read the count before the loop's call. Fixed
in session 38 (NOTE [inputs held by a moved object] in runtime/staging/objects.py)."""

import torch


class Meter:

    def __init__(self, state):
        self.state = state

    def tick(self, t):
        self.state[0] += 1
        return t % 6 + 0


def fuzz_fn(x, y, k):
    state = [0]
    meter = Meter(state)
    a = torch.tensor(-2)
    b = y + 3
    if meter.tick(y) == b - 2:
        return a
    for i0 in range(x % 2 + 1):
        if meter.tick(a) > 2:
            break
    return x + state[0]


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (1, 0, 2), (3, 1, 2), (0, -1, 2)]
