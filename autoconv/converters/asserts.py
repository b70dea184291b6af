"""`assert` becomes `ac.assert_`, a graph assertion when the condition is a traced tensor.

    assert x > 0, "x must be positive"   ->   ac.assert_(x > 0, lambda: "x must be positive")
"""

from __future__ import annotations

import gast

from .. import templates
from ..transformer import Converter
from .generators import leaves_generators_alone

# NOTE [an assert's message is made at once]
# The message is a lambda so that Python's laziness stays (made only when the assert fails, or
# while tracing a staged condition), but `assert_` calls it before returning: it never outlives
# the statement, so the names it reads are no closure's that a staged body must keep in the
# enclosing function's cells (NOTE [shared cells] in control_flow.py). Counted as one, it made
# torch.compile refuse `assert n < m, f"... {n}"` in a staged loop that changes `n` as "a
# function or lambda of this function reads 'n'" (tester24 s04; torchdiffeq rk_common.py:245).


@leaves_generators_alone
class AssertConverter(Converter):
    """Replaces each assert statement by a call; the message stays lazily evaluated."""

    statements_only = True

    def visit_Assert(self, node):
        self.generic_visit(node)
        if node.msg is None:
            return templates.replace("ac.assert_(test)", ac=self.ctx.runtime, test=node.test)
        message = gast.Lambda(
            args=gast.arguments(args=[], posonlyargs=[], vararg=None, kwonlyargs=[],
                                kw_defaults=[], kwarg=None, defaults=[]),
            body=node.msg,
        )
        # NOTE [an assert's message is made at once]
        message._autoconv_called_at_once = True
        return templates.replace("ac.assert_(test, message)", ac=self.ctx.runtime, test=node.test,
                                 message=message)
