"""`assert` becomes `ac.assert_`, a graph assertion when the condition is a traced tensor.

    assert x > 0, "x must be positive"   ->   ac.assert_(x > 0, lambda: "x must be positive")
"""

from __future__ import annotations

import gast

from .. import templates
from ..transformer import Converter
from .generators import leaves_generators_alone


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
        return templates.replace("ac.assert_(test, message)", ac=self.ctx.runtime, test=node.test,
                                 message=message)
