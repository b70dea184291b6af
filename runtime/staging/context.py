"""The staging engine's context: whether bodies run only as a probe, and which staged
statements are running (their stack, and the states they were entered from).

Low in the runtime: `lists.py`, `subscripts.py` and `operators.py` ask it, without importing
the engine (`torch.py`), which imports them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import threading

import torch
from torch.utils import _pytree as pytree

from ..errors import StagingError
from . import (dead_probes, dynamo_draws, dynamo_floats, kept_effects, specialize, trace_record,
               unseen_updates)
from ..values import is_undefined

__all__ = ["probe", "probing", "types_probe", "probing_types", "probe_side_effects_off",
           "staging", "staged_statement", "in_staged_body", "operator_bodies", "no_recursion"]

_probing = [False]
# Whether the probe only learns the types of outputs (see NOTE [types-only probes] in torch.py).
_types_only = [False]


@contextlib.contextmanager
def probe(types_only: bool = False, draws: list | None = None):
    """Bodies run only as a probe: side effects off, their ops dead code. With `types_only`, the
    probe only learns the types of values, and the statements staged inside it run each body
    once, without torch's operators (NOTE [types-only probes]); `types_only=False` inside such
    a probe (counting a loop's trips) stages them fully again. Under dynamo, the probe's draws
    become zeros when it ends, and `draws` gets their number appended (NOTE [random draws of
    probes under dynamo])."""
    # (NOTE [dead ops of probes])
    region = dead_probes.opening(torch.compiler.is_dynamo_compiling())
    if not torch.compiler.is_dynamo_compiling():
        try:
            with _probe(types_only):
                yield
        finally:
            dead_probes.close(region)
        return
    token = dynamo_draws.mark()
    try:
        with _probe(types_only):
            yield
    finally:
        undone = dynamo_draws.undraw(token)
        dead_probes.close(region)
    if undone < 0:
        from ..errors import raise_at_under_dynamo, dynamo_user_location

        raise_at_under_dynamo(
            dynamo_user_location(), "statement",
            "a body draws random numbers (torch.rand, dropout ...) in a way torch.compile's "
            "graph cannot leave out where autoconv runs the body ahead to learn its types "
            "(a random op of several outputs, or of a size no argument has): the graph "
            "would draw numbers Python never draws",
            "Draw the numbers before the statement and pass them in, or use autoconv's own "
            "replay (`autoconv.autoconv(fn)`) or torch.export")
    if draws is not None:
        draws.append(undone)


@contextlib.contextmanager
def _probe(types_only: bool):
    if torch.compiler.is_dynamo_compiling() and _compiled_bodies[_IN_OPERATOR]:
        # NOTE [probes in bodies dynamo traces]
        _operator_probes(1)
        try:
            yield
        finally:
            _operator_probes(-1)
        return
    outer = _probing[0], _types_only[0]  # probes nest: a probed body may stage statements that probe
    _probing[0], _types_only[0] = True, types_only
    # The outermost probe's region, and a types-only probe's inside a probe that stages in
    # full (counting a loop's trips): dead code but for the values a full probe gives its
    # caller (NOTE [operators of types-only probes], NOTE [random draws of probes])
    start = _graph_end() if not outer[0] or (types_only and not outer[1]) else None
    # (not under dynamo, whose graphs keep its own stacks: no context of the runtime's there)
    traces_back = None if outer[0] or torch.compiler.is_dynamo_compiling() else \
        _stack_traces_off()
    try:
        yield
    finally:
        if traces_back is not None:
            traces_back()
        _probing[0], _types_only[0] = outer
        if start is not None:
            _mark_probed(*start)
            if not outer[0]:
                _no_draws(*start)


# NOTE [probes record no stack traces]
# torch.export's tracer keeps each node's Python stack (`node.meta["stack_trace"]`): for every
# op it captures the stack and reads each frame's line, and a staged statement's ops run about
# 200 frames deep in autoconv's runtime. A probe's ops are dead code, or give their caller only
# counts (NOTE [operators of types-only probes]), and they are most of the nodes an export
# traces where statements nest (a probe runs again at each level): 20% of the CPU of
# test_restaging.py's counts_match_python went to the stacks of probes' nodes (session 35,
# sampled). So while the outermost probe runs under make_fx, the graph being traced and the
# body graphs the probe traces record no stack (fx.config.do_not_emit_stack_traces, read by
# each body's tracer when torch makes it); the statement's real staging records them as before.
# The setting is process-wide: a body tracer another thread's export makes meanwhile records
# no stacks either (debugging metadata only; nothing the program computes changes).
def _stack_traces_off():
    """Turns stack recording off for the graph make_fx traces now and the body tracers torch
    makes until the function it gives back is called, which turns it back as it was."""
    from torch.fx import config as fx_config
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    tracer = getattr(get_proxy_mode(), "tracer", None)
    recording = getattr(tracer, "record_stack_traces", False) is True
    emitting = fx_config.do_not_emit_stack_traces
    fx_config.do_not_emit_stack_traces = True
    if recording:
        tracer.record_stack_traces = False

    def back():
        fx_config.do_not_emit_stack_traces = emitting
        if recording:
            tracer.record_stack_traces = True
    return back


# NOTE [operators of types-only probes]
# A statement a types-only probe must stage in full (it grows a list) is one torch.cond /
# while_loop node in the graph (and so is each statement staged in an if's branch by the full
# probe that sizes the lists it grows, NOTE [counts of an if's probe] in staging/torch.py). Run by
# types only, the statements nested in its bodies gave stand-in values (an `and` its right side,
# an `if` its first branch), not what the program computes, and a loop test made of them need not
# ever become false (fuzz seed 13 program 12: `while g < 2 and x > 3` became `while x > 3`, and
# the graph never ended). So the statements in such a node's bodies are staged in full too
# (staging/torch.py `_stage_if`, `stage_while`). The node is dead code all the same, but torch
# puts its own runtime assertions on unbacked sizes (`_assert_scalar`) into its bodies, which made
# autoconv's clean-up keep it for their effect. The nodes are marked `PROBED` here, and the
# clean-up (autoconv/graph_passes.py `has_effects`) drops them wherever nothing reads them:
# nothing a probe stages has an effect of its own (prints, asserts and raises are off, bodies run
# on copies, draws become zeros: NOTE [random draws of probes]). torch.export and torch.compile
# keep dead nodes: there the full staging above is what keeps them finite.
PROBED = "autoconv_probed"


def _mark_probed(graph, last, root) -> None:
    node = last.next if last is not None else next(iter(graph.nodes), None)
    while node is not None and node.op != "root":
        if node.op == "call_function" and node.target in (torch.ops.higher_order.cond,
                                                         torch.ops.higher_order.while_loop):
            node.meta[PROBED] = True
        node = node.next


# NOTE [random draws of probes]
# A probe's ops are dead code, which the graph's clean-up drops, except those it must keep for
# their effects: a random op (`torch.rand`, dropout; a cond / while_loop drawing in a body)
# moves torch's generator, so a dead draw still changes every later draw (a list grown in a
# loop with `torch.rand` drew once more per call than Python: other numbers, another length).
# So when the outermost probe ends, of whatever kind, each draw it traced becomes zeros of its
# shape and dtype (no draw), in the graph make_fx builds: autoconv's trace and torch.export's
# (which drew for real before). A types-only probe's values are never used, only their types
# and shapes. A full probe gives its caller values, counts only: a loop's trips
# (staging/torch.py `_count_trips`) and the rows an if's branches append (`_probe_lists`, NOTE
# [counts of an if's probe]); a count that depends on a draw would come from the zeros, or
# from numbers the statement then draws again differently, so those statements are refused.
# Under dynamo the traced code cannot reach the graph: NOTE [random draws of probes under
# dynamo] in dynamo_draws.py does the same there.
def _graph_end():
    """(graph, its last node, root module) of the graph make_fx is tracing, or None."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    if torch.compiler.is_dynamo_compiling():  # (torch.export traces with make_fx too)
        return None
    tracer = getattr(get_proxy_mode(), "tracer", None)
    graph = getattr(tracer, "graph", None)
    if graph is None:
        return None
    return graph, next(iter(reversed(graph.nodes)), None), tracer.root


def _no_draws(graph, last, root) -> None:
    node = last.next if last is not None else next(iter(graph.nodes), None)
    while node is not None and node.op != "root":
        following = node.next
        _undraw(node, root)
        node = following


def _undraw(node, root) -> None:
    if node.op == "get_attr":  # a body of a cond / while_loop the probe traced
        sub = getattr(root, node.target, None)
        if isinstance(sub, torch.fx.GraphModule):
            for inner in list(sub.graph.nodes):
                _undraw(inner, sub)
        return
    if node.op != "call_function" or torch.Tag.nondeterministic_seeded not in getattr(
            node.target, "tags", ()):
        return
    value = node.meta.get("val")
    if not isinstance(value, torch.Tensor) or not all(type(s) is int for s in value.shape):
        return  # (sizes from symbols: left as it is)
    with node.graph.inserting_before(node):
        zeros = node.graph.call_function(
            torch.ops.aten.zeros.default, (list(value.shape),),
            {"dtype": value.dtype, "device": value.device})
    zeros.meta.update(node.meta)
    node.replace_all_uses_with(zeros)
    node.graph.erase_node(node)


def types_probe():
    return probe(types_only=True)


def probing_types() -> bool:
    """True while a probe runs only to learn the types of values (NOTE [types-only probes])."""
    return _types_only[0]


def probe_side_effects_off():
    """A context in which converted code runs only to learn the types of its values: `print`
    and `assert` do nothing, and the ops it traces are dead code."""
    return probe()


def probing() -> bool:
    """True while a body runs only to learn the types of its outputs (side effects are skipped)."""
    return _probing[0] or (torch.compiler.is_dynamo_compiling() and _compiled_bodies[_IN_OPERATOR]
                           and _operator_probes(0) > 0)


# NOTE [probes in bodies dynamo traces]
# A probe (a body run only to learn types or values: its ops dead code) must leave nothing with
# an effect in the graph: no print, no assertion of a `raise` or of a bound flag (`ld`), which
# would run on every input, where the staged statement itself runs them only on its path (a
# loop of no trip in linear_operator's CG asserted that `curr_conjugate_vec` was bound).
# torch.export (non-strict) and autoconv's own trace run the bodies of a cond / while_loop as
# Python under make_fx (staging/tracers/make_fx.py), where the flags above are set as anywhere.
# Under dynamo, in the bodies of torch's operators, dynamo refuses writes to them (side effects
# of a subgraph), and a probe there was not marked: its prints and assertions stayed. There the
# probe counts itself in `_in_operator_probes`, which dynamo never sees: `_operator_probes` is
# called for real (`_dynamo_marked_constant`), and `probing` asks it only there. Only side
# effects are off in such a probe; it stages nested statements in full (no types-only probe:
# dynamo traces each body in the operator itself). A trace that fails inside a probe leaves
# the count up: the outermost statement clears it (`staging`), and eager code never reads it.
_in_operator_probes = [0]


def _operator_probes(change: int) -> int:
    """Adds `change` to the count of probes open in bodies dynamo traces; returns the count."""
    _in_operator_probes[0] += change
    return _in_operator_probes[0]


_operator_probes._dynamo_marked_constant = True  # (dynamo calls it for real)


def _clear_operator_probes() -> None:
    _in_operator_probes[0] = 0


_clear_operator_probes._dynamo_marked_constant = True  # (dynamo calls it for real)


# [the `try_value`s open in bodies dynamo traces, the graph checks they met] (NOTE [a staged
# try under dynamo] in runtime/fallible.py)
_DRY = [0, 0]


def dry_try(opened: int, met: int) -> tuple:
    """Adds `opened` to the open `try_value`s dynamo traces in an operator's bodies and `met`
    to the checks they met (cleared once none is open); returns (open, met)."""
    _DRY[0] += opened
    _DRY[1] += met
    state = (_DRY[0], _DRY[1])
    if _DRY[0] <= 0:
        _DRY[0] = _DRY[1] = 0
    return state


dry_try._dynamo_marked_constant = True  # (dynamo calls it for real: constants in and out)


def _clear_dry_tries() -> None:
    _DRY[0] = _DRY[1] = 0


_clear_dry_tries._dynamo_marked_constant = True  # (dynamo calls it for real)


_staging = threading.local()


class _NeverRaised(Exception):
    """(what `staging` catches for a staging function that stages no statement again)"""


def staging(statement: str, again=None):
    """Decorates a staging function: while it runs, `staged_statement()` names its statement.

    `again`: None, or (exception classes, handler): an exception of those classes that the
    staging function raises goes to `handler(error, *args, **kwargs)`, which stages the
    statement in another form (or raises) inside the same bookkeeping. The handler is the
    decorator's, not a wrapper around the staging function: every frame between a converted
    statement and its torch operator is a level of dynamo's inlining per nested statement
    (NOTE [nesting under dynamo] in runtime/operators.py).
    """
    caught, handle = again or ((_NeverRaised,), None)

    def decorate(stage):
        parameters = inspect.signature(stage)

        @functools.wraps(stage)
        def run(*args, **kwargs):
            if torch.compiler.is_compiling():  # dynamo refuses the bookkeeping (and the writes)
                # ... but torch.export's non-strict trace runs this as Python: the statement is
                # named there too, for the refusals that read staged_statement() (tester36b
                # s01), and its bodies' raises are watched (NOTE [branches that always raise])
                # as in autoconv's own trace
                as_python = not torch.compiler.is_dynamo_compiling()
                if as_python:  # (dynamo refuses the bookkeeping)
                    stack = _staging.__dict__.setdefault("statements", [])
                    watches = _watch_stack()
                    depth, watched = len(stack), len(watches)
                try:
                    if as_python:  # (inside the `try`: NOTE [stacks of an unfinished staging])
                        stack.append(parameters.bind_partial(*args, **kwargs).arguments.get(
                            "statement") or statement)
                        watches.append(_barrier(run))
                    if _compiled_bodies[_ACTIVE]:
                        if torch.compiler.is_dynamo_compiling():
                            _refuse_deep_nesting(statement)  # NOTE [nesting under dynamo]
                        dead_probes.enter()  # NOTE [dead ops of probes]
                        try:
                            result = stage(*args, **kwargs)
                        except caught as error:
                            result = handle(error, *args, **kwargs)
                        finally:
                            dead_probes.leave()
                        if as_python:  # (NOTE [no value of a trace escapes])
                            trace_record.statement_traced(stack[depth], result)
                        return result
                    # ... except of the outermost statement, outside any body dynamo traces
                    _compiled_bodies[_ACTIVE] = True
                    dead_probes.reset()
                    if torch.compiler.is_dynamo_compiling():
                        _clear_operator_probes()  # (NOTE [probes in bodies dynamo traces])
                        _clear_dry_tries()  # (what a failed trace left open)
                        unseen_updates.reset()
                    # (what its nested statements' probes learn: NOTE [probe verdicts])
                    _verdicts[0] = {} if torch.compiler.is_dynamo_compiling() else None
                    floats = None
                    if torch.compiler.is_dynamo_compiling():
                        # (NOTE [assertions in bodies whose outputs are unused], kept_effects.py)
                        kept_effects.install_inductor_fix()
                        # (NOTE [floats first read in a staged statement])
                        floats = dynamo_floats.floats_specialized(True)
                    dead_probes.enter()
                    try:
                        result = stage(*args, **kwargs)
                    except caught as error:
                        result = handle(error, *args, **kwargs)
                    finally:
                        dead_probes.leave()
                        _compiled_bodies[_ACTIVE] = False
                        _verdicts[0] = None
                        if floats is not None:
                            dynamo_floats.floats_specialized(floats)
                    if as_python:  # (NOTE [no value of a trace escapes])
                        trace_record.statement_traced(stack[depth], result)
                    return result
                finally:
                    if as_python:
                        del watches[watched:]
                        del stack[depth:]
            stack = _staging.__dict__.setdefault("statements", [])
            watches = _watch_stack()
            depth, watched = len(stack), len(watches)
            named = parameters.bind_partial(*args, **kwargs).arguments.get("statement")
            if not depth:
                dead_probes.reset()
            dead_probes.enter()
            try:
                # (pushed inside the `try`: NOTE [stacks of an unfinished staging])
                stack.append(named or statement)
                # (its bodies' raises are not its enclosing body's own)
                watches.append(_barrier(run))
                result = stage(*args, **kwargs)
            except caught as error:
                result = handle(error, *args, **kwargs)
            finally:
                del watches[watched:]
                dead_probes.leave()
                del stack[depth:]
            # (for the check at the trace's end: NOTE [no value of a trace escapes])
            trace_record.statement_traced(named or statement, result)
            return result
        return run
    return decorate


# NOTE [branches that always raise]
# A `raise` in a body of a staged statement becomes a graph assertion that fails when the graph
# takes that path (operators.raise_), and the body goes on being traced: a converted helper on
# which no `return` ran then gives None to its caller (NOTE [falling off the end] in text.py).
# Called in a staged branch (`r = h(x)`, `return h(x) if x >= y else x`, a helper whose every
# path raises), that None meets a tensor on the other path, and the `if` could neither be
# staged nor, where the function updated an input before it, specialised: a GuardFailed at
# replay where Python raises the user's exception, or a StagingError (fuzz seed 27 program 80,
# seed 3501 program 12). Such a branch never completes when the graph runs, so its outputs do
# not matter: where staging the `if` (or conditional expression) fails, and one branch raised
# at its own level (not in a statement nested in it, and after no other graph assertion there,
# `assert` or an unbound read, whose failure would come first), the statement becomes an
# assertion that the condition takes the other branch, with that raise's message, and the
# other branch runs as the specialised one would, with no guard (every input is served). The
# branches are watched (`watch_raises`) in autoconv's trace and non-strict export, where the
# Python bodies run; not under dynamo, which refuses the bookkeeping's writes. A raise a `try`
# would catch, or whose message holds a value the graph chooses, is not watched (the statement
# is specialised as before). The watch knows a body by its code on the stack, not by a wrapper:
# the engine reads the bodies' own code (their names, closures, what they build) to decide
# how to stage them (a wrapper failed three refusals of tests/test_errors.py). Each staged
# statement's staging pushes a marker (`staging`), so a raise is its body's own where one
# marker lies between them: a raise in a loop nested in the branch is not.
_watches = threading.local()
_NESTED = "nested"  # a body whose first graph assertion was not a raise of its own level
# NOTE [a statement staged again inside its own staging]
# A staging function calls itself for the same statement in another form (`stage_if` carrying an
# object's fields, `objects.carry`; one container under two names; a dict's grown list): that is
# no statement nested in a body, so its marker is this one, which `note_graph_raise` does not
# count. A raise in a branch of an `if` whose state held an object (`if t0 > t1: raise ...`,
# then `self.t0 = t0` in a constructor, the rest of the function being its false branch) counted
# two markers, was taken for a nested statement's, and the statement was specialised on the
# raise's condition rather than made an assertion (an exported program raised the guard's
# message for the other path: init49).
_AGAIN = "again"


def _barrier(run):
    """The marker a staging function's `run` pushes: `_AGAIN` where it is called from within
    its own staging with no user code between (NOTE [a statement staged again inside its own
    staging]), else None."""
    import sys

    from ..errors import users_file

    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code is run.__code__:
            return _AGAIN
        if users_file(code.co_filename):
            return None
        frame = frame.f_back
    return None


# NOTE [stacks of an unfinished staging]
# A staged statement pushes onto three thread-level stacks while it stages: the statements
# being staged (`_staging.statements`, whose depth says whether a body is being traced), the
# watches of its bodies' raises (`_watch_stack`) and the names of its inputs (objects.
# `_shown_inputs`). Pushed before the `try` whose `finally` pops them, an exception in between
# (an argument that does not bind, a KeyboardInterrupt) left an entry for good, as the
# restaging memo did (NOTE [restaging state of an unfinished staging] in restaging.py): every
# later `end_watch` found another watch on top and popped nothing, so each statement of every
# later trace left its watch (and its bodies) on the stack, and `staging_depth()` counted the
# dead statement in every later trace. So the staging decorator pushes inside its `try`, and
# each pop truncates the stack to the depth its push found (a watch's own index, an inputs'
# depth): what a nested statement interrupted before its `try` left above it goes with it.


def _watch_stack() -> list:
    return _watches.__dict__.setdefault("stack", [])


class RaiseWatch:
    """What each body of one staged statement raised at its own level as its first graph
    assertion (NOTE [branches that always raise]): `raised[i]`, an exception or None."""

    def __init__(self, bodies):
        self.codes = [getattr(b, "__code__", None) for b in bodies]
        self.first = [None] * len(bodies)
        # whether that first assertion is a `raise`, watched or not (NOTE [a guessed
        # condition avoids the branch that raises] in specialize.py)
        self.raising = [False] * len(bodies)

    @property
    def raised(self) -> list:
        return [None if f is _NESTED else f for f in self.first]


def watch_raises(bodies) -> RaiseWatch | None:
    """Starts watching the raises of `bodies` (a staged statement's branches, which run inside
    its staging); `end_watch` ends it. None under dynamo, which refuses the writes."""
    if torch.compiler.is_dynamo_compiling():
        return None
    watch = RaiseWatch(bodies)
    _watch_stack().append(watch)
    return watch


def end_watch(watch: RaiseWatch | None) -> None:
    """Ends `watch` (from `watch_raises`), and any watch still open above it (NOTE [stacks of
    an unfinished staging])."""
    if watch is not None:
        stack = _watch_stack()
        at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i] is watch), None)
        if at is not None:
            del stack[at:]


def raised_in_watched_bodies() -> bool:
    """Whether a body of the innermost watched statement raised at its own level: its outputs
    (a helper's None, NOTE [falling off the end]) are none that Python gives (NOTE [branches
    that always raise]), so they are not carried as None or a value (NOTE [None or a value
    under tensor control flow] in optionals.py)."""
    for watch in reversed(getattr(_watches, "stack", ())):
        if isinstance(watch, RaiseWatch):
            return any(f is not None and f is not _NESTED for f in watch.first)
    return False


def note_graph_raise(exc: BaseException | None, raising: bool = False) -> None:
    """Records a graph assertion made by converted code: `exc` for a `raise` (its own level's
    for the innermost watched body), None for any other (`assert`, an unbound read) or for a
    `raise` that is not watched (`raising`)."""
    if torch.compiler.is_dynamo_compiling():  # (nothing is watched there)
        return
    stack = getattr(_watches, "stack", None)
    if not stack or not any(isinstance(w, RaiseWatch) for w in stack):
        return
    import sys

    running, frame = set(), sys._getframe(1)
    while frame is not None:
        running.add(frame.f_code)
        frame = frame.f_back
    barriers = 0  # staged statements between the raise and a watch: its own level is one
    for watch in reversed(stack):
        if watch is _AGAIN:  # NOTE [a statement staged again inside its own staging]
            continue
        if watch is None:
            barriers += 1
            continue
        for i, code in enumerate(watch.codes):
            if code is not None and code in running and watch.first[i] is None:
                watch.first[i] = exc if barriers == 1 and exc is not None else _NESTED
                watch.raising[i] = barriers == 1 and (raising or exc is not None)


# NOTE [nesting under dynamo] (runtime/operators.py): dynamo traces each nested staged statement
# as a deeper level of its own interpreter, about 70-120 of Python's frames per level; past
# Python's recursion limit it raised a bare RecursionError from its internals, with no line.
# Each nested statement first asks how deep the real stack is (dynamo calls the check for
# real): where its own level would not fit, a StagingError at the user's line says so. What
# the innermost level needs beyond the check was measured with the check off, as the lowest
# recursion limit that compiles: 185 frames for three nested `if`s (check at 275 frames, 22
# calls inlined by dynamo), 191 for five (499, 42), and more than 189 for fuzz seed 15's
# program 1400 (811, about 80), whose RecursionError came from dynamo's `fake_mode` property,
# which walks every inlined call's parent once per op. So the level needs a fixed part and a
# frame per inlined call (`inline_call_` frames on the stack); 150 fixed frames let program
# 1400 through to the RecursionError. 200 let fuzz seed 3401's program 125 through: its
# innermost `if` (check at 784 frames, 68 inlined) holds a `while` whose test's staged `or`
# compares a number read by `.item()` (autoconv's comparison, six calls deep), and dynamo
# reached 275 frames past the check, 17 inlined calls deeper: 207 fixed frames. 240 refused
# linear_operator's MINRES under torch.compile (tests/real/test_tester30.py), which compiles
# at 725 frames deep with 62 inlined calls (213 fixed frames at most): 210 lets both through.
# The margin is a few frames either way; the estimate is a bound on dynamo's depth per level,
# not a measure of the body's own depth, which would be the better test.
_LEVEL_FRAMES = 210
# (for measurements) the most frames a statement needed, its level included, and how deep the
# stack was at that statement's check
_deepest = [0, 0]


def _refuse_deep_nesting(statement: str) -> None:
    import sys

    depth, inlined, frame = 0, 0, sys._getframe()
    while frame is not None:
        depth, inlined = depth + 1, inlined + (frame.f_code.co_name == "inline_call_")
        frame = frame.f_back
    needed = depth + _LEVEL_FRAMES + inlined
    if needed > _deepest[0]:
        _deepest[:] = needed, depth
    limit = sys.getrecursionlimit()
    if needed > limit:
        from ..errors import raise_at_under_dynamo, dynamo_user_location

        raise_at_under_dynamo(
            dynamo_user_location(), statement,
            f"it is nested so deep in other staged statements (and calls) that torch.compile's "
            f"dynamo, which traces each nested body as a deeper level of its own interpreter, "
            f"would pass Python's recursion limit ({limit}; {depth} frames deep here, about "
            f"{needed} with its body)",
            "Raise the limit before the first call (`sys.setrecursionlimit(10000)`), or use "
            "autoconv's own replay (`autoconv.autoconv(fn)`), which has no such limit")


_refuse_deep_nesting._dynamo_marked_constant = True  # (dynamo calls it for real)


# Under dynamo or export: whether a staged statement runs ([0]), and whether dynamo traces the
# bodies of its torch operator ([1]), where it refuses writes to these flags (so they are written
# by the outermost statement only). A list: dynamo lost writes to an object's attribute made
# after a torch.cond, not those to a list.
_compiled_bodies = [False, False]
_ACTIVE, _IN_OPERATOR = 0, 1
# Under dynamo, while the outermost staged statement runs: the verdicts of its nested
# statements' probes (NOTE [probe verdicts] in verdicts.py).
_verdicts = [None]


@contextlib.contextmanager
def operator_bodies():
    if not torch.compiler.is_compiling() or _compiled_bodies[_IN_OPERATOR]:
        yield
        return
    _compiled_bodies[_IN_OPERATOR] = True
    try:
        yield
    finally:
        _compiled_bodies[_IN_OPERATOR] = False


def in_operator_bodies() -> bool:
    """Under dynamo: whether it traces the bodies of a torch operator (where it refuses writes
    to objects made outside them)."""
    return _compiled_bodies[_IN_OPERATOR]


def in_staged_body() -> bool:
    """True while the bodies of a staged statement run to become a graph."""
    if torch.compiler.is_compiling():
        return _compiled_bodies[_ACTIVE]
    return staged_statement() is not None


def staging_depth() -> int:
    """How many staged statements' bodies are running to become a graph (0 outside them)."""
    return len(getattr(_staging, "statements", None) or ())


def staged_statement() -> str | None:
    """The innermost statement whose bodies are running to become a graph, or None."""
    stack = getattr(_staging, "statements", None)
    return stack[-1] if stack else None


def _leaf_key(leaf):
    if isinstance(leaf, torch.Tensor):
        return ("tensor", tuple(str(d) for d in leaf.shape), leaf.dtype, leaf.device)
    if is_undefined(leaf):
        return ("undefined", leaf.name)
    if isinstance(leaf, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        # Hashing or comparing a symbolic number guards on its value, which an unbacked one
        # (from .item()) has not: its expression names it.
        return (type(leaf), str(leaf))
    try:
        hash(leaf)
        return (type(leaf), leaf)
    except TypeError:
        return (type(leaf), id(leaf))


def _entry_key(bodies, values) -> tuple:
    """What decides how a staged statement traces: its bodies' code, and the types of the
    tensors and the Python values it starts from (closure cells of the bodies included)."""
    cells = []
    for b in bodies:
        for c in getattr(b, "__closure__", None) or ():
            try:
                value = c.cell_contents
            except ValueError:  # a cell a closure reads that has no value yet
                continue
            if value is not None:
                cells.append(value)
    codes = tuple(getattr(b, "__code__", b) for b in bodies)
    return codes, tuple(_leaf_key(v) for v in pytree.tree_leaves((values, cells)))


def no_recursion(statement: str, bodies, values):
    """Refuses a staged statement entered again, while its bodies are being traced, from
    exactly the same Python state: a recursive function whose depth depends on a tensor
    (`def depth(x, n): if n <= 0: return x; return depth(x * 0.5, n - 1)` with a tensor `n`).
    Tracing both branches of the `if` calls the function again, which stages the same `if`
    again, for ever; a recursion bounded by a Python value enters with another value.

    Raises StagingError at the statement's line.
    """
    # (dynamo refuses the bookkeeping; torch.export's non-strict trace runs it as Python, where
    # without it the recursion ran into Python's RecursionError, blamed on contextlib.py:
    # tester36b s02)
    if torch.compiler.is_dynamo_compiling():
        return contextlib.nullcontext()
    key = _entry_key(bodies, values)
    entered = _staging.__dict__.setdefault("entered", [])
    if key in entered:
        path = getattr(bodies[0], "__qualname__", "").split(".<locals>.")
        # (the converted function is named `<name>_converted` in its factory)
        function = re.sub(r"_converted(_\d+)?$", "", path[-2]) if len(path) > 1 else "a function"
        raise specialize.never(StagingError(  # (not specialised: one trace per depth)
            statement,
            f"'{function}' calls itself while its bodies are being staged, from the same "
            "Python values and tensor types, so the depth of the recursion depends on a "
            "tensor and tracing it would never end",
            "Write the recursion as a while loop that carries the values that change, or "
            "bound its depth with a Python int"))
    return _entered(entered, key)


@contextlib.contextmanager
def _entered(entered: list, key):
    entered.append(key)
    try:
        yield
    finally:
        entered.pop()


# The lists a traced call's caller owns (reachable from its arguments or bound self), by id:
# a staged statement cannot grow one of them, since the graph's grown list is a new object
# (see `lists.reserve`). Set by autoconv's trace; empty elsewhere.
_caller_lists = threading.local()


@contextlib.contextmanager
def caller_owned_lists(ids):
    outer = getattr(_caller_lists, "ids", frozenset())
    _caller_lists.ids = frozenset(ids)
    try:
        yield
    finally:
        _caller_lists.ids = outer


def is_caller_owned_list(value) -> bool:
    return id(value) in getattr(_caller_lists, "ids", ())
