r"""A local made by the function (`c = torch.tensor(3)`, held by no other name), rebound by a
staged `for` on some trips inside a staged `if`, then updated in place by a later `if`'s branch:
the choice converter took `c`, bound outside the `if`'s body, as held elsewhere (as a
parameter is), watched it as a name kept on some paths and refused the update in the compound
statement; the trace specialised the inner `if` and the replay raised GuardFailed (in the
function's own block the same lines agreed). `torch.stack([c, c, b])` in the outer test also
counted as giving `c` away. A nested block now asks its enclosing block (NOTE [names private to
the function] in autoconv/converters/choices.py). Fuzz seed 3401, program 145."""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-1)
    b = torch.tensor(1)
    c = torch.tensor(3)
    if k + x < len(torch.stack([c, c, b])) >= x:
        for i0 in range(-y % 5):
            c = y % 100 - 36
        if c + y:
            pass
        else:
            c -= (a or y + x) % 8
    return y


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 3), (-8, 6, 3)]
XFAIL = None
