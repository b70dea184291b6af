"""`converted_call`: calls from converted code, converting user functions on the way.

The runtime never imports the compiler; the compiler installs itself with `set_converter`.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import inspect
import os
import sys
import types
import weakref

import torch
from torch.optim import lbfgs as torch_lbfgs

from . import builtins as staged_builtins
from . import (errors, iteration, lists, logs, made_modules, operators, outside_values,
               random_state, subscripts, threads)
from .augmented import is_stand_in, mixed_in
from .identity import type_in
from .values import is_symbolic
from .staging import ambient, autograd_functions, export_state, grad_mode, validation
from .staging.objects import is_plain_object
from .staging.tracers.symbolic import is_fx_leaf

__all__ = [
    "converted_call",
    "converted_method_call",
    "converted_submodules",
    "has_backward_hooks",
    "set_converter",
    "do_not_convert",
    "forward_set",
    "is_forward_set",
    "is_library_function",
    "is_library_module",
    "is_marked_do_not_convert",
    "preconvert",
    "preconvert_class",
    "preconvert_module",
    "super_method",
    "twin",
]

_converter = None
# The converted twin of a function is kept on the function itself under this name, as the pair
# (the function, its twin): it lives exactly as long as the function, and dynamo can read a
# function attribute (it cannot always look a method's function up in a weak dictionary). The
# function is part of the entry because `functools.wraps` copies the wrapped function's
# `__dict__` onto the wrapper: the entry it copies belongs to another function.
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
    (builtins.len, staged_builtins.len_),
    (builtins.min, staged_builtins.min_),
    (builtins.max, staged_builtins.max_),
    (builtins.sum, staged_builtins.sum_),
    (builtins.any, staged_builtins.any_),
    (builtins.all, staged_builtins.all_),
    (builtins.bool, staged_builtins.bool_),
    (builtins.int, staged_builtins.int_),
    (builtins.float, staged_builtins.float_),
    (builtins.getattr, staged_builtins.getattr_),
    (builtins.hasattr, staged_builtins.hasattr_),
    (builtins.setattr, staged_builtins.setattr_),
    (builtins.delattr, staged_builtins.delattr_),
    (builtins.isinstance, staged_builtins.isinstance_),
    (builtins.type, staged_builtins.type_),
    (torch.equal, staged_builtins.equal_),
    (torch.allclose, staged_builtins.allclose_),
    (torch.is_nonzero, staged_builtins.is_nonzero_),
)

# Code from these packages runs as it is: it has no tensor control flow of the user's, and its
# constructs (`with` blocks, `try` around a loop) are often ones autoconv refuses. A function of
# theirs that wraps a user function (`@torch.no_grad()`) still reaches the user's function
# converted: see `_rewrapped`.
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
    # einops' rearrange / reduce / repeat / einsum / pack decide on shapes and pattern strings
    # only, never on tensor values, and dynamo traces them itself; their converted twins (a
    # recipe cached by functools.lru_cache, a backend dict keyed by tensor types) were code
    # dynamo could not follow: every einops call in converted code failed under torch.compile
    # (tester25 s04)
    "einops",
}

# torch's own pure-Python numerical routines that users' code calls with its tensors and whose
# conditions are on those tensors: converted as user code is (their source is plain Python with
# no constructs autoconv refuses). torch.optim.LBFGS's strong-Wolfe line search is one torchmin's
# BFGS and Newton methods call, and a user's L-BFGS loop written around it would.
# (Function objects: under dynamo, which traces `_convertible`, a lookup by name hashes a
# descriptor it cannot.)
_CONVERTED_LIBRARY_FUNCTIONS = frozenset({
    torch_lbfgs._strong_wolfe,
    torch_lbfgs._cubic_interpolate,
})
for _file in {f.__code__.co_filename for f in _CONVERTED_LIBRARY_FUNCTIONS}:
    errors.add_converted_library_file(_file)

# Values whose methods are called as they are: their classes are builtins or torch's.
_DIRECT_RECEIVERS = (torch.Tensor, list, tuple, dict, set, frozenset, str, bytes, int, float,
                     complex, bool)


def _is_numpy_value(obj) -> bool:
    # A numpy array's or scalar's methods are numpy's, called as they are: through
    # `converted_call` dynamo could not take the type of the bound method (`G.mean()`,
    # `a.astype(...)` stopped torch.compile: break42 s09)
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(obj, (numpy.ndarray, numpy.generic))


def set_converter(convert, is_generated_code=None, parameter_updates=None) -> None:
    """Install the function that turns a Python function into its converted twin, the one
    that tells a code object the converter made, and the one that says which parameters a
    function updates in place (NOTE [parameters a function updates in place] in
    autoconv/converters/kept_views.py)."""
    global _converter, _is_generated_code, _parameter_updates
    _converter = convert
    _is_generated_code = is_generated_code
    _parameter_updates = parameter_updates


_is_generated_code = None
_parameter_updates = None


def parameter_updates(fn) -> tuple:
    """(the parameters the Python function `fn` updates in place itself, ((callee name,
    position or keyword, parameter), ...) for the calls it passes one to), as the converter
    recorded them; nothing without a converter."""
    if _parameter_updates is None:
        return frozenset(), ()
    return _parameter_updates(fn)


def _generated_code(code) -> bool:
    """Whether the converter made `code` (so a function of it is converted already), run by
    dynamo as Python (see `_convert_while_compiling`)."""
    return _is_generated_code is not None and _is_generated_code(code)


_FUNCTORCH = os.path.join("torch", "_functorch", "")


def _torch_code(code) -> bool:
    """Whether `code` is that of a function a torch.func transform returns (`jacfwd(f)`,
    `vmap(f)`), run by dynamo as Python. Only those: torch's grad-mode decorators' wrappers
    (`@torch.no_grad()`) are torch's code too, and are copied to call the converted function
    they wrap (`_rewrapped`); returned as they are, the user's function ran unconverted."""
    return _FUNCTORCH in code.co_filename


# The code objects of @torch.jit.script functions' Python functions whose twins are made
# (NOTE [script functions under dynamo]).
_script_codes: set = set()


def _script_code(code) -> bool:
    """Whether `code` is that of a @torch.jit.script function's Python function whose converted
    twin is made, run by dynamo as Python (see `_convert_while_compiling`)."""
    return code in _script_codes


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


def _module_of(fn) -> str:
    # The package whose code `fn` runs: its globals' module. `fn.__module__` will not do:
    # `functools.wraps` sets a wrapper's to the wrapped function's module.
    return (fn.__globals__.get("__name__") or "").partition(".")[0]


def _convertible(fn) -> bool:
    if not isinstance(fn, types.FunctionType) or fn in _do_not_convert:
        return False
    if fn.__code__.co_flags & _NOT_CONVERTED_CODE:
        return False
    return _module_of(fn) not in _NEVER_CONVERTED or fn in _CONVERTED_LIBRARY_FUNCTIONS


_in_progress: set = set()


def _cached(fn):
    entry = fn.__dict__.get(_TWIN)
    return entry[1] if entry is not None and entry[0] is fn else None


def _converted_function(fn):
    # Under dynamo, a torch function (`relu` imported by name, kornia's alias of
    # `torch.compiler.is_compiling`) is a variable whose `__dict__` dynamo cannot read: ask
    # outside dynamo whether it runs as it is before looking for its twin.
    if torch.compiler.is_dynamo_compiling():
        # A closure made inside the compiled region (`apply(lambda v: A @ v, b)`) is no constant
        # dynamo can hand to `_runs_as_it_is`; its code object is. Made by converted code, it
        # is converted already.
        # So is one torch's code made there (the function `torch.func.jacfwd(f)` returns,
        # tester 2026-12-02: dynamo's "ClosureConversionError: failed to convert closure cell
        # to Python constant"): torch's code runs as it is.
        if _script_code(fn.__code__):  # NOTE [script functions under dynamo]
            return getattr(fn, _SCRIPT_TWIN)
        if _generated_code(fn.__code__) or _torch_code(fn.__code__):
            return fn
        original = _script_if_tracing_original(fn)
        if original is not None:  # NOTE [script_if_tracing wrappers under dynamo]
            return _converted_function(original)
        if _runs_as_it_is(fn):
            return fn
    entry = fn.__dict__.get(_TWIN)
    if entry is not None and entry[0] is fn:
        return entry[1]
    if torch.compiler.is_compiling():
        _convert_while_compiling(fn)
        # Read again through getattr: dynamo keeps its first view of `fn.__dict__`.
        entry = getattr(fn, _TWIN, None)
        return entry[1] if entry is not None and entry[0] is fn else fn  # else: recursion
    return _convert(fn)


def _script_if_tracing_original(fn):
    """Under dynamo, the function a `torch.jit.script_if_tracing` wrapper wraps where `fn` is one
    (dynamo reads its `__original_fn`, and no other attribute of it), else None."""
    try:
        return fn.__original_fn
    except AttributeError:
        return None


def _runs_as_it_is(fn) -> bool:
    """Whether `fn` is never converted (torch, numpy, the standard library, no source), run by
    dynamo as Python (see `_convert_while_compiling`)."""
    entry = fn.__dict__.get(_TWIN)
    converted = entry[1] if entry is not None and entry[0] is fn else _convert(fn)
    return converted is fn


def _convert_while_compiling(fn):
    """`_convert(fn)`, run by dynamo as Python when it meets it (its result is a constant).

    Dynamo cannot trace a conversion (a lock, setting a function attribute), and a call of a
    `torch._dynamo.disable`d function breaks the graph, which fullgraph=True refuses; dynamo calls
    a function marked `assume_constant_result` itself instead, and traces what it returns.
    Outside dynamo (non-strict torch.export also says it is compiling) it is a plain call.
    """
    _convert(fn)


# What torch._dynamo.assume_constant_result sets, set without importing dynamo (seconds of
# `import autoconv`); tests/test_imports.py checks the attribute is still dynamo's.
_runs_as_it_is._dynamo_marked_constant = True
_generated_code._dynamo_marked_constant = True
_torch_code._dynamo_marked_constant = True
_script_code._dynamo_marked_constant = True
_convert_while_compiling._dynamo_marked_constant = True


def _convert(fn):
    if fn in _in_progress:  # recursion: the converted twin is not ready yet
        return fn
    _in_progress.add(fn)
    try:
        if _converter is None or fn in _do_not_convert:
            converted = fn
        elif _convertible(fn):
            converted = _converter(fn)
        else:
            converted = _rewrapped(fn)
    except SyntaxError as error:  # a ConversionError (the runtime does not import the compiler)
        if getattr(error, "kind", None) != "no_source":
            raise
        # No source to convert (made by exec or in a REPL): called as it is, as documented.
        # Explicit conversion (convert, to_code, autoconv) raises instead.
        converted = fn
    finally:
        _in_progress.discard(fn)
    setattr(fn, _TWIN, (fn, converted))
    return converted


# NOTE [numbers given to a function]
# A Python number a staged statement carries is a 0-d tensor standing in for it, marked as such
# (NOTE [number stand-ins] in augmented.py: a weak value in JAX's terms), and the converter sends
# the arithmetic that may read it through `ac.binary` (NOTE [weak numbers] in arithmetic.py), in
# the function whose statements carry it. Given to another function (`_times(t, g)`,
# torch.optim.lbfgs's `_cubic_interpolate(t_prev, f_prev, gtd_prev, t, ...)`), the stand-in
# met that function's tensors through torch's own operators: `a * g` of a float64 stand-in and
# a 0-d float32 `g` was float64, where Python's float keeps float32. A call now looks at its
# arguments: where some hold a stand-in (itself, or in a tuple, list or dict), the function runs
# a twin converted with those parameters counted as names that may hold a number, so that its
# arithmetic on them goes through `ac.binary` too (and on the names assigned from them, and so
# on to the functions it gives them to). An argument object (a method's `self` too) with a
# stand-in in a field of its own (`s.h` after a statement whose body called `s.grow()`) counts
# its parameter's fields so (`self.h * 2` in `grow`: a tensor of the number on one path
# otherwise). Other calls, and `autoconv-show`, keep the plain twin: a function no number
# reaches reads as the user wrote it. The twin is made once per function and set of such
# parameters (under dynamo, by a function it runs as Python, as `_convert_while_compiling`) and
# kept on the function, as the plain one. (Counting every parameter as a number in every twin
# routed nearly every operator of converted code through the runtime: `if x > 0` read
# `ac.compare(x, '>', 0)`.)

_NUMBER_TWIN = "__autoconv_numbers_"


# NOTE [a property of numbers]
# `m.avg` of a @property (`return self.s / self.n`) on an object whose fields a staged statement
# left as number stand-ins: Python runs the getter on the object's floats, torch ran it on the
# float64 stand-ins without a mark, so `torch.tensor(m.avg)` was float64 where Python gives
# float32 (tester25 s02(b)). The converter reads a field of an object a call may have changed
# as `ac.number_field(m, 'avg')`, which runs a property's getter as a user call: its twin counts
# `self`'s fields as numbers (NOTE [numbers given to a function]), so its arithmetic is the
# numbers' and its result a stand-in. Any other attribute is read as Python reads it.

def number_field(obj, name: str):
    """`obj.name`, a Python property's getter run as a converted call (NOTE [a property of
    numbers])."""
    # (a named tuple's fields are no properties, and dynamo cannot hold the staticmethods its
    # class's `__dict__` has: test_tester24's replaced_named_tuple_in_a_loop)
    if isinstance(obj, (torch.Tensor, torch.nn.Module, type, types.ModuleType, tuple)):
        return getattr(obj, name)
    # (through the classes' `__dict__`s: dynamo gives `getattr(klass, name)` of a property as
    # one whose `fget` it cannot call a function's attributes of)
    found = next((klass.__dict__[name] for klass in type(obj).__mro__
                  if name in klass.__dict__), None)
    if type(found) is property and type(found.fget) is types.FunctionType:
        return converted_call(found.fget, obj)
    return getattr(obj, name)


def _holds_number(value, depth=0) -> bool:
    """Whether `value` is a number's stand-in or a tuple, list or dict holding one."""
    if isinstance(value, torch.Tensor):
        return is_stand_in(value) or mixed_in(value) is not None
    if isinstance(value, lists.StagedList):
        # a list of numbers a staged statement grew: its items, sum and length are stand-ins
        # (`mean(v)` of `sum(v) / len(v)` was a float64 tensor, tester22 s13)
        return value.numbers
    if depth < 2 and type_in(value, (tuple, list)):
        return any(_holds_number(v, depth + 1) for v in value)
    if depth < 2 and type(value) is dict:
        return any(_holds_number(v, depth + 1) for v in value.values())
    return False


def _fields_hold_number(value, depth=0) -> bool:
    """Whether `value` is an object with a number's stand-in in a field of its own (`s.h`
    after a staged statement that changed it), in a container a field holds, or in a field
    of an object a field holds (`s.inner.h`, two levels down at most)."""
    if isinstance(value, (torch.Tensor, type, types.ModuleType, types.FunctionType)):
        return False
    fields = getattr(value, "__dict__", None)
    if type(fields) is not dict:
        return False
    # (or in a tuple, list or dict a field holds: `self.state['step'] += 1` in a method of
    # the hand-written Adam, t16 repro 1)
    if any(_holds_number(v, 1) for v in fields.values()):
        return True
    # (the converter counts any attribute chain under the parameter: `s.inner.h`)
    return depth < 2 and any(_fields_hold_number(v, depth + 1) for v in fields.values())


def _read_fields_hold_number(value, read, depth=0) -> bool:
    """`_fields_hold_number` under dynamo: only the fields named in `read` (the called code's
    `co_names`), and those of a plain object such a field holds (`s.inner.h`)."""
    if not is_plain_object(value):
        return False
    fields = [getattr(value, name) for name in read if hasattr(value, name)]
    return (any(_holds_number(v, 1) for v in fields)
            or depth < 2 and any(_read_fields_hold_number(v, read, depth + 1) for v in fields))


def _number_kind(value, read=()) -> str:
    """'n' for a value holding a number's stand-in, 'o' for an object whose fields hold
    one, '' for any other (NOTE [numbers given to a function]). `read`: the names the called
    function's code reads (its `co_names`).

    Not the `__dict__` under dynamo: it may not read that of every object a call is given (a
    graph break, which fullgraph=True refuses), nor the module of every value's type
    (`float.__module__` is one too). A plain object's own fields that the function reads by
    name are looked at there (`s.scaled(0.5)` reading `self.lr`, a stand-in the if statement
    carries: `self.lr * f` of the plain twin was a float64 tensor on the path that called it,
    the number on the other, refused as a number of two kinds: tester24 try/p3
    method_new), and so are those of a plain object in such a field, two levels down at most
    as `_fields_hold_number` (`s.inner.h` a staged statement changed: the plain twin's
    `s.inner.h * g` was a float64 tensor where Python's float keeps float32)."""
    if _holds_number(value) or type(value) is float or (
            isinstance(value, (torch.SymFloat, torch.SymInt)) and is_symbolic(value)):
        # (a Python float too: a staged statement of the function may carry it, and then
        # it is a stand-in there, float64, its arithmetic torch's: tester27 s01, QuantEcon's
        # bisection given 0.0 and 10.0; and a number read from a traced tensor, `float(err)`
        # given to a helper that takes `math.atan` of it, k-diffusion's step-size limiter:
        # tester43 s01, where math asked the plain twin's symbol for its value)
        return "n"
    if torch.compiler.is_dynamo_compiling():
        return "o" if read and _read_fields_hold_number(value, read) else ""
    if _fields_hold_number(value):
        return "o"
    return ""


def _with_numbers(fn, converted, args, kwargs, bound=()):
    """The twin of the Python function `fn` to call with `args` and `kwargs` after the
    arguments `bound` already (`self`): `converted`, its plain twin, unless some of them hold
    a number's stand-in (NOTE [numbers given to a function])."""
    if converted is fn:
        return fn  # (not converted: torch's, or without source)
    code = getattr(fn, "__code__", None)
    read = code.co_names if code is not None and torch.compiler.is_dynamo_compiling() else ()
    kinds = tuple((str(i), k) for i, k in enumerate(
        _number_kind(v, read) for v in (*bound, *args)) if k)
    kinds += tuple((key, k) for key, k in sorted(
        (key, _number_kind(v, read)) for key, v in kwargs.items()) if k)
    if not kinds:
        return converted
    name = _NUMBER_TWIN + "_".join(at + k for at, k in kinds)
    if torch.compiler.is_compiling():
        _number_twin_while_compiling(fn, name, kinds)
    else:
        _number_twin(fn, name, kinds)
    # (read through getattr, as `_converted_function` reads the plain twin under dynamo)
    entry = getattr(fn, name, None)
    return entry[1] if entry is not None and entry[0] is fn else converted


def _number_twin(fn, name, kinds) -> None:
    """Convert the twin of `fn` whose arguments `kinds` (position or keyword, 'n' or 'o':
    `_number_kind`) hold numbers, kept on `fn` as `name` (once)."""
    entry = fn.__dict__.get(name)
    if entry is not None and entry[0] is fn:
        return
    code = fn.__code__
    positional = code.co_varnames[:code.co_argcount]
    named = code.co_varnames[code.co_posonlyargcount:code.co_argcount + code.co_kwonlyargcount]
    params = {"n": set(), "o": set()}
    # (`*args` and `**kwargs`, a tuple and a dict of what they were given: a number in them
    # makes the parameter one that holds numbers, its items numbers, `hs[0] * g`)
    extra = code.co_argcount + code.co_kwonlyargcount
    varargs = code.co_varnames[extra] if code.co_flags & inspect.CO_VARARGS else None
    varkw = (code.co_varnames[extra + (varargs is not None)]
             if code.co_flags & inspect.CO_VARKEYWORDS else None)
    for at, kind in kinds:
        if at.isdigit() and int(at) < len(positional):
            params[kind].add(positional[int(at)])
        elif at in named:
            params[kind].add(at)
        elif (varargs if at.isdigit() else varkw) is not None:
            # (an object given in them too: the converter reads a field of an item of a
            # parameter holding numbers, `objs[0].h`, as a number's, README's old known shape)
            params["n"].add(varargs if at.isdigit() else varkw)
    # (a library decorator's wrapper, `_rewrapped`, runs the plain twin of what it wraps)
    if (params["n"] or params["o"]) and _convertible(fn):
        twin = _converter(fn, frozenset(params["n"]), frozenset(params["o"]))
    else:
        twin = _converted_function(fn)
    setattr(fn, name, (fn, twin))


def _number_twin_while_compiling(fn, name, kinds) -> None:
    """`_number_twin`, run by dynamo as Python (see `_convert_while_compiling`)."""
    _number_twin(fn, name, kinds)


_number_twin_while_compiling._dynamo_marked_constant = True


def _rewrapped(wrapper):
    """For a decorator's wrapper from code that is never converted (`@torch.no_grad()`,
    `@torch.enable_grad()`): a copy of it that calls the converted function it wraps, so the
    decorator's behaviour (its `with`, its argument handling) is kept and the user's code is
    converted. The wrapped function is found by `functools.wraps`' `__wrapped__`, in one of the
    wrapper's closure cells; a wrapper that holds it elsewhere (or a C one) runs as it is.
    """
    if not isinstance(wrapper, types.FunctionType) or not wrapper.__closure__:
        return wrapper
    wrapped = wrapper.__dict__.get("__wrapped__")
    if not isinstance(wrapped, types.FunctionType):
        return wrapper
    cells = list(wrapper.__closure__)
    for i, cell in enumerate(cells):
        try:
            held = cell.cell_contents
        except ValueError:  # not bound yet
            continue
        if held is wrapped:
            converted = _converted_function(wrapped)
            if converted is wrapped:
                return wrapper
            cells[i] = types.CellType(converted)
            copy = types.FunctionType(wrapper.__code__, wrapper.__globals__, wrapper.__name__,
                                      wrapper.__defaults__, tuple(cells))
            copy.__kwdefaults__ = wrapper.__kwdefaults__
            copy.__dict__.update({k: v for k, v in wrapper.__dict__.items() if k != _TWIN})
            copy.__qualname__ = wrapper.__qualname__
            return copy
    return wrapper


def is_library_function(fn) -> bool:
    """True for a function of torch, numpy, the standard library or autoconv: never converted."""
    return _module_of(fn) in _NEVER_CONVERTED


def is_library_module(name: str) -> bool:
    """True for a module (by its `__name__`) whose functions are never converted."""
    return name.partition(".")[0] in _NEVER_CONVERTED


def twin(fn):
    """The function converted code calls for the Python function `fn` (converted once, cached):
    its converted twin, a copy of a library decorator's wrapper calling the converted function it
    wraps, or `fn` itself."""
    return _converted_function(fn)


def preconvert(fn) -> None:
    """Convert `fn` now (if it is a user function, or a @torch.jit.script one) so later calls
    find it in the cache."""
    if type(fn) is torch.jit.ScriptFunction:
        _script_twin(fn)
    else:
        _converted_function(fn)


def preconvert_class(klass: type) -> None:
    """Convert the user methods (static and class methods too) of `klass` and its bases."""
    for base in klass.__mro__:
        if (base.__module__ or "").partition(".")[0] in _NEVER_CONVERTED:
            continue
        for value in vars(base).values():
            value = getattr(value, "__func__", value)
            if type(value) is torch.jit.ScriptFunction:  # NOTE [script methods of a class]
                _script_twin(value)
            elif isinstance(value, types.FunctionType):
                _converted_function(value)


# NOTE [script methods of a class]
# A `@staticmethod` over `@torch.jit.script` (torch-kmeans' `KMeans._calculate_shift`) is a
# ScriptFunction in the class, which `preconvert_class` passed over (not a Python function):
# under torch.compile of `autoconv.convert(model)`, a staged branch calling `self.shift(x)`
# met it as the Python function dynamo shows for it, with no twin made, and `_runs_as_it_is`
# could not be given it (dynamo's "assume_constant_result argument conversion failed" in an
# UncapturedHigherOrderOpError). Its twin is made with the methods' when the model is
# converted, before the compile (NOTE [script functions under dynamo]).


def preconvert_module(module: torch.nn.Module) -> None:
    """Convert the forward and the other user methods of every module in `module`."""
    for sub in module.modules():
        preconvert_class(type(sub))


@contextlib.contextmanager
def converted_submodules(module: torch.nn.Module):
    """Within it, the user submodules of `module` run their converted `forward`, when `module`'s
    own forward is library code (`nn.Sequential`, `DistributedDataParallel`): that code is not
    converted, so its calls of submodules would not reach converted code otherwise. Each such
    submodule gets its converted forward as an instance attribute, removed on leaving.

    Not under dynamo: it does not replay the removal, and the attributes would stay.
    """
    with contextlib.ExitStack() as patched:
        if not torch.compiler.is_dynamo_compiling() and is_library_function(
                type(module).forward):
            for sub in module.modules():
                forward = type(sub).forward
                if sub is module or "forward" in sub.__dict__ or not _convertible(forward):
                    continue
                converted = _converted_function(forward)
                if converted is not forward:
                    patched.enter_context(forward_set(sub, types.MethodType(converted, sub)))
        yield


_FUNCTION_APPLY = torch.autograd.Function.apply.__func__


# NOTE [a Function's apply held by a name under dynamo]
# `interp1d = Interp1d.apply` (torchinterp1d), then `interp1d(...)` in converted code: dynamo
# (torch 2.13) shows a bound `apply` of a torch.autograd.Function class that it reads from a
# global, a closure, a dict or list item or a class attribute as a GetAttrVariable whose
# `__func__` and `__self__` have no type: `type(fn.__func__)`, isinstance, issubclass, hasattr,
# `==` and `is` between them all stopped torch.compile with dynamo's "GetAttrVariable(
# GetAttrVariable(AutogradFunctionVariable(), apply), __func__) has no type" (tester53). `id` is
# the one question dynamo answers there: the value is read from a source, so its id is the real
# object's (dynamo guards on it). `Function.apply`'s own function (a classmethod's, shared by
# every Function class) is looked up by id in a dict: an id dynamo cannot give (a method of an
# object made in the compiled frame) is a compile-time number that is no key of it, and a dict
# lookup compares no such number with a real id (which dynamo refuses). Such a call is left to
# dynamo, which traces `Fn.apply` with its backward, as `Fn.apply(x)` written out is.
_FUNCTION_APPLY_IDS = {id(_FUNCTION_APPLY): True}


# NOTE [a Function's apply read in the compiled frame]
# `a = Sq.apply` (or `self.act = Sq.apply`, `box.act = Sq.apply`) run inside the compiled frame:
# dynamo (torch 2.13) models the bound `apply` it reads there as a GetAttrVariable of the
# class's AutogradFunctionVariable with no type and no source, so that no question about it
# can be asked: isinstance (a statement's carried inputs in runtime/operators.py, in
# staging/python_state.py and staging/verdicts.py; torch's own `nn.Module.__setattr__`),
# `type`, or its id (there is no real object behind it). Converted code reads `X.apply`, other
# than called at once (CallConverter's `converted_method_call`), through `apply_read_`: under
# dynamo a class's `apply` is given as `functools.partial(_class_apply, X)`, which dynamo
# types (a partial of a plain function, over a class: the runtime's walks of a carried
# callable's parts ask them their types too, staging/objects.py `_reached`) and calls as
# `X.apply(...)` written out, with the Function's backward (err55).
def apply_read_(obj):
    """`obj.apply` read, not called (NOTE [a Function's apply read in the compiled frame])."""
    if torch.compiler.is_dynamo_compiling() and autograd_functions.is_function_class(obj):
        return functools.partial(_class_apply, obj)
    return obj.apply


def _class_apply(cls, *args, **kwargs):
    return cls.apply(*args, **kwargs)


def _function_apply_of(fn):
    """The Function class whose `apply` the callable `fn` is, or None; outside dynamo (under
    it, a partial's held `apply` is dynamo's to trace: NOTE [a Function's apply held by a name
    under dynamo])."""
    if torch.compiler.is_dynamo_compiling() or type(fn) is not types.MethodType:
        return None
    if fn.__func__ is _FUNCTION_APPLY and autograd_functions.is_function_class(fn.__self__):
        return fn.__self__
    return None


def _held_function_apply(fn) -> bool:
    """Under dynamo, whether the bound method `fn` is a Function class's `apply` (NOTE [a
    Function's apply held by a name under dynamo])."""
    return _FUNCTION_APPLY_IDS.get(id(fn.__func__), False)


# NOTE [calls of a functools.lru_cache helper while traced]
# A `functools.lru_cache` (or `functools.cache`) helper called as it is while a graph is traced
# ran its function once on the trace's values and kept what it gave in the user's cache:
# keyed by a global weight, the trace's tensor, which the user's own call after the trace got
# back and failed on (break47b s07); a SymInt read from a traced tensor is no key at all
# ("unhashable type: non-nested SymInt", s04); and the cached function ran unconverted, its
# `while` on a tensor torch's bare data-dependent error (s03). While a tracer that builds a
# graph runs (autoconv's, torch.export, make_fx, torch.fx), converted code calls the cached
# function itself, converted, past the cache: the cache is neither read nor written, as
# dynamo does under torch.compile (it traces the wrapped function), where the wrapper is
# given back as it is (NOTE [functions cached by functools.lru_cache] in
# autoconv/converters/calls.py). A cache hit gave Python the object the first call made; the
# trace gets an equal one made again (a helper whose result the caller mutates, counting on
# the cache to keep the change, is not seen to). Outside tracers (a Python run of converted
# code) the cache is used as Python uses it.
def cached_(fn, /):
    """`fn`, a functools.lru_cache helper the converter resolved (or a method of one): the
    callable converted code calls for it (NOTE [calls of a functools.lru_cache helper while
    traced])."""
    if torch.compiler.is_dynamo_compiling():
        # (dynamo reads a wrapper's `__wrapped__` itself; `type(fn)` it would guard on the
        # wrong type: NOTE [functions cached by functools.lru_cache])
        wrapped = fn.__wrapped__
        return lambda *args, **kwargs: converted_call(wrapped, *args, **kwargs)
    if not outside_values.graph_tracing():
        return fn
    return _past_the_cache(fn) or fn


# NOTE [cached methods under dynamo]
# Dynamo shows `obj.factor` of a method cached by functools.lru_cache as a
# WrapperUserMethodVariable (torch 2.13): `type(fn)` reads as a bound method, but it has no
# `__func__` or `__self__` to read (only `__wrapped__`, the unbound function), so
# `converted_call` failed on `fn.__func__` with dynamo's bare "raised exception
# AttributeError()", inside torch.cond's branch an UncapturedHigherOrderOpError, no line of the
# user's (tester47 s03). Such a method (the one whose `__func__` raises an AttributeError there,
# which dynamo lets converted code catch) is called as it is there: dynamo traces the cached
# method itself, past its cache, as plain torch.compile does (a cached function the converter
# resolves is called converted instead: NOTE [functions cached by functools.lru_cache] in
# autoconv/converters/calls.py; the method's own receiver is out of reach here). A tensor
# condition inside such a method is dynamo's own graph break, as in plain torch.compile.
def _cache_wrapper_method(fn) -> bool:
    """Under dynamo, whether the bound method `fn` is one of a functools.lru_cache wrapper (NOTE
    [cached methods under dynamo]). (`hasattr` will not do: dynamo answers it False for any
    bound method.)"""
    try:
        fn.__func__
    except AttributeError:
        return True
    return False


def script_if_tracing_(fn, /):
    """`fn`, a `torch.jit.script_if_tracing` wrapper the converter resolved: the callable
    converted code calls for it (NOTE [script_if_tracing wrappers under dynamo] in
    autoconv/converters/calls.py). Outside dynamo `converted_call` takes the wrapper (its
    `__wrapped__` converted, the wrapper's own test of torch.jit's tracing kept)."""
    if torch.compiler.is_dynamo_compiling():
        # (dynamo reads the wrapper's `__original_fn` itself: WrapperUserFunctionVariable)
        original = fn.__original_fn
        return lambda *args, **kwargs: converted_call(original, *args, **kwargs)
    return functools.partial(converted_call, fn)


def _past_the_cache(fn):
    """The cached function of `fn` (a cache wrapper, or a method bound to one), converted and
    bound as `fn` is, or None for any other callable."""
    wrapper, owner = fn, None
    if type(fn) is types.MethodType:
        wrapper, owner = fn.__func__, fn.__self__
    if not isinstance(wrapper, functools._lru_cache_wrapper):
        return None
    wrapped = getattr(wrapper, "__wrapped__", None)
    if not isinstance(wrapped, types.FunctionType):
        return None
    if owner is None:
        return functools.partial(converted_call, wrapped)
    return functools.partial(converted_call, wrapped, owner)


def converted_call(fn, /, *args, **kwargs):
    """`fn(*args, **kwargs)`, with user functions converted first (once, then cached).

    torch, numpy, the standard library and autoconv itself are called as they are; `range`,
    `enumerate`, `zip` and `print` become versions that stage over traced tensors; an
    `nn.Module` runs its converted `forward` (with forward hooks, between them, but under
    dynamo, which runs the call itself); a `functools.partial` of a user
    function and an instance of a user class with `__call__` run converted too. Builtins, C
    functions and functions without source (exec, REPL) are called as they are.
    """
    # The converter sends no methods of local values here (see `converted_method_call`):
    # dynamo cannot even take the type of a bound tensor or list method.
    if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
        # NOTE [values of an export left in globals]
        caller = sys._getframe(1)
        export_state.note_code(caller.f_code, caller.f_globals)
        target = getattr(fn, "__func__", fn)
        if type(target) is types.FunctionType and not is_library_function(target):
            export_state.note_code(target.__code__, target.__globals__)
        # NOTE [values of an export stored on an object]
        if isinstance(fn, type):
            return export_state.made(_converted_call(fn, args, kwargs))
        owner = fn if isinstance(fn, torch.nn.Module) else (
            fn.__self__ if type(fn) is types.MethodType and not isinstance(fn.__self__, type)
            else None)
        if owner is not None:
            return export_state.checked_call(owner, _converted_call, (fn, args, kwargs), {})
    return _converted_call(fn, args, kwargs)


def _converted_call(fn, args, kwargs):
    cls = type(fn)
    if torch.compiler.is_dynamo_compiling():
        threads.refuse_class(fn)  # NOTE [code run on other threads while traced]
    elif cls is types.MethodType and fn.__name__ in threads.METHOD_NAMES:
        threads.refuse_method(fn.__self__, fn.__name__)  # (`POOL.map` of a global pool)
    if cls is not types.FunctionType and not torch.compiler.is_dynamo_compiling() and (
            cls is functools._lru_cache_wrapper or cls is types.MethodType
            and type(fn.__func__) is functools._lru_cache_wrapper) \
            and outside_values.graph_tracing():
        # a cached function held by a local or a closure, `obj.factor(n)` of a cached method:
        # NOTE [calls of a functools.lru_cache helper while traced]
        past = _past_the_cache(fn)
        if past is not None:
            return past(*args, **kwargs)
    if cls is types.MethodType and torch.compiler.is_dynamo_compiling() \
            and _cache_wrapper_method(fn):
        # a method of a functools.lru_cache wrapper (`obj.factor(n)`): NOTE [cached methods
        # under dynamo]
        return fn(*args, **kwargs)
    if cls is types.FunctionType:
        if torch.compiler.is_dynamo_compiling():  # NOTE [loop items updated by a call]
            operators.refuse_item_updated_by_call(fn, args)
        return _with_numbers(fn, _converted_function(fn), args, kwargs)(*args, **kwargs)
    if cls is types.MethodType and fn.__func__ is _FUNCTION_APPLY \
            and autograd_functions.is_function_class(fn.__self__):
        return autograd_functions.apply(fn.__self__, args, kwargs)  # `apply = Fn.apply`
    if cls is types.MethodType and torch.compiler.is_dynamo_compiling() \
            and _held_function_apply(fn):
        return fn(*args, **kwargs)  # NOTE [a Function's apply held by a name under dynamo]
    if cls is types.MethodType and type(fn.__func__) is types.FunctionType:
        if torch.compiler.is_dynamo_compiling():
            operators.refuse_item_updated_by_call(fn.__func__, (fn.__self__, *args))
        function = _method_function(fn)
        converted = _converted_function(function)
        if converted is fn.__func__ and validation.calls_distribution(fn):
            return validation.call_validated(fn, args, kwargs)
        converted = _with_numbers(function, converted, args, kwargs, (fn.__self__,))
        return converted(fn.__self__, *args, **kwargs)
    if torch.compiler.is_dynamo_compiling() and _uninitialized_lazy(fn):
        return fn(*args, **kwargs)  # NOTE [a lazy module's first call under dynamo]
    if isinstance(fn, torch.nn.Module) and grad_mode.may_require_grad() \
            and torch._C.is_grad_enabled() and has_backward_hooks(fn):
        raise errors.StagingError(
            "call", f"{type(fn).__name__} has backward hooks (register_full_backward_hook): "
            "autoconv traces on detached tensors, so the graph would compute gradients "
            "without them",
            "Call the module outside the autoconv function, or register the hook on the module "
            "autoconv converts (its hooks run around the graph)")
    if isinstance(fn, torch.nn.modules.batchnorm._NormBase) and _updates_statistics(fn) \
            and torch.compiler.is_compiling():
        _refuse_statistics_in_compiled_body(fn)
    if isinstance(fn, torch.nn.Module) and _has_hooks(fn) \
            and not torch.compiler.is_dynamo_compiling() and not is_fx_leaf(fn, args):
        forward = _converted_forward_for_hooks(fn)
        if forward is not None:
            with forward_set(fn, forward):
                return fn(*args, **kwargs)
    if isinstance(fn, torch.nn.Module) and not _has_hooks(fn) and not is_fx_leaf(fn, args) \
            and not _own_call(cls):
        own = fn.__dict__.get("forward")
        if own is not None and not is_forward_set(own, fn):
            # (the forward the instance holds, NOTE [a module's own forward] in
            # autoconv/captures.py: the class's ran, silently, break43 s01)
            return converted_call(own, *args, **kwargs)
        forward = cls.forward
        converted = _cached(forward)
        if converted is None and _convertible(forward):
            preconvert_module(fn)
            converted = _converted_function(forward)
        if converted is not None:
            return _with_numbers(forward, converted, args, kwargs, (fn,))(fn, *args, **kwargs)
    if cls is functools.partial and _function_apply_of(fn.func) is not None:
        # `functools.partial(Fn.apply, ...)`: kept as the Function's call, for its backward
        # (called as it is, the trace recorded the forward's ops and the replay differentiated
        # those: 16 for Python's 1296, apply53)
        return autograd_functions.apply(_function_apply_of(fn.func), (*fn.args, *args),
                                        {**fn.keywords, **kwargs})
    if cls is functools.partial and type(fn.func) is types.FunctionType:
        args, kwargs = (*fn.args, *args), {**fn.keywords, **kwargs}
        return _with_numbers(fn.func, _converted_function(fn.func), args, kwargs)(
            *args, **kwargs)
    if cls is torch.jit.ScriptFunction:
        twin = _script_twin(fn)
        if twin is not None:
            return twin(*args, **kwargs)
    if isinstance(fn, type):
        if torch.compiler.is_dynamo_compiling() and _unmade_under_dynamo(fn):
            _refuse_made_under_dynamo(fn)  # NOTE [objects dynamo cannot make]
        if torch.compiler.is_dynamo_compiling():  # NOTE [modules made under torch.compile]
            made_modules.refuse_made_in_one_graph(fn, args, kwargs)
        init = _converted_init(fn)
        if init is not None:  # NOTE [constructors of user classes]
            return _constructed(fn, init, args, kwargs)
    call = getattr(cls, "__call__", None)
    if type(call) is types.FunctionType and (_convertible(call) or _convertible(
            call.__dict__.get("__wrapped__"))):
        # An instance of a user class with a `__call__`: its method is converted like any
        # other, one a library decorator wraps (`@torch.no_grad()`) through the wrapper's copy
        # that calls the converted method (`_rewrapped`; tester31 s05).
        converted = _with_numbers(call, _converted_function(call), args, kwargs, (fn,))
        forward = None
        if isinstance(fn, torch.nn.Module) and not torch.compiler.is_dynamo_compiling():
            forward = _converted_forward_for_hooks(fn)  # NOTE [a module's own __call__]
        if forward is None:
            return converted(fn, *args, **kwargs)
        with forward_set(fn, forward):
            return converted(fn, *args, **kwargs)
    return _call_builtin(fn, args, kwargs)


# NOTE [a module's own __call__]
# A module class of the user's that defines `__call__` (`return super().__call__(x) * self.k`)
# was called as its `forward` alone, the `__call__` skipped, in every mode (brk56: [2, 3] for
# Python's [4, 6]). Its `__call__` now runs converted, as any user class's, with the converted
# forward set on the module for `super().__call__` to reach (as between hooks); under dynamo
# the forward is not set (dynamo runs nn.Module's call itself: a tensor `if` in the forward is
# then dynamo's graph break, loud).


def _own_call(cls) -> bool:
    """Whether the module class `cls` has a `__call__` of the user's (not nn.Module's)."""
    call = getattr(cls, "__call__", None)
    return call is not torch.nn.Module.__call__ and type(call) is types.FunctionType and (
        _convertible(call) or _convertible(call.__dict__.get("__wrapped__")))


# NOTE [constructors of user classes]
# `Cls(...)` in converted code, of a user class, ran Python's `type.__call__`: the class's
# `__init__` unconverted, so a tensor condition there (torchsde's `BrownianInterval.__init__`:
# `if t0 > t1: raise ValueError(...)` of the traced times, tester44 s06; torchdyn's line
# searches, xitorch's `MatrixLinearOperator`) reached torch's data-dependent guard, refused as
# "the constructor ..." (autoconv/tracebacks.py). Every call reached under a tracer is
# converted, so converted code now makes such an object as `type.__call__` does, in two steps:
# `Cls.__new__(Cls, ...)` (`object.__new__(Cls)`, or the user's own `__new__`, converted),
# then the converted `__init__` on the object where it is one of the class's, which stages its
# `if`, `while` and `raise` (a graph assertion) as any converted method's, its attributes set
# under a staged `if` by the rules of `self`'s fields, and its `super().__init__(...)` as
# `super_method` (torch.nn.Module's own `__init__` runs as it is). Only where those two steps
# are all Python would do: the class's `__new__` is `object.__new__` or a user function (not a
# tensor's, a tuple's or an exception's), its metaclass's `__call__` is `type.__call__` (an
# Enum's, or a user metaclass's, is not), and its `__init__` a user function with source (not
# torch's, nor one `do_not_convert` marks; a dataclass's generated `__init__` has none). Any
# other class, and a torch.distributions one (its checks are staged by `validation`), is called
# as it is, and a tensor condition in its constructor is refused as before. Converted code
# runs only under a tracer (its functions' eager fast path calls the class as Python does), so
# plain calls pay nothing for this; while tracing, a constructor call costs what a converted
# method call does.
# NOTE [objects dynamo cannot make]
# An optimizer made in the code torch.compile traces (`MySGD([w], lr=0.1)`, a user's subclass of
# torch.optim.Optimizer) stopped dynamo with its own bare error naming torch's frames:
# Optimizer's `__init__` calls `add_param_group`, which dynamo marks as never traced ("Attempted
# to inline function marked as skipped"). It is made as Python does in autoconv's trace and
# torch.export; under torch.compile it is refused at the user's call, with the fix (obj50).
# (A torch.nn module with parameters made there, `nn.Linear(2, 2)` per call, is refused too
# where dynamo must give one graph: NOTE [modules made under torch.compile] in made_modules.py.)
def _unmade_under_dynamo(klass) -> bool:
    """Whether dynamo cannot make an object of `klass` (NOTE [objects dynamo cannot make]).
    Called for real by dynamo (a class in, a bool out)."""
    return issubclass(klass, torch.optim.Optimizer)


_unmade_under_dynamo._dynamo_marked_constant = True


def _refuse_made_under_dynamo(klass):
    raise errors.StagingError(
        "call", f"`{klass.__qualname__}(...)` makes an optimizer under torch.compile, and "
        "dynamo does not trace torch.optim.Optimizer's constructor (its `add_param_group`)",
        "Make the optimizer once, outside the compiled function, and pass it in (its `step` "
        "and `zero_grad` are traced), or call the autoconv Function, which makes it as Python "
        "does")


def _converted_init(klass):
    """The converted `__init__` that `klass(...)` runs in two steps (NOTE [constructors of user
    classes]), or None where the class is called as it is."""
    init = klass.__init__
    if type(init) is not types.FunctionType:  # (object's, a C type's)
        return None
    # (first the twin, kept on the function: a class whose `__init__` has nothing to convert,
    # or no source, is its own twin, and is called as it is at the cost of this lookup)
    converted = _converted_function(init)
    if converted is init and _convertible(init):
        converted = _dataclass_init(klass, init)  # NOTE [a dataclass's __post_init__]
    if converted is init or not _convertible(init) or not _plain_new(klass.__new__) \
            or type(klass).__call__ is not type.__call__ or validation.calls_distribution(klass):
        return None
    return converted


# NOTE [a dataclass's __post_init__]
# A dataclass's generated `__init__` has no source, so it is called as it is, and with it the
# `__post_init__` it calls (`self.__post_init__(...)`, after setting the fields): a tensor
# condition there (`if self.lo > self.hi:` swapping the bounds) was refused as an operator
# method's. The user's `__post_init__` has source: the generated `__init__` runs as it is, on
# the object `Cls.__new__` made, with the instance's own `__post_init__` set for that call
# to the converted one (an attribute of the object is found before a function of its class:
# what the generated code calls), and removed after. A class without a `__dict__` for its
# objects (`slots=True`) keeps the plain call.
_POST_INIT_CONVERTED = "with_converted_post_init"


def _dataclass_init(klass, init):
    """The `__init__` that runs a dataclass's generated `init` with its `__post_init__`
    converted, or `init` where there is none to convert."""
    post_init = getattr(klass, "__post_init__", None)
    # (a staticmethod's reads as a function of the class too, but is called without `self`)
    if (not dataclasses.is_dataclass(klass) or type(post_init) is not types.FunctionType
            or type(inspect.getattr_static(klass, "__post_init__")) is not types.FunctionType
            or not _convertible(post_init) or "__dict__" not in dir(klass)
            or _converted_function(post_init) is post_init):
        return init

    def with_converted_post_init(self, *args, **kwargs):  # (_POST_INIT_CONVERTED)
        object.__setattr__(self, "__post_init__",
                           functools.partial(converted_call, post_init, self))
        try:
            return init(self, *args, **kwargs)
        finally:
            # (not `object.__delattr__`: dynamo cannot trace it on a frozen dataclass)
            vars(self).pop("__post_init__", None)
    return with_converted_post_init


def _plain_new(new) -> bool:
    """Whether a class's `__new__` is object's or a user function (xitorch's LinearOperator
    checks its subclass's methods there), which `_constructed` calls as `type.__call__` does."""
    return new is object.__new__ or type(new) is types.FunctionType and _convertible(new)


def _constructed(klass, init, args, kwargs):
    """`klass(*args, **kwargs)`, its `__init__` the converted `init` (NOTE [constructors of
    user classes])."""
    new = klass.__new__
    if new is object.__new__:
        obj = object.__new__(klass)
    else:  # (type.__call__'s rule: an object of another class is given back as it is)
        obj = converted_call(new, klass, *args, **kwargs)
        if not isinstance(obj, klass):
            return obj
        if type(obj) is not klass:  # (a subclass's object: its own `__init__`)
            converted_call(type(obj).__init__, obj, *args, **kwargs)
            return obj
    if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
        # (before `__init__`, whose calls of its own methods are on an object the function
        # made: NOTE [values of an export stored on an object])
        export_state.made(obj)
    if init.__name__ == _POST_INIT_CONVERTED:  # (the generated `__init__` as it is)
        returned = init(obj, *args, **kwargs)
    else:
        returned = _with_numbers(klass.__init__, init, args, kwargs, (obj,))(
            obj, *args, **kwargs)
    if returned is not None:
        raise TypeError(f"__init__() should return None, not '{type(returned).__name__}'")
    return obj


def _converted_forward_for_hooks(module):
    """The converted forward for `module`'s own call to run between its forward hooks (its own
    forward's, NOTE [a module's own forward] in autoconv/captures.py, or its class's), or None
    where nothing is converted: `module(x)` ran its class's forward unconverted, and a tensor
    condition there was refused as a library routine's (break43 s06)."""
    own = module.__dict__.get("forward")
    if own is not None:
        return None if is_forward_set(own, module) else functools.partial(converted_call, own)
    forward = type(module).forward
    if not _convertible(forward):
        return None
    preconvert_module(module)
    converted = _converted_function(forward)
    return None if converted is forward else types.MethodType(converted, module)


# The forwards autoconv sets on modules for a while (`forward_set`): id(module) -> the forward
# (NOTE [a module's own forward] in autoconv/captures.py: not the user's own)
_SET_FORWARDS: dict = {}


@contextlib.contextmanager
def forward_set(module: torch.nn.Module, forward):
    """`module.forward` is `forward` within (an instance attribute, the one it held put back
    after), known to be autoconv's (`is_forward_set`)."""
    own = module.__dict__.get("forward")
    before = _SET_FORWARDS.get(id(module))
    module.forward = _SET_FORWARDS[id(module)] = forward
    try:
        yield
    finally:
        if before is None:
            del _SET_FORWARDS[id(module)]
        else:
            _SET_FORWARDS[id(module)] = before
        if own is None:
            del module.forward
        else:
            module.forward = own


def is_forward_set(own, module) -> bool:
    """Whether `own`, the forward `module` holds as an instance attribute, is one autoconv set
    (`forward_set`), not the user's."""
    return _SET_FORWARDS.get(id(module)) is own


_SCRIPT_TWIN = "_autoconv_twin"


def _script_twin(fn):
    """The converted twin of a @torch.jit.script function's Python function, or None.

    TorchScript's interpreter evaluates the function's `if` on a traced tensor and fails with
    torch's data-dependent error inside its own (tester t11 repro 14). TorchScript keeps the
    Python function for dynamo to inline (`_torchdynamo_inline`); converted code (which runs
    only under a tracer) calls its twin instead, as dynamo traces that function. The twin is
    kept on the ScriptFunction, and on that Python function for dynamo (NOTE [script functions
    under dynamo]).
    """
    twin = getattr(fn, _SCRIPT_TWIN, None)
    if twin is None and not torch.compiler.is_dynamo_compiling():
        original = getattr(fn, "_torchdynamo_inline", None)
        if type(original) is types.FunctionType:
            twin = _converted_function(original)
            setattr(fn, _SCRIPT_TWIN, twin)
            setattr(original, _SCRIPT_TWIN, twin)
            _script_codes.add(original.__code__)
    return twin


# NOTE [script functions under dynamo]
# Dynamo shows a @torch.jit.script function to the code it traces as the Python function it
# keeps (`_torchdynamo_inline`): `type(fn)` is a function there, and neither it nor the
# ScriptFunction is a constant `_runs_as_it_is` can be given ("assume_constant_result argument
# conversion failed": linear_operator's `_jit_linear_cg_updates_no_precond` in `linear_cg`'s
# loop). Its code object is a constant: the twin made before the trace (`preconvert`, from the
# callees the converter lists) is found through it, and read from that function's attribute.


def converted_method_call(obj, name: str, /, *args, **kwargs):
    """`obj.name(*args, **kwargs)`, converted when it is a user method.

    Converted code calls it for a method of a local, computed or closure-held value
    (`solver.run(x)`, `make_solver().run(x)`, `self.solver.run(x)`, NOTE [methods of outside
    values] in autoconv/converters/calls.py) whose name is not a tensor method's. The receiver
    is passed, not the bound method: dynamo can take the type of a tensor, a list or a user
    object, but not of a bound builtin method. Methods of tensors, builtin values and numpy's
    values are called as they are; a module's functions and others go through
    `converted_call`.
    """
    if name == "apply" and autograd_functions.is_function_class(obj):
        return autograd_functions.apply(obj, args, kwargs)
    if name in logs.LOG_METHODS and logs.is_logger(obj):  # NOTE [logging while tracing]
        return logs.log_call(obj, name, args, kwargs)
    if type(obj) is lists.StagedList:
        return lists.list_method(obj, name, args, kwargs)
    if name in _TENSOR_TRUTHS and isinstance(obj, torch.Tensor):
        return _TENSOR_TRUTHS[name](obj, *args, **kwargs)
    if isinstance(obj, torch.Tensor) and not hasattr(torch.Tensor, name) and is_stand_in(obj):
        # NOTE [methods of numbers the graph computes] in runtime/builtins.py
        return staged_builtins.number_method_(obj, name, args, kwargs)
    if isinstance(obj, _DIRECT_RECEIVERS) or _is_numpy_value(obj):
        if isinstance(obj, dict) and args and name in _KEYED_METHODS:
            subscripts.check_key(obj, args[0], f"looked up (.{name}) by")
        return getattr(obj, name)(*args, **kwargs)
    random_state.refused_method(obj, name)  # `g.manual_seed(0)`: NOTE [generator state ...]
    threads.refuse_method(obj, name)  # NOTE [code run on other threads while traced]
    outside_values.refused_method(obj, name)  # `rng.random()`: NOTE [clocks and Python ...]
    return converted_call(getattr(obj, name), *args, **kwargs)


# NOTE [a Function's methods called directly]
# `Fn.forward(ctx, x)` of a torch.autograd.Function class, called as a plain function (zuko's
# odeint, as autoconv's own refusal of a Function's forward suggests): dynamo cannot take the
# type of the static method it reads from the class ("GetAttrVariable(AutogradFunctionVariable(),
# forward) has no type", a UserError pointing into converted_call), nor reach its function
# through the class's `__dict__`, so converted code cannot convert it there; and dynamo left
# alone traces it unconverted, where its tensor conditions are graph breaks. The converter
# sends such a call of a global Function class here (tester44 s04): it runs converted in
# autoconv's trace and torch.export, and is refused at the user's line under torch.compile.
def function_method_call(function, written: str, name: str, /, *args, **kwargs):
    """`function.name(*args, **kwargs)` of a torch.autograd.Function class, other than `apply`,
    written `written.name(...)` (NOTE [a Function's methods called directly])."""
    if torch.compiler.is_dynamo_compiling():
        raise errors.StagingError(
            "call", f"torch.compile cannot convert a torch.autograd.Function's `{name}` called "
            f"directly (`{written}.{name}(...)`): dynamo "
            "reads it from the class as a value whose function it cannot reach",
            "Move the method's body into a plain function, called both by the method and "
            "here, or call the Function's `apply`")
    return converted_call(getattr(function, name), *args, **kwargs)


# A tensor's methods that give its value as a Python bool, as torch's functions of the same
# names (`_STAGED_BUILTINS`): a traced tensor's give a 0-d bool tensor, where torch's raise
# DataDependentOutputException (SWATS's `corrected_exp_avg.allclose(scaling)`, tester39 s02).
_TENSOR_TRUTHS = {"allclose": staged_builtins.allclose_, "equal": staged_builtins.equal_,
                  "is_nonzero": staged_builtins.is_nonzero_}


# A dict's methods given a key: one read from a tensor (`counts.get(int(v), 0)`) is refused at
# the line, as `counts[int(v)]` (runtime/subscripts.py), not torch's "unhashable type: SymInt".
_KEYED_METHODS = frozenset({"get", "pop", "setdefault"})


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
        if type(found) is types.MethodType:  # a classmethod read from its class is bound
            found = found.__func__
        if found is func:
            return found
    return func


def _call_builtin(fn, args, kwargs):
    if not torch.compiler.is_dynamo_compiling():
        outside_values.refuse_call(fn)  # NOTE [clocks and Python random draws under a tracer]
    fn = ambient.wrapped(fn)  # NOTE [process state read while tracing]
    for builtin, staged in _STAGED_BUILTINS:
        if fn is builtin:
            return staged(*args, **kwargs)
    if validation.calls_distribution(fn):
        return validation.call_validated(fn, args, kwargs)
    if _library_function_of_numbers(fn, args, kwargs):
        from . import arithmetic
        return arithmetic.number_call(fn, *args, **kwargs)
    return fn(*args, **kwargs)


# NOTE [library functions called by another name]
# The converter writes `torch.tensor(flag)`, `math.sqrt(n)` as `ac.number_call(...)`, which
# reads a number read from a tensor (a SymBool, a SymFloat) or a staged statement's stand-in
# as the number it is; it knows them by their names. Called by another name (`T =
# torch.tensor` at the top of a module, then `T(flag)`: a user's alias, and torch_geometric's
# `contains_self_loops(e)` wrapped that way), the call reached here and torch asked the
# SymBool for a dtype: "Could not infer dtype of SymBool", no line of the user's (tester45 s04).
# A function of torch, math or numpy given such a number takes the same path.
_NUMBER_MODULES = ("torch", "math", "numpy")


def _library_function_of_numbers(fn, args, kwargs) -> bool:
    # (not under dynamo: it reads such numbers itself, as it did before tester45 s04, and it
    # cannot trace the str method below: five of test_type_tests' compiles stopped there)
    if torch.compiler.is_dynamo_compiling() or not isinstance(
            fn, (types.BuiltinFunctionType, types.FunctionType)):
        return False
    module = (getattr(fn, "__module__", None) or "").partition(".")[0]
    if module not in _NUMBER_MODULES:
        return False
    return any(is_symbolic(leaf) or is_stand_in(leaf) or mixed_in(leaf)
               for value in (*args, *kwargs.values())
               for leaf in (value if type_in(value, (list, tuple)) else (value,)))


def super_method(klass, obj, name: str):
    """`super(klass, obj).name`, converted when it is a user function.

    Converted code calls `ac.super_method(__class__, self, 'f')(x)` for `super().f(x)`.
    """
    # (super's own rule, CPython's supercheck: in a class method `self` is the class, whose
    # own MRO is searched and to which a class method binds; tester45 s01: `type(cls).__mro__`
    # lacked `klass`, and the ValueError of its `.index` reached the user's `except ValueError`)
    if isinstance(obj, type) and issubclass(obj, klass):
        mro, owner = obj.__mro__, obj
    elif isinstance(obj, klass):
        mro, owner = type(obj).__mro__, type(obj)
    else:
        return getattr(super(klass, obj), name)  # (Python's own TypeError)
    for base in mro[mro.index(klass) + 1:]:
        attr = base.__dict__.get(name)
        if attr is not None:
            if type(attr) is classmethod and type(attr.__func__) is types.FunctionType \
                    and _convertible(attr.__func__):
                return functools.partial(_converted_function(attr.__func__), owner)
            if type(attr) is types.FunctionType and _convertible(attr) and obj is not owner:
                return functools.partial(_converted_function(attr), obj)
            break
    return getattr(super(klass, obj), name)


def _updates_statistics(module) -> bool:
    """Whether a BatchNorm / InstanceNorm's forward updates its running statistics in place."""
    return module.training and module.track_running_stats and module.running_mean is not None


# NOTE [running statistics in bodies dynamo traces]
# A BatchNorm (or InstanceNorm with track_running_stats) in training mode updates its running
# statistics in place in its own forward, torch's code. autoconv's trace sees the update in a
# staged body (its buffers' versions change) and carries it out of the statement; under
# torch.compile dynamo traces the body itself and refused the update with its own error
# ("Encountered input mutation during higher order op tracing ... num_batches_tracked"; tester
# 2026-12-02, BNBranch), which names no line of the user's; torch.export with grad enabled
# raised torch's "The cond HigherOrderOperator does not currently support training with in-place
# input or buffer mutations" (under no_grad it exports, and the program updates the buffers).
# Both are refused at the call's line.
def _refuse_statistics_in_compiled_body(module) -> None:
    from .staging import context

    if not context.in_staged_body():
        return
    name = type(module).__name__
    if not torch.compiler.is_dynamo_compiling():
        if torch.compiler.is_exporting() and torch.is_grad_enabled():
            raise errors.StagingError(
                "statement",
                f"it calls a {name} in training mode inside the body of a staged if or loop; "
                "its forward updates its running statistics in place, and with grad enabled "
                "torch.export's torch.cond / torch.while_loop do not allow a body to update a "
                "module's buffers",
                "Export under torch.no_grad() (the program then updates the statistics), use "
                f"autoconv's own replay (`autoconv.autoconv(...)`), call the {name} outside "
                "the statement, or put it in eval mode")
        return
    errors.raise_at_under_dynamo(
        errors.dynamo_user_location(), "statement",
        f"it calls a {name} in training mode inside the body of a staged if or loop; its "
        "forward updates its running statistics in place, and under torch.compile torch.cond "
        "/ torch.while_loop do not allow a body to update a module's buffers",
        f"Use autoconv's own replay (`autoconv.autoconv(...)`) or torch.export under "
        f"torch.no_grad(), which carry the update, call the {name} outside the statement, or "
        "put it in eval mode")


# NOTE [a lazy module's first call under dynamo]
# A lazy module (`nn.LazyLinear`) makes its parameters at its first call, in a forward pre-hook
# that removes itself. dynamo runs that hook when it traces the call of the module, but reading
# the module's hooks first (`_has_hooks`) had dynamo guard on the hook table, which the hook then
# emptied: dynamo's guard creation failed, "IndexError: list index out of range" at
# torch.compile of a converted function calling a fresh `nn.LazyLinear` (plain torch.compile
# makes it). Its forward is torch's, never converted: the call is dynamo's, as is.
def _uninitialized_lazy(fn) -> bool:
    # (torch's lazy modules become their plain class once made, `cls_to_become`; dynamo can
    # trace neither `has_uninitialized_params` nor the hook's handle)
    return isinstance(fn, torch.nn.modules.lazy.LazyModuleMixin) \
        and is_library_function(type(fn).forward)


def has_backward_hooks(module: torch.nn.Module) -> bool:
    """Whether `module` has backward hooks of its own or torch's global ones."""
    from torch.nn.modules import module as nn_module

    return bool(module._backward_hooks or module._backward_pre_hooks
                or nn_module._global_backward_hooks or nn_module._global_backward_pre_hooks)


def _has_hooks(module: torch.nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or torch.nn.modules.module._global_forward_hooks
        or torch.nn.modules.module._global_forward_pre_hooks
    )
