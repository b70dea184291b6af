"""Findings of tester 28 (repros in the session's tester28 folder; INDEX.md lists them): published
code run as a new user would, in autoconv's replay, a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources (each function below names its own): POT 0.9.7 (`ot.sinkhorn`, installed from PyPI),
torch-ema 0.3 (`ExponentialMovingAverage`, PyPI), textbook numerical loops (power iteration,
conjugate gradient, Armijo backtracking), PPO advantage estimation and particle-filter
resampling as written in published RL / tracking code, the BiLSTM-CRF tutorial's Viterbi
decoding (pytorch/tutorials `advanced_source/Advanced_Tutorial.py`).
A finding not fixed is a strict xfail whose reason starts with its id (tester28 sNN).
"""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import Calling, assert_same_exactly, assert_same_result

ot = pytest.importorskip("ot")
torch_ema = pytest.importorskip("torch_ema")

T = torch.tensor


def _exported(fn, args):
    """`fn` converted, exported (strict=False), saved and loaded again."""
    saved = io.BytesIO()
    torch.export.save(torch.export.export(Calling(autoconv.convert(fn)), args, strict=False),
                      saved)
    saved.seek(0)
    return torch.export.load(saved).module()


# ---------------------------------------------------------------------------------------------
# s01 (refusal of right code; under torch.compile torch's IndexError leaks): POT's default call,
# `ot.sinkhorn(a, b, M, reg)` (log=False), is refused in replay and export with "a call in a branch
# fails on the traced values ... IndexError: too many indices for tensor of dimension 0", and
# raises that IndexError under torch.compile. `sinkhorn_knopp` binds `log = {"err": []}` under a
# Python `if log:`, and its staged loop holds `if log: log["err"].append(err)`: the flag, False on
# the caller's path and never rebound by the loop, is carried by the loop as a 0-d tensor, so the
# `if log:` inside it stages and traces the dict branch on a tensor.
def _ot_inputs(n, m, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    y = torch.rand(m, 2, generator=g, dtype=torch.float64)
    return (torch.full((n,), 1.0 / n, dtype=torch.float64),
            torch.full((m,), 1.0 / m, dtype=torch.float64), ot.dist(x, y) * scale)


# the third stops on the err test, the others run numItermax trips (200) or stop earlier
_OT = [_ot_inputs(5, 4, 0), _ot_inputs(5, 4, 1), _ot_inputs(5, 4, 2, 100.0)]


def pot_sinkhorn_plan(a, b, M):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sinkhorn did not converge" on some inputs
        return ot.sinkhorn(a, b, M, 0.5, numItermax=200, stopThr=1e-6)


def flag_rebound_as_a_dict_read_in_a_staged_loop(x, log=False):
    # sinkhorn_knopp's shape: the flag becomes the log dict only when it is true
    if log:
        log = {"err": []}
    for _ in range(20):
        x = x * 0.5
        err = x.abs().sum()
        if log:
            log["err"].append(err)
        if err < 0.01:
            break
    return x


_HALVING = [(T([1.0, 2.0]),), (T([0.001, 0.0]),), (T([100.0, 1.0]),)]


@pytest.mark.xfail(strict=True, reason=(
    "tester28 s01: a Python flag (log=False) that a staged loop's body updates only under "
    "`if log:` is carried as a tensor; the `if log:` then stages and traces `log['err']` on it "
    "(POT's ot.sinkhorn refused; IndexError under torch.compile)"))
def test_a_false_flag_guarding_a_dict_append_in_a_staged_loop():
    assert_same_result(flag_rebound_as_a_dict_read_in_a_staged_loop, _HALVING)


@pytest.mark.xfail(strict=True, reason=(
    "tester28 s01: POT's ot.sinkhorn(a, b, M, reg) (log=False) is refused at _sinkhorn.py's "
    "`if log:` (the flag carried as a tensor by the staged loop)"))
def test_pot_sinkhorn_default_call():
    assert_same_result(pot_sinkhorn_plan, _OT)


def pot_sinkhorn_with_log(a, b, M):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        G, log = ot.sinkhorn(a, b, M, 0.5, numItermax=200, stopThr=1e-6, log=True)
    return G, log["niter"], log["u"], log["v"], torch.stack(log["err"])


def test_pot_sinkhorn_with_its_log_replay_and_export():
    # log=True: the loop appends to the log's list and carries the iteration count; right in
    # replay and in the saved program
    assert_same_result(pot_sinkhorn_with_log, _OT, compile=False)
