r"""A conditional expression on a tensor whose true side calls a `functools.wraps` helper that
raises on every call (`while` / `else: raise ValueError`, the loop staged on `guard0 =
torch.tensor(0)`), in a function that updated its argument `x` in place before it: the trace
raises the StagingError "the value becomes a Python NoneType in the true branch ... the function
writes to its inputs in place before it", where Python raises ValueError when `x >= y` and
returns `x` elsewhere. The helper converts to the staged `while`, then `ac.raise_(...)` and a
return of the placeholder no `return` set; traced in the staged branch the raise does not
raise there, and the helper, on which no return ran, gives None (NOTE [falling off the end]). The kind of seed 27's program 80 (`branch_returning_helper_that_always_raises_after_item.py`,
a GuardFailed there). Fuzz seed 3501, program 12 (minimised by hand). Fixed (fuzz36): a branch
that raised at its own level makes the expression an assertion that the other side is taken
(NOTE [branches that always raise] in runtime/staging/context.py).
COMPILE = False: under torch.compile the None is still refused (an honest StagingError), the
strict xfail tests/reference/test_jumps.py::
test_a_branch_calling_a_helper_whose_every_path_raises_under_compile."""

import torch
import functools


def traced(fn):

    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper


@traced
def h0(x, y, k):
    guard0 = torch.tensor(0)
    while guard0 < 1 and k > x:
        guard0 += 1
    else:
        raise ValueError('fuzz')
    return x


def fuzz_fn(x, y, k):
    x += 1
    return h0(y + 0, x + 0, k) if x >= y else x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (8, 3, 2), (-4, 4, 2)]
XFAIL = None
COMPILE = False
