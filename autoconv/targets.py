"""The converted twin of a callable: which Python function autoconv converts for a function,
method, partial, module or callable object, and the twin bound as the callable was.

Below `function.py` and `api.py`, which both use it: a `Function` is known here as a `Wraps`.
"""

from __future__ import annotations

import functools
import types

import torch

from autoconv_runtime import calls
from autoconv_runtime.calls import is_marked_do_not_convert, preconvert_module

from . import conversion
from .errors import ConversionError

__all__ = ["Wraps", "convert", "twin_of", "library_wrapped", "target_of"]


class Wraps:
    """Base of autoconv's wrappers of a callable (`Function`): converted as the callable they
    wrap, `python_function`."""

    python_function: object


def target_of(fn):
    """The Python function to convert for `fn` (a function, method, module or callable)."""
    if isinstance(fn, Wraps):
        return target_of(fn.python_function)
    if isinstance(fn, torch.nn.Module):
        return type(fn).forward
    if isinstance(fn, (types.MethodType, staticmethod, classmethod)):
        return fn.__func__
    if isinstance(fn, functools.partial):
        return target_of(fn.func)
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
    if isinstance(fn, Wraps):
        return convert(fn.python_function)
    target = target_of(fn)
    converted = twin_of(target)
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


def twin_of(target):
    """The converted twin of the Python function `target`.

    torch's, numpy's and the standard library's functions are never converted: they come back as
    they are, except a decorator's wrapper of theirs (`@torch.no_grad()`), which comes back as a
    copy calling the converted function it wraps.
    """
    if not calls.is_library_function(target):
        return conversion.convert_function(target)
    wrapped = library_wrapped(target)
    if wrapped is not None:
        twin_of(wrapped)  # raises here if it cannot be converted
    return calls.twin(target)


def library_wrapped(fn):
    """The function that a library decorator's wrapper `fn` wraps, or None."""
    wrapped = fn.__dict__.get("__wrapped__")
    return wrapped if isinstance(wrapped, types.FunctionType) else None
