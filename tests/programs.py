"""Small converted programs that several embedding tests run (ONNX, fx.symbolic_trace, the API).

Each is a construct family in its shortest real form; the tests pick the inputs that take each
path. Kept in one module so that a change to a program is seen by every test that runs it.
"""

import torch


def collatz_steps(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def if_elif(x):
    if x.sum() > 1:
        y = x * 2
    elif x.sum() < -1:
        y = x - 1
    else:
        y = -x
    return y


def logical(x):
    if x.sum() > 0 and x.max() < 3 or not x.min() > -5:
        return x + 1
    return x - 1


def for_break_continue(x):
    total = torch.zeros(())
    for row in x:
        if row.sum() > 0:
            continue
        total = total + row.sum()
        if total < -3:
            break
    return total


def early_return(x):
    i = torch.tensor(0)
    while i < 5:
        if x[i] > 2:
            return x[i] * 10
        i += 1
    return x.sum()


def squares(n):
    out = []
    i = torch.tensor(0)
    while i < n:
        out.append(i * i)
        i += 1
    return torch.stack(out).sum()


def halves_until_small(x):
    vals = []
    while x.sum() > 1:
        x = x * 0.5
        vals.append(x)
    if len(vals) > 0:
        return torch.stack(vals).sum(0)
    return x
