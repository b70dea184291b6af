r"""A staged `for` over `zip(torch.stack([y]), [-1])` whose body has a `continue` under an
`.item()` condition, then an `if` / `else` that rebinds `b` on one branch and appends to the
list `vs` on the other: the trace raises the StagingError "'vs' is a Python list before the
statement and is reassigned in the loop body" where Python runs (the generator never rebinds
`vs`). A simpler loop of the same shape traces and agrees (`if b.item() < 2: continue`,
`if u0 >= x:`, `vs.append(y % 10)`), so the cause lies in one of the minimised program's
expressions (`(b // 6).item()`, the constant `and -3 >= 3`, the append's value reading `u0`).
Open: not examined further (session 34 ran out of time). Fuzz seed 3401, program 258."""


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
XFAIL = ("open: a StagingError at trace, 'vs' taken as reassigned in the body of the staged "
         "for over zip(tensor, list) (fuzz seed 3401, program 258)")
