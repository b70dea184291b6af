"""Per-call overhead of an `@autoconv` replay: what a call costs beyond its graph's kernels.

Four functions with trivial graphs, so that the `Function`'s own work is most of each call:

    small      f(x) = x + 1 on a 4-element tensor
    module     a module's forward (Linear(8, 8) then relu), called as autoconv(module)(x)
    object     f(obj, x), obj a plain object with a tensor, two numbers, a list of 10 tensors
               and a dict (its fields are part of the signature: NOTE [fields of argument
               objects] in autoconv/signature.py)
    captures   f(x) reading a global tensor, a global number, a global dict's item and a
               closure's number (guarded on every call: `captures.check`)

Each is timed as a whole call of eager, a whole call of the autoconv `Function`, a direct call
of its `ConcreteFunction` (`concrete`: `f.get_concrete_function(*args)(*args)`), and the parts
of the Function's call one by one: the signature (binding, `_extra`, `signature_of`), the cache
lookup (a dict `get` with an equal signature), the captures check (`GuardSet.check`), the
graph's inputs (module parameters read live, tensors in an argument object's fields), the
graph run (the backend's runner). "other" is the whole call less those parts (the output's
unflattening, the dispatch itself). CPU time (`time.thread_time`), one torch thread, grad off;
the variants take turns in short loops and each reports its minimum over the rounds (the
median beside it, in the results).

    python benchmarks/call_overhead.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import torch

import autoconv
from autoconv.function import Function
from autoconv.object_paths import follow
from autoconv.signature import signature_of

ROUNDS = 15
LOOP_S = 0.01  # CPU seconds each variant's timing loop aims at


class Config:
    def __init__(self):
        self.scale = torch.tensor(2.0)
        self.gain = 3
        self.rate = 0.5
        self.history = [torch.full((2,), float(i)) for i in range(10)]
        self.options = {"eps": 1e-3, "mode": "sum"}


def small(x):
    return x + 1


def with_object(cfg, x):
    return x * cfg.scale * cfg.gain + cfg.rate + cfg.history[3].sum() * cfg.options["eps"]


TABLE = torch.arange(4.0)
SHIFT = 0.25
SETTINGS = {"factor": 2.0}


def _reader():
    temperature = 0.5

    def reads_globals(x):
        return (x + TABLE * SETTINGS["factor"] + SHIFT) * temperature

    return reads_globals


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.relu(self.lin(x))


def cases():
    """(label, eager callable, autoconv object, args)"""
    torch.manual_seed(0)
    module = Small()
    reads_globals = _reader()
    return [
        ("small", small, autoconv.autoconv(small), (torch.ones(4),)),
        ("module", module, autoconv.autoconv(module), (torch.ones(2, 8),)),
        ("object", with_object, autoconv.autoconv(with_object), (Config(), torch.ones(2))),
        ("captures", reads_globals, autoconv.autoconv(reads_globals), (torch.ones(4),)),
    ]


def _parts(function: Function, args) -> dict:
    """The parts of one replayed call, each a callable of no arguments."""
    bound, kwargs = function._bind(args, {})
    signature, leaves = signature_of(bound, kwargs, function._extra())
    concrete = function._cache[signature]
    equal, _ = signature_of(bound, kwargs, function._extra())  # equal, not the cached object
    roots = (bound, kwargs, concrete._bound_self)
    inputs = [*concrete._inputs(leaves), *[follow(roots, path)[-1] for path in concrete._live]]
    runner = concrete._runner
    parts = {
        "signature": lambda: signature_of(*function._bind(args, {}), function._extra()),
        "lookup": lambda: function._cache.get(equal),
    }
    if concrete._captured:
        parts["captures"] = concrete._captured.check
    if concrete._state is not None or concrete._live:
        # parameters and buffers read live; tensors in argument objects' fields followed
        parts["inputs"] = lambda: [*concrete._inputs(leaves), *[
            follow(roots, path)[-1] for path in concrete._live]]
    parts["graph"] = lambda: runner(*inputs)
    return parts


def _count(fn) -> int:
    number, start = 1, time.thread_time()
    while True:
        for _ in range(number):
            fn()
        spent = time.thread_time() - start
        if spent > LOOP_S / 4:
            return max(1, int(number * LOOP_S / spent))
        number *= 4
        start = time.thread_time()


def _interleaved(callables: dict, rounds: int) -> dict:
    """{name: (min, median) µs per call}, the callables taking turns."""
    counts = {name: _count(fn) for name, fn in callables.items()}
    runs = {name: [] for name in callables}
    for _ in range(rounds):
        for name, fn in callables.items():
            number = counts[name]
            start = time.thread_time()
            for _ in range(number):
                fn()
            runs[name].append((time.thread_time() - start) / number * 1e6)
    return {name: (min(r), statistics.median(r)) for name, r in runs.items()}


def run(rounds: int = ROUNDS) -> dict:
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    results = {}
    try:
        for label, eager, function, args in cases():
            expected = eager(*args)
            got = function(*args)
            function(*args)
            assert torch.equal(got, expected), label
            assert function.trace_count == 1, (label, function.trace_count)
            concrete = function.get_concrete_function(*args)
            concrete(*args)
            callables = {"eager": lambda e=eager, a=args: e(*a),
                         "autoconv": lambda f=function, a=args: f(*a),
                         "concrete": lambda c=concrete, a=args: c(*a)}
            callables.update(_parts(function, args))
            times = _interleaved(callables, rounds)
            assert function.trace_count == 1, (label, "retraced while timed")
            parts = [name for name in times if name not in ("eager", "autoconv", "concrete")]
            other = times["autoconv"][0] - sum(times[name][0] for name in parts)
            overhead = times["autoconv"][0] - times["graph"][0]
            results[label] = {"us": {name: round(t[0], 2) for name, t in times.items()},
                              "median_us": {name: round(t[1], 2) for name, t in times.items()},
                              "other_us": round(other, 2), "overhead_us": round(overhead, 2)}
            cells = "; ".join(f"{name} {t[0]:.2f}" for name, t in times.items())
            print(f"   {label:9} µs per call (min over {rounds} rounds): {cells}; other "
                  f"{other:.2f}; overhead (autoconv - graph) {overhead:.2f}")
    finally:
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
    results["load"] = list(os.getloadavg())
    return results


if __name__ == "__main__":
    print(f"torch {torch.__version__}, one torch thread, CPU time; load {os.getloadavg()[0]:.2f}")
    run(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)
