r"""The kind of fuzz seed 3401's program 258 in a `while`: `if b.item() < 5: continue` reads a
tensor the function made (`b = torch.tensor(3)`, a value the trace knows), and the rest of the
body rebinds `b` and grows `vs`. The loop's probe decided the `continue` as Python and saw no
list grow; the body, traced on placeholders, staged it and grew `vs`: a StagingError at trace
and under torch.compile ("'vs' is a Python list before the statement and is reassigned").
NOTE [a loop's probe knows no values] in runtime/staging/torch.py."""

import torch


def fuzz_fn(x, y, k):
    b = torch.tensor(3)
    vs = []
    guard = 0
    while x > guard and guard < 3:
        guard += 1
        if b.item() < 5:
            continue
        b = b + 3
        vs.append(y % 10)
    return y + (len(vs) + sum(vs))


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 1, 2), (0, 0, 2)]
XFAIL = None
