"""A tensor's view attributes read in converted code go through the runtime.

    a.mT  ->  ac.view_attribute_(a, 'mT')      (also `.T`, `.H`, `.mH`)

NOTE [view attributes under dynamo] in runtime/views.py: dynamo gives `self.H.mT` a source of
its own and lifts both the tensor and its view into a torch operator's bodies, which torch
refuses as aliased operands; the runtime makes the view with a call instead. Outside dynamo the
read is the attribute, as written.
"""

from __future__ import annotations

import gast

from .. import templates
from ..transformer import Converter

# (the attributes of torch.Tensor that are views of the tensor itself)
VIEW_ATTRIBUTES = frozenset(("mT", "T", "H", "mH"))


class ViewAttributeConverter(Converter):
    """`x.mT` (a read) -> `ac.view_attribute_(x, 'mT')`, for each of `VIEW_ATTRIBUTES`."""

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr not in VIEW_ATTRIBUTES or not isinstance(node.ctx, gast.Load):
            return node
        runtime = gast.Attribute(value=templates.name(self.ctx.runtime),
                                 attr="view_attribute_", ctx=gast.Load())
        call = gast.Call(func=runtime, args=[node.value, gast.Constant(value=node.attr,
                                                                       kind=None)],
                         keywords=[])
        return gast.copy_location(call, node)
