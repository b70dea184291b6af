"""Size facts a staged `if`'s branch relies on, which torch checks on every path.

NOTE [facts a branch relies on]
`idx = (x > 0).nonzero()` then `if idx.numel() > 0: v = x[idx[0, 0]]`: the branch indexes row 0
of a tensor whose length is an unbacked size `u0`, which is valid because the branch runs only
where `u0 > 0`. torch 2.13 records the fact the index needs (`u0 >= 1`) as a runtime assertion
of the whole graph, not of the branch (pytorch issue 165912): the exported program and the
compiled function raised "Runtime assertion failed for expression u0 >= 1" on every input where
the branch is not taken, with no line of the user's (tester t14 repro 21). The fact also
narrows the size's range for the rest of the trace, where a later test of the same size could
fold to the branch's answer. torch keeps no branch-local facts, so under torch.export such an
`if` is refused, at the user's line: where the predicate is a test of unbacked sizes and tracing
its branches added a runtime assertion on one of the sizes it tests. The refusal stands (the
`if` is not specialised instead: torch's assertion, placed where the size is made, would still
fire first). autoconv's own graphs do not run torch's runtime assertions, and are right on both
paths. (Under dynamo the branches are dynamo's to trace, and this check does not run: torch's
own assertion is what the user sees, an open problem.)
"""

from __future__ import annotations

import linecache

import torch
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

from ..errors import StagingError, users_file

__all__ = ["watch", "check"]


def watch(pred):
    """Before staging an `if` on `pred` (the user's condition, before it becomes a tensor):
    what `check` needs, or None where there is nothing to check (NOTE [facts a branch relies
    on])."""
    if not (isinstance(pred, torch.SymBool) and torch.compiler.is_exporting()):
        return None
    symbols = free_unbacked_symbols(pred)
    if not symbols:
        return None
    env = pred.node.shape_env
    return pred, symbols, env, {id(ra) for ras in env.deferred_runtime_asserts.values()
                                for ra in ras}


def check(watched, statement: str) -> None:
    """After staging the `if` `watch` saw: raises StagingError where its branches made torch
    assert a fact about the unbacked sizes its condition tests."""
    if watched is None:
        return
    pred, symbols, env, before = watched
    for ras in env.deferred_runtime_asserts.values():
        for ra in ras:
            if id(ra) not in before and ra.expr.free_symbols & symbols:
                raise _relied_on(statement, pred, ra)


def _relied_on(statement: str, pred, ra) -> StagingError:
    where = _user_line(ra)
    relied = f" at {where[0]}:{where[1]} (`{where[2]}`)" if where else ""
    error = StagingError(
        statement,
        f"its condition tests a size that depends on tensor values (`{pred.node.expr}`), and "
        f"a branch relies on the outcome{relied}: torch then checks `{ra.expr}` on every "
        "call, also where the branch is not taken, and the graph would raise \"Runtime "
        f"assertion failed for expression {ra.expr}\" there",
        "Write the branch so that it is valid on every input: index a tensor of data-dependent "
        "length in ways that hold when it is empty (`idx[:1]` rather than `idx[0]`), or compute "
        "the result with torch.where (`i = mask.int().argmax()`, then `torch.where(mask.any(), "
        "x[i], -1.0)` for the first match or -1)")
    error.stands = True  # not specialised instead (NOTE [specialisation])
    return error


def _user_line(ra):
    """(file, line, source) of the user's code that asked for the fact, or None."""
    try:
        frames = ra.stack.summary()
    except Exception:  # noqa: BLE001 - only for the message
        return None
    for frame in reversed(frames):
        if users_file(frame.filename):
            source = linecache.getline(frame.filename, frame.lineno).strip()
            return frame.filename, frame.lineno, source
    return None
