"""`break` and `continue` become flags, so every loop has a single exit at its test.

    while c:                      did_break = False
        a                         while not did_break and c:
        if d:                         a
            break          ->         if d:
        b                                 did_break = True
    else:                             if not did_break:
        e                                 b
                                  if not did_break:
                                      e

`for` loops get `not did_break` as their extra test (Anno.EXTRA_TEST) instead. `continue` sets
`did_continue`, reset at the start of every iteration, and guards the rest of the body.
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.annos import Anno, copy_origin, get_anno, set_anno
from ..transformer import Converter
from .generators import leaves_generators_alone
from .guards import contains, guard_block


def add_loop_test(loop, test):
    """Make `test` (evaluated first) part of `loop`'s condition."""
    if isinstance(loop, gast.While):
        loop.test = gast.BoolOp(op=gast.And(), values=[test, loop.test])
    else:
        extra = get_anno(loop, Anno.EXTRA_TEST)
        set_anno(loop, Anno.EXTRA_TEST,
                 test if extra is None else gast.BoolOp(op=gast.And(), values=[test, extra]))


@leaves_generators_alone
class BreakContinueConverter(Converter):
    """Lowers break and continue of each loop, innermost loops first."""

    statements_only = True

    def _loop(self, node):
        self.generic_visit(node)
        before, after = [], []
        if contains(gast.Module(body=node.body, type_ignores=[]), gast.Continue, False):
            flag = self.ctx.namer.new("did_continue")
            self.ctx.display_names[flag] = "<continue flag>"
            self.ctx.local_names.add(flag)  # later passes pass it to their lambdas, see logical
            body = guard_block(node.body, gast.Continue,
                               lambda s: templates.replace("flag = True", flag=flag), flag, self.ctx)
            node.body = templates.replace("flag = False", flag=flag) + body
        if contains(gast.Module(body=node.body, type_ignores=[]), gast.Break, False):
            flag = self.ctx.namer.new("did_break")
            self.ctx.display_names[flag] = "<break flag>"
            self.ctx.local_names.add(flag)
            node.body = guard_block(node.body, gast.Break,
                                    lambda s: templates.replace("flag = True", flag=flag), flag,
                                    self.ctx)
            # (control_flow.py: NOTE [values on the path that breaks])
            for stmt in node.body:
                if isinstance(stmt, gast.If) and not stmt.orelse \
                        and isinstance(stmt.test, gast.UnaryOp) \
                        and isinstance(stmt.test.op, gast.Not) \
                        and isinstance(stmt.test.operand, gast.Name) \
                        and stmt.test.operand.id == flag:
                    stmt._autoconv_break_guard = True
            before = templates.replace("flag = False", flag=flag)
            add_loop_test(node, templates.replace("not flag", flag=flag)[0].value)
            if node.orelse:
                after = templates.replace("if not flag:\n    orelse", flag=flag, orelse=node.orelse)
                # placed where the `else` block is, after the loop (not on the loop's line):
                # control_flow orders assignments by line (a variable the loop may bind)
                copy_origin(after, node.orelse[0])
        else:
            after = node.orelse
        node.orelse = []
        return before + [node] + after

    visit_While = visit_For = _loop
