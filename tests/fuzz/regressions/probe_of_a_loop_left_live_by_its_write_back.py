r"""A loop inside a staged `if` inside a staged loop, whose body raises on a Python condition.

Probing the outer loop's body traced the inner loop once more in the enclosing graph (a probe's
ops are dead code), with a test decided for its first trip only; the write-back of its counter
(`guard1 += 1` updates the tensor in place) into the tensor the probe made kept that loop
alive, and the replay never ended. Probes now write nothing back. Fuzz seed 8, program 160."""

import torch


def fuzz_fn(x, y, k):
    c = y + 3
    q = 1
    guard0 = 0
    while guard0 < 2 and c >= x:
        guard0 += 1
        if x - c == x + 1:
            guard1 = torch.tensor(0)
            while guard1 < 1 and k != q:
                guard1 += 1
                if k * 3:
                    raise ValueError('fuzz')
                return x
            else:
                continue
    return y * -1 + x


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, -2, 4), (-3, 3, 4), (3, -5, 4)]
XFAIL = None
# Three nested staged statements: dynamo takes over a minute on 2 busy cores.
COMPILE = False
