"""The python backend's generated function of one loops.py workload with a lowering pass of
python_backend.py on and off, side by side in one process: what the pass saves in the graph
alone, without the call's path around it.

Both functions are built from the same traced graph by the working tree's backend, one with
the named passes made to change nothing (a pass returning the modules it changed returns
none), and called on the same inputs (parameters read beforehand); each round times each in
turn, every other round in the reverse order; wall time (`perf_counter`), min / p10 /
median. COLD=1: an eager call of the workload before each timed call (the graph's objects out
of the near caches, as in a program doing other work between calls).

    python benchmarks/pass_ab.py WORKLOAD ROUNDS PASS [PASS ...]
        # e.g. "branchy seed model" 1000 predicates_as_numbers
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402
from autoconv import python_backend  # noqa: E402


def run(which: str, rounds: int, passes: list[str], cold: bool = False) -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    label, make, make_args = next((w[0], w[1], w[2]) for w in sorted(
        loops.WORKLOADS, key=lambda w: w[0] != which) if which in w[0])
    fn, args = make(), make_args()
    function = autoconv.autoconv(fn)
    function(*args)
    concrete = function.concrete_functions[0]
    inputs = (concrete._state.read() if concrete._state is not None else []) + \
        [args[i] for i in concrete._tensor_slots]
    variants = {"with the passes": python_backend.build(concrete.graph_module)}
    saved = {name: getattr(python_backend, name) for name in passes}
    try:
        for name in passes:
            setattr(python_backend, name, lambda *a, **k: set())
        variants["without " + ", ".join(passes)] = python_backend.build(concrete.graph_module)
    finally:
        for name, value in saved.items():
            setattr(python_backend, name, value)
    expected = fn(*args)
    for name, variant in variants.items():
        outputs = variant(*inputs)
        assert loops._same(outputs[0] if len(outputs) == 1 else tuple(outputs), expected), name
    times = {name: [] for name in variants}
    order = list(variants.items())
    for round_ in range(rounds):
        for name, variant in order if round_ % 2 else order[::-1]:
            if cold:
                fn(*args)
            start = time.perf_counter()
            variant(*inputs)
            times[name].append(time.perf_counter() - start)
    print(f"{label}, {'cold' if cold else 'warm'}: load {os.getloadavg()[0]:.2f}, {rounds} "
          "rounds, the graph's function alone, wall µs (min / p10 / median)")
    for name, values in times.items():
        values.sort()
        print(f"  {name:40s} {values[0] * 1e6:8.1f} {values[len(values) // 10] * 1e6:8.1f} "
              f"{statistics.median(values) * 1e6:8.1f}")


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), sys.argv[3:], os.environ.get("COLD") == "1")
