"""`t.grad` read by converted code while a graph is traced.

A gradient autoconv's trace cannot read right is refused at the read: one of a tensor from
outside the function that is no guarded place (the parameters of a module argument: the graph
would hold the first call's gradient as a constant).

NOTE [gradients of arguments] (autoconv/capture.py) makes the `.grad` of a tensor argument an
input of autoconv's graph, and NOTE [places held by objects] (autoconv/captures.py) guards the
gradient of a tensor read from outside. An exported program has no `.grad` of its inputs:
torch put the gradient of a traced argument into the program as a constant of the trace
("We found a fake tensor in the exported program constant's list"), with no line. Converted
code asks `grad_(t)` before each read, which refuses that at the line.

NOTE [backward in staged bodies]
A staged body is traced once into a graph. `loss.backward()` there fills `.grad` of the leaves
it reaches: a leaf the body made (`y = x.detach().requires_grad_()`) gets a gradient of the
body's graph, which the body may read and use (replay is right). A leaf from before the
statement does not: the body's copy of a loop variable is no leaf (its `.grad` stayed None,
and `x - lr * x.grad` raised Python's "unsupported operand type(s) for *: 'float' and
'NoneType'" at the user's line, tester 2026-12-02's gradient-descent tutorial loop), and a
tensor from outside the body (a parameter, a global) got a traced tensor as its `.grad`, a
FakeTensor left in the caller's model. Converted code calls `backward_(loss.backward, ...)`,
which refuses a backward that would reach such a leaf, at its line, with the
`torch.autograd.grad` form that stages (its gradient is a value of the body's graph).
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from torch._subclasses.fake_tensor import is_fake

from .errors import StagingError

__all__ = ["backward_", "checked_gradients", "grad_", "guarded_gradients"]

# The ids of the gradients autoconv's trace guards as places (captures.py), while it traces;
# None otherwise (torch.export, other tracers: their constants are theirs)
_guarded = [None]
# The ids of the parameters whose `.grad` autoconv's trace checks at its end (NOTE [gradients
# left by the call] in autoconv/capture.py), while it runs the function
_checked = [frozenset()]


@contextlib.contextmanager
def checked_gradients(ids):
    """Within it, a backward may store the gradients of the tensors whose ids are in `ids`
    (NOTE [backward into gradients from outside])."""
    before, _checked[0] = _checked[0], ids
    try:
        yield
    finally:
        _checked[0] = before


@contextlib.contextmanager
def guarded_gradients(ids):
    """Within it, `.grad` of a real tensor is refused unless its id is in `ids` (the
    gradients autoconv's trace guards: NOTE [gradients of arguments] in autoconv/capture.py)."""
    before, _guarded[0] = _guarded[0], ids
    try:
        yield
    finally:
        _guarded[0] = before


def grad_(value, /) -> None:
    """None, or a StagingError at the line for `value.grad` of a traced argument under
    torch.export. Converted code reads `(ac.grad_(t), t.grad)[1]`: the read itself stays in the
    user's frame, where dynamo follows it.

    Raises:
        StagingError: for `.grad` of a traced tensor that holds one, under torch.export.
    """
    if torch.compiler.is_dynamo_compiling():
        return None
    if _guarded[0] is not None and isinstance(value, torch.Tensor) and not is_fake(value) \
            and value.grad is not None and id(value.grad) not in _guarded[0]:
        raise StagingError(
            "function", "it reads `.grad` of a tensor from outside the function that autoconv "
            "does not guard (a parameter of a module passed in): the graph would hold this "
            "call's gradient as a constant, read and updated again on later calls",
            "Pass the gradients in as arguments (`clip([p.grad for p in model.parameters()])`) "
            "and update them in place there")
    if not torch.compiler.is_exporting():
        return None
    if isinstance(value, torch.Tensor) and is_fake(value) and value.grad is not None:
        raise StagingError(
            "function", "it reads `.grad` of an argument under torch.export: an exported "
            "program takes tensors, not their gradients (torch would keep the gradient of the "
            "trace as a constant)",
            "Pass the gradients in as arguments (`clip([p.grad for p in params])`) and update "
            "them in place there, or use the autoconv Function, whose graph reads `.grad`")
    return None


_TENSOR_BACKWARD = torch.Tensor.backward


def backward_(method, /, *args, **kwargs):
    """`method(*args, **kwargs)`: converted code's `t.backward(...)` and
    `torch.autograd.backward(...)`, refused inside a staged body where it would fill the
    gradient of a tensor from before the statement (NOTE [backward in staged bodies]).

    Raises:
        StagingError: for such a call while a staged body is traced.
    """
    if torch.compiler.is_dynamo_compiling():  # (dynamo refuses backward() in bodies itself)
        return method(*args, **kwargs)
    from .staging.context import in_staged_body, staged_statement

    from .staging import grad_mode

    in_body = in_staged_body()
    if not in_body and not grad_mode.recording():  # (plain Python, or torch.export's trace)
        return method(*args, **kwargs)
    if getattr(method, "__func__", None) is _TENSOR_BACKWARD:
        roots = method.__self__
        bound = inspect.signature(_TENSOR_BACKWARD).bind(roots, *args, **kwargs)
    elif method is torch.autograd.backward:
        bound = inspect.signature(torch.autograd.backward).bind(*args, **kwargs)
        roots = bound.arguments.get("tensors")
    else:  # another class's `backward` method
        return method(*args, **kwargs)
    inputs = bound.arguments.get("inputs")
    targets = _leaves(roots) if inputs is None else _tensors(inputs)
    if not in_body:
        # autoconv's trace, outside staged bodies: the function's own tensors and arguments
        # are the trace's; a tensor from outside it is no node of the graph
        if all(_traced(t) for t in targets):
            return method(*args, **kwargs)
        if _stored_as_values(roots, bound, targets):
            return None
        raise StagingError(
            "function",
            "`.backward()` fills `.grad` of a tensor from outside the function (a parameter of "
            "a module it reads, a global), and autoconv traces the function once into a graph: "
            "the gradient would be a value of the trace left in `.grad`, not one computed on "
            "each call",
            "Call backward() on the autoconv function's result, outside it, or compute the "
            "gradient as a value with torch.autograd.grad and return it")
    if any(not _made_in_body(t) for t in targets):
        raise StagingError(
            staged_statement() or "statement",
            "`.backward()` inside its body fills `.grad` of a tensor from before the statement "
            "(a variable the statement carries, an argument, a parameter or another tensor "
            "from outside), and a staged body is traced once into a graph: the body's copy of "
            "a carried variable is no leaf (its `.grad` stays None), and the gradient of a "
            "tensor from outside would be a value of the graph being traced",
            "Compute the gradient as a value with torch.autograd.grad, of a loss the body "
            "computes from the tensor: `(g,) = torch.autograd.grad(loss_of(x), x)`, then "
            "`x = (x - lr * g).detach().requires_grad_()` (staged in autoconv's replay and "
            "torch.export; under torch.compile differentiate outside the statement), or call "
            "backward() outside the statement")
    return method(*args, **kwargs)


# NOTE [backward into gradients from outside]
# `loss.backward()` in the function (not in a staged body) whose leaves are tensors from outside
# it (a module argument's parameters, `self`'s) filled their `.grad` through autograd's engine,
# behind the trace's back: a value of the trace left in the caller's `.grad`, so it was refused,
# and the training step practitioners write (`loss.backward(); opt.step(); opt.zero_grad()`)
# could not be traced (optim47). Where every such leaf has no gradient yet (what
# `zero_grad()`, torch's default `set_to_none=True`, leaves), Python's backward stores the
# gradient as a new tensor: the same as `(g,) = torch.autograd.grad(loss, p)` then `p.grad =
# g`, which the trace records as a store into the caller's object and every call repeats
# (NOTE [changed arguments] in autoconv/capture.py), and the trace checks that the call leaves
# each `.grad` as it found it (NOTE [gradients left by the call] there). The backward is traced
# so where each leaf is such a parameter (or the trace's own). A leaf that holds a gradient
# (Python adds into that tensor in place), a global tensor and `create_graph=True` are still
# refused.
def _stored_as_values(roots, bound, targets) -> bool:
    """Run the backward as `torch.autograd.grad`, storing each leaf's gradient into its
    `.grad`, where that is what Python's backward does (NOTE [backward into gradients from
    outside]); False where it is not."""
    arguments = bound.arguments
    if arguments.get("create_graph") or arguments.get("inputs") is not None \
            or any(t.grad is not None for t in targets) \
            or not all(_traced(t) or id(t) in _checked[0] for t in targets):
        return False
    outputs = _tensors(roots)
    given = arguments.get("gradient", arguments.get("grad_tensors"))
    grad_outputs = None if given is None else _tensors(given)
    retain = arguments.get("retain_graph")
    grads = torch.autograd.grad(outputs, targets, grad_outputs=grad_outputs,
                                retain_graph=bool(retain), allow_unused=True)
    for target, grad in zip(targets, grads):
        if grad is not None:
            target.grad = grad
    return True


def _tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for t in value if isinstance(t, torch.Tensor)]


def _leaves(roots) -> list:
    """The leaves requiring grad that a backward from `roots` accumulates into."""
    leaves, seen = [], set()
    todo = []
    for t in _tensors(roots):
        if t.grad_fn is None:
            if t.requires_grad:
                leaves.append(t)
        else:
            todo.append(t.grad_fn)
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # AccumulateGrad
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def _traced(t: torch.Tensor) -> bool:
    """Whether `t` is a node of the graph being traced (not a tensor from outside it)."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    tracer = getattr(get_proxy_mode(), "tracer", None)
    return tracer is not None and get_proxy_slot(t, tracer, None) is not None


def _made_in_body(t: torch.Tensor) -> bool:
    """Whether `t` was computed by the body being traced (a node of its graph), not an input of
    it nor a tensor from outside."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    tracer = getattr(get_proxy_mode(), "tracer", None)
    slot = get_proxy_slot(t, tracer, None) if tracer is not None else None
    return slot is not None and slot.proxy.node.op == "call_function"
