"""What keying a numpy array argument by its values costs a replayed call (NOTE [numpy arrays
keyed by their values] in autoconv/signature.py), side by side in one process: eager Python,
autoconv given the array, and autoconv given `torch.from_numpy(a)` (a graph input, read on each
call), for arrays of 1,000 and 1,000,000 float64s. CPU time per call (`time.process_time`),
min, 10th percentile and median, ratios to eager's, with the load.

    python benchmarks/numpy_keys.py [ROUNDS]
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import replay_ab  # noqa: E402


def scaled(a, x):
    return x * a[0]


def main(rounds: int = 100) -> None:
    torch.set_num_threads(1)
    x = torch.ones(3)
    for n in (1_000, 1_000_000):
        a = np.ones(n)
        t = torch.from_numpy(a)
        given_array, given_tensor = autoconv.autoconv(scaled), autoconv.autoconv(scaled)
        variants = {"eager": lambda: scaled(a, x), "array": lambda: given_array(a, x),
                    "tensor": lambda: given_tensor(t, x)}
        for variant in variants.values():
            variant()
            variant()
        calls = 20 if n > 1_000 else 200
        times = replay_ab.side_by_side(variants, (), rounds, calls)
        replay_ab.summary(times, f"f(a, x), a of {n:,} float64", rounds, calls, digits=1)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
