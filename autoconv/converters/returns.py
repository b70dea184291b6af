"""`return` anywhere becomes assignments to `do_return` / `retval`, and one return at the end.

    def f(x):                         def f(x):
        if x > 0:                         do_return = False
            return x                      retval = ac.Undefined('return value')
        y = -x               ->           if x > 0:
        return y                              do_return = True
                                              retval = x
                                          else:
                                              y = -x
                                              do_return = True
                                              retval = y
                                          return retval

The statements after an `if` that may return go into both its branches when no other statement
among them returns from inside a compound statement; otherwise they run under
`if not do_return:`. Loops that may return get `not do_return` as an extra test. A function
whose only return is its last statement is left as it is.
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.nodes import children, walk_statements
from ..errors import ConversionError
from ..transformer import Converter
from .break_continue import add_loop_test
from .choices import RETURNED_PATHS, Unknown
from .generators import first_yield, leaves_generators_alone
from .guards import contains, guard_block
from .raises import RAISE


def only_final_return(body) -> bool:
    """Whether the function's only `return` (if any) is its last statement (left as it is)."""
    inner = body[:-1] if body and isinstance(body[-1], gast.Return) else body
    return not any(contains(stmt, gast.Return, True) for stmt in inner)


def _returns_values(function) -> bool:
    """Whether a `return` of `function` itself (not of a nested scope) gives a value."""
    stack = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, gast.Return) and node.value is not None and not getattr(
                node, RAISE, False):
            return True
        if not isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
            stack.extend([n for n in children(node) if isinstance(n, gast.stmt)
                          or isinstance(n, gast.excepthandler)])
    return False


_DEFS = (gast.FunctionDef, gast.AsyncFunctionDef)


@leaves_generators_alone
class ReturnConverter(Converter):
    """Lowers the returns of each function (nested functions separately)."""

    statements_only = True

    def visit_Lambda(self, node):
        return node

    @classmethod
    def transform(cls, node, ctx):
        """Lower the returns of `node`, the function being converted; refuse it if it is a
        generator (generators nested in it are left as they are)."""
        found = first_yield(node) if ctx.namer.has_yield else None
        if found is not None:
            construct = "yield from" if isinstance(found, gast.YieldFrom) else "yield"
            raise ConversionError("generator", ctx.filename, found.lineno, found.col_offset + 1,
                                  construct=construct)
        if only_final_return(node.body) and not any(
                stmt.__class__ in _DEFS for stmt in walk_statements(node) if stmt is not node):
            # nothing to lower (the common case): the walk below would leave every node as it
            # is (NOTE [passes with nothing to do] in pipeline.py)
            return node
        return super().transform(node, ctx)

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        if only_final_return(node.body):
            return node
        # A function that returns no value (raises, bare returns) returns None when it falls
        # off its end; one that returns values starts unbound (see RETURN_VALUE in the runtime).
        initial = "ac.Undefined('return value')" if _returns_values(node) else "None"
        do_return = self.ctx.namer.new("do_return")
        retval = self.ctx.namer.new("retval")
        self.ctx.display_names.update({do_return: "<return flag>", retval: "<return value>"})
        # Locals like the user's: a lambda of a later pass (logical) that reads them gets them
        # as parameters, not as a closure, which would make them cells live everywhere.
        self.ctx.local_names.update((do_return, retval))

        def replace_return(stmt):
            if getattr(stmt, RAISE, False):  # ac.raise_(exc): the return value stays
                return [gast.Expr(value=stmt.value)] + templates.replace("flag = True",
                                                                         flag=do_return)
            value = stmt.value or gast.Constant(value=None, kind=None)
            return templates.replace("flag = True\nretval = value", flag=do_return, retval=retval,
                                     value=value)

        body = guard_block(node.body, gast.Return, replace_return, do_return, self.ctx,
                           into_loops=True, on_loop=self._on_loop(replace_return, do_return))
        node.body = (
            templates.replace(
                f"flag = False\nretval = {initial}",
                flag=do_return, retval=retval, ac=self.ctx.runtime,
            )
            + body
            + self._final_return(node, retval)
        )
        return node

    def _on_loop(self, replace_return, do_return):
        """What `guard_block` does to a loop holding a return: its body guarded the same way,
        `not do_return` added to its test. (A fresh function per loop, not a closure passing
        itself on: that was a reference cycle holding the converter, NOTE [converters without
        reference cycles] in transformer.py.)"""
        def on_loop(loop):
            loop.body = guard_block(loop.body, gast.Return, replace_return, do_return, self.ctx,
                                    into_loops=True,
                                    on_loop=self._on_loop(replace_return, do_return))
            add_loop_test(loop, templates.replace("not flag", flag=do_return)[0].value)
        return on_loop

    def _final_return(self, node, retval) -> list:
        """`return retval`, marked with the sources of the returns by index where the choice
        converter indexed them (NOTE [returned paths] in converters/choices.py)."""
        paths = getattr(node, RETURNED_PATHS, None)
        if paths is None:
            return templates.replace("return retval", retval=retval)
        which, sources = paths
        elts = []
        for source in sources:
            if source is None:
                elts.append(gast.Constant(value=None, kind=None))
            elif isinstance(source, Unknown):
                elts.append(gast.Constant(value=str(source), kind=None))
            else:
                elts.append(templates.name(source))  # (bound for certain)
        return templates.replace(
            "return ac.returned_path(retval, which, sources)", ac=self.ctx.runtime,
            retval=retval, which=which, sources=gast.List(elts=elts, ctx=gast.Load()))
