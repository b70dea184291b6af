"""`Function`: one Python function (or module), many traced signatures. Canonical call
arguments, the signature -> `ConcreteFunction` cache, and dispatch of each call to its graph.

Tracing itself is `capture.py`'s, replaying a graph `concrete.py`'s.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import types
import warnings

import torch
from torch.utils import _pytree as pytree

from autoconv_runtime.staging import ambient, export_state, specialize
from autoconv_runtime.staging.tracers import zero_trips
from autoconv_runtime.values import eager

from . import backends, capture, captures, targets, tracebacks
from .concrete import ConcreteFunction, ModuleState
from .signature import (ALIASED, CAPTURED_ALIAS, SHARED_CONTAINERS, Signature, TensorSpec,
                        captured_sharing, changing_fields, describe_leaf,
                        module_python_fields, positional_key, same_tensor_twice, scalar_key,
                        tensors_check, with_tensor_state,
                        shared_in, signature_of, with_aliasing, with_captured_aliasing,
                        with_shared_containers)

__all__ = ["Function", "ConcreteFunction", "run_functions_eagerly", "functions_run_eagerly"]

_AUTOCAST_DEVICES = ("cpu", "cuda")
_any_autocast = torch._C._is_any_autocast_enabled

_run_eagerly = False
RETRACE_WARNING_AFTER = 5
_MAX_SPECIALIZATIONS = 64

# NOTE [one trace at a time in a process]
# A Function's own lock makes concurrent first calls of that Function trace once; two
# Functions tracing in two threads at once met in torch's process-wide tracing state (make_fx's
# current patcher and tracer, the FakeTensorMode set for the thread's dispatch), which is not
# made for it: torch's "CURRENT_PATCHER is None in finally block", "Attempted to unset
# FakeTensorMode", and once a C++ terminate that ended the process (brk51, four threads each
# tracing its own Function). So every trace also holds this lock, taken before the Function's
# own (the same order everywhere, and reentrant: a Function called while another traces takes
# it again in the same thread). Calls that run a graph take neither.
_TRACES = threading.RLock()

# NOTE [a call that finds another thread tracing]
# The trace lock is held for a whole trace, and the traced function runs user code under it:
# where that code waits for a lock of the user's that another thread holds while calling a
# Function that must trace, that thread waited for the trace lock and the trace for the user's
# lock, for ever (plain Python returns: the other call finishes and releases its lock). So no
# call waits on the trace lock. A call that must trace (or put a graph aside) and finds
# another thread tracing runs the function's plain Python for this call, whose values are
# Python's by definition, and traces on a later call; concurrent first calls of one Function
# still trace once (the others run Python meanwhile). Waiting would gain nothing: a trace
# takes longer than most functions' eager run (collatz_steps of 97: a trace and run 265 ms, a
# process's first 5.2 s, against 4.9 ms eager, load 15), and a bounded wait still hangs that
# long where it is a deadlock. Graph
# runs take no lock, as before; under dynamo or another tracer a call is inlined and takes
# none. `get_concrete_function` and `export` must return a graph: they wait for the lock at
# most TRACE_LOCK_WAIT seconds, then raise (the deadlock above ends, loudly).
TRACE_LOCK_WAIT = 60.0
_explicit = threading.local()  # `seconds`: how long this thread's trace waits for the lock


class _TracingElsewhere(Exception):
    """Another thread holds the trace lock (NOTE [a call that finds another thread tracing])."""


@contextlib.contextmanager
def _trace_lock(name: str):
    """The trace lock held within; `_TracingElsewhere` where a call finds it another thread's,
    a RuntimeError where `get_concrete_function` / `export` waited TRACE_LOCK_WAIT for it."""
    seconds = getattr(_explicit, "seconds", 0.0)
    if not (_TRACES.acquire(timeout=seconds) if seconds else _TRACES.acquire(blocking=False)):
        if not seconds:
            raise _TracingElsewhere
        raise RuntimeError(
            f"{name}: another thread has been tracing for {seconds:g} s while this one waited "
            "to trace (does the function traced there wait for a lock this thread holds?). "
            "Trace each signature (a first call, or get_concrete_function) before starting "
            "threads, or call the Function itself, which runs plain Python while another "
            "thread traces")
    try:
        yield
    finally:
        _TRACES.release()


@contextlib.contextmanager
def _waiting_to_trace():
    """Within, this thread's traces wait for the trace lock (a graph must be returned)."""
    before = getattr(_explicit, "seconds", 0.0)
    _explicit.seconds = TRACE_LOCK_WAIT
    try:
        yield
    finally:
        _explicit.seconds = before
_MAX_PARKED = 8  # graphs put aside a signature (NOTE [graphs kept per guard outcome])
_retrying = threading.local()  # a call traces again for a rebound captured tensor


def run_functions_eagerly(flag: bool) -> None:
    """Run every `Function` as its plain Python function (for debugging), or stop doing so."""
    global _run_eagerly
    _run_eagerly = bool(flag)


def functions_run_eagerly() -> bool:
    """True while `run_functions_eagerly(True)` is in effect."""
    return _run_eagerly


class _Binder:
    """Puts call arguments in one canonical form, so that `f(x)`, `f(x, 2.0)` and
    `f(x, scale=2.0)` (with `scale=2.0` the default) share one signature, as in Python they are
    one call. The common call (all positional parameters given positionally) is left as is."""

    def __init__(self, target):
        self._target = target
        self._defaults = _defaults_now(target)
        try:
            self.signature = inspect.signature(target)
        except (TypeError, ValueError):  # builtins and some callables: no canonical form
            self.signature, self.positional = None, -1
            return
        kinds = [p.kind for p in self.signature.parameters.values()]
        simple = all(k is inspect.Parameter.POSITIONAL_OR_KEYWORD for k in kinds)
        self.positional = len(kinds) if simple else -1

    def __call__(self, args: tuple, kwargs: dict):
        if not kwargs and len(args) == self.positional or self.signature is None:
            return args, kwargs
        # `inspect.signature` copies the defaults: where the function's are others now
        # (`f.__defaults__ = (5.0,)`, `f.__kwdefaults__["scale"] = 3`), Python calls with
        # those, and the old ones gave the graph of the old value (break41 s03)
        defaults = _defaults_now(self._target)
        if len(defaults) != len(self._defaults) or any(
                a is not b for a, b in zip(defaults, self._defaults)):
            self.signature, self._defaults = inspect.signature(self._target), defaults
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.args, bound.kwargs



def _defaults_now(target) -> tuple:
    """The objects a call's missing arguments take now: the positional defaults' tuple and
    each keyword-only default (a dict that may change in place)."""
    keywords = getattr(target, "__kwdefaults__", None)
    return (getattr(target, "__defaults__", None), *(keywords.values() if keywords else ()))


_BOUND_FUNCTIONS = "__autoconv_bound__"


def _made_again(kind, target, options):
    """A Function (or ConvertedModule) of `target` made anew (NOTE [a Function copied or
    pickled])."""
    return kind(target, **options)


def _global_named(module: str, name: str):
    """The object `name` (a qualified name) of the imported module `module`, or None."""
    found = sys.modules.get(module)
    for part in name.split("."):
        found = getattr(found, part, None)
    return found


@functools.cache
def _function_fields() -> frozenset:
    """The attributes a Function keeps of its own (its graphs, caches, options): made anew,
    not copied (NOTE [a Function copied or pickled])."""
    return frozenset((*vars(Function(lambda: None)), "_state_read",
                      "_module_fields", "_rebound"))


class _BoundFunctions:
    """An instance's Functions of its decorated methods, in its `__dict__` (NOTE [a Function
    as a method]): they go with the instance. Not copied: a copy (`copy.deepcopy`, a pickle,
    `torch.save`) makes its own on first use, bound to itself."""

    __slots__ = ("owner", "functions")

    def __init__(self, owner: int = 0):
        self.owner = owner  # id of the instance: a `copy.copy` shares this object
        self.functions: dict = {}  # id of the class's Function: (it, the instance's)

    def __reduce__(self):
        return _BoundFunctions, ()

    def __deepcopy__(self, memo):
        return _BoundFunctions()

    def __copy__(self):
        return _BoundFunctions()


# NOTE [lazy modules made by Python]
# A lazy submodule (`nn.LazyLinear`) makes its parameters at its first call, from the input's
# shape; until then they are UninitializedParameters, which a trace cannot read (it refused the
# module: "a tensor of the torch.Tensor subclass UninitializedParameter"). A call that would
# trace while any is unmade runs as plain Python, as the module's first call does without
# autoconv, and makes them; the next call traces the made module.
def _lazy_parameters_unmade(module: torch.nn.Module) -> bool:
    return any(isinstance(sub, torch.nn.modules.lazy.LazyModuleMixin)
               and sub.has_uninitialized_params() for sub in module.modules())


class Function(targets.Wraps):
    """A Python function (or `nn.Module`) that converts once and traces once per signature.

    Created by `autoconv(fn)`. Calling it looks up the `ConcreteFunction` for the arguments'
    signature (tensors by shape, dtype, device, requires_grad; other values by value;
    `module.training` for modules), tracing a new one when the signature is new, and runs its
    graph with the chosen backend (see `autoconv.backends`).
    """

    def __init__(self, fn, *, dynamic: bool = False, backend: str = "python",
                 input_signature=None):
        if backend not in backends.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of "
                             f"{sorted(backends.BACKENDS)}")
        self.python_function = fn
        self.backend = backend
        self.input_signature = None if input_signature is None else tuple(input_signature)
        if self.input_signature is not None:
            for spec in self.input_signature:
                if not isinstance(spec, TensorSpec):
                    raise TypeError(f"input_signature holds TensorSpec objects, got {spec!r}")
        self.dynamic = dynamic or any(
            None in spec.shape for spec in self.input_signature or ())
        self._module = fn if isinstance(fn, torch.nn.Module) else None
        self._bind = _Binder(fn.forward if self._module is not None else fn)
        self._state = None
        self._converted = None
        self._cache: dict[Signature, ConcreteFunction] = {}
        # the captured tensors a graph traced with an aliasing argument writes (NOTE
        # [arguments that are captured tensors] in signature.py)
        self._written_constants: tuple = ()
        self._pinned: ConcreteFunction | None = None
        # (key, extra, graph) of the last call that may be dispatched again without its
        # Signature (NOTE [the last call's graph])
        self._last: tuple | None = None
        # signature -> the graphs of one signature specialised on other guard outcomes (the
        # first is the cached one)
        self._variants: dict[Signature, list[ConcreteFunction]] = {}
        # signature -> [(graph, its specialisations)] put aside where a guard failed (NOTE
        # [graphs kept per guard outcome])
        self._parked: dict[Signature, list] = {}
        # the kinds of tensor state a trace's Python read (`x.storage_offset()` ...): calls
        # are keyed by them from then on (NOTE [tensor state read while tracing] in
        # autoconv_runtime/staging/tensor_reads.py)
        self._tensor_reads: tuple = ()
        self._lock = threading.Lock()
        self.trace_count = 0
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    # NOTE [a Function as a method]
    # `@autoconv` on a method (`def step(self, x)` in a class body) makes the class attribute
    # a Function; `obj.step(x)` looks it up through `__get__`, as Python binds a function.
    # Without it the call reached the Function with `x` alone ("missing a required argument").
    # As tf.function does, each instance gets its own Function of the bound method, kept while
    # the instance lives: its graphs read that instance's attributes (captures, guarded), so
    # two instances never share a graph, and an instance's own graphs are reused call after
    # call. `Class.step(obj, x)` (no instance) is this Function, `obj` an argument. They are
    # kept in the instance's own `__dict__` (`_BoundFunctions`, not copied by copy, deepcopy or
    # pickle), so they go with it: kept by this Function, per instance id, they held their
    # `self` and no instance was ever freed (methods33 s01). An instance without `__dict__`
    # (`__slots__`) gets a new Function per lookup, which traces on each.
    def __get__(self, instance, owner=None):
        if instance is None or type(self.python_function) is not types.FunctionType:
            return self  # (Python binds functions only: a module, a builtin stay as they are)
        attrs = getattr(instance, "__dict__", None)
        held = attrs.get(_BOUND_FUNCTIONS) if type(attrs) is dict else None
        if held is not None and held.owner == id(instance):
            method = held.functions.get(id(self))
            if method is not None and method[0] is self:
                return method[1]
        method = Function(types.MethodType(self.python_function, instance),
                          dynamic=self.dynamic, backend=self.backend,
                          input_signature=self.input_signature)
        # (`__wrapped__` the bound method: inspect.signature, which torch.export binds the
        # module's `forward` arguments with, leaves `self` out)
        functools.update_wrapper(method, method.python_function, updated=())
        method.__code__ = self.python_function.__code__  # (torch.export reads forward's)
        if type(attrs) is not dict:  # no `__dict__` (`__slots__`): a Function per lookup
            return method
        if held is None or held.owner != id(instance):  # (a copy.copy shares the original's)
            held = attrs[_BOUND_FUNCTIONS] = _BoundFunctions(id(instance))
        held.functions[id(self)] = (self, method)
        return method

    # NOTE [a Function copied or pickled]
    # A Function's graphs, its lock and its generated code are no Python values that copy or
    # pickle can take (`copy.deepcopy(autoconv(model))` failed with "cannot pickle 'module'
    # object", `torch.save` with "Can't pickle local object": break45b), and a copy's graphs
    # would read the original's objects: its captures and guards hold those, by identity. So a
    # copy or a pickle of a Function is the Function made anew (`autoconv` of the function or
    # module, with the same options), which traces on its first call, with the attributes it
    # was given beside (`functools.update_wrapper`'s, a module wrapper's hooks and `training`).
    # `copy.copy` so makes a Function of the same function (a wrapper of the same module),
    # `copy.deepcopy` one of the module's deep copy. A Function that is its module's global of
    # its own name (`@autoconv def f`) is pickled by that name, as a function is, and a copy
    # is itself, as a function's is. What cannot be pickled (a local function, a lambda, a hook
    # that is one) fails as pickle fails for it.
    def __reduce_ex__(self, protocol):
        fields = self.__dict__
        module, name = fields.get("__module__"), fields.get("__qualname__")
        if type(module) is str and type(name) is str and _global_named(module, name) is self:
            return name  # (pickle saves it as the global `module.name`)
        return _made_again, (type(self), self.python_function, self._options()), {
            k: v for k, v in fields.items() if k not in _function_fields()} or None

    def _options(self) -> dict:
        return {"dynamic": self.dynamic, "backend": self.backend,
                "input_signature": self.input_signature}

    @property
    def concrete_functions(self) -> list[ConcreteFunction]:
        """The graphs traced so far: one per signature, and one per outcome of the guards of a
        specialised graph (see NOTE [specialisation]); with those put aside where a place they
        read changed (NOTE [graphs kept per guard outcome])."""
        return list(self._cache.values()) + [
            c for variants in self._variants.values() for c in variants[1:]] + [
            c for parked in self._parked.values() for c, _ in parked]

    # NOTE [the last call's graph]
    # A replayed call's own work before its graph runs was mostly finding the graph: binding
    # the arguments, the Signature object (its hash over every leaf's entry), the cache's
    # lookup (Signature.__eq__, a Python call) and the questions each graph answers about
    # aliasing. A call of positional leaves (keyed without pytree's walk: NOTE [signature
    # without the pytree walk]) whose signature found a graph that none of those
    # questions re-keys (no guards of a specialised condition, no grad-mode regions, no writes
    # into its inputs or into argument objects' containers, the arguments bound as given) is
    # remembered as (key, extra, graph); the next call whose leaves' key and `_extra()` are
    # equal to those, with no tensor given twice and none sharing memory with a constant the
    # graph writes, would build an equal Signature, find that very graph and ask the same
    # questions with the same answers: it runs that graph directly. Anything else takes the
    # whole way, which remembers its own call. Putting a graph aside or forgetting the graphs
    # (the only changes to a signature's entry in the cache) forgets it.
    def _last_graph(self, last, args):
        """The graph of the last call remembered (NOTE [the last call's graph]) where the
        positional `args` would find it again, else None."""
        check = last[3]
        if check is not None and len(args) == last[4] and check(*args):
            tensors = last[4]  # NOTE [the last call's tensors checked in C++] in signature.py
        else:
            positional = positional_key(args)
            if positional is None or positional[0] != last[0]:
                return None
            tensors = positional[1]
        if self._extra() != last[1]:
            return None
        concrete = last[2]
        if tensors > 1 and same_tensor_twice(args, tensors):
            return None
        if concrete._written_constants and captured_sharing(args, concrete._written_constants):
            return None
        return concrete

    def _keyed_by_writes(self, concrete, signature, leaves, args, kwargs, found_keyed=False):
        """(graph, signature) for this call where `concrete`, found or traced for
        `signature`, writes into what the signature does not key: arguments sharing memory,
        a captured tensor given as an argument, containers under two paths (each keyed, and
        the graph for that signature found or traced)."""
        if concrete._writes_inputs:  # NOTE [aliased arguments] in signature.py
            aliased = with_aliasing(signature, leaves)
            if aliased is not signature:
                signature = aliased
                concrete = self._cache.get(signature) or self._trace(
                    signature, leaves, args, kwargs)
        if concrete._written_constants and not found_keyed:
            # NOTE [arguments that are captured tensors]
            keyed = with_captured_aliasing(signature, leaves, concrete._written_constants)
            if keyed is not signature:
                signature = keyed
                concrete = self._cache.get(signature) or self._trace(
                    signature, leaves, args, kwargs)
        if concrete._writes and not shared_in(signature):
            # NOTE [containers under two paths] in capture.py
            keyed = with_shared_containers(signature, args, kwargs)
            if keyed is not signature:
                signature = keyed
                concrete = self._cache.get(signature) or self._trace(
                    signature, leaves, args, kwargs)
        return concrete, signature

    def _run_guarded(self, concrete, signature, leaves, run, called=None):
        """`run(concrete)`; where a guard of a specialised graph fails, the graph traced for
        the other value of its condition runs instead (traced on these arguments if new).
        `called`: the call's (args, kwargs), where the signature may need keys for what the
        other path writes (NOTE [specialised graphs keyed by their writes])."""
        for _ in range(_MAX_SPECIALIZATIONS):
            try:
                return run(concrete)
            except specialize.GuardFailed as failed:
                concrete = self._specialization(concrete, failed, signature, leaves)
                if called is not None:
                    # NOTE [specialised graphs keyed by their writes]
                    # A graph specialised on a tensor condition keys its signature by what
                    # its own path writes: one whose path writes nothing into the call's
                    # objects (`tag = "neg"`) leaves out which containers the arguments
                    # share. The other path's graph, traced under that signature on
                    # arguments rebuilt apart, wrote `a[0]` and `b[0]` of one list `a is b`
                    # as two (7 for Python's 20, silently: break45 s03). So the variant is
                    # keyed by its own writes as a first graph is, and the graph of that
                    # signature (traced there on arguments shared as the caller's) runs.
                    concrete, signature = self._keyed_by_writes(concrete, signature, leaves,
                                                                *called)
        raise RuntimeError(
            f"{self.__name__}: more than {_MAX_SPECIALIZATIONS} graphs specialised on tensor "
            "conditions were tried for one call; the conditions' values must not change "
            "between the trace and the run (random numbers?)")

    def _specialization(self, concrete, failed, signature, leaves):
        plan = concrete.specialized[: failed.index] + (not concrete.specialized[failed.index],)
        with _trace_lock(self.__name__), self._lock:
            variants = self._variants.setdefault(signature, [concrete])
            for variant in variants:
                if variant.specialized[: len(plan)] == plan:
                    return variant
            try:
                variant = self._trace_locked(signature, leaves, plan)
            except Exception as error:
                raise tracebacks.for_user(error, f"tracing {self.__name__}")  # noqa: B904
            if variant.specialized[: len(plan)] != plan:
                raise RuntimeError(
                    f"{self.__name__}: tracing again for the other path of a specialised "
                    "condition met other conditions; the function must take the same "
                    "decisions on the same inputs") from failed
            variants.append(variant)
            self.trace_count += 1
            return variant

    def _owner(self):
        """The object the converted function runs on: the module, the instance of a method."""
        if self._module is not None:
            return self._module
        target = self.python_function
        return target.__self__ if type(target) is types.MethodType else None

    def _converted_callable(self):
        converted = self._converted
        # (a module's forward of its own set or replaced since, NOTE [a module's own forward]
        # in captures.py, or its class's: NOTE [a module's class's forward]; a
        # graph traced again for it converts the new one)
        module = self._module
        own = None if module is None else (targets.own_forward(module)
                                           or getattr(type(module), "forward", None))
        if converted is None or converted[1] is not own:
            converted = (targets.converted_forward(self._module) if self._module is not None
                         else targets.convert(self.python_function)), own
            # Not kept when dynamo traces this call: dynamo guards on the attribute it saw
            # None, so the store compiled the caller a second time on its next call.
            if not torch.compiler.is_dynamo_compiling():
                self._converted = converted
        return converted[0]

    def _extra(self) -> tuple:
        # A module's own Python attributes (`self.temperature = 0.5`) are baked into the graph
        # that reads them, so a changed one traces again (its submodules': README Limitations).
        # torch.tensor(1.5), torch.zeros(2) read the default dtype while tracing: a graph holds
        # the one it was traced under (keyed only when it is not float32, the common case).
        dtype = torch.get_default_dtype()
        defaults = () if dtype is torch.float32 else (("default dtype", dtype),)
        # A graph traced under `torch.autocast` holds the autocast dtypes of its ops (a bfloat16
        # graph replayed outside it gave bfloat16 where Python gives float32): keyed where on.
        if _any_autocast():  # (one C call where autocast is off, the common case)
            for device in _AUTOCAST_DEVICES:
                if torch.is_autocast_enabled(device):
                    defaults += ((f"autocast {device}", torch.get_autocast_dtype(device)),)
        # Process state an earlier trace read (grad mode, os.environ ...): graphs are keyed by
        # its values (NOTE [process state read while tracing] in runtime/staging/ambient.py).
        state_read = self.__dict__.get("_state_read")
        if state_read:
            defaults += (("process state", ambient.values_now(state_read.values())),)
        module = self._module
        if module is None:
            return defaults
        fields = module.__dict__
        count = len(fields)
        if "forward" in fields:  # NOTE [a module's own forward] in captures.py
            defaults += (("forward", targets.own_forward(module)),)
        known = self.__dict__.get("_module_fields")
        if known is None or known[0] != count:
            # the names once per number of attributes (a walk of the module's dict costs ~5 us
            # a call): an attribute set after the first call (`model.temperature = 0.5`, read
            # as `getattr(self, "temperature", 1.0)` or under `hasattr`) was neither keyed nor
            # guarded, and the graph of its absence replayed (break41 s07). The count is keyed
            # too, so one of another kind (a tensor, a list) traces again, and is guarded.
            known = self.__dict__["_module_fields"] = (count, tuple(
                ("module." + k, k) for k in module_python_fields(module)))
        # (a submodule put in the other mode, `model.bn.eval()`, is guarded: captures.py)
        # (by type and value: `self.scale = 2` after 2.0 computes in int, NOTE [scalars keyed
        # by type and sign] in signature.py)
        names = known[1]
        if not names:  # (the common module: no list to build, unpack and throw away)
            return (*defaults, ("training", module.training), ("attributes", count))
        return (*defaults, ("training", module.training), ("attributes", count),
                *[(key, scalar_key(fields.get(k))) for key, k in names])

    # NOTE [a pinned graph's process state]
    # The pinned graph of a Function with an `input_signature` held for the grad mode and
    # process state its trace read (`if torch.is_grad_enabled():`, `os.environ.get("MODE")`,
    # deterministic algorithms) and for the grad mode of a graph that changes it (`with
    # torch.no_grad():` inside): called in another, `_run_flat` refused the call and told the
    # caller to call the autoconv Function, which was what they had called (break52: Python
    # gives -99, -98 under no_grad; the graph was traced with grad on). As for a module's mode
    # (NOTE [what a direct call keys besides its arguments] in concrete.py), the call then takes
    # the Function's own way, which keys its graphs by that state and traces one for it; a
    # ConcreteFunction called directly still refuses.
    def __call__(self, *args, **kwargs):
        if _run_eagerly:
            return self.python_function(*args, **kwargs)
        if not eager():
            # Called while another tracer runs (a model under torch.compile, torch.export or
            # make_fx calling this function, or this Function compiled itself; a torch.func
            # transform): the converted body runs in that trace, its control flow staged there,
            # as a tf.function called in a tf.function is inlined. A graph of this Function's
            # cache runs Python loops on `.item()`s, which no tracer can follow.
            converted = self._converted_callable()
            owner = self._owner()
            if owner is not None and torch.compiler.is_exporting() \
                    and not torch.compiler.is_dynamo_compiling():
                # NOTE [values of an export stored on an object]: the exported call's own
                return export_state.checked_call(
                    owner, converted, args, kwargs,
                    targets.def_of(self.python_function if self._module is None else self._module))
            return converted(*args, **kwargs)
        try:
            if self.input_signature is not None:
                concrete = self._pinned or self._concrete_function(*self.input_signature)
                # (a module put in eval mode, a field changed: NOTE [what a direct call keys
                # besides its arguments] in concrete.py; NOTE [a pinned graph's process state])
                if (concrete._sized is None or (not kwargs and concrete.fits_sizes(args))) \
                        and concrete.ambient_holds() and (not concrete.tensor_reads or (
                            not kwargs and concrete.tensor_state_holds(args))) and (
                            concrete.grad_mode is None and not concrete.state_read
                            or concrete.process_state_holds()):
                    if not concrete._guards:
                        return concrete._call_held(args, kwargs)
                    return self._run_guarded(concrete, concrete.signature, list(args),
                                             lambda c: c._call(args, kwargs))
                # the pinned graph holds for the example's sizes only: a graph per signature
            last = self._last
            if last is not None and not kwargs:
                concrete = self._last_graph(last, args)
                if concrete is not None:
                    return concrete._run_flat(concrete._inputs(args), args, kwargs)
            given = args
            args, kwargs = self._bind(args, kwargs)
            extra = self._extra()
            signature, leaves = signature_of(args, kwargs, extra)
            if self._tensor_reads:  # NOTE [tensor state read while tracing]
                signature = with_tensor_state(signature, leaves, self._tensor_reads)
            keyed_as_called = signature
            concrete = self._cache.get(signature)
            found_keyed = False
            if concrete is None and self._written_constants:
                # a graph traced with an argument that is a captured tensor is kept under
                # that aliasing only (NOTE [arguments that are captured tensors])
                keyed = with_captured_aliasing(signature, leaves, self._written_constants)
                concrete = self._cache.get(keyed) if keyed is not signature else None
                if concrete is not None:
                    signature, found_keyed = keyed, True
            if concrete is None:
                if self._module is not None and _lazy_parameters_unmade(self._module):
                    return self._plain_call(args, kwargs)  # NOTE [lazy modules made by Python]
                concrete = self._trace(signature, leaves, args, kwargs)
            concrete, signature = self._keyed_by_writes(concrete, signature, leaves, args,
                                                        kwargs, found_keyed)
            if concrete.grad_mode is not None and concrete.grad_mode is not torch.is_grad_enabled():
                concrete = self._for_grad_mode(concrete, signature, leaves, args, kwargs)
            if not concrete._guards:
                if (signature is keyed_as_called and args is given and leaves is args
                        and signature.extra is extra and concrete.grad_mode is None
                        and not concrete._writes_inputs and not concrete._writes
                        and self._cache.get(signature) is concrete):
                    self._last = (signature.key, extra, concrete, tensors_check(args),
                                  len(args))
                return concrete._run_flat(concrete._inputs(leaves), args, kwargs)
            return self._run_guarded(concrete, signature, leaves,
                                     lambda c: c._run_flat(c._inputs(leaves), args, kwargs),
                                     (args, kwargs))
        except _TracingElsewhere:  # NOTE [a call that finds another thread tracing]
            return self._plain_call(args, kwargs)
        except capture.MadeByTheCall:  # NOTE [module state made by its first call] in capture.py
            return self._plain_call(args, kwargs)
        except captures.Rebound as rebound:
            # A global / attribute the graph read a tensor or value from holds another one now
            # (NOTE [captured tensors]): that graph is put aside, kept for when the place holds
            # its value again (NOTE [graphs kept per guard outcome]).
            if getattr(_retrying, "active", False):
                changed = rebound.changed_by_trace()
                if changed is not None:  # NOTE [values the trace changes] in captures.py
                    raise RuntimeError(f"{self.__name__}: {changed}") from None
                raise RuntimeError(
                    f"{self.__name__}: its graph was traced with {rebound.what()} right "
                    "after tracing: the function (or what it calls) changes it, so no graph "
                    "holds for the next call; pass it as an "
                    "argument (a tensor), or return the new value and store it in the "
                    "caller") from None
            failed = getattr(rebound, "concrete", None)
            try:
                if failed is None or not self._park(failed):
                    self._forget_graphs()
            except _TracingElsewhere:  # (the graph is put aside on a later call)
                return self._plain_call(args, kwargs)
            self._rebound = rebound.where  # for the retrace warning
            _retrying.active = True
            try:
                # (`Function.__call__`, not `self(...)`: a ConvertedModule's `self(...)` ran the
                # module's hooks a second time, around the hooks this call runs in already)
                return Function.__call__(self, *args, **kwargs)
            finally:
                _retrying.active = False

    def _plain_call(self, args, kwargs):
        """This call as plain Python: the function, or the module's forward (whose hooks the
        call runs around it already: the wrapper's `forward`)."""
        module = self._module
        if module is None:
            return self.python_function(*args, **kwargs)
        forward = targets.own_forward(module) or types.MethodType(type(module).forward, module)
        return forward(*args, **kwargs)

    # NOTE [graphs kept per guard outcome]
    # A graph holds while the places it read from outside (globals, closures, attributes,
    # fields of argument objects below the signature's key: captures.py) hold what they held
    # at its trace. Where one does not, the Function dropped all its graphs and traced again:
    # a step function called alternately with two state objects (a global `EMA` rebound to
    # each in turn, a trainer's deep config swapped between two) traced on every call. As
    # tf.function keeps a ConcreteFunction per signature and guard set, the graph whose guard
    # failed is put aside under its signature (`_parked`, with its specialisations), and a
    # call that would trace looks there first for one whose guards all hold now. At most
    # _MAX_PARKED are kept a signature, the oldest dropped; every trace counts in
    # `trace_count`, whose fifth warns as before. A Rebound that names no graph (a module's
    # parameter gone) drops them all, as before.
    def _park(self, failed) -> bool:
        """Put aside the graph `failed` (with the graphs of its signature's guard outcomes)
        whose guards failed; False where it is not a graph of the cache."""
        with _trace_lock(self.__name__), self._lock:
            for key, concrete in self._cache.items():
                if (concrete is failed or concrete._other_grad_mode is failed
                        or failed in self._variants.get(key, ())):
                    break
            else:
                return False
            if concrete is self._pinned:
                return False
            del self._cache[key]
            self._last = None
            parked = self._parked.setdefault(key, [])
            parked.append((concrete, self._variants.pop(key, None)))
            del parked[:-_MAX_PARKED]
            return True

    def _unpark(self, signature, args, kwargs):
        """The graph put aside for `signature` whose guards (and its specialisations') hold
        for this call, back in the cache; None where none does."""
        parked = self._parked.get(signature)
        if not parked:
            return None
        for i in range(len(parked) - 1, -1, -1):
            concrete, variants = parked[i]
            group = [concrete, *(variants or ())[1:]]
            if concrete._other_grad_mode is not None:
                group.append(concrete._other_grad_mode)
            if all(c.guards_hold(args, kwargs) for c in group):
                del parked[i]
                self._cache[signature] = concrete
                if variants is not None:
                    self._variants[signature] = variants
                return concrete
        return None

    def _forget_graphs(self) -> None:
        with _trace_lock(self.__name__), self._lock:
            self._last = None
            self._cache.clear()
            self._parked.clear()
            self._variants.clear()
            self._pinned = None
            self._written_constants = ()

    def _for_grad_mode(self, concrete, signature, leaves, args, kwargs):
        """The graph of `signature` for the caller's grad mode. A graph that records grad-mode
        changes holds the modes its trace saw (restores included), so it is traced once per
        mode (see `autoconv_runtime.staging.grad_mode`)."""
        other = concrete._other_grad_mode
        if other is None:
            with _trace_lock(self.__name__), self._lock:
                other = concrete._other_grad_mode
                if other is None:
                    try:
                        other = self._trace_locked(signature, leaves)
                    except Exception as error:
                        raise tracebacks.for_user(  # noqa: B904
                            error, f"tracing {self.__name__}")
                    other._other_grad_mode = concrete
                    concrete._other_grad_mode = other
                    self.trace_count += 1
        return other

    def get_concrete_function(self, *args, **kwargs) -> ConcreteFunction:
        """The `ConcreteFunction` for these arguments (tensors or `TensorSpec`s), traced if new.

        With `input_signature`, called without arguments it returns the one pinned graph.
        """
        with _waiting_to_trace():  # NOTE [a call that finds another thread tracing]
            return self._concrete_function(*args, **kwargs)

    def _concrete_function(self, *args, **kwargs) -> ConcreteFunction:
        if self.input_signature is not None:
            if not args and not kwargs:
                args = self.input_signature
            if self._pinned is None:
                signature, leaves = signature_of(tuple(self.input_signature), {}, self._extra())
                examples = [spec.example() for spec in leaves]
                self._pinned = self._trace(signature, examples, args, kwargs)
            return self._pinned
        args, kwargs = self._bind(args, kwargs)
        signature, leaves = signature_of(args, kwargs, self._extra())
        leaves = [leaf.example() if isinstance(leaf, TensorSpec) else leaf for leaf in leaves]
        signature = with_tensor_state(signature, leaves, self._tensor_reads)
        concrete = self._cache.get(signature) or self._trace(signature, leaves, args, kwargs)
        if concrete._writes and not shared_in(signature):
            keyed = with_shared_containers(signature, args, kwargs)
            if keyed is not signature:  # NOTE [containers under two paths] in capture.py
                concrete = self._cache.get(keyed) or self._trace(keyed, leaves, args, kwargs)
        return concrete

    def _trace(self, signature: Signature, leaves, args, kwargs) -> ConcreteFunction:
        with _trace_lock(self.__name__), self._lock:
            concrete = self._cache.get(signature)
            if concrete is None and self._parked:
                concrete = self._unpark(signature, args, kwargs)
            if concrete is not None:
                return concrete
            try:
                concrete = self._trace_locked(signature, leaves)
            except Exception as error:
                if not self.dynamic:
                    error = tracebacks.with_fixed_sizes(error)
                raise tracebacks.for_user(error, f"tracing {self.__name__}")  # noqa: B904
            traced = signature
            signature = self._keyed_by_state_read(concrete, signature, args, kwargs)
            signature = self._keyed_by_tensor_reads(concrete, signature, leaves)
            if concrete._writes_inputs and not any(
                    name == ALIASED for name, _ in signature.extra):
                # traced on shared memory: for such calls only (NOTE [aliased arguments]); the
                # caller looks it up under this signature
                aliased = with_aliasing(signature, leaves)
                if aliased is not signature:
                    signature = concrete.signature = aliased
            if concrete._written_constants and not any(
                    name == CAPTURED_ALIAS for name, _ in signature.extra):
                # traced with an argument that is a tensor the graph writes as a constant: for
                # such calls only (NOTE [arguments that are captured tensors])
                keyed = with_captured_aliasing(signature, leaves, concrete._written_constants)
                if keyed is not signature:
                    signature = concrete.signature = keyed
                    self._written_constants = tuple({id(t): t for t in (
                        *self._written_constants, *concrete._written_constants)}.values())
            if concrete._writes and shared_in(traced) and not shared_in(signature):
                # (keyed by the state read anew, the sharing left out)
                signature = concrete.signature = with_shared_containers(signature, args, kwargs)
            elif shared_in(signature) and not concrete._writes:
                # (traced on shared containers, and stores into none: holds for every call of
                # the signature without them, NOTE [containers under two paths] in capture.py)
                signature = concrete.signature = Signature(
                    signature.key, signature.treespec,
                    tuple(e for e in signature.extra if e[0] != SHARED_CONTAINERS))
            self._cache[signature] = concrete
            self.trace_count += 1
            if self.trace_count == RETRACE_WARNING_AFTER:
                warnings.warn(self._retrace_message(args, kwargs), stacklevel=3)
            return concrete

    def _keyed_by_state_read(self, concrete, signature, args, kwargs):
        """The signature to keep `concrete` under: where its trace read process state no
        trace read before, the Function's graphs are keyed by that too from now on."""
        known = self.__dict__.setdefault("_state_read", {})
        new = [(label, (getter, args_)) for label, (getter, args_, _) in concrete.state_read
               if label not in known]
        if not new:
            return signature
        known.update(new)
        return signature_of(args, kwargs, self._extra())[0]

    def _keyed_by_tensor_reads(self, concrete, signature, leaves):
        """The signature to keep `concrete` under: where its trace read a kind of tensor state
        no trace read before, the Function's calls are keyed by that too from now on (NOTE
        [tensor state read while tracing] in autoconv_runtime/staging/tensor_reads.py)."""
        kinds = tuple(sorted({*self._tensor_reads, *concrete.tensor_reads}))
        if kinds != self._tensor_reads:
            self._tensor_reads = kinds
            self._last = None
        if not kinds:
            return signature
        signature = concrete.signature = with_tensor_state(signature, leaves, kinds)
        return signature

    def _retrace_message(self, args, kwargs) -> str:
        """Names the arguments whose signature entries differ between the traces so far."""
        signatures = list(self._cache)
        changing = []
        if len({s.treespec for s in signatures}) > 1:
            changing.append("the structure of the arguments (number, keywords or containers)")
        else:
            paths = [p for p, _ in pytree.tree_flatten_with_path((args, kwargs))[0]]
            for i, path in enumerate(paths):
                seen = list(dict.fromkeys(s.key[i] for s in signatures))
                fields = changing_fields(seen)
                if fields:
                    name = self._argument_name(path)
                    changing.extend(f"{name}.{field} (seen: {shown})" for field, shown in fields)
                elif len(seen) > 1:
                    shown = ", ".join(describe_leaf(k) for k in seen[:5])
                    shown += ", ..." if len(seen) > 5 else ""
                    changing.append(f"{self._argument_name(path)} (seen: {shown})")
        extras = [dict(s.extra) for s in signatures]
        for name in dict.fromkeys(k for extra in extras for k in extra):
            if len({extra.get(name) for extra in extras}) > 1:
                changing.append(name if name.startswith("module.") else f"module.{name}")
        rebound = self.__dict__.get("_rebound")
        if rebound is not None:
            changing.append(f"{rebound}, which the function reads from outside, changed "
                            "(pass it as an argument instead: a tensor for a number)")
        return (f"{self.__name__} has been traced {self.trace_count} times; each new signature "
                f"traces again. Changing: {'; '.join(changing) or 'unknown'}. Pass tensors "
                "instead of changing Python values, or use dynamic=True (or an input_signature "
                "with None sizes) for changing sizes.")

    def _argument_name(self, path) -> str:
        where, *rest = path[1:]
        try:
            target = self._module.forward if self._module is not None else self.python_function
            params = list(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            params = []
        if path[0].idx == 0:  # positional
            name = params[where.idx] if where.idx < len(params) else f"args[{where.idx}]"
        else:
            name = str(where.key)
        return name + pytree.keystr(tuple(rest))

    def _trace_locked(self, signature, leaves, plan=()) -> ConcreteFunction:
        converted = self._converted_callable()
        module = self._module
        if module is not None:
            self._state = ModuleState(module)
        bound_self = module if module is not None else getattr(
            self.python_function, "__self__", None)
        with zero_trips.own_trace(self.backend != "python"):
            captured = capture.trace(
                converted, signature, leaves, name=self.__name__, module=module,
                state=self._state, bound_self=bound_self, dynamic=self.dynamic, plan=plan,
                source=self.python_function)
        return ConcreteFunction.from_capture(
            captured, signature, self.__name__, state=self._state, backend=self.backend,
            input_specs=self.input_signature, binder=self._bind, bound_self=bound_self,
            ambient=self._extra)

    def export(self, *args, **kwargs) -> torch.export.ExportedProgram:
        """The converted function as a `torch.export.ExportedProgram`, traced on `args`.

        Staged control flow stays `cond` / `while_loop` in the program, which
        `torch.export.save` / `load` round-trip and which runs without autoconv or the source.
        With `dynamic=True` or `None` sizes in `input_signature`, tensor sizes are left free.
        Without arguments, a Function with `input_signature` exports for its specs.
        """
        if not args and not kwargs and self.input_signature is not None:
            args = tuple(spec.example() for spec in self.input_signature)
        # (NOTE [one trace at a time in a process]; NOTE [a call that finds another thread
        # tracing])
        with _waiting_to_trace(), _trace_lock(self.__name__):
            return capture.export(self._converted_callable(), args, kwargs, name=self.__name__,
                                  module=self._module, dynamic=self.dynamic,
                                  source=self.python_function)

    def __repr__(self) -> str:
        return f"<autoconv.Function {self.__name__} ({self.trace_count} traces)>"
