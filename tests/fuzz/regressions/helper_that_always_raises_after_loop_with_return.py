r"""A helper whose every path raises, called after a staged loop that may return early.

Code after the loop runs under a staged `if` (the return flag), whose branch calls the helper:
its `raise` becomes a graph assertion and its result the return value's placeholder, which the
comparison cannot use, so the `if` is specialised on the traced input's flag. For the first
input Python takes the raising path, and so did the trace, raising Python's error; the runner
took that for an internal error. Each input now gets its own call. Fuzz seed 15, program 73
(minimised by hand). Since fuzz36 (NOTE [branches that always raise]) the trace is one graph
asserting that the other branch is taken, so the runner went on to torch.compile, which the
per-call path had skipped: there the helper's None meets `x` in `>=` and dynamo stops with its
own TorchRuntimeError on every input (make test-slow, slow39).
COMPILE = False: under torch.compile the None is still refused, the strict xfail
tests/reference/test_jumps.py::
test_a_branch_calling_a_helper_whose_every_path_raises_under_compile[compared_after_a_loop_that_may_return]."""

import torch


def h0(x):
    if 5 > 2 or x >= 0:
        raise UnboundLocalError('fuzz')
    return abs(x - 3)


def fuzz_fn(x, y, k):
    c = x + 3
    for i0 in range((k + 1 - c) % 5):
        if i0 != y:
            return (x, c)
    if h0(c + 0) >= x:
        y = c * 2
    return (y, c)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 2), (3, -2, 2), (-2, 6, 2)]
XFAIL = None
COMPILE = False
