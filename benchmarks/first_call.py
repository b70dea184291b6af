"""The seed model's first call (convert + trace + build, imports excluded) in fresh processes,
CPU time: this checkout's, and with `--against DIR` another's alternating with it (DIR holds
that checkout's `autoconv/` and its `runtime/` copied as `autoconv_runtime/`, put first on
PYTHONPATH), so that both see the same load.

    python benchmarks/first_call.py [--runs N] [--against DIR]

CPU time is read with `resource.getrusage`: the trace refuses a `time.process_time()` read
while it runs (a clock read inside the traced function), and this wraps nothing inside it
anyway.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_SCRIPT = """
import resource, sys
sys.path.insert(0, {here!r})
import torch, autoconv
torch.set_num_threads(1)
from staged import seed_model
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
model, x = seed_model(), torch.rand(20, 28, 28)
start = cpu()
with torch.no_grad():
    autoconv.autoconv(model)(x)
print(cpu() - start)
"""


def first_call(pythonpath: str | None = None) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _SCRIPT.format(here=here)], env=env,
                         capture_output=True, text=True, check=True, cwd="/").stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--against", help="another checkout's modules (see the docstring)")
    options = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.2f}")
    times: dict = {"this": [], "against": []}
    for _ in range(options.runs):
        if options.against:
            times["against"].append(first_call(options.against))
        times["this"].append(first_call())
    print(f"load {os.getloadavg()[0]:.2f}")
    for name, runs in times.items():
        if runs:
            print(f"{name:8} first call CPU min {min(runs):.3f} s, median "
                  f"{statistics.median(runs):.3f} s over {len(runs)} fresh processes")


if __name__ == "__main__":
    main()
