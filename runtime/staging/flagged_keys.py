"""A dict whose keys a staged statement sets on some paths only: carried with a presence flag
per key (NOTE [keys set on some paths]).

    st = {}
    for t in range(n):                 the loop carries `st` as {"last": placeholder} and one
        if x[t] > 0:              ->   0-d bool tensor, False before the loop; the `if` sets the
            st["last"] = x[t]          flag where it sets the key; after the loop `st` is a
    st.get("last", default)            StagedDict, whose `in` / `.get` / `[]` read the flag

NOTE [keys set on some paths]
A torch.cond's branches give back one structure and a torch.while_loop carries one: a dict
that gains a key in a tensor `if`'s branch (or in a loop's body, through such an `if`) has no
key set a graph can hold. Where the key's value is a tensor of static shape or a Python number,
the statement is staged again with the dict given the key beforehand, a placeholder of the
value's kind (zeros; `peeled_dicts.gained_kinds`), and a 0-d bool tensor per such key, False,
carried as a variable of the statement's state: each body sees a StagedDict of the two (so that
`"last" in st`, `st.get("last", d)` and `if "last" in st: st["last"]` read the flag, staged),
and gives back the dict with every key and the flags, a key it set (or held) True. After the
statement the dict is a StagedDict of the flags the graph computes (NOTE [a dict the first
trip gives keys] in runtime/staged_dicts.py): a later staged statement whose state holds it
carries it the same way. Only a dict that is itself a variable of the state, made by the
function and named by no other variable (the variable is bound to the StagedDict: another name,
or the caller's dict, would keep the dict as it was). A list value (`setdefault("h",
[]).append(v)`) has an empty list for its placeholder, which the statement grows as a dict's
list (dict_lists.py; the dict a carried StagedDict holds is given back as itself for that), and
which `get(k, [])` lends (NOTE [a list a flagged key lends] in runtime/staged_dicts.py).

NOTE [a flagged key's number]
A key set to a Python number on some paths (`if x[t] > 0: st["n"] = 0.5` in a loop) is a
0-d tensor in the graph after the statement: a number's stand-in (NOTE [number stand-ins] in
runtime/augmented.py), so that `st.get("n", 1.0) * T(1.0)` is float32 as Python's float times a
float32 tensor is, not float64. Two things keep it one. A later statement that finds the key
gained (the loop around the `if`) gives it a placeholder of a number's kind, not a float64
tensor's zeros (`peeled_dicts._kind` reads a stand-in as a number). And the StagedDict records
the keys that hold numbers, with their kinds (`numbers`, kept by its copies and its pytree
node): `d[k]`, `d.get(k, default)` give a stand-in of them, and a default of another kind
(`st.get("n", 1)` of a float: an int where the key is missing) is tagged with both kinds (NOTE
[numbers of two kinds]), so that a use that shows the kind (`* T(2)`, int64 in Python where
the key is missing) is a graph assertion on those paths, right on the others (brk53c).
"""

from __future__ import annotations

import torch

from ..errors import StagingError, dynamo_user_location, user_location
from . import context

__all__ = ["GainedKeys", "raise_gained", "flagged_slots", "stage_flagging"]


class GainedKeys(Exception):
    """Internal, never reaches the user: a body gave the dict at slot `args[0]` of the state
    keys of `args[1]` ((key, kind), ...) it did not hold; `args[2]`: that dict (or
    StagedDict) in the statement's state. (No `__init__` of its own: dynamo cannot trace
    one.)"""


def _kinds(gained):
    from .peeled_dicts import gained_kinds

    kinds = gained_kinds(gained)
    if not kinds or any(kind[0] not in ("tensor", "number", "list") for _, kind in kinds):
        return ()
    return kinds


def raise_gained(statement, spec, value, path, what, gained, slot, owner) -> None:
    """Raises GainedKeys where a body's output `value` at the state's `slot` (of structure
    `spec` before the statement) is the dict with keys of tensors or numbers added; returns
    where it is another change."""
    from ..staged_dicts import StagedDict

    if path or spec[0] != "dict" or len(spec) != 2:
        return
    before = [key for key, _ in spec[1]]
    if type(value) is StagedDict:
        items = value._items
        if what != "changes its type" or any(key not in items for key in before):
            return
        gained = [(key, item) for key, item in items.items() if key not in before]
    elif type(value) is dict and what == "gains or loses keys":
        if any(key not in value for key in before):
            return
        gained = list(gained[0]) if gained else []
        # (a `while` whose trips set the key is peeled instead where it is at the top level,
        # NOTE [a dict the first trip gives keys], and refused in a body as before)
        if statement == "while loop":
            return
    else:
        return
    kinds = _kinds(gained)
    if kinds:
        raise GainedKeys(slot, kinds, owner)


def flagged_slots(state) -> tuple:
    """The slots of `state` holding a StagedDict of traced flags."""
    from ..staged_dicts import StagedDict

    return tuple(slot for slot, value in enumerate(state)
                 if type(value) is StagedDict and value._unknown())


def _flag(value, like):
    if isinstance(value, torch.Tensor):
        return value.to(torch.bool).reshape(())
    return torch.full((), bool(value), dtype=torch.bool, device=like.device)


def _refuse_others(owner, name: str, keys, statement: str) -> None:
    from . import dict_lists

    shown = ", ".join(repr(k) for k in keys)
    fix = (f"Give `{name}` the key{'s' if len(keys) > 1 else ''} {shown} where it is made "
           f"(`{name}[{keys[0]!r}] = ...` before the {statement}), so that the body only "
           "updates it")
    if context.is_caller_owned_list(owner) or dict_lists.from_outside(owner):
        raise StagingError(
            statement, f"`{name}` is a dict the caller passed in, to which the {statement} "
            f"adds {shown} (on some paths, or on each: a key a staged statement adds is "
            "known to the graph only): the caller's dict would not learn which", fix)
    alias = dict_lists.other_name(owner, own=name)
    if alias is not None:
        raise StagingError(
            statement, f"`{name}` is a dict to which the {statement} adds {shown} on some "
            f"paths only, and '{alias}' names it too: after the {statement} `{name}` is a "
            f"dict of keys the graph knows, and '{alias}' would keep the dict as it was",
            f"Read the dict through `{name}` alone after the {statement}, or: {fix}")


def stage_flagging(stage, bodies, state, names, statement: str, gained=None):
    """`stage(bodies, state, names)` with each dict of `state` that holds keys on some paths
    (a StagedDict, or the dict `gained`, a GainedKeys, names with the keys it gains) carried
    as a dict of every key and a tuple of flags (NOTE [keys set on some paths]). `bodies`
    are (function, returns the state, where) triples."""
    from ..staged_dicts import StagedDict
    from .peeled_dicts import _fresh, _placeholder

    state = list(state)
    if gained is not None:
        slot, kinds, owner = gained.args
        kinds = tuple((_fresh(key), kind) for key, kind in kinds)
        if type(owner) is StagedDict:
            held = owner
        else:
            _refuse_others(owner, names[slot], [key for key, _ in kinds], statement)
            held = StagedDict(dict(owner), {}, names[slot], _where(), statement)
        like = next((t for t in (*held._items.values(), *held._flags.values())
                     if isinstance(t, torch.Tensor)), None)
        items = {**held._items, **{key: _placeholder(kind) for key, kind in kinds}}
        flags = {**held._flags, **{key: torch.zeros((), dtype=torch.bool, device=(
            like.device if like is not None else None)) for key, _ in kinds}}
        # (keys of flags of their own: set in an order the data decides)
        state[slot] = StagedDict(items, flags, held.name, held.where, held.statement,
                                 held.ordered and len(flags) < 2)
    slots = flagged_slots(state)
    original = tuple(state)  # (a GainedKeys names the StagedDict its handler is given)
    count = len(state)
    lifted = []  # (slot, keys, (name, where, statement), placeholders)
    extra, extra_names = [], []
    numbers = {}  # slot -> {key: the kinds of the Python number it holds}
    # (slot -> the dict of a carried StagedDict, an enclosing body's own: given back as itself,
    # which that body then gives back, so that a list a key holds can be lifted, dict_lists.py)
    carried = {}
    for slot in slots:
        held = state[slot]
        if held.carried:
            carried[slot] = held._items
        numbers[slot] = _numbers(held)
        keys = tuple(held._flags)
        like = next(t for t in held._flags.values() if isinstance(t, torch.Tensor))
        lifted.append((slot, keys, (held.name, held.where, held.statement, held.ordered),
                       {key: held._items[key] for key in keys}))
        extra.append(tuple(_flag(held._flags[key], like) for key in keys))
        extra_names.append(f"{names[slot]} (its keys' flags)")
        state[slot] = dict(held._items)

    def flagging(body, returns_state, where):
        def run(*args):
            args = list(args)
            flags = args[count:count + len(lifted)]
            del args[count:count + len(lifted)]
            # (each body's own dict, given back as itself where the body keeps it: a list a
            # key holds that grows is lifted out of that object, dict_lists.py)
            bases = {slot: args[slot] for slot, *_ in lifted}
            for (slot, keys, about, _), given in zip(lifted, flags):
                if type(args[slot]) is dict:
                    made = StagedDict(args[slot], dict(zip(keys, given)), *about)
                    made.carried = True
                    made.numbers = dict(numbers[slot])
                    args[slot] = made
            out = body(*args)
            if not returns_state:
                return out
            out = list(out)
            back = []
            for (slot, keys, (name, *_), placeholders), given in zip(lifted, flags):
                mine = out[slot]
                if type(mine) is StagedDict:
                    base, known = mine._items, mine._flags
                elif type(mine) is dict:
                    base, known = mine, {}
                else:
                    raise StagingError(
                        statement, f"`{name}` holds keys on some paths only, and the body "
                        f"binds it to {type(mine).__name__} {where}",
                        f"Keep `{name}` a dict in the {statement}")
                items = dict(base)
                new = [(k, v) for k, v in items.items() if k not in state[slot]]
                if new:
                    raise GainedKeys(slot, _kinds(new) or _unsupported(name, new, statement),
                                     original[slot])
                like = given[0] if given else None
                made = []
                for key in keys:
                    if key in items:
                        made.append(_flag(known.get(key, True), like))
                    else:  # (deleted on this path: absent, its placeholder kept)
                        items[key] = placeholders[key]
                        made.append(_flag(False, like))
                # (in the order of the dict before the statement: Python's order after it may
                # differ only where a key was deleted and set again)
                out[slot] = {k: items[k] for k in state[slot]}
                if base is bases[slot]:
                    base.clear()
                    base.update(out[slot])
                    out[slot] = base
                back.append(tuple(made))
            return (*out, *back)
        run._autoconv_body = getattr(body, "_autoconv_body", body)
        return run

    try:
        out = stage([flagging(*b) for b in bodies], (*state, *extra), (*names, *extra_names))
    except GainedKeys as more:  # (another key, on the way: staged again with it too)
        if more.args[0] >= len(original) or more.args[2] is not original[more.args[0]]:
            raise
        return stage_flagging(stage, bodies, original, names, statement, more)
    out = list(out)
    flags = out[count:]
    out = out[:count]
    for (slot, keys, about, _), given in zip(lifted, flags):
        base = carried.get(slot)
        if base is not None and type(out[slot]) is dict and out[slot] is not base:
            base.clear()
            base.update(out[slot])
            out[slot] = base
        out[slot] = StagedDict(out[slot], dict(zip(keys, given)), *about)
        out[slot].carried = base is not None
        out[slot].numbers = _numbers(out[slot], numbers[slot])
    return tuple(out)


def _numbers(held, before=None) -> dict:
    """{key: kinds} of the items of the StagedDict `held` that are Python numbers or their
    stand-ins, with the kinds `before` (or `held.numbers`) knew them to be (NOTE [a flagged
    key's number])."""
    from ..augmented import is_stand_in, number_kinds
    from ..identity import type_in

    known = {**getattr(held, "numbers", {}), **(before or {})}
    found = {}
    for key, item in held._items.items():
        if type_in(item, (bool, int, float)) or is_stand_in(item):
            found[key] = tuple({*known.get(key, ()), *number_kinds(item)})
    return found


def _unsupported(name, new, statement):
    raise StagingError(
        statement, f"`{name}` gains the key{'s' if len(new) > 1 else ''} "
        f"{', '.join(repr(k) for k, _ in new)} on some paths only, holding a value a graph "
        "cannot keep beside its absence (a list, or a tensor of a size only the graph knows)",
        f"Give `{name}` the key where it is made (`{name}[{new[0][0]!r}] = ...`), so that "
        "the body only updates it")


def _where():
    return dynamo_user_location() if torch.compiler.is_dynamo_compiling() else user_location()
