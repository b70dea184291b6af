r"""An `if` / `elif` / `elif` / `else` whose first `elif` holds a four-test `elif` chain
appending to `vs` (one branch with a staged conditional expression, one with a nested `if`
that raises), beside a staged `for` with a `return` and a `while` (fuzz seed 5311, program 50,
session 53): trace, replay and export agree with Python, and torch.compile did too, but its
compile took 219 s of CPU (fuzz53, load 15), past the fuzzer's 60 s limit, so it counted as a
time-out. Not a hang: dynamo interprets autoconv's runtime, about 26k bytecode steps per staged
statement, and a statement nested d deep is staged d + 2 times (fuzz54: docs/fuzzing.md,
"Compile time-outs"). The compile stage now has its own CPU budget (NOTE [the compile stage's
own time limit] in tests/fuzz/runner.py); its compile check runs in make test-slow."""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(1)
    b = torch.tensor(-1)
    c = x + 0
    p = k + 1
    q = 0
    vs = []
    guard0 = 0
    p += torch.minimum(-b, x) % 7
    b += y % 8
    for i0 in range(2):
        p = c - 3
        if i0 - i0:
            raise UnboundLocalError('fuzz')
    if 5 + c > q:
        vs.append(c - 1)
    elif 4 - p >= -1:
        if q % 5 < x:
            vs.append((c - c if x == c else b * (x % 2)) % 100 - 22)
        elif b != -2 - -3:
            return x
        elif -3 - y < x - q:
            vs.append((a % 7 + p) % 7)
        elif 5 * (c % 3) == x // 2:
            if x + 2 <= max(c, 0, 1):
                raise UnboundLocalError('fuzz')
        else:
            q = y - 2
    elif 3 < b and (a >= p and q < x):
        for i1 in range((y - k) % 3):
            return torch.abs(x + y)
    else:
        guard0 = 0
        while b == p and guard0 < 3:
            guard0 += 1
            x = x % 10 - 45
    return x + (len(vs) + sum(vs))


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (-6, 2, 1), (-5, 3, 1)]
XFAIL = None
COMPILE_TIME_LIMIT = 600
