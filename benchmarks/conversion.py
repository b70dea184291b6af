"""Conversion time: parse + convert + compile of one function, from scratch.

For each function in `sample_functions.CONVERSION_SAMPLES` the converter's cache is emptied before
every conversion, so each timing covers the whole pipeline:

* autoconv: `autoconv.conversion.convert_function(fn)` (read the source lines, parse, the
  passes, liveness, compile of the factory, which holds the converted body and, for the eager
  fast path, the original one; instantiate the function), with a fresh `_code_cache`.
* diastatic-malt (AutoGraph's standalone fork): `malt.to_graph(fn)` (inspect source, parse, its
  passes, unparse to a temporary module and load it, instantiate), with its transpiler's code
  cache cleared. malt is a benchmark-only extra (`pip install -e '.[bench]'`); when it cannot be
  imported the malt column says so and no ratio is given.

    python benchmarks/conversion.py
"""

from __future__ import annotations

import gc
import importlib.metadata
import inspect
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sample_functions  # noqa: E402

import autoconv  # noqa: E402
import autoconv.conversion as ac_conversion  # noqa: E402
from autoconv import parsing as ac_parsing  # noqa: E402

ROUNDS = 25  # conversions per function and converter
WARMUP = 3

try:
    import malt
    from malt.impl import api as _malt_api
    from malt.pyct import cache as _malt_cache

    MALT_ERROR = None
except Exception as e:  # noqa: BLE001 - any import failure means: no malt column
    malt = None
    MALT_ERROR = f"{type(e).__name__}: {e}"


def _autoconv_convert(fn):
    # A fresh (empty) cache: a dict or the weak code map, whichever conversion.py keeps.
    ac_conversion._code_cache = type(ac_conversion._code_cache)()
    return ac_conversion.convert_function(fn)


def _autoconv_parse(fn):
    return ac_parsing.parse_function(fn)


def _autoconv_tree(fn):
    return ac_conversion.converted_tree(fn)


def _malt_convert(fn):
    _malt_api._TRANSPILER._cache = _malt_cache.CodeObjectCache()
    return malt.to_graph(fn)


# NOTE [wall clock and CPU time of a conversion]
# A wall-clock min is the cost only where some of the runs were not preempted. On the shared
# 2-core machine at load 5 a 1.8 ms conversion was preempted in 7 of 25 runs and a 5.6 ms one
# in 21 (session 33): the longer the conversion, the likelier every run holds a scheduler slice
# of another process, and at load 10-13 the two longest sample functions' wall mins were 12.5
# ms against 2-6 ms for the others while their CPU time was 5-6 ms (docs/benchmarks.md,
# conv33). The CPU time (`time.thread_time`), which a descheduled thread does not accumulate,
# is measured beside it: the columns marked "cpu" and the CPU-time median.


def _times(convert, fn, rounds=ROUNDS, cpu=None):
    """Seconds per conversion (wall clock), `rounds` of them, after a warm-up; `cpu`, a list
    if given, gets each conversion's CPU time too."""
    for _ in range(WARMUP):
        convert(fn)
    times = []
    gc.collect()
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.thread_time()
        convert(fn)
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(time.thread_time() - start_cpu)
    return times


def _lines(fn):
    return len(inspect.getsourcelines(fn)[0])


def _malt_version():
    try:
        return importlib.metadata.version("diastatic-malt")
    except importlib.metadata.PackageNotFoundError:
        return "?"


# (one fresh process: each stage's wall clock and CPU time; the stages in the order a user's
# program meets them)
_STARTUP = """
import json, sys, time
stamps = [(time.perf_counter(), time.process_time())]
def stamp():
    stamps.append((time.perf_counter(), time.process_time()))
import torch
stamp()
import torch.fx.experimental.symbolic_shapes  # (sympy: autoconv's runtime imports it)
stamp()
import autoconv
stamp()
sys.path.insert(0, sys.argv[1])
import sample_functions
from autoconv import conversion
first, second = sample_functions.CONVERSION_SAMPLES[:2]
stamp()
conversion.convert_function(first)
stamp()
conversion.convert_function(second)
stamp()
print(json.dumps([[b[0] - a[0], b[1] - a[1]] for a, b in zip(stamps, stamps[1:])]))
"""
_STAGES = ("torch", "symbolic_shapes", "autoconv_own", None, "first_conversion",
           "second_conversion")


def import_seconds(repeat=3) -> dict:
    """Start-up costs in a fresh process, best of `repeat` per stage, seconds:
    {stage: (wall clock, CPU time)} for `import torch`, then `import autoconv` in two parts
    (torch's symbolic shapes module, which imports sympy and which the runtime needs, and the
    rest), the first conversion (which installs the torch fixes, importing dynamo:
    `install_torch_fixes` in autoconv/conversion.py) and a second one.

    With bytecode caches, as an installed package has them: PYTHONDONTWRITEBYTECODE (set on
    some machines) would make every run compile autoconv's modules from source, a third of its
    import time; a first, untimed run writes the caches.
    """
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    here = os.path.dirname(os.path.abspath(__file__))

    def once():
        return json.loads(subprocess.run([sys.executable, "-c", _STARTUP, here],
                                         capture_output=True, text=True, check=True,
                                         env=env).stdout)

    once()
    runs = [once() for _ in range(repeat)]
    return {stage: (min(r[i][0] for r in runs), min(r[i][1] for r in runs))
            for i, stage in enumerate(_STAGES) if stage is not None}


def run(rounds=ROUNDS) -> dict:
    """Print the table; returns a summary dict for run.py."""
    print(f"== conversion time per function, from scratch ({rounds} conversions each, caches "
          "cleared before each; min and median)")
    print(f"   load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs: medians are "
          "noisy on a loaded machine, the min is the best estimate of the cost")
    if malt is None:
        print(f"   diastatic-malt NOT AVAILABLE ({MALT_ERROR}); malt columns left empty, "
              "no ratio computed")
    else:
        print(f"   malt = diastatic-malt {_malt_version()}, malt.to_graph(fn)")
    print(f"   {'function':22} {'lines':>5} {'parse':>7} {'+passes':>7} "
          f"{'autoconv min/med':>17} {'cpu min':>8} {'malt min/med':>17} {'cpu min':>8} "
          f"{'autoconv/malt':>13}")
    rows = []
    for fn in sample_functions.CONVERSION_SAMPLES:
        # (parse and +passes by CPU time: NOTE [wall clock and CPU time of a conversion])
        parse_cpu, tree_cpu, ours_cpu, theirs_cpu = [], [], [], []
        _times(_autoconv_parse, fn, rounds, parse_cpu)
        _times(_autoconv_tree, fn, rounds, tree_cpu)
        ours = _times(_autoconv_convert, fn, rounds, ours_cpu)
        theirs = _times(_malt_convert, fn, rounds, theirs_cpu) if malt is not None else None
        ratio = min(ours) / min(theirs) if theirs else None
        rows.append((fn.__name__, min(ours), min(theirs) if theirs else None, ratio,
                     _lines(fn), min(ours_cpu), min(theirs_cpu) if theirs else None,
                     statistics.mean(ours_cpu)))
        line = (f"   {fn.__name__:22} {_lines(fn):5} {min(parse_cpu) * 1e3:5.2f}ms "
                f"{min(tree_cpu) * 1e3:5.2f}ms "
                f"{min(ours) * 1e3:6.2f}/{statistics.median(ours) * 1e3:6.2f}ms "
                f"{min(ours_cpu) * 1e3:6.2f}ms ")
        if theirs:
            line += (f"{min(theirs) * 1e3:6.2f}/{statistics.median(theirs) * 1e3:6.2f}ms "
                     f"{min(theirs_cpu) * 1e3:6.2f}ms {ratio:12.2f}x")
        else:
            line += f"{'n/a':>17} {'n/a':>8} {'n/a':>13}"
        print(line)
    print("   (ms; parse = source lines + parse to gast, +passes = parse and every converter "
          "pass (converted_tree), autoconv = all of convert_function incl. compile; parse and "
          "+passes are CPU-time mins, autoconv and malt wall-clock min/median and CPU-time min)")
    ac_median = statistics.median(r[1] for r in rows)
    ac_cpu_median = statistics.median(r[5] for r in rows)
    # (the mean CPU time holds the garbage collections a conversion starts, which a min leaves
    # out: NOTE [no garbage collection during a conversion] in autoconv/conversion.py)
    ac_cpu_mean = statistics.median(r[7] for r in rows)
    summary = {"autoconv_median_ms": ac_median * 1e3,
               "autoconv_cpu_median_ms": ac_cpu_median * 1e3,
               "autoconv_cpu_mean_median_ms": ac_cpu_mean * 1e3,
               "rows": [{"function": r[0], "lines": r[4], "autoconv_ms": r[1] * 1e3,
                         "autoconv_cpu_ms": r[5] * 1e3, "autoconv_cpu_mean_ms": r[7] * 1e3,
                         "malt_ms": r[2] * 1e3 if r[2] else None,
                         "malt_cpu_ms": r[6] * 1e3 if r[6] else None} for r in rows]}
    startup = import_seconds()
    own_import = [startup["symbolic_shapes"][k] + startup["autoconv_own"][k] for k in (0, 1)]
    summary.update(import_torch_s=startup["torch"][0], import_autoconv_s=own_import[0],
                   import_torch_cpu_s=startup["torch"][1], import_autoconv_cpu_s=own_import[1],
                   startup={stage: {"wall_s": wall, "cpu_s": cpu}
                            for stage, (wall, cpu) in startup.items()})
    print(f"   import autoconv (fresh process, bytecode cached, best of 3; wall / CPU): "
          f"{own_import[0] * 1e3:.0f} / {own_import[1] * 1e3:.0f} ms after "
          f"{startup['torch'][0] * 1e3:.0f} / {startup['torch'][1] * 1e3:.0f} ms of import "
          f"torch; of it torch's symbolic shapes (sympy) "
          f"{startup['symbolic_shapes'][0] * 1e3:.0f} / {startup['symbolic_shapes'][1] * 1e3:.0f}"
          f" ms; the first conversion (torch fixes: dynamo's import) "
          f"{startup['first_conversion'][0] * 1e3:.0f} / "
          f"{startup['first_conversion'][1] * 1e3:.0f} ms, the second "
          f"{startup['second_conversion'][0] * 1e3:.1f} / "
          f"{startup['second_conversion'][1] * 1e3:.1f} ms")
    if malt is not None:
        malt_median = statistics.median(r[2] for r in rows)
        ratio_median = statistics.median(r[3] for r in rows)
        cpu_ratio_median = statistics.median(r[5] / r[6] for r in rows)
        summary.update(malt_median_ms=malt_median * 1e3, median_ratio=ratio_median,
                       malt_cpu_median_ms=statistics.median(r[6] for r in rows) * 1e3,
                       median_cpu_ratio=cpu_ratio_median)
        print(f"   median over functions (of per-function mins): autoconv {ac_median * 1e3:.2f} ms,"
              f" malt {malt_median * 1e3:.2f} ms; median ratio autoconv/malt {ratio_median:.2f}x")
        print(f"   CPU time, the same medians: autoconv {ac_cpu_median * 1e3:.2f} ms, malt "
              f"{summary['malt_cpu_median_ms']:.2f} ms; median ratio {cpu_ratio_median:.2f}x")
        print(f"   autoconv's mean CPU time per conversion (collections included), median over "
              f"functions: {ac_cpu_mean * 1e3:.2f} ms")
    else:
        summary.update(malt_error=MALT_ERROR)
        print(f"   median over functions (of per-function mins): autoconv {ac_median * 1e3:.2f} ms;"
              " malt not available")
        print(f"   CPU time, the same median: autoconv {ac_cpu_median * 1e3:.2f} ms; its mean "
              f"per conversion (collections included) {ac_cpu_mean * 1e3:.2f} ms")
    return summary


if __name__ == "__main__":
    run()
