"""An autoconv trace's CPU with and without fx's `nn.Module` patches (NOTE [fx's module
patches skipped in autoconv's traces]), side by side in one process.

    OMP_NUM_THREADS=1 python benchmarks/module_patches.py [EXTRA_CLASSES] [ROUNDS]

Defines EXTRA_CLASSES (default 1000) empty `nn.Module` subclasses (a process that imported a
library of modules: kornia adds 469), then, ROUNDS times, traces three programs with fresh
`autoconv.autoconv` functions, once as autoconv now does (patches skipped) and once with fx's
patches (`capture.unpatched_modules` replaced by a null context), taking turns, the order
reversed every other round. Prints the `nn.Module` subclass count, each way's CPU ms a round
(`time.process_time`: min / median) and the ratio of the medians, with the load average.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time

import torch

import autoconv
from autoconv import capture


def nested(x):
    if x.sum() > 0:
        if x.max() > 2:
            x = x * 2
        else:
            x = x - 1
    else:
        x = -x
    return x


def loop(x):
    i = 0
    while x.sum() < 100:
        x = x * 2 + 1
        i += 1
    return x, i


def module_branch(x):
    layer = LAYER
    if x.mean() > 0:
        return layer(x)
    return layer(-x) * 2


LAYER = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4))
PROGRAMS = (nested, loop, module_branch)


def _subclasses(cls=torch.nn.Module) -> int:
    seen, todo = set(), [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return len(seen)


def _round(skip: bool) -> float:
    if not skip:
        capture.unpatched_modules = contextlib.nullcontext
    x = torch.ones(4)
    start = time.process_time()
    for program in PROGRAMS:
        autoconv.autoconv(program)(x)
    spent = time.process_time() - start
    capture.unpatched_modules = SKIP
    return spent * 1e3


SKIP = capture.unpatched_modules


def main(extra: int, rounds: int) -> None:
    kept = [type(f"Extra{i}", (torch.nn.Module,), {}) for i in range(extra)]
    print(f"nn.Module subclasses: {_subclasses()} ({len(kept)} defined here); "
          f"load average {os.getloadavg()[0]:.1f}")
    _round(True), _round(False)  # warm up
    times = {True: [], False: []}
    for r in range(rounds):
        for skip in ((True, False) if r % 2 else (False, True)):
            times[skip].append(_round(skip))
    for skip, label in ((False, "fx's patches (before)"), (True, "patches skipped (after)")):
        print(f"{label:26} {min(times[skip]):7.1f} / {statistics.median(times[skip]):7.1f} ms "
              f"a round of {len(PROGRAMS)} traces (min / median)")
    print(f"after / before (medians): "
          f"{statistics.median(times[True]) / statistics.median(times[False]):.3f}; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 10)
