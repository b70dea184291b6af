"""Findings of tester 55: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them;
both are pure Python and need only torch (and numpy): they could be pinned in setup.cfg's
`real`, torchdeq==0.1.0 and ema-pytorch==0.8.3):
- torchdeq 0.1.0, the fixed-point solvers of deep equilibrium models (`for k in
  range(max_iter)` with a tolerance `break`, statistics in dicts of lists):
  `fixed_point_iter(f, x0, tol=...)` is refused at fp_iter.py:53, a true refusal: on the
  trip that breaks, `for _ in range(max_iter - 1 - k)` pads the lists `trace_dict[...]` the
  loop grows, so a trip appends a number of items that depends on the data (the total,
  max_iter + 1, is fixed, which autoconv does not see). With `return_final=True` (no break:
  every step runs, the last iterate returned) nothing is staged, and the replay, a saved export
  and torch.compile equal Python. `anderson_solver` is refused at anderson.py:83 (`F[:, :n]`
  with `n = min(k, m)` of the staged trip count: a window whose width changes by trip), and
  `broyden_solver` at broyden.py:208 (`trace_dict[stop_mode][-30:]`, a slice of a list grown
  under tensor control flow; then `Us[:, :, :nstep]` would be refused as anderson's): true
  refusals, readable (the library's line, the construct, the form that stages).
- ema-pytorch 0.8.3, `EMA.update()` (`step = self.step.item()`, `self.step += 1`, `if not
  self.initted.item()`, `if should_update and step <= self.update_after_step`,
  `get_current_decay`'s `epoch.item() <= 0`): one update a call is right in the replay (each
  call reads another step: a trace a step, guarded by value). Two or more updates a call
  raised, on the first call, "steps: its graph was traced with item() of args[0].step = 1,
  which is now 0 right after tracing ... pass it as an argument (a tensor)": true (the second
  update reads the count the first one wrote, a number the graph would keep) but unlocated and
  not what a library's user can write. Now refused at ema_pytorch.py:280 (NOTE [an outside
  tensor read after the function updated it] in runtime/staging/outside_writes.py).
- torch-kf 0.4.3, `KalmanFilter.filter(prior, measures, return_all=True)` (`if mask.any():`
  updates the measured rows in place by a boolean mask, else rebinds the state): every call
  raised UnboundLocalError ('saver'), the bare annotation `saver: GaussianState` taken for a
  binding; fixed (converters/choices.py), right in the replay and a saved export. Under
  torch.compile the filter failed in dynamo with "Encountered aliasing during higher order op
  tracing" (kf56: `update`'s `self.measurement_matrix.mT` in both branches, dynamo lifting the
  tensor and its view); right since session 57 (dyn57: view attributes read by a call under
  dynamo, runtime/views.py). And the same masked update written
  with the filter a global (`kf = KF(H)`, `valid = kf.update(valid, measure[~mask])` in the
  `if`, `update` only reading `self.H`) is refused at that line as "the object the global 'kf'
  holds is changed in the true branch (a field or item set)", which it is not (a false
  refusal; the replay is right).
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_result

T = torch.tensor


# --- torchdeq: fixed-point solvers --------------------------------------------------------

def _cosine_map(scale):
    return lambda z: torch.cos(z) * scale


# the scales take 2 to 17 fixed-point steps to reach tol=1e-4 in Python
_SCALES = [(T([[0.3], [0.5]]), torch.zeros(2, 1)), (T([[0.9], [0.1]]), torch.zeros(2, 1)),
           (T([[0.05], [0.05]]), torch.zeros(2, 1))]


def fixed_point_with_tolerance(scale, x0):
    from torchdeq.solver.fp_iter import fixed_point_iter
    z, _, info = fixed_point_iter(_cosine_map(scale), x0, max_iter=30, tol=1e-4)
    return z, info["abs_trace"], info["nstep"]


def fixed_point_to_the_end(scale, x0):
    from torchdeq.solver.fp_iter import fixed_point_iter
    z, _, info = fixed_point_iter(_cosine_map(scale), x0, max_iter=8, tol=1e-4,
                                  return_final=True)
    return z, info["abs_trace"], info["abs_lowest"], info["nstep"]


def anderson(scale, x0):
    from torchdeq.solver.anderson import anderson_solver
    z, _, info = anderson_solver(_cosine_map(scale), x0, max_iter=30, tol=1e-4)
    return z, info["nstep"]


def broyden(scale, x0):
    from torchdeq.solver.broyden import broyden_solver
    z, _, info = broyden_solver(_cosine_map(scale), x0, max_iter=30, tol=1e-4)
    return z, info["nstep"]


def test_torchdeq_fixed_point_iteration_to_the_end_in_every_mode():
    pytest.importorskip("torchdeq")
    # (no break with return_final: nothing staged; compile by hand, right, left out of make test)
    assert_same_result(fixed_point_to_the_end, _SCALES, staged=False, compile=False)


@pytest.mark.parametrize("solver, where, what", [
    (fixed_point_with_tolerance, r"fp_iter\.py:53", r"'trace_dict\['abs'\]' grows by a number "
     r"of items that depends on tensor values"),
    (anderson, r"anderson\.py:83", r"`G = F\[:,:n\]-X\[:,:n\]` slices a tensor by a number the "
     r"graph computes"),
    (broyden, r"broyden\.py:208", r"'trace_dict\['abs'\]' is indexed with slice\(-30, None, "
     r"None\).*Slice torch\.stack"),
], ids=["fixed_point_iter", "anderson", "broyden"])
def test_torchdeq_solvers_with_a_tolerance_break_are_refused_at_the_library_line(
        solver, where, what):
    pytest.importorskip("torchdeq")
    solver(*_SCALES[0])  # Python runs it
    with pytest.raises(StagingError, match=where + r": .*" + what):
        autoconv.autoconv(solver)(*_SCALES[0])


# --- ema-pytorch: EMA.update ----------------------------------------------------------------

def _ema():
    pytest.importorskip("ema_pytorch")
    from ema_pytorch import EMA

    torch.manual_seed(0)
    return EMA(torch.nn.Linear(2, 1, bias=False), beta=0.9, update_after_step=2,
               update_every=2, power=1.0)


def _training_steps(steps):
    def train(ema, g):
        for _ in range(steps):
            with torch.no_grad():
                ema.model.weight.sub_(0.1 * g)
            ema.update()
        return ema.ema_model.weight.clone(), ema.step.clone()
    return train


def test_ema_one_update_a_call_equals_python_through_its_steps():
    # steps 0 to 4: the first copies the model, then updates at steps 2 and 4 only (the second
    # copies again, being <= update_after_step), with the decay of step 4
    train = _training_steps(1)
    eager, staged = _ema(), _ema()
    function = autoconv.autoconv(train)
    g = T([[1.0, -2.0]])
    for call in range(5):
        want = train(eager, g * (call + 1))
        got = function(staged, g * (call + 1))
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(staged.model.weight, eager.model.weight)
        assert bool(staged.initted) is bool(eager.initted) is True
    assert eager.ema_model.weight.tolist() != eager.model.weight.tolist()  # the average moved


def test_ema_updates_reading_the_count_they_wrote_are_refused_at_the_library_line():
    # was: "train: its graph was traced with item() of args[0].step = 1, which is now 0 right
    # after tracing ... pass it as an argument (a tensor)", on the first call
    train = _training_steps(3)
    want = train(_ema(), T([[1.0, -2.0]]))
    assert want[1].item() == 3
    ema = _ema()
    with pytest.raises(StagingError, match=r"ema_pytorch\.py:280: .*`item` reads into Python a "
                       r"tensor from outside the function .*0 when the call began.*updated in "
                       r"place before this read \(1 here\)"):
        autoconv.autoconv(train)(ema, T([[1.0, -2.0]]))
    assert ema.step.item() == 0  # the trace's own updates were put back


def test_an_outside_counter_read_after_the_function_updated_it_is_refused():
    # the kind, without the library: a global count read into Python after `add_`
    count = torch.zeros((), dtype=torch.int64)

    def step(x):
        count.add_(1)
        return x * count.item()

    with pytest.raises(StagingError, match=r"test_tester55\.py:\d+: .*`item` reads into Python "
                       r"a tensor from outside the function .*0 when the call began.*\(1 here\)"):
        autoconv.autoconv(step)(T([1.0]))
    assert count.item() == 0


def test_an_outside_tensor_an_update_leaves_as_it_was_is_still_read():
    # an update that leaves the value read unchanged: its guard holds, nothing refused
    flag = torch.ones(())

    def scaled(x):
        flag.clamp_(max=1.0)
        return x * flag.item()

    function = autoconv.autoconv(scaled)
    for x in (T([1.0]), T([2.0])):
        torch.testing.assert_close(function(x), x)
    assert function.trace_count == 1


# --- torch-kf: KalmanFilter.filter ----------------------------------------------------------

def _kalman_filter():
    pytest.importorskip("torch_kf")
    from torch_kf import KalmanFilter

    return KalmanFilter(T([[1.0, 1.0], [0.0, 1.0]]), T([[1.0, 0.0]]), torch.eye(2) * 0.01,
                        torch.eye(1) * 0.5)


def _measures(missing):
    generator = torch.Generator().manual_seed(0)
    measures = torch.randn(5, 3, 1, 1, generator=generator) + torch.arange(5.0)[:, None, None,
                                                                                None]
    for t, b in missing:
        measures[t, b] = float("nan")
    return measures


# none missing, one, three (two at one step), all: `if mask.any():` updates the rows measured
_MISSING = [[], [(1, 0)], [(0, 2), (3, 1), (3, 0)], [(t, b) for t in range(5) for b in range(3)]]


def test_kalman_filter_with_missing_measures_keeps_every_step():
    # was: UnboundLocalError ("saver") on every call: `saver: GaussianState` before the loop,
    # a bare annotation, was taken for a binding (NOTE in converters/choices.py's
    # _names_stored); a make-test-sized kind: tests/reference/test_loops.py
    from torch_kf import GaussianState

    kf = _kalman_filter()

    def filter_all(measures):
        prior = GaussianState(torch.zeros(3, 2, 1), torch.eye(2).repeat(3, 1, 1) * 10)
        states = kf.filter(prior, measures, return_all=True)
        return states.mean, states.covariance

    # (torch.compile: the next test)
    assert_same_result(filter_all, [_measures(m) for m in _MISSING], compile=False)


def test_kalman_filter_with_missing_measures_under_torch_compile():
    # kf56: dynamo lifted `self.measurement_matrix` and its `.mT` into the `if mask.any():`'s
    # torch.cond, "Encountered aliasing during higher order op tracing"; the view is made by a
    # call under dynamo since session 57 (NOTE [view attributes under dynamo] in
    # runtime/views.py). Python's numbers on the four inputs (max difference 0.0 by hand).
    from torch_kf import GaussianState

    kf = _kalman_filter()

    def filter_all(measures):
        prior = GaussianState(torch.zeros(3, 2, 1), torch.eye(2).repeat(3, 1, 1) * 10)
        states = kf.filter(prior, measures, return_all=True)
        return states.mean, states.covariance

    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(filter_all), fullgraph=True, backend="eager")
    for missing in _MISSING:
        want = filter_all(_measures(missing))
        got = compiled(_measures(missing))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
