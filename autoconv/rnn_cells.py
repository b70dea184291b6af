"""Recurrent cells back as one op, for the python backend.

make_fx records `torch.gru_cell` (what `nn.GRUCell` calls) as the ops of its ATen
implementation: two linear layers, two splits, six getitems and nine pointwise ops. Eager runs
them inside one C++ call; the python backend would make a Python call of each, about 20 where
eager makes 1, which is the main cost of a staged decoder loop (benchmarks/loops.py's
gru_greedy). `fuse_gru_cells` finds that exact recording and calls `aten.gru_cell` instead: the
same ops run in the same order on CPU (bit for bit the same result), and on CUDA the fused
kernel eager itself uses.
"""

from __future__ import annotations

import operator

import torch
from torch.fx import Graph, Node

__all__ = ["fuse_gru_cells"]

aten = torch.ops.aten


def fuse_gru_cells(graph: Graph) -> None:
    """Replace each recorded GRU cell (after `linear` fusion) by one `aten.gru_cell` node."""
    for node in list(graph.nodes):
        if _is(node, aten.add_.Tensor):
            match = _gru_cell(node)
            if match is not None:
                x, hx, w_ih, w_hh, b_ih, b_hh, nodes = match
                with graph.inserting_before(node):
                    fused = graph.call_function(aten.gru_cell.default,
                                                (x, hx, w_ih, w_hh, b_ih, b_hh))
                fused.meta = dict(node.meta)
                node.replace_all_uses_with(fused)
                for dead in nodes:  # users first
                    graph.erase_node(dead)


def _is(node, op, users: int | None = None) -> bool:
    return (isinstance(node, Node) and node.op == "call_function" and node.target is op
            and not node.kwargs and (users is None or len(node.users) == users))


def _gru_cell(out: Node):
    """(x, hx, w_ih, w_hh, b_ih, b_hh, the matched nodes, users first) where `out` is the
    result of a recorded GRU cell:

        gi0, gi1, gi2 = unsafe_split(linear(x, w_ih, b_ih), H, 1)
        gh0, gh1, gh2 = unsafe_split(linear(hx, w_hh, b_hh), H, 1)
        r = sigmoid_(add_(gh0, gi0)); z = sigmoid_(add_(gh1, gi1))
        n = tanh_(add(gi2, mul_(gh2, r)))
        out = add_(mul_(sub(hx, n), z), n)

    with every intermediate read only there; None otherwise.
    """
    scaled, n = out.args
    if not (_is(scaled, aten.mul_.Tensor, 1) and _is(n, aten.tanh_.default, 2)):
        return None
    difference, z = scaled.args
    if not (_is(difference, aten.sub.Tensor, 1) and len(difference.args) == 2
            and difference.args[1] is n and _is(z, aten.sigmoid_.default, 1)):
        return None
    hx = difference.args[0]
    candidate = n.args[0]
    if not (_is(candidate, aten.add.Tensor, 1) and len(candidate.args) == 2):
        return None
    gi2, reset_scaled = candidate.args
    if not _is(reset_scaled, aten.mul_.Tensor, 1):
        return None
    gh2, r = reset_scaled.args
    if not (_is(r, aten.sigmoid_.default, 1) and _is(r.args[0], aten.add_.Tensor, 1)
            and _is(z.args[0], aten.add_.Tensor, 1)):
        return None
    gh0, gi0 = r.args[0].args
    gh1, gi1 = z.args[0].args
    input_side = _split_linear((gi0, gi1, gi2))
    hidden_side = _split_linear((gh0, gh1, gh2))
    if input_side is None or hidden_side is None:
        return None
    (x, w_ih, b_ih, input_nodes), (h_in, w_hh, b_hh, hidden_nodes) = input_side, hidden_side
    if h_in is not hx:
        return None
    nodes = [out, scaled, difference, z, n, candidate, reset_scaled, r, r.args[0], z.args[0],
             *input_nodes, *hidden_nodes]
    return x, hx, w_ih, w_hh, b_ih, b_hh, nodes


def _split_linear(items):
    """(x, w, b, nodes, users first) where `items` are the three getitems, in order, of
    `unsafe_split(linear(x, w, b), H, 1)` read nowhere else; None otherwise."""
    if not all(isinstance(item, Node) and item.op == "call_function"
               and item.target is operator.getitem and len(item.users) == 1
               and item.args[1] == i for i, item in enumerate(items)):
        return None
    split = items[0].args[0]
    if not (all(item.args[0] is split for item in items) and _is(split, aten.unsafe_split.Tensor, 3)
            and split.args[2:] == (1,)):
        return None
    linear = split.args[0]
    if not (_is(linear, aten.linear.default, 1) and len(linear.args) == 3):
        return None
    x, w, b = linear.args
    return x, w, b, [*items, split, linear]
