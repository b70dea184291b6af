"""Specialisation: a top-level `if` on a tensor that cannot be a torch.cond is traced for one
value of its condition, with a guard in the graph that asserts that value.

    if t[0] > t[1]:                      the trace computes t[0] > t[1] on the real inputs
        func = _ReverseFunc(func)   ->   (True, say), runs the true branch as Python, and
        t = -t                           leaves `_assert_async(t[0] > t[1], "<file:line> ...")`
                                         in the graph

See NOTE [specialisation] for when this happens and what each caller does with a failing guard.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import math
import re
import threading
import tokenize

import torch
from torch._subclasses.fake_tensor import FakeTensor

from ..errors import StagingError, asked_by_a_kernel, user_location

__all__ = ["specialize", "tracing", "unspecialised", "GuardFailed", "guard_index", "never"]

# NOTE [specialisation]
# A statement whose branches assign what a graph cannot carry (a Python object, a function, a
# string, tensors of another shape) cannot be one torch.cond. Where its condition is exact (the
# statement is not in the body of a staged statement, whose traced values are not the runtime
# ones), the trace can follow the branch the condition takes and assert in the graph that it
# takes it: the graph is then right on every input the assertion lets through, and refuses the
# others loudly.
#
# - Which branch: the condition's value on the real inputs. Fake tensors have no values, so the
#   ops the condition was computed by are read back from the graph traced so far and run again
#   on the real tensors the fake inputs stand for (the fake mode remembers them). An
#   autoconv.Function trace may instead be told the values to take (`tracing(plan)`).
# - autoconv.Function: a failing guard raises GuardFailed when the graph runs; the Function then
#   traces (or finds in its cache) the graph for the other value and runs that one, so its cache
#   holds one ConcreteFunction per guard outcome for a signature.
# - torch.export: the program specialises to the example inputs, keeps the guard as an
#   assertion, and fails on inputs taking the other path with the guard's message.
# - torch.compile: dynamo cannot branch on data either; the statement's StagingError stands.
# Only autoconv's own refusals (StagingError) lead here: a statement torch.cond can stage stays
# a cond.

_GUARD = "autoconv specialised this graph"
_INDEX = re.compile(r"\(guard (\d+)\)")


class GuardFailed(RuntimeError):
    """A graph traced for one value of a condition (see NOTE [specialisation]) ran on inputs
    giving the other value. `index` is the guard's position among the graph's guards."""

    def __init__(self, message: str, index: int):
        super().__init__(
            f"{message}. Call the autoconv Function rather than this ConcreteFunction: it traces "
            "the graph for the other path")
        self.index = index


class _Trace(threading.local):
    unspecialised: bool = False  # (within `unspecialised()`)
    plan: tuple = ()
    taken: list | None = None  # the values followed, in order (None: no Function trace)
    messages: list | None = None


_trace = _Trace()


@contextlib.contextmanager
def unspecialised():
    """Within: a top-level statement's refusal stands, not specialised (the `if` of a loop's
    peeled first trip: the loop after it would meet the change the `if` could not carry, NOTE
    [a loop's first trip peeled] in peeling.py)."""
    outer, _trace.unspecialised = _trace.unspecialised, True
    try:
        yield
    finally:
        _trace.unspecialised = outer


@contextlib.contextmanager
def tracing(plan=()):
    """Within: a Function's trace. The first `len(plan)` specialised statements take the values
    in `plan`; the values taken and their guards' messages are in the yielded lists."""
    outer = (_trace.plan, _trace.taken, _trace.messages)
    _trace.plan, _trace.taken, _trace.messages = tuple(plan), [], []
    try:
        yield _trace.taken, _trace.messages
    finally:
        _trace.plan, _trace.taken, _trace.messages = outer


def never(error: StagingError) -> StagingError:
    """`error`, marked as a refusal no specialisation lifts: a write to a global would happen
    once while tracing; a recursion on a tensor would be traced once per depth."""
    error.never_specialise = True
    return error


def guard_index(error: BaseException, messages) -> int | None:
    """The index among `messages` of the guard whose failure `error` is, or None."""
    if type(error) is not RuntimeError or _GUARD not in str(error):
        return None
    text = str(error)
    for i, message in enumerate(messages):
        if text == message:
            return i
    return None


def specialize(pred: torch.Tensor, statement: str, error: StagingError, in_body: bool,
               probing: bool = False, guess: bool = True) -> bool:
    """The value of the traced 0-d bool tensor `pred` that the trace follows, asserted in the
    graph; `error` is why the statement cannot be staged.

    At the top level of the function the condition may depend on the inputs. In the body of a
    staged statement (`in_body`) only a condition computed from constants is decided (NOTE
    [constant conditions]): there the traced values of the inputs are not the runtime ones.

    Raises `error` where the statement cannot be specialised (in a body on values that vary,
    under dynamo or another tracer), or a StagingError when the condition's value cannot be
    computed outside an autoconv.Function trace (which guesses `guess` and lets the guard
    correct it: NOTE [a guessed condition avoids the branch that raises]).
    """
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    if torch.compiler.is_dynamo_compiling() or getattr(error, "never_specialise", False) \
            or asked_by_a_kernel(error):  # (traced again: NOTE [torch's C++ kernels asking
        raise error  # a size only the graph knows] in autoconv/capture.py)
    if _trace.unspecialised and not in_body:  # (see `unspecialised`)
        raise error
    mode = get_proxy_mode()
    tracer = getattr(mode, "tracer", None)
    proxy = get_proxy_slot(pred, tracer, None) if tracer is not None else None
    if proxy is None:  # vmap, torch.fx.symbolic_trace, another tracer: no values to learn
        raise error
    location = (error.filename, error.lineno) if error.filename else user_location()
    if in_body:
        value = _evaluate(proxy.proxy.node, tracer, inputs=False)
        if value is None:
            raise error
        if not probing:
            torch._assert_async(pred if value else torch.logical_not(pred),
                                _message(location, value, None, error))
        return value
    if _writes_inputs(tracer.graph, tracer):
        # a graph that fails this guard is run again (another one is): its writes to the
        # inputs, or to a captured tensor, before the guard would happen twice
        raise StagingError.at(
            location, statement,
            f"{error.problem}, and the graph cannot be specialised on the condition: the "
            "function writes to its inputs in place before it, or to a tensor it captures (a "
            "failing guard would make the writes happen twice)", error.fix) from error
    planned = _trace.taken is not None and len(_trace.taken) < len(_trace.plan)
    if planned:
        value = _trace.plan[len(_trace.taken)]
    else:
        value = _evaluate(proxy.proxy.node, tracer, inputs=True)
        if value is None:
            if _trace.taken is None:
                raise StagingError.at(
                    location, statement,
                    f"{error.problem}, and the value of its condition for the example inputs "
                    "cannot be computed to specialise the graph on it",
                    error.fix) from error
            value = guess  # a Function's guard corrects a wrong guess at the first run
    index = len(_trace.taken) if _trace.taken is not None else 0
    message = _message(location, value, index, error)
    torch._assert_async(pred if value else torch.logical_not(pred), message)
    if _trace.taken is not None:
        _trace.taken.append(value)
        _trace.messages.append(message)
    return value


# NOTE [a guessed condition avoids the branch that raises]
# Where a Function's trace specialises a condition whose value for the example inputs cannot
# be computed (a size torch.multinomial drew, `num_samples=k.max().item()`), it guesses, and
# the graph's guard sends a wrong guess to a trace that follows the real value. Guessing True
# took the true branch of torch-kmeans' `if centers.size(1) != self._k_max: raise
# ValueError(...)` (staged, then refused by torch.cond's merge of the unbacked strides), so
# the trace itself raised the user's exception with a false message ("needs (1, 3, 2), got
# (1, u2, 2)") where Python raises nothing: the guard never ran. A branch whose first
# assertion at its own level is a `raise` (context.RaiseWatch.raising, watched or not) is
# not guessed: the other is, and the guard still corrects it where Python raises.
# (tests/real/test_tester54.py, tests/reference/test_tester54.py)


# NOTE [constant conditions]
# In the body of a staged statement a condition computed from constants only (a Butcher
# tableau's coefficient, `if alpha_i == 1.:`) has one value on every iteration and every input,
# so the statement follows it as Python would. A body's own graph reaches such a constant as one
# of its placeholders: a tensor the enclosing graph passed in unchanged (a cond's operands, a
# loop's read-only inputs, a tensor the body reads by closure, which torch lifts), the same
# tensor object there. A while_loop's carried values are fresh tensors in its bodies, which no
# enclosing graph knows: never decided. The assertion stays in the graph all the same.


def _message(location, value: bool, index: int | None, error: StagingError) -> str:
    where = f"{location[0]}:{location[1]}" if location else "<unknown>"
    line = _without_comment(linecache.getline(location[0], location[1])) if location else ""
    shown = f"`{line}`" if line else "the condition"
    if index is None:
        return (f"{where}: {_GUARD} for {shown} being {value}, a condition computed from "
                f"constants, because {error.problem}; the constants changed")
    return (f"{where}: {_GUARD} (guard {index}) for {shown} being {value}, because "
            f"{error.problem}; inputs for which it is {not value} need a graph traced for that "
            "path (an autoconv.Function traces one; an exported program holds this path only)")


def _without_comment(line: str) -> str:
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type == tokenize.COMMENT:
                return line[: token.start[1]].strip()
    except (tokenize.TokenError, SyntaxError):  # a line of a longer statement
        pass
    return line.strip()


class _Unknown(Exception):
    pass


@contextlib.contextmanager
def untraced():
    """Within: torch calls run on real tensors, neither faked nor recorded."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.fx.experimental import proxy_tensor

    with unset_fake_temporarily(), proxy_tensor.disable_proxy_modes_tracing():
        yield


def real_value(value):
    """The real value of the traced tensor or number `value` for the inputs of the trace (its
    ops run again on the real inputs, as a specialised condition's are), or None where that is
    not known: another tracer, dynamo, a value computed after an in-place write to its inputs.
    Only meaningful at the top level of the function (not in a staged body)."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    if torch.compiler.is_dynamo_compiling():
        return None
    mode = get_proxy_mode()
    tracer = getattr(mode, "tracer", None)
    if tracer is None:
        return None
    if isinstance(value, torch.Tensor):
        slot = get_proxy_slot(value, tracer, None)
        node = slot.proxy.node if slot is not None else None
    else:
        node = getattr(getattr(value, "node", None), "fx_node", None)  # a SymInt / SymFloat
        if node is None:
            try:
                slot = get_proxy_slot(value.node, tracer, None)
                node = slot().node if callable(slot) else None
            except Exception:  # noqa: BLE001 - no proxy for this number
                node = None
    if node is None:
        return None
    return _evaluate(node, tracer, inputs=True, convert=lambda v: v)


def constant_item(tensor):
    """`tensor.item()` as a Python number where the traced `tensor` is computed from constants
    only (a grid from `torch.linspace(0, 1, 5)`), so that its value is the same on every input,
    at the top level of the function; None otherwise (the tracer's symbolic number then stands
    for it).

    torch makes `.item()` of any traced tensor an unbacked symbol, which later ops may not take
    (`torch.arange(0, n)` of a symbolic float fails inside torch); a constant's value is known.
    """
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    from . import context

    # Only at the top level: in a loop's body (and in a probe of one) a value computed from the
    # loop's state is traced from its first trip's, which is no constant.
    if not isinstance(tensor, FakeTensor) or context.in_staged_body() or context.probing():
        return None
    tracer = getattr(get_proxy_mode(), "tracer", None)
    slot = get_proxy_slot(tensor, tracer, None) if tracer is not None else None
    if slot is None:
        return None
    for n in _ancestors(slot.proxy.node):
        if n.op == "get_attr" and any(u.target is not torch.ops.aten.lift_fresh_copy.default
                                      for u in n.users):
            # a tensor from outside the function (a global, an attribute), not one it made:
            # it may change between calls (NOTE [outside tensors updated while tracing])
            return None
    value = _evaluate(slot.proxy.node, tracer, inputs=False, convert=lambda v: v)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        return None
    with untraced():
        return value.item()


def arange_of_symbolic_floats(*bounds, dtype=None, **kwargs):
    """`torch.arange(*bounds, ...)` where a bound is a symbolic float (`.item()` of a traced
    tensor: a time grid's `torch.arange(0, n_steps)` in torchdiffeq), which make_fx's fake
    mode cannot take (torch fails inside its argument parser). Its length is a symbolic int:
    `ceil((end - start) / step)`, as torch computes it, and its items `start + i * step` in
    float64 cast to `dtype`, as torch's CPU kernel computes them.

    Raises what torch raises where the step's sign depends on the input."""
    start, end, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
    if dtype is None:
        dtype = torch.get_default_dtype()
    length = math.ceil((end - start) / step)
    index = torch.arange(length, dtype=torch.float64, device=kwargs.pop("device", None))
    return (index * step + start).to(dtype).requires_grad_(kwargs.pop("requires_grad", False))


def _evaluate(node: torch.fx.Node, tracer, inputs: bool, convert=bool):
    """The value the graph node `node` has when the graph runs on the real inputs of the trace
    (without `inputs`: only where it is computed from constants), or None where that is not
    known."""
    from torch._guards import detect_fake_mode
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.fx.experimental import proxy_tensor

    fake_mode = detect_fake_mode()
    if fake_mode is None:
        return None
    tracers = []  # this graph's tracer, then the enclosing graphs' (NOTE [constant conditions])
    current = proxy_tensor._CURRENT_MAKE_FX_TRACER
    while current is not None:
        tracers.append(current.fx_tracer)
        current = current.parent_tracer
    if not tracers or tracers[0] is not tracer:
        tracers = [tracer]
    try:
        # (no torch.no_grad(): torch.export would record it; the inputs are detached instead)
        with unset_fake_temporarily(), proxy_tensor.disable_proxy_modes_tracing():
            return convert(_value(node, tracers, 0, fake_mode, inputs, {}))
    except Exception:  # noqa: BLE001 - _Unknown, or an op that needs the trace's context
        return None


def _value(node, tracers, level, fake_mode, inputs, memo):
    """The real value of `node` of the graph `tracers[level]` builds (see `_evaluate`)."""
    if node in memo:
        return memo[node]
    tracer = tracers[level]
    order = _ancestors(node)
    _refuse_mutations(node.graph, set(order))
    outermost = level == len(tracers) - 1
    for n in order:
        if n in memo:
            continue
        if n.op == "placeholder":
            if outermost:
                if not inputs:
                    raise _Unknown
                real = _real_input(fake_mode, tracer, n)
                memo[n] = real.detach().clone()  # (an in-place op must not change the input)
            else:
                memo[n] = _value(_outer_node(n, tracer, tracers[level + 1]), tracers,
                                 level + 1, fake_mode, inputs, memo)
        elif n.op == "get_attr":
            value = getattr(tracer.root, n.target)
            if isinstance(value, FakeTensor):
                # a tensor of an enclosing graph the body reads by closure (kept as a constant
                # until autoconv lifts it: tracers/make_fx.py)
                if outermost:
                    raise _Unknown
                value = _value(_outer_node_of(value, tracers[level + 1]), tracers, level + 1,
                               fake_mode, inputs, memo)
            memo[n] = value.detach() if isinstance(value, torch.Tensor) else value
        elif n.op == "call_function":
            if torch.Tag.nondeterministic_seeded in getattr(n.target, "tags", ()):
                # a draw run again here is not the graph's draw, and it would move torch's
                # generator (NOTE [seeding torch's generators while tracing], capture.py)
                raise _Unknown
            args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), memo.__getitem__)
            memo[n] = n.target(*args, **kwargs)
        else:
            raise _Unknown
    return memo[node]


def _ancestors(node):
    """`node` and the nodes it depends on, in graph order."""
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return [n for n in node.graph.nodes if n in seen]


# In-place ops that change no values (torch.export's tracing detaches constants in place).
_METADATA_ONLY = (torch.ops.aten.detach_.default,)


def _refuse_mutations(graph, nodes) -> None:
    """Raises _Unknown where an op of `graph` writes in place to one of `nodes`, or to a view
    of the memory one of them views: their values are then not what the nodes' own ops
    compute."""
    roots = {_memory_root(n) for n in nodes}
    for n in graph.nodes:
        schema = getattr(n.target, "_schema", None)
        if n.target in _METADATA_ONLY:
            continue
        if schema is not None and schema.is_mutable and any(
                a in nodes or _memory_root(a) in roots for a in n.all_input_nodes):
            raise _Unknown


# NOTE [writes through views of a condition's tensors]
# `a = d[i][j - 1]` then `d[i][j] = v` records `copy_(select(select(d, i), j), v)`: the write's
# input is a new view of `d`, not `d` nor `a`'s own view node, and the check of the nodes a
# condition reads found no write. The condition `a <= b` (tester's edit distance, in a staged
# `if`'s body, on `d`'s entries that the earlier staged `if`s wrote) was evaluated as if
# computed from constants and the graph specialised on it: every other input failed its guard
# at replay, with the message that the constants changed. Views are followed to the memory
# they view, on the write's side and on the condition's.


def _memory_root(node):
    """The node whose memory `node` views: its view ops followed to their base."""
    while isinstance(node, torch.fx.Node) and getattr(node.target, "is_view", False) and (
            node.args and isinstance(node.args[0], torch.fx.Node)):
        node = node.args[0]
    return node


def _writes_inputs(graph, tracer=None) -> bool:
    """Whether an op of `graph` so far writes in place to an input, or to a tensor the
    function captures (a global's, a closure's, an argument object's: a get_attr constant), or
    to a view of one, where a second run of the graph after its guard failed would not leave
    what one run leaves (NOTE [writes a failing guard repeats]). `tracer`: the graph's, whose
    real inputs tell whether two of them share memory (without it every such write counts)."""
    writes = []
    for n in graph.nodes:
        schema = getattr(n.target, "_schema", None)
        if schema is None or not schema.is_mutable or n.target in _METADATA_ONLY:
            continue
        for i, argument in enumerate(schema.arguments):
            if argument.alias_info is None or not argument.alias_info.is_write:
                continue
            value = n.args[i] if i < len(n.args) else n.kwargs.get(argument.name)
            value = _memory_root(value)
            # (a captured tensor is no input, but the failing graph's write to it stays: brk53b)
            if isinstance(value, torch.fx.Node) and value.op in ("placeholder", "get_attr"):
                writes.append((n, value))
    if not writes:
        return False
    groups = _sharing_memory(graph, {root for _, root in writes}, tracer)
    if groups is None:
        return True
    written = set().union(*groups.values())
    return not all(_repeats_alike(n, groups[root], written, graph) for n, root in writes)


# NOTE [writes a failing guard repeats]
# A graph specialised on a condition asserts it; where the assertion fails the call runs
# another graph (or, exported, raises), so the writes to the inputs or captured tensors before
# the guard run twice: `COUNT.add_(1)` counted 2 for Python's 1 (brk53b). Counted, that refused
# the common `h.flat.copy_(x)` (an argument object's tensor, a get_attr) or
# `G.flat.zero_()` before an `if` whose staging was refused and specialised (tester52's and
# held_views' view cases: 20 and 10 for Python's, on each path). A write that overwrites
# (`copy_`, `fill_`, `zero_`) with values read from no memory the graph writes, into memory
# that no op before it reads, leaves after two runs what it leaves after one: such writes are
# not counted. The memory is the real tensors': an argument that is a view of a captured
# tensor (`h.w` of `h.flat`) is the same memory under another node; where the real tensors are
# not known every write counts.
_OVERWRITES = frozenset({torch.ops.aten.copy_.default, torch.ops.aten.fill_.Scalar,
                         torch.ops.aten.fill_.Tensor, torch.ops.aten.zero_.default})


def _repeats_alike(write, group, written, graph) -> bool:
    """Whether the overwrite `write` into the memory of the nodes `group` reads no memory of
    the nodes `written` and follows no op reading its own memory."""
    if write.target not in _OVERWRITES or _memory_root(write.args[0]) not in group:
        return False
    sources = [a for a in write.all_input_nodes if a is not write.args[0]]
    if any(n in written for source in sources for n in _ancestors(source)):
        return False
    for n in graph.nodes:
        if n is write:
            return True
        if getattr(n.target, "is_view", False):
            continue  # (a view reads nothing; what reads it is seen)
        if any(_memory_root(a) in group for a in n.all_input_nodes):
            return False
    return False


def _sharing_memory(graph, roots, tracer):
    """{root: the inputs and captured tensors of `graph` whose real tensors share the memory
    of the written `root`'s, itself included} for each of `roots`; None where not known."""
    from torch._guards import detect_fake_mode
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.multiprocessing.reductions import StorageWeakRef

    fake_mode = detect_fake_mode()
    if tracer is None or fake_mode is None:
        return None
    memories = {}
    try:
        with unset_fake_temporarily():
            for n in graph.nodes:
                if n.op == "placeholder" and isinstance(n.meta.get("val"), torch.Tensor):
                    value = _real_input(fake_mode, tracer, n)
                elif n.op == "get_attr":
                    value = getattr(tracer.root, n.target)
                else:
                    continue
                if isinstance(value, FakeTensor):
                    return None
                if isinstance(value, torch.Tensor):
                    memories[n] = StorageWeakRef(value.untyped_storage())
    except Exception:  # noqa: BLE001 - _Unknown: a real input not found
        return None
    if any(root not in memories for root in roots):
        return None
    return {root: {n for n, memory in memories.items() if memory == memories[root]}
            for root in roots}


def _outer_node(placeholder, tracer, outer):
    """The node of the enclosing graph for the tensor a body's `placeholder` stands for."""
    for tensor, slot in list(tracer.tensor_tracker.items()):
        if slot.proxy.node is placeholder:
            return _outer_node_of(tensor, outer)
    raise _Unknown


def _outer_node_of(tensor, outer):
    from torch.fx.experimental.proxy_tensor import get_proxy_slot

    found = get_proxy_slot(tensor, outer, None)
    if found is None:
        raise _Unknown
    return found.proxy.node


def _real_input(fake_mode, tracer, placeholder):
    """The real tensor the fake value of the outermost graph's `placeholder` was made from."""
    from torch.fx.experimental.proxy_tensor import get_proxy_slot

    converter = fake_mode.fake_tensor_converter
    for real, tensor_id in list(converter.meta_converter.describer.lookup_tensor.items()):
        fake = converter.tensor_memo.get(tensor_id)
        slot = get_proxy_slot(fake, tracer, None) if fake is not None else None
        if slot is not None and slot.proxy.node is placeholder:
            return real
    raise _Unknown
