"""Shared by the jump lowerings: replace a jump by a flag and guard the code after it.

    a                      a
    if c:                  if c:
        <jump>      ->         flag = True
    b                      if not flag:
                               b
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.nodes import copy_tree
from ..errors import ConversionError
from .alias_checks import is_alias_check

_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)
_LOOPS = (gast.For, gast.While, gast.AsyncFor)


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def contains(node, kinds, into_loops: bool) -> bool:
    """True if `node` holds a statement of `kinds` that belongs to the current loop or function."""
    if isinstance(node, kinds):
        return True
    if isinstance(node, _SCOPES):
        return False
    # Jumps are statements: only the blocks of statements are searched, not expressions.
    for field in _BLOCKS:
        block = getattr(node, field, None)
        if not block:
            continue
        for child in block:
            if isinstance(child, _LOOPS) and not into_loops:
                # a loop's else clause runs in the enclosing loop's scope
                if any(contains(s, kinds, into_loops) for s in child.orelse):
                    return True
                continue
            if contains(child, kinds, into_loops):
                return True
    return False


# NOTE [alias checks after a jump are not guarded]
# Where all that follows a statement that may jump is the alias checks of the statements
# before it (`ac.check_aliases()`, which the alias-check pass adds after an `if` calling
# the user's code), they run on every path instead of behind `if not flag:`. The check
# reads again what a held choice aliases after an update, and refuses what it cannot: run
# on a path that jumped too, it sees the same updates, and the path's next check would have
# seen them anyway. Under dynamo it does nothing, and its guard was a staged `if` with
# nothing in or out, traced with its probes at every level of nesting (fuzz seed 4301's
# programs, whose `if` / `elif` chains call counting callables and break or return, had
# two or three each).
def guard_block(stmts, kinds, replace_jump, flag, ctx, into_loops=False, on_loop=None):
    """Lower every jump of `kinds` in `stmts`; statements after a possible jump run only if
    `flag` is still false. `replace_jump(stmt)` gives the statements standing for a jump;
    `on_loop(loop)` handles loops when the jump crosses them (returns)."""
    out = []
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, kinds):
            out.extend(replace_jump(stmt))
            return out  # the rest of the block is unreachable
        jumps = contains(stmt, kinds, into_loops)
        rest = stmts[i + 1:]
        if jumps and rest and isinstance(stmt, gast.If) and _folds(rest, kinds, into_loops):
            # The rest goes into both branches (after a jump it is dropped again), instead of
            # behind `if not flag:`. A variable the rest reads then needs no value on the
            # paths that jump, which a staged cond would otherwise require of it.
            stmt.body = guard_block(stmt.body + copy_tree(rest), kinds, replace_jump, flag,
                                    ctx, into_loops, on_loop)
            stmt.orelse = guard_block(stmt.orelse + rest, kinds, replace_jump, flag, ctx,
                                      into_loops, on_loop)
            out.append(stmt)
            return out
        if jumps:
            if isinstance(stmt, gast.If):
                stmt.body = guard_block(stmt.body, kinds, replace_jump, flag, ctx, into_loops, on_loop)
                stmt.orelse = guard_block(stmt.orelse, kinds, replace_jump, flag, ctx, into_loops,
                                          on_loop)
            elif isinstance(stmt, _LOOPS) and on_loop is not None:
                on_loop(stmt)
            elif isinstance(stmt, gast.With):
                stmt.body = guard_block(stmt.body, kinds, replace_jump, flag, ctx, into_loops,
                                        on_loop)
            elif isinstance(stmt, gast.Try):
                _guard_try(stmt, kinds, replace_jump, flag, ctx, into_loops, on_loop)
        out.append(stmt)
        if jumps and rest:
            guarded = guard_block(rest, kinds, replace_jump, flag, ctx, into_loops, on_loop)
            if all(s.__class__ is gast.Expr and is_alias_check(s.value) for s in guarded):
                out.extend(guarded)  # NOTE [alias checks after a jump are not guarded]
                return out
            guard = templates.replace("if not flag:\n    rest", flag=flag, rest=guarded)
            for node in guard:  # NOTE [refusals of the code after a jump]
                if node.__class__ is gast.If:
                    node._autoconv_after_jump = _jump_words(kinds)
            # (a return's guard at the line of the statement that may return: a refusal of it
            # named the function's `def` line, tester t20 s03; the guard of a break or
            # continue keeps its loop's line, where a refusal of what the rest of the body
            # does is reported)
            if kinds is gast.Return:
                for node in guard:
                    gast.copy_location(node, stmt)
                    if node.__class__ is gast.If:
                        gast.copy_location(node.test, stmt)
            out.extend(guard)
            return out
    return out


# NOTE [refusals of the code after a jump]
# The code after a statement that may return (or raise, or break, or continue) runs behind
# `if not flag:`, at the line of that statement: a refusal of that `if` named "the true
# branch" of an `if` the user did not write, at the line of one that only raises (torch_kmeans'
# `_check_k` under torch.export: "'self._k_max' ... is set in the true branch" of `if (k >=
# n).any(): raise ...`, tester47 s02). The guard tells the runtime what it guards
# (`after_jump=`), and the refusal names the code after the jump (runtime/operators.py,
# `_after_jump`).
def _jump_words(kinds) -> str:
    """What the guarded statement may do, for messages."""
    kinds = _tuple(kinds)
    if gast.Return in kinds:
        return "return or raise"
    return " or ".join(k.__name__.lower() for k in kinds)


def _guard_try(stmt, kinds, replace_jump, flag, ctx, into_loops, on_loop):
    """Lower the jumps in a `try` statement's blocks.

    A jump out of the body or a handler is a flag like any other: the `finally` block still
    runs, then the statements after the `try` are skipped. The `else` block, which Python skips
    when the body jumps, runs only if the flag is unset. A jump in the `finally` block itself
    would discard an exception in flight, which a flag cannot do: refused at its line.
    """
    for found in _jumps(stmt.finalbody, kinds, into_loops):
        kind = ("return" if isinstance(found, gast.Return)
                else "break" if isinstance(found, gast.Break) else "continue")
        raise ConversionError("crossing", ctx.filename, found.lineno, found.col_offset + 1,
                              construct=kind)
    body_jumps = contains(gast.Module(body=stmt.body, type_ignores=[]), kinds, into_loops)
    stmt.body = guard_block(stmt.body, kinds, replace_jump, flag, ctx, into_loops, on_loop)
    for handler in stmt.handlers:
        handler.body = guard_block(handler.body, kinds, replace_jump, flag, ctx, into_loops,
                                   on_loop)
    if stmt.orelse:
        orelse = guard_block(stmt.orelse, kinds, replace_jump, flag, ctx, into_loops, on_loop)
        if body_jumps:
            orelse = templates.replace("if not flag:\n    rest", flag=flag, rest=orelse)
        stmt.orelse = orelse


def _jumps(stmts, kinds, into_loops):
    """The jumps of `kinds` in `stmts` that belong to the current loop or function."""
    for stmt in stmts:
        if isinstance(stmt, kinds):
            yield stmt
        elif contains(stmt, kinds, into_loops):
            for field in _BLOCKS:
                for child in getattr(stmt, field, None) or ():
                    if isinstance(child, _LOOPS) and not into_loops:
                        yield from _jumps(child.orelse, kinds, into_loops)
                    elif isinstance(child, gast.ExceptHandler):
                        yield from _jumps(child.body, kinds, into_loops)
                    else:
                        yield from _jumps([child], kinds, into_loops)


def _folds(rest, kinds, into_loops) -> bool:
    """Whether the statements after an `if` that jumps go into its branches.

    For returns only, and only when the rest holds no further compound statement that jumps:
    the copies stay one per branch of each enclosing `if` that returns.
    """
    if gast.Return not in _tuple(kinds):
        return False
    return not any(not isinstance(stmt, kinds) and contains(stmt, kinds, into_loops)
                   for stmt in rest)


def _tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)
