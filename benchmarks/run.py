"""Run every benchmark and print one summary: `make bench` or `python benchmarks/run.py`.

    conversion.py     conversion time per function, autoconv vs diastatic-malt; import time
    python_values.py  converted code on Python values vs the original; call and `if` overheads
    staged.py         graph execution on CPU: eager, autoconv replay, TorchScript, torch.compile
    loops.py          loop workloads (bisection, a GRU decoder, NMS, ...): the same five ways
    call_overhead.py  a replay's per-call work (signature, cache lookup, captures check, graph)

    python benchmarks/run.py [--json PATH] [--sections conversion,loops,...] [--threads N]

`--threads N` sets torch's intra-op threads (default: torch's own choice). On a machine whose
cores other jobs share, one thread avoids timing the waits of a thread pool whose other threads
are descheduled, which otherwise swamp the figures.

`--json PATH` also writes every section's results (and the machine, torch version and load
they were taken at) as JSON, which `make bench-plots` (benchmarks/plots.py) turns into the
plots and tables of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import call_overhead  # noqa: E402
import conversion  # noqa: E402
import loops  # noqa: E402
import python_values  # noqa: E402
import staged  # noqa: E402

SECTIONS = [
    ("conversion", conversion.run),
    ("python_values", python_values.run),
    ("staged", staged.run),
    ("loops", loops.run),
    ("call_overhead", call_overhead.run),
]


def _summary(results, durations) -> None:
    print("\n" + "=" * 78)
    print("SUMMARY")
    print(f"   python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs,"
          f" load average at end {os.getloadavg()[0]:.2f}")
    for name, seconds in durations.items():
        status = "ok" if name in results else "FAILED (see above)"
        print(f"   {name:14} {seconds:6.1f} s  {status}")

    conv = results.get("conversion")
    if conv:
        line = f"conversion      autoconv median {conv['autoconv_median_ms']:.2f} ms per function"
        if "autoconv_cpu_median_ms" in conv:
            line += f" ({conv['autoconv_cpu_median_ms']:.2f} ms CPU time)"
        if "median_ratio" in conv:
            line += (f"; diastatic-malt {conv['malt_median_ms']:.2f} ms; median ratio "
                     f"autoconv/malt {conv['median_ratio']:.2f}x")
        else:
            line += f"; diastatic-malt NOT AVAILABLE ({conv['malt_error']})"
        print("   " + line)

    values = results.get("python_values")
    if values:
        print(f"   python values   converted/original median {values['median_ratio']:.2f}x; cached "
              f"converted_call adds {values['converted_call_added_us']:.2f} µs "
              f"({'under' if values['converted_call_ok'] else 'OVER'} the 2 µs target); "
              f"if_stmt {values['if_stmt_ns']:.0f} ns vs Python if {values['python_if_ns']:.0f} ns")

    flow = results.get("staged")
    if flow:
        print("   staged (µs per call, x eager):")
        labels = list(dict.fromkeys(label for label, _ in flow["control_flow"]))
        for label in labels:
            cells = [f"{name} {us:.1f} ({ratio:.2f}x)"
                     for (lab, name), (us, ratio) in flow["control_flow"].items() if lab == label]
            print(f"     {label:24} " + "; ".join(cells))
        if flow["seed_model"]:
            cells = [f"{name} {ms:.3f} ms ({ratio:.2f}x)"
                     for name, (ms, ratio) in flow["seed_model"].items()]
            print(f"     {'seed model':24} " + "; ".join(cells))
        layer = flow["function"]
        print(f"     one cond at replay: python backend {layer['cond_python_us']:.1f} µs, fx "
              f"{layer['cond_fx_us']:.1f} µs, Python if {layer['python_if_us']:.1f} µs; cache hit "
              f"+{layer['cache_hit_overhead_us']:.2f} µs; seed model first call "
              f"{layer['seed_first_call_s']:.2f} s")
        for label, name, error in flow["failures"]:
            print(f"     FAILED {label} / {name}: {error}")

    looped = results.get("loops")
    if looped:
        print("   loops (time per call, x eager):")
        for label, rows in looped["workloads"].items():
            cells = [f"{name} {row['x_eager']:.2f}x" if "x_eager" in row else f"{name} FAILED"
                     for name, row in rows.items()]
            print(f"     {label:24} " + "; ".join(cells))

    overhead = results.get("call_overhead")
    if overhead:
        print("   per-call overhead (µs, CPU time; autoconv - graph, and eager's whole call):")
        for label, row in overhead.items():
            if label != "load":
                print(f"     {label:24} {row['overhead_us']:.2f} (signature "
                      f"{row['us']['signature']:.2f}); eager {row['us']['eager']:.2f}")


def _jsonable(value):
    """Tuple keys ((workload, variant)) become "workload / variant"; exceptions their text."""
    if isinstance(value, dict):
        return {" / ".join(k) if isinstance(k, tuple) else str(k): _jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value


def main(argv) -> int:
    def option(flag):
        return argv[argv.index(flag) + 1] if flag in argv else None

    path = option("--json")
    chosen = option("--sections")
    if option("--threads"):
        torch.set_num_threads(int(option("--threads")))
    sections = [(name, run) for name, run in SECTIONS
                if chosen is None or name in chosen.split(",")]
    results, durations = {}, {}
    load_at_start = list(os.getloadavg())
    for name, run in sections:
        print(f"\n### {name}")
        start = time.perf_counter()
        try:
            results[name] = run()
        except Exception:  # noqa: BLE001 - report and go on with the other sections
            traceback.print_exc()
        durations[name] = time.perf_counter() - start
    _summary(results, durations)
    if path:
        import json

        out = {"meta": {**loops.meta(), "load": load_at_start,
                        "load_end": list(os.getloadavg()),
                        "machine": f"{platform.machine()}, {os.cpu_count()} CPU "
                        f"cores", "platform": platform.platform()},
               "durations_s": durations, **_jsonable(results)}
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
        print(f"results written to {path}")
    return 0 if len(results) == len(sections) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
