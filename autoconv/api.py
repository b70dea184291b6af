"""The public entry points: `autoconv`, `convert`, `to_code`, `do_not_convert`."""

from __future__ import annotations

import functools
import inspect

import torch

import autoconv_runtime
from autoconv_runtime import calls

from . import conversion, emit
from .errors import ConversionError
from .function import Function
from .modules import ConvertedModule
from .targets import convert, library_wrapped, target_of

__all__ = ["autoconv", "convert", "to_code", "do_not_convert"]


def to_code(fn) -> str:
    """The converted source of `fn`, as `autoconv-show` prints it (for a function decorated by a
    library decorator such as `@torch.no_grad()`, the function it decorates)."""
    target = target_of(fn)
    while calls.is_library_function(target) and library_wrapped(target) is not None:
        target = library_wrapped(target)
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

    * `dynamic`: trace with symbolic sizes (`export` keeps them free; the Function still
      traces once per input shape).
    * `backend`: how graphs run: "python" (default: fast to build, control flow as Python
      if/while over the graph's ops), "fx" (the GraphModule itself), "inductor"
      (torch.compile of the graph), "inductor_cpp" (the same with inductor's C++ wrapper:
      the fastest replay of tensor loops and branches on CPU, a build of tens of seconds),
      "cudagraphs" (inductor + CUDA graph replay).
    * `input_signature`: a list of `TensorSpec`, one per positional argument: trace exactly
      once, for these specs (`None` sizes stay free); calls that do not match raise TypeError.
    """
    options = dict(dynamic=dynamic, backend=backend, input_signature=input_signature)
    if fn is None:
        return functools.partial(autoconv, **options)
    if inspect.isclass(fn):
        raise ConversionError("not_function", None, None, what=f"the class {fn.__name__}")
    if isinstance(fn, torch.nn.Module):
        _refuse_own_call(fn)
        return ConvertedModule(fn, **options)
    return functools.update_wrapper(Function(fn, **options), fn, updated=())


def _refuse_own_call(module: torch.nn.Module) -> None:
    """Raises ConversionError for a module whose class defines its own `__call__`.

    `autoconv(module)` traces `forward` (as torch.compile's OptimizedModule does), so a
    `__call__` of the user's class (`return super().__call__(x) * self.k`) would be skipped
    silently: [2, 3] for Python's [4, 6] (brk56). Converted code calling such a module runs its
    `__call__` (NOTE [a module's own __call__] in autoconv_runtime/calls.py), so a function
    calling it is the way to stage it."""
    call = type(module).__call__
    if call is torch.nn.Module.__call__ or calls.is_library_function(call):
        return
    code = getattr(call, "__code__", None)
    raise ConversionError(
        "unsupported", code.co_filename if code else None, code.co_firstlineno if code else None,
        construct=f"`autoconv(module)` of a {type(module).__name__}, whose class defines its "
        "own `__call__` (autoconv(module) traces `forward` alone)",
        fix="convert a function that calls the module, `autoconv(lambda x: module(x))`, whose "
        "graph runs the `__call__` too, or move the `__call__`'s work into `forward`")
