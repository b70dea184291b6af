r"""A loop with `break` (and `return`) inside one branch of a staged `if`.

The loop's break flag, which autoconv makes, was read by the lambda of the loop test's `and`
as a closure, so it became a cell of the whole function, carried by the outer `if` with no
value on its other branch: the graph was specialised on the condition, and replaying the other
path failed ("autoconv specialised this graph ... because the break flag has no value").
Hand-reduced from fuzz seed 8 (programs 315, 537, 639, 725, 779, 835, 1083, 1131)."""

import torch


def fuzz_fn(x, y, k):
    c = torch.tensor(2)
    if x > 0:
        while y > 0:
            if y > 5:
                return x + c
            else:
                break
    return c


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(1, 3, 0), (0, 3, 0), (1, 9, 0), (1, -1, 0)]
XFAIL = None
