"""Calls of a custom `torch.autograd.Function` (`Fn.apply(x)`) in traced code, kept as calls.

NOTE [custom autograd Functions]
autoconv traces its graph with make_fx on detached inputs, below the Autograd key: `Fn.apply`
ran the forward's ops like any others, the graph recorded them, and the replay (python and fx
backends) differentiated those ops instead of calling `Fn.backward`. Silently wrong gradients
(tester t13 repro 13: a gradient-reversal layer gave +g for -g, a straight-through `round`
gave 0 for g). While autoconv traces, converted code's `Fn.apply(...)` becomes one node,
`autoconv.function_apply(tensors, key)`:

* its Autograd kernel, outside autoconv's trace (the replay, on real tensors; or torch's own
  tracing of a cond / while_loop body for its autograd under the fx backend) calls `Fn.apply`
  itself, so that autograd records `Fn.backward` exactly as in Python;
* while autoconv traces, it goes below autograd, where make_fx records the node, and the fake
  kernel runs the forward on the trace's fake tensors for the results' shapes.

`key` indexes a table of this process holding the Function, the call's structure and its
non-tensor arguments (constants of the graph, as any Python value the trace reads). A forward
that writes into an argument in place (`ctx.mark_dirty`) is refused: the node is taken for
a pure function.

Under torch.compile the call is left to dynamo, which traces `Fn.apply` with its backward;
under torch.export it is left to torch, which keeps the forward's ops, as it does for the same
code without autoconv (an exported program is for inference).
"""

from __future__ import annotations

import threading

import torch
from torch.utils import _pytree as pytree

from ..errors import StagingError, user_location
from . import grad_mode

__all__ = ["apply", "FUNCTION_APPLY", "is_function_class"]

_library = torch.library.Library("autoconv", "FRAGMENT")  # noqa: TOR901 - kernels below
_library.define("function_apply(Tensor[] tensors, int key) -> Tensor[]")
FUNCTION_APPLY = torch.ops.autoconv.function_apply.default


class _Call:
    """One call site's Function and the structure of its arguments and results."""

    def __init__(self, function, spec, constants, location):
        self.function = function
        self.spec = spec  # of (args, kwargs)
        self.constants = constants  # the leaves, None where a tensor goes
        self.location = location
        self.out_spec = None  # of the forward's results, known once the fake kernel ran
        self.out_constants = None  # the non-tensor results, None where a tensor goes


_calls: list[_Call] = []
_lock = threading.Lock()


def is_function_class(value) -> bool:
    """Whether `value` is a subclass of `torch.autograd.Function` (the class, not a ctx).

    Under dynamo, any class: dynamo can tell a Function class from others by none of issubclass,
    its metaclass or its `__mro__`, and traces `Fn.apply` itself (another class's static
    `apply` is then traced by dynamo unconverted)."""
    if torch.compiler.is_dynamo_compiling():
        return isinstance(value, type)
    return isinstance(value, torch.autograd.function.FunctionMeta)


def apply(function, args, kwargs):
    """`function.apply(*args, **kwargs)`; while autoconv traces, one `function_apply` node
    whose replay calls `function.apply` (NOTE [custom autograd Functions])."""
    if torch.compiler.is_dynamo_compiling() or not grad_mode.recording():
        return function.apply(*args, **kwargs)
    leaves, spec = pytree.tree_flatten((args, kwargs))
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    constants = [None if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
    location = user_location()
    if any(isinstance(c, (torch.SymInt, torch.SymFloat, torch.SymBool)) for c in constants):
        raise StagingError.at(
            location, "call",
            f"{function.__name__}.apply is given a number computed from traced tensors or "
            "sizes; autoconv keeps the call for its backward, with Python arguments as "
            "constants",
            "Pass the number as a tensor (torch.as_tensor(n)), or compute it outside the "
            "autoconv function")
    with _lock:
        key = len(_calls)
        _calls.append(_Call(function, spec, constants, location))
    results = FUNCTION_APPLY(tensors, key)
    call = _calls[key]
    results = iter(results)
    out = [next(results) if c is None else c for c in call.out_constants]
    return pytree.tree_unflatten(out, call.out_spec)


def _arguments(call: _Call, tensors):
    tensors = iter(tensors)
    leaves = [next(tensors) if c is None else c for c in call.constants]
    return pytree.tree_unflatten(leaves, call.spec)


def _apply_real(tensors, key):
    call = _calls[key]
    args, kwargs = _arguments(call, tensors)
    out = pytree.tree_leaves(call.function.apply(*args, **kwargs))
    return [o for o in out if isinstance(o, torch.Tensor)]


def _autograd_kernel(tensors, key):
    if grad_mode.recording():
        with torch._C._AutoDispatchBelowAutograd():
            return FUNCTION_APPLY(tensors, key)
    return _apply_real(tensors, key)


def _forward_below_autograd(tensors, key):
    """The forward, for the results' shapes (fake tensors) or values without autograd."""
    call = _calls[key]
    args, kwargs = _arguments(call, tensors)
    versions = [t._version for t in tensors]
    with torch.no_grad():
        out = call.function.apply(*args, **kwargs)
    if [t._version for t in tensors] != versions:
        raise StagingError.at(
            call.location, "call",
            f"{call.function.__name__}.forward writes into an argument in place; autoconv "
            "keeps the call as one node of the graph (for its backward), which must not "
            "change its inputs",
            "Return a new tensor from the forward (x.clone() first) and assign it")
    leaves, out_spec = pytree.tree_flatten(out)
    if call.out_spec is None:
        call.out_spec = out_spec
        call.out_constants = [None if isinstance(o, torch.Tensor) else o for o in leaves]
    # A result that is an argument itself would be the same tensor object as the node's input,
    # which the tracer could not tell from it.
    return [o.clone() if any(o is t for t in tensors) else o
            for o in leaves if isinstance(o, torch.Tensor)]


_library.impl("function_apply", _autograd_kernel, "Autograd")
_library.impl("function_apply", _forward_below_autograd, "CompositeExplicitAutograd")
torch.library.register_fake("autoconv::function_apply", _forward_below_autograd,
                            lib=_library)
