"""make_fx and non-strict torch.export (autoconv's own tracing): the operators called directly.

Under make_fx (outside dynamo) the higher-order operators are called directly: `torch.cond`
and `torch.while_loop` would first run dynamo over the bodies, which costs 40-300 ms a
statement, while make_fx traces each body itself in a few milliseconds. What dynamo adds there
is lifting the tensors a body reads by closure (a module's parameters, a tensor of an enclosing
body) into operands; make_fx keeps them as constants of the body's graph. So after a direct
call the new node is rewritten: each tensor constant of its bodies becomes a body input and an
operand (see `_lift_constants`).
"""

from __future__ import annotations

import contextlib

import torch
from torch._C._functorch import TransformType
from torch._higher_order_ops.cond import cond_op
from torch._higher_order_ops.while_loop import while_loop_op
from torch._subclasses.fake_tensor import FakeTensor
from torch.fx.experimental import proxy_tensor
from torch.fx.experimental.symbolic_shapes import has_free_unbacked_symbols
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from .. import grad_mode, outside_writes
from ..registry import StagingTracer
from .func import refuse_transform
from .zero_trips import guarded_while_loop, needs_zero_trip_guard


def make_fx_tracing() -> bool:
    """True when make_fx is tracing (the registry has ruled out dynamo before)."""
    return (proxy_tensor._CURRENT_MAKE_FX_TRACER is not None
            and proxy_tensor.get_proxy_mode() is not None)


class MakeFxTracer(StagingTracer):
    """Tensors under make_fx: `cond_op` / `while_loop_op` nodes whose bodies make_fx traces,
    their closure constants lifted into operands."""

    name = "make_fx"

    def is_staged(self, value) -> bool:
        return isinstance(value, torch.Tensor) and make_fx_tracing()

    def is_tracing(self) -> bool:
        return make_fx_tracing()

    def cond(self, pred, true_fn, false_fn, operands):
        """The branches may return any pytree of tensors (of one structure). The node's
        outputs are its leaves, since torch.export cannot save nested outputs of an operator.
        """
        refuse_transform("if statement", allowed=(TransformType.Vmap,))
        structure = []
        autograd = _caller_autograd()
        sized = {}  # NOTE [cond outputs of data-dependent sizes]

        def flat(fn, first):
            def run(*args):
                leaves, spec = pytree.tree_flatten(autograd(_recording_grad_mode(fn))(*args))
                structure.append(spec)
                leaves = _flattened(leaves, sized, first)
                # A cond kept for the asserts or prints in it still gives one output:
                # torch.export cannot check or save an operator node without one.
                return tuple(leaves) or (torch.zeros((), dtype=torch.bool, device=pred.device),)
            return run

        operands = _tracked(operands)
        try:
            out = list(_call_lifting_constants(
                lambda: cond_op(pred, flat(true_fn, True), flat(false_fn, False), operands),
                torch.ops.higher_order.cond))
        except Exception:
            if not sized.get("dropped"):
                raise
            # (the true branch flattened an output the false branch gives other sizes: traced
            # again with it kept as it is)
            structure.clear()
            sized = {"shapes": {}, "kept": sized["dropped"]}
            out = list(_call_lifting_constants(
                lambda: cond_op(pred, flat(true_fn, True), flat(false_fn, False), operands),
                torch.ops.higher_order.cond))
        for i, shape in sized.get("shapes", {}).items():
            out[i] = out[i].view(shape)
        return pytree.tree_unflatten(out[: structure[0].num_leaves], structure[0])

    def while_loop(self, cond_fn, body_fn, carried, additional):
        refuse_transform("while loop", allowed=())
        autograd = _caller_autograd()
        carried, additional = _tracked(carried), _tracked(additional)

        def loop(carried, additional):
            return _call_lifting_constants(
                lambda: while_loop_op(autograd(_recording_grad_mode(cond_fn)),
                                      autograd(_recording_grad_mode(body_fn)), carried,
                                      additional),
                torch.ops.higher_order.while_loop)

        if needs_zero_trip_guard(carried, additional):
            return guarded_while_loop(loop, cond_fn, carried, additional)
        return loop(carried, additional)


# NOTE [cond outputs of data-dependent sizes]
# torch.cond merges each output's strides across the branches by testing them (`== 0`,
# `== 1`), and a contiguous tensor of two or more dimensions with a size only the graph knows
# (`k_max = torch.max(k).item() + 1`, a count `nonzero()` gave before the statement) has a
# stride `Max(1, u0 + 1)` that no such test can decide: torch raised its data-dependent guard
# error even where both branches give the same sizes, the same tensor updated in place
# (torch-kmeans' ConstrainedKMeans, `cluster_capacity` of shape (2, u0 + 1) in the `if
# not_assigned.any():` of its assignment loop). Such an output is flattened in each branch,
# whose one stride is 1, and viewed back to its sizes after the node: only where the false
# branch gives the very sizes (the same expressions) the true branch gave, so that the sizes
# viewed back are those of either branch and mean the same outside it (a symbol either
# branch made itself cannot be in both). The true branch is traced first, so where the false
# branch's sizes differ the node is traced again with that output left as it is (the merge
# of a flattened and an unflattened output failed: tests/reference/test_subscripts.py's rows
# viewed as pairs, specialised for one path in the lead's clean clone).


def _sizes(shape) -> tuple:
    return tuple(s.node.expr if isinstance(s, torch.SymInt) else s for s in shape)


def _flattened(leaves, sized, first) -> list:
    """`leaves` of a branch's output, those of data-dependent sizes flattened (see NOTE [cond
    outputs of data-dependent sizes]); `sized` records, from the true branch (`first`), the
    positions and sizes to view back, and drops those the false branch gives other sizes."""
    if first and not sized.get("shapes"):
        kept = sized.get("kept", ())
        sized["shapes"] = {
            i: leaf.shape for i, leaf in enumerate(leaves)
            if i not in kept and isinstance(leaf, torch.Tensor) and leaf.dim() >= 2
            and has_free_unbacked_symbols(leaf.shape)}
    shapes = sized.get("shapes", {})
    if not first:
        for i in [i for i, shape in shapes.items()
                  if i >= len(leaves) or not isinstance(leaves[i], torch.Tensor)
                  or _sizes(leaves[i].shape) != _sizes(shape)]:
            del shapes[i]
            sized.setdefault("dropped", set()).add(i)
    return [leaf.reshape(-1) if i in shapes else leaf for i, leaf in enumerate(leaves)]


# NOTE [autograd in staged bodies]
# torch dispatches a higher-order operator's autograd rule first and traces its bodies below
# the Autograd dispatch key (`_AutoDispatchBelowAutograd`), so a body that differentiates
# (`y = x.detach().requires_grad_(); torch.autograd.grad(f(y), y)`, as every line search over
# an objective does) finds no grad_fn on what it computed. A staged body is the user's code
# between the statement's lines: it runs with the dispatch keys of the code around the
# statement. The Autograd keys the caller had are taken off the exclude set while a body is
# traced (as torch's own invoke_subgraph / materialize_as_graph force the keys they captured);
# autograd.grad then runs its backward there, and its ops are recorded into the body's graph as
# any others: the body's graph computes the gradient explicitly, and replays need no autograd.
# For the same reason a body runs in the caller's grad mode (torch's while_loop traces its
# bodies in its autograd rule's forward, where grad is disabled: a body without its own
# `torch.enable_grad()` found no graph to differentiate), and an operand that requires grad
# before the statement does in the body too (torch gives bodies copies of their operands that do
# not: `w.requires_grad_()` before a loop whose body differentiates with respect to `w`),
# see `_Operands.requires_grad` in staging/torch.py.
_AUTOGRAD_KEYS = (torch._C.DispatchKey.AutogradFunctionality,
                  torch._C.DispatchKey.ADInplaceOrView)


def _caller_autograd():
    """A wrapper for bodies: each runs with the Autograd keys and the grad mode the caller has
    (see NOTE [autograd in staged bodies])."""
    caller = torch._C._dispatch_tls_local_exclude_set()
    keys = [key for key in _AUTOGRAD_KEYS if not caller.has(key)]
    grad = torch.is_grad_enabled()

    def wrap(body):
        def run(*args):
            with _grad_enabled(grad):
                excluded = torch._C._dispatch_tls_local_exclude_set()
                kept = excluded
                for key in keys:
                    if kept.has(key):
                        kept = kept.remove(key)
                if kept is excluded or kept == excluded:
                    return body(*args)
                with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(),
                                                     kept):
                    return body(*args)
        return run
    return wrap


class _grad_enabled:
    """`torch.set_grad_enabled(mode)` without a trace of it in any graph: torch's operators
    run their bodies under the grad mode of their autograd rule (`WhileLoopAutogradOp.forward`
    runs with grad disabled), not the caller's. Nothing to record: the mode is the caller's,
    which the graph around the statement already has."""

    def __init__(self, mode: bool):
        self.mode = mode

    def __enter__(self):
        self.before = torch.is_grad_enabled()
        if self.before is not self.mode:
            with torch._C.DisableTorchFunction():
                torch._C._set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        if torch.is_grad_enabled() is not self.before:
            with torch._C.DisableTorchFunction():
                torch._C._set_grad_enabled(self.before)


def _recording_grad_mode(body):
    """`body`, recording its grad-mode changes into its own graph when an autoconv Function
    traces (make_fx traces a body under a torch-function mode stack of its own), and reading
    values of the enclosing graph's tensors as its own (NOTE [values read from a tensor of an
    enclosing graph])."""
    def run(*args):
        # (NOTE [an outside tensor read by its own name in a body updating it as an argument])
        with _ReadingEnclosingTensors(), outside_writes.resumed() or contextlib.nullcontext():
            if not grad_mode.recording():
                if torch.compiler.is_exporting():
                    with _WatchingInferenceMode():
                        return body(*args)
                return body(*args)
            with grad_mode.RecordGradMode():
                return body(*args)
    return run


class _WatchingInferenceMode(TorchFunctionMode):
    """Under torch.export: refuses a torch call a body makes in another inference mode than
    the body began in. Nothing of `torch.inference_mode()` reaches the exported graph, whose
    branch then computed gradients through it (NOTE [grad mode in branches]); autoconv's own
    trace refuses it in `grad_mode.RecordGradMode`."""

    def __enter__(self):
        self.entry = torch.is_inference_mode_enabled()
        return super().__enter__()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if torch.is_inference_mode_enabled() is not self.entry:
            from ..branch_grads import refuse_inference_mode_change
            from ..context import staged_statement

            raise refuse_inference_mode_change(staged_statement() or "statement")
        grad_mode.refuse_leaf_update(func, args)  # NOTE [leaves updated in place in staged bodies]
        return func(*args, **(kwargs or {}))


# NOTE [values read from a tensor of an enclosing graph]
# A body reads by closure the tensors of the graph around it that are not its operands: a field
# of an object the statement only reads (`while s.v.item() >= c`, `s` a local object), a tensor
# of an enclosing body. make_fx holds such a tensor as a constant of the body's graph, which
# `_lift_constants` makes an operand afterwards; but an op that reads its value (`.item()`,
# aten._local_scalar_dense) on an untracked tensor counts as one on constants only: make_fx runs
# it outside the graph, and the unbacked number it gives has no node ("u0 is not tracked with
# proxy", or at the top level "Pending unbacked symbols {u0} not in returned outputs": fuzz
# seed 1, program 68). `(s.v + 0).item()` worked, since the sum is a node of the body. So a
# value read of a fake tensor this body's trace does not track reads an alias of it, made in
# the body: a node whose input is that constant, lifted as any other.
class _ReadingEnclosingTensors(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in outside_writes.VALUE_READS and args and isinstance(args[0], FakeTensor) \
                and not torch.compiler.is_dynamo_compiling():
            mode = proxy_tensor.get_proxy_mode()
            if mode is not None and proxy_tensor.get_proxy_slot(args[0], mode.tracer,
                                                                None) is None:
                args = (torch.ops.aten.alias.default(args[0]), *args[1:])
        return func(*args, **kwargs)


# NOTE [operands the tracer does not track]
# An operand this trace does not track, a tensor of an enclosing body (or a real one) that the
# enclosing statement did not pass in as an operand (`r = self.jac` where the solver object
# holds it), is a constant of this graph. When a body also reads it by closure (torchmin's
# trust-ncg: `self.hessp(d)` reads the gradient the loop starts `r` from), make_fx registers
# it on the body's graph module, which torch registers on this graph's module before it
# records the node: looking the operand up, fx then found it among that module's buffers and
# read it by the dotted name `while_loop_body_graph_0._tensor_constant11`, which fails
# ("'Module' object has no attribute ..."). Such an operand is given as a view of itself,
# made here: a tensor this trace tracks (and one that shares the memory, for writes).
def _tracked(operands) -> tuple:
    tracer = proxy_tensor.get_proxy_mode().tracer
    return tuple(
        torch.ops.aten.alias.default(value)
        if isinstance(value, torch.Tensor)
        and proxy_tensor.get_proxy_slot(value, tracer, None) is None else value
        for value in operands)


def _call_lifting_constants(call, operator):
    """`call()`, then turn every tensor the new operator node's bodies hold as a constant into
    an extra operand of the node."""
    tracer = proxy_tensor.get_proxy_mode().tracer
    graph = tracer.graph
    last = graph._root.prev  # nodes created by the call come after it
    out = call()
    node = last.next
    while node is not graph._root:
        # (an operand that requires grad, a parameter's value, takes the loop through torch's
        # autograd rule, whose forward is a `while_loop_stack_output` node: NOTE [loops traced
        # through torch's autograd rule] in autoconv/graph_passes.py)
        if node.target is operator or (operator is torch.ops.higher_order.while_loop
                                       and node.target is _STACK_OUTPUT):
            _lift_constants(tracer, node)
            _drop_reads_of_known_values(tracer, node)
            if torch.compiler.is_exporting():
                _drop_profiler_ranges(tracer, node)
        node = node.next
    return out


# NOTE [profiler ranges in exported bodies]
# `with torch.profiler.record_function("step"):` in a body traces as a `_record_function_enter_new`
# node, whose value is a profiler object, and an exit node that takes it. torch.export drops
# such nodes from the top graph (its dead-code pass counts them as pure: "runtimes provide their
# own profiling") but not from an operator's bodies, and its verifier then refused the program
# ("Node.meta _record_function_enter_new has invalid val field ScriptObject", tester t14 repro
# 20). Under export they are dropped from bodies too; elsewhere (autoconv's own graphs, make_fx)
# they stay and annotate the profile as in Python.
_PROFILER_OPS = (torch.ops.profiler._record_function_enter.default,
                 torch.ops.profiler._record_function_enter_new.default,
                 torch.ops.profiler._record_function_exit._RecordFunction)


def _drop_profiler_ranges(tracer, node) -> None:
    """Drop the profiler range nodes from `node`'s bodies (NOTE [profiler ranges in exported
    bodies]); a nested operator's bodies had theirs dropped when it was traced."""
    for i in _BODY_ARGS[node.target]:
        body = getattr(tracer.root, node.args[i].target)
        ranges = [n for n in body.graph.nodes
                  if n.op == "call_function" and n.target in _PROFILER_OPS]
        if not ranges:
            continue
        for n in reversed(ranges):  # exits (users of their enter) first
            if not n.users:
                body.graph.erase_node(n)
        body.recompile()


# NOTE [reads of values the trace knows]
# A fake tensor whose value the trace knows (`c = torch.tensor(1)`, and ops on it: FakeTensor.
# constant) gives its value to `.item()` as a Python number: `while c.item() <= y` compares
# `y` with 1. make_fx still records the read (`aten.item`, which pre-dispatch tracing does not
# decompose) as a node, with no users and no `val`, since its result is no tensor or symbolic
# number. torch.export's dead-code pass erases it from the bodies it reaches, but where the
# operator holding it is itself dead (a `while` whose carried values nothing reads, in a staged
# branch: fuzz seed 3603, program 150) the pass erases that operator's node and leaves its
# bodies on the module unvisited, and torch's verifier, which walks every module, refused the
# program ("Node.meta item is missing val field"). Such a node computes nothing the graph
# reads: it is dropped from each body when its operator is traced, under every tracer.
def _drop_reads_of_known_values(tracer, node) -> None:
    """Drop from `node`'s bodies the nodes whose result the trace took as a Python value
    (NOTE [reads of values the trace knows]); a nested operator's bodies had theirs dropped
    when it was traced."""
    for i in _BODY_ARGS[node.target]:
        body = getattr(tracer.root, node.args[i].target)
        dead = [n for n in body.graph.nodes
                if n.op == "call_function" and not n.users and "val" not in n.meta
                and not n.is_impure()]
        for n in reversed(dead):
            body.graph.erase_node(n)
        if dead:
            body.recompile()


# Where each operator keeps its bodies and the operands extra inputs are appended to.
_STACK_OUTPUT = getattr(torch.ops.higher_order, "while_loop_stack_output", None)
_BODY_ARGS = {torch.ops.higher_order.cond: (1, 2), torch.ops.higher_order.while_loop: (0, 1),
              _STACK_OUTPUT: (0, 1)}
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
    if fake_mode is not None:
        # (outside this trace: NOTE [meta values of lifted constants])
        with proxy_tensor.disable_proxy_modes_tracing():
            metas = [fake_mode.from_tensor(value, static_shapes=True) for value, _ in constants]
    else:
        metas = [value for value, _ in constants]
    for b, body in enumerate(bodies):
        graph = body.graph
        inputs = list(graph.find_nodes(op="placeholder"))
        for i, (value, readers) in enumerate(constants):
            where = (graph.inserting_after(inputs[-1]) if inputs
                     else graph.inserting_before(next(iter(graph.nodes))))
            with where:
                inputs.append(graph.placeholder(f"lifted_{i}"))
            inputs[-1].meta["val"] = metas[i]
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


# NOTE [meta values of lifted constants]
# A lifted constant's placeholder is given a fake tensor of this trace's fake mode as its
# "val". For a view (`p = x[0]` that a helper the body calls reads by closure; the predicate of
# an enclosing `if`, `view(lt, [])`, that a loop on the branch's path reads: NOTE [loops on the
# branch's path] in torch.py) the fake mode makes its base, then replays the view on it
# (`base.as_strided(...)`), and under make_fx's proxy mode that replay was traced into the graph
# being built: an `as_strided` node reading the fresh base, a tensor this trace does not track,
# as a constant. Inside a staged body, the enclosing statement then lifted it in turn, up to the
# top graph, where it stayed a fake tensor ("left a value of the trace (FakeTensor) as the graph
# constant": fuzzer seed 20261129 program 9). The fake values are made with the proxy mode off:
# nothing of their making is traced.


def _operand(tracer, value):
    tracked = proxy_tensor.get_proxy_slot(value, tracer, None)
    if tracked is not None:
        return tracked.proxy.node
    return tracer.create_arg(value)  # a constant of this graph
