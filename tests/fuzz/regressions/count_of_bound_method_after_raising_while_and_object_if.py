r"""A bound method of another object counting its calls in the caller's list (`tick =
meter.tick`, `self.state[0] += 1`), called as a statement in a staged `if` (`if c != 2:
tick(...)`), after a staged `while` whose `and` test is false at once on these inputs (`q < k`,
2 < 1) and whose body raises, and a staged `if` that changes an object's tensor field, a dict's
item and a local (fuzz seed 4001, program 10, session 40, with the program's unused
`functools.partial` taken out): under torch.compile (eager backend) the first input's count
comes back 2 where Python's is 1 (2000 for 1000), silently. Autoconv's replay and torch.export
are right. Without the `while`, or without the first `if`'s body, the count is right (each
checked alone, session 40). With the partial, the compile stopped in dynamo's `is_` of two
partials until session 40's NOTE [identity under dynamo]; the wrong count is there without it.
The `while`'s raise puts the rest of the function in a staged `if not do_return`, whose
types-only probe (objects._probe) gave the body the caller's objects as they are: the inner
`if` moved the list `tick` reaches into its state and wrote the probe's count back into the
caller's list, which the outer `if` then carried in as its start (NOTE [objects a probe's run
changes under dynamo]; fixed in session 41, silent41 s01)."""

import torch


import collections
import functools

class State:

    def __init__(self, v):
        self.v = v

    def bump(self, t):
        if t > self.v:
            return t - self.v
        return self.v % 5 + t

    def step(self, t):
        if t > 0:
            self.v = (self.v + t) % 7
        else:
            self.v = (self.v - t) % 5

class Meter:

    def __init__(self, state):
        self.state = state

    def tick(self, t):
        self.state[0] += 1
        return t % 6 + self.state[0] % 3 + 0

def count_in(tally, t):
    tally['n'] += 1
    return t % 4 + tally['n'] % 3 + 1


def fuzz_fn(x, y, k):
    s = State(x + 1)
    d = {'k': y + 0}
    a = torch.tensor(0)
    b = torch.tensor(1)
    c = y + 3
    p = k + 1
    q = 2
    state = [0]
    meter = Meter(state)
    tick = meter.tick
    tally = {'n': 0}
    guard0 = 0
    guard0 = torch.tensor(0)
    while guard0 < 2 and q < k:
        guard0 += 1
        if p > y or 3:
            raise ValueError('fuzz')
    if c <= -2:
        b = b + 2
        s.v += -2
        d['k'] %= 2
    if c != 2:
        tick(torch.maximum(b, y))
    return (a % 4 // 2 + (1000 * state[0] + 10000 * tally['n']), torch.minimum(s.v, x) + (s.v - q))


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (7, -8, 1)]
TIME_LIMIT = 300
