"""Objects of user classes among a traced function's results, rebuilt around the graph's outputs.

NOTE [objects a function returns]: the graph's outputs are the flattened leaves of the result
(pytree), and pytree takes an object of a user class (`return State(x * 3)`) as one leaf,
which the replay gave back as it was left by the trace, its fields holding the trace's
FakeTensors (obj50). An object made during the call and holding a value of the trace is
therefore wrapped in `_Fields`, a pytree node whose children are the object's attributes: its
tensors become graph outputs, its other fields constants as they were when traced, and each
replay makes a new object of the class without running `__init__` (`object.__new__`, the
attributes set in `__dict__`, as `copy.copy` does), as each Python call makes a new one.
What cannot be rebuilt so is refused at the function: a torch.nn.Module the call made
(`return M(w)`, `return nn.Linear(3, 3)`: the replay gave the trace's module, its parameters
FakeTensors, the same module on every call; objret50), a class declaring `__slots__` or with
its own `__new__` or its own copying, one object returned twice (Python returns one object,
the replay would make two), one also stored into an argument (`s.child = State(x)`, then
`return s.child`: the replay gave an empty shell), an object that holds itself. An object
the caller held before the call keeps its identity: the writes into it are carried by
NOTE [changed arguments] in capture.py.

A torch.Size in the result (`return x, x.shape`, a distribution's `_batch_shape`) is wrapped
in `_Size` too: pytree flattens it as a node of ints and makes a plain tuple of them again, so
the replay gave `(3,)` where Python gives `torch.Size([3])` (`.numel()` raised, `isinstance`
was False; objret50).

An object without tensors that the call made (a `Meta()` or a `set()` in a returned object's
field, or returned itself) was the trace's, one object shared by every call's result:
changing it in one result changed the next (objret50 s03). NOTE [objects without tensors a
function returns].

`refuse_escaped` is the structural check behind all of this: after the flattening no
non-tensor leaf of the result may reach a tensor of the trace, whatever path put it there.
"""

from __future__ import annotations

import collections
import copy
import types

import torch
from torch.utils import _pytree as pytree

from autoconv_runtime import outside_objects
from autoconv_runtime.errors import StagingError

from .captures import is_trace_value
from .object_paths import PYTHON_VALUES
from .signature import is_ndarray

_NOT_RECORDS = ("builtins", "types", "logging")


class _Fields:
    """A rebuilt object in the result's tree: its class, attribute names and values."""

    __slots__ = ("cls", "names", "values")

    def __init__(self, cls, names, values):
        self.cls, self.names, self.values = cls, names, values


def _flatten(fields):
    return list(fields.values), (fields.cls, fields.names)


def _unflatten(values, context):
    cls, names = context
    made = object.__new__(cls)
    made.__dict__.update(zip(names, values))
    return made


pytree.register_pytree_node(_Fields, _flatten, _unflatten,
                            serialized_type_name="autoconv.returned_objects._Fields")


class _Size:
    """A torch.Size in the result's tree, made again as one (NOTE [objects a function returns])."""

    __slots__ = ("sizes",)

    def __init__(self, sizes):
        self.sizes = sizes


pytree.register_pytree_node(_Size, lambda size: (list(size.sizes), None),
                            lambda values, _: torch.Size(values),
                            serialized_type_name="autoconv.returned_objects._Size")


# NOTE [objects without tensors a function returns]
# `s.meta, s.seen = Meta(), set()` in a function returning `s`: a field holding no value of the
# trace was a leaf of the result's tree, a constant of the replay: the trace's object, one
# object shared by every call's result (mutating one call's `meta` changed the next's, objret50
# s03). Python makes a new one on each call. So the outermost part of the result holding no
# value of the trace that reaches a mutable object the call made (an object of a user class, a
# set, a deque, a bytearray, a numpy array, a dict or list subclass pytree does not rebuild;
# not a library's object, which stays shared as before) is a `Copied`
# leaf: its template is the trace's value, and each call's result holds a deep copy of it
# (`fresh_copies`, one deepcopy memo for all the parts of one result, so that an object two
# parts hold, `Enc(cfg)` and `Dec(cfg)`, stays one). An object the call did not make keeps its
# identity in the copy (the memo holds it): one reachable from the arguments before the call,
# or from the function's globals, closure and defaults, the user modules, classes and functions
# among them, to any depth (`CONFIG`, `pkg.sub.REG`, `Meta.DEFAULT`, another module's helper's
# cached object: NOTE [objects from outside] in runtime/outside_objects.py);
# so does one that deepcopy keeps itself (an Enum member, a class, a function). One that
# deepcopy cannot copy (a lock, a file), and one also stored into an argument (`s.child =
# Meta(); return s.child`: the replay gave a result that was not `s.child`), are refused at the
# function.
class Copied:
    """A part of the result without values of the trace, a leaf deep-copied on each call (NOTE
    [objects without tensors a function returns]): `keep` the objects the copy shares."""

    __slots__ = ("template", "keep")

    def __init__(self, template, keep):
        self.template, self.keep = template, keep


def fresh_copies(leaves: list) -> list:
    """`leaves` (a result's) with each `Copied` leaf a copy of its template, one memo for all."""
    memo = {}
    for leaf in leaves:
        if isinstance(leaf, Copied):
            memo.update((id(v), v) for v in leaf.keep)
    return [copy.deepcopy(leaf.template, memo) if isinstance(leaf, Copied) else leaf
            for leaf in leaves]


def _mutable(value) -> bool:
    """A value whose object a copy must not share: not one pytree rebuilds (a tuple, list,
    dict) nor an immutable value."""
    if isinstance(value, (torch.Tensor, type, types.FunctionType, types.ModuleType,
                          *PYTHON_VALUES, frozenset, torch.SymInt, torch.SymFloat,
                          torch.SymBool)) or _children(value) is not None:
        return False
    if isinstance(value, (set, bytearray, collections.deque, dict, list)) or is_ndarray(value):
        return True
    from autoconv_runtime.calls import is_library_module

    # (not a library's object: one the call made is indistinguishable from a library's own
    # singleton, `constraints.positive`, which must stay itself)
    return _is_record(value) and not is_library_module(str(type(value).__module__))


def _sizes_kept(value):
    """`value` with each torch.Size in its tree wrapped in `_Size`."""
    if type(value) is torch.Size:
        return _Size(tuple(value))
    if isinstance(value, _Fields):
        return _Fields(value.cls, value.names, [_sizes_kept(v) for v in value.values])
    node = _children(value)
    if node is None:
        return value
    new = [_sizes_kept(v) for v in node[0]]
    return value if all(a is b for a, b in zip(new, node[0])) else node[1](new)


def _is_record(value) -> bool:
    """An object of a user class whose attributes may be rebuilt (or refused)."""
    return not (isinstance(value, (torch.Tensor, type, torch.nn.Module, *PYTHON_VALUES))
                or type(value).__module__ in _NOT_RECORDS
                or not type(value).__flags__ & (1 << 9))  # (Py_TPFLAGS_HEAPTYPE: a C type)


def _children(value):
    """(children, rebuild) of a node pytree flattens (a tuple, list, dict, namedtuple, a class
    registered, autoconv's staged containers), else None."""
    entry = pytree.SUPPORTED_NODES.get(pytree._get_node_type(value))
    if entry is None:
        return None
    children, context = entry.flatten_fn(value)
    return list(children), lambda new: entry.unflatten_fn(new, context)


def _holds_trace_value(value, seen) -> bool:
    if is_trace_value(value):
        return True
    if id(value) in seen or isinstance(value, (torch.Tensor, str, bytes)):
        return False
    seen.add(id(value))
    node = _children(value)
    if node is not None:
        return any(_holds_trace_value(v, seen) for v in node[0])
    if isinstance(value, (set, frozenset)):
        return any(_holds_trace_value(v, seen) for v in value)
    if _is_record(value) or isinstance(value, torch.nn.Module):
        items = list(getattr(value, "__dict__", {}).values())
        for cls in type(value).__mro__:
            for slot in _slots(cls):
                if hasattr(value, slot):
                    items.append(getattr(value, slot))
        return any(_holds_trace_value(v, seen) for v in items)
    return False


def _slots(cls):
    slots = cls.__dict__.get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(s for s in slots
                                                          if s not in ("__dict__", "__weakref__"))


def carried(result, roots, held_before: set, name: str, location, fn=None):
    """`result` with each object of a user class made by the call and holding a value of the
    trace replaced by a `_Fields` node (NOTE [objects a function returns]), and each part
    without such values that reaches a mutable object the call made by a `_Copied` node (NOTE
    [objects without tensors a function returns]); `roots`: the call's arguments,
    `held_before` the ids `reachable` from them before the call (the caller's objects), `fn`
    the user's function (its globals, closure and defaults are outside the call). The result
    itself where there is none."""
    made: set = set()
    held: list = []  # (the ids reachable from `roots`, found at the first object met)
    outside: list = []  # (the ids reachable from outside the call, found when first needed)

    def fresh(value):
        """`value` (holding no value of the trace), or a `Copied` of it where it reaches a
        mutable object the call made."""
        keep, found = [], []
        _made_mutables(value, held_before, outside, fn, keep, found, set())
        if not found:
            return value
        if not (outside[0].complete and getattr(held_before, "far", outside[0]).complete):
            # (NOTE [objects from outside]: a walk cut short)
            raise StagingError.at(
                location, "return",
                f"{name} returns a {type(found[0]).__qualname__} that autoconv cannot tell "
                "made by the call from one held outside it: more objects are reachable from "
                "the function's globals, closure, defaults and arguments than it walks, and "
                "Python's result holds the object by identity where a copy would be made each "
                "call",
                "Return the tensors, or build the object outside the function and pass it in")
        if not held:
            held.append(reachable(roots))
        for part in found:
            if id(part) in held[0]:  # (`s.child = Meta(); return s.child`)
                raise StagingError.at(
                    location, "return",
                    f"{name} returns a {type(part).__qualname__} it makes and also stores "
                    "into an argument; autoconv makes the result's part again on each call, so "
                    "the caller would hold two objects where Python has one",
                    "Return it or store it, not both (read it from the argument in the caller)")
        try:
            copy.deepcopy(value, {id(v): v for v in keep})
        except Exception as error:  # noqa: BLE001 (deepcopy's own, of any object)
            raise StagingError.at(
                location, "return",
                f"{name} returns a {type(value).__qualname__} it made, holding an object "
                f"autoconv cannot copy ({type(error).__name__}: {error}); the replay makes "
                "each call's result anew, as Python does",
                "Return the tensors (a tuple, a dict or a dataclass of plain fields), and build "
                "the object outside the function") from None
        return Copied(value, tuple(keep))

    def refuse(value, problem):
        raise StagingError.at(
            location, "return",
            f"{name} returns an object of class {type(value).__qualname__} holding tensors it "
            f"computes, {problem}, which autoconv cannot make again on each call",
            "Return the tensors (a tuple, a dict or a dataclass of plain fields), and build the "
            "object outside the function")

    def walk(value, path):
        if id(value) in path:
            refuse(value, "and the object holds itself") if _is_record(value) else None
            return value
        if isinstance(value, torch.Tensor):
            return value
        if not _holds_trace_value(value, set()):
            return fresh(value)  # NOTE [objects without tensors a function returns]
        path = path | {id(value)}
        node = _children(value)
        if node is not None:
            new = [walk(v, path) for v in node[0]]
            return value if all(a is b for a, b in zip(new, node[0])) else node[1](new)
        if (_is_record(value) or isinstance(value, torch.nn.Module)) and not held:
            held.append(reachable(roots))
        if id(value) in held_before:
            return value  # (the caller's object: NOTE [changed arguments])
        if isinstance(value, torch.nn.Module) and id(value) not in held[0]:
            refuse(value, "and it is a torch.nn.Module made by the call (its parameters would "
                          "be the trace's, one module for every call)")
        if not _is_record(value):
            return value
        if id(value) in held[0]:  # (`s.child = State(x); return s.child`)
            refuse(value, "and stores it into an argument too (the caller would hold two "
                          "objects where Python has one)")
        cls = type(value)
        if any(_slots(c) for c in cls.__mro__) or not hasattr(value, "__dict__"):
            refuse(value, "and its class declares __slots__")
        if cls.__new__ is not object.__new__:
            refuse(value, "and its class defines __new__")
        if (cls.__reduce_ex__ is not object.__reduce_ex__ or cls.__reduce__ is not
                object.__reduce__ or hasattr(cls, "__setstate__")):
            refuse(value, "and its class defines how its objects are copied")
        if id(value) in made:
            refuse(value, "and returns that one object twice")
        made.add(id(value))
        names = tuple(vars(value))
        return _Fields(cls, names, [walk(vars(value)[n], path) for n in names])

    return _sizes_kept(walk(result, frozenset()))


def _made_mutables(value, held_before, outside, fn, keep, found, seen) -> None:
    """Into `found` the mutable objects `value` reaches that the call made, into `keep` those
    it did not (NOTE [objects without tensors a function returns])."""
    if id(value) in seen:
        return
    seen.add(id(value))
    node = _children(value)
    if node is not None:
        for child in node[0]:
            _made_mutables(child, held_before, outside, fn, keep, found, seen)
        return
    if not _mutable(value):
        return
    if not outside:  # NOTE [objects from outside] in runtime/outside_objects.py
        outside.append(outside_objects.reachable_outside((fn,)))
    if (id(value) in held_before or id(value) in getattr(held_before, "far", ())
            or id(value) in outside[0] or _copies_itself(value)):
        keep.append(value)
        return
    found.append(value)
    if isinstance(value, (dict, list, set, collections.deque)):
        children = list(value.values()) if isinstance(value, dict) else list(value)
    else:
        children = list(getattr(value, "__dict__", {}).values())
    for child in children:
        _made_mutables(child, held_before, outside, fn, keep, found, seen)


def _copies_itself(value) -> bool:
    try:
        return copy.deepcopy(value) is value
    except Exception:  # noqa: BLE001 (refused where it is copied: `carried`)
        return False


def refuse_escaped(leaves, roots, name: str, location) -> None:
    """An internal error where a non-tensor leaf of a function's flattened result reaches a
    tensor of the trace (NOTE [objects a function returns]): no value of a trace may outlive
    it, and a rebuilt output would otherwise be silently the traced one. (The caller's
    objects, `roots`, are put back after the trace: NOTE [changed arguments] in capture.py.)"""
    held = None
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor) or not _holds_trace_value(leaf, set()):
            continue
        held = reachable(roots) if held is None else held
        if id(leaf) not in held:
            raise StagingError.at(
                location, "return",
                f"internal error: {name} returns a {type(leaf).__qualname__} that still holds "
                "a tensor of the trace after its result was flattened into the graph's "
                "outputs; the replay would give the trace's value",
                "Please report this with the function; return the tensors themselves "
                "(a tuple or dict of them) meanwhile")


def held_before_call(roots) -> outside_objects.Reached:
    """The ids `reachable` from a call's arguments before it, with `far` the ids of all the
    objects they hold, at any depth (NOTE [objects without tensors a function returns]: an
    object the caller held, however deep, is not one the call made)."""
    held, held.far = outside_objects.near_and_far(roots, 6)
    return held


def reachable(roots) -> outside_objects.Reached:
    """The ids of the objects a call's arguments hold, six steps deep through containers and
    records (the caller's objects, put back after the trace: NOTE [changed arguments])."""
    return outside_objects.reachable(roots, depth=6, code=False)
