"""Converted code on a CUDA device (issue 12): every backend, torch.export and torch.compile,
mixed CPU/CUDA arguments, and how often a staged loop reads a value back to the host.

Every test is marked `cuda` and skips without a device. `AUTOCONV_TEST_DEVICE=cpu` runs the same
tests on the CPU (the tests that need two devices skip), so their logic can be checked on a
machine without a GPU:

    AUTOCONV_TEST_DEVICE=cpu python -m pytest -q tests/test_cuda.py

`AUTOCONV_CUDA_REPORT=PATH` appends one JSON line per measuring test to PATH: host reads (syncs)
per replay and per loop iteration for each backend, and replay times. What a sync count should
be is not asserted (no GPU has checked it yet): the report is the figure README quotes.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import autoconv
from autoconv_runtime import StagingError
from support import Calling

DEVICE = os.environ.get("AUTOCONV_TEST_DEVICE", "cuda")
BACKENDS = ["python", "fx", "inductor", "cudagraphs"]

pytestmark = pytest.mark.cuda


@pytest.fixture
def device():
    """The device the tests run on: CUDA, or the CPU under AUTOCONV_TEST_DEVICE=cpu (conftest
    lets `cuda` tests that take this fixture run then)."""
    torch._dynamo.reset()
    return torch.device(DEVICE)


needs_two_devices = pytest.mark.skipif(DEVICE != "cuda", reason="needs CUDA and the CPU")


# --- the workloads: one staged construct each ------------------------------------------------

def branch(x, w):
    if (x * w).sum() > 0:
        y = torch.relu(x) @ w
    else:
        y = torch.tanh(x) @ w.t()
    return y


def halve_until(x):
    while x.abs().sum() > 1:
        x = x / 2
    return x


def scaled_sum(x, n):
    s = torch.zeros_like(x)
    for i in range(n):
        s = s + x * i
    return s


def grow_until(x):
    vals = []
    while x.sum() > 1:
        x = x * 0.5
        vals.append(x)
    if len(vals) > 0:
        return torch.stack(vals).sum(0)
    return x


def double_until(x, limit):
    for i in range(8):
        if x.sum() > limit:
            break
        x = x * 2
    return x


def _inputs(name, device):
    """Argument tuples for workload `name`; the first is traced, the others take other paths
    (the other branch; zero, fewer or more loop trips; an early or no `break`)."""
    def full(value, shape=(3,)):
        return torch.full(shape, value, device=device)

    w = torch.arange(16.0, device=device).reshape(4, 4) / 16 - 0.25
    scalar = {"dtype": torch.int64, "device": device}
    return {
        "branch": [(full(1.0, (4, 4)), w.abs()), (full(-1.0, (4, 4)), w.abs()),
                   (full(0.5, (4, 4)), w)],
        "halve_until": [(full(4.0),), (full(0.1),), (full(300.0),)],
        "scaled_sum": [(full(1.0), torch.tensor(3, **scalar)),
                       (full(1.0), torch.tensor(0, **scalar)),
                       (full(2.0), torch.tensor(7, **scalar))],
        "grow_until": [(full(4.0),), (full(0.1),), (full(300.0),)],
        "double_until": [(full(1.0), torch.tensor(10.0, device=device)),
                         (full(1.0), torch.tensor(1e4, device=device)),
                         (full(1.0), torch.tensor(0.0, device=device))],
    }[name]


WORKLOADS = {fn.__name__: fn for fn in (branch, halve_until, scaled_sum, grow_until, double_until)}

# Found on the CPU (AUTOCONV_TEST_DEVICE=cpu): inductor's lowering of the list-growing loop.
_INDUCTOR_LIST = pytest.mark.xfail(
    strict=True, raises=StagingError, reason="inductor fails to lower a list grown under a "
    "tensor `while` (the buffer sized by the counting loop's trip count, an unbacked size, "
    "reaches a `cond`): torch's InductorError (KeyError 'unbacked_bindings'), a StagingError "
    "naming the backend since session 31")


def _cases(backends, xfails):
    """(backend, workload) params; `xfails` maps such a pair to its mark."""
    return [pytest.param(b, name, marks=xfails.get((b, name), ()), id=f"{b}-{name}")
            for b in backends for name in WORKLOADS]


def _report(record) -> None:
    path = os.environ.get("AUTOCONV_CUDA_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"device": DEVICE, **record}) + "\n")


def _clone(args):
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _check(got, want, device):
    assert isinstance(got, torch.Tensor), got
    assert got.device.type == device.type, (got.device, device)
    torch.testing.assert_close(got, want)  # (devices compared too)


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- each backend, replayed on inputs that take other paths ----------------------------------

@pytest.mark.parametrize("backend, name", _cases(BACKENDS, {("inductor", "grow_until"):
                                                             _INDUCTOR_LIST}))
def test_backend_replays_other_paths_on_the_device(device, backend, name):
    fn, inputs = WORKLOADS[name], _inputs(name, device)
    f = autoconv.autoconv(fn, backend=backend)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (cudagraphs on the CPU: "skipping cudagraphs")
        f(*_clone(inputs[0]))
        _synchronize(device)
        first_call = time.perf_counter() - start
        for args in inputs:
            want = fn(*_clone(args))
            _check(f(*_clone(args)), want, device)
    assert f.trace_count == 1
    # Replay time of the traced input, queued kernels included (a figure, not a check).
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(20):
        f(*inputs[0])
    _synchronize(device)
    _report({"test": "replay", "backend": backend, "workload": name,
             "first_call_s": round(first_call, 3),
             "replay_us": round((time.perf_counter() - start) / 20 * 1e6, 1)})


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_of_earlier_calls_stay_valid(device, backend):
    # A CUDA-graph replay writes its outputs into the same memory each run: a caller that keeps
    # the first result and calls again must still read the first result (as in Python).
    f = autoconv.autoconv(branch, backend=backend)
    inputs = _inputs("branch", device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = [f(*_clone(args)) for args in inputs]
    for got, args in zip(kept, inputs):
        _check(got, branch(*_clone(args)), device)


# --- torch.export and torch.compile of converted code on the device --------------------------

@pytest.mark.parametrize("name", list(WORKLOADS))
def test_export_saved_and_loaded_runs_on_the_device(device, name):
    fn, inputs = WORKLOADS[name], _inputs(name, device)
    program = torch.export.export(Calling(autoconv.convert(fn)), _clone(inputs[0]), strict=False)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    module = torch.export.load(saved).module()
    for args in inputs:
        _check(module(*_clone(args)), fn(*_clone(args)), device)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_compile_fullgraph_on_the_device(device, name):
    # inductor, torch.compile's default backend: it generates the device's kernels (triton on
    # CUDA) for the staged cond / while_loop.
    fn, inputs = WORKLOADS[name], _inputs(name, device)
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, dynamic=False)
    for args in inputs:
        _check(compiled(*_clone(args)), fn(*_clone(args)), device)


# --- mixed CPU / CUDA arguments: what Python gives, a result or an error ---------------------

@needs_two_devices
@pytest.mark.parametrize("backend", ["python", "fx"])
def test_cpu_and_cuda_tensors_raise_as_python_does(device, backend):
    x, w = torch.ones(4, 4), torch.ones(4, 4, device=device)
    with pytest.raises(RuntimeError, match="device") as python:
        branch(x, w)
    f = autoconv.autoconv(branch, backend=backend)
    with pytest.raises((RuntimeError, StagingError)) as staged:
        f(x, w)
    # torch's own message (which devices), not an internal error of autoconv's
    assert "device" in str(staged.value), (str(python.value), str(staged.value))
    assert not isinstance(staged.value, (KeyError, AssertionError))


@needs_two_devices
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cpu_scalar_tensor_with_cuda_tensors_gives_python_result(device, backend):
    # torch lets a 0-d CPU tensor take part in a CUDA op: Python gives a CUDA result.
    f = autoconv.autoconv(double_until, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for limit in (10.0, 1e4, 0.0):
            x, bound = torch.ones(3, device=device), torch.tensor(limit)
            _check(f(x, bound), double_until(x, bound), device)


@needs_two_devices
def test_the_device_is_part_of_the_signature(device):
    f = autoconv.autoconv(halve_until)
    for x in (torch.full((3,), 4.0, device=device), torch.full((3,), 4.0)):
        got = f(x)
        assert got.device == x.device
        torch.testing.assert_close(got, halve_until(x))
    assert f.trace_count == 2


# --- host syncs of a staged loop (reported, not asserted) ------------------------------------

class _HostReads(TorchDispatchMode):
    """Counts ops that read a tensor's value back to the host (what syncs with a CUDA device).
    Used on the CPU, where torch.cuda's sync debug mode has nothing to report."""

    READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
             torch.ops.aten.nonzero.default, torch.ops.aten.item.default}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func in self.READS
        return func(*args, **(kwargs or {}))


def _host_syncs(device, f, args) -> int:
    """Host syncs during one call of `f`: on CUDA the warnings of torch.cuda's sync debug
    mode (cudaMemcpy to the host, cudaStreamSynchronize, ...)."""
    _synchronize(device)
    if device.type != "cuda":
        with _HostReads() as reads:
            f(*args)
        return reads.count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            f(*args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    _synchronize(device)
    return sum("synchroniz" in str(w.message) for w in caught)


def _trips(x) -> int:
    trips = 0
    while x.abs().sum() > 1:
        x, trips = x / 2, trips + 1
    return trips


@pytest.mark.parametrize("backend", BACKENDS)
def test_host_syncs_of_a_staged_loop_and_branch(device, backend):
    """Syncs per replay of a staged `while` at two trip counts (their difference over the
    extra trips: syncs per iteration) and of a staged `if`. Only reported: a CUDA-graph
    conditional node (cudagraphs) would make the `if`'s count 0."""
    f = autoconv.autoconv(halve_until, backend=backend)
    few = torch.full((3,), 4.0, device=device)
    many = torch.full((3,), 4.0 * 2 ** 20, device=device)
    g = autoconv.autoconv(branch, backend=backend)
    xb, wb = _inputs("branch", device)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):  # builds, warms up (cudagraphs records on a later call)
            f(few.clone()), f(many.clone()), g(xb, wb)
    syncs_few, syncs_many = _host_syncs(device, f, (few,)), _host_syncs(device, f, (many,))
    extra_trips = _trips(many) - _trips(few)
    record = {"test": "host_syncs", "backend": backend,
              "while_syncs": [syncs_few, syncs_many], "while_trips": [_trips(few), _trips(many)],
              "syncs_per_iteration": round((syncs_many - syncs_few) / extra_trips, 2),
              "if_syncs": _host_syncs(device, g, (xb, wb))}
    _report(record)
    print(record)
    torch.testing.assert_close(f(many.clone()), halve_until(many))
