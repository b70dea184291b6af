r"""Fuzz failure (seed 5601, program 0, minimised by hand): internal at compile.

A staged `if` whose body updates a tensor in place (`c += 3`, `x -= ...`) and calls `inner`, a
nested function closing over the tensor `b`. Before staging, the `if` asks whether each body
reads a carried slot before binding it (`_reads_before_binding`, a function dynamo runs for real
with its arguments as Python constants); it was given the converted body itself, which closes
over `inner`, so under torch.compile(fullgraph=True) dynamo could not make it a constant:
"InternalTorchDynamoError: ClosureConversionError: failed to convert closure cell to Python
constant" at the `if`'s line. It now takes the body's code object. Plain Python, replay and
export: (0, 0, 0) -> 0, (3, -2, 0) -> 0, (-2, 8, 0) -> -6, (7, -5, 0) -> 4.
"""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-2)
    b = y + 1
    c = torch.tensor(-1)

    def inner(t):
        return t % 4 + b % 5
    if x < 2:
        if y > 0:
            c += 3
            x -= inner(y) % 5
        else:
            a = b % 7
    elif (b := (x % 5)) <= -2:
        a = inner(-x) % 10
    return a + c + x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 0), (3, -2, 0), (-2, 8, 0), (7, -5, 0)]
XFAIL = None
