"""Findings of tester 56: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them):
- projected-sinkhorn 0.2 (Wong et al.'s Wasserstein adversarial examples), its `lambertw(z0)`
  (a port of scipy's Lambert W: `if torch.isnan(z0).any(): raise NotImplementedError`, `if
  I_pade0.any():` / `if I_asy.any():` / `if I_pos.any():` branches that gather and scatter
  by boolean masks (sizes only known when the graph runs), and two Halley iterations `for i
  in range(100)` with a `break` on `(abs(wn - w) < tol * abs(wn)).all()`): right in the
  replay, a saved export and torch.compile on inputs that take every branch, from 0 to 4
  Halley steps, and the NaN input raises NotImplementedError when the graph runs. The
  package's own `__init__` cannot be imported (projected_sinkhorn.py says `from lambertw
  import lambertw`, an absolute import of its sibling), so the test loads lambertw.py by
  path; not pinned in setup.cfg's `real` for that reason.
- ncg-optimizer 0.2.2, the backtracking line search `Line_Search.Armijo(func, x, g, d, lr,
  rho, c1, iter)` (`for _ in range(iter)`, `if not f_new <= float(f_prev + c1 * lr *
  gtd_prev)` ... `break`, the point moved and moved back by `x.data = x.data + lr * d`):
  refused at Line_Search.py:31, the first `x.data = ...`, naming the construct and the forms
  that stage (`x.data.copy_(...)` under no_grad, or a new name): a true refusal, readable.
  Its `Cubic_Interpolate` (tensor `if`s with returns, `min(max(...))` of tensors, bounds
  chosen by a conditional expression) is right in every mode, on each path.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_result

T = torch.tensor


# --- projected-sinkhorn: Lambert W by Halley's iteration ----------------------------------

def _lambertw_module():
    spec = importlib.util.find_spec("projected_sinkhorn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("projected-sinkhorn is not installed")
    name = "projected_sinkhorn_lambertw"
    if name not in sys.modules:
        path = os.path.join(list(spec.submodule_search_locations)[0], "lambertw.py")
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        # dynamo looks a function's module up by name: it must be registered
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    return sys.modules[name]


def lambert_w(z0):
    return _lambertw_module().lambertw(z0)


# Python's values (scipy's to 4 places): the Pade start only, the Pade and asymptotic starts
# with the w = 1 case, the asymptotic start only (large z: the most Halley steps), and a
# negative w branch (z in (-1, 0)) beside z = 0
_LAMBERTW_INPUTS = [T([0.5, 2.0, 1.0, 7.0]), T([0.1, 0.2, 0.3, 0.4]),
                    T([3.0, 30.0, 300.0, 1.0]), T([-0.2, 0.5, 5.0, 0.0])]
_LAMBERTW_WANT = [T([0.3517, 0.8526, 0.5671, 1.5243]), T([0.0913, 0.1689, 0.2368, 0.2972]),
                  T([1.0499, 2.4892, 4.2556, 0.5671]), T([-0.2592, 0.3517, 1.3267, 0.0])]


def test_lambertw_of_projected_sinkhorn_in_every_mode():
    _lambertw_module()
    for z, want in zip(_LAMBERTW_INPUTS, _LAMBERTW_WANT):
        torch.testing.assert_close(lambert_w(z.clone()), want, atol=1e-4, rtol=0)
    concrete = assert_same_result(lambert_w, _LAMBERTW_INPUTS)
    # the library's guard, a raise under a tensor condition, raises when the graph runs
    with pytest.raises(NotImplementedError):
        concrete(T([0.5, math.nan, 1.0, 2.0]))


# --- ncg-optimizer: Armijo backtracking line search ----------------------------------------

def armijo_step(x0, d):
    from ncg_optimizer.Line_Search import Armijo
    x = x0.clone()
    g = 2 * (x - 3.0)
    lr = Armijo(lambda: ((x - 3.0) ** 2).sum(), x, g, d, 4.0, 0.5, 1e-4, 10)
    return torch.as_tensor(lr), x


def test_armijo_line_search_of_ncg_optimizer_is_refused_at_the_data_write():
    pytest.importorskip("ncg_optimizer")
    # Python: step 4.0 accepted at once, 0.5 after three halvings, 1/128 after nine
    assert float(armijo_step(T([0.0, 1.0]), T([1.0, 1.0]))[0]) == 4.0
    assert float(armijo_step(T([0.0, 1.0]), T([6.0, 4.0]))[0]) == 0.5
    assert float(armijo_step(T([0.0, 0.0]), T([-1.0, -1.0]))[0]) == 0.0078125
    with pytest.raises(StagingError, match=r"Line_Search\.py:31: .*`\.data = \.\.\.`.*copy_"):
        autoconv.autoconv(armijo_step)(T([0.0, 1.0]), T([6.0, 4.0]))


def cubic_interpolate(x1, f1, g1, x2, f2, g2):
    from ncg_optimizer.Line_Search import Cubic_Interpolate
    return Cubic_Interpolate(x1, f1, g1, x2, f2, g2)


def test_cubic_interpolation_of_ncg_optimizer_in_every_mode():
    pytest.importorskip("ncg_optimizer")
    # the cubic's minimizer with x1 < x2 (2/3), the same points given the other way round
    # (2/3), one clamped to a bound (0.0), and no real minimizer (d2_square < 0: the
    # midpoint, 0.5); bounds chosen by `(x1, x2) if x1 <= x2 else (x2, x1)`, the result by
    # `min(max(min_pos, xmin_bound), xmax_bound)` of tensors
    rows = [(0.0, 1.0, -2.0, 1.0, 0.5, 1.0), (1.0, 0.5, 1.0, 0.0, 1.0, -2.0),
            (0.0, 0.0, 1.0, 1.0, 10.0, 1.0), (0.0, 0.0, 3.0, 1.0, 2.0, 3.0)]
    inputs = [tuple(T(v) for v in row) for row in rows]
    want = [2 / 3, 2 / 3, 0.0, 0.5]
    assert [round(float(cubic_interpolate(*args)), 4) for args in inputs] == \
        [round(w, 4) for w in want]
    assert_same_result(cubic_interpolate, inputs)
