"""Dynamo (torch.compile, strict torch.export): dynamo takes the torch operators themselves."""

from __future__ import annotations

import torch
from torch._higher_order_ops.while_loop import while_loop_op

from ..registry import StagingTracer

# The attribute a staged for loop's body sets on its item under dynamo where the converter did
# not mark the item updated (NOTE [loop items updated by a call] in operators.py).
UNMARKED_ITEM = "_autoconv_unmarked_item"


class DynamoTracer(StagingTracer):
    """Under dynamo every tensor is staged and `torch.cond` / `while_loop` are dynamo's to trace.

    `is_dynamo_compiling()` is a constant True for dynamo, which traces this runtime too, so the
    registry's question folds here, first.
    """

    name = "dynamo"
    bodies_under_dynamo = True

    def is_staged(self, value) -> bool:
        return torch.compiler.is_dynamo_compiling() and isinstance(value, torch.Tensor)

    def is_tracing(self) -> bool:
        return torch.compiler.is_dynamo_compiling()

    def cond(self, pred, true_fn, false_fn, operands):
        # Dynamo lifts a branch's operands the way it lifts closure reads, naming each input
        # after the value's node in the graph it came from; values of two enclosing graphs can
        # share a name, and torch 2.13 then generates a branch with a duplicate argument. Copies
        # made here are nodes of one graph, with distinct names.
        # (a symbolic int operand, `t.item()` read by a branch, goes in as it is)
        operands = tuple(operand.clone() if isinstance(operand, torch.Tensor) else operand
                         for operand in operands)
        return torch.cond(pred, true_fn, false_fn, operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        # Dynamo takes the operator itself, and read-only operands as such: reached by closure
        # instead, they are named after the enclosing bodies' nodes, and nested loops then gave
        # two of a body's inputs one name.
        return while_loop_op(cond_fn, body_fn, carried, additional)
