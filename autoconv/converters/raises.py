"""`raise` becomes `ac.raise_` and a return, so that a raise under a tensor condition is staged.

    if (x < 0).any():                          if (x < 0).any():
        raise ValueError("negative")   ->          return ac.raise_(ValueError("negative"))

The returns pass then lowers it like any return, leaving the return value as it is:
`ac.raise_(exc); do_return = True`. As Python `ac.raise_` raises; in
the body of a staged statement it becomes a graph assertion that fails when the graph takes that
path, and the flag skips the rest of the function (which Python would not have run).

A raise stays as written where something in the function may catch it before it leaves: inside
a `try` or a `with` (a context manager may suppress it), and a bare `raise` (re-raising in an
`except` handler).

An `except` handler that could catch autoconv's StagingError (a TypeError) starts with
`ac.reraise_staging_error()`: a statement autoconv refuses must not become the handler's
fallback value (runtime/operators.py, NOTE [a branch that raises while traced]).
"""

from __future__ import annotations

import ast

import gast
from autoconv_runtime.handlers import TryBlock

from .. import templates
from ..transformer import Converter
from .generators import leaves_generators_alone

# Set on the return a raise became, so that the returns pass leaves the return value alone.
RAISE = "_autoconv_raise"


@leaves_generators_alone
class RaiseConverter(Converter):
    """Rewrites the raises no enclosing `try` / `with` of the same function can catch."""

    statements_only = True

    def __init__(self, ctx):
        super().__init__(ctx)
        self.guarded = 0  # how many try / with blocks of the current function enclose the node
        self.in_try = 0  # how many of them are try blocks

    def visit_FunctionDef(self, node):
        outer, self.guarded = self.guarded, 0
        outer_try, self.in_try = self.in_try, 0
        self.generic_visit(node)
        self.guarded, self.in_try = outer, outer_try
        return node

    def _guarded_block(self, node):
        self.guarded += 1
        self.generic_visit(node)
        self.guarded -= 1
        return node

    visit_With = _guarded_block

    def _loop(self, node):
        # A loop a `try` of the same function encloses: its body failing while traced must not
        # reach the handler (runtime/operators.py, NOTE [a loop body that raises while traced])
        if self.in_try:
            node._autoconv_in_try = True
        self.generic_visit(node)
        return node

    visit_While = visit_For = _loop

    def visit_Try(self, node):
        if node.handlers:
            # for a staged raise in a callee that this try would catch (runtime/handlers.py)
            self.ctx.try_blocks.append(_try_block(node))
        self.in_try += 1
        self._guarded_block(node)
        self.in_try -= 1
        for handler in node.handlers:
            if _may_catch_staging_errors(handler.type):
                (first,) = templates.replace("ac.reraise_staging_error()", ac=self.ctx.runtime)
                handler.body.insert(0, first)
        return node

    visit_TryStar = visit_Try

    def visit_ClassDef(self, node):
        outer, self.guarded = self.guarded, 0
        node = super().visit_ClassDef(node)
        self.guarded = outer
        return node

    def visit_Raise(self, node):
        if node.exc is None or self.guarded:
            return node
        args = "exc, cause" if node.cause is not None else "exc"
        (new,) = templates.replace(f"return ac.raise_({args})", ac=self.ctx.runtime, exc=node.exc,
                                   cause=node.cause)
        setattr(new, RAISE, True)
        return new


def _try_block(node) -> TryBlock:
    # (code an earlier converter generated has no position yet, `emit` gives it its
    # statement's: a `super().name` call rewritten in a try body, tester45 s01)
    last = max((line for stmt in node.body for inner in gast.walk(stmt)
                for line in (getattr(inner, "end_lineno", None), getattr(inner, "lineno", None))
                if line is not None), default=node.body[0].lineno)
    handlers = tuple(
        (handler.lineno,
         ast.unparse(gast.gast_to_ast(handler.type)) if handler.type is not None else None)
        for handler in node.handlers)
    return TryBlock(node.body[0].lineno, last, handlers)


# Exception classes a StagingError (a TypeError) is an instance of
_STAGING_ERROR_BASES = {"TypeError", "Exception", "BaseException", "StagingError"}


def may_catch(kind, bases) -> bool:
    """Whether an `except kind:` handler may catch an exception whose class or base classes
    are named `bases`: bare, one of them, a tuple holding one, or an expression not known by
    its name."""
    if kind is None:
        return True
    if isinstance(kind, gast.Tuple):
        return any(may_catch(k, bases) for k in kind.elts)
    if isinstance(kind, gast.Name):
        return kind.id in bases
    if isinstance(kind, gast.Attribute):
        return kind.attr in bases
    return True


def _may_catch_staging_errors(kind) -> bool:
    return may_catch(kind, _STAGING_ERROR_BASES)
