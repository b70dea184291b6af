r"""`.item()` of a local object's tensor field in a staged loop's test: the field reaches the
body by closure, make_fx held it as a constant and ran the value read outside the graph, and
its unbacked number had no node ("Pending unbacked symbols {u0} not in returned outputs"; "u0 is
not tracked with proxy" where the `if` is Python's). NOTE [values read from a tensor of an
enclosing graph]. Hand-reduced from fuzz seed 1, program 68 (the minimiser's program read an
unbound `guard1`)."""

import torch


class State:

    def __init__(self, v):
        self.v = v


def fuzz_fn(x, y, k):
    s = State(x + 1)
    guard1 = 0
    if s.v >= y:
        guard1 = torch.tensor(0)
        while s.v.item() >= 0 and guard1 < 3:
            guard1 += 1
            if s.v.item() > 5:
                break
    return x + guard1


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 1), (6, 8, 1), (6, 2, 1), (-3, -5, 1)]
XFAIL = None
