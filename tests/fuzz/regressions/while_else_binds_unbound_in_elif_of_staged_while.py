r"""`m` bound in the `else` of a while loop that returns, inside an elif of a staged `if` inside a
staged `while`, read after the outer loop: the loop's output for `m` is still autoconv's Undefined
placeholder while its bound flag is a tensor, and the read (`b + m`) fails while tracing:
"crash at trace: a branch raises TypeError(\"unsupported operand type(s) for +: 'FakeTensor'
and 'Undefined'\")" (a StagingError, not a wrong value). Fuzz seed 1, program 234 (minimised).
Open: smaller shapes of it (the outer `while` alone, one branch, no `return` in the inner
loop) trace and agree with Python.
TIME_LIMIT = 300: its check (trace, replay and torch.compile) is right but took 62 s of CPU
time (256 s wall at load 10-13, 2026-12-05, slow39), past the runner's 60 s limit for hangs:
make test-slow reported it as a time-out at compile."""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-2)
    b = torch.tensor(3)
    c = torch.tensor(3)
    p = k + 1
    q = k + 1
    guard0 = 0
    guard1 = 0
    guard2 = 0
    p = -4
    y //= 2
    guard0 = torch.tensor(0)
    while not -3 == y and guard0 < 2:
        guard0 += 1
        if abs(y).item() != p:
            guard1 = torch.tensor(0)
            while b != b and guard1 < 1:
                guard1 += 1
                a = (p + y) * -2 % 5 - 32
                return c * 2 * -2
            b += (-c + (q + p)) % 5
        elif -2 < p and y < 5 and (c.item() > q and a > x):
            guard2 = torch.tensor(0)
            while c > a and guard2 < 1:
                guard2 += 1
                return c
            else:
                m = (x + (a - x)) % 7
        elif (c - b).item() <= 3 % 4:
            for i0 in torch.stack([x]):
                y = (a - a - (i0 + -2)) % 10 - 7
    return b + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 0)]
XFAIL = None
TIME_LIMIT = 300
