"""Trace time of nested staged statements (docs/benchmarks.md, "Trace time of nested staged
statements"): the runs of each level's body in one trace of tests/reference/test_restaging.py's
models of torch's `_strong_wolfe` (`_wolfe_runs`: the step becoming a tensor, session 35;
`_search_runs`: session 34's), and the trace's CPU time, for this checkout and, side by side in
the same run, for other source trees.

    python benchmarks/nested_traces.py [--depth 4] [--repeat 2] [--tree DIR ...]

A DIR holds the packages `autoconv` and `autoconv_runtime` (for main: `git archive main runtime
autoconv | tar -x -C DIR`, then `ln -s DIR/runtime DIR/autoconv_runtime`). Each measurement runs
in a fresh interpreter with its tree first on sys.path and one torch thread, the trees taking
turns; CPU is `time.process_time` of the trace alone. Give the load (`uptime`) with the figures.
"""

import argparse
import json
import os
import subprocess
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = """
import json, sys, time
tree, model, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
if tree:
    sys.path.insert(0, tree)
sys.path[1:1] = [{tests!r}, {reference!r}]
import torch
torch.set_num_threads(1)
import autoconv
import test_restaging
fn, runs = getattr(test_restaging, model)(depth)
args = (torch.tensor([0.5, 1.0]),)
want = fn(*args)
runs.clear()
start = time.process_time()
got = autoconv.autoconv(fn)(*args)
cpu = time.process_time() - start
same = all(torch.equal(torch.as_tensor(g), torch.as_tensor(w)) for g, w in zip(got, want))
print(json.dumps({{"runs": [runs[level] for level in range(depth)], "cpu": cpu, "same": same}}))
"""


def _measure(tree: str, model: str, depth: int) -> dict:
    child = _CHILD.format(tests=os.path.join(_ROOT, "tests"),
                          reference=os.path.join(_ROOT, "tests", "reference"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", child, tree, model, str(depth)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tree", action="append", default=[],
                        help="a source tree to measure beside this checkout")
    options = parser.parse_args()
    trees = [""] + options.tree
    for model in ("_wolfe_runs", "_search_runs"):
        results = {tree: [] for tree in trees}
        for _ in range(options.repeat):
            for tree in trees:
                results[tree].append(_measure(tree, model, options.depth))
        base = min(r["cpu"] for r in results[""])
        for tree in trees:
            cpus = [r["cpu"] for r in results[tree]]
            same = all(r["same"] for r in results[tree])
            print(f"{model} depth {options.depth} {tree or 'this checkout'}: runs by depth "
                  f"{results[tree][0]['runs']}, equal to Python {same}, "
                  f"CPU {', '.join(f'{c:.1f}' for c in cpus)} s "
                  f"(best {min(cpus) / base:.2f}x this checkout's)")
    print("load", " ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
