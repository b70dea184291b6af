r"""A staged `for` over `zip(torch.stack([y]), [-1])` whose body has a `continue` under an
`.item()` condition, then an `if` / `else` that rebinds `b` on one branch and appends to the
list `vs` on the other: the trace raised the StagingError "'vs' is a Python list before the
statement and is reassigned in the loop body" where Python runs. `b = torch.tensor(3)` is a
tensor whose value the trace knows, and the loop's probe ran on copies that kept it:
`(b // 6).item() < 2` was decided as Python (the `continue`), no list grew, then the loop's
body, traced on placeholders of unknown value, staged the `if` and grew `vs`. Fixed: a loop's
probe runs on copies of no known value (NOTE [a loop's probe knows no values] in
runtime/staging/torch.py). Fuzz seed 3401, program 258."""


import torch


def fuzz_fn(x, y, k):
    b = torch.tensor(3)
    p = 0
    q = k + 1
    vs = []
    for u0, w0 in zip(torch.stack([y]), [-1]):
        if (b // 6).item() < 2:
            continue
        if u0 >= x and -3 >= 3:
            b = (x + p) * 3 % 10
        else:
            vs.append((y * (u0 % 5) + (y + q)) % 10)
    return y + (len(vs) + sum(vs))


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(-6, -4, 2)]
XFAIL = None
