"""The conversion passes, in order. Each converter is independent; the order is the contract."""

from __future__ import annotations

from . import emit
from .analysis import liveness
from .converters.asserts import AssertConverter
from .converters.break_continue import BreakContinueConverter
from .converters.calls import CallConverter, GradReadConverter, TextReturnConverter
from .converters.data import DataConverter
from .converters.choices import ChoiceConverter
from .converters.control_flow import ControlFlowConverter
from .converters.lists import ListConverter
from .converters.logical import LogicalConverter
from .converters.raises import RaiseConverter
from .converters.returns import ReturnConverter
from .converters.subscripts import SubscriptConverter
from .converters.tries import TryConverter
from .converters.unbound import BoundFlagConverter

PASSES = (
    # First, on the user's own statements: a choice between names (`a if c else b`, an `if`
    # binding a name, `max(a, b)`) updated in place afterwards is written back.
    ChoiceConverter,
    # First, while every call in the tree is the user's: later passes add runtime calls.
    # Before calls: `vals.append(x)` must not become a converted_call of the bound method.
    ListConverter,
    CallConverter,
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


def convert_tree(node, ctx):
    """Run every pass over the function `node`; returns the converted node."""
    for converter in PASSES:
        node = converter.transform(node, ctx)
    # Control flow is structured now: analyse once, then convert the compound statements.
    liveness.analyze(node)
    original_body = getattr(node, "_autoconv_original_body", None)
    node = ControlFlowConverter.transform(node, ctx)
    if getattr(ctx, "uses_data", True):
        # After the control-flow conversion, whose analysis reads `w.data.mul_(...)` as an
        # update of `w` (NOTE [writes through .data] there); skipped without a `.data`.
        node = DataConverter.transform(node, ctx)
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
