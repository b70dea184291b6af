"""The random draws a probe traces under dynamo, turned into zeros in dynamo's graph.

NOTE [random draws of probes under dynamo]
A probe (a body run only to learn types or counts, NOTE [random draws of probes] in
context.py) traces its ops into the graph as any code does; they are dead, but a random op
(`torch.rand`, dropout, `x.uniform_()`; a cond / while_loop drawing in a body) moves torch's
generator each time the graph runs, so every later draw differed from Python's (tester 19: a
`range` loop drawing `r = torch.rand(1)` and breaking on `r < p[i]` accepted 3 where Python
accepted 1). Under make_fx the probe's draws become zeros when it ends (`_no_draws`); dynamo's
graph is not reachable from the code it traces, and it graph-breaks on `torch.get_rng_state` /
`set_rng_state` (so no state can be saved around the probe). Here two functions dynamo calls
for real (`_dynamo_marked_constant`) do what `_no_draws` does: `mark` notes the graph dynamo is
building (the current tracer's: a body of a torch operator, where the probe runs in one) and
its nodes when a probe starts; `undraw`, when it ends, rewrites each random node traced since
in place (the same fx node, which dynamo's values still name): a factory or out-of-place draw
becomes `torch.zeros` of its shape and dtype, an in-place draw `zero_()`, in that graph and in
the bodies of the operators traced since. What the probe learns (types, shapes) is the same; a
count made from a draw would now come from zeros, and the statements that take a count from a
full probe refuse a draw there, as under make_fx (`_count_trips`, `_probe_lists`). A draw whose
zeros cannot be written (a symbolic size no argument of the op has, several outputs) is
refused (`undraw` returns -1).
"""

from __future__ import annotations

import itertools

import torch

__all__ = ["mark", "undraw"]

_TOKENS = itertools.count(1)
_MARKS: dict = {}  # token -> (output graph, fx graph, the nodes it had)

_F = torch.nn.functional
# Out-of-place functions that draw (as dynamo's graph names them).
_DRAWING = {torch.rand, torch.randn, torch.randint, torch.randperm, torch.rand_like,
            torch.randn_like, torch.randint_like, torch.normal, torch.poisson, torch.bernoulli,
            torch.multinomial}
# Those that draw only in training (`training` at this position, and its default).
_TRAINING = {torch.dropout: (2, None), torch.alpha_dropout: (2, None),
             torch.feature_alpha_dropout: (2, None), _F.dropout: (2, True),
             _F.alpha_dropout: (2, False), _F.feature_alpha_dropout: (2, False),
             _F.dropout1d: (2, True), _F.dropout2d: (2, True), _F.dropout3d: (2, True),
             _F.rrelu: (3, False), torch.rrelu: (3, False)}
# Tensor methods that draw, in place and not.
_IN_PLACE = {"uniform_", "normal_", "bernoulli_", "random_", "exponential_", "geometric_",
             "cauchy_", "log_normal_"}
_METHODS = {"bernoulli", "multinomial"}
# Factories whose arguments are those of `torch.zeros` (sizes, dtype, device ...).
_LIKE_ZEROS = {torch.rand, torch.randn}


def mark() -> int:
    """A token for the graph dynamo is building now and its nodes (called for real)."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    graph = tx.output.current_tracer.graph
    token = next(_TOKENS)
    _MARKS[token] = (tx.output, graph, set(graph.nodes))
    return token


mark._dynamo_marked_constant = True  # (dynamo calls it for real)


def undraw(token: int) -> int:
    """Rewrite the draws traced since `mark` gave `token` as zeros: how many (-1 where one
    could not be). Called for real."""
    entry = _MARKS.pop(token, None)
    if entry is None:
        return 0
    output, graph, before = entry
    count, seen = 0, set()
    for node in [n for n in graph.nodes if n not in before]:
        done = _undraw_node(node, output, seen)
        if done < 0:
            return -1
        count += done
    return count


undraw._dynamo_marked_constant = True  # (dynamo calls it for real)


def _undraw_node(node, output, seen) -> int:
    if node.op == "get_attr":  # a body of an operator traced in the probe
        sub = output.nn_modules.get(node.target)
        if isinstance(sub, torch.fx.GraphModule) and id(sub) not in seen:
            seen.add(id(sub))
            count = 0
            for inner in list(sub.graph.nodes):
                done = _undraw_node(inner, output, seen)
                if done < 0:
                    return -1
                count += done
            if count:
                sub.recompile()
            return count
        return 0
    if not _draws(node):
        return 0
    value = node.meta.get("example_value")
    if node.op == "call_method" and node.target in _IN_PLACE:
        node.args, node.kwargs = (node.args[0],), {}
        node.target = "zero_"
        return 1
    if not isinstance(value, torch.Tensor):
        return -1  # (several outputs)
    if all(type(s) is int for s in value.shape):
        node.op, node.target = "call_function", torch.zeros
        node.args = (tuple(value.shape),)
        node.kwargs = {"dtype": value.dtype, "device": value.device}
        return 1
    if node.op == "call_function" and node.target in _LIKE_ZEROS:
        node.kwargs = {k: v for k, v in node.kwargs.items() if k != "generator"}
        node.target = torch.zeros
        return 1
    for arg in node.all_input_nodes:  # (a symbolic size: that of a tensor argument)
        other = arg.meta.get("example_value")
        if isinstance(other, torch.Tensor) and str(other.shape) == str(value.shape):
            node.op, node.target = "call_function", torch.zeros_like
            node.args, node.kwargs = (arg,), {"dtype": value.dtype}
            return 1
    return -1


def _draws(node) -> bool:
    if node.op == "call_method":
        return node.target in _IN_PLACE or node.target in _METHODS
    if node.op != "call_function":
        return False
    target = node.target
    try:
        if target in _DRAWING:
            return True
        position, default = _TRAINING.get(target, (None, None))
    except TypeError:  # (an unhashable target)
        return False
    if position is None:
        return False
    training = node.kwargs.get("training", node.kwargs.get("train", default))
    if len(node.args) > position:
        training = node.args[position]
    return not (training is False)
