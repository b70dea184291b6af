"""Lowering of converted control flow onto torch.cond and torch.while_loop.

Converted bodies are pure: they take the statement's state as arguments and return it. Here the
state is split into slots: tensors (and Python numbers, promoted to 0-d tensors) become operands
and outputs of the torch operator; any other value (None, a list, a module) must come out of every
body unchanged and stays a Python constant outside the graph, except a list the bodies append to,
which becomes a StagedList (see `lists.py`). Tensors that bodies only read reach
them by closure, which torch 2.13 lifts into explicit operands of the cond / while_loop node (see
NOTE [closure operands] in tests/test_staging_graph.py, which guards that they are not baked).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import threading

import torch
from torch.fx.experimental.symbolic_shapes import has_free_unbacked_symbols, statically_known_true
from torch.utils import _pytree as pytree

from ..errors import StagingError, graph_error_message
from ..lists import StagedList
from . import constants, lists, mappings, objects, operators
from ..values import RETURN_VALUE, is_staged, is_symbolic, is_undefined, to_tensor

__all__ = ["stage_if", "stage_while", "as_predicate", "probing", "probe_side_effects_off",
           "staged_statement", "in_staged_body"]

_probing = [False]


@contextlib.contextmanager
def _probe():
    if torch.compiler.is_compiling() and _compiled_bodies[_IN_OPERATOR]:
        # Dynamo traces the bodies of torch.cond / while_loop and refuses the flag's mutation
        # there. Without it, a print in a probed body stays in the graph as a second print.
        yield
        return
    outer = _probing[0]  # probes nest: a probed body may stage statements that probe
    _probing[0] = True
    try:
        yield
    finally:
        _probing[0] = outer


def probe_side_effects_off():
    """A context in which converted code runs only to learn the types of its values: `print`
    and `assert` do nothing, and the ops it traces are dead code."""
    return _probe()


_staging = threading.local()


def staging(statement: str):
    """Decorates a staging function: while it runs, `staged_statement()` names its statement."""
    def decorate(stage):
        parameters = inspect.signature(stage)

        @functools.wraps(stage)
        def run(*args, **kwargs):
            if torch.compiler.is_compiling():  # dynamo refuses the bookkeeping (and the writes)
                if _compiled_bodies[_ACTIVE]:
                    return stage(*args, **kwargs)
                # ... except of the outermost statement, outside any body dynamo traces
                _compiled_bodies[_ACTIVE] = True
                try:
                    return stage(*args, **kwargs)
                finally:
                    _compiled_bodies[_ACTIVE] = False
            stack = _staging.__dict__.setdefault("statements", [])
            named = parameters.bind_partial(*args, **kwargs).arguments.get("statement")
            stack.append(named or statement)
            try:
                return stage(*args, **kwargs)
            finally:
                stack.pop()
        return run
    return decorate


# Under dynamo or export: whether a staged statement runs ([0]), and whether dynamo traces the
# bodies of its torch operator ([1]), where it refuses writes to these flags (so they are written
# by the outermost statement only). A list: dynamo lost writes to an object's attribute made
# after a torch.cond, not those to a list.
_compiled_bodies = [False, False]
_ACTIVE, _IN_OPERATOR = 0, 1


@contextlib.contextmanager
def _operator_bodies():
    if not torch.compiler.is_compiling() or _compiled_bodies[_IN_OPERATOR]:
        yield
        return
    _compiled_bodies[_IN_OPERATOR] = True
    try:
        yield
    finally:
        _compiled_bodies[_IN_OPERATOR] = False


def in_staged_body() -> bool:
    """True while the bodies of a staged statement run to become a graph."""
    if torch.compiler.is_compiling():
        return _compiled_bodies[_ACTIVE]
    return staged_statement() is not None


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
    cells = [c.cell_contents for b in bodies for c in (getattr(b, "__closure__", None) or ())
             if c.cell_contents is not None]
    codes = tuple(getattr(b, "__code__", b) for b in bodies)
    return codes, tuple(_leaf_key(v) for v in pytree.tree_leaves((values, cells)))


def _no_recursion(statement: str, bodies, values):
    """Refuses a staged statement entered again, while its bodies are being traced, from
    exactly the same Python state: a recursive function whose depth depends on a tensor
    (`def depth(x, n): if n <= 0: return x; return depth(x * 0.5, n - 1)` with a tensor `n`).
    Tracing both branches of the `if` calls the function again, which stages the same `if`
    again, for ever; a recursion bounded by a Python value enters with another value.

    Raises StagingError at the statement's line.
    """
    if torch.compiler.is_compiling():  # dynamo refuses the bookkeeping
        return contextlib.nullcontext()
    key = _entry_key(bodies, values)
    entered = _staging.__dict__.setdefault("entered", [])
    if key in entered:
        path = getattr(bodies[0], "__qualname__", "").split(".<locals>.")
        # (the converted function is named `<name>_converted` in its factory)
        function = re.sub(r"_converted(_\d+)?$", "", path[-2]) if len(path) > 1 else "a function"
        raise StagingError(
            statement,
            f"'{function}' calls itself while its bodies are being staged, from the same "
            "Python values and tensor types, so the depth of the recursion depends on a "
            "tensor and tracing it would never end",
            "Write the recursion as a while loop that carries the values that change, or "
            "bound its depth with a Python int")
    return _entered(entered, key)


@contextlib.contextmanager
def _entered(entered: list, key):
    entered.append(key)
    try:
        yield
    finally:
        entered.pop()


def _reraise_analysed(error: BaseException) -> bool:
    """Whether `error` needs no analysis here: a StagingError names its cause already, and an
    error an inner staged statement analysed was looked at once (re-running the bodies of
    every enclosing statement to look again would take time exponential in their nesting)."""
    if isinstance(error, StagingError) or getattr(error, "_autoconv_analysed", False):
        return True
    try:
        error._autoconv_analysed = True
    except AttributeError:  # exceptions without a __dict__
        pass
    return False


def probing() -> bool:
    """True while a body runs only to learn the types of its outputs (side effects are skipped)."""
    return _probing[0]


def as_predicate(value, statement: str) -> torch.Tensor:
    """A 0-d bool tensor with the truth value Python would give `value`.

    Another tracer's value (an fx Proxy: no shape, no dtype) is left to its own cond."""
    if not isinstance(value, torch.Tensor):
        return value
    numel = value.numel()
    if isinstance(numel, int) and numel != 1:
        raise StagingError(
            statement,
            f"the condition is a tensor of shape {tuple(value.shape)}, and the truth value of a "
            "tensor with more than one element is ambiguous",
            "Reduce it to one element, e.g. with .any() or .all()",
        )
    if value.dtype != torch.bool:
        value = value != 0
    return value.reshape(())


_SYMBOLIC = (torch.SymBool, torch.SymInt, torch.SymFloat)


def _is_number(value) -> bool:
    # A symbolic number (`t.item()` under a tracer) crosses a statement as a 0-d tensor too.
    return isinstance(value, (bool, int, float, *_SYMBOLIC)) and not isinstance(value, torch.Tensor)


# How each state slot crosses a staged statement.
TENSOR = "tensor"  # an operand and an output of the torch operator
UNBOUND = "unbound"  # no value before; every body must bind it to a tensor, which is an output
CONSTANT = "constant"  # a Python value every body must leave as it is; it stays outside the graph


def _is_stageable(value) -> bool:
    """A tensor, a number, or a tuple / dict of them (torch's operators take such pytrees)."""
    if isinstance(value, (torch.Tensor, StagedList, constants.StagedConstant)) or _is_number(value):
        return True
    if is_staged(value):  # another tracer's value, such as an fx Proxy
        return True
    if isinstance(value, (tuple, dict)):
        mappings.register(value)  # a dict subclass (scipy's OptimizeResult) as its items
        leaves = pytree.tree_leaves(value)
        return bool(leaves) and all(isinstance(v, torch.Tensor) or _is_number(v) for v in leaves)
    return False


def _as_tensors(value, like, dtype=None):
    return pytree.tree_map(lambda leaf: to_tensor(leaf, like, dtype), value)


def _slot_kinds(state, names):
    kinds = []
    for value, name in zip(state, names):
        if _is_stageable(value):
            kinds.append(TENSOR)
        elif is_undefined(value):
            kinds.append(UNBOUND)
        else:
            kinds.append(CONSTANT)
    return kinds


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if is_undefined(value):
        return "unbound"
    if isinstance(value, StagedList):
        return "a list grown under tensor control flow"
    return f"a Python {type(value).__name__}"


def _refuse_sets(state, names, statement):
    # A set in the state of a staged statement is one the bodies change; torch's operators cannot
    # carry it, and dynamo, which traces their bodies, would stop at the mutation with a message
    # about side effects. (Lists become StagedLists instead.)
    for value, name in zip(state, names):
        if isinstance(value, set):
            raise StagingError(
                statement,
                f"set '{name}' is changed under a tensor condition, and torch's control-flow "
                "operators cannot carry a set",
                f"Build '{name}' outside the {statement}, or keep its contents in a tensor")


def _unpack_outputs(outputs, state, names, kinds, statement, where, like, dtypes=None):
    """Turn a body's full state tuple into its tensor outputs, checking the constant slots.

    Python numbers become tensors of the dtype `dtypes` gives their slot, or the default one.
    """
    if not isinstance(outputs, tuple) or len(outputs) != len(state):
        raise StagingError(statement, f"{where} returned {outputs!r}", "This is a bug in autoconv")
    tensors = []
    dtypes = dtypes or {}
    for slot, (out, before, name, kind) in enumerate(zip(outputs, state, names, kinds)):
        if kind == CONSTANT:
            if isinstance(before, constants.Kept) and out is not before:
                # one branch leaves it unbound (the other one: an if has two)
                raise _unbound_after(statement, name, before.other(where))
            if constants.can_carry(before, out) and out is not before:
                raise constants.Retabled(state, slot)  # staged again, carrying the slot
            if out is not before:
                raise StagingError(
                    statement,
                    f"'{name}' is {_describe(before)} before the statement and is reassigned "
                    f"{where}; only tensors and numbers can change under a tensor condition",
                    f"Give '{name}' a tensor value before the statement, or compute it outside",
                )
            continue
        if (kind == UNBOUND and "if" in statement and not torch.compiler.is_dynamo_compiling()
                and out is before):
            # Staged again with it a constant: if no branch binds it, it stays unbound
            raise constants.Retabled(state, slot, keep=True)
        if (kind == UNBOUND and constants.is_constant(out) and is_undefined(before)
                and torch.compiler.is_dynamo_compiling()):
            constants.refuse_unbound_under_dynamo(name, statement)
        out = constants.staged(out, name, like)
        if is_undefined(out):
            raise _unbound_after(statement, name, where)
        if not _is_stageable(out):
            raise StagingError(
                statement,
                f"'{name}' becomes {_describe(out)} {where}; staged statements can only "
                "produce tensors and numbers",
                f"Keep '{name}' a tensor, or move its assignment out of the {statement}",
            )
        tensors.append(_as_tensors(out, like, dtypes.get(slot)))
    return tuple(tensors)


def _unbound_after(statement, name, where):
    fix = (f"Assign '{name}' before the loop" if "loop" in statement
           else f"Assign '{name}' in every branch, or before the if")
    error = StagingError(statement, f"'{name}' has no value {where} but is used afterwards", fix)
    error.unbound = name  # (a loop may stage its first iteration instead)
    return error


def _merge(flat, state, kinds, staged=(TENSOR,)):
    """Rebuild a full state tuple from the staged tensors `flat` and the other slots of `state`."""
    it = iter(flat)
    return tuple(next(it) if kind in staged else value for value, kind in zip(state, kinds))


_OUTPUTS = (TENSOR, UNBOUND)


def _private(values):
    # Bodies may update their state in place (`steps += 1`); torch's operators refuse mutation
    # of their inputs, so each body works on copies.
    return pytree.tree_map(lambda t: t.clone(), tuple(values))


def _unalias(outputs):
    # torch.cond and while_loop refuse outputs that alias their inputs (a body returning a value
    # it only read, or a view of one), so every output is a copy.
    return pytree.tree_map(lambda t: t.clone(), tuple(outputs))


def _distinct(tensors):
    """The tensors, copied where two would share memory (the same tensor twice, or a view).

    Dynamo, which traces the bodies of torch.cond / while_loop, refuses body inputs that alias
    one another, as `x` and `row = x[0]` read by one branch would.
    """
    out = []
    for t in tensors:
        # `is`, not id(): dynamo would guard on the identity of every tensor passed
        if isinstance(t, torch.Tensor) and (t._base is not None or any(t is u for u in out)):
            t = t.clone()
        out.append(t)
    return out


def _symbolic_input(value) -> bool:
    if not torch.compiler.is_dynamo_compiling():
        return isinstance(value, _SYMBOLIC)
    # Dynamo shows symbolic numbers as Python ones; torch.cond takes a SymInt operand itself.
    return type(value) in (float, bool) and is_symbolic(value)


class _Operands:
    """The tensors a staged statement passes to its bodies: staged state, then inputs.

    Everything else in the inputs (modules, numbers, functions) stays a Python constant.
    """

    def __init__(self, state, kinds, inputs, like, dtypes):
        staged = tuple(_as_tensors(v, like, dtypes.get(i))
                       for i, (v, k) in enumerate(zip(state, kinds)) if k == TENSOR)
        state_leaves, self.state_spec = pytree.tree_flatten(staged)
        self.input_leaves, self.input_spec = pytree.tree_flatten(tuple(inputs))
        # A symbolic number read by a body (`s = x.sum().item()` before `if s > 1: x * s`) is
        # tracked by the enclosing graph only: it goes in as a 0-d tensor and is read back
        # inside (`_symbolic` slots), as a tensor would be.
        self.symbolic = {i for i, leaf in enumerate(self.input_leaves) if _symbolic_input(leaf)}
        for i in self.symbolic:
            self.input_leaves[i] = to_tensor(self.input_leaves[i], like)
        self.input_slots = [i for i, leaf in enumerate(self.input_leaves)
                            if isinstance(leaf, torch.Tensor) or is_staged(leaf)]
        self.count = len(state_leaves)
        self.flat = tuple(_distinct(state_leaves + [self.input_leaves[i]
                                                    for i in self.input_slots]))

    def split(self, flat):
        """(staged state values, inputs) from a flat tuple of operands."""
        state = pytree.tree_unflatten(list(flat[: self.count]), self.state_spec)
        leaves = list(self.input_leaves)
        for slot, tensor in zip(self.input_slots, flat[self.count:]):
            leaves[slot] = tensor.item() if slot in self.symbolic else tensor
        return state, pytree.tree_unflatten(leaves, self.input_spec)


def _zeros_like_meta(value):
    t = to_tensor(value)
    return torch.zeros(t.shape, dtype=t.dtype, device=t.device)


def _fill_return_placeholders(bodies, state, names, kinds, inputs, like, created=(),
                              statement="while loop"):
    """Give an unset return value a zero tensor shaped like the one a body would return.

    `created` are the slots of variables a loop body binds first (see NOTE [loop-created
    variables]); they get a placeholder the same way, or a StagingError when the body does not
    give them a tensor.
    """
    # (not under dynamo, which would guard on the thread-local's contents)
    probed = () if torch.compiler.is_dynamo_compiling() else getattr(_staging, "created", ())
    slots = [i for i, v in enumerate(state)
             if is_undefined(v) and (v.name == RETURN_VALUE or v.name in probed)]
    if not slots and not created:
        return state
    state = list(state)
    # The bodies see their state as the staged statement will pass it: numbers as tensors. A
    # Python flag would run an inner statement as Python here that the real trace stages, and
    # the two could disagree on whether a return happens.
    staged = [_as_tensors(v, like) if k == TENSOR else v for v, k in zip(state, kinds)]
    untouched = []
    with _probe(), _probing_created([names[i] for i in created]):
        for body in bodies:
            # On copies: a body that updates a tensor in place (`i += 1`) must not change the
            # state the statement then stages with.
            try:
                outputs = body(*_copies(staged), *_copies(inputs))
            except Exception as error:
                # Only a read of a variable without a value (the Undefined placeholder) is
                # blamed on it; any other error (a refusal deeper in the body) is the body's.
                if not created or not (isinstance(error, UnboundLocalError)
                                       or "Undefined" in str(error)):
                    raise
                raise _unbound_before_loop(statement, names[created[0]]) from error
            untouched.append(outputs)
            for i in [*slots, *created]:
                out = constants.staged(outputs[i], names[i], like)
                if is_undefined(state[i]) and _is_stageable(out):
                    # Shape and dtype only: the probe's own ops stay dead, for DCE to drop.
                    state[i] = pytree.tree_map(_zeros_like_meta, out)
    for i in slots:
        kinds[i] = CONSTANT if is_undefined(state[i]) else TENSOR
    for i in list(created):
        if is_undefined(state[i]) and all(out[i] is state[i] for out in untouched):
            # The body leaves it alone (`if return_all: allvecs.append(x)` with a Python
            # False): it stays unbound, a constant of the statement.
            created.remove(i)
            kinds[i] = CONSTANT
            continue
        if is_undefined(state[i]):
            raise _unbound_before_loop(statement, names[i])
        kinds[i] = TENSOR
    return tuple(state)


@contextlib.contextmanager
def _probing_created(names):
    """While a loop body runs to learn the types of the variables it creates, a statement in it
    that binds one of them on some paths only (`if found: status = 'found'; break`) gives it a
    placeholder on the others, as the loop will (NOTE [loop-created variables])."""
    if torch.compiler.is_dynamo_compiling() or not names:
        yield
        return
    outer = getattr(_staging, "created", ())
    _staging.created = (*outer, *names)
    try:
        yield
    finally:
        _staging.created = outer


def _unbound_before_loop(statement, name):
    return StagingError(
        statement,
        f"'{name}' has no value before the loop, and the loop body does not give it a tensor "
        "value on every path before reading it",
        f"Assign '{name}' before the loop, with the dtype and shape it will have")


# NOTE [loop-created variables]
# A variable a staged loop binds first (`for i in range(n): last = x[i]`, then `last` or `i`
# read after the loop) is carried with a placeholder of the type the body gives it (zeros,
# learnt by running the body once as a probe), as AutoGraph does. Where the loop runs no
# iteration Python has no value for it; the loop also carries whether it ran, and after it a
# graph assertion raises the UnboundLocalError Python would (at the loop's end, not at the read:
# reading the variable only on a path that skips the loop still raises).


def _copies(values):
    return pytree.tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, tuple(values))


def _probe_lists(bodies, state, names, kinds, inputs, like, statement, dtypes):
    """{slot: lists.Growth} for the lists in `state` the bodies grow (empty when none does).

    Each body runs once with side effects off on the state as it will see it staged (numbers
    as tensors) and on its own copy of each list; the probe's ops are dead code.
    """
    slots = lists.growing_slots(state)
    if not slots:
        return {}
    staged_view = tuple(_as_tensors(v, like, dtypes.get(i)) if k == TENSOR else v
                        for i, (v, k) in enumerate(zip(state, kinds)))
    probes = []
    with _probe():
        for body, where in bodies:
            probe_state = lists.probe_copies(staged_view, slots)
            own = [v if i in slots else _copies((v,))[0] for i, v in enumerate(probe_state)]
            outputs = body(*own, *_copies(inputs))
            if not isinstance(outputs, tuple) or len(outputs) != len(state):
                raise StagingError(statement, f"{where} returned {outputs!r}",
                                   "This is a bug in autoconv")
            probes.append((probe_state, outputs, where))
    growth = lists.measure(names, slots, state, probes, statement)
    # A list no body appends to stays as it is (a Python list a constant, a StagedList state).
    return {slot: g for slot, g in growth.items()
            if not (isinstance(g.count, int) and g.count == 0)}


def _reserve_lists(state, kinds, growth, rows_for, like, statement):
    """`state` with each growing list a reserved StagedList with `rows_for(growth)` rows free."""
    state = list(state)
    for slot, seen in growth.items():
        state[slot] = lists.reserve(state[slot], seen, rows_for(seen), like, statement)
        kinds[slot] = TENSOR
    return tuple(state)


def _lists_as_pairs(outputs):
    # torch.cond's tracer takes tuples of tensors, not other pytree nodes, as outputs.
    return tuple((v.buffer, v.count) if isinstance(v, StagedList)
                 else constants.index_of(v) for v in outputs)


def _pairs_as_lists(outputs, state, kinds):
    """Undo `_lists_as_pairs` on the staged outputs, with the lists' flags from `state`."""
    lists_in = [v for v, k in zip(state, kinds) if k in _OUTPUTS]
    return tuple(StagedList(*_same_sizes_as(out, (before.buffer, before.count)),
                            before.reserved, before.name)
                 if isinstance(before, StagedList) else constants.like(before, out)
                 for out, before in zip(outputs, lists_in))


def _same_sizes_as(outputs, inputs):
    """`outputs` with the sizes of `inputs`, tensor by tensor.

    torch.cond gives an output whose size is unbacked (a list's buffer sized by `n.item()`) a
    fresh unbacked size, which a loop carrying it would take for a change of shape. Both
    branches keep the input's size, so it is asserted and the output given it.
    """
    def same(out, before):
        if not isinstance(out, torch.Tensor):
            return out
        # Under dynamo sizes cannot be told apart here; checking equal static sizes is free.
        if not torch.compiler.is_compiling() and not _size_depends_on_values(before):
            return out
        for new, old in zip(out.shape, before.shape):
            torch._check(new == old)
        # expand, not view: a view of an equal shape keeps the output's own sizes.
        return out.expand(before.shape)

    return pytree.tree_map(same, outputs, inputs)


def _released(values, growth):
    """The statement's results, its own StagedLists released for appends after it."""
    return tuple(lists.release(v) if i in growth else v for i, v in enumerate(values))


def _size_depends_on_values(t) -> bool:
    """True for a tensor with an unbacked size (torch.stack of a grown list, nonzero, ...)."""
    # Dynamo takes every size for an int here, and stops before the test it cannot trace.
    if not isinstance(t, torch.Tensor) or all(isinstance(d, int) for d in t.shape):
        return False
    return has_free_unbacked_symbols(tuple(t.shape))


def _mismatch(statement, name, first, second, where_first, where_second):
    paths = ((first, where_first), (second, where_second))
    constant = [(v, w) for v, w in paths if isinstance(v, constants.StagedConstant)]
    if len(constant) == 1:  # a constant on one path, a tensor on the other
        value, where = constant[0]
        return StagingError(
            statement,
            f"'{name}' becomes a Python {value.kind} {where}; staged statements can only "
            "produce tensors and numbers, or constants on every path",
            f"Keep '{name}' a tensor, or move its assignment out of the {statement}")
    if any(_size_depends_on_values(t) for t in pytree.tree_leaves((first, second))):
        fix = (f"A value whose shape depends on tensor values (such as torch.stack of a list "
               f"grown in a loop) cannot be '{name}' of a staged statement: compute it after the "
               "statement, or give it a fixed shape")
    else:
        fix = _mismatch_fix(name, first, second)
    return StagingError(
        statement,
        f"'{name}' is {_describe(first)} {where_first} and {_describe(second)} {where_second}",
        fix,
    )


def _mismatch_fix(name, first, second) -> str:
    """What to change for `name`, which is `first` on one path and `second` on another: the fix
    that fits what differs (a structure, a dtype, a shape)."""
    first_leaves, first_spec = pytree.tree_flatten(first)
    second_leaves, second_spec = pytree.tree_flatten(second)
    if first_spec != second_spec:
        return (f"Give '{name}' the same structure on every path: the same containers holding "
                "the same number of tensors")
    pairs = [(a, b) for a, b in zip(first_leaves, second_leaves)
             if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)]
    if any(a.dtype != b.dtype for a, b in pairs):
        return (f"Give '{name}' one dtype on every path (e.g. with .to(dtype) or "
                "torch.zeros(..., dtype=...) before the statement)")
    return (f"Give '{name}' one shape on every path (a staged statement cannot change a "
            "tensor's number of dimensions or a fixed size)")


def _same_kind(a, b) -> bool:
    a_leaves, a_spec = pytree.tree_flatten(a)
    b_leaves, b_spec = pytree.tree_flatten(b)
    if not all(isinstance(t, torch.Tensor) for t in a_leaves + b_leaves):
        return a_spec == b_spec  # another tracer's values (fx Proxies) have no dtype to compare
    return a_spec == b_spec and all(_same_tensor_kind(x, y) for x, y in zip(a_leaves, b_leaves))


def _same_tensor_kind(a, b) -> bool:
    if a.dtype != b.dtype or a.dim() != b.dim():
        return False
    if _size_depends_on_values(a) or _size_depends_on_values(b):
        return all(statically_known_true(x == y) for x, y in zip(a.shape, b.shape))
    try:
        return all(x == y for x, y in zip(a.shape, b.shape) if isinstance(x, int) and isinstance(y, int))
    except Exception:  # symbolic sizes: torch checks them itself
        return True


def _number_dtypes(kinds, *paths):
    """Dtypes for slots where a Python number meets a tensor: the tensor's (promoted) dtype.

    Each path is one body's raw outputs (or the state before a loop), slot by slot.
    """
    dtypes = {}
    staged = [i for i, k in enumerate(kinds) if k in _OUTPUTS]
    for slot in staged:
        values = [path[slot] for path in paths]
        numbers = [v for v in values if _is_number(v)]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        if numbers and tensors:
            dtype = tensors[0].dtype
            for number in numbers:
                dtype = torch.promote_types(dtype, to_tensor(number).dtype)
            dtypes[slot] = dtype
    return dtypes


def _carry_changing_constants(bodies, operands, state, names, kinds, like):
    """Under dynamo, where a failed operator cannot be staged again (constants.Retabled): the
    state with the constants a body changes carried from the start; `state` itself if none."""
    if not torch.compiler.is_dynamo_compiling() or not constants.held(state, kinds, CONSTANT):
        return state
    staged, ins = operands.split(operands.flat)
    with _probe():
        raws = [body(*_merge(_private(staged), state, kinds), *ins) for body in bodies]
    return constants.carry_changed(state, kinds, CONSTANT, names, raws, like)


def _may_promote(state, kinds) -> bool:
    # Numbers coming in (bools excepted: lowered break / return flags are bools, and stay bools).
    return any(k == TENSOR and _is_number(v) and type(v) is not bool for v, k in zip(state, kinds))


@staging("if statement")
def stage_if(pred, if_true, if_false, state, names, like, inputs=(), dtypes=None):
    """`if pred: state = if_true(*state, *inputs) else: state = if_false(*state, *inputs)` as
    one torch.cond."""
    statement = "if statement"
    with _no_recursion(statement, (if_true, if_false), (pred, state, inputs, dtypes)):
        return _carried_if(pred, if_true, if_false, state, names, like, inputs, dtypes,
                           statement)


def _carried_if(pred, if_true, if_false, state, names, like, inputs, dtypes, statement):
    slots = objects.carried_slots(state)
    if slots:
        return objects.carry(
            lambda bodies, flat: stage_if(pred, *bodies, flat, names, like, inputs, dtypes),
            ((if_true, True, "in the true branch"), (if_false, True, "in the false branch")),
            state, names, slots, statement)
    if_true, if_false = objects.refusing_uncarried_changes(
        ((if_true, "in the true branch"), (if_false, "in the false branch")), state, names,
        statement)
    if_true, if_false = objects.refusing_input_changes(
        ((if_true, "in the true branch"), (if_false, "in the false branch")), inputs, statement)
    pred = as_predicate(pred, statement)
    return _stage_if(pred, if_true, if_false, state, names, like, inputs, dtypes, statement)


def _stage_if(pred, if_true, if_false, state, names, like, inputs, dtypes, statement):
    kinds = _slot_kinds(state, names)
    state = _fill_return_placeholders((if_true, if_false), state, names, kinds, inputs, pred)
    _refuse_sets(state, names, statement)
    dtypes = dtypes or {}
    branches = ((if_true, "in the true branch"), (if_false, "in the false branch"))
    growth = _probe_lists(branches, state, names, kinds, inputs, pred, statement, dtypes)
    state = _reserve_lists(state, kinds, growth, lambda g: g.count, like, statement)
    operands = _Operands(state, kinds, inputs, pred, dtypes)

    def run(body, where, flat):
        staged, ins = operands.split(flat)
        outputs = body(*_merge(_private(staged), state, kinds), *ins)
        return outputs, _unpack_outputs(outputs, state, names, kinds, statement, where, pred,
                                        dtypes)

    carried = _carry_changing_constants((if_true, if_false), operands, state, names, kinds, pred)
    if carried is not state:
        return _released(stage_if(pred, if_true, if_false, carried, names, like, inputs, dtypes),
                         growth)

    if not dtypes and torch.compiler.is_compiling() and _may_promote(state, kinds):
        # Under dynamo a failed torch.cond cannot be retried (it ends the trace), so where a
        # number comes in and may meet a tensor, look at both branches' outputs first.
        with _probe():
            raws = [run(body, where, operands.flat)[0] for body, where in branches]
        promoted = _number_dtypes(kinds, *raws, state)
        if promoted:
            return _released(
                stage_if(pred, if_true, if_false, state, names, like, inputs, promoted), growth)

    def staged(body, where):
        return lambda *flat: _unalias(_lists_as_pairs(run(body, where, flat)[1]))

    try:
        with _operator_bodies():
            flat = operators.cond(pred, *(staged(b, w) for b, w in branches), operands.flat)
    except Exception as error:
        again = constants.restaged(error, state, names, pred)
        if again is not None:
            return constants.settled(_released(stage_if(
                pred, if_true, if_false, again, names, like, inputs, dtypes), growth), again)
        if _reraise_analysed(error):
            raise
        # torch (and dynamo, which traces the branches) report problems in their own terms;
        # run the branches once more outside the operator to name the variable at fault.
        with _probe():
            (raw_true, true), (raw_false, false) = (
                run(b, w, operands.flat) for b, w in branches)
        promoted = _number_dtypes(kinds, raw_true, raw_false, state)
        if promoted and not dtypes:
            return _released(
                stage_if(pred, if_true, if_false, state, names, like, inputs, promoted), growth)
        staged_names = [n for n, k in zip(names, kinds) if k in _OUTPUTS]
        for name, first, second in zip(staged_names, true, false):
            if not _same_kind(first, second):
                raise _mismatch(statement, name, first, second, *(w for _, w in branches)) from None
        raise
    return _released(_merge(_pairs_as_lists(flat, state, kinds), state, kinds, _OUTPUTS), growth)


@staging("while loop")
def stage_while(test, body, state, names, like, inputs=(), statement="while loop", dtypes=None,
                trips=None):
    """`while test(*state, *inputs): state = body(*state, *inputs)` as one torch.while_loop.

    `trips` bounds the number of iterations (an int, a size or a 0-d int tensor; None when
    unknown), which sizes the lists the loop grows; without it such a loop runs twice, first
    only to count its trips (see NOTE [lists in while loops]).
    """
    with _no_recursion(statement, (test, body), (state, inputs, dtypes, trips is None)):
        return _stage_while(test, body, state, names, like, inputs, statement, dtypes, trips)


def _stage_while(test, body, state, names, like, inputs, statement, dtypes, trips):
    slots = objects.carried_slots(state)
    if slots:
        return objects.carry(
            lambda bodies, flat: stage_while(*bodies, flat, names, like, inputs, statement,
                                             dtypes, trips),
            ((test, False, "in the loop test"), (body, True, "in the loop body")),
            state, names, slots, statement)
    test, body = objects.refusing_uncarried_changes(
        ((test, "in the loop test"), (body, "in the loop body")), state, names, statement)
    test, body = objects.refusing_input_changes(
        ((test, "in the loop test"), (body, "in the loop body")), inputs, statement)
    kinds = _slot_kinds(state, names)
    created = [i for i, (v, k) in enumerate(zip(state, kinds))
               if k == UNBOUND and v.name != RETURN_VALUE]
    state = _fill_return_placeholders((body,), state, names, kinds, inputs, like, created,
                                      statement)
    if created:
        return _stage_loop_created(test, body, state, names, like, inputs, statement, dtypes,
                                   trips, created)
    _refuse_sets(state, names, statement)
    dtypes = dtypes or {}
    growth = _probe_lists(((body, "in the loop body"),), state, names, kinds, inputs, like,
                          statement, dtypes)
    if growth:
        for seen in growth.values():
            lists.check_loop_growth(seen, statement)
        if trips is None:
            trips = _count_trips(test, body, state, names, like, inputs, statement, growth)
        bound = lists.trip_bound(trips, statement)
        state = _reserve_lists(state, kinds, growth, lambda g: bound * g.count, like, statement)
    operands = _Operands(state, kinds, inputs, like, dtypes)
    changing = _carry_changing_constants((body,), operands, state, names, kinds, like)
    if changing is not state:
        return _released(stage_while(test, body, changing, names, like, inputs, statement,
                                     dtypes, trips), growth)
    carried = operands.flat[: operands.count]
    # The loop carries only the state; the inputs are read-only operands of both bodies.
    read_only = operands.flat[operands.count:]

    def staged_test(*flat):
        staged, ins = operands.split(flat)
        go = as_predicate(to_tensor(test(*_merge(staged, state, kinds), *ins), like), statement)
        # `while found:` returns (a 0-d view of) an operand, and torch's operators refuse
        # outputs that alias their inputs.
        # A third-party tracer's predicate need not be a tensor.
        aliased = isinstance(go, torch.Tensor) and go._base is not None
        return go.clone() if aliased else go

    def run(flat):
        staged, ins = operands.split(flat)
        outputs = body(*_merge(_private(staged), state, kinds), *ins)
        out = _unpack_outputs(outputs, state, names, kinds, statement, "in the loop body", like,
                              dtypes)
        return outputs, pytree.tree_leaves(out)

    try:
        with _operator_bodies():
            flat = operators.while_loop(staged_test, lambda *flat: _unalias(run(flat)[1]),
                                       carried, read_only)
    except Exception as error:
        again = constants.restaged(error, state, names, like)
        if again is not None:
            return constants.settled(_released(stage_while(
                test, body, again, names, like, inputs, statement, dtypes, trips), growth), again)
        if _reraise_analysed(error):
            raise
        # As in stage_if: find the variable at fault by running the body outside the operator.
        with _probe():
            raw, after = run(operands.flat)
        promoted = _number_dtypes(kinds, raw, state)
        if promoted and not dtypes:
            return _released(
                stage_while(test, body, state, names, like, inputs, statement, promoted), growth)
        staged_names = [n for n, k in zip(names, kinds) if k == TENSOR]
        before, _ = operands.split(operands.flat)
        after_tree = pytree.tree_unflatten(after, operands.state_spec)
        for name, first, second in zip(staged_names, before, after_tree):
            if not _same_kind(first, second):
                raise _mismatch(statement, name, first, second, "before an iteration",
                                "after it") from None
        raise
    staged, _ = operands.split(tuple(flat) + read_only)
    return _released(_merge(staged, state, kinds), growth)


def _stage_loop_created(test, body, state, names, like, inputs, statement, dtypes, trips,
                        created):
    """The loop, carrying whether it ran; after it, an assertion for each variable it created."""
    device = like.device if like is not None else None
    ran = torch.zeros((), dtype=torch.bool, device=device)
    out = stage_while(
        lambda ran, *rest: test(*rest),
        lambda ran, *rest: (torch.ones((), dtype=torch.bool, device=device), *body(*rest)),
        (ran, *state), ("<loop ran>", *names), like, inputs, statement,
        {slot + 1: dtype for slot, dtype in (dtypes or {}).items()} or None, trips)
    if not probing():
        for i in created:
            error = UnboundLocalError(
                f"cannot access local variable '{names[i]}' where it is not associated with a "
                "value")
            torch._assert_async(out[0], graph_error_message(error))
    return out[1:]


# NOTE [lists in while loops]
# A while_loop carries fixed-shape tensors only, so a list it grows is a buffer sized before the
# loop starts. A `for` knows its length then; a `while` on a tensor condition does not, so it is
# staged twice: a first loop runs the same bodies with the lists' appends dropped and only counts
# the trips, and the second, with buffers of that many rows (an unbacked size), makes the lists.
# The bodies are pure, so both loops take the same path; the first one's prints and asserts are
# left out (it is traced as a probe).


def _count_trips(test, body, state, names, like, inputs, statement, growth):
    """How many iterations the loop makes: a 0-d int64 tensor from a first staged loop."""
    counted = lists.uncounted(state, growth, names)
    zero = torch.zeros((), dtype=torch.int64, device=like.device if like is not None else None)
    with _probe():
        out = stage_while(lambda trips, *rest: test(*rest),
                          lambda trips, *rest: (trips + 1, *body(*rest)),
                          (zero, *counted), ("<trip count>", *names), like, inputs, statement)
    return out[0]
