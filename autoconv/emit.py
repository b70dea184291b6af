"""Converted trees to code objects (compiled with the user's file and line numbers) and to source.

astor is imported here and nowhere else, so it can be swapped for `ast.unparse`. It only serves
`to_source` (display), which imports it on first use (25 ms of `import autoconv`, for a module
conversion never needs); compiling goes from the gast tree to a stdlib `ast` tree directly.
"""

from __future__ import annotations

import ast

import gast

__all__ = ["to_source", "compile_factory", "to_ast"]


def _unwrapped(source_parts) -> str:
    # astor wraps lines at 79 columns in awkward places; generated code reads better unwrapped.
    return "".join(source_parts)


def to_source(node) -> str:
    """Readable Python source of a gast tree."""
    import astor

    return astor.to_source(gast.gast_to_ast(node), pretty_source=_unwrapped)


# gast class -> (ast class, the fields both have, whether it has a position). gast's own
# converter is a generic NodeTransformer that probes every field with hasattr and getattr; on a
# converted function it costs as much as all the converter passes together.
_CLASSES: dict = {}


def _class_info(cls):
    info = _CLASSES.get(cls)
    if info is None:
        target = getattr(ast, cls.__name__)
        fields = tuple(f for f in cls._fields if f in target._fields)
        info = _CLASSES[cls] = (target, fields, "lineno" in target._attributes)
    return info


def _arg(name, lineno, col):
    # gast spells a parameter as a Name in Param context; ast as an `arg`.
    if name is None:
        return None
    arg = ast.arg(arg=name.id, annotation=_convert(name.annotation, lineno, col),
                  type_comment=name.type_comment)
    _position(arg, name, lineno, col)
    return arg


def _position(new, old, lineno, col):
    """Copy `old`'s position to `new`; generated nodes take the enclosing user node's."""
    line = getattr(old, "lineno", None)
    if line is None:
        new.lineno = new.end_lineno = lineno
        new.col_offset = new.end_col_offset = col
        return lineno, col
    column = old.col_offset or 0
    new.lineno, new.col_offset = line, column
    end = getattr(old, "end_lineno", None)
    if end is None or end < line:
        new.end_lineno, new.end_col_offset = line, column
    else:
        new.end_lineno, new.end_col_offset = end, old.end_col_offset or 0
    return line, column


_SCALARS = frozenset((str, int, bool, float))
# Contexts and operators have no fields: one shared instance each, as ast.parse does.
_SHARED = {cls: getattr(ast, cls.__name__)() for cls in vars(gast).values()
           if isinstance(cls, type) and issubclass(cls, gast.AST) and not cls._fields
           and not cls._attributes and hasattr(ast, cls.__name__)}


def _convert(node, lineno, col):
    cls = node.__class__
    info = _CLASSES.get(cls)
    if info is None:
        if node is None:
            return None
        if cls is list:
            return [_convert(n, lineno, col) for n in node]
        shared = _SHARED.get(cls)
        if shared is not None:
            return shared
        if not isinstance(node, gast.AST):
            return node
        info = _class_info(cls)
    target, fields, positioned = info
    new = target.__new__(target)
    # (a node's fields and position by dict lookups, the new node's by item stores: no getattr
    # or setattr calls)
    attrs, out = node.__dict__, new.__dict__
    if positioned:
        line = attrs.get("lineno")
        if line is None:
            out["lineno"] = out["end_lineno"] = lineno
            out["col_offset"] = out["end_col_offset"] = col
        else:
            lineno, col = line, attrs.get("col_offset") or 0
            out["lineno"], out["col_offset"] = lineno, col
            end = attrs.get("end_lineno")
            if end is None or end < line:
                out["end_lineno"], out["end_col_offset"] = lineno, col
            else:
                out["end_lineno"], out["end_col_offset"] = end, attrs.get("end_col_offset") or 0
    if cls is gast.Name:
        out["id"], out["ctx"] = attrs["id"], _SHARED[attrs["ctx"].__class__]
        return new
    if cls is gast.arguments:
        new.posonlyargs = [_arg(a, lineno, col) for a in node.posonlyargs]
        new.args = [_arg(a, lineno, col) for a in node.args]
        new.vararg = _arg(node.vararg, lineno, col)
        new.kwonlyargs = [_arg(a, lineno, col) for a in node.kwonlyargs]
        new.kw_defaults = _convert(node.kw_defaults, lineno, col)
        new.kwarg = _arg(node.kwarg, lineno, col)
        new.defaults = _convert(node.defaults, lineno, col)
        return new
    for field in fields:
        value = attrs.get(field)
        kind = value.__class__
        if kind is list:
            value = [_convert(v, lineno, col) for v in value]
        elif value is not None and kind not in _SCALARS:
            # (contexts and operators: shared instances, without a call)
            value = _SHARED.get(kind) or _convert(value, lineno, col)
        out[field] = value
    if cls is gast.ExceptHandler:
        if node.name is not None:
            new.name = node.name.id
    elif cls is gast.FunctionDef:
        fast_path = attrs.get(FAST_PATH)
        if fast_path is not None:
            new.body = [_fast_path(*fast_path, lineno, col),
                        _guard_errors_placed(new.body, fast_path[1], lineno, col)]
        elif attrs.get(ERRORS_PLACED) is not None:
            new.body = [_guard_errors_placed(new.body, attrs[ERRORS_PLACED], lineno, col)]
    return new


# Set by the pipeline on a converted function: (its original body as stdlib `ast`, the runtime's
# name). The compiled function starts with
#
#     if ac.eager():
#         <the original body>
#         return None
#
# so that without a tracer (nothing can be staged) it runs as plain Python, at plain Python's
# speed; under a tracer the converted body runs. `to_source` leaves this out: it shows the
# converted body, the part that stages.
FAST_PATH = "_autoconv_fast_path"
# Set instead on a converted function without a fast path (one that defines a lambda, a
# function or a class, or uses `global`): the runtime's name. Its converted body alone is
# compiled in `_guard_errors_placed`'s handler (under torch.export, `cand.sort(key=lambda c:
# float(c[0]))` raised torch's data-dependent guard with no line: tester t14 repro 5).
ERRORS_PLACED = "_autoconv_errors_placed"


def _fast_path(original_body, runtime, lineno, col):
    test = ast.Call(func=ast.Attribute(value=ast.Name(id=runtime, ctx=ast.Load()), attr="eager",
                                       ctx=ast.Load()), args=[], keywords=[])
    done = ast.Return(value=ast.Constant(value=None))
    guard = ast.If(test=test, body=list(original_body) + [done], orelse=[])
    for node in (guard, test, test.func, test.func.value, done, done.value):
        node.lineno = node.end_lineno = lineno
        node.col_offset = node.end_col_offset = col
    return guard


def _guard_errors_placed(body, runtime, lineno, col):
    """`try: <body> except ac.DataDependentGuard: raise ac.data_dependent_error()`:
    torch's error for Python code asking a traced tensor's value, as a StagingError at the
    user's line under any tracer (NOTE [data-dependent guards in converted code] in
    autoconv_runtime/errors.py). Free when nothing is raised."""
    def runtime_attr(name):
        return ast.Attribute(value=ast.Name(id=runtime, ctx=ast.Load()), attr=name,
                             ctx=ast.Load())

    raised = ast.Call(func=runtime_attr("data_dependent_error"), args=[], keywords=[])
    raise_ = ast.Raise(exc=raised, cause=None)
    handler = ast.ExceptHandler(type=runtime_attr("DataDependentGuard"), name=None,
                                body=[raise_])
    statement = ast.Try(body=list(body), handlers=[handler], orelse=[], finalbody=[])
    # (the body is positioned already (`to_ast`): only the nodes made here are, where a walk
    # of the whole function was a tenth of a conversion)
    for node in (statement, handler, handler.type, handler.type.value, raise_,
                 raised, raised.func, raised.func.value):
        node.lineno = node.end_lineno = lineno
        node.col_offset = node.end_col_offset = col
    return statement


def to_ast(node, lineno=1, col=0):
    """The stdlib `ast` tree of a gast tree, every node positioned (ready for `compile`).

    A node without a position takes the one of the nearest enclosing node that has one.
    """
    return _convert(node, lineno, col)


def compile_factory(factory, filename: str):
    """Compile a module holding one factory function; returns the factory's code object.

    Positions are the user's, so tracebacks through converted code show the user's lines.
    """
    tree = to_ast(factory, factory.body[-1].lineno or 1)
    module = ast.Module(body=[tree], type_ignores=[])
    code = compile(module, filename, "exec", dont_inherit=True)
    return next(c for c in code.co_consts if hasattr(c, "co_code"))
