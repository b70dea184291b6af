"""The truth of a staged `and` / `or` that its right side's Python value decides, whatever the
traced left side is (NOTE [a test a Python side decides]).

    best = second = None
    for v in xs:                                            the first trace of the body sees
        if best is not None and second is not None and ...:   `second` None: the `and` is
            d = d + (best - second)                           false on every path, its true
        if v.sum() > 0:                                       branch one Python never runs
            second, best = best, v

NOTE [a test a Python side decides]
A staged loop's body is traced first on the state as it is before the loop; a later statement
of the body may then change a variable's kind (`second = best` under a tensor `if` makes
`second`, None before, a value on some paths), and the loop is staged again carrying it as an
optional (NOTE [None or a value under tensor control flow] in staging/optionals.py). On that
first trace `best is not None` is a traced flag and `second is not None` Python's False: the
`and` is false on every path, but it is one torch.cond (the left side's flag, then the right
side) whose value is a bool tensor, so the `if` on it was staged, its true branch traced with
`second` None, and the branch's "unsupported operand type(s) for -: 'FakeTensor' and
'NoneType'" refused the whole function as a branch that fails while traced (keys53's open
item), where Python never takes that branch. So where the right side of an `and` (`or`) gives,
on every trace of it, a Python value that is falsy (truthy), or a test so marked, the result
is marked with that truth (`decided`), and a staged `if` or conditional expression on it whose
staging fails takes the decided branch as Python: Python takes it on every path. Only then:
where the staging succeeds the cond stays, its predicate constant in the graph. (A Python bool
for every such test turned a loop whose first trip's test it decided into a Python loop, each
later trip a cond of its own: NOTE [a comparison beside a traced test] in runtime/operators.py.)
`not` keeps the mark, turned.
"""

from __future__ import annotations

import torch

from .identity import type_in

__all__ = ["deciding", "Sides", "mark", "decided", "negated"]

_MARK = "_autoconv_decided_truth"


def deciding(value, op: str):
    """The truth that `value`, the right side of `op` ("and" / "or"), gives the whole test
    whatever its left side is: False (True) for a falsy (truthy) plain Python value or a test
    marked so; None where it does not decide it."""
    if isinstance(value, torch.Tensor):
        truth = decided(value)
    elif value is None or type_in(value, (bool, int, float, str)):
        truth = bool(value)
    else:
        return None
    return truth if truth is not None and truth is (op == "or") else None


class Sides:
    """The truths the right side of one staged `and` / `or` decided, one per trace of it."""

    def __init__(self, op: str):
        self.op, self.seen = op, []

    def note(self, value):
        """Notes the right side's `value`; returns it. (Not under dynamo: it refuses writes in
        the bodies it traces, and nothing there reads the mark.)"""
        if not torch.compiler.is_dynamo_compiling():
            self.seen.append(deciding(value, self.op))
        return value

    def truth(self):
        """The truth every trace of the side decided, else None."""
        if not self.seen or any(t is None or t is not self.seen[0] for t in self.seen):
            return None
        return self.seen[0]


def mark(result, truth):
    """`result`, a 0-d tensor the runtime made for the test, marked as decided to `truth`
    (None: left as it is)."""
    if (truth is not None and isinstance(result, torch.Tensor) and result.dim() == 0
            and not torch.compiler.is_dynamo_compiling()):
        setattr(result, _MARK, truth)
    return result


def decided(test):
    """The truth a test's mark says it has on every path, or None."""
    if not isinstance(test, torch.Tensor) or torch.compiler.is_dynamo_compiling():
        return None
    return getattr(test, _MARK, None)


def negated(test, negation):
    """`negation`, `not test`, marked with the turned truth where `test` is marked."""
    truth = decided(test)
    return mark(negation, None if truth is None else not truth)
