"""Loop workloads practitioners write, replayed on CPU: eager vs autoconv vs TorchScript vs
torch.compile, side by side in one run.

Each workload is written as a new user would write it (plain Python control flow on tensors).
Every variant is built, run once (`setup`: convert + trace + build, or script, or compile) and
checked against eager before it is timed; a variant that fails or differs is reported, not
timed. Times are the min [median] of interleaved timing loops (see staged.py), printed with the
ratio to eager (below 1: faster than eager).

* collatz(27), newton_sqrt(2.0): scalar `while` loops on 0-d tensors (from staged.py).
* bisection: a root of x^3 - 2x - 5 on [2, 3] to a 1e-9 tolerance (a `while` with an `if`).
* gru_greedy: a greedy decoder over a small randomly initialised GRU cell that appends each
  token to a list until it emits EOS (or 24 tokens), then stacks them; "no bound": the same
  without the 24 (`while token != eos:`), whose list the graph sizes by counting the trips.
* nms_mask: non-maximum suppression of 32 boxes as a fixed-shape suppression mask (a `for` over
  the boxes in score order with a data-dependent `if`).
* halvings(3000): a `while` of 0-d numbers that appends each to a list (12 trips), then stacks
  them (issue 12: a list-growing loop of numbers).
* branchy seed model: 100 x (Linear(64) + ReLU) with a data-dependent branch every 10 layers.
* seed model: the same without the branches (as in staged.py, without its inductor row).

    python benchmarks/loops.py [--json PATH] [--device cuda] [--variants eager,autoconv,...]
        [--cpu-time] [WORD ...]     # only the workloads whose label holds a WORD
    python benchmarks/loops.py per_iteration [--device cuda]

`--device cuda` runs the same workloads on a CUDA device (inputs and modules moved there; each
timing loop ends with `torch.cuda.synchronize()`, so queued kernels are counted) with the
`cudagraphs` backend added and `inductor_cpp` left out (its C++ build takes minutes there);
`--variants` keeps the variants named (as printed, comma-separated).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import staged  # noqa: E402
from staged import collatz_steps, newton_sqrt  # noqa: E402


def bisection(lo, hi):
    """A root of x^3 - 2x - 5 between 0-d float64 tensors `lo` and `hi`, to 1e-9."""
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        if (mid * mid * mid - 2 * mid - 5) * (lo * lo * lo - 2 * lo - 5) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class GreedyDecoder(torch.nn.Module):
    """Greedy decoding with a GRU cell: feed back the argmax token until EOS or `max_len`."""

    def __init__(self, vocab: int = 16, hidden: int = 32, eos: int = 0, max_len: int = 24):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.cell = torch.nn.GRUCell(hidden, hidden)
        self.out = torch.nn.Linear(hidden, vocab)
        self.eos = eos
        self.max_len = max_len

    def forward(self, h):
        token = torch.tensor(1, device=h.device)
        tokens = []
        steps = 0
        while token != self.eos and steps < self.max_len:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
            steps += 1
        return torch.stack(tokens)


class UnboundedGreedyDecoder(GreedyDecoder):
    """The greedy decoder without `steps < max_len`: no bound on the trips that a test names,
    so the graph counts them in a first loop to size the list (NOTE [lists in while loops]);
    the python backend runs one (autoconv/grown_lists.py)."""

    def forward(self, h):
        token = torch.tensor(1, device=h.device)
        tokens = []
        while token != self.eos:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
        return torch.stack(tokens)


def nms_mask(boxes, scores):
    """Non-maximum suppression (IoU > 0.5) as a mask over the boxes sorted by score."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    width = (torch.minimum(x2[:, None], x2[None, :]) -
             torch.maximum(x1[:, None], x1[None, :])).clamp(min=0)
    height = (torch.minimum(y2[:, None], y2[None, :]) -
              torch.maximum(y1[:, None], y1[None, :])).clamp(min=0)
    inter = width * height
    iou = inter / (area[:, None] + area[None, :] - inter)
    n = boxes.shape[0]
    index = torch.arange(n, device=boxes.device)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for i in range(n):
        if keep[i]:
            keep = keep & ((iou[i] <= 0.5) | (index <= i))
    return order, keep


def halvings(x):
    """A scalar list-growing while: the halvings of x above 1."""
    out = []
    while x > 1:
        out.append(x)
        x = x / 2
    return torch.stack(out)


class BranchySeed(torch.nn.Module):
    """The seed model with a data-dependent branch every 10 layers."""

    def __init__(self):
        super().__init__()
        self.flatten = torch.nn.Flatten()
        widths = [28 * 28] + [64] * 100
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = self.flatten(x)
        i = 0
        for layer in self.layers:
            x = torch.relu(layer(x))
            i += 1
            if i % 10 == 0:
                if x.mean() > 0.05:
                    x = x * 0.5
                else:
                    x = x + 0.1
        return self.head(x)


def _boxes(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g) * 80
    size = torch.rand(n, 2, generator=g) * 30 + 5
    return torch.cat([corner, corner + size], 1), torch.rand(n, generator=g)


def _decoder():
    torch.manual_seed(3)
    return GreedyDecoder().eval()


def _unbounded_decoder():
    torch.manual_seed(3)
    return UnboundedGreedyDecoder().eval()


def _seed():
    torch.manual_seed(0)
    return staged.seed_model()


def _branchy():
    torch.manual_seed(0)
    return BranchySeed().eval()


# label -> (callable or module builder, args builder, unit scale, unit)
WORKLOADS = [
    ("collatz(27)", lambda: collatz_steps, lambda: (torch.tensor(27),), 1e6, "µs"),
    ("newton_sqrt(2.0)", lambda: newton_sqrt,
     lambda: (torch.tensor(2.0, dtype=torch.float64),), 1e6, "µs"),
    ("bisection(2, 3)", lambda: bisection,
     lambda: (torch.tensor(2.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)),
     1e6, "µs"),
    ("gru_greedy (until EOS)", _decoder, lambda: (torch.randn(32,
                                                               generator=torch.Generator()
                                                               .manual_seed(1)),), 1e6, "µs"),
    ("gru_greedy (until EOS, no bound)", _unbounded_decoder,
     lambda: (torch.randn(32, generator=torch.Generator().manual_seed(1)),), 1e6, "µs"),
    ("nms_mask(32 boxes)", lambda: nms_mask, _boxes, 1e6, "µs"),
    ("halvings(3000) into a list", lambda: halvings, lambda: (torch.tensor(3000.0),), 1e6,
     "µs"),
    ("branchy seed model", _branchy, lambda: (torch.rand(20, 28, 28),), 1e3, "ms"),
    ("seed model", _seed, lambda: (torch.rand(20, 28, 28),), 1e3, "ms"),
]


DEVICE = torch.device("cpu")
VARIANTS = None  # None: all of the device's; else the names to keep


def _variants(fn):
    on_cuda = DEVICE.type == "cuda"
    variants = [
        ("eager", lambda: fn),
        ("autoconv", lambda: autoconv.autoconv(fn)),
        ("autoconv backend=fx", lambda: autoconv.autoconv(fn, backend="fx")),
        ("autoconv backend=cudagraphs" if on_cuda else "autoconv backend=inductor_cpp",
         lambda: autoconv.autoconv(fn, backend="cudagraphs" if on_cuda else "inductor_cpp")),
        ("TorchScript", lambda: torch.jit.script(fn)),
        ("torch.compile", lambda: torch.compile(fn)),
    ]
    return [v for v in variants if VARIANTS is None or v[0] == "eager" or v[0] in VARIANTS]


def _on_device(value):
    """A workload's module or argument tuple on DEVICE."""
    if isinstance(value, tuple):
        return tuple(_on_device(v) for v in value)
    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        return value.to(DEVICE)
    return value


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and \
            torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6)
    return a == b


def meta() -> dict:
    """Where the figures were taken: machine, torch version, load (and the GPU, on one)."""
    info = {"torch": torch.__version__, "python": sys.version.split()[0],
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "load": list(os.getloadavg()), "device": str(DEVICE)}
    if DEVICE.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(DEVICE)
    return info


def count_to(n):
    """The cheapest staged loop: one compare and one add per iteration."""
    i = torch.zeros((), dtype=n.dtype, device=n.device)
    while i < n:
        i += 1
    return i


ITERATIONS = 1000


def run_per_iteration() -> dict:
    """µs per iteration of `while i < n: i += 1` (n = 1000): 0-d int64 and int32, and int64
    with `n` of shape (1,) (the python backend runs all three on Python ints), and float16
    (a dtype it does not run on Python numbers: its tensor loop)."""
    print(f"== per-iteration cost of a staged loop, `while i < n: i += 1`, n = {ITERATIONS} "
          "(µs per iteration, min [median])")
    results, failures = {}, []
    for dtype, shape in ((torch.int64, ()), (torch.int32, ()), (torch.int64, (1,)),
                         (torch.float16, ())):
        args = (torch.full(shape, ITERATIONS, dtype=dtype, device=DEVICE),)
        label = f"count_to, {str(dtype).replace('torch.', '')}"
        label += ", n of shape (1,)" if shape else ""
        label += ", tensor loop" if dtype == torch.float16 else ""
        print(f"-- {label}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            variants = [v for v in _variants(count_to)
                        if v[0] not in ("torch.compile", "autoconv backend=inductor_cpp")]
            times = staged._compare(label, variants, args, count_to(*args),
                                    "µs/it", 1e6 / ITERATIONS, failures, sync=_sync)
        results[label] = {name: value[0] for name, value in times.items()}
    return results


def run(only=None) -> dict:
    """Print the table; returns {"meta": ..., "workloads": {label: {variant: row}}}."""
    where = "CPU" if DEVICE.type == "cpu" else f"{DEVICE} ({torch.cuda.get_device_name(DEVICE)})"
    print(f"== loop workloads on {where} (min [median] of interleaved timing loops; ratio to "
          "eager; setup = build + first call)")
    info = meta()
    print(f"   torch {info['torch']}, {info['cpus']} CPUs, {info['threads']} threads, load "
          f"average {info['load'][0]:.2f}")
    results, failures = {}, []
    staged._same = _same  # tuples of tensors (nms_mask returns two)
    for label, make, make_args, scale, unit in WORKLOADS:
        if only and not any(word in label for word in only):
            continue
        fn, args = _on_device(make()), _on_device(make_args())
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = fn(*args)
            print(f"-- {label}")
            times = staged._compare(label, _variants(fn), args, expected, unit, scale, failures,
                                    sync=_sync)
        rows = {}
        for name, _ in _variants(fn):
            if name in times:
                value, ratio = times[name]
                rows[name] = {"time": value, "unit": unit, "x_eager": ratio}
            else:
                rows[name] = {"error": next(staged._short(e) for lab, n, e in failures
                                            if lab == label and n == name)}
        results[label] = rows
    per_iteration = run_per_iteration() if not only else {}
    info["load_end"] = list(os.getloadavg())
    return {"meta": info, "workloads": results, "per_iteration_us": per_iteration}


def main(argv=None) -> int:
    global DEVICE, VARIANTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", help="per_iteration, or words of workload labels")
    parser.add_argument("--json", help="also write the results as JSON to this path")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--variants", help="comma-separated variant names to time (and eager)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time in CPU time (time.process_time) instead of wall time")
    options = parser.parse_args(argv)
    DEVICE = torch.device(options.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks/loops.py: no CUDA device here; nothing to measure.")
        return 0
    VARIANTS = options.variants.split(",") if options.variants else None
    if options.cpu_time:
        staged.CLOCK = time.process_time
    if options.words == ["per_iteration"]:
        out = run_per_iteration()
    else:
        out = run(options.words)
    if options.json:
        with open(options.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
