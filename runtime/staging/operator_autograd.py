"""Gradients through torch's `cond` and `while_loop` that torch 2.13 gets wrong or fails on.

NOTE [second-order gradients through operators]
A gradient penalty (`g = autograd.grad(out, x, create_graph=True)`, then `backward` of a
function of `g`: WGAN-GP, R1, MAML) differentiates the operators' backward once more. Where
autoconv's graph runs torch's operators eagerly (backend="fx", an exported program's
`module()`, torch.compile's eager backends), torch 2.13 gave wrong second-order gradients,
silently, with torch's operators alone:

- `cond`: its backward runs a `cond` of the branches' backward graphs, which return a list;
  `CondAutogradOp` returns that list from its forward, and a custom Function's list result is
  a Python object to autograd, not an output: the backward's gradients came out detached, so
  the second differentiation missed every path through them (w.grad 2.0466 where eager Python
  gives 6.1399). `install_operator_autograd_fixes` makes the backward graphs return a tuple,
  which autograd tracks: the right value.
- `while_loop`, first order: its backward differentiates every iteration's carries only where
  the carry's initial value requires grad, so a carry that gets its gradient from the body (an
  accumulator `s = s + R` started from `zeros()`, the returns of a reversed `for`, any loop
  reading a parameter into a fresh accumulator) passed no gradient back past the last
  iteration: d(s)/dr 1 where Python gives 9.049 (tester t14 repros 1 and 8). The backward
  takes every floating carry as requiring grad now.
- `while_loop`, second order: its backward keeps the forward's per-iteration values as plain
  attributes of the autograd context, computed below autograd, so its gradients depend on the
  loop's inputs only through part of the graph (w.grad 16.5572 where Python gives 22.2353).
  That is not a one-line repair; the gradients a backward with `create_graph=True` returns
  are marked instead, and differentiating them again raises a RuntimeError that says so,
  where the wrong value came out.
- `cond` with an integer or bool output (a `return` flag, a counter, an index the branches
  set) next to a floating one: its backward passes the branches' joint graph a gradient for
  every output, where the joint takes one for each output that can require grad only (its
  floating ones), and failed with torch's "AssertionError: outs_to_grad length (1) !=
  tangents length (2)", no user line, under torch.export's module and AOT autograd
  (torch.compile's aot_eager and inductor) for any function with an early `return` under a
  tensor condition inside a staged loop (tester t15 repro 9, back substitution). The fixed
  backward drops the integer outputs' gradients (zeros: autograd materializes them) before
  the joint runs. An exported program loaded where autoconv was never imported runs torch's
  own backward and raises that AssertionError still (loud, never a wrong value).
- `while_loop` that made no trip: its backward runs the body once on the initial carries
  (NOTE [zero-trip loops under autograd] in tracers/zero_trips.py): where the backward runs
  eagerly, a loop whose test was false on entry now passes the gradients through instead.

autoconv's default python backend runs neither operator's autograd at replay and is right.
"""

from __future__ import annotations

import importlib
import re
import sys

import torch

_installed = False

# (statement, its forward body graph or None) whose backward graphs may not draw while it
# materializes them (NOTE [a backward that draws other numbers than its forward]); None
# elsewhere.
_refusing_draws: list = [None]

_DOUBLE_BACKWARD = (
    "second-order gradients through a staged while loop (autograd.grad(..., create_graph=True), "
    "then differentiating its result) are wrong in torch 2.13's torch.while_loop, so autoconv "
    "refuses them (NOTE [second-order gradients through operators] in "
    "runtime/staging/operator_autograd.py). Use autoconv's default backend='python' (its "
    "replay is right), or compute the penalty outside the loop")


class _NoDoubleBackward(torch.autograd.Function):
    """The gradients a while_loop's backward returned, made differentiable only to refuse it."""

    @staticmethod
    def forward(ctx, anchor, *grads):
        return tuple(g.clone() if isinstance(g, torch.Tensor) else g for g in grads)

    @staticmethod
    def backward(ctx, *unused):
        raise RuntimeError(_DOUBLE_BACKWARD)


def _made_no_trip(ctx) -> bool:
    """Whether the loop's test was false on entry, where the backward runs eagerly (a traced
    backward, aot_autograd's, cannot ask)."""
    from ..values import is_staged

    operands = [*ctx.carries, *ctx.additional_inputs]
    if any(is_staged(v) or isinstance(v, torch.SymInt) for v in operands):
        return False
    with torch.no_grad():
        go = ctx.fw_cond_fn(*operands)
    return isinstance(go, (bool, torch.Tensor)) and not is_staged(go) and not bool(go)


def _fixed_loop_backward(backward):
    def fixed(ctx, *grads):
        if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
            _refuse_under_export()
        if _made_no_trip(ctx):
            # The loop's results are its initial carries: their gradients pass through, and
            # the read-only inputs get none. torch's backward ran the body once on the initial
            # carries instead (it counts one trip for none), whose derivatives autoconv's
            # zero-trip guard multiplies by zero (zero_trips.py) but which still ran: a body
            # appending to a list sized for no trip raised "index is out of bounds for
            # dimension with size 0" (tester t14 repro 13), as would any body indexing past
            # what the loop's bounds allow.
            return (None, None, None, None,
                    *(g if isinstance(c, torch.Tensor) and c.is_floating_point() else None
                      for g, c in zip(grads, ctx.carries)),
                    *(None for _ in ctx.additional_inputs))
        anchor = next((t for t in [*ctx.carries, *ctx.additional_inputs]
                       if isinstance(t, torch.Tensor) and t.requires_grad), None)
        # torch differentiates each iteration's carries only where the loop's initial value
        # requires grad: a carry that starts without grad and gets it from the body (`s = s + r
        # * R` from `s = zeros()`) passed no gradient back past one iteration
        ctx.carries = tuple(
            c.detach().requires_grad_() if isinstance(c, torch.Tensor)
            and c.is_floating_point() and not c.requires_grad else c for c in ctx.carries)
        out = _refusing_draws_in("while loop", backward, ctx, *grads)
        if not torch.is_grad_enabled() or anchor is None:  # (grad mode = create_graph)
            return out
        tensors = [i for i, g in enumerate(out) if isinstance(g, torch.Tensor)]
        marked = _NoDoubleBackward.apply(anchor, *(out[i] for i in tensors))
        out = list(out)
        for i, g in zip(tensors, marked):
            out[i] = g
        return tuple(out)

    fixed.__autoconv_fix__ = True
    return staticmethod(fixed)


def _refuse_under_export():
    """NOTE [gradients through a while loop under torch.export]"""
    from ..errors import StagingError

    raise StagingError(
        "while loop",
        "it differentiates (torch.autograd.grad or .backward()) through a staged while loop "
        "while torch.export traces; torch 2.13's torch.while_loop backward there computes on "
        "the forward's traced values outside the program, which would become constants of the "
        "trace (torch's \"We found a fake tensor in the exported program constant's list\")",
        "Use autoconv's own replay (`autoconv.autoconv(fn)`, whose gradient is right), take "
        "the gradient outside the exported program (export the forward, call .backward() on "
        "its output), or write the loop with a Python bound (`for _ in range(n):`)")


# NOTE [gradients through a while loop under torch.export]
# `z = y` then `while z.sum() < 20: z = z**3 + 1` and `torch.autograd.grad(z.sum(), y)` in the
# function: torch.export (non-strict) failed with torch's "We found a fake tensor in the
# exported program constant's list ... Please file an issue" and no line (brk55), with torch's
# operators alone, autoconv not imported (its lifted constant is a value WhileLoopAutogradOp's
# forward or backward made outside export's tracer; which one was not traced down). A
# gradient through torch.cond exports. autoconv's replay (the python backend,
# which runs no operator autograd) is right, and torch.compile refuses autograd.grad in a graph.
# So the backward refuses while torch.export traces, at the user's line of the differentiation.


def _fixed_cond_backward(backward):
    def fixed(ctx, *flat_grads):
        # An integer or bool output never requires grad, so the joint's mask leaves it out
        # (prepare_fw_with_masks_all_requires_grad): its gradient, a zero tensor of its dtype
        # that autograd materialized, goes too, and the rest line up with the mask again
        grads = [g for g in flat_grads if not _is_integral(g)]
        state = getattr(ctx, "_autoconv_generators", None)
        if state is None:
            return _refusing_draws_in("if", backward, ctx, *grads)
        # NOTE [a cond's backward drawing the forward's numbers]
        devices, states = state
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.set_rng_state(states[0])
            for device, saved in zip(devices, states[1:]):
                torch.cuda.set_rng_state(saved, device)
            return backward(ctx, *grads)

    fixed.__autoconv_fix__ = True
    return staticmethod(fixed)


# NOTE [a cond's backward drawing the forward's numbers]
# torch's cond backward traces the branch again from its operands and runs that trace with
# the backward graph: a random op in the branch (dropout in training) draws a second time,
# another mask than the result's, so `y.grad` after `out.sum().backward()` was not
# `2 * (out != 0)` wherever torch's cond autograd runs eagerly (backend="fx", an exported
# program's module), silently, with torch.cond alone too. Where the forward runs eagerly on
# real tensors, it keeps the generators' states it starts from (CPU, and the CUDA devices of
# its operands), and the backward runs under those states, in a fork that leaves the
# generators as it found them: the branch draws the forward's numbers again, and the backward
# moves no generator, as in Python. A cond traced by torch (torch.compile's AOT autograd,
# torch.export) cannot carry a generator state: open (README, Known shapes).
def _fixed_cond_forward(forward):
    def fixed(ctx, pred, true_fn, false_fn, *operands):
        ctx._autoconv_generators = _generators_if_eager(operands)
        return forward(ctx, pred, true_fn, false_fn, *operands)

    fixed.__autoconv_fix__ = True
    return staticmethod(fixed)


# NOTE [a backward that draws other numbers than its forward]
# torch's cond and while_loop backward trace the body again from its saved operands
# (materialize_as_graph) and run that trace with the backward graph: a random op in the body
# (dropout in training) draws a second time, other numbers than the forward's. A cond run
# eagerly on real tensors replays its forward's generator states (NOTE [a cond's backward
# drawing the forward's numbers]); a cond traced by torch (torch.compile's AOT autograd,
# torch.export) cannot carry a generator state, and a while_loop's backward draws once per
# trip on every path (backend="fx", an exported program's module, torch.compile): 13 of 64
# gradients differed after 3 trips of `out = F.dropout(out, 0.5)`. Making the draws
# functional values (philox seeds the graph carries, or the masks as extra outputs fed to the
# backward) would rewrite torch's operators' autograd; until then the backward graphs are
# checked as they are materialized, and one that draws raises a StagingError naming the op,
# where the wrong gradient came out (under AOT autograd, when that backward runs: NOTE [a
# drawing backward refused when it runs]). autoconv's default python backend runs neither
# operator's autograd at replay and is right; forward-only and eval-mode dropout draw no
# backward graph and stay staged.
def _refusing_draws_in(statement, backward, ctx, *grads):
    outer = _refusing_draws[0]
    # (the forward's body graph: where it says the user's line, NOTE [the line a backward's
    # draw is refused at])
    _refusing_draws[0] = statement, getattr(ctx, "fw_body_fn", None)
    try:
        return backward(ctx, *grads)
    finally:
        _refusing_draws[0] = outer


def _materialize_refusing_draws(materialize):
    def fixed(fn, args, *rest, **kwargs):
        graph = materialize(fn, args, *rest, **kwargs)
        refusing = _refusing_draws[0]
        if refusing is not None:
            draw = _first_draw(graph)
            if draw is not None and _traced_by_aot_autograd():
                from ..errors import StagingError

                _assert_before_draws(graph, _draw_refusal(*refusing, draw, StagingError.at))
            elif draw is not None:
                _draw_refusal(*refusing, draw, None)
        return graph

    fixed.__autoconv_fix__ = True
    return fixed


def _first_draw(graph):
    """The first node of `graph` or its subgraphs that draws from a generator, or None."""
    for node in graph.graph.nodes:
        target = node.target
        if (node.op == "call_function" and isinstance(target, torch._ops.OpOverload)
                and torch.Tag.nondeterministic_seeded in target.tags):
            return node
        if node.op == "get_attr":
            sub = getattr(graph, target, None)
            if isinstance(sub, torch.fx.GraphModule) and (found := _first_draw(sub)):
                return found
    return None


def _users_line(node):
    """The (file, line) of the innermost user frame of `node`'s stack, or None."""
    from ..errors import users_file

    location = None
    for file, line in re.findall(r'File "([^"]+)", line (\d+)', node.meta.get("stack_trace")
                                 or ""):
        if users_file(file):
            location = (file, int(line))
    return location


# NOTE [the line a backward's draw is refused at]
# The refusal below runs in the backward, under the user's `loss.backward()`: the graph torch
# materializes there is traced anew, from the forward's body graph, and its nodes carry a stack
# only where AOT autograd traces (the user's draw line). Elsewhere the innermost user frame is
# the `.backward()` line, which says nothing of the statement (drop56's `while` under
# backend="fx", an exported program's module, torch.compile's eager backend). So the forward's
# body graph is asked first: the staged statement's line autoconv's own trace tagged it with
# (`note_loop_origin`, in the graph module's `meta`; an exported program saved and loaded has
# lost it), else the stack of its first draw (torch.export keeps the innermost frame: the
# line calling the converted function), else the stack of its inputs (dynamo's graph: the
# statement's line).
_ORIGIN = "autoconv_statement"


def note_loop_origin(location) -> None:
    """Tag the body graph of the while_loop node just traced by make_fx with the user's
    (file, line) of its statement (NOTE [the line a backward's draw is refused at])."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    tracer = getattr(get_proxy_mode(), "tracer", None)
    if tracer is None or location is None:
        return
    for node in reversed(tracer.graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.higher_order.while_loop:
            body = getattr(tracer.root, getattr(node.args[1], "target", ""), None)
            if isinstance(body, torch.fx.GraphModule):
                body.meta.setdefault(_ORIGIN, location)
            return


def _origin_of(forward_body):
    """The user's line of the statement whose forward body graph is `forward_body`, or None."""
    if not isinstance(forward_body, torch.fx.GraphModule):
        return None
    draw = _first_draw(forward_body)
    location = forward_body.meta.get(_ORIGIN) or (draw is not None and _users_line(draw))
    if location:
        return location
    # (dynamo's body graph holds torch functions, not the ops that draw: its inputs' stack
    # ends at the statement, which called the operator)
    return next(
        (location for node in forward_body.graph.nodes if node.op == "placeholder"
         and (location := _users_line(node))), None)


def _draw_refusal(statement, forward_body, draw, make):
    """Raise the refusal of `draw` in the backward of `statement`; with `make`
    (StagingError.at), return it instead."""
    from ..errors import StagingError, raise_at_under_dynamo, user_location

    location = _origin_of(forward_body) or _users_line(draw)
    op = draw.target.name().replace("aten::", "torch.")
    modes = ("torch.compile with AOT autograd (aot_eager, inductor) or torch.export, which "
             "trace the cond's backward" if statement == "if" else
             "backend='fx', an exported program or torch.compile, which run torch.while_loop's "
             "backward")
    error = make or (StagingError.at if "torch._dynamo" not in sys.modules
                     else raise_at_under_dynamo)
    # (under torch.compile, AOT autograd runs this in the backend's compile: the dynamo class,
    # a ShortenTraceback, reaches the user as this StagingError, not BackendCompilerFailed)
    refusal = error(
        location or user_location(), statement,
        f"its body draws random numbers ({op}, as dropout in training does) and a gradient "
        f"flows back through it; under {modes}, the backward runs the body again and draws "
        "other numbers than the forward's, a wrong gradient (NOTE [a backward that draws "
        "other numbers than its forward] in runtime/staging/operator_autograd.py)",
        "Draw the mask or noise before the statement and pass it in (`mask = "
        "torch.rand_like(y) >= p` before it, then `out = y * mask / (1 - p)` in the body), "
        "or use autoconv's default backend='python', whose replay is right")
    if make is None:
        raise refusal
    return refusal


def _traced_by_aot_autograd() -> bool:
    """Whether the backward graph is being traced ahead of its run (torch.compile's AOT
    autograd), not run (the backward of an eager graph) nor traced for torch.export."""
    from torch._guards import TracingContext
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    # (autoconv's own trace of a function differentiating inside has no TracingContext: it
    # refuses at the trace, where the user's backward call is)
    return (get_proxy_mode() is not None and TracingContext.try_get() is not None
            and not torch.compiler.is_exporting())


# NOTE [a drawing backward refused when it runs]
# AOT autograd (torch.compile's aot_eager, inductor) traces the backward at the first call
# whose inputs require grad, whether or not a backward ever runs: the refusal above stopped
# an inference call `with torch.enable_grad()` or a call on a parameter's outputs that no one
# differentiates (drop56). There the backward graph gets an assertion before its first
# node instead (`aten._assert_async.msg`, which AOT autograd and inductor keep), failing with
# the refusal's message when that backward runs: in the branch that draws only, so a gradient
# through the other branch is taken as Python's.
def _assert_before_draws(graph, refusal) -> None:
    first = next(n for n in graph.graph.nodes if n.op != "placeholder")
    with graph.graph.inserting_before(first):
        zero = graph.graph.call_function(torch.ops.aten.scalar_tensor.default, (0.0,))
        false = graph.graph.call_function(torch.ops.aten.ne.Scalar, (zero, 0.0))
        graph.graph.call_function(torch.ops.aten._assert_async.msg, (false, str(refusal)))
    graph.recompile()


def _generators_if_eager(operands):
    """The CUDA devices of `operands` and the states of the CPU generator and theirs, where
    the cond runs eagerly on real tensors; else None."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    if torch.compiler.is_compiling() or get_proxy_mode() is not None:
        return None
    tensors = [t for t in operands if isinstance(t, torch.Tensor)]
    if any(isinstance(t, FakeTensor) for t in tensors):
        return None
    devices = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    return devices, [torch.get_rng_state(), *(torch.cuda.get_rng_state(d) for d in devices)]


def _is_integral(grad) -> bool:
    return (isinstance(grad, torch.Tensor) and not grad.dtype.is_floating_point
            and not grad.dtype.is_complex)


def install_operator_autograd_fixes() -> bool:
    """Apply NOTE [second-order gradients through operators]; True where torch's operators are
    2.13's (or already fixed), False where their internals moved."""
    global _installed
    if _installed:
        return True
    try:
        cond = importlib.import_module("torch._higher_order_ops.cond")
        while_loop = importlib.import_module("torch._higher_order_ops.while_loop")
    except ImportError:
        return False
    filter_with_masks = getattr(cond, "filter_with_masks", None)
    loop_op = getattr(while_loop, "WhileLoopAutogradOp", None)
    cond_op = getattr(cond, "CondAutogradOp", None)
    if filter_with_masks is None or loop_op is None or cond_op is None:
        return False
    if not getattr(filter_with_masks, "__autoconv_fix__", False):
        def filter_to_tuple(data, masks):
            return tuple(filter_with_masks(data, masks))

        filter_to_tuple.__autoconv_fix__ = True
        # (cond.py's own name only: map and scan read theirs from utils)
        cond.filter_with_masks = filter_to_tuple
    for module in (cond, while_loop):
        materialize = getattr(module, "materialize_as_graph", None)
        if materialize is not None and not getattr(materialize, "__autoconv_fix__", False):
            # (the module's own name, which the operators' backward calls)
            module.materialize_as_graph = _materialize_refusing_draws(materialize)
    if not getattr(cond_op.backward, "__autoconv_fix__", False):
        cond_op.backward = _fixed_cond_backward(cond_op.backward)
    if not getattr(cond_op.forward, "__autoconv_fix__", False):
        cond_op.forward = _fixed_cond_forward(cond_op.forward)
    if not getattr(loop_op.backward, "__autoconv_fix__", False):
        loop_op.backward = _fixed_loop_backward(loop_op.backward)
    _installed = True
    return True
