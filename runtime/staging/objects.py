"""Objects as the state of a staged statement: carried by their tensors, written back in place.

    s = S(); s.v = x                       the loop's state is the object `s`: its tensor fields
    while s.v.sum() < 100:          ->     are operands and outputs of one torch.while_loop, each
        s.v = s.v * 2                      body works on its own copy of `s`, and after the loop
                                           the outputs are written back into `s` itself

A plain object, a dataclass instance or a dict (and the lists, tuples and objects inside them)
is flattened to its tensor leaves; every other field (a number, a string, a module) must come
out of the bodies as it went in. After the statement the object is updated in place, so that
other references to it (the caller's, for an argument) see what Python would show them; where
every body builds a new object instead (`state = State(state.x * 2)`), the statement's result is
a new object and the old one stays as it was.

Modules are not carried (their fields are parameters and buffers a graph reads by name).
"""

from __future__ import annotations

import builtins
import enum
import functools
import types

import torch

from ..errors import StagingError
from ..lists import StagedList
from ..values import is_staged, is_undefined

__all__ = ["carried_slots", "carry", "ChangedInput", "is_plain_object", "with_input_as_state",
           "refusing_uncarried_changes"]

_REPLACED = "is replaced by another named tuple"

# Types of these modules are values, not records of state (functions, classes, modules, None,
# numbers, enum members, partials ...). The test stays simple for dynamo, which traces it.
_NOT_RECORDS = ("builtins", "torch", "enum", "functools", "collections", "typing", "abc",
                "types")


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement (or type())


def is_plain_object(value) -> bool:
    """Whether `value` is a record of fields (a plain object, a dataclass instance) that a
    staged statement carries by its tensors."""
    return _is_plain_object(value)


def _is_plain_object(value) -> bool:
    if isinstance(value, (torch.Tensor, torch.nn.Module, StagedList, enum.Enum, dict)):
        # (a dict subclass, such as scipy's OptimizeResult, is its items: see mappings.py)
        return False
    if is_undefined(value):  # autoconv's placeholder for an unbound variable, not an object
        return False
    if is_staged(value):  # another tracer's value (staging/registry.py): staged as one value
        return False
    cls = type(value)
    if cls is types.SimpleNamespace:
        return True
    if not cls.__flags__ & _HEAP_TYPE:
        # A type defined in C (a function, a method, a code object) is no record of fields:
        # it cannot be rebuilt with object.__new__, and its __dict__ is not its state.
        return False
    if cls.__module__ == "builtins" and getattr(builtins, cls.__name__, None) is not cls:
        # A class made by exec() without a __name__ says it is a builtin: it is the user's.
        return hasattr(value, "__dict__") and not hasattr(cls, "__slots__")
    if cls.__module__ in _NOT_RECORDS or cls.__module__.startswith(("torch.", "autoconv_runtime.")):
        return False
    return hasattr(value, "__dict__") and not hasattr(cls, "__slots__")


def _flatten(value, leaves, seen, path="", records=frozenset()):
    """The structure of `value` (a nested tuple), appending its tensors to `leaves`.

    A named tuple is a constant, except at the `records` paths (see NOTE [named tuples]).
    """
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return ("tensor",)
    if type(value) in _NUMBERS and path in records:  # NOTE [numbers in objects]
        leaves.append(value)
        return ("number",)
    if id(value) in seen:  # a cycle, or one object reached twice: not carried twice
        return ("const", value)
    if type(value) is dict:
        seen = seen | {id(value)}
        return ("dict", tuple((k, _flatten(v, leaves, seen, f"{path}[{k!r}]", records))
                              for k, v in value.items()))
    if type(value) in (list, tuple, HeldList):
        seen = seen | {id(value)}
        return ("tuple" if type(value) is tuple else "list", tuple(_flatten(v, leaves, seen, f"{path}[{i}]", records)
                                            for i, v in enumerate(value)))
    if _is_namedtuple(value) and path in records:
        seen = seen | {id(value)}
        return ("namedtuple", type(value), tuple(
            _flatten(v, leaves, seen, f"{path}.{k}", records)
            for k, v in zip(type(value)._fields, value)))
    if _is_plain_object(value):
        seen = seen | {id(value)}
        return ("object", type(value),
                tuple((k, _flatten(v, leaves, seen, f"{path}.{k}", records))
                      for k, v in vars(value).items()))
    return ("const", value)


_NUMBERS = (bool, int, float)

# NOTE [numbers in objects]
# A Python number in a carried object, dict or list (`stats = {"pos": 0}`) is a constant of the
# statement, as other fields are, until a body changes it (`stats["pos"] += 1`): the statement is
# then staged again with that number carried, as a local number is (a 0-d tensor in the bodies,
# and in the object after the statement, as a local number is after it). Under torch.compile,
# where a staged statement cannot be staged again, the numbers of a dict or list carried are
# carried from the start. A carried number keeps the dtype it starts with (int64 for an int): a
# body that makes it a float is refused, as for a tensor.


# NOTE [named tuples]
# A named tuple in an object (torchdiffeq's solver holds its Butcher tableau and its RK state in
# two) is a value that cannot change: it stays a constant of the statement, so that its tensors
# stay what they are outside (a tableau's coefficients remain constants a body can decide
# conditions on, see specialize.py). Where a body replaces one by another named tuple of its
# type (`self.rk_state = _RungeKuttaState(...)`), the statement is staged again with that one
# carried by its tensors, and rebuilt after.


class _ReplacedRecord(StagingError):
    """A body replaced the named tuple at `path` of the state's slot `slot`."""

    def __init__(self, slot, path, statement, problem, fix):
        super().__init__(statement, problem, fix)
        self.slot, self.path = slot, path


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def flatten(value, records=frozenset()):
    """(structure, tensors) of `value`; the named tuples at the paths `records` are carried."""
    leaves = []
    return _flatten(value, leaves, frozenset(), "", records), leaves


def _rebuild(spec, leaves):
    kind = spec[0]
    if kind in ("tensor", "number"):
        return next(leaves)
    if kind == "const":
        return spec[1]
    if kind == "dict":
        return {k: _rebuild(v, leaves) for k, v in spec[1]}
    if kind == "list":
        return [_rebuild(v, leaves) for v in spec[1]]
    if kind == "tuple":
        return tuple(_rebuild(v, leaves) for v in spec[1])
    if kind == "namedtuple":
        return spec[1](*(_rebuild(v, leaves) for v in spec[2]))
    cls = spec[1]
    # types.SimpleNamespace is defined in C, and object.__new__ refuses to make one.
    new = cls.__new__(cls) if cls is types.SimpleNamespace else object.__new__(cls)
    for k, v in spec[2]:
        object.__setattr__(new, k, _rebuild(v, leaves))
    return new


def _write_back(target, spec, leaves, in_place=frozenset(), kept=frozenset()):
    """Put the tensors `leaves` (an iterator of (leaf number, tensor)) into `target` (of
    structure `spec`) in place: a tensor the bodies updated in place (its leaf number in
    `in_place`) by `copy_` into the tensor `target` holds, so that every other reference to it
    sees the update, as in Python; one no body changed (in `kept`) left as it is; other values
    replaced (a named tuple inside it, which cannot change, by a new one)."""
    kind = spec[0]
    if kind == "dict":
        for k, v in spec[1]:
            _write_item(target, k, v, leaves, in_place, kept, target.__setitem__,
                        target.__getitem__)
    elif kind in ("list", "tuple"):
        for i, v in enumerate(spec[1]):
            if v[0] in _REPLACED_KINDS and kind == "tuple" and v[0] != "tensor":
                raise AssertionError("a tuple's items cannot be replaced in place")
            _write_item(target, i, v, leaves, in_place, kept, target.__setitem__,
                        target.__getitem__)
    elif kind == "object":
        for k, v in spec[2]:
            _write_item(target, k, v, leaves, in_place, kept,
                        functools.partial(setattr, target), functools.partial(getattr, target))


def _write_item(target, key, spec, leaves, in_place, kept, store, load):
    if spec[0] == "tensor":
        number, value = next(leaves)
        if number in in_place:
            load(key).copy_(value)
        elif number in kept:
            pass
        elif type(target) is tuple:
            raise AssertionError("a tuple's items cannot be replaced in place")
        else:
            store(key, value)
    elif spec[0] in _REPLACED_KINDS:
        store(key, _rebuild(spec, (value for _, value in leaves)))
    else:
        _write_back(load(key), spec, leaves, in_place, kept)


# The parts of a container written back by replacing them: values, and tuples (a tuple holding
# a changed tensor is a new tuple)
_REPLACED_KINDS = ("tensor", "number", "namedtuple", "tuple")


def _same_constant(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or not isinstance(a, (int, float, complex, str, bytes)):
        return False
    return a == b


def _flatten_as(spec, value, leaves, path=""):
    """Append the tensors of `value`, which must have the structure `spec`, to `leaves`.

    Returns None, or (path, what differs). Fields are read by the names `spec` holds: under
    dynamo, `vars()` of an object built in a traced body is empty.
    """
    kind = spec[0]
    if kind == "tensor":
        if not isinstance(value, torch.Tensor):
            return path, "stops being a tensor"
        leaves.append(value)
        return None
    if kind == "number":
        if not isinstance(value, (torch.Tensor, *_NUMBERS)):
            return path, "stops being a number"
        leaves.append(value)
        return None
    if kind == "const":
        if _same_constant(spec[1], value):
            return None
        if _is_namedtuple(spec[1]) and type(value) is type(spec[1]):
            return path, _REPLACED
        if type(spec[1]) in _NUMBERS and isinstance(value, (torch.Tensor, *_NUMBERS)):
            return path, _REPLACED  # carried from now on: NOTE [numbers in objects]
        return path, "is changed"
    if kind == "namedtuple":
        if type(value) is not spec[1]:
            return path, "changes its type"
        for name, field, item in zip(spec[1]._fields, spec[2], value):
            found = _flatten_as(field, item, leaves, f"{path}.{name}")
            if found:
                return found
        return None
    if kind == "object":
        if type(value) is not spec[1]:
            return path, "changes its type"
        keys = [k for k, _ in spec[2]]
        if not torch.compiler.is_compiling() and list(vars(value)) != keys:
            return path, "gains or loses attributes"
        for k, field in spec[2]:
            found = _flatten_as(field, getattr(value, k), leaves, f"{path}.{k}")
            if found:
                return found
        return None
    if type(value).__name__ != kind:
        return path, "changes its type"
    if kind == "dict":
        if list(value) != [k for k, _ in spec[1]]:
            return path, "gains or loses keys"
        for k, item in spec[1]:
            found = _flatten_as(item, value[k], leaves, f"{path}[{k!r}]")
            if found:
                return found
        return None
    if len(value) != len(spec[1]):
        return path, "changes its length"
    for i, item in enumerate(spec[1]):
        found = _flatten_as(item, value[i], leaves, f"{path}[{i}]")
        if found:
            return found
    return None


class HeldList(list):
    """A list of tensors a statement carries by its tensors, as it carries a dict: a body
    updates its tensors in place (`bufs[0].add_(a)`) and grows it nowhere. The bodies get a
    plain list (see `with_input_as_state`)."""


def _carries(value) -> bool:
    """An object, or a dict / list / tuple holding one: flattened here, not by torch's pytree."""
    if _is_plain_object(value) or type(value) is HeldList:
        return True
    if type(value) is dict:
        return True  # written back in place, so that other references see the change
    if type(value) in (list, tuple) or _is_namedtuple(value):
        return any(_carries(v) for v in value)
    return False


def _holds_object(spec) -> bool:
    if spec[0] == "object":
        return True
    if spec[0] in ("dict", "list", "tuple"):
        return any(_holds_object(item[-1] if spec[0] == "dict" else item) for item in spec[1])
    if spec[0] == "namedtuple":
        return any(_holds_object(item) for item in spec[2])
    return False


def carried_slots(state, records=None) -> dict:
    """{slot: (structure, tensors)} for the state values carried here (`records`: {slot: the
    paths of its named tuples and numbers that are carried})."""
    records = records or {}
    slots = {i: v for i, v in enumerate(state) if _carries(v)}
    if torch.compiler.is_dynamo_compiling():  # NOTE [numbers in objects]
        records = {i: frozenset(records.get(i, ())) | _number_paths(v)
                   for i, v in slots.items()}
    return {i: flatten(v, frozenset(records.get(i, ()))) for i, v in slots.items()}


def _number_paths(value, path="") -> frozenset:
    """The paths of the numbers in `value` reached through dicts and lists."""
    if type(value) is dict:
        return frozenset().union(*(_number_paths(v, f"{path}[{k!r}]")
                                   for k, v in value.items()))
    if type(value) is list:
        return frozenset().union(*(_number_paths(v, f"{path}[{i}]")
                                   for i, v in enumerate(value)))
    return frozenset({path}) if type(value) in _NUMBERS else frozenset()


def carry(stage, bodies, state, names, slots, statement, records=None):
    """Run `stage(bodies, state)` with the objects in `slots` flattened to tuples of tensors.

    `bodies` are (function, returns_state, where) triples; each gets rebuilt copies of the
    objects and its state outputs flattened back, checked against the structure before.
    Returns the statement's state with the objects updated in place (or rebuilt, see above).
    """
    if torch.compiler.is_dynamo_compiling() and any(_holds_object(spec) for spec, _ in slots.values()):
        # NOTE [dynamo loses attribute stores]: in torch 2.13, dynamo drops `obj.v = t` on an
        # object made in the compiled frame once a torch.cond / while_loop has been traced (the
        # object keeps its old value, silently). Dict items are kept.
        name = next(names[i] for i, (spec, _) in slots.items() if _holds_object(spec))
        raise StagingError(
            statement,
            f"'{name}' is an object whose attributes the {statement} changes, and "
            "torch.compile (torch 2.13) loses attribute changes made after staged control flow",
            f"Keep the tensors of '{name}' in local variables or a dict inside the compiled "
            "function (autoconv's own tracing and torch.export carry objects)")
    built = []  # whether a body returned an object other than the copy it was given
    count = len(state)
    # Per slot, the leaf numbers of tensors some body updated in place (the same tensor came
    # back, changed) and of those some body replaced (NOTE [tensors of objects updated in place])
    updated = {slot: set() for slot in slots}
    replaced = {slot: set() for slot in slots}

    def wrap(body, returns_state, where):
        def run(*args):
            args = list(args)
            given = {}
            given_leaves = {}
            for slot, (spec, _) in slots.items():
                given_leaves[slot] = tuple(args[slot] or ())
                given[slot] = args[slot] = _rebuild(spec, iter(given_leaves[slot]))
            versions = None if torch.compiler.is_dynamo_compiling() else {
                slot: [t._version if isinstance(t, torch.Tensor) else None for t in leaves]
                for slot, leaves in given_leaves.items()}
            out = body(*args)
            if not returns_state or not isinstance(out, tuple) or len(out) != count:
                return out
            out = list(out)
            for slot, (spec, _) in slots.items():
                if out[slot] is not given[slot] and not torch.compiler.is_compiling():
                    built.append(slot)
                leaves = []
                found = _flatten_as(spec, out[slot], leaves)
                if found is not None:
                    path, what = found
                    error = (functools.partial(_ReplacedRecord, slot, path)
                             if what is _REPLACED else StagingError)
                    what = "is replaced" if what is _REPLACED else what
                    raise error(
                        statement,
                        f"`{names[slot]}{path}` {what} {where}; only the tensors in an object "
                        "can change under a tensor condition",
                        f"Keep `{names[slot]}{path}` as it is in the {statement} (or hold it in "
                        "a tensor), or compute it outside")
                for number, (before, after) in enumerate(zip(given_leaves[slot], leaves)):
                    # (dynamo refuses a body writing outside it; it replaces, as before)
                    if not isinstance(before, torch.Tensor) or versions is None:
                        continue
                    if after is not before:
                        replaced[slot].add(number)
                    elif versions is None or before._version != versions[slot][number]:
                        updated[slot].add(number)
                out[slot] = tuple(leaves) or None
            return tuple(out)
        return run

    flat_state = tuple(tuple(slots[i][1]) or None if i in slots else v
                       for i, v in enumerate(state))
    try:
        result = list(stage([wrap(*b) for b in bodies], flat_state))
    except _ReplacedRecord as replaced:  # NOTE [named tuples]
        if torch.compiler.is_dynamo_compiling():
            raise
        records = dict(records or {})
        records[replaced.slot] = records.get(replaced.slot, frozenset()) | {replaced.path}
        return carry(stage, bodies, state, names, carried_slots(state, records), statement,
                     records)
    for slot, (spec, _) in slots.items():
        leaves = iter(result[slot] or ())
        if slot in built or spec[0] == "tuple":
            result[slot] = _rebuild(spec, leaves)
        else:
            # A tensor updated in place on one path and replaced on another is replaced (its
            # other references miss the update on the first path: README, Limitations).
            updated[slot] -= replaced[slot]
            kept = set() if torch.compiler.is_dynamo_compiling() else {
                number for number, leaf in enumerate(slots[slot][1])
                if isinstance(leaf, torch.Tensor)} - updated[slot] - replaced[slot]
            _write_back(state[slot], spec, enumerate(leaves), updated[slot], kept)
            result[slot] = state[slot]
    return tuple(result)


# NOTE [tensors of objects updated in place]
# `d["m"].add_(a)` in a staged body updates the tensor `d["m"]` in place: in Python every other
# reference to that tensor (`m = d["m"]` taken before, the caller's) sees the update. Each body
# works on its own copy, so after the statement the result is copied into the tensor the object
# holds, rather than put in its place, wherever a body returned the very tensor it was given,
# changed. A body that assigns a new tensor (`d["m"] = d["m"] + a`) leaves the old one as it
# was, as Python does: the new one is put in its place.



def _attribute_tables(value) -> tuple:
    """The tables holding `value`'s attributes, when it has any a body could set."""
    if isinstance(value, torch.nn.Module):
        return (vars(value), value._buffers, value._parameters)
    if isinstance(value, (torch.Tensor, StagedList)) or is_staged(value) or is_undefined(value):
        return ()
    table = getattr(value, "__dict__", None)
    return (table,) if type(table) is dict else ()


class ChangedInput(Exception):
    """Internal, never reaches the user: a body changed the object (or dict) `args[0]`, an
    index into the statement's inputs, which the statement then carries (see
    `with_input_as_state`); `args[1]`, if given: only by updating tensors in it in place. Not a
    StagingError: under dynamo making one raises."""

    # (no __init__ of its own: dynamo cannot trace one calling `super().__init__`)
    @property
    def in_place(self) -> bool:
        return len(self.args) > 1 and self.args[1]

    @property
    def shortened(self) -> bool:
        """A list the body took items from (`data.pop()`)."""
        return len(self.args) > 2 and self.args[2]


def _containers(value, found, seen):
    """Append (container, copy) for the dicts and lists reachable from `value` through plain
    objects, dicts and lists (an object's fields are its __dict__)."""
    if id(value) in seen:
        return
    if _is_plain_object(value):
        seen.add(id(value))
        table = vars(value)
        found.append((table, dict(table)))
        for v in table.values():
            _containers(v, found, seen)
    elif type(value) is dict:
        seen.add(id(value))
        found.append((value, dict(value)))
        for v in value.values():
            _containers(v, found, seen)
    elif type(value) is list:
        seen.add(id(value))
        found.append((value, list(value)))
        for v in value:
            _containers(v, found, seen)
    elif type(value) is tuple or _is_namedtuple(value):
        for v in value:
            _containers(v, found, seen)


def _changed_container(container, old) -> bool:
    if type(container) is list:
        return len(container) != len(old) or any(a is not b for a, b in zip(container, old))
    return list(container) != list(old) or any(container[k] is not old[k] for k in old)


def _restore(container, old) -> None:
    if type(container) is list:
        container[:] = old
    else:
        container.clear()
        container.update(old)


def _refuse_views_of(held, inputs, input_names, name, statement) -> None:
    """StagingError for an input that is a view of the tensor `held` (updated in place by the
    statement), or whose view `held` is: each would reach the bodies as its own copy."""
    for other, value in zip(input_names, inputs):
        if value is held or not isinstance(value, torch.Tensor):
            continue
        if value._base is held or held._base is value or (
                held._base is not None and value._base is held._base):
            raise StagingError(
                statement,
                f"'{name}' is updated in place in the statement and '{other}' is a view of "
                "the same tensor (or the other way round); the staged statement carries each "
                "as its own copy, so one would not see the other's update",
                f"Take the view inside the statement (`{other} = ...` in the body), or update "
                "the tensor through one name only")


def with_input_as_state(stage, bodies, state, names, inputs, changed, statement):
    """`stage(bodies, state, names, inputs)` with `inputs[changed.args[0]]`, an object a body
    changed (`s.step(dt)` in a loop, where `step` sets `self.state`), moved into the state:
    carried by its tensors (see `carry`) and updated in place after the statement. `bodies` are
    (function, returns_state) pairs; `changed` the ChangedInput. Returns the statement's state.

    Raises StagingError for a list changed other than by updating its tensors in place (its
    growth would be a new value no name takes)."""
    index = changed.args[0]
    count = len(state)
    held = inputs[index]
    input_names = [f"<input {i}>" for i in range(len(inputs))]
    for body, _ in bodies:
        code = getattr(getattr(body, "__wrapped__", body), "__code__", None)
        if code is not None and code.co_argcount == count + len(inputs):
            input_names = list(code.co_varnames[count: count + len(inputs)])
            break
    name = input_names[index] if not input_names[index].startswith("<") else "<changed object>"
    # Other names for the same object take the state's value in the bodies too (linear_
    # operator's CG passes `curr_conjugate_vec = precond_residual` to a helper updating it).
    same = [i for i, v in enumerate(inputs) if v is held]
    rest = tuple(v for i, v in enumerate(inputs) if i not in same)
    if isinstance(held, torch.Tensor):
        _refuse_views_of(held, inputs, input_names, name, statement)

    def wrap(body, returns_state):
        def run(*args):
            values, value, others = args[:count], args[count], iter(args[count + 1:])
            given = [value if i in same else next(others) for i in range(len(inputs))]
            out = body(*values, *given)
            return (*out, value) if returns_state else out
        return run

    if type(held) is list and changed.in_place:
        # Only its tensors change: carried by them, written back into them (NOTE [tensors of
        # objects updated in place]); the list itself stays the caller's.
        out = stage([wrap(body, returns) for body, returns in bodies],
                    (*state, HeldList(held)), (*names, name), rest)
        for i, value in enumerate(out[count]):
            if value is not held[i]:
                held[i] = value
        return tuple(out[:count])
    if type(held) is list:
        # A grown list is a new value (a StagedList) that only a name the body assigns can take.
        if changed.shortened:
            # `data.pop()`: a staged body runs once while tracing, so it takes one item, once
            # (NOTE [Python state a staged body changes] in python_state.py)
            from .specialize import never

            raise never(StagingError(
                statement,
                f"list '{name}' is shortened in a body that only reads it (`{name}.pop()`, "
                f"`del {name}[i]`); a staged body runs once while tracing, so it would take "
                "one item once, not one on every trip or only on the path taken",
                f"Stack the items into one tensor before the {statement} and index it by a "
                f"counter the loop carries (`v = items[i]; i = i + 1`), or change '{name}' "
                f"after the {statement}"))
        raise StagingError(
            statement,
            f"list '{name}' is changed through a call (or an alias) in a body that only reads "
            f"'{name}'; a list can only grow under tensor control flow by `{name}.append(...)` "
            "in the body itself",
            f"Return the items from the call and append them to '{name}' in the body, or "
            "build the list after the statement")
    out = stage([wrap(body, returns) for body, returns in bodies], (*state, held),
                (*names, name), rest)
    if isinstance(held, torch.Tensor):  # updated in place: every reference to it sees that
        held.copy_(out[count])
    return tuple(out[:count])


def refusing_uncarried_changes(bodies, state, names, statement, inputs=()):
    """`bodies`, each checking that it left the objects in `state` it does not carry, and the
    objects in `inputs`, as they were.

    A module, an object of a library's class (a torch.distributions.Normal, a functools.partial)
    or of a type defined in C is not carried (see _is_plain_object): a body that sets one of
    its attributes (`self.n = t` in a method) would leave a value of the body's trace in it.
    Refused, and undone. A plain object or dict the bodies only read (an input) that a body
    changes anyway (through a method: `s.step(dt)`) is undone and `ChangedInput` raised, so
    that the statement is staged again carrying it.
    """
    if torch.compiler.is_dynamo_compiling():  # dynamo refuses it itself
        return tuple(body for body, _ in bodies)
    held = []
    for name, value in zip(names, state):
        tables = () if _carries(value) else _attribute_tables(value)
        if tables:
            held.append((name, value, tables))
    read = [i for i, value in enumerate(inputs) if _carries(value) or type(value) is list]
    if not held and not read:
        return tuple(body for body, _ in bodies)

    def check(body, where):
        def run(*args):
            before = [[dict(t) for t in tables] for _, _, tables in held]
            # The values the body is given: a dict input reaches it rebuilt by torch's pytree.
            given = args[len(args) - len(inputs):] if inputs else ()
            contents = []
            for i in read:
                found = []
                _containers(given[i], found, set())
                contents.append((i, found))
            try:
                out = body(*args)
            finally:
                changed_input, shortened = None, False
                for i, found in contents:
                    for container, old in found:
                        if _changed_container(container, old):
                            shortened |= (changed_input is None and type(container) is list
                                          and len(container) < len(old))
                            _restore(container, old)
                            changed_input = i if changed_input is None else changed_input
                for (name, value, tables), saved in zip(held, before):
                    for table, old in zip(tables, saved):
                        changed = [k for k in set(table) | set(old)
                                   if table.get(k, old) is not old.get(k, table)]
                        if not changed:
                            continue
                        table.clear()
                        table.update(old)
                        what = ("module" if isinstance(value, torch.nn.Module)
                                else f"{type(value).__qualname__} object")
                        raise StagingError(
                            statement,
                            f"'{name}.{changed[0]}' of {what} '{name}' is set {where}; "
                            f"autoconv does not carry the attributes of a {what} through "
                            "a staged statement",
                            f"Keep the value in a local variable (or return it), and assign "
                            f"'{name}.{changed[0]}' after the {statement}")
            if changed_input is not None:
                raise ChangedInput(changed_input, False, shortened)
            return out
        return run

    return tuple(check(body, where) if body is not None else None for body, where in bodies)
