"""torch.func transforms (vmap, grad, jvp): a statement over concrete values runs as Python,
and a batched predicate selects per example.

Under a torch.func transform of concrete tensors (no tracer) every value is known, so the
statement runs as Python: torch 2.13's own rules there would run dynamo (`grad`), lose all
outputs but the first of a `cond` whose predicate is batched, and have no batching rule for
`while_loop` at all (`vmap`). A batched predicate (one truth value per example) selects per
example: an `if` computes both branches and picks with `torch.where`, and a loop runs while any
example's test holds, updating only the examples whose test holds, as `jax.vmap` does.
"""

from __future__ import annotations

import torch
from torch._C._functorch import TransformType
from torch.fx.experimental import proxy_tensor
from torch.utils import _pytree as pytree

from ...errors import StagingError
from ..registry import StagingTracer


def concrete_transform() -> bool:
    """True inside a torch.func transform (vmap, grad, jvp) with no tracer or dynamo around it."""
    return (torch._C._functorch.peek_interpreter_stack() is not None
            and proxy_tensor._CURRENT_MAKE_FX_TRACER is None
            and proxy_tensor.get_proxy_mode() is None)


def refuse_transform(statement, allowed):
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


def _is_batched(value) -> bool:
    return isinstance(value, torch.Tensor) and torch._C._functorch.is_batchedtensor(value)


class FuncTransformTracer(StagingTracer):
    """A vmap batch is staged (its truth value differs per example); under a transform of
    concrete tensors every statement runs as Python, a batched one per example."""

    name = "torch.func"

    def is_staged(self, value) -> bool:
        return _is_batched(value)

    def is_tracing(self) -> bool:
        return concrete_transform()

    def cond(self, pred, true_fn, false_fn, operands):
        if _is_batched(pred):
            # vmap, with or without a tracer: both branches run and a select picks per example
            # (under a tracer, torch's own rule would keep only the first output)
            return _select(pred, true_fn(*operands), false_fn(*operands))
        return (true_fn if pred else false_fn)(*operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        if not concrete_transform():  # vmap under make_fx: the operator has no batching rule
            refuse_transform("while loop", allowed=())
        return _masked_loop(cond_fn, body_fn, carried, additional)


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
            # what torch.cond would refuse (the engine checks the branches before: a backstop)
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
