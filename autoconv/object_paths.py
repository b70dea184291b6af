"""Paths into a call's objects (its args, kwargs and bound `self`): finding the tensors a call
can reach, and reading and writing them by path (see NOTE [changed arguments] in capture.py).

A path is a tuple of ("item", key) / ("attr", name) steps from the roots tuple
`(args, kwargs, bound_self)`.
"""

from __future__ import annotations

import enum
import functools

import torch
from autoconv_runtime.text import TracedText

__all__ = ["containers_in", "follow", "follow_or_none", "is_shell", "path_text",
           "python_values_in", "Repeat", "restore", "shared_containers", "store",
           "store_rebuilding", "tensors_in"]

# The Python values a call's objects hold whose changes autoconv follows (NOTE [changed Python
# values] in capture.py).
# (An enum member is one: the walk went on into its class through `__objclass__` and refused
# `s.mode = Mode.B` as removing `args[0].mode.__objclass__._member_map_['B']._value_`.)
PYTHON_VALUES = (bool, int, float, complex, str, bytes, type(None), enum.Enum)
_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)
# Modules whose objects hold no state of the call's: a logger given as an argument reaches the
# handlers' records, which a logging call while tracing adds to (NOTE [logging while tracing]
# in runtime/logs.py)
_NOT_RECORDS = ("builtins", "types", "logging")


# NOTE [a module's own fields named with `_`]
# The walks of a call's objects went into a module's plain attributes but for every name
# starting with `_`, to leave torch's own tables (`_parameters`, `_forward_hooks`, ...) alone.
# That left out the user's own private fields too: a trace value stored there (`self._k_max =
# int(k.max())` in torch-kmeans' `_check_k`, `self._t = x * 3`) was neither written back nor
# refused, and the module kept the trace's SymInt or FakeTensor after the call (Python: 3,
# tensor([3.])). The next trace then guarded that SymInt by identity, walking into torch's
# shape environment and FakeTensorMode's process-wide dispatch cache: whether its guard held
# depended on what earlier traces in the process had cached (session 54's order-dependent
# failure of test_kmeans_in_replay after test_torchdiffeq). Only the names an `nn.Module`
# sets for itself are left out now (and dunders); a user's `_name` is a field like any other.
_MODULE_TABLES = frozenset(vars(torch.nn.Module())) | {"_compiled_call_impl"}


def module_fields(module) -> list:
    """[(name, value)] of the plain attributes of `module` a call's walk follows (NOTE [a
    module's own fields named with `_`])."""
    return [(k, v) for k, v in vars(module).items()
            if k not in _MODULE_TABLES and not k.startswith("__")]


def _walk_tensors(value, path, seen, out, python=False, shells=False, firsts=None):
    """Append (path, tensor) for the tensors reachable from `value` through dicts, lists,
    tuples and the attributes of plain objects; a path is a tuple of ("item", key) /
    ("attr", name) steps. With `python`, the Python values (PYTHON_VALUES) too; with
    `shells`, the dicts, lists, tuples and plain objects on the way (below the roots), each
    before what it holds."""
    if isinstance(value, torch.Tensor):
        out.append((path, value))
        return
    if isinstance(value, PYTHON_VALUES) or isinstance(value, _SYMBOLIC) or type(
            value) is TracedText:  # (a text of the trace: NOTE [text stored into the call's
        # objects] in capture.py)
        # (a symbolic number the trace stored is a value, not an object to walk: its node's
        # frozen fields were "restored" by deletion, FrozenInstanceError hid the refusal of
        # the store, tester39 s06)
        if python and len(path) > 1:
            out.append((path, value))
        return
    if id(value) in seen:
        if firsts is not None and len(path) > 1 and is_shell(value):
            out.append((path, Repeat(firsts[id(value)])))
        return
    seen[id(value)] = value
    if shells and len(path) > 1 and is_shell(value):
        out.append((path, value))
    if firsts is not None:
        firsts[id(value)] = path
    if isinstance(value, torch.nn.Module):
        # Plain attributes (`self.total = t`) and submodules; parameters and buffers are the
        # graph's inputs already (`concrete.ModuleState`).
        for k, v in module_fields(value):
            _walk_tensors(v, path + (("attr", k),), seen, out, python, shells, firsts)
        for k, v in value._modules.items():
            _walk_tensors(v, path + (("attr", k),), seen, out, python, shells, firsts)
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_tensors(v, path + (("item", k),), seen, out, python, shells, firsts)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk_tensors(v, path + (("item", i),), seen, out, python, shells, firsts)
    elif type(value) is functools.partial:
        for step, v in partial_fields(value):
            _walk_tensors(v, path + (step,), seen, out, python, shells, firsts)
    elif hasattr(value, "__dict__") and type(value).__module__ not in _NOT_RECORDS:
        for k, v in vars(value).items():
            _walk_tensors(v, path + (("attr", k),), seen, out, python, shells, firsts)


# NOTE [state a partial argument holds]
# A `functools.partial` holds its arguments and keywords in slots: a walk going into objects by
# their `__dict__` found an empty one, so the list of scipy's counter (`calls = [0];
# minimize(partial(f, calls), x0)`, `f` doing `calls[0] += 1` in a staged loop) was no
# container of the call's: the count the loop carried, a tensor of the trace, was refused as a
# store outside the function (before session 36's guards it was left in the caller's list,
# silently: tester36 s03). The walks go into `args` and `keywords` as attributes, so the count
# is written back as a number in an argument's list is (NOTE [numbers stored into argument
# objects] in capture.py); the partial's values are guarded (NOTE [state reached through a
# callable argument] in captures.py), so another count traces again. A partial's fields cannot
# be rebound: only what its containers hold is ever stored.
def partial_fields(value) -> list:
    """[(step, value)] of a `functools.partial`'s arguments and keywords, which it holds in
    slots, not in a `__dict__` (NOTE [state a partial argument holds])."""
    return [(("attr", "args"), value.args), (("attr", "keywords"), value.keywords)]


def tensors_in(roots) -> dict:
    """{path: tensor} for the tensors reachable from a call's (args, kwargs, bound self)."""
    out = []
    seen = {}
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, out)
    return dict(out)


def python_values_in(roots, shells: bool = False, repeats: bool = False) -> dict:
    """{path: value} for the tensors and Python values (PYTHON_VALUES) reachable from a call's
    (args, kwargs, bound self), in the order a walk meets them (a list's items in order); with
    `shells`, the containers and plain objects holding them too (`is_shell`), each before its
    items; with `repeats` too, a `Repeat` at each further path of a container or object met
    before (NOTE [containers under two paths] in capture.py)."""
    out = []
    seen = {}
    firsts = {} if repeats else None
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, out, python=True, shells=shells or repeats,
                      firsts=firsts)
    return dict(out)


class Repeat:
    """A container or object a walk met before, under the path `first`."""

    __slots__ = ("first",)

    def __init__(self, first):
        self.first = first


def shared_containers(roots) -> tuple:
    """((path, first path), ...): each container or plain object (`is_shell`) a walk of a
    call's objects (as `tensors_in` walks them) meets again under another path, and the path
    it met it under first (NOTE [containers under two paths] in capture.py)."""
    seen = set()
    if not any(_met_again(root, seen) for root in roots):  # (the common case: no paths made)
        return ()
    firsts = {}
    out = []
    stack = [(root, (("item", i),)) for i, root in reversed(list(enumerate(roots)))]
    while stack:
        value, path = stack.pop()
        if isinstance(value, (torch.Tensor, *PYTHON_VALUES)):
            continue
        first = firsts.get(id(value))
        if first is not None:
            if is_shell(value):
                out.append((path, first))
            continue
        firsts[id(value)] = path
        if isinstance(value, torch.nn.Module):
            items = [(("attr", k), v) for k, v in module_fields(value)]
            items += [(("attr", k), v) for k, v in value._modules.items()]
        elif isinstance(value, dict):
            items = [(("item", k), v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            items = [(("item", i), v) for i, v in enumerate(value)]
        elif type(value) is functools.partial:
            items = partial_fields(value)
        elif hasattr(value, "__dict__") and type(value).__module__ not in _NOT_RECORDS:
            items = [(("attr", k), v) for k, v in vars(value).items()]
        else:
            continue
        # (depth first, in the order `_walk_tensors` meets them: which path is first agrees)
        stack.extend((v, path + (step,)) for step, v in reversed(items))
    return tuple(out)


_LEAVES = frozenset({*PYTHON_VALUES[:-1], torch.Tensor, torch.nn.Parameter})


def _met_again(value, seen) -> bool:
    """Whether a walk from `value` (as `shared_containers`') meets a container or plain object
    in `seen` or met before."""
    if id(value) in seen:
        return is_shell(value)
    seen.add(id(value))
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif isinstance(value, (torch.Tensor, *PYTHON_VALUES)):
        return False
    elif isinstance(value, torch.nn.Module):
        items = [*(v for _, v in module_fields(value)), *value._modules.values()]
    elif isinstance(value, (dict, list, tuple)):
        items = list(value.values()) if isinstance(value, dict) else value
    elif kind is functools.partial:
        items = [v for _, v in partial_fields(value)]
    elif hasattr(value, "__dict__") and type(value).__module__ not in _NOT_RECORDS:
        items = vars(value).values()
    else:
        return False
    leaves = _LEAVES
    for item in items:
        if type(item) not in leaves and _met_again(item, seen):
            return True
    return False


def store_rebuilding(roots, path, value) -> None:
    """`store`, where the owner may be a tuple or a partial: it is rebuilt with the new item
    and stored in its own owner (`roots` itself, a tuple, is never replaced)."""
    owner = follow(roots, path[:-1])[-1]
    if type(owner) is functools.partial:
        # (its `args` and `keywords` cannot be rebound: a new partial, as for a tuple; NOTE
        # [state a partial argument holds])
        fields = {"args": owner.args, "keywords": owner.keywords, path[-1][1]: value}
        store_rebuilding(roots, path[:-1], functools.partial(owner.func, *fields["args"],
                                                             **fields["keywords"]))
        return
    if not isinstance(owner, tuple) or len(path) == 1:
        store(roots, path, value)
        return
    items = list(owner)
    items[path[-1][1]] = value
    store_rebuilding(roots, path[:-1], type(owner)(*items) if hasattr(owner, "_fields")
                     else tuple(items))


def is_shell(value) -> bool:
    """A dict, list, tuple or plain object a walk of a call's objects goes into."""
    # (not a value the walk stops at: a SymFloat the trace stored, or an enum member, has a
    # `__dict__` too, and was planned as a new object to make: NOTE [numbers read from tensors
    # stored into argument objects] in capture.py)
    return isinstance(value, (dict, list, tuple)) or (
        not isinstance(value, (torch.nn.Module, torch.Tensor, type, *PYTHON_VALUES, *_SYMBOLIC))
        and hasattr(value, "__dict__") and type(value).__module__ not in _NOT_RECORDS)


def lists_in(roots) -> list:
    """The ids of the lists and dicts reachable from a call's (args, kwargs, bound self)
    (a dict's: NOTE [a dict the first trip gives keys] in runtime/staged_dicts.py)."""
    seen = {}
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, [])
    return [id(v) for v in seen.values() if type(v) in (list, dict)]


def containers_in(roots) -> frozenset:
    """The ids of the dicts and lists reachable from a call's (args, kwargs, bound self), and of
    the attribute tables (`__dict__`) of the plain objects there: what the call's write-back
    (NOTE [changed arguments] in capture.py) stores into."""
    seen = {}
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, [])
    out = set()
    for value in seen.values():
        if isinstance(value, (dict, list)):
            out.add(id(value))
        elif isinstance(getattr(value, "__dict__", None), dict):
            out.add(id(vars(value)))
    return frozenset(out)


def path_text(path) -> str:
    """`path` as the user would write it: `args[0].total`."""
    root = ("args", "kwargs", "self")[path[0][1]]
    return root + "".join(f".{key}" if kind == "attr" else f"[{key!r}]" for kind, key in path[1:])


# NOTE [following a path adds nothing]
# A path is followed after a trace too, where the undo has put the caller's objects back: the
# paths the trace changed are read again (`reread`) to find the tensors it stored. A
# `defaultdict` on the way answers a missing key by adding it: torch.optim's `opt.state` (a
# `defaultdict(dict)` the trace filled, `state = self.state[p]`) got back an empty dict per
# parameter, a state Python never holds. Its keys guard then failed on the first call, which
# traced again on those empty dicts, and that graph's guards (`the keys of state[p]` = ())
# never held again: three traces of an RMSprop step where Python's states are two (trace46).
# A key missing from a dict raises KeyError here, as from a plain dict.
def follow(roots, path) -> list:
    """The objects along `path` from `roots`, the roots tuple first (NOTE [following a path
    adds nothing])."""
    out = [roots]
    value = roots
    for kind, key in path:
        if kind == "attr":
            value = getattr(value, key)
        elif type(value) is not dict and isinstance(value, dict) and key not in value:
            raise KeyError(key)  # (not `__missing__`, which a defaultdict answers by storing)
        else:
            value = value[key]
        out.append(value)
    return out


def follow_or_none(roots, path):
    try:
        return follow(roots, path)[-1]
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def store(roots, path, value) -> None:
    owner = follow(roots, path[:-1])[-1]
    kind, key = path[-1]
    if kind == "attr":
        setattr(owner, key, value)
    elif isinstance(owner, list) and key == len(owner):  # an item the call appended
        owner.append(value)
    else:
        owner[key] = value


# NOTE [a part under two paths put back]
# A walk names an object by the path it meets it under first (`a.p` for `a.p is a.b.p`), so the
# values before a trace have no entry under the other path (`a.b.p.v`). A trace that bound
# `a.b.p` to a new object wrote `a.b.p` and `a.b.p.v`; undoing it (a trace run again, or one
# refused) put the caller's part back at `a.b.p` first, then took `a.b.p.v`, absent from the
# values before, for a field the trace added: it deleted the caller's `a.p.v` (break43b s07's
# refusal: the next trace raised AttributeError in the user's code). A path whose container
# (now) was met under another one is put back as that path's field.
def restore(roots, path, before) -> None:
    """Put back what `path` held before the trace (the trace's objects must not keep fakes).
    A place something else put back already (a container from outside the function, put back
    as it was where the trace was refused: NOTE [trace values stored outside] in captures.py)
    is left as it is."""
    owner = follow_or_none(roots, path[:-1])
    if owner is None:
        return
    kind, key = path[-1]
    if kind == "attr" and path not in before and is_shell(owner):  # (rare: a scan)
        # NOTE [a part under two paths put back]
        first = next((p for p, v in before.items() if v is owner), None)
        if first is not None and first != path[:-1]:
            path = (*first, path[-1])
    if path in before:
        # (an item of a tuple the trace stored goes back in a rebuilt tuple: `self._t = (int(
        # x.sum()), ...)` raised an internal "'tuple' object does not support item assignment")
        store_rebuilding(roots, path, before[path])
    elif kind == "attr":
        if key in getattr(owner, "__dict__", {}):
            delattr(owner, key)
    elif isinstance(owner, dict):
        owner.pop(key, None)
    elif isinstance(owner, list) and isinstance(key, int) and -len(owner) <= key < len(owner):
        del owner[key]




# NOTE [containers held by slotted objects]
# An object of a class declaring `__slots__` (no `__dict__`) is not walked (`_walk_tensors`):
# autoconv neither guards nor writes back what it holds. A method of such an argument object
# filling its dict under the function's own tensor `if` (`st = self.state[0]; st["buf"] = g * 2`)
# left the trace's FakeTensor in the caller's object, silently (silent36 s01). The dicts and
# lists such objects hold (`slotted_containers`, taken before the trace) are compared after it:
# one holding a value of the trace is put back as it was, and the call refused. So are the
# object's own slots (`_Slots`): `s.v = s.v + 1` under a tensor `if` (refused by the staged
# `if`, which then runs the taken branch as Python) left a FakeTensor in the caller's `s.v`
# (break43b s10, where `s.me is s`: the next call read it as a graph constant, an internal
# error).

def slotted_containers(roots, depth: int = 4) -> list:
    """[(container, its items before)] for the dicts and lists reachable from a call's roots
    through an object of a class declaring `__slots__` (NOTE [containers held by slotted
    objects]); empty, and cheap, where no such object is reachable."""
    out, seen = [], set()

    def walk(value, under_slots, left):
        if left < 0 or id(value) in seen or isinstance(value, (torch.Tensor, *PYTHON_VALUES)):
            return
        seen.add(id(value))
        if isinstance(value, dict):
            if under_slots:
                out.append((value, dict(value)))
            items = list(value.values())
        elif isinstance(value, (list, tuple)):
            if under_slots and type(value) is list:
                out.append((value, list(value)))
            items = list(value)
        elif isinstance(value, torch.nn.Module) or isinstance(value, type):
            return
        elif hasattr(value, "__dict__"):
            if type(value).__module__ in _NOT_RECORDS:
                return
            if under_slots:
                # (an object a slotted one holds: its fields, `s.inner.v = ...`, as a dict's
                # items, its `__dict__` the container; break44b s03)
                out.append((vars(value), dict(vars(value))))
            items = list(vars(value).values())
        else:
            names = _slot_names(type(value))
            if not names:
                return
            under_slots = True
            fields = _Slots({n: getattr(value, n) for n in names if hasattr(value, n)})
            out.append((value, fields))
            items = list(fields.values())
        for item in items:
            walk(item, under_slots, left - 1)

    for root in roots:
        walk(root, False, depth)
    return out


class _Slots(dict):
    """The fields a slotted object held in its slots before the trace, as `slotted_containers`
    takes them (NOTE [containers held by slotted objects])."""


def _slot_names(cls) -> list:
    names = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        names += [slots] if isinstance(slots, str) else [
            s for s in slots if s not in ("__dict__", "__weakref__")]
    return names


def trace_value_in_slotted(containers, is_trace_value):
    """The first (container, key) of `containers` (as `slotted_containers` took them) that
    holds a value `is_trace_value` now where it did not before, or None."""
    for container, before in containers:
        items = (_slots_now(container).items() if type(before) is _Slots
                 else container.items() if isinstance(container, dict) else enumerate(container))
        for key, value in items:
            old = before.get(key) if isinstance(before, dict) else (
                before[key] if key < len(before) else None)
            if value is not old and _holds(value, is_trace_value, 3):
                return container, key
    return None


def _holds(value, is_trace_value, depth: int) -> bool:
    if is_trace_value(value):
        return True
    if depth == 0:
        return False
    items = (value.values() if isinstance(value, dict) else value
             if isinstance(value, (list, tuple)) else ())
    return any(_holds(item, is_trace_value, depth - 1) for item in items)


def _slots_now(value) -> dict:
    return {n: getattr(value, n) for n in _slot_names(type(value)) if hasattr(value, n)}


def put_back(containers) -> None:
    """Put the containers (and slotted objects) `slotted_containers` took back as they were."""
    for container, before in containers:
        if type(before) is _Slots:
            for n in _slot_names(type(container)):
                if n in before:
                    setattr(container, n, before[n])
                elif hasattr(container, n):
                    delattr(container, n)
        elif isinstance(container, dict):
            container.clear()
            container.update(before)
        else:
            container[:] = before
