"""Convert a Python function into its twin whose control flow calls the runtime; cached per code."""

from __future__ import annotations

import functools
import gc
import threading
import tokenize
import types
import weakref

import torch

import gast

import autoconv_runtime
from autoconv_runtime import handlers as runtime_handlers
from autoconv_runtime.staging import (export_passes, export_state, kept_effects,
                                      operator_autograd)
from autoconv_runtime.staging.tracers import dynamo as dynamo_tracer

from . import emit, pipeline, templates
from .analysis.nodes import walk, walk_statements
from .converters.kept_views import parameter_updates as _parameter_updates_of
from .converters.matches import lower_matches
from .converters.view_attributes import VIEW_ATTRIBUTES
from .errors import ConversionError
from .naming import Namer
from .parsing import parse_function
from .transformer import Context

__all__ = ["convert_function", "converted_tree", "is_generated", "is_generated_code",
           "parameter_updates"]

RUNTIME_NAME = "ac"

class _CodeMap:
    """Code object -> value, by identity, each entry dropped when its code object dies.

    Not a WeakKeyDictionary: code objects compare equal across files when their bytecode,
    names and line numbers are equal, and one function's conversion (compiled with its file
    name) would then be handed to a copy of it in another file.
    """

    def __init__(self):
        self._entries = {}  # id(code) -> (weak reference to code, value)

    def get(self, code, default=None):
        entry = self._entries.get(id(code))
        return entry[1] if entry is not None and entry[0]() is code else default

    def __setitem__(self, code, value) -> None:
        key, entries = id(code), self._entries
        # The callback runs when the code object is freed, before its id can be reused.
        entries[key] = (weakref.ref(code, lambda _, key=key: entries.pop(key, None)), value)

    def __contains__(self, code) -> bool:
        return self.get(code, self) is not self

    def __iter__(self):
        return iter([c for c in (ref() for ref, _ in list(self._entries.values())) if c is not None])

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, code) -> None:
        """As a set of code objects (by identity)."""
        self[code] = True


# All three are weak on code objects, so that what autoconv made for a function goes when the
# function (and so its code) goes: converting many short-lived functions must not grow memory.
# Code objects autoconv made: functions created from them are converted already. By identity,
# not a WeakSet's equality: a nested function's converted code equals the user's own code of it
# where conversion left it as it was (`def scale(v): return v * w`), and the user's function
# then passed for a converted one (never converted: no handler placing torch's data-dependent
# errors, its frames trimmed from tracebacks as autoconv's), depending on whether the garbage
# collector had freed the conversion yet. (Hashing a code object for the set was a cost too.)
_generated_codes = _CodeMap()
# Original code object -> converted code object, shared by all closures of it. The converted
# code holds no reference back to the original, so the entry dies with it.
_code_cache = _CodeMap()
_lock = threading.RLock()
# Original code object -> names of the functions its calls name (see preconvert_callees).
_callees = _CodeMap()
# Original code object -> {parameter names: converted code}: the twins for calls that give some
# parameters a Python number's stand-in (NOTE [numbers given to a function] in
# runtime/calls.py), made on the first such call.
_number_codes = _CodeMap()
# Code object (the user's, and each converted twin of it or of a function defined in it) ->
# the parameters it updates in place (NOTE [parameters a function updates in place] in
# converters/kept_views.py), or _NO_SOURCE.
_parameter_updates = _CodeMap()
_NO_SOURCE = (frozenset(), ())


def is_generated(fn) -> bool:
    """True for a function whose code autoconv generated."""
    return getattr(fn, "__code__", None) in _generated_codes


def is_generated_code(code) -> bool:
    """True for a code object autoconv generated."""
    return code in _generated_codes


# Statements no converter understands, with what to write instead. Refused before conversion:
# the passes would leave their jumps and branches unconverted and the result would be wrong.
# (A `match` is an if/elif chain by then, or refused: NOTE [match statements as if chains].)
_UNSUPPORTED = {
    gast.TryStar: ("`except*`", "catch the exception group with a plain `except` and inspect it"),
}

# Expressions that converted code evaluates inside a function of their own (a loop test, the
# lazy operand of `and` / `or`, a branch of `x if c else y`): an assignment expression there
# would bind its name in that function, not in the user's, so it is refused.
_WALRUS_PLACES = "`:=` in a while condition, a right operand of and/or, or a branch of a " \
    "conditional expression"
_WALRUS_FIX = "assign the value in a statement of its own first"


def _deferred_parts(node):
    if isinstance(node, gast.While):
        return [node.test]
    if isinstance(node, gast.BoolOp):
        return node.values[1:]
    if isinstance(node, gast.IfExp):
        return [node.body, node.orelse]
    return []


def _walrus_in(node):
    """The first `:=` in `node` that binds in the current scope (not in a nested function)."""
    if isinstance(node, gast.NamedExpr):
        return node
    if isinstance(node, (gast.Lambda, gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
        return None
    for child in gast.iter_child_nodes(node):
        found = _walrus_in(child)
        if found is not None:
            return found
    return None


def _refuse_unsupported(node, nodes, filename) -> None:
    """Raise a ConversionError at the first construct that the converters cannot handle.
    `nodes`: every node under `node`."""
    for inner in walk_statements(node):  # match and except* are statements
        refused = _UNSUPPORTED.get(inner.__class__)
        if refused is not None:
            raise ConversionError("unsupported", filename, inner.lineno, inner.col_offset + 1,
                                  construct=refused[0], fix=refused[1])
    if not any(inner.__class__ is gast.NamedExpr for inner in nodes):
        return  # the common case
    for inner in nodes:
        for part in _deferred_parts(inner):
            walrus = _walrus_in(part)
            if walrus is not None:
                raise ConversionError("unsupported", filename, walrus.lineno,
                                      walrus.col_offset + 1, construct=_WALRUS_PLACES,
                                      fix=_WALRUS_FIX)


def converted_tree(fn, numbers: frozenset = frozenset(), objects: frozenset = frozenset()):
    """(converted gast tree, Context) for `fn`; `numbers`: the parameters that hold a Python
    number's stand-in, `objects`: those whose fields hold one (NOTE [numbers given to a
    function] in runtime/calls.py)."""
    try:
        parsed = parse_function(fn)
    except tokenize.TokenError as e:
        # inspect tokenizes the lines from the def on to find the function's end; odd line
        # continuations and comments can make that fail for code Python compiled fine.
        raise ConversionError("no_source", fn.__code__.co_filename, fn.__code__.co_firstlineno,
                              what=fn.__qualname__, reason=f"inspect could not tokenize it "
                              f"({e.args[0]})") from None
    node = parsed.node
    # One walk of the parsed tree for the three whole-tree scans below.
    nodes = walk(node)
    namer = Namer(nodes)
    runtime = RUNTIME_NAME if RUNTIME_NAME not in namer.taken else namer.new("autoconv_runtime")
    if any(inner.__class__ is gast.Match for inner in nodes):
        # NOTE [match statements as if chains] (its tests call the runtime)
        node = lower_matches(node, namer, parsed.filename, runtime)
        nodes = walk(node)
        namer = Namer(nodes)
    _refuse_unsupported(node, nodes, parsed.filename)
    namer.taken.add(runtime)
    ctx = Context(filename=parsed.filename, namer=namer, globals=fn.__globals__)
    ctx.runtime = runtime
    ctx.number_params = numbers
    ctx.number_objects = objects
    (ctx.local_names, local_functions, ctx.reads_grad, ctx.uses_data,
     ctx.reads_apply, ctx.reads_views) = _scan(node, nodes)
    ctx.uses_class_cell = False
    ctx.callees = set()
    ctx.makes_text = False  # set by CallConverter where it writes a text function
    ctx.stages = False  # set by the control-flow pass where it stages a statement
    ctx.try_blocks = []  # runtime/handlers.py
    # autoconv's own variables -> how runtime messages name them (see runtime/errors.py)
    ctx.display_names = {}
    if isinstance(node, gast.Lambda):
        node = gast.FunctionDef(
            name=fn.__name__ if fn.__name__ != "<lambda>" else "lambda_", args=node.args,
            body=[gast.Return(value=node.body)], decorator_list=[], returns=None,
            type_comment=None, type_params=[], lineno=node.lineno, col_offset=node.col_offset,
        )
    ctx.local_functions = local_functions
    ctx.free_names = frozenset(fn.__code__.co_freevars)  # NOTE [methods of outside values]
    # (read from the user's statements, before the passes rewrite them: the nested functions'
    # by name and first line, which their converted code keeps)
    ctx.parameter_updates = {None: None}
    for inner in nodes:
        if isinstance(inner, (gast.FunctionDef, gast.AsyncFunctionDef)):
            record = _parameter_updates_of(inner)
            ctx.parameter_updates[
                inner.name, min([inner.lineno] + [d.lineno for d in inner.decorator_list])] = record
            if inner is node:  # (the function itself: read once, not twice)
                ctx.parameter_updates[None] = record
    if ctx.parameter_updates[None] is None:  # (a lambda)
        ctx.parameter_updates[None] = _parameter_updates_of(node)
    return pipeline.convert_tree(node, ctx), ctx


def _scan(node, nodes) -> tuple[set[str], set[str], bool, bool, bool, bool]:
    """(local names, local functions, whether it reads an attribute `grad`, whether it uses an
    attribute `data`, whether it reads an attribute `apply`, whether it reads a view attribute
    `mT` / `T` / `H` / `mH`) of the function
    `node` (`nodes`: every node under it), in one loop (a conversion's whole-tree walks were a
    fifth of its time), which also drops annotations.

    Local names: every name bound in it (nested functions' included). Local functions: names
    bound by a def, or to a lambda, inside it (converted with it); a name also bound to
    something else may hold another callable when called, so it is not one. No pass writes a
    `.grad` of its own: without one in the user's code, the gradient-read pass has nothing to
    do (see pipeline.convert_tree); nor has the `.data` pass without a `.data`, nor the view
    attributes' pass without one.
    """
    names, defs, lambdas, other = set(), set(), set(), set()
    reads_grad = uses_data = reads_apply = reads_views = False
    for inner in nodes:
        kind = type(inner)
        if kind is gast.Name:
            if not isinstance(inner.ctx, gast.Load):
                names.add(inner.id)
        elif kind is gast.Attribute:
            if inner.attr in ("grad", "backward"):  # (GradReadConverter's two)
                reads_grad = True
            elif inner.attr == "apply":  # (ApplyReadConverter's)
                reads_apply = True
            elif inner.attr == "data":
                uses_data = True
            elif inner.attr in VIEW_ATTRIBUTES:  # (ViewAttributeConverter's)
                reads_views = True
        elif kind is gast.FunctionDef:
            defs.add(inner.name)
            # Annotations would be evaluated in the factory's scope; converted code does not
            # need them.
            inner.returns = None
        elif kind is gast.arguments:
            for arg in (*inner.posonlyargs, *inner.args, *inner.kwonlyargs, inner.vararg,
                        inner.kwarg):
                if arg is not None:
                    arg.annotation = None
        elif kind is gast.Assign:
            targets = {t.id for t in inner.targets if isinstance(t, gast.Name)}
            (lambdas if isinstance(inner.value, gast.Lambda) else other).update(targets)
    functions = (defs - {getattr(node, "name", None)}) | lambdas
    return (names | defs, functions - other, reads_grad, uses_data, reads_apply,
            reads_views)


# NOTE [no garbage collection during a conversion]
# A conversion builds its trees (about ten thousand nodes, lists and dicts) and drops them
# when it ends; while it runs, their net count passes the collector's first threshold one to
# two times, and each collection walks the live trees, finds nothing to free and moves them
# to an older generation, so that they also add to the count that starts a full collection
# of the process (torch's 300,000 objects: 80-150 ms each). Measured over the sample
# functions (gc callbacks, session 53): 1.6 young collections a conversion (0.16-0.19 ms)
# and a full one every 100-300 conversions (0.3-1.2 ms a conversion on average), none of
# which freed the trees, which refcounting frees when the conversion returns. So the
# collector is paused while one converts (as `timeit` pauses it) and resumed after; the
# converters keep no reference cycles (NOTE [converters without reference cycles]
# in transformer.py), and what something else leaves is collected after it. A thread that
# resumes or pauses the collector itself while another converts sees its setting restored
# only when the conversion ends.


def _compile(fn, numbers=frozenset(), objects=frozenset()):
    collecting = gc.isenabled()
    if collecting:
        gc.disable()  # NOTE [no garbage collection during a conversion]
    try:
        return _compile_code(fn, numbers, objects)
    finally:
        if collecting:
            gc.enable()


def _compile_code(fn, numbers, objects):
    tree, ctx = converted_tree(fn, numbers, objects)
    _callees[fn.__code__] = frozenset(ctx.callees)
    freevars = list(fn.__code__.co_freevars)
    params = [ctx.runtime] + freevars
    # Defined in the factory under its own name, the function would bind that name in the
    # factory's scope, and a recursive call `f(n - 1)` would read that binding instead of the
    # global `f`; a fresh name keeps the user's name free. The code gets the user's name back.
    name = ctx.namer.new(tree.name + "_converted")
    tree.name = name
    factory = templates.replace(
        "def factory(params):\n    converted\n    return name",
        factory="autoconv_factory", params=params, converted=[tree], name=name,
    )[0]
    factory_code = emit.compile_factory(factory, ctx.filename)
    code = next(c for c in factory_code.co_consts
                if hasattr(c, "co_code") and c.co_name == name)
    names = {"co_name": fn.__code__.co_name}
    if hasattr(code, "co_qualname"):  # Python 3.11+
        names["co_qualname"] = fn.__code__.co_qualname
    code = code.replace(**names)
    _register(code)
    _parameter_updates[fn.__code__] = _parameter_updates[code] = ctx.parameter_updates[None]
    _record_nested(code, ctx.parameter_updates)
    runtime_handlers.register(code, ctx.try_blocks)
    return code


def _register(code) -> None:
    _generated_codes.add(code)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _register(const)


def _record_nested(code, records) -> None:
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            record = records.get((const.co_name, const.co_firstlineno))
            if record is not None:
                _parameter_updates[const] = record
            _record_nested(const, records)


def parameter_updates(fn):
    """(the parameters the Python function `fn` updates in place itself, the calls it passes
    one to): recorded when `fn` (or the function defining it) was converted; a function autoconv
    does not convert (a library's, one marked `do_not_convert`) is read from its source the
    same way, once (NOTE [parameters a function updates in place] in
    converters/kept_views.py)."""
    code = fn.__code__
    record = _parameter_updates.get(code)
    if record is None:
        record = _NO_SOURCE
        if not is_generated_code(code):
            try:
                node = parse_function(fn).node
            except (ConversionError, tokenize.TokenError, SyntaxError):
                node = None
            if isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef)):
                record = _parameter_updates_of(node)
        _parameter_updates[code] = record
    return record


def _cell(value):
    return types.CellType(value)


_torch_fixed = False


def install_torch_fixes() -> None:
    """Patch torch where converted code needs it, once, at the first conversion.

    Every conversion calls it, also one made while dynamo traces: `torch.compile(autoconv(fn))`
    converts `fn` at its first call, inside dynamo's trace, where the caller cannot patch
    anything (it is traced, not run); without the fixes that trace lost the attribute stores
    of staged bodies, silently (fuzz seed 25, program 150). Not at import: the fixes import
    dynamo, seconds of `import autoconv`.
    """
    # Converted code may run under dynamo or torch.export, and its graphs' operators under
    # autograd, from here on (NOTE [dynamo loses attribute stores], NOTE [lifted inputs named
    # as an operand], NOTE [builtins replaced while torch.export runs], NOTE [export drops
    # grad-mode regions around operators], NOTE [second-order gradients through operators],
    # NOTE [assertions in bodies whose outputs are unused], NOTE [a defaultdict's factory in an
    # operator's body], NOTE [storages compared under dynamo], NOTE [versions of a probe's
    # copies under dynamo]).
    global _torch_fixed
    if _torch_fixed:
        return
    dynamo_tracer.install_side_effects_fix()
    dynamo_tracer.install_merged_inputs_fix()
    dynamo_tracer.install_constant_fold_fix()
    dynamo_tracer.install_defaultdict_fix()
    dynamo_tracer.install_storage_identity_fix()
    dynamo_tracer.install_fake_version_fix()
    export_passes.install_export_fixes()
    export_state.install_end_check()  # NOTE [values of an export left in globals]
    kept_effects.install_kept_effects_fix()
    operator_autograd.install_operator_autograd_fixes()
    _torch_fixed = True


def convert_function(fn, numbers: frozenset = frozenset(), objects: frozenset = frozenset()):
    """The converted twin of the Python function `fn` (same globals, closure cells, defaults).

    `numbers`: names of `fn`'s parameters that a call gives a Python number's stand-in,
    `objects`: those it gives an object with one in a field (NOTE [numbers given to a
    function] in runtime/calls.py): the twin's arithmetic on them (on their fields) takes part
    as Python's number would. Without them, the twin `autoconv-show` prints.
    """
    if is_generated(fn):
        return fn
    if not _torch_fixed:
        install_torch_fixes()
    original = fn.__code__
    with _lock:
        if numbers or objects:
            codes = _number_codes.get(original)
            if codes is None:
                codes = {}
                _number_codes[original] = codes
            code = codes.get((numbers, objects))
            if code is None:
                code = codes[numbers, objects] = _compile(fn, numbers, objects)
        else:
            code = _code_cache.get(original)
            if code is None:
                code = _compile(fn)
                _code_cache[original] = code
    cells = dict(zip(original.co_freevars, fn.__closure__ or ()))
    closure = []
    for name in code.co_freevars:
        if name in cells:
            closure.append(cells[name])
        elif name == "__class__":
            raise ConversionError("not_function", original.co_filename, original.co_firstlineno,
                                  what="a method calling super() outside its class")
        else:
            closure.append(_cell(autoconv_runtime))
    converted = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__,
                                   tuple(closure))
    converted.__kwdefaults__ = fn.__kwdefaults__
    converted.__qualname__ = fn.__qualname__
    converted.__doc__ = fn.__doc__
    converted.__module__ = fn.__module__
    converted.__wrapped__ = fn
    _preconvert_callees(fn)
    return converted


def _resolve(fn, name):
    if name in fn.__code__.co_freevars:
        cell = fn.__closure__[fn.__code__.co_freevars.index(name)]
        try:
            return cell.cell_contents
        except ValueError:  # not bound yet
            return None
    return fn.__globals__.get(name)


def _preconvert_callees(fn) -> None:
    """Convert now the functions `fn` calls by name, through the runtime's cache.

    Converted code may first reach them inside a body that dynamo traces (torch.cond and
    while_loop trace their bodies with dynamo), where converting is impossible.
    """
    for name in _callees.get(fn.__code__, ()):
        callee = _resolve(fn, name)
        if isinstance(callee, functools.partial):
            callee = callee.func
        if (isinstance(callee, types.FunctionType) and not is_generated(callee)) \
                or type(callee) is torch.jit.ScriptFunction:
            autoconv_runtime.calls.preconvert(callee)
        elif isinstance(callee, type):
            autoconv_runtime.calls.preconvert_class(callee)
        elif isinstance(getattr(type(callee), "__call__", None), types.FunctionType):
            autoconv_runtime.calls.preconvert_class(type(callee))  # a callable object

