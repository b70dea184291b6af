"""Clean-up of a captured graph with torch's own passes: dead code, common subexpressions,
constant folding.

CSE and constant folding assume a functional graph: merging two `clone(x)` nodes is wrong when
one of them is later written in place, and folding a constant that the graph mutates would
carry the mutation into the next call. So they run only on (sub)graphs without mutating ops,
and CSE never merges random, impure or higher-order nodes (two identical prints must both
print).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torch.fx.passes.dialect.common.cse_pass import CSEPass

__all__ = ["clean_up", "is_functional"]


def _op_of(node: Node):
    return node.target if isinstance(node.target, torch._ops.OpOverload) else None


def _mutates(node: Node) -> bool:
    op = _op_of(node)
    return op is not None and op._schema.is_mutable


def is_functional(graph_module: GraphModule) -> bool:
    """No node of this graph (subgraphs aside) writes to a tensor in place."""
    return not any(_mutates(node) for node in graph_module.graph.nodes)


def _unmergeable(graph_module: GraphModule) -> set:
    """Targets CSE must leave alone: anything but deterministic functional aten ops."""
    banned = set()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        op = _op_of(node)
        if op is None:
            if node.target is not _getitem:
                banned.add(node.target)
        elif (op._schema.is_mutable or torch.Tag.nondeterministic_seeded in op.tags
              or node.is_impure()):
            banned.add(op.overloadpacket)
    return banned


_getitem = __import__("operator").getitem


def _common_subexpressions(graph_module: GraphModule) -> GraphModule:
    if not is_functional(graph_module):
        return graph_module
    result = CSEPass(banned_ops=_unmergeable(graph_module))(graph_module)
    return result.graph_module if result.modified else graph_module


def _fold_constants(graph_module: GraphModule) -> None:
    """Computes once what depends only on constants (tensors read from globals or closures).

    A folded value returned as is would be the same tensor object on every call, which the
    caller could then modify: values used directly by the output are left unfolded.
    """
    if not is_functional(graph_module):
        return
    from torch._inductor.constant_folding import constant_fold

    output = graph_module.graph.output_node()
    constant_fold(graph_module, constraint_fn=lambda node: output not in node.users)


def clean_up(graph_module: GraphModule, is_impure: Callable[[Node], bool],
             root: bool = True) -> GraphModule:
    """Dead code and common subexpressions in the graph and every cond / while_loop subgraph,
    then constant folding of the top graph (CSE and folding on functional graphs only).
    Returns the cleaned module (possibly a new object)."""
    for name, child in list(graph_module.named_children()):
        if isinstance(child, GraphModule):
            setattr(graph_module, name, clean_up(child, is_impure, root=False))
    graph_module.graph.eliminate_dead_code(is_impure_node=is_impure)
    graph_module.recompile()
    graph_module = _common_subexpressions(graph_module)
    if root:
        _fold_constants(graph_module)
    return graph_module
