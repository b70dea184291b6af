"""Builtins the staging engine uses, in a form dynamo traces cheaply.

A leaf module. Under torch.compile dynamo traces the runtime itself, step by step (see
docs/testing.md, "Where the time goes"). NOTE [enumerate under dynamo]: torch 2.13's dynamo
replaces `builtins.enumerate` by a generator of its own (`torch._dynamo.polyfills.builtins`), and
inlines that generator again for every item: `for i, (a, b) in enumerate(zip(xs, ys))` over six
items cost it 183 bytecode steps and 8 inlined frames, against 102 steps and one frame for
`zip(itertools.count(), ...)`, which dynamo iterates itself. The staging engine's modules import
this `enumerate` in place of the builtin; outside dynamo it is the same iteration (pairs of an
index and an item, lazily; it is not reversible and has no length, like the builtin's).
"""

from __future__ import annotations

import itertools

__all__ = ["enumerate"]


def enumerate(iterable, start=0):  # noqa: A001 (the builtin, in the form dynamo traces cheaply)
    """`builtins.enumerate(iterable, start)`: (index, item) pairs, the index counted from `start`."""
    return zip(itertools.count(start), iterable)
