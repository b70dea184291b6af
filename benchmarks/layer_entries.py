"""The seed model's layers through each entry point torch offers, side by side: which ones give
eager's bits, and what each costs against the python backend's generated function.

The seed model (100 x Linear(64) + ReLU, benchmarks/staged.py) replays as 101 `linear(h, w, b,
out=buf)` and 100 `relu_` calls (the python backend's lines, grad mode off). Each variant below
is the same model written with other entries, as a loop over its layers; the generated function
itself is timed in the same rounds. Two parts:

    equality   each entry's result against eager's `linear` (+ `relu`) over a grid of shapes
               (m, k, n): `torch.equal`, bit for bit, on this machine's BLAS
    chain      CPU time (`thread_time`) of the whole model per variant, 20 calls a sample,
               rounds interleaved (every other round reversed); min and median
    below      the generated function of the seed model, its branchy variant and the GRU
               decoder (benchmarks/loops.py) called as is and under
               `torch._C._AutoDispatchBelowAutograd` (the one faster eager-equal entry the
               chain finds, as an upper bound: not used by the backend, see docs/benchmarks.md)

A variant marked "kept" holds something made from a parameter across calls (a transpose, a
broadcast bias): it is a lower bound, not a candidate, as no cheap test sees `p.data = t`
(docs/benchmarks.md, Session 49 and 52).

    python benchmarks/layer_entries.py [ROUNDS] [PARTS]     # PARTS: e.g. equality,chain,below
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
import staged  # noqa: E402

_LINEAR, _RELU_, _ADDMM, _MM = torch._C._nn.linear, torch.relu_, torch.addmm, torch.mm
_FUSED = torch._addmm_activation


def equality() -> dict:
    """{entry: [(m, k, n) whose result differs from eager's]}."""
    generator = torch.Generator().manual_seed(0)
    differ: dict = {}
    shapes = [(m, k, n) for m in (1, 3, 20, 64, 100) for k in (1, 7, 64, 300, 784, 2000)
              for n in (1, 10, 64, 130)]
    for m, k, n in shapes:
        x, w, b = (torch.randn(*s, generator=generator) for s in ((m, k), (n, k), (n,)))
        linear = _LINEAR(x, w, b)
        entries = {
            "addmm(b, x, w.t())": (_ADDMM(b, x, w.t()), linear),
            "_addmm_activation(b, x, w.t())": (_FUSED(b, x, w.t()), torch.relu(linear)),
            "addmm(b expanded 2-d, x, w.t())": (_ADDMM(b.expand(m, n).contiguous(), x, w.t()),
                                                linear),
            "mm(x, w.t()) + b": (_MM(x, w.t()).add_(b), linear),
            "addmm(b, x, w.t().contiguous())": (_ADDMM(b, x, w.t().contiguous()), linear),
        }
        for name, (got, want) in entries.items():
            differ.setdefault(name, [])
            if not torch.equal(got, want):
                differ[name].append((m, k, n))
    print(f"equality with eager's linear, {len(shapes)} shapes (m, k, n):")
    for name, shapes_ in differ.items():
        print(f"  {name:34s} {len(shapes_):3d} differ  {shapes_[:3]}")
    return differ


def _variants(model, x) -> dict:
    """{name: a call of the seed model `model` at `x` through other entries}."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    weights = [m.weight for m in linears]
    biases = [m.bias for m in linears]
    hidden = list(zip(weights[1:-1], biases[1:-1]))
    rows = x.shape[0]
    kept_t = [w.t() for w in weights]
    kept_tc = [w.t().contiguous() for w in weights]
    kept_2d = [b.expand(rows, b.shape[0]).contiguous() for b in biases]

    def chain(layer):
        def call():
            h = _RELU_(_LINEAR(x.reshape(rows, -1), weights[0], biases[0]))
            a, c = torch.empty(rows, 64), torch.empty(rows, 64)
            for i, (w, b) in enumerate(hidden, 1):
                h, a, c = layer(i, h, w, b, a), c, h
            return _LINEAR(h, weights[-1], biases[-1])
        return call

    def below(call):
        def wrapped():
            with torch._C._AutoDispatchBelowAutograd():
                return call()
        return wrapped

    def inference(call):
        def wrapped():
            with torch.inference_mode():
                return call()
        return wrapped

    linear_relu = chain(lambda i, h, w, b, out: _RELU_(_LINEAR(h, w, b, out=out)))
    return {
        "linear out= + relu_ (the graph's ops)": linear_relu,
        "addmm(b, h, w.t(), out=) + relu_": chain(
            lambda i, h, w, b, out: _RELU_(_ADDMM(b, h, w.t(), out=out))),
        "_addmm_activation(b, h, w.t(), out=)": chain(
            lambda i, h, w, b, out: _FUSED(b, h, w.t(), out=out)),
        "the graph's ops, below autograd": below(linear_relu),
        "the graph's ops, inference_mode": inference(linear_relu),
        "kept w.t(): addmm out= + relu_": chain(
            lambda i, h, w, b, out: _RELU_(_ADDMM(b, h, kept_t[i], out=out))),
        "kept w.t(): _addmm_activation out=": chain(
            lambda i, h, w, b, out: _FUSED(b, h, kept_t[i], out=out)),
        "kept 2-d bias: linear out= + relu_": chain(
            lambda i, h, w, b, out: _RELU_(_LINEAR(h, w, kept_2d[i], out=out))),
        "not eager's bits: mm out= + add_ + relu_": chain(
            lambda i, h, w, b, out: _RELU_(_MM(h, w.t(), out=out).add_(b))),
        "not eager's bits: kept contiguous w.t()": chain(
            lambda i, h, w, b, out: _RELU_(_ADDMM(b, h, kept_tc[i], out=out))),
    }


def chain(rounds: int = 40) -> None:
    torch.manual_seed(0)
    model, x = staged.seed_model(), torch.rand(20, 28, 28)
    function = autoconv.autoconv(model)
    for _ in range(40):
        function(x)
    concrete = function._last_graph(function._last, (x,))
    runner, tensors = concrete._runner, concrete._inputs((x,))
    variants = {"the generated function": lambda: runner(*tensors), **_variants(model, x),
                "eager": lambda: model(x)}
    want = model(x)
    same = {name: torch.equal(call() if name != "the generated function" else call()[0], want)
            for name, call in variants.items()}
    times: dict = {name: [] for name in variants}
    order = list(variants.items())
    load = os.getloadavg()[0]
    for round_ in range(rounds):
        for name, call in (order if round_ % 2 else reversed(order)):
            start = time.thread_time()
            for _ in range(20):
                call()
            times[name].append((time.thread_time() - start) / 20)
    print(f"\nseed model, CPU µs a call (min / median, {rounds} rounds of 20 calls), load "
          f"{load:.2f} -> {os.getloadavg()[0]:.2f}; ratio of the min to the generated function's")
    least = min(times["the generated function"])
    for name, values in times.items():
        print(f"  {name:42s} {min(values) * 1e6:7.1f} {statistics.median(values) * 1e6:7.1f}"
              f"  {min(values) / least:.3f}x  {'same bits here' if same[name] else 'DIFFERENT'}")


def below(rounds: int = 40) -> None:
    """Each workload's generated function as is and below the autograd dispatch keys."""
    print(f"\nthe generated function, CPU µs a call (min / median, {rounds} rounds of 20 calls)")
    for label in ("seed model", "branchy seed model", "gru_greedy (until EOS)"):
        make, make_args = next((w[1], w[2]) for w in loops.WORKLOADS if w[0] == label)
        model, args = make(), make_args()
        function = autoconv.autoconv(model)
        for _ in range(40):
            function(*args)
        concrete = function._last_graph(function._last, args)
        runner, tensors = concrete._runner, concrete._inputs(args)

        def below_autograd():
            with torch._C._AutoDispatchBelowAutograd():
                return runner(*tensors)

        variants = {"as is": lambda: runner(*tensors), "below autograd": below_autograd}
        same = all(torch.equal(a, b) for a, b in zip(below_autograd(), runner(*tensors)))
        times: dict = {name: [] for name in variants}
        load = os.getloadavg()[0]
        for round_ in range(rounds):
            for name, call in (list(variants.items())[::1 if round_ % 2 else -1]):
                start = time.thread_time()
                for _ in range(20):
                    call()
                times[name].append((time.thread_time() - start) / 20)
        (a, b) = (times["as is"], times["below autograd"])
        print(f"  {label:24s} load {load:5.2f}: as is {min(a) * 1e6:7.1f} "
              f"{statistics.median(a) * 1e6:7.1f}, below autograd {min(b) * 1e6:7.1f} "
              f"{statistics.median(b) * 1e6:7.1f} ({min(b) / min(a):.3f}x, "
              f"{'same bits' if same else 'DIFFERENT'})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    parts = sys.argv[2].split(",") if len(sys.argv) > 2 else ["equality", "chain", "below"]
    for part in parts:
        {"equality": lambda: equality(), "chain": lambda: chain(rounds),
         "below": lambda: below(rounds)}[part]()
