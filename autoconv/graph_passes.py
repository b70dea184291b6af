"""Rewrites of captured graphs. Each pass takes one GraphModule (its own graph, not its
subgraphs) and returns torch.fx's `PassResult(graph_module, modified)`.

* Clean-up after capture, with torch's own passes: dead code, common subexpressions, constant
  folding (`clean_up` runs them over a graph and its subgraphs).
* Lowering for the python backend (`python_backend.lower` runs them): `fuse_linear`,
  `in_place_to_functional`, `drop_clones`, and on loop tests `predicate_output`.

CSE and constant folding assume a functional graph: merging two `clone(x)` nodes is wrong when
one of them is later written in place, and folding a constant that the graph mutates would
carry the mutation into the next call. So they run only on (sub)graphs without mutating ops,
and CSE never merges random, impure or higher-order nodes (two identical prints must both
print).
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import warnings
from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.fx.passes.dialect.common.cse_pass import CSEPass
from torch.fx.passes.infra.pass_base import PassResult
from torch.utils import _pytree as pytree

from autoconv_runtime.staging import autograd_functions
from autoconv_runtime.staging.context import PROBED

__all__ = ["aliases", "clean_up", "common_subexpressions", "drop_clones", "eliminate_dead_code",
           "fold_constants", "fold_into_branches", "fuse_linear", "has_effects",
           "in_place_to_functional", "is_fresh", "is_functional", "loops_without_stacks",
           "predicate_output",
           "same_known_shape", "same_strides", "writes_inputs", "written_constants",
           "constants_given_to_bodies", "draws"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop


def _op_of(node: Node):
    return node.target if isinstance(node.target, torch._ops.OpOverload) else None


def _mutates(node: Node) -> bool:
    op = _op_of(node)
    return op is not None and op._schema.is_mutable


def is_functional(graph_module: GraphModule) -> bool:
    """No node of this graph (subgraphs aside) writes to a tensor in place."""
    return not any(_mutates(node) for node in graph_module.graph.nodes)


_CONTROL_FLOW = (_COND, _WHILE_LOOP)
# Ops that allocate: writing in place into their result changes nothing outside the graph.
_ALLOCATING = {torch.ops.aten.clone.default, torch.ops.aten.zeros.default,
               torch.ops.aten.full.default, torch.ops.aten.empty.memory_format}


def has_effects(node: Node) -> bool:
    """Whether dead-code elimination must keep `node` although nothing uses its outputs.

    A cond / while_loop is kept when a body prints, asserts or changes one of its inputs in
    place; one whose outputs are unused and whose bodies only compute (what runs bodies once to
    learn their types leaves such nodes) is dropped, and so is one a types-only probe staged,
    whatever torch put in its bodies (NOTE [operators of types-only probes] in
    runtime/staging/context.py).
    """
    if node.op == "call_function" and node.target in _CONTROL_FLOW:
        if node.meta.get(PROBED):
            return False
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


def common_subexpressions(graph_module: GraphModule) -> PassResult:
    """torch's CSE pass on a functional graph, merging deterministic functional aten ops only
    (a new module where it merged something). Merging never makes one tensor of two where the
    graph hands them on (`_separate_at_sinks`)."""
    if not is_functional(graph_module) or not _may_have_twins(graph_module.graph):
        return PassResult(graph_module, False)
    traced = [_identities(sink) for sink in _sinks(graph_module.graph)]
    result = CSEPass(banned_ops=_unmergeable(graph_module))(graph_module)
    if not result.modified:
        return PassResult(graph_module, False)
    _separate_at_sinks(result.graph_module, traced)
    return result


# NOTE [passes that would change nothing]
# torch's CSE pass copies the whole graph node by node, and the constant folder runs an
# interpreter over it, even where nothing can change: 10 ms each of the seed model's first
# call (303 nodes), with no twin and no constant. A scan first says where they may: CSE merges
# a node only into an earlier one of the same target on the very same argument nodes (a first
# merge is what lets later ones match), so no two nodes of one target on one list of argument
# nodes, constants aside, means no merge; the folder computes only from a tensor it knows,
# a constant the function made itself (`_made_by_function`) or one in a node's arguments
# (skip_constructors: an op on no tensor is not folded), so a graph with neither folds nothing.

def _may_have_twins(graph: torch.fx.Graph) -> bool:
    """Whether CSE may merge a node of `graph` (NOTE [passes that would change nothing])."""
    seen = set()
    for node in graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        try:
            key = (node.op, node.target, tuple(_arguments(node)))
            if key in seen:
                return True
            seen.add(key)
        except TypeError:  # (a target that cannot be hashed: let the pass decide)
            return True
    return False


def _may_fold(graph_module: GraphModule) -> bool:
    """Whether the folder may compute a node of `graph_module` (NOTE [passes that would
    change nothing])."""
    for node in graph_module.graph.nodes:
        if node.op == "get_attr":
            if _made_by_function(node) and isinstance(
                    getattr(graph_module, node.target, None), torch.Tensor):
                return True
        elif node.op != "placeholder" and any(
                isinstance(leaf, torch.Tensor)
                for leaf in pytree.arg_tree_leaves(*node.args, **node.kwargs)):
            return True
    return False


# NOTE [merged twins]: two equal computations are two tensors in the traced program (`a = x *
# 2; b = x * 2`, two loop counters starting at `0`), and CSE makes them one. Where that one
# tensor is handed on twice it is an alias the program did not have: the caller's `a += 1`
# would change `b`; torch.cond and while_loop refuse operands that alias one another and bodies
# whose outputs do ("cond_fn might be aliasing the input or the output!" from inductor, which
# checks them again). At those places (a graph's output, a cond / while_loop's operands) the
# merged node is computed again for each of the traced values it stands for: the graph then
# computes there what was traced, and merges everywhere else.

def _sinks(graph: torch.fx.Graph) -> list[Node]:
    """The nodes that hand their tensor arguments on: the output, and cond / while_loop (CSE
    never merges these, so the list keeps its order through it)."""
    return [node for node in graph.nodes if node.op == "output" or
            node.op == "call_function" and node.target in _CONTROL_FLOW]


def _arguments(node: Node) -> list[Node]:
    found = []
    torch.fx.node.map_arg((node.args, node.kwargs), found.append)
    return found


def _identities(sink: Node) -> list[int]:
    """For each argument of `sink`, the position of its first occurrence: which arguments are
    one tensor (two nodes taking one item of one cond's results are one tensor too)."""
    first: dict = {}
    return [first.setdefault(_tensor_key(node), i) for i, node in enumerate(_arguments(sink))]


def _tensor_key(node: Node):
    if node.op == "call_function" and node.target is operator.getitem and \
            isinstance(node.args[0], Node):
        return _tensor_key(node.args[0]), node.args[1]
    return node


def _separate_at_sinks(graph_module: GraphModule, traced: list[list[int]]) -> None:
    """Recomputes a merged node at each sink argument that was a tensor of its own as traced
    (NOTE [merged twins])."""
    graph = graph_module.graph
    sinks = _sinks(graph)
    assert len(sinks) == len(traced), "CSE merged a cond, while_loop or output"
    recompiled = False
    for sink, identities in zip(sinks, traced):
        changed = False
        arguments = _arguments(sink)
        assert len(arguments) == len(identities)
        # merged node -> {traced identity: the node that now stands for it}
        standing: dict[Node, dict[int, Node]] = {}
        replaced: list[Node] = []
        for node, identity in zip(arguments, identities):
            twins = standing.setdefault(node, {})
            if twins and identity not in twins and _is_tensor(node):
                with graph.inserting_before(sink):
                    twins[identity] = _recompute(graph, node)
                changed = True
            replaced.append(twins.setdefault(identity, node))
        if changed:
            at = iter(replaced)
            sink.args, sink.kwargs = torch.fx.node.map_arg(
                (sink.args, sink.kwargs), lambda _: next(at))
            recompiled = True
    if recompiled:
        graph_module.recompile()


def _is_tensor(node: Node) -> bool:
    return isinstance(node.meta.get("val"), torch.Tensor)


def _recompute(graph: torch.fx.Graph, node: Node) -> Node:
    """A copy of `node` computing a tensor of its own (an item of a multi-output op: a copy of
    that op too)."""
    if node.op == "call_function" and node.target is operator.getitem:
        source = _recompute(graph, node.args[0])
        return graph.node_copy(node, lambda arg: source if arg is node.args[0] else arg)
    return graph.node_copy(node)


def fold_constants(graph_module: GraphModule, is_impure: Callable[[Node], bool]) -> PassResult:
    """Computes once what depends only on constants the function made itself (`torch.tensor(
    [1., 2.])`); tensors read from globals, closures or attributes are left to each call.

    A folded value returned as is would be the same tensor object on every call, which the
    caller could then modify: values used directly by the output are left unfolded.
    (Inductor's `constant_fold` would also run a dead-code pass that drops conds kept only for
    their prints and asserts, so its folder is driven here with our own clean-up.)
    """
    if not is_functional(graph_module) or not _may_fold(graph_module):
        return PassResult(graph_module, False)
    from torch._inductor.constant_folding import ConstantFolder, replace_node_with_constant

    class Folder(ConstantFolder):
        def run_node(self, node):
            # A tensor read from outside the function (a global, a module's attribute) may be
            # updated in place between calls: what is computed from it is computed on each
            # (NOTE [captured tensors] in captures.py). A tensor the function made itself
            # (`torch.tensor(...)`, copied out by lift_fresh_copy) is folded.
            if node.op == "get_attr" and not _made_by_function(node) and isinstance(
                    getattr(graph_module, node.target, None), torch.Tensor):
                return self.unknown_value
            return super().run_node(node)

    output = graph_module.graph.output_node()
    with torch.utils._python_dispatch._disable_current_modes():
        folder = Folder(graph_module, skip_constructors=True)
        folder.run()
        replaced = False
        for node, constant in folder.node_replacements.items():
            if output not in node.users:
                replace_node_with_constant(graph_module, node, constant)
                replaced = True
    if replaced:
        _drop_unused(graph_module.graph, is_impure)
        for node in graph_module.graph.find_nodes(op="get_attr"):
            if not node.users:
                graph_module.graph.erase_node(node)
                if hasattr(graph_module, node.target) and not isinstance(
                        getattr(graph_module, node.target), GraphModule):
                    delattr(graph_module, node.target)
        graph_module.recompile()
    return PassResult(graph_module, replaced)


def _made_by_function(node: Node) -> bool:
    return bool(node.users) and all(
        u.op == "call_function" and u.target is torch.ops.aten.lift_fresh_copy.default
        for u in node.users)


def _written(node: Node) -> list | None:
    """The tensor nodes the op `node` writes in place, from its schema (each tensor of a list
    an op writes: NOTE [writes into lists of tensors]); None where that is not known (not an
    aten op, an argument that is no node)."""
    op = _op_of(node)
    if op is None:
        return None
    written = []
    for i, argument in enumerate(op._schema.arguments):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        value = node.args[i] if i < len(node.args) else node.kwargs.get(argument.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, Node) for v in values):
            return None
        written.extend(values)
    return written


# NOTE [writes into lists of tensors]
# torch's `_foreach_*_` and fused optimizer kernels (`_fused_adam_`, `_fused_sgd_`) write every
# tensor of a list argument (`Tensor(a!)[] self`). Read as "writes not known", a parameter those
# ops updated was no written constant: the trace ran again with it read live from the
# optimizer's `param_groups` (NOTE [tensors in argument objects' fields] in capture.py), a fresh
# input with no `.grad`, so the step updated nothing and the optimizer's state stayed empty,
# silently (Adam with `foreach=True` or `fused=True` stepped inside the function, optim47).


def _storage(node: Node, roots: dict) -> Node:
    """The node whose memory `node` is: itself, or the base of the view or the tensor an in-place
    op wrote (and returned)."""
    root = roots.get(node)
    if root is None:
        base = node.args[0] if node.args and isinstance(node.args[0], Node) else None
        if base is not None and (_is_view(node) or _mutates(node)):
            root = _storage(base, roots)
        else:
            root = node
        roots[node] = root
    return root


def draws(graph_module: GraphModule) -> bool:
    """Whether the graph, or a body of a cond / while_loop in it, draws from a random
    generator (NOTE [a graph whose guard fails draws nothing] in concrete.py)."""
    return any(node.op == "call_function"
               and torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ())
               for module in graph_module.modules() if isinstance(module, GraphModule)
               for node in module.graph.nodes)


def writes_inputs(graph_module: GraphModule) -> bool:
    """Whether the graph writes in place into one of its inputs (or a view of one), or into
    memory it cannot name (an op whose writes its schema does not say)."""
    roots: dict = {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or not _mutates(node):
            continue
        written = _written(node)
        if written is None or any(_storage(w, roots).op == "placeholder" for w in written):
            return True
    return False


# NOTE [constants given to bodies that write their own tensors]
# A constant given to a cond / while_loop counted as written where a body wrote anything in
# place, and every call of such a graph then compared the arguments' storages with the
# constant's (`captured_sharing`, NOTE [arguments that are captured tensors] in
# signature.py): the greedy decoder's first token, `torch.tensor(1)`, carried by a loop
# whose body writes only the tokens' buffer and the GRU cell's own temporaries (0.8 µs a
# call warm, 4-12 µs cold). A body's in-place writes reach a constant only through one of
# its placeholders (the loop's or branch's inputs): a constant is written where a body
# writes into a placeholder's memory (a view of one included), or gives one to a nested
# cond / while_loop whose bodies do, or writes what no schema names.
def writes_placeholders(graph_module: GraphModule) -> bool:
    """Whether the graph, or a cond / while_loop in it, may write in place into the memory
    of one of its placeholders (NOTE [constants given to bodies that write their own
    tensors])."""
    roots: dict = {}
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        bodies = [getattr(graph_module, a.target) for a in pytree.tree_leaves(node.args)
                  if isinstance(a, Node) and a.op == "get_attr"
                  and isinstance(getattr(graph_module, a.target, None), GraphModule)]
        if bodies and node.target not in _CONTROL_FLOW:
            # (another operator running a subgraph: written where any of it writes)
            if not all(is_functional(sub) for body in bodies for sub in body.modules()
                       if isinstance(sub, GraphModule)):
                return True
        elif bodies:
            if any(writes_placeholders(body) for body in bodies) and any(
                    _storage(n, roots).op == "placeholder"
                    for n in pytree.tree_leaves(node.args) if isinstance(n, Node)):
                return True
        elif _mutates(node):
            written = _written(node)
            if written is None or any(_storage(w, roots).op == "placeholder"
                                      for w in written):
                return True
    return False


def written_constants(graph_module: GraphModule) -> tuple:
    """The tensor constants (a global's, a closure's, an attribute's tensor: get_attr) that
    the graph or one of its subgraphs writes in place, or gives to a cond / while_loop whose
    bodies write in place (NOTE [arguments that are captured tensors] in signature.py)."""
    found: dict = {}
    for owner in graph_module.modules():
        if not isinstance(owner, GraphModule):
            continue
        roots: dict = {}
        for node in owner.graph.nodes:
            if node.op != "call_function":
                continue
            if node.target in _CONTROL_FLOW:
                bodies = [getattr(owner, a.target) for a in node.args
                          if isinstance(a, Node) and a.op == "get_attr"
                          and isinstance(getattr(owner, a.target, None), GraphModule)]
                if not any(writes_placeholders(body) for body in bodies):
                    continue  # NOTE [constants given to bodies that write their own tensors]
                written = [_storage(n, roots) for n in pytree.tree_leaves(node.args)
                           if isinstance(n, Node)]
            elif _mutates(node):
                written = [_storage(n, roots) for n in (_written(node) or ())]
            else:
                continue
            for root in written:
                value = getattr(owner, root.target, None) if root.op == "get_attr" else None
                if isinstance(value, torch.Tensor):
                    found.setdefault(id(value), value)
    return tuple(found.values())



def constants_given_to_bodies(graph_module: GraphModule) -> tuple:
    """The tensor constants (get_attr) given to a cond / while_loop of the graph or one of its
    subgraphs: the tensors its bodies read by closure, lifted into operands (NOTE [a captured
    tensor read in a body, the argument it is updated] in autoconv/signature.py)."""
    found: dict = {}
    for owner in graph_module.modules():
        if not isinstance(owner, GraphModule):
            continue
        roots: dict = {}
        for node in owner.graph.nodes:
            if node.op != "call_function" or node.target not in _CONTROL_FLOW:
                continue
            for operand in pytree.tree_leaves(node.args):
                if not isinstance(operand, Node):
                    continue
                root = _storage(operand, roots)
                value = getattr(owner, root.target, None) if root.op == "get_attr" else None
                if isinstance(value, torch.Tensor):
                    found.setdefault(id(value), value)
    return tuple(found.values())

def eliminate_dead_code(graph_module: GraphModule, is_impure: Callable[[Node], bool]) -> None:
    """torch.fx's dead-code elimination, which also drops in-place writes into tensors the graph
    made itself that nothing reads afterwards: the ops a run of a body left (to learn its
    outputs' types: NOTE [probe verdicts]) when the body updates its own temporaries in place
    (`torch.nn.GRUCell` traces as `sigmoid_`, `add_` on the chunks of a matmul), which fx's
    elimination keeps as impure. A write into an input, a constant or a view of one, a random
    op, and a write whose target is not known stay."""
    graph = graph_module.graph
    nodes = list(graph.nodes)
    order = {node: i for i, node in enumerate(nodes)}
    roots: dict = {}
    writers: dict = {}  # storage root -> the in-place ops writing into it
    live: set = set()
    work: list = []

    def mark(node):
        if node not in live:
            live.add(node)
            work.append(node)

    for node in nodes:
        if node.op in ("placeholder", "output"):
            mark(node)
        elif node.op != "call_function":
            continue
        elif _mutates(node):
            written = _written(node)
            op = _op_of(node)
            private = (written is not None and torch.Tag.nondeterministic_seeded not in op.tags
                       and all(is_fresh(_storage(w, roots)) for w in written))
            if not private:
                mark(node)
            for w in written or ():
                writers.setdefault(_storage(w, roots), []).append(node)
        elif is_impure(node):
            mark(node)
    while work:
        node = work.pop()
        for value in node.all_input_nodes:
            mark(value)
            for writer in writers.get(_storage(value, roots), ()):
                if order[writer] < order[node]:
                    mark(writer)
    for node in reversed(nodes):
        if node.op == "call_function" and node not in live:
            graph.erase_node(node)
    _drop_unused(graph, is_impure)  # get_attr nodes left unused


def _drop_unused(graph: torch.fx.Graph, is_impure: Callable[[Node], bool]) -> None:
    """fx's `Graph.eliminate_dead_code` on this graph only: fx's goes on into the cond /
    while_loop subgraphs with its own impurity test, which drops a cond whose branch only
    prints (a "log every N iterations" `if` in a staged loop never printed: tester t13
    repro 16)."""
    for node in reversed(graph.nodes):
        if node.op not in ("placeholder", "output") and not node.users and not is_impure(node):
            graph.erase_node(node)


# NOTE [torch's size assertions in a branch's graph]
# autoconv's own graphs run none of torch's runtime assertions on unbacked sizes (NOTE [facts a
# branch relies on] in runtime/staging/branch_facts.py): make_fx puts none into the top graph.
# But torch traces a cond / while_loop body again (`reenter_make_fx`), and puts into that body's
# graph the assertions of the symbols made there: an index a nested branch relies on
# (`nan_indices[0]` after `if nan_indices.size(0) == 0: return x`, its size `u1` made in the
# enclosing branch) became `_assert_scalar(u1 >= 1)` right after `u1`'s masked_select, run on
# every input, and the replay of an input whose path returns early raised torch's "Runtime
# assertion failed for expression u1 >= 1 on node 'ge'", no line of the user's, where Python
# returns (torchcde's `_linear_interpolation_coeffs_with_missing_values_scalar`, tester47 s06).
# Those nodes go, in every subgraph, as they are absent from the top graph. (A fact torch used
# to fold a later test of the same size would be a specialisation without its check: autoconv
# stages such a test as any other, it is not folded: tests/reference/test_tester47.py.)
def drop_size_assertions(graph_module: GraphModule) -> bool:
    """Erase torch's `_assert_scalar` nodes from `graph_module` and its subgraphs (NOTE
    [torch's size assertions in a branch's graph]); whether any went."""
    dropped = False
    for module in graph_module.modules():
        if not isinstance(module, GraphModule):
            continue
        for node in list(module.graph.nodes):
            if (node.op == "call_function" and not node.users
                    and node.target is torch.ops.aten._assert_scalar.default):
                module.graph.erase_node(node)
                dropped = True
    return dropped


def clean_up(graph_module: GraphModule, is_impure: Callable[[Node], bool],
             root: bool = True) -> GraphModule:
    """Dead code and common subexpressions in the graph and every cond / while_loop subgraph,
    then constant folding of the top graph (CSE and folding on functional graphs only).
    Returns the cleaned module (possibly a new object)."""
    if root:
        drop_size_assertions(graph_module)
    for name, child in list(graph_module.named_children()):
        if isinstance(child, GraphModule):
            setattr(graph_module, name, clean_up(child, is_impure, root=False))
    eliminate_dead_code(graph_module, is_impure)
    drop_unused_constants(graph_module)
    graph_module.recompile()
    graph_module = common_subexpressions(graph_module).graph_module
    if root:
        fold_constants(graph_module, is_impure)
    return graph_module


# NOTE [constants of dead nodes]
# make_fx keeps each tensor constant the trace met as an attribute of the graph module
# (`_tensor_constant1`), and dead code elimination removes the node that read it but not the
# attribute. Where the dead node read a tensor of the trace (a fake tensor the runtime made of a
# global to stand for an argument aliasing it, in a branch later specialised away: test_aliasing's
# view of the global), the ConcreteFunction's graph module held that FakeTensor, visible to the
# user (`cf.graph_module`) and keeping the trace's fake mode alive (NOTE [no value of a trace
# escapes] in trace_leaks.py). An attribute no `get_attr` reads any more is dropped.
def drop_unused_constants(graph_module: GraphModule) -> None:
    """Delete the tensor attributes of `graph_module` that no get_attr node of its graph reads
    (NOTE [constants of dead nodes])."""
    read = {node.target.split(".")[0] for node in graph_module.graph.find_nodes(op="get_attr")}
    for name, value in list(vars(graph_module).items()):
        if isinstance(value, torch.Tensor) and name not in read:
            delattr(graph_module, name)
    for table in (graph_module._buffers, graph_module._parameters):
        for name in [name for name in table if name not in read]:
            del table[name]


# NOTE [loops traced through torch's autograd rule]
# autoconv's trace gives the function its arguments detached, but reads a module's parameters
# (and globals) live, as tensors that require grad. A staged `while` one of whose operands is
# computed from them (`y = layer(y0)` before the loop, read in its body) reached torch's
# while_loop through its autograd rule, whose forward make_fx recorded: a
# `while_loop_stack_output` node (every trip's carries, stacked, for a backward that is not in
# the graph) and `select(stacked, 0, -1)` of each. Replayed, that node is an operator without
# autograd: the gradient of a loss through the loop with respect to the parameters was None
# under the python backend and zero under the fx backend, silently (torchdiffeq's fixed-grid
# solvers in a training step: tester35 s02). Where the stacks are read by nothing but those
# selects (the trace ran no backward through the loop), the node is the `while_loop` the code
# stages and its results are the loop's: the python backend runs it as a Python loop, which
# eager autograd differentiates, and the fx backend calls torch's operator, whose own autograd
# rule runs at the replay.
_STACK_OUTPUT = getattr(torch.ops.higher_order, "while_loop_stack_output", None)


def loops_without_stacks(root: GraphModule) -> bool:
    """Each `while_loop_stack_output` of `root` and its subgraphs whose stacks only give their
    last rows becomes the `while_loop` it recorded (NOTE [loops traced through torch's
    autograd rule]). Whether anything changed."""
    if _STACK_OUTPUT is None:
        return False
    modified = False
    for module in root.modules():
        if not isinstance(module, GraphModule):
            continue
        changed = False
        for node in list(module.graph.nodes):
            if node.op != "call_function" or node.target is not _STACK_OUTPUT:
                continue
            if not all(user.target is operator.getitem and isinstance(user.args[1], int)
                       and all(_is_last_row(select) or _trip_count_check(select) is not None
                               for select in user.users)
                       for user in node.users):
                continue  # (a backward traced through the loop reads every trip's carries)
            stacked = node.meta.get("val")
            rows = [None] * len(node.args[2])
            for item in list(node.users):
                for check in [_trip_count_check(user) for user in item.users]:
                    for checking in reversed(check or ()):  # (the rule's `loop_count >= 1`)
                        module.graph.erase_node(checking)
                for select in list(item.users):
                    rows[item.args[1]] = select.meta.get("val")
                    select.replace_all_uses_with(item)
                    module.graph.erase_node(select)
                if rows[item.args[1]] is None and isinstance(item.meta.get("val"), torch.Tensor):
                    rows[item.args[1]] = item.meta["val"].select(0, -1)
                item.meta["val"] = rows[item.args[1]]
            if isinstance(stacked, (tuple, list)) and len(stacked) == len(rows):
                rows = [row if row is not None or not isinstance(whole, torch.Tensor)
                        else whole.select(0, -1) for row, whole in zip(rows, stacked)]
            node.target = _WHILE_LOOP
            node.meta["val"] = tuple(rows)
            changed = True
        if changed:
            module.recompile()
            modified = True
    return modified


def _trip_count_check(node: Node) -> list | None:
    """For `sym_size(stacked, 0)` read only by the autograd rule's check that the loop made a
    trip (`_assert_scalar(size >= 1)`): the nodes of that check, in graph order; else None."""
    if not (node.op == "call_function" and node.target is torch.ops.aten.sym_size.int
            and node.args[1] == 0 and len(node.users) == 1):
        return None
    (compare,) = node.users
    if not (compare.target is operator.ge and compare.args == (node, 1) and compare.users
            and all(u.target is torch.ops.aten._assert_scalar.default and not u.users
                    for u in compare.users)):
        return None
    return [node, compare, *compare.users]


def _is_last_row(node: Node) -> bool:
    return (node.op == "call_function" and node.target is torch.ops.aten.select.int
            and len(node.args) == 3 and node.args[1] == 0 and node.args[2] == -1)


def in_place_to_functional(graph_module: GraphModule) -> PassResult:
    """`r = x.add_(1)` becomes `r = x.add(1)` where that is unobservable: `x` is a fresh tensor
    of this graph (not an input, not a view), nothing read `x` before (a view taken earlier
    would see the write) and the functional op gives the dtype, shape and strides the in-place
    one gave (`x_float.add_(y_double)` stays float; `x_float.add(y_double)` is double). Later
    reads of `x` read `r`."""
    graph = graph_module.graph
    modified = False
    order = {node: i for i, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        op = node.target
        if node.op != "call_function" or not isinstance(op, torch._ops.OpOverload):
            continue
        name = op.overloadpacket.__name__
        if not name.endswith("_") or name.startswith("_") or not node.args:
            continue
        functional = getattr(getattr(torch.ops.aten, name[:-1], None), op._overloadname, None)
        target = node.args[0]
        if (functional is None or not isinstance(target, Node) or not is_fresh(target)
                or any(order[user] < order[node] for user in target.users)
                or not _same_result(functional, node)):
            continue
        node.target = functional
        target.replace_all_uses_with(node, delete_user_cb=lambda user: user is not node)
        modified = True
    return PassResult(graph_module, modified)


def _same_result(op, node: Node) -> bool:
    """Whether `op` on `node`'s arguments gives a tensor of the dtype, shape and strides that
    `node` recorded, and has a derivative where it has floating inputs (`aten.copy`, the
    functional `copy_`, has none). Computed on fake or meta tensors; False where that cannot
    be known."""
    want = node.meta.get("val")
    if not isinstance(want, torch.Tensor):
        return False
    values = [n.meta.get("val") for n in node.all_input_nodes]
    if any(v is None for v in values):
        return False
    fake_mode = getattr(want, "fake_mode", None)

    def to_value(n):
        v = n.meta["val"]
        if not isinstance(v, torch.Tensor):
            return v
        if fake_mode is None:  # a graph traced on real tensors: predict on meta tensors
            v = torch.empty_strided(v.shape, v.stride(), dtype=v.dtype, device="meta")
        return v.detach().requires_grad_(v.is_floating_point())

    context = contextlib.nullcontext() if fake_mode is None else fake_mode
    try:
        with context, warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            args, kwargs = pytree.tree_map_only(Node, to_value, (node.args, node.kwargs))
            got = op(*args, **kwargs)
    except Exception:
        return False
    return (isinstance(got, torch.Tensor) and got.dtype == want.dtype
            and same_known_shape(got, want) and same_strides(got, want)
            and type(got.grad_fn).__name__ != "NotImplemented")


def same_strides(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dim() == b.dim() and all(statically_known_true(x == y)
                                      for x, y in zip(a.stride(), b.stride()))


def same_known_shape(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dim() == b.dim() and all(statically_known_true(x == y)
                                      for x, y in zip(a.shape, b.shape))


# Ops whose schema declares no alias, but whose result is (or may be) a view of their input.
_UNANNOTATED_ALIASES = (torch.ops.aten.lift_fresh, torch.ops.aten._unsafe_view,
                        torch.ops.aten.unsafe_split, torch.ops.aten.unsafe_split_with_sizes,
                        torch.ops.aten.unsafe_chunk,
                        # a custom autograd Function's results may be views of its arguments
                        # (NOTE [custom autograd Functions] in runtime/staging/autograd_functions.py)
                        autograd_functions.FUNCTION_APPLY.overloadpacket)


def is_fresh(node: Node) -> bool:
    """A tensor this graph allocated itself: not an input, constant or view of another."""
    if node.op != "call_function":
        return False
    op = node.target
    if isinstance(op, torch._ops.OpOverload):
        return not op._schema.is_mutable and not any(
            a.alias_info is not None for a in op._schema.returns) \
            and op.overloadpacket not in _UNANNOTATED_ALIASES
    return op is operator.getitem and isinstance(node.args[0], Node) and \
        node.args[0].target in (_COND, _WHILE_LOOP)


def _is_view(node: Node) -> bool:
    """`node`'s result may share memory with its first tensor argument."""
    op = node.target
    if node.op != "call_function":
        return False
    if isinstance(op, torch._ops.OpOverload):
        return any(a.alias_info is not None for a in op._schema.returns) \
            or op.overloadpacket in _UNANNOTATED_ALIASES
    return op is operator.getitem and isinstance(node.args[0], Node) and \
        node.args[0].target not in (_COND, _WHILE_LOOP)  # an item of split / unbind


def aliases(node: Node) -> set[Node]:
    """`node` and the views of it the graph takes (transitively)."""
    seen, todo = {node}, [node]
    while todo:
        for user in todo.pop().users:
            if user not in seen and _is_view(user):
                seen.add(user)
                todo.append(user)
    return seen


def drop_clones(graph_module: GraphModule) -> PassResult:
    """Remove clones the Python backend does not need in a graph that mutates nothing.

    Staging clones a body's inputs and outputs because torch's cond / while_loop refuse
    aliasing between them. Run as Python, with nothing written in place, a copy `c = clone(s)`
    can only be observed two ways, and stays where either is possible:

    * its layout: `clone` makes a tensor dense (or contiguous, when `reshape` records
      `clone(memory_format=contiguous)` before a `view`), so it goes only where the copy has
      the strides `s` has;
    * its identity: where `c` (or a view of it) is an output, the caller may write to it, so it
      goes only where `s` is memory this graph allocated that nothing else reads (an output
      is then never one of the inputs, and no two outputs share memory).

    A graph that writes in place (the in-place ops of a decomposed GRU cell on its own
    temporaries) keeps the clones of the memory it writes (`_written_memory`), and drops the
    others.
    """
    graph = graph_module.graph
    written = _written_memory(graph)
    if written is None:
        return PassResult(graph_module, False)
    modified = False
    outputs = set(graph.output_node().all_input_nodes)
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.ops.aten.clone.default:
            continue
        source = node.args[0]
        # A write into the copy (or a view of it) or into the memory it was copied from would
        # tell them apart; so would one the caller makes after (NOTE [operands the caller
        # writes after a cond]).
        if node in written or _memory_of(source) in written \
                or _written_by_caller(_memory_of(source)):
            continue
        value, before = node.meta.get("val"), getattr(source, "meta", {}).get("val")
        if not (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and same_strides(value, before)):
            continue
        if outputs & aliases(node) and not (is_fresh(source) and len(source.users) == 1) \
                and not _output_may_be_source(node, source, graph):
            continue
        node.replace_all_uses_with(source)
        graph.erase_node(node)
        modified = True
    for node in list(graph.nodes):  # reshapes to the shape a tensor already has
        if (node.op == "call_function" and node.target is torch.ops.aten.view.default
                and node not in outputs and _same_shape(node, node.args[0])):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            modified = True
    return PassResult(graph_module, modified)


# NOTE [operands the caller writes after a cond]
# A staged `if` that writes a tensor in place (`w = p * 1`, then `if x.sum() > 0: w.mul_(x)`)
# is captured as a branch that clones its operand and writes the copy (`c = clone(w_arg);
# mul_(c, x)`) and a caller that copies the branch's result back (`copy_(w, cond[0])`).
# In the branch nothing writes `w_arg`, so `drop_clones` took the copy as unneeded and the
# branch became `mul(w_arg, x)`: the same numbers, but autograd saves `w_arg` (the `w` of the
# caller) for `x`'s gradient, and the caller's `copy_` then wrote it: backward raised torch's
# "one of the variables needed for gradient computation has been modified by an inplace
# operation" where Python, whose `mul_` autograd rebases, runs (brk54b; err55). So a
# placeholder whose operand the calling graph writes in place (or that is such a placeholder
# of its own caller) is marked, and its clones stay. (A loop's carried values need no mark:
# the python backend copies them where the loop starts, `_fresh1`, unless the loop owns them.)
WRITTEN_BY_CALLER = "autoconv_written_by_caller"


def _written_by_caller(node) -> bool:
    return isinstance(node, Node) and node.op == "placeholder" \
        and bool(node.meta.get(WRITTEN_BY_CALLER))


def mark_written_by_caller(root: GraphModule) -> None:
    """Mark the placeholders of `root`'s cond branches whose operand the graph running them
    writes in place (NOTE [operands the caller writes after a cond])."""
    for module in root.modules():  # parents before their subgraphs
        if not isinstance(module, GraphModule):
            continue
        written = _written_memory(module.graph)
        for node in module.graph.nodes:
            if node.op != "call_function" or node.target is not _COND:
                continue
            functions, operands = node.args[1:3], node.args[3]
            marks = [isinstance(o, Node) and (written is None or _memory_of(o) in written
                                              or _written_by_caller(_memory_of(o)))
                     for o in operands]
            for function in functions:
                places = [n for n in getattr(module, function.target).graph.nodes
                          if n.op == "placeholder"]
                for place, mark in zip(places, marks):
                    if mark:
                        place.meta[WRITTEN_BY_CALLER] = True


def _output_may_be_source(node, source, graph: torch.fx.Graph) -> bool:
    """Whether the output `node`, a clone of `source`, may be `source` itself: `source` is (a
    view of) memory this graph allocated (`_written_memory` has ruled out writes to it) that
    no other output shares, and the graph returns `node` once and no view of it. Other readers
    of `source` in the graph are done with it when the graph returns. (A loop body returning
    its new hidden state `squeeze(gru_cell(...))` keeps it without a copy.)"""
    outputs = pytree.tree_leaves(graph.output_node().args[0])
    root = _memory_of(source)
    if (not isinstance(root, Node) or not isinstance(root.target, torch._ops.OpOverload)
            or not is_fresh(root)
            or sum(o is node for o in outputs) != 1 or aliases(node) & set(outputs) != {node}):
        return False
    return all(_memory_of(o) is not root for o in outputs if o is not node)


def _memory_of(node):
    """The node whose result owns the memory `node`'s result is (a view of): `node` itself
    where it is not a view."""
    while isinstance(node, Node) and _is_view(node) and node.args:
        node = node.args[0]
    return node


def _written_memory(graph: torch.fx.Graph) -> set[Node] | None:
    """The nodes (`_memory_of`) whose memory an op of `graph` writes in place; None where that
    cannot be told (a mutable op that is not an aten overload with a schema)."""
    written = set()
    for node in graph.nodes:
        op = node.target
        if node.op != "call_function" or not isinstance(op, torch._ops.OpOverload) \
                or not op._schema.is_mutable:
            continue
        for i, argument in enumerate(op._schema.arguments):
            if argument.alias_info is None or not argument.alias_info.is_write:
                continue
            value = node.args[i] if i < len(node.args) and not argument.kwarg_only \
                else node.kwargs.get(argument.name)
            if value is None:
                continue
            if not isinstance(value, Node):
                return None  # a list of tensors written (out= variants): not followed here
            written.add(_memory_of(value))
    return written


def _same_shape(node: Node, source) -> bool:
    # (known equal only: `==` of shapes holding a data-dependent size, a view of the rows a
    # mask chose to `(u1 // 2, 2, d)`, asked torch to guard on `u1 // 2 == u1` and stopped
    # the trace in its GuardOnDataDependentSymNode: tester41 s11)
    value, before = node.meta.get("val"), getattr(source, "meta", {}).get("val")
    return (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
            and same_known_shape(value, before))


# Ops whose result, of a one-element tensor, has that element's truth value.
_SAME_TRUTH = (torch.ops.aten.view.default, torch.ops.aten._unsafe_view.default,
               torch.ops.aten.reshape.default, torch.ops.aten.squeeze.default,
               torch.ops.aten.squeeze.dim, torch.ops.aten.squeeze.dims,
               torch.ops.aten.unsqueeze.default, torch.ops.aten.clone.default,
               torch.ops.aten.alias.default)


def predicate_output(graph_module: GraphModule) -> tuple[PassResult, list[str]]:
    """For a graph whose one result the python backend only tests with `bool()` (a
    while_loop's test, a cond branch inside it): return the tensor the trailing reshapes and
    copies of it start from, where that has one element.

    torch's while_loop wants a 0-d test, so the trace reshapes a (1,)-shaped comparison to
    `[]`, and a staged `and` / `or` copies its operand in one branch (cond's outputs may not
    alias its inputs); `bool()` of either is `bool()` of the start. Returns the pass result
    and the names of the cond branch subgraphs whose result is now the graph's (a staged
    `and` in the test): they are predicates too, for the caller to rewrite.
    """
    graph = graph_module.graph
    output = graph.output_node()
    result = output.args[0]
    single = isinstance(result, (tuple, list)) and len(result) == 1
    value = result[0] if single else result
    start = value
    while (isinstance(start, Node) and start.op == "call_function"
           and start.target in _SAME_TRUTH and isinstance(start.args[0], Node)
           and _one_element(start.args[0])):
        start = start.args[0]
    branches = []
    if (isinstance(start, Node) and start.target is operator.getitem and start.args[1] == 0
            and len(start.users) == 1  # nothing else sees the branches' result
            and isinstance(start.args[0], Node) and start.args[0].target is _COND
            and len(start.args[0].users) == 1):
        for branch in start.args[0].args[1:3]:
            if (isinstance(branch, Node) and branch.op == "get_attr" and len(branch.users) == 1
                    and sum(n.op == "get_attr" and n.target == branch.target
                            for n in graph.nodes) == 1):
                branches.append(branch.target)
    if start is value:
        return PassResult(graph_module, False), branches
    output.args = ((type(result)([start]) if single else start),)
    return PassResult(graph_module, True), branches


def _one_element(node: Node) -> bool:
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and statically_known_true(value.numel() == 1)


def fuse_linear(graph_module: GraphModule) -> PassResult:
    """`addmm(b, x, t(w))`, how make_fx records `nn.Linear`, becomes one `linear(x, w, b)`."""
    aten = torch.ops.aten
    graph = graph_module.graph
    modified = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not aten.addmm.default or node.kwargs:
            continue
        bias, inputs, weight_t = node.args
        if (isinstance(weight_t, Node) and weight_t.target is aten.t.default
                and len(weight_t.users) == 1):
            with graph.inserting_before(node):
                linear = graph.call_function(aten.linear.default,
                                             (inputs, weight_t.args[0], bias))
            linear.meta = dict(node.meta)
            node.replace_all_uses_with(linear)
            graph.erase_node(node)
            graph.erase_node(weight_t)
            _unbatch_linear(graph, linear)
            modified = True
    return PassResult(graph_module, modified)


def _unbatch_linear(graph: torch.fx.Graph, linear: Node) -> None:
    """`view(linear(view(x, [1, K]), w, b), [N])` for a 1-d `x` (how make_fx records
    `linear` of a vector, which `aten.linear` itself computes that way) becomes
    `linear(x, w, b)`: one call instead of three; where `x` is `squeeze(r, 0)` of a contiguous
    [1, K] row `r`, `view(linear(r, w, b), [N])` (NOTE [a vector's linear on its row])."""
    aten = torch.ops.aten
    inputs = linear.args[0]
    if not (isinstance(inputs, Node) and inputs.target is aten.view.default
            and len(inputs.users) == 1 and len(linear.users) == 1):
        return
    after = next(iter(linear.users))
    vector = inputs.args[0]
    value = getattr(vector, "meta", {}).get("val")
    if not (after.target is aten.view.default and isinstance(value, torch.Tensor)
            and value.dim() == 1 and list(inputs.args[1]) == [1, value.shape[0]]
            and list(after.args[1]) == [linear.meta["val"].shape[-1]]):
        return
    row = _squeezed_row(vector)
    if row is not None:
        linear.args = (row, *linear.args[1:])
        graph.erase_node(inputs)
        return
    linear.args = (vector, *linear.args[1:])
    linear.meta = dict(after.meta)
    after.replace_all_uses_with(linear)
    graph.erase_node(after)
    graph.erase_node(inputs)


# NOTE [a vector's linear on its row]
# A cell run on one unbatched step (`nn.GRUCell` of a 1-d input: a greedy decoder's loop)
# squeezes its [1, K] result to the vector `h`, and `linear(h, w, b)` of the next layer views
# `h` as [1, K] again for its `addmm` (as make_fx records it). The `addmm` of that view reads
# the very memory of the row, in the same layout where the row is contiguous, so it is run
# on the row itself: `view(linear(row, w, b), [N])`, the `addmm` make_fx recorded, bit for bit
# (1-d `linear` went through two more views in C++: 1.7 µs of a 6.2 µs `linear` + `argmax`
# of gru_greedy's trip, replay41). The squeeze stays for its other readers (the carried `h`).


def _squeezed_row(vector: Node) -> Node | None:
    """`r` where `vector` is `squeeze(r, 0)` of a contiguous [1, K] row `r`, else None."""
    aten = torch.ops.aten
    if not (vector.op == "call_function" and not vector.kwargs and (
            vector.target is aten.squeeze.dim and vector.args[1:] == (0,)
            or vector.target is aten.squeeze.dims and list(vector.args[1]) in ([0], [-2]))):
        return None
    row = vector.args[0]
    value = row.meta.get("val") if isinstance(row, Node) else None
    if not (isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] == 1
            and statically_known_true(value.stride()[1] == 1)
            and statically_known_true(value.stride()[0] == value.shape[1])):
        return None
    return row


# Constants folded by `fold_into_branches`: at most this many elements each (a mask over a few
# dozen boxes, not a table the graph would otherwise build lazily).
_FOLDED_NUMEL = 4096


def fold_into_branches(root: GraphModule) -> set[GraphModule]:
    """Replace tensors `root`'s graphs compute from constants alone by module attributes, made
    once when the backend is built; returns the modules changed (to clean up and recompile).

    `nms_mask` builds `index = torch.arange(n)` and, in each of its 32 unrolled `if keep[i]:`
    branches, `index <= i`: an op per trip whose result is the same on every call. A value
    is known when its op is a deterministic functional aten op (no write, no alias, not
    random, not `empty`) of known CPU tensors and Python numbers, or when it is a cond
    branch's placeholder whose operand is known (a branch subgraph only one cond runs). A
    known tensor replaces its node only where it cannot be written or escape: every reader
    is another folded node or a functional op making a new tensor (`is_fresh`), so no view,
    output, in-place write or control-flow operand ever holds the shared constant.
    """
    known: dict[Node, torch.Tensor] = {}
    changed: set[GraphModule] = set()
    runs = {}  # id(subgraph) -> how many control-flow nodes run it (any graph)
    for module in root.modules():
        if isinstance(module, GraphModule):
            for node in module.graph.nodes:
                if node.op == "call_function" and node.target in _CONTROL_FLOW:
                    for holder in node.args[:2] if node.target is _WHILE_LOOP \
                            else node.args[1:3]:
                        target = getattr(module, holder.target)
                        runs[id(target)] = runs.get(id(target), 0) + 1
    counter = itertools.count()

    def walk(module: GraphModule) -> None:
        graph = module.graph
        written = _written_storages(graph)  # NOTE [constants written in place are not known]
        for node in graph.nodes:
            if node.op == "call_function" and node.target is _COND:
                _, true_fn, false_fn, operands = node.args
                for branch in (true_fn, false_fn):
                    sub = getattr(module, branch.target)
                    if runs.get(id(sub)) != 1:
                        continue
                    places = [n for n in sub.graph.nodes if n.op == "placeholder"]
                    for place, operand in zip(places, operands):
                        if isinstance(operand, Node) and operand in known:
                            known[place] = known[operand]
                    walk(sub)
            elif node.op == "placeholder" and node in known and (
                    written is None or node in written):
                del known[node]
            elif _foldable(node) and written is not None and node not in written and all(
                    n in known for n in node.all_input_nodes):
                args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs),
                                                     lambda n: known[n])
                with torch.no_grad():
                    value = node.target(*args, **kwargs)
                if (isinstance(value, torch.Tensor) and value.device.type == "cpu"
                        and value.numel() <= _FOLDED_NUMEL):
                    known[node] = value
        for node in list(graph.nodes):
            if node.op != "call_function" or node not in known or not node.all_input_nodes:
                continue  # (a creation op alone, `arange(n)`, is one call: left as it is)
            if all(user in known or (is_fresh(user) and user.target not in _CONTROL_FLOW)
                   for user in node.users):
                name = f"_folded{next(counter)}"
                while hasattr(module, name):
                    name = f"_folded{next(counter)}"
                module.register_buffer(name, known[node], persistent=False)
                with graph.inserting_before(node):
                    constant = graph.get_attr(name)
                constant.meta = dict(node.meta)
                node.replace_all_uses_with(constant)
                known[constant] = known[node]
                graph.erase_node(node)
                changed.add(module)

    walk(root)
    return changed


# NOTE [constants written in place are not known]
# A tensor made from constants alone (`base = torch.zeros(3)`) is not the same on every call
# where the graph writes it in place later, itself or through a view (`v = base[1:]`, a staged
# `if` doing `v.add_(1)`: the cond's result copied back into the slice). Folded, `base.sum()`
# read the zeros made when the backend was built: the replay's `x + base.sum() * 10` was
# [1.] for Python's [21.] (brk54b), where torch.export and torch.compile, which fold nothing
# here, were right. So a node whose memory any op of its graph writes is never known (nor is
# anything computed from it), and where an op writes memory its schema does not name, nothing
# in that graph is.

def _written_storages(graph: torch.fx.Graph) -> set[Node] | None:
    """The nodes whose memory an op of `graph` writes in place (all the nodes sharing it, by
    `_storage`); None where an op writes memory it does not name."""
    roots: dict = {}
    written_roots = set()
    for node in graph.nodes:
        if _mutates(node):
            written = _written(node)
            if written is None:
                return None
            written_roots.update(_storage(w, roots) for w in written)
    return {node for node in graph.nodes if _storage(node, roots) in written_roots}


def _foldable(node: Node) -> bool:
    """A deterministic functional aten op returning a new tensor (see `fold_into_branches`)."""
    op = node.target
    return (node.op == "call_function" and isinstance(op, torch._ops.OpOverload)
            and op.namespace == "aten" and is_fresh(node)
            and torch.Tag.nondeterministic_seeded not in op.tags
            and not op.overloadpacket.__name__.startswith(("empty", "new_empty", "_"))
            and len(op._schema.returns) == 1)
