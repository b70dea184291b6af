"""What conversions pay the garbage collector: the mean CPU time of many conversions from
scratch, collections included, and the collections they start, by generation (gc callbacks
timing each one), in a process with torch imported (its objects are what a full collection
walks). NOTE [no garbage collection during a conversion] in autoconv/conversion.py.

    python benchmarks/conversion_gc.py [ROUNDS]
    # before: another checkout's autoconv/ first on the path
    PYTHONPATH=/tmp/before python benchmarks/conversion_gc.py   (run from outside the checkout)
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402,F401  (imported as a user's program has it)

import sample_functions  # noqa: E402

from autoconv import conversion  # noqa: E402


def _fresh(fn):
    conversion._code_cache = type(conversion._code_cache)()
    return conversion.convert_function(fn)


def run(rounds: int = 40) -> dict:
    warnings.simplefilter("ignore")
    functions = sample_functions.CONVERSION_SAMPLES
    for fn in functions:
        _fresh(fn)
    count, spent, started = collections.Counter(), collections.Counter(), [0.0]

    def watch(phase, info):
        if phase == "start":
            started[0] = time.thread_time()
        else:
            count[info["generation"]] += 1
            spent[info["generation"]] += time.thread_time() - started[0]

    gc.callbacks.append(watch)
    try:
        start = time.thread_time()
        for _ in range(rounds):
            for fn in functions:
                _fresh(fn)
        total = time.thread_time() - start
    finally:
        gc.callbacks.remove(watch)
    n = rounds * len(functions)
    print(f"== {n} conversions, load {os.getloadavg()[0]:.2f}, autoconv from "
          f"{os.path.dirname(conversion.__file__)}, {len(gc.get_objects())} tracked objects")
    print(f"   mean CPU time per conversion, collections included: {total / n * 1e3:.3f} ms")
    for generation in range(3):
        print(f"   generation {generation}: {count[generation] / n:.2f} collections a "
              f"conversion, {spent[generation] / n * 1e3:.3f} ms a conversion")
    return {"mean_ms": total / n * 1e3,
            "collections": {g: count[g] / n for g in range(3)},
            "collector_ms": sum(spent.values()) / n * 1e3}


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
