"""Size facts of a staged `if`: those a branch relies on, which torch checks on every path,
and the sizes every branch keeps (NOTE [sizes every branch keeps], below).

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
paths (NOTE [torch's size assertions in a branch's graph] in autoconv/graph_passes.py). (Under
dynamo the branches are dynamo's to trace, and this check does not run: torch's own assertion
is what the user sees, an open problem.)
"""

from __future__ import annotations

import linecache

import torch
from torch.fx.experimental.symbolic_shapes import (free_unbacked_symbols, has_static_value,
                                                   statically_known_true)

from ..errors import StagingError, users_file

__all__ = ["watch", "check", "all_sizes_static", "kept_sizes", "keep_sizes", "note_kept",
           "noted"]

# NOTE [sizes every branch keeps]
# torch.cond gives every output size that holds an unbacked symbol a new unbacked symbol of its
# own (`_merge_output` in torch/_higher_order_ops/cond.py), even where both branches return the
# same size: NMS's `alive` of a class's `u0` rows, kept in one branch and masked in the other,
# comes out of the `if` as `(u2,)`. A loop carrying it then sees its size change on every trip
# (torch's while_loop requires the body to give back the carried sizes), and refused
# torchvision's `_batched_nms_vanilla`. Each branch notes, per output size, the operand size
# known equal to it (`kept_sizes`, as constants: under dynamo the branch is dynamo's to trace
# and hands them out through a function dynamo calls for real); where every branch kept the
# same one, the graph asserts the cond's new size equal to it (`keep_sizes`, `torch._check`):
# true on every path, and the shape environment then knows the two equal. The assertion
# names the cond's new symbol, never only a fact a branch relied on (NOTE [facts a branch
# relies on]), and `check` passes over it.


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
    kept = getattr(env, "_autoconv_kept_sizes", set())  # NOTE [sizes every branch keeps]
    for ras in env.deferred_runtime_asserts.values():
        for ra in ras:
            if (id(ra) not in before and ra.expr.free_symbols & symbols
                    and not ra.expr.free_symbols & kept):
                raise _relied_on(statement, pred, ra)


def kept_sizes(outputs, operands) -> tuple:
    """In a branch: for each of its flat `outputs` (tensors or not) and each symbolic size,
    the first (operand, dim) of its flat `operands` whose size is known equal, else None; as
    constants (NOTE [sizes every branch keeps]). Dynamo answers `has_static_value` and
    `statically_known_true` itself."""
    found = []
    for out in outputs:
        if not isinstance(out, torch.Tensor):
            found.append(None)
            continue
        dims = []
        for size in out.shape:
            match = None
            if not has_static_value(size):
                for j, operand in enumerate(operands):
                    if isinstance(operand, torch.Tensor):
                        for e, other in enumerate(operand.shape):
                            if not has_static_value(other) and statically_known_true(
                                    size == other):
                                match = (j, e)
                                break
                    if match is not None:
                        break
            dims.append(match)
        found.append(tuple(dims))
    return tuple(found)


# NOTE [sizes kept only where one is symbolic]
# `kept_sizes` matches an output's symbolic size with an operand's symbolic size; where every
# size of every operand is static (an int: torch.compile's first shapes, autoconv's own trace
# of fixed shapes) it finds none, and `keep_sizes` then asserts nothing. That is told once per
# statement, before its bodies run, and the staging then skips both: under dynamo each branch
# flattened its outputs and tested each size, and the cond's outputs were tested again, about
# 500 of dynamo's steps per staged `if` (docs/benchmarks.md, session 41).
def all_sizes_static(operands) -> bool:
    """Whether every size of the tensors among `operands` (a cond's flat operands) is static,
    so that no branch keeps a size `kept_sizes` could find (NOTE [sizes kept only where one is
    symbolic])."""
    for operand in operands:
        if isinstance(operand, torch.Tensor):
            for size in operand.shape:
                if not has_static_value(size):
                    return False
    return True


def keep_sizes(outputs, operands, kept) -> None:
    """After a cond: assert each size of its flat `outputs` equal to the operand's size every
    branch kept there (`kept`: `kept_sizes` of each branch), where the cond gave it a new
    symbol (NOTE [sizes every branch keeps])."""
    if len(kept) < 2 or any(len(k) != len(outputs) for k in kept):
        return
    for i, out in enumerate(outputs):
        if not isinstance(out, torch.Tensor) or any(k[i] is None for k in kept):
            continue
        for d, size in enumerate(out.shape):
            match = kept[0][i][d] if d < len(kept[0][i]) else None
            if match is None or any(len(k[i]) != out.dim() or k[i][d] != match for k in kept):
                continue
            j, e = match
            wanted = operands[j].shape[e]
            if statically_known_true(size == wanted):
                continue
            if not torch.compiler.is_dynamo_compiling():
                env = size.node.shape_env
                fresh = free_unbacked_symbols(size) - free_unbacked_symbols(wanted)
                if not hasattr(env, "_autoconv_kept_sizes"):
                    env._autoconv_kept_sizes = set()
                env._autoconv_kept_sizes |= fresh
            torch._check(size == wanted)


_KEPT: dict = {}  # key -> {where: kept_sizes}, oldest first
# A cond whose trace fails never asks `noted`: the oldest keys beyond this many (far more than
# conds nest) are dropped rather than kept for the process's life.
_KEPT_KEYS = 64


def note_kept(key: int, where: str, kept: tuple) -> None:
    """Keep a branch's `kept_sizes` for `noted` (dynamo calls it for real: constants in)."""
    if key not in _KEPT and len(_KEPT) >= _KEPT_KEYS:
        del _KEPT[next(iter(_KEPT))]
    _KEPT.setdefault(key, {})[where] = kept


note_kept._dynamo_marked_constant = True


def noted(key: int) -> tuple:
    """The `kept_sizes` `note_kept` kept for `key`, one per branch; forgets them."""
    return tuple(_KEPT.pop(key, {}).values())


noted._dynamo_marked_constant = True


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
