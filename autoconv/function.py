"""`Function` (one Python function, many traced signatures) and `ConcreteFunction` (one graph)."""

from __future__ import annotations

import functools
import inspect
import threading
import warnings

import torch
from torch.fx._lazy_graph_module import _LazyGraphModule, _use_lazy_graph_module
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

from autoconv_runtime.calls import converted_submodules
from autoconv_runtime.errors import StagingError, user_exception
from autoconv_runtime.staging import grad_mode, specialize
from autoconv_runtime.values import is_undefined

from . import backends, graph_passes, tracebacks
from .signature import Signature, TensorSpec, describe_leaf, signature_of

__all__ = ["Function", "ConcreteFunction", "run_functions_eagerly", "functions_run_eagerly"]

_run_eagerly = False
RETRACE_WARNING_AFTER = 5
_MAX_SPECIALIZATIONS = 64


def run_functions_eagerly(flag: bool) -> None:
    """Run every `Function` as its plain Python function (for debugging), or stop doing so."""
    global _run_eagerly
    _run_eagerly = bool(flag)


def functions_run_eagerly() -> bool:
    """True while `run_functions_eagerly(True)` is in effect."""
    return _run_eagerly


_TENSOR = object()  # marks an output leaf that comes from the graph


class _ModuleState:
    """Reads a module's parameters and buffers, in the graph's input order, on every call.

    The slots are the `_parameters` / `_buffers` dicts of the owning submodules, resolved once:
    reading them is a dict lookup per tensor (walking `named_parameters()` each call costs
    ~0.3 ms on a 200-parameter model), and it still sees parameters replaced by assignment.
    """

    def __init__(self, module: torch.nn.Module):
        tables = [(name, "_parameters") for name, _ in module.named_parameters()]
        tables += [(name, "_buffers") for name, _ in module.named_buffers()]
        self.names = [name for name, _ in tables]
        self.slots = []
        for name, table in tables:
            owner_path, _, leaf = name.rpartition(".")
            self.slots.append((getattr(module.get_submodule(owner_path), table), leaf))

    def read(self) -> list:
        return [table[leaf] for table, leaf in self.slots]


class _Binder:
    """Puts call arguments in one canonical form, so that `f(x)`, `f(x, 2.0)` and
    `f(x, scale=2.0)` (with `scale=2.0` the default) share one signature, as in Python they are
    one call. The common call (all positional parameters given positionally) is left as is."""

    def __init__(self, target):
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
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.args, bound.kwargs


class ConcreteFunction:
    """One traced graph of a converted function, for one input signature.

    Calling it runs the graph on new tensors of that signature; Python-valued arguments must
    equal the traced ones.
    """

    def __init__(self, graph_module: torch.fx.GraphModule, signature: Signature, tensor_slots,
                 out_spec, out_constants, name: str, *, state: _ModuleState | None = None,
                 backend: str = "python", input_specs: tuple | None = None,
                 binder: _Binder | None = None, changed=(), live=(), bound_self=None,
                 specialized=(), guards=()):
        self.graph_module = graph_module
        self.signature = signature
        self.backend = backend
        self._state = state
        self._tensor_slots = tensor_slots
        self._out_spec = out_spec
        self._out_constants = out_constants
        self._single_tensor = out_constants == [_TENSOR] and out_spec.is_leaf()
        self._input_specs = input_specs
        self._bind = binder
        self._runner = None
        self.__name__ = name
        # Paths into the call's objects that the graph's last outputs are written back to
        # (see NOTE [changed arguments]).
        self._changed = list(changed)
        self._live = list(live)  # paths whose tensors are the graph's last inputs
        self._bound_self = bound_self
        # The values of the conditions this graph was traced for, and their guards' messages
        # (see NOTE [specialisation] in autoconv_runtime/staging/specialize.py).
        self.specialized = tuple(specialized)
        self._guards = list(guards)
        # The grad mode the trace ran under, where the graph records grad-mode changes (whose
        # restores hold that mode); None where the graph runs the same under either mode.
        self.grad_mode = torch.is_grad_enabled() if grad_mode.sets_grad_mode(graph_module) \
            else None
        self._other_grad_mode: ConcreteFunction | None = None

    @property
    def graph(self) -> torch.fx.Graph:
        """The torch.fx graph; staged control flow shows as higher_order cond / while_loop."""
        return self.graph_module.graph

    @property
    def code(self) -> str:
        """The graph's Python source, for reading."""
        return self.graph_module.code

    def __repr__(self) -> str:
        return f"<ConcreteFunction {self.__name__}{self.signature} backend={self.backend!r}>"

    def _run_flat(self, tensors, args=None, kwargs=None):
        if self.grad_mode is not None and self.grad_mode is not torch.is_grad_enabled():
            raise RuntimeError(
                f"{self.__name__}: this graph changes grad mode (torch.no_grad / enable_grad / "
                f"set_grad_enabled) and was traced with grad mode "
                f"{'on' if self.grad_mode else 'off'}; call it with the same grad mode, or call "
                "the autoconv Function, which traces one graph per grad mode")
        if self._live:
            roots = (args, kwargs, self._bound_self)
            tensors = tensors + [_follow(roots, path)[-1] for path in self._live]
        runner = self._runner
        if runner is None:
            runner = self._runner = backends.build(self.backend, self.graph_module, tensors)
        try:
            outputs = runner(*tensors)
        except RuntimeError as error:
            index = specialize.guard_index(error, self._guards) if self._guards else None
            if index is not None:  # traced for the other value of a condition
                raise specialize.GuardFailed(str(error), index) from None
            # a graph assertion standing for the user's `raise` (NOTE [exceptions raised by graphs])
            raised = user_exception(error)
            if raised is None:
                raise
            raise raised from None
        if self._changed:
            outputs = self._write_back(outputs, args, kwargs)
        if self._single_tensor:
            return outputs[0]
        outputs = iter(outputs)
        leaves = [next(outputs) if c is _TENSOR else c for c in self._out_constants]
        return pytree.tree_unflatten(leaves, self._out_spec)

    def _write_back(self, outputs, args, kwargs):
        """Store the graph's last outputs into the call's objects; returns the other outputs."""
        count = len(outputs) - len(self._changed)
        roots = (args, kwargs, self._bound_self)
        for path, value in zip(self._changed, outputs[count:]):
            _store(roots, path, value)
        return outputs[:count]

    def _inputs(self, leaves) -> list:
        tensors = [leaves[i] for i in self._tensor_slots]
        if self._state is not None:  # parameters and buffers are read live
            return self._state.read() + tensors
        return tensors

    def __call__(self, *args, **kwargs):
        if self._input_specs is not None:
            leaves = _check_input_signature(self.__name__, self._input_specs, args, kwargs)
        else:
            if self._bind is not None:
                args, kwargs = self._bind(args, kwargs)
            signature, leaves = signature_of(args, kwargs, self.signature.extra)
            if signature != self.signature:
                raise TypeError(
                    f"{self.__name__} was traced for {self.signature}, got {signature}; call "
                    "the Function instead, which traces new signatures")
        return self._run_flat(self._inputs(leaves), args, kwargs)


def _check_input_signature(name, specs, args, kwargs) -> list:
    if kwargs or len(args) != len(specs):
        raise TypeError(f"{name} has input_signature of {len(specs)} positional tensor(s); got "
                        f"{len(args)} positional and {len(kwargs)} keyword argument(s)")
    for i, (spec, value) in enumerate(zip(specs, args)):
        why = spec.mismatch(value)
        if why is not None:
            raise TypeError(f"{name}: argument {i} does not match input_signature[{i}] {spec}: "
                            f"{why}")
    return list(args)


class Function:
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
        self._pinned: ConcreteFunction | None = None
        # signature -> the graphs of one signature specialised on other guard outcomes (the
        # first is the cached one)
        self._variants: dict[Signature, list[ConcreteFunction]] = {}
        self._lock = threading.Lock()
        self.trace_count = 0
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    @property
    def concrete_functions(self) -> list[ConcreteFunction]:
        """The graphs traced so far: one per signature, and one per outcome of the guards of a
        specialised graph (see NOTE [specialisation])."""
        return list(self._cache.values()) + [
            c for variants in self._variants.values() for c in variants[1:]]

    def _run_guarded(self, concrete, signature, leaves, run):
        """`run(concrete)`; where a guard of a specialised graph fails, the graph traced for
        the other value of its condition runs instead (traced on these arguments if new)."""
        for _ in range(_MAX_SPECIALIZATIONS):
            try:
                return run(concrete)
            except specialize.GuardFailed as failed:
                concrete = self._specialization(concrete, failed, signature, leaves)
        raise RuntimeError(
            f"{self.__name__}: more than {_MAX_SPECIALIZATIONS} graphs specialised on tensor "
            "conditions were tried for one call; the conditions' values must not change "
            "between the trace and the run (random numbers?)")

    def _specialization(self, concrete, failed, signature, leaves):
        plan = concrete.specialized[: failed.index] + (not concrete.specialized[failed.index],)
        with self._lock:
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

    def _converted_callable(self):
        if self._converted is None:
            from .api import convert

            if self._module is not None:
                self._converted = convert(self._module)
            else:
                self._converted = convert(self.python_function)
        return self._converted

    def _extra(self) -> tuple:
        return (("training", self._module.training),) if self._module is not None else ()

    def __call__(self, *args, **kwargs):
        if _run_eagerly:
            return self.python_function(*args, **kwargs)
        if self.input_signature is not None:
            concrete = self._pinned or self.get_concrete_function(*self.input_signature)
            if not concrete._guards:
                return concrete(*args, **kwargs)
            return self._run_guarded(concrete, concrete.signature, list(args),
                                     lambda c: c(*args, **kwargs))
        args, kwargs = self._bind(args, kwargs)
        signature, leaves = signature_of(args, kwargs, self._extra())
        concrete = self._cache.get(signature)
        if concrete is None:
            concrete = self._trace(signature, leaves, args, kwargs)
        if concrete.grad_mode is not None and concrete.grad_mode is not torch.is_grad_enabled():
            concrete = self._for_grad_mode(concrete, signature, leaves, args, kwargs)
        if not concrete._guards:
            return concrete._run_flat(concrete._inputs(leaves), args, kwargs)
        return self._run_guarded(concrete, signature, leaves,
                                 lambda c: c._run_flat(c._inputs(leaves), args, kwargs))

    def _for_grad_mode(self, concrete, signature, leaves, args, kwargs):
        """The graph of `signature` for the caller's grad mode. A graph that records grad-mode
        changes holds the modes its trace saw (restores included), so it is traced once per
        mode (see `autoconv_runtime.staging.grad_mode`)."""
        other = concrete._other_grad_mode
        if other is None:
            with self._lock:
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
        return self._cache.get(signature) or self._trace(signature, leaves, args, kwargs)

    def _trace(self, signature: Signature, leaves, args, kwargs) -> ConcreteFunction:
        with self._lock:
            concrete = self._cache.get(signature)
            if concrete is not None:
                return concrete
            try:
                concrete = self._trace_locked(signature, leaves)
            except Exception as error:
                raise tracebacks.for_user(error, f"tracing {self.__name__}")  # noqa: B904
            self._cache[signature] = concrete
            self.trace_count += 1
            if self.trace_count == RETRACE_WARNING_AFTER:
                warnings.warn(self._retrace_message(args, kwargs), stacklevel=3)
            return concrete

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
                if len(seen) > 1:
                    shown = ", ".join(describe_leaf(k) for k in seen[:5])
                    shown += ", ..." if len(seen) > 5 else ""
                    changing.append(f"{self._argument_name(path)} (seen: {shown})")
        if len({s.extra for s in signatures}) > 1:
            changing.append("module.training")
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
        tensor_slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        module = self._module
        names = []
        if module is not None:
            self._state = _ModuleState(module)
            names = self._state.names
        out_info = {}
        bound_self = module if module is not None else getattr(
            self.python_function, "__self__", None)

        def flat_function(live, *tensors):
            grad_mode.function_begins()
            state, inputs = tensors[: len(names)], tensors[len(names):]
            inputs, live_tensors = inputs[: len(tensor_slots)], inputs[len(tensor_slots):]
            full = list(leaves)
            for slot, tensor in zip(tensor_slots, inputs):
                full[slot] = tensor
            args, kwargs = pytree.tree_unflatten(full, signature.treespec)
            roots = (args, kwargs, bound_self)
            before = _tensors_in(roots)
            out_info["undo"] = (roots, before, live)
            for path, tensor in zip(live, live_tensors):
                _store(roots, path, tensor)
            if module is not None:
                result = torch.func.functional_call(
                    module, dict(zip(names, state)), args, kwargs, strict=False)
            else:
                result = converted(*args, **kwargs)
            changed = _changed_objects(self.__name__, roots, before)
            out_info["changed"] = [path for path, _ in changed]
            out_leaves, out_info["spec"] = pytree.tree_flatten(result)
            for leaf in out_leaves:
                if is_undefined(leaf):  # Python would have raised at the read
                    raise UnboundLocalError(
                        f"{self.__name__} returns local variable '{leaf.name}', which has no "
                        "value on the path taken")
            out_info["constants"] = [_TENSOR if isinstance(o, torch.Tensor) else o
                                     for o in out_leaves]
            return ([o for o in out_leaves if isinstance(o, torch.Tensor)]
                    + [tensor for _, tensor in changed])

        example = [leaves[i] for i in tensor_slots]
        if self._state is not None:
            example = self._state.read() + example
        call_roots = (*pytree.tree_unflatten(list(leaves), signature.treespec), bound_self)
        mode = "symbolic" if self.dynamic else "fake"
        live = []
        while True:
            traced = functools.partial(flat_function, live)
            if module is not None:
                # functional_call runs module.forward: route it through the converted forward.
                traced = _with_converted_forward(module, converted, traced)
            # The tensors at changed paths are read on every call (see NOTE [changed
            # arguments]); a first trace finds those paths.
            inputs = example + [_follow(call_roots, path)[-1] for path in live]
            inputs = [t.detach() if t.requires_grad else t for t in inputs]
            # Tensors the function reads from globals or closures are real, not fake: make_fx
            # makes them constants of the graph.
            # Lazy graph modules generate their code when first run or shown: fx regenerates
            # the code of every nested subgraph whenever an enclosing one changes, which made
            # code generation half of the time of tracing code with nested staged statements.
            try:
                with tracebacks.quiet_meta_failures(), _use_lazy_graph_module(True), \
                        grad_mode.RecordGradMode(), specialize.tracing(plan) as guards:
                    graph_module = make_fx(traced, tracing_mode=mode,
                                           _allow_non_fake_inputs=True)(*inputs)
                grad_mode.raise_refusal()
            finally:
                if "undo" in out_info:  # the call's objects must not keep the trace's values
                    roots, before, stored = out_info.pop("undo")
                    for path in dict.fromkeys(stored + out_info.get("changed", [])):
                        _restore(roots, path, before)
            reread = [p for p in out_info["changed"]
                      if p not in live and isinstance(_follow_or_none(call_roots, p), torch.Tensor)]
            if not reread:
                break
            live = live + reread
        with _use_lazy_graph_module(True):
            graph_module = graph_passes.clean_up(graph_module, is_impure=graph_passes.has_effects)
        _check_no_trace_values(graph_module, self.__name__)
        # Once each, outermost first (a module's code generation marks its children stale).
        # Dynamo, which the inductor backend and users' torch.compile run, refuses a lazy one.
        for submodule in graph_module.modules():
            _LazyGraphModule.force_recompile(submodule)
        return ConcreteFunction(graph_module, signature, tensor_slots, out_info["spec"],
                                out_info["constants"], self.__name__, state=self._state,
                                backend=self.backend, input_specs=self.input_signature,
                                binder=self._bind, changed=out_info["changed"], live=live,
                                bound_self=bound_self, specialized=guards[0], guards=guards[1])

    def export(self, *args, **kwargs) -> torch.export.ExportedProgram:
        """The converted function as a `torch.export.ExportedProgram`, traced on `args`.

        Staged control flow stays `cond` / `while_loop` in the program, which
        `torch.export.save` / `load` round-trip and which runs without autoconv or the source.
        With `dynamic=True` or `None` sizes in `input_signature`, tensor sizes are left free.
        Without arguments, a Function with `input_signature` exports for its specs.
        """
        if not args and not kwargs and self.input_signature is not None:
            args = tuple(spec.example() for spec in self.input_signature)
        converted = self._converted_callable()
        root = _Exportable(converted, self._module)
        dynamic_shapes = None
        if self.dynamic:
            auto = torch.export.Dim.AUTO
            dynamic_shapes = (tuple(
                {d: auto for d in range(a.dim())} if isinstance(a, torch.Tensor) else None
                for a in args),) if not kwargs else None
        try:
            with tracebacks.quiet_meta_failures():
                program = torch.export.export(root, args, kwargs or None, strict=False,
                                              dynamic_shapes=dynamic_shapes)
        except Exception as error:
            raise tracebacks.for_user(error, f"exporting {self.__name__}")  # noqa: B904
        _check_no_trace_values(program.graph_module, self.__name__)
        for name, value in {**program.constants, **program.state_dict}.items():
            if _is_trace_value(value):
                raise RuntimeError(
                    f"autoconv internal error: exporting {self.__name__} left a value of the "
                    f"trace ({type(value).__name__}) in the program as {name}. This is a bug in "
                    "autoconv; please report it with this function.")
        return program

    def __repr__(self) -> str:
        return f"<autoconv.Function {self.__name__} ({self.trace_count} traces)>"


def _is_trace_value(value) -> bool:
    from torch._subclasses.functional_tensor import FunctionalTensor

    return isinstance(value, (torch._subclasses.FakeTensor, FunctionalTensor))


def _check_no_trace_values(graph_module, name) -> None:
    """Raise if a value of the trace (a fake or functional tensor) became a constant of the
    graph or any of its subgraphs: replaying it would return that value, not a result.

    A backstop for bugs in autoconv: no user code should reach it.
    """
    for module in graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op != "get_attr":
                continue
            value = getattr(module, node.target, None)
            if _is_trace_value(value):
                users = [u.meta.get("stack_trace") for u in node.users]
                where = next((u for u in users if u), "").strip().splitlines()
                raise RuntimeError(
                    f"autoconv internal error: tracing {name} left a value of the trace "
                    f"({type(value).__name__}) as the graph constant {node.target}"
                    + (f", used at {where[-2].strip()}" if len(where) >= 2 else "")
                    + ". This is a bug in autoconv; please report it with this function.")


def _walk_tensors(value, path, seen, out):
    """Append (path, tensor) for the tensors reachable from `value` through dicts, lists,
    tuples and the attributes of plain objects; a path is a tuple of ("item", key) /
    ("attr", name) steps."""
    if isinstance(value, torch.Tensor):
        out.append((path, value))
        return
    if id(value) in seen or isinstance(value, (str, bytes, int, float)):
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        # Plain attributes (`self.total = t`) and submodules; parameters and buffers are the
        # graph's inputs already (_ModuleState).
        for k, v in vars(value).items():
            if not k.startswith("_"):
                _walk_tensors(v, path + (("attr", k),), seen, out)
        for k, v in value._modules.items():
            _walk_tensors(v, path + (("attr", k),), seen, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_tensors(v, path + (("item", k),), seen, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk_tensors(v, path + (("item", i),), seen, out)
    elif hasattr(value, "__dict__") and type(value).__module__ not in ("builtins", "types"):
        for k, v in vars(value).items():
            _walk_tensors(v, path + (("attr", k),), seen, out)


def _tensors_in(roots) -> dict:
    """{path: tensor} for the tensors reachable from a call's (args, kwargs, bound self)."""
    out = []
    seen = set()
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, out)
    return dict(out)


def _path_text(path) -> str:
    root = ("args", "kwargs", "self")[path[0][1]]
    return root + "".join(f".{key}" if kind == "attr" else f"[{key!r}]" for kind, key in path[1:])


def _changed_objects(name, roots, before) -> list:
    """[(path, tensor)] for the traced tensors the call stored into objects its caller owns
    (an argument's attribute or item, or the bound method's `self`).

    NOTE [changed arguments]: the graph returns them as extra outputs, and every call writes
    them back along the same path into that call's objects (`ConcreteFunction._write_back`),
    as Python would have changed them. A tuple's item cannot be written: refused.
    """
    changed = []
    for path, tensor in _tensors_in(roots).items():
        if before.get(path) is tensor or not isinstance(tensor, torch._subclasses.FakeTensor):
            continue
        if isinstance(_follow(roots, path[:-1])[-1], tuple):
            raise StagingError(
                "function",
                f"{name} stores a traced tensor in {_path_text(path)}, an item of a tuple, "
                "which autoconv cannot update on each call",
                f"Return the new value from {name} and assign it in the caller")
        changed.append((path, tensor))
    return changed


def _follow(roots, path) -> list:
    """The objects along `path` from `roots`, the roots tuple first."""
    out = [roots]
    value = roots
    for kind, key in path:
        value = getattr(value, key) if kind == "attr" else value[key]
        out.append(value)
    return out


def _follow_or_none(roots, path):
    try:
        return _follow(roots, path)[-1]
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _store(roots, path, value) -> None:
    owner = _follow(roots, path[:-1])[-1]
    kind, key = path[-1]
    if kind == "attr":
        setattr(owner, key, value)
    else:
        owner[key] = value


def _restore(roots, path, before) -> None:
    """Put back what `path` held before the trace (the trace's objects must not keep fakes)."""
    owner = _follow(roots, path[:-1])[-1]
    kind, key = path[-1]
    if path in before:
        _store(roots, path, before[path])
    elif kind == "attr":
        delattr(owner, key)
    else:
        del owner[key]


class _Exportable(torch.nn.Module):
    """The module torch.export traces: calls the converted function (or converted forward)."""

    def __init__(self, converted, module: torch.nn.Module | None):
        super().__init__()
        self.fn = converted
        if module is not None:  # registered, so its parameters and buffers are the program's
            self.module = module

    def forward(self, *args, **kwargs):
        if getattr(self, "module", None) is not None:
            return _with_converted_forward(self.module, self.fn, self.module)(*args, **kwargs)
        return self.fn(*args, **kwargs)


def _with_converted_forward(module, converted, flat_function):
    def traced(*args, **kwargs):
        own = module.__dict__.get("forward")
        module.forward = converted
        try:
            with converted_submodules(module):  # reached from torch's forward (nn.Sequential)
                return flat_function(*args, **kwargs)
        finally:
            if own is None:
                del module.forward
            else:
                module.forward = own

    return traced
