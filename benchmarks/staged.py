"""Graph execution on CPU: control-flow functions on tensors, run five ways.

* eager: the plain Python function on tensors (Python control flow reads tensor values).
* autoconv: `f = autoconv.autoconv(fn)`; `f(x)` after warm-up replays the traced graph with the
  default "python" backend (cond / while_loop nodes run as Python if / while); `backend=fx`
  replays the torch.fx GraphModule itself (torch's cond / while_loop operators).
* TorchScript: `torch.jit.script(fn)`, where it scripts.
* torch.compile: the default (inductor); dynamo graph-breaks on data-dependent control flow, so
  this runs several small graphs with Python in between.
* compile(convert, fullgraph): `torch.compile(autoconv.convert(fn), fullgraph=True)`: dynamo
  traces the converted code, whose control flow becomes torch.cond / torch.while_loop, into one
  graph.

Then the many-small-layers model from TensorFlow's tf.function guide, and the Function layer's
own costs (a cached call, one cond at replay, the first call in a fresh process). Every variant is checked
against eager before it is timed; a variant that fails is reported with its error, not timed.
The first call (trace / script / compile) is timed separately and printed as `setup`; inductor's
on-disk caches are switched off so that it is a cold compile every run.

    python benchmarks/staged.py [control_flow] [seed_model] [function_layer]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import traceback
import unittest.mock
import warnings

import torch
import torch._functorch.config
import torch._inductor.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
from sample_functions import row_abs_sum  # noqa: E402

# Many short loops, variants taking turns: the min then finds the quiet moments of a shared machine.
REPEAT = 11
TARGET_SECONDS = 0.012  # per timing loop

# Cold compiles: without this, inductor's on-disk caches make `setup` depend on earlier runs.
torch._inductor.config.fx_graph_cache = False
torch._functorch.config.enable_autograd_cache = False


def collatz_steps(n):
    """Collatz steps of a 0-d integer tensor (as in examples/collatz.py)."""
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def newton_sqrt(x):
    """Newton's square root of a 0-d float64 tensor, to 1e-10 (no `tol` argument: TorchScript
    would type an unannotated default as a tensor)."""
    y = x
    while abs(y * y - x) > 1e-10:
        y = (y + x / y) / 2
    return y


# Rows kept small: the converted loop unrolls into one torch.cond per row, and inductor compiles
# each cond's branches separately (about 4 s per row on 2 CPU cores).
ROWS = 8
WORKLOADS = [
    ("collatz_steps(27)", collatz_steps, lambda: (torch.tensor(27),)),
    ("newton_sqrt(2.0)", newton_sqrt, lambda: (torch.tensor(2.0, dtype=torch.float64),)),
    (f"row_abs_sum([{ROWS},64])", row_abs_sum,
     lambda: (torch.randn(ROWS, 64, generator=torch.Generator().manual_seed(0)),)),
]


def _no_sync():
    pass


def _loop_count(fn, args, sync=_no_sync) -> int:
    """Calls per timing loop: about TARGET_SECONDS worth."""
    sync()
    start = time.perf_counter()
    fn(*args)
    sync()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(100_000, int(TARGET_SECONDS / once)))


# The timing loops' clock: wall time by default; `loops.py --cpu-time` sets
# time.process_time, where other jobs' time slices on a shared machine do not count.
CLOCK = time.perf_counter


def _interleaved_times(callables, args, repeat=REPEAT, sync=_no_sync):
    """{name: (min, median) seconds per call}; the variants take turns, one loop each per round,
    so that load from other processes spreads over all of them alike. `sync` waits for the
    device's queued work (torch.cuda.synchronize): before a timing loop, so that it starts on
    an idle device, and after, so that its kernels are counted."""
    counts = {name: _loop_count(fn, args, sync) for name, fn in callables.items()}
    runs = {name: [] for name in callables}
    for _ in range(repeat):
        for name, fn in callables.items():
            number = counts[name]
            sync()
            start = CLOCK()
            for _ in range(number):
                fn(*args)
            sync()
            runs[name].append((CLOCK() - start) / number)
    return {name: (min(r), statistics.median(r)) for name, r in runs.items()}


def _short(e: BaseException) -> str:
    lines = [line.strip() for line in f"{type(e).__name__}: {e}".splitlines() if line.strip()]
    return " ".join(lines[:2])[:200]


def _dynamo_note() -> str:
    """Graphs and graph breaks dynamo reported since the counters were cleared."""
    counters = torch._dynamo.utils.counters
    graphs = counters["stats"]["unique_graphs"]
    # torch 2.13 counts graph breaks under "unimplemented"; older versions under "graph_break".
    breaks = sum(counters["graph_break"].values()) + sum(counters["unimplemented"].values())
    if not graphs:
        return "   [dynamo: no graph, the frame ran eagerly]"
    return f"   [dynamo: {graphs} graph(s), {breaks} graph break(s)]"


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.allclose(
            a.double(), b.double(), rtol=1e-5, atol=1e-6)
    return a == b


def _variants(fn):
    """name -> zero-argument builder of the callable to time."""
    return [
        ("eager", lambda: fn),
        ("autoconv", lambda: autoconv.autoconv(fn)),
        ("autoconv backend=fx", lambda: autoconv.autoconv(fn, backend="fx")),
        ("TorchScript", lambda: torch.jit.script(fn)),
        ("torch.compile", lambda: torch.compile(fn)),
        ("compile(convert,fullgraph)", lambda: torch.compile(autoconv.convert(fn), fullgraph=True)),
    ]


def _build(name, build, args, expected, failures, label):
    """Build and run once (setup), check against eager, warm up. (callable, setup s, note) or
    None when the variant fails."""
    torch._dynamo.utils.counters.clear()
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            callable_ = build()
            result = callable_(*args)
        setup = time.perf_counter() - start
        if not _same(result, expected):
            raise AssertionError(f"result {result} differs from eager {expected}")
        note = _dynamo_note() if "compile" in name else ""
        callable_(*args)  # warm-up
        return callable_, setup, note
    except Exception as e:  # noqa: BLE001 - a failing variant is reported, not fatal
        failures.append((label, name, e))
        return None


def _compare(label, variants, args, expected, unit, scale, failures, sync=_no_sync) -> dict:
    """Build every variant, time them interleaved, print one row each; {name: (time, ratio)}."""
    torch._dynamo.reset()
    built, errors = {}, {}
    for name, build in variants:
        out = _build(name, build, args, expected, failures, label)
        if out is None:
            errors[name] = _short(failures[-1][2])
        else:
            built[name] = out
    times = _interleaved_times({name: out[0] for name, out in built.items()}, args, sync=sync)
    eager = times.get("eager", (None,))[0]
    summary = {}
    for name, _ in variants:
        if name in errors:
            print(f"   {name:28} FAILED: {errors[name]}")
            continue
        (best, median), (_, setup, note) = times[name], built[name]
        ratio = best / eager if eager else float("nan")
        summary[name] = (best * scale, ratio)
        print(f"   {name:28} {best * scale:10.3f} [{median * scale:10.3f}] {unit}  "
              f"{ratio:6.2f}x eager   setup {setup:7.3f} s{note}")
    return summary


def run_control_flow() -> dict:
    print("== staged control flow on CPU (µs per call, min [median] of "
          f"{REPEAT} interleaved timing loops; setup = build + first call)")
    print(f"   torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.2f}")
    summary, failures = {}, []
    for label, fn, make_args in WORKLOADS:
        args = make_args()
        expected = fn(*args)
        print(f"-- {label}")
        times = _compare(label, _variants(fn), args, expected, "µs", 1e6, failures)
        summary.update({(label, name): value for name, value in times.items()})
    return {"times": summary, "failures": failures}


def seed_model():
    """TensorFlow guide's model of many small layers: Flatten, 100 x (Dense(64) + ReLU), Dense(10)."""
    layers = [torch.nn.Flatten()]
    width = 28 * 28
    for _ in range(100):
        layers += [torch.nn.Linear(width, 64), torch.nn.ReLU()]
        width = 64
    layers.append(torch.nn.Linear(width, 10))
    return torch.nn.Sequential(*layers).eval()


def run_seed_model() -> dict:
    torch.manual_seed(0)
    model = seed_model()
    x = torch.rand(20, 28, 28)
    print("\n== seed model: Sequential(Flatten, 100 x (Linear(64) + ReLU), Linear(10)), input "
          "[20, 28, 28], no_grad (ms per call, min [median]; setup = build + first call)")
    summary, failures = {}, []
    variants = [
        ("eager", lambda: model),
        ("autoconv", lambda: autoconv.autoconv(model)),
        ("autoconv backend=fx", lambda: autoconv.autoconv(model, backend="fx")),
        ("autoconv backend=inductor", lambda: autoconv.autoconv(model, backend="inductor")),
        ("TorchScript", lambda: torch.jit.script(model)),
        ("torch.compile", lambda: torch.compile(model)),
    ]
    with torch.no_grad():
        expected = model(x)
        summary = _compare("seed model", variants, (x,), expected, "ms", 1e3, failures)
    return {"times": summary, "failures": failures}


def one_branch(x):
    """A single data-dependent `if`: what one staged cond costs at replay."""
    if x.sum() > 0:
        y = x + 1
    else:
        y = x - 1
    return y


_FIRST_CALL = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {here!r})
import torch, autoconv
from staged import seed_model
model, x = seed_model(), torch.rand(20, 28, 28)
imported, cpu = time.perf_counter(), time.process_time()
with torch.no_grad():
    autoconv.autoconv(model)(x)
print(imported - start, time.perf_counter() - imported, time.process_time() - cpu)
"""


def run_function_layer() -> dict:
    """Costs of the Function layer itself: a cached call, one cond at replay, the first call."""
    print("\n== Function layer (µs per call, min [median]; a cond replayed vs a Python if)")
    x = torch.ones(4)
    variants = {
        "Python if (eager)": one_branch,
        "autoconv cond, backend=python": autoconv.autoconv(one_branch),
        "autoconv cond, backend=fx": autoconv.autoconv(one_branch, backend="fx"),
        "torch.cond eager": lambda x: torch.cond(x.sum() > 0, lambda x: x + 1,
                                                 lambda x: x - 1, (x,)),
    }
    for fn in variants.values():
        fn(x)
    times = _interleaved_times(variants, (x,))
    base = times["Python if (eager)"][0]
    for name, (best, median) in times.items():
        print(f"   {name:32} {best * 1e6:9.2f} [{median * 1e6:9.2f}] µs  {best / base:6.2f}x")
    # Cache lookup: a Function call minus running its graph's single op directly.
    add = autoconv.autoconv(lambda a, b: a + b)
    a, b = torch.ones(2), torch.ones(2)
    add(a, b)
    hit = _interleaved_times({"Function": add, "op": torch.add}, (a, b))
    overhead = (hit["Function"][0] - hit["op"][0]) * 1e6
    print(f"   cache hit overhead (signature key + lookup + output): {overhead:.2f} µs")
    # First call of the seed model in a fresh process: imports, then convert + trace + build.
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(here=here)],
                         capture_output=True, text=True, check=True).stdout.split()
    imports, first, first_cpu = float(out[0]), float(out[1]), float(out[2])
    print(f"   seed model first call in a fresh process: {first:.2f} s, CPU time "
          f"{first_cpu:.2f} s (after {imports:.2f} s of imports)")
    return {"cond_python_us": times["autoconv cond, backend=python"][0] * 1e6,
            "cond_fx_us": times["autoconv cond, backend=fx"][0] * 1e6,
            "python_if_us": base * 1e6, "cache_hit_overhead_us": overhead,
            "seed_first_call_s": first, "seed_first_call_cpu_s": first_cpu}


def ten_ifs(x):
    """Ten data-dependent `if`s in a row: what tracing staged statements costs."""
    for step in range(10):  # a Python range: unrolled, ten staged ifs in one graph
        if x.sum() > step:
            x = x - step
        else:
            x = x * 2
    return x


class _LoopModel(torch.nn.Module):
    """A while loop over module calls: its bodies read the parameters by closure."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

    def forward(self, x, n):
        i = 0
        while i < n:
            if x.sum() > 0:
                x = torch.relu(self.a(x))
            else:
                x = torch.tanh(self.b(x))
            i += 1
        return x


def _trace_seconds(make, args, repeat=3) -> float:
    """Best time of a first call (convert + trace + build) of a fresh Function."""
    best = float("inf")
    for _ in range(repeat):
        function = autoconv.autoconv(make())
        start = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - start)
    return best


def run_trace_time() -> dict:
    """First-call time with the operators called directly under make_fx (autoconv's way) and
    with torch.cond / torch.while_loop, which run dynamo over every body first."""
    from autoconv_runtime.staging.tracers import MakeFxTracer

    print("\n== trace time (first call of a fresh Function: convert + trace + build, best of 3)")
    cases = {"ten staged ifs": (lambda: ten_ifs, (torch.ones(3),)),
             "module, while + if": (_LoopModel, (torch.randn(4, 16), torch.tensor(3)))}
    results = {}
    for label, (make, args) in cases.items():
        _trace_seconds(make, args, repeat=1)  # warm up both paths' imports
        direct = _trace_seconds(make, args)
        # Without the make_fx tracer, the "dispatch modes" one stages through torch.cond.
        # That path is a comparison, not one users take: where torch.while_loop's dynamo
        # refuses the runtime's own bookkeeping in a body, the row says so and goes on.
        try:
            with unittest.mock.patch.object(MakeFxTracer, "is_staged", lambda self, v: False):
                _trace_seconds(make, args, repeat=1)
                through_dynamo = _trace_seconds(make, args)
        except Exception as e:  # noqa: BLE001 - reported in the row
            print(f"   {label:22} direct {direct * 1e3:8.1f} ms   through dynamo: fails "
                  f"({_short(e)})")
            results[label] = (direct, None)
            continue
        print(f"   {label:22} direct {direct * 1e3:8.1f} ms   through dynamo "
              f"{through_dynamo * 1e3:8.1f} ms   {through_dynamo / direct:5.1f}x faster")
        results[label] = (direct, through_dynamo)
    return results


def run() -> dict:
    """Print all tables; returns a summary dict for run.py."""
    flow = run_control_flow()
    model = run_seed_model()
    layer = run_function_layer()
    layer["trace"] = run_trace_time()
    failures = flow["failures"] + model["failures"]
    if failures and os.environ.get("BENCH_TRACEBACKS"):
        for label, name, e in failures:
            print(f"\n-- {label} / {name}")
            traceback.print_exception(e)
    return {"control_flow": flow["times"], "seed_model": model["times"], "function": layer,
            "failures": [(label, name, _short(e)) for label, name, e in failures]}


_SECTIONS = {"control_flow": run_control_flow, "seed_model": run_seed_model,
             "function_layer": run_function_layer, "trace_time": run_trace_time}

if __name__ == "__main__":
    # `python benchmarks/staged.py seed_model` runs one section; no argument runs them all.
    if len(sys.argv) > 1:
        for section in sys.argv[1:]:
            _SECTIONS[section]()
    else:
        run()
