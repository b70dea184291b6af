"""The `Function` layer of a git revision against the working tree's, side by side in one
process: what a replayed call costs around the same kind of graph.

"before" is `autoconv` of git revision REV (its `autoconv/` package, from `git archive`,
imported as a separate package; the runtime, `autoconv_runtime`, is the working tree's for
both), "after" the working tree's. Each round times one call of eager, before, after and
TorchScript in turn (every other round in the reverse order), in CPU time
(`time.process_time`); min, 10th percentile and median per variant, with the ratio to eager's.
Workloads: loops.py's (a word of a label), or call_overhead.py's `small` / `module` (tiny
graphs: the Function's own work is most of the call; timed in loops of 200 calls, as one call
is near the clock's resolution).

    python benchmarks/dispatch_ab.py REV WORKLOAD [ROUNDS]    # e.g. main "seed model" 300
"""

from __future__ import annotations

import importlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import call_overhead  # noqa: E402
import loops  # noqa: E402
import replay_ab  # noqa: E402


def autoconv_at(revision: str):
    """The `autoconv` package of git `revision`, imported as `_autoconv_<rev>`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = tempfile.mkdtemp()
    name = "_autoconv_" + "".join(c if c.isalnum() else "_" for c in revision)
    archive = subprocess.run(["git", "archive", revision, "autoconv"], cwd=root, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    os.rename(os.path.join(folder, "autoconv"), os.path.join(folder, name))
    sys.path.insert(0, folder)
    return importlib.import_module(name)


def _workload(which: str):
    small = {label: (eager, args) for label, eager, _, args in call_overhead.cases()}
    if which in small:
        fn, args = small[which]
        return which, fn, args, 200
    label, make, make_args = next((w[0], w[1], w[2]) for w in sorted(
        loops.WORKLOADS, key=lambda w: w[0] != which) if which in w[0])
    return label, make(), make_args(), 1


def run(revision: str, which: str, rounds: int = 300) -> dict:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    before = autoconv_at(revision)
    label, fn, args, calls = _workload(which)
    expected = fn(*args)
    functions = {"before": before.autoconv(fn), "after": autoconv.autoconv(fn)}
    scripted = torch.jit.script(fn)
    variants = {"eager": fn, **functions, "TorchScript": scripted}
    for name, variant in variants.items():
        assert loops._same(variant(*args), expected), name
    times = replay_ab.side_by_side(variants, args, rounds, calls)
    assert all(function.trace_count == 1 for function in functions.values())
    return replay_ab.summary(times, f"{label}: before = {revision}, after = working tree",
                             rounds, calls, digits=2)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 300)
