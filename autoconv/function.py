"""`Function` (one Python function, many traced signatures) and `ConcreteFunction` (one graph)."""

from __future__ import annotations

import threading
import warnings

import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

from .signature import Signature, TensorSpec, signature_of

__all__ = ["Function", "ConcreteFunction", "run_functions_eagerly", "functions_run_eagerly"]

_run_eagerly = False
RETRACE_WARNING_AFTER = 5


def run_functions_eagerly(flag: bool) -> None:
    """Run every `Function` as its plain Python function (for debugging), or stop doing so."""
    global _run_eagerly
    _run_eagerly = bool(flag)


def functions_run_eagerly() -> bool:
    """True while `run_functions_eagerly(True)` is in effect."""
    return _run_eagerly


class ConcreteFunction:
    """One traced graph of a converted function, for one input signature.

    Calling it runs the graph on new tensors of that signature; Python-valued arguments must
    equal the traced ones.
    """

    def __init__(self, graph_module: torch.fx.GraphModule, signature: Signature, tensor_slots,
                 out_spec, out_constants, name: str, module: torch.nn.Module | None = None):
        self.graph_module = graph_module
        self._module = module
        self.signature = signature
        self._tensor_slots = tensor_slots
        self._out_spec = out_spec
        self._out_constants = out_constants
        self.__name__ = name

    @property
    def graph(self) -> torch.fx.Graph:
        """The torch.fx graph; staged control flow shows as higher_order cond / while_loop."""
        return self.graph_module.graph

    @property
    def code(self) -> str:
        """The graph's Python source, for reading."""
        return self.graph_module.code

    def __repr__(self) -> str:
        return f"<ConcreteFunction {self.__name__}{self.signature}>"

    def _run_flat(self, tensors):
        outputs = iter(self.graph_module(*tensors))
        leaves = [next(outputs) if c is _TENSOR else c for c in self._out_constants]
        return pytree.tree_unflatten(leaves, self._out_spec)

    def __call__(self, *args, **kwargs):
        signature, leaves = signature_of(args, kwargs)
        if signature != self.signature:
            raise TypeError(
                f"{self.__name__} was traced for {self.signature}, got {signature}; call the "
                "Function instead, which traces new signatures"
            )
        tensors = [leaves[i] for i in self._tensor_slots]
        if self._module is not None:  # parameters and buffers are read live, as by Function
            tensors = [*self._module.parameters(), *self._module.buffers(), *tensors]
        return self._run_flat(tensors)


_TENSOR = object()  # marks an output leaf that comes from the graph
_CONTROL_FLOW = (torch.ops.higher_order.cond, torch.ops.higher_order.while_loop)


def _is_impure(node: torch.fx.Node) -> bool:
    # A cond / while_loop without used outputs may still print or assert in its bodies.
    return node.is_impure() or (node.op == "call_function" and node.target in _CONTROL_FLOW)


class Function:
    """A Python function (or `nn.Module`) that converts once and traces once per signature.

    Created by `autoconv(fn)`. Calling it looks up the `ConcreteFunction` for the arguments'
    signature (tensors by shape, dtype, device, requires_grad; other values by value), tracing
    a new one when the signature is new, and runs its graph.
    """

    def __init__(self, fn, *, dynamic: bool = False):
        self.python_function = fn
        self.dynamic = dynamic
        self._module = fn if isinstance(fn, torch.nn.Module) else None
        self._converted = None
        self._cache: dict[Signature, ConcreteFunction] = {}
        self._lock = threading.Lock()
        self.trace_count = 0
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    @property
    def concrete_functions(self) -> list[ConcreteFunction]:
        """The graphs traced so far, one per signature."""
        return list(self._cache.values())

    def _converted_callable(self):
        if self._converted is None:
            from .api import convert

            if self._module is not None:
                self._converted = convert(self._module)
            else:
                self._converted = convert(self.python_function)
        return self._converted

    def __call__(self, *args, **kwargs):
        if _run_eagerly:
            return self.python_function(*args, **kwargs)
        signature, leaves = signature_of(args, kwargs)
        concrete = self._cache.get(signature)
        if concrete is None:
            concrete = self._trace(signature, leaves)
        return concrete._run_flat(self._tensor_leaves(concrete, leaves))

    def _tensor_leaves(self, concrete, leaves):
        tensors = [leaves[i] for i in concrete._tensor_slots]
        if self._module is not None:
            tensors = [*self._module.parameters(), *self._module.buffers(), *tensors]
        return tensors

    def get_concrete_function(self, *args, **kwargs) -> ConcreteFunction:
        """The `ConcreteFunction` for these arguments (tensors or `TensorSpec`s), traced if new."""
        signature, leaves = signature_of(args, kwargs)
        leaves = [leaf.example() if isinstance(leaf, TensorSpec) else leaf for leaf in leaves]
        return self._cache.get(signature) or self._trace(signature, leaves)

    def _trace(self, signature: Signature, leaves) -> ConcreteFunction:
        with self._lock:
            concrete = self._cache.get(signature)
            if concrete is not None:
                return concrete
            concrete = self._trace_locked(signature, leaves)
            self._cache[signature] = concrete
            self.trace_count += 1
            if self.trace_count == RETRACE_WARNING_AFTER:
                warnings.warn(
                    f"{self.__name__} has been traced {self.trace_count} times; each new "
                    "signature traces again. Pass tensors instead of changing Python values, or "
                    "use dynamic=True for changing sizes.", stacklevel=3)
            return concrete

    def _trace_locked(self, signature, leaves) -> ConcreteFunction:
        converted = self._converted_callable()
        tensor_slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        module = self._module
        names = []
        if module is not None:
            names = [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]
        out_info = {}

        def flat_function(*tensors):
            state, inputs = tensors[: len(names)], tensors[len(names):]
            full = list(leaves)
            for slot, tensor in zip(tensor_slots, inputs):
                full[slot] = tensor
            args, kwargs = pytree.tree_unflatten(full, signature.treespec)
            if module is not None:
                result = torch.func.functional_call(
                    module, dict(zip(names, state)), args, kwargs, strict=False)
            else:
                result = converted(*args, **kwargs)
            out_leaves, out_info["spec"] = pytree.tree_flatten(result)
            out_info["constants"] = [_TENSOR if isinstance(o, torch.Tensor) else o
                                     for o in out_leaves]
            return [o for o in out_leaves if isinstance(o, torch.Tensor)]

        if module is not None:
            # functional_call runs module.forward: route it through the converted forward.
            flat_function = _with_converted_forward(module, converted, flat_function)
        example = self._tensor_leaves_for_trace(leaves, tensor_slots)
        mode = "symbolic" if self.dynamic else "fake"
        # Tensors the function reads from globals or closures are real, not fake: make_fx
        # makes them constants of the graph.
        graph_module = make_fx(flat_function, tracing_mode=mode,
                               _allow_non_fake_inputs=True)(*example)
        graph_module.graph.eliminate_dead_code(is_impure_node=_is_impure)
        graph_module.recompile()
        return ConcreteFunction(graph_module, signature, tensor_slots, out_info["spec"],
                                out_info["constants"], self.__name__, self._module)

    def _tensor_leaves_for_trace(self, leaves, tensor_slots):
        tensors = [leaves[i] for i in tensor_slots]
        if self._module is not None:
            tensors = [*self._module.parameters(), *self._module.buffers(), *tensors]
        return [t.detach() if t.requires_grad else t for t in tensors]

    def __repr__(self) -> str:
        return f"<autoconv.Function {self.__name__} ({self.trace_count} traces)>"


def _with_converted_forward(module, converted, flat_function):
    def traced(*tensors):
        own = module.__dict__.get("forward")
        module.forward = converted
        try:
            return flat_function(*tensors)
        finally:
            if own is None:
                del module.forward
            else:
                module.forward = own

    return traced
