"""`converted_call`: calls from converted code, converting user functions on the way.

The runtime never imports the compiler; the compiler installs itself with `set_converter`.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import sys
import types
import weakref

import torch

from . import iteration, operators
from .staging.tracers.symbolic import is_fx_leaf, is_fx_wrapper

__all__ = [
    "converted_call",
    "set_converter",
    "do_not_convert",
    "is_marked_do_not_convert",
    "preconvert",
    "preconvert_class",
    "preconvert_module",
    "super_method",
]

_converter = None
# fn -> converted fn; weak so that converting many short-lived functions frees them again.
# The converted twin is kept on the function itself under this name: it lives exactly as long as
# the function, and dynamo can read a function attribute (it cannot always look a method's
# function up in a weak dictionary).
_TWIN = "__autoconv_converted__"
_do_not_convert: "weakref.WeakSet" = weakref.WeakSet()

# Builtins whose Python behaviour would read a traced tensor's value. The converter rewrites
# direct calls of them; these catch calls through another name. Compared with `is`, not looked up
# by id, so that dynamo does not guard on the identity of every bound method called.
_STAGED_BUILTINS = (
    (builtins.range, iteration.range_),
    (builtins.enumerate, iteration.enumerate_),
    (builtins.zip, iteration.zip_),
    (builtins.print, operators.print_),
)

# Code from these packages runs as it is: converting it would only slow it down.
_NEVER_CONVERTED = frozenset(sys.stdlib_module_names) | {
    "torch",
    "numpy",
    "autoconv",
    "autoconv_runtime",
    "gast",
    "astor",
    "pytest",
    "_pytest",
    "hypothesis",
}


def set_converter(convert) -> None:
    """Install the function that turns a Python function into its converted twin."""
    global _converter
    _converter = convert


def do_not_convert(fn):
    """Mark `fn` to be called as it is from converted code, never converted."""
    target = getattr(fn, "__func__", fn)
    _do_not_convert.add(target)
    return fn


def is_marked_do_not_convert(fn) -> bool:
    """True if `do_not_convert` was applied to `fn`."""
    try:
        return fn in _do_not_convert
    except TypeError:
        return False


# Generators and coroutines are called as they are: a graph has no `yield` or `await`.
_NOT_CONVERTED_CODE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _convertible(fn) -> bool:
    if not isinstance(fn, types.FunctionType) or fn in _do_not_convert:
        return False
    if fn.__code__.co_flags & _NOT_CONVERTED_CODE:
        return False
    if is_fx_wrapper(fn):
        return False
    module = (fn.__module__ or "").partition(".")[0]
    return module not in _NEVER_CONVERTED


_in_progress: set = set()


def _cached(fn):
    return fn.__dict__.get(_TWIN)


def _converted_function(fn):
    converted = fn.__dict__.get(_TWIN)
    if converted is not None:
        return converted
    if fn in _in_progress:  # recursion: the converted twin is not ready yet
        return fn
    _in_progress.add(fn)
    try:
        converted = _converter(fn) if _converter is not None and _convertible(fn) else fn
    except SyntaxError as error:  # a ConversionError (the runtime does not import the compiler)
        if getattr(error, "kind", None) != "no_source":
            raise
        # No source to convert (made by exec or in a REPL): called as it is, as documented.
        # Explicit conversion (convert, to_code, autoconv) raises instead.
        converted = fn
    finally:
        _in_progress.discard(fn)
    setattr(fn, _TWIN, converted)
    return converted


def preconvert(fn) -> None:
    """Convert `fn` now (if it is a user function) so later calls find it in the cache."""
    _converted_function(fn)


def preconvert_class(klass: type) -> None:
    """Convert the user methods (static and class methods too) of `klass` and its bases."""
    for base in klass.__mro__:
        if (base.__module__ or "").partition(".")[0] in _NEVER_CONVERTED:
            continue
        for value in vars(base).values():
            value = getattr(value, "__func__", value)
            if isinstance(value, types.FunctionType):
                _converted_function(value)


def preconvert_module(module: torch.nn.Module) -> None:
    """Convert the forward and the other user methods of every module in `module`."""
    for sub in module.modules():
        preconvert_class(type(sub))


def converted_call(fn, /, *args, **kwargs):
    """`fn(*args, **kwargs)`, with user functions converted first (once, then cached).

    torch, numpy, the standard library and autoconv itself are called as they are; `range`,
    `enumerate`, `zip` and `print` become versions that stage over traced tensors; an
    `nn.Module` without hooks runs its converted `forward`; a `functools.partial` of a user
    function and an instance of a user class with `__call__` run converted too. Builtins, C
    functions and functions without source (exec, REPL) are called as they are.
    """
    # The converter sends no methods of local values here: dynamo cannot even take the type
    # of a bound tensor or list method.
    cls = type(fn)
    if cls is types.FunctionType:
        return _converted_function(fn)(*args, **kwargs)
    if cls is types.MethodType and type(fn.__func__) is types.FunctionType:
        return _converted_function(_method_function(fn))(fn.__self__, *args, **kwargs)
    if isinstance(fn, torch.nn.Module) and not _has_hooks(fn) and not is_fx_leaf(fn, args):
        forward = cls.forward
        converted = _cached(forward)
        if converted is None and _convertible(forward):
            preconvert_module(fn)
            converted = _converted_function(forward)
        if converted is not None:
            return converted(fn, *args, **kwargs)
    if cls is functools.partial and type(fn.func) is types.FunctionType:
        return _value_twin(fn.func)(*fn.args, *args, **{**fn.keywords, **kwargs})
    call = getattr(cls, "__call__", None)
    if type(call) is types.FunctionType and _convertible(call):
        # An instance of a user class with a `__call__`: its method is converted like any other.
        return _value_twin(call)(fn, *args, **kwargs)
    return _call_builtin(fn, args, kwargs)


def _method_function(method):
    """The function of a bound method, looked up through the class where it is found there.

    Dynamo knows where a value came from only along the attribute path that reached it. A method
    of an object created inside the compiled code (`cls(2.0).apply`) has no such path, so
    neither does its function, its converted twin, nor the twin's closure (the runtime module),
    and dynamo then refuses to instantiate `ac.Undefined`. The class has a path (a global, or a
    classmethod's `cls`), and so does a function read from it.
    """
    func = method.__func__
    if torch.compiler.is_compiling():
        owner = method.__self__
        klass = owner if isinstance(owner, type) else type(owner)
        found = getattr(klass, func.__name__, None)
        found = getattr(found, "__func__", found)  # a classmethod read from its class is bound
        if found is func:
            return found
    return func


def _value_twin(fn):
    # A function reached through a value (a partial, an object's __call__) cannot be converted
    # ahead of time by name. Inside a body dynamo traces, converting is impossible: it then runs
    # converted if it was converted before, as it is otherwise (dynamo traces it as Python).
    if torch.compiler.is_compiling():
        return _cached(fn) or fn
    return _converted_function(fn)


def _call_builtin(fn, args, kwargs):
    for builtin, staged in _STAGED_BUILTINS:
        if fn is builtin:
            return staged(*args, **kwargs)
    return fn(*args, **kwargs)


def super_method(klass, obj, name: str):
    """`super(klass, obj).name`, converted when it is a user function.

    Converted code calls `ac.super_method(__class__, self, 'f')(x)` for `super().f(x)`.
    """
    mro = type(obj).__mro__
    for base in mro[mro.index(klass) + 1:]:
        attr = base.__dict__.get(name)
        if attr is not None:
            if type(attr) is types.FunctionType and _convertible(attr):
                return functools.partial(_converted_function(attr), obj)
            break
    return getattr(super(klass, obj), name)


def _has_hooks(module: torch.nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or torch.nn.modules.module._global_forward_hooks
        or torch.nn.modules.module._global_forward_pre_hooks
    )
