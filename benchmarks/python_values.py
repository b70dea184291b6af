"""Converted code on Python values: what the conversion costs when nothing is staged.

* Whole functions: the original vs `autoconv.convert(fn)` on Python ints, floats and lists.
  Without a tracer running nothing can be staged, and a converted function runs its original
  body after one `ac.eager()` check (see autoconv/emit.py); the ratio is that check's cost.
* `converted_call` of a small user function (cached after the first call) vs a direct call.
* A Python `if` vs `autoconv_runtime.if_stmt` on a Python bool: the bare operator call (what the
  converted body costs where it runs on Python values, under a tracer), and a converted
  `if`/`else` function (the original body behind the `ac.eager()` check).

Times are per call, the min over repeats of timeit loops (the median is printed alongside).

    python benchmarks/python_values.py
"""

from __future__ import annotations

import os
import statistics
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sample_functions as S  # noqa: E402

import autoconv  # noqa: E402
import autoconv_runtime  # noqa: E402

try:
    import malt
except Exception:  # noqa: BLE001 - no malt column then
    malt = None

REPEAT = 7
TARGET_SECONDS = 0.03  # per timeit loop; sets `number`
CONVERTED_CALL_BUDGET_US = 2.0


def _per_call(stmt, namespace, repeat=REPEAT):
    """(min, median) seconds per execution of `stmt`."""
    timer = timeit.Timer(stmt, globals=namespace)
    number = 1
    while True:  # calibrate: loops of at least 5 ms
        elapsed = timer.timeit(number)
        if elapsed >= 0.005:
            break
        number *= 4
    number = max(1, int(number * TARGET_SECONDS / elapsed))
    runs = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    return min(runs), statistics.median(runs)


def add_one(x, y):
    """A small user function, as converted code would call it."""
    return x + y


def branchy(flag, x):
    if flag:
        x = x + 1
    else:
        x = x - 1
    return x


def _if_true(x):
    return (x + 1,)


def _if_false(x):
    return (x - 1,)


WORKLOADS = [
    ("collatz_steps(27)", S.collatz_steps, (27,)),
    ("newton_sqrt(2.0)", S.newton_sqrt, (2.0,)),
    ("piecewise(0.3)", S.piecewise, (0.3,)),
    ("first_index_over(list[50])", S.first_index_over, (list(range(50)), 40)),
    ("binary_search(list[1000])", S.binary_search, (list(range(0, 3000, 3)), 2001)),
    ("gcd_lcm(1071, 462)", S.gcd_lcm, (1071, 462)),
    ("clipped_running_mean(list[100])", S.clipped_running_mean,
     ([(-1.0) ** i * (i % 7) for i in range(100)],)),
    ("sum_of_primes(200)", S.sum_of_primes, (200,)),
]


def run() -> dict:
    """Print the tables; returns a summary dict for run.py."""
    print("== converted code on Python values vs the original (per call, min of "
          f"{REPEAT} timeit repeats; median in brackets)")
    print(f"   {'workload':34} {'original':>18} {'converted':>18} {'ratio':>7}"
          + (f" {'malt.to_graph':>18} {'ratio':>7}" if malt else "  (malt not available)"))
    ratios, malt_ratios = [], []
    for label, fn, args in WORKLOADS:
        converted = autoconv.convert(fn)
        assert converted(*args) == fn(*args), label
        ns = {"f": fn, "g": converted, "args": args}
        orig = _per_call("f(*args)", ns)
        conv = _per_call("g(*args)", ns)
        ratio = conv[0] / orig[0]
        ratios.append(ratio)
        line = (f"   {label:34} {orig[0] * 1e6:8.2f} [{orig[1] * 1e6:7.2f}]µs "
                f"{conv[0] * 1e6:8.2f} [{conv[1] * 1e6:7.2f}]µs {ratio:6.2f}x")
        if malt is not None:
            ns["m"] = malt.to_graph(fn)
            assert ns["m"](*args) == fn(*args), label
            theirs = _per_call("m(*args)", ns)
            malt_ratios.append(theirs[0] / orig[0])
            line += f" {theirs[0] * 1e6:8.2f} [{theirs[1] * 1e6:7.2f}]µs {theirs[0] / orig[0]:6.2f}x"
        print(line)
    median_ratio = statistics.median(ratios)
    print(f"   median ratio converted/original: autoconv {median_ratio:.2f}x"
          + (f", malt {statistics.median(malt_ratios):.2f}x" if malt_ratios else ""))

    print("   (autoconv = autoconv.convert(fn); malt = malt.to_graph(fn), AutoGraph's operators on "
          "Python values, for comparison)")
    print("\n== call overhead (per call, min [median])")
    ns = {"add_one": add_one, "cc": autoconv_runtime.converted_call, "if_stmt":
          autoconv_runtime.if_stmt, "t": _if_true, "f": _if_false, "state": (3,),
          "names": ("x",), "flag": True, "x": 3, "branchy": branchy,
          "branchy_c": autoconv.convert(branchy), "eager": autoconv_runtime.eager}
    autoconv_runtime.converted_call(add_one, 1, 2)  # converts once; later calls hit the cache
    direct = _per_call("add_one(1, 2)", ns)
    cached = _per_call("cc(add_one, 1, 2)", ns)
    added = (cached[0] - direct[0]) * 1e6
    verdict = "OK" if added < CONVERTED_CALL_BUDGET_US else "OVER"
    print(f"   direct call add_one(1, 2)            {direct[0] * 1e6:7.3f} [{direct[1] * 1e6:.3f}]µs")
    print(f"   converted_call(add_one, 1, 2), cached {cached[0] * 1e6:7.3f} [{cached[1] * 1e6:.3f}]µs"
          f"   added {added:.3f}µs (target < {CONVERTED_CALL_BUDGET_US:g}µs: {verdict})")

    py_if = _per_call("if flag:\n    y = x + 1\nelse:\n    y = x - 1", ns)
    py_if_stmt = _per_call("if flag:\n    y = t(x)\nelse:\n    y = f(x)", ns)
    op_if = _per_call("if_stmt(flag, t, f, state, names)", ns)
    print(f"   Python if on a bool (inline)           {py_if[0] * 1e9:7.1f} [{py_if[1] * 1e9:.1f}]ns")
    print(f"   Python if calling the branch function  {py_if_stmt[0] * 1e9:7.1f} "
          f"[{py_if_stmt[1] * 1e9:.1f}]ns")
    print(f"   ac.if_stmt(flag, t, f, state, names)   {op_if[0] * 1e9:7.1f} [{op_if[1] * 1e9:.1f}]ns"
          f"   ({op_if[0] / py_if[0]:.1f}x the inline if, "
          f"+{(op_if[0] - py_if_stmt[0]) * 1e9:.0f}ns over calling the branch)")
    check = _per_call("eager()", ns)
    print(f"   ac.eager() (the check converted code starts with) {check[0] * 1e9:7.1f} "
          f"[{check[1] * 1e9:.1f}]ns")
    whole = _per_call("branchy(flag, x)", ns)
    whole_c = _per_call("branchy_c(flag, x)", ns)
    print(f"   def with if/else, original             {whole[0] * 1e9:7.1f} [{whole[1] * 1e9:.1f}]ns")
    print(f"   def with if/else, converted            {whole_c[0] * 1e9:7.1f} [{whole_c[1] * 1e9:.1f}]ns"
          f"   ({whole_c[0] / whole[0]:.1f}x; the ac.eager() check, then the original body)")
    return {
        "median_ratio": median_ratio,
        "converted_call_added_us": added,
        "converted_call_ok": added < CONVERTED_CALL_BUDGET_US,
        "if_stmt_ns": op_if[0] * 1e9,
        "python_if_ns": py_if[0] * 1e9,
    }


if __name__ == "__main__":
    run()
