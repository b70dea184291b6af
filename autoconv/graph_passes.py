"""Clean-up of a captured graph with torch's own passes: dead code, common subexpressions,
constant folding.

CSE and constant folding assume a functional graph: merging two `clone(x)` nodes is wrong when
one of them is later written in place, and folding a constant that the graph mutates would
carry the mutation into the next call. So they run only on (sub)graphs without mutating ops,
and CSE never merges random, impure or higher-order nodes (two identical prints must both
print).
"""

from __future__ import annotations

import operator
from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torch.fx.passes.dialect.common.cse_pass import CSEPass

__all__ = ["clean_up", "has_effects", "is_functional"]


def _op_of(node: Node):
    return node.target if isinstance(node.target, torch._ops.OpOverload) else None


def _mutates(node: Node) -> bool:
    op = _op_of(node)
    return op is not None and op._schema.is_mutable


def is_functional(graph_module: GraphModule) -> bool:
    """No node of this graph (subgraphs aside) writes to a tensor in place."""
    return not any(_mutates(node) for node in graph_module.graph.nodes)


_CONTROL_FLOW = (torch.ops.higher_order.cond, torch.ops.higher_order.while_loop)
# Ops that allocate: writing in place into their result changes nothing outside the graph.
_ALLOCATING = {torch.ops.aten.clone.default, torch.ops.aten.zeros.default,
               torch.ops.aten.full.default, torch.ops.aten.empty.memory_format}


def has_effects(node: Node) -> bool:
    """Whether dead-code elimination must keep `node` although nothing uses its outputs.

    A cond / while_loop is kept when a body prints, asserts or changes one of its inputs in
    place; one whose outputs are unused and whose bodies only compute (what runs bodies once to
    learn their types leaves such nodes) is dropped.
    """
    if node.op == "call_function" and node.target in _CONTROL_FLOW:
        owner = node.graph.owning_module
        bodies = (getattr(owner, arg.target) for arg in node.args
                  if isinstance(arg, Node) and arg.op == "get_attr")
        # (a folded predicate is a get_attr too, of a tensor)
        return any(_body_has_effects(body) for body in bodies if isinstance(body, GraphModule))
    return node.is_impure()


def _body_has_effects(body: GraphModule) -> bool:
    for node in body.graph.nodes:
        if node.op != "call_function" or not has_effects(node):
            continue
        written = node.args[0] if node.args else None
        if _mutates(node) and isinstance(written, Node) and written.target in _ALLOCATING:
            continue  # in place on a tensor the body made itself (a private copy of its state)
        return True
    return False


def _unmergeable(graph_module: GraphModule) -> set:
    """Targets CSE must leave alone: anything but deterministic functional aten ops."""
    banned = set()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        op = _op_of(node)
        if op is None:
            if node.target is not operator.getitem:
                banned.add(node.target)
        elif (op._schema.is_mutable or torch.Tag.nondeterministic_seeded in op.tags
              or node.is_impure()):
            banned.add(op.overloadpacket)
    return banned



def _common_subexpressions(graph_module: GraphModule) -> GraphModule:
    if not is_functional(graph_module):
        return graph_module
    result = CSEPass(banned_ops=_unmergeable(graph_module))(graph_module)
    return result.graph_module if result.modified else graph_module


def _fold_constants(graph_module: GraphModule, is_impure: Callable[[Node], bool]) -> None:
    """Computes once what depends only on constants (tensors read from globals or closures).

    A folded value returned as is would be the same tensor object on every call, which the
    caller could then modify: values used directly by the output are left unfolded.
    (Inductor's `constant_fold` would also run a dead-code pass that drops conds kept only for
    their prints and asserts, so its folder is driven here with our own clean-up.)
    """
    if not is_functional(graph_module):
        return
    from torch._inductor.constant_folding import ConstantFolder, replace_node_with_constant

    output = graph_module.graph.output_node()
    with torch.utils._python_dispatch._disable_current_modes():
        folder = ConstantFolder(graph_module, skip_constructors=True)
        folder.run()
        replaced = False
        for node, constant in folder.node_replacements.items():
            if output not in node.users:
                replace_node_with_constant(graph_module, node, constant)
                replaced = True
    if replaced:
        graph_module.graph.eliminate_dead_code(is_impure_node=is_impure)
        for node in graph_module.graph.find_nodes(op="get_attr"):
            if not node.users:
                graph_module.graph.erase_node(node)
                if hasattr(graph_module, node.target) and not isinstance(
                        getattr(graph_module, node.target), GraphModule):
                    delattr(graph_module, node.target)
        graph_module.recompile()


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
        _fold_constants(graph_module, is_impure)
    return graph_module
