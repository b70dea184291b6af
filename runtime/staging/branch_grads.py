"""Whether a staged `if`'s outputs require grad where Python's do (NOTE [grad mode in branches]).

NOTE [grad mode in branches]
`with torch.no_grad():` (or `torch.set_grad_enabled(False)`, `torch.inference_mode()`, a
`@torch.no_grad()` helper, `.detach()`) in one branch of a staged `if`: in Python the value that
branch makes does not require grad, the other branch's does. torch.cond's autograd rule is one
`autograd.Function` over both branches: every output requires grad where an operand does and
grad mode is on at the operator, whichever branch ran (torch/_higher_order_ops/cond.py, "all the
output would require grad"), and the branch that cut the gradient gives a zero one. So under
torch.export and torch.compile the no_grad path's result required grad, `autograd.grad` of it
gave zeros where Python raises, and `.backward()` filled `.grad` with zeros (silently; autoconv's
python backend, a Python `if` over the branches, was right). The reverse under a caller's
no_grad: `torch.enable_grad()` inside a branch gave an output without grad, and no gradient.

Each branch's graph tells which outputs may require grad: outputs computed from some operand
while grad mode is on, where every floating operand that may require grad counts (an exported
program may be called with any of its floating inputs requiring grad; outside export the graph
is keyed by, or dynamo guards on, the inputs' requires_grad, and a branch passing through an
operand that happens not to require grad is torch.cond's own semantics, not a grad-mode
region). An operand made of Python numbers, or of values without grad, cannot (NOTE [operands
that can require grad]). Per output:

- no branch can make it require grad: it is detached after the operator, Python's result on
  every path (no grad, no gradient);
- every branch may: left alone;
- some branch may and another cut it (it could require grad but for a grad-mode region or a
  detach), where gradients may flow: refused at the `if` line (no graph gives a value that
  requires grad on one path only), as is a branch enabling grad in a statement staged under
  no_grad (the operator's outputs then never require grad). A branch that makes it from no
  input that could require grad (a bool an `and` / `or` value promotes, `torch.zeros_like`)
  cut nothing: torch.cond's own semantics, left as it is (README, Known shapes).

A staged loop's paths are zero trips (the value before it) and some (the body's): a value the
body cuts is detached where its value before the loop cannot require grad, refused where it
may. The grad-mode changes are read from the graph: `_set_grad_enabled` nodes (autoconv's own
trace, NOTE in grad_mode.py, and dynamo), `wrap_with_set_grad_enabled` regions (torch.export),
inference-mode regions (dynamo) and `detach`; an in-place update keeps its tensor's flag (`w -=
lr * g` under no_grad), and a body output that requires grad as traced does (`requires_grad_()`
leaves no node). Under dynamo the graph is the one dynamo is building, read by
`_dynamo_branch_grads`, which dynamo calls for real (a constant in, constants out).
"""

from __future__ import annotations

import operator

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils import _pytree as pytree

from ..errors import StagingError

__all__ = ["settled", "settled_loop", "refuse_inference_mode_change"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop
_CLONE = (torch.ops.aten.clone.default, torch.clone, torch.Tensor.clone)
_DETACH = (torch.ops.aten.detach.default, torch.ops.aten.detach_.default, torch.detach,
           torch.Tensor.detach)
_ENTER_INFERENCE = getattr(torch.autograd.grad_mode, "_enter_inference_mode", None)
_EXIT_INFERENCE = getattr(torch.autograd.grad_mode, "_exit_inference_mode", None)
_CUTS = tuple(t for t in (torch._C._set_grad_enabled, _ENTER_INFERENCE, _EXIT_INFERENCE)
              if t is not None)


def _set_grad_region():
    return getattr(torch.ops.higher_order, "wrap_with_set_grad_enabled", None)


# Ops whose result is a new tensor that takes only the shape, dtype and device of its input
_FRESH = ("ones_like", "zeros_like", "empty_like", "full_like", "rand_like", "randn_like",
          "randint_like", "new_zeros", "new_ones", "new_full", "new_empty")


def _fresh(target) -> bool:
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    return name.split(".")[0] in _FRESH


def _in_place(op: str, target) -> bool:
    if op == "call_method":
        return isinstance(target, str) and target.endswith("_") and not target.startswith("_")
    if op != "call_function":
        return False
    if target in (operator.iadd, operator.isub, operator.imul, operator.itruediv,
                  operator.ifloordiv, operator.ipow, operator.imod):
        return True
    schema = getattr(target, "_schema", None)
    return schema is not None and schema.name.endswith("_") and getattr(
        schema, "is_mutable", False)


def _value(node):
    return node.meta.get("val", node.meta.get("example_value"))


def _differentiable(value) -> bool:
    return isinstance(value, torch.Tensor) and (value.dtype.is_floating_point
                                                 or value.dtype.is_complex)


def outputs_may_require_grad(module: torch.fx.GraphModule, enabled: bool, inputs=None) -> list:
    """Per output of `module` (a branch's graph, flat), whether it may require grad when the
    graph runs in grad mode `enabled`: computed from an input that may (`inputs`, per
    placeholder; every floating one where None) while grad mode is on (NOTE [grad mode in
    branches])."""
    return _flags(module, module.graph, enabled, inputs)


def outputs_computed_from_inputs(module: torch.fx.GraphModule, enabled: bool,
                                 inputs=None) -> list:
    """`outputs_may_require_grad` as if the graph changed no grad mode and detached nothing:
    per output, whether Python's value could require grad but for those cuts. Where not, the
    value has no gradient whatever the branch does (made from integers, constants): a path
    without grad there is torch.cond's own semantics, not a cut (NOTE [grad mode in
    branches])."""
    return _flags(module, module.graph, enabled, inputs, cuts=False)


def _flags(module, graph, enabled: bool, inputs=None, stop=None, cuts=True, table=None):
    """`outputs_may_require_grad` of `graph` (its get_attr targets on `module`); with `stop`,
    a node of it, whether that node's value may require grad. Without `cuts`, grad-mode
    changes and detaches are read as if absent. With `table` (a dict), every node's flag is
    put in it. `inputs` may also be a dict, placeholder -> flag (True where absent)."""
    if torch.compiler.is_dynamo_compiling():
        return _walk(module, graph, enabled, inputs, stop, cuts, table)
    # The walk reads the dtype and requires_grad of every node's fake value while the trace's
    # torch-function modes are on (make_fx's, autoconv's own: outside_writes, grad_mode), and
    # each such read of a tensor subclass's attribute is dispatched through all of them: 80k
    # dispatches, a tenth of test_restaging's counts_match_python export (session 35). The
    # walk records nothing, so it reads the values with torch functions off.
    with torch._C.DisableTorchFunction():
        return _walk(module, graph, enabled, inputs, stop, cuts, table)


def _walk(module, graph, enabled: bool, inputs=None, stop=None, cuts=True, table=None):
    may = {} if table is None else table
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for i, node in enumerate(placeholders):
        if isinstance(inputs, dict):
            given = inputs.get(node, True)
        else:
            given = inputs[i] if inputs is not None and i < len(inputs) else True
        value = _value(node)
        may[node] = bool(given) and (value is None or _differentiable(value))

    def flag(arg) -> bool:
        found = may.get(arg, False) if isinstance(arg, torch.fx.Node) else False
        return any(found) if isinstance(found, list) else bool(found)

    names_of = {}  # node name -> node, built where a custom Function's result is met
    modes = []  # grad modes before each inference-mode region entered
    region = _set_grad_region()
    returned = {arg for node in graph.find_nodes(op="output")
                for arg in pytree.tree_leaves(node.args[0]) if isinstance(arg, torch.fx.Node)}
    reached = False
    for node in graph.nodes:
        op, target = node.op, node.target
        if reached or (stop is not None and op == "output"):
            break
        reached = node is stop  # (`stop` itself is computed, then the walk ends)
        if op == "placeholder":
            continue
        if node in returned and ((op == "call_function" and target in _CLONE)
                                 or (op == "call_method" and target == "clone")):
            # the runtime's copy of each output (`_unalias` in torch.py), made in the
            # statement's grad mode after the body's own regions: the body's value
            may[node] = flag(node.args[0])
            continue
        if op == "output":
            return [flag(arg) for arg in pytree.tree_leaves(node.args[0])]
        if not cuts and op == "call_function" and target in _CUTS:
            may[node] = False
            continue
        if op == "call_function" and target is torch._C._set_grad_enabled:
            enabled = bool(node.args[0])
            may[node] = False
            continue
        if op == "call_function" and _ENTER_INFERENCE is not None and target is _ENTER_INFERENCE:
            modes.append(enabled)
            enabled = enabled and not (node.args[0] if node.args else True)
            may[node] = False
            continue
        if op == "call_function" and _EXIT_INFERENCE is not None and target is _EXIT_INFERENCE:
            enabled = modes.pop() if modes else enabled
            may[node] = False
            continue
        if op == "call_function" and region is not None and target is region:
            sub = getattr(module, getattr(node.args[1], "target", ""), None)
            if isinstance(sub, torch.fx.GraphModule):
                may[node] = _walk(sub, sub.graph, bool(node.args[0]) or not cuts,
                                   [flag(a) for a in node.args[2:]], cuts=cuts)
                continue
        if op == "call_function" and target is operator.getitem:
            base = may.get(node.args[0], False)
            index = node.args[1]
            may[node] = (base[index] if isinstance(base, list) and isinstance(index, int)
                         and -len(base) <= index < len(base) else
                         (any(base) if isinstance(base, list) else bool(base)))
            continue
        if op == "call_method" and target == "view_as" and node.args[0] is node.args[-1]:
            # the runtime's own view of an input under dynamo (`_run_body` in torch.py)
            may[node] = flag(node.args[0])
            continue
        if cuts and ((op == "call_method" and target in ("detach", "detach_")) or (
                op == "call_function" and target in _DETACH)):
            may[node] = False
            continue
        if op == "get_attr":
            value = getattr(module, target, None)
            # (a fake tensor is one of an enclosing graph a body reads by closure, which the
            # graph around may call with inputs that require grad: as a placeholder)
            may[node] = isinstance(value, torch.Tensor) and (
                value.requires_grad or (isinstance(value, FakeTensor) and _differentiable(value)))
            continue
        if op == "call_function" and target in (_COND, _WHILE_LOOP):
            # (torch's operators: every output where an operand requires grad)
            operands = [a for a in pytree.tree_leaves(list(node.args[2 if target is _WHILE_LOOP
                                                                 else 3:]))]
            may[node] = enabled and any(flag(a) for a in operands)
            continue
        if op == "call_method" and target == "requires_grad_":
            may[node] = bool(node.args[1]) if len(node.args) > 1 else bool(
                node.kwargs.get("requires_grad", True))
            continue
        result = enabled and not _fresh(target) and any(flag(a) for a in node.all_input_nodes)
        if _in_place(op, target) and node.args:
            # (the tensor updated keeps its requires_grad: `w -= lr * g` under no_grad on a
            # leaf that requires grad)
            written = result
            result = result or flag(node.args[0])
            if written and isinstance(node.args[0], torch.fx.Node):
                # a value that may require grad written into a view (`out[t] = R`) makes its
                # base one that may, for the nodes that read the base after the write
                for base in _bases(node.args[0]):
                    if _differentiable(_value(base)) or _value(base) is None:
                        may[base] = True
        linked = node.meta.get(_FUNCTION_OF)
        if linked and enabled:
            # (a custom autograd Function's result: NOTE [custom autograd Functions in branches])
            if not names_of:
                names_of.update((n.name, n) for n in graph.nodes)
            result = result or any(flag(names_of.get(name)) for name in linked)
        value = _value(node)
        if (isinstance(value, torch.Tensor) and not _differentiable(value)) or isinstance(
                value, (bool, int, float, complex, torch.SymBool, torch.SymInt,
                        torch.SymFloat)):
            # (a number read from a tensor, `.item()`, carries no grad: a tensor made of it
            # cannot require grad, as `torch.tensor(p.max().item())` in Python)
            result = False
        may[node] = result
    return flag(stop) if stop is not None else []


# NOTE [custom autograd Functions in branches]
# `Fn.apply(x, out)` under torch.export leaves the forward's ops in the graph and nothing that
# links its results to its arguments (torch keeps no backward there): torchdiffeq's
# `_nextafter` computes `out` under no_grad and returns `_StitchGradient.apply(x, out)`, which
# in Python requires grad where `x` does. Read from the graph alone, that branch cut the
# gradient, and misc.py:191's `elif perturb is Perturb.PREV` was refused as giving `t` grad on
# one path only (session 33), where Python's `t` requires grad on both or on neither. Each
# result of such a call is marked with its tensor arguments' node names (names, not nodes: the
# meta is copied with the graph), and may require grad, as in Python, where one of them may
# and grad mode is on at the call. The program still computes no gradient through the
# Function, as torch.export without autoconv.
_FUNCTION_OF = "autoconv_autograd_function_of"


def mark_function_results(results, arguments) -> None:
    """Marks the nodes of `results` (leaves of a custom autograd Function's call under
    make_fx, outside autoconv's own trace) as computed from the tensors among `arguments`
    (NOTE [custom autograd Functions in branches])."""
    from torch.fx.experimental import proxy_tensor

    tracer = getattr(proxy_tensor.get_proxy_mode(), "tracer", None)
    if tracer is None:
        return

    def node_of(value):
        if not isinstance(value, torch.Tensor):
            return None
        slot = proxy_tensor.get_proxy_slot(value, tracer, None)
        return None if slot is None else slot.proxy.node

    linked = tuple(n.name for n in map(node_of, pytree.tree_leaves(arguments)) if n is not None)
    if not linked:
        return
    for result in pytree.tree_leaves(results):
        node = node_of(result)
        if node is not None and _differentiable(result):
            node.meta[_FUNCTION_OF] = tuple(node.meta.get(_FUNCTION_OF, ())) + linked


def _bases(node) -> list:
    """`node` and the tensors it is a view of (through aten view ops: select, slice, view,
    as_strided ...), nearest first."""
    found = [node]
    while node.op == "call_function" and node.args and isinstance(node.args[0], torch.fx.Node):
        schema = getattr(node.target, "_schema", None)
        returns = getattr(schema, "returns", None)
        alias = getattr(returns[0], "alias_info", None) if returns else None
        if alias is None or alias.is_write:
            break
        node = node.args[0]
        found.append(node)
    return found


def _cond_node_of(leaves):
    """The make_fx cond node that made the tensors `leaves`, or None."""
    from torch.fx.experimental import proxy_tensor

    mode = proxy_tensor.get_proxy_mode()
    tracer = getattr(mode, "tracer", None)
    if tracer is None:
        return None, None
    for leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            continue
        slot = proxy_tensor.get_proxy_slot(leaf, tracer, None)
        node = None if slot is None else slot.proxy.node
        if node is not None and node.target is operator.getitem:
            node = node.args[0]
        if node is not None and node.target is _COND:
            return tracer, node
    return tracer, None


def _make_fx_branch_grads(leaves, enabled: bool):
    """Per branch, per output of the cond node that made `leaves`: whether it may require
    grad; None where the node is not found."""
    tracer, node = _cond_node_of(leaves)
    if node is None:
        return None
    inputs = _operand_flags_of(tracer, node.args[3])
    flags = []
    for arg in node.args[1:3]:
        body = getattr(tracer.root, getattr(arg, "target", ""), None)
        if not isinstance(body, torch.fx.GraphModule):
            return None
        flags.append((tuple(_made_with_grad(body, enabled, inputs)),
                      tuple(outputs_computed_from_inputs(body, enabled, inputs))))
    return tuple(flags)


# NOTE [operands that can require grad]
# A branch's graph reads each placeholder as a value that may require grad only where its
# operand may: a tensor made of Python numbers (the stand-ins of a loop's floats, a list of
# `.item()` values, `torch.tensor(0.0)` lifted as a constant) cannot, on any path, and a
# branch that gives it is no grad-mode difference (session 30 specialised a greedy decoder's
# `if len(toks) == 0:` so). The operands' flags are read from the graph around the statement;
# in a body being traced, its placeholders' flags are the operands' of its statement
# (`assuming`). A loop's placeholder may require grad where its value before the loop or the
# body's result may: the body is traced assuming the first only, and where a statement
# staged inside it decided otherwise than it would have with every placeholder requiring grad
# (`consulted`) and the body's result may require grad after all, the loop is traced again
# with every placeholder read as one that may (`Reassumed`).
class Frame:
    """The operands' flags of a statement whose bodies are traced (NOTE [operands that can
    require grad])."""

    def __init__(self, flags, loop: bool, pessimistic: bool = False):
        self.flags = tuple(flags)
        self.loop = loop
        self.pessimistic = pessimistic
        self.consulted = False
        self.placeholders = {}  # the body's placeholder nodes -> flag
        self.graph = None


class Reassumed(Exception):
    """Ends a loop's trace: a placeholder read as one that cannot require grad may (NOTE
    [operands that can require grad]); internal, never escapes."""


_FRAMES = []  # the statements whose bodies are being traced, innermost last
_IGNORING = []  # non-empty while the verdicts are read without the frames


def frame_for(operands, loop: bool, pessimistic: bool = False):
    """A Frame of `operands`' flags under make_fx, else None."""
    from torch.fx.experimental import proxy_tensor

    if torch.compiler.is_dynamo_compiling() or proxy_tensor._CURRENT_MAKE_FX_TRACER is None:
        return None
    tracer = getattr(proxy_tensor.get_proxy_mode(), "tracer", None)
    if tracer is None or not _gradients_may_flow(operands):
        return None
    table = _graph_table(tracer)
    flags = []
    for value in operands:
        if not isinstance(value, torch.Tensor):
            flags.append(False)
            continue
        slot = proxy_tensor.get_proxy_slot(value, tracer, None)
        flags.append(value.requires_grad if slot is None else table.get(slot.proxy.node, True))
    return Frame(flags, loop, pessimistic)


class assuming:
    """While a body of `frame`'s statement runs on `flat` (its placeholders' values)."""

    def __init__(self, frame, flat):
        self.frame, self.flat = frame, flat

    def __enter__(self):
        from torch.fx.experimental import proxy_tensor

        frame = self.frame
        if frame is None or torch.compiler.is_dynamo_compiling():
            return
        tracer = getattr(proxy_tensor.get_proxy_mode(), "tracer", None)
        if tracer is None:
            return
        frame.graph = tracer.graph
        frame.placeholders = {}
        for value, flag in zip(self.flat, frame.flags):
            slot = (proxy_tensor.get_proxy_slot(value, tracer, None)
                    if isinstance(value, torch.Tensor) else None)
            if slot is not None:
                frame.placeholders[slot.proxy.node] = True if frame.pessimistic else flag
        _FRAMES.append(frame)

    def __exit__(self, *exc):
        if self.frame is not None and _FRAMES and _FRAMES[-1] is self.frame:
            _FRAMES.pop()


def _graph_table(tracer) -> dict:
    """Per node of the graph `tracer` builds, whether it may require grad when it runs, with
    grad mode on at its start: its placeholders as its Frame says, or the traced function's
    inputs as they were (autoconv's own trace, keyed by their requires_grad), else each one
    that may."""
    from . import grad_mode

    graph = tracer.graph
    inputs = None
    frame = next((f for f in reversed(_FRAMES) if f.graph is graph), None)
    if frame is not None and not _IGNORING:
        inputs = frame.placeholders
    elif frame is None:
        inputs = grad_mode.traced_grad_inputs()
        if inputs is not None and len(inputs) != len(list(graph.find_nodes(op="placeholder"))):
            inputs = None
    table = {}
    _flags(tracer.root, graph, True, inputs, table=table)
    return table


def _operand_flags_of(tracer, operands, table=None) -> list:
    table = _graph_table(tracer) if table is None else table
    return [table.get(a, True) if isinstance(a, torch.fx.Node) else False
            for a in pytree.tree_leaves(list(operands))]


def _checked_against_frames(read, decide):
    """`read()`, a verdict read with the frames' flags; where what `decide` makes of it
    differs from what it makes of the one read with every loop placeholder as one that may
    require grad, each enclosing loop's frame is marked `consulted` (NOTE [operands that can
    require grad])."""
    verdict = read()
    loops = [f for f in _FRAMES if f.loop and not f.pessimistic and not all(f.flags)]
    if not loops or verdict is None:
        return verdict
    _IGNORING.append(True)
    try:
        without = read()
    finally:
        _IGNORING.pop()
    if without is None or decide(without) != decide(verdict):
        for frame in loops:
            frame.consulted = True
    return verdict


def _assumed_by_a_loop() -> bool:
    """Whether a loop whose body is being traced reads some carried value as one that cannot
    require grad (NOTE [operands that can require grad])."""
    return any(f.loop and not f.pessimistic and not all(f.flags) for f in _FRAMES)


def _branch_decisions(verdict, enabled: bool) -> tuple:
    """Per output of an `if`, what `settled` does with it: detach, refuse or leave alone."""
    (on_true, source_true), (on_false, source_false) = verdict[0], verdict[1]
    decided = []
    for t, f, st, sf in zip(on_true, on_false, source_true, source_false):
        if not enabled:
            decided.append("refuse" if t or f else "keep")
        elif not t and not f:
            decided.append("detach")
        elif t != f and (sf if t else st):
            decided.append("refuse")
        else:
            decided.append("keep")
    return tuple(decided)


def _loop_decisions(verdict, enabled: bool) -> tuple:
    """Per carried value of a loop, what `settled_loop` does with it."""
    decided = []
    for may, source, before in zip(verdict[0], verdict[1], verdict[2] or ()):
        if not enabled:
            decided.append("refuse" if may else "keep")
        elif not may and not before:
            decided.append("detach")
        elif not may and source:
            decided.append("refuse")
        else:
            decided.append("keep")
    return tuple(decided)


def _made_with_grad(body, enabled: bool, inputs=None) -> list:
    """`outputs_may_require_grad` of a branch's graph; under no_grad, less the operands it
    gives back as they were: Python's `return v` keeps v's requires_grad there, which the
    runtime gives back (NOTE [values passed through a staged if under no_grad] in
    runtime/operators.py), and only a region that enables grad is refused (a `@torch.no_grad()`
    helper `if v.sum() > 0: return v * 3` / `return v` was specialised)."""
    flags = outputs_may_require_grad(body, enabled, inputs)
    if enabled:
        return flags
    return [f and not p for f, p in zip(flags, _passed_through(body))]


def _passed_through(body) -> list:
    """Per output of a branch's graph, whether it is one of its placeholders (or the
    runtime's clone of one)."""
    placeholders = set(body.graph.find_nodes(op="placeholder"))
    passed = []
    for node in body.graph.find_nodes(op="output"):
        for arg in pytree.tree_leaves(node.args[0]):
            while isinstance(arg, torch.fx.Node) and (
                    (arg.op == "call_function" and arg.target in _CLONE)
                    or (arg.op == "call_method" and arg.target == "clone")):
                arg = arg.args[0]
            passed.append(arg in placeholders)
    return passed


def _dynamo_branch_grads(enabled: bool):
    """As `_make_fx_branch_grads`, for the last cond node of the graph dynamo is building (a
    constant: dynamo calls this for real)."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    output = tx.output
    for node in reversed(output.current_tracer.graph.nodes):
        if node.op == "call_function" and node.target is _COND:
            flags = []
            for arg in node.args[1:3]:
                body = output.nn_modules.get(getattr(arg, "target", None))
                if not isinstance(body, torch.fx.GraphModule):
                    return None
                flags.append((tuple(_made_with_grad(body, enabled)),
                              tuple(outputs_computed_from_inputs(body, enabled))))
            return tuple(flags)
    return None


_dynamo_branch_grads._dynamo_marked_constant = True


def _last_loop_body_grads(enabled: bool, module_of):
    """Per output of the body of the last while_loop node of the graph being built (this
    loop's: a nested one is in a body's graph), whether it may require grad; None where not
    found. `module_of(target)`: a body's GraphModule."""
    from torch.fx.experimental import proxy_tensor

    dynamo = module_of is not None
    if module_of is None:
        tracer = getattr(proxy_tensor.get_proxy_mode(), "tracer", None)
        if tracer is None:
            return None
        graph = tracer.graph

        def module_of(target):
            return getattr(tracer.root, target, None)
    else:
        graph = _dynamo_graph()
    for node in reversed(graph.nodes):
        if node.op == "call_function" and node.target is _WHILE_LOOP:
            body = module_of(getattr(node.args[1], "target", ""))
            if not isinstance(body, torch.fx.GraphModule):
                return None
            if dynamo:
                return (tuple(outputs_may_require_grad(body, enabled)),
                        tuple(outputs_computed_from_inputs(body, enabled)), None)
            # (NOTE [operands that can require grad]: a carried value may require grad
            # where its value before the loop or the body's result from values that may do)
            table = _graph_table(tracer)
            before = _operand_flags_of(tracer, node.args[2], table)
            extra = _operand_flags_of(tracer, node.args[3], table)
            carried = list(before)
            while True:
                out = outputs_may_require_grad(body, enabled, carried + extra)
                grown = [c or bool(o) for c, o in zip(carried, out)] + carried[len(out):]
                if grown == carried:
                    break
                carried = grown
            return (tuple(out), tuple(outputs_computed_from_inputs(body, enabled,
                                                                   carried + extra)),
                    tuple(before))
    return None


def _dynamo_graph():
    from torch._dynamo.symbolic_convert import InstructionTranslator

    return InstructionTranslator.current_tx().output.current_tracer.graph


def _dynamo_loop_body_grads(enabled: bool):
    """`_last_loop_body_grads` in the graph dynamo is building (dynamo calls it for real)."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    modules = InstructionTranslator.current_tx().output.nn_modules
    return _last_loop_body_grads(enabled, modules.get)


_dynamo_loop_body_grads._dynamo_marked_constant = True


def settled_loop(statement, flat, carried, read_only, tracer_name: str, names, seen=(),
                 frame=None):
    """The while_loop outputs `flat` of `statement` (`names()`: each one's name), each detached where neither its value
    before the loop nor the body can make it require grad (NOTE [grad mode in branches]: a
    loop's paths are zero trips, the value before it, and some, the body's). `frame`: the
    Frame its body was traced with.

    Raises:
        StagingError: where the body cannot make it require grad but its value before the
            loop may (Python's result requires grad after zero trips only).
        Reassumed: where the body was traced reading a carried value as one that cannot
            require grad, a statement inside decided on it, and it may (NOTE [operands that
            can require grad]).
    """
    operands = tuple(carried) + tuple(read_only)
    if tracer_name not in ("dynamo", "make_fx") or not _gradients_may_flow(operands):
        return flat
    enabled = torch.is_grad_enabled()
    if tracer_name == "dynamo":
        verdict = _dynamo_loop_body_grads(enabled)
    else:
        verdict = _checked_against_frames(lambda: _last_loop_body_grads(enabled, None),
                                          lambda v: _loop_decisions(v, enabled))
    if verdict is None or len(verdict[0]) < len(flat) or len(verdict[1]) < len(flat):
        return flat
    befores = verdict[2]
    if (frame is not None and frame.consulted and befores is not None and any(
            may and not assumed for may, assumed in zip(verdict[0], frame.flags))):
        raise Reassumed()
    sources = verdict[1]
    verdict = _with_seen(verdict[0], seen)
    exact = torch.compiler.is_dynamo_compiling()  # (dynamo guards on requires_grad)
    names = names()
    out = list(flat)
    for i, (value, before) in enumerate(zip(flat, carried)):
        if not (isinstance(value, torch.Tensor) and _differentiable(value)):
            continue
        if befores is not None and i < len(befores):
            before_may = isinstance(before, torch.Tensor) and befores[i]
        else:
            before_may = isinstance(before, torch.Tensor) and (not exact or before.requires_grad)
        name = names[i] if i < len(names) else "a value"
        if not enabled:
            if verdict[i]:
                raise _enabled_inside(statement, name, True)
        elif not verdict[i] and not before_may:
            out[i] = value.detach()
        elif not verdict[i] and sources[i]:
            # (`name` may be a field's path, `self.rk_state.dt`, which cannot be assigned)
            detach = (f"`{name} = {name}.detach()`" if name.isidentifier() else
                      "`.detach()` where it is made")
            raise statement.error(
                f"'{name}' may require grad before the loop{_why_may()} but not after its "
                "body, which makes it under torch.no_grad() (or set_grad_enabled(False), "
                "inference_mode(), a @torch.no_grad() function) or detaches it; "
                "torch.while_loop's outputs require grad after any number of trips or after "
                "none, so the graph would give it requires_grad=True and a zero gradient where "
                "Python's value has no grad",
                f"Detach '{name}' before the loop ({detach}) if it should not require grad, "
                "or put the `torch.no_grad()` around the whole loop" + (
                    "; or, for a program that never computes gradients, export it under "
                    "`with torch.no_grad():`" if torch.compiler.is_exporting() else ""))
    return type(flat)(out) if isinstance(flat, tuple) else out


def _why_may() -> str:
    return (" (under torch.export, where the program may be called with inputs that require "
            "grad)" if torch.compiler.is_exporting() else "")


def _gradients_may_flow(operands) -> bool:
    """Whether the operator's outputs may require grad when the graph runs."""
    from . import grad_mode
    from .tracers.zero_trips import _own

    if torch.compiler.is_dynamo_compiling():
        return any(isinstance(t, torch.Tensor) and t.requires_grad for t in operands)
    if torch.compiler.is_exporting():
        return True  # (a program may be called on inputs that require grad)
    if grad_mode.recording():
        # autoconv's own trace, on detached inputs: its python backend runs the branches as a
        # Python `if`, right as it is
        return bool(getattr(_own, "operators_differentiated", False)) \
            and grad_mode.inputs_require_grad()
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in operands)


def requiring_grad(outputs) -> list:
    """Per leaf of a body's `outputs`, whether it requires grad as traced (outside dynamo: a
    body runs with the caller's autograd keys, NOTE [autograd in staged bodies] in
    tracers/make_fx.py). A graph holds no trace of `requires_grad_()`: `x =
    (x - g).detach().requires_grad_()` requires grad though its node is a detach."""
    return [isinstance(t, torch.Tensor) and t.requires_grad for t in pytree.tree_leaves(outputs)]


def _with_seen(flags, seen):
    if not seen:
        return flags
    return tuple(bool(f) or (i < len(seen) and seen[i]) for i, f in enumerate(flags))


def settled(statement, flat, operands, tracer_name: str, seen=()):
    """The cond outputs `flat` of the `if` `statement` (a torch.py Statement), each detached
    where no branch can make it require grad (NOTE [grad mode in branches]).

    Raises:
        StagingError: for an output only some branches make require grad.
    """
    if tracer_name not in ("dynamo", "make_fx") or not _gradients_may_flow(operands):
        return flat
    enabled = torch.is_grad_enabled()
    leaves, spec = pytree.tree_flatten(flat)
    if tracer_name == "dynamo":
        verdict = _dynamo_branch_grads(enabled)
    else:
        verdict = _checked_against_frames(lambda: _make_fx_branch_grads(leaves, enabled),
                                          lambda v: _branch_decisions(v, enabled))
    if verdict is None or any(len(v) < len(leaves) or len(f) < len(leaves)
                              for v, f in verdict):
        return flat
    sources = tuple(f for _, f in verdict)
    verdict = tuple(_with_seen(v, seen[i] if i < len(seen) else None)
                    for i, (v, _) in enumerate(verdict))
    names = _leaf_names(statement, flat, len(leaves))
    passes = _dynamo_passes() if tracer_name == "dynamo" and not enabled else None
    detached = False
    for i, leaf in enumerate(leaves):
        if not (isinstance(leaf, torch.Tensor) and _differentiable(leaf)):
            continue
        on_true, on_false = verdict[0][i], verdict[1][i]
        if enabled and not on_true and not on_false:
            leaves[i] = leaf.detach()
            detached = True
        elif enabled and on_true != on_false:
            # (refused where the branch without grad cut it: one that made it from no input
            # that could require grad is torch.cond's own semantics, left as it is)
            if sources[1 if on_true else 0][i]:
                if _assumed_by_a_loop():
                    # (the branch without grad may be one that read a loop's carried value
                    # as one that cannot require grad: the loop is traced again with every
                    # carried value read as one that may, and refuses there if it still
                    # differs. NOTE [operands that can require grad])
                    raise Reassumed()
                raise _mixed(statement, names[i], on_true)
        elif not enabled and (on_true or on_false):
            passed = passes is not None and all(
                i < len(p) and p[i] is not None for p, may in zip(passes, (on_true, on_false))
                if may)
            raise (_passed_under_no_grad(statement, names[i]) if passed else
                   _enabled_inside(statement, names[i], on_true and on_false))
    return pytree.tree_unflatten(leaves, spec) if detached else flat


def _dynamo_passes():
    """Per branch of the last cond node of the graph dynamo is building, per output, the
    index among the node's operands of the one the branch gives back unchanged (a copy of a
    placeholder: torch's operators refuse outputs that alias inputs), else None; None where not
    found (a constant: dynamo calls this for real)."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    output = InstructionTranslator.current_tx().output
    for node in reversed(output.current_tracer.graph.nodes):
        if node.op == "call_function" and node.target is _COND:
            found = []
            for arg in node.args[1:3]:
                body = output.nn_modules.get(getattr(arg, "target", None))
                if not isinstance(body, torch.fx.GraphModule):
                    return None
                found.append(tuple(_given_back(body.graph)))
            return tuple(found)
    return None


_dynamo_passes._dynamo_marked_constant = True
_COPIES = frozenset({"clone", "contiguous", "view_as", "alias"})


def _given_back(graph) -> list:
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = next(n for n in graph.nodes if n.op == "output").args[0]
    found = []
    for out in (outputs if isinstance(outputs, (tuple, list)) else (outputs,)):
        while isinstance(out, torch.fx.Node) and out.op != "placeholder" and out.args and (
                getattr(out.target, "__name__", out.target) in _COPIES
                or str(out.target).split(".")[-1] in _COPIES):
            out = out.args[0]
        found.append(placeholders.index(out) if isinstance(out, torch.fx.Node)
                     and out.op == "placeholder" else None)
    return found


def _leaf_names(statement, flat, count: int) -> list:
    names = []
    for name, value in zip(statement.output_names(), flat):
        leaves = len(pytree.tree_leaves(value))
        # (an object's fields by their paths, `s.state['dt']`, not all as `s`)
        paths = getattr(name, "leaves", ())
        names += ([f"{name}{path}" for path in paths] if len(paths) == leaves
                  else [name] * leaves)
    return names if len(names) >= count else names + ["a value"] * (count - len(names))


def _mixed(statement, name: str, on_true: bool) -> StagingError:
    with_grad, without = ("true", "false") if on_true else ("false", "true")
    return statement.error(
        f"'{name}' may require grad after the {with_grad} branch but not after the {without} "
        f"branch, which makes it under torch.no_grad() (or set_grad_enabled(False), "
        "inference_mode(), a @torch.no_grad() function) or detaches it; torch.cond's outputs "
        "require grad on every path or on none, so the graph would give it requires_grad=True "
        "and a zero gradient where Python's value has no grad",
        f"Give '{name}' grad on every path or on none: detach it on every path ("
        + (f"`{name} = {name}.detach()`" if name.isidentifier() else "`.detach()`")
        + " after the `if`), or put the `torch.no_grad()` around the whole `if` statement, "
        "or keep only values that do not leave the branch under it")


def _passed_under_no_grad(statement, name: str) -> StagingError:
    # NOTE [values passed through a staged if under no_grad] in runtime/operators.py: autoconv's
    # replay and torch.export choose the value again with grad on, from the branch that gives it
    # back as it was; dynamo traces the branches in torch.cond itself, where that is not watched
    # (only read from the branch's graph afterwards, here, to say so)
    return statement.error(
        f"'{name}' is given back unchanged by a branch (`{name} = val`, or left as it was) "
        "from a tensor that requires grad, in a statement staged under torch.no_grad(): "
        f"Python's '{name}' keeps its grad on that path, but torch.cond run under no_grad gives "
        "outputs without grad, and under torch.compile autoconv cannot give it back",
        f"Choose '{name}' outside the no_grad block (`{name} = torch.where(cond, val, {name})` "
        f"with grad on), detach '{name}' and the value before the `if` where no gradient "
        "should flow, or use autoconv's replay (`autoconv.autoconv(fn)`) or torch.export, "
        "which keep the grad")


def _enabled_inside(statement, name: str, every: bool) -> StagingError:
    which = "every branch" if every else "a branch"
    return statement.error(
        f"'{name}' requires grad after {which}, which enables grad (torch.enable_grad() or "
        "set_grad_enabled(True)) inside a statement staged under torch.no_grad(): torch.cond "
        "run under no_grad gives outputs without grad on every path",
        "Enable grad around the whole `if` statement (`with torch.enable_grad():` outside "
        f"it), and detach '{name}' on the paths where it should not require grad")


def refuse_inference_mode_change(statement: str):
    """The StagingError for a body that changed inference mode while torch.export traced it
    (nothing of it reaches the graph: the program would compute gradients through it)."""
    return StagingError(
        statement, "torch.inference_mode() inside its body leaves nothing in the exported "
        "graph, so the program would compute values that require grad, and gradients, "
        "through it",
        "Write `with torch.no_grad():` instead (the graph records it), or call the function "
        "inside torch.inference_mode()")
