"""The conversion passes, in order. Each converter is independent; the order is the contract."""

from __future__ import annotations

import gast

from . import emit
from .analysis import liveness
from .analysis.nodes import walk_statements
from .converters.alias_checks import AliasCheckConverter
from .converters.kept_views import KeptViewConverter, may_check as _may_check_views
from .converters.asserts import AssertConverter
from .converters.break_continue import BreakContinueConverter
from .converters.calls import (ApplyReadConverter, CallConverter, GradReadConverter,
                                TextReturnConverter)
from .converters.data import DataConverter
from .converters.choices import ChoiceConverter
from .converters.control_flow import ControlFlowConverter
from .converters.lists import ListConverter
from .converters.logical import LogicalConverter
from .converters.loop_tails import LoopTailConverter
from .converters.raises import RaiseConverter
from .converters.returns import ReturnConverter
from .converters.subscripts import SubscriptConverter
from .converters.tries import TryConverter
from .converters.unbound import BoundFlagConverter
from .converters.view_attributes import ViewAttributeConverter

PASSES = (
    # First, a rewrite a user could have written: the tail a `while True:` runs on its last
    # trip moves after the loop (NOTE [a loop's exit tail] in converters/loop_tails.py), so
    # that every later pass sees the loop as it will be staged.
    LoopTailConverter,
    # Then, on the user's own statements: a choice between names (`a if c else b`, an `if`
    # binding a name, `max(a, b)`) updated in place afterwards is written back.
    ChoiceConverter,
    # After the choices' write-backs (a check follows them), before anything lowers the
    # user's statements: NOTE [staged values that alias in Python] in runtime/staged_aliases.py.
    AliasCheckConverter,
    # On the user's statements as written, which it reads for the views a compound statement
    # keeps: NOTE [views kept by a staged statement] in runtime/staged_aliases.py.
    KeptViewConverter,
    # First, while every call in the tree is the user's: later passes add runtime calls.
    # Before calls: `vals.append(x)` must not become a converted_call of the bound method.
    ListConverter,
    CallConverter,
    # After calls, which turned `X.apply(...)` into the runtime's call: an `apply` read only.
    ApplyReadConverter,
    # After calls (torch's calls stay as written), before the flags and jump lowerings: the
    # `if` a `try` becomes is then lowered and staged as any other.
    TryConverter,
    SubscriptConverter,
    # Before the lowerings of asserts, jumps and `and` / `or`: its flags and checked reads are
    # then variables and calls as any other (it follows the jumps itself).
    BoundFlagConverter,
    AssertConverter,
    # Before the jump lowerings: a raise becomes a return, which they lower.
    RaiseConverter,
    # break/continue before return: a return inside a loop then meets loops without jumps.
    BreakContinueConverter,
    ReturnConverter,
    # After the jump lowerings, which emit `not flag` and `and` tests of their own.
    LogicalConverter,
)


# NOTE [passes with nothing to do]
# Some passes rewrite one kind of statement and return every other node as it is: without such a
# statement in the tree when they run, their walk of it changes nothing and is skipped. The
# statements are looked for once, before the first of them (LoopTailConverter, which adds a
# `break` and a `pass` only): no pass before
# RaiseConverter writes a `try`, an `assert` or a `raise` (the control-flow pass writes the
# first `try`), nor a `.append` / `.extend` statement before ListConverter, so what the tree
# holds then is what they find. The break / continue pass also moves a loop's `else` block after
# the loop: it is skipped where, when it runs, no loop has one and no `break` or `continue` is
# left. The kept-views pass is skipped where the function updates nothing in place and gives
# nothing to a call that may be the user's (NOTE [kept views with nothing updated] in
# converters/kept_views.py), asked of the tree it would see.
_APPENDS = "list append"  # (ListConverter's statements: `x.append(v)`, `x.extend(vs)`)
_NEEDS = {
    LoopTailConverter: (gast.While,),
    ListConverter: (_APPENDS,),
    TryConverter: (gast.Try, gast.TryStar),
    AssertConverter: (gast.Assert,),
    # (a `try` too: it marks the loops and handlers inside it)
    RaiseConverter: (gast.Raise, gast.Try, gast.TryStar),
}
_LOOPS = (gast.For, gast.While, gast.AsyncFor)


def _statements_found(node) -> set:
    """The classes of the statements of the function `node`, and `_APPENDS` where one is a
    `.append(...)` / `.extend(...)` call."""
    found = set()
    for stmt in walk_statements(node):
        cls = stmt.__class__
        found.add(cls)
        if cls is gast.Expr:
            call = stmt.value
            if (call.__class__ is gast.Call and call.func.__class__ is gast.Attribute
                    and call.func.attr in ("append", "extend")):
                found.add(_APPENDS)
    return found


def _has_jumps(node) -> bool:
    """Whether the function `node` holds a break or continue, or a loop with an `else` block."""
    for stmt in walk_statements(node):
        cls = stmt.__class__
        if cls is gast.Break or cls is gast.Continue or (cls in _LOOPS and stmt.orelse):
            return True
    return False


def convert_tree(node, ctx):
    """Run every pass over the function `node`; returns the converted node."""
    found = None
    for converter in PASSES:
        needs = _NEEDS.get(converter)
        if needs is not None:
            if found is None:  # NOTE [passes with nothing to do]
                found = _statements_found(node)
            if found.isdisjoint(needs):
                continue
        elif converter is BreakContinueConverter and not _has_jumps(node):
            continue
        elif converter is KeptViewConverter and not _may_check_views(node, ctx.runtime):
            continue
        elif converter is ApplyReadConverter and not getattr(ctx, "reads_apply", True):
            continue  # (no attribute `apply` in the user's code)
        node = converter.transform(node, ctx)
    # Control flow is structured now: analyse once, then convert the compound statements.
    liveness.analyze(node)
    original_body = getattr(node, "_autoconv_original_body", None)
    node = ControlFlowConverter.transform(node, ctx)
    if getattr(ctx, "uses_data", True):
        # After the control-flow conversion, whose analysis reads `w.data.mul_(...)` as an
        # update of `w` (NOTE [writes through .data] there); skipped without a `.data`.
        node = DataConverter.transform(node, ctx)
    if getattr(ctx, "reads_views", True):
        # (late, as `.data`'s: the passes before read `x.mT` as the user wrote it; NOTE [view
        # attributes under dynamo] in runtime/views.py)
        node = ViewAttributeConverter.transform(node, ctx)
    if getattr(ctx, "reads_grad", True):
        # (a walk of the whole converted tree, the largest one: skipped where the user's code
        # reads no `.grad`, which no pass writes)
        node = GradReadConverter.transform(node, ctx)
    node = TextReturnConverter.transform(node, ctx)
    if original_body is not None:
        # Compiled in front of the converted body (see emit.FAST_PATH): plain Python runs the
        # function whenever no tracer does.
        setattr(node, emit.FAST_PATH, (original_body, ctx.runtime))
    else:
        # (no fast path: a function defining a lambda or using `global`; its torch errors are
        # placed all the same)
        setattr(node, emit.ERRORS_PLACED, ctx.runtime)
    return node
