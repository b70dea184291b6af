r"""A helper called through a `functools.partial` holding a tensor (`ph0 = functools.partial(h1,
y + 1)`) beside a bound method of another object that counts its calls in a list the object
holds (`tick = meter.tick`), both in a staged `if` inside a staged `for` loop (fuzz seed 3801,
program 2, session 38): under torch.compile dynamo stopped with its own "Failed to trace builtin
operator `is_` with argument types ['partial', 'partial']", an internal error, raised where
autoconv names a staged statement's inputs (`shown_input` in runtime/staging/objects.py, `given
is value`): dynamo answers `is` between two partials made in its trace for neither, and refuses
comparing their `id()`s too ("Comparison on compile-time-only id or hash value"). Found, not
fixed. Replay and export are right. Session 39 (errs39): with that `is` answered by comparing the
two partials' function and arguments (an experiment, not kept), the compile went on (258 s at
load 12) and returned 1003 for the first input, where Python returns 3 (`range(2, a % 3)` is
empty, so `tick` never runs and `state[0]` stays 0): a count the probes of the staged `if` make
through the bound method reaches the list the object holds. So the internal error is not the
only defect here: answering the `is` alone would make it a wrong number."""

import functools

import torch


class Meter:

    def __init__(self, state):
        self.state = state

    def tick(self, t):
        if t > 1:
            self.state[0] = self.state[0] + 1
        return t % 4 + self.state[0] % 3 + 1


def h1(x, y, k):
    return x + y


def fuzz_fn(x, y, k):
    a = y + 3
    ph0 = functools.partial(h1, y + 1)
    state = [0]
    meter = Meter(state)
    tick = meter.tick
    for i0 in range(2, a % 3):
        if a - 5 != k - i0:
            if tick(x) <= 1:
                return x + ph0(x + 0, k)
    return x + 1000 * state[0]


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 2, 1), (0, 1, 1), (2, 5, 1), (1, 3, 1)]
XFAIL = ('fuzz38 s38: under torch.compile a partial beside a bound method in a staged if in a '
         'staged for stops in dynamo\'s is_ of two partials (internal error)')
