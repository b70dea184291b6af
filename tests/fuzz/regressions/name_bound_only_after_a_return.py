r"""A name only unreachable code binds (`m = 0` after a `return` in a loop's body; in the fuzzer's
program, after a `while` whose body and `else` both return) is a local no run binds, so Python
raises UnboundLocalError at its read. The jump lowerings drop the unreachable code, and the
converted function's staged body read `m` as a free variable: "cannot access free variable 'm'
where it is not associated with a value" (a NameError) at the trace, or a graph specialised on
the staged test (GuardFailed). The read is now an unbound read (NOTE [names only unreachable
code binds] in autoconv/converters/unbound.py). Fuzz seed 28, program 11 (minimised; the second
input takes the staged path)."""

import torch


def fuzz_fn(x, y, k):
    guard0 = 0
    while x > 0 and guard0 < 1:
        guard0 += 1
        return y
        m = 0
    return x + m


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (3, -2, 1)]
XFAIL = None
