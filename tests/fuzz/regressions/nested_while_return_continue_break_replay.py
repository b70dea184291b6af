r"""Fuzz seed 8, program 160 (the generator of d117f04): nested staged whiles with a return in
the inner one, its while-else `continue`, and a `break` in an elif chain. At d117f04 the trace and
replays ran past 400 s at load 9 (reported as a replay time-out); since then they take 2.5 s.
COMPILE = False: under torch.compile it still ran past 900 s at load 9 (docs/fuzzing.md, open)."""

import torch


def fuzz_fn(x, y, k):
    a = x + 0
    b = torch.tensor(0)
    c = y + 3
    p = k + 1
    q = 1
    guard0 = 0
    guard1 = 0
    guard2 = 0
    guard0 = 0
    while guard0 < 2 and (c >= x or 0 >= 1):
        guard0 += 1
        q = 1
        p = (1 - q + c) % 5 - 35
        if x - c == x + 1:
            guard1 = torch.tensor(0)
            while guard1 < 1 and k != q:
                guard1 += 1
                if k * 3:
                    raise ValueError('fuzz')
                return (x if b == p else b) + (a + -3)
            else:
                continue
        elif p:
            if -2 + k <= (3 if 3 != y else x):
                c %= 2
            else:
                break
        else:
            guard2 = torch.tensor(0)
            while guard2 < 4 and (3 and y >= k):
                guard2 += 1
                a = x * (p % 4) % 5
    return y * -1 + x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 4), (3, -2, 4), (-3, 3, 4)]
XFAIL = None
COMPILE = False
