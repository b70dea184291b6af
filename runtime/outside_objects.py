"""The objects a call reaches from outside it: one walk for a traced function's result and for
the objects a staged statement's bodies make.

NOTE [objects from outside]
Two questions need the objects that exist outside a call, which Python keeps by identity: which
parts of a traced function's result the call made (autoconv/returned_objects.py copies those per
call: NOTE [objects without tensors a function returns]) and which parts an object a staged body
makes holds from before the statement (the template would copy them: NOTE [objects from outside
held by a made one] in staging/branch_objects.py). Each had its own walk, the second a shorter
one (its bodies' globals and closure cells only), so an object made in a staged `if` or loop
holding `mod.CFG`, `Config.DEFAULT` or a helper's default object held a copy after the
statement, silently in every mode (`s.config is mod.CFG` False; mend52). One walk now, from a
function's defaults, closure cells and globals (or, under dynamo, its code's module): it
follows dicts, lists, tuples, sets and records (their `__slots__` too), user modules (their
globals), user classes (their attributes, their bases'), user functions (their defaults,
closure cells and module) and bound methods, to any depth: a depth of six missed an object
further away, or one only another module's closure cell holds (a helper returning its own
cached object), which a result then held a copy of (objs51). Tensors, Python values and
libraries' modules, classes and functions are not followed. The walk stops after `_BUDGET`
objects (0.3 s; a test module's globals are about 400, 1 ms); a walk cut short is not
`complete`, and its callers refuse what it could not place rather than guess. A call's
arguments are walked through their data only (`code` False): six steps deep for the objects the
caller holds whose writes are carried back (NOTE [changed arguments] in autoconv/capture.py),
to any depth before the call for the objects a result may hold without copying them.

Under torch.compile dynamo would trace the walk step by step (and cannot walk a function's
globals), so it is called for real (`_dynamo_marked_constant`) with constants only: the bodies'
code objects and the held objects' `id()`. Dynamo gives the real id of an object that existed
before the compiled frame (it has a source) and a compile-time id, never a live object's, of one
made while tracing, which no walk from outside reaches.
"""

from __future__ import annotations

import enum
import functools
import sys
import types
import weakref

import torch

__all__ = ["Reached", "reachable", "near_and_far", "reachable_outside", "from_outside"]

_PYTHON_VALUES = (bool, int, float, complex, str, bytes, type(None), enum.Enum)
_NOT_RECORDS = ("builtins", "types", "logging")
_LEAVES = (torch.Tensor, *_PYTHON_VALUES)
_BUDGET = 50_000  # objects one walk visits at most (NOTE [objects from outside])
_HEAP_TYPE = 1 << 9  # (Py_TPFLAGS_HEAPTYPE: a class defined in Python, not in C)


class Reached(set):
    """The ids of the objects a walk reached; `complete` where it was not cut short."""

    complete = True


def _user(value) -> bool:
    """Whether `value` (a module, class or function) is the user's, not a library's."""
    name = value.__name__ if type(value) is types.ModuleType else getattr(
        value, "__module__", None)
    known = _USER.get(name)
    if known is None:
        from .calls import is_library_module  # (calls.py imports the staging modules)

        known = _USER[name] = not is_library_module(str(name))
    return known


_USER: dict = {}  # {a module's name: whether it is the user's}


def _is_record(value) -> bool:
    """An object of a user class whose attributes are its state."""
    return not (isinstance(value, (torch.Tensor, type, *_PYTHON_VALUES))
                or type(value).__module__ in _NOT_RECORDS
                or not type(value).__flags__ & _HEAP_TYPE)


def _values(value) -> list:
    return list(value.values())


def _items(value) -> list:
    return list(value)


def _module(value) -> list:
    return list(vars(value).values()) if _user(value) else []


def _named_globals(module, names: set) -> list:
    """Of a user module's globals, those `names` name (NOTE [globals reached by name])."""
    if not _user(module):
        return []
    table = vars(module)
    return [table[name] for name in names if name in table]


# NOTE [globals reached by name]
# Code reaches a module's globals by name: `CFG`, `mod.CFG`, `pkg.sub.REG`, `from pkg import
# sub`. A walk through every global of every module it met reached, in a process of many
# modules, all of them: pytest's plugin manager holds each test module, an application's
# registries hold theirs, and importing `pkg.sub` binds `sub` in `pkg`. The walk met its
# bound (50,000 objects) and refused every statement whose made object held a part not among
# its inputs, right code too (a list a branch made, `Pair(x, 1).history`, in session 52's
# clean clone: the test passed alone). So a module's globals are followed by the names the
# walked code holds: the bodies' and every user function's the walk meets (`code_names`, a
# set that grows as the walk goes; each module met is read again for the names a level
# added, so a helper's `CFG` in the bodies' own module is reached); data (dicts, lists,
# objects, closures, defaults) is followed whole as before.
# Code reading globals by a computed name is not seen by its names: `getattr(mod, name)`,
# `vars(mod)[name]`, `mod.__dict__[k]`, `globals()[name]` gave a `Config` the walk missed, so a
# staged body's `Step(x, getattr(mod, NAME))` held a copy after the statement (`is` False:
# -6 for Python's 6, every mode; brk53). A user function whose code reads globals so
# (`_COMPUTED`) has its own module and the modules its names name followed whole (`wide`). One
# that imports by a computed name (`importlib.import_module`, `__import__`, `sys.modules`)
# reaches a module the walk cannot: the walk is then not `complete`, and its callers refuse.
# The same walk follows an object of a user class to its class, whose methods' names are
# read too (`SERVICE.get()` returning the module's `_SINGLETON`: -26 for 26, brk53).


# (names by which code reads a module's globals without naming them; an import by a name the
# code computes: NOTE [globals reached by name])
_COMPUTED = frozenset({"getattr", "getattr_", "vars", "globals", "__dict__",
                       "__getattribute__"})  # (`getattr_`: converted code's getattr)
_IMPORTED = frozenset({"import_module", "__import__"})


def _computed_access(names) -> tuple:
    """(whether code of `names` reads globals by a computed name, whether it imports by one)."""
    return (not _COMPUTED.isdisjoint(names),
            not _IMPORTED.isdisjoint(names) or {"sys", "modules"} <= names)


def _wide_modules(fn_globals: dict, names: set) -> list:
    """The modules a function reading globals by computed names may read so: its own (its
    globals) and those its `names` name there, one attribute deep (`pkg.sub`)."""
    found = []
    for name in names:
        value = fn_globals.get(name)
        if type(value) is types.ModuleType:
            found.append(value)
            table = vars(value)
            found += [table[n] for n in names if type(table.get(n)) is types.ModuleType]
    return found


def code_names(codes) -> set:
    """The names `codes` (code objects, with the code objects nested in them) read as
    globals, attributes or imports (dotted imports split)."""
    found, stack = set(), list(codes)
    while stack:
        code = stack.pop()
        for name in code.co_names:
            found.update(name.split("."))
        stack += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return found


def _function(value) -> list:
    return _function_roots(value) if _user(value) else []


def _class(value) -> list:
    found = []
    for base in value.__mro__ if _user(value) else ():
        if base is not object and _user(base):
            found += list(vars(base).values())
    return found


# NOTE [objects held where Python cannot read]
# Some of C's containers hold the user's objects where the walk's `vars` and items do not
# look: a weak reference (its referent; a `WeakValueDictionary`'s values are such) and a
# `functools.partial` (its function, arguments and keywords). A `Cfg` only a global partial
# held was reached by neither, so a staged body's `Step(x, scaled.keywords["cfg"])` was
# rebuilt after the statement holding a copy (`s.cfg is ...` False: -x for Python's x, in
# torch.export and torch.compile; brk52a). Both are followed now, and a `functools.lru_cache`
# wrapper of the user's function is followed to that function. Its results are not (Python
# cannot list them), and need not be: while traced, converted code calls the function past
# the cache (NOTE [calls of a functools.lru_cache helper while traced] in calls.py), so no
# staged body is given a result the cache holds.


def _weak_referent(value) -> list:
    referent = weakref.ref.__call__(value)
    return [] if referent is None else [referent]


def _partial(value) -> list:
    return [value.func, *value.args, *(value.keywords or {}).values()]


def _cached(value) -> list:
    wrapped = value.__wrapped__  # (a library's, like its functions, is not followed)
    return [wrapped] if _user(wrapped) else []


# (by exact type first: the walk asks this of every object it meets)
_CHILDREN = {dict: _values, list: _items, tuple: _items, set: _items, frozenset: _items,
             weakref.ref: _weak_referent, functools.partial: _partial}
_CODE_CHILDREN = {**_CHILDREN, types.ModuleType: _module, type: _class,
                  types.FunctionType: _function,
                  functools._lru_cache_wrapper: _cached,
                  types.MethodType: lambda m: [m.__self__, m.__func__],
                  staticmethod: lambda m: [m.__func__], classmethod: lambda m: [m.__func__]}


def _children(value, code: bool) -> list:
    """What the walk follows from `value` (NOTE [objects from outside]); with `code`, modules,
    classes and functions too."""
    follow = (_CODE_CHILDREN if code else _CHILDREN).get(type(value))
    if follow is not None:
        return follow(value)
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if isinstance(value, weakref.ref):  # (a `WeakValueDictionary`'s `KeyedRef`)
        return _weak_referent(value)
    if _is_record(value) or isinstance(value, torch.nn.Module):
        try:  # (not `getattr`: a class's own `__getattr__` would run for a slotted object)
            fields = list(object.__getattribute__(value, "__dict__").values())
        except AttributeError:
            fields = []
        for slot in _slots(type(value)):
            try:  # (the slot's own descriptor: no `__getattr__` of the user's runs)
                fields.append(slot.__get__(value, type(value)))
            except AttributeError:  # (a slot not set)
                pass
        # (its class: the names its methods read, NOTE [globals reached by name])
        return [*fields, type(value)] if code else fields
    if code and isinstance(value, type):  # (a metaclass's object)
        return _class(value)
    return []


def _slots(cls) -> tuple:
    """The descriptors of the `__slots__` fields of `cls` and its bases."""
    found = _SLOTS.get(cls)
    if found is None:
        found = []
        for base in cls.__mro__:
            declared = base.__dict__.get("__slots__", ())
            for name in [declared] if isinstance(declared, str) else declared:
                slot = base.__dict__.get(name)
                if name not in ("__dict__", "__weakref__") and hasattr(slot, "__get__"):
                    found.append(slot)
        found = _SLOTS[cls] = tuple(found)
    return found


_SLOTS = weakref.WeakKeyDictionary()  # {a class: its slots' descriptors}


def _function_roots(fn) -> list:
    """A user function's defaults, closure cells' contents and module (its globals)."""
    roots = list(fn.__defaults__ or ())
    roots += list((fn.__kwdefaults__ or {}).values())
    for cell in fn.__closure__ or ():
        try:
            roots.append(cell.cell_contents)
        except ValueError:  # (a cell not yet bound)
            pass
    module = sys.modules.get(str(fn.__module__))
    if module is not None and vars(module) is fn.__globals__:
        roots.append(module)
    else:  # (code run by `exec` in a namespace of its own)
        roots.append(fn.__globals__)
    return roots


def reachable(roots, depth: int | None = None, code: bool = True, names=None) -> Reached:
    """The ids of the objects reachable from `roots` (NOTE [objects from outside]) in at most
    `depth` steps (None: any number); without `code`, through dicts, sequences, sets and
    records only (the objects a call's arguments hold, NOTE [changed arguments] in
    autoconv/capture.py); with `names` (a set it adds to), a module's globals by the names of
    the code it walks only (NOTE [globals reached by name])."""
    return _walk(roots, code, depth, names=names)


def near_and_far(roots, depth: int) -> tuple:
    """(the ids `reachable` from `roots` through data in at most `depth` steps, those at any
    depth), in one walk."""
    near = Reached()
    return near, _walk(roots, False, depth, near)


def _walk(roots, code: bool, depth: int | None, near: Reached | None = None,
          names=None) -> Reached:
    """The walk, level by level (each object at its fewest steps): it stops after `depth`
    levels, or with `near` goes on to any depth and adds those levels' ids to `near`."""
    reached = Reached()
    by_name = names is not None and code
    modules, read = [], set(names or ())  # (the modules met; the names read in each of them)
    wide, widened = set(), []  # (the ids of modules read whole; those to read whole next)
    if by_name:  # (the roots' own code: `globals()[name]` in a staged body)
        computed, imported = _computed_access(names)
        reached.complete = not imported
        if computed:
            widened += [m for m in roots if type(m) is types.ModuleType]
    level, steps = [roots], 0
    while level and (depth is None or near is not None or steps <= depth):
        found = []
        for value in level:
            if id(value) in reached or isinstance(value, _LEAVES):
                continue
            if len(reached) >= _BUDGET:
                reached.complete = False
                return reached
            reached.add(id(value))
            if near is not None and steps <= depth:
                near.add(id(value))
            if by_name:
                kind = type(value)
                if kind is types.ModuleType:  # NOTE [globals reached by name]
                    modules.append(value)
                    found += (_module(value) if id(value) in wide
                              else _named_globals(value, names))
                    continue
                if kind is types.FunctionType and _user(value):
                    held = code_names((value.__code__,))
                    names |= held
                    computed, imported = _computed_access(held)
                    if imported:
                        reached.complete = False
                    if computed:
                        own = sys.modules.get(str(value.__module__))
                        widened += [m for m in (own, *_wide_modules(value.__globals__, held))
                                    if type(m) is types.ModuleType]
            found += _children(value, code)
        for module in widened:  # (read whole, once: met before or to be met)
            if id(module) not in wide:
                wide.add(id(module))
                found += _module(module) if id(module) in reached else [module]
        widened.clear()
        if by_name and len(names) > len(read):  # (names met later, in modules met before)
            new = names - read
            read |= new
            for module in modules:
                if id(module) not in wide:
                    found += _named_globals(module, new)
        level, steps = found, steps + 1
    return reached


def reachable_outside(functions) -> Reached:
    """The ids of the objects `functions` (the user's, as written) reach from outside a call of
    them: their defaults, closure cells and globals, and all these hold."""
    roots, codes = [], []
    for fn in functions:
        fn = getattr(fn, "__func__", fn)
        while hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        if isinstance(fn, types.FunctionType):
            roots += _function_roots(fn)
            codes.append(fn.__code__)
        else:
            module = sys.modules.get(str(getattr(fn, "__module__", None)))
            roots.append(vars(module) if module is not None else ())
            codes += [code for code in (getattr(fn, "__code__", None),) if code is not None]
    return reachable(roots, names=code_names(codes))


def from_outside(codes: tuple, ids: tuple) -> tuple:
    """Under dynamo, called for real: for each of `ids` (objects' `id()` as dynamo gives them)
    True where the object is reachable from the globals of the modules of `codes` (staged
    bodies' code objects), None where that walk was cut short and it was not found, else False
    (NOTE [objects from outside])."""
    from .staging.torch import _module_of_file

    modules = {_module_of_file(code.co_filename) for code in codes}
    reached = reachable([sys.modules[m] for m in modules if m is not None],
                        names=code_names(codes))
    if _reads_cells(codes):  # NOTE [cells of a function compiled]
        reached.complete = False
    return tuple(True if i in reached else None if not reached.complete else False
                 for i in ids)


# NOTE [cells of a function compiled]
# Under dynamo the walk has the bodies' code objects, not the functions: their closure cells,
# the user's function's (`def make(cfg): def step(x): if ...: s = Step(x, cfg)`), are not
# among its roots, so a `Config` only a cell held was taken for one the body made and the
# rebuilt `s.cfg` was a copy (-58 for Python's 58 under torch.compile; brk53). The functions
# dynamo makes while tracing are no live objects the walk could read. A body reading a cell
# of the user's (a free variable not autoconv's own) makes the walk not `complete`: an object
# it did not place is refused at the statement's line, never copied.


def _reads_cells(codes) -> bool:
    # ("ac": the runtime's name in converted code, autoconv/conversion.py's RUNTIME_NAME)
    return any(name != "ac" for code in codes for name in code.co_freevars)


from_outside._dynamo_marked_constant = True
