r"""Fuzz failure (seed 5501, program 88, minimised by hand): crash at trace.

A staged `while` whose body holds an `if` with an `and` test (`c < -1 and x != b`), inside it
`if o is not None: return y` then `elif c < 1: o = b - 3` (an optional `o`, None at the top).
Plain Python: (0, 0, 4) -> -1 (the `if` never taken), (3, -2, 4) -> -2 (the first trip sets `o`,
the second returns `y`). autoconv's trace refused at the `and` test's line: "the return value is
unbound before the statement and is reassigned in the true branch" (session 55, fuzz55). Fixed
in session 57 (fuzz57): the `if` learnt its return value's placeholder with `o` None, where the
inner `if o is not None` is Python's False; restaged carrying `o` as an optional, that test is
staged and binds the return value, so the placeholder is learnt again (NOTE [placeholders after
a slot becomes optional] in runtime/staging/torch.py). Replay gives -1 and -2.
"""

import torch


def fuzz_fn(x, y, k):
    b = torch.tensor(1)
    c = y + 0
    o = None
    guard0 = torch.tensor(0)
    while guard0 < 3:
        guard0 += 1
        if c < -1 and x != b:
            if o is not None:
                return y
            elif c < 1:
                o = b - 3
    return c + (torch.tensor(-1) if o is None else o % 7)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(0, 0, 4), (3, -2, 4)]
