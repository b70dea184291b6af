r"""Two nested staged `while`s over an object's field that a method changes (`s.step(...)`),
beside a counting callable object and a partial counting in a dict, inside a staged `if` (fuzz
seed 4101, program 1, session 41, not minimised): the trace ends, after about 170 s of CPU,
in a RecursionError inside a branch's trace, reported as a StagingError naming contextlib.py
(a crash, not a wrong value; a time-out in the fuzz run at load 12-16). Found in session 41
(silent41 s02); right since session 42's tester42 merge (0b57d3f: a run changing an object and
a callable input holding it moves the holder first), measured in session 43 (silent43b): the
check passes in 21 s at load 12, its replay's trace 16 `carry` calls, none repeated. A record
carried already and replaced again is now refused by `carry` (a StagingError) rather than
staged again without end.

Why it is slow and deep (errs42, 2026-12-06, load 13-14, the replay on INPUTS[0] with
`objects.carry` wrapped to log its calls): the trace is one chain of `objects.carry`
restagings, not a long computation. `carry` is entered for the `if` statements in turn with
the carried slots [0] and no records, then with the slots [1] and the records {0:
'.calls[0]'} (the Counter's call count, a number a body replaces: `_ReplacedRecord`), one
level deeper each time: depth 41 after 64 s, with 40 restagings "abandoned"
(`restaging.counts`) and each level re-tracing the bodies of the enclosing statements; the
faulthandler stacks show `objects.py` `return carry(...)` in `except _ReplacedRecord` (line
995) repeated until Python's recursion limit. The record names slot 0 while the slots then
carried are [1], which suggests (not verified) that the replaced count is recorded for a
slot `carried_slots` does not carry, so that the same `_ReplacedRecord` comes back on every
retry. Not fixed in session 42 (the analysis above is of the code before 0b57d3f)."""

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

class Counter:

    def __init__(self):
        self.calls = [0]
        self.seen = {'n': 0}
        self.n = 0

    def __call__(self, t):
        self.calls[0] = self.calls[0] + 1
        return t % 4 + 2

def count_in(tally, t):
    if t > -2:
        tally['n'] += 2
    return t % 7 + 1


def fuzz_fn(x, y, k):
    s = State(x + 1)
    d = collections.defaultdict(int, {'k': y + 0})
    a = x + 1
    b = y + 2
    c = torch.tensor(2)
    p = k + 1
    q = k + 1
    cnt = Counter()
    tally = {'n': 0}
    pcount = functools.partial(count_in, tally)
    guard0 = 0
    guard1 = 0
    pcount(s.v // 5)
    if -1 * (k % 3) <= b:
        guard0 = torch.tensor(0)
        while 1 <= q and guard0 < 1:
            guard0 += 1
            if p >= x or -3 or s.v != k:
                s.step(s.v * (s.v % 3))
                cnt(s.v)
            else:
                break
            guard1 = torch.tensor(0)
            while guard1 < 1 and (not s.v > -1):
                guard1 += 1
                s.step(b * -2)
    return a + (cnt.calls[0] + 10 * cnt.seen['n'] + 10000 * tally['n'])


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (-4, -6, 2), (-8, 6, 2), (-5, 2, 2), (-8, -8, 2)]
TIME_LIMIT = 120  # (21 s at load 12 in session 43)
COMPILE = False  # (the trace took about 170 s of CPU before 0b57d3f)
