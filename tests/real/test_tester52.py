"""Findings of tester 52: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them;
qpth and torch-levenberg-marquardt are pure Python but import packages they need only elsewhere
(cvxpy, pytorch_lightning): pinning them in setup.cfg's `real` would pull those in, so they
are not pinned; the tests stand a stub in for the missing import):
- qpth 0.0.18: `solvers.pdipm.batch.forward` (the batched interior-point QP solver behind
  `QPFunction`: a `for` of 20 trips with a `return` when the residuals settle, a `try` whose
  `except` returns the best iterate, a dict of best iterates written through boolean masks).
  As published it is refused honestly at batch.py:441: `factor_kkt` assigns its module-level
  mask cache `factor_kkt_eye` on every call (it compares the 3-d mask's size with the 2-d
  `d.size()`, so the cache never hits), in the loop's body. With that cache left out (the same
  function, `factor_kkt_uncached` below) the loop converts: right in the replay and in
  torch.export (6, 7 and 7 iterations; export checked by hand, 27 s at load 12). It was
  refused before this session (fixed here: the loop updates `x`, `s`, `z` in place and rebinds
  `y`, slices and columns of one KKT solution that share no element, which the refusal took
  for views seeing the update: tests/reference/test_aliasing.py). Under torch.compile still
  refused at batch.py:140 (dynamo cannot read a view's storage offset).
- torch-levenberg-marquardt 1.2.3: `LevenbergMarquardtModule.training_step` (a `while True`
  of damping attempts with a `try`, the damping strategy's tensor state, `.item()` stop
  tests). Made inside the function: refused honestly at training.py:130 (`p.data = ...`); a
  global module: refused honestly at training.py:149 (`self._flat_params_backup = ...` into an
  object from outside). Passed as an argument it traces, and is SILENTLY WRONG (3 steps and
  parameters [2.993, 0.999] for Python's 5 steps and [3, 1]): the model's parameters are views
  of the module's `flat_params` (`p.data = self.flat_params[a:b].view_as(p)`), and the staged
  attempt loop updates `flat_params` in place and reads the parameters. The kind, small:
  `test_a_view_held_by_an_argument_object_*` (fixed in session 52 by views52: the staged `if`
  gives Python's values, the loop is refused at its line; tests/reference/test_held_views.py).
- torchnmf 0.3.5: `NMF.fit` is refused honestly at tqdm/std.py:432 (`pbar.set_postfix(loss=
  loss)` formats the `.item()` of a traced loss into text, even with the meter disabled); with
  tqdm's meter stubbed out, at torchnmf/nmf.py:77 (`WH.backward(...)` in the staged loop of
  multiplicative updates: compute the gradient with torch.autograd.grad). Not kept as tests
  (each about 30 s of tracing for a refusal README already describes).
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close, assert_same_result

T = torch.tensor


# --- qpth: the batched primal-dual interior-point QP solver ------------------------------------

def _pdipm():
    # qpth/solvers/__init__.py imports its cvxpy solver, which pdipm never calls
    if "cvxpy" not in sys.modules:
        try:
            import cvxpy  # noqa: F401
        except ImportError:
            sys.modules["cvxpy"] = types.ModuleType("cvxpy")
    pytest.importorskip("qpth")
    from qpth.solvers.pdipm import batch
    return batch


def qp_solve(Q, p, G, h, A, b):
    pdipm = _pdipm()
    Q_LU, S_LU, R = pdipm.pre_factor_kkt(Q, G, A)
    x, _, z, s = pdipm.forward(Q, p, G, h, A, b, Q_LU, S_LU, R, eps=1e-8, verbose=-1,
                               maxIter=20)
    return x, z, s


def factor_kkt_uncached(S_LU, R, d):
    """qpth 0.0.18's `factor_kkt` (CPU path) without its module-level mask cache."""
    pdipm = _pdipm()
    n_batch, nineq = d.size()
    neq = S_LU[1].size(1) - nineq
    eye = torch.eye(nineq).repeat(n_batch, 1, 1).type_as(R).bool()
    T_ = R.clone()
    T_[eye] += (1. / d).squeeze().view(-1)
    T_LU = pdipm.lu_hack(T_)
    old_pivots, _, _ = torch.lu_unpack(T_LU[0], S_LU[1][:, -nineq:] - neq, unpack_data=False)
    new_pivots, _, _ = torch.lu_unpack(T_LU[0], T_LU[1], unpack_data=False)
    if neq > 0:
        S_LU_21 = S_LU[0][:, -nineq:, :neq]
        S_LU[0][:, -nineq:, :neq] = new_pivots.transpose(1, 2).bmm(old_pivots.bmm(S_LU_21))
    S_LU[1][:, -nineq:] = T_LU[1] + neq
    S_LU[0][:, -nineq:, -nineq:] = T_LU[0]


def _problem(seed, scale, n_batch=2, nz=3, nineq=4):
    generator = torch.Generator().manual_seed(seed)
    draw = lambda *size: torch.randn(*size, generator=generator,  # noqa: E731
                                     dtype=torch.float64)
    L = draw(n_batch, nz, nz)
    Q = L @ L.transpose(1, 2) + 0.1 * torch.eye(nz, dtype=torch.float64)
    h = torch.rand(n_batch, nineq, generator=generator, dtype=torch.float64)
    return (Q, draw(n_batch, nz) * scale, draw(n_batch, nineq, nz), h, draw(n_batch, 1, nz),
            draw(n_batch, 1))


def _problems():
    # (6, 7 and 7 interior-point iterations in Python)
    return [_problem(0, 1.0), _problem(1, 10.0), _problem(2, 0.01)]


def test_qpth_pdipm_as_published_is_refused_at_its_global_cache():
    _pdipm()
    with pytest.raises(StagingError, match=r"pdipm/batch\.py:441: in a tensor-dependent for "
                                           r"loop: the body assigns the global "
                                           r"'factor_kkt_eye'"):
        autoconv.autoconv(qp_solve)(*_problems()[0])


def test_qpth_pdipm_without_the_cache_converts(monkeypatch):
    pdipm = _pdipm()
    monkeypatch.setattr(pdipm, "factor_kkt", factor_kkt_uncached)
    # (torch.export checked by hand, right: 27 s at load 12; torch.compile refuses batch.py:140)
    assert_same_result(qp_solve, _problems(), export=False, compile=False)


# --- torch-levenberg-marquardt: parameters bound to views of one flat tensor -------------------

def _views_of_flat():
    holder = types.SimpleNamespace(flat=torch.zeros(2))
    holder.w = holder.flat[:1]  # (as `p.data = self.flat_params[a:b].view_as(p)`)
    return holder


def update_then_read_the_view_in_an_if(x, holder):
    holder.flat.copy_(x)
    r = torch.zeros(1)
    if x.sum() > 0:
        holder.flat.add_(1)
        r = holder.w * 10
    return r, holder.flat.clone()


def update_then_read_the_view_in_a_loop(x, holder):
    holder.flat.copy_(x)
    n = torch.tensor(0)
    while holder.w.sum() < 5 and n < 20:  # (without the cap the graph never ends)
        holder.flat.add_(1)
        n += 1
    return n, holder.flat.clone()


def test_a_view_held_by_an_argument_object_sees_an_update_in_a_staged_if():
    # (the replay gave 10 for Python's 20 at [1, 0]; refused as staged, the graph is now
    # specialised on the condition: NOTE [a view held by an input object])
    function = autoconv.autoconv(update_then_read_the_view_in_an_if)
    for x, want in ((T([1.0, 0.0]), 20.0), (T([-5.0, 0.0]), 0.0)):
        got = function(x.clone(), _views_of_flat())
        assert_close(got, update_then_read_the_view_in_an_if(x.clone(), _views_of_flat()))
        assert got[0].item() == want


def test_a_view_held_by_an_argument_object_in_a_staged_loop_is_refused():
    # (the replay ran 20 trips for Python's 4, torch.export too)
    assert update_then_read_the_view_in_a_loop(T([1.0, 0.0]), _views_of_flat())[0] == 4
    with pytest.raises(StagingError, match=r"test_tester52\.py:\d+: in a tensor-dependent "
                       r"while loop: the while loop updates `holder\.flat` in place and reads "
                       r"`holder\.w`, a tensor that shares its memory"):
        autoconv.autoconv(update_then_read_the_view_in_a_loop)(T([1.0, 0.0]), _views_of_flat())
