"""A container a staged statement carries that its inputs reach too: one object in the bodies.

NOTE [a carried container reached through an input]
`state = [{"m": zeros}]; st = state[0]` before `while c: st["m"] = 0.9 * st["m"] + g;
w = w - state[0]["m"]` (an optimizer's per-parameter state): `st` is the loop's state (the body
sets an item of it) and `state` an input the body only reads. Each reaches the bodies rebuilt on
its own (torch's pytree makes new dicts and lists), so `state[0]` was a second copy of the dict
that never saw the body's `st["m"] = ...`: the loop read the zeros of before it on every trip
and returned `w` unchanged, in replay, export and compile alike (tester t16). In Python the two
names reach one dict. So where an input reaches (through dicts, lists and tuples) a dict, list
or object the statement carries, that part of the input is left out of its operands, and each
body is given the input rebuilt around the body's own copy of the carried container: what the
body sets through one name it reads through the other. That holds while the body keeps the
carried name bound to the container; a body that binds the name to another one (`st = {...}`)
leaves Python's input with the old container, which a trace cannot tell from the new: refused.
Where the input reaches the container through an object's field or a function's closure, the
input cannot be rebuilt without copying that object: refused too, as are two state names that
hold one container (each is carried as its own copy).
"""

from __future__ import annotations

import functools
import types

import torch

from ..errors import StagingError
from ..identity import type_in
from . import objects

__all__ = ["joining_carried_containers"]

_MAX_DEPTH = 6  # how deep into an input's dicts, lists and tuples a carried container is sought


def _is_container(value) -> bool:
    return type_in(value, (dict, list, objects.HeldList)) or objects.is_plain_object(value)


def _children(value):
    """(key, child) for the items of a dict, list or tuple a pytree rebuilds."""
    if type(value) is dict:
        return list(value.items())
    if type(value) is list or type(value) is tuple or objects._is_namedtuple(value):
        return list(enumerate(value))
    return []


def _carried(state) -> dict:
    """id -> (slot, path, container) for the dicts, lists and objects the state holds, at the
    top of a slot or inside its dicts, lists and tuples."""
    found = {}

    def walk(value, slot, path, depth):
        if _is_container(value):
            if id(value) in found:
                return
            found[id(value)] = (slot, path, value)
            # a list of tensors carried as a HeldList, a copy of the user's list
            origin = getattr(value, "origin", None) if type(value) is objects.HeldList else None
            if origin is not None:
                found[id(origin)] = (slot, path, origin)
        if depth < _MAX_DEPTH:
            for key, child in _children(value):
                walk(child, slot, (*path, key), depth + 1)

    for slot, value in enumerate(state):
        walk(value, slot, (), 0)
    return found


def _shared_state(state, carried):
    """(slot, other slot) where two state slots hold one container, or None."""
    for slot, value in enumerate(state):
        seen = set()

        def walk(v, depth):
            if _is_container(v) and id(v) not in seen:
                seen.add(id(v))
                owner = carried.get(id(v))
                if owner is not None and owner[0] != slot:
                    return owner[0]
            if depth < _MAX_DEPTH:
                for _, child in _children(v):
                    hit = walk(child, depth + 1)
                    if hit is not None:
                        return hit
            return None

        other = walk(value, 0)
        if other is not None:
            return slot, other
    return None


def _reached_hidden(value, carried) -> bool:
    """Whether input `value` reaches a carried container through an object's fields or a
    function's closure (one level: where the input cannot be rebuilt around a copy)."""
    if objects.is_plain_object(value) and not id(value) in carried:
        fields = vars(value).values()
    elif isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
        fields = objects.reached_objects(value)
        if isinstance(value, types.FunctionType) and objects.closure(value):
            for cell in value.__closure__:
                try:
                    fields = [*fields, cell.cell_contents]
                except ValueError:
                    continue
    else:
        return False
    for field in fields:
        stack = [(field, 0)]
        while stack:
            v, depth = stack.pop()
            if _is_container(v) and id(v) in carried:
                return True
            if depth < _MAX_DEPTH:
                stack.extend((child, depth + 1) for _, child in _children(v))
    return False


def _get(value, path):
    for key in path:
        value = value[key]
    return value


def _put(value, path, new):
    """`value` (a pytree's rebuilt copy) with the item at `path` replaced by `new`, rebuilding
    the dicts, lists and tuples on the way (the body's input is not changed in place: a change
    of an input is what `objects.refusing_uncarried_changes` looks for)."""
    if not path:
        return new
    key, rest = path[0], path[1:]
    child = _put(value[key], rest, new)
    if type(value) is dict:
        out = dict(value)
        out[key] = child
        return out
    items = list(value)
    items[key] = child
    if type(value) is list:
        return items
    if objects._is_namedtuple(value):
        return type(value)(*items)
    return tuple(items)


def joining_carried_containers(bodies, state, names, inputs, statement):
    """(bodies, inputs): `inputs` with each place that holds a container the state carries
    left empty (None), and `bodies` ((function, returns_state) pairs) giving their function
    the inputs rebuilt around the body's copy of that container (NOTE [a carried container
    reached through an input]). Unchanged where no input reaches one.

    Raises:
        StagingError: an input reaches a carried container through an object's field or a
            closure; two state names hold one container; or (from a body) the body binds
            the state name of a container an input reaches to another object.
    """
    if not inputs or not any(_is_container(v) or _children(v) for v in state):
        return bodies, inputs
    carried = _carried(state)
    if not carried:
        return bodies, inputs
    joins = []  # (input, path in it, slot, path in the slot's value)

    def walk(value, index, path, depth):
        owner = carried.get(id(value)) if _is_container(value) else None
        if owner is not None:
            joins.append((index, path, owner[0], owner[1]))
            return
        if depth < _MAX_DEPTH:
            for key, child in _children(value):
                walk(child, index, (*path, key), depth + 1)

    for index, value in enumerate(inputs):
        walk(value, index, (), 0)
        if _reached_hidden(value, carried):
            raise StagingError(
                statement,
                f"a list, dict or object the statement carries as '{_name(names, carried)}' "
                "is also reached through an object's field or a function's closure the body "
                "reads; the staged statement gives each its own copy, so one would not see "
                "what the body sets through the other",
                "Read the container through the carried name only in the body (pass it to "
                "the function as an argument), or keep the changed values in variables of "
                "their own")
    if not joins:
        return bodies, inputs
    shared = _shared_state(state, carried)
    if shared is not None:
        raise StagingError(
            statement,
            f"'{names[shared[0]]}' and '{names[shared[1]]}' hold one list, dict or object "
            "(one holds the other, or an item of it), and the statement carries both; it "
            "would give each its own copy, so one would not see what the body sets "
            "through the other",
            "Change the container through one name only in the body, and read it through "
            "that name too")
    emptied = list(inputs)
    for index, path, _, _ in joins:
        emptied[index] = _put(emptied[index], path, None)
    count = len(state)

    def wrap(body, returns_state):
        def run(*args):
            values, given = args[:count], list(args[count:])
            copies = []
            for index, path, slot, inner in joins:
                copy = _get(values[slot], inner)
                copies.append(copy)
                given[index] = _put(given[index], path, copy)
            out = body(*values, *given)
            if returns_state and isinstance(out, tuple) and len(out) >= count:
                for (index, path, slot, inner), copy in zip(joins, copies):
                    try:
                        kept = _get(out[slot], inner) is copy
                    except (KeyError, IndexError, TypeError):
                        kept = False
                    if not kept:
                        raise StagingError(
                            statement,
                            f"'{names[slot]}' holds a list, dict or object that an input "
                            "the body reads holds too, and the body binds "
                            f"'{names[slot]}' to another one; in Python the input keeps "
                            "the old one, which a staged statement cannot tell apart from "
                            "the new",
                            f"Change the container '{names[slot]}' holds in place "
                            f"(`{names[slot]}[key] = ...`), or read the new one through "
                            f"'{names[slot]}' only")
            return out
        if not torch.compiler.is_dynamo_compiling():  # (dynamo cannot set them)
            # the user's names of the inputs, for messages: objects.with_input_as_state
            run.__wrapped__ = body
            run.__kwdefaults__ = getattr(body, "__kwdefaults__", None)
        return run

    return [(wrap(body, returns), returns) for body, returns in bodies], tuple(emptied)


def _name(names, carried) -> str:
    slot = next(iter(carried.values()))[0]
    return names[slot]
