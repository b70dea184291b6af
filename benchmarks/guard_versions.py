"""What a check of a module's state by CPython's dict version tags would cost, against the
generated check autoconv runs (NOTE [guards checked by generated code] in
autoconv/captures.py), on the seed model (docs/benchmarks.md, "Session 52").

An experiment, not a part of autoconv: every dict a module's graph depends on (each module's
`__dict__` and its five tables) changes its version tag (PEP 509, `ma_version_tag`, CPython
3.11) at every write, and each module's class is its `ob_type`. Read

    generated check   the graph's own check (`GuardSet.check`), all its 716 guards
    dict_version      torch's `torch._C._dynamo.guards.dict_version` of each dict, a C call
                      a dict through `map`, the versions compared as a list
    C helper          a 10-line C function (built here with the system's C compiler, called
                      through ctypes) comparing every dict's tag and every module's class
                      with the expected ones in one call

each timed in tight loops (`timeit`, min of 100 loops of 20) and cold (an eager call of the model before each
timed call; wall, min / p10 / median). The C helper is first checked to see a field written
into a module's `__dict__`, a hook written into a table and a class changed. Exits without
figures where there is no C compiler or the Python is not 3.11 (other versions lay the dict
out otherwise).

    python benchmarks/guard_versions.py [ROUNDS]
"""

from __future__ import annotations

import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402

_HELPER = r"""
#include <stdint.h>
/* 1 where every dict's version tag (PyDictObject.ma_version_tag, CPython 3.11: offset 24) and
   every object's type (ob_type, offset 8) is the expected one */
int held(void **dicts, const uint64_t *versions, long n, void **objs, void **types, long m) {
    for (long i = 0; i < n; i++)
        if (*(const uint64_t *)((const char *)dicts[i] + 24) != versions[i]) return 0;
    for (long i = 0; i < m; i++)
        if (*(void *const *)((const char *)objs[i] + 8) != types[i]) return 0;
    return 1;
}
"""
_TABLES = ("_modules", "_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
           "_backward_pre_hooks")


def _helper(folder: str):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source, library = os.path.join(folder, "held.c"), os.path.join(folder, "held.so")
    with open(source, "w") as f:
        f.write(_HELPER)
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    held = ctypes.CDLL(library).held
    held.restype = ctypes.c_int
    held.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_long] + [ctypes.c_void_p] * 2 + [
        ctypes.c_long]
    return held


def run(rounds: int = 300) -> None:
    if sys.version_info[:2] != (3, 11):
        print("the C helper reads CPython 3.11's dict layout: no figures on", sys.version)
        return
    from torch._C._dynamo.guards import dict_version
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    _, make, make_args = next(w[:3] for w in loops.WORKLOADS if w[0] == "seed model")
    model, args = make(), make_args()
    function = autoconv.autoconv(model)
    for _ in range(40):  # (past the guards' first calls: the check spelt out)
        function(*args)
    guards = function._last_graph(function._last, args)._captured
    modules = list(model.modules())
    dicts = [d for m in modules for d in (m.__dict__, *(m.__dict__[t] for t in _TABLES))]
    with tempfile.TemporaryDirectory() as folder:
        held = _helper(folder)
        if held is None:
            print("no C compiler: no figures")
            return
        pointers = (ctypes.c_void_p * len(dicts))(*map(id, dicts))
        objects = (ctypes.c_void_p * len(modules))(*map(id, modules))
        classes = (ctypes.c_void_p * len(modules))(*(id(type(m)) for m in modules))
        versions = None

        def take():
            nonlocal versions
            versions = (ctypes.c_uint64 * len(dicts))(*map(dict_version, dicts))

        def helper():
            return held(pointers, versions, len(dicts), objects, classes, len(modules))

        take()
        assert helper() == 1
        seen = []
        leaf = modules[3]
        leaf.__dict__["in_features"] = 65
        seen.append(helper())
        leaf.__dict__["in_features"] = 64
        take()
        leaf._forward_hooks[-1] = print
        seen.append(helper())
        del leaf._forward_hooks[-1]
        take()
        kind = type(leaf)
        leaf.__class__ = torch.nn.Tanh
        seen.append(helper())
        leaf.__class__ = kind
        take()
        assert seen == [0, 0, 0] and helper() == 1, seen
        expected = [*map(dict_version, dicts)]
        variants = {
            "generated check": guards.check,
            "dict_version": lambda: [*map(dict_version, dicts)] == expected,
            "C helper": helper,
        }
        print(f"seed model: {len(guards.guards)} guards; {len(dicts)} dicts, {len(modules)} "
              f"modules; load {os.getloadavg()[0]:.2f}")
        for name, call in variants.items():
            # (short loops, many: the min of a long one is preempted on a loaded machine)
            tight = min(timeit.repeat(call, number=20, repeat=100)) / 20
            print(f"  tight {name:16s} {tight * 1e6:7.1f} µs")
        times = {name: [] for name in variants}
        order = list(variants.items())
        for round_ in range(rounds):
            for name, call in (order if round_ % 2 else reversed(order)):
                model(*args)
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        print(f"cold, {rounds} rounds, wall µs (min / p10 / median), load "
              f"{os.getloadavg()[0]:.2f}")
        for name, values in times.items():
            values.sort()
            print(f"  {name:16s} {values[0] * 1e6:7.1f} {values[len(values) // 10] * 1e6:7.1f} "
                  f"{statistics.median(values) * 1e6:7.1f}")


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
