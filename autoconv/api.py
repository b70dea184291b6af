"""The public entry points: `autoconv`, `convert`, `to_code`, `do_not_convert`."""

from __future__ import annotations

import functools
import inspect
import types

import torch

import autoconv_runtime
from autoconv_runtime import calls
from autoconv_runtime.calls import is_marked_do_not_convert, preconvert_module

from . import conversion, emit
from .errors import ConversionError
from .function import Function
from .modules import ConvertedModule

__all__ = ["autoconv", "convert", "to_code", "do_not_convert"]


def _target(fn):
    """The Python function to convert for `fn` (a function, method, module or callable)."""
    if isinstance(fn, Function):
        return _target(fn.python_function)
    if isinstance(fn, torch.nn.Module):
        return type(fn).forward
    if isinstance(fn, (types.MethodType, staticmethod, classmethod)):
        return fn.__func__
    if isinstance(fn, functools.partial):
        return _target(fn.func)
    if isinstance(fn, types.FunctionType):
        return fn
    if isinstance(getattr(type(fn), "__call__", None), types.FunctionType):
        return type(fn).__call__  # an instance of a user class with __call__
    raise ConversionError("not_function", None, None, what=repr(fn))


def convert(fn):
    """The converted twin of `fn`.

    On Python values it behaves as `fn`. On tensors under a torch tracer (torch.export,
    torch.compile, make_fx, torch.func transforms) its tensor-dependent control flow is staged
    as torch.cond / torch.while_loop. Methods stay bound, partials keep their arguments, a
    module gives its converted `forward` bound to the module, and an object with a `__call__`
    its converted `__call__` bound to the object.
    """
    if is_marked_do_not_convert(fn):
        return fn
    if isinstance(fn, Function):
        return convert(fn.python_function)
    target = _target(fn)
    converted = _converted(target)
    if isinstance(fn, torch.nn.Module):
        preconvert_module(fn)
        if converted is target:  # torch's forward (nn.Sequential): it reaches converted modules
            return _library_forward(fn)
        return types.MethodType(converted, fn)
    if isinstance(fn, types.MethodType):
        return types.MethodType(converted, fn.__self__)
    if isinstance(fn, functools.partial):
        return functools.partial(convert(fn.func), *fn.args, **fn.keywords)
    if target is not fn and target is getattr(type(fn), "__call__", None):  # a callable object
        return types.MethodType(converted, fn)
    return converted


def _library_forward(module):
    """`module.forward` (torch's code, not converted), calling its user submodules converted."""
    def forward(*args, **kwargs):
        with calls.converted_submodules(module):
            return type(module).forward(module, *args, **kwargs)

    return forward


def _converted(target):
    """The converted twin of the Python function `target`.

    torch's, numpy's and the standard library's functions are never converted: they come back as
    they are, except a decorator's wrapper of theirs (`@torch.no_grad()`), which comes back as a
    copy calling the converted function it wraps.
    """
    if not calls.is_library_function(target):
        return conversion.convert_function(target)
    wrapped = _library_wrapped(target)
    if wrapped is not None:
        _converted(wrapped)  # raises here if it cannot be converted
    return calls.twin(target)


def _library_wrapped(fn):
    """The function that a library decorator's wrapper `fn` wraps, or None."""
    wrapped = fn.__dict__.get("__wrapped__")
    return wrapped if isinstance(wrapped, types.FunctionType) else None


def to_code(fn) -> str:
    """The converted source of `fn`, as `autoconv-show` prints it (for a function decorated by a
    library decorator such as `@torch.no_grad()`, the function it decorates)."""
    target = _target(fn)
    while calls.is_library_function(target) and _library_wrapped(target) is not None:
        target = _library_wrapped(target)
    tree, _ = conversion.converted_tree(target)
    return emit.to_source(tree)


def do_not_convert(fn):
    """Mark `fn` to run as it is whenever converted code calls it; returns `fn`."""
    return autoconv_runtime.do_not_convert(fn)


def autoconv(fn=None, *, dynamic: bool = False, backend: str = "python",
             input_signature=None):
    """Make `fn` (a function or `nn.Module`) a `Function`: converted once, traced once per input
    signature into a `ConcreteFunction`, whose graph runs on every later call.

    Use as `@autoconv`, `@autoconv(dynamic=True)` or `autoconv(fn)`. Options:

    * `dynamic`: trace with symbolic sizes, so a new batch size does not retrace.
    * `backend`: how graphs run: "python" (default: fast to build, control flow as Python
      if/while over the graph's ops), "fx" (the GraphModule itself), "inductor"
      (torch.compile of the graph), "cudagraphs" (inductor + CUDA graph replay).
    * `input_signature`: a list of `TensorSpec`, one per positional argument: trace exactly
      once, for these specs (`None` sizes stay free); calls that do not match raise TypeError.
    """
    options = dict(dynamic=dynamic, backend=backend, input_signature=input_signature)
    if fn is None:
        return functools.partial(autoconv, **options)
    if inspect.isclass(fn):
        raise ConversionError("not_function", None, None, what=f"the class {fn.__name__}")
    if isinstance(fn, torch.nn.Module):
        return ConvertedModule(fn, **options)
    return functools.update_wrapper(Function(fn, **options), fn, updated=())
