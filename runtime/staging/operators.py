"""The torch operators a staged statement becomes: `cond` and `while_loop`.

Bodies here are plain callables over flat tuples of tensors. `while_loop` passes the carried
tensors and then the loop's read-only tensors (`additional`) to both of its bodies.

Under autoconv's own tracer (make_fx, outside dynamo) the higher-order operators are called
directly: `torch.cond` and `torch.while_loop` would first run dynamo over the bodies, which costs
40-300 ms a statement, while make_fx traces each body itself in a few milliseconds. What dynamo
adds there is lifting the tensors a body reads by closure (a module's parameters, a tensor of an
enclosing body) into operands; make_fx keeps them as constants of the body's graph. So after a
direct call the new node is rewritten: each tensor constant of its bodies becomes a body input
and an operand (see `_lift_constants`).
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
    """`true_fn(*operands) if pred else false_fn(*operands)` as one `cond` node.

    The branches may return any pytree of tensors (of one structure). Under make_fx the node's
    outputs are its leaves, since torch.export cannot save nested outputs of an operator.
    """
    operands = tuple(operands)
    # is_dynamo_compiling first: dynamo, which traces this runtime too, folds it and stops there.
    if torch.compiler.is_dynamo_compiling():
        # Dynamo lifts a branch's operands the way it lifts closure reads, naming each input
        # after the value's node in the graph it came from; values of two enclosing graphs can
        # share a name, and torch 2.13 then generates a branch with a duplicate argument. Copies
        # made here are nodes of one graph, with distinct names.
        operands = tuple(operand.clone() for operand in operands)
        return torch.cond(pred, true_fn, false_fn, operands)
    if _is_batched(pred):
        # vmap, with or without a tracer: both branches run and a select picks per example
        # (under a tracer, torch's own rule would keep only the first output)
        return _select(pred, true_fn(*operands), false_fn(*operands))
    if _concrete_transform():
        return (true_fn if pred else false_fn)(*operands)
    if not _direct():
        # another tracer or mode: torch.cond runs dynamo over the branches
        return torch.cond(pred, true_fn, false_fn, operands)
    _refuse_transform("if statement", allowed=(TransformType.Vmap,))
    structure = []

    def flat(fn):
        def run(*args):
            leaves, spec = pytree.tree_flatten(fn(*args))
            structure.append(spec)
            # A cond kept for the asserts or prints in it still gives one output: torch.export
            # cannot check or save an operator node without one.
            return tuple(leaves) or (torch.zeros((), dtype=torch.bool, device=pred.device),)
        return run

    out = _call_lifting_constants(
        lambda: cond_op(pred, flat(true_fn), flat(false_fn), operands),
        torch.ops.higher_order.cond)
    return pytree.tree_unflatten(list(out)[: structure[0].num_leaves], structure[0])


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

    return _call_lifting_constants(
        lambda: while_loop_op(cond_fn, body_fn, carried, additional),
        torch.ops.higher_order.while_loop)


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


def _call_lifting_constants(call, operator):
    """`call()`, then turn every tensor the new operator node's bodies hold as a constant into
    an extra operand of the node."""
    tracer = proxy_tensor.get_proxy_mode().tracer
    graph = tracer.graph
    last = graph._root.prev  # nodes created by the call come after it
    out = call()
    node = last.next
    while node is not graph._root:
        if node.target is operator:
            _lift_constants(tracer, node)
        node = node.next
    return out


# Where each operator keeps its bodies and the operands extra inputs are appended to.
_BODY_ARGS = {torch.ops.higher_order.cond: (1, 2), torch.ops.higher_order.while_loop: (0, 1)}
_EXTRA_OPERANDS_ARG = 3  # cond's operands; while_loop's additional_inputs


def _lift_constants(tracer, node):
    """Rewrite `node` (a cond or while_loop) so its bodies take their tensor constants as inputs.

    A constant in a body is a tensor the body read by closure (a module parameter, a tensor of
    an enclosing body, a global) or made itself (`torch.tensor(3)`). make_fx keeps it as an
    attribute of the body; here it becomes a new last input of every body and the matching
    operand in this graph: the tensor's own node where this trace tracks it, else a constant of
    this graph, which the enclosing operator lifts in turn. A captured tensor that changes (an
    optimizer step on a parameter) is so read on every call, and torch.export, which lifts the
    constants of the top graph only, can save the program.
    """
    root = tracer.root
    bodies = [getattr(root, node.args[i].target) for i in _BODY_ARGS[node.target]]
    constants = []  # (tensor, the get_attr nodes reading it, body by body)
    for b, body in enumerate(bodies):
        for sub in list(body.graph.find_nodes(op="get_attr")):
            value = getattr(body, sub.target, None)
            if not isinstance(value, torch.Tensor):
                continue
            for entry in constants:
                if entry[0] is value:
                    break
            else:
                entry = (value, [[] for _ in bodies])
                constants.append(entry)
            entry[1][b].append(sub)
    if not constants:
        return
    fake_mode = getattr(proxy_tensor._CURRENT_MAKE_FX_TRACER, "fake_tensor_mode", None)
    for b, body in enumerate(bodies):
        graph = body.graph
        inputs = list(graph.find_nodes(op="placeholder"))
        for i, (value, readers) in enumerate(constants):
            where = (graph.inserting_after(inputs[-1]) if inputs
                     else graph.inserting_before(next(iter(graph.nodes))))
            with where:
                inputs.append(graph.placeholder(f"lifted_{i}"))
            inputs[-1].meta["val"] = (fake_mode.from_tensor(value, static_shapes=True)
                                      if fake_mode is not None else value)
            for reader in readers[b]:
                reader.replace_all_uses_with(inputs[-1])
                graph.erase_node(reader)
                if hasattr(body, reader.target):
                    delattr(body, reader.target)
        body.recompile()
    with tracer.graph.inserting_before(node):
        operands = [_operand(tracer, value) for value, _ in constants]
    args = list(node.args)
    args[_EXTRA_OPERANDS_ARG] = (*args[_EXTRA_OPERANDS_ARG], *operands)
    node.args = tuple(args)


def _operand(tracer, value):
    tracked = proxy_tensor.get_proxy_slot(value, tracer, None)
    if tracked is not None:
        return tracked.proxy.node
    return tracer.create_arg(value)  # a constant of this graph
