"""The ops a probe traced, erased from the graph once the statement that ran it is staged.

NOTE [dead ops of probes]
A probe (a body run ahead of a staged statement to learn types, counts or the lists a branch
builds: NOTE [random draws of probes] in context.py) traces its ops into the graph being built
as any code does. Autoconv's own graph drops them (autograph's clean-up, `PROBED`), but
torch.compile's graph (dynamo's, run as it is by the eager and aot_eager backends) and
torch.export's keep dead nodes, and so ran the probe's ops on every call: where a branch reads
`x[k]` only when `k < len(x)`, the probe's read ran for every `k` and raised "index 5 is out of
bounds" where Python takes the other path. So the region of the outermost probe (its graph and
the nodes it made) is noted when it ends (`close`), and once the statement that ran it is
staged (`leave`, from `context.staging`; a full probe hands counts to its statement, which
sizes its lists' buffers with them before the operator, and a types-only probe the zeros that
stand for a value a body returns) the region's nodes nothing live reads are erased, the last
first. Not sooner: a statement nested in the bodies ends before the operator that reads the
enclosing statement's values is made. Live are: a node a node outside the region reads; a number
(`t.item()`) or a tensor of data-dependent size, whose symbol the tracer may hand to any later
op (dynamo and make_fx bind it to that node); a placeholder; an op with an effect (a module
call, a grad-mode switch, a custom effectful op); dynamo's tensor attribute (`get_attr`, whose
node dynamo may hand to later reads of it); an in-place update of a live tensor or of one
from before the probe (not under dynamo: NOTE [updates of tensors from before a probe under
dynamo]); and what a live node reads. A probe's own effects are off (prints,
asserts; its lists and state are copies), and its draws are zeros or erased with it. Under
dynamo the traced code cannot reach the graph: these functions are called for real
(`_dynamo_marked_constant`) with constants only, as dynamo_draws.py's are.

NOTE [probes in the bodies of operators a probe stages]
A probe's region is the nodes it made in the graph it ran in, and a probe nested in another
one in that graph is held by the outer one's region. A full probe stages the statements of the
bodies it runs (counting a loop's trips, `_count_trips` in torch.py, stages the loop), and
the bodies of those operators are graphs of their own (dynamo's subgraphs of the while_loop's
test and body): a probe run while one is traced (the `and` of the loop's test, staged as a
cond, probes its right side) made its nodes there, in no region, and they stayed in the
subgraph and ran on every call (`while i < x.shape[0] and x[i] >= 0:` read `x[4]` of a 4-row
`x` under torch.compile, slowA38 s01). So a probe keeps a region of its own in a graph where no
probe is open, and `leave` erases the regions of the graphs where none is open (a subgraph's
nodes are read only in that subgraph, where its statement has been staged by then), while the
subgraph is still being traced, before dynamo or make_fx makes a module of it.
"""

from __future__ import annotations

import itertools
import operator

import torch
from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

__all__ = ["opening", "close", "enter", "leave", "reset"]

_TOKENS = itertools.count(1)
_OPEN = [0]  # probes open now
# the graph of each probe open now, the outermost first: only the outermost probe's region in a
# graph is kept (it holds the others' in that graph; NOTE [probes in the bodies of operators
# a probe stages])
_OPEN_GRAPHS: list = []
_DEPTH = [0]  # staged statements running now (nested in each other's bodies)
_MARKS: dict = {}  # token -> (graph, the nodes it had when the probe started, depth)
_REGIONS: list = []  # (graph, the nodes a probe made, depth) of the probes ended, not swept
_CONTROL_FLOW = (torch.ops.higher_order.cond, torch.ops.higher_order.while_loop)
_IN_PLACE_OPERATORS = {operator.setitem, operator.iadd, operator.isub, operator.imul,
                       operator.itruediv, operator.ifloordiv, operator.imod, operator.ipow,
                       operator.iand, operator.ior, operator.ixor, operator.ilshift,
                       operator.irshift, operator.imatmul}


def _graph(dynamo: bool):
    """The graph being traced now: dynamo's current tracer's, or make_fx's; None eagerly."""
    if dynamo:
        from torch._dynamo.symbolic_convert import InstructionTranslator

        return InstructionTranslator.current_tx().output.current_tracer.graph
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return getattr(getattr(get_proxy_mode(), "tracer", None), "graph", None)


def opening(dynamo: bool) -> int:
    """A token for a probe starting now (`dynamo`: whether dynamo traces it, which a function
    it calls for real cannot ask). Called for real under dynamo."""
    _OPEN[0] += 1
    token = next(_TOKENS)
    graph = _graph(dynamo)
    if graph is not None and not any(g is graph for g in _OPEN_GRAPHS):
        _MARKS[token] = (graph, set(graph.nodes), _DEPTH[0], dynamo)
    _OPEN_GRAPHS.append(graph)
    return token


def close(token: int) -> int:
    """The probe of `token` ended: its region is kept for `leave`. Called for real."""
    _OPEN[0] = max(_OPEN[0] - 1, 0)
    if _OPEN_GRAPHS:
        _OPEN_GRAPHS.pop()
    entry = _MARKS.pop(token, None)
    if entry is not None:
        graph, before, depth, dynamo = entry
        _REGIONS.append((graph, [n for n in graph.nodes if n not in before], depth, dynamo))
    return 0


def enter() -> int:
    """A staged statement starts. Called for real."""
    _DEPTH[0] += 1
    return 0


def leave() -> int:
    """The statement `enter` started is staged: erase the dead nodes of the regions of the
    probes it ran (not those of an enclosing statement's probe, whose values that statement
    has yet to use: its operator reads them after its bodies, this statement among them, are
    traced; none in a graph where a probe is open, whose caller may still read them); how
    many. Called for real."""
    depth = _DEPTH[0]
    _DEPTH[0] = max(depth - 1, 0)
    erased = 0
    for region in [r for r in _REGIONS if r[2] >= depth
                   and not any(g is r[0] for g in _OPEN_GRAPHS)]:
        _REGIONS.remove(region)
        erased += _erase_dead(region[0], region[1], region[3])
    return erased


def reset() -> int:
    """Forget the probes of a trace that ended (one that failed inside a probe left it open).
    Called for real, by the outermost staged statement."""
    _OPEN[0] = _DEPTH[0] = 0
    _OPEN_GRAPHS.clear()
    _MARKS.clear()
    _REGIONS.clear()
    return 0


# NOTE [names of functions dynamo calls for real]
# Dynamo installs the result of a function it calls for real (`_dynamo_marked_constant`) as a
# global of the frame it compiles, named after the function: the user's module. Where that
# name is a builtin's, the module's code then reads the result instead: this one was called
# `open`, and after a torch.compile of converted code the user's `open(path)` met the int 1
# ("'int' object is not callable"; found by a test reading its own source after a compiled
# test in one process). No such function is named like a builtin
# (tests/test_runtime_properties.py).
for _f in (opening, close, enter, leave, reset):
    _f._dynamo_marked_constant = True  # (dynamo calls them for real)


def _erase_dead(graph: torch.fx.Graph, made: list, dynamo: bool) -> int:
    made = [n for n in made if n.graph is graph and not getattr(n, "_erased", False)]
    region = set(made)
    writes = {n: _written(n) for n in made}
    private = _private_symbols(made, region)
    work = [n for n in made if _kept(n, region, dynamo, private)]
    if dynamo:  # NOTE [updates of tensors from before a probe under dynamo]
        # (dynamo makes a global's or an outer graph's tensor an input when first read, which
        # may be in the probe)
        writes = {n: [w for w in written if w.op not in ("placeholder", "get_attr")]
                  if written else written for n, written in writes.items()}
    else:
        work += [n for n, written in writes.items() if written and any(w not in region
                                                                        for w in written)]
    live: set = set()
    while work:
        while work:
            node = work.pop()
            if node in live:
                continue
            live.add(node)
            work += [a for a in node.all_input_nodes if a in region and a not in live]
        # An in-place update lives with the tensor it writes.
        work = [n for n, written in writes.items()
                if written and n not in live and any(w in live for w in written)]
    erased = 0
    for node in reversed(made):
        if node not in live and not node.users:
            graph.erase_node(node)
            erased += 1
    return erased


# NOTE [updates of tensors from before a probe under dynamo]
# Outside dynamo the probes that learn types and lists skip the in-place updates of the
# tensors they did not make (outside_writes.skipped_in_probe), and the updates of tensors from
# before a probe stay live there as they were. Under dynamo the probes run them: a helper's `hist[i] += 1` on a tensor it reaches by
# closure or as a global (NOTE [free variables updated in a body under dynamo]) updated the
# tensor once more outside the operator, whose own update is the one Python makes (tester31
# s02's count under torch.no_grad() was 1 too high). No probe's update is Python's: dead code.


def _symbols(value) -> set:
    try:
        return free_unbacked_symbols(value)
    except Exception:  # noqa: BLE001 - a value of no sizes (a module, a function)
        return set()


def _private_symbols(made: list, region: set) -> set:
    """The unbacked symbols bound in the region as a tensor's size by an op that reads only
    the region's tensors (NOTE [data-dependent sizes bound in a probe])."""
    private = set()
    for node in made:
        value = node.meta.get("val", node.meta.get("example_value"))
        if "unbacked_bindings" in node.meta and (
                isinstance(value, torch.Tensor) and all(a in region for a in node.all_input_nodes)
                or node.target in _CONTROL_FLOW):  # (an operator's sizes are its own, fresh)
            private.update(node.meta["unbacked_bindings"])
    return private


def _kept(node, region, dynamo: bool, private: set) -> bool:
    if node.op in ("placeholder", "output", "call_module"):
        return True
    if any(user not in region for user in node.users):
        return True
    value = node.meta.get("val", node.meta.get("example_value"))
    if "unbacked_bindings" in node.meta and not set(node.meta["unbacked_bindings"]) <= private:
        return True
    if node.op == "get_attr" and "example_value" in node.meta:
        # (dynamo's tensor attribute, whose node it may hand to later reads; make_fx makes a
        # node for each read of a constant, and torch.export's constant lifting takes a
        # constant without a reader for a bug)
        return True
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        if dynamo:  # (binds nothing: NOTE [symbols of probes under dynamo])
            return False
        # (a number of the probe's own sizes, `u0 > 0` of a bound check, reaches nothing)
        return not _symbols(value) or not _symbols(value) <= private
    if not dynamo and not _symbols(value) <= private:  # NOTE [symbols of probes under dynamo]
        return True
    if node.op != "call_function" or node.target in _CONTROL_FLOW or node.target is \
            operator.getitem or _written(node) is not None:
        return False
    try:
        return node.is_impure(impure_random=False)
    except Exception:  # noqa: BLE001 - a target torch cannot classify: kept
        return True


# NOTE [symbols of probes under dynamo]
# Dynamo hands a later op an unbacked symbol (the rows a mask chose) through the node that
# bound it (`bound_symbols`: a `sym_size` of the first node whose value has it as a size, the
# one with `unbacked_bindings`); a later node whose value merely has that size, or a number
# of it (`y.shape[0]`, `n == m` of a shape check; dynamo binds a number's node only to a
# symbol nothing bound before, which `.item()`'s node is, with `unbacked_bindings`), binds
# nothing, so under dynamo it is dead like any other when nothing live reads it. Kept, it kept what it
# reads: nflows' `y * 2 + torch.min(y)` of the inside values kept the probe's `torch.min` of
# an empty selection, which raised on every call where Python skips the `if` (tester40 s07).
# make_fx keeps a proxy for each SymInt object it meets (`symnode_tracker`, the first node
# whose value holds it), and torch's fake tensor cache can give a later op the probe's very
# object: there every tensor of data-dependent size stays live.


# NOTE [data-dependent sizes bound in a probe]
# A size only the graph knows (`nonzero()`, a mask's rows) binds a new unbacked symbol, and the
# checks torch makes of it (`position[0]` asks `u0 >= 1`) become runtime assertions placed
# where the symbol is bound. torchmetrics' reciprocal rank returns 0.0 before its
# `torch.nonzero(target)` where no document is relevant; the probe of the code after that `if`
# (the cond's other branch, run ahead of it) kept its `nonzero`, and with it the assertion,
# which torch.export's and torch.compile's graphs ran on every call: "Runtime assertion failed
# for expression u0 >= 1" where Python returns (tester40 s08). A binding op nothing live reads
# is dead when it reads only the probe's own tensors (the probe copies what it computes on):
# its symbol reaches nothing outside, as does a staged statement's operator of the probe (its
# results' data-dependent sizes are new symbols of its own). One reading a tensor from before
# the probe is kept:
# torch's fake tensors memoize the count of a `nonzero` (and so of `x[mask]`) on their input,
# and the same `x[mask]` after the statement gets the probe's symbol, bound nowhere else.
# Numbers (`t.item()`) are kept as before.


def _written(node) -> list | None:
    """The nodes an in-place op writes (None for an op that writes none)."""
    if node.op not in ("call_function", "call_method"):
        return None
    target = node.target
    if "out" in node.kwargs:
        out = node.kwargs["out"]
        return [o for o in (out if isinstance(out, (tuple, list)) else (out,))
                if isinstance(o, torch.fx.Node)]
    first = [a for a in node.args[:1] if isinstance(a, torch.fx.Node)]
    if node.kwargs.get("inplace") is True:
        return first
    if node.op == "call_method":
        return first if target.endswith("_") and not target.startswith("__") else None
    if isinstance(target, torch._ops.OpOverload):
        if not target._schema.is_mutable:
            return None
        return [a for a, argument in zip(node.args, target._schema.arguments)
                if isinstance(a, torch.fx.Node) and argument.alias_info is not None
                and argument.alias_info.is_write] or first
    try:
        if target in _IN_PLACE_OPERATORS:
            return first
    except TypeError:  # (an unhashable target)
        pass
    name = getattr(target, "__name__", "")
    return first if name.endswith("_") and not name.startswith("__") else None
