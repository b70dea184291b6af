"""GPU side of issue 3: the seed model and a data-dependent branch on a CUDA device.

    python benchmarks/cuda.py            # needs a CUDA device; says so and exits 0 without one
    python benchmarks/cuda.py --device cpu   # the same code paths on the CPU (a smoke test)

Every variant is checked against eager before it is timed. Times are per call with
`torch.cuda.synchronize()` after each timing loop (so queued kernels are counted), min and
median of interleaved rounds. The CUDA-graph variants are the ones the 10x target is about: a
graph of 201 small kernels replayed with one launch, and, with a staged `cond`, torch 2.13's
cudagraphs backend capturing the branch as a CUDA-graph conditional node (no host sync).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import autoconv  # noqa: E402
from staged import seed_model  # noqa: E402

ROUNDS = 7
TARGET_SECONDS = 0.05


def gated(x, w):
    """A data-dependent branch between two matmuls: one cond per call."""
    h = x @ w
    if h.sum() > 0:
        h = torch.relu(h) @ w
    else:
        h = torch.tanh(h) @ w.t()
    return h


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _times(variants, args, device):
    """{name: (min, median) seconds per call}, the variants taking turns each round."""
    counts = {}
    for name, fn in variants.items():
        _sync(device)
        start = time.perf_counter()
        fn(*args)
        _sync(device)
        counts[name] = max(1, min(10_000, int(TARGET_SECONDS / max(time.perf_counter() - start,
                                                                     1e-7))))
    runs = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(counts[name]):
                fn(*args)
            _sync(device)
            runs[name].append((time.perf_counter() - start) / counts[name])
    return {name: (min(r), statistics.median(r)) for name, r in runs.items()}


def _build(variants, args, expected, device):
    """Build each variant (first call included) and keep those that agree with eager."""
    built = {}
    for name, make in variants.items():
        start = time.perf_counter()
        try:
            fn = make()
            out = fn(*args)
            _sync(device)
        except Exception as e:  # a variant torch cannot build here is reported, not fatal
            print(f"   {name:34} failed to build: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            continue
        if not torch.allclose(out.float(), expected.float(), rtol=1e-3, atol=1e-4):
            print(f"   {name:34} WRONG RESULT (max diff {(out - expected).abs().max().item():.3g})")
            continue
        built[name] = (fn, time.perf_counter() - start)
    return built


def _report(title, variants, args, device):
    print(f"\n== {title} (ms per call, min [median]; setup = build + first call)")
    with torch.no_grad():
        expected = variants["eager"]()(*args)
        _sync(device)
        built = _build(variants, args, expected, device)
        times = _times({name: fn for name, (fn, _) in built.items()}, args, device)
    base = times["eager"][0]
    for name, (best, median) in times.items():
        print(f"   {name:34} {best * 1e3:8.3f} [{median * 1e3:8.3f}] ms   "
              f"{base / best:6.2f}x eager   setup {built[name][1]:6.2f} s")
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    device = torch.device(parser.parse_args(argv).device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks/cuda.py: no CUDA device here; nothing to measure.")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}")
    on_gpu = device.type == "cuda"

    torch.manual_seed(0)
    model = seed_model().to(device)
    x = torch.rand(20, 28, 28, device=device)
    seed = {
        "eager": lambda: model,
        "autoconv (python backend)": lambda: autoconv.autoconv(model),
        "autoconv backend=inductor": lambda: autoconv.autoconv(model, backend="inductor"),
        "torch.compile": lambda: torch.compile(model),
    }
    if on_gpu:
        seed["autoconv backend=cudagraphs"] = lambda: autoconv.autoconv(model, backend="cudagraphs")
        seed["torch.compile reduce-overhead"] = lambda: torch.compile(model, mode="reduce-overhead")
    _report("seed model: 100 x (Linear(64) + ReLU), input [20, 28, 28], no_grad", seed, (x,),
            device)

    w = torch.randn(256, 256, device=device) / 16
    h = torch.randn(64, 256, device=device)
    branch = {
        "eager": lambda: gated,
        "autoconv (python backend)": lambda: autoconv.autoconv(gated),
        "autoconv backend=inductor": lambda: autoconv.autoconv(gated, backend="inductor"),
    }
    if on_gpu:
        branch["autoconv backend=cudagraphs"] = lambda: autoconv.autoconv(gated,
                                                                           backend="cudagraphs")
    _report("a staged if between two matmuls ([64, 256] @ [256, 256])", branch, (h, w), device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
