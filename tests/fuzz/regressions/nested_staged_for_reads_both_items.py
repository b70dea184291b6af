r"""Hand-written from nested_staged_for_duplicate_subgraph_argument.py: an `if` inside two staged
`for` loops whose one branch reads both loop variables. Under torch.compile, dynamo lifts both
into the branch's inputs under the names their nodes have in their own loop bodies (`item` in
both), and the branch's generated code has the same argument twice."""

import torch


def fuzz_fn(x, y, k):
    a = x + 0
    for i0 in range(x % 4):
        for i1 in range(y % 4):
            if a < 20:
                a += (i0 * i1) % 3
    return a


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 3, 0), (0, 2, 0), (2, 5, 0), (7, 7, 0)]
XFAIL = None
