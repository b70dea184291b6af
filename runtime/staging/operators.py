"""The operators a staged statement becomes: `cond` and `while_loop`, each built by the tracer
that owns the statement (see `registry.py`; one implementation per tracer in `tracers/`).

Bodies here are plain callables over flat tuples of operands. `while_loop` passes the carried
values and then the loop's read-only values (`additional`) to both of its bodies.
"""

from __future__ import annotations

from . import registry

__all__ = ["cond", "while_loop"]


# (the registry's own functions, not calls of them: every frame between a staged statement and
# its bodies is a level of dynamo's inlining per nested statement, NOTE [nesting under dynamo]
# in runtime/operators.py; under dynamo and export the staging calls the owner's operator
# without this dispatch)
cond = registry.cond
while_loop = registry.while_loop
