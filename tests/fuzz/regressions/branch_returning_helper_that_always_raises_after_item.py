r"""Minimised (seed 27, program 80): mismatch at replay, fixed by fuzz36 (NOTE [branches that
always raise] in runtime/staging/context.py). COMPILE = False: under torch.compile the helper's
None is still refused (an honest StagingError): the strict xfail tests/reference/test_jumps.py::
test_a_branch_calling_a_helper_whose_every_path_raises_under_compile.

The staged `if a.item() < -4:` returns `h0(...)`, a helper whose every path raises ValueError.
Traced on an input that takes the other path, autoconv specialised the graph on the test being
False ("the return value has no value in the true branch but is used afterwards"), so the
ConcreteFunction raised GuardFailed on (3, -8, 4) where Python raises ValueError. An honest
error, not a wrong value: the Function traced that path again. Now, as expected, the graph
asserts, as for a `raise` written in the branch itself (regressions/
every_path_raises_after_a_staged_if.py, helper_that_always_raises_after_loop_with_return.py)."""

import torch


def h0(x, y, k):
    b = y + 2
    p = k + 1
    q = k + 1
    if not not q <= q:
        raise ValueError('fuzz')
    return b + 3

def h1(x, y, k):
    x = x + 0
    y = y + 0
    a = y + 1
    b = torch.tensor(-2)
    c = torch.tensor(1)
    p = 2
    q = 1
    try:
        if (-1 <= p or p <= q) or p:
            for u0, w0 in zip(torch.stack([a % 2, min(a, b), a + c]), [4, -1, 2, 1]):
                continue
        elif y - p >= k:
            if sum([y]) < -1 + b:
                return y // 3 if x != y or -3 >= -1 else x - a
            else:
                q //= 6
        return (c if k == b else y) - 2
    finally:
        p = 0

def fuzz_fn(x, y, k):
    a = y + 1
    b = y + 2
    c = torch.tensor(2)
    p = 2
    q = 3
    if a.item() < -4:
        return h0(a + 0, a + 0, k)
    elif -p >= y + k:
        y -= c % 7
        b -= y % 7
        y //= 3
    elif p // 2 > 2 + y:
        if x >= p or (q <= a or b == q) or k >= -3:
            a = y % 7
    else:
        q += (b + -3 // 2) % 5
    return h1(torch.minimum(c, b) + 0, a + 2 + 0, 2)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, -2, 4), (3, -8, 4)]
XFAIL = None
COMPILE = False
