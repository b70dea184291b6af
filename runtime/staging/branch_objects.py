"""Objects first made in the branches of a staged `if`: carried as the statement's state.

    if x.sum() > 0:                       the `if` is staged again with `s` bound before it to a
        s = State(x)               ->     State whose tensor fields are zeros of the branches'
    else:                                 shapes; each branch's new State is carried out of the
        s = State(-x)                     torch.cond by its tensors (objects.py), and after it
                                          `s` is a new State holding the chosen tensors

See NOTE [objects bound in branches].
"""

from __future__ import annotations

import sys
import types

import torch

from ..identity import type_in
from ..values import is_undefined
from .. import outside_objects
from . import objects

__all__ = ["BranchObjects", "template_state", "objects_bound", "may_make_objects",
           "template_of", "refuse_shared", "outside_parts"]


# NOTE [objects bound in branches]
# `if c: s = State(x) else: s = State(-x)`, then `s.v` after the `if` (AutoGraph's composite
# names): the variable is unbound before the statement, so the state carried no object whose
# fields could be torch.cond's operands, and the statement was specialised on its condition
# (one trace per path, an exported program holding one path, a refusal under torch.compile).
# An object of the same class on every path is one structure of tensors, as an object bound
# before the `if` is (objects.py carries those, and a body that rebinds the variable makes the
# statement's result a new object). So a body output of a plain object where the variable was
# unbound ends the attempt with `BranchObjects`; the branches are probed for what they bind,
# and the `if` is staged again with the variable bound to a template: an object of that class
# (made without its `__init__`, as objects.py rebuilds carried ones) whose tensors are zeros of
# the probed shapes and dtypes, its other fields the probe's. The template never reaches the
# user: every path rebinds the variable (a path leaving it unbound is refused, unless the
# variable's bound flag, or the loop that creates it, keeps it from being read).
# Objects of different classes on the paths are refused: one torch.cond output has one
# structure. Under torch.compile the attempt cannot end inside torch.cond (dynamo traces the
# bodies there), so the branches are probed first where their code names a class of records
# from its module's globals (`may_make_objects`; for a conditional expression, whose sides are
# the runtime's closures, the user's sides they hold: `s = State(x) if c else State(-x)` was
# refused under torch.compile until session 51); an object a helper returns, or a class local
# to a function, keeps the refusal there. A loop body's: NOTE [objects a loop body binds
# first] in torch.py.


class BranchObjects(Exception):
    """Internal, never reaches the user: an `if`'s branch binds the variables named in `args`,
    unbound before the statement, to plain objects (NOTE [objects bound in branches]). (No
    `__init__` of its own: dynamo cannot trace one.)"""


def _made(value, memo: dict):
    """`value` (a probe's output) with its tensors zeros of the same kind, its plain objects,
    dicts, lists and tuples new ones."""
    if isinstance(value, torch.Tensor):
        return torch.zeros(value.shape, dtype=value.dtype, device=value.device)
    if id(value) in memo:
        return memo[id(value)]
    if objects.is_plain_object(value):
        made = object.__new__(type(value))
        memo[id(value)] = made
        for key, field in vars(value).items():
            made.__dict__[key] = _made(field, memo)
        return made
    if type(value) is dict:
        made = memo[id(value)] = {}
        made.update((k, _made(v, memo)) for k, v in value.items())
        return made
    if type(value) is list:
        made = memo[id(value)] = []
        made.extend(_made(v, memo) for v in value)
        return made
    if type(value) is tuple:
        return tuple(_made(v, memo) for v in value)
    return value


def template_of(value):
    """A template of the plain object `value` (a probe's): its class made without `__init__`,
    its tensors zeros (NOTE [objects a loop body binds first] in torch.py)."""
    return _made(value, {})


def outside_parts(read) -> list:
    """The dicts, lists and plain objects a statement's bodies are given (`read`: the values
    of its inputs), which an object they make may hold (NOTE [objects from outside held by a
    made one])."""
    return objects.parts_of(tuple(read))


def _from_outside(helds: list, read, functions) -> list:
    """For each of `helds` (parts of an object a body made) whether it existed before the
    statement: one of `read` (outside_parts), or reachable from outside the bodies,
    `functions` as the user's code wrote them (NOTE [objects from outside] in
    outside_objects.py); where that cannot be told, True (refused, never copied)."""
    found = [any(held is part for part in read) for held in helds]
    if all(found):
        return found
    if torch.compiler.is_dynamo_compiling():
        # (dynamo cannot trace the walk: it is called for real on the bodies' code objects
        # and the objects' ids, constants)
        codes = []
        for fn in functions:
            if isinstance(fn, types.CodeType):  # (a conditional expression's sides': its
                codes.append(fn)                # `closing_over` holds their code objects)
            elif type(fn) is types.FunctionType:
                while getattr(fn, "__wrapped__", None) is not None:
                    fn = fn.__wrapped__
                codes.append(fn.__code__)
        outside = outside_objects.from_outside(tuple(codes), tuple(id(h) for h in helds))
        return [known or where is not False for known, where in zip(found, outside)]
    reached = outside_objects.reachable_outside(functions)
    return [known or id(held) in reached or not reached.complete
            for known, held in zip(found, helds)]


# NOTE [objects from outside held by a made one]
# A template copies the plain objects, dicts and lists the probe's new object holds, and the
# object rebuilt after the statement holds those copies: right for the parts the path makes
# (`State(State(x))`), wrong for one that existed before it (`s = Step(x, CFG)` with a global
# `CFG`, an argument's config, a closure's): after the statement `s.cfg is CFG` was False,
# and an update through one was not seen through the other (silently, in every mode, for a
# loop body's object since objs51 and an `if`'s since obj50). Such a part is found among the
# parts of the statement's inputs (as the probe was given them: copies under dynamo) and the
# objects reachable from outside its bodies (the walk of NOTE [objects from outside] in
# outside_objects.py: `mod.CFG`, `Config.DEFAULT`, a helper's default, which the bodies' own
# globals and cells missed until mend52), and the statement is refused naming it. An `if` so
# refused is specialised on its condition in autoconv's replay and torch.export; under
# torch.compile the refusal stands at the `if`'s line (a copy was returned there, silently:
# dynamo traces the runtime, and the walk was skipped).


def template_state(error: BranchObjects, paths, state, names, record, read=(),
                   functions=()) -> tuple:
    """The state for staging an `if` again with the variables `error` names bound to templates
    of the objects the branches bind them to. `paths`: each branch's probed outputs with its
    `where` ("in the true branch"); `read`: the inputs the probes were given; `functions`: the
    branches as the user's code wrote them."""
    read = outside_parts(read)
    for outputs, where in paths:
        refuse_shared(outputs, names, error.args, where, record, read, functions)
    new_state = list(state)
    for slot, name in enumerate(names):
        if name not in error.args:
            continue
        before = state[slot]
        bound = []
        for outputs, where in paths:
            out = outputs[slot]
            if is_undefined(out) and is_undefined(before) and (before.checked or before.created):
                continue  # (its flag, or the loop, keeps the template from being read)
            if is_undefined(out):
                raise record.error(
                    f"'{name}' is bound to {_class_of(paths, slot)} on one path and "
                    f"left unbound {where}, and it is used after the statement",
                    f"Bind '{name}' on every path, or before the statement")
            if not objects.is_plain_object(out):
                raise record.error(
                    f"'{name}' is {_class_of(paths, slot)} on one path and "
                    f"{_describe(out)} {where}; a tensor condition chooses between objects of "
                    "one class only", f"Give '{name}' an object of one class on every path")
            bound.append((out, where))
        first, first_where = bound[0]
        for out, where in bound[1:]:
            if type(out) is not type(first):
                raise record.error(
                    f"'{name}' is an object of class {type(first).__qualname__} {first_where} "
                    f"and one of class {type(out).__qualname__} {where}; a tensor condition "
                    "chooses between objects of one class only (the graph's result has one structure "
                    "on every path)",
                    f"Make '{name}' an object of one class on every path (its fields may "
                    "differ in value, not in kind), or choose between the fields' tensors "
                    "instead")
        new_state[slot] = _made(first, {})
    return tuple(new_state)


def refuse_shared(outputs, names, made_names, where, record, read=(),
                  functions=()) -> None:
    """Refuse a path that binds an object it makes to two of the statement's variables, or
    also keeps it in a field, list or dict another variable holds (`b = a`, `s = Box(inner)`):
    each variable's object is carried out of the torch.cond apart, so after the statement
    they are two objects where Python's are one, and an update through one name was not
    seen through the other (brk50 s03, s04). Also a path whose new object holds an object of
    the statement's inputs (`read`: their parts; `a.config = config`): the template rebuilds
    it as a copy (1 for Python's 5, break51 s01), or one reachable from outside the bodies,
    `functions` (`mod.CFG`). Parts two holders share anew in the
    carried objects: NOTE [parts a body makes shared] in objects.py."""
    made = {id(outputs[i]): n for i, n in enumerate(names)
            if n in made_names and i < len(outputs) and objects.is_plain_object(outputs[i])}
    if not made:
        return
    # (an object the statement reads, held by one it makes: the template carries a copy of
    # it, so after the statement the new object's field is not the object Python's is)
    for slot, name in enumerate(names[:len(outputs)]):
        if id(outputs[slot]) in made:
            # (a tuple is rebuilt equal, its identity no object's state)
            helds = [h for h in _held(outputs[slot], set()) if not type_in(h, (tuple,))]
            for held, outside in zip(helds, _from_outside(helds, read, functions)):
                if outside:
                    raise record.error(
                        f"the object '{name}' is bound to, made {where}, holds a "
                        f"{type(held).__name__} made before the statement; the staged "
                        f"statement carries '{name}' by its tensors and rebuilds it after it, "
                        "so its field would then hold a copy where Python's holds that object",
                        f"Set that field of '{name}' after the statement, or make '{name}' "
                        "before it and set only its tensors in the branches")
        out = outputs[slot]
        other = made.get(id(out))
        if other is not None and other != name:
            raise record.error(
                f"'{other}' and '{name}' are bound to one object made {where}; the staged "
                "statement carries each variable's object apart, so after it they would be "
                "two objects where Python's are one",
                f"Bind the object to one variable in the statement, and '{name} = {other}' "
                "after it")
        for held in _held(out, set()):
            other = made.get(id(held))
            if other is not None and other != name:
                raise record.error(
                    f"the object '{other}' is bound to, made {where}, is also held by "
                    f"'{name}'; the staged statement carries each variable's object apart, so "
                    f"after it an update through '{other}' would not be seen through '{name}'",
                    f"Read it through '{name}' after the statement (make '{other}' there from "
                    f"'{name}'), or bind only one of them in the statement")


def _held(value, seen: set):
    """The objects, dicts and lists reachable from `value`'s fields and items, not `value`."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if objects.is_plain_object(value):
        children = list(vars(value).values())
    elif type(value) is dict:
        children = list(value.values())
    elif type_in(value, (list, tuple)):
        children = list(value)
    else:
        return
    for child in children:
        if objects.is_plain_object(child) or type_in(child, (dict, list, tuple)):
            yield child
            yield from _held(child, seen)


def _class_of(paths, slot) -> str:
    return next((f"an object of class {type(outputs[slot]).__qualname__}"
                 for outputs, _ in paths if objects.is_plain_object(outputs[slot])),
                "an object")


def _describe(value) -> str:
    return "unbound" if is_undefined(value) else f"a Python {type(value).__name__}"


def may_make_objects(fns) -> bool:
    """Whether the code of one of `fns` (an `if`'s bodies, and what the runtime's closures of a
    conditional expression's sides hold: its `closing_over`) names a class of records from its
    module's globals: under dynamo only those bodies are probed for the objects they bind (a
    probe's ops stay in dynamo's graph, NOTE [random draws of probes under dynamo])."""
    return any(type(fn) is types.FunctionType and _names_record_class(fn.__code__)
               for fn in fns)


def _names_record_class(code: types.CodeType) -> bool:
    """Called for real by dynamo (a code object in, a bool out)."""
    from .torch import _module_of_file

    module = _module_of_file(code.co_filename)
    if module is None:
        return False
    namespace = sys.modules[module].__dict__
    return any(isinstance(namespace.get(name), type)
               and not issubclass(namespace[name], torch.nn.Module)
               and objects._record_class(namespace[name]) for name in _names(code))


_names_record_class._dynamo_marked_constant = True


def _names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def objects_bound(statement, outputs, found: list) -> None:
    """Add to `found` the names of the variables unbound before the `if` (`statement`) that a
    body's `outputs` bind to a plain object."""
    if not isinstance(outputs, tuple) or len(outputs) != len(statement.state):
        return  # (the staged run reports it)
    found += [n for n, b, v in zip(statement.names, statement.state, outputs)
              if is_undefined(b) and objects.is_plain_object(v) and n not in found]
