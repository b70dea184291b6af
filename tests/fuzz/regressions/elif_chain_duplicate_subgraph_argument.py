r"""Minimised (seed 31, program 196): internal at compile: SyntaxError: duplicate argument
'child_true_branch' in function definition.

Three nested staged `if`s (an if / elif / elif chain). Under torch.compile, the innermost
branch reads two tensors that are copies of the state made by two enclosing branches, each
named `child` in its own branch's graph; dynamo lifts both into the branch's inputs under
that name. The same bug as nested_staged_for_duplicate_subgraph_argument.py, through torch.cond
instead of torch.while_loop."""

import torch


def fuzz_fn(x, y, k):
    b = x
    c = torch.tensor(0)
    if c >= 0:
        x %= 5
    elif b <= 1:
        y = 6
    elif 0 >= c:
        guard0 = 0
        while x >= y and guard0 < 1:
            guard0 += 1
    return c


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(8, 0, 1)]
XFAIL = None
