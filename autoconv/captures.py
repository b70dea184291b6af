"""What a traced function reads without getting it as an argument (a global lookup table or
config number, a closure's tensor or float, a module's or class's attribute): guarded on every
call of its graph.

NOTE [captured tensors]
make_fx keeps such a tensor in the graph as a constant: the very object, not a copy, so an
in-place update between calls (`TABLE.mul_(10)`, `m.scale.fill_(5)`) is seen by the next call,
provided nothing computed from it was folded into a new constant at trace time
(`graph_passes.fold_constants` leaves these alone). Rebinding the name or attribute to another
tensor (`m.scale = torch.tensor(7.)`) is not seen by the graph, so each such constant found at a
place the function reads (a global of the function or of a helper it calls, an attribute of a
module or plain object imported as a global, a closure cell, a module's or `self`'s attribute,
a class attribute read through `self`, one item deep into a dict / list / tuple there) is
guarded: every call checks that the place still holds that object (a dict lookup and an `is`),
and a `Function` traces again where it does not (as torch.compile guards on a global tensor's
id). A constant found nowhere (reached through a deeper path) is still read in place, but its
rebinding is not seen (README, Limitations).

NOTE [captured Python values]
A Python number, bool, string or None (or a tuple of them) read from the same places
(`SCALE = 2.0`, `if USE_DOUBLE:`, `CFG["eps"]`, a closure's `temperature`, a class's `scale`)
is baked into the graph by the trace: the value each such place holds when the trace begins is
kept, and every call checks that the place still holds it (an `is`, then `==` where another
object is there), tracing again (`Function`) or raising a TypeError (`ConcreteFunction`) where
it does not, as torch.compile guards on the globals it read. The places are the names the
function's code (and its helpers') reads, so a value the graph does not use but the code names
is guarded too (a needless retrace, never a stale value). `.item()`, `float()`, `int()`,
`bool()` and `.tolist()` of a tensor from outside the function read its value while tracing
(make_fx bakes it): each such read is guarded by reading it again on every call
(`outside_writes.values_read`).
"""

from __future__ import annotations

import collections
import collections.abc
import dis
import enum
import functools
import inspect
import io
import itertools
import logging
import math
import operator
import os
import sys
import sysconfig
import threading
import types

import torch

from autoconv_runtime.calls import is_library_function
from autoconv_runtime.errors import StagingError, users_file

from . import graph_passes
from .signature import (FIELD_DEPTH, LONG, ArrayKey, is_ndarray, is_numpy_float,
                        is_numpy_scalar, is_traced_subclass, keys_fields, module_python_fields)

__all__ = ["Rebound", "Guard", "GuardSet", "Places", "guards_for"]

_MISSING = object()
MISSING = _MISSING  # what a `Rebound` says a place holds when it holds nothing
_CONTAINERS = (dict, list, tuple)
_MODULE_TABLES = frozenset({"_parameters", "_buffers", "_modules"})
_HELPER_DEPTH = math.inf  # every helper of the user's, once (NOTE [code reached at any depth])
_VALUES = (bool, int, float, complex, str, type(None))
_KEYED_SCALARS = (bool, int, float, complex, str, bytes, type(None))  # signature._SCALARS
_MAX_ITEMS = 64
_DEPTH = 8  # attribute / item steps followed from a place (NOTE [places held by objects])
_EVERY = object()  # walked for every name (NOTE [objects reached by two routes])
# methods whose names are not what the module reads when it runs
_NOT_RUN = frozenset({"__init__", "__repr__", "extra_repr", "reset_parameters", "__setstate__",
                      "__getstate__", "_load_from_state_dict", "__dir__"})
# modules whose attributes are the library's own (`torch.pi`, `math.inf`): not searched
_LIBRARIES = frozenset({"torch", "math", "numpy", "builtins", "functools", "operator",
                        "autoconv", "autoconv_runtime"})  # containers searched one item deep up to this length


class Rebound(Exception):
    """A place a graph read (a captured tensor, a Python value) now holds something else."""

    def __init__(self, guard: Guard, now):
        super().__init__(guard.where)
        self.where = guard.where
        self.guard, self.now = guard, now

    def changed_by_trace(self) -> str | None:
        """The message for a place that the trace itself changed (NOTE [values the trace
        changes]), or None where the trace left it as it was."""
        guard = self.guard
        if guard.after_trace is _MISSING:
            return None
        iterator = guard.where.startswith("the position of the iterator")
        # (an iterator's position is what its __reduce__ gives, nested tuples of ids, shown
        # only where it reads as one: `count(3)`)
        shown = "" if iterator and not isinstance(guard.expected, str) else (
            f" ({_short(guard.expected)} before the trace, {_short(guard.after_trace)} after "
            "it)")
        text = (f"tracing it changes {guard.where}{shown}, which the graph was traced "
                "with: Python code that runs while the function is traced (a do_not_convert "
                "helper, a logging or run counter, the function's own statements on Python "
                "values) runs once, at the trace, and the graph runs none of it, where Python "
                "changes the value on every call. ")
        if iterator:  # NOTE [iterators read from outside]
            return text + ("Call next() outside the autoconv function and pass the item as "
                           "an argument, or keep the step in a tensor updated in place "
                           "(`STEP.add_(1)`: the graph repeats that on every call)")
        return text + ("Keep such a count outside the autoconv function (update it around the "
                       "call), or make it a tensor updated in place (`COUNT.add_(1)` of a "
                       "global tensor: the graph repeats that on every call); a value the "
                       "function computes with, return it and store it in the caller")

    def what(self) -> str:
        """What the graph was traced with, and what is there now, for messages."""
        guard = self.guard
        if not guard.by_value:
            what = "tensor" if isinstance(guard.expected, torch.Tensor) else "object"
            return f"the {what} then held by {guard.where}, which now holds another one"
        now = "nothing" if self.now is _MISSING else _short(self.now)
        return f"{guard.where} = {_short(guard.expected)}, which is now {now}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Guard:
    """`where` (for messages) still holds `expected`: `read()` gives what it holds now; with
    `by_value`, an equal value of the same type holds too (NOTE [captured Python values])."""

    __slots__ = ("where", "read", "expected", "by_value", "fresh", "after_trace")

    def __init__(self, where: str, read, expected, by_value: bool = False, fresh: bool = False):
        self.where, self.read, self.expected, self.by_value = where, read, expected, by_value
        self.fresh = fresh  # `read()` makes a new object each time (`.item()`)
        # what the place held when the trace ended, where the trace itself changed it
        # (NOTE [values the trace changes]); _MISSING where it did not
        self.after_trace = _MISSING

    def holds(self) -> bool:
        value = self.read()
        return value is self.expected or not self.changed(value)

    def changed(self, value) -> bool:
        """Whether `value` (not `expected` itself) differs from what the graph was traced with."""
        return not self.by_value or not _same_value(value, self.expected)


class GuardSet:
    """The guards of one graph, checked on each call (`check()` raises Rebound for the first
    that fails, in order: the objects on a place's path before the place; a value read anew
    after every object).

    The common case, every place still holding the very object it held, is a few pipelines of
    C calls (NOTE [identity guards in C pipelines]: about 0.02-0.04 µs a place); only where
    they find another object are the guards read one by one, and an equal value there
    (`m.head.temp = 2.0` again) holds and becomes the expected object, so the next call takes
    the fast way again. A value
    read anew on each call (`fresh`: `.item()` of an outside tensor, a list's length, a dict's
    keys, a module's counts of submodules and hooks) is compared by value; the counts, exact
    ints, in one C comparison of lists (`==` of ints is `_same_value`'s). (A count read among
    the objects failed their `is` on every call, and sent every call of a module's graph the
    slow way: 870 µs of the seed model's 2.5 ms.)
    """

    __slots__ = ("guards", "_reads", "_expected", "_fresh", "_owners", "_names", "_lists",
                 "_typed", "_types",
                 "_counts", "_bare", "_forwardless", "_backwardless", "_tables", "_keys", "_keys_guards",
                 "_items", "_item_keys",
                 "_item_expected", "_whole", "_whole_expected", "_whole_keys",
                 "_whole_key_expected", "_fast")

    def __init__(self, guards):
        self.guards = tuple(guards)
        self._build()

    def __bool__(self) -> bool:
        return bool(self.guards)

    def __iter__(self):
        return iter(self.guards)

    def _build(self) -> None:
        same = [guard for guard in self.guards if not guard.fresh]
        # NOTE [identity guards in C pipelines]
        # Most places are an item of a dict (a global, an object's or module's attribute, a
        # submodule in its parent's `_modules`), read by a partial of the dict's `get`. Those
        # are read in one `map(dict.get, tables, keys, MISSING)` (no partial call each: about
        # 40% less a place), and a dict whose every key is a guarded place, in the order the
        # dict holds them (a Sequential's `_modules`: 202 submodules of the seed model), by
        # iterating its keys and its values (both the very objects, in order; its length is
        # compared with the counts, so that a key removed or added shows). Any other order or
        # key set fails the fast way, and the slow way (`_check_each`, one guard at a time)
        # decides and builds the pipelines again.
        by_table: dict = {}
        other, typed, types_ = [], [], []
        # NOTE [torch's global hooks as counts]
        # torch's global module hooks (`register_module_forward_hook`, run at every submodule
        # call a trace makes) are guarded by their items, read anew each call: a Python call
        # of `_check_values`, the guard's read and `_global_hooks` (about 5 µs of a cold
        # call, none of it the tables'). Where the trace saw none, the guard holds exactly
        # where both tables are still the ones `torch.nn.modules.module` holds and are empty:
        # the tables by identity among the items (a module global read by `dict.get`, rebound
        # tables show), their lengths among the counts. Anything else (a hook registered, a
        # table rebound) fails those pipelines, and the guards one by one decide.
        hook_globals = vars(torch.nn.modules.module)
        folded = [guard for guard in self.guards if guard.fresh and guard.read is _global_hooks
                  and guard.expected == ()]
        for guard in same:
            read = guard.read
            if _reads_item(read):
                by_table.setdefault(id(read.func.__self__), []).append(guard)
            elif _reads_type(read):  # NOTE [a module's class]
                typed.append(read.args[0])
                types_.append(guard.expected)
            else:
                other.append(guard)
        self._typed, self._types = tuple(typed), tuple(types_)
        whole, whole_expected, items, item_keys, item_expected = [], [], [], [], []
        whole_keys, whole_key_expected = [], []
        # (a table whose keys a keys guard reads in order: its values in order are its items)
        ordered = {id(guard.read.args[0]) for guard in self.guards if _reads_keys(guard)}
        for group in by_table.values():
            table = group[0].read.func.__self__
            keys = [guard.read.args[0] for guard in group]
            if len(group) > 1 and len(keys) == len(table) and keys == list(table):
                whole.append(table)
                whole_expected += [guard.expected for guard in group]
                if id(table) not in ordered:  # its keys, the very objects, in order
                    whole_keys.append(table)
                    whole_key_expected += list(table)
            else:
                items += [table] * len(group)
                item_keys += keys
                item_expected += [guard.expected for guard in group]
        if folded:
            items += [hook_globals] * len(_GLOBAL_HOOKS)
            item_keys += _GLOBAL_HOOKS
            item_expected += [hook_globals.get(name, _MISSING) for name in _GLOBAL_HOOKS]
        self._whole, self._whole_expected = tuple(whole), tuple(whole_expected)
        self._whole_keys, self._whole_key_expected = tuple(whole_keys), tuple(whole_key_expected)
        self._items, self._item_keys = tuple(items), tuple(item_keys)
        self._item_expected = tuple(item_expected)
        self._reads = tuple(guard.read for guard in other)
        self._expected = tuple(guard.expected for guard in other)
        fresh = [guard for guard in self.guards if guard.fresh]
        # the counts in two C pipelines (a call of `_structure` was a Python frame a module:
        # 60 µs a call of the seed model's 203 modules): each module's tables from its
        # `__dict__` (a dict lookup: `getattr` through nn.Module's `__getattr__` hook cost half
        # as much again), then each list, `len` of each
        owners, names, lists, structures, lengths, bare = [], [], [], [], [], []
        tables, keys, keys_guards, forwardless, backwardless = [], [], [], [], []
        for guard in fresh:
            read = guard.read
            if isinstance(read, functools.partial) and read.func is _structure:
                fields, own = read.args[0].__dict__, len(read.args) == 1
                forward, backward = guard.expected[:3], guard.expected[3:5]
                if own and not any(guard.expected):
                    bare.append(fields)  # NOTE [modules with no submodules and no hooks]
                    continue
                if any(backward):
                    owners += [fields] * len(_BACKWARD)
                    names += _BACKWARD
                    structures += backward
                else:  # NOTE [backward hooks set after the first call]
                    backwardless.append(fields)
                owners += [fields] * len(_STRUCTURE)
                names += _STRUCTURE
                structures += forward
                if own and not guard.expected[-1]:  # NOTE [a module's own forward]
                    forwardless.append(fields)
            elif isinstance(read, functools.partial) and read.func is len:
                lists.append(read.args[0])
                lengths.append(guard.expected)
            elif isinstance(read, functools.partial) and read.func is _keys:
                # a dict's keys: its length among the counts, then every key the very object
                # it was, in order, in one more C pipeline (a Python read of the keys and a
                # `_same_value` of the tuples per dict were about 1-2 µs a call each)
                tables.append(read.args[0])
                lists.append(read.args[0])
                lengths.append(len(guard.expected))
                keys += guard.expected
                keys_guards.append(guard)
        lists += whole  # (the whole tables' lengths: a key removed or added)
        lengths += [len(table) for table in whole]
        if folded:  # NOTE [torch's global hooks as counts]
            lists += [hook_globals[name] for name in _GLOBAL_HOOKS]
            lengths += [0] * len(_GLOBAL_HOOKS)
        self._owners, self._names, self._lists = tuple(owners), tuple(names), tuple(lists)
        self._counts = structures + lengths
        self._bare, self._forwardless = tuple(bare), tuple(forwardless)
        self._backwardless = tuple(backwardless)
        self._tables, self._keys, self._keys_guards = tuple(tables), tuple(keys), keys_guards
        self._fresh = tuple(guard for guard in fresh if not _reads_counts(guard)
                            and not _reads_keys(guard) and guard not in folded)
        self._fast = _fast_check(self, _UNROLLED)
        if _longest_pipeline(self) > _UNROLLED:  # NOTE [guards checked by generated code]
            self._fast = _unrolled_later(self, self._fast)

    def check(self) -> None:
        if self._fast():  # NOTE [guards checked by generated code]
            if self._fresh:
                self._check_values(self._fresh)
            return
        if not self._places_hold():
            self._check_each()
        if (self._counts or self._bare) and not self._counts_hold():
            # (a whole table's length too: one of its keys gone, which its values'
            # pipeline, shorter by one, does not show; the guards one by one then)
            self._check_each()
            self._check_values(self.guards)  # raises for the first that changed
        if self._tables and not self._keys_hold():
            self._check_keys()
        if self._fresh:
            self._check_values(self._fresh)

    def _places_hold(self) -> bool:
        """Whether every place still holds the very object it held (the pipelines)."""
        # (each pipeline only where it has places: a pipeline's set-up, its `map`s and
        # `all`, is about 0.2 µs, which was most of the check of a function reading a few
        # globals: 2.1 µs for six guards)
        return ((not self._items or all(map(operator.is_, map(
                    dict.get, self._items, self._item_keys, itertools.repeat(_MISSING)),
                    self._item_expected)))
                and (not self._whole or (all(map(operator.is_, itertools.chain.from_iterable(
                    self._whole_keys), self._whole_key_expected)) and all(map(
                        operator.is_, itertools.chain.from_iterable(
                            map(dict.values, self._whole)), self._whole_expected))))
                and (not self._reads or all(map(operator.is_, map(operator.call, self._reads),
                                                self._expected)))
                and (not self._typed or all(map(operator.is_, map(type, self._typed),
                                                self._types))))

    def _counts_hold(self) -> bool:
        """Whether the counts (lengths of tables and lists) are as traced, and the modules
        with no submodules and no hooks still have none."""
        try:
            grad = torch.is_grad_enabled()  # NOTE [backward hooks set after the first call]
            return ([*map(len, map(dict.__getitem__, self._owners, self._names)),
                     *map(len, self._lists)] == self._counts
                    and (not self._bare or _bare_still(self._bare, grad))
                    and (not self._forwardless or _forwardless_still(self._forwardless))
                    and (not self._backwardless or not grad
                         or _backwardless_still(self._backwardless)))
        except KeyError:  # a module's table gone from its `__dict__`: the slow way says
            return False

    def _keys_hold(self) -> bool:
        """Whether the dicts whose keys are guarded hold the very key objects, in order
        (their lengths are equal where the counts hold: `map` pairs each dict's keys with
        its own)."""
        return all(map(operator.is_, itertools.chain.from_iterable(self._tables), self._keys))

    def _check_keys(self) -> None:
        """The dicts' keys, one by one: raises for the first that changed; keys equal to
        those traced (another string object of the same text) become the expected ones."""
        self._check_values(self._keys_guards)
        for guard in self._keys_guards:
            guard.expected = guard.read()
        self._build()

    @staticmethod
    def _check_values(guards) -> None:
        for guard in guards:
            if guard.fresh:
                value = guard.read()
                if value is not guard.expected and guard.changed(value):
                    raise Rebound(guard, value)

    def _check_each(self) -> None:
        for guard in self.guards:
            if guard.fresh:
                continue
            value = guard.read()
            if value is not guard.expected:
                if guard.changed(value):
                    raise Rebound(guard, value)
                guard.expected = value  # an equal value: the same graph holds
        # every place holds: the pipelines again (an equal value now expected, or a dict's
        # keys in another order), so that the next call takes the fast way
        self._build()


# NOTE [guards checked by generated code]
# The pipelines of `GuardSet.check` cost about 0.2-0.3 µs each to set up (their `map`s,
# `all`, the `not self._items or` tests), which is most of the check of a function with a
# few guards: a module's of two submodules checked 8 places in 2.5 µs. `_build` also writes
# the same conditions as one generated function, each place spelt out (`t[k] is e`, `type(m)
# is C`, `not (d["_modules"] or ...)`) where a pipeline has at most _UNROLLED places, the
# pipeline itself over its tuples where it has more. It answers whether every pipeline
# holds: True only where each would, False where one might not or where it raised (a
# KeyError of a module's table gone); `check` then takes the pipelines' way, which decides
# what changed. A subscript only of an exact dict (a subclass's `__missing__` may insert the
# key: `defaultdict`), and an absence traced as `get(t, k, MISSING) is MISSING`.
# Spelt out, the interpreter's work per place is less than a pipeline's even for the seed
# model's 202 submodules (a cold check 48 -> 43 µs by the min, 56 -> 46 by the p10, load 14),
# but compiling its ~500 conditions took 13 ms of the first call at that load: a set with a
# longer pipeline has it spelt out from its _UNROLL_AFTER-th check on (`_unrolled_later`).
# The objects a check reads are its arguments' defaults (copied into its frame at a call),
# its code shared by the checks of the same text (a set checked one by one again, an equal
# value now expected, builds the same text for other objects: compiling it was 20 times the
# rest of `_build`), its globals one dict for all (the interpreter caches a code object's
# global reads for one dict: two models' checks sharing code with their own globals were
# twice as slow, called in turn).
_UNROLLED = 24
_UNROLLED_LATER = 1024
_UNROLL_AFTER = 32
_GUARD_CODE: dict = {}  # source -> code object


# (one dict for every generated check: NOTE [guards checked by generated code])
_GUARD_GLOBALS: dict = {
    "__builtins__": __builtins__, "_is": operator.is_, "_get": dict.get,
    "_getitem": dict.__getitem__, "_chain": itertools.chain.from_iterable,
    "_repeat": itertools.repeat, "_values": dict.values, "_call": operator.call,
    "_MISSING": _MISSING, "_grad": torch.is_grad_enabled}


def _longest_pipeline(guards: GuardSet) -> int:
    return max(len(guards._items), len(guards._reads), len(guards._typed),
               len(guards._counts), len(guards._bare))


def _unrolled_later(guards: GuardSet, fast):
    """`fast`, which after _UNROLL_AFTER calls makes `guards` check by one with its longer
    pipelines spelt out."""
    left = [_UNROLL_AFTER]

    def counted() -> bool:
        left[0] -= 1
        if not left[0] and guards._fast is counted:
            guards._fast = _fast_check(guards, _UNROLLED_LATER)
        return fast()
    return counted


def _fast_check(guards: GuardSet, unrolled: int):
    """The generated function of NOTE [guards checked by generated code] for `guards`, each
    pipeline of at most `unrolled` places spelt out."""
    values: list = []  # the objects it reads, its arguments' defaults: `_v0`, `_v1` ...

    def name(value) -> str:
        values.append(value)
        return f"_v{len(values) - 1}"

    def literal(value) -> str:  # a key or a count: equal, not the very object, is meant
        return repr(value) if type(value) in (str, int) and len(repr(value)) <= 40 \
            else name(value)

    def item(table, key, expected) -> str:
        t, k = name(table), literal(key)
        if expected is _MISSING:
            return f"_get({t}, {k}, _MISSING) is _MISSING"
        if type(table) is dict:
            return f"{t}[{k}] is {name(expected)}"
        return f"_get({t}, {k}, _MISSING) is {name(expected)}"

    held = []  # conditions, each an expression, all of which hold where the pipelines do
    if len(guards._items) <= unrolled:
        held += map(item, guards._items, guards._item_keys, guards._item_expected)
    else:
        held.append(f"all(map(_is, map(_get, {name(guards._items)}, {name(guards._item_keys)}, "
                    f"_repeat(_MISSING)), {name(guards._item_expected)}))")
    if guards._whole:
        # (lengths among the counts below: `map` pairs a shorter table's entries only)
        held.append(f"all(map(_is, _chain(map(_values, {name(guards._whole)})), "
                    f"{name(guards._whole_expected)}))")
    if guards._whole_keys:
        held.append(f"all(map(_is, _chain({name(guards._whole_keys)}), "
                    f"{name(guards._whole_key_expected)}))")
    if len(guards._reads) <= unrolled:
        held += [f"{name(read)}() is {name(expected)}"
                 for read, expected in zip(guards._reads, guards._expected)]
    else:
        held.append(f"all(map(_is, map(_call, {name(guards._reads)}), "
                    f"{name(guards._expected)}))")
    if len(guards._typed) <= unrolled:
        held += [f"type({name(obj)}) is {name(cls)}"
                 for obj, cls in zip(guards._typed, guards._types)]
    else:
        held.append(f"all(map(_is, map(type, {name(guards._typed)}), {name(guards._types)}))")
    counts = guards._counts
    pairs = len(guards._owners)
    if len(counts) <= unrolled:
        held += [(f"len({name(owner)}[{literal(table)}]) == {literal(count)}"
                  if type(owner) is dict else
                  f"len(_getitem({name(owner)}, {literal(table)})) == {literal(count)}")
                 for owner, table, count in zip(guards._owners, guards._names, counts)]
        held += [f"len({name(values)}) == {literal(count)}"
                 for values, count in zip(guards._lists, counts[pairs:])]
    elif counts:
        held.append(f"[*map(len, map(_getitem, {name(guards._owners)}, {name(guards._names)})), "
                    f"*map(len, {name(guards._lists)})] == {name(counts)}")
    grad = bool(guards._bare or guards._backwardless)  # (`_bare_still`'s argument)
    if len(guards._bare) <= unrolled:
        for fields in guards._bare:
            f = name(fields)
            held.append(f"not ({f}['_modules'] or {f}['_forward_hooks'] or "
                        f"{f}['_forward_pre_hooks'] or 'forward' in {f} or (grad and "
                        f"({f}['_backward_hooks'] or {f}['_backward_pre_hooks'])))")
    else:
        held.append(f"{name(_bare_still)}({name(guards._bare)}, grad)")
    if guards._forwardless:
        held.append(f"{name(_forwardless_still)}({name(guards._forwardless)})")
    if guards._backwardless:
        held.append(f"(not grad or {name(_backwardless_still)}({name(guards._backwardless)}))")
    if guards._tables:  # (their lengths among the counts)
        held.append(f"all(map(_is, _chain({name(guards._tables)}), {name(guards._keys)}))")
    lines = [f"def fast({', '.join(f'_v{i}=None' for i in range(len(values)))}):", "    try:"]
    if grad:
        lines.append("        grad = _grad()")
    lines.append(f"        return {' and '.join(held) or 'True'}")
    lines += ["    except Exception:", "        return False"]
    source = "\n".join(lines)
    code = _GUARD_CODE.get(source)
    if code is None:
        if len(_GUARD_CODE) >= 256:
            _GUARD_CODE.clear()
        made: dict = {}
        exec(compile(source, "<autoconv guards>", "exec"), _GUARD_GLOBALS, made)
        code = _GUARD_CODE[source] = made["fast"].__code__
    return types.FunctionType(code, _GUARD_GLOBALS, "fast", tuple(values))


def _same_value(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float or is_numpy_float(a):  # nan is nan; -0.0 is not 0.0 (`x * SCALE`)
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (a != a and b != b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(x is y or _same_value(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 (a value whose == cannot say: not the same)
        return False


def _is_value(value) -> bool:
    """A Python value a trace bakes in: a number, bool, string, None, an enum member (NOTE
    [mappings, sets and enums held as configs]), or a tuple of them."""
    if type(value) in _VALUES or isinstance(value, enum.Enum) or is_numpy_scalar(value):
        return True  # (NOTE [numpy scalars keyed as Python numbers] in signature.py)
    return (type(value) is tuple and len(value) <= _MAX_ITEMS
            and all(_is_value(item) for item in value))


# NOTE [iterators read from outside]
# `next(STEPS)` of a global `itertools.count()` in a do_not_convert helper (or a generator, a
# list's iterator, an iterator object of the user's) runs once, at the trace, and the graph
# keeps the item it gave: Python's 0, 1, 2 on three calls were the replay's 0, 0, 0, silently
# (tester42 s05). The global still holds the same iterator, so its identity guard held. An
# iterator read from outside is guarded by its position as well (`_iterator_position`: what
# its `__reduce_ex__` says it will continue from, a generator's frame and values): tracing
# advanced it, so the guard fails after every trace, and the call is refused as for a count
# the trace changes (NOTE [values the trace changes]); an iterator advanced between calls
# (not by the trace) traces again, the graph taking the item it gives then.


def _is_iterator(value) -> bool:
    return isinstance(value, collections.abc.Iterator) and not isinstance(
        value, (torch.Tensor, io.IOBase))


def _iterator_position(read):
    """What the iterator `read()` gives will continue from, as a value (NOTE [iterators read
    from outside]); None where it does not say."""
    return _position(read(), 8)


def _position(value, depth: int):
    if isinstance(value, types.GeneratorType):
        frame = value.gi_frame
        if frame is None:
            return "exhausted"
        return (frame.f_lasti, _token(tuple(frame.f_locals.items()), depth - 1))
    try:
        reduced = value.__reduce_ex__(2)
    except Exception:  # noqa: BLE001 - an iterator that does not say where it is
        return None
    if type(reduced) is not tuple:
        return None
    if type(value).__name__ == "count" and type(value).__module__ == "itertools":
        return repr(value)  # (`count(3)`: readable in the message)
    return _token(reduced[1:], depth - 1)


def _token(value, depth: int):
    """`value` as a Python value to compare: values as they are, tuples and lists by length
    and items (a dict's or set's iterator gives a new list of the items left each time), an
    iterator by its position, other objects (a tensor) by identity; `depth` levels deep."""
    if _is_value(value):
        return value
    if depth <= 0:
        return len(value) if type(value) in (tuple, list, dict) else id(value)
    if _is_iterator(value):
        return _position(value, depth - 1)
    if type(value) in (tuple, list):
        return (len(value), *(_token(item, depth - 1) for item in value[:_MAX_ITEMS]))
    if type(value) is dict:
        return tuple((k, _token(v, depth - 1)) for k, v in list(value.items())[:_MAX_ITEMS]
                     if _is_value(k))
    return id(value)


def _array_values(read):
    value = read()
    return ArrayKey(value) if is_ndarray(value) else value


def _item_reader(table, key):
    # (a partial of the dict's own `get`: no Python frame on each call's check)
    return functools.partial(table.get, key, _MISSING)


def _nested_reader(read, key):
    def nested():
        outer = read()
        try:
            return outer[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return nested


def _list_item(items, index):
    try:
        return items[index]
    except IndexError:
        return _MISSING


def _grad_reader(read):
    def grad():
        return getattr(read(), "grad", _MISSING)
    return grad


def _cell_reader(cell):
    def read():
        try:
            return cell.cell_contents
        except ValueError:  # an empty cell
            return _MISSING
    return read


# NOTE [trace values stored outside]
# `STATS["n"] = STATS["n"] + 1` (STATS a global dict, or a closure's) rebinds an item of a
# container from outside the function to a tensor the trace computed: the container kept that
# fake tensor, every later call failed with autoconv's internal "left a value of the trace",
# and the user's dict was left holding it. The containers the function reaches are copied
# before the trace (Places.containers); one that holds a value of the trace after it is put
# back, and the trace refused, at the statement that stored (found by tracing once more under a
# line tracer: `_storing_line`, on the error path only). (An in-place update of the tensor
# there is an outside write the graph repeats on each call: NOTE [outside tensors updated while
# tracing].) A symbolic number stored there is one too (`self.num_triplets = len(a)` of a
# global pytorch-metric-learning miner, an nn.Module, `a` rows `torch.where` chose): the
# object kept `u0` after the call where Python's holds the count (tester39 s03); a module
# reached from outside has its attributes checked so as well.


# NOTE [hooks of submodules in the trace]
# A submodule with forward hooks is called as it is, so its hooks run inside the trace; a hook
# keeping a feature (`FEATURES["first"] = output`, FEATURES a global dict) left the fake tensor
# of the trace there, and nothing on the replayed calls (break40 s04). The containers a hook
# reaches are watched as the function's own are (NOTE [trace values stored outside]): a value of
# the trace stored there is put back and refused at the hook's line. They are not guarded: a
# hook's Python side effect (`calls.append(1)`) runs once while tracing, as a staged body's
# does (README), and a guard on that list's length would trace on every call. The call's own
# module's hooks run around the graph (capture.py) and are not watched.


# NOTE [what hooks in the trace read]
# A submodule's forward hook or pre-hook, and torch's global module hooks, run inside the trace
# at each submodule call, so the Python values they read are constants of the graph, as a
# helper's are: a hook scaling by a global object's field (`out * CFG.scale`) replayed the old
# scale after `CFG.scale = 5.0`, silently (break45 s01), where a helper of forward reading it
# traces again. Their functions are searched as the forward's helpers are (`_search_function`:
# the globals and closure cells their code names, guarded). What they write is still watched
# only (NOTE [hooks of submodules in the trace]). The hooks of the Function's own module run
# around the graph, each call, and are not searched.


# Neither the user's code nor a library's: the standard library, autoconv's compiler, the code
# torch.fx generates (a staged body's graph, run by torch.cond)
_NOT_USERS = (os.path.join(sysconfig.get_paths()["stdlib"], ""),
              os.path.join(os.path.dirname(os.path.abspath(__file__)), ""), "<eval_with_key>")


_LOGGING = os.path.join(os.path.dirname(logging.__file__), "")


def _storing_line(retrace, table, key):
    """(file, line) of the user's statement that stores a value of the trace at `table[key]`,
    found by running `retrace()` (the trace once more: on this error path only) under a line
    tracer that looks at `table[key]` before each line: the line run last before it holds a
    value of the trace is the one that stored it, in whichever frame. None if none did."""
    found, lines = [], {}  # lines: frame -> (file, line) it ran last

    def holds_trace_value() -> bool:
        try:
            return _stored_trace_value(table[key])
        except (KeyError, IndexError):
            return False

    def local(frame, event, arg):
        # (the line run last in the frame that sees the value first, or in its nearest caller
        # for a frame just called: not the last line of any frame, which was a library's that
        # the store's own arithmetic ran, mpmath's for `s.total += x.mean().item()`)
        if not found and holds_trace_value():
            caller = frame
            while caller is not None and caller not in lines:
                caller = caller.f_back
            if caller is not None:
                found.append(lines[caller])
        if event == "line":
            lines[frame] = (frame.f_code.co_filename, frame.f_lineno)
        return local

    def calls(frame, event, arg):
        name = frame.f_code.co_filename
        # (a logging handler's code, called by the standard library's logging for torch's own
        # records while tracing, stores nothing of the user's: pytest's took the line)
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename.startswith(_LOGGING):
            return None
        return local if users_file(name) and not name.startswith(_NOT_USERS) else None

    before = sys.gettrace()
    sys.settrace(calls)
    try:
        retrace()
    finally:
        sys.settrace(before)
    return found[0] if found else None


class Places:
    """The places a traced function may read from outside (see the NOTEs above): the tensors
    there (by id), and the Python values there as the trace begins (made before it).

    NOTE [places held by objects]
    A module's submodules, and the config objects, dicts and lists a module, `self` or a global
    holds, are followed to any depth (`self.head.temp`, `self.cfg.inner.scale`,
    `CFG["a"]["b"]`, `cfg.model.scale`): each object on the way is read from where it was
    found through its owner's own `__dict__` (a dict lookup), and a place under it is guarded
    together with the identity of every object on its path (an `is` each), so rebinding any of
    them (`model.head = Head()`, `model.cfg = Cfg()`) is seen as well as changing the value.
    Only the guards of places the graph used (a tensor constant) or whose name some code reads
    (a Python value) are kept, so the per-call cost grows with what the function reads, not
    with the size of the model (GuardSet checks them in one pipeline of C calls).
    """

    def __init__(self, fn, module=None, bound_self=None, arguments=()):
        self.tensors = {}  # id(tensor) -> (where, reader, parents)
        # id(tensor) -> [(where, reader, parents)] of its other routes (NOTE [objects reached
        # by two routes])
        self.routes = {}
        # id(tensor) -> (where, its class's name) of the tensors of a torch.Tensor subclass
        # found (NOTE [tensor subclasses from outside] in autoconv_runtime/staging/grad_mode.py)
        self.subclasses = {}
        self.values = {}  # where -> (Guard, parents)
        self.sized = {}  # where in `values` -> the dict or list whose keys or length it guards
        # id -> (names, depth) of the objects and containers followed: the names the code of
        # the routes they were reached by reads, the most steps left (NOTE [objects reached by
        # two routes])
        self._walked = {}
        self._watched = set()  # ids of the tables in `containers`
        # (where, dict or list, a copy of its items) of the outside containers followed
        # (NOTE [trace values stored outside])
        self.containers = []
        self._code = set()  # the names the code of the function and its helpers reads
        # id -> the most steps left it was searched with, of the held objects' functions
        # (_search_code; NOTE [code reached at several depths])
        self._functions = {}
        self._absent = []  # places in `values` guarded as absent (_guard_absent)
        # (where, reader, value) of the user's functions' globals and cells (NOTE [objects
        # handed to code reached any way])
        self._held_by_code = []
        seen = {}  # (NOTE [code reached at several depths])
        if module is not None:
            names = _user_names(module, fn)
            own = set(module_python_fields(module))  # part of the signature (Function._extra)
            self._search_module(module, "self", None, (), names, own, inputs=True)
            for path, sub in module.named_modules():
                prefix = "self" + (f".{path}" if path else "")
                self._search_class(sub, prefix, names)
                self._search_function(type(sub).forward, seen, _HELPER_DEPTH)
                if sub is not module:  # (the call's own hooks run around the graph)
                    for hook in (*sub._forward_pre_hooks.values(),
                                 *sub._forward_hooks.values()):
                        self._watch_stores_of(hook)
        elif bound_self is not None:
            names = _code_names(getattr(getattr(fn, "__func__", fn), "__code__", None))
            names |= _class_names(type(bound_self))
            if isinstance(bound_self, torch.nn.Module):
                # a module's method (`@autoconv` on `forward`): its submodules, parameters,
                # mode and hooks are guarded as a global module's
                self._search_outside_module(bound_self, "self", names)
            else:
                self._search_object(bound_self, "self", (), names)
            self._search_class(bound_self, "self", names)
        if isinstance(fn, functools.partial):
            # NOTE [a partial or a callable object traced itself]
            # `autoconv(partial(loss, cfg))` and `autoconv(Predictor(model))` trace a callable
            # that is not a function: its state is what the partial's arguments and the
            # object's fields hold, which no signature keys. Searched as a function's globals
            # only, nothing was found there (not even `__call__`'s globals): `cfg.k = 5.0`,
            # `predictor.k = 5.0` or `model.eval()` between calls replayed the old graph,
            # silently (tester40 s04). A partial is searched as a callable argument is (NOTE
            # [state reached through a callable argument]); an object as a bound method's
            # `self` is, its class's `__call__` as a function.
            self._search_callable(fn, "the function", (), seen)
        elif _is_plain_object(fn):
            names = _class_names(type(fn))
            self._search_object(fn, "the function", (), names, _DEPTH - 1)
            self._search_class(fn, "the function", names)
            self._search_function(type(fn).__call__, seen, _HELPER_DEPTH)
        else:
            self._search_function(fn, seen, _HELPER_DEPTH)
        self._search_handed_objects()
        self._search_arguments(arguments, module)

    # NOTE [objects handed to code reached any way]
    # A global or closure object is walked for the names its function's code reads, and those
    # of the helpers it calls by name (NOTE [objects handed to helpers]). It may be handed to
    # code reached another way: a method of another object (`SCHED.step(CFG)`,
    # `self.sched.step(CFG)`), a function a dict holds (`HELPERS["f"](CFG)`), a partial, a
    # helper past the helper depth; that code read `c.k`, unguarded: `CFG.k = 5.0` between
    # calls replayed the traced 2.0 ([2, 4] for Python's [5, 10], reach56), silently. Once the
    # search is over, `_code` holds what every piece of code it reached reads; the globals and
    # cells of the user's functions are walked again for those names (an object already walked
    # for them is not, `_walk`), so a field is guarded wherever the code reading it is reached.
    def _search_handed_objects(self) -> None:
        names = frozenset(self._code)
        for where, read, value in self._held_by_code:
            if not isinstance(value, (types.FunctionType, types.ModuleType, torch.nn.Module)):
                self._add(where, read, value, names)

    def _add(self, where: str, read, value, names=None, parents=(),
             depth: int = _DEPTH) -> None:
        """Record what a place holds (`value`), and what is held under it (the items of a
        container, the attributes of a plain object, NOTE [places held by objects]); with
        `names` (the attribute names code reads), Python values too, not only tensors."""
        if isinstance(value, threading.Thread):
            return  # NOTE [another thread's state]
        if isinstance(value, torch.Tensor):
            self._place_tensor(value, (where, read, parents))
            if is_traced_subclass(value):
                self.subclasses.setdefault(id(value), (where, type(value).__qualname__))
            grad = value.grad if value.is_leaf and value.requires_grad else None
            if grad is not None:
                # A gradient the function reads (`W.grad`, `for p in MODEL.parameters():
                # p.grad`) is a constant of the graph like the tensor: guarded, so that a new
                # gradient tensor (`zero_grad()` sets None, `backward()` makes another) traces
                # again, and one accumulated in place is read and updated where it is.
                self._place_tensor(grad, (f"{where}.grad", _grad_reader(read),
                                          (*parents, Guard(where, read, value))))
        elif isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            # a symbolic number left by another trace: held by identity, never walked (its
            # node reaches torch's ShapeEnv and FakeTensorMode's process-wide dispatch cache,
            # whose guards held or not by what earlier traces had cached: NOTE [a module's
            # own fields named with `_`] in object_paths.py)
            if names is not None and where not in self.values:
                self.values[where] = (Guard(where, read, value), parents)
        elif isinstance(value, torch.nn.Module) and depth < _DEPTH:
            # a module held by a global's or a closure's object, dict or list (`CFG.model`,
            # `MODELS["enc"]`): searched as a global module is, under the identity of every
            # object on its path (`.eval()` between calls replayed the train-mode graph,
            # silently: tester39 s05); a global or closure's module itself is searched by
            # `_search_function`
            names = (names or set()) | _class_names(type(value))
            if not self._covered(value, names, _DEPTH):
                path = (*parents, Guard(where, read, value))
                mode = functools.partial(getattr, value, "training")
                self.values.setdefault(f"{where}.training", (
                    Guard(f"{where}.training", mode, mode(), by_value=True), path))
                self._search_module(value, where, None, path, names, ())
        elif _is_value(value):
            if names is not None and where not in self.values:
                self.values[where] = (Guard(where, read, value, by_value=True), parents)
        elif is_ndarray(value):  # NOTE [numpy arrays keyed by their values] in signature.py
            if names is not None and where not in self.values:
                values = functools.partial(_array_values, read)
                self.values[where] = (Guard(f"the values of {where}", values, values(),
                                            by_value=True, fresh=True), parents)
        elif names is not None and _is_iterator(value):
            if where not in self.values:  # NOTE [iterators read from outside]
                position = functools.partial(_iterator_position, read)
                self.values[where] = (Guard(f"the position of the iterator {where}", position,
                                            position(), by_value=True, fresh=True), parents)
        elif (isinstance(value, type) and names is not None and depth > 0
              and _is_user_class(value) and self._walk(value, names, depth)):
            # A user's class used as a namespace or registry (`Registry.scale`, `Cfg.model`):
            # its attributes are read as an object's are, the values the code names guarded
            # (left out, `Registry.scale = 9.0` between calls replayed the traced 2.0,
            # silently: tester40 s05); a class attribute read through `self` is
            # `_search_class`'s.
            # (a bound method by `==`: the same function bound to the very same object; each
            # read of `Fn.apply` or `obj.step` makes a new one, and `self.act = Fn.apply` set
            # on every call failed an identity guard right after each trace: err55; so does a
            # method the trace sets where nothing was, in `note_values_the_trace_changed`)
            parents = (*parents, Guard(where, read, value,
                                       by_value=isinstance(value, types.MethodType)))
            # (what its own functions read too, NOTE [code reached through a held callable])
            names = names | _class_names(value)
            # (NOTE [class attributes shadowed in the MRO])
            for _, name, item in _class_attributes(value, _is_user_class):
                if name not in names or name.startswith("__"):
                    continue
                if isinstance(item, (staticmethod, classmethod, types.FunctionType)):
                    self._search_code(item, depth - 1)
                    self._guard_held_code(value, name, item, f"{where}.{name}", parents)
                elif _is_descriptor(item):  # NOTE [descriptors read as Python reads them]
                    self._search_code(type(item).__get__, depth - 1)
                    item = _descriptor_read(value, name)
                    if item is not _MISSING:
                        self._add(f"{where}.{name}", functools.partial(
                            getattr, value, name, _MISSING), item, names, parents, depth - 1)
                else:  # (a dict or an object there too: `Registry.items["k"]`)
                    self._add(f"{where}.{name}", functools.partial(getattr, value, name,
                                                                   _MISSING),
                              item, names, parents, depth - 1)
            self._guard_absent(value, where, names, parents)
        elif (names is not None and depth > 0 and _is_config_mapping_or_set(value)
              and self._walk(value, names, depth)):
            # NOTE [mappings, sets and enums held as configs]
            # A config held as a mapping that is not a dict (a `ChainMap` of defaults, a
            # `UserDict`, a `MappingProxyType`), as a set of flags (`if "double" in
            # cfg.flags:`), or as an enum member (`if CFG["mode"] is Mode.A:`) was not
            # searched, or its value not taken for one the trace bakes in: a change between
            # calls replayed the traced path, silently (tester41 s13). A mapping's items are
            # searched as a dict's are (read through its own `get`, under its keys); a set is
            # guarded by its items (a frozenset of them read on each call); an enum member by
            # identity, as a value (`_is_value`).
            # (a bound method by `==`: the same function bound to the very same object; each
            # read of `Fn.apply` or `obj.step` makes a new one, and `self.act = Fn.apply` set
            # on every call failed an identity guard right after each trace: err55; so does a
            # method the trace sets where nothing was, in `note_values_the_trace_changed`)
            parents = (*parents, Guard(where, read, value,
                                       by_value=isinstance(value, types.MethodType)))
            if isinstance(value, (set, frozenset)):
                items = functools.partial(frozenset, value)
                self.values.setdefault(f"the items of {where}", (
                    Guard(f"the items of {where}", items, items(), by_value=True, fresh=True),
                    parents))
                # (a set the trace itself changes, `WARNED.add(key)` of a warn-once, is a
                # Python side effect: its guard is dropped, `forget_sizes_the_trace_changed`)
                self.sized[f"the items of {where}"] = value
                return
            keys = functools.partial(_keys, value)
            parents = (*parents, Guard(f"the keys of {where}", keys, keys(), by_value=True,
                                       fresh=True))
            self.values.setdefault(f"{where}'s keys", (parents[-1], parents[:-1]))
            self.sized[f"{where}'s keys"] = value
            for key in list(value)[:_MAX_ITEMS]:
                self._add(f"{where}[{key!r}]", _item_reader(value, key), value[key], names,
                          parents, depth - 1)
        elif depth > 0 and (_container_kind(value, names) in _CONTAINERS
                            or _is_plain_object(value)) and self._walk(value, names, depth):
            kind = _container_kind(value, names)
            if kind is tuple:  # a tuple cannot change: read through its place
                for index, item in enumerate(value[:_MAX_ITEMS]):
                    self._add(f"{where}[{index}]", _nested_reader(read, index), item, names,
                              parents, depth - 1)
                return
            table = value if kind in (dict, list) else getattr(value, "__dict__", None)
            if (table is value or type(table) in (dict, list)) and not isinstance(
                    value, torch.nn.Module) and id(table) not in self._watched:
                self._watched.add(id(table))
                self.containers.append((where, table, table.copy(),
                                        "{}[{!r}]" if table is value else "{}.{}"))
            # the container or object itself: guarded by identity where a place under it is,
            # and a list's length or a dict's keys too (`MEM.append(t)` between calls: a graph
            # that stacked or iterated the items would miss the new one)
            parents = (*parents, Guard(where, read, value))
            if kind is list:
                size = functools.partial(len, value)
                parents = (*parents, Guard(f"the length of {where}", size, size(), by_value=True,
                                           fresh=True))
            elif kind is dict:
                keys = functools.partial(_keys, value)
                parents = (*parents, Guard(f"the keys of {where}", keys, keys(), by_value=True,
                                           fresh=True))
            if names is not None and kind in (dict, list):
                # Code that names the container may decide on its keys or length alone
                # (`if "k" in self.cache:`, `if self.memory:`), reading no item whose guard
                # would bring these: guarded on their own (an empty cache filled by the first
                # call traces again, where the graph of the empty one returned a wrong value).
                self.values.setdefault(f"{where}'s keys", (parents[-1], parents[:-1]))
                self.sized[f"{where}'s keys"] = value
            if kind is dict:
                if type(value) is not dict and _is_user_class(type(value)):
                    # NOTE [code a class runs on a read]
                    for cls in type(value).__mro__:
                        if cls is not dict and _is_user_class(cls):
                            for member in vars(cls).values():
                                self._search_code(member, depth - 1)
                if len(value) <= _MAX_ITEMS:
                    for key, item in list(value.items()):
                        self._add(f"{where}[{key!r}]", _item_reader(value, key), item, names,
                                  parents, depth - 1)
            elif kind is list:
                if len(value) <= _MAX_ITEMS:
                    for index, item in enumerate(value):
                        self._add(f"{where}[{index}]", _nested_reader(read, index), item,
                                  names, parents, depth - 1)
            else:
                # (the names the object's own methods read too: `self.filter.apply(x)` reads
                # `self.filter.gain` in Filter's code; missed, `gain` was left unguarded and a
                # new gain ran the old graph: methods33 s03); a user's class only (the standard
                # library's and torch's own read their internals: `os.environ._data`)
                user = names is not None and _is_user_class(type(value))
                if user:
                    names = names | _class_names(type(value))
                self._search_object(value, where, parents, names, depth - 1)
                if user:
                    # NOTE [code reached through a held callable]
                    self._search_class(value, where, names, parents)
                    for cls in type(value).__mro__:
                        if cls is not object and _is_user_class(cls):
                            for method, member in vars(cls).items():
                                if method not in _NOT_RUN:
                                    self._search_code(member, depth - 1)
        elif names is not None and depth > 0 and isinstance(
                value, (functools.partial, types.MethodType, types.FunctionType)
        ) and self._walk(value, names, depth):
            # NOTE [code reached through a held callable]
            # (a bound method by `==`: the same function bound to the very same object; each
            # read of `Fn.apply` or `obj.step` makes a new one, and `self.act = Fn.apply` set
            # on every call failed an identity guard right after each trace: err55; so does a
            # method the trace sets where nothing was, in `note_values_the_trace_changed`)
            parents = (*parents, Guard(where, read, value,
                                       by_value=isinstance(value, types.MethodType)))
            # (rebinding it traces again: a global helper rebound, `helper = other`, or a
            # closure in a dict replaced, replayed the old code, silently: tester41 s08)
            self.values.setdefault(where, (parents[-1], parents[:-1]))
            if depth == _DEPTH and isinstance(value, types.FunctionType):
                return  # (a global's or a closure's function: `_search_function`'s)
            if not isinstance(value, types.MethodType):
                self._search_callable(value, where, parents, {}, _HELPER_DEPTH - 1)
                return
            owner = value.__self__
            self._search_code(value.__func__, depth - 1)
            if isinstance(owner, torch.nn.Module):
                self._search_outside_module(owner, f"{where}.__self__", names)
            else:
                self._add(f"{where}.__self__", functools.partial(getattr, value, "__self__"),
                          owner, names | _class_names(type(owner)), parents, depth - 1)

    # NOTE [objects reached by two routes]
    # One object may be reached by several routes: a field and a bound method's `__self__`
    # (`self.scaler = s; self.act = s.scale`), two fields (`self.first = s; self.scaler = s`),
    # a list's or dict's item and a field, a closure cell and a helper's global. Which of its
    # Python values are guarded depends on the names the code of the route reads (a field no
    # code names is walked for its tensors only). Each object was walked once, under the first
    # route: reached first where no code read its fields, then through the route whose code
    # read `k`, `s.k = 5` between calls replayed the traced `k` (x * 2 for Python's x * 5,
    # brk55b), silently. An object is walked again where a route brings names not yet walked
    # (or more steps left), under that route's path; where no route brings new names, once.
    # A tensor is a place of each route it is found by (`routes`), each guarded where the
    # graph holds it as a constant: held by `a.w` and `b.w`, the code reading `b.w`, it was
    # guarded as `a.w` only (the first route, for globals the order of a set of names), and
    # `b.w = torch.tensor([5.0])` replayed the old tensor ([2, 4] for [5, 10]).
    # The Function's own module is never walked again: its own fields are keyed by the
    # signature, and its submodules are walked with every name its classes' code reads.
    def _covered(self, value, names, depth: int) -> bool:
        """Whether `value` was walked already for every name in `names` (None: its tensors
        only) with `depth` or more steps left (NOTE [objects reached by two routes])."""
        done = self._walked.get(id(value))
        if done is None:
            return False
        walked, steps = done
        return depth <= steps and (names is None or walked is _EVERY or (
            walked is not None and names <= walked))

    def _place_tensor(self, tensor, place) -> None:
        """Records `place` (where, reader, parents) as a route to `tensor`: the first one, or
        another (NOTE [objects reached by two routes])."""
        first = self.tensors.setdefault(id(tensor), place)
        if first is not place and first[0] != place[0]:
            routes = self.routes.setdefault(id(tensor), [])
            if all(other[0] != place[0] for other in routes):
                routes.append(place)

    def _forget_tensor(self, tensor) -> None:
        self.tensors.pop(id(tensor), None)
        self.routes.pop(id(tensor), None)

    def _walk(self, value, names, depth: int) -> bool:
        """Whether `value` is to be walked (again) for `names` with `depth` steps left;
        records that it is."""
        done = self._walked.get(id(value))
        if done is None:  # (most objects: reached once)
            self._walked[id(value)] = (None if names is None else frozenset(names), depth)
            return True
        if self._covered(value, names, depth):
            return False
        walked, steps = done
        if names is not None and walked is not _EVERY:
            walked = frozenset(names) if walked is None else walked | names
        self._walked[id(value)] = (walked, max(depth, steps))
        return True

    def note_values_the_trace_changed(self) -> None:
        """Mark the guards of the Python values that tracing itself changed with what they hold
        now (NOTE [values the trace changes])."""
        for where in self._absent:
            guard, parents = self.values[where]
            now = guard.read()
            if now is not _MISSING:
                # NOTE [attributes read while absent]: set by the trace itself (a field set
                # lazily, `if not hasattr(O, "scale"): O.scale = 2.0`), held from here as
                # an item the trace adds to an outside dict is
                self.values[where] = (Guard(guard.where.removesuffix(" (absent)"), guard.read,
                                            now, by_value=_is_value(now) or isinstance(
                                                now, types.MethodType)), parents)
        for guard, _ in self.values.values():
            if guard.by_value:
                now = guard.read()
                if guard.changed(now):
                    guard.after_trace = now

    def forget_sizes_the_trace_changed(self, owned=frozenset()) -> None:
        """Drop the guards on the keys / length of the containers from outside the function
        that tracing itself changed (`calls.append(1)` in a closure's list, a global dict set):
        such a change is a Python side effect, made once while tracing (README, "Python side
        effects"), and its guard failed right after every trace. The call's own objects'
        containers (`self.cache`, in `owned`) are written back on each call and stay guarded."""
        for where, container in list(self.sized.items()):
            guard, parents = self.values[where]
            if id(container) not in owned and not guard.holds():
                del self.values[where]
                if isinstance(container, dict) and isinstance(guard.expected, tuple):
                    self._guard_items_the_trace_added(where[:-len("'s keys")], container,
                                                      guard.expected, parents)

    def _guard_items_the_trace_added(self, where, table, keys_before, parents) -> None:
        # NOTE [items the trace added to an outside dict]
        # A `defaultdict` the code reads a missing key of (`COUNTS["s"] + 1`, a config's
        # `defaultdict(float)`) gets that key from the trace itself: its keys guard, which then
        # failed after every trace, is dropped (above), and the item, absent as the trace
        # began, had no guard: `COUNTS["s"] = 3.0` between calls replayed the traced 0.0,
        # silently (tester41 s03). The graph never writes a Python value back, so the item
        # holds the trace's value until the caller changes it: guarded by value from here.
        before = set(keys_before)
        for key, item in list(table.items()):
            if key not in before and _is_value(item):
                place = f"{where}[{key!r}]"
                self.values.setdefault(place, (Guard(place, _item_reader(table, key), item,
                                                     by_value=True), parents))

    def refuse_trace_values_stored(self, name: str, location, retrace=None,
                                   owned=frozenset()) -> None:
        """Raise a StagingError, the containers put back as they were, where tracing stored a
        value of the trace (a tensor the function computed) into a container from outside the
        function (NOTE [trace values stored outside]). The error names the user's line that
        computed the tensor, found by `retrace()` (the trace again, with the stack trace of each
        node: on this error path only), else `location` (the function's). `owned`: the ids of
        the containers the call's own objects hold (`self.cache` of a module), whose stores the
        graph writes back on each call instead (NOTE [changed arguments] in capture.py).
        """
        stored = self._trace_values_stored(owned)
        if not stored:
            return
        self._put_back()
        if retrace is not None:
            try:
                location = _storing_line(retrace, *stored[0][1]) or location
            except Exception:  # noqa: BLE001 - no better line than the function's
                pass
            finally:
                self._put_back()
        raise StagingError.at(
            location, "function",
            f"{name} stores {stored[0][2]} it computes into {stored[0][0]}, which it reaches "
            "from outside (a global or a closure's variable): the graph cannot store into an "
            "object outside the function on each call (it held a value of the trace"
            + (", a symbolic number, where Python's is the call's own" if stored[0][2] != "a tensor"
               else "") + ")",
            ("Update the tensor there in place (`STATS[\"n\"] += 1`, `.add_(...)`, `.copy_(...)`: "
             "the graph repeats those on each call), or return the new value and store it in the "
             "caller" if stored[0][2] == "a tensor" else
             "Return the number and store it in the caller, or keep it in a tensor there and "
             "update that in place (`.fill_(n)`: the graph repeats that on each call)"))

    def _trace_values_stored(self, owned=frozenset()) -> list:
        """[(where, (container, key), what)] of the values of the trace the containers from
        outside hold, but for those in `owned`; `what` says which kind, for the message."""
        stored = []
        for where, table, before, shown in self.containers:
            if id(table) in owned:
                continue
            keys = table.keys() if isinstance(table, dict) else range(len(table))
            held = before if isinstance(before, dict) else dict(enumerate(before))
            for key in list(keys):
                if key in held and held[key] is table[key]:
                    continue  # (held before the trace: a user's own fake tensor is not stored)
                what = _stored_trace_value(table[key])
                if what:
                    stored.append((shown.format(where, key), (table, key), what))
        return stored

    def _put_back(self) -> None:
        for _, table, before, _ in self.containers:
            if isinstance(table, dict):
                table.clear()
                table.update(before)
            else:
                table[:] = before

    # NOTE [values the trace changes]
# A Python value outside the function that the trace reads and changes (a do_not_convert
# logging helper's `runs["calls"] += 1` on a global dict or Counter, `COUNTS["n"] += 1` in the
# function) changes once per trace, where Python changes it on every call, and its guard fails
# right after every trace. The guard cannot be dropped, as a container's keys' is
# (`forget_sizes_the_trace_changed`): the graph may compute with the value, and would keep the
# traced one. So the call is refused, as before, but the message says that the trace itself
# changed the place and what to write (a count kept outside, or a tensor updated in place),
# both where the Function traces again and its next trace changes it again, and where a
# ConcreteFunction's next call finds it changed (it said "call the Function instead, which
# traces again", which met the same change). A value the trace changes only once (set to
# what it holds after: `CFG["ready"] = True`) holds for the graph of the second trace.

# NOTE [places in argument objects]
    # A call's signature keys an argument object's fields three levels down (NOTE [fields of
    # argument objects] in signature.py) and a module argument by identity only, yet the trace
    # bakes in every Python value it reads there: `model.eval()` between two calls of
    # `step(model, x)` replayed the training-mode BatchNorm graph (updating the running
    # statistics in eval), and `cfg.a.b.c.d.scale` changed between calls kept its first value,
    # silently. What the key leaves out is guarded as the same things held by a global are: a
    # module argument as a global module (its mode, structure, hooks, the attributes its code
    # reads), and under an argument object what lies below the key's depth, or is a module,
    # with the identity of every container and object on its path (NOTE [places held by
    # objects]). The argument object itself is fixed by the signature (keyed by identity).
    def _search_arguments(self, arguments, module) -> None:
        """The places under the call's arguments (`[(where, value)]`, the non-tensor leaves)
        that the signature does not key (NOTE [places in argument objects])."""
        names = self._code
        for where, value in arguments:
            if isinstance(value, torch.nn.Module):
                if value is not module:
                    self._search_outside_module(value, where, names)
                    # (its parameters' gradients are not places: a read of one is refused at
                    # its line, NOTE [gradients of arguments] in capture.py)
                    for parameter in value.parameters():
                        self._forget_tensor(parameter.grad)
            elif _reaches_state(value):
                self._search_callable(value, where, (), {})
            elif keys_fields(value):
                self._search_unkeyed(value, where, (), names, FIELD_DEPTH, 0)
            elif type(value) is types.MethodType and keys_fields(value.__self__):
                # NOTE [bound methods as arguments] in signature.py: the object's fields are
                # keyed as an argument object's, but its tensors are constants of the graph
                # (not read live as an argument object's are), so guarded by identity
                owner = value.__self__
                table = vars(owner)
                for key, item in list(table.items()):
                    if isinstance(item, torch.Tensor):
                        self._add(f"{where}.__self__.{key}", _item_reader(table, key), item)
                self._search_unkeyed(owner, f"{where}.__self__", (),
                                     names | _class_names(type(owner)), FIELD_DEPTH, 0)

    def _search_unkeyed(self, value, where, parents, names, depth: int, steps: int) -> None:
        """Under `value` (an argument object, or a list / dict / object in its fields that the
        signature keys with `depth` levels left), the places the key leaves out."""
        names_here = names
        if type(value) is tuple or type(value) is list:
            read_items = value
            entries = [(f"{where}[{i}]", i, item) for i, item in enumerate(value)]
        elif type(value) is dict:
            read_items = value
            entries = [(f"{where}[{k!r}]", k, item) for k, item in value.items()]
        else:
            read_items = vars(value)
            entries = [(f"{where}.{k}", k, item) for k, item in list(read_items.items())
                       if not k.startswith("__")]
            names_here = names | _class_names(type(value))
            # NOTE [class attributes of argument objects]
            # The signature keys an argument object's own fields, not its class's attributes
            # the code reads through it (`o.k` of a class's `k = 1.0`, or a base class's):
            # `Sub.k = 5.0` between calls replayed the traced 1.0, silently, as did a method
            # patched on its class (`S.g = other`) and a property's read of a class attribute
            # (break45 s02). They are guarded as a held object's are (`_search_class`).
            self._search_class(value, where, names_here, parents)
        for place, key, item in entries:
            if type(read_items) is dict:
                read = _item_reader(read_items, key)
            else:  # a list's or tuple's item (a tuple cannot change; a list is guarded below)
                read = functools.partial(_list_item, read_items, key)
            named = names_here if type(value) in _CONTAINERS or key in names_here else None
            if isinstance(item, (torch.Tensor, enum.Enum)) or type(item) in _KEYED_SCALARS:
                continue  # (a graph input, or keyed by value)
            if isinstance(item, torch.nn.Module):
                if self._covered(item, names_here | _class_names(type(item)), _DEPTH):
                    continue
                path = (*parents, Guard(place, read, item))
                self.values.setdefault(f"{place}.training", (Guard(
                    f"{place}.training", functools.partial(getattr, item, "training"),
                    item.training, by_value=True), path))
                self._search_module(item, place, read, parents,
                                    names_here | _class_names(type(item)), ())
                for parameter in item.parameters():  # (as a module argument's, above)
                    self._forget_tensor(parameter.grad)
            elif _reaches_state(item):
                self._search_callable(item, place, (*parents, Guard(place, read, item)), {})
            elif depth > 0 and (type(item) in (list, tuple, dict) and len(item) <= LONG
                                or keys_fields(item)):
                self._search_unkeyed(item, place, (*parents, Guard(place, read, item)),
                                     names_here, depth - 1, steps + 1)
            else:  # below the key's depth, or a value it leaves out (a frozen dataclass)
                self._add(place, read, item, named, parents, _DEPTH - steps)

    def _search_callable(self, fn, where, parents, seen: dict,
                         depth: int = _HELPER_DEPTH) -> None:
        """What a callable argument (or a callable in an argument object's field) reaches
        besides its code's globals: a partial's arguments and keywords, a function's closure
        cells and default arguments (NOTE [state reached through a callable argument])."""
        if depth < 0 or not _deeper(seen, fn, depth):
            return
        names = _callable_names(fn)
        self._code |= names
        if isinstance(fn, functools.partial):
            # (at one step down: a module there is searched as one held by an object is;
            # at `_DEPTH`, where `_add` leaves a global's module to `_search_function`,
            # `partial(loss, model)` kept the traced mode after `model.eval()`: tester40 s04)
            for index, item in enumerate(fn.args[:_MAX_ITEMS]):
                self._add(f"{where}.args[{index}]", functools.partial(_partial_arg, fn, index),
                          item, names, parents, _DEPTH - 1)
                if _reaches_state(item):
                    self._search_callable(item, f"{where}.args[{index}]", parents, seen,
                                          depth - 1)
            keywords = fn.keywords
            self._add(f"{where}.keywords", functools.partial(getattr, fn, "keywords"), keywords,
                      names, parents, _DEPTH - 1)
            for key, item in keywords.items():
                if _reaches_state(item):
                    self._search_callable(item, f"{where}.keywords[{key!r}]", parents, seen,
                                          depth - 1)
            self._search_callable(fn.func, f"{where}.func", parents, seen, depth - 1)
        elif isinstance(fn, types.MethodType):
            self._search_callable(fn.__func__, f"{where}.__func__", parents, seen, depth)
        elif isinstance(fn, types.FunctionType):
            self._search_function(fn, {}, depth)
            if fn.__defaults__:
                self._add(f"the defaults of {where}", functools.partial(getattr, fn,
                          "__defaults__"), fn.__defaults__, names, parents)
            if fn.__kwdefaults__:
                self._add(f"the keyword defaults of {where}", functools.partial(
                    getattr, fn, "__kwdefaults__"), fn.__kwdefaults__, names, parents)
            for index, cell in enumerate(fn.__closure__ or ()):
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                if _reaches_state(value):
                    self._search_callable(value, f"{where}'s closure", parents, seen, depth - 1)
        elif type(getattr(fn, "__dict__", None)) is dict:
            # a callable object: its fields are keyed (or searched) as an object's (a builtin,
            # `partial(torch.mul, other=2.0)`'s `torch.mul`, has none: `vars` of it raised
            # TypeError at the user's call, break41 s06)
            self._search_unkeyed(fn, where, parents, names, FIELD_DEPTH, 0)

    def _watch_stores_of(self, hook) -> None:
        """Watch the dicts, lists and plain objects a submodule's forward hook reaches (its
        globals and cells) for a value of the trace stored there, without guarding them (NOTE
        [hooks of submodules in the trace])."""
        fn = getattr(hook, "__func__", hook)
        if not isinstance(fn, types.FunctionType):
            return
        table = fn.__globals__
        reached = [(f"the global {name}", table[name]) for name in _code_names(fn.__code__)
                   if name in table]
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                reached.append((f"the closure's {name}", cell.cell_contents))
            except ValueError:
                continue
        watched = {id(c[1]) for c in self.containers}
        for where, value in reached:
            held = value if type(value) in (dict, list) else (
                getattr(value, "__dict__", None) if _is_plain_object(value) else None)
            if type(held) in (dict, list) and id(held) not in watched:
                watched.add(id(held))
                self.containers.append((where, held, held.copy(),
                                        "{}[{!r}]" if held is value else "{}.{}"))

    def _search_function(self, fn, seen: dict, depth: int) -> None:
        held = getattr(fn, "__func__", fn)
        fn = _wrapped_function(held)  # NOTE [code behind a wrapper]
        if not isinstance(fn, types.FunctionType) or not _deeper(seen, fn, depth):
            return
        if is_library_function(fn):
            # (the standard library's, torch's, pytest's globals hold no setting of the user's;
            # followed, the search went from pytest's assertion helpers through `warnings` into
            # sympy's classes, whose properties raise: session 45. A library's wrapper still
            # leads to the user's function its closure holds: `@torch.no_grad()` on a helper,
            # and to those a dict there holds: functools.singledispatch's registry, reached
            # through its `dispatch` closure, whose implementation's globals kept their traced
            # values after a change, silently: break46 s01. A wrapper spends no depth: it is
            # not a helper of the user's.)
            for cell in fn.__closure__ or ():
                value = _cell_value(cell)
                held = list(value.values())[:_MAX_ITEMS] if type(value) is dict else (value,)
                for item in held:
                    if isinstance(item, types.FunctionType):
                        self._search_function(item, seen, depth)
            return
        table = fn.__globals__
        # (NOTE [containers a cached helper fills]: walked for their tensors only)
        filled = frozenset() if fn is held else _only_filled(fn.__code__)
        names = _code_names(fn.__code__) - filled
        names |= _getter_names([table.get(name) for name in names] + [
            _cell_value(cell) for cell in fn.__closure__ or ()])
        names |= _helper_names(fn, names, depth)  # NOTE [objects handed to helpers]
        self._code |= names
        for name in names:
            value = table.get(name, _MISSING)
            if value is _MISSING:
                continue
            if isinstance(value, types.ModuleType):
                self._search_config_module(value, name, names, seen, depth)
                continue
            self._add(f"the global {name}", _item_reader(table, name), value, names)
            self._held_by_code.append((f"the global {name}", _item_reader(table, name), value))
            if depth and isinstance(_wrapped_function(value), types.FunctionType):
                self._search_function(value, seen, depth - 1)
            elif isinstance(value, torch.nn.Module):
                self._search_outside_module(value, f"the global {name}", names)
        for name in filled - names:
            if name in table:
                self._add(f"the global {name}", _item_reader(table, name), table[name])
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if name in filled and name not in names:
                self._add(f"the closure variable {name}", _cell_reader(cell), value)
                continue
            if isinstance(value, types.ModuleType):
                # (a module a closure holds, `utils = importlib.import_module(...)` in the
                # enclosing function, as a global one: break45b s06)
                self._search_config_module(value, name, names, seen, depth)
                continue
            self._add(f"the closure variable {name}", _cell_reader(cell), value, names)
            self._held_by_code.append((f"the closure variable {name}", _cell_reader(cell), value))
            if depth and isinstance(_wrapped_function(value), types.FunctionType):
                self._search_function(value, seen, depth - 1)
            elif isinstance(value, torch.nn.Module):
                # (as a global module: a closure's `model.eval()` between calls replayed the
                # training graph, and a rebound parameter the old one, silently; tester39 s04)
                self._search_outside_module(value, f"the closure variable {name}", names)

    def _search_config_module(self, module, name: str, names, seen: dict, depth: int) -> None:
        """A config module's attributes the code names (`cfg.TABLE`, `cfg.SCALE`), and the
        functions there it calls as helpers."""
        if module.__name__.partition(".")[0] in _LIBRARIES:
            return
        attrs = vars(module)
        for attr in names:
            if attr in attrs and not attr.startswith("__"):
                self._add(f"{name}.{attr}", _item_reader(attrs, attr), attrs[attr], names)
                if depth and isinstance(attrs[attr], types.FunctionType):
                    # (a helper of a module of the user's, `utils.scale(x)`: its globals,
                    # `utils.EPS` changed between calls replayed the traced value, silently:
                    # break45b s03)
                    self._search_function(attrs[attr], seen, depth - 1)
        self._guard_absent(module, name, names, ())

    def _search_outside_module(self, module, prefix, names) -> None:
        """A module the function reaches from outside (a global encoder), which no signature
        keys on: its own mode (`ENC.eval()` between calls runs BatchNorm on its running
        statistics), then its attributes and submodules as a root module's."""
        names = names | _class_names(type(module))
        if self._covered(module, names, _DEPTH):
            return
        where = f"{prefix}.training"
        read_mode = functools.partial(getattr, module, "training")
        self.values.setdefault(where, (Guard(where, read_mode, read_mode(), by_value=True), ()))
        self._search_module(module, prefix, None, (), names, ())

    def _search_module(self, module, prefix, read, parents, names, own, root=None,
                       inputs: bool = False) -> None:
        """A module's attributes and its submodules', to any depth (NOTE [places held by
        objects]); `own`: the module's Python attributes its `Function` keys on instead;
        `root`: the module the search began at (None: this one), whose mode is keyed or
        guarded by the caller (NOTE [submodule modes against the root's]); `inputs`: its
        parameters and buffers are graph inputs (the Function's own module)."""
        mine = names | _class_names(type(module))  # a torch module's own code reads its fields
        again = id(module) in self._walked
        if read is not None:  # a submodule: found in its parent's `_modules`
            parents = (*parents, Guard(prefix, read, module))
            if again:  # (NOTE [a submodule under two names] in capture.py)
                self.values.setdefault(prefix, (parents[-1], parents[:-1]))
        if not self._walk(module, mine, _DEPTH):
            return
        if again:
            # (reached by a route whose code reads other names: only its fields and its
            # submodules' depend on them, NOTE [objects reached by two routes])
            self._search_object(module, prefix, parents, mine, _DEPTH, skip={*own, "training"})
            for name, sub in list(module.__dict__.get("_modules", {}).items()):
                if sub is not None:
                    self._search_module(sub, f"{prefix}.{name}",
                                        _item_reader(module._modules, name), parents, names, (),
                                        module if root is None else root, inputs)
            return
        if inputs and read is None:  # the Function's own module: never walked again
            self._walked[id(module)] = (_EVERY, _DEPTH)  # (NOTE [objects reached by two routes])
        if read is not None:
            # Its structure is the graph's: a submodule replaced (`model.head = nn.Linear(..)`,
            # whose parameters the graph would not read), a hook registered on it later (which
            # the graph would not run) or a module added to it (a ModuleList's append) traces
            # again.
            self.values.setdefault(prefix, (parents[-1], parents[:-1]))
        # (the Function's own module: its own forward is keyed, `Function._extra`)
        shape = (functools.partial(_structure, module, False) if read is None and inputs
                 else functools.partial(_structure, module))
        self.values.setdefault(f"{prefix}'s structure", (
            Guard(f"the submodules, hooks and own forward of {prefix}", shape, shape(),
                  by_value=True, fresh=True),
            parents))
        # NOTE [a module's class]
        where = f"the class of {prefix}"
        self.values.setdefault(where, (
            Guard(where, functools.partial(type, module), type(module)), parents))
        forward = module.__dict__.get("forward")
        if forward is not None and (read is not None or not inputs):
            # NOTE [a module's own forward]: which one, by identity
            where = f"{prefix}.forward"
            self.values.setdefault(where, (
                Guard(where, _item_reader(module.__dict__, "forward"), forward), parents))
        self._guard_class_forward(module, prefix, parents)
        children = module.__dict__.get("_modules")
        if type(children) is dict and len(children) > 1:
            # the order of its submodules: a Sequential, ModuleList or ModuleDict runs or
            # iterates them in that order (`_modules` reordered, the same submodules under the
            # same names, left every guard holding and the graph ran the old order)
            where = f"the order of the submodules of {prefix}"
            order = functools.partial(_keys, children)
            self.values.setdefault(where, (
                Guard(where, order, order(), by_value=True, fresh=True), parents))
        # The counts alone missed a hook swapped for another between two calls (`handle.remove()`
        # then `register_forward_hook(other)`: the same count, the old hook's effect replayed):
        # where a module has forward hooks, which ones (each registration's key is new: torch's
        # handle ids) and their functions are guarded too; torch's global module hooks (which
        # a trace runs at every submodule call) likewise, once.
        for table in _HOOKS:
            if module.__dict__.get(table):
                where = f"the {table[1:].replace('_', ' ')} of {prefix}"
                hooks = functools.partial(_hook_items, module, table)
                self.values.setdefault(where, (
                    Guard(where, hooks, hooks(), by_value=True, fresh=True), parents))
                if read is not None or not inputs:  # NOTE [what hooks in the trace read]
                    for hook in module.__dict__[table].values():
                        self._search_function(hook, self._functions, _HELPER_DEPTH)
        where = "torch's global module hooks (register_module_forward_hook)"
        if where not in self.values:
            self.values[where] = (Guard(where, _global_hooks, _global_hooks(), by_value=True,
                                        fresh=True), ())
            for _, hook in _global_hooks():  # NOTE [what hooks in the trace read]
                self._search_function(hook, self._functions, _HELPER_DEPTH)
        # (`training`: the root's is keyed on by the signature, a submodule's below)
        self._search_object(module, prefix, parents, mine, _DEPTH, skip={*own, "training"})
        if root is not None and "training" in _class_names(type(module)):
            # NOTE [submodule modes against the root's]
            # A submodule's mode is mostly its root's, which the signature keys on (the
            # Function's own module) or a guard holds (a module reached from outside): only a
            # submodule put in another mode than the root retraces. Compared with its direct
            # parent instead, `model.backbone.eval()` (freezing BatchNorm while the head
            # trains) left every guard holding where the backbone's own class reads no
            # `training` and its BatchNorm agreed with it: the train-mode graph was replayed,
            # silently (tester40 s01). A module found in an argument object's field is a root
            # (its mode guarded where it is found): it has no root to differ from (tester40
            # s03: compared with None, an AttributeError while tracing).
            where = f"{prefix}.training (unlike its root's)"
            read_mode = functools.partial(_mode_differs, module, root)
            self.values.setdefault(where, (Guard(where, read_mode, read_mode(), by_value=True),
                                           parents))
        if not inputs:
            # (its Python attributes: a value of the trace stored there, `self.num_triplets =
            # len(a)` of a global miner, is refused and put back as a global dict's item is,
            # NOTE [trace values stored outside]; the call's own module writes its back)
            self.containers.append((prefix, module.__dict__, module.__dict__.copy(), "{}.{}"))
            # NOTE [parameters of modules reached from outside]
            # A module the function reaches from outside (a global, a module argument or one
            # in an argument's fields, `self` of a method) has its parameters and buffers in
            # the graph as constants: the tensor objects of the trace. Updated in place
            # (`optimizer.step()`) the graph reads the new values; rebound
            # (`lin.weight = nn.Parameter(w)`, `load_state_dict(..., assign=True)`, a
            # parametrization registered) it read the old tensor, silently, since torch's own
            # `forward` (which reads them) is never searched for names. They are guarded
            # as any captured tensor is, each by a dict lookup in its module's table.
            for table in ("_parameters", "_buffers"):
                entries = module.__dict__.get(table)
                for name, tensor in list((entries or {}).items()):
                    if tensor is not None:
                        self._add(f"{prefix}.{name}", _item_reader(entries, name), tensor,
                                  None, parents)
        for name, parameter in module.__dict__.get("_parameters", {}).items():
            if inputs and parameter is not None and parameter.grad is not None:
                # `for p in MODEL.parameters(): p.grad`: the gradients are places too (_add)
                self._add(f"{prefix}.{name}", _item_reader(module._parameters, name),
                          parameter, None, parents)
        for name, sub in list(module.__dict__.get("_modules", {}).items()):
            if sub is not None:
                self._search_module(sub, f"{prefix}.{name}",
                                    _item_reader(module._modules, name), parents, names, (),
                                    module if root is None else root, inputs)

    # NOTE [a module's class's forward]
    # A module call runs `type(module).forward` (where the instance holds none: NOTE [a
    # module's own forward]), found through the class at each call. It was not guarded: the
    # class's forward patched after the first call (`Block.forward = new`, a library
    # monkey-patching `nn.Linear.forward`) replayed the old forward's graph, silently (break44
    # s01). The class's `forward`, as the class holds it, is guarded by identity once a class
    # (a torch class's too: the seed model's 202 leaves are of a few classes); the module's
    # class itself by NOTE [a module's class].
    def _guard_class_forward(self, module, prefix: str, parents) -> None:
        cls = type(module)
        forward = getattr(cls, "forward", _MISSING)
        if isinstance(forward, types.FunctionType):  # (a new bound method each read else)
            where = f"{cls.__module__}.{cls.__qualname__}.forward"
            # (keyed by the class itself: two classes of one name, made by a function or by
            # torch's parametrize, are two places)
            self.values.setdefault((where, cls), (
                Guard(where, functools.partial(getattr, cls, "forward", _MISSING), forward), ()))

    def _search_object(self, obj, prefix: str, parents, names=None, depth: int = _DEPTH,
                       skip=()) -> None:
        """An object's attributes: tensors, and with `names` (the names code reads) Python
        values, and what objects there hold (NOTE [places held by objects])."""
        attrs = getattr(obj, "__dict__", None)
        slots = _slot_names(type(obj))
        if not isinstance(attrs, dict) and not slots:
            return
        for name, value in list(attrs.items()) if isinstance(attrs, dict) else ():
            # (a module's parameters and buffers are graph inputs, never constants)
            if name.startswith("__") or name in _MODULE_TABLES or name in skip:
                continue
            self._add(f"{prefix}.{name}", _item_reader(attrs, name), value,
                      names if names is not None and name in names else None, parents, depth)
        for name in slots:  # NOTE [attributes held in slots]
            if name in skip:
                continue
            read = functools.partial(getattr, obj, name, _MISSING)
            value, named = read(), names is not None and name in names
            if value is not _MISSING:
                self._add(f"{prefix}.{name}", read, value, names if named else None, parents,
                          depth)
            elif named and f"{prefix}.{name}" not in self.values:
                self.values[f"{prefix}.{name}"] = (
                    Guard(f"{prefix}.{name} (absent)", read, _MISSING), parents)
                self._absent.append(f"{prefix}.{name}")
        self._guard_absent(obj, prefix, names, parents)

    # NOTE [attributes read while absent]
    # Code reading an attribute with a default or asking for it (`getattr(cfg, "temp", 1.0)`,
    # `if hasattr(cfg, "temp"):`, as published configs and lazily set fields are read) takes
    # the default's path where the object holds nothing there. The search follows what is
    # held, so nothing was guarded: `cfg.temp = 0.5` set after the first call replayed the
    # default's graph, silently (tester42 s01), on a global or closure's object, a nested
    # one, a partial's argument, `self` of a method, a global module, a namespace class and a
    # config module alike. Each name a `getattr` / `hasattr` caller holds as a string (and
    # the search's code reads) that an object, class or config module it follows lacks is
    # guarded as absent there (`getattr` with a default, an identity check, so a class
    # attribute set later shows too); one the trace itself sets (a field set lazily) is
    # guarded by the value it holds after the trace. Such names are few: one guard a name.
    def _guard_absent(self, holder, where: str, names, parents) -> None:
        if not names:
            return
        for name in names & _READ_WHERE_ABSENT:
            read = functools.partial(getattr, holder, name, _MISSING)
            try:
                held = read()
            except Exception:  # (a property that raises: the code cannot have read it here)
                continue
            if not name.startswith("__") and held is _MISSING and (
                    f"{where}.{name}" not in self.values):
                self.values[f"{where}.{name}"] = (
                    Guard(f"{where}.{name} (absent)", read, _MISSING), parents)
                self._absent.append(f"{where}.{name}")

    # NOTE [code reached through a held callable]
    # What a function reads is searched by the names its code (and its helpers') reads. Code
    # run through an object or a class the function holds was not: a bound method or a partial
    # held by a global or a closure (`step = scaler.scale_by`, `LOSS = partial(loss, cfg)`,
    # whose `self` / arguments were never searched), a class attribute a callable object
    # reads through `self` (`Predictor.k = 5.0` with no instance `k`), a static method of a
    # class used as a namespace reading `Ops.scale` (a name only the method's code reads):
    # each kept the traced value after a change, silently (tester41 s01, s02), as did a
    # helper function rebound (`helper = other`), a closure held in a global dict or list
    # (`OPS["scale"]`, its cell's config changed) and a dict a namespace class holds (s08,
    # s09). A function, bound method or partial held there is guarded by identity and searched
    # as a callable argument is (NOTE [state reached through a callable argument]), a bound
    # method's `self` as an object; a user's object's class attributes as `self` reads them;
    # the functions of a user's object or namespace class as helpers (their globals and
    # closures); and a class's attributes of any kind the code names, and those an
    # `operator.attrgetter` / `methodcaller` the code holds reads (`GET = attrgetter("k")`: a
    # name in no code, missed until session 41: tester41 s10).
    # NOTE [code a class runs on a read]
    # Reading a held object's attribute or item can run its class's code: a property's
    # getter (`CFG.v` computed from a global), a dict subclass's `__getitem__` (`SCALED["a"]`
    # times a global factor). The trace runs it once; its globals were not searched (a
    # property is not a function, a dict subclass was searched as a dict): a change of the
    # global between calls replayed the traced value, silently (break45b s02). A property's
    # getter is searched as a method is, and a user's dict subclass's methods as a user's
    # object's are.
    def _search_code(self, member, depth: int) -> None:
        """The globals and closure of a function a held object or class runs (a method, a
        static or class method, a partial's or bound method's function), searched as a
        helper's are (NOTE [code reached through a held callable])."""
        if isinstance(member, property):  # NOTE [code a class runs on a read]
            member = member.fget
        member = getattr(member, "__func__", member)
        if depth >= 0 and isinstance(member, types.FunctionType):
            self._search_function(member, self._functions, min(depth, _HELPER_DEPTH))

    def _search_class(self, obj, prefix: str, names, parents=()) -> None:
        """The class attributes read through `self` (`table = torch.ones(3)` in the class body,
        `self.table` in a method): a tensor or Python value the instance does not shadow, read
        as `self` reads it (so an instance attribute set later is seen too)."""
        attrs = getattr(obj, "__dict__", {})
        # (NOTE [class attributes shadowed in the MRO])
        for cls, name, value in _class_attributes(
                type(obj), lambda cls: cls.__module__.partition(".")[0] != "torch"):
            if name.startswith("__") or name in attrs or name not in names:
                continue
            if _is_descriptor(value):  # NOTE [descriptors read as Python reads them]
                self._search_code(type(value).__get__, _HELPER_DEPTH)
                value = _descriptor_read(obj, name)
                if value is _MISSING:
                    continue
            if (isinstance(value, torch.Tensor) or _is_value(value)
                    or _container_kind(value, names) in _CONTAINERS or _is_plain_object(value)):
                # (a dict, list or object there too, its places under it: `self.table["a"]`
                # of a class's `table = {...}` kept the traced item, silently: break45 s02)
                self._add(f"{prefix}.{name} (of the class {cls.__qualname__})",
                          functools.partial(getattr, obj, name, _MISSING), value, names,
                          parents)
            elif isinstance(value, (types.FunctionType, staticmethod)) and isinstance(
                    attrs, dict):
                # NOTE [methods found through the class]
                self._guard_method(obj, attrs, cls, name, prefix, parents)
            elif isinstance(value, (property, classmethod)):
                # NOTE [code a class runs on a read]; a class method: NOTE [class methods are
                # code]
                self._search_code(value, _HELPER_DEPTH)
                if isinstance(value, classmethod):
                    owner = type(obj)
                    self._guard_held_code(
                        owner, name, value,
                        f"{owner.__module__}.{owner.__qualname__}.{name} (a class method)", ())

    # NOTE [methods found through the class]
    # `self.helper(x)` (or `O.scale(x)` of a held object) runs the function its class holds,
    # unless the instance holds one of its own. The trace inlines it; neither the class's
    # function nor the instance's lack of one was guarded: `Helper.scale = new` (a patched
    # method) or `obj.scale = f` set after the first call replayed the old method's graph,
    # silently (break44 s01). Each method the code names is guarded as absent from the
    # instance's `__dict__` (a dict lookup) and, by identity, as the class it was found in
    # still holds it (`getattr` of the class: a plain or static method's function is the same
    # object at each read; a class method, a new bound method each read, is left out).
    def _guard_held_code(self, cls, name: str, item, where: str, parents) -> None:
        """Guards by identity that `cls` still holds `item` (a function, static or class
        method) under `name`, as its class dict holds it: NOTE [code a class holds, rebound]."""
        read = functools.partial(_static_attribute, cls, name)
        self.values.setdefault((where, cls), (Guard(where, read, item), parents))

    def _guard_method(self, obj, attrs: dict, cls, name: str, prefix: str, parents) -> None:
        owner = type(obj)
        found = getattr(owner, name, _MISSING)
        if not isinstance(found, types.FunctionType):
            return
        # (once a class: `type(obj)` is guarded where the object is a module, and a plain
        # object's class is fixed by the identity of the object)
        where = f"{owner.__module__}.{owner.__qualname__}.{name} (a method)"
        self.values.setdefault((where, owner), (
            Guard(where, functools.partial(getattr, owner, name, _MISSING), found), ()))
        where = f"{prefix}.{name} (absent from the instance)"
        self.values.setdefault(where, (Guard(where, _item_reader(attrs, name), _MISSING),
                                       parents))


# NOTE [code a class holds, rebound]
# A function, static or class method a user's class holds, called through the class (`C.k()`
# of a global class used as a namespace) or a class method through an instance (`c.k()`), was
# searched as code only: `C.k = classmethod(other)` (a patch, a registry's re-registration)
# after the first call replayed the old method's graph (2x for Python's 3x, break47 s04). The
# object the class's dict holds (what `inspect.getattr_static` finds along the MRO: a class
# method's read gives a new bound method each time, so `getattr` cannot be guarded by
# identity) is guarded by identity, as NOTE [methods found through the class] guards a plain
# method read through an instance.
def _static_attribute(cls, name: str):
    return inspect.getattr_static(cls, name, _MISSING)


# NOTE [another thread's state]
# A thread object's fields are its thread's, changed whenever that thread runs: tqdm's monitor
# (`tqdm.monitor`, a TMonitor thread every `tqdm(...)` starts, k-diffusion's samplers' progress
# bar) sets its `woken` time every few seconds, so its guard failed on the next call, or right
# after a trace that took longer ("tracing it changes the global tqdm.monitor.woken"), and
# `sample_dpm_adaptive` as published never replayed. No graph computes with such a field: a
# thread object is not searched.


# NOTE [class attributes shadowed in the MRO]
# A class's attributes are guarded by reading them as Python does (`getattr(cls, name)`), so
# the value a guard expects is the one Python finds: the first class of the MRO holding the
# name. Walking every class of the MRO took a base class's value shadowed by a subclass's:
# pyro's `ExpandedDistribution.has_rsample` is a property over pyro's base `Distribution`'s
# `has_rsample = False`, and `dist.Uniform.has_rsample` torch's `True` over the same `False`
# (torch's classes are not searched): the guard expected False and read the property, so every
# trace of code reaching pyro's distributions (HMC's `_find_reasonable_step_size`) stopped in
# "tracing it changes the global ExpandedDistribution.has_rsample (False before the trace,
# <property object ...> after it)", the trace having changed nothing (tester44 s03). A name
# whose first holder is a class not searched is left out, as that class's values are.
def _class_attributes(cls, searched) -> list:
    """[(owner, name, value)]: the attributes of `cls` as Python looks them up, each from the
    first class of the MRO holding its name, where `searched(owner)` (and not `object`)."""
    seen = set()
    out = []
    for owner in cls.__mro__:
        if owner is object or not searched(owner):
            # (its names still shadow the later classes': asked once a class, not once a
            # name: nn.Module's ~200 names, for each of the seed model's 203 modules, were
            # 17,000 calls of `searched` of a first call's trace)
            seen.update(vars(owner))
            continue
        for name, value in list(vars(owner).items()):
            if name not in seen:
                seen.add(name)
                out.append((owner, name, value))
    return out


def _container_kind(value, names) -> type:
    """`dict` for a dict or, where code names the place (`names`), a dict subclass (a config
    `EasyDict`, an `OrderedDict`, a `defaultdict`), whose items are then searched as a dict's;
    else the value's type. (Its own `__dict__`, searched before, is empty: `CFG["scale"] =
    5.0` between calls replayed the traced 2.0, silently: tester40 s11. Unnamed ones, a
    module's hook tables, are left as they were.)"""
    if names is not None and isinstance(value, dict) and not isinstance(value, torch.nn.Module):
        return dict
    return type(value)


def _is_config_mapping_or_set(value) -> bool:
    """A mapping that is not a dict (nor a module), or a set, of at most `_MAX_ITEMS` items
    (NOTE [mappings, sets and enums held as configs])."""
    if isinstance(value, (dict, torch.nn.Module)) or not (
            isinstance(value, (set, frozenset, types.MappingProxyType, collections.ChainMap,
                               collections.UserDict))
            or isinstance(value, collections.abc.Mapping) and _is_user_class(type(value))):
        return False  # (`os.environ`: NOTE [process state read while tracing] keys it)
    try:
        return len(value) <= _MAX_ITEMS
    except Exception:  # noqa: BLE001 - a mapping that cannot say: left as it was
        return False


# NOTE [attributes held in slots]
# An object of a class with `__slots__` (a `@dataclass(slots=True)` config, a hand-written
# slotted record) holds its fields in the slots, not in a `__dict__`, which the search of an
# object's attributes read alone: `CFG.scale = 3.0` between calls replayed the traced 2.0,
# silently, and a slot emptied (`del CFG.scale`) replayed it too where Python raises
# (break45b s01). A user's class's slots are searched as its `__dict__`'s items are, each
# read with `getattr` (the slot's descriptor; an empty one reads as absent, so filling or
# emptying it traces again).
def _slot_names(cls) -> tuple:
    """The names of the slots of a user's class and its user bases (not `__dict__` /
    `__weakref__`), each where Python finds the slot for it (not a property of a subclass
    over a base's slot)."""
    names = _SLOT_NAMES.get(cls)
    if names is None:
        names = _SLOT_NAMES[cls] = tuple(
            name for _, name, member in _class_attributes(cls, _is_user_class)
            if type(member) is types.MemberDescriptorType and not name.startswith("__"))
    return names


_SLOT_NAMES: dict = {}


# NOTE [descriptors read as Python reads them]
# A class attribute that is a user's descriptor (an object whose class defines `__get__`:
# tensorly's `dynamically_dispatched_class_attribute`, which gives the current backend's
# `backend_name`) is what its `__get__` gives when code reads it, not the object the class
# holds. Guarded as that object at `getattr(cls, name)`, every graph reading it failed its
# guard on the first call ("changes it right after tracing": tester46 s03). Its `__get__` is
# searched as a method is, and what it gives is guarded as the class attribute: a Python value
# by value (a new backend traces again), an object by identity where two reads give the same
# one; one made anew on each read is left to the search of `__get__`'s code.

def _is_descriptor(value) -> bool:
    """A user's descriptor object (not a function, class or property, whose reads the search
    handles as code)."""
    return (hasattr(type(value), "__get__") and _is_user_class(type(value)) and not isinstance(
        value, (type, types.FunctionType, classmethod, staticmethod, property)))


def _descriptor_read(owner, name: str):
    """`getattr(owner, name)` where it gives a value or the same object twice, else _MISSING
    (NOTE [descriptors read as Python reads them])."""
    try:
        first, second = getattr(owner, name), getattr(owner, name)
    except Exception:  # noqa: BLE001 (a read that raises: nothing to guard)
        return _MISSING
    return first if first is second or _is_value(first) and _same_value(first, second) \
        else _MISSING


# NOTE [class methods are code]
# A class method as its class holds it (a `classmethod` object, not callable, with a
# `__dict__` of its function's `__doc__`, `__name__`, `__wrapped__`) was taken for an object
# holding data, guarded by identity at `getattr(obj, name)`, which gives a new bound method
# on each read: every graph whose code reads it through an instance and names an attribute
# absent from it (tensorly's `backend._loaded_backends['numpy'].register_method`, with `self`
# and `backend` named) failed its guard on the first call, a TypeError of the
# ConcreteFunction and a RuntimeError of the Function ("changes it right after tracing":
# tester46 s02). It is code: its function is searched as a method's is.

def _is_plain_object(value) -> bool:
    """An instance of a user's class holding data (a config object, or a callable one: a
    `Predictor` whose `__call__` runs the model it holds), not code or a module (NOTE [class
    methods are code])."""
    return ((hasattr(value, "__dict__") or bool(_slot_names(type(value)))) and not isinstance(
        value, (type, types.FunctionType, types.MethodType, types.ModuleType,
                torch.nn.Module, functools.partial, classmethod, staticmethod, property))
            # (a callable object of a user's class was left out: a global or closure's
            # `Scaler(2.0)` whose `__call__` reads `self.k`, or holds a model, kept the traced
            # `k` and train mode after `s.k = 5.0` or `.eval()`, silently: tester40 s02)
            and (not callable(value) or _is_user_class(type(value))
                 and type(value).__module__.partition(".")[0] not in _OWN_PACKAGES))


# autoconv's own callables (a global `@autoconv` Function called by another, whose caches a
# search would guard: every call of the outer one traced again)
_OWN_PACKAGES = frozenset({"autoconv", "autoconv_runtime"})


def _class_names(cls) -> frozenset:
    """The names the methods of `cls` (and its bases below nn.Module) read: the attributes a
    module's own code reads from it (`self.p` in Dropout.forward, `self.temp` in a user's)."""
    names = _CLASS_NAMES.get(cls)
    if names is None:
        found = set()
        for klass in cls.__mro__:
            if klass in (object, torch.nn.Module):
                continue
            for name, member in vars(klass).items():
                if name in _NOT_RUN:
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                # (a method under `@autoconv` is a Function: its code is its python_function's;
                # missed, `self.step` calling the decorated `self.solve` left `self.tol`, which
                # only solve reads, unguarded, and step's graph kept the old tol: methods33 s02)
                member = getattr(member, "python_function", member)
                # (NOTE [methods wrapped after the class was made])
                for _ in range(_MAX_WRAPPERS):
                    found |= _code_names(getattr(member, "__code__", None))
                    member = getattr(member, "__wrapped__", None)
                    if member is None:
                        break
        names = _CLASS_NAMES[cls] = frozenset(found)
    return names


_CLASS_NAMES: dict = {}
# NOTE [methods wrapped after the class was made]
# A method may be a wrapper (`functools.wraps`) whose own code reads none of the names the
# method's body reads, and the wrapper may come later in the process: torch.compile's first
# call wraps every torch.optim class's `_init_group` in `torch._dynamo.disable` (its
# TorchPatcher), whose code reads `fn`, not `self.state`. The names of a class searched after
# any torch.compile in the process left out `state`, so `opt.state`'s keys went unguarded, and
# which graphs an optimizer's step traced hung on the process's history (trace46: the same
# RMSprop test traced twice after another file's torch.compile, three times alone). The code
# of each wrapped function (`__wrapped__`, a few deep) is read too.
_MAX_WRAPPERS = 8


def _is_user_class(cls) -> bool:
    top = getattr(cls, "__module__", None) or ""
    top = top.partition(".")[0]
    return top not in sys.stdlib_module_names and top not in ("torch", "builtins", "numpy")


def _user_names(module, fn) -> set:
    """The attribute names the code of a module's user classes (every submodule's) reads: a
    parent's forward reads `self.head.temp` of its child."""
    names = set(_code_names(getattr(getattr(fn, "__func__", fn), "__code__", None)))
    for sub in module.modules():
        if type(sub).__module__.partition(".")[0] != "torch":
            names |= _class_names(type(sub))
    return names


def _keys(table: dict) -> tuple:
    return tuple(table)


_STRUCTURE = ("_modules", "_forward_hooks", "_forward_pre_hooks")


_BACKWARD = ("_backward_hooks", "_backward_pre_hooks")


def _structure(module, own_forward: bool = True) -> tuple:
    return (*(len(getattr(module, name)) for name in _STRUCTURE + _BACKWARD),
            own_forward and "forward" in module.__dict__)


# NOTE [backward hooks set after the first call]
# A submodule's backward hook (`register_full_backward_hook`, a pre-hook changing its output's
# gradient) is refused while tracing with grad on (`_refuse_backward_hooks` in capture.py:
# the trace runs on detached tensors and would drop it). One registered after the first call
# was in no guard: the graph replayed and gave the gradients without it, silently (break43
# s05). The two tables' lengths are part of the module's structure (`_structure`); where the
# trace saw them empty, the fast check asks them for emptiness only while grad mode is on,
# when a gradient may flow (in `_bare_still`'s loop for the modules with no submodules and no
# hooks); with grad off the graph computes no gradient, and a hook changes nothing. Traced
# again, the hook is refused at the call.


# NOTE [a module's own forward]
# `module.forward = f` (accelerate's `add_hook_to_module` wraps a submodule's forward so,
# `types.MethodType(new, m)`, a lambda) makes `module(x)` run `f`, not the class's forward:
# a module call runs the instance's forward (`converted_call`, targets' `_convert`), and
# whether a module holds one is part of its structure (`_structure`'s last item), the one it
# holds guarded by identity (`_search_module`); the Function's own module's is keyed instead
# (`Function._extra`: autoconv sets one of its own there while its hooks run, `forward_set`).
# Set on a submodule after the first call (or on a leaf such as `nn.Linear`, whose forward
# runs as it is) it replayed the graph of the class's forward, silently (break43 s01). In the
# fast check a module traced without one is asked for the name in its `__dict__` with its
# empty tables (`_bare_still`), or alone (`_forwardless_still`) where it has submodules or
# hooks; its class and its class's forward are guarded by NOTE [a module's class] and NOTE [a
# module's class's forward].


# NOTE [a module's class]
# A module's class swapped under it (`model.gate.__class__ = Other`, its tables and fields
# unchanged) runs the new class's forward in Python, while every other guard holds: the graph
# of the old class's forward was replayed, silently (break43 s02). The class of each module
# the graph's code reached is guarded by identity, all of them in one C pipeline (`type` of
# each, compared by identity with the classes traced: about 4 µs for the seed model's 203
# modules, where a partial called per guard, as `_reads` are, was about 20); a class other than
# traced goes the slow way, which names the module and traces again. Torch's modules too:
# `m.act.__class__ = nn.Tanh` swaps one torch class for another.


# NOTE [modules with no submodules and no hooks]
# Most of a model's modules are leaves traced with no hooks (the seed model's 202 of 203): the
# structure guard of each expects (0, 0, 0, 0, 0, False). Their three tables are tested for
# emptiness, a truth test each in one Python loop over the modules' `__dict__`s (about 15 ns a table),
# where the counts' pipeline (a `dict.__getitem__`, a `len` and an int in a list compared
# with the expected one, each a C call through `map`) took about 33 ns: 20 -> 9 µs for the
# seed model's 606 tables, timed alone (replay42). A table is empty exactly where its length
# is 0, so each change the counts saw is seen: a hook registered or written into a table,
# a submodule added, a table rebound to a non-empty one (read through `__dict__` on every
# call, as the counts were); a table gone from `__dict__` raises KeyError, as it did. A
# forward of its own set on the module is seen in the same loop (NOTE [a module's own
# forward]).
def _bare_still(owners, grad: bool) -> bool:
    """Whether each module `__dict__` of `owners` still holds empty structure tables and no
    forward of its own (NOTE [a module's own forward]); with `grad`, empty backward hook
    tables too (NOTE [backward hooks set after the first call])."""
    if grad:
        for fields in owners:
            if fields["_modules"] or fields["_forward_hooks"] or fields["_forward_pre_hooks"] \
                    or "forward" in fields or fields["_backward_hooks"] \
                    or fields["_backward_pre_hooks"]:
                return False
        return True
    for fields in owners:
        if fields["_modules"] or fields["_forward_hooks"] or fields["_forward_pre_hooks"] \
                or "forward" in fields:
            return False
    return True


def _backwardless_still(owners) -> bool:
    """Whether each module `__dict__` of `owners` still holds empty backward hook tables
    (NOTE [backward hooks set after the first call])."""
    for fields in owners:
        if fields["_backward_hooks"] or fields["_backward_pre_hooks"]:
            return False
    return True


def _forwardless_still(owners) -> bool:
    """Whether no module `__dict__` of `owners` holds a forward (NOTE [a module's own
    forward])."""
    return not any(map(operator.contains, owners, itertools.repeat("forward")))


_HOOKS = ("_forward_pre_hooks", "_forward_hooks")


def _hook_items(module, table: str) -> tuple:
    return tuple(getattr(module, table).items())


_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks")


def _global_hooks() -> tuple:
    hooks = torch.nn.modules.module
    return (*hooks._global_forward_pre_hooks.items(), *hooks._global_forward_hooks.items())


def _reads_counts(guard: Guard) -> bool:
    """Whether `guard` reads exact ints (`len`, `_structure`), which `==` compares as
    `_same_value` does."""
    read = guard.read
    return isinstance(read, functools.partial) and read.func in (len, _structure)


def _reads_item(read) -> bool:
    """Whether `read` is `_item_reader`'s: `table.get(key, MISSING)` of a dict."""
    return (isinstance(read, functools.partial) and type(read.func) is types.BuiltinMethodType
            and isinstance(read.func.__self__, dict) and read.func.__name__ == "get"
            and len(read.args) == 2 and read.args[1] is _MISSING and not read.keywords)


def _reads_type(read) -> bool:
    """Whether `read` is `type(obj)` of one object (a module's class)."""
    return (isinstance(read, functools.partial) and read.func is type and len(read.args) == 1
            and not read.keywords)


def _reads_keys(guard: Guard) -> bool:
    read = guard.read
    return isinstance(read, functools.partial) and read.func is _keys


def _mode_differs(module, root) -> bool:
    return module.training is not root.training


# NOTE [state reached through a callable argument]
# A callable passed as an argument (`minimize(partial(f, data), x0)`, a closure over a config
# dict, a function with a default dict, a callable object holding a partial) is keyed by
# identity (a partial, a closure) or by its object's fields (NOTE [bound methods as
# arguments] in signature.py), never by what it reaches: the same partial called again after
# `data["scale"] = 0.1` replayed the graph traced with 2.0, silently (tester36 s01). What it
# reaches is guarded as a global's places are: a partial's arguments and keywords, a
# function's globals, closure cells and defaults, down to the callables they hold (a partial
# of a partial, a closure over a partial), so a changed value traces anew, as Python computes
# anew. (Where the callee itself changes that state, NOTE [objects reached through a callable]
# in runtime/staging/objects.py carries it through the graph; the next call, starting from
# the changed value, traces anew, as a number an argument object holds does.)


def _reaches_state(value) -> bool:
    """A callable whose reached state the signature does not key: a partial, a function or
    a method of a function (a callable object's fields are keyed as an argument object's)."""
    return isinstance(value, (functools.partial, types.FunctionType)) or (
        type(value) is types.MethodType and isinstance(value.__func__, types.FunctionType)
        and not keys_fields(value.__self__) and not isinstance(value.__self__, torch.nn.Module))


def _callable_names(fn) -> set:
    """The names the code under a callable reads (a partial's function's, a method's)."""
    wrapped = None
    for _ in range(8):
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            fn = fn.__func__
        elif _wrapped_function(fn) is not fn:  # NOTE [code behind a wrapper]
            fn = wrapped = _wrapped_function(fn)
        else:
            break
    if isinstance(fn, types.FunctionType):
        # (NOTE [containers a cached helper fills])
        return _code_names(fn.__code__) - (_only_filled(fn.__code__) if fn is wrapped else set())
    if isinstance(fn, (operator.attrgetter, operator.methodcaller)):
        return _getter_names((fn,))
    return _class_names(type(fn))  # (a callable object: what its methods read)


# NOTE [objects handed to helpers]
# A function's globals and closure cells are walked for the names its own code reads. An
# object it hands to a helper (`helper(x, CFG)`, the helper reading `c.k`) is read by the
# helper's code, under names the caller's code does not hold: `CFG.k = 5.0` between calls
# replayed the traced 2.0 ([2, 4] for Python's [5, 10]; a closure's object alike), silently
# (walk56). The names the user's functions it calls by name read (its globals' and cells'
# functions, to the helper depth) count as its own.
def _helper_names(fn, names, depth: int) -> set:
    found, todo, seen = set(), [(fn, names, depth)], {id(fn): depth}
    while todo:
        fn, names, depth = todo.pop()
        if depth <= 0:
            continue
        held = [fn.__globals__.get(name) for name in names]
        held += [_cell_value(cell) for cell in fn.__closure__ or ()]
        for outer in held:
            value = _wrapped_function(outer)  # NOTE [code behind a wrapper]
            if (isinstance(value, types.FunctionType) and not is_library_function(value)
                    and _deeper(seen, value, depth - 1)):
                more = _code_names(value.__code__)
                if value is not outer:  # (NOTE [containers a cached helper fills])
                    more -= _only_filled(value.__code__)
                found |= more
                todo.append((value, more, depth - 1))
    return found


# NOTE [code behind a wrapper]
# A cache's wrapper (`@functools.lru_cache`, `@functools.cache`: a functools._lru_cache_wrapper)
# is no function, so the search above stopped at it: the code it wraps, whose reads the trace
# runs past the cache (session 48), was never read for names. `@lru_cache def ramp(n): return
# torch.arange(n) * CFG.k` read in a staged `if`, then `CFG.k = 5.0; ramp.cache_clear()`,
# replayed the traced 2.0: [1, 3, 5] for Python's [1, 6, 11], silently (brk56b); so did
# `ramp.__wrapped__(3)`, the global read being the wrapper. A wrapper is followed to the
# function it names in its own `__dict__` as `__wrapped__` (as `functools.update_wrapper`
# sets it), a few deep; only the instance's dict is read, never `getattr`, which runs an
# object's `__getattr__` (a mock's answers any name). A `functools.wraps` wrapper is a
# function itself, its wrapped one reached through its closure cell.
def _wrapped_function(value):
    """The function behind `value`'s cache or other non-function wrapper, else `value`."""
    for _ in range(4):
        if isinstance(value, types.FunctionType):
            return value
        held = getattr(value, "__dict__", None)
        inner = held.get("__wrapped__") if type(held) is dict else None
        if inner is None:
            return value
        value = inner
    return value


# NOTE [containers a cached helper fills]
# Python runs a cached helper's body once per argument; the trace runs it past the cache
# (session 48), so a container the body fills (`_made.append(n)`, a log of cache misses) is
# filled again by each trace. Guarded as a value the code reads (its length, its items), that
# guard failed right after every trace, so no graph ever replayed ("changes it right after
# tracing", lru56's `test_cached_helpers` in tests/reference/test_brk48.py). A global or cell
# that the code behind a wrapper only calls a filling method on (`append`, `add`, `update`,
# ...: none returns what the container holds, so the graph cannot compute with it) is walked
# for its tensors only, watched for a value of the trace stored there (NOTE [trace values
# stored outside]) but never guarded by length or items; a container the code reads in any
# other way (`len(_made)`, `_made[-1]`, or another function's code naming it) is guarded
# as before.
_FILLING = frozenset({"append", "extend", "insert", "add", "update", "clear", "discard",
                      "appendleft", "extendleft"})


def _only_filled(code) -> frozenset:
    """The global and free variable names `code` (and the code nested in it) uses only to call
    a filling method of (`_made.append(n)`): NOTE [containers a cached helper fills]."""
    filled, read = set(), set()
    todo = [code]
    while todo:
        code = todo.pop()
        todo += [const for const in code.co_consts if isinstance(const, types.CodeType)]
        steps = list(dis.get_instructions(code))
        for step, after in zip(steps, steps[1:] + [None]):
            if step.opname not in ("LOAD_GLOBAL", "LOAD_DEREF", "LOAD_NAME"):
                continue
            if (after is not None and after.opname in ("LOAD_METHOD", "LOAD_ATTR")
                    and after.argval in _FILLING):
                filled.add(step.argval)
            else:
                read.add(step.argval)
    return frozenset(filled - read)


# NOTE [code reached at several depths]
# The search of the code a call reaches was depth-limited (NOTE [code reached at any
# depth] lifted the limit; `_deeper` still keeps each function to one search), and
# one function may be reached by several routes, at several depths: `deep0(x, CFG)` down to
# `deep3`, and `deep3` named by the function's own names too (a helper's names count as its
# own, NOTE [objects handed to helpers]). Each function was searched once, at the first
# route: reached first with no steps left, its helper (`deep4`, reading `c.k`) was never
# searched, and which route came first was the order of a set of names, the process's string
# hashes: `CFG.k = 5.0` between calls replayed the traced 2.0 ([2, 4] for Python's [5, 10]) in
# one process in six (PYTHONHASHSEED=6; the session 56 lead's full run), silently. A function
# is searched again where a route reaches it with more steps left (`_deeper`), so what is
# found is what the deepest route finds, in any order.
# NOTE [code reached at any depth]
# The search stopped three helpers down (`_HELPER_DEPTH` was 3, for cost): a field of a global
# read deeper was never guarded. Ten helpers down in one module (`d0(x, CFG)` ... `d9`
# returning `x * c.k`, or `d9` reading `CFG.k` itself), or four down through helpers in four
# modules (`m9.d` -> `m10.d` -> `m11.d` -> `m12.d`), `CFG.k = 5.0` between calls replayed the
# traced 2.0 ([2, 4] for Python's [5, 10]), silently (deep57). No depth is safe: any limit
# leaves the code past it unread. The user's code a call reaches is followed to any depth
# instead; each function is searched once (`_deeper` with no limit: the first route is the
# deepest), and library code (torch's, numpy's, the standard library's) is never followed, so
# the search is linear in the user's functions reached. Measured on tests/real and the seed
# model (docs/changelog.md, Session 57 deep57): guard counts and search time.
def _deeper(seen: dict, fn, depth: int) -> bool:
    """Whether `fn` is to be searched (again) with `depth` steps left: never searched, or
    only with fewer; records that it is (NOTE [code reached at several depths])."""
    if seen.get(id(fn), -1) >= depth:
        return False
    seen[id(fn)] = depth
    return True


def _getter_names(values) -> set:
    """The attribute and method names the `operator.attrgetter` / `methodcaller` objects among
    `values` read: names in no code (`GET = attrgetter("scale")`, then `GET(cfg)`; a change of
    `cfg.scale` between calls replayed the traced value: tester41 s10). Their constructor's
    arguments are what `__reduce__` gives back."""
    found = set()
    for value in values:
        if isinstance(value, operator.attrgetter):
            for path in value.__reduce__()[1]:
                found.update(path.split("."))
        elif isinstance(value, operator.methodcaller):
            maker, args = value.__reduce__()[:2]
            # (with keywords: a partial of methodcaller holding the name)
            name = (maker.args if isinstance(maker, functools.partial) else args)[:1]
            found.update(n for n in name if isinstance(n, str))
    return found


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:  # (an empty cell)
        return None


def _partial_arg(fn, index):
    return fn.args[index]


def _code_names(code) -> set:
    if code is None:
        return set()
    names = set(code.co_names)
    strings = set()
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
        elif isinstance(const, str) and const.isidentifier():
            # an attribute named by a string (`getattr(cfg, "use_bias", False)`, as published
            # configs are read): left out, `cfg.use_bias` changed between calls replayed the
            # traced value, silently (tester41 s07)
            strings.add(const)
    names |= strings
    if not _ASKS_BY_STRING.isdisjoint(code.co_names):
        _READ_WHERE_ABSENT.update(strings)  # NOTE [attributes read while absent]
    return names


_ASKS_BY_STRING = frozenset({"getattr", "hasattr"})
# the strings code passing them to `getattr` / `hasattr` holds: names it may read with a
# default, or ask about, where nothing is held (NOTE [attributes read while absent])
_READ_WHERE_ABSENT: set = set()


def _stored_trace_value(value) -> str:
    """"a tensor" for a tensor of a trace, "a number" for a symbolic number (a size only the
    graph knows, `len(torch.nonzero(x))`, or `int(x.sum())`), else "" (NOTE [trace values
    stored outside])."""
    if is_trace_value(value):
        return "a tensor"
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return "a number"
    return ""


def is_trace_value(value) -> bool:
    """True for a tensor of a trace (fake or functional), which must never outlive it."""
    from torch._subclasses.functional_tensor import FunctionalTensor

    return isinstance(value, (torch._subclasses.FakeTensor, FunctionalTensor))


def _constants(graph_module):
    """(module, node, tensor) for every get_attr of a real tensor in the graph and subgraphs."""
    for owner in graph_module.modules():
        if not isinstance(owner, torch.fx.GraphModule):
            continue
        for node in owner.graph.find_nodes(op="get_attr"):
            value = getattr(owner, node.target, None)
            if isinstance(value, torch.Tensor) and not is_trace_value(value):
                yield owner, node, value


def guards_for(graph_module, places: Places, values_read=()) -> tuple:
    """The guards of a graph traced with `places` made as its trace began: the captured
    tensors found at those places, the Python values there, and `values_read`
    ([(tensor, method, value)]: `.item()` and the like of a tensor from outside the function
    while tracing, see `outside_writes.values_read`)."""
    constants = [value for _, node, value in _constants(graph_module)
                 if not graph_passes._made_by_function(node)]
    constants += [tensor for tensor, _, _ in values_read]
    guards, done = {}, set()  # (an ordered set: the objects on a place's path come first)

    def add(guard, parents):
        for parent in parents:
            guards.setdefault(id(parent), parent)
        guards.setdefault(id(guard), guard)

    for value in constants:
        place = places.tensors.get(id(value))
        if place is not None and id(value) not in done:
            done.add(id(value))
            add(Guard(place[0], place[1], value), place[2])
            # (each other route too: the graph reads it through one of them, maybe not the
            # first; NOTE [objects reached by two routes])
            for where, read, parents in places.routes.get(id(value), ()):
                add(Guard(where, read, value), parents)
    for guard, parents in places.values.values():
        add(guard, parents)
    guards = list(guards.values())
    for tensor, method, value in values_read:
        place = places.tensors.get(id(tensor))
        where = place[0] if place is not None else "a tensor from outside the function"
        guards.append(Guard(f"{method.__name__}() of {where}", functools.partial(method, tensor),
                            value, by_value=True, fresh=True))
    return tuple(guards)
