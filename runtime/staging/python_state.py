"""Python state a staged body changes but does not carry: refused at the line.

NOTE [Python state a staged body changes]
A staged body (a branch of a tensor `if`, the body or test of a tensor `while`) runs once while
the statement is traced, not once per trip or only on the path taken. What it computes from
tensors becomes the graph; a change it makes to Python state becomes nothing. autoconv carries
the state it can (names the body assigns, plain objects' and dicts' fields, lists it appends to:
objects.py, lists.py), and refuses sets and modules' attributes. An iterator it advances
(`v = next(it)`, `for v in it: break`, a generator resumed) or a deque it pops is left at the
position the trace left it: the graph reads the same item on every trip (a loop that the
items were to end runs forever), and code after the statement reads from the wrong place. A
closure made by a factory that assigns its `nonlocal` (`count += 1` in a counter), called in
the body, assigns it once while tracing, whichever path runs (a tensor there would leave a value
of the trace in the cell).

So the iterators and deques a body can reach directly (its inputs: the names it reads, and the
globals and closure cells its code names) are fingerprinted before it runs (an iterator's
position: what `__length_hint__` and `__reduce__` say, a generator's frame; a deque's items)
and compared after, as are the cells that the functions the body reaches (two calls deep)
assign: a change raises a StagingError at the first line of the body that names the object or
function, saying what to write instead (a stacked tensor indexed by a counter the loop carries,
the new value returned). Never specialised (NOTE [specialisation]): the failed trace changed the
state already. The fingerprint is taken only while tracing a statement, never when the graph runs.

Under dynamo (torch.compile) a body cannot be run to compare: dynamo refuses the change itself
while it traces the body ("Unsafe side effect", or no error at all for a deque's method), and
a failed trace cannot be caught. So there the statement's inputs are looked at before it is
staged, from the body's code: an iterator the body reads (a staged body reads one to advance
it), a deque whose changing methods the body's code names, a closure whose code assigns its
nonlocal: each is the same StagingError. (Only the inputs: the globals and cells a body names,
and the functions a called closure calls, are not looked at there.)
"""

from __future__ import annotations

import collections
import dis
import inspect
import operator
import os
import sys
import types
import warnings

import torch

from ..errors import StagingError
from . import callee_globals, specialize
from ..identity import identical, type_in
from ..traced import enumerate  # (NOTE [enumerate under dynamo] in runtime/traced.py)

__all__ = ["refusing_advanced_iterators"]

_ITEMS = 16  # items of a container a fingerprint looks at (and its length)


def refusing_advanced_iterators(bodies, statement: str, count: int, inputs=()):
    """`bodies` ((fn, where) pairs, fn may be None), each raising a StagingError where it
    advanced an iterator or changed a deque that it reads but the statement does not carry, or
    called a closure that assigned its nonlocal (NOTE [Python state a staged body changes]);
    `count`: how many of a body's arguments are the statement's state (the rest are its
    read-only inputs, `inputs`).

    Raises:
        StagingError: under dynamo, before anything is staged, where `inputs` hold such state
            that a body changes.
    """
    if torch.compiler.is_dynamo_compiling():
        for fn, where in bodies:
            if fn is not None:
                _refuse_under_dynamo(fn, where, statement, count, inputs)
        return tuple(fn for fn, _ in bodies)
    return tuple(_checked(fn, where, statement, count) if fn is not None else None
                 for fn, where in bodies)


_CHANGING = frozenset({"append", "appendleft", "pop", "popleft", "extend", "extendleft",
                       "clear", "rotate", "remove", "insert"})


# Values no body can advance. A numpy array among them: dynamo answers no `hasattr` of its
# type (tester t14 repro 18, an ndarray argument under torch.compile failed on autoconv's
# `hasattr(NumpyVariable, __next__)`, where dynamo stages the array's arithmetic itself).
try:
    import numpy as _numpy
    _NOT_STATE = (torch.Tensor, int, float, bool, str, _numpy.ndarray, _numpy.generic)
except ImportError:  # numpy is optional for torch
    _NOT_STATE = (torch.Tensor, int, float, bool, str)


def _refuse_under_dynamo(fn, where: str, statement: str, count: int, inputs) -> None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    params, changes = _code_facts(code)
    # NOTE [globals' objects changed in a staged body under dynamo]
    changed = _changed_global(code)
    if changed is not None:
        _raise_global_change(code, changed, where, statement)
    changed = _callee_change_under_dynamo(code)
    if changed is not None:  # NOTE [a count a constructor or callee keeps in a global]
        _raise_callee_change(*changed, where, statement)
    wrapper = _runtimes(code)
    if wrapper:
        # (the runtime's wrapper of a `for` loop's body and test, which takes every input:
        # the user's name of each is the one the loop shows, and the call is somewhere in
        # the loop, at its line; tester31 s03 named 'argument 1' "called in the loop test",
        # located in runtime/operators.py)
        from .objects import shown_input
        from ..errors import dynamo_user_location

        where, code = f"in the {statement}", dynamo_user_location() or code
    for i, value in enumerate(inputs):
        # (only what dynamo can ask of any value: isinstance, and attributes of its type)
        if value is None or isinstance(value, _NOT_STATE):
            continue
        # (named after that check: `shown_input`'s identity tests of a number dynamo made
        # symbolic, a float read by `float(f)` in a staged loop, made it an operand of the
        # enclosing torch.cond, which torch refuses: test_branch_lists.py's numbers under
        # --run-slow)
        name = params[count + i] if count + i < len(params) else None
        if wrapper:
            name = shown_input(value) or name or f"argument {count + i}"
        elif count + i >= len(params):
            name = f"argument {count + i}"
        if name is None:
            continue  # (a parameter the body never reads)
        if isinstance(value, collections.deque):
            if changes:
                _raise_refusal(code, name, "deque", where, statement)
        elif isinstance(value, types.FunctionType):
            stored = _stored_freevars(value.__code__)
            if stored:
                _raise_refusal(code, name, stored[0], where, statement)
            for free in _changed_freevars(value.__code__):
                # (a tensor's item set: the operator takes the update, NOTE [free variables
                # updated in a body under dynamo])
                if not _cell_holds_tensor(value.__code__, free):
                    _raise_closure_change(code, name, free, where, statement)
        elif hasattr(type(value), "__next__"):
            _raise_refusal(code, name, "iterator", where, statement)


def _cell_holds_tensor(code, free: str) -> bool:
    """Whether the cell `free` of the function of `code` that `_refuse_under_dynamo` looks at
    (its local `value`) holds a tensor, as dynamo's record of the cell says (no `__closure__`
    of a function made in its trace is readable there). False where that cannot be read.
    Called for real."""
    try:
        from torch._dynamo.symbolic_convert import InstructionTranslator
        from torch._dynamo.variables import TensorVariable

        tx = InstructionTranslator.current_tx().output.current_tx
        while tx is not None and tx.f_code is not _refuse_under_dynamo.__code__:
            tx = getattr(tx, "parent", None)
        function = tx.symbolic_locals["value"].realize()
        if function.get_code() is not code:
            return False
        cell = function.closure.items[code.co_freevars.index(free)]
        return isinstance(tx.output.side_effects.load_cell(cell).realize(), TensorVariable)
    except Exception:  # noqa: BLE001 (dynamo's internals as they are: refused as before)
        return False


_cell_holds_tensor._dynamo_marked_constant = True


def _code_facts(code):
    """(the parameters of `code`, None for each it never reads; whether it or a function in it
    names a method that changes a deque)."""
    names, stack = set(), [code]
    while stack:
        inner = stack.pop()
        names.update(inner.co_names)
        names.update(c for c in inner.co_consts if type(c) is str)
        stack.extend(c for c in inner.co_consts if isinstance(c, types.CodeType))
    read = {i.argval for i in dis.get_instructions(code)
            if i.opname in ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_FAST_CHECK")}
    return (tuple(p if p in read else None for p in code.co_varnames[: code.co_argcount]),
            bool(names & _CHANGING))


_code_facts._dynamo_marked_constant = True  # (dynamo calls it for real: constants in and out)


def _raise_refusal(code, name: str, kind: str, where: str, statement: str):
    if kind in ("deque", "iterator"):
        error = _refusal(code, name, collections.deque() if kind == "deque" else iter(()),
                         where, statement)
    else:
        error = _nonlocal_refusal(code, name, kind, where, statement)
    from ..errors import raise_at_under_dynamo

    raise_at_under_dynamo((error.filename, error.lineno), statement, error.problem, error.fix)


_raise_refusal._dynamo_marked_constant = True


def _checked(fn, where: str, statement: str, count: int):
    code = getattr(fn, "__code__", None)
    if code is None or _runtimes(code):
        # (a runtime wrapper of bodies already checked: its cells hold the statement's own
        # bodies, whose stores into their function's cells are the converter's, carried)
        return fn
    params = code.co_varnames[: code.co_argcount]
    outside = _outside_objects(fn, code)
    globals_changed = _globals_changed(fn, code)
    # NOTE [a count a callee keeps in a global's object]
    counters = []
    seen_callees = set()
    for name in code.co_names:
        _counted_globals(getattr(fn, "__globals__", {}).get(name), counters, seen_callees,
                         _CALL_DEPTH)
    if isinstance(fn, types.FunctionType):  # (`COUNTER.hit(v)` in the body itself)
        _counted_globals(None, counters, seen_callees, _CALL_DEPTH, body=fn)
    for cell in getattr(fn, "__closure__", None) or ():  # (a callee the function closes over)
        _counted_globals(_cell_value(cell), counters, seen_callees, _CALL_DEPTH)
    if not outside and not globals_changed and not counters and len(params) <= count:
        return fn

    def run(*args):
        given = [(params[i] if i < len(params) else f"argument {i}", value)
                 for i, value in enumerate(args) if i >= count]
        watched = [(name, value) for name, value in given if _watched(value)]
        watched += [(name, value) for name, value in outside if _watched(value)]
        cells = []  # (name of the function the body calls, nonlocal, cell)
        seen = set()
        for name, value in given + outside:
            _assigned_cells(value, name, cells, seen, _CALL_DEPTH)
        counted = list(counters)
        seen = set(seen_callees)
        for _, value in given + outside:
            _counted_globals(value, counted, seen, _CALL_DEPTH)
        if not watched and not cells and not globals_changed and not counted:
            return fn(*args)
        before = [_fingerprint(value) for _, value in watched]
        contents = [_cell_value(cell) for _, _, cell in cells]
        tables = [(name, value, table, _copied(table)) for name, value in globals_changed
                  for table in _tables(value)]
        # NOTE [a global's object rebound in a staged body]
        tables += [(place, owner, table, _copied(table)) for name, value in globals_changed
                   for place, owner, table in _held_tables(value, name)]
        counts = [(callee, name, value, table, _copied(table))
                  for callee, name, value in counted for table in _counted_tables(value)]
        out = fn(*args)
        for callee, name, value, table, old in counts:
            if _runs_as_it_is(callee):  # NOTE [counts in keys a callee adds]
                continue
            if type(table) is callee_globals.GlobalNames:
                # NOTE [a count a constructor or callee keeps in a global]
                assigned = callee_globals.changed_name(table, old)
                if assigned is not None:
                    for *_, changed, copy in counts:
                        _put_back(changed, copy)
                    raise callee_globals.assigned_refusal(callee, assigned, where, statement)
                continue
            key = _count_changed(table, old, table is value)
            fields = table is getattr(value, "__dict__", None) or isinstance(
                value, torch.nn.Module) or type(table) is _ClassTable
            grown = None if key is not None or fields else _container_changed(table, old)
            stored = None if key is not None or grown is not None else _trace_value_stored(
                table, old)
            if stored is not None:  # (a method's `self.last = t * 2`: NOTE [trace values
                for *_, changed, copy in counts:  # stored into globals' objects])
                    _put_back(changed, copy)
                raise _global_store_refusal(callee, name, _place(name, value, table, stored),
                                            where, statement)
            if key is not None or grown is not None:
                for *_, changed, copy in counts:
                    _put_back(changed, copy)
                place = (name if key is None and table is value
                         else _place(name, value, table, key if key is not None else grown))
                raise _global_count_refusal(callee, name, place, where, statement,
                                            key is None, key is None and table is value)
            rebound = _object_rebound(table, old)
            if rebound is not None:  # NOTE [a global's object rebound in a staged body]
                for *_, changed, copy in counts:
                    _put_back(changed, copy)
                place = _place(name, value, table, rebound)
                raise _exported_rebind_refusal(_callee_line(callee, name, place), name, place,
                                               f"by '{callee_globals.shown(callee)}', called "
                                               f"{where}", statement)
        for name, value, table, old in tables:
            key = _trace_value_stored(table, old)
            root = name.partition(".")[0].partition("[")[0]  # (a held table's: `G.cfg`)
            if key is not None:
                for _, _, changed, copy in tables:
                    _put_back(changed, copy)
                place = f"{name}[{key!r}]" if table is value else f"{name}.{key}"
                raise _global_store_refusal(fn, root, place, where, statement)
            # NOTE [a count a staged body keeps in a global's object under torch.export]
            key = _count_changed(table, old, False) if torch.compiler.is_exporting() else None
            if key is not None and type_in(old.get(key) if type(old) is dict else None,
                                           (bool,)):
                key = None
            rebound = key is None
            if rebound:  # NOTE [a global's object rebound in a staged body]
                key = _object_rebound(table, old)
            if key is not None:
                for _, _, changed, copy in tables:
                    _put_back(changed, copy)
                place = f"{name}[{key!r}]" if table is value else f"{name}.{key}"
                raise (_exported_rebind_refusal if rebound else _exported_count_refusal)(
                    fn, root, place, where, statement)
        for (name, value), old in zip(watched, before):
            if _fingerprint(value) != old:
                raise _refusal(fn, name, value, where, statement)
        for (caller, name, cell), old in zip(cells, contents):
            if not identical(_cell_value(cell), old):
                raise _nonlocal_refusal(fn, caller, name, where, statement)
        return out

    run.__wrapped__ = fn  # (its parameters name the statement's inputs: objects.py)
    return run


# NOTE [trace values stored into globals' objects]
# `STATS.running = STATS.running * 0.9 + x * 0.1` in a branch of a tensor `if`, STATS a global
# module (or `OBJ.v = ...`, `TABLE["v"] = ...` on a global object or dict): the body runs once,
# while tracing, and left the object holding a fake tensor of the trace in replay and in
# torch.export's program, silently (tester29 s02; autoconv's own check of a function's outside
# containers, NOTE [trace values stored outside] in autoconv/captures.py, skips modules and runs
# only in autoconv's trace). A staged statement cannot carry a global's object, so the tables
# that hold the fields and items of the globals a body's code sets (a dict; an object's
# `__dict__`; a module's, and its parameters and buffers) are copied before the body runs and
# looked at after: one holding a value of the trace is put back and the store refused at the
# line. A Python value stored there is the documented once-while-tracing side effect (README,
# "Python side effects in a staged body"). Under dynamo the body's code is read instead (NOTE
# [globals' objects changed in a staged body under dynamo]).


def _globals_changed(fn, code) -> list:
    """(name, object) for the globals of `fn` whose objects `code` sets a field or item of (a
    dict, list, plain object or module: not a tensor, updated in place by the graph)."""
    table = getattr(fn, "__globals__", None)
    if not isinstance(table, dict):
        return []
    found = []
    for origin in _changed_origins(code):
        if type(origin) is tuple and origin[1] in table:
            value = table[origin[1]]
            if not isinstance(value, (torch.Tensor, types.ModuleType, type,
                                      types.FunctionType)) or _user_class(value):
                found.append((origin[1], value))
    return found


# NOTE [a count kept in a global class's attribute]
# `class Counter: calls = 0` and `Counter.calls += 1` in a helper called in a staged branch (or
# in the branch itself): a class's attributes live in its namespace, a read-only mapping, which
# the tables above left out (classes were not looked at), so the count was made once, while
# tracing: the saved torch.export program never counted (0 for Python's 3, break49 s03) and
# autoconv's replay refused it only afterwards, as a guarded global the trace changed. A user's
# class (not a library's) is now looked at as a plain object is, its namespace as the table
# (`_ClassTable`): a number changed there is put back (`setattr`) and refused at the line. A
# class attribute changed through an instance (`type(self).calls += 1` in a method of a global
# object) is the same namespace.
class _ClassTable:
    """A user class's namespace as a table of the checks above (NOTE [a count kept in a global
    class's attribute])."""

    __slots__ = ("cls",)

    def __init__(self, cls):
        self.cls = cls

    def items(self):
        return list(vars(self.cls).items())


def _user_class(value) -> bool:
    """Whether `value` is a class of the user's code (not torch's, numpy's, the standard
    library's or autoconv's)."""
    if not isinstance(value, type):
        return False
    from ..calls import is_library_module  # (calls imports this module)

    module = getattr(value, "__module__", None)
    return isinstance(module, str) and module != "builtins" and not is_library_module(module)


# NOTE [a count a callee keeps in a global's object]
# `def tick(t): TICKS[0] += 2` (TICKS a global list; `STATS.calls += 1`, `COUNTS["n"] += 1`),
# called in a staged loop's body: the body's own code names no such global, and a function's
# globals are no object the statement can carry (it carries what a callable holds: NOTE
# [objects reached through a callable] in objects.py), so the count was made once per trace,
# and the graph gave the trace's count, silently (4008 for Python's 6008 in replay and the
# exported program: wrong47's xfail). So the functions a body calls (given to it, or named
# by its code as globals or closures, and those they call, `_CALL_DEPTH` deep) whose code
# sets an item or field of a global's object have the numbers of that object compared across
# the body: a changed one is put back and refused at the callee's line. Since session 49 so
# are the lists and dicts of those objects and of the plain objects among them (`self.calls`),
# the global lists and dicts a callee's code names (`LOG.append(v)`), and the plain objects
# held by globals whose own methods the body or a callee names (`COUNTER.hit(v)`, its method
# appending to `self.calls`: 2 items for Python's 5, break48 s01; the same method of an object
# the function is given was refused already, the statement carrying it): a list changed in
# any way (appended to, popped, an item set), a dict that lost a key or holds another object
# at one. A key added to a dict is a cache filled (`_CACHE.setdefault(k, v)`), once as in
# Python; a library's functions are not followed, nor for these lists and dicts a function
# marked do_not_convert and those it names (a profiler it sets filling a global list:
# test_process_state.py's). Under dynamo, dynamo refuses the store
# itself ("Unsafe side effect").


def _counted_globals(value, found: list, seen: set, depth: int, body=None,
                     containers: bool = True) -> None:
    """Append (callee, global's name, its object) for the globals whose objects a user's
    function `value` (or one it calls) sets an item or field of, appends to or pops from, and
    the user's objects held by globals whose methods the code of `body` or of such a function
    names (NOTE [a count a callee keeps in a global's object])."""
    from ..calls import is_library_function, is_marked_do_not_convert  # (calls imports
    # the staging package)

    if body is not None:
        _methods_of_globals(body, body.__code__, found, seen, depth)
        return
    if _user_class(value):  # NOTE [a count a constructor or callee keeps in a global]
        if id(value) not in seen:
            seen.add(id(value))
            for constructor in callee_globals.constructors(value):
                _counted_globals(constructor, found, seen, depth, containers=containers)
        return
    fn = getattr(value, "__func__", value)
    if not isinstance(fn, types.FunctionType) or id(fn) in seen or _runtimes(fn.__code__):
        return
    if is_library_function(fn):
        return
    seen.add(id(fn))
    code = fn.__code__
    found += [(fn, name, obj) for name, obj in _globals_changed(fn, code)
              if not any(obj is other for _, _, other in found)]
    assigned = callee_globals.assigned_globals(code)
    if assigned:  # (`global N; N += 1` in the callee)
        found.append((fn, None, callee_globals.GlobalNames(fn.__globals__, assigned)))
    # (the lists and dicts: not from a function the user asked to run as it is, nor from the
    # functions it names, a profiler it sets: `sys.setprofile(_profiler)`)
    containers = containers and not is_marked_do_not_convert(fn)
    if containers:
        # (a list or dict of the globals whose changing methods the callee's code calls:
        # `LOG.append(v)`; not one it only reads)
        found += [(fn, name, fn.__globals__[name]) for name in _appended_globals(code)
                  if type_in(fn.__globals__.get(name), (list, dict))
                  and not any(fn.__globals__[name] is other for _, _, other in found)]
        _methods_of_globals(fn, code, found, seen, depth)
    if depth:
        for called in code.co_names:
            _counted_globals(fn.__globals__.get(called), found, seen, depth - 1,
                             containers=containers)
        for cell in fn.__closure__ or ():
            _counted_globals(_cell_value(cell), found, seen, depth - 1,
                             containers=containers)


def _appended_globals(code) -> tuple:
    """The globals `code` calls a changing method of (`LOG.append(v)`, `TABLE.pop(k)`)."""
    found, last = [], None
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and last is not None and (
                ins.argval in _CHANGING or ins.argval in _CHANGING_METHODS):
            found.append(last)
        last = ins.argval if ins.opname == "LOAD_GLOBAL" else None
    return tuple(dict.fromkeys(found))


def _methods_of_globals(fn, code, found: list, seen: set, depth: int) -> None:
    """(method, global's name, object) into `found` for each user object held by a global of
    `fn` that `code` names with a method of its own class it also names (`COUNTER.hit(v)`), and
    what that method calls (NOTE [a count a callee keeps in a global's object])."""
    from ..calls import is_library_function

    table = getattr(fn, "__globals__", None)
    if not isinstance(table, dict):
        return
    for name in code.co_names:
        obj = table.get(name)
        if obj is None or isinstance(obj, _NOT_OBJECTS) or type(
                getattr(obj, "__dict__", None)) is not dict:
            continue
        for attr in code.co_names:
            method = getattr(type(obj), attr, None)
            if not isinstance(method, types.FunctionType) or is_library_function(method):
                continue
            if not any(obj is other for _, _, other in found):
                found.append((method, name, obj))
            _counted_globals(method, found, seen, depth)


# (not the objects whose methods are followed: what a statement carries or refuses otherwise)
_NOT_OBJECTS = (torch.Tensor, torch.nn.Module, types.ModuleType, type, types.FunctionType,
                types.BuiltinFunctionType, types.MethodType, list, dict, tuple, set, str,
                int, float, bool, complex)


def _counted_tables(value) -> list:
    """`_tables(value)`, and the lists and dicts a plain object's fields hold (`self.calls`)."""
    if type(value) is callee_globals.GlobalNames:
        return [value]
    tables = _tables(value)
    if tables and not isinstance(value, (dict, list, torch.nn.Module, type)):
        tables += [held for held in list(tables[0].values()) if type_in(held, (list, dict))]
        if _user_class(type(value)):  # (`type(self).calls += 1` in its method: NOTE [a count
            tables.append(_ClassTable(type(value)))  # kept in a global class's attribute])
    return tables


def _container_changed(table, old):
    """Where a list (the global itself or a field's) is not what `old` held (an index, or its
    new length), or a dict lost a key or holds another object at one: None where not (a key
    added is a cache filled, once as in Python)."""
    if isinstance(table, list):  # (subclasses too: NOTE [counts in keys a callee adds])
        if len(table) != len(old):
            return len(old)
        return next((i for i, (a, b) in enumerate(zip(table, old)) if a is not b), None)
    for key, was in old.items():
        if key not in table or table[key] is not was and not (
                type_in(was, (int, float, bool, complex)) and type(table[key]) is type(was)
                and table[key] == was):
            return key
    return None


def _place(name: str, value, table, key) -> str:
    """How the user writes the place `key` of `table`, held by the global `name`'s `value`."""
    if table is value:
        return f"{name}[{key!r}]"
    if type(table) is _ClassTable:
        return f"{name}.{key}" if table.cls is value else f"type({name}).{key}"
    attrs = getattr(value, "__dict__", None)
    if table is attrs:
        return f"{name}.{key}"
    field = next((k for k, v in (attrs or {}).items() if v is table), "?")
    return f"{name}.{field}"


def _runs_as_it_is(callee) -> bool:
    from ..calls import is_marked_do_not_convert  # (calls imports this module)

    return is_marked_do_not_convert(callee)


def _now_at(table, key):
    """What `table` (a global's dict, a class's table or a list) holds at `key` now, or
    _EMPTY."""
    if type(table) is _ClassTable:
        return vars(table.cls).get(key, _EMPTY)
    if isinstance(table, dict):
        return dict.get(table, key, _EMPTY)
    return table[key] if key < len(table) else _EMPTY


def _count_changed(table, old, mapping: bool):
    """The key or index of `table` whose number is not the one `old` held there, or None;
    with `mapping` (`table` is the global's dict itself), also a key `old` did not hold that
    now holds a number (NOTE [counts in keys a callee adds])."""
    items = old.items() if type(old) is dict else enumerate(old)
    for key, was in items:
        if not type_in(was, (int, float, bool, complex)):
            continue
        now = _now_at(table, key)
        if not identical(now, was) and not (type(now) is type(was) and now == was):
            return key
    if mapping and isinstance(table, dict) and len(table) > len(old):
        for key, now in list(dict.items(table)):
            if key not in old and type_in(now, (int, float, complex)):
                return key
    return None


# NOTE [counts in keys a callee adds]
# `CALLS = collections.defaultdict(int)` (or a `Counter`, or a dict `d[k] = d.get(k, 0) + 1`
# fills) counts from a key that is not there yet: the first trace adds it, and comparing only
# the keys the dict held before the body missed the count (1 for Python's 3 in replay, the
# exported program never counting, break49 s02). So a key the body adds to a global's dict
# counts as changed where it holds a number (not a bool: a flag set once is the same after
# the trace as after Python's calls). Only the dict the global holds itself: a field first
# set on a global's object (`CONFIG.ready = 1`) stays the documented once-while-tracing
# effect. Dict and list subclasses (`Counter`, `defaultdict`, `OrderedDict`) are their own
# tables: `Counter.update` adds where `dict.update` puts back, so the copy is put back by
# dict's and list's own methods. A callee marked `do_not_convert` is asked to run as it is:
# what it counts stays its effect while tracing, as its lists and dicts do (NOTE [a count a
# callee keeps in a global's object]; the suite's counter of body runs, a Counter, is one:
# tests/test_staging_engine.py, refused once break49 made dict subclasses tables).


def _global_count_refusal(callee, name: str, place: str, where: str, statement: str,
                          container: bool = False, itself: bool = False):
    caller = callee_globals.shown(callee)
    if itself:
        what = "the list or dict the global holds (appends to it, pops or sets an item)"
    else:
        what = (("a list or dict (appends to it, pops or sets an item)" if container
                 else "a number") + f" in the object the global '{name}' holds")
    problem = (f"'{caller}' changes `{place}`, {what}, called {where}; a staged body runs "
               "once while tracing, so the change happens once, not on every trip or only on "
               f"the path taken, and the {statement} cannot carry a global's object")
    if container:
        fix = (f"Return what '{caller}' records and collect it in a list the {statement} "
               f"carries (a local list, added to `{place}` after the {statement}), or keep "
               "it in a tensor updated in place")
    else:
        fix = (f"Keep the count in a tensor updated in place (a global tensor: `{place} += 2` "
               "then updates it on every trip), or return what '" + caller + "' counts and "
               f"add it up in a variable the {statement} carries")
    return specialize.never(StagingError.at(_callee_line(callee, name, place), statement,
                                            problem, fix))


# NOTE [a count a staged body keeps in a global's object under torch.export]
# `Counter.calls += 1` (or `OBJ.n += 1`, a global object's field) in a branch of a tensor `if`
# itself: the branch runs once, while exporting, and the saved program never counts (0 for
# Python's 3, silently; break49 s03's kind). autoconv's replay refuses it after the trace (a
# guarded global the trace changed) and dynamo at the line (NOTE [globals' objects changed in
# a staged body under dynamo]); under torch.export a number the body's own code changes in a
# global's object (or class) is put back and refused at its line, as a helper's count is
# (NOTE [a count a callee keeps in a global's object]). A bool set there (a flag) is the
# once-while-tracing side effect README describes, as before.
# NOTE [a global's object rebound in a staged body]
# `G.cfg = dataclasses.replace(G.cfg, k=G.cfg.k + 1)` in a branch of a tensor `if` (G a
# global object; also a named tuple's `_replace`, any object put in place of another), then
# `x * G.cfg.k`: the branch runs once, while tracing, and the graph reads the field as the
# trace left it, on every path and call: under torch.export [3, 6, -3, 9] for Python's [3, 8,
# -4, 15], silently (brk56b); autoconv's replay refused the dataclass after the trace (its
# guard on the field failed) but gave those numbers for the named tuple, whose guard compares
# values. A field or item of a global's object that a staged body's own code (or a helper it
# calls: NOTE [a count a callee keeps in a global's object]) sets to another object is put
# back and refused at its line, in replay and torch.export (dynamo refuses it at the line
# already: NOTE [globals' objects changed in a staged body under dynamo]). Not refused: a
# number (refused under torch.export only, NOTE [a count a staged body keeps in a global's
# object under torch.export]; replay's guard), a field first set, or one that held None or a
# bool (a flag set, a cache filled: the once-while-tracing effect README describes), a
# tensor (NOTE [trace values stored into globals' objects]). The objects such a global's
# fields hold are looked at too, to `_HELD_DEPTH` steps (`G.cfg.k = G.cfg.k + 1` under
# torch.export: a number two steps down, silently wrong alike).
_HELD_DEPTH = 2


def _held_tables(value, name: str, depth: int = _HELD_DEPTH) -> list:
    """(place, owner, table) for the objects, dicts and lists that `value`'s fields and items
    hold, to `depth` steps (not `value`'s own tables: `_tables`), for NOTE [a global's object
    rebound in a staged body]."""
    found = []
    for table in _tables(value):
        items = table.items() if isinstance(table, dict) else enumerate(table) if isinstance(
            table, list) else ()
        for key, held in list(items)[:_MAX_HELD]:
            if isinstance(held, (torch.Tensor, type, types.ModuleType, types.FunctionType)) \
                    or type_in(held, (int, float, bool, complex, str, bytes)) or held is None:
                continue
            place = f"{name}[{key!r}]" if table is value else f"{name}.{key}"
            inner = [(place, held, t) for t in _tables(held)]
            if not inner:
                continue
            found += inner
            if depth > 1:
                found += _held_tables(held, place, depth - 1)
    return found


_MAX_HELD = 64  # (fields or items of one table looked into)


def _object_rebound(table, old):
    """The key or index of `table` that held an object (not a number, bool, None or tensor)
    and now holds another one, or None (NOTE [a global's object rebound in a staged body])."""
    items = old.items() if type(old) is dict else enumerate(old)
    for key, was in items:
        if was is None or isinstance(was, torch.Tensor) or type_in(
                was, (int, float, bool, complex)):
            continue
        now = _now_at(table, key)
        if now is was or now is _EMPTY or type_in(was, (str, bytes)) and type(
                now) is type(was) and now == was:
            continue
        return key
    return None


def _exported_rebind_refusal(fn, name: str, place: str, where: str, statement: str):
    problem = (f"`{place}`, held by the global '{name}', is set to another object {where}; "
               "a staged body runs once while tracing (or exporting), so the graph would read "
               "the object the trace left there on every path and call, and never set it")
    fix = (f"Return the new value (or what decides it) and set `{place}` outside the "
           f"function, or pass `{place}`'s values to the function as arguments")
    return specialize.never(StagingError.at(_line_naming(fn, name), statement, problem, fix))


def _exported_count_refusal(fn, name: str, place: str, where: str, statement: str):
    problem = (f"`{place}`, a number in the object the global '{name}' holds, is changed "
               f"{where}; under torch.export a staged body runs once while exporting, and the "
               "exported program cannot change a Python object on each call (it would never "
               "count)")
    fix = (f"Keep the count in a tensor updated in place (a global tensor: `{place} += 1` then "
           f"updates it on every call), or return what decides it and change `{place}` "
           "outside the exported program")
    return specialize.never(StagingError.at(_line_naming(fn, name), statement, problem, fix))


def _callee_line(callee, name: str, place: str):
    """(file, line) of `callee`'s line naming the global `name`, or, in a method of its
    object, the field of `place` (`self.calls.append(1)`)."""
    at = _line_naming(callee, name)
    field = place.rpartition(".")[2].partition("[")[0]
    code = getattr(callee, "__code__", callee)
    if at[1] == code.co_firstlineno and field:
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_ATTR", "STORE_ATTR", "LOAD_METHOD") \
                    and instruction.argval == field and instruction.positions \
                    and instruction.positions.lineno:
                return code.co_filename, instruction.positions.lineno
    return at


def _tables(value) -> list:
    """The dicts and lists that hold `value`'s fields or items (NOTE [trace values stored into
    globals' objects])."""
    if isinstance(value, (dict, list)):  # (subclasses too: NOTE [counts in keys a callee adds])
        return [value]
    if _user_class(value):  # NOTE [a count kept in a global class's attribute]
        return [_ClassTable(value)]
    attrs = getattr(value, "__dict__", None)
    if type(attrs) is not dict:
        return []
    tables = [attrs]
    if isinstance(value, torch.nn.Module):
        tables += [t for t in (attrs.get("_parameters"), attrs.get("_buffers"))
                   if type(t) is dict]
    return tables


def _copied(table):
    if type_in(table, (_ClassTable, callee_globals.GlobalNames)):
        return dict(table.items())
    return dict(dict.items(table)) if isinstance(table, dict) else list(table)


def _put_back(table, old) -> None:
    if type(table) is callee_globals.GlobalNames:
        table.put_back(old)
    elif type(table) is _ClassTable:
        for key, value in old.items():
            if vars(table.cls).get(key, _EMPTY) is not value:
                setattr(table.cls, key, value)
        for key in [k for k in vars(table.cls) if k not in old]:
            delattr(table.cls, key)
    elif isinstance(table, dict):  # (dict's own: a Counter's `update` adds)
        dict.clear(table)
        dict.update(table, old)
    else:
        list.__setitem__(table, slice(None), old)


def _trace_value_stored(table, old):
    """The key or index of `table` that holds a tensor of a trace it did not hold in `old`, or
    None."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    items = table.items() if type(table) is _ClassTable else dict.items(table) if isinstance(
        table, dict) else enumerate(table)
    for key, value in list(items):
        if isinstance(value, (FakeTensor, FunctionalTensor)):
            previous = old.get(key) if type(old) is dict else (
                old[key] if key < len(old) else None)
            if previous is not value:
                return key
    return None


def _global_store_refusal(fn, name: str, place: str, where: str, statement: str):
    problem = (f"a tensor computed {where} is stored into `{place}`, a field or item of the "
               f"object the global '{name}' holds; a staged body runs once while tracing and "
               f"the {statement} cannot carry a global's object, so '{name}' would keep a "
               "value of the trace (a fake tensor), not the value of the path taken")
    fix = (f"Return the new value from the function and store it into `{place}` in the "
           f"caller, or pass '{name}' in as an argument (its fields are then carried)")
    return specialize.never(StagingError.at(_callee_line(fn, name, place), statement, problem,
                                            fix))


def _outside_objects(fn, code) -> list:
    """(name, object) for the iterators and deques `fn` reads as globals or closure cells, and
    the functions there (whose nonlocals a call may assign)."""
    found = []
    table = getattr(fn, "__globals__", {})
    for name in code.co_names:
        value = table.get(name)
        if value is not None and (_watched(value) or _assigns_cells(value)):
            found.append((name, value))
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        value = _cell_value(cell)
        if _watched(value) or _assigns_cells(value):
            found.append((name, value))
    return found


_EMPTY = object()
_CALL_DEPTH = 2  # functions called by functions the body calls, where nonlocals are looked for


_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # autoconv_runtime's


def _runtimes(code) -> bool:
    return code.co_filename.startswith(_RUNTIME)


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY


def _stored_freevars(code) -> tuple:
    """The free variables `code` assigns (`nonlocal count; count += 1`)."""
    stored = _STORED.get(code)
    if stored is None:
        stored = _STORED[code] = tuple(dict.fromkeys(
            i.argval for i in dis.get_instructions(code)
            if i.opname in ("STORE_DEREF", "DELETE_DEREF") and i.argval in code.co_freevars))
    return stored


_STORED: dict = {}
_stored_freevars._dynamo_marked_constant = True  # (dynamo calls it for real)


# NOTE [closures changing their cells' objects under dynamo]
# `def bump(): c.hits += 1` given to a staged body, `c` an object of the function that made
# `bump`: outside dynamo the statement carries `c` (objects.py, NOTE [objects reached through a
# callable]), but dynamo shows no closure of a function made in its trace, so `c` cannot be
# found, and dynamo stops at the store inside torch's operator with its own error and no user
# line (UncapturedHigherOrderOpError). So under dynamo a closure input's code is read: a field
# or item set on an object a free variable holds (`c.hits = ...`, `d["n"] += 1`, `acc[0] = 1`,
# `c.inner.k = 3`, `setattr(c, ...)`) is refused at the call's line. Only the closure's own
# code: a closure it calls is not read (its cells cannot be reached there either). Not a cell
# that holds a tensor (`hist[0] += v`), as dynamo's record of the cell says: the operator
# takes that update (NOTE [free variables updated in a body under dynamo]).

_SETTERS = frozenset({"setattr", "setattr_", "delattr", "delattr_", "setitem",
                      "aug_assign_attribute"})


# (a list's `append` / `extend` is refused at the call: `enclosing_list_append` in operators.py)
_CHANGING_METHODS = frozenset({"__setitem__", "__delitem__", "__setattr__", "__delattr__",
                               "update", "setdefault", "pop", "popitem", "clear", "insert",
                               "remove", "sort", "reverse"})


def _changed_freevars(code) -> tuple:
    """The free variables of `code` whose objects it changes (a field or item set on them,
    NOTE [closures changing their cells' objects under dynamo])."""
    return tuple(name for name in _changed_origins(code) if isinstance(name, str))


_changed_freevars._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


def _changed_origins(code, params: tuple = ()) -> tuple:
    """The free variables (names) and globals (("global", name)) of `code` whose objects it
    changes (a field or item set on them, or a method named as one of a dict's or list's
    changing ones called: `_named_calls`), found by following where each value on the stack
    came from through the code's straight-line bytecode. With `params`, those parameters of
    `code` are followed as its free variables are."""
    found = _CHANGED.get((code, params))
    if found is not None:
        return found
    free = set(code.co_freevars) | set(params)
    stack, changed = [], []
    direct, calls = set(), {}  # (origins changed by a store; by a method named: paths)
    passed = []  # (callee's name, position, parameter) of a parameter's object given to a call
    other = {}  # origin -> (path, name) of the other methods of its object called

    def pop(n=1):
        out = [stack.pop() if stack else None for _ in range(n)]
        return out[0] if n == 1 else out

    def note(origin):
        if type(origin) is tuple and origin[0] == "field":
            origin = origin[1]
        if isinstance(origin, str) or type(origin) is tuple and origin[0] == "global":
            direct.add(origin)
            if origin not in changed:
                changed.append(origin)

    def note_call(origin, path: tuple, name: str):
        # (`kf.update(s)`, `path` the fields from the origin's object to the method's: a
        # change only where the method is a dict's or list's, or its own code changes its
        # object: NOTE [methods named as a container's changing ones])
        if object_origin(origin):
            calls.setdefault(origin, []).append((path, name))
            if origin not in changed:
                changed.append(origin)

    def object_origin(value) -> bool:  # (a free variable's or a global's object)
        return isinstance(value, str) or type(value) is tuple and value[0] == "global"

    def is_field(value) -> bool:
        return type(value) is tuple and value[0] == "field"

    def method(origin) -> bool:
        # (`d.__setitem__` loaded as a value: `ac.converted_call(d.__setitem__, k, v)`)
        return is_field(origin) and origin[2] in _CHANGING_METHODS

    def field(base, name: str) -> tuple:
        # (the origin's object's field, with the path of names from the origin to it)
        if object_origin(base):
            return ("field", base, name, (name,))
        return ("field", base[1], name, base[3] + (name,))

    for ins in dis.get_instructions(code):
        op = ins.opname
        if op in ("LOAD_DEREF", "LOAD_CLOSURE") or params and op in (
                "LOAD_FAST", "LOAD_FAST_CHECK"):
            stack.append(ins.argval if ins.argval in free else None)
            continue
        if op in ("LOAD_GLOBAL", "LOAD_ATTR", "LOAD_METHOD"):
            effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
            base = None if op == "LOAD_GLOBAL" else pop()
            name = ins.argval[1] if isinstance(ins.argval, tuple) else ins.argval
            if op == "LOAD_ATTR" and effect == 0 and (
                    object_origin(base) or type(base) is tuple and base[0] == "field"):
                # (a field of a free variable's object: its object too)
                stack.append(field(base, name))
                continue
            count = effect + (0 if op == "LOAD_GLOBAL" else 1)
            if op == "LOAD_GLOBAL" and count == 1:  # (a global's value, not one to call)
                stack.append(("global", name))
                continue
            stack.extend([None] * (count - 1) + [("name", name)] if op == "LOAD_GLOBAL"
                         else [("name", name), base][-count:] if count <= 2
                         else [None] * count)
            continue
        if moved_on_stack(stack, ins):
            continue
        if op == "BINARY_SUBSCR":
            _, container = pop(2)
            stack.append(field(container, "[]") if object_origin(container)
                         or is_field(container) else None)
            continue
        if op in ("STORE_ATTR", "DELETE_SUBSCR"):
            note(stack[-1] if op == "STORE_ATTR" and stack else
                 stack[-2] if len(stack) >= 2 else None)
        elif op == "DELETE_ATTR":
            note(stack[-1] if stack else None)
        elif op == "STORE_SUBSCR":
            note(stack[-2] if len(stack) >= 2 else None)
        elif op in ("PRECALL", "CALL") and ins.arg is not None and len(stack) >= ins.arg + 1:
            args = stack[len(stack) - ins.arg:]
            callers = stack[max(0, len(stack) - ins.arg - 2): len(stack) - ins.arg]
            if args and any(c in [("name", n) for n in _SETTERS] for c in callers):
                note(args[0])
            named = [c[1] for c in callers if c in [("name", n) for n in _CHANGING_METHODS]]
            for c in callers if named else ():  # (the method's object: `d.__setitem__(k, v)`)
                if is_field(c):
                    note_call(c[1], c[3], named[0])
                elif c != ("name", named[0]):
                    note_call(c, (), named[0])
            for c in (*callers, *args[:1]):
                if method(c):  # (`d.__setitem__` as a value: its path ends with the name)
                    note_call(c[1], c[3][:-1], c[2])
                elif is_field(c) and object_origin(c[1]) and c in args[:1]:
                    # (`ac.converted_call(kf.step, x)`: any other method, as a value)
                    if (c[3][:-1], c[2]) not in other.setdefault(c[1], []):
                        other[c[1]].append((c[3][:-1], c[2]))
            named = [c[1] for c in callers if type(c) is tuple and c[0] == "name"]
            for c in callers if len(named) == 1 and named[0] not in _CHANGING_METHODS else ():
                # (any other method of the object: NOTE [a method's object given to a helper])
                if is_field(c) or object_origin(c):
                    origin, path = (c[1], c[3]) if is_field(c) else (c, ())
                    if (path, named[0]) not in other.setdefault(origin, []):
                        other[origin].append((path, named[0]))
            if params and len(named) == 1:
                # (`helper(self)`: NOTE [a method's object given to a helper]; at 3.11's
                # PRECALL, and again at its CALL, whose stack is the PRECALL's less its args)
                passed += [(named[0], i, a) for i, a in enumerate(args)
                           if a in params and (named[0], i, a) not in passed]
        try:
            effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
        except ValueError:
            effect = 0
        if effect < 0:
            pop(-effect)
        else:
            stack.extend([None] * effect)
    for origin in _given_to_changing_helpers(code, passed):
        note(origin)
    _OTHER_CALLS[code, params] = other
    found = _CHANGED[code, params] = tuple(changed)
    _CALLS[code, params] = {o: tuple(paths) for o, paths in calls.items() if o not in direct}
    return found


_CHANGED: dict = {}
_CALLS: dict = {}
_OTHER_CALLS: dict = {}  # (code, params) -> origin -> its object's other methods called
_FOLLOWED: set = set()  # (the helpers `_given_to_changing_helpers` is reading: recursion)


# NOTE [a method's object given to a helper]
# A global's object whose method gives its object to a helper that changes it (`kf.update(x)`,
# `update` calling `_count(self)`, which sets `obj.calls`) under torch.compile: the method's
# own code sets nothing, so it was no change (NOTE [methods named as a container's changing
# ones]), and dynamo stopped at the helper's store inside torch.cond with its own "Non-nullified
# side effect" and no user line (kfref55, loud56). So did any method not named as a
# container's changing one that sets a field of its object (`kf.step(x)`, `self.calls += 1`).
# A function of the method's module called by its global name with the method's object as an
# argument is read as the method is, its parameter at that position followed: a change there
# is the method's; and a method of the user's class called on a global's object (or on the
# method's own object: `self._bump()`) is read as `_calls_change` reads a container-named one,
# `_CALL_DEPTH` deep. A helper or method that only reads the object is no change; what cannot
# be looked up (a library's method, a callable from elsewhere) is left to dynamo as before.


def _given_to_changing_helpers(code, passed) -> list:
    """The parameters of `code` whose objects the helpers `passed` ((global name, position,
    parameter) of each `helper(..., param, ...)` call) change: NOTE [a method's object given
    to a helper]."""
    from ..calls import is_library_function  # (calls imports this module)

    table = _module_globals(code.co_filename) if passed else None
    out = []
    for name, position, param in passed:
        helper = table.get(name) if table is not None else None
        if type(helper) is not types.FunctionType or is_library_function(helper):
            continue
        inner = helper.__code__
        if position >= inner.co_argcount or (inner, position) in _FOLLOWED:
            continue
        given = inner.co_varnames[position]
        _FOLLOWED.add((inner, position))
        try:
            if given in _changed_origins(inner, (given,)) and param not in out:
                out.append(param)
        finally:
            _FOLLOWED.discard((inner, position))
    return out
_changed_origins._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


def _named_calls(code, origin, params: tuple = ()):
    """The (path, method name) pairs by which `code` calls methods of `origin`'s object (or of
    its fields) named as a dict's or list's changing ones, where that is all `_changed_origins`
    found it changing `origin` by; None where `code` changes it otherwise (a field set)."""
    _changed_origins(code, params)
    return _CALLS[code, params].get(origin)


# NOTE [globals' objects changed in a staged body under dynamo]
# `OPT.param_groups[0]["lr"] = 0.5` in a branch of a tensor `if`, `OPT` a global optimizer
# (tester27 s08): outside dynamo the change happens once, while tracing (README, Known shapes);
# dynamo stops at the store inside torch's operator with its own error and no user line
# (UncapturedHigherOrderOpError, "Mutating a variable from outside the scope of this HOP"). So
# under dynamo a body's own code is read as a closure's is (NOTE [closures changing their cells'
# objects under dynamo]): a field or item set on the object a global holds is refused at its
# line. Not a global tensor (updated in place: outside_writes.py). A global module's attribute
# too (objects.py's `_refuse_module_stores` sees only the modules a statement holds; dynamo's
# "Unsafe side effect" named no line: tester29 s02).


def _changed_global(code):
    """The name of a global of `code`'s module, holding neither a tensor nor a Python module,
    whose object `code` changes (a field or item set), or None. (Not the runtime's own bodies, whose
    globals are its tables.)"""
    if _runtimes(code):
        return None
    table = _module_globals(code.co_filename)
    for origin in _changed_origins(code):
        if isinstance(origin, tuple):
            value = table.get(origin[1]) if table is not None else None
            if value is not None and not isinstance(value, (torch.Tensor, types.ModuleType)):
                calls = _named_calls(code, origin)
                if calls is None or _calls_change(value, calls, _CALL_DEPTH):
                    return origin[1]
    for origin, calls in _OTHER_CALLS[code, ()].items():
        # (its object's other methods: NOTE [a method's object given to a helper])
        if isinstance(origin, tuple):
            value = table.get(origin[1]) if table is not None else None
            if value is not None and not isinstance(value, (torch.Tensor, types.ModuleType)) \
                    and _user_calls_change(value, calls, _CALL_DEPTH):
                return origin[1]
    return None


_changed_global._dynamo_marked_constant = True  # (dynamo calls it for real: constants)


# NOTE [methods named as a container's changing ones]
# `v = kf.update(v, z)` in a branch of a tensor `if`, `kf` a global Kalman filter whose
# `update` only reads `self.H` (tester55: torch-kf's `filter` written with a global filter):
# `update` is a dict's changing method, so the body's code was taken to change the global's
# object, refused under torch.compile only ("the object the global 'kf' holds is changed in the
# true branch"), which it is not. A method is known by its object, not its name: where a body
# changes a global's object only by calling such a method of it (or of a field of it), the
# object is looked up (statically: no property or `__getattr__` runs), and the call is a
# change where the method is not a function of the user's class (a dict's `update`, a list's
# `pop`, a library's), or where its own code changes its first parameter's object (a field or
# item set, or such a method of it called, followed `_CALL_DEPTH` deep). What cannot be looked
# up (an item on the way, `kf.parts[0].update()`; a callable the object itself holds) stays
# a change. A method that gives its object to a helper of its module (`helper(self)`) is
# followed into the helper (NOTE [a method's object given to a helper]); one that changes it
# another way (`self.log.append`) is not seen here: dynamo then stops at the store with its
# own error, as before.


def _calls_change(value, calls, depth: int) -> bool:
    """Whether calling the methods `calls` ((path, name) pairs: `_named_calls`) of the object
    `value` may change it (NOTE [methods named as a container's changing ones])."""
    from ..calls import is_library_function  # (calls imports this module)

    for path, name in calls:
        receiver = value
        try:
            for step in path:  # (an item, "[]", is no attribute: a change)
                receiver = inspect.getattr_static(receiver, step)
            if not isinstance(receiver, type) and name in _own_fields(receiver):
                return True  # (a callable the object holds, not its class's method)
            method = inspect.getattr_static(
                receiver if isinstance(receiver, type) else type(receiver), name)
        except AttributeError:
            return True
        if isinstance(method, staticmethod):
            continue  # (no object of its own to change)
        if isinstance(method, classmethod):
            method, receiver = method.__func__, (
                receiver if isinstance(receiver, type) else type(receiver))
        elif isinstance(receiver, type):
            return True  # (a function read from a class: its first parameter is an argument)
        if type(method) is not types.FunctionType or is_library_function(method) \
                or not method.__code__.co_argcount or depth == 0:
            return True
        code = method.__code__
        first = code.co_varnames[:1]
        if first[0] in _changed_origins(code, first):
            inner = _named_calls(code, first[0], first)
            if inner is None or _calls_change(receiver, inner, depth - 1):
                return True
        if _user_calls_change(receiver, _OTHER_CALLS[code, first].get(first[0], ()), depth - 1):
            return True
    return False


def _user_calls_change(value, calls, depth: int) -> bool:
    """Whether one of the methods `calls` ((path, name) pairs) of `value`'s object that is a
    function of the user's class (not a library's, nor one named as a container's changing
    one: `_calls_change` reads those) changes its object: NOTE [a method's object given to a
    helper]. What cannot be looked up is no change here (dynamo's own check stays)."""
    from ..calls import is_library_function  # (calls imports this module)

    for path, name in calls:
        try:
            receiver = value
            for step in path:
                receiver = inspect.getattr_static(receiver, step)
            if isinstance(receiver, type) or name in _own_fields(receiver):
                continue
            method = inspect.getattr_static(type(receiver), name)
        except AttributeError:
            continue
        if (type(method) is not types.FunctionType or is_library_function(method)
                or not method.__code__.co_argcount or depth < 0):
            continue
        if _calls_change(receiver, [((), name)], depth):
            return True
    return False


def _own_fields(value):
    try:
        table = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return ()
    return table if isinstance(table, dict) else ()


def _callee_change_under_dynamo(code):
    """(file, line, callee, global's name, whether it assigns it) for the first user class
    `code` names whose constructor assigns a global holding a number or changes a global's
    object, or user function that assigns such a global (NOTE [a count a constructor or callee
    keeps in a global]); None where none does. Under dynamo, which would stop at the store
    with its own "Unsafe side effect" and no user line. Called for real by dynamo."""
    if _runtimes(code):
        return None
    found = _CALLEE_CHANGES.get(code, _EMPTY)
    if found is not _EMPTY:
        return found
    from ..calls import is_library_function  # (calls imports this module)

    found = None
    table = _module_globals(code.co_filename) or {}
    for name in code.co_names:
        value = table.get(name)
        constructor = _user_class(value)
        callees = (list(callee_globals.constructors(value)) if constructor
                   else [value] if isinstance(value, types.FunctionType) else [])
        for callee in callees:
            if is_library_function(callee) or _runtimes(callee.__code__):
                continue
            shown = callee_globals.shown(callee)
            for assigned in callee_globals.assigned_globals(callee.__code__):
                if type_in(callee.__globals__.get(assigned), (int, float, complex)):
                    found = (*callee_globals.store_line(callee, assigned), shown, assigned, True)
                    break
            changed = _changed_global(callee.__code__) if constructor and not found else None
            if changed is not None:
                found = (*_line_naming(callee, changed), shown, changed, False)
            if found:
                break
        if found:
            break
    _CALLEE_CHANGES[code] = found
    return found


_CALLEE_CHANGES: dict = {}
_callee_change_under_dynamo._dynamo_marked_constant = True  # (dynamo calls it for real)


def _raise_callee_change(filename: str, line: int, caller: str, name: str, assigns: bool,
                         where: str, statement: str):
    if assigns:
        problem, fix = callee_globals.assigned_problem(caller, name, where, statement)
    else:
        problem = (f"'{caller}' changes the object the global '{name}' holds (a field or item "
                   f"set), called {where}; a staged body runs once while tracing, and "
                   "torch.compile cannot carry a global's object through the statement, so the "
                   "change would not happen on the path taken")
        fix = (f"Change '{name}' outside the compiled function (count the objects made after "
               f"the {statement}), or keep the count in a tensor updated in place")
    from ..errors import raise_at_under_dynamo

    raise_at_under_dynamo((filename, line), statement, problem, fix)


_raise_callee_change._dynamo_marked_constant = True


def _module_globals(filename: str):
    """The globals of the loaded module of `filename` (converted code keeps its function's
    file and globals), or None."""
    table = _GLOBALS.get(filename)
    if table is None:
        for module in list(sys.modules.values()):
            if getattr(module, "__file__", None) == filename:
                table = _GLOBALS[filename] = vars(module)
                break
    return table


_GLOBALS: dict = {}  # (a module's file: its globals, found once)


def _raise_global_change(code, name: str, where: str, statement: str):
    problem = (f"the object the global '{name}' holds is changed {where} (a field or item "
               "set); a staged body runs once while tracing, and torch.compile cannot carry a "
               "global's object through the statement, so the change would not happen on the "
               "path taken")
    fix = (f"Change '{name}' outside the compiled function: return what decides the change "
           "(the condition, or the new value as a tensor) and make it there")
    from ..errors import raise_at_under_dynamo

    raise_at_under_dynamo(_line_naming(code, name), statement, problem, fix)


_raise_global_change._dynamo_marked_constant = True


def _raise_closure_change(code, caller: str, name: str, where: str, statement: str):
    problem = (f"'{caller}' changes '{name}', an object of the function that made it (a field "
               f"or item set), called {where}; under torch.compile autoconv cannot reach "
               f"'{name}' through '{caller}' to carry it through the {statement}, and a staged "
               "body runs once while tracing")
    fix = (f"Pass '{name}' to '{caller}' as an argument (`def {caller}({name}, ...)`, "
           f"`{caller}({name}, ...)`), so that the {statement} carries it")
    from ..errors import raise_at_under_dynamo

    raise_at_under_dynamo(_line_naming(code, caller), statement, problem, fix)


_raise_closure_change._dynamo_marked_constant = True


def _assigns_cells(value) -> bool:
    fn = getattr(value, "__func__", value)
    return isinstance(fn, types.FunctionType) and bool(fn.__closure__)


def _assigned_cells(value, name: str, cells: list, seen: set, depth: int) -> None:
    """Append (name, nonlocal, cell) for the closure cells a function `value` (a closure made
    by a factory, a bound method) assigns, and those of the functions it calls."""
    fn = getattr(value, "__func__", value)
    if not isinstance(fn, types.FunctionType) or id(fn) in seen or _runtimes(fn.__code__):
        return
    seen.add(id(fn))
    code = fn.__code__
    stored = _stored_freevars(code)
    for free, cell in zip(code.co_freevars, fn.__closure__ or ()):
        if free in stored:
            cells.append((name, free, cell))
        elif depth:
            _assigned_cells(_cell_value(cell), name, cells, seen, depth - 1)
    if depth:
        for called in code.co_names:
            _assigned_cells(fn.__globals__.get(called), name, cells, seen, depth - 1)


def _watched(value) -> bool:
    """An iterator (a generator, `iter(list)`, `zip(...)`, a user's class with `__next__`) or a
    deque: Python state a body can change that no staged statement carries."""
    return isinstance(value, collections.deque) or hasattr(type(value), "__next__")


def _fingerprint(value, depth: int = 3):
    if isinstance(value, collections.deque):
        return ("deque", len(value), tuple(map(id, list(value)[:_ITEMS])),
                tuple(map(id, list(value)[-_ITEMS:])))
    if isinstance(value, types.GeneratorType):
        frame = value.gi_frame
        if frame is None:
            return ("generator done",)
        return ("generator", frame.f_lasti,
                tuple((k, id(v)) for k, v in frame.f_locals.items()))
    try:
        hint = operator.length_hint(value, -1)
    except Exception:  # noqa: BLE001 (a user's __length_hint__ may raise: no position)
        hint = -1
    if depth <= 0:
        return (hint,)
    try:
        with warnings.catch_warnings():  # (itertools' __reduce__ is deprecated)
            warnings.simplefilter("ignore")
            reduced = value.__reduce__()
    except Exception:  # noqa: BLE001 (a file, a generator: cannot say)
        reduced = None
    if not isinstance(reduced, tuple):
        return (hint,)
    return (hint, *(_part(part, depth - 1) for part in reduced[1:]))


def _part(value, depth: int):
    """A comparable summary of a piece of an iterator's `__reduce__` (its position, the
    iterators it wraps, its object's fields)."""
    if value is None or type_in(value, (int, float, bool, str)):
        return value
    if _watched(value):
        return _fingerprint(value, depth)
    if type_in(value, (tuple, list)) and depth >= 0:
        return (len(value), tuple(_part(v, depth - 1) for v in value[:_ITEMS]))
    if type(value) is dict and depth >= 0:
        return tuple((k, _part(v, depth - 1)) for k, v in list(value.items())[:_ITEMS])
    return id(value)


def _refusal(fn, name: str, value, where: str, statement: str) -> StagingError:
    if isinstance(value, collections.deque):
        problem = (f"the deque '{name}' is changed {where} (`{name}.popleft()`, "
                   f"`{name}.append(...)`); a staged body runs once while tracing, so the "
                   "change happens once, not on every trip or only on the path taken")
        fix = (f"Keep the items in a tensor and index it by a counter the {statement} carries "
               f"(`v = items[i]; i = i + 1`), or change '{name}' outside the {statement}")
    else:
        loop = "while" in statement or "for" in statement
        problem = (f"the iterator '{name}' is advanced {where} (`next({name})`, or a loop over "
                   f"it); a staged body runs once while tracing, so it "
                   + ("would read the same item on every trip" if loop else
                      "would be advanced whichever path runs"))
        fix = (f"Stack the items into one tensor before the {statement} "
               f"(`items = torch.stack(list(...))`) and index it by a counter the loop carries "
               f"(`v = items[i]; i = i + 1`), or use `for v in items:`" if loop else
               f"Take the item (`v = next({name})`) before the {statement}, or on both paths "
               "choose it with torch.where")
    # (never specialised: the trace of the failed statement has advanced it already, so the
    # path taken would read the next item)
    return specialize.never(StagingError.at(_line_naming(fn, name), statement, problem, fix))


def _nonlocal_refusal(fn, caller: str, name: str, where: str, statement: str):
    problem = (f"'{caller}' assigns its nonlocal '{name}' (a variable of the function that made "
               f"it), called {where}; a staged body runs once while tracing, so the "
               "assignment happens once, not on every trip or only on the path taken, and "
               f"autoconv cannot carry '{name}' through the {statement}")
    fix = (f"Return the new value of '{name}' from '{caller}' and assign it in the body (a "
           f"variable the {statement} carries), or keep it in a tensor updated in place "
           f"(`{name}.add_(1)`)")
    return specialize.never(StagingError.at(_line_naming(fn, caller), statement, problem, fix))


def _line_naming(fn, name: str):
    """(file, line) of the first line of `fn` (a function or its code) that reads `name`
    (converted code keeps the user's file and lines), else of its first line."""
    if type(fn) is tuple:  # (already a location)
        return fn
    code = getattr(fn, "__code__", fn)
    line = code.co_firstlineno
    for instruction in dis.get_instructions(code):
        if instruction.opname.startswith("LOAD") and instruction.argval == name:
            found = instruction.positions.lineno if instruction.positions else None
            if found:
                line = found
                break
    return code.co_filename, line


def moved_on_stack(stack: list, ins: dis.Instruction) -> bool:
    """Whether `ins` is a COPY or SWAP, which move values rather than make them, followed on
    `stack` (where each value on the code's stack came from, as the bytecode walks here and
    in item_writes.py keep it; None where unknown)."""
    if ins.opname == "COPY":
        stack.append(stack[-ins.arg] if len(stack) >= ins.arg else None)
        return True
    if ins.opname == "SWAP":
        if len(stack) >= ins.arg:
            stack[-1], stack[-ins.arg] = stack[-ins.arg], stack[-1]
        return True
    return False
