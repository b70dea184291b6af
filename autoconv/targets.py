"""The converted twin of a callable: which Python function autoconv converts for a function,
method, partial, module or callable object, and the twin bound as the callable was.

Below `function.py` and `api.py`, which both use it: a `Function` is known here as a `Wraps`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types

import torch

from autoconv_runtime import calls
from autoconv_runtime.calls import is_marked_do_not_convert, preconvert_module
from autoconv_runtime.errors import StagingError
from autoconv_runtime.staging import export_state

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
    module gives a call of the module with its converted `forward` (its forward hooks and
    pre-hooks run around it, as in `module(x)`; under torch.compile a backward hook raises a
    ConversionError), and an object with a `__call__` its converted `__call__` bound to the
    object.
    """
    return _convert(fn, module_hooks=True)


def converted_forward(module):
    """`module`'s converted forward alone, without its hooks (what an autoconv Function traces:
    it runs the hooks itself, around the graph)."""
    return _convert(module, module_hooks=False)


def _convert(fn, *, module_hooks: bool):
    if is_marked_do_not_convert(fn):
        return fn
    if not torch.compiler.is_dynamo_compiling():
        conversion.install_torch_fixes()
    if isinstance(fn, Wraps):
        return _convert(fn.python_function, module_hooks=module_hooks)
    if isinstance(fn, torch.nn.Module) and own_forward(fn) is not None:
        # (the forward the instance holds: NOTE [a module's own forward] in captures.py)
        preconvert_module(fn)
        forward = _buffers_rebound_in_place(fn, _convert(own_forward(fn), module_hooks=False))
        return _called_with_hooks(fn, forward) if module_hooks else forward
    target = target_of(fn)
    converted = twin_of(target)
    if isinstance(fn, torch.nn.Module):
        preconvert_module(fn)
        if converted is target:  # torch's forward (nn.Sequential): it reaches converted modules
            forward = _library_forward(fn)
        else:
            forward = _bound(converted, fn)
        forward = _buffers_rebound_in_place(fn, forward)
        return _called_with_hooks(fn, forward) if module_hooks else forward
    if isinstance(fn, types.MethodType):
        return _bound(converted, fn.__self__)
    if isinstance(fn, functools.partial):
        return functools.partial(convert(fn.func), *fn.args, **fn.keywords)
    if target is not fn and target is getattr(type(fn), "__call__", None):  # a callable object
        return _bound(converted, fn)
    return converted




def own_forward(module):
    """The forward `module` holds as an instance attribute (`module.forward = f`), else None
    (NOTE [a module's own forward] in captures.py)."""
    own = module.__dict__.get("forward")
    return None if own is None or calls.is_forward_set(own, module) else own


def _bound(function, obj):
    """`function` bound to `obj`: a method, or under dynamo (which cannot make one) a partial."""
    if torch.compiler.is_dynamo_compiling():
        return functools.partial(function, obj)
    return types.MethodType(function, obj)


forward_replaced = calls.forward_set  # (`module.forward` is `forward` within)


def has_hooks(module) -> bool:
    """Whether calling `module` runs more than its forward (what nn.Module.__call__ checks)."""
    hooks = torch.nn.modules.module
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or hooks._global_forward_hooks
                or hooks._global_forward_pre_hooks or hooks._global_backward_hooks
                or hooks._global_backward_pre_hooks)


def _called_with_hooks(module, forward):
    """A call of `module` with `forward` (its converted forward) as the forward: the module's
    hooks run around it, as in `module(...)`; without hooks, `forward` itself."""
    @functools.wraps(forward)
    def call(*args, **kwargs):
        if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
            # NOTE [values of an export stored on an object]: `convert(module)` exported
            return export_state.checked_call(module, _call_with_hooks,
                                             (module, forward, args, kwargs), {},
                                             def_of(module))
        try:
            return _call_with_hooks(module, forward, args, kwargs)
        except torch.fx.proxy.TraceError as error:
            raise_if_symbolic_trace_root(module, "autoconv.convert(module)", args, kwargs, error)
            raise

    call.__self__ = module  # what the bound method had: code reading it finds the module
    return call


# NOTE [a converted module as torch.fx.symbolic_trace's root]
# `torch.fx.symbolic_trace(autoconv.convert(module))` or `(autoconv.autoconv(module))` hands
# the converted call fx Proxies for its `*args, **kwargs` (it takes any arguments), and fx
# raised its "Proxy object cannot be iterated ... See the torch.fx docs" at autoconv's own
# line: fx reads a root's parameters from its code, which a call of any arguments does not
# have. Said in the user's terms instead (raised from fx's TraceError, so only where fx
# failed: nothing on the path of a call): what traces that module with its control flow as
# `cond` / `while_loop` nodes. (A class whose forward is an autoconv Function, `@autoconv` on
# `def forward`, fails in fx's own check, "Expected FunctionType", before any autoconv code
# runs: README Limitations.)
def raise_if_symbolic_trace_root(module, what, args, kwargs, error) -> None:
    """Raise a ConversionError saying what to trace instead where `error` is fx's, met by
    `what` (a converted call of `module`) called with fx Proxies by torch.fx.symbolic_trace."""
    proxy = torch.fx.Proxy
    # (fx's patched root code binds the Proxies of `*args` / `**kwargs` as the names
    # themselves: no tuple, no dict)
    if not (isinstance(args, proxy) or isinstance(kwargs, proxy) or any(
            isinstance(a, proxy) for a in (*args, *kwargs.values()))):
        return
    name = type(module).__name__
    raise ConversionError(
        "unsupported", *(def_of(module) or (None, None)),
        construct=f"torch.fx.symbolic_trace of {what} ({name})",
        fix=f"put `@autoconv.convert` on {name}.forward (or `forward = autoconv.convert(f)` "
            f"in a module that calls f) and symbolic_trace {name} itself: its tensor `if` / "
            "`while` become cond / while_loop nodes. Or use torch.export.export(module with "
            "that forward, args), or autoconv.autoconv(module).get_concrete_function(*args)"
            ".graph_module for autoconv's own fx graph") from error


def _call_with_hooks(module, forward, args, kwargs):
    if not has_hooks(module):
        return forward(*args, **kwargs)
    if torch.compiler.is_dynamo_compiling():  # dynamo cannot undo the instance patch
        return _forward_hooks_around(module, forward, args, kwargs)
    with forward_replaced(module, forward):  # nn.Module.__call__ runs the hooks around it
        return module(*args, **kwargs)


def def_of(fn):
    """(file, line) of the `def` of the user's function `fn` (a module: its forward), or
    None: where a refusal of the exported call itself is shown, which no user's line makes."""
    if isinstance(fn, torch.nn.Module):
        fn = own_forward(fn) or type(fn).forward
    code = getattr(inspect.unwrap(getattr(fn, "__func__", fn)), "__code__", None)
    return None if code is None else (code.co_filename, code.co_firstlineno)


def _forward_hooks_around(module, forward, args, kwargs):
    """`forward(*args, **kwargs)` with the module's forward pre-hooks and forward hooks around
    it, in nn.Module.__call__'s order and with its rules for what a hook returns; for dynamo,
    which traces this as it traces nn.Module.__call__. Backward hooks need autograd's hook
    machinery of a real module call: refused."""
    hooks = torch.nn.modules.module
    if (module._backward_hooks or module._backward_pre_hooks or hooks._global_backward_hooks
            or hooks._global_backward_pre_hooks):
        raise ConversionError(
            "unsupported", None, None,
            construct=f"a backward hook on {type(module).__name__} under torch.compile of "
                 "autoconv.convert(module)",
            fix="compile the module itself around converted code (torch.compile(module) with "
                "autoconv.convert on its forward's helpers), or register the hook elsewhere")
    for key, hook in (*hooks._global_forward_pre_hooks.items(),
                      *module._forward_pre_hooks.items()):
        if key in module._forward_pre_hooks_with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    output = forward(*args, **kwargs)
    for key, hook in (*hooks._global_forward_hooks.items(), *module._forward_hooks.items()):
        if key in hooks._global_forward_hooks_with_kwargs or \
                key in module._forward_hooks_with_kwargs:
            result = hook(module, args, kwargs, output)
        else:
            result = hook(module, args, output)
        if result is not None:
            output = result
    return output


def _buffers_rebound_in_place(module, forward):
    """`forward`, where under torch.export a buffer it rebinds (`self.peak = ...`) is copied
    into the buffer in place instead (NOTE [rebound buffers] in capture.py): non-strict export
    records an in-place write of any buffer as a buffer mutation, but a rebinding only of the
    root module's, so a converted submodule's was dropped (every call read the first value).
    Raises StagingError for a buffer rebound to another shape, dtype or device."""
    def call(*args, **kwargs):
        if not torch.compiler.is_exporting() or torch.compiler.is_dynamo_compiling():
            return forward(*args, **kwargs)
        tables = [m._buffers for m in module.modules()]
        before = [dict(table) for table in tables]
        output = forward(*args, **kwargs)
        for table, old_items in zip(tables, before):
            for key, old in old_items.items():
                new = table.get(key)
                if new is old or not isinstance(old, torch.Tensor):
                    continue
                if not isinstance(new, torch.Tensor) or (new.shape, new.dtype, new.device) != (
                        old.shape, old.dtype, old.device):
                    raise StagingError(
                        "function",
                        f"{type(module).__name__}'s forward rebinds its buffer {key} (shape "
                        f"{tuple(old.shape)}, dtype {old.dtype}) to another shape, dtype or "
                        "device, which torch.export cannot record as a buffer mutation",
                        "Keep the buffer's shape and dtype (preallocate it and write into a "
                        "slice), or return the new value and keep it outside the module")
                table[key] = old
                old.copy_(new.detach())  # a buffer holds no gradient history
        return output

    return call


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
    if torch.compiler.is_dynamo_compiling():
        # `autoconv.convert(fn)` in code torch.compile traces (a module's forward calling it,
        # README's embedding pattern): dynamo cannot trace a conversion (the converter's lock,
        # a new function object each call), so the runtime converts outside dynamo, once, and
        # dynamo reads its cached twin (calls._convert_while_compiling).
        return calls.twin(target)
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
