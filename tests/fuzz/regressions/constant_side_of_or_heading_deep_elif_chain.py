r"""Fuzz seed 26, program 225: a time-out at compile (the whole program, not minimised).

`if c < p or 1 <= 2:` is always taken in Python, but the tensor left side staged a cond for the
`or`, which made the `if` a staged one, so that its `elif` chain (four staged statements deep,
with loops on `s.v.item()`) was traced too: under torch.compile 620k of dynamo's steps and 72 s
of CPU for the first input before the StagingError for depth, and the program's time limit ran
out. A Python side that decides a test now makes it a Python bool (NOTE [a plain side that
decides a test] in runtime/operators.py): 32 s of CPU for the whole check at load 10."""

import torch


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


def fuzz_fn(x, y, k):
    s = State(x + 1)
    d = {'k': y + 0}
    a = y + 3
    b = x + 0
    c = x + 3
    p = 2
    q = 1
    vs = []
    guard0 = 0
    guard1 = 0
    guard2 = 0
    if s.v % 7 > x // 7:
        if c < p or 1 <= 2:
            guard0 = 0
            while d['k'] and guard0 < 3:
                guard0 += 1
                b = (k + s.v * (0 % 4)) % 7
            a += x % 9
        elif abs(c) != 5:
            guard1 = torch.tensor(0)
            while 3 != s.v and guard1 < 4:
                guard1 += 1
                return (torch.minimum(y, b) * (s.v % 2), x)
            for i0 in range(2):
                return (c, a)
        elif q < s.v and x <= p:
            if q:
                p = k - 3
            elif (b != 2 and 2 <= -1 > d['k']) and (s.v < y and s.v.item() > b):
                vs.append(c + 2)
        elif not (b and 5 == q):
            guard2 = torch.tensor(0)
            while guard2 < 4 and s.v.item() == a:
                guard2 += 1
                x = s.v + 1
    return (b + k - q + (len(vs) + sum(vs)), b)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (3, -2, 2), (6, -4, 2)]
XFAIL = None
