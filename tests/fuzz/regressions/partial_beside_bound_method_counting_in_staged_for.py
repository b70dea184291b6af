r"""A helper called through a `functools.partial` holding a tensor (`ph0 = functools.partial(h1,
y + 1)`) beside a bound method of another object that counts its calls in a list the object
holds (`tick = meter.tick`), both in a staged `if` inside a staged `for` loop (fuzz seed 3801,
program 2, session 38): under torch.compile dynamo stopped with its own "Failed to trace builtin
operator `is_` with argument types ['partial', 'partial']", an internal error, raised where
autoconv names a staged statement's inputs (`shown_input` in runtime/staging/objects.py, `given
is value`): dynamo answers `is` between two partials made in its trace for neither, and refuses
comparing their `id()`s too ("Comparison on compile-time-only id or hash value"). Replay and
export were right. Session 39 (errs39): with that `is` answered by comparing the two partials'
function and arguments (an experiment, not kept), the compile went on (258 s at load 12) and
returned 1003 for the first input, where Python returns 3 (`range(2, a % 3)` is empty, so `tick`
never runs and `state[0]` stays 0): a count the probes of the staged `if` made through the bound
method reached the list the object holds. Session 39 (silent39) gave every probe's run copies of
the objects it reaches (NOTE [objects a probe's run changes under dynamo]); session 40 answers
the `is` by the partials' parts (NOTE [identity under dynamo] in runtime/identity.py): every
input right under torch.compile (159 s of CPU at load 13-16, most of it the one compile), and
its second call no longer compiles again (NOTE [a path's conditions are never unset])."""

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
XFAIL = None
# its check (trace, replays, torch.compile) is right but took 159 s of CPU at load 13-16
TIME_LIMIT = 400
