"""Before / after of the python backend on one loop workload, side by side in one process.

"before" is the python backend of a git revision (its python_backend.py and the passes it
imports, graph_passes / rnn_cells / scalar_loops / grown_lists, loaded from `git show REV:...` as a
separate package), "after" the working tree's; both compile the same traced graph of the
workload (benchmarks/loops.py), and the `Function` runs with one or the other as its runner.
Each round times one call of eager, before, after and TorchScript in turn (every other round
in the reverse order), in CPU time (`time.process_time`: other jobs' time slices do not count,
their cache traffic does); min, 10th percentile and median per variant, with the ratio to
eager's.

    python benchmarks/replay_ab.py REV WORKLOAD [ROUNDS]    # e.g. main gru 300

WORKLOAD is a word of a label of loops.py's workloads, or `count_to` (its per-iteration
loop, float16: a tensor loop, 1000 trips a call).
"""

from __future__ import annotations

import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402
from autoconv import python_backend  # noqa: E402

_MODULES = ("python_backend", "graph_passes", "rnn_cells", "scalar_loops", "grown_lists")


def backend_at(revision: str):
    """The python_backend module of git `revision`, imported as `_backend_<rev>`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = tempfile.mkdtemp()
    name = "_backend_" + "".join(c if c.isalnum() else "_" for c in revision)
    os.makedirs(os.path.join(folder, name))
    open(os.path.join(folder, name, "__init__.py"), "w").close()
    for module in _MODULES:
        text = subprocess.run(["git", "show", f"{revision}:autoconv/{module}.py"], cwd=root,
                              check=True, capture_output=True, text=True).stdout
        with open(os.path.join(folder, name, f"{module}.py"), "w") as f:
            f.write(text)
    sys.path.insert(0, folder)
    return importlib.import_module(f"{name}.python_backend")


def run(revision: str, which: str, rounds: int = 300) -> dict:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    workloads = loops.WORKLOADS + [(
        "count_to(1000), float16 (a tensor loop)", lambda: loops.count_to,
        lambda: (torch.full((), loops.ITERATIONS, dtype=torch.float16),))]
    # (a label that is `which` itself first: "seed model" is also in "branchy seed model")
    label, make, make_args = next((w[0], w[1], w[2]) for w in sorted(
        workloads, key=lambda w: w[0] != which) if which in w[0])
    fn, args = make(), make_args()
    expected = fn(*args)
    function = autoconv.autoconv(fn)
    function(*args)
    concrete = function.concrete_functions[0]
    runners = {"before": backend_at(revision).build(concrete.graph_module),
               "after": python_backend.build(concrete.graph_module)}
    scripted = torch.jit.script(fn)

    def with_runner(runner):
        def call(*a):
            concrete._runner = runner
            return function(*a)
        return call

    variants = {"eager": fn, "before": with_runner(runners["before"]),
                "after": with_runner(runners["after"]), "TorchScript": scripted}
    for name, variant in variants.items():
        assert loops._same(variant(*args), expected), name
    times = side_by_side(variants, args, rounds)
    return summary(times, f"{label}: before = {revision}, after = working tree", rounds, 1)


def side_by_side(variants: dict, args: tuple, rounds: int, calls: int = 1) -> dict:
    """{name: CPU seconds per call, one per round} of each of `variants` called on `args`,
    `calls` times a round, in turn. Every other round runs them in the reverse order: the one
    after eager was slowed by eager's traffic through the caches (speed34: the same code in
    both slots read 596 and 565 µs, gru_greedy, load 15)."""
    times = {name: [] for name in variants}
    order = list(variants.items())
    for round_ in range(rounds):
        for name, variant in order if round_ % 2 else order[::-1]:
            start = time.process_time()
            for _ in range(calls):
                variant(*args)
            times[name].append((time.process_time() - start) / calls)
    return times


def summary(times: dict, title: str, rounds: int, calls: int, digits: int = 0) -> dict:
    """Prints and returns each variant's min, 10th percentile and median (seconds) with its
    ratio to eager's, and the load."""
    load = os.getloadavg()[0]
    print(f"{title}; load {load:.2f}; {rounds} rounds of {calls} call(s) each; CPU time per "
          "call (ratio to eager)")
    eager = sorted(times["eager"])
    base = {"min": eager[0], "p10": eager[len(eager) // 10], "median": statistics.median(eager)}
    result = {"load": load}
    for name, values in times.items():
        values = sorted(values)
        row = {"min": values[0], "p10": values[len(values) // 10],
               "median": statistics.median(values)}
        print(f"  {name:12s} " + "  ".join(f"{k} {v * 1e6:{7 + digits}.{digits}f} µs "
                                           f"({v / base[k]:.3f}x)" for k, v in row.items()))
        result[name] = row
    return result


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 300)
