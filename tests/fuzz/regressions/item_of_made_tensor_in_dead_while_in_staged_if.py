r"""A `while` whose test reads `.item()` of a tensor the function made (`c = torch.tensor(1)`,
whose value the trace knows), inside a staged `if`, its carried values read by nothing after
it. make_fx recorded the read as an `item` node with no `val` (its result was the Python
number 1); torch.export's dead-code pass erased the dead `while_loop` node but left its bodies
on the module, and torch's verifier refused the program ("Node.meta item is missing val
field"; fuzz seed 3603, program 150, at export: a helper `h0` holding the loop, called in the
test of a staged `if` in a staged `while`). NOTE [reads of values the trace knows]."""

import torch


def h0(x, y, k):
    c = torch.tensor(1)
    guard0 = 0
    while c.item() <= y and guard0 < 1:
        guard0 += 1
    return x + 1


def fuzz_fn(x, y, k):
    a = torch.tensor(-1)
    if x > 0:
        a = h0(x, y, k)
    return a + y


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(-6, 1, 2), (3, 1, 2), (3, 0, 2)]
XFAIL = None
EXPORT = True
