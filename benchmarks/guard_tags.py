"""The per-call captures check with and without the dicts' version tags (NOTE [dict version
tags] in autoconv/captures.py), side by side in one process.

Two `Function`s of the same workload (benchmarks/loops.py), one whose graphs check every place
by the C pipelines on every call ("pipelines", as before session 38) and one that checks the
dicts' tags ("tags"), with eager and TorchScript; one call of each in turn per round, in CPU
time (replay_ab.interleaved); min, 10th percentile and median, with the ratio to eager's.

    python benchmarks/guard_tags.py WORKLOAD [ROUNDS]    # e.g. "seed model" 300
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
from autoconv import captures  # noqa: E402
import loops  # noqa: E402
from replay_ab import interleaved, report  # noqa: E402


def _without_tags(function) -> None:
    for concrete in function.concrete_functions:
        if concrete._captured:
            concrete._captured._tags, concrete._captured._tag_wait = None, -1


def run(which: str, rounds: int = 300) -> dict:
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    label, make, make_args = next((w[0], w[1], w[2]) for w in sorted(
        loops.WORKLOADS, key=lambda w: w[0] != which) if which in w[0])
    fn, args = make(), make_args()
    expected = fn(*args)
    pipelines, tags = autoconv.autoconv(fn), autoconv.autoconv(fn)
    pipelines(*args)
    _without_tags(pipelines)
    for _ in range(captures._TAG_WAIT + 1):  # (until the tags are taken)
        tags(*args)
    variants = {"eager": fn, "pipelines": pipelines, "tags": tags,
                "TorchScript": torch.jit.script(fn)}
    for name, variant in variants.items():
        assert loops._same(variant(*args), expected), name
    times = interleaved(variants, args, rounds)
    print(f"{label}: load {os.getloadavg()[0]:.2f}; {rounds} rounds of one call each; CPU time "
          "per call (ratio to eager)")
    return report(times)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
