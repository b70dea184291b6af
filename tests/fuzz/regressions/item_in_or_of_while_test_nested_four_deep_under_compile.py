r"""Under torch.compile, a staged `if` four statements deep whose body is a `while` with a
staged `or` in its test, `a.item() <= c` on its right: the nesting check (NOTE [nesting under
dynamo] in runtime/staging/context.py) let the innermost `if` through at 784 frames of 1000,
allowing 200 frames plus one per inlined call (268), and dynamo passed the recursion limit 275
frames past the check (a bare RecursionError from its `fake_mode` property, an internal
error): the `or`'s right side runs autoconv's comparison of a number read by `.item()`, six
calls deep, 17 inlined calls past the check where the measured nestings had fewer. Whether the
check or dynamo came first depended on how deep the caller's stack was (the fuzzer's: dynamo;
a script's: the check). The level's fixed part is 240 frames now; the program is refused at
the line with the StagingError README documents ("Deep nesting"), which the runner counts as
agreement. Fuzz seed 3401, program 125."""


import torch


def fuzz_fn(x, y, k):
    a = x + 3
    b = x + 3
    p = 0
    q = k + 1
    c = y % 7
    if k <= y + p:
        if q + y != 0 + -3:
            guard0 = torch.tensor(0)
            while (y == -3 or k <= y or a.item() <= c) and guard0 < 4:
                guard0 += 1
                if 0 != x + y:
                    raise ValueError('fuzz')
                return (b, b % 3)
    if not b > y:
        guard1 = torch.tensor(0)
        while (p < 1 <= k and 4 <= q) and guard1 < 4:
            guard1 += 1
            continue
    else:
        for u0, w0 in zip(torch.stack([b + 2]), [3]):
            break
    return (torch.minimum(y, a) - (y + -3), c)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2)]
XFAIL = None
