"""`Function.export`'s CPU time with torch.export run under lazy graph modules (NOTE [graph
modules of an export made lazy] in autoconv/capture.py) and, side by side in the same process,
as before (eager graph modules, nothing to materialize), on programs with nested staged
statements (docs/benchmarks.md, session 53, export53).

    python benchmarks/export_modules.py [--repeat 7]

The two variants take turns; each figure is the median CPU time (`time.process_time`) of the
export alone, and of the export, `program.module()` and one run, with the count of GraphModule
code generations (real recompiles) in the latter. Give the load (`uptime`) with the figures.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time

import torch
from torch.fx.graph_module import GraphModule

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

from autoconv import autoconv, capture  # noqa: E402
from programs import early_return, for_break_continue  # noqa: E402
from test_export_modules import halve_or_shift  # noqa: E402


def nested_ifs(x, y):
    if x.sum() > 0:
        if y.sum() > 0:
            if (x * y).sum() > 1:
                x = x * 2
            else:
                x = x - y
        else:
            x = x + 1
    else:
        x = -x
    return x


CASES = {
    "while holding two ifs": (halve_or_shift, (torch.tensor([1.0, 4.0, 9.0]), torch.tensor(3))),
    "three nested ifs": (nested_ifs, (torch.ones(3), torch.ones(3))),
    "for, break, continue": (for_break_continue, (torch.ones(5, 3),)),
    "early return from a loop": (early_return, (torch.tensor([0.0, 1, 3, 0, 0]),)),
}
_LAZY, _MATERIALIZED, _RECOMPILE = (capture._use_lazy_graph_module, capture._materialized,
                                    GraphModule.recompile)
_generations = [0]


def _counted_recompile(self):
    _generations[0] += 1
    return _RECOMPILE(self)


def once(fn, args, lazy):
    """(export's CPU s, export + module() + one run's CPU s, code generations)"""
    capture._use_lazy_graph_module = _LAZY if lazy else (lambda flag: contextlib.nullcontext())
    capture._materialized = _MATERIALIZED if lazy else (lambda graph_module: graph_module)
    _generations[0] = 0
    start = time.process_time()
    program = autoconv(fn).export(*args)
    exported = time.process_time() - start
    program.module()(*args)
    return exported, time.process_time() - start, _generations[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    torch.set_num_threads(1)
    GraphModule.recompile = _counted_recompile
    for name, (fn, args) in CASES.items():
        once(fn, args, True)  # warm-up
        once(fn, args, False)
        runs = {False: [], True: []}
        for _ in range(repeat):
            for lazy in (False, True):
                runs[lazy].append(once(fn, args, lazy))
        before, after = ([statistics.median(r[k] for r in runs[lazy]) for k in range(3)]
                         for lazy in (False, True))
        print(f"{name:26s} export {before[0]:.3f} -> {after[0]:.3f} s; with module() and a run "
              f"{before[1]:.3f} -> {after[1]:.3f} s; code generations {before[2]:.0f} -> "
              f"{after[2]:.0f}")


if __name__ == "__main__":
    main()
