"""Lowering of converted control flow onto torch.cond and torch.while_loop.

Converted bodies are pure: they take the statement's state as arguments and return it. Here the
state is split into slots: tensors (and Python numbers, promoted to 0-d tensors) become operands
and outputs of the torch operator; any other value (None, a list, a module) must come out of every
body unchanged and stays a Python constant outside the graph. Tensors that bodies only read reach
them by closure, which torch 2.13 lifts into explicit operands of the cond / while_loop node (see
NOTE [closure operands] in tests/test_staging_graph.py, which guards that they are not baked).
"""

from __future__ import annotations

import contextlib

import torch
from torch._higher_order_ops.while_loop import while_loop as _while_loop

from ..errors import StagingError
from ..values import RETURN_VALUE, is_undefined, to_tensor

__all__ = ["stage_if", "stage_while", "as_predicate", "probing"]

_probing = [False]


@contextlib.contextmanager
def _probe():
    _probing[0] = True
    try:
        yield
    finally:
        _probing[0] = False


def probing() -> bool:
    """True while a body runs only to learn the types of its outputs (side effects are skipped)."""
    return _probing[0]


def as_predicate(value, statement: str) -> torch.Tensor:
    """A 0-d bool tensor with the truth value Python would give `value`."""
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


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float)) and not isinstance(value, torch.Tensor)


# How each state slot crosses a staged statement.
TENSOR = "tensor"  # an operand and an output of the torch operator
UNBOUND = "unbound"  # no value before; every body must bind it to a tensor, which is an output
CONSTANT = "constant"  # a Python value every body must leave as it is; it stays outside the graph


def _slot_kinds(state, names):
    kinds = []
    for value, name in zip(state, names):
        if isinstance(value, torch.Tensor) or _is_number(value):
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
    return f"a Python {type(value).__name__}"


def _refuse_lists(state, names, statement):
    # A list in the state of a staged statement is one the bodies change (append or assign);
    # torch's operators cannot carry it, and dynamo, which traces their bodies, would stop at
    # the mutation with a message about side effects.
    for value, name in zip(state, names):
        if isinstance(value, (list, dict, set)):
            raise StagingError(statement, *_CHANGING_CONTAINER[statement](name, type(value).__name__))


def _unpack_outputs(outputs, state, names, kinds, statement, where, like):
    """Turn a body's full state tuple into its tensor outputs, checking the constant slots."""
    if not isinstance(outputs, tuple) or len(outputs) != len(state):
        raise StagingError(statement, f"{where} returned {outputs!r}", "This is a bug in autoconv")
    tensors = []
    for out, before, name, kind in zip(outputs, state, names, kinds):
        if kind == CONSTANT:
            if out is not before:
                raise StagingError(
                    statement,
                    f"'{name}' is {_describe(before)} before the statement and is reassigned in "
                    f"{where}; only tensors and numbers can change under a tensor condition",
                    f"Give '{name}' a tensor value before the statement, or compute it outside",
                )
            continue
        if is_undefined(out):
            fix = (
                f"Assign '{name}' before the loop"
                if "loop" in statement
                else f"Assign '{name}' in every branch, or before the if"
            )
            raise StagingError(
                statement, f"'{name}' has no value in {where} but is used afterwards", fix
            )
        if not (isinstance(out, torch.Tensor) or _is_number(out)):
            raise StagingError(
                statement,
                f"'{name}' becomes {_describe(out)} in {where}; staged statements can only "
                "produce tensors and numbers",
                f"Keep '{name}' a tensor, or move its assignment out of the {statement}",
            )
        tensors.append(to_tensor(out, like))
    return tuple(tensors)


_CHANGING_CONTAINER = {
    "if statement": lambda name, kind: (
        f"{kind} '{name}' is changed in a branch chosen by a tensor, and torch.cond cannot "
        f"return a {kind}",
        f"Change '{name}' the same way in every branch after the if, choosing the values with "
        "torch.where",
    ),
    "while loop": lambda name, kind: (
        f"{kind} '{name}' changes in a loop whose trip count depends on tensor values, and "
        f"torch.while_loop cannot carry a {kind}",
        "Write into a preallocated tensor instead (buf = torch.zeros(max_n, ...); buf[i] = v), "
        "or loop over a tensor of known length or a Python range",
    ),
}
_CHANGING_CONTAINER["for loop"] = _CHANGING_CONTAINER["while loop"]


def _merge(flat, state, kinds, staged=(TENSOR,)):
    """Rebuild a full state tuple from the staged tensors `flat` and the other slots of `state`."""
    it = iter(flat)
    return tuple(next(it) if kind in staged else value for value, kind in zip(state, kinds))


_OUTPUTS = (TENSOR, UNBOUND)


def _private(inputs):
    # Bodies may update their state in place (`steps += 1`); torch's operators refuse mutation
    # of their inputs, so each body works on copies. Graph passes drop the copies that no
    # in-place op needs.
    return tuple(t.clone() for t in inputs)


def _unalias(outputs):
    # torch.cond and while_loop refuse outputs that alias their inputs, including tensors a body
    # reads by closure or through a module, which cannot be told apart here under every tracer.
    # So every output is cloned; autoconv's own graphs drop the clones of fresh values again
    # (autoconv/graph_passes.py), other tracers' compilers do the same.
    return tuple(o.clone() for o in outputs)


def _fill_return_placeholders(bodies, state, names, kinds):
    """Give an unset return value a zero tensor shaped like the one a body would return."""
    slots = [i for i, v in enumerate(state) if is_undefined(v) and v.name == RETURN_VALUE]
    if not slots:
        return state
    state = list(state)
    with _probe():
        for body in bodies:
            outputs = body(*state)
            for i in slots:
                out = outputs[i]
                if is_undefined(state[i]) and (_is_number(out) or isinstance(out, torch.Tensor)):
                    state[i] = torch.zeros_like(to_tensor(out))
    for i in slots:
        kinds[i] = CONSTANT if is_undefined(state[i]) else TENSOR
    return tuple(state)


def stage_if(pred, if_true, if_false, state, names, like):
    """`if pred: state = if_true(*state) else: state = if_false(*state)` as one torch.cond."""
    statement = "if statement"
    pred = as_predicate(pred, statement)
    kinds = _slot_kinds(state, names)
    state = _fill_return_placeholders((if_true, if_false), state, names, kinds)
    _refuse_lists(state, names, statement)
    operands = tuple(to_tensor(v, pred) for v, k in zip(state, kinds) if k == TENSOR)

    def branch(body, where):
        def staged_branch(*flat):
            outputs = body(*_merge(_private(flat), state, kinds))
            return _unalias(
                _unpack_outputs(outputs, state, names, kinds, statement, where, pred))

        return staged_branch

    try:
        flat = torch.cond(
            pred, branch(if_true, "the true branch"), branch(if_false, "the false branch"), operands
        )
    except StagingError:
        raise
    except Exception as e:  # torch reports mismatched branches in its own words
        if "metadata" in str(e) or "same" in str(e):
            raise StagingError(
                statement,
                f"the branches give different dtypes or shapes to one of {', '.join(names)} "
                f"({_first_line(e)})",
                "Make both branches assign values of one dtype and shape, e.g. with .to(dtype)",
            ) from e
        raise
    return _merge(flat, state, kinds, _OUTPUTS)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def stage_while(test, body, state, names, like, statement="while loop"):
    """`while test(*state): state = body(*state)` as one torch.while_loop."""
    kinds = _slot_kinds(state, names)
    state = _fill_return_placeholders((body,), state, names, kinds)
    for name, kind in zip(names, kinds):
        if kind == UNBOUND:
            raise StagingError(
                statement,
                f"'{name}' is changed by the loop but has no value before it",
                f"Assign '{name}' before the loop, with the dtype and shape it will have",
            )
    _refuse_lists(state, names, statement)
    carried = tuple(to_tensor(v, like) for v, k in zip(state, kinds) if k == TENSOR)

    def staged_test(*flat):
        return as_predicate(to_tensor(test(*_merge(flat, state, kinds)), like), statement)

    def staged_body(*flat):
        outputs = body(*_merge(_private(flat), state, kinds))
        out = _unpack_outputs(outputs, state, names, kinds, statement, "the loop body", like)
        staged_names = [n for n, k in zip(names, kinds) if k == TENSOR]
        for before, after, name in zip(flat, out, staged_names):
            if before.dtype != after.dtype or before.dim() != after.dim():
                raise StagingError(
                    statement,
                    f"'{name}' is {_describe(before)} before an iteration and "
                    f"{_describe(after)} after it",
                    f"Give '{name}' its final dtype and shape before the loop "
                    f"(e.g. torch.zeros(..., dtype={after.dtype}))",
                )
        return _unalias(out)

    flat = _while_loop(staged_test, staged_body, carried)
    return _merge(flat, state, kinds)
