"""A `try` around a torch operation that fails on some data (runtime/fallible.py, NOTE [a try
around an operation that fails on some data]).

    try:                                         L, failed = ac.try_call(RuntimeError,
        L = torch.linalg.cholesky(A)        ->                           torch.linalg.cholesky, A)
    except RuntimeError:                         if failed:
        L = torch.linalg.cholesky(A + j)             L = torch.linalg.cholesky(A + j)

where the body is one assignment of such a call to names, the one handler has no `as` name and
binds those names on its way out (or leaves by `raise` / `return`), and there is no `else` /
`finally`; the `if` is then staged as any other. In any other `try` whose handlers may catch
the operation's error, the call becomes `ac.fallible(func, handler)(...)`, which refuses it
when traced. Which function a call reaches is only known when it runs: the converter picks
calls by name, the runtime checks the function.
"""

from __future__ import annotations

import ast
import builtins

import gast

from .. import templates
from ..analysis.annos import Anno
from ..transformer import Converter
from .generators import leaves_generators_alone
from .raises import may_catch

# Names of torch's operations that raise on some data (runtime/fallible.py's table)
_FALLIBLE = {"cholesky", "inv", "inverse", "solve", "lu_factor", "ldl_factor"}
# Exception classes torch's LinAlgError (a RuntimeError) is an instance of
_LINALG_BASES = {"RuntimeError", "Exception", "BaseException", "LinAlgError", "_LinAlgError"}
_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)


@leaves_generators_alone
class TryConverter(Converter):
    """Stages or refuses a `try` around a call that fails on some data."""

    statements_only = True
    reads = (Anno.LIVE_OUT,)

    def visit_Try(self, node):
        self.generic_visit(node)
        checked = self._checked_value(node)
        if checked is not None:
            return checked
        for handler in node.handlers if _reads_item(node.body) else ():
            if handler.type is not None and may_catch(handler.type, _ZERO_DIVISION_BASES):
                # A division of numbers read from tensors (`a.item() / b.item()`) as the
                # runtime's, whose check this handler would catch: refused at the check
                # (`handlers.catching`), where Python's division of two symbols raised out of
                # the graph that Python's `try` catches
                for stmt in node.body:
                    if stmt.__class__ in (gast.Assign, gast.AugAssign, gast.Expr):
                        stmt.value = _checked_operations(stmt.value, handler.type,
                                                         self.ctx.runtime)
                break
        handlers = [h for h in node.handlers if _may_catch(h.type)]
        if not handlers:
            return node
        staged = self._staged(node)
        if staged is not None:
            return staged
        handler = handlers[0]
        clause = "except:" if handler.type is None else (
            f"except {ast.unparse(gast.gast_to_ast(handler.type))}:")
        shown = f"`{clause}` (line {handler.lineno})"
        for call in _calls(node.body):
            func = call.func
            call.func = templates.replace(
                "ac.fallible(func, handler)", ac=self.ctx.runtime, func=func,
                handler=gast.Constant(value=shown, kind=None))[0].value
            _locate(call.func, func)
        return node

    visit_TryStar = visit_Try

    def _staged(self, node):
        """The `try_call` and `if` of the module docstring, or None where `node` is not of
        that shape."""
        if len(node.handlers) != 1 or node.orelse or node.finalbody or len(node.body) != 1:
            return None
        (handler,), (body,) = node.handlers, node.body
        if (handler.name is not None or body.__class__ is not gast.Assign
                or len(body.targets) != 1 or body.targets[0].__class__ is not gast.Name
                or body.value.__class__ is not gast.Call
                or _called_name(body.value.func) not in _FALLIBLE):
            return None
        target = body.targets[0].id
        if not _binds_on_exit(handler.body, target):
            return None
        call = body.value
        failed = self.ctx.namer.new("failed")
        caught = handler.type if handler.type is not None else templates.name("BaseException")
        assign, test = templates.replace(
            "target, failed = ac.try_call(caught, func)\nif failed:\n    pass",
            ac=self.ctx.runtime, target=templates.name(target, gast.Store()),
            failed=templates.name(failed, gast.Store()), caught=caught, func=call.func)
        assign.value.args.extend(call.args)
        assign.value.keywords.extend(call.keywords)
        test.body = handler.body
        _locate(assign, body)
        _locate(test, node)
        return [assign, test]


    def _checked_value(self, node):
        """`target, failed = ac.try_value(caught, lambda: value)` and `if failed:` with the
        handler's body, for a `try` whose body is one assignment of an expression to a name
        and whose one handler may catch a Python error the graph checks (NOTE [a try around a
        value the graph checks] in runtime/fallible.py); None for any other `try`."""
        if len(node.handlers) != 1 or node.orelse or node.finalbody or not node.body:
            return None
        if len(node.body) > 1:
            return self._checked_values(node)
        (handler,), (body,) = node.handlers, node.body
        returned = body.__class__ is gast.Return and body.value is not None
        if (handler.name is not None or not may_catch(handler.type, _CHECKED_BASES)
                or not (returned or body.__class__ is gast.Assign and len(body.targets) == 1
                        and body.targets[0].__class__ is gast.Name)
                or (body.value.__class__ is gast.Call
                    and _called_name(body.value.func) in _FALLIBLE)):
            return None
        if returned:
            # `try: return a.item() / b.item()` (a helper's, tester22 s10): the value is bound
            # to a name of its own and returned after the handler, which must leave
            if not handler.body or handler.body[-1].__class__ not in (gast.Return, gast.Raise):
                return None
            target = self.ctx.namer.new("value")
        else:
            target = body.targets[0].id
        if not _binds_on_exit(handler.body, target) or _reads(handler.body, target) \
                or not _plain_expression(body.value, self.ctx.runtime):
            return None
        body.value = _checked_operations(body.value, handler.type, self.ctx.runtime)
        failed = self.ctx.namer.new("failed")
        caught = handler.type if handler.type is not None else templates.name("BaseException")
        # The names the value reads are the lambda's parameters, given by the call: a closure
        # over a variable a staged statement changes is refused under torch.compile.
        names = sorted({n.id for n in gast.walk(body.value) if n.__class__ is gast.Name
                        and n.ctx.__class__ is gast.Load and n.id != self.ctx.runtime
                        and n.id not in _BUILTINS})
        compute = gast.Lambda(
            args=gast.arguments(args=[templates.name(n, gast.Param()) for n in names],
                                posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                                kwarg=None, defaults=[]),
            body=body.value)
        assign, test = templates.replace(
            "target, failed = ac.try_value(caught, compute, inputs)\nif failed:\n    pass",
            ac=self.ctx.runtime, target=templates.name(target, gast.Store()),
            failed=templates.name(failed, gast.Store()), caught=caught, compute=compute,
            inputs=templates.names_tuple(names))
        test.body = handler.body
        _locate(assign, body)
        _locate(test, node)
        if returned:
            value = gast.Return(value=templates.name(target))
            _locate(value, body)
            return [assign, test, value]
        return [assign, test]


    def _checked_values(self, node):
        """`_checked_value` of a body of several assignments to names (`r = a.item() /
        b.item()` then `s = r * 2`, NOTE [a try of several values]), or None."""
        (handler,) = node.handlers
        body = node.body
        if handler.name is not None or not may_catch(handler.type, _CHECKED_BASES) or not all(
                stmt.__class__ is gast.Assign and len(stmt.targets) == 1
                and stmt.targets[0].__class__ is gast.Name
                and _plain_expression(stmt.value, self.ctx.runtime)
                and not (stmt.value.__class__ is gast.Call
                         and _called_name(stmt.value.func) in _FALLIBLE) for stmt in body):
            return None
        if not _reads_item(body):
            return None  # (numbers read from tensors only: other bodies stay a `try`)
        targets = list(dict.fromkeys(stmt.targets[0].id for stmt in body))
        live = self.anno(node, Anno.LIVE_OUT) or frozenset()
        if any(_reads(handler.body, t) or not _binds_on_exit(handler.body, t) and t in live
               for t in targets):
            return None
        # The names the values read, less those an earlier assignment gives them
        names, given = set(), set()
        for stmt in body:
            names |= {n.id for n in gast.walk(stmt.value) if n.__class__ is gast.Name
                      and n.ctx.__class__ is gast.Load and n.id != self.ctx.runtime
                      and n.id not in _BUILTINS and n.id not in given}
            given.add(stmt.targets[0].id)
        names = sorted(names)
        # `(lambda r: (lambda s: (r, s))(r * 2))(a / b)`: each value computed where Python
        # computes it, one lambda per assignment
        inner = gast.Tuple(elts=[templates.name(t) for t in targets], ctx=gast.Load())
        for stmt in reversed(body):
            value = _checked_operations(stmt.value, handler.type, self.ctx.runtime)
            inner = gast.Call(func=_lambda([stmt.targets[0].id], inner), args=[value],
                              keywords=[])
        compute = _lambda(names, inner)
        failed = self.ctx.namer.new("failed")
        caught = handler.type if handler.type is not None else templates.name("BaseException")
        assign, test = templates.replace(
            "target = ac.try_value(caught, compute, inputs)\nif failed:\n    pass",
            ac=self.ctx.runtime, target=gast.Tuple(elts=[
                gast.Tuple(elts=[templates.name(t, gast.Store()) for t in targets],
                           ctx=gast.Store()), templates.name(failed, gast.Store())],
                ctx=gast.Store()),
            failed=templates.name(failed), caught=caught, compute=compute,
            inputs=templates.names_tuple(names))
        test.body = handler.body
        _locate(assign, body[0])
        _locate(test, node)
        return [assign, test]


# NOTE [a try of several values]
# `try: r = a.item() / b.item(); s = r * 2 except ZeroDivisionError: s = 0.0`: as one
# assignment's (NOTE [a try around a value the graph checks] in runtime/fallible.py), the
# values computed with the checks the handler catches collected, then the handler where one
# failed. Python stops at the failing assignment, so the names after it keep their old values
# and the ones before it their new ones, where the staged `try` binds them all: taken only
# where the handler reads none of them and each is bound by the handler or not read after
# the `try` (else the `try` is left as it is: a check it catches is refused at the check).


def _reads_item(body) -> bool:
    """Whether the statements `body` read a number from a tensor (`t.item()`, `float(t)`)."""
    return any(n.__class__ is gast.Call and n.func.__class__ is gast.Attribute
               and n.func.attr in ("item", "float_", "int_", "math_argument")
               for stmt in body for n in gast.walk(stmt))


def _lambda(params, body):
    return gast.Lambda(
        args=gast.arguments(args=[templates.name(n, gast.Param()) for n in params],
                            posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                            kwarg=None, defaults=[]),
        body=body)


def _checked_operations(value, caught, runtime):
    """The divisions and item reads in `value` whose error `caught` catches, as the runtime's
    operators: a division of numbers read from tensors (`a.item() / b.item()`) was Python's
    division of two symbols, which raised out of the graph, and a row of a tensor of
    data-dependent length (`x[x > 0][0]`) torch's assertion (NOTE [a row of a tensor of
    data-dependent length in a try] in runtime/subscripts.py); as `ac.binary` /
    `ac.getitem`, their failure is the try's."""
    divisions = may_catch(caught, _ZERO_DIVISION_BASES)
    reads = may_catch(caught, _INDEX_BASES)

    class _Checked(gast.NodeTransformer):
        def visit_BinOp(self, node):
            self.generic_visit(node)
            op = _DIVISIONS.get(node.op.__class__)
            if not divisions or op is None:
                return node
            call = templates.replace("ac.binary(left, op, right)", ac=runtime, left=node.left,
                                     right=node.right, op=gast.Constant(value=op, kind=None))
            _locate(call[0], node)
            return call[0].value

        def visit_Subscript(self, node):
            self.generic_visit(node)
            if (not reads or node.ctx.__class__ is not gast.Load
                    or node.slice.__class__ in (gast.Slice, gast.Tuple)):
                return node
            call = templates.replace("ac.getitem(target, key)", ac=runtime, target=node.value,
                                     key=node.slice)
            _locate(call[0], node)
            return call[0].value

    return _Checked().visit(value)


_DIVISIONS = {gast.Div: "/", gast.FloorDiv: "//", gast.Mod: "%"}
_ZERO_DIVISION_BASES = {"ZeroDivisionError", "ArithmeticError", "Exception", "BaseException"}
_INDEX_BASES = {"IndexError", "LookupError", "Exception", "BaseException"}


_BUILTINS = frozenset(dir(builtins))

# Base classes of the Python errors a graph checks on numbers and grown lists (ZeroDivisionError,
# OverflowError, ValueError, IndexError: runtime/augmented.py `graph_check`)
_CHECKED_BASES = {"ZeroDivisionError", "OverflowError", "ArithmeticError", "ValueError",
                  "IndexError", "LookupError", "Exception", "BaseException"}
# What a `lambda` cannot hold as the `try` body held it, or may stage a statement of its own
# (whose checks would be inside that statement's graph)
_NOT_PLAIN = (gast.NamedExpr, gast.Yield, gast.YieldFrom, gast.Await, gast.Lambda, gast.IfExp,
              gast.BoolOp, gast.ListComp, gast.SetComp, gast.DictComp, gast.GeneratorExp)


def _plain_expression(value, runtime) -> bool:
    """Whether `value` can be computed by a lambda with its checks at the `try`'s own level:
    no staged choice or loop, no user call (whose statements and side effects Python would
    stop at the error), no in-place method, no `super()`."""
    for inner in gast.walk(value):
        if isinstance(inner, _NOT_PLAIN):
            return False
        if inner.__class__ is gast.Call:
            name = _called_name(inner.func)
            if name in ("converted_call", "converted_method_call", "super") or (
                    name and name.endswith("_") and not name.startswith("_")
                    and not (inner.func.__class__ is gast.Attribute
                             and inner.func.value.__class__ is gast.Name
                             and inner.func.value.id == runtime)):
                return False
    return True


def _reads(body, name) -> bool:
    """Whether the statements `body` read `name`."""
    return any(n.__class__ is gast.Name and n.id == name and n.ctx.__class__ is gast.Load
               for stmt in body for n in gast.walk(stmt))


def _locate(new, old) -> None:
    """Gives the nodes of `new` that have none the position of `old` (the user's line)."""
    for inner in gast.walk(new):
        for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if getattr(inner, field, None) is None and field in inner._attributes:
                setattr(inner, field, getattr(old, field, None))


def _called_name(func):
    if func.__class__ is gast.Attribute:
        return func.attr
    return getattr(func, "id", None)


def _may_catch(kind) -> bool:
    """Whether `except kind:` may catch torch's LinAlgError (a RuntimeError)."""
    return may_catch(kind, _LINALG_BASES)


def _binds_on_exit(body, target) -> bool:
    """Whether the statements `body` bind `target` at their top level, or end by leaving."""
    if body and body[-1].__class__ in (gast.Raise, gast.Return):
        return True
    return any(stmt.__class__ is gast.Assign and any(
        t.__class__ is gast.Name and t.id == target for t in stmt.targets) for stmt in body)


def _calls(body):
    """The calls of `body` by a name of _FALLIBLE, outside nested functions and classes."""
    stack, found = list(body), []
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            continue
        if node.__class__ is gast.Call and _called_name(node.func) in _FALLIBLE:
            found.append(node)
        stack.extend(gast.iter_child_nodes(node))
    return found
