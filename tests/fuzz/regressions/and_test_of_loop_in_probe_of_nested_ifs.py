r"""A `while` whose test is an `and`, growing a list, three staged ifs deep (fuzz seed 13,
program 12): the replay of (7, 1, 0) never ended. The outer `if`'s branches are probed for the
list's growth by types only, where the nested `and` gives its right side (`x > 3`) as a stand-in
value; the inner `if` grows the list, so that probe staged it in full, with that stand-in as its
loop test. Its outputs were unused, but torch's runtime assertions on unbacked sizes inside its
bodies made the graph's clean-up keep it, and the graph ran the loop `while x > 3: g += 1`.
Control flow a types-only probe stages is now dropped when nothing reads it (NOTE [operators
of types-only probes] in runtime/staging/context.py)."""

import torch


def fuzz_fn(x, y, k):
    vs = []
    if y > 0:
        if x > 0:
            if y < 5:
                g = torch.tensor(0)
                while g < 2 and x > 3:
                    g += 1
                    vs.append(y)
    return x + len(vs)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 0), (7, 1, 0), (7, 0, 0), (-1, 1, 0), (2, 1, 0)]
XFAIL = None
