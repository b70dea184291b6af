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

NOTE [one container under two names of the state]
`a = {...}; b = a` before `while c: a = {...}; b = a` (or an `if`), or items set through both
names in the body: the statement carries each name's items on its own and rebuilt one container
per name after it, so the two names stopped being one object, and a change made after it
through one was missed by the other (every mode; in the body too, where each name had its own
copy). Where state names hold one dict, list or object before the statement and every body
leaves them holding one (the same, or a new one bound to both), they are carried as one: the
statement carries the first name only, each body is given its copy under every name, and after
the statement every name gets the first one's result. Which names share an object after the
statement cannot depend on the data, so a body that makes names that held one object hold two
(`prev = st; st = {...}`), or names that held two hold one (`b = a` with `a` and `b` two dicts
before it), is refused: in a loop, whether it ran would decide it. (A name the loop body binds
first: `_refuse_shared_created` in torch.py.)
"""

from __future__ import annotations

import functools
import types

import torch

from ..errors import StagingError
from ..identity import type_in
from ..traced import enumerate  # (NOTE [enumerate under dynamo] in runtime/traced.py)
from ..lists import StagedList, UncountedList
from . import objects

__all__ = ["joining_carried_containers", "sharing_state"]

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
    # (a tensor, most of a state, is told in one test: the two calls cost dynamo about 20
    # steps a slot on every staging)
    if not inputs or not any(not isinstance(v, torch.Tensor) and (_is_container(v) or _children(v))
                             for v in state):
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


def _is_shareable(value) -> bool:
    return type_in(value, (dict, list)) or objects.is_plain_object(value)


def sharing_state(bodies, state, names, statement):
    """(bodies, state, finish), or None where no two state names hold one dict, list or object
    (NOTE [one container under two names of the state]): `bodies` ((function, returns_state,
    where) triples) giving each function the first name's value under the others too, `state`
    with the others left empty (None), and `finish`, which gives them the first one's result
    (the statement is then staged again with these; None where each name holds its own
    container, and the bodies only check that they keep doing so).

    Raises (from a body):
        StagingError: a body leaves names that held one container holding two, or two holding
            one.
    """
    slots = [i for i, v in enumerate(state) if _is_shareable(v)]
    if len(slots) < 2:
        return None
    first = {}  # slot -> the first slot holding its container
    for j in slots:
        first[j] = next(i for i in slots if state[i] is state[j])
    shared = {j: i for j, i in first.items() if i != j}
    count = len(state)
    kind = {i: type(state[i]).__name__ if type_in(state[i], (dict, list)) else "object"
            for i in slots}

    def check(out, where):
        for n, j in enumerate(slots):
            for i in slots[:n]:
                before = first[i] == first[j]
                after = out[i] is out[j] and _is_shareable(out[i])
                if before == after:
                    continue
                if before and any(isinstance(out[k], (StagedList, UncountedList))
                                  for k in (i, j)):
                    raise StagingError(
                        statement,
                        f"'{names[i]}' and '{names[j]}' name one list, which {where} grows; "
                        "a staged statement grows a list under one name only, so the other "
                        "would miss what is appended through it",
                        f"Append through one name only in the {statement}, and bind the "
                        f"other after it (`{names[j]} = {names[i]}`)")
                problem = (
                    f"'{names[i]}' and '{names[j]}' name one {kind[i]} before the "
                    f"{statement}, and {where} one of them is bound to another object"
                    if before else
                    f"'{names[i]}' and '{names[j]}' name two {kind[i]}s before the "
                    f"{statement}, and {where} they are bound to one object")
                raise StagingError(
                    statement,
                    f"{problem}; whether they name one object after the {statement} would "
                    "depend on the data (" + ("on whether the loop ran" if "loop" in statement
                                              else "on the branch taken")
                    + "), which a staged statement cannot carry, so a change made after it "
                    "through one name could be missed by the other",
                    (f"Give '{names[j]}' a copy before the {statement} "
                     f"(`{names[j]} = {kind[i]}({names[i]})`), or bind both names to one "
                     "object on every path" if kind[i] != "object" else
                     f"Bind '{names[i]}' and '{names[j]}' to two objects before the "
                     f"{statement}, or to one object on every path") if before else
                    f"Bind '{names[j]}' to '{names[i]}' after the {statement} "
                    f"(`{names[j]} = {names[i]}`), or before it and on every path")

    if not shared:
        # Two containers: no body may bind the names to one (refused in `check`)
        def wrap(body, returns_state, where):
            def run(*args):
                out = body(*args)
                if returns_state and isinstance(out, tuple) and len(out) == count:
                    check(out, where)
                return out
            _keep_names(run, body)
            return run
        return [(wrap(*b), b[1], b[2]) for b in bodies], state, None

    def wrap(body, returns_state, where):
        def run(*args):
            args = list(args)
            for j, i in shared.items():
                args[j] = args[i]
            out = body(*args)
            if returns_state and isinstance(out, tuple) and len(out) == count:
                check(out, where)
                out = tuple(None if j in shared else v for j, v in enumerate(out))
            return out
        _keep_names(run, body)
        return run

    def finish(result):
        return tuple(result[shared[j]] if j in shared else v for j, v in enumerate(result))

    emptied = tuple(None if j in shared else v for j, v in enumerate(state))
    return [(wrap(*b), b[1], b[2]) for b in bodies], emptied, finish


def _keep_names(run, body) -> None:
    run._autoconv_body = body  # (NOTE [item writes seen in the code] in item_writes.py)
    if not torch.compiler.is_dynamo_compiling():  # (dynamo cannot set them)
        # the user's names of the inputs, for messages: objects.with_input_as_state
        run.__wrapped__ = body
        run.__kwdefaults__ = getattr(body, "__kwdefaults__", None)


def _name(names, carried) -> str:
    slot = next(iter(carried.values()))[0]
    return names[slot]
