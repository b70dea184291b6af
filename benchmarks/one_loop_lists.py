"""Lists grown by a `while` with no bound (issue 12): the python backend's replay with one loop
(autoconv/grown_lists.py) against the same graph replayed with both, the counting loop and the
real one (the pass left out of the lowering), and eager, in CPU time.

Each round times `--calls` calls of each variant in turn (`time.thread_time`: other jobs'
time slices do not count), one torch thread, grad off; printed: the median over the rounds of
the per-round ratio to eager, and the median time per call.

    python benchmarks/one_loop_lists.py [ROUNDS]
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
from autoconv import grown_lists, python_backend  # noqa: E402


halvings = loops.halvings


WORKLOADS = [
    ("gru_greedy (until EOS, no bound), 17 tokens", loops._unbounded_decoder(),
     (torch.randn(32, generator=torch.Generator().manual_seed(1)),), 20),
    ("halvings of 3000 (12 trips)", halvings, (torch.tensor(3000.0),), 50),
    ("halvings of 1e30 (100 trips)", halvings, (torch.tensor(1e30),), 20),
]


def _two_loops(fn, args):
    """autoconv(fn) whose runner was built without `grow_in_loops`: both loops run."""
    kept = python_backend._LOWERING
    python_backend._LOWERING = tuple(r for r in kept if r is not grown_lists.grow_in_loops)
    try:
        f = autoconv.autoconv(fn)
        f(*args)
    finally:
        python_backend._LOWERING = kept
    source = f.concrete_functions[0]._runner.__autoconv_source__
    assert source.count("while True:") >= 2, source  # (a scalar counting loop: two forms)
    return f


def main(rounds: int = 15) -> None:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at start")
    for label, fn, args, calls in WORKLOADS:
        one = autoconv.autoconv(fn)
        one(*args)
        # (a loop of numbers has two forms: Python numbers, and the tensor loop for grad)
        source = one.concrete_functions[0]._runner.__autoconv_source__
        assert source.count("while True:") == 1 + ("_put_row(" in source), source
        variants = [("eager", fn), ("two loops", _two_loops(fn, args)), ("one loop", one)]
        want = fn(*args)
        for name, run in variants:
            assert torch.equal(run(*args), want), name
        times = {name: [] for name, _ in variants}
        for _ in range(rounds):
            for name, run in variants:
                start = time.thread_time()
                for _ in range(calls):
                    run(*args)
                times[name].append((time.thread_time() - start) / calls)
        eager = times["eager"]
        cells = [f"{name} {statistics.median(a / e for a, e in zip(t, eager)):.2f}x "
                 f"({statistics.median(t) * 1e6:.0f} µs)" for name, t in times.items()]
        print(f"{label}: " + ", ".join(cells))
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
