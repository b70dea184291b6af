"""torch's C++ guard managers (what dynamo builds its guards with) as the check of a graph's
guards, against the generated check autoconv runs (NOTE [guards checked by generated code] in
autoconv/captures.py), on the seed model (docs/benchmarks.md, "Session 53 (guard53)").

An experiment, not a part of autoconv. `manager_of(guards)` builds a
`torch._C._dynamo.guards.RootGuardManager` that holds where every condition of the generated
check holds (it may fail more often: a failure sends the call to the pipelines, which decide):

    items           a dict's item the very object: DICT_GETITEM accessor + ID_MATCH; an
                    absence: DICT_CONTAINS(False)
    whole tables    each key and value of a dict the very object, in order: a DictGuardManager's
                    key / value managers by index + ID_MATCH
    reads           `read()` the very object: a lambda accessor (a Python call) + ID_MATCH
    types           `type(m) is C`: TYPE_MATCH
    counts          `len(table) == n`: DICT_LENGTH / LENGTH_CHECK
    bare modules    each structure and hook table a dict of its type and empty, no `forward`
                    in the module's `__dict__`: TYPE_MATCH + DICT_LENGTH(0) + DICT_CONTAINS

Each anchor object (a dict, a module) is an item of one tuple the root is checked on, so
the root reads the same objects the generated check holds as its defaults. Before timing,
both are checked to fail on a hook written into a leaf's table, a field written into a leaf's
`__dict__` and a class changed, and to hold again once each is undone. Then each is timed
in tight loops (`timeit`, min of 100 loops of 20) and cold (an eager call of the model before
each timed call, the variants in turn; wall, min / p10 / median), with its build time.

    python benchmarks/guard_managers.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import timeit

import torch
from torch._C._dynamo.guards import RootGuardManager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402
from autoconv import captures  # noqa: E402


def manager_of(guards: captures.GuardSet):
    """(root, anchors): `root.check(anchors)` is True only where `guards._fast()` is."""
    from torch._dynamo.guards import GuardManagerType

    plain, keyed = GuardManagerType.GUARD_MANAGER, GuardManagerType.DICT_GUARD_MANAGER
    root, anchors, managers = RootGuardManager(), [], {}
    say = ["guard53"]  # (the verbose code parts: never read here)

    def anchor(obj, kind=plain):
        if (id(obj), kind) not in managers:
            managers[id(obj), kind] = root.tuple_getitem_manager(
                len(anchors), f"_v{len(anchors)}", obj, kind)
            anchors.append(obj)
        return managers[id(obj), kind]

    def length(manager, value, count):
        if isinstance(value, dict):
            manager.add_dict_length_check_guard(count, say, None)
        else:
            manager.add_length_check_guard(count, say, None)

    for table, key, expected in zip(guards._items, guards._item_keys, guards._item_expected):
        if expected is captures._MISSING:
            anchor(table).add_dict_contains_guard(False, key, say, None)
        else:
            anchor(table).dict_getitem_manager(key, "", expected, plain).add_id_match_guard(
                id(expected), say, None)
    values = iter(guards._whole_expected)
    for table in guards._whole:
        for index, value in enumerate(table.values()):
            anchor(table, keyed).get_value_manager(index, "", value, plain).add_id_match_guard(
                id(next(values)), say, None)
    keys = iter(guards._whole_key_expected)
    for table in guards._whole_keys:
        for index, key in enumerate(table):
            anchor(table, keyed).get_key_manager(index, "", key, plain).add_id_match_guard(
                id(next(keys)), say, None)
    keys = iter(guards._keys)
    for table in guards._tables:
        for index, key in enumerate(table):
            anchor(table, keyed).get_key_manager(index, "", key, plain).add_id_match_guard(
                id(next(keys)), say, None)
    for read, expected in zip(guards._reads, guards._expected):
        root.lambda_manager(lambda _, read=read: read(), "", expected, plain
                            ).add_id_match_guard(id(expected), say, None)
    for obj, cls in zip(guards._typed, guards._types):
        anchor(obj).add_type_match_guard(id(cls), say, None)
    pairs = len(guards._owners)
    for owner, name, count in zip(guards._owners, guards._names, guards._counts):
        length(anchor(owner).dict_getitem_manager(name, "", owner[name], plain), owner[name],
               count)
    for values_, count in zip(guards._lists, guards._counts[pairs:]):
        length(anchor(values_), values_, count)
    # (the backward tables empty whatever the grad mode: stricter than the generated check)
    for fields in (*guards._bare, *guards._backwardless):
        tables = captures._BACKWARD if fields in guards._backwardless else (
            captures._STRUCTURE + captures._BACKWARD)
        for name in tables:
            table = anchor(fields).dict_getitem_manager(name, "", fields[name], plain)
            table.add_type_match_guard(id(type(fields[name])), say, None)
            table.add_dict_length_check_guard(0, say, None)
    for fields in (*guards._bare, *guards._forwardless):
        anchor(fields).add_dict_contains_guard(False, "forward", say, None)
    return root, tuple(anchors)


def run(rounds: int = 300) -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    _, make, make_args = next(w[:3] for w in loops.WORKLOADS if w[0] == "seed model")
    model, args = make(), make_args()
    function = autoconv.autoconv(model)
    for _ in range(40):  # (past the guards' first calls: the check spelt out)
        function(*args)
    guards = function._last_graph(function._last, args)._captured
    start = time.perf_counter()
    root, anchors = manager_of(guards)
    built = time.perf_counter() - start

    def both() -> tuple:
        return guards._fast(), root.check(anchors)

    assert both() == (True, True)
    leaf, seen = model[3], []
    leaf._forward_hooks[-1] = print
    seen.append(both())
    del leaf._forward_hooks[-1]
    seen.append(both())
    model[2].__dict__["inplace"] = True
    seen.append(both())
    model[2].__dict__["inplace"] = False
    seen.append(both())
    kind = type(leaf)
    leaf.__class__ = torch.nn.Tanh
    seen.append(both())
    leaf.__class__ = kind
    seen.append(both())
    assert seen == [(False, False), (True, True)] * 3, seen
    variants = {"generated check": guards._fast, "C++ guard manager": lambda: root.check(anchors)}
    print(f"seed model: {len(guards.guards)} guards, {len(anchors)} anchors; the manager built "
          f"in {built * 1e3:.1f} ms; load {os.getloadavg()[0]:.2f}")
    tight = {}
    for name, call in variants.items():
        # (short loops, many: the min of a long one is preempted on a loaded machine)
        tight[name] = min(timeit.repeat(call, number=20, repeat=100)) / 20
    for name, value in tight.items():
        print(f"  tight {name:18s} {value * 1e6:7.1f} µs  "
              f"{value / tight['generated check']:.2f}x")
    times = {name: [] for name in variants}
    order = list(variants.items())
    for round_ in range(rounds):
        for name, call in (order if round_ % 2 else reversed(order)):
            model(*args)
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    print(f"cold, {rounds} rounds, wall µs (min / p10 / median; ratio of the min), load "
          f"{os.getloadavg()[0]:.2f}")
    base = min(times["generated check"])
    for name, values in times.items():
        values.sort()
        print(f"  {name:18s} {values[0] * 1e6:7.1f} {values[len(values) // 10] * 1e6:7.1f} "
              f"{statistics.median(values) * 1e6:7.1f}  {values[0] / base:.2f}x")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
