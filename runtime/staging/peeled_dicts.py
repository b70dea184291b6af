"""A dict that a staged loop's first trip gives keys, peeled (NOTE [a dict the first trip
gives keys] in runtime/staged_dicts.py): the peeled `if` of `peeling.first_trip` given the
dict with placeholders of the keys, and the loop's state after it a StagedDict of them.
"""

from __future__ import annotations

import torch

from ..errors import StagingError, dynamo_user_location, user_location
from .. import augmented
from ..identity import type_in
from . import context, dict_lists, peeling

__all__ = ["finished", "first_trip", "gained_kinds"]


def gained_kinds(gained) -> tuple:
    """((key, kind), ...) of the (key, value) pairs a dict gains in a loop's body, each kind
    ("tensor", shape, dtype, device), ("number", type), ("list",), a list the loop grows
    (`hist.setdefault("loss", []).append(v)`), whose placeholder is empty, or ("items",
    kinds), a list of two or more tensors and numbers the body binds anew each trip
    (`stats["pair"] = [a, b]`), whose placeholder holds one of each (NOTE [a dict the first
    trip gives keys] in runtime/staged_dicts.py); () where a value is of another kind."""
    from ..lists import StagedList

    kinds = []
    for key, value in gained:
        kind = _kind(value)
        if kind is None and type(value) is StagedList:
            # (a list an `if` in the body grew: NOTE [keys set on some paths] in
            # flagged_keys.py)
            kind = ("list",)
        if kind is None and type(value) is list:
            items = tuple(_kind(item) for item in value)
            # (NOTE [a list the first trip gives a dict]: one item is taken for growth)
            kind = (("items", items) if len(items) > 1 and all(
                item is not None for item in items) else ("list",))
        if kind is None:
            return ()
        kinds.append((key, kind))
    return tuple(kinds)


# NOTE [a list the first trip gives a dict]
# The first trip's key holds a list: one the loop grows (`hist.setdefault("loss",
# []).append(v)`, one item a trip) or one the body binds anew each trip with the same length
# (`st["hist"] = [st.get("hist", [v, v])[1], v]`, a window of the last two values). From the
# first trip alone the two differ only in length: a list of one item is taken for a grown list
# (an empty placeholder, which the peeled `if` makes a StagedList the loop grows), a list of
# two or more tensors and numbers for a fixed one (a placeholder of zeros of each item's kind,
# which the loop carries as a dict's list of that length). A fixed list of one is refused at
# the loop as before (the loop after the `if` sees another length), never wrong. A grown list
# whose first trip adds two (`.extend([a, b])`) is grown from the placeholder's two items by
# the loop after the `if`: right where the first trip ran, and where it did not the list's
# count is made 0 after the loop (`_staged_dict`), so `d.get(k, [])` is empty there.


def _kind(value):
    """The kind of a tensor of static shape or a Python number, else None."""
    if augmented.is_stand_in(value):
        # (a number an earlier staged statement set, `st["n"] = 0.5` in a loop's `if`: its
        # placeholder a number, so that the body sees it as one, not a float64 tensor's zeros,
        # NOTE [a flagged key's number] in flagged_keys.py)
        kind = augmented.number_kinds(value)[-1]
        return ("number", kind) if kind != "complex" else None
    if isinstance(value, torch.Tensor):
        if not all(type(size) is int for size in value.shape):
            return None
        return ("tensor", tuple(value.shape), value.dtype, value.device)
    if type_in(value, (bool, int, float)):
        return ("number", type(value).__name__)
    return None


def _placeholder(kind):
    if kind[0] == "list":
        return []
    if kind[0] == "items":
        return [_placeholder(item) for item in kind[1]]
    if kind[0] == "tensor":
        return torch.zeros(kind[1], dtype=kind[2], device=kind[3])
    # (a zero made here: under dynamo the kind is read from `_VERDICTS`, and a number taken
    # from there has a source whose type dynamo cannot guard on)
    return {"bool": False, "int": 0, "float": 0.0}[kind[1]]


def first_trip(stage_if, go, body, state, names, inputs, input_names, changed,
                     finishing, kwargs):
    """`first_trip` of a loop whose first trip gives a dict of its state (or a field or item
    of its state or inputs, `self.stats`) keys (NOTE [a dict the first trip gives keys] in
    runtime/staged_dicts.py); None where it is no such loop."""
    gained = getattr(changed, "gained", ())
    if not gained or _present(go) is None or context.in_staged_body():
        return None
    found = peeling._field(changed, state, names, input_names, whole=True)
    if found is None or (type(changed) is peeling.Verdict
                         and not peeling._reaches(found, state, inputs)):
        return None
    (where, index), steps, label = found
    count = len(state)
    if where == "input" and not steps:  # (a dict the loop only changes in place)
        held = inputs[index]
        if type(held) is dict:
            _refuse_callers_dict(held, label, gained)
        return None

    def holder_of(values, given):
        """(what holds the dict, the step to it from there)."""
        if not steps:
            return values, ("item", index)
        holder = values[index] if where == "state" else given[index]
        for step in steps[:-1]:
            holder = peeling._get(holder, step)
        return holder, steps[-1]

    held = peeling._get(*holder_of(state, inputs))
    if type(held) is not dict:
        return None
    _refuse_callers_dict(held, label, gained)
    # (a field's other holders: `stats = solver.stats` before the loop would keep the dict
    # as it was, where Python's gets the keys)
    alias = dict_lists.other_name(held, own=None if steps else label,
                                  field_holder=holder_of(state, inputs)[0] if steps else None)
    if alias is not None:
        error = StagingError(
            "while loop", f"'{label}' is a dict to which the loop's first trip adds keys, and "
            f"'{alias}' names it too: after the loop '{label}' is a dict of keys the graph "
            f"knows, and '{alias}' would keep the dict as it was",
            f"Read the dict through '{label}' alone after the loop (bind '{alias}' after it), "
            f"or give '{label}' its keys before the loop")
        error.the_peels_own = True
        raise error
    gained = tuple((_fresh(key), kind) for key, kind in gained)
    keys = tuple(key for key, _ in gained)
    filled_lists = tuple(key for key, kind in gained if kind[0] == "items")
    filled = _filled(held, gained)
    state = list(state)
    peeling._set(*holder_of(state, inputs), filled)

    def taken(*args):
        # (the first trip sees the dict as Python's does, without the placeholders)
        given = peeling._get(*holder_of(args, args[count:]))
        for key in keys:
            given.pop(key, None)
        # (a body that binds a dict of the keys in another order, `stats = {"first": e,
        # **stats}`, is refused by the `if`: Python's order after the loop would differ)
        return body(*args)

    try:
        with peeling._unspecialised():
            out = peeling._peeled_if(changed, lambda: stage_if(
                go, taken, None, tuple(state), names, inputs, **kwargs))
    except BaseException:
        if steps:
            peeling._set(*holder_of(state, inputs), held)
        raise
    present = _present(go)

    def finish(state):
        state = list(state)
        holder, last = holder_of(state, inputs)
        peeling._set(holder, last, _staged_dict(peeling._get(holder, last), keys, present,
                                                label, filled_lists))
        return tuple(state)
    finishing.append(finish)
    return out


def _fresh(key):
    """`key`, made here: under dynamo the keys are read from `_VERDICTS`, and a str or int
    taken from there has a source whose type dynamo cannot guard on (`type_in` of the dict's
    keys)."""
    if isinstance(key, str):
        return key + ""
    if isinstance(key, int) and not isinstance(key, bool):
        return key + 0
    return key


def _present(go):
    """The first trip's test as a 0-d bool tensor, or None where it is no 0-d tensor."""
    if not isinstance(go, torch.Tensor) or go.dim() != 0:
        return None
    return go if go.dtype is torch.bool else go != 0


def _filled(held: dict, gained) -> dict:
    """A copy of `held` with a placeholder of each gained key's kind."""
    return {**held, **{key: _placeholder(kind) for key, kind in gained}}


def _refuse_callers_dict(held, label, gained) -> None:
    if context.is_caller_owned_list(held) or dict_lists.from_outside(held):
        keys = ", ".join(repr(k) for k, _ in gained)
        error = StagingError(
            "while loop", f"'{label}' is a dict the caller passed in, to which the loop's first "
            f"trip adds the key{'s' if len(gained) > 1 else ''} {keys}: the caller's dict would "
            "hold them after every call, where Python's holds them only where the loop ran a "
            "trip",
            f"Make the dict in the function and return it, or give '{label}' its keys before "
            "the loop")
        error.the_peels_own = True  # (not the loop's "gains or loses keys": `while_stmt`)
        raise error


def _staged_dict(held, keys, present, label, filled_lists=()):
    from ..lists import StagedList
    from ..staged_dicts import StagedDict

    if type(held) is not dict:
        return held
    where = (dynamo_user_location() if torch.compiler.is_dynamo_compiling()
             else user_location())
    for key in filled_lists:
        grown = held.get(key)
        if type(grown) is StagedList:
            # (a list of two the first trip gave, then grown by the loop after it: NOTE [a
            # list the first trip gives a dict]. Where the first trip did not run, the
            # placeholder's items are none of Python's: `d.get(k, [])` gives the list, empty
            # there, as a grown list's placeholder)
            count = torch.where(present, grown.count, torch.zeros_like(grown.count))
            held[key] = StagedList(grown.buffer, count, grown.reserved, grown.name,
                                   grown.numbers)
    return StagedDict(held, {key: present for key in keys}, label, where)


def finished(state, finishing) -> tuple:
    """The loop's `state` with each dict a peeled first trip gave keys a StagedDict of them
    (NOTE [a dict the first trip gives keys] in runtime/staged_dicts.py)."""
    for finish in finishing:
        state = finish(state)
    return state
