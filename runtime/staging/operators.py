"""The torch operators a staged statement becomes: `cond` and `while_loop`.

Bodies here are plain callables over flat tuples of tensors. `while_loop` passes the carried
tensors and then the loop's read-only tensors (`additional`) to both of its bodies.

Under autoconv's own tracer (make_fx, outside dynamo) the higher-order operators are called
directly: `torch.cond` and `torch.while_loop` would first run dynamo over the bodies, which costs
40-300 ms a statement, while make_fx traces each body itself in a few milliseconds. What dynamo
adds there is lifting the tensors a body reads by closure (a module's parameters, a tensor of an
enclosing body) into operands; make_fx would bake them into the body's graph as constants. So a
direct call looks at the bodies' graphs afterwards, and where one holds a tensor of an enclosing
trace as a constant, it removes the node and calls again with those tensors as extra operands
(the tracer then maps the same tensor objects to the bodies' inputs).
Under dynamo (torch.compile, strict export) dynamo gets the operators.

Under a torch.func transform of concrete tensors (`vmap`, `grad`, with no tracer) every value is
known, so the statement runs as Python: torch 2.13's own rules there would run dynamo (`grad`),
lose all outputs but the first of a `cond` whose predicate is batched, and have no batching rule
for `while_loop` at all (`vmap`). A batched predicate (one truth value per example) selects
per example: an `if` computes both branches and picks with `torch.where`, and a loop runs while
any example's test holds, updating only the examples whose test holds, as `jax.vmap` does.
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.cond import cond_op
from torch._higher_order_ops.while_loop import while_loop as _torch_while_loop
from torch._higher_order_ops.while_loop import while_loop_op
from torch._C._functorch import TransformType
from torch.fx.experimental import proxy_tensor
from torch.utils import _pytree as pytree

from ..errors import StagingError

__all__ = ["cond", "while_loop"]


def cond(pred, true_fn, false_fn, operands):
    """`true_fn(*operands) if pred else false_fn(*operands)` as one `cond` node."""
    operands = tuple(operands)
    # is_dynamo_compiling first: dynamo, which traces this runtime too, folds it and stops there.
    if torch.compiler.is_dynamo_compiling():
        return torch.cond(pred, true_fn, false_fn, operands)
    if _is_batched(pred):
        # vmap, with or without a tracer: both branches run and a select picks per example
        # (under a tracer, torch's own rule would keep only the first output)
        return _select(pred, true_fn(*operands), false_fn(*operands))
    if _concrete_transform():
        return (true_fn if pred else false_fn)(*operands)
    if not _direct():
        return torch.cond(pred, true_fn, false_fn, operands)
    _refuse_transform("if statement", allowed=(TransformType.Vmap,))

    def call(extra):
        n = len(operands)
        return cond_op(pred, _dropping_extra(true_fn, n), _dropping_extra(false_fn, n),
                       operands + extra)

    return _call_lifting_captures(call, torch.ops.higher_order.cond)


def while_loop(cond_fn, body_fn, carried, additional=()):
    """`while cond_fn(*carried, *additional): carried = body_fn(*carried, *additional)` as one
    `while_loop` node."""
    carried, additional = tuple(carried), tuple(additional)
    if torch.compiler.is_dynamo_compiling():
        # Dynamo takes the operator itself, and read-only operands as such: reached by closure
        # instead, they are named after the enclosing bodies' nodes, and nested loops then gave
        # two of a body's inputs one name.
        return while_loop_op(cond_fn, body_fn, carried, additional)
    if _concrete_transform():
        return _masked_loop(cond_fn, body_fn, carried, additional)
    if not _direct():
        return _torch_while_loop(lambda *c: cond_fn(*c, *additional),
                                 lambda *c: body_fn(*c, *additional), carried)
    _refuse_transform("while loop", allowed=())

    def call(extra):
        n = len(carried) + len(additional)
        return while_loop_op(_dropping_extra(cond_fn, n), _dropping_extra(body_fn, n), carried,
                             additional + extra)

    return _call_lifting_captures(call, torch.ops.higher_order.while_loop)


def _direct() -> bool:
    """True when make_fx is tracing (callers have ruled out dynamo)."""
    return (proxy_tensor._CURRENT_MAKE_FX_TRACER is not None
            and proxy_tensor.get_proxy_mode() is not None)


def _concrete_transform() -> bool:
    """True inside a torch.func transform (vmap, grad, jvp) with no tracer or dynamo around it."""
    return (torch._C._functorch.peek_interpreter_stack() is not None
            and proxy_tensor._CURRENT_MAKE_FX_TRACER is None
            and proxy_tensor.get_proxy_mode() is None)


def _refuse_transform(statement, allowed):
    """A StagingError if a torch.func transform that torch 2.13 cannot trace this operator
    through (under make_fx) is active."""
    interpreter = torch._C._functorch.peek_interpreter_stack()
    if interpreter is None or interpreter.key() in allowed:
        return
    name = {TransformType.Vmap: "vmap", TransformType.Grad: "grad"}.get(interpreter.key(),
                                                                       "transform")
    raise StagingError(
        statement,
        f"torch 2.13 cannot trace torch.func.{name} through a staged {statement} under make_fx "
        "or torch.export (the operator has no rule for that transform there)",
        f"Apply torch.func.{name} to concrete tensors (autoconv then runs the statement as "
        "Python), or apply it inside the branch or loop body")


def _is_batched(tensor) -> bool:
    return torch._C._functorch.is_batchedtensor(tensor)


def _any_example(pred) -> bool:
    """Whether `pred` holds for any example of every enclosing vmap."""
    while _is_batched(pred):
        pred = torch._C._functorch.get_unwrapped(pred)
    return bool(pred.any())


def _select(pred, if_true, if_false):
    """Per example: the outputs of `if_true` where `pred` holds, else those of `if_false` (two
    pytrees of tensors of one structure)."""
    true_leaves, spec = pytree.tree_flatten(if_true)
    false_leaves, false_spec = pytree.tree_flatten(if_false)
    for t, f in zip(true_leaves, false_leaves):
        if spec != false_spec or t.dtype != f.dtype or t.shape != f.shape:
            # what torch.cond would refuse; the caller names the variable
            raise TypeError(f"branches give {t.dtype}{tuple(t.shape)} and "
                            f"{f.dtype}{tuple(f.shape)}")
    return pytree.tree_unflatten(
        [torch.where(pred, t, f) for t, f in zip(true_leaves, false_leaves)], spec)


def _masked_loop(cond_fn, body_fn, carried, additional):
    pred = cond_fn(*carried, *additional)
    while _any_example(pred):
        # the test may become batched after an iteration (a break flag set per example)
        updated = tuple(body_fn(*carried, *additional))
        carried = tuple(_select(pred, updated, carried)) if _is_batched(pred) else updated
        pred = cond_fn(*carried, *additional)
    return carried


def _dropping_extra(fn, count):
    # The extra operands are there only so the tracer maps the captured tensors to inputs of the
    # body; the body itself still reads them by closure.
    return lambda *args: fn(*args[:count])


def _call_lifting_captures(call, operator):
    """Call `call(extra)` with no extra operands; if the new node's bodies baked in tensors of an
    enclosing trace, undo it and call again with those tensors as extra operands."""
    mode = proxy_tensor.get_proxy_mode()
    graph = mode.tracer.graph
    last = graph._root.prev  # nodes created by the call come after it
    out = call(())
    created = _nodes_after(graph, last)
    captured = _captured_tensors(mode.tracer, created, operator)
    if not captured:
        return out
    _remove(mode.tracer, created)
    return call(tuple(captured))


def _nodes_after(graph, last):
    nodes = []
    node = last.next
    while node is not graph._root:
        nodes.append(node)
        node = node.next
    return nodes


def _tracers():
    """The fx tracers of the make_fx trace in progress, innermost first."""
    tracer = proxy_tensor._CURRENT_MAKE_FX_TRACER
    while tracer is not None:
        if tracer.fx_tracer is not None:
            yield tracer.fx_tracer
        tracer = tracer.parent_tracer


def _captured_tensors(tracer, created, operator):
    """Tensors of this or an enclosing trace that the new operator node's bodies hold as
    constants, in a stable order, without repeats."""
    root = tracer.root
    tracers = list(_tracers())
    found = []
    for node in created:
        if node.target is not operator:
            continue
        for arg in node.args:
            if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
                body = getattr(root, arg.target)
                for sub in body.graph.nodes:
                    if sub.op != "get_attr":
                        continue
                    value = getattr(body, sub.target, None)
                    if (isinstance(value, torch.Tensor)
                            and not any(value is f for f in found)
                            and any(proxy_tensor.get_proxy_slot(value, t, None) is not None
                                    for t in tracers)):
                        found.append(value)
    return found


def _remove(tracer, created):
    """Erase a call's nodes (users first) and the body modules they registered."""
    graph = tracer.graph
    for node in reversed(created):
        if node.op == "get_attr" and hasattr(tracer.root, node.target):
            delattr(tracer.root, node.target)
        graph.erase_node(node)
