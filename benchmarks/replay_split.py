"""Where a replayed call of one loops.py workload goes: the graph's function, the guard check,
the Python around them, side by side with eager and TorchScript in one process.

Layers, each timed as a call of its own on the same inputs (the graph found and its inputs
read beforehand, as the call finds and reads them):

    whole        the autoconv call, `model(x)`
    run_flat     `ConcreteFunction._run_flat`: the guard check, then the graph's function
    runner       the graph's function alone (the python backend's generated code)
    check        the graph's guard check alone (`GuardSet.check`: NOTE [guards checked by
                 generated code] in autoconv/captures.py)
    last_graph   `Function._last_graph`: the test that the last call's graph holds
    inputs       `ConcreteFunction._inputs`: the graph function's arguments made of the call's
    check+runner the two called one after the other (more than the sum of the two alone: the
                 check's walk of the module dicts evicts what the graph's function reads)
    unchecked    the whole call of a second Function of the same function or module, whose
                 graph's guard check is removed: the ceiling any faster check could reach
                 (unsafe, measured only here)
    kernels      (a Sequential of Flatten / Linear / ReLU, the seed model, only) the same aten
                 calls the python backend's function makes (`linear` into a dead temporary
                 with `out=`, `relu_`), from a hand-written loop over the layers: the floor
                 of any replay whose kernels Python calls one by one

whole - run_flat is the Python of the call's path, run_flat - runner - check the rest of
`_run_flat`. "cold": an eager call of the workload before each timed call (what a program
doing other work between calls sees: the call's objects out of the near caches), "warm": none.
Each round times every layer in turn, every other round in the reverse order; wall time
(`perf_counter`: a layer is tens of µs, below `process_time`'s resolution), min / p10 / median.
With CALLS > 1 each sample is a loop of CALLS calls of the layer (its mean per call): the
timer's own cost and a single call's misses then fall out, and whole - run_flat - last_graph
is the Python of the call's path alone (docs/benchmarks.md, Session 54). CLOCK `cpu` times
this thread's CPU time (`thread_time`) instead of wall time: on a loaded machine a wall sample
holds the time the process waited for a core.

    python benchmarks/replay_split.py WORKLOAD [ROUNDS [CALLS [CLOCK]]]  # "seed model" 300
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402


def layers(which: str) -> tuple[dict, object, str]:
    """{name: a call of no arguments} of each layer of `which`'s replay, its eager call and
    its label."""
    label, make, make_args = next((w[0], w[1], w[2]) for w in sorted(
        loops.WORKLOADS, key=lambda w: w[0] != which) if which in w[0])
    fn, args = make(), make_args()
    function = autoconv.autoconv(fn)
    scripted = torch.jit.script(fn)
    for _ in range(40):  # (past the guards' first calls: NOTE [guards checked by generated code])
        function(*args)
        scripted(*args)
    concrete = function._last_graph(function._last, args)
    assert concrete is not None and function.trace_count == 1, label
    tensors = concrete._inputs(args)
    runner, check = concrete._runner, concrete._check_captured or (lambda: None)
    assert loops._same(function(*args), fn(*args)), label
    unchecked = autoconv.autoconv(fn)
    for _ in range(40):
        unchecked(*args)
    unchecked._last_graph(unchecked._last, args)._check_captured = None  # (the ceiling)
    kernels = _kernel_loop(fn, *args)
    return {
        **({"kernels": kernels} if kernels is not None else {}),
        "eager": lambda: fn(*args),
        "whole": lambda: function(*args),
        "run_flat": lambda: concrete._run_flat(tensors, args, {}),
        "runner": lambda: runner(*tensors),
        "check": check,
        "check+runner": lambda: (check(), runner(*tensors)),
        "last_graph": lambda: function._last_graph(function._last, args),
        "inputs": lambda: concrete._inputs(args),
        "unchecked": lambda: unchecked(*args),
        "TorchScript": lambda: scripted(*args),
    }, (lambda: fn(*args)), label


def _kernel_loop(fn, *args):
    """The `kernels` layer's call for a Sequential of Flatten / Linear / ReLU (else None):
    straight-line code, as the graph's function is, over the layers' tensors bound once."""
    if not isinstance(fn, torch.nn.Sequential) or len(args) != 1 or not all(
            type(m) in (torch.nn.Flatten, torch.nn.Linear, torch.nn.ReLU) for m in fn):
        return None
    x, = args
    namespace = {"x": x, "linear": torch._C._nn.linear,
                 "relu_": torch._C._VariableFunctions.relu_, "relu": torch.relu}
    lines, h, made, spare = ["def call():", "    h0 = x"], 0, False, None  # spare: (line, width)
    for i, m in enumerate(fn):
        if type(m) is torch.nn.Flatten:
            lines.append(f"    h{i + 1} = h{h}.view({x.shape[0]}, -1)")
        elif type(m) is torch.nn.ReLU:
            lines.append(f"    h{i + 1} = {'relu_' if made else 'relu'}(h{h})")
            made = True
        else:  # (into the temporary of two layers back, as the graph's function writes)
            namespace[f"w{i}"], namespace[f"b{i}"] = m.weight, m.bias
            out = f", out=h{spare[0]}" if spare and spare[1] == m.out_features else ""
            lines.append(f"    h{i + 1} = linear(h{h}, w{i}, b{i}{out})")
            spare, made = ((h, m.in_features) if made else None), True
        h = i + 1
    exec("\n".join([*lines, f"    return h{h}"]), namespace)
    call = namespace["call"]
    assert torch.equal(call(), fn(x))
    return call


def run(which: str, rounds: int = 300, calls: int = 1, clock: str = "wall") -> None:
    now = time.thread_time if clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    variants, eager, label = layers(which)
    for cold in (True, False) if calls == 1 else (False,):  # (a loop is warm after its first)
        times = {name: [] for name in variants}
        order = list(variants.items())
        for round_ in range(rounds):
            for name, call in (order if round_ % 2 else reversed(order)):
                if cold:
                    eager()
                start = now()
                for _ in range(calls):
                    call()
                times[name].append((now() - start) / calls)
        print(f"{label}, {'cold' if cold else 'warm'}: load {os.getloadavg()[0]:.2f}, {rounds} "
              f"rounds of {calls} call(s), {clock} µs a call (min / p10 / median; ratio of the "
              "min to eager's)")
        least = min(times["eager"])
        for name, values in times.items():
            values.sort()
            print(f"  {name:12s} {values[0] * 1e6:9.1f} {values[len(values) // 10] * 1e6:9.1f} "
                  f"{statistics.median(values) * 1e6:9.1f}   {values[0] / least:.3f}x")


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300,
        int(sys.argv[3]) if len(sys.argv) > 3 else 1,
        sys.argv[4] if len(sys.argv) > 4 else "wall")
