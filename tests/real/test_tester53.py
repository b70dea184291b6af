"""Findings of tester 53: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them;
both are pure Python and need only torch: they could be pinned in setup.cfg's `real`,
pytorch-optimizer==4.1.0 and torchinterp1d==1.1):
- pytorch-optimizer 4.1.0: `compute_power_schur_newton` (Shampoo's inverse p-th root: a
  `for` of up to 100 trips with `if torch.logical_or(diverged, error <= tol): return
  torch.where(...)`, `out=` writes into buffers swapped each trip, `power_iteration`'s
  `torch.randn` start under `@torch.no_grad()`; the function is `@torch.inference_mode()`).
  Called as published, outside inference mode: refused honestly at matrix.py:219 (the body's
  first line; the decorator is at 192) with the fix "call the autoconv function inside
  torch.inference_mode()". Called so, it crashed or was silently wrong before this session:
  the trace's tensors are inference tensors, which have no version counter, and the runtime
  read it (torch's "Inference tensors do not track version counter" out of a `for` with a
  `break`; here it specialised the `if` on the trace's path, three graphs for one signature),
  and each specialised graph whose guard failed had drawn `power_iteration`'s start vector
  before the next graph drew again: results off by 1.6e-9 (float64) and torch's generator
  three draws on for Python's one (0.137 for Python's 1.691 as the next draw). Fixed (NOTE
  [inference tensors' versions], NOTE [a graph whose guard fails draws nothing]; regression
  tests in tests/reference/test_grad_mode.py and test_specialize.py): now one trace, equal to
  Python to the bit in the replay, a saved export and torch.compile on matrices taking 7, 6,
  2 and 5 iterations, the generator as Python leaves it.
- torchinterp1d 1.1: `interp1d` (an autograd.Function's `apply` held by a module name) inside
  a bisection with a tolerance `break`: right in the replay and a saved export (0, 8, 4 and 5
  steps). Under torch.compile refused with dynamo's unreadable "GetAttrVariable(
  GetAttrVariable(AutogradFunctionVariable(), apply), __func__) has no type", from autoconv's
  `converted_call` (runtime/calls.py), which reads `fn.__func__` of the `apply`; dynamo can
  type neither it nor `__self__`. Fixed in session 53 (apply53: NOTE [a Function's apply
  held by a name under dynamo]): equal to Python to the bit under torch.compile too.
- Also installed and not kept: torchaudio 2.11 (its `_torchaudio` library does not load with
  torch 2.13: `import torchaudio.functional` fails, so `lfilter` could not be tried);
  torchist 1.0.1 and lion-pytorch 0.2.5 (no tensor-dependent control flow to stage).
"""

from __future__ import annotations

import io

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close

try:
    from pytorch_optimizer.optimizer.utils.matrix import compute_power_schur_newton
except ImportError:
    compute_power_schur_newton = None
try:
    from torchinterp1d import interp1d
except ImportError:
    interp1d = None

F64 = torch.float64


# --- pytorch-optimizer: Shampoo's coupled Schur-Newton inverse root -----------------------------

def _schur_newton():
    pytest.importorskip("pytorch_optimizer")


def inverse_fourth_root(g):
    return compute_power_schur_newton(g, 4)


def _gram(seed, scale):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(4, 4, dtype=F64, generator=generator) * scale
    return a @ a.T + 0.1 * torch.eye(4, dtype=F64)


# traced on the first; 7, 6, 2, 5 and 2 iterations in Python
_GRAMS = [(0, 1.0), (1, 10.0), (2, 0.01), (3, 1e3)]


def _check_as_python(run):
    for seed, scale in _GRAMS:
        g = _gram(seed, scale)
        torch.manual_seed(7)
        expected, expected_next = inverse_fourth_root(g), torch.rand(())
        torch.manual_seed(7)
        got, got_next = run(g), torch.rand(())
        assert torch.equal(got, expected), (got, expected)  # (to the bit)
        assert_close(got_next, expected_next)  # (power_iteration drew once, as in Python)


def test_schur_newton_as_published_is_refused_at_its_line():
    _schur_newton()
    with pytest.raises(StagingError, match=r"matrix\.py:\d+: .*torch\.inference_mode\(\).*"
                                           r"call the autoconv function inside"):
        autoconv.autoconv(inverse_fourth_root)(_gram(0, 1.0))


def test_schur_newton_under_inference_mode_in_replay():
    _schur_newton()
    function = autoconv.autoconv(inverse_fourth_root)
    with torch.inference_mode():
        _check_as_python(function)
    assert function.trace_count == 1


class _InverseRoot(torch.nn.Module):
    def forward(self, g):
        return autoconv.convert(inverse_fourth_root)(g)


def test_schur_newton_under_inference_mode_in_a_saved_export():
    _schur_newton()
    with torch.inference_mode():
        program = torch.export.export(_InverseRoot(), (_gram(0, 1.0),))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        buffer.seek(0)
        _check_as_python(torch.export.load(buffer).module())


def test_schur_newton_under_inference_mode_compiled():
    _schur_newton()
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(inverse_fourth_root), fullgraph=True,
                             backend="eager")
    with torch.inference_mode():
        _check_as_python(compiled)


# --- torchinterp1d: bisection on a tabulated curve ----------------------------------------------

_XS = torch.linspace(0, 1, 50, dtype=F64)


def invert_curve(ys, target):
    lo = torch.zeros((), dtype=F64)
    hi = torch.ones((), dtype=F64)
    steps = 0
    while hi - lo > 1e-6:
        mid = (lo + hi) / 2
        v = interp1d(_XS, ys, mid.reshape(1)).reshape(())
        if (v - target).abs() < 1e-3:
            break
        if v < target:
            lo = mid
        else:
            hi = mid
        steps += 1
    return (lo + hi) / 2, steps


_TARGETS = [0.3, 0.25, 0.81, 0.0001]  # 5, 0, 8 and 4 steps


def _check_bisection(run):
    ys = _XS ** 2
    for target in _TARGETS:
        target = torch.tensor(target, dtype=F64)
        (expected, expected_steps), (got, got_steps) = invert_curve(ys, target), run(ys, target)
        assert torch.equal(got, expected), (got, expected)  # (to the bit)
        assert int(got_steps) == expected_steps


def test_interp1d_bisection_in_replay():
    pytest.importorskip("torchinterp1d")
    function = autoconv.autoconv(invert_curve)
    _check_bisection(function)
    assert function.trace_count == 1


class _Inverse(torch.nn.Module):
    def forward(self, ys, target):
        return autoconv.convert(invert_curve)(ys, target)


def test_interp1d_bisection_in_a_saved_export():
    pytest.importorskip("torchinterp1d")
    program = torch.export.export(_Inverse(), (_XS ** 2, torch.tensor(0.3, dtype=F64)))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    _check_bisection(torch.export.load(buffer).module())


def test_interp1d_bisection_compiled():
    # (before session 53: dynamo's "GetAttrVariable(...) has no type", NOTE [a Function's apply
    # held by a name under dynamo] in runtime/calls.py)
    pytest.importorskip("torchinterp1d")
    torch._dynamo.reset()
    _check_bisection(torch.compile(autoconv.convert(invert_curve), fullgraph=True,
                                   backend="eager"))
