r"""Minimised (seed 25, program 150): internal at compile: SyntaxError: duplicate argument
'child' in function definition.

A staged `while` whose test and body both read an object's field (`s.v`) while the loop
carries that field's tensor too (the return value the body sets, `(s.v, d['k'])`). Under
torch.compile, dynamo lifts the field's tensor, read by closure in both bodies, into the
cond graph as a placeholder whose target is the tensor's node name, the target of the
operand's placeholder already: two parameters of one name (NOTE [lifted inputs named as an
operand] in runtime/staging/tracers/dynamo.py)."""

import torch


class State:

    def __init__(self, v):
        self.v = v


def fuzz_fn(x, y, k):
    s = State(x + 1)
    d = {'k': y + 0}
    guard0 = 0
    while x != s.v and guard0 < 3:
        guard0 += 1
        return (s.v, d['k'])
    return ((d['k'] - k) * 0, x % 7)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 4), (3, -2, 4)]
XFAIL = None
