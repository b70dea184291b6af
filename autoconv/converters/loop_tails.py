"""The tail a `while True:` loop runs on its last trip only moves after the loop.

    while True:                    while True:
        a                              a
        if c:                          if c:
            continue       ->              continue
        b                              break
        return r                   b
                                   return r

The same for an `if d:` of the body (no `else`) whose block always leaves the loop: `if d: b;
return r` becomes `if d: break`, and `b; return r` follows the loop. See NOTE [a loop's exit tail].
"""

from __future__ import annotations

import gast

from ..analysis.annos import copy_origin
from ..transformer import Converter
from .generators import leaves_generators_alone
from .guards import contains

# NOTE [a loop's exit tail]
# torchode's `AutoDiffAdjoint.solve` is `while True: <step>; if continue_iterating: continue;
# stats["n_steps"] = ...; return Solution(...)`: the statements after the tensor `continue`
# run once, on the trip the loop ends with. Staged as written, they run under the loop's
# `if not did_continue:`, a tensor `if` of the body, so whatever they do must be something a
# `torch.cond` branch can do on every trip: a dict gaining keys (`stats`) is not, and was
# refused (AutoGraph and JAX refuse the same: a branch's outputs must match). But Python runs
# that tail after the last test of `c` and before nothing else of the loop: it is the loop's
# exit, and its state is the loop's final state. So the loop is rotated, as a user would
# write it: the tail becomes one `break`, and runs after the loop, as plain statements of the
# function, once, with every value the loop left (AutoGraph's and JAX's loops give the same
# final state); a dict's keys, a list's appends, an object's fields, a `return` are then
# what they are after any loop.
# The rotation is Python's own meaning only where the tail is the loop's one way on to the
# statements after it: the test is a constant true (`while True:` / `while 1:`, no `else`),
# no other `break` of the loop is in the body (a `return` or `raise` there leaves the
# function, never reaching the tail), the tail leaves the loop on every path (its last
# statement is a `return`, `raise` or `break`, or an `if` whose blocks both do), and its only
# jumps of the loop are those final `break`s, which are dropped (after the loop, falling off
# the tail's end is what they did). Any other loop stays as written.
# The moved statements keep their lines, all after the loop's last line now (the `break`
# gets the line of the `if` before it), which is the order the control-flow pass reads for
# "bound before" (NOTE [sites before a made statement] in control_flow.py).

_EXITS = (gast.Return, gast.Raise, gast.Break)
_JUMPS = (gast.Break, gast.Continue)


def _final_jumps(block, found) -> bool:
    """Whether `block` leaves the loop on every path; collects its final statements in
    `found` (the breaks among them are dropped when it moves)."""
    if not block:
        return False
    last = block[-1]
    if isinstance(last, _EXITS):
        found.append(last)
        return True
    return (isinstance(last, gast.If) and _final_jumps(last.body, found)
            and _final_jumps(last.orelse, found))


def _jumps_of_loop(stmts) -> list:
    """The `break` / `continue` statements in `stmts` that belong to the enclosing loop."""
    found = []
    stack = list(stmts)
    while stack:
        node = stack.pop()
        if isinstance(node, _JUMPS):
            found.append(node)
        elif isinstance(node, (gast.For, gast.While, gast.AsyncFor)):
            stack.extend(node.orelse)  # (a loop's `else` runs in the enclosing loop)
        elif not isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, field, None) or ())
    return found


def _without_final_breaks(block):
    """`block` with its final `break`s dropped (`pass` where a block is left empty)."""
    last = block[-1]
    if isinstance(last, gast.Break):
        block = block[:-1]
        if not block:
            new = gast.Pass()
            copy_origin(new, last)
            block = [new]
    elif isinstance(last, gast.If):
        last.body = _without_final_breaks(last.body)
        last.orelse = _without_final_breaks(last.orelse)
    return block


def _is_continue_if(stmt) -> bool:
    return (isinstance(stmt, gast.If) and not stmt.orelse and len(stmt.body) == 1
            and isinstance(stmt.body[0], gast.Continue))


def _split_tail(body):
    """(the body without its tail, with a `break` in its place; the tail), or None."""
    index = max((i for i, s in enumerate(body) if _is_continue_if(s)), default=None)
    if index is not None and index < len(body) - 1 and _leaves(body[index + 1:]):
        at, tail, rest = body[index], body[index + 1:], body[:index + 1]
    else:
        # `if d: <tail>` (the last such `if` of the body)
        at = next((s for s in reversed(body) if isinstance(s, gast.If) and not s.orelse
                   and not _is_continue_if(s) and _leaves(s.body)), None)
        if at is None:
            return None
        tail, rest = at.body, [s for s in body if s is not at]
    if len(tail) == 1 and isinstance(tail[0], gast.Break):
        return None  # (nothing to move)
    if contains(gast.Module(body=rest, type_ignores=[]), gast.Break, False):
        return None  # another way out of the loop to the statements after it
    brk = gast.Break()
    copy_origin(brk, at)
    if tail is at.body:
        at.body = [brk]
        return body, tail
    return rest + [brk], tail


def _leaves(tail) -> bool:
    """Whether `tail` leaves the loop on every path, its only jumps of the loop at its ends."""
    finals = []
    if not _final_jumps(tail, finals):
        return False
    return all(any(jump is f for f in finals) for jump in _jumps_of_loop(tail))


@leaves_generators_alone
class LoopTailConverter(Converter):
    """Moves the exit tail of each `while True:` loop after it (NOTE [a loop's exit tail])."""

    statements_only = True

    def visit_While(self, node):
        self.generic_visit(node)
        test = node.test
        if (node.orelse or not node.body or not isinstance(test, gast.Constant)
                or test.value is not True and test.value != 1):
            return node
        split = _split_tail(node.body)
        if split is None:
            return node
        node.body, tail = split
        return [node] + _without_final_breaks(tail)
