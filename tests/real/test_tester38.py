"""Findings of tester 38: session 37's and 38's features and published code run as a new user
would, in autoconv's replay (traced once, replayed on inputs taking other paths), a saved and
loaded torch.export program and torch.compile(fullgraph=True), against plain Python.

Sources (packages installed with `pip install --no-deps`, their tests skipped where they are
not installed):
- counters kept the way published code keeps them, each in a staged `while` and `if`:
  scipy's `_wrap_scalar_function` (`ncalls = [0]` in a closure), a Lightning-style
  `EarlyStopping` (`wait_count`, `best_score` set in its `__call__` under a tensor condition),
  `collections.Counter` counts (s01, fixed: tests/reference/test_library_mappings.py), a
  `self.history["n"] += 1` callback, `d["n"] = d.get("n", 0) + 1`, `self.stats["f"][0] += 1`;
  a Counter argument counting signs across calls (s04, fixed: the same file; s05 under
  torch.compile, a strict xfail).
- torchode 1.0.1 (with torchtyping 0.1.5, typeguard 2.13.3) `AutoDiffAdjoint.solve` with
  Dopri5 and an IntegralController, evaluated at `t_eval` (s03).
- tried, right in every mode, kept: the early stopping below.
- tried, right in replay and torch.export, refused under torch.compile with autoconv's fix
  (pass the list to the closure): scipy's closure counter (NOTE [closures changing their
  cells' objects under dynamo]). Refused in every mode, with the fix "Make the change in the
  loop body": a counting callable called in a `while`'s test (`while f(x) > tol:`); under
  torch.compile a callable object's or method's change there is dynamo's own "HOP: Unsafe side
  effect" (README's known limits: torch.compile and callees' state).

A finding not fixed is a strict xfail whose reason starts with its id (tester38 sNN).
"""

import pytest
import torch

import autoconv
from tests.support import assert_same_result, exported

T = torch.tensor


# --- a Lightning-style early stopping, its counts set in its __call__ -------------------------

class _EarlyStopping:
    """pytorch_lightning.callbacks.EarlyStopping's `_evaluate_stopping_criteria`, mode "min"."""

    def __init__(self, patience=2, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.wait_count = 0
        self.best_score = torch.tensor(float("inf"))

    def __call__(self, current):
        should_stop = False
        if current < self.best_score - self.min_delta:
            self.best_score = current
            self.wait_count = 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                should_stop = True
        return should_stop


def _epochs_until_stopped(losses):
    stopper = _EarlyStopping()
    epoch = 0
    while epoch < losses.shape[0]:
        if stopper(losses[epoch]):
            break
        epoch += 1
    return epoch, stopper.wait_count, stopper.best_score


def test_early_stopping_counts_right_in_every_mode():
    assert_same_result(_epochs_until_stopped, [
        (T([3.0, 2.0, 2.5, 2.6, 1.0]),),  # stops at epoch 3
        (T([3.0, 2.0, 1.0, 0.5, 0.1]),),  # never stops
        (T([1.0, 2.0, 3.0, 4.0, 5.0]),)])  # stops at epoch 2


# --- s03: torchode's solver, its interpolation at rows nonzero() chose ------------------------
# Replay stopped in torch's "SymIntArrayRef expected to contain only concrete integers", no
# line of the user's (make_fx's fake tracing cannot broadcast a size only the graph knows for
# `torch.addcmul`): then a StagingError at torchode's line saying to trace with dynamic=True;
# since errs41 such a trace is traced again with torch's Python dispatcher on, and replays.
# torch.export and torch.compile refused `stats` gaining keys before the loop's `return` (the
# fix named the keys); since tail50 that tail runs after the loop (NOTE [a loop's exit tail]).

def _torchode_solve():
    to = pytest.importorskip("torchode")

    def f(t, y):
        return -2.0 * y

    term = to.ODETerm(f)
    solver = to.AutoDiffAdjoint(to.Dopri5(term=term),
                                to.IntegralController(atol=1e-6, rtol=1e-3, term=term))

    def solve(y0, t1):
        t_eval = torch.stack([torch.zeros_like(t1), t1], dim=1)
        solution = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        return solution.ys[:, -1], solution.stats["n_steps"]

    return to, solve


_ODE_INPUTS = [(T([[1.0, 2.0]]), T([1.0])), (T([[3.0, -1.0]]), T([0.2]))]


def test_s03_torchode_replays_with_fixed_sizes():
    to, solve = _torchode_solve()
    run = autoconv.autoconv(solve)
    for args in _ODE_INPUTS:
        for got, want in zip(run(*args), solve(*args)):
            torch.testing.assert_close(got, want, check_dtype=False)


def test_s03_torchode_with_symbolic_sizes_is_right():
    _, solve = _torchode_solve()
    traced = autoconv.autoconv(solve, dynamic=True)
    for args in _ODE_INPUTS:
        for got, want in zip(traced(*args), solve(*args)):
            torch.testing.assert_close(got, want, check_dtype=False)


def test_s03_torchode_exported_is_right():
    # (`stats` gets its keys on the loop's last trip, after its `if continue_iterating:
    # continue`: refused as a dict gaining keys under a tensor `if` until the tail moved after
    # the loop, NOTE [a loop's exit tail] in autoconv/converters/loop_tails.py)
    _, solve = _torchode_solve()
    module = exported(solve, _ODE_INPUTS[0])
    for args in _ODE_INPUTS:
        for got, want in zip(module(*args), solve(*args)):
            torch.testing.assert_close(got, want, check_dtype=False)


# --- s05: a Counter argument changed by a staged `if` under torch.compile -------------------

def _counted_signs(x, counts):
    if x.sum() > 0:
        counts.update(["pos"])
        x = x * 2
    else:
        counts.update({"neg": 1})
    return x


def test_s05_counter_argument_changed_in_a_staged_if_under_compile():
    # (dynamo stopped in its own 'Comparison on compile-time-only id or hash value', no line of
    # the user's: the probe's check of the Counter's items compared the id of a count made in
    # its trace with the id of one from outside; NOTE [identity under dynamo] in
    # runtime/identity.py)
    import collections

    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_counted_signs), fullgraph=True, backend="eager")
    counts, python_counts = collections.Counter(pos=0, neg=0), collections.Counter(pos=0, neg=0)
    for x in (T([1.0]), T([-1.0]), T([2.0])):
        torch.testing.assert_close(compiled(x.clone(), counts), _counted_signs(x, python_counts))
    assert {k: int(v) for k, v in counts.items()} == {"pos": 2, "neg": 1}
