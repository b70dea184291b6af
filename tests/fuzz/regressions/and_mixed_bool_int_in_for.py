r"""Minimised (seed 11, program 20): crash at trace: <fuzz-205>:10: in a tensor-dependent if statement: '<value>' is a torch.int64 tensor of shape () in the true branch and a torch.bool tensor of shape () in the false branch. Give '<value>' one dtype and shape on every path (e.g. with .to(dtype) or torch.zeros(..., dtype=...) before the statement)"""

import torch


def fuzz_fn(x, y, k):
    a = torch.tensor(-2)
    b = torch.tensor(0)
    c = y + 2
    p = 2
    q = 0
    for i0 in range((a + y) % 5):
        if q <= c and (b <= i0 and c != k and (p >= x)) and a:
            pass
    return y


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(5, 5, 4)]
XFAIL = None
