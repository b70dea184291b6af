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
code without autoconv (an exported program is for inference), with `.data` read as a traced
`detach()` (`_DataAsDetach`) and its results marked for the grad-mode checks of a staged `if`
(NOTE [custom autograd Functions in branches] in branch_grads.py).
"""

from __future__ import annotations

import threading

import torch
from torch.utils import _pytree as pytree

from ..errors import StagingError, user_location
from . import branch_grads, grad_mode, inner_gradients, tensor_reads

__all__ = ["apply", "FUNCTION_APPLY", "is_function_class"]

_library = torch.library.Library("autoconv", "FRAGMENT")  # noqa: TOR901 - kernels below
_library.define("function_apply(Tensor[] tensors, int key) -> Tensor[]")
FUNCTION_APPLY = torch.ops.autoconv.function_apply.default


# Where a call's leaves hold a tensor. Not None: `None` is an argument too (torchdiffeq's
# `OdeintAdjointMethod.apply(shapes, func, y0, t, ..., event_fn, ...)` with `event_fn=None`, a
# forward's `return y, None`), which was taken for a tensor's place: StopIteration, or results
# given in the wrong places.
TENSOR = object()


class _Call:
    """One call site's Function and the structure of its arguments and results."""

    def __init__(self, function, spec, constants, location):
        self.function = function
        self.spec = spec  # of (args, kwargs)
        self.constants = constants  # the leaves, TENSOR where a tensor goes
        self.location = location
        self.out_spec = None  # of the forward's results, known once the fake kernel ran
        self.out_constants = None  # the non-tensor results, TENSOR where a tensor goes


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
    if torch.compiler.is_dynamo_compiling():
        return function.apply(*args, **kwargs)
    if not grad_mode.recording():
        from torch.fx.experimental import proxy_tensor

        if proxy_tensor.get_proxy_mode() is None:
            return function.apply(*args, **kwargs)
        # NOTE [gradients inside the function through a staged body]
        inner_gradients.note_function(function, user_location(), kept=False)
        with _DataAsDetach():
            results = function.apply(*args, **kwargs)
        if torch.is_grad_enabled():
            # (under torch.export: NOTE [custom autograd Functions in branches])
            branch_grads.mark_function_results(results, (args, kwargs))
        return results
    leaves, spec = pytree.tree_flatten((args, kwargs))
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    constants = [TENSOR if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
    location = user_location()
    inner_gradients.note_function(function, location, kept=True)
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
    out = [next(results) if c is TENSOR else c for c in call.out_constants]
    return pytree.tree_unflatten(out, call.out_spec)


class _DataAsDetach(torch.overrides.TorchFunctionMode):
    """`x.data` read as `x.detach()`, for a Function's forward traced by torch (NOTE [custom
    autograd Functions]): a write through `.data` (torchdiffeq's `_UncheckedAssign.forward`,
    `scratch.data[index] = value`, which hides the write from autograd's version counter) goes
    to a tensor make_fx never sees, and torch.export refused the program ("We found a fake
    tensor in the exported program constant's list"), without autoconv too. `detach()` is the
    same memory, traced: the write is recorded. The two differ only in the version counter,
    which a traced program does not keep."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # (a getter's method-wrapper is made anew on each read: compared, not identical)
        if func == _DATA_GET and len(args) == 1 and isinstance(args[0], torch.Tensor):
            with torch._C.DisableTorchFunctionSubclass():
                return args[0].detach()
        return func(*args, **(kwargs or {}))


_DATA_GET = torch.Tensor.data.__get__


def _arguments(call: _Call, tensors):
    tensors = iter(tensors)
    leaves = [next(tensors) if c is TENSOR else c for c in call.constants]
    return pytree.tree_unflatten(leaves, call.spec)


def _apply_real(tensors, key):
    call = _calls[key]
    args, kwargs = _arguments(call, tensors)
    out = pytree.tree_leaves(call.function.apply(*args, **kwargs))
    return [o for o in out if isinstance(o, torch.Tensor)]


def _autograd_kernel(tensors, key):
    if grad_mode.recording():
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            # NOTE [gradients through a Function taken while tracing]
            return list(_TracedApply.apply(key, *tensors))
        with torch._C._AutoDispatchBelowAutograd():
            return FUNCTION_APPLY(tensors, key)
    return _apply_real(tensors, key)


# NOTE [gradients through a Function taken while tracing]
# `y = x.clone().requires_grad_(True)`, `out = Fn.apply(y)`, then `torch.autograd.grad(
# out.sum(), y)` (or `.backward()`) inside the traced function: autograd runs while make_fx
# traces, on the trace's tensors, and make_fx records the backward's ops into the graph (so
# does torch's tracing of a `cond`'s backward). The node, run below autograd, left the results
# without a grad_fn: the gradient was 0 through a staged `if` ([0, 0, 0] for Python's
# [4, -8, 12]) and torch's "element 0 of tensors does not require grad" without it (brk54).
# Where an argument requires grad while tracing, the node is recorded inside `_TracedApply`,
# whose backward calls the Function again on its saved arguments and differentiates that
# call: `Fn.backward` runs (with the ctx its forward filled), and its ops are what make_fx
# records, as Python computes them. The result is still the node, so a gradient taken outside
# the function at the replay calls `Fn.apply` itself (NOTE [custom autograd Functions]).
class _TracedApply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, key, *tensors):
        ctx.key = key
        ctx.save_for_backward(*tensors)
        with torch._C._AutoDispatchBelowAutograd():
            return tuple(FUNCTION_APPLY(list(tensors), key))

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        create_graph = torch.is_grad_enabled()
        # (grad mode switched unseen by RecordGradMode: the backward's mode is autograd's,
        # not the traced function's, and must not enter the graph as a `_set_grad_enabled`)
        with torch._C.DisableTorchFunction():
            torch._C._set_grad_enabled(True)
        try:
            # NOTE [a Function's gradient differentiated again]
            inputs = [t.view_as(t) if need and t.requires_grad
                      else t.detach().requires_grad_(need) for t, need in zip(tensors, needs)]
            with _NoDraws(ctx.key):  # NOTE [a Function's forward run again for its backward]
                outs = _apply_real(inputs, ctx.key)
        finally:
            with torch._C.DisableTorchFunction():
                torch._C._set_grad_enabled(create_graph)
        pairs = [(o, g) for o, g in zip(outs, grads) if o.requires_grad and g is not None]
        wrt = [t for t, need in zip(inputs, needs) if need]
        got = iter(torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                                       allow_unused=True, create_graph=create_graph)
                   if pairs and wrt else [None] * len(wrt))
        return (None, *(next(got) if need else None for need in needs))


# NOTE [a Function's forward run again for its backward]
# `_TracedApply`'s backward runs the Function's forward again (NOTE [gradients through a
# Function taken while tracing]): the graph holds the call's node, which draws when it runs,
# and the forward's ops recorded for the backward, which draw again. A forward that draws
# random numbers (a dropout mask it saves for its backward) gave the gradient another draw's
# mask than the result's: in replay, `g` differed from `out != 0` on every call where
# Python's are equal (err55). The call keeps one node for its result, so the two cannot share
# a draw: a random op in that forward run is refused at the user's `apply` line.
class _NoDraws(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self, key):
        super().__init__()
        self.key = key

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if torch.Tag.nondeterministic_seeded in func.tags:
            call = _calls[self.key]
            raise StagingError.at(
                call.location, "call",
                f"{call.function.__name__}.forward draws random numbers ({func.__name__}) and "
                "a gradient through it is taken inside the function: autoconv's graph runs "
                "the forward again for that backward, which would draw other numbers than the "
                "result's",
                "Take the gradient outside the autoconv function, or draw the random numbers "
                "outside the Function and pass them to `apply` as an argument")
        return func(*args, **(kwargs or {}))


# NOTE [a Function's gradient differentiated again]
# The gradient `Fn.backward` gives must depend on the arguments as Python's does (`3 * x * x *
# g` reads the saved `x`): a gradient of the gradient (`grad(out.sum(), y, create_graph=True)`
# then `grad(g.sum(), y)`) differentiates it again, and so does torch, which traces a staged
# `if`'s backward as a graph of its inputs and differentiates that graph for the second order.
# Called on detached copies, the call's ops read the arguments only through `detach`: the
# second gradient was 0 through a staged `if` ([0, 0, 0] for Python's [6, -12, 18] in replay,
# brk55) and torch's "appears to not have been used in the graph" without it. So the call is
# made on a view of each argument that requires grad, still linked to it; a view, not the
# argument itself, so that one tensor given twice (`Fn.apply(a, a)`) gets each place's part.


def _forward_below_autograd(tensors, key):
    """The forward, for the results' shapes (fake tensors) or values without autograd."""
    call = _calls[key]
    args, kwargs = _arguments(call, tensors)
    versions = [tensor_reads.version_of(t) for t in tensors]
    with torch.no_grad():
        out = call.function.apply(*args, **kwargs)
    if [tensor_reads.version_of(t) for t in tensors] != versions:
        raise StagingError.at(
            call.location, "call",
            f"{call.function.__name__}.forward writes into an argument in place; autoconv "
            "keeps the call as one node of the graph (for its backward), which must not "
            "change its inputs",
            "Return a new tensor from the forward (x.clone() first) and assign it")
    leaves, out_spec = pytree.tree_flatten(out)
    if call.out_spec is None:
        call.out_spec = out_spec
        call.out_constants = [TENSOR if isinstance(o, torch.Tensor) else o for o in leaves]
    # A result that is an argument itself would be the same tensor object as the node's input,
    # which the tracer could not tell from it.
    return [o.clone() if any(o is t for t in tensors) else o
            for o in leaves if isinstance(o, torch.Tensor)]


_library.impl("function_apply", _autograd_kernel, "Autograd")
_library.impl("function_apply", _forward_below_autograd, "CompositeExplicitAutograd")
torch.library.register_fake("autoconv::function_apply", _forward_below_autograd,
                            lib=_library)
