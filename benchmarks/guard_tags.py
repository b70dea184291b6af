"""The per-call captures check with and without the dicts' version tags (NOTE [dict version
tags] in autoconv/captures.py), side by side in one process.

Two `Function`s of the same workload (benchmarks/loops.py), one whose graphs check every place
by the C pipelines on every call ("pipelines", as before session 38) and one that checks the
dicts' tags ("tags"), with eager and TorchScript; one call of each in turn per round, in CPU
time (replay_ab.interleaved), then 20 calls of each in turn; min, 10th percentile and median,
with the ratio to eager's. WORKLOAD is a word of a label of loops.py's workloads, or
`layers:N:W` (N x (Linear(W) + ReLU) in a Sequential, input [4, W]).

    python benchmarks/guard_tags.py WORKLOAD [ROUNDS]    # e.g. "seed model" 300, layers:30:16
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
    if which.startswith("layers:"):
        _, count, width = which.split(":")
        label, fn, args = f"{count} x (Linear({width}) + ReLU)", _layers(int(count), int(width)), (
            torch.randn(4, int(width), generator=torch.Generator().manual_seed(0)),)
    else:
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
    result = {}
    for burst in (1, 20):
        times = interleaved(variants, args, rounds, burst)
        print(f"{label}: load {os.getloadavg()[0]:.2f}; {rounds} rounds of {burst} call(s) "
              "each; CPU time per call (ratio to eager)")
        result[burst] = report(times)
    return result


def _layers(count: int, width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = []
    for _ in range(count):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers).eval()


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
