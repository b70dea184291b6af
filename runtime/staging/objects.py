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
import collections
import dataclasses
import dis
import enum
import functools
import inspect
import re
import types
import weakref

import numpy
import torch
from torch.fx.experimental.symbolic_shapes import statically_known_true

from ..errors import StagingError
from . import (attempt_effects, context, dynamo_floats, flagged_keys, restaging, tensor_reads,
               unchanged_leaves, unseen_updates)
from ..augmented import copy_of, is_stand_in, mark
from ..lists import StagedList, filled
from ..identity import identical, type_in
from ..traced import enumerate  # (NOTE [enumerate under dynamo] in runtime/traced.py)
from .tracers.dynamo import fake_version
from ..values import Undefined, is_staged, is_symbolic, is_undefined, to_tensor

__all__ = ["carried_slots", "carry", "ChangedInput", "is_plain_object", "UpdatedInputs",
           "with_input_as_state", "with_inputs_as_state",
           "refusing_uncarried_changes", "refusing_changes_in_uncarried", "spans_apart"]

_REPLACED = "is replaced by another named tuple"

# Types of these modules are values, not records of state (functions, classes, modules, None,
# numbers, enum members, partials ...), or process-wide services (a logging.Logger in a
# field, whose cache a logging call fills: NOTE [logging while tracing] in runtime/logs.py).
# The test stays simple for dynamo, which traces it.
_NOT_RECORDS = ("builtins", "torch", "enum", "functools", "collections", "typing", "abc",
                "types", "logging")


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement (or type())


def is_plain_object(value) -> bool:
    """Whether `value` is a record of fields (a plain object, a dataclass instance) that a
    staged statement carries by its tensors."""
    return _is_plain_object(value)


def _is_plain_object(value) -> bool:
    if isinstance(value, _NOT_PLAIN):
        # (a dict subclass, such as scipy's OptimizeResult, is its items: see mappings.py)
        return False
    # The rest but the value's `__dict__` and its tracer is its class's: one call for dynamo
    # (NOTE [class tests dynamo calls])
    return (_record_class(type(value)) and hasattr(value, "__dict__")
            # another tracer's value (staging/registry.py): staged as one value
            and not is_staged(value))


_NOT_PLAIN = (torch.Tensor, torch.nn.Module, StagedList, enum.Enum, dict)


def _record_class(cls) -> bool:
    """Whether an instance of `cls` (not one of `_NOT_PLAIN`'s) that has a `__dict__` is a
    record of fields, as far as its class tells."""
    if cls is Undefined:  # autoconv's placeholder for an unbound variable, not an object
        return False
    if cls is types.SimpleNamespace:
        return True
    if not cls.__flags__ & _HEAP_TYPE:
        # A type defined in C (a function, a method, a code object) is no record of fields:
        # it cannot be rebuilt with object.__new__, and its __dict__ is not its state.
        return False
    if cls.__module__ == "builtins" and getattr(builtins, cls.__name__, None) is not cls:
        # A class made by exec() without a __name__ says it is a builtin: it is the user's.
        return not _has_slots(cls)
    if cls.__module__ in _NOT_RECORDS or cls.__module__.startswith(("torch.", "autoconv_runtime.")):
        return False
    return not _has_slots(cls)


# NOTE [class tests dynamo calls]
# Dynamo traces the runtime step by step under torch.compile (about 55 us a step), and tests of
# a value's kind run for each value of each staged statement: `_is_plain_object` was 53k of the
# 1.06M steps of fuzz seed 4301's program 0 (1,523 calls), a compile time-out. What depends on
# the class alone is a function of a class giving a bool, which dynamo calls for real (as it
# does a function marked `torch.compiler.assume_constant_result`) and takes as a constant: the
# class of a value dynamo traces is a constant of its trace, guarded where it came in. Such a
# function must read nothing that changes during a trace (a class's own attributes: its flags,
# module, name and slots).
_record_class._dynamo_marked_constant = True


def _has_slots(cls) -> bool:
    """Whether instances of `cls` may keep fields outside their `__dict__`: a class of its MRO
    declares a slot (other than `__dict__` / `__weakref__`), or it is a tuple (a named tuple,
    whose `__slots__` is empty).

    An empty `__slots__` on a base alone (abc.ABC's, typing.Protocol's) adds no field: such a
    subclass without slots of its own keeps all its fields in `__dict__` and is a record like a
    plain class (torchmin's `BFGS` Hessian and trust-region subproblems). Counting it slotted
    refused them; session 26 found that carrying them made torchmin's BFGS silently wrong,
    which was a probe's double update of a tensor field (NOTE [kept tensors put back after a
    probe] in outside_writes.py), not ABC's."""
    if issubclass(cls, tuple):
        return True
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        if any(slot not in ("__dict__", "__weakref__") for slot in slots):
            return True
    return False


# Dynamo calls it for real (a class in, a bool out): traced, `vars(klass)` is a mappingproxy,
# which dynamo gives up on once a dict was changed in the frame ("mapping proxy affected by
# dictionary mutation", naming no user line). POT's `get_backend` fills its module's
# `_BACKENDS` cache, then asks the backend object's `issparse`, whose call looks at the
# object's fields: `ot.sinkhorn` compiled as a script's first call failed there (tester33 s04).
_has_slots._dynamo_marked_constant = True


def _flatten(value, leaves, seen, path="", records=frozenset(), parts=None):
    """The structure of `value` (a nested tuple), appending its tensors to `leaves`.

    A named tuple is a constant, except at the `records` paths (see NOTE [named tuples]).
    `parts`: the dicts, lists and objects flattened before, in this value or the statement's
    other carried values (NOTE [parts two holders share]).
    """
    if isinstance(value, torch.Tensor):
        leaves.append(value)
        return ("tensor",)
    if _staged_list(value) and _FIELD_END.search(path):  # NOTE [a grown list in an object's field]
        leaves.extend((value.buffer, value.count))
        return ("staged list", value)
    if (type_in(value, _NUMBERS) and path in records) or _symbolic(value):
        # NOTE [numbers in objects]; a symbolic number (`m["best"] = float(x[0])` in a first
        # iteration run as Python) is a value of the trace, never a constant of the statement:
        # a body traced apart cannot read it (torch: "zuf0 is not tracked with proxy"), and it
        # is carried as a local `best = float(x[0])` is (tester23 s03)
        leaves.append(value)
        return ("number",)
    if type_in(value, _NUMBERS):
        # (a constant, told before its id is asked: a float dynamo took as a constant guarded
        # on its value, NOTE [floats first read in a staged statement], has an id dynamo cannot
        # compare with the objects' ids, "Comparison on compile-time-only id")
        return ("const", value)
    if id(value) in seen:  # NOTE [objects holding themselves]
        return ("cycle", value, seen.index(id(value)))
    if parts is not None and _shareable(value):  # NOTE [parts two holders share]
        key = id(_user_list(value))
        first = parts.first.get(key)
        if first is not None:
            return ("shared", *first)
        parts.first[key] = (len(parts.first), parts.slot, path)
    if is_carried_mapping(value):
        seen = (*seen, id(value))
        items = tuple((k, _flatten(v, leaves, seen, f"{path}[{_key_text(k)}]", records, parts))
                      for k, v in value.items())
        # (a dict subclass's spec also says how to make it empty again: NOTE [dict subclasses
        # as state])
        return (("dict", items) if type(value) is dict
                else ("dict", items, type(value), _empty_maker(value)))
    if type_in(value, (list, tuple, HeldList)):
        seen = (*seen, id(value))
        return ("tuple" if type(value) is tuple else "list",
                tuple(_flatten(v, leaves, seen, f"{path}[{i}]", records, parts)
                      for i, v in enumerate(value)))
    if _is_namedtuple(value) and path in records:
        seen = (*seen, id(value))
        return ("namedtuple", type(value), tuple(
            _flatten(v, leaves, seen, f"{path}.{k}", records, parts)
            for k, v in zip(type(value)._fields, value)))
    if _is_plain_object(value):
        seen = (*seen, id(value))
        return ("object", type(value),
                tuple((k, _flatten(v, leaves, seen, f"{path}.{k}", records, parts))
                      for k, v in vars(value).items()))
    return ("const", value)


# NOTE [parts two holders share]
# A dict, list or object that the statement's carried values reach twice (`a.p is a.b.p`, a
# part an object and a list both hold, two items of one list, `a.p is b.p` for two carried
# names) is one object in Python: what a body sets through one holder the other sees. Each
# holder's part was flattened, rebuilt for the bodies and written back on its own, so the body
# held two copies, and the write through one was lost (break43b s07: 10 for Python's 11,
# silently, in every mode). Now the first place the part is met (in the order of the slots,
# then of `_flatten`'s walk) carries it; every later place is a "shared" spec naming it by
# its number among the dicts, lists and objects met before ((number, slot, path)), and
# `_rebuild`, `_flatten_as` and `_write_back` number the parts they meet in the same order
# (`_Parts.met`), so the bodies' copies hold one copy there, a body's output must still hold
# one object there (a body that binds one holder's part to another object would make the
# sharing depend on the data: refused), and the part is written back once. A tuple is not
# numbered: it has no field a body sets, and a body's new tuple is rebuilt anyway.


class _Parts:
    """The dicts, lists and objects met so far in the carried values of a statement, in the
    order of NOTE [parts two holders share]: `first` (flattening) maps id -> (number, slot,
    path); `met` (rebuilding, reading a body's output, writing back) lists them by number."""

    def __init__(self):
        self.first, self.slot, self.met = {}, None, []


def _user_list(value):
    """The user's list a HeldList stands for (its items set back there after the statement:
    NOTE [list items updated in place, then rebound] in operators.py), else `value`: a list
    two carried names hold (`d.xs is d.ys`, each name carried as a HeldList of its own) is one
    part (NOTE [parts two holders share])."""
    return getattr(value, "origin", value) if type(value) is HeldList else value


def _shareable(value) -> bool:
    """Whether `value` is numbered among the parts (NOTE [parts two holders share])."""
    return (is_carried_mapping(value) or type_in(value, (list, HeldList))
            or _is_plain_object(value))


# NOTE [dict subclasses as state]
# torch.optim keeps `self.state` in a defaultdict, and code written after it does too
# (`state = defaultdict(dict)`, then `st = state[p]; st["buf"] = g * 2` under a tensor `if`).
# A dict subclass was no dict here (`type(v) is dict`): in an object's field it was a constant
# of the statement, whose body then left a value of its trace in it (autoconv's internal error
# "left a FakeTensor as the graph constant", tester35 s01); as an argument it went through
# torch's pytree, whose rebuilt copy was bound to the parameter, so the caller's OrderedDict
# kept its old tensors, silently (replay and torch.compile). collections' defaultdict,
# OrderedDict and Counter, and a subclass keeping its state in its items only (no instance
# attributes: scipy's OptimizeResult), are carried as a dict is: by their tensors, each body
# given a copy of the same type (a defaultdict with the same factory, so that `state[p]` adds
# its key there as in Python), written back in place after the statement. A key the factory
# adds on one path is a dict gaining a key: specialised at the top level, refused in a body
# ("gains or loses keys"), as for a dict. Another subclass (one with attributes) is refused
# where a body changes it (`refusing_changes_in_uncarried`).


def is_carried_mapping(value) -> bool:
    """Whether `value` is a dict the statement carries by its items (NOTE [dict subclasses as
    state])."""
    cls = type(value)
    if cls is dict:
        return True
    if not isinstance(value, dict):
        return False
    return cls in _MAPPINGS or (not _has_slots(cls) and not getattr(value, "__dict__", None))


_MAPPINGS = (collections.OrderedDict, collections.defaultdict, collections.Counter)


def _empty_maker(value):
    """A function of no argument making an empty mapping of `value`'s type."""
    cls = type(value)
    if isinstance(value, collections.defaultdict):
        return functools.partial(cls, value.default_factory)
    if cls in _MAPPINGS:
        return cls
    return functools.partial(cls.__new__, cls)


def mapping_copy(value, copy_item):
    """A mapping of the type of `value` (one `is_carried_mapping` accepts) holding, for each of
    its items, `copy_item(item)` under the same key."""
    spec = (("dict", ()) if type(value) is dict
            else ("dict", (), type(value), _empty_maker(value)))
    return _mapping_like(spec, [(k, copy_item(v)) for k, v in value.items()])


def _mapping_like(spec, items):
    """A mapping of the type `spec` (kind "dict") describes, holding `items` ((key, value)
    pairs): a dict, or a subclass made empty then filled (its own `__init__` may take other
    arguments; NOTE [dict subclasses as state])."""
    if len(spec) == 2:
        return dict(items)
    cls, make = spec[2], spec[3]
    new = make()
    for k, v in items:
        # (an OrderedDict keeps its order through its own __setitem__; another subclass's
        # may do more than store, as its __init__ may: filled as a dict)
        if cls in _MAPPINGS:
            new[k] = v
        else:
            dict.__setitem__(new, k, v)
    return new


_NUMBERS = (bool, int, float)
_SYMBOLIC = (torch.SymBool, torch.SymInt, torch.SymFloat)  # (`float(t)` of a traced tensor)


def _symbolic(value) -> bool:
    """A number read from a traced tensor (`float(t)`): a SymFloat, SymInt or SymBool, or
    under dynamo, which shows one as a Python float or bool, one whose value it does not know.
    (A method's `self.errs[0] = float(error)` before a tensor `if` whose body swaps the list's
    items, k-diffusion's PID step-size controller: under dynamo the float was taken as a
    constant of the statement, and dynamo lifted its symbol as torch.cond's operand, which
    torch refuses, "can only be of (Tensor, int, SymInt)": tester43 s02. Not an int: dynamo's
    SymInt is an operand torch.cond takes, as staging/torch.py's `_symbolic_input`.)"""
    if isinstance(value, _SYMBOLIC):
        return True
    return (torch.compiler.is_dynamo_compiling() and type_in(value, (float, bool))
            and is_symbolic(value))

# NOTE [numbers in objects]
# A Python number in a carried object, dict or list (`stats = {"pos": 0}`) is a constant of the
# statement, as other fields are, until a body changes it (`stats["pos"] += 1`): the statement is
# then staged again with that number carried, as a local number is (a 0-d tensor in the bodies,
# and in the object after the statement, as a local number is after it). Under torch.compile,
# where a staged statement cannot be staged again, the numbers of a dict or list carried are
# carried from the start. A carried number keeps the dtype it starts with (int64 for an int): a
# body that makes it a float is refused, as for a tensor.


# NOTE [numbers no body changes]
# A carried number that no body of the statement binds anew (the stand-in it was given comes
# back from every body) keeps its own value after the statement, not the 0-d tensor the
# statement gives back for it: Python leaves it as it was. Where it is an item of a list that an
# enclosing statement grows (`metrics["vals"].append(v.item())` beside `if v > 1:
# metrics["n"] += 1` in a staged loop), the enclosing statement's probe saw the list's items
# replaced by tensors and refused the list as "changed other than by append" (tester27 s07).
# Under dynamo without the probe's run (the bodies traced by the operator cannot note what they
# do) each body hands what it gave back to a function dynamo calls for real instead: NOTE
# [numbers no body binds anew under dynamo] in unchanged_leaves.py (every carried number came
# back as the statement's tensor before session 35: tester34b s02).


# NOTE [named tuples]
# A named tuple in an object (torchdiffeq's solver holds its Butcher tableau and its RK state in
# two) is a value that cannot change: it stays a constant of the statement, so that its tensors
# stay what they are outside (a tableau's coefficients remain constants a body can decide
# conditions on, see specialize.py). Where a body replaces one by another named tuple of its
# type (`self.rk_state = _RungeKuttaState(...)`), the statement is staged again with that one
# carried by its tensors, and rebuilt after.


class GainedAttributes(StagingError):
    """A body gave a carried object attributes it did not have before the statement (or took
    some away): a loop of known length may run as Python instead (NOTE [objects that gain
    attributes in a loop] in runtime/operators.py)."""


class _ReplacedRecord(StagingError):
    """A body replaced the named tuple at `path` of the state's slot `slot`. `hops`: how many
    other carries' body wrappers it has left unowned (NOTE [replaced records of an enclosing
    carry])."""

    def __init__(self, slot, path, statement, problem, fix):
        super().__init__(statement, problem, fix)
        self.slot, self.path = slot, path
        self.hops = 0


# NOTE [replaced records of an enclosing carry]
# A `carry` whose `stage` carries more stages through another `carry`: `stage_while` meets the
# step-size controller `pid` (whose `propose_step` sets `self.h`) changed in the loop body,
# moves it into the state (`with_input_as_state`), and carries it in a second `carry`, whose
# wrappers wrap the first one's. The first one's wrapper, finding `info['steps']` replaced,
# raises its _ReplacedRecord inside the second one's attempt, whose `except` took it for its
# own: its `slot` numbers the first one's state, so the second carried the wrong slot, met the
# same record again and refused it as "carried already, yet replaced" (k-diffusion's adaptive
# DPM-Solver, `info['steps'] += 1` in `dpm_solver_adaptive`'s loop: kdiff43; before that guard
# it staged again one level deeper each time, until the stack overflowed). So a record counts
# the wrappers of other carries it leaves (`hops`), and each carry's `except` takes only one
# with none left, giving the others back, one fewer, to the carry enclosing it: wrappers nest
# in the order of the carries that made them, so the count names the owner. The count is kept
# with a restaging verdict (`restaging._failure`), taken where the same structure raises it.


def _kept_as_it_is(name: str, statement: str) -> str:
    return (f"Keep `{name}` as it is in the {statement} (or hold it in a tensor), or compute "
            "it outside")


def _replaced_record(slot, path, names, statement, where) -> _ReplacedRecord:
    """The _ReplacedRecord for the number or named tuple at `path` of the carried slot `slot`,
    which a body (`where`) replaced."""
    return _ReplacedRecord(
        slot, path, statement,
        f"`{names[slot]}{path}` is replaced {where}; only the tensors in an object can change "
        "under a tensor condition", _kept_as_it_is(names[slot] + path, statement))


def _first_replaced(slots, given):
    """(slot, path) of the first number or named tuple that the copies `given` (by slot) of the
    carried objects of `slots` hold in place of their constant, or None (NOTE [attempts decided
    before a nested statement] in restaging.py)."""
    for slot, (spec, _) in slots.items():
        path = _replaced_constant(spec, given[slot])
        if path is not None:
            return slot, path
    return None


def _replaced_constant(spec, value, path=""):
    """The path of the first constant of `spec` that `value` holds replaced as `_flatten_as`
    finds it (_REPLACED), or None; what else differs is for `_flatten_as` to find."""
    kind = spec[0]
    if kind == "const":
        return (path if not _same_constant(spec[1], value)
                and _replaces_constant(spec[1], value) else None)
    if kind == "namedtuple":
        if type(value) is not spec[1]:
            return None
        items = zip(spec[1]._fields, spec[2], value)
        return next((found for name, field, item in items
                     for found in [_replaced_constant(field, item, f"{path}.{name}")]
                     if found is not None), None)
    if kind == "object":
        if type(value) is not spec[1]:
            return None
        fields = vars(value)
        return next((found for k, field in spec[2] if k in fields
                     for found in [_replaced_constant(field, fields[k], f"{path}.{k}")]
                     if found is not None), None)
    if kind == "dict":
        if not isinstance(value, dict):
            return None
        return next((found for k, item in spec[1] if k in value
                     for found in [_replaced_constant(item, value[k], f"{path}[{k!r}]")]
                     if found is not None), None)
    if kind in ("list", "tuple") and type(value).__name__ == kind:
        return next((found for i, (item, v) in enumerate(zip(spec[1], value))
                     for found in [_replaced_constant(item, v, f"{path}[{i}]")]
                     if found is not None), None)
    return None


def _held_constants(spec, value, path, visit) -> list:
    """The lists `visit(held, path)` gives for each constant of the statement that `value` (of
    structure `spec`) holds, through its objects' fields, dicts' items, lists and tuples."""
    kind = spec[0]
    if kind == "const":
        return visit(spec[1], path)
    if kind == "object" and type(value) is spec[1]:
        fields = vars(value)
        return [found for k, field in spec[2] if k in fields
                for found in _held_constants(field, fields[k], f"{path}.{k}", visit)]
    if kind == "dict" and isinstance(value, dict):
        return [found for k, item in spec[1] if k in value
                for found in _held_constants(item, value[k], f"{path}[{k!r}]", visit)]
    if kind in ("list", "tuple") and type(value).__name__ == kind:
        return [found for i, (item, v) in enumerate(zip(spec[1], value))
                for found in _held_constants(item, v, f"{path}[{i}]", visit)]
    return []


def _constant_records(spec, value, path="") -> list:
    """[(path, its `_tensors_of`)] of the named tuples holding tensors that `value` (of
    structure `spec`) holds as constants of the statement (NOTE [dicts and named tuples kept
    by identity])."""
    return _held_constants(spec, value, path, lambda held, at: (
        [(at, _tensors_of(held))] if _is_namedtuple(held)
        and any(isinstance(v, torch.Tensor) for v in held) else []))


def _updated_record(records, slot, names, statement, where):
    """The _ReplacedRecord for the first named tuple of `records` (`_constant_records`, taken
    before a body ran) whose tensors the body updated in place, or None."""
    for path, before in records:
        if not _same_tensors(_tensors_of_again(before), before, versions=True):
            return _replaced_record(slot, path, names, statement, where)
    return None


# NOTE [containers in constant tuples]
# A named tuple (or tuple) in a carried object stays a constant of the statement (NOTE [named
# tuples]), and the copies the bodies are given hold that very tuple, so a list it holds is the
# caller's list: `s.cfg.items.append(s.x.sum())` in a branch grew it while tracing, and the
# graph kept the traced path's length for every input (`len(cfg.items)` after the `if`: [40,
# 6] for Python's [20, 3] on the other path, brk55c, replay and torch.export). A list a plain
# object holds is carried by the copy, and a change of its length refused ("changes its
# length"; the `if` specialised on its condition). So the lists, dicts and plain objects' field
# tables such a tuple reaches are read before each body runs; one a body changed is put back
# and the statement refused the same way. (Under dynamo, which traces the bodies, dynamo
# refuses the write itself: "Unsafe side effect".)
# A tensor those containers hold is a constant of the graph too, not carried: updated in place
# by a body (`s.cfg[0][0].add_(1)` with `cfg = ([t], 2.0)`), the trace updated the caller's
# tensor and the other path and later calls saw it so ([2, -2, 6] for Python's [2, -1, 4],
# reach56). So its version is read before each body runs as well; one a body updated is put
# back (from a copy taken then) and the statement refused the same way. A named tuple's own
# tensors are carried instead (NOTE [dicts and named tuples kept by identity]).
# So are the tensors such a tuple holds itself, or a tuple inside it (or inside its lists,
# dicts and objects) holds, at any depth: `s.cfg[0][0].add_(1)` with `cfg = ((t,), 2.0)`, the
# statement's input `s` never carried, updated the caller's `t` while tracing ([2, -2, 6] for
# Python's [2, -1, 4], tup57); they have no container to put back (`None`), only tensors.


def _constant_containers(spec, value, path="") -> list:
    """[(path, container, a copy of its contents)] of the lists, dicts and plain objects'
    field tables that the tuples `value` (of structure `spec`) holds as constants of the
    statement reach (NOTE [containers in constant tuples])."""
    return _held_constants(spec, value, path, _tuple_containers)


def _tuple_containers(held, path, own=True) -> list:
    """`_constant_containers`' entries for one constant `held` at `path`: a tuple's. Without
    `own`, not the tensors of `held` and of the tuples in it (a statement's input moved into
    its state where a body updates them: NOTE [tensors of a tuple updated in place])."""
    if not isinstance(held, tuple):
        return []
    from . import attempt_effects  # (it imports this module)

    found = []
    carried = set() if own else {id(t) for t in _tuples_of(held)}
    tensors = _tensors_held(list(held)) if own else ()
    if tensors:  # (its own tensors: NOTE [containers in constant tuples])
        found.append((path, None, None, tensors))
    for i, item in enumerate(held):
        at = f"{path}.{held._fields[i]}" if _is_namedtuple(held) else f"{path}[{i}]"
        contents = []
        attempt_effects._gather(item, contents, set())
        found += [(at, container, old, _tensors_held(old)) for container, old in contents]
        found += [(at, None, None, inner_own) for inner in _tuples_in(item, contents)
                  if id(inner) not in carried and (inner_own := _tensors_held(list(inner)))]
    return found


def _tuples_of(value):
    """`value` and the tuples it holds through tuples (those `tuple_tensors` reads)."""
    yield value
    for item in value:
        if type(item) is tuple or _is_namedtuple(item):
            yield from _tuples_of(item)


def _tuples_in(item, contents) -> list:
    """The tuples `item` is or holds directly, or the containers `contents` (`_gather`'s, of
    `item`) hold directly: those whose own tensors `_tuple_containers` reads."""
    values = [item, *(v for _, old in contents
                      for v in (old if isinstance(old, list) else old.values()))]
    found, seen = [], set()
    while values:
        value = values.pop()
        if isinstance(value, tuple) and id(value) not in seen:
            seen.add(id(value))
            found.append(value)
            values.extend(value)
    return found


def tuple_tensors_of_inputs(inputs, names) -> list:
    """`_constant_containers`' entries for the tuples that a statement's `inputs` (named
    `names`) reach through their objects, dicts and lists: an input is never carried, so its
    tuples are constants of the graph (NOTE [containers in constant tuples])."""
    found, seen = [], set()

    def walk(value, path, top=False):
        if id(value) in seen or isinstance(value, torch.Tensor):
            return
        seen.add(id(value))
        if isinstance(value, tuple):
            found.extend(_tuple_containers(value, path, own=not top))
        elif is_plain_object(value):
            for k, v in list(vars(value).items()):
                walk(v, f"{path}.{k}")
        elif isinstance(value, dict):
            for k, v in list(value.items()):
                walk(v, f"{path}[{k!r}]")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    for value, name in zip(inputs, names):
        walk(value, name or "an input", top=True)
    return found


# NOTE [containers in tuple inputs under dynamo]
# Under dynamo no version counter can be read, so the check above never runs there, and a
# tuple the statement's input (`def f(x, cfg)`, `cfg = ([t], 2.0)`, `if x.sum() > 0:
# cfg[0][0].add_(1)`) is traced as a constant whose list's tensor torch's cond never sees
# written: the update was lost, [1, -1, 2] for Python's [2, -1, 4] (tup57). The converter
# marks such an input `updated=`; under dynamo one that is a tuple reaching, through tuples, a
# list, dict or plain object holding a tensor is refused as replay and torch.export refuse it.


def refuse_updated_tuple_containers(inputs, updated, statement: str) -> None:
    """Under dynamo, refuse an input among `updated` ((position, name) pairs) that is a tuple
    holding a container of tensors (NOTE [containers in tuple inputs under dynamo])."""
    for i, name in updated or ():
        path = _container_of_tensors(inputs[i], name) if i < len(inputs) else None
        if path is not None:
            raise StagingError(
                statement,
                f"a tensor in `{path}` may be updated in place under a tensor condition, held "
                "by a tuple the statement keeps as it is (a constant of the graph), so "
                "torch.compile's graph would not keep the update",
                f"Update the tensor outside the {statement}, or hold `{path}` in a plain "
                "object rather than a tuple")


def _container_of_tensors(value, path):
    """The path of the first list, dict or plain object the tuple `value` holds through
    tuples that holds a tensor, or None."""
    if not isinstance(value, tuple):
        return None
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        if isinstance(item, tuple):
            found = _container_of_tensors(item, at)
            if found is not None:
                return found
        elif type_in(item, (list, dict)) or is_plain_object(item):
            if any(isinstance(v, torch.Tensor) for v in (
                    item.values() if type_in(item, (dict,)) else item
                    if type_in(item, (list,)) else vars(item).values())):
                return at
    return None


def refuse_tensors_updated_in_tuples(held, statement: str) -> None:
    """Put back the tensors of `held` (`tuple_tensors_of_inputs`, taken before the bodies were
    traced) that a body updated in place, and refuse the statement (NOTE [containers in
    constant tuples])."""
    updated = [path for path, _, _, tensors in held if _updated_in_place(tensors)]
    if not updated:
        return
    for _, _, _, tensors in held:
        _restore_tensors(tensors)
    raise StagingError(
        statement,
        f"a tensor in `{updated[0]}` is updated in place under a tensor condition, held by a "
        "tuple the statement keeps as it is (a constant of the graph), so the update would "
        "happen once, while tracing",
        f"Update the tensor outside the {statement}, or hold `{updated[0]}` in a plain object "
        "rather than a tuple")


def _restore_tensors(tensors) -> None:
    """Copies back each tensor of `tensors` (`_tensors_held`'s) a body updated in place."""
    with torch.no_grad():
        for tensor, version, copy in tensors:
            if tensor_reads.version_of(tensor) != version:
                tensor.copy_(copy)


def _tensors_held(contents) -> tuple:
    """(tensor, its version, a copy) for each tensor a container's `contents` hold directly."""
    values = contents if isinstance(contents, list) else contents.values()
    with torch.no_grad():
        return tuple((v, tensor_reads.version_of(v), v.detach().clone()) for v in values
                     if isinstance(v, torch.Tensor))


def _refuse_changed_containers(held, name: str, statement: str, where: str) -> None:
    """Put back the containers of `held` (`_constant_containers`, taken before a body ran) and
    refuse the statement where the body changed one (NOTE [containers in constant tuples])."""
    from . import attempt_effects  # (it imports this module)

    changed = [path for path, container, old, tensors in held
               if (container is not None and _changed(container, old))
               or _updated_in_place(tensors)]
    if not changed:
        return
    for _, container, old, tensors in held:
        if container is not None:  # (a tuple's own tensors: NOTE [containers in constant tuples])
            attempt_effects._put_back(container, old)
        _restore_tensors(tensors)
    raise StagingError(
        statement,
        f"`{name}{changed[0]}` is changed {where}, held by a tuple the statement keeps as it "
        "is (a constant of the graph); only the tensors in an object can change under a "
        "tensor condition",
        f"Change `{name}{changed[0]}` outside the {statement}, or hold it in a plain object "
        "rather than a tuple")


def _updated_in_place(tensors) -> bool:
    return any(tensor_reads.version_of(t) != version for t, version, _ in tensors)


def _changed(container, old) -> bool:
    if isinstance(container, list):
        return len(container) != len(old) or any(a is not b for a, b in zip(container, old))
    return len(container) != len(old) or any(k not in old or container[k] is not old[k]
                                             for k in container)


def _tensors_of_again(taken) -> tuple:
    return tuple((t, tensor_reads.version_of(t)) for t, _ in taken)


def _replaces_constant(old, value) -> bool:
    """Whether `value` in place of the constant `old` is carried from then on (NOTE [named
    tuples], NOTE [numbers in objects]) rather than refused."""
    return ((_is_namedtuple(old) and type(value) is type(old))
            or (type_in(old, _NUMBERS) and isinstance(value, (torch.Tensor, *_NUMBERS,
                                                              *_SYMBOLIC))))


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def flatten(value, records=frozenset(), parts=None):
    """(structure, tensors) of `value`; the named tuples at the paths `records` are carried.
    `parts`: NOTE [parts two holders share]."""
    leaves = []
    return _flatten(value, leaves, (), "", records, parts), leaves


class CarriedName(str):
    """A carried object's name in a statement's names, with the paths of its tensors and
    numbers in the order the state carries them (`leaves`: '.t', '.h'), so that a mismatch
    names the field (`s.h`) and its dtypes, not "a Python tuple" (tester t15 repro 3).
    Equal to the name as a str everywhere else."""

    leaves: tuple = ()


def _named(name, spec):
    if torch.compiler.is_dynamo_compiling():
        return name  # (dynamo's own checks describe the kinds: dynamo_kinds.py)
    named = CarriedName(name)
    named.leaves = tuple(_leaf_paths(spec, ""))
    return named


def _leaf_paths(spec, path):
    """The paths of `spec`'s tensors and numbers, as `_flatten` appends them."""
    kind = spec[0]
    if kind in ("tensor", "number"):
        yield path
    elif kind == "staged list":
        yield path
        yield f"len({path})"
    elif kind == "dict":
        for k, v in spec[1]:
            yield from _leaf_paths(v, f"{path}[{_key_text(k)}]")
    elif kind in ("list", "tuple"):
        for i, v in enumerate(spec[1]):
            yield from _leaf_paths(v, f"{path}[{i}]")
    elif kind == "namedtuple":
        for k, v in zip(spec[1]._fields, spec[2]):
            yield from _leaf_paths(v, f"{path}.{k}")
    elif kind == "object":
        for k, v in spec[2]:
            yield from _leaf_paths(v, f"{path}.{k}")


# NOTE [tensor keys of carried dicts]
# torch.optim keeps a parameter's state under the parameter itself (`self.state[p]`, p read
# from `self.param_groups`), and optimizers written after it do too. A staged statement
# carrying the optimizer gives each body a copy of it whose tensors are the body's own, `p`
# among them, while the state dict's key stayed the caller's tensor: `state[p]` in a staged
# loop's body was refused as a lookup by a tensor "not one of its keys" even though it is in
# Python (tester37 s01: an early-stopping loop stepping a momentum optimizer, its state filled
# before the loop). A carried dict's key that is a carried tensor is that tensor's stand-in in
# the body's copy (`_rebuild`, `_flatten_as`), as Python's key is the same object as the list's
# item; the dict written back after the statement keeps the caller's keys. A loop's body that
# replaces such a tensor (`p = p - lr * g` stored back in the list) leaves Python's key the old
# object, which later trips do not find: refused at the loop (`_refuse_replaced_keys`), the
# graph's body running the same lookups on every trip.

def _key_text(key) -> str:
    """`key` as a path shows it; a tensor key by its kind only (dynamo cannot take a traced
    tensor's repr: under torch.compile a carried dict keyed by tensors stopped with dynamo's
    "repr() on tensor")."""
    return "<tensor>" if isinstance(key, torch.Tensor) else repr(key)


def _body_key(key, keys):
    """The body's stand-in for the dict key `key` among the (before, body's) pairs `keys`, or
    `key` itself (NOTE [tensor keys of carried dicts])."""
    if isinstance(key, torch.Tensor):
        for before, body in keys:
            if before is key:
                return body
    return key


def _keys_given_before(name: str, statement: str, gained=()) -> str:
    """The fix of a refusal of the dict `name` gaining the items `gained` ((key, value) pairs;
    none where it loses keys) in a body of `statement`."""
    if gained and all(type(k) is str and (type_in(v, (int, float, bool)) or (
            isinstance(v, torch.Tensor) and v.dim() == 0)) for k, v in gained):
        # (a count kept under a name: `cnt["step"] += 1`, `cnt.update(["step"])` of a Counter,
        # `stats["n_steps"] = ...`: tester38 s02. The optimizer's example below read as if the
        # keys had to be parameters)
        keys = ", ".join(repr(k) for k, _ in gained)
        return (f"Give `{name}` the key{'s' if len(gained) > 1 else ''} {keys} before the "
                f"{statement}, where it is made (`{name}[{gained[0][0]!r}] = 0`, or the value "
                "it starts with; a Counter's or defaultdict's too), so that the body only reads "
                "and updates it")
    if gained and all(type(k) is str and isinstance(v, torch.Tensor) for k, v in gained):
        # (torchode's `stats["n_steps"] = stats_n_steps` before its loop's `return`)
        keys = ", ".join(repr(k) for k, _ in gained)
        return (f"Give `{name}` the key{'s' if len(gained) > 1 else ''} {keys} before the "
                f"{statement}, where it is made, with a value of the kind the body sets (a "
                f"tensor of the same shape and dtype: `{name}[{gained[0][0]!r}] = "
                "torch.zeros(...)`), so that the body only updates it")
    if gained and all(type(k) is str and type(v) is list for k, v in gained):
        # (a list a loop body starts under a tensor `if`, `out.setdefault("hits", []).append(t)`:
        # which trips set the key is known only when the graph runs. The optimizer's example
        # below said nothing of lists)
        key = gained[0][0]
        return (f"Give `{name}` the key {key!r} with an empty list where `{name}` is made "
                f"(`{name}[{key!r}] = []`, before any loop), so that the body only appends to "
                f"it and `len({name}[{key!r}])` counts its items, or grow a list of its own "
                "(`found = []` before the loop, `found.append(...)` in the branch) and read it "
                "after the loop")
    if gained:
        # (`self.state.setdefault(id(p), {...})` in a step: tester t15 repro 6)
        return (f"Give `{name}` all its keys before the {statement} (fill it when it is made: "
                "`{id(p): {...} for p in params}`), so that the body only reads and updates "
                "them")
    return (f"Keep every key of `{name}` through the {statement} (a body that deletes or pops "
            "one: set a value meaning \"none\" instead), so that the body only reads and updates "
            "them")


def _same_keys(actual, expected) -> bool:
    """Whether two lists of dict keys are the same keys in the same order; tensor keys by
    identity (Python's dict hashes a tensor by it; `==` of two tensors is a tensor)."""
    return len(actual) == len(expected) and all(
        a is e or (not isinstance(a, torch.Tensor) and not isinstance(e, torch.Tensor)
                   and a == e) for a, e in zip(actual, expected))


def _tensor_keys(spec) -> list:
    """The tensor keys of the dicts in `spec`."""
    kind = spec[0]
    if kind == "dict":
        return [k for k, _ in spec[1] if isinstance(k, torch.Tensor)] + [
            k for _, v in spec[1] for k in _tensor_keys(v)]
    if kind in ("list", "tuple"):
        return [k for v in spec[1] for k in _tensor_keys(v)]
    if kind in ("namedtuple", "object"):
        return [k for v in spec[2] for k in _tensor_keys(v[1] if kind == "object" else v)]
    return []


def _carried_keys(slots, given_leaves, state, args, inputs, given_inputs) -> tuple:
    """(before, body's, slot, leaf number) of the tensors that key a carried dict and that the
    statement carries: in an object (leaf number) or as a variable (None); or that it takes as
    an input, alone or in a list or tuple (slot None). `args`: the body's arguments before its
    objects are rebuilt; `given_inputs`: the body's inputs."""
    wanted = [k for spec, _ in slots.values() for k in _tensor_keys(spec)]
    if not wanted:
        return ()
    candidates = [(before, body, slot, number)
                  for slot, (_, held) in slots.items()
                  for number, (before, body) in enumerate(zip(held, given_leaves[slot]))]
    candidates += [(value, args[i], i, None) for i, value in enumerate(state)
                   if i not in slots and isinstance(value, torch.Tensor)]
    for before, body in zip(inputs, given_inputs):
        if type_in(before, (list, tuple, HeldList)) and type_in(body, (list, tuple, HeldList)) \
                and len(before) == len(body):
            candidates += [(b, g, None, None) for b, g in zip(before, body)
                           if isinstance(b, torch.Tensor)]
        elif isinstance(before, torch.Tensor):
            candidates.append((before, body, None, None))
    found = []
    for key in wanted:
        pair = next((c for c in candidates if c[0] is key), None)
        if pair is not None and not any(f[0] is key for f in found):
            found.append(pair)
    return tuple(found)


def _refuse_replaced_keys(keys, out, given_leaves, names, statement, where) -> None:
    """A StagingError where a loop's body replaced a carried tensor that keys a carried dict
    (NOTE [tensor keys of carried dicts]); `out`: the body's state outputs, objects flattened."""
    for _, body, slot, number in keys:
        if slot is None:  # (an input: no body gives it back)
            continue
        after = out[slot] if number is None else (out[slot] or ())[number]
        if after is not body:
            paths = getattr(names[slot], "leaves", ())
            name = str(names[slot]) + (paths[number] if number is not None
                                       and number < len(paths) else "")
            raise StagingError(
                statement,
                f"`{name}`, a tensor that is also a key of a dict the loop carries (an "
                f"optimizer's `state[p]`), is replaced {where}, so in Python the dict's key stays the old "
                "tensor, which later trips no longer find, while the graph's body makes the "
                "same lookups on every trip",
                "Update the tensor in place (`p.sub_(lr * g)` under torch.no_grad()), or key "
                "the dict by a Python value (the index of `p` in its list)")



def _rebuild(spec, leaves, keys=(), chain=(), parts=None):
    """A new object of the structure `spec` holding the tensors `leaves` (an iterator); a
    dict's tensor keys found in `keys` ((before, body's) pairs) are the body's (NOTE [tensor
    keys of carried dicts]). `chain`: the new objects (None for another container) around the
    part being built, outermost first (NOTE [objects holding themselves]). `parts`: the
    statement's `_Parts`, whose `met` the dicts, lists and objects built are added to (NOTE
    [parts two holders share])."""
    kind = spec[0]
    if kind in ("tensor", "number"):
        return next(leaves)
    if kind == "staged list":
        like = spec[1]
        return StagedList(next(leaves), next(leaves), like.reserved, like.name, like.numbers)
    if kind == "const":
        return spec[1]
    if kind == "cycle":
        return spec[1] if chain[spec[2]] is None else chain[spec[2]]
    if kind == "shared":
        return parts.met[spec[1]]
    parts = _Parts() if parts is None else parts
    inner = (*chain, None)
    if kind in ("dict", "list"):
        number = len(parts.met)
        parts.met.append(None)  # (numbered before its items, as `_flatten` numbers it)
        if kind == "dict":
            built = _mapping_like(spec, [(_body_key(k, keys), _rebuild(v, leaves, keys, inner,
                                                                        parts))
                                          for k, v in spec[1]])
        else:
            built = [_rebuild(v, leaves, keys, inner, parts) for v in spec[1]]
        parts.met[number] = built
        return built
    if kind == "tuple":
        return tuple(_rebuild(v, leaves, keys, inner, parts) for v in spec[1])
    if kind == "namedtuple":
        return spec[1](*(_rebuild(v, leaves, keys, inner, parts) for v in spec[2]))
    cls = spec[1]
    # types.SimpleNamespace is defined in C, and object.__new__ refuses to make one.
    new = cls.__new__(cls) if cls is types.SimpleNamespace else object.__new__(cls)
    parts.met.append(new)
    for k, v in spec[2]:
        object.__setattr__(new, k, _rebuild(v, leaves, keys, (*chain, new), parts))
    return new


# NOTE [objects holding themselves]
# An object reached again inside itself (`b.me = b`, a tree node's `parent` of its child) is
# carried once. It was a constant of the statement there, the caller's object, so the body's
# copy held the caller's object in its field: a holder reaching the object through it
# (`partial(lambda bb, x: _bump(bb.me, x), b)`) counted into the caller's object while
# tracing, which the copy the branch read never saw (break42 s07: 2 for Python's 3, and the
# next call's other branch counted again, silently). The spec says which enclosing container
# it is ("cycle"), and the copy's field is the copy around it (an enclosing list or dict,
# built after its items, still gives the caller's); a body's output holding either is the
# same structure.


# NOTE [frozen objects]
# A frozen dataclass's fields change only through `object.__setattr__` (its own
# `__post_init__` swapping bounds does that), and a new object a body binds
# (`s = dataclasses.replace(s, lr=...)`) is rebuilt. Rebuilding every changed one (as before
# brk50) dropped an `object.__setattr__` under a tensor `if` of an object the statement only
# reads (an input, not its state): the rebuilt object went nowhere and the caller's kept the
# old field, silently. In replay and torch.export a body's rebinding is seen (`built`), so an
# object not bound anew is written back in place, by `object.__setattr__` (its `__setattr__`
# raises). Under torch.compile the bodies' rebinding is not seen, and the write-back raised
# dataclasses' FrozenInstanceError inside dynamo (tester24 s01): there it is rebuilt still,
# and an input of the statement (a name no body binds) rebuilt has its fields written back
# into the caller's object (`_written_into`).


def _frozen(spec) -> bool:
    """Whether `spec` is a frozen dataclass's (NOTE [frozen objects])."""
    return (spec[0] == "object" and dataclasses.is_dataclass(spec[1])
            and spec[1].__dataclass_params__.frozen)


def _write_back(target, spec, leaves, in_place=frozenset(), kept=frozenset(), parts=None):
    """Put the tensors `leaves` (an iterator of (leaf number, tensor)) into `target` (of
    structure `spec`) in place: a tensor the bodies updated in place (its leaf number in
    `in_place`) by `copy_` into the tensor `target` holds, so that every other reference to it
    sees the update, as in Python; one no body changed (in `kept`) left as it is; other values
    replaced (a named tuple inside it, which cannot change, by a new one). `parts`: the
    statement's `_Parts` (NOTE [parts two holders share])."""
    kind = spec[0]
    parts = _Parts() if parts is None else parts
    if kind in ("dict", "list", "object"):
        parts.met.append(_user_list(target))
    if kind == "dict":
        for k, v in spec[1]:
            _write_item(target, k, v, leaves, in_place, kept, target.__setitem__,
                        target.__getitem__, parts)
    elif kind in ("list", "tuple", "namedtuple"):
        # (a named tuple kept by identity: NOTE [dicts and named tuples kept by identity]; a
        # tuple's tensors are updated in place only, `_write_item` refuses any other write)
        store = target.__setitem__ if kind == "list" else None
        for i, v in enumerate(spec[2 if kind == "namedtuple" else 1]):
            if v[0] in _REPLACED_KINDS and kind != "list" and v[0] != "tensor":
                raise AssertionError("a tuple's items cannot be replaced in place")
            _write_item(target, i, v, leaves, in_place, kept, store, target.__getitem__,
                        parts)
    elif kind == "object":
        # (a frozen dataclass a body changed by `object.__setattr__`: NOTE [frozen objects])
        store = object.__setattr__ if _frozen(spec) else setattr
        for k, v in spec[2]:
            _write_item(target, k, v, leaves, in_place, kept,
                        functools.partial(store, target), functools.partial(getattr, target),
                        parts)


def _write_item(target, key, spec, leaves, in_place, kept, store, load, parts):
    if spec[0] == "tensor":
        number, value = next(leaves)
        if number in in_place:
            load(key).copy_(value)
        elif number in kept:
            pass
        elif isinstance(target, tuple):
            raise AssertionError("a tuple's items cannot be replaced in place")
        else:
            store(key, value)
    elif spec[0] == "number":
        number, value = next(leaves)
        if number not in kept:  # NOTE [numbers no body changes]
            store(key, value)
    elif spec[0] == "shared":  # (written back where it was met first)
        if load(key) is not parts.met[spec[1]]:  # (that holder's part was built anew)
            store(key, parts.met[spec[1]])
    elif spec[0] in _REPLACED_KINDS:
        store(key, _rebuild(spec, (value for _, value in leaves), parts=parts))
    else:
        _write_back(load(key), spec, leaves, in_place, kept, parts)


# The parts of a container written back by replacing them: values, and tuples (a tuple holding
# a changed tensor is a new tuple)
_REPLACED_KINDS = ("tensor", "number", "namedtuple", "tuple", "staged list")


def _same_constant(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or not isinstance(a, (int, float, complex, str, bytes)):
        return False
    # (a traced number, `float(t)`, under dynamo: no guard on its value, which it refuses;
    # one not known equal is taken as changed, and carried)
    same = a == b
    # (numpy's scalars are Python's numbers here, np.float64 a float, and compare to numpy's
    # bool, which statically_known_true refused with an AssertionError: break44c s02)
    return statically_known_true(bool(same) if isinstance(same, numpy.bool_) else same)


def _flatten_as(spec, value, leaves, path="", replaced=None, key_pairs=(), chain=(),
                parts=None):
    """Append the tensors of `value`, which must have the structure `spec`, to `leaves`.

    Returns None, or (path, what differs). Fields are read by the names `spec` holds: under
    dynamo, `vars()` of an object built in a traced body is empty. With a list `replaced`,
    the paths of the named tuples and numbers replaced (_REPLACED) are appended there, each
    taken as it is, rather than the first returned. A dict's tensor keys found in `key_pairs`
    are the body's, as `_rebuild` made them. `chain`: the objects around `value`. `parts`:
    the statement's `_Parts`, met in the body's output so far (NOTE [parts two holders
    share]).
    """
    kind = spec[0]
    if kind == "tensor":  # (the commonest leaf first: steps dynamo takes per leaf)
        if not isinstance(value, torch.Tensor) and (type_in(value, _NUMBERS)
                                                    or isinstance(value, _SYMBOLIC)):
            # A number the object held before an earlier statement, which carried it and left
            # a 0-d tensor there (NOTE [numbers in objects]), set again (tester t13 repro 20:
            # `return {"pos": (i, j)}` in nested loops): the number as a tensor, as then.
            # (a stand-in for the number it is: unmarked, a method's `self.best = float(loss)`
            # in a staged loop read as a tensor on that path, and was refused: tester21b s05)
            like = next((t for t in leaves if isinstance(t, torch.Tensor)), None)
            value = mark(to_tensor(value, like) if _symbolic(value) else
                         torch.tensor(value, device=like.device if like is not None else None))
        if not isinstance(value, torch.Tensor):
            return path, "stops being a tensor"
        leaves.append(value)
        return None
    if kind == "staged list":  # NOTE [a grown list in an object's field]
        like = spec[1]
        if type(value) is list:
            value = filled(value, like, "statement")
        if not isinstance(value, StagedList):
            return path, "changes its type"
        if value.capacity != like.capacity or value.buffer.shape[1:] != like.buffer.shape[1:]:
            return path, "changes its length"
        leaves.extend((value.buffer, value.count))
        return None
    if kind == "cycle":  # NOTE [objects holding themselves]
        return None if identical(value, spec[1]) or any(
            identical(value, above) for above in chain) else (path, "is changed")
    parts = _Parts() if parts is None else parts
    if kind == "shared":  # NOTE [parts two holders share]
        return None if identical(value, parts.met[spec[1]]) else (path, _Unshared(*spec[2:]))
    if kind in ("dict", "list", "object"):
        parts.met.append(value)
    if kind == "number":
        if _symbolic(value):  # (`float(t)` of a traced tensor: carried as a tensor)
            # (the number's stand-in, as a local's `best = float(t)` is: the tensor made of it
            # unmarked read as a body making the field a tensor, and `s.best = float(t)` under
            # a tensor `if` was refused as a number on one path and a tensor on another:
            # tester21b s05)
            value = mark(to_tensor(value, next(
                (t for t in leaves if isinstance(t, torch.Tensor)), None)))
        if not isinstance(value, (torch.Tensor, *_NUMBERS)):
            return path, "stops being a number"
        leaves.append(value)
        return None
    if kind == "const":
        if _same_constant(spec[1], value):
            return None
        # (a number: carried from now on, NOTE [numbers in objects])
        if _replaces_constant(spec[1], value):
            if replaced is None:
                return path, _REPLACED
            replaced.append(path)
            return None
        return path, "is changed"
    if kind == "namedtuple":
        if type(value) is not spec[1]:
            return path, "changes its type"
        for name, field, item in zip(spec[1]._fields, spec[2], value):
            found = _flatten_as(field, item, leaves, f"{path}.{name}", replaced, key_pairs,
                                chain, parts)
            if found:
                return found
        return None
    if kind == "object":
        if type(value) is not spec[1]:
            return path, "changes its type"
        keys = [k for k, _ in spec[2]]
        # (not under dynamo, where `vars()` of an object built in the traced function is
        # empty: there the bodies' code is read instead, `_refuse_new_attributes`; under
        # torch.export the bodies run as Python, and skipping it dropped the attribute: the
        # program raised AttributeError for `s.ts` set in both branches, tester xitorch repro)
        if not torch.compiler.is_dynamo_compiling() and list(vars(value)) != keys:
            return path, "gains or loses attributes"
        for k, field in spec[2]:
            found = _flatten_as(field, getattr(value, k), leaves, f"{path}.{k}", replaced,
                                key_pairs, (*chain, value), parts)
            if found:
                return found
        return None
    if kind == "dict":
        if type(value) is not (spec[2] if len(spec) > 2 else dict):
            return path, "changes its type"
        expected = [_body_key(k, key_pairs) for k, _ in spec[1]]
        if not _same_keys(list(value), expected):
            gained = [(k, v) for k, v in value.items()
                      if not any(_same_keys([k], [e]) for e in expected)]
            return path, "gains or loses keys", tuple(gained)
        for (k, item), key in zip(spec[1], expected):
            found = _flatten_as(item, value[key], leaves, f"{path}[{_key_text(k)}]", replaced,
                                key_pairs, chain, parts)
            if found:
                return found
        return None
    if type(value).__name__ != kind:
        return path, "changes its type"
    if len(value) != len(spec[1]):
        return path, "changes its length"
    for i, item in enumerate(spec[1]):
        found = _flatten_as(item, value[i], leaves, f"{path}[{i}]", replaced, key_pairs, chain,
                            parts)
        if found:
            return found
    return None


# NOTE [parts a body makes shared]
# `h.obj = a` in a branch where `a` is an object the branch makes (or `s.p = t.p`, `d["k"] =
# a`): each carried value is flattened to its tensors and rebuilt apart after the statement,
# so the part the body's output holds in two places became two objects there (and the field of
# an object bound before the statement kept its old object, its tensors written back into it):
# a field set after the `if` through one holder was not seen through the other (1 for Python's
# 101, silently, in every mode; break51). Parts two holders shared before the statement are
# carried as one (NOTE [parts two holders share]); a part met twice in a body's output that
# was not is refused here, naming both holders.


def _refuse_newly_shared(met, firsts, out, slots, names, statement, where) -> None:
    """Refuse a body's output that holds one dict, list or object in two places the state
    before the statement held apart (NOTE [parts a body makes shared]). `met`: the parts met
    flattening the carried slots' outputs, each met once unless shared anew; `firsts`: (slot,
    the number of its first part); the other slots' outputs (left to an enclosing carry, or
    objects a branch makes) are walked for their parts."""
    holders = [(_slot_of(number, firsts, names), part) for number, part in enumerate(met)]
    for slot, value in enumerate(out):
        if slot not in slots and slot < len(names):
            holders += [(names[slot], part) for part in parts_of(value)]
    if not torch.compiler.is_dynamo_compiling():  # (by `id`: one step per part)
        seen = {}  # (the parts stay alive in `holders`: their ids are theirs)
        for name, part in holders:
            if id(part) in seen:
                _raise_shared(statement, where, _both(seen[id(part)], name), part)
            seen[id(part)] = name
        return
    for number, (name, part) in enumerate(holders):
        for other, earlier in holders[:number]:
            if type(earlier) is type(part) and identical(earlier, part):
                _raise_shared(statement, where, _both(other, name), part)


def _both(first, second) -> str:
    return (f"'{first}' twice hold" if first == second
            else f"both '{first}' and '{second}' hold")


def _raise_shared(statement, where, holders, part):
    raise StagingError(
        statement,
        f"{where}, {holders} one {type(part).__name__} that they did not share before the "
        "statement; the staged statement carries each holder's tensors apart and rebuilds "
        "them after it, so there they would be two objects where Python's are one",
        "Make the shared object before the statement and keep it in both places, or store "
        "it in one place in the body and in the other after the statement")


def parts_of(value, seen=None, depth=0):
    """The dicts, lists and plain objects reachable from `value` (itself too), each once."""
    seen = [] if seen is None else seen
    container = type_in(value, (dict, list)) or _is_plain_object(value)
    if depth > 6 or not (container or type(value) is tuple):
        return seen
    if container:
        if any(identical(value, part) for part in seen):
            return seen
        seen.append(value)
    if type(value) is dict:
        children = list(value.values())
    elif type_in(value, (list, tuple)):
        children = list(value)
    else:
        children = list(getattr(value, "__dict__", {}).values())
    for child in children:
        parts_of(child, seen, depth + 1)
    return seen


def _slot_of(number, firsts, names) -> str:
    return names[[slot for slot, first in firsts if first <= number][-1]]


class _Unshared:
    """What a body did to a part two holders share (NOTE [parts two holders share]): bound
    one holder's to another object. The first holder: (`slot`, `path`)."""

    def __init__(self, slot, path):
        self.slot, self.path = slot, path

    def problem(self, names) -> str:
        return (f"(one object with `{names[self.slot]}{self.path}` before the statement) is "
                "bound to another object")


def _structure_changed(statement: str, what: str, field: tuple, gained=()):
    """The error class of a loop body's output of another structure than the state's before
    the loop, at `field` (a name of the state and a path in it): a loop may be staged again
    with its first trip peeled off (NOTE [a loop's first trip peeled] in peeling.py).
    `gained`: the (key, value) pairs a dict there gains (NOTE [a dict the first trip gives
    keys] in runtime/staged_dicts.py)."""
    from .peeled_dicts import gained_kinds
    from .peeling import StructureChanged

    if statement != "while loop" or what not in (
            "changes its length", "gains or loses keys", "changes its type"):
        return StagingError

    kinds = gained_kinds(gained) if what == "gains or loses keys" else ()

    def raised(statement, problem, fix):
        return StructureChanged(statement, problem, fix, field, kinds)
    return raised


# NOTE [a grown list in an object's field]
# A loop's peeled first trip leaves a field of an object a StagedList of a traced count
# (`pid.errs` of k-diffusion's controller, NOTE [a field the first trip sets] in peeling.py),
# which the loop after it carries with the object. It is carried by its buffer and count, two
# leaves: a body that binds the field to a Python list (`self.errs = [inv, inv, inv]` under
# `if not self.errs:`) gives it written into a buffer of the same capacity (`lists.filled`, as
# a variable bound to a list in a branch is, NOTE [lists bound in branches]), and the field
# written back is a StagedList rebuilt from the two. Another capacity or item shape is a change
# of length, refused as before. Only an object's field, or an item of a dict or list that
# field holds (`h.state['hist']`): a list a dict of the state holds is lifted into a variable
# of its own (runtime/staging/dict_lists.py), which relies on the dict's StagedList being a
# constant of the carry.


def _staged_list(value) -> bool:
    return type(value) is StagedList and (is_staged(value.count) or is_staged(value.buffer))


_FIELD_END = re.compile(r"\.[A-Za-z_]\w*(?:\[[^][]+\])*$")  # (an object's field, or an item in it)


class _GiveBack(Exception):
    """Ends an attempt at staging a statement carrying objects: some body updated in place
    tensors of theirs (`args[0]`: (slot, leaf number) pairs) that another replaces, so it is staged
    again giving them back; `args[1]`: the slots a body bound anew. Internal, never escapes."""


class GrownInDict(Exception):
    """Internal, never reaches the user: a body grows the list a dict of the state holds at a
    key (`args`: the slot, the key, the dict in the statement's state); the statement is staged again with that list a variable of
    its own (dict_lists.py). (No `__init__` of its own: dynamo cannot trace one.)"""


_NO_KEY = object()


def _grown_list_key(value, path: str, what: str):
    """The key of `value` (a body's dict) at `path` where it holds a list that grew, else
    _NO_KEY."""
    if type(value) is not dict or what not in ("changes its length", "is changed",
                                                "changes its type"):
        return _NO_KEY
    for key, item in value.items():
        if f"[{key!r}]" == path and (type(item) is list or isinstance(item, StagedList)):
            return key
    return _NO_KEY


class HeldList(list):
    """A list of tensors a statement carries by its tensors, as it carries a dict: a body
    updates its tensors in place (`bufs[0].add_(a)`) and grows it nowhere. The bodies get a
    plain list (see `with_input_as_state`)."""


def carries(value) -> bool:
    """An object, or a dict / list / tuple holding one: flattened here, not by torch's pytree."""
    if _is_plain_object(value) or type(value) is HeldList:
        return True
    if is_carried_mapping(value):
        return True  # written back in place, so that other references see the change
    if type_in(value, (list, tuple)) or _is_namedtuple(value):
        return any(carries(v) for v in value)
    return False


def carried_slots(state, records=None) -> dict:
    """{slot: (structure, tensors)} for the state values carried here (`records`: {slot: the
    paths of its named tuples and numbers that are carried})."""
    records = records or {}
    slots = {i: v for i, v in enumerate(state) if carries(v)}
    if torch.compiler.is_dynamo_compiling():  # NOTE [numbers in objects]
        # The floats an object carried here holds that dynamo made symbolic (`s.lr *= 0.9`
        # on every call) stay constants of the rebuilt copies the bodies read: given their
        # values as the statement's inputs' are (NOTE [symbolic floats held by objects] in
        # torch.py), or torch refused the lifted operand ("can only be of (Tensor, int,
        # SymInt)")
        from .torch import _specialize_held

        # (read symbolic, as the code before the statement read them: NOTE [floats first read
        # in a staged statement] in dynamo_floats.py)
        floats = dynamo_floats.floats_specialized(False)
        slots = {i: _specialize_held(v, 0) for i, v in slots.items()}
        dynamo_floats.floats_specialized(floats)
        records = {i: frozenset(records.get(i, ())) | _number_paths(v)
                   for i, v in slots.items()}
    parts = _Parts()  # NOTE [parts two holders share]
    flat = {}
    for i, v in slots.items():
        parts.slot = i
        flat[i] = flatten(v, frozenset(records.get(i, ())), parts)
    return flat


def _number_paths(value, path="") -> frozenset:
    """The paths of the numbers in `value` reached through dicts and lists."""
    if type(value) is dict:
        return frozenset().union(*(_number_paths(v, f"{path}[{_key_text(k)}]")
                                   for k, v in value.items()))
    if type(value) is list:
        return frozenset().union(*(_number_paths(v, f"{path}[{i}]")
                                   for i, v in enumerate(value)))
    return frozenset({path}) if type_in(value, _NUMBERS) else frozenset()


# NOTE [tensor-free parts kept by identity]
# A slot some body binds to another object is rebuilt after the statement from its spec, so a
# plain object in its fields came back a copy even where every path's object held the one held
# before (`s = Step(x, CFG)`, then `s = Step(s.x * 2 + 1, CFG)` under a tensor `if` or in a
# staged `while`: `s.cfg is CFG` was False after it, [-3] for Python's [3], brk52a). A field
# holding a tensor-free plain object (nothing of it carried) is looked at in each body's
# output: the part held before the statement, or the copy of it the body was given (a loop's
# next trip is given the copy), is that part; any other is one the path made. Where every
# path keeps it, the rebuilt object's field is put back to the object held before, by
# identity; where one path keeps it and another makes a new one, a tensor condition would
# have to choose between an object of the caller's and a copy: refused (an `if` is then
# specialised on its condition in replay and torch.export). A loop that runs no trip keeps
# it, so a loop body making a new one is refused too: its copy was silently the caller's
# object's stand-in on zero trips ([-20] for Python's [20]). A field every path of an `if`
# makes anew is rebuilt as before: the made object is the path's own.
# The same for a plain object holding tensors (`TCFG = Config(torch.tensor(3.0))`: [-3] and
# [-20] for Python's [3] and [20], rebind52's finding) where every path keeps it with its
# tensors as they were: the same tensors, and the body's copy's not updated in place
# (`_part_leaves`). One a path keeps but changes is kept too: NOTE [parts kept by identity,
# their tensors written back]. (The caller's object's own tensors updated in place,
# `TCFG.scale.add_(1)`, are outside writes, which the graph makes to them: put back, it holds
# them. Refused, the `if` was specialised after the trace had made the update once: twice at
# replay, 8 for 7.)


# NOTE [parts kept by identity, their tensors written back]
# A part every path keeps (the same Python object, or the body's copy of it) whose tensors a
# path changes (`s = Step(s.x * 2 + 1, s.cfg)`, then `s.cfg.scale.add_(1)` or `s.cfg.scale =
# s.cfg.scale * 2`) is one object in Python, also held by another name (`cfg`). Session 53
# rebuilt it after the statement (refusing it specialised the common `self.stats.n += 3` /
# `s.inner.v += 4` under a tensor `if`, one path per export): a copy, `s.cfg is cfg` False and
# `cfg.scale` not updated ([0] for Python's [7] in every mode, [-12] for [21] in a loop). As
# AutoGraph's composite names carry `s.cfg.scale` and not `s.cfg`, the part's tensors are
# carried as leaves of the slot, and after the statement the object held before is put back
# into the rebuilt holder and the statement's tensors written into it as `_write_back` writes
# an object no body rebinds: by `copy_` into the tensor it holds where a body updated that in
# place (the tensor stays the one Python has), by setattr where a body rebound the field,
# left alone where no body changed it. Under dynamo, which cannot read a tensor's version,
# every tensor of the part is written back by `copy_` (known53 refused this: a right value,
# at worst a copy of an equal value). A part one path keeps and another makes anew is still
# refused, changed or not (`_check_kept`): one object after the statement cannot be the
# caller's on one path and the path's own on the other.


# NOTE [dicts and named tuples kept by identity]
# The same for a plain dict, a tuple or a named tuple holding a tensor (`cfg = {"scale":
# torch.tensor(3.0)}`, `s = Step(x, cfg)`, then `s = Step(s.x * 2 + 1, s.cfg)` and
# `s.cfg["scale"] = s.cfg["scale"] + 1` under a tensor `if`): the dict was rebuilt, `s.cfg is
# cfg` False and `cfg` not updated ([0], [-17] for Python's [7], [23], alias54). A named
# tuple no body replaces stays a constant of the statement (NOTE [named tuples]), so a body's
# `s.cfg.scale.add_(1)` updated a tensor of the graph's constants, again at every replay ([24]
# for [23] on the next call): a body updating in place a tensor of such a constant now stages
# the statement again with it carried (`_constant_records`), kept by identity, its tensors
# written back by `copy_`. A tuple (or named tuple) one path keeps and another replaces is not
# refused unless the keeping path changed its tensors: refusing it specialised the common
# `if c: self.state = self.state._replace(...)` (its values are right; only `is` differs, the
# README's Known shapes). Separately, a field of an object no body rebinds that a body sets to
# a new object (`s.cfg = Config(...)`, "set") was read as the copy the body was given: every
# path setting one wrote the new tensors into the object held before ([9], [30] for Python's
# [6], [-12]); now such a field is set to a new object (`_set_parts_made`). One set on some
# paths only is written into the object held before, as before (README Known shapes).


def _kept_paths(spec, path=()) -> list:
    """The paths ((attribute or item, name) steps) of the outermost plain objects in the
    fields and items of `spec` that hold only constants and tensors (NOTE [tensor-free parts
    kept by identity])."""
    kind = spec[0]
    if kind == "object":
        steps = [(("attr", k), field) for k, field in spec[2]]
    elif kind == "dict":  # (a dict's keys the caller's Python values, not tensors)
        steps = [(("item", k), item) for k, item in spec[1] if type_in(k, (str, int))]
    elif kind == "list":
        steps = [(("item", i), item) for i, item in enumerate(spec[1])]
    else:
        return []
    found = []
    for step, field in steps:
        if (_kept_kind(field) and _constant_only(field, tensors=True)) \
                or _tuple_holding_lists(field):
            found.append((*path, step))
        else:
            found += _kept_paths(field, (*path, step))
    return found


def _kept_kind(spec) -> bool:
    """Whether a part of structure `spec` is kept by identity: a plain object; a plain dict,
    a tuple or a named tuple that holds a tensor (NOTE [dicts and named tuples kept by
    identity])."""
    if spec[0] == "object":
        return True
    return ((spec[0] == "dict" and len(spec) == 2) or spec[0] in ("namedtuple", "tuple")) \
        and _holds_tensor(spec)


def _tuple_holding_lists(spec) -> bool:
    """Whether a part of structure `spec` is a plain tuple holding lists of tensors and
    constants, and else only tensors and constants (NOTE [tuples holding lists kept by
    identity])."""
    return spec[0] == "tuple" and any(item[0] == "list" for item in spec[1]) and all(
        item[0] in ("tensor", "const")
        or (item[0] == "list" and all(v[0] in ("tensor", "const") for v in item[1]))
        for item in spec[1])


def _holds_list(part) -> bool:
    return type(part) is tuple and any(type(item) is list for item in part)


# NOTE [tuples holding lists kept by identity]
# A plain tuple in a carried object's field holding a list (`s = Held(x, (t, [u]))`, then
# `s.cfg[0].add_(1); s.cfg[1][0] = s.cfg[1][0] + 5` under a tensor `if`) was flattened by its
# items and rebuilt after the statement: a new tuple of new tensors and a new list, so `t`, and
# any other name of the list, missed the bodies' changes ([9, 1, 11] for Python's [10, 1, 12]
# in every mode, tup57). It is a part kept by identity as a tuple of tensors is (NOTE [dicts
# and named tuples kept by identity]): where every path keeps it, the tuple held before is put
# back and the statement's tensors written into it and its lists (`copy_` into a tensor a body
# updated, a list's item set where a body set it). A body's change through the list is not
# seen by the tensors' versions (`_tensors_of`), so a path keeping it counts as changing it:
# written back always, and a path making a new tuple where another keeps it refused.


def _holds_tensor(spec) -> bool:
    kind = spec[0]
    if kind == "tensor":
        return True
    if kind in ("object", "dict"):
        return any(_holds_tensor(item) for _, item in spec[2 if kind == "object" else 1])
    if kind in ("namedtuple", "tuple"):
        return any(_holds_tensor(item) for item in spec[2 if kind == "namedtuple" else 1])
    return False


def _constant_only(spec, tensors: bool = False) -> bool:
    kind = spec[0]
    if kind == "const" or (tensors and kind == "tensor"):
        return True
    if kind == "object":
        return all(_constant_only(field, tensors) for _, field in spec[2])
    if kind == "tuple":
        return all(_constant_only(item, tensors) for item in spec[1])
    if kind == "namedtuple":
        return all(_constant_only(item, tensors) for item in spec[2])
    if kind == "dict" and len(spec) == 2:  # (its keys the caller's: NOTE [dicts and named
        # tuples kept by identity])
        return all(type_in(k, (str, int)) and _constant_only(item, tensors)
                   for k, item in spec[1])
    return False  # (a number, a list a body may change, a part met twice)


def _part_leaves(kept, slot, *holders) -> dict:
    """{path: per holder, the tensors of its part at `path` with their versions}, for each
    part of `slot` kept by identity, taken before a body runs (NOTE [tensor-free parts kept
    by identity])."""
    return {path: tuple(_tensors_of(_at(holder, path)) for holder in holders)
            for path in kept.get(slot, {})}


def _tensors_of(part) -> tuple:
    """(tensor, version) of each tensor `part` (a plain object of constants and tensors)
    holds, in order; the version None under dynamo."""
    found = []
    stack = [part]
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor):
            found.append((value, None if torch.compiler.is_dynamo_compiling()
                          else tensor_reads.version_of(value)))
        elif isinstance(value, tuple):  # (a named tuple too)
            stack.extend(reversed(value))
        elif type(value) is dict:  # (NOTE [dicts and named tuples kept by identity])
            stack.extend(reversed(list(value.values())))
        elif value is not _MISSING and type(getattr(value, "__dict__", None)) is dict:
            stack.extend(reversed(list(vars(value).values())))
    return tuple(found)


def _at(value, path):
    for how, k in path:
        if how == "attr":
            value = getattr(value, k, _MISSING)
        elif type_in(value, (dict, list)) or is_carried_mapping(value):
            try:
                value = value[k]
            except (KeyError, IndexError):
                return _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


_MISSING = object()


def _same_tensors(a, b, versions: bool) -> bool:
    """Whether two `_tensors_of` are the same tensors (by identity), at the same versions
    where `versions`."""
    return len(a) == len(b) and all(t is u and (v == w or not versions)
                                    for (t, v), (u, w) in zip(a, b))


def _note_kept(kept, slot, out, given, before, leaves, keeping: bool = False,
               given_now=None) -> None:
    """Note for each part of `out` (a body's object for `slot`) kept by identity whether it is
    the part held before (`before`'s, or the copy of it `given` held before the body ran:
    {path: part}, as the body may set the field of its given object, `solver.state = ...`)
    or one the path made, or (a
    string) "changed" where the path kept it and changed its tensors (`leaves`: `_part_leaves`
    before the body ran), or where dynamo cannot tell whether it did, or "set" where the path
    set a new object into the field of its given object `given_now` (NOTE [dicts and named
    tuples kept by identity]). `keeping`: the body is a missing branch, which changes
    nothing."""
    for path, seen in kept.get(slot, {}).items():
        part = _at(out, path)
        if part is _MISSING:
            continue
        holder = (0 if _same_part(part, given[path]) else 1
                  if _same_part(part, _at(before, path)) else None)
        if holder is None and not keeping and out is given_now and not isinstance(part, tuple):
            seen.add("set")
            continue
        if holder is None or keeping:
            seen.add(keeping and holder is not None)
            continue
        now = _tensors_of(part)
        if not _same_tensors(now, leaves[path][holder], versions=False):
            seen.add("changed")  # (its fields rebound to new tensors, `s.a.b = s.a.b + 1`)
        elif torch.compiler.is_dynamo_compiling() and holder == 0 and leaves[path][0]:
            # (no versions to read: written back, `copy_` at worst; a tuple's "perhaps" does
            # not refuse a path that makes a new one: NOTE [dicts and named tuples kept by
            # identity])
            seen.add("perhaps" if isinstance(part, tuple) else "changed")
        elif not _same_tensors(now, leaves[path][holder], versions=holder == 0):
            seen.add("changed")  # (the body's copy updated in place)
        elif _holds_list(part):  # NOTE [tuples holding lists kept by identity]
            seen.add("changed")
        else:
            seen.add(True)


def _same_part(a, b) -> bool:
    """`a is b`; under dynamo, which cannot trace `is` on two tuples, tuples holding the same
    objects (by identity) count as the same."""
    if torch.compiler.is_dynamo_compiling() and type(a) is tuple and type(b) is tuple:
        return len(a) == len(b) and all(_same_part(x, y) for x, y in zip(a, b))
    return a is b


def _check_kept(kept, slot, before, names, statement) -> None:
    """Refuse a part kept by identity that some path keeps where another makes a new one
    (NOTE [tensor-free parts kept by identity]). Raised by the body that shows it too, before
    the operator's node is made: raised after it only, the node stayed in the graph, and its
    bodies' updates of outside tensors ran twice at replay once the `if` was specialised
    (`G.add_(1)` in the branch: [-1] for Python's [-2])."""
    for path, seen in kept.get(slot, {}).items():
        if "set" in seen and seen - {"set", False}:  # NOTE [identity a path decides]
            _refuse_other_name(before, path, names[slot], statement, "sets it to a new one")
        if False not in seen or seen == {False}:
            continue
        part = _at(before, path)
        if "changed" not in seen and isinstance(part, tuple):
            # (a named tuple too: NOTE [dicts and named tuples kept by identity]; NOTE
            # [identity a path decides])
            _refuse_other_name(before, path, names[slot], statement, "replaces it")
            continue
        field = _field_text(names[slot], path)
        raise StagingError(
            statement,
            f"`{field}` holds the {type(_at(before, path)).__name__} it held before the "
            f"{statement} on one path and a new object on another"
            + (" (a loop that runs no trip keeps it)" if "loop" in statement else "")
            + "; the staged statement rebuilds the object after it, and cannot choose "
            "between the caller's object and a copy by a tensor condition",
            f"Hold the same object in `{field}` on every path (the one held before), or "
            "set that field after the statement")


def _field_text(name: str, path) -> str:
    return name + "".join(f".{k}" if how == "attr" else f"[{k!r}]" for how, k in path)


# NOTE [identity a path decides]
# Which object a field holds after a staged `if` can depend on the path: `s = Step(s.x * 2 +
# 1, s.cfg._replace(scale=...))` on one path keeps the named tuple held before on the other
# (a tuple is rebuilt after the statement: NOTE [dicts and named tuples kept by identity]);
# `s.cfg = Config(...)` on one path only, the object `s` not rebound, keeps it on the other
# (the old object is put back with the new tensors written into it). The graph is one for
# both paths, and the code after the statement reads `is` (or the old object's tensors) as
# the trace saw them: [-17] for Python's [23] where `cfg` names the named tuple too, [5] for
# [2] where `cfg` names the Config (silent55, every mode). Choosing the object at replay by
# the taken path would not do: the `is` after it is already a constant of the graph. Where
# no other name holds the old object its identity cannot be seen, so the common `if c:
# self.state = self.state._replace(...)` stays one graph; where another name does (a local
# of the user's code on the stack, or a field of a container or object the function holds:
# `dict_lists.other_name`), the statement is refused: specialised on its condition in
# replay and torch.export, an error under torch.compile.


def _refuse_other_name(before, path, name: str, statement: str, how: str) -> None:
    """Refuse a part at `path` of `before` (the slot `name`'s object before the statement)
    that one path keeps and another `how` where another name holds it (NOTE [identity a path
    decides])."""
    held, field_holder = _at(before, path), _at(before, path[:-1])
    if held is _MISSING:
        return
    from . import dict_lists  # (it imports this module)

    # (the statement's own name for it is not another: in an enclosing staged body, or the
    # function's frame around it, `s` is an older copy of the object, or the object itself,
    # holding the same tuple as a constant)
    field = _field_text(name, path)
    alias = dict_lists.other_name(held, own=field, field_holder=field_holder,
                                  own_containers=True)
    if alias is None:
        return
    raise StagingError(
        statement,
        f"`{field}` holds the {type(held).__name__} it held before the {statement} on one "
        f"path, and another path {how}, while `{alias}` names it too: the staged statement "
        f"cannot tell by a tensor condition whether `{field} is {alias}` after it",
        f"Read it through `{field}` after the {statement} (`{alias} = {field}` after it), "
        f"or compare by value rather than by `is`")


def _put_kept_back(kept, slot, rebuilt, before, names, statement, write_part,
                   tuples_only=False) -> None:
    """Put back the parts every path kept (NOTE [tensor-free parts kept by identity])
    into the object `rebuilt` after the statement; `write_part(path, part)` writes the
    statement's tensors for the part at `path` into `part` where a path changed them (NOTE
    [parts kept by identity, their tensors written back]). `before`: {path: the part held
    before the statement}. `tuples_only`: `rebuilt` is the object held before, written back
    in place, which replaced its tuples only (NOTE [dicts and named tuples kept by
    identity])."""
    for path, seen in kept.get(slot, {}).items():
        if seen and False not in seen:
            parent, (how, k) = _at(rebuilt, path[:-1]), path[-1]
            part = before[path]
            if parent is _MISSING or (tuples_only and not isinstance(part, tuple)):
                continue
            if how == "attr":
                object.__setattr__(parent, k, part)
            else:
                parent[k] = part
            if seen & {"changed", "set", "perhaps"}:
                write_part(path, part)


def _set_parts_made(kept, slot, target, spec, flat) -> None:
    """Set the parts of `target` (a slot's object no body rebinds, written back in place
    after the statement) that every path bound to a new object (`s.cfg = Config(...)`) to
    new objects holding the statement's tensors `flat`, so that `_write_back` fills them and
    not the object held before, which Python leaves as it was (NOTE [dicts and named tuples
    kept by identity])."""
    for path, seen in kept.get(slot, {}).items():
        if not seen or not seen <= {False, "set"}:
            continue
        parent, (how, k) = _at(target, path[:-1]), path[-1]
        if parent is _MISSING:
            continue
        first, sub = _leaves_at(spec, path)
        made = _rebuild(sub, iter(flat[first:]))
        if how == "attr":
            object.__setattr__(parent, k, made)
        else:
            parent[k] = made


def _parts_held(kept, slot, state, names, statement) -> dict:
    """{path: the part `state[slot]` held there before the statement} of the parts of `slot`
    kept by identity, after `_check_kept` (NOTE [tensor-free parts kept by identity])."""
    _check_kept(kept, slot, state[slot], names, statement)
    return {path: _at(state[slot], path) for path in kept.get(slot, {})}


def _write_part_back(spec, flat, in_place, kept, path, part) -> None:
    """Write the statement's tensors `flat` (its outputs for a slot of structure `spec`) of
    the part at `path` into `part`, the object held before (`_write_back`)."""
    first, sub = _leaves_at(spec, path)
    _write_back(part, sub, zip(range(first, len(flat)), flat[first:]), in_place, kept)


def _leaves_at(spec, path) -> tuple:
    """(the number of its first leaf, its spec) of the part at `path` (`_kept_paths`'s) of a
    value of structure `spec`."""
    first = 0
    for _, k in path:
        if spec[0] == "object":
            children = spec[2]
        elif spec[0] == "list":
            children = enumerate(spec[1])
        else:  # (a dict)
            children = spec[1]
        for key, child in children:
            if type(key) is type(k) and key == k:
                spec = child
                break
            first += _leaf_count(child)
    return first, spec


def _leaf_count(spec) -> int:
    """How many leaves `_flatten` gave for a value of structure `spec`."""
    kind = spec[0]
    if kind in ("tensor", "number"):
        return 1
    if kind == "staged list":
        return 2
    if kind in ("object", "dict"):
        return sum(_leaf_count(v) for _, v in spec[2 if kind == "object" else 1])
    if kind in ("list", "tuple"):
        return sum(_leaf_count(v) for v in spec[1])
    if kind == "namedtuple":
        return sum(_leaf_count(v) for v in spec[2])
    return 0  # (a constant, a cycle, a part met first elsewhere)


def carry(stage, bodies, state, names, slots, statement, records=None, giving=(), inputs=(),
          rebuilt=(), giving_kept=False):
    """Run `stage(bodies, state, names)` with the objects in `slots` flattened to tuples of
    tensors.

    `bodies` are (function, returns_state, where) triples; each gets rebuilt copies of the
    objects and its state outputs flattened back, checked against the structure before.
    `giving`: the (slot, leaf number) pairs of tensors some body updates in place and some
    replaces (NOTE [tensors of objects updated in place, then replaced]). `inputs`: the
    statement's, after its state in the bodies' arguments. `rebuilt`: the slots a body was
    already seen to bind to another object (NOTE [objects a body binds anew]). `giving_kept`:
    `giving` is another entry's (NOTE [tensors given back by a statement's form]).
    Returns the statement's state with the objects updated in place (or rebuilt, see above).
    """
    # NOTE [dynamo and tensors of objects]
    # (only where the objects hold tensors of the user's and no numbers: the probe's run
    # would decide the numbers' dtypes before the statement's own probe promotes them, NOTE
    # [numbers as tensors]; such a dict is carried as before, README Known shapes)
    held_leaves = [leaf for _, held in slots.values() for leaf in held]
    # (an object whose only fields a body changes are numbers, `s.k += 1` next to local
    # tensors, has no leaves yet: probed too, so that its numbers are carried from then on
    # rather than refused at the operator: tester t15 repro 4)
    probed = (torch.compiler.is_dynamo_compiling() and not context.in_operator_bodies()
              and (not held_leaves or any(isinstance(leaf, torch.Tensor)
                                          for leaf in held_leaves))
              and not any(is_stand_in(leaf) or type_in(leaf, (int, float, complex))
                          for leaf in held_leaves))
    built = list(rebuilt)  # the slots a body bound to an object other than the copy it was given
    # NOTE [tensor-free parts kept by identity]
    # (a loop that runs no trip keeps every part: a loop making a new one is mixed)
    kept_parts = {slot: {path: {True} if "loop" in statement else set()
                         for path in _kept_paths(spec)}
                  for slot, (spec, _) in slots.items()}
    user_names = names  # (`names` is given the leaves' names below)
    count = len(state)
    # Per slot, the leaf numbers of tensors some body updated in place (the same tensor came
    # back, changed) and of those some body replaced (NOTE [tensors of objects updated in place])
    updated = {slot: set() for slot in slots}
    replaced = {slot: set() for slot in slots}
    # Per slot, the leaf numbers of carried numbers some body bound anew (NOTE [numbers no body
    # changes])
    renumbered = {slot: set() for slot in slots}
    probe_replaced = []  # (slot, path) of the named tuples and numbers the probe's run replaced
    # (under dynamo without the probe's run: NOTE [numbers no body binds anew under dynamo])
    noting = (unchanged_leaves.new_key()
              if torch.compiler.is_dynamo_compiling() and not probed else None)

    carried_inputs = inputs  # (`run` below names the body's inputs `inputs`)

    def wrap(body, returns_state, where, probe=False):
        def run(*args):
            # (the extra state of `giving` comes after the statement's, before its inputs)
            extra, inputs = args[count:count + 2 * len(giving)], args[count + 2 * len(giving):]
            args = list(args[:count])
            given = {}
            given_leaves = {slot: tuple(args[slot] or ()) for slot in slots}
            # (NOTE [tensor keys of carried dicts])
            keys = _carried_keys(slots, given_leaves, state, args, carried_inputs, inputs)
            pairs = tuple((before, body) for before, body, *_ in keys)
            parts = _Parts()  # NOTE [parts two holders share]
            for slot, (spec, _) in slots.items():
                given[slot] = args[slot] = _rebuild(spec, iter(given_leaves[slot]), pairs,
                                                    parts=parts)
            # (the probe's run under dynamo too, on its own copies, whose versions dynamo
            # reads right: NOTE [a view held in a carried object, its tensor updated])
            versions = None if torch.compiler.is_dynamo_compiling() and not probe else {
                slot: [_version_of(t) for t in leaves] for slot, leaves in given_leaves.items()}
            # NOTE [tensor-free parts kept by identity]
            part_leaves = {slot: _part_leaves(kept_parts, slot, given[slot], state[slot])
                           for slot in kept_parts if kept_parts[slot]}
            given_parts = {slot: {path: _at(given[slot], path) for path in kept_parts[slot]}
                           for slot in kept_parts}
            # NOTE [dicts and named tuples kept by identity]
            constants = {} if torch.compiler.is_dynamo_compiling() else {
                slot: _constant_records(spec, given[slot]) for slot, (spec, _) in slots.items()}
            held_containers = {} if torch.compiler.is_dynamo_compiling() else {
                slot: found for slot, (spec, _) in slots.items()
                if (found := _constant_containers(spec, given[slot]))}
            # NOTE [attempts decided before a nested statement] in restaging.py
            opened = None if (probe or not returns_state or torch.compiler.is_dynamo_compiling()) \
                else restaging.watch(functools.partial(_first_replaced, slots, given))
            if torch.compiler.is_dynamo_compiling():  # (where `carry` takes no record)
                out = body(*args, *inputs)
            else:
                try:
                    out = body(*args, *inputs) if opened is None else restaging.run_watched(
                        opened, body, (*args, *inputs))
                except _ReplacedRecord as other:  # NOTE [replaced records of an enclosing carry]
                    other.hops += 1
                    raise
            if opened is not None and opened.found is not None:
                slot, path = opened.found
                raise _replaced_record(slot, path, names, statement, where)
            for slot, records in constants.items():
                updated_record = _updated_record(records, slot, names, statement, where)
                if updated_record is not None:
                    raise updated_record
            for slot, held in held_containers.items():  # NOTE [containers in constant tuples]
                _refuse_changed_containers(held, user_names[slot], statement, where)
            if not returns_state or not isinstance(out, tuple) or len(out) != count:
                return out
            out = list(out)
            parts = _Parts()
            firsts = []  # (slot, the number of its first part in `parts.met`)
            for slot, (spec, _) in slots.items():
                firsts.append((slot, len(parts.met)))
                # (dynamo refuses a body's write to this list; its probe's run, outside the
                # operator, notes it: NOTE [objects a body binds anew])
                if out[slot] is not given[slot] and (
                        probe or not torch.compiler.is_dynamo_compiling()):
                    built.append(slot)
                if probe or not torch.compiler.is_dynamo_compiling():
                    _note_kept(kept_parts, slot, out[slot], given_parts[slot], state[slot],
                               part_leaves.get(slot, {}), unseen_updates.keeps_its_state(body),
                               given[slot])
                    _check_kept(kept_parts, slot, state[slot], user_names, statement)
                leaves, paths = [], [] if probe else None
                found = _flatten_as(spec, out[slot], leaves, replaced=paths, key_pairs=pairs,
                                    parts=parts)
                probe_replaced.extend((slot, path) for path in paths or ())
                if found is not None:
                    path, what, *gained = found
                    # (NOTE [keys set on some paths] in flagged_keys.py)
                    flagged_keys.raise_gained(statement, spec, out[slot], path, what, gained,
                                              slot, state[slot])
                    grown = _grown_list_key(out[slot], path, what)
                    if grown is not _NO_KEY:  # (dict_lists.py)
                        raise GrownInDict(slot, grown, state[slot])
                    fix = _kept_as_it_is(names[slot] + path, statement)
                    if isinstance(what, _Unshared):  # NOTE [parts two holders share]
                        fix = (f"Set the fields of `{names[slot]}{path}` rather than bind it "
                               f"to another object (`{names[slot]}{path}.x = ...`), or bind "
                               f"`{names[what.slot]}{what.path}` to the same new object on "
                               "every path")
                        what = what.problem(names)
                    if what is _REPLACED and not (torch.compiler.is_dynamo_compiling()
                                                  and context.in_staged_body()):
                        raise _replaced_record(slot, path, names, statement, where)
                    error = (functools.partial(_ReplacedRecord, slot, path)
                             if what is _REPLACED else GainedAttributes
                             if what == "gains or loses attributes" else
                             _structure_changed(statement, what, (names[slot], path),
                                                gained[0] if gained else ()))
                    what = "is replaced" if what is _REPLACED else what
                    if what == "gains or loses attributes":
                        fix = (f"Give `{names[slot]}{path}` all its attributes before the "
                               f"{statement}, with values of the kinds the body sets (a "
                               "tensor: `self.ts = torch.zeros_like(ts)`), so that the body "
                               "only updates them, or set them after it from local variables")
                    if (what == "is replaced" and torch.compiler.is_dynamo_compiling()
                            and context.in_staged_body()):
                        # (raised for real: dynamo traces an enclosing statement's bodies,
                        # where this statement cannot be staged again carrying the field. The
                        # enclosing statement's run ahead, NOTE [dynamo and tensors of objects],
                        # took another path here: `self.counter += 1; if self.counter >=
                        # self.patience: self.early_stop = True` read the count as a Python
                        # int there, a tensor in the graph: tester t20 s08)
                        # (tester32 s05: an int counter of the outermost statement, whose
                        # run ahead was not made, as the statement carried a number of a dict:
                        # the message said the statement was nested and advised a bool tensor)
                        what = (f"is replaced {where}; under torch.compile a Python value in "
                                "an object's field (a number, a bool, a str) can change under a "
                                "tensor condition only where autoconv's run of the statement "
                                "(or of the statement enclosing it) ahead of tracing saw it "
                                "change, and that run did not: it is not made where the "
                                "statement also carries Python numbers (a counter in a dict or "
                                "list it changes, whose types it would fix too early), and a "
                                "nested statement's path in it may depend on numbers it sees as "
                                "Python numbers and the graph carries as tensors (`self.count "
                                "+= 1` before `if self.count >= n:`)")
                        fix = (f"Hold `{names[slot]}{path}` in a tensor where the object is "
                               "made (`torch.tensor(0)` for a counter, which `+= 1` then "
                               "updates; `torch.tensor(False)` for a flag, set with "
                               "`torch.tensor(True)`), or use autoconv's replay "
                               "(`autoconv.autoconv(fn)`) or torch.export, which stage the "
                               "statement again carrying it")
                    if what == "gains or loses keys":
                        fix = _keys_given_before(names[slot] + path, statement, *gained)
                    raise error(
                        statement,
                        f"`{names[slot]}{path}` {what}" + ("" if what.startswith("is replaced ")
                                                           else f" {where}")
                        + "; only the tensors in an object can change under a tensor condition",
                        fix)
                if noting is not None and not probe:
                    unchanged_leaves.note(noting, slot, tuple(
                        number for number, (before, after)
                        in enumerate(zip(given_leaves[slot], leaves)) if after is before))
                for number, (before, after) in enumerate(zip(given_leaves[slot], leaves)):
                    # (dynamo refuses a body writing outside it: the probe's run notes what
                    # it replaces, NOTE [dynamo and tensors of objects])
                    if not isinstance(before, torch.Tensor) or (versions is None and not probe):
                        continue
                    if not isinstance(slots[slot][1][number], torch.Tensor):
                        # A carried number (NOTE [numbers in objects]): the body's stand-in
                        # is its own, no tensor of the caller's to update in place (`s.k += 1`
                        # under an `if` in a loop body took it for one: AttributeError)
                        if after is not before or (
                                versions is not None
                                and _version_of(before)
                                != versions[slot][number]):
                            renumbered[slot].add(number)
                        continue
                    if after is not before:
                        replaced[slot].add(number)
                    if versions is not None and (_version_of(before)
                                                 != versions[slot][number]):
                        updated[slot].add(number)  # (then replaced, perhaps)
                out[slot] = tuple(leaves) or None
            _refuse_newly_shared(parts.met, firsts, out, slots, names, statement, where)
            if keys and "loop" in statement:
                _refuse_replaced_keys(keys, out, given_leaves, names, statement, where)
            if giving:
                out.extend(_given_back(giving, given_leaves, out, extra))
            return tuple(out)
        run._autoconv_body = body  # (NOTE [item writes seen in the code] in item_writes.py)
        return run

    if torch.compiler.is_dynamo_compiling():
        _refuse_new_attributes(bodies, slots, names, statement)
    versions_known = not torch.compiler.is_dynamo_compiling()
    flat_state = tuple(tuple(slots[i][1]) or None if i in slots else v
                       for i, v in enumerate(state))
    probe_updated = None  # (the leaves the probe's run updated in place, under dynamo)
    if probed and not giving:
        _probe(wrap, bodies, flat_state, inputs)
        probe_updated = {slot: set(numbers) for slot, numbers in updated.items()}
        if probe_replaced:
            # The probe runs outside the operator, where the statement can still be staged
            # again: the named tuples and numbers of an object a body replaces (`s.k += 1`) are
            # carried from now on, as outside dynamo (NOTE [numbers in objects]; under dynamo
            # the _ReplacedRecord cannot be caught, it is raised for real: tester t14 repro 12).
            records = dict(records or {})
            for slot, path in probe_replaced:
                records[slot] = records.get(slot, frozenset()) | {path}
            return carry(stage, bodies, state, names, carried_slots(state, records),
                         statement, records, (), inputs)
        for slot, (_, leaves) in slots.items():
            # (no counter to read: a tensor no body replaces may have been updated in place,
            # one some body replaces may have been updated before, or by another body)
            # (a number's stand-in is no tensor of the user's: it takes the dtype its bodies
            # give it, NOTE [numbers as tensors])
            updated[slot] = {number for number, leaf in enumerate(leaves)
                             if isinstance(leaf, torch.Tensor) and not leaf.requires_grad
                             and not is_stand_in(leaf)}
        giving = tuple(sorted((slot, number) for slot in slots
                              for number in updated[slot] & replaced[slot]))
        for slot, (_, leaves) in slots.items():
            replaced[slot] |= {number for number, leaf in enumerate(leaves)
                               if isinstance(leaf, torch.Tensor) and leaf.requires_grad}
    if giving:
        flat_state, names = _giving_state(flat_state, names, slots, giving)
    names = tuple(_named(n, slots[i][0]) if i in slots else n for i, n in enumerate(names))
    def staged():
        result = list(stage([wrap(*b) for b in bodies], flat_state, names))
        # NOTE [a view held in a carried object, its tensor updated]
        _refuse_views_among_leaves(slots, updated if versions_known else probe_updated or {},
                                   names, statement)
        if "loop" in statement and (versions_known or probed):
            # (under dynamo `updated` is every tensor leaf: those the probe saw replaced are
            # left out, `d["v"] = d["v"] + 1` updates no tensor of the caller's)
            _refuse_views_of_read_inputs(
                bodies, state, names, slots,
                updated if versions_known else {k: v - replaced[k] for k, v in updated.items()},
                inputs, statement)
        both = sorted((slot, number) for slot in slots
                      for number in updated[slot] & replaced[slot])
        if both and not giving or giving_kept and tuple(both) != tuple(giving):
            # (NOTE [tensors given back by a statement's form]: this entry's own form)
            raise _GiveBack(tuple(both), tuple(built))
        return result

    try:
        # (NOTE [restaging verdicts]: a staging from the same entry goes to the second form;
        # NOTE [what an abandoned attempt wrote] for the `with`)
        with attempt_effects.undone_on(_ReplacedRecord, _GiveBack, values=(*state, *inputs)):
            result = restaging.attempt(
                "carried objects", staged, (_ReplacedRecord, _GiveBack),
                lambda error: (_record_applies(error, state) or _record_carried(error, slots)
                               or _giving_applies(error, slots, giving, records, rebuilt)))
    except _ReplacedRecord as replaced:  # NOTE [named tuples]
        if torch.compiler.is_dynamo_compiling():
            raise
        if replaced.hops:  # an enclosing carry's: NOTE [replaced records of an enclosing carry]
            replaced.hops -= 1
            raise
        if replaced.path in (records or {}).get(replaced.slot, ()):
            # Carried already, yet replaced: staging again would make this attempt again, one
            # level deeper each time, until Python's recursion limit (silent41 s02's shape).
            # Refused as a plain StagingError, which no enclosing `carry` takes for its own.
            raise StagingError.at(
                (replaced.filename, replaced.lineno) if replaced.filename else None,
                replaced.statement, replaced.problem, replaced.fix) from replaced
        records = dict(records or {})
        records[replaced.slot] = records.get(replaced.slot, frozenset()) | {replaced.path}
        # (the leaves are numbered anew: which ones to give back is learnt again)
        return carry(stage, bodies, state, names, carried_slots(state, records), statement,
                     records, (), inputs)
    except _GiveBack as back:
        # Staged again, each body also giving back what it did to those tensors (the first
        # staging's operator is dead code)
        return carry(stage, bodies, state, names, slots, statement, records, back.args[0],
                     inputs, back.args[1], restaging.by_form(back))
    if giving:
        _originals_back(result, count, giving, slots)
        result = result[:count]
    def written(slot) -> tuple:
        """(in place, kept): the leaf numbers of `slot` written back by `copy_`, and those
        left as they are (`_write_back`)."""
        # A tensor updated in place on one path and replaced on another is replaced; what
        # the first path did to it was written into it above.
        in_place = updated[slot] - replaced[slot]
        tensors = {number for number, leaf in enumerate(slots[slot][1])
                   if isinstance(leaf, torch.Tensor)}
        numbers = set(range(len(slots[slot][1]))) - tensors
        if noting is None:
            return in_place, (tensors - updated[slot] - replaced[slot]) | (
                numbers - renumbered[slot])
        # NOTE [numbers no body binds anew under dynamo]
        same = set(unchanged_leaves.kept(noting, slot))
        held = slots[slot][1]
        kept = {number for number in same if _a_number(held[number])}
        # (NOTE [tensors every body gives back, inside an operator's body])
        return {number for number in same - kept
                if not held[number].requires_grad
                and (not context.in_operator_bodies() or held[number]._base is None)}, kept

    parts = _Parts()  # NOTE [parts two holders share]
    for slot, (spec, _) in slots.items():
        flat = tuple(result[slot] or ())
        if spec[0] == "shared":  # (a name of a part met first in another carried value)
            result[slot] = parts.met[spec[1]]
        elif slot in built or spec[0] == "tuple" or (
                _frozen(spec) and torch.compiler.is_dynamo_compiling()):
            result[slot] = _rebuild(spec, iter(flat), parts=parts)
            held = _parts_held(kept_parts, slot, state, user_names, statement)
            _put_kept_back(kept_parts, slot, result[slot], held, user_names, statement,
                           lambda path, part, spec=spec, flat=flat, slot=slot:
                           _write_part_back(spec, flat, *written(slot), path, part))
        else:
            held = _parts_held(kept_parts, slot, state, user_names, statement)
            _set_parts_made(kept_parts, slot, state[slot], spec, flat)
            _write_back(state[slot], spec, enumerate(flat), *written(slot), parts)
            result[slot] = state[slot]
            _put_kept_back(kept_parts, slot, result[slot], held, user_names, statement,
                           lambda path, part, spec=spec, flat=flat, slot=slot:
                           _write_part_back(spec, flat, *written(slot), path, part),
                           tuples_only=True)
    if noting is not None:
        unchanged_leaves.forget(noting)
    return tuple(result)


# NOTE [a view held in an object, its tensor read by a loop]
# `d = {"v": x[1:]}`, then a staged loop that updates `d["v"]` in place and reads `x` (`g =
# x[i]`): in Python the update reaches `x`, and the next trip's read sees it. Staged, the loop
# carries `d["v"]` (a copy, written back into the view after the loop) and reads `x` as it was
# before the loop, on every trip: the rows read were the old ones, silently (replay and
# torch.export; dynamo refuses the body's write). A loop whose body updated in place a tensor of
# a carried object (seen by its version counter) that shares memory with a tensor the loop
# reads (its inputs) is refused, as `_refuse_views_of_written` (runtime/operators.py) refuses
# one held by a name. Not refused: an `if`, whose branch may read the tensor before the update
# (right as it is); the same loop under dynamo, where the body's write is refused by torch.


def _memory(tensor):
    """What identifies `tensor`'s memory: its storage; under dynamo, which cannot ask for one,
    its base (`_base`, kept for views made in the graph)."""
    if torch.compiler.is_dynamo_compiling():
        return tensor if tensor._base is None else tensor._base
    from torch.multiprocessing.reductions import StorageWeakRef

    return StorageWeakRef(tensor.untyped_storage())


def _version_of(tensor):
    """`tensor_reads.version_of`; under dynamo (a probe's run) its fake tensor's version, a
    Python int (NOTE [versions of a probe's copies under dynamo] in tracers/dynamo.py)."""
    if torch.compiler.is_dynamo_compiling() and isinstance(tensor, torch.Tensor):
        return fake_version(tensor)
    return tensor_reads.version_of(tensor)


def _refuse_views_of_read_inputs(bodies, state, names, slots, updated, inputs, statement):
    tensors = [(j, t) for j, t in enumerate(inputs)
               if isinstance(t, torch.Tensor) and not is_stand_in(t) and is_staged(t)]
    if not tensors:
        return
    body = bodies[-1][0]
    code = getattr(getattr(body, "__wrapped__", body), "__code__", None)
    input_names = (code.co_varnames[len(state):len(state) + len(inputs)]
                   if code is not None and code.co_argcount == len(state) + len(inputs)
                   else ())
    for slot, numbers in updated.items():
        spec, leaves = slots[slot]
        for number in sorted(numbers):
            leaf = leaves[number] if number < len(leaves) else None
            if not isinstance(leaf, torch.Tensor) or is_stand_in(leaf):
                continue
            memory = _memory(leaf)
            for j, read in tensors:
                other = _memory(read)
                if read is leaf or not (other is memory if torch.compiler.is_dynamo_compiling()
                                        else other == memory):
                    continue
                read_name = (input_names[j] if j < len(input_names) else None) \
                    or shown_input(read)
                shown = f"`{read_name}`" if read_name else "a tensor"
                raise StagingError(
                    statement,
                    f"the {statement} updates in place a tensor held in `{names[slot]}` that "
                    f"shares its memory with {shown}, which the {statement} also reads (a view "
                    f"of {shown} held in `{names[slot]}`, or the other way round): in Python "
                    f"each update reaches {shown} and the next trip reads it updated, but the "
                    f"staged {statement} carries `{names[slot]}`'s tensors as copies and reads "
                    f"{shown} as it was before the loop",
                    f"Clone the view where it is put in `{names[slot]}` (`.clone()`) if "
                    f"{shown} should not see the update, or update {shown} itself by index in "
                    "the loop and read it there")


# NOTE [a view held in a carried object, its tensor updated]
# `d = {"flat": flat, "w": flat[:1]}` (or `h.flat`, `h.w` of an object the loop carries), then
# `while d["w"].sum() < 5: d["flat"].add_(1)`: in Python `d["w"]` sees each update (4 trips
# from [1, 0]). The loop carries the object's tensors as leaves of its state, each its own
# copy: the body's `d["w"]` never saw the update (20 trips, the cap, in replay and
# torch.export). A loop whose body updated in place a leaf of a carried object that shares
# memory with another leaf of the carried objects (not apart in the storage: `spans_apart`)
# is refused at its line, as a view read as an input is (NOTE [a view held in an object, its
# tensor read by a loop]). An `if` likewise (`if c: d["flat"].add_(1); r = d["w"] * 10` gave
# 10 for Python's 20), though a branch that reads the view only before the update was right:
# refused too (rare: an object holding both a tensor and its view, both carried).
# Under dynamo the bodies as the operator traces them take every leaf for updated (NOTE [dynamo
# and tensors of objects]), and the check was left out: the dict's loop ran 20 trips for
# Python's 4 under torch.compile (alias56), a list's `h[0].add_(1)` too. There the probe's run
# (on its own copies, whose versions dynamo reads right) says which leaves a body updates in
# place, and the memories are compared by storage (NOTE [storages compared under dynamo] in
# tracers/dynamo.py); `spans_apart` knows nothing there, so two views of one tensor that meet
# no common element are refused too (right outside dynamo). Where no probe runs (a statement
# nested in an operator's body, an object holding numbers) nothing is known to be updated;
# there the body's leaves are the operator's operands, which share no memory anyway (open: a
# loop nested in a staged `if` still ran 20 trips under torch.compile, the `if`'s probe's run
# not seeing the loop's update).
def _refuse_views_among_leaves(slots, updated, names, statement) -> None:
    from ..operators import _same_memory, _storage_of

    if not any(updated.values()):
        return
    leaves = [(slot, number, leaf, path)
              for slot, (spec, held) in slots.items()
              for number, (leaf, path) in enumerate(zip(held, _leaf_paths(spec, names[slot])))
              if isinstance(leaf, torch.Tensor) and not is_stand_in(leaf)]
    for slot, number, leaf, path in leaves:
        if number not in updated.get(slot, ()):
            continue
        memory = _storage_of(leaf)
        for other_slot, other_number, other, other_path in leaves:
            if other is leaf or not _same_memory(_storage_of(other), memory) \
                    or spans_apart(leaf, other):
                continue
            raise StagingError(
                statement,
                f"the {statement} updates `{path}` in place and carries `{other_path}`, a "
                f"tensor that shares its memory (a view of `{path}`, or `{path}` a view of "
                f"it), which in Python sees each update; the staged {statement} carries each "
                "as its own copy, so it would see it as it was before",
                f"Compute the view from `{path}` where it is read, after the update (`{path}"
                f"[...]`), or take a copy where it is put in the object (`.clone()`) where it "
                "need not see the update")


# NOTE [objects a body binds anew]
# `keep = d` before `while c: d = {"s": f(x)}`: after the statement `d` is a new dict and `keep`
# the old one, unchanged. A slot some body bound to an object other than the copy it was given
# is rebuilt after the statement (a new object, as in Python); the others are written back into
# the object they held. dynamo refuses the note a body makes of it (a write to a list outside
# the operator's body), so under torch.compile the probe's run (NOTE [dynamo and tensors of
# objects]) notes it; torch.export (not dynamo) notes it as autoconv's replay does. (Both wrote
# the new dict's values into the old one, which `keep` then saw: the rebinding was never seen.)
# Where no probe runs under dynamo (inside an enclosing operator's body, or an object holding
# numbers) the values are still written into the old object.


# NOTE [tensors of objects updated in place]
# `d["m"].add_(a)` in a staged body updates the tensor `d["m"]` in place: in Python every other
# reference to that tensor (`m = d["m"]` taken before, the caller's) sees the update. Each body
# works on its own copy, so after the statement the result is copied into the tensor the object
# holds, rather than put in its place, wherever a body returned the very tensor it was given,
# changed. A body that assigns a new tensor (`d["m"] = d["m"] + a`) leaves the old one as it
# was, as Python does: the new one is put in its place.


# NOTE [tensors of objects updated in place, then replaced]
# `alias = d["m"]; if c: d["m"].add_(1) else: d["m"] = z`: in Python `alias` (or the caller's
# reference) sees the update on the first path, and `d["m"]` is a new tensor on the second.
# Which object the dict holds after a staged statement cannot depend on the data, so `d["m"]`
# gets the statement's result (right value on every path), and the old tensor is written
# (`copy_`) with what each path did to it: each body also gives back its copy of the old tensor
# and whether `d["m"]` is still that object. Two extra state slots per such tensor: its value
# and that flag. A loop carries them from trip to trip: once a trip has replaced `d["m"]`, the
# later trips' updates reach the new tensor, not the old one (`torch.where` on the flag). A body
# whose `d["m"]` is a staged statement's result of this kind (a nested `if`) takes that
# statement's flag (`_SAME_AS`, an attribute of its result). The statement is staged once to
# learn which tensors these are, then again giving them back. After the statement `d["m"]` and
# the old tensor are two objects: a later update in place through one of them is written into
# the other by the result's mark (`kept_object`, NOTE [a name kept on some paths of a staged
# statement] in runtime/operators.py; under torch.compile, where results carry no mark, and
# for a tensor only replaced on some paths, refused there).
_SAME_AS = SAME_AS = "_autoconv_same_as"  # on a result tensor: (the tensor it stands for, the flag)


def _probe(wrap, bodies, flat_state, inputs) -> None:
    """Run each body that returns state once as a types-only probe on copies of the state and
    inputs (under dynamo also of the plain objects among the inputs: NOTE [objects a probe's
    run changes under dynamo] in torch.py), its `wrap` noting which tensors it updates in place
    and which it replaces (NOTE [dynamo and tensors of objects])."""
    from .torch import copies, probe_inputs

    def own(values):  # (a list a body grows is the probe's own too)
        return tuple(list(v) if type(v) is list else v for v in values)

    with context.types_probe():
        for body in bodies:
            if body[1]:
                wrap(*body, probe=True)(*own(copies(tuple(flat_state))),
                                        *own(probe_inputs(tuple(inputs))))


# NOTE [dynamo and tensors of objects]
# dynamo refuses a body's write to an object made outside it, and a tensor's version counter is
# a symbol it cannot compare, so under torch.compile the bodies as the operator traces them
# cannot say which tensors they updated in place and which they replaced (every tensor was
# replaced: the caller's reference to `STATS["n"]`, or a name bound to `d["m"]`, missed the
# update). Outside any operator's body the statement first runs its bodies once as a
# types-only probe, directly (its ops dead code), on copies, which notes the tensors a body
# replaces; every other one is taken as updated in place (written back with `copy_`, which
# keeps an untouched one's value), and a replaced one is given back as outside dynamo (a
# body may have updated it first). A tensor requiring grad is replaced, as before (a write
# into one autograd saved for the backward pass would make that pass fail). Inside an
# enclosing operator's body (a nested statement) a write to a tensor the enclosing body was
# given would be dynamo's "input mutation": those tensors are replaced there, as before
# (README, Known shapes); NOTE [tensors every body gives back, inside an operator's body].


# NOTE [tensors every body gives back, inside an operator's body]
# A nested statement's carried object holds tensors its bodies only read (`s.x`, beside `if v >
# 2: s.k = s.k + 1` in a staged `for v in x0` where `s.x` is `x0`). Replaced by the operator's
# output, such a tensor was a new object after the statement, and the enclosing loop, which
# joins `s.x` to its input `x0` (NOTE [one tensor held under two names] in torch.py), took its
# body to rebind `s.x` and refused the loop under torch.compile (silent39 s01). A tensor every
# body gave back as the one it was given (NOTE [numbers no body binds anew under dynamo]) is
# written back into the tensor the object holds with `copy_` there too, as outside any
# operator's body: the object keeps its tensor, holding what the bodies made of it (an update
# in place included, which dynamo cannot show). Only where that tensor is no view: the
# enclosing body's own tensors (its copies of its state, `private_split` in torch.py, values
# it computes) are no views, and what it was given as an input is (its `view_as`, in
# `_run_body`), a write into which dynamo refuses as input mutation; such a tensor is replaced,
# as before.


def _a_number(leaf) -> bool:
    """Whether a carried leaf is a number (or a number's stand-in, which a body rebinds
    rather than updates in place)."""
    return not isinstance(leaf, torch.Tensor) or is_stand_in(leaf)


def _giving_state(flat_state, names, slots, giving):
    """The flat state and names with the extra slots of `giving` at the end: each old tensor
    and a flag, true, that its slot still holds it."""
    extra, extra_names = [], []
    for slot, number in giving:
        old = slots[slot][1][number]
        extra += [old, torch.ones((), dtype=torch.bool, device=old.device)]
        extra_names += [f"<{names[slot]} leaf {number} before>",
                        f"<{names[slot]} leaf {number} kept>"]
    return (*flat_state, *extra), (*names, *extra_names)


def _given_back(giving, given_leaves, out, extra):
    """A body's extra outputs for `giving` (`out`: its flattened state outputs): what its copy
    of each old tensor became (while its slot still held it) and whether the slot still holds
    it."""
    back = []
    for (slot, number), (value, same) in zip(giving, zip(extra[::2], extra[1::2])):
        mine, now = given_leaves[slot][number], out[slot][number]
        if now is mine:
            kept = same
        else:
            kept = None if torch.compiler.is_dynamo_compiling() else getattr(now, _SAME_AS, None)
            kept = (torch.logical_and(same, kept[1]) if kept is not None and kept[0] is mine
                    else torch.zeros_like(same))
        back += [torch.where(same, mine, value), kept]
    return back


def _originals_back(result, count, giving, slots) -> None:
    """Write what the statement did to each old tensor of `giving` into it (and note, for an
    enclosing statement, that the slot's new tensor stands for it where the flag holds)."""
    extra = result[count:]
    for (slot, number), (value, kept) in zip(giving, zip(extra[::2], extra[1::2])):
        old = slots[slot][1][number]
        if old.requires_grad and old.is_leaf and torch.is_grad_enabled():
            continue  # (Python's update of it in place would have raised: only replaced)
        if context.probing():
            continue  # (a probe's ops stay dead code: NOTE [state updated in place])
        if value is not old and old.shape == value.shape and old.dtype == value.dtype:
            old.copy_(value)
        new = result[slot][number]
        if isinstance(new, torch.Tensor) and not torch.compiler.is_dynamo_compiling():
            setattr(new, _SAME_AS, (old, kept))



def _attribute_tables(value) -> tuple:
    """The tables holding `value`'s attributes, when it has any a body could set."""
    if isinstance(value, torch.nn.Module):
        return (vars(value), value._buffers, value._parameters)
    if isinstance(value, (torch.Tensor, StagedList)) or is_staged(value) or is_undefined(value):
        return ()
    if isinstance(value, (numpy.ndarray, numpy.generic)):
        # (no attributes a body sets; dynamo shows `np.exp(-k)`'s float64 as an ndarray
        # whose `__dict__` it cannot read)
        return ()
    if isinstance(value, _NUMBERS) or isinstance(value, _SYMBOLIC):
        # (none either; a float argument dynamo made symbolic on a second value, carried by a
        # staged loop, stopped the compile at this `getattr`: dynamo has no `hasattr` of a
        # SymFloat's `__dict__`, tester42 s06, pyro's step-size search called with 0.1, 1.5)
        return ()
    table = getattr(value, "__dict__", None)
    tables = (table,) if type(table) is dict else ()
    if torch.compiler.is_dynamo_compiling():  # (unused there: dynamo refuses the stores)
        return tables
    slots = _slot_names(type(value))
    return (*tables, _SlotTable(value, slots)) if slots else tables


_SLOTS = weakref.WeakKeyDictionary()  # class -> _declared_slots(class)


def _slot_names(cls) -> tuple:
    """The slots `cls`'s MRO declares (not `__dict__` / `__weakref__`)."""
    found = _SLOTS.get(cls)
    if found is None:
        found = _SLOTS[cls] = _declared_slots(cls)
    return found


def _declared_slots(cls) -> tuple:
    names = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and slot not in names:
                names.append(slot)
    return tuple(names)


class _SlotTable:
    """An object's `__slots__` fields as a table (the few dict methods `refusing_uncarried_
    changes` uses): a field set in a slot by a staged body is refused and undone as one in
    `__dict__` is. Without it a slotted object's counter (`c.n += 1` under a tensor `if` in a
    staged loop) kept the trace's count on every input, silently (session 28)."""

    def __init__(self, value, slots):
        self.value, self.slots = value, slots

    def keys(self):
        return [s for s in self.slots if hasattr(self.value, s)]

    def __iter__(self):
        return iter(self.keys())

    def __getitem__(self, slot):
        return getattr(self.value, slot)

    def get(self, slot, default=None):
        return getattr(self.value, slot, default)

    def clear(self):
        for slot in self.keys():
            delattr(self.value, slot)

    def update(self, fields):
        for slot, field in fields.items():
            setattr(self.value, slot, field)


# NOTE [module attributes set in a staged body]
# `self.steps += 1` on a buffer, or `self.best = h`, in a staged body whose statement may rebind
# the attribute (it also calls `self.l(h)`: NOTE [attributes updated in place] in
# autoconv/converters/control_flow.py) stores into the module inside torch's operator. Replay
# sees the store; dynamo refuses it in its own words ("HOP: Unsafe side effect", no user line)
# and torch.export's non-strict trace records it as an assignment of a node of the operator's
# subgraph, then fails looking for that node (a bare StopIteration): tester t14 repro 23. Under
# both, a store to an attribute of a module the statement holds is found in the body's code
# before anything is staged and refused at its line. (Found in the code: a store in a Python
# `if` the body does not take is refused too.)


def _refuse_module_stores(bodies, state, names, statement: str, inputs=()) -> None:
    modules = {i for i, value in enumerate(state) if isinstance(value, torch.nn.Module)}
    for code, where, position, attribute, line in _stores_into(bodies, modules):
        _raise_module_store(code.co_filename, line, names[position], attribute, where, statement)
    if torch.compiler.is_dynamo_compiling():
        _refuse_module_numbers(bodies, (*state, *inputs), modules, names, statement)


# NOTE [a module's number updated by op= in a staged body under dynamo]
# `self.total += x.mean().item()` or `self.n += 1` in a tensor `if`, `self.total` a Python
# number of the module: the converter reads the field into an alias before the statement and
# the body calls `ac.aug_assign_attribute(self, 'total', alias, '+=', v)`, which stores the
# number into the module (augmented.py). autoconv's replay writes it back; dynamo refuses the
# store inside torch.cond with its own UncapturedHigherOrderOpError ("Unsafe side effect", or
# "Non-nullified side effect: Attribute 'n' on an outer-scope object was changed") and no line
# of the user's, and `_stored_attributes` saw no STORE_ATTR there. Found in the body's code (the
# call with the module's and the alias's parameters) before anything is staged, and refused at
# its line. A tensor field's `op=` is in place on the alias, carried: not refused.


def _refuse_module_numbers(bodies, given, modules, names, statement: str) -> None:
    for fn, where in bodies:
        code = getattr(fn, "__code__", None)
        if code is None or not modules:
            continue
        for owner, attribute, alias, line in _aug_assigned_attributes(code):
            if owner not in modules or alias >= len(given):
                continue
            value = given[alias]
            if isinstance(value, torch.Tensor) and not is_stand_in(value):
                continue
            from ..errors import raise_at_under_dynamo

            name = names[owner]
            raise_at_under_dynamo(
                (code.co_filename, line), statement,
                f"'{name}.{attribute}', a Python number of the module '{name}', is updated "
                f"{where} (`{name}.{attribute} op= ...`); under torch.compile a staged body "
                "cannot store into a module, and a number of it is not carried through the "
                f"{statement}",
                f"Keep the value in a tensor field (`{name}.{attribute} = torch.zeros(())` "
                f"in `__init__`, then `{name}.{attribute} += x.mean()`, updated in place and "
                "carried), or in a local variable updated in the body "
                f"(`{attribute} = {name}.{attribute}` before the {statement}) and assigned to "
                f"'{name}.{attribute}' after it")


def _aug_assigned_attributes(code) -> tuple:
    """(owner's parameter position, attribute, alias's parameter position, line) of each
    `ac.aug_assign_attribute(owner, 'attribute', alias, ...)` call in `code` itself (NOTE [a
    module's number updated by op= in a staged body under dynamo])."""
    params = code.co_varnames[: code.co_argcount]
    found, line, window = [], code.co_firstlineno, []
    for instruction in dis.get_instructions(code):
        if instruction.starts_line is not None:
            line = instruction.starts_line
        if instruction.opname == "CACHE":
            continue
        window = (window + [instruction])[-4:]
        if len(window) < 4 or window[0].argval != "aug_assign_attribute" or \
                window[0].opname not in ("LOAD_ATTR", "LOAD_METHOD"):
            continue
        owner, attribute, alias = window[1:]
        if (owner.opname in ("LOAD_FAST", "LOAD_FAST_CHECK") and owner.argval in params
                and attribute.opname == "LOAD_CONST" and type(attribute.argval) is str
                and alias.opname in ("LOAD_FAST", "LOAD_FAST_CHECK")
                and alias.argval in params):
            found.append((params.index(owner.argval), attribute.argval,
                          params.index(alias.argval), line))
    return tuple(found)


_aug_assigned_attributes._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


def _stores_into(bodies, positions) -> list:
    """(code, where, position, attribute, line) of each `state[position].attribute = ...` the
    code of `bodies` ((fn, where) pairs) holds, for the state positions in `positions`."""
    found = []
    if not positions:
        return found
    for fn, where in bodies:
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        found += [(code, where, position, attribute, line)
                  for position, attribute, line in _stored_attributes(code)
                  if position in positions]
    return found


def _refuse_slotted_stores(bodies, state, names, statement: str) -> None:
    """Under dynamo: refuse a body that sets an attribute of an object in `state` whose class
    keeps its fields in `__slots__` (a `self.b = ...` in a tensor `if` of such a class's
    converted `__init__`, lead49). Such an object is not carried (`_has_slots`): autoconv's own
    trace specialises the statement on its condition, but dynamo refuses the store inside
    torch.cond itself, with its bare UncapturedHigherOrderOpError ("Mutating a variable from
    outside the scope of this HOP") and no line of the user's."""
    slotted = {i for i, value in enumerate(state)
               if not isinstance(value, (torch.Tensor, torch.nn.Module))
               and _slotted_record(type(value))}
    for code, where, position, attribute, line in _stores_into(bodies, slotted):
        name, cls = names[position], type(state[position]).__qualname__
        from ..errors import raise_at_under_dynamo

        raise_at_under_dynamo(
            (code.co_filename, line), statement,
            f"`{name}.{attribute}` is set {where}, and '{name}' is a {cls}, whose "
            f"fields are `__slots__`; under torch.compile a staged statement carries "
            "the fields of objects that keep them in a `__dict__` only",
            f"Assign a local variable on each path (`{attribute} = ...`) and set "
            f"`{name}.{attribute} = {attribute}` after the {statement}, or drop "
            f"`__slots__` from {cls}")


def _slotted_record(cls) -> bool:
    """Whether `cls` is a user's class (made by a class statement, not a tuple) whose
    instances keep fields in `__slots__`. Called for real by dynamo."""
    return (bool(cls.__flags__ & _HEAP_TYPE) and not issubclass(cls, tuple)
            and not cls.__module__.startswith(("torch.", "autoconv_runtime."))
            and cls.__module__ not in _NOT_RECORDS and _has_slots(cls))


_slotted_record._dynamo_marked_constant = True


def _refuse_new_attributes(bodies, slots, names, statement: str) -> None:
    """Under dynamo: refuse a body that sets an attribute a carried object does not have
    before the statement (`self.ts = -ts` in both branches of an `if` in a method), found in
    the body's code. The object is carried by the fields it has; dynamo's operator would drop
    the new one, and reading it after the statement raised an AttributeError inside dynamo's
    trace ("Observed exception"), with no line of the user's."""
    objects = {slot: {k for k, _ in spec[2]} for slot, (spec, _) in slots.items()
               if spec[0] == "object"}
    if not objects:
        return
    for fn, _, where in bodies:
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        for position, attribute, line in _stored_attributes(code):
            if (position in objects and attribute not in objects[position]
                    and not _set_through_class(slots[position][0][1], attribute)):
                name = names[position]
                from ..errors import raise_at_under_dynamo

                raise_at_under_dynamo(
                    (code.co_filename, line), statement,
                    f"`{name}.{attribute}` is set {where}, and '{name}' has no attribute "
                    f"'{attribute}' before the {statement}; a staged statement carries an "
                    "object's attributes, it cannot add one",
                    f"Give `{name}.{attribute}` a value of the kind the body sets before the "
                    f"{statement} (a tensor: `{name}.{attribute} = torch.zeros_like(...)`), so "
                    "that the body only updates it, or assign a local variable in the body and "
                    f"set `{name}.{attribute}` from it after the {statement}")


def _set_through_class(cls, attribute: str) -> bool:
    """Whether `obj.attribute = v` on an instance of `cls` goes to a data descriptor of the
    class (a property's setter storing `self._t`: a field the object has, carried), not to a
    new field of the instance."""
    found = inspect.getattr_static(cls, attribute, None)
    return found is not None and hasattr(type(found), "__set__")


_set_through_class._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


def _stored_attributes(code) -> tuple:
    """(parameter position, attribute, line) of each `param.attribute = ...` (or `del`) in
    `code` itself."""
    params = code.co_varnames[: code.co_argcount]
    found, previous, line = [], None, code.co_firstlineno
    for instruction in dis.get_instructions(code):
        if instruction.starts_line is not None:
            line = instruction.starts_line
        if (instruction.opname in ("STORE_ATTR", "DELETE_ATTR") and previous is not None
                and previous.opname in ("LOAD_FAST", "LOAD_FAST_CHECK")
                and previous.argval in params):
            found.append((params.index(previous.argval), instruction.argval, line))
        previous = instruction
    return tuple(found)


_stored_attributes._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


def _raise_module_store(filename, line, name, attribute, where, statement):
    problem = (f"'{name}.{attribute}' of the module '{name}' is set {where}; under "
               "torch.compile and torch.export a staged body cannot set a module's attribute "
               f"(`{name}.{attribute} += 1` is carried only where the statement calls no "
               f"method or submodule of '{name}')")
    fix = (f"Keep the value in a local variable (a count: `n = {name}.{attribute}` before the "
           f"{statement}, `n += 1` in it) and assign '{name}.{attribute}' after the "
           f"{statement}")
    if torch.compiler.is_dynamo_compiling():
        from ..errors import raise_at_under_dynamo

        raise_at_under_dynamo((filename, line), statement, problem, fix)
    raise StagingError.at((filename, line), statement, problem, fix)



# NOTE [objects reached through a callable]
# `evaluate = counter.evaluate` before a staged loop, then `x = evaluate(x)` in its body, where
# the method sets `self.nfev += 1`: the body's input is the bound method, not `counter`, and the
# change went unseen: `counter.nfev` kept the trace's count (torchmin's `closure = sf.closure`,
# silently wrong in replay and export). The objects a callable input reaches are checked as the
# inputs themselves are: a bound method's `__self__`, a functools.partial's function, arguments
# and keywords, a function's closure cells (a lambda over `obj`) and default arguments, and,
# `_REACH_DEPTH` deep, what the callables among those (or in a list, tuple or dict among those,
# or in one the body reads) reach. A list is among them whoever holds it: a partial's list was
# not (only a closure cell's), and scipy's counter `partial(f, s, calls)` with `calls[0] += 1`
# kept the trace's count (tester34b s01); a list so changed is carried by its items as a
# HeldList, its numbers as an object's are. A change moves
# the object into the statement's state (`with_input_as_state`, as `counter.evaluate(x)` does),
# and the body is given the callable rebuilt around its copy of the object
# (`_rebuilt_callable`). Under torch.compile dynamo refuses the change itself, as it does
# through the object ("Unsafe side effect").


def reached_objects(value) -> list:
    """The objects, dicts and lists callable `value` may change, carried as a staged
    statement's state where a body changes them (NOTE [objects reached through a callable])."""
    return [found for found, _ in _reached(value, _REACH_DEPTH, set())]


def reached_name(value, index: int):
    """The name in a function's closure through which callable `value` reaches its
    `reached_objects(value)[index]` (`c` for `def bump(): c.hits += 1`), or None (a bound
    method's object, a partial's argument)."""
    return _reached(value, _REACH_DEPTH, set())[index][1]


# Functions held in closure cells are followed this deep (`outer` calling `inner` calling
# `bump`, each a closure of the enclosing function): a closure calling another closure that
# changes an object of the enclosing function was unseen, and the change kept the trace's
# value (closures27: silently wrong in replay and torch.export).
_REACH_DEPTH = 3


def _reached(value, depth: int, seen: set) -> list:
    """(object, the name the callable holds it by, or None) for `reached_objects`."""
    if type_in(value, (list, tuple, dict)):
        # Callables held in a container the body reads (`objectives[0](x)`): what they reach
        return [found for item in (value.values() if type(value) is dict else value)
                if _followed(item) for found in _reached(item, depth, seen)]
    if _is_plain_object(value):
        # Callables an object holds in its fields (a callable object's `self.fn =
        # partial(f, calls)`, `o.f(x)` in the body): what they reach. Its own fields are
        # compared as the object's (`_containers`).
        if torch.compiler.is_dynamo_compiling() or depth == 0:
            return []
        return [found for item in vars(value).values()
                if _followed(item) or (type_in(item, (list, tuple, dict)) and not
                                       _is_plain_object(item))
                for found in _reached(item, depth - 1, seen)]
    if isinstance(value, types.MethodType):
        candidates = [(value.__self__, None)]
        candidates += _reached(value.__self__, depth, seen)
    elif isinstance(value, functools.partial):
        names = _parameter_names(value.func)
        candidates = [(value.func, None)]
        candidates += [(a, names[i] if i < len(names) else None)
                       for i, a in enumerate(value.args)]
        candidates += list(map(tuple, map(reversed, value.keywords.items())))
        candidates += _reached(value.func, depth, seen)
    elif isinstance(value, types.FunctionType) and not torch.compiler.is_dynamo_compiling():
        # (never under dynamo, where `closure` is None and an `id` is a guard)
        if id(value) in seen:  # (a recursive closure, or a function reached twice)
            return []
        seen.add(id(value))
        candidates = []
        for name, cell in zip(value.__code__.co_freevars, closure(value) or ()):
            try:
                candidates.append((cell.cell_contents, name))
            except ValueError:  # an empty cell
                continue
        # Default arguments are held by the function as its cells are (`def f(x, acc=acc)`)
        names = _parameter_names(value)
        defaults = value.__defaults__ or ()
        candidates += [(d, names[len(names) - len(defaults) + i])
                       for i, d in enumerate(defaults)]
        candidates += list(map(tuple, map(reversed, (value.__kwdefaults__ or {}).items())))
    else:
        return []
    if depth > 1:
        # What the callables it holds reach (`partial(f, [partial(g, acc)])`, a closure over
        # `bump`), and those in its lists, tuples and dicts
        for candidate, _ in list(candidates):
            if (_followed(candidate) or type_in(candidate, (list, tuple, dict))
                    or _is_plain_object(candidate)):
                candidates += _reached(candidate, depth - 1, seen)
    found = []
    for candidate, name in candidates:
        # A list a callable holds (`acc` of `partial(f, acc)`, of a closure's cell or a default
        # argument): the callee changes the caller's list (`acc[0] += 1`), which the statement
        # then carries or refuses (`with_input_as_state`), as it does that change written in
        # the body. A partial's list was left out, and its count kept the trace's (tester34b
        # s01: silently wrong in replay and export).
        if ((_is_plain_object(candidate) or type_in(candidate, (dict, list)))
                and not any(candidate is f for f, _ in found)):
            found.append((candidate, name))
    return found


def _followed(value) -> bool:
    """Whether `_reached` looks into `value`: a callable that may hold state."""
    return isinstance(value, (types.MethodType, functools.partial, types.FunctionType))


def _parameter_names(fn) -> tuple:
    """The positional parameter names of function `fn` (unwrapped), or ().  Not under dynamo
    (names a refusal shows; dynamo knows no `__code__` of some functions made in its trace)."""
    if torch.compiler.is_dynamo_compiling():
        return ()
    while getattr(fn, "__wrapped__", None) is not None and not isinstance(
            fn, functools.partial):
        fn = fn.__wrapped__
    code = getattr(fn, "__code__", None) if isinstance(fn, types.FunctionType) else None
    return code.co_varnames[:code.co_argcount] if code is not None else ()


def closure(fn):
    """`fn.__closure__`; None under dynamo, where reading a function's cells as values made
    them objects to dynamo, which then failed when it called the function ("Expected
    CellVariable, got UserDefinedObjectVariable in load_cell": tester20, any closure given to
    a helper that calls it in a staged loop), and which does not show the closure of a
    function made in its trace (AttributeError there, `getattr` with a default too). Under
    dynamo a change made through the cells is refused by dynamo itself (NOTE [objects reached
    through a callable])."""
    if torch.compiler.is_dynamo_compiling():
        return None
    try:
        return fn.__closure__
    except AttributeError:
        return None


def _rebuilt_callable(value, old, new, copies=None, parts=()):
    """Callable `value` (or a list, tuple or dict of callables, or an object holding one) with
    the object `old` it reaches replaced by `new` (a body's copy), and each of the other
    (old, new) `parts` pairs (the parts of `old` and of its copy: NOTE [holders of an object's
    parts]) too. `copies`, if given, gets (copy, its fields) for each object copied on the way
    (see `_copies_changed`)."""
    replaced = ((old, new), *parts)

    def swap(v):
        for before, after in replaced:
            if v is before:
                return after
        if (_followed(v) or type_in(v, (list, tuple, dict)) or _is_plain_object(v)) and (
                v is not value) and any(
                o is before for o in reached_objects(v) for before, _ in replaced):
            # (a callable calling another that reaches `old`: `_reached`; the body's calls go
            # to a copy of the inner one too. A closure calling itself keeps its own cell:
            # reached_objects does not follow it twice)
            return _rebuilt_callable(v, old, new, copies, parts)
        return v

    if type_in(value, (list, tuple)):
        return type(value)(map(swap, value))
    if type(value) is dict:
        return {k: swap(v) for k, v in value.items()}
    if _is_plain_object(value):
        # (an object whose field holds a callable reaching `old`: the body reads a copy of it,
        # its fields the same but that callable's)
        cls = type(value)
        copy = cls.__new__(cls) if cls is types.SimpleNamespace else object.__new__(cls)
        for k, v in vars(value).items():
            object.__setattr__(copy, k, swap(v))
        if copies is not None:
            copies.append((copy, tuple(vars(copy).items())))
        return copy
    if isinstance(value, types.MethodType):
        if torch.compiler.is_dynamo_compiling():
            # (dynamo cannot call `types.MethodType`; a partial calls the method the same way)
            return functools.partial(value.__func__, swap(value.__self__))
        return types.MethodType(value.__func__, swap(value.__self__))
    if isinstance(value, functools.partial):
        return functools.partial(swap(value.func), *map(swap, value.args),
                                 **{k: swap(v) for k, v in value.keywords.items()})
    if isinstance(value, types.FunctionType):
        cells = None
        if value.__closure__:
            cells = []
            for cell in value.__closure__:
                try:
                    contents = cell.cell_contents
                except ValueError:
                    cells.append(cell)
                    continue
                swapped = swap(contents)
                cells.append(cell if swapped is contents else types.CellType(swapped))
            cells = tuple(cells)
        defaults = value.__defaults__ and tuple(map(swap, value.__defaults__))
        rebuilt = types.FunctionType(value.__code__, value.__globals__, value.__name__,
                                     defaults, cells)
        rebuilt.__kwdefaults__ = value.__kwdefaults__ and {
            k: swap(v) for k, v in value.__kwdefaults__.items()}
        rebuilt.__dict__.update(value.__dict__)
        rebuilt.__qualname__ = value.__qualname__
        return rebuilt
    return value


class ChangedInput(Exception):
    """Internal, never reaches the user: a body changed the object (or dict) `args[0]`, an
    index into the statement's inputs, which the statement then carries (see
    `with_input_as_state`); `args[1]`, if given: only by updating tensors in it in place;
    `args[3]`, if given: the input is a callable, and the object it reaches with that index in
    `reached_objects` changed; `args[4]`, if given: the other inputs the same run of a body
    changed, as (index, shortened, through) triples (NOTE [inputs changed together]). Not a
    StagingError: under dynamo making one raises."""

    @property
    def others(self) -> tuple:
        return self.args[4] if len(self.args) > 4 else ()

    @property
    def through(self):
        """The index of the changed object among the callable input's `reached_objects`."""
        return self.args[3] if len(self.args) > 3 else None

    # (no __init__ of its own: dynamo cannot trace one calling `super().__init__`)
    @property
    def in_place(self) -> bool:
        return len(self.args) > 1 and self.args[1]

    @property
    def shortened(self) -> bool:
        """A list the body took items from (`data.pop()`)."""
        return len(self.args) > 2 and self.args[2]


class UpdatedInputs(Exception):
    """Internal, never reaches the user: under dynamo, a probe of the bodies found them
    updating in place the tensor inputs at the positions `args` (indices into the statement's
    inputs), which the statement then carries (`with_inputs_as_state`; NOTE [inputs updated
    unseen under dynamo] in unseen_updates.py)."""


# NOTE [objects changed through a call under dynamo]
# `acc.add(v)` in a staged loop, where the method sets `self.total`, changes an object the body
# only reads. Outside dynamo the operator's own run of the body finds that (`refusing_uncarried_
# changes`) and the statement is staged again carrying the object. Under torch.compile that run
# is dynamo's trace of the operator's body, which refuses the store itself ("HOP: Unsafe side
# effect", no user line). So under dynamo the statement first runs each body once as a probe,
# directly, on copies of the plain objects it reads (and of those its callables reach: a bound
# method's `__self__`, a partial's arguments), and a change found there moves the object into
# the state before the operator is traced (`probed_change`), as dicts and lists are moved
# (`_probe_input_changes` in torch.py). The copies are made field by field and compared by the
# fields they were made with: under dynamo `vars()` of an object made in the trace is empty.


def probe_copies(inputs, indices):
    """(copies, watched) for a probe run of a statement's bodies under dynamo (NOTE [objects
    changed through a call under dynamo]): `inputs` with each plain object at `indices`, and
    each object a callable there reaches, copied with the plain objects, dicts and lists inside
    it (its tensors cloned; an object, dict or list reached twice is copied once), the callables rebuilt around
    the copies; `watched`: (input index, index among `reached_objects` or None, container,
    its contents as copied) for each copied container."""
    memo, watched, out = [], [], list(inputs)
    for i in indices:
        value = inputs[i]
        if _is_plain_object(value):
            out[i] = _probe_copy(value, memo, watched, (i, None))
            continue
        rebuilt = value
        for k, reached in enumerate(reached_objects(value)):
            if not _is_plain_object(reached):
                continue
            rebuilt = _rebuilt_callable(rebuilt, reached, _probe_copy(reached, memo, watched,
                                                                      (i, k)))
        out[i] = rebuilt
    return tuple(out), watched


def _probe_copy(value, memo, watched, owner):
    # (`memo`: (original, copy) pairs, found by `is`: `id()` of a value under dynamo guards
    # on it, and a guard on an input tensor's id recompiled for every call's tensor)
    if isinstance(value, torch.Tensor):
        # (a number's stand-in stays one: its `self.total += v` then rebinds the field, which
        # the probe sees, NOTE [fields updated by a method] in the control-flow converter)
        return copy_of(value)
    for original, copy in memo:
        if original is value:
            return copy
    if is_carried_mapping(value):  # (a defaultdict too: NOTE [dict subclasses as state])
        copy = {} if type(value) is dict else _empty_maker(value)()
        memo.append((value, copy))
        for k, v in value.items():
            dict.__setitem__(copy, k, _probe_copy(v, memo, watched, owner))
        watched.append((*owner, copy, tuple(copy.items())))
        return copy
    if type(value) is list:
        copy = []
        memo.append((value, copy))
        for v in value:
            copy.append(_probe_copy(v, memo, watched, owner))
        watched.append((*owner, copy, tuple(copy)))
        return copy
    if _is_plain_object(value):
        cls = type(value)
        copy = cls.__new__(cls) if cls is types.SimpleNamespace else object.__new__(cls)
        memo.append((value, copy))
        fields = []
        for k, v in vars(value).items():
            item = _probe_copy(v, memo, watched, owner)
            object.__setattr__(copy, k, item)
            fields.append((k, item))
        watched.append((*owner, copy, tuple(fields)))
        return copy
    return value


def probed_change(watched):
    """The ChangedInput for the first container of `watched` (see `probe_copies`) the probe's
    run changed, or None."""
    for index, reached, container, before in watched:
        if is_carried_mapping(container):
            now = tuple(container.items())
            changed = len(now) != len(before) or any(
                a[0] != b[0] or not identical(a[1], b[1]) for a, b in zip(now, before))
        elif type(container) is list:
            changed = len(container) != len(before) or any(
                a is not b for a, b in zip(container, before))
        else:
            changed = any(getattr(container, k, before) is not v for k, v in before)
        if changed:
            shortened = type(container) is list and len(container) < len(before)
            return (ChangedInput(index, False, shortened) if reached is None
                    else ChangedInput(index, False, shortened, reached))
    return None


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
    elif is_carried_mapping(value):
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


# NOTE [symbolic numbers in objects a body reads]
# pytorchtools' EarlyStopping: `es(v.item())` in a loop with a tensor break, where `__call__`
# sets `self.best = -v` under `if self.best is None:`. The loop's first iteration, run as
# Python, leaves the trace's symbolic float in the object, which the staged rest of the loop
# only passes to a method: the object is an input the bodies read, a constant of their own
# trace, where a symbolic number of the enclosing trace is untracked (torch: "-zuf0 is not
# tracked with proxy", tester24 s12). Such an object (or dict) is carried from the start, as
# one a body changes is (`with_input_as_state`), its symbolic numbers as a local
# `best = float(x[0])` is (NOTE [numbers in objects]). A list input of them is left alone:
# `with_input_as_state` carries a list only where a body updates or grows it.


def _symbolic_field(contents, given, through):
    """(input index, reached index or None) of the first object or dict input of `contents`
    (see `refusing_uncarried_changes`) holding a symbolic number, or None."""
    for (i, k), found in contents:
        top = given[i] if k is None else through[i][k]
        if not (_is_plain_object(top) or is_carried_mapping(top)):
            continue
        for container, _ in found:
            items = container if type(container) is list else container.values()
            if any(isinstance(v, _SYMBOLIC) for v in items):
                return i, k
    return None


def _changed_inputs(contents):
    """The (input index, reached index) pairs of `contents` (as `refusing_uncarried_changes`
    gathers them) whose containers changed since, in order, or None for none. All of them, not
    the first: NOTE [inputs held by a moved object]."""
    changed = tuple(i for i, found in contents
                    if any(_changed_container(container, old) for container, old in found))
    return changed or None


def _changed_container(container, old) -> bool:
    if type(container) is list:
        return len(container) != len(old) or any(
            not identical(a, b) for a, b in zip(container, old))
    return list(container) != list(old) or any(
        not identical(container[k], old[k]) for k in old)


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
        # (the user's name where the bodies' code shows none: NOTE [names of a statement's
        # inputs]; the message said "'<input 0>'" for `x` of `b.v = x[1:]`)
        other = shown_input(value) or other
        if value._base is held or held._base is value or (
                held._base is not None and value._base is held._base):
            raise StagingError(
                statement,
                f"'{name}' is updated in place in the statement and '{other}' is a view of "
                "the same tensor (or the other way round); the staged statement carries each "
                "as its own copy, so one would not see the other's update",
                f"Take a copy (`{other} = <the view>.clone()`) where the statement need not "
                f"see the update through it, the view inside the statement (`{other} = ...` in "
                "the body), or update the tensor through one name only")


def _input_names(body):
    """The user's names of a staged `for` loop body's inputs, kept in its `_input_names`
    default, or None."""
    try:
        defaults = body.__kwdefaults__
    except AttributeError:
        # dynamo knows no `__kwdefaults__` of a function made in its trace, and raises there
        # even from `getattr(body, "__kwdefaults__", None)` (a `for` loop whose body changes a
        # dict through a call stopped with dynamo's "Observed exception")
        return None
    return (defaults or {}).get("_input_names")


# NOTE [names of a statement's inputs]
# A refusal about an input a body changes (`self.state.setdefault(...)` gains a key) names it as
# the user wrote it. The bodies that reach `with_input_as_state` are often wrappers of the
# converted ones (an object in the state is carried by `carry`'s wrapper, taking `*args`), whose
# code shows no names, and under dynamo a function made in the trace shows no `__kwdefaults__`:
# the message said "`<changed object>`" (tester t20 repro 4). So `if_stmt`, `while_stmt` and a
# staged `for` loop (runtime/operators.py) push their inputs with the user's names (the
# converter's `updated=` chain, `self.state` for its alias `self_state`, else the converted
# body's parameter) while they stage, and the object is found here by identity.
_shown_inputs = []  # (inputs, names) of the statements being staged, innermost last


def show_inputs(inputs, names) -> int | None:
    """Push a statement's inputs with their names (NOTE [names of a statement's inputs]); not
    inside the bodies dynamo traces for an operator, which may not write outside them (HOP:
    Unsafe side effect). Returns the depth it pushed at, for `unshow_inputs`, or None."""
    if torch.compiler.is_dynamo_compiling() and context.in_operator_bodies():
        return None
    depth = len(_shown_inputs)
    _shown_inputs.append((inputs, names))
    return depth


def unshow_inputs(depth: int | None) -> None:
    # (down to its own depth: what a nested statement interrupted before its `try` left above
    # it goes too, NOTE [stacks of an unfinished staging] in context.py)
    if depth is not None:
        del _shown_inputs[depth:]


def shown_input(value):
    """The user's name of `value` among the inputs of the innermost statement being staged
    that has it (NOTE [names of a statement's inputs]), or None."""
    for inputs, names in reversed(_shown_inputs):
        for given, name in zip(inputs, names):
            if name and identical(given, value):  # NOTE [identity under dynamo]
                return name
    return None


# NOTE [inputs changed together]
# A run of the bodies that changes several inputs they only read (torchmin's BFGS loop body:
# `hess.update(s, y)` sets `hess.H`, the objective's `closure` counts `sf.nfev`) reports them
# all, in the order the check finds them, and `with_input_as_state` moves them into the state
# one inside the other at once: the first outermost, as the stagings again that each found the
# next would have nested them. Reported one per attempt, each made an attempt more at every
# level of a chain of nested statements, each attempt running the bodies below it again.


def with_input_as_state(stage, bodies, state, names, inputs, changed, statement):
    """`stage(bodies, state, names, inputs)` with `inputs[changed.args[0]]`, an object a body
    changed (`s.step(dt)` in a loop, where `step` sets `self.state`), moved into the state:
    carried by its tensors (see `carry`) and updated in place after the statement. `bodies` are
    (function, returns_state) pairs; `changed` the ChangedInput. Returns the statement's state.

    Raises StagingError for a list changed other than by updating its tensors in place (its
    growth would be a new value no name takes)."""
    changed = _holder_first(changed, inputs)  # NOTE [inputs held by a moved object]
    index = changed.args[0]
    count = len(state)
    held = inputs[index]
    if changed.through is not None:  # NOTE [objects reached through a callable]
        held = reached_objects(held)[changed.through]
    input_names = [f"<input {i}>" for i in range(len(inputs))]
    for body, _ in bodies:
        code = getattr(getattr(body, "__wrapped__", body), "__code__", None)
        if code is not None and code.co_argcount == count + len(inputs):
            input_names = list(code.co_varnames[count: count + len(inputs)])
            break
        # A staged `for` loop's bodies take their arguments as `*rest`; they name the inputs
        # of the user's body (tester t15 repro 6: "`<changed object>.state`" for `opt.state`)
        shown = _input_names(body)
        if shown:
            input_names[:len(shown)] = shown
            break
    name = shown_input(inputs[index]) or (
        input_names[index] if not input_names[index].startswith("<") else "<changed object>")
    if changed.through is not None:
        name = f"<the object of {name}>"
    same, via = _moved(inputs, held)
    # NOTE [inputs held by a moved object]
    inside = {i: path for i, path in ((i, _path_in(held, v)) for i, v in enumerate(inputs)
                                      if i not in same and i not in via) if path is not None}
    gone = (*same, *via, *inside)
    rest = tuple(v for i, v in enumerate(inputs) if i not in gone)
    later = [(i - sum(1 for j in gone if j < i), shortened, through)
             for i, shortened, through in changed.others if i not in gone]
    if later:  # NOTE [inputs changed together]
        returns = [r for _, r in bodies]
        first, after = later[0], tuple(later[1:])
        stage_all = stage

        def stage(fns, st, nm, ins):
            return with_input_as_state(
                stage_all, list(zip(fns, returns)), st, nm, ins,
                ChangedInput(first[0], False, first[1], first[2], after), statement)
    if isinstance(held, torch.Tensor):
        _refuse_views_of(held, inputs, input_names, name, statement)
    elif type(held) is tuple or _is_namedtuple(held):
        # NOTE [tensors of a tuple updated in place]; a named tuple's fields too (NOTE [a view
        # held by a named tuple] in held_views.py)
        refuse_tuple_sharing_memory(held, inputs, name, statement)

    grown_refused = (type(held) is list and not changed.in_place
                     and changed.through is not None and "loop" in statement)

    def wrap(body, returns_state):
        def run(*args):
            values, value, others = args[:count], args[count], iter(args[count + 1:])
            copies = []
            parts = _parts_of(held, value) if via else ()  # NOTE [holders of an object's parts]
            given = [value if i in same else _rebuilt_callable(inputs[i], held, value, copies,
                                                                 parts)
                     if i in via else _followed_path(value, inside[i]) if i in inside
                     else next(others) for i in range(len(inputs))]
            out = body(*values, *given)
            if any(_copies_changed(copy, fields) for copy, fields in copies):
                # An object holding the callable (`self.fn = partial(f, calls)`) was given
                # to the body as a copy around the body's `name`: a field the body set on
                # it would be lost
                raise StagingError(
                    statement,
                    f"an object holding a callable that changes '{name}' is changed in the "
                    f"same {statement} body; autoconv carries one of them through the "
                    "statement, not both",
                    f"Keep '{name}' and the object's changed field apart: pass '{name}' to "
                    "the callable as an argument where it is called, or keep the field's value "
                    f"in a local variable and set it after the {statement}")
            if grown_refused and len(value) != len(held):
                _refuse_grown_through(inputs[index], name, statement)
            return (*out, value) if returns_state else out
        return run

    if changed.through is not None and type(held) is list:  # (`acc` of `partial(f, acc)`)
        name = reached_name(inputs[index], changed.through) or name
    if type(held) is list and (changed.in_place or (
            changed.through is not None and not changed.shortened)):
        # Only its tensors change: carried by them, written back into them (NOTE [tensors of
        # objects updated in place]); the list itself stays the caller's.
        out = stage([wrap(body, returns) for body, returns in bodies],
                    (*state, HeldList(held)), (*names, name), rest)
        for i, value in enumerate(out[count]):
            if not identical(value, held[i]):
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
        if "." in name and not name.startswith("<"):
            # (`self.history.append(r)` in the body: the list of an object's attribute, which
            # the statement carries only by its tensors; tester21's solver)
            local = name.rsplit(".", 1)[1]
            raise StagingError(
                statement,
                f"list '{name}', held by an object, is grown or changed in the body "
                f"(`{name}.append(...)`, a call, an item chosen by a variable); under tensor "
                "control flow a list grows only bound to a local name, whose grown value "
                f"(its length known when the graph runs) the {statement} carries",
                f"Bind a copy to a local name before the {statement} (`{local} = "
                f"list({name})`), append to `{local}` in the body, and set `{name} = "
                f"{local}` after it")
        raise StagingError(
            statement,
            f"list '{name}' is changed through a call, an alias or an item chosen by a "
            f"variable (`{name}[j][\"k\"] = ...`, a dict or list in it) in a body that only "
            f"reads '{name}'; a list can only grow under tensor control flow by "
            f"`{name}.append(...)` in the body itself",
            f"Return the items from the call and append them to '{name}' in the body, keep "
            f"the changed values in a variable of their own (`t = {name}[j][\"k\"]` before, "
            "`t = t + v` in the body), or build the list after the statement")
    out = stage([wrap(body, returns) for body, returns in bodies], (*state, held),
                (*names, name), rest)
    _written_into(held, out[count])
    return tuple(out[:count])


# NOTE [tensors of a tuple updated in place]
# `a = x.unbind(0)` (or `x.split(2)`, `x.chunk(2)`, `(x,)`), then `if c: a[0].mul_(3)`: a body
# updates in place a tensor a tuple holds. The tuple is moved into the state like any changed
# input, and the statement gives back a new tuple of new tensors, which no name takes (the body
# cannot rebind an item of a tuple): the update was dropped, and with it the whole `if` as dead
# code, in replay, the exported program and torch.compile (x unchanged for Python's x * 3,
# break49 s01). A tuple's tensors, as a changed tensor input's, are written back in place
# (`copy_`), so the tensor the tuple holds, and the base it is a view of, see the update.


def refuse_tuple_sharing_memory(held, inputs, name, statement) -> None:
    """StagingError where two tensors of the tuple `held`, or one of them and another input,
    may share an element (`(x, x[1:])`; `x` read by a loop's test while `x.unbind(0)[1]` is
    updated): each is carried as its own copy, and the write-back would copy one's old values
    over the other's update. Rows of one tensor (`unbind`, `split`) are apart: carried."""
    from ..operators import _same_memory, _storage_of

    tensors = list(tuple_tensors(held))
    others = [v for v in inputs if isinstance(v, torch.Tensor)
              and not any(v is t for t in tensors)]
    for k, tensor in enumerate(tensors):
        for other in [*tensors[k + 1:], *others]:
            if other is tensor or not _same_memory(_storage_of(other), _storage_of(tensor)) \
                    or spans_apart(tensor, other):
                continue
            if _is_namedtuple(held):  # (NOTE [a view held by a named tuple] in held_views)
                raise StagingError(
                    statement,
                    f"the named tuple '{name}' holds a tensor updated in place in the "
                    "statement that shares memory with another tensor it reads (a view of it "
                    "another field holds, or a tensor the field is a view of); the staged "
                    "statement carries each as its own copy, so one would not see the other's "
                    "update (Python sees it)",
                    f"Compute the view from the updated field where it is read, in the body "
                    f"(`{name}.<field>[...]`), or hold both tensors in an object (a class "
                    "instance) rather than a named tuple")
            raise StagingError(
                statement,
                f"the tuple '{name}' holds a tensor updated in place in the statement that "
                "shares memory with another tensor it reads (another item of the tuple, or a "
                "tensor the item is a view of); the staged statement carries each as its own "
                "copy, so one would not see the other's update",
                f"Update the tensor through one name only, or take the view inside the "
                f"statement (`{name} = x.unbind(0)` in the body)")


def tuple_tensors(value):
    for item in value:
        if isinstance(item, torch.Tensor):
            yield item
        elif type(item) is tuple or _is_namedtuple(item):
            yield from tuple_tensors(item)


def spans_apart(a, b) -> bool:
    """Whether two tensors of one storage certainly touch no common element (`t[:2]`,
    `t[2:]`): their spans of the storage do not meet. False where it is not known (under
    dynamo, which cannot trace `storage_offset()`; symbolic offsets)."""
    if torch.compiler.is_dynamo_compiling():
        return False
    spans = []
    for t in (a, b):
        numbers = (t.storage_offset(), *t.shape, *t.stride())
        if not all(type(n) is int for n in numbers):  # (a symbol: not asked, no guard)
            return False
        if 0 in t.shape:
            return True
        # NOTE [views of another dtype]: the spans are compared in bytes
        size = t.element_size()
        spans.append((numbers[0] * size, (numbers[0] + sum(
            (n - 1) * abs(s) for n, s in zip(t.shape, t.stride()))) * size + size - 1))
    (a0, a1), (b0, b1) = spans
    if a1 < b0 or b1 < a0:
        return True
    # Spans that meet may still interleave without a common element: columns of one matrix
    # (`w[:, :k]`, `w[:, k:]`, qpth's KKT solution). Compared element by element where small,
    # and of one element size (NOTE [views of another dtype]).
    if a.numel() + b.numel() > _ELEMENTS_COMPARED or a.element_size() != b.element_size():
        return False
    return not numpy.intersect1d(_element_offsets(a), _element_offsets(b)).size


# NOTE [views of another dtype]
# A storage offset and strides count elements of the tensor's own dtype: `view_as_real(c)`
# counts floats where `c` counts complex numbers, `a.view(torch.int32)` half-words of `a`'s
# float64. Compared as numbers, `c[:1]` (element 0) and `view_as_real(c)[0, 1:]` (float 1,
# the imaginary part of `c[0]`) were apart, so a staged loop updating `c[:1]` and reading
# the other carried them as two copies (10 for Python's 15, silently, brk52b). Spans are
# compared in bytes; the element-by-element comparison is made for tensors of one element
# size only (two sizes are not known apart where their spans meet).
_ELEMENTS_COMPARED = 1 << 16  # (a trace-time check: a few ms at most)


def _element_offsets(t) -> numpy.ndarray:
    """The positions in its storage of the elements of the strided tensor `t`."""
    offsets = numpy.full((), t.storage_offset(), dtype=numpy.int64)
    for axis, (n, stride) in enumerate(zip(t.shape, t.stride())):
        shape = [1] * t.dim()
        shape[axis] = n
        offsets = offsets + (numpy.arange(n, dtype=numpy.int64) * stride).reshape(shape)
    return offsets.ravel()


def _written_into(held, value) -> None:
    """Write `value`, the statement's result for the changed input `held`, back into it: a
    tensor updated in place, and the tensors a tuple holds (NOTE [tensors of a tuple updated
    in place])."""
    if isinstance(held, torch.Tensor):  # updated in place: every reference to it sees that
        if value is held:
            return
        if held.is_leaf and held.requires_grad:  # (as runtime/operators.py's `_write_back`)
            with torch.no_grad():
                held.copy_(value)
        else:
            held.copy_(value)
    elif (type(held) is tuple or _is_namedtuple(held)) and isinstance(value, tuple) \
            and len(held) == len(value):  # (a named tuple's fields: as a tuple's items)
        for old, new in zip(held, value):
            if isinstance(old, (torch.Tensor, tuple)):
                _written_into(old, new)
    elif value is not held and type(value) is type(held) and _frozen(("object", type(held))):
        # rebuilt under dynamo (NOTE [frozen objects]); an input no body binds anew, so its
        # change was `object.__setattr__` on it, which its other holders see
        for key, field_ in vars(value).items():
            object.__setattr__(held, key, field_)


def _copies_changed(copy, fields) -> bool:
    now = vars(copy)
    return len(now) != len(fields) or any(now.get(k, now) is not v for k, v in fields)


def _refuse_grown_through(callable_, name, statement):
    """StagingError at the line of the callee (reached through `callable_`) that grows its
    list `name` in a staged loop's body."""
    problem = (f"list '{name}', held by a callable the {statement} calls (a partial's argument, "
               "a closure's cell, a default argument), is grown by it; a staged loop carries "
               "a list of one length, and a list the body does not name cannot grow a "
               "length known only when the graph runs")
    fix = (f"Count in a number instead (`{name}[0] += 1` on a one-item list, or an object's "
           f"field), or return the items from the call and append them to a list the loop "
           f"body names itself (`items.append(v)`), or grow '{name}' after the {statement}")
    for fn in _functions_of(callable_, _REACH_DEPTH, []):
        code = fn.__code__
        if name in code.co_varnames or name in code.co_freevars:
            from .python_state import _line_naming

            raise StagingError.at(_line_naming(fn, name), statement, problem, fix)
    raise StagingError(statement, problem, fix)


def _functions_of(value, depth, out) -> list:
    """The functions (unwrapped first) callable `value` calls or holds, `depth` deep."""
    if depth == 0 or any(value is f for f in out):
        return out
    if type_in(value, (list, tuple, dict)):
        for item in value.values() if type(value) is dict else value:
            _functions_of(item, depth, out)
    elif isinstance(value, types.MethodType):
        _functions_of(value.__func__, depth, out)
    elif isinstance(value, functools.partial):
        _functions_of(value.func, depth, out)
        for item in (*value.args, *value.keywords.values()):
            _functions_of(item, depth - 1, out)
    elif isinstance(value, types.FunctionType):
        inner = getattr(value, "__wrapped__", None)
        if inner is not None:
            _functions_of(inner, depth, out)
        out.append(value)
        held = [c.cell_contents for c in value.__closure__ or () if _filled(c)]
        for item in (*held, *(value.__defaults__ or ())):
            _functions_of(item, depth - 1, out)
    return out


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def movable(error, inputs) -> bool:
    """Whether `error`, a ChangedInput kept from a staging of the statement's form from
    another entry, names in `inputs` objects or dicts the statement may carry whether or not
    its bodies change them here (NOTE [carried forms kept] in restaging.py)."""
    if type(error) is not ChangedInput or error.in_place or error.shortened:
        return False
    changed = [(error.args[0], error.through)]
    changed += [(index, through) for index, shortened, through in error.others
                if not shortened]
    if len(changed) != 1 + len(error.others):
        return False
    for index, through in changed:
        if type(index) is not int or not 0 <= index < len(inputs):
            return False
        held = inputs[index]
        if through is not None:
            reached = reached_objects(held)
            if type(through) is not int or not 0 <= through < len(reached):
                return False
            held = reached[through]
        if not (_is_plain_object(held) or type(held) is dict):
            return False
    return True


def _record_applies(error, state) -> bool:
    """Whether `error`, a _ReplacedRecord kept from a staging of the statement's form from
    another entry, names a number or named tuple the state's slot holds (NOTE [carried forms
    kept] in restaging.py)."""
    if type(error) is not _ReplacedRecord or not 0 <= error.slot < len(state):
        return False
    value = state[error.slot]
    return flatten(value, frozenset({error.path}))[0] != flatten(value)[0]


# NOTE [numbers an enclosing form carries]
# A statement nested in an enclosing statement's bodies meets, in the enclosing statement's
# later forms, the numbers of an object carried as tensors (`cnt.n` of a counting `cnt`, after
# the enclosing `if` found it replaced): the _ReplacedRecord that its staging from an earlier
# entry kept for `cnt.n` does not apply (the entry carries it already), and following the kept
# sequence stopped there, so every later attempt ran the bodies again (hang55's `elif` chain).
# Staged again with that record, such an entry's state is flattened into the very leaves it
# was (the path names a tensor of the slot's): the record chooses the form the entry is
# already in, so it is followed, and the rest of the kept sequence with it, each later failure
# checked for the values at hand as before. Only the carry's own record (`hops` 0) naming a
# tensor leaf: a path that names nothing here, or a number, is left to the entry's own runs.


def _record_carried(error, slots) -> bool:
    """Whether `error`, a _ReplacedRecord of this carry's kept from a staging of the
    statement's form from another entry, names a tensor leaf of a carried object here (NOTE
    [numbers an enclosing form carries])."""
    if type(error) is not _ReplacedRecord or getattr(error, "hops", None) != 0:
        return False
    if error.slot not in slots:
        return False
    spec, leaves = slots[error.slot]
    for path, leaf in zip(_leaf_paths(spec, ""), leaves):
        if path == error.path:
            return isinstance(leaf, torch.Tensor)
    return False


# NOTE [tensors given back by a statement's form]
# A statement nested in an enclosing statement's bodies is staged again in each of the
# enclosing statement's forms, from an entry it has not met (the objects the enclosing form
# carries are its bodies' copies, their numbers tensors): hang55's `elif` chain calling a
# counting object ran each level's bodies about twice per run of the level above it (7, 14, 20
# runs by depth) because the `_GiveBack` of a tensor a body updates in place and another
# replaces (NOTE [tensors of objects updated in place, then replaced]) was found again by a
# run of the bodies from each new entry. Which tensors a body updates in place and which it
# replaces is a matter of its code, as the numbers it replaces are (NOTE [carried forms kept]
# in restaging.py): a `_GiveBack` kept from another entry of the statement's form is followed
# where the (slot, leaf) pairs it names are tensors of this entry's carried objects that do
# not require grad (a write into one of those is not what Python does: only replaced) and no
# body was seen binding an object anew (`rebuilt`, which rebuilds the result, is this
# entry's to learn). The form it chooses is then checked against this entry's runs: where
# the tensors both updated and replaced are not exactly those given back, the statement is
# staged again giving back this entry's own, so the form staged is the one this entry's own
# attempts would have chosen, and following a kept verdict never changes a result.


def _giving_applies(error, slots, giving, records, rebuilt) -> bool:
    """Whether `error`, a _GiveBack kept from a staging of the statement's form from another
    entry, names tensors this entry's carried objects hold (NOTE [tensors given back by a
    statement's form])."""
    if type(error) is not _GiveBack or giving or rebuilt or len(error.args) != 2:
        return False
    pairs, built = error.args
    if built or not pairs:
        return False
    for slot, number in pairs:
        leaves = slots[slot][1] if slot in slots else ()
        if not 0 <= number < len(leaves):
            return False
        leaf = leaves[number]
        if not isinstance(leaf, torch.Tensor) or leaf.requires_grad:
            return False
    return True


def _moved(inputs, held) -> tuple:
    """([the positions of `inputs` that are `held`], [those of the callables reaching it]):
    the inputs `with_input_as_state` takes out of the statement's inputs."""
    # Other names for the same object take the state's value in the bodies too (linear_
    # operator's CG passes `curr_conjugate_vec = precond_residual` to a helper updating it),
    # and callables reaching it are given rebuilt around that value.
    same = [i for i, v in enumerate(inputs) if v is held]
    via = [i for i, v in enumerate(inputs)
           if i not in same and any(o is held for o in reached_objects(v))]
    return same, via


# NOTE [inputs held by a moved object]
# `meter = Meter(state)` (its method counts in `self.state[0]`), then `meter.tick(a)` in a
# staged branch that also reads `state[0]`: the change moves `meter` into the statement's
# state, and the body is given a copy of it, its list a copy too; the body's `state` was the
# caller's list, which the copy's count never reached until after the statement, so the
# branch's `x + state[0]` read the count before the call (one less than Python's, silently:
# fuzz38's counting callables). An input that the moved object holds (a field's list, dict or
# object, or one inside those) is given to the body as the same part of its copy. Where a run
# changed both (`objective = Holder(f, box).evaluate` counting in `box.n`, and `box` an input
# too), the holder is moved first, whichever the check found first: moved first, `box` got a
# copy of its own, the holder's copy another, and the branch's `box.n` read the one the count
# never reached (0 for 1, silently: silent41 s01).


def _holder_first(changed, inputs):
    """`changed`, a ChangedInput, or one naming first the changed input among its `others`
    that holds the object `changed` names (NOTE [inputs held by a moved object])."""
    if changed.in_place or not changed.others:
        return changed

    def held_by(index, through):
        value = inputs[index]
        return value if through is None else reached_objects(value)[through]

    held = held_by(changed.args[0], changed.through)
    for k, (index, shortened, through) in enumerate(changed.others):
        if _path_in(held_by(index, through), held) is not None:
            rest = ((changed.args[0], changed.shortened, changed.through),
                    *changed.others[:k], *changed.others[k + 1:])
            return ChangedInput(index, False, shortened, through, rest)
    return changed


def _path_in(held, value, depth: int = 3):
    """The path (("attr", name) / ("item", key) steps) at which `held` holds the list, dict or
    plain object `value`, `depth` containers deep at most, or None."""
    if not (type_in(value, (list, dict)) or _is_plain_object(value)):
        return None
    level = [((), held)]
    for _ in range(depth):
        below = []
        for path, container in level:
            if _is_plain_object(container):
                parts = [(("attr", k), v) for k, v in vars(container).items()]
            elif type(container) is dict or type_in(container, (list,)):
                items = container.items() if type(container) is dict else enumerate(container)
                parts = [(("item", k), v) for k, v in items]
            else:
                continue
            for step, part in parts:
                if part is value:
                    return (*path, step)
                if type_in(part, (list, dict)) or _is_plain_object(part):
                    below.append(((*path, step), part))
        level = below
    return None


# NOTE [holders of an object's parts]
# A callable the bodies are given rebuilt around the moved object's copy (`_rebuilt_callable`)
# may also reach a part of the object by another way: `lambda x: first(x) + second(x)` of
# `first = Holder(box).bump`, `second = partial(_bump, box)`, where the moved object is the
# Holder and `box` its field. Rebuilt around the Holder's copy only, `second` counted into the
# caller's `box` while tracing, where the copy's `box` the branch read never saw it (break42
# s08: 3 for Python's 2 on the next call's other branch, silently). The parts of the moved
# object (`_path_in`'s, as deep) are swapped for the same parts of its copy too.


def _parts_of(held, copy) -> tuple:
    """(part of `held`, the same part of its copy `copy`) for the lists, dicts and plain
    objects `held` holds, as deep as `_path_in` looks (NOTE [holders of an object's parts])."""
    pairs, level = [], [(held, copy)]
    for _ in range(3):
        below = []
        for before, after in level:
            if _is_plain_object(before) and _is_plain_object(after):
                fields = vars(after)
                items = [(v, fields.get(k)) for k, v in vars(before).items() if k in fields]
            elif type(before) is dict and type(after) is dict:
                items = [(v, after[k]) for k, v in before.items() if k in after]
            elif type_in(before, (list,)) and type_in(after, (list,)) and len(before) == len(
                    after):
                items = list(zip(before, after))
            else:
                continue
            for part, its_copy in items:
                if (type_in(part, (list, dict)) or _is_plain_object(part)) and not any(
                        part is p for p, _ in pairs) and part is not held:
                    pairs.append((part, its_copy))
                    below.append((part, its_copy))
        level = below
    return tuple(pairs)


def _followed_path(value, path):
    """The part of `value` at `path` (see `_path_in`)."""
    for kind, key in path:
        value = getattr(value, key) if kind == "attr" else value[key]
    return value


def with_inputs_as_state(stage, bodies, state, names, inputs, updated, statement):
    """`with_input_as_state` for each of the tensor inputs at the positions `updated` (an
    UpdatedInputs), moved into the state together: the statement is staged once, carrying
    them all (NOTE [inputs updated unseen under dynamo] in unseen_updates.py)."""
    indices = list(updated.args)
    first = indices[0]
    if len(indices) == 1:
        return with_input_as_state(stage, bodies, state, names, inputs, ChangedInput(first, True),
                                   statement)
    gone = set().union(*_moved(inputs, inputs[first]))
    later = UpdatedInputs(*(i - sum(1 for j in gone if j < i) for i in indices[1:]
                            if i not in gone))
    if not later.args:
        return with_input_as_state(stage, bodies, state, names, inputs, ChangedInput(first, True),
                                   statement)
    returns = [r for _, r in bodies]

    def rest(fns, st, nm, ins):
        return with_inputs_as_state(stage, list(zip(fns, returns)), st, nm, ins, later,
                                    statement)

    return with_input_as_state(rest, bodies, state, names, inputs, ChangedInput(first, True),
                               statement)


# NOTE [containers in objects autoconv does not carry]
# An object autoconv does not carry (a torch.optim optimizer, an object of a class declaring
# __slots__: `_is_plain_object`) that a staged statement holds is
# checked for attributes its bodies set (`refusing_uncarried_changes`). A dict or list in its
# attributes changed by a body (`opt.param_groups[0]["lr"] = new_lr`, torch's ReduceLROnPlateau
# written out) was not looked at: the write of the branch traced stayed in the object for every
# input, silently (tester27 s06, replay and torch.export). The dicts and lists its attributes
# reach through plain objects, dicts and lists are compared before and after each run of a
# body: a change is undone and refused. (Not a module's: their bodies' changes to lists a
# module holds are Python side effects, README's "happen once, while tracing".)


# NOTE [objects a body reaches through its own closure]
# A staged body is given the enclosing function's own variables as operands, but in a nested
# function it also reads the variables of the functions around it through its closure (`c` in
# `def visit(v): if v > 0: c.hits += 1`, or `bump` there, a closure changing `c`). The
# statement does not carry those (the converter carries a function's own names: a variable of
# another function cannot be rebound from it), so a change made through them kept the
# trace's value (closures27: silently wrong in replay and torch.export). The objects, dicts
# and lists a body's own closure cells hold, and those the closures there reach
# (`reached_objects`), are compared before and after each run of the body: a change is undone
# and refused at the line naming the variable. Not under dynamo, which shows no closure of a
# function made in its trace (`closure`).


def _outside_reached(body) -> list:
    """(variable, object) for the objects `body` (unwrapped) reaches through its own closure
    cells (NOTE [objects a body reaches through its own closure])."""
    fn = body
    while getattr(fn, "__wrapped__", None) is not None:
        fn = fn.__wrapped__
    if not isinstance(fn, types.FunctionType) or not closure(fn):
        return []
    from .python_state import _runtimes

    if _runtimes(fn.__code__):  # (a runtime's wrapper: its cells are the runtime's own)
        return []
    found = []
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if _is_plain_object(value) or type_in(value, (dict, list)):
            candidates = [(value, name)]
        elif callable(value) and not isinstance(value, type):
            candidates = [(o, f"{name}()") for o in reached_objects(value)]
        else:
            continue
        for o, n in candidates:
            if not any(o is f for _, f in found):
                found.append((n, o))
    return found


def _uncarried_within(value, name: str, out: list, seen: set, depth: int) -> None:
    """Append (name, object, its dict and list fields) to `out` for `value` if autoconv does
    not carry it, or else for such objects in the fields and items of `value` (a plain object,
    dict, list or tuple the statement carries: `self.optimizer` of a scheduler), `depth`
    levels down at most."""
    if id(value) in seen or depth == 0:
        return
    seen.add(id(value))
    if _is_plain_object(value):
        inner = vars(value).items()
        label = "{}.{}"
    elif is_carried_mapping(value):
        inner = value.items()
        label = "{}[{!r}]"
    elif type_in(value, (list, tuple)) or _is_namedtuple(value):
        inner = enumerate(value)
        label = "{}[{}]"
    else:
        fields = _uncarried_fields(value)
        if fields:
            out.append((name, value, fields))
        return
    for key, item in inner:
        if not isinstance(item, (torch.Tensor, int, float, str, bool, type(None))):
            _uncarried_within(item, label.format(name, key) if name else f"…{key}", out, seen,
                              depth - 1)


def _uncarried_fields(value) -> list:
    """The dicts and lists in the public fields (`__dict__` or `__slots__`) of `value`, an
    object autoconv does not carry and no module (NOTE [containers in objects autoconv does
    not carry]). Not the fields named with `_`: a library's own state its methods keep (a
    logging.Logger's `_cache` of enabled levels, filled by a logging call in a body)."""
    if isinstance(value, (torch.Tensor, torch.nn.Module, StagedList, type, types.ModuleType,
                          types.FunctionType)) or is_staged(value) or is_undefined(value):
        return []
    table = getattr(value, "__dict__", None)
    fields = list(table.items()) if type(table) is dict else []
    for klass in type(value).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                fields.append((slot, getattr(value, slot)))
    return [v for k, v in fields if (type_in(v, (dict, list)) or is_carried_mapping(v))
            and not k.startswith("_")]


# (inputs that hold no dict or list of their own to watch: told apart in one test, as a
# statement's inputs are mostly these)
_NOT_HOLDERS = (torch.Tensor, bool, int, float, complex, str, type(None), torch.nn.Module)


def _closure_refusal(body, name: str, where: str, statement: str) -> StagingError:
    fn = body
    while getattr(fn, "__wrapped__", None) is not None:
        fn = fn.__wrapped__
    from .python_state import _line_naming

    if name.endswith("()"):
        name = name[:-2]
        what = (f"an object of an enclosing function is changed by '{name}', a closure "
                f"called {where}")
    else:
        what = (f"'{name}', a variable of an enclosing function read through a closure, is "
                f"changed {where} (a field or item set)")
    problem = (f"{what}; a staged body runs once while tracing, and autoconv carries only the "
               "function's own variables and arguments through the statement, so the change "
               "would happen once, not on every trip or only on the path taken")
    fix = ("Pass the object to the nested function as an argument (`def visit(c, v)`, "
           "`visit(c, x[i])`), or make the change in the function that owns it, outside "
           "nested functions")
    return StagingError.at(_line_naming(fn, name), statement, problem, fix)


def refusing_changes_in_uncarried(bodies, state, names, statement, inputs=()):
    """`bodies`, each refusing a change it makes to a dict or list held by an object autoconv
    does not carry, in `state` or in the fields and items of `state` and `inputs` (NOTE
    [containers in objects autoconv does not carry])."""
    if torch.compiler.is_dynamo_compiling():  # (dynamo refuses such a change itself)
        return tuple(body for body, _ in bodies)
    uncarried, seen = [], set()
    for name, value in zip(names, state):
        _uncarried_within(value, name, uncarried, seen, 3)
    for value in inputs:
        if carries(value):
            _uncarried_within(value, "", uncarried, seen, 3)
        elif not isinstance(value, _NOT_HOLDERS):
            # (an object read as an input that a method changes: `opt.step()` filling the
            # optimizer's `state` defaultdict under a tensor `if`, tester35 s01)
            _uncarried_within(value, shown_input(value) or "", uncarried, seen, 1)
    if not uncarried:
        return tuple(body for body, _ in bodies)

    def check(body, where):
        def run(*args):
            inner = []
            for name, value, fields in uncarried:
                found = []
                for v in fields:
                    _containers(v, found, set())
                inner.append((name, value, found))
            try:
                out = body(*args)
            finally:
                changed = next(((name, value) for name, value, found in inner
                                if any(_changed_container(c, old) for c, old in found)), None)
                for _, _, found in inner:
                    for container, old in found:
                        _restore(container, old)
            if changed is not None:
                name, value = changed
                what = type(value).__qualname__
                fix = ("Bind the dict or list to a local variable before the statement (`group "
                       "= opt.param_groups[0]` for an optimizer) and change it through that "
                       "name, which the statement carries, or make the change outside the "
                       "autoconv function")
                if isinstance(value, torch.optim.Optimizer):
                    fix = (f"Step the optimizer outside the autoconv function, deciding in "
                           f"Python after the call (`if float(loss) > 1.0: {name or 'opt'}."
                           "step()`), or write the update with tensors the function returns")
                raise StagingError(
                    statement,
                    f"a dict or list held by '{name}', a {what} object, is changed {where} (an "
                    f"item set, added or removed); autoconv does not carry objects of {what} (a "
                    "library's class, or a class with __slots__) through a "
                    "staged statement, so the change would happen once, while tracing", fix)
            return out
        return run

    return tuple(check(body, where) if body is not None else None for body, where in bodies)


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
    held = []
    for name, value in zip(names, state):
        tables = () if carries(value) else _attribute_tables(value)
        if tables:
            held.append((name, value, tables))
    if torch.compiler.is_dynamo_compiling() or torch.compiler.is_exporting():
        _refuse_module_stores(bodies, state, names, statement, inputs)
    if torch.compiler.is_dynamo_compiling():  # dynamo refuses the rest itself
        _refuse_slotted_stores(bodies, state, names, statement)
        return tuple(body for body, _ in bodies)
    read = [i for i, value in enumerate(inputs) if carries(value) or type(value) is list]
    # the objects callables reach (NOTE [objects reached through a callable])
    through = {i: found for i, value in enumerate(inputs)
               for found in [reached_objects(value)] if found}
    # NOTE [objects a body reaches through its own closure]
    # (an object the statement also gets as state or input, or through a callable input, is
    # carried or refused there: `ChangedInput`)
    known = [*state, *inputs, *(o for found in through.values() for o in found)]
    outside = {id(body): [(n, o) for n, o in _outside_reached(body)
                          if not any(o is k for k in known)]
               for body, _ in bodies if body is not None}
    if not held and not read and not through and not any(outside.values()):
        return tuple(body for body, _ in bodies)

    def check(body, where):
        beyond = outside.get(id(body), ())

        def run(*args):
            before = [[dict(t) for t in tables] for _, _, tables in held]
            kept = []
            for name, reached in beyond:
                found = []
                _containers(reached, found, set())
                kept.append((name, found))
            # The values the body is given: a dict input reaches it rebuilt by torch's pytree.
            given = args[len(args) - len(inputs):] if inputs else ()
            contents = []
            for i in read:
                found = []
                _containers(given[i], found, set())
                contents.append(((i, None), found))
            for i, objects in through.items():
                for k, reached in enumerate(objects):
                    found = []
                    _containers(reached, found, set())
                    contents.append(((i, k), found))
            symbolic = _symbolic_field(contents, given, through)
            if symbolic is not None:  # NOTE [symbolic numbers in objects a body reads]
                index, reached = symbolic
                if reached is not None:
                    raise ChangedInput(index, False, False, reached)
                raise ChangedInput(index)
            # NOTE [attempts decided before a nested statement] in restaging.py
            opened = restaging.watch(functools.partial(_changed_inputs, contents)) \
                if contents else None
            ended = False
            try:
                out = restaging.run_watched(opened, body, args)
                ended = True
            finally:
                # (an enclosing attempt that the change decides too ends first, before the
                # change is undone: NOTE [attempts decided before a nested statement])
                doomed = restaging.decided() if ended and opened is not None and \
                    _changed_inputs(contents) is not None else None
                # (all found before any is undone: a container two inputs reach, `box` and
                # the holder of `Holder(f, box).evaluate`, is changed for both: NOTE [inputs
                # held by a moved object])
                changes = [(i, container, old) for i, found in contents
                           for container, old in found if _changed_container(container, old)]
                changed = [(i, type(container) is list and len(container) < len(old))
                           for i, container, old in changes]
                if not changed and opened is not None and opened.found is not None:
                    # (a change undone after the watch found it)
                    changed = [(i, False) for i in opened.found]
                changed_input, shortened = None, False
                others = {}  # NOTE [inputs changed together]
                for i, taken in changed:
                    shortened |= changed_input is None and taken
                    if changed_input is not None and i[0] != changed_input[0]:
                        others.setdefault(i[0], (i[0], taken, i[1]))
                    changed_input = i if changed_input is None else changed_input
                for i, container, old in changes:
                    _restore(container, old)
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
            for name, found in kept:
                if any(_changed_container(c, old) for c, old in found):
                    for container, old in found:
                        _restore(container, old)
                    raise _closure_refusal(body, name, where, statement)
            if changed_input is not None and "test" in where:
                # (a loop test returns no state: what it changes cannot be carried)
                index, reached = changed_input
                raise StagingError(
                    statement,
                    f"an object the loop test reads is changed {where} (through a method or "
                    "a closure it calls); a loop test gives back only its condition, so the "
                    "change cannot be carried, and it would happen once, while tracing",
                    "Make the change in the loop body, and keep the test free of changes")
            if doomed is not None:
                raise restaging.Abandoned(doomed)
            if changed_input is not None:
                index, reached = changed_input
                if others:
                    raise ChangedInput(index, False, shortened, reached, tuple(others.values()))
                if reached is not None:
                    raise ChangedInput(index, False, shortened, reached)
                raise ChangedInput(index, False, shortened)
            return out
        return run

    return tuple(check(body, where) if body is not None else None for body, where in bodies)
