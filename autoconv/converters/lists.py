"""Appending to a list becomes an assignment, so loops and branches see the list as their state.

    vals.append(y)      ->  vals = ac.list_append(vals, y)
    vals.extend(ys)     ->  vals = ac.list_extend(vals, ys)

On Python values this is the same in-place append (the same list object comes back). A staged
statement that grows a list then has it in its state, where the runtime can carry it: as a
buffer and a count (`runtime/lists.py`), whose append returns the new list, or, in a loop of
known length that cannot stop early, as a Python list in an unrolled loop.

A `while` loop that grows a list gets the bounds on its trips its test gives, if any
(Anno.TRIP_BOUND, `analysis/trips.py`): read here, before `continue` is lowered.
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis import trips
from ..analysis.annos import Anno, set_anno
from ..transformer import Converter
from .generators import leaves_generators_alone

_METHODS = {"append": "list_append", "extend": "list_extend"}


@leaves_generators_alone
class ListConverter(Converter):
    """Rewrites `name.append(x)` / `name.extend(xs)` statements."""

    statements_only = True
    appends = 0

    def visit_While(self, node):
        before = self.appends
        self.generic_visit(node)
        if self.appends > before:
            bounds = trips.trip_bounds(node)
            if bounds:
                set_anno(node, Anno.TRIP_BOUND, bounds)
        return node

    def visit_Expr(self, node):
        call = node.value
        if not (
            isinstance(call, gast.Call)
            and isinstance(call.func, gast.Attribute)
            and call.func.attr in _METHODS
            and isinstance(call.func.value, gast.Name)
            and len(call.args) == 1
            and not call.keywords
            # Only the function's own lists: assigning a global or closure variable would make
            # it local.
            and call.func.value.id in self.ctx.local_names
        ):
            return node
        target = call.func.value.id
        self.appends += 1
        return templates.replace(
            f"target = ac.{_METHODS[call.func.attr]}(target, value)",
            target=target, ac=self.ctx.runtime, value=call.args[0],
        )
