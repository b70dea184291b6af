"""Findings of tester 44: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`):
- pyro-ppl 1.9.2: `pyro.infer.mcmc.adaptation.WarmupAdapter.step` (HMC / NUTS warmup: dual
  averaging of `accept_prob.item()`, `self.step_size = math.exp(log_step_size)`) called on an
  adapter passed in: the trace's own SymFloat was left in the caller's adapter (s01, fixed:
  tests/reference/test_state.py); `pyro.ops.dual_averaging.DualAveraging.step` is right.
  `HMC._find_reasonable_step_size` (a staged `while` over pyro.sample draws and velocity
  Verlet steps) stopped in a false "tracing it changes the global
  ExpandedDistribution.has_rsample" (s03, fixed: tests/reference/test_captured.py); with
  pyro's validation on, torch's `Distribution.__init__` check is refused readably, naming
  `validate_args=False`.
- zuko 1.6.0: `zuko.utils.odeint` (adaptive Dormand-Prince, `while sign * (t1 - t) > 0:`
  around `while True:` with `.item()` of the error and `break`) is refused at its line,
  readably: it runs inside the `forward` of a torch.autograd.Function, which autoconv leaves
  to torch. Its forward called directly (what the error suggests) is right in replay and
  export.
- torchsde 0.2.6: `sdeint(..., method="euler")` with fixed steps (`for out_t in ts[1:]: while
  curr_t < out_t:`, `min(curr_t + dt, ts[-1])`, `misc.is_strictly_increasing(ts)`) is right in
  replay and export (export checked by hand, 16 s at load 2; the test runs the replay) on
  evaluation times given as a tensor and a repeatable path given as `bm`. Without `bm`, its
  own `BrownianInterval`'s constructor asks `if t0 > t1:` of the traced times: torch's raw
  GuardOnDataDependentSymNode (s06; its constructor now runs converted, init49, and the call
  is refused honestly at its `np.random.randint` seed: construct the path outside and pass it
  in). With `adaptive=True` it was refused (s02: `prev_error_ratio`, None or a number; fixed
  by adaptive45, right in replay).
- nflows 0.14: `unconstrained_rational_quadratic_spline` (boolean-mask stores, `if
  torch.any(inside_interval_mask):`) is right in replay and export with all inputs inside,
  some, or none; `rational_quadratic_spline`'s `raise InputOutsideDomain()` under `if
  torch.min(inputs) < left or torch.max(inputs) > right:` raises it in replay.

torch.compile: s04 and s05 below (refused at the user's line, with fixes that fit). CPU time
of each test here: 3.5 s or less (zuko's forward 3.5 s, HMC 2.5 s, the rest 2 s or less; wall
times were 5-10x that at load 14).

A finding not fixed is a strict xfail whose reason starts with its id (tester44 sNN).
"""

from __future__ import annotations


import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close, assert_same_result

T = torch.tensor


# --- pyro: HMC's warmup adapter -----------------------------------------------------------------

def _warmup_adapter():
    from pyro.infer.mcmc.adaptation import WarmupAdapter
    adapter = WarmupAdapter(step_size=0.5, adapt_step_size=True, adapt_mass_matrix=False)
    adapter.configure(10, initial_step_size=0.5, mass_matrix_shape={("x",): (2,)})
    return adapter


def warmup_step(adapter, t, accept_prob):
    adapter.step(t, {}, accept_prob)
    return accept_prob * 2


# s01: `WarmupAdapter.step` runs `self._update_step_size(accept_prob.item())`, which sets
# `self.step_size = math.exp(log_step_size)`: a SymFloat of the trace, taken for an object to
# rebuild (it has a `__dict__`), was stored into the caller's adapter on every call, whose
# `float(adapter.step_size)` raised "'NoneType' object has no attribute 'guard_float'" and whose
# next call's trace died in torch's sympy code. Fixed: NOTE [numbers read from tensors stored
# into argument objects] in autoconv/capture.py.
def test_s01_pyro_warmup_adapter_keeps_a_python_step_size():
    pytest.importorskip("pyro")
    function = autoconv.autoconv(warmup_step)
    eager, staged = _warmup_adapter(), _warmup_adapter()
    for t, p in enumerate([0.3, 0.9, 0.5]):
        assert_close(function(staged, t, T(p)), warmup_step(eager, t, T(p)))
        assert type(staged.step_size) is float
        assert staged.step_size == eager.step_size


# --- zuko: adaptive Dormand-Prince --------------------------------------------------------------

_A = T([[-0.5, 1.0], [-1.0, -0.5]])


def _rotation(t, x):
    return x @ _A


class _Ctx:
    """What `AdaptiveCheckpointAdjoint.forward` uses of torch's context: the saves."""

    def save_for_backward(self, *tensors):
        self.saved = tensors


def zuko_odeint(x0, t1):
    return zuko_odeint.solver(_rotation, x0, 0.0, t1, atol=1e-6, rtol=1e-5)


def zuko_aca_forward(x0, t1):
    from zuko.utils import AdaptiveCheckpointAdjoint
    return AdaptiveCheckpointAdjoint.forward(_Ctx(), (1e-6, 1e-5, False), _rotation, x0,
                                             T(0.0), t1)


def test_zuko_odeint_inside_an_autograd_function_is_refused_at_its_line():
    zuko_utils = pytest.importorskip("zuko.utils")
    zuko_odeint.solver = zuko_utils.odeint
    with pytest.raises(StagingError, match=r"AdaptiveCheckpointAdjoint, a custom "
                                           r"torch\.autograd\.Function") as error:
        autoconv.autoconv(zuko_odeint)(T([1.0, 0.0]), 1.0)
    assert error.value.filename == zuko_utils.__file__


def test_zuko_adaptive_dormand_prince_forward():
    pytest.importorskip("zuko")
    # 9, 13 and 5 accepted steps, forwards and backwards in time
    inputs = [(T([1.0, 0.0]), T(1.0)), (T([0.0, 2.0]), T(3.0)), (T([5.0, -3.0]), T(-0.5))]
    assert_same_result(zuko_aca_forward, inputs, compile=False)


# --- torchsde: sdeint ---------------------------------------------------------------------------

def _sde_parts():
    torchsde = pytest.importorskip("torchsde")
    from torchsde._brownian.brownian_base import BaseBrownian

    class SmoothPath(BaseBrownian):
        """A repeatable stand-in for Brownian motion: W(t) = c sin(3t)."""

        def __init__(self, shape):
            self._shape = shape
            self.c = torch.linspace(0.2, 0.5, shape[0] * shape[1]).reshape(shape)

        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            return self.c * (torch.sin(3 * tb) - torch.sin(3 * ta))

        def __repr__(self):
            return "SmoothPath"

        dtype = property(lambda self: torch.float32)
        device = property(lambda self: torch.device("cpu"))
        shape = property(lambda self: self._shape)
        levy_area_approximation = property(lambda self: "none")

    class OrnsteinUhlenbeck(torch.nn.Module):
        noise_type = "diagonal"
        sde_type = "ito"

        def f(self, t, y):
            return -0.7 * y

        def g(self, t, y):
            return 0.3 * torch.ones_like(y)

    return torchsde, OrnsteinUhlenbeck(), SmoothPath((2, 3))


_Y0 = T([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
# 10, 13 and 3 Euler steps, the last one cut short at ts[-1]
_TIMES = [(_Y0, T([0.0, 0.5, 1.0])), (_Y0 * 3, T([0.0, 0.25, 1.3])), (-_Y0, T([0.1, 0.2, 0.33]))]


def test_torchsde_euler_with_fixed_steps():
    torchsde, sde, path = _sde_parts()

    def solve(y0, ts):
        return torchsde.sdeint(sde, y0, ts, bm=path, method="euler", dt=0.1)

    assert_same_result(solve, _TIMES, compile=False, export=False)


# s02: with `adaptive=True`, `integrate` sets `prev_error_ratio = None` in `if step_size <
# self.dt_min:` (a warning's branch) inside the `while curr_t < out_t:` loop, where
# `update_step_size` made it a number read from the error (`.item()`): refused at
# base_solver.py's `if`, readably ("'prev_error_ratio' becomes a Python NoneType in the true
# branch"). The kind: a variable None on one path of a staged statement and a number on
# another (a local `prev = None` before a tensor `while` and set in it was refused the same
# way). Fixed (adaptive45): it is carried as an "is None" flag and a value, and
# `update_step_size`'s `if prev_error_ratio is None:` is a staged test that narrows it (NOTE
# [None or a value under tensor control flow] in runtime/staging/optionals.py; the kind's
# tests are in tests/reference/test_optionals.py).
def test_s02_torchsde_euler_with_adaptive_steps():
    torchsde, sde, path = _sde_parts()

    def solve(y0, ts):
        return torchsde.sdeint(sde, y0, ts, bm=path, method="euler", dt=0.1, adaptive=True,
                               rtol=1e-3, atol=1e-3)

    assert_same_result(solve, _TIMES, compile=False, export=False)


# --- nflows: rational quadratic splines ---------------------------------------------------------

def test_nflows_spline_with_linear_tails():
    splines = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    generator = torch.Generator().manual_seed(0)
    widths, heights = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    derivatives = torch.randn(6, 4, generator=generator)

    def spline(x):
        return splines.unconstrained_rational_quadratic_spline(x, widths, heights, derivatives,
                                                               tail_bound=3.0)

    inputs = [T([0.5, -1., 4., 2.9, -3.5, 0.]),  # some inside the interval
              T([5., -4., 4., 7., -3.5, 10.]),  # none: `if torch.any(inside_interval_mask)`
              T([0.1, 0.2, -0.3, 1., 2., -2.])]
    assert_same_result(spline, inputs, compile=False, export=False, staged=False)


def test_nflows_spline_outside_its_domain_raises_its_error():
    splines = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    from nflows.transforms.base import InputOutsideDomain
    generator = torch.Generator().manual_seed(0)
    widths, heights = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    derivatives = torch.nn.functional.softplus(torch.randn(6, 6, generator=generator))

    def bounded(x):
        return splines.rational_quadratic_spline(x, widths, heights, derivatives, left=-3.,
                                                 right=3., bottom=-3., top=3.)

    function = autoconv.autoconv(bounded)
    inside = T([0.1, 0.2, -0.3, 1., 2., -2.])
    assert_close(function(inside), bounded(inside))
    with pytest.raises(InputOutsideDomain):
        function(T([0.1, 0.2, -0.3, 1., 2., -4.]))
    assert function.trace_count == 1


# s04: zuko's `AdaptiveCheckpointAdjoint.forward(ctx, ...)` called directly (what the
# refusal above suggests) under torch.compile: the converted code gave the static method to
# `converted_call`, whose `type(fn)` dynamo cannot take ("GetAttrVariable(
# AutogradFunctionVariable(), forward) has no type", a UserError pointing into
# runtime/calls.py), and dynamo alone traces the forward unconverted. Now refused at the
# user's line (NOTE [a Function's methods called directly] in runtime/calls.py). Right in
# replay and export.
class _Doubling(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        while x.abs().sum() < 10:
            x = x * 2
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def forward_called_directly(x):
    return _Doubling.forward(None, x) + 1


def test_s04_an_autograd_function_s_forward_called_directly_compiled_is_refused():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(forward_called_directly), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match=r"test_tester44.py:\d+: .*`_Doubling.forward\(...\)`"
                       r".*Move the method's body into a plain function"):
        compiled(T([0.5, -1.0]))


def test_an_autograd_function_s_forward_called_directly():
    assert_same_result(forward_called_directly, [T([0.5, -1.0]), T([20.0, 1.0])], compile=False)


# s05: torchsde's `check_contract` raises under `if not misc.is_strictly_increasing(ts):` and
# then returns the SDE wrapped in another object: the `if` (whose other branch is the rest of
# the function) cannot be staged, and autoconv's trace and export make it an assertion that
# the graph takes the other branch (NOTE [branches that always raise] in
# runtime/staging/context.py); under dynamo, which refuses the bookkeeping that tells a
# branch that raised, it is refused at the `if` ("'sde' is a callable object (OU) before the
# statement and a branch reassigns it"). torch.compile of sdeint stops there.
class _Wrapped(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, y):
        return self.inner(y) * 2


def _strictly_increasing(ts):
    return all(x < y for x, y in zip(ts[:-1], ts[1:]))


def _checked(model, ts):
    if not _strictly_increasing(ts):
        raise ValueError("Evaluation times `ts` must be strictly increasing.")
    return _Wrapped(model)


_INNER = torch.nn.Tanh()


def checked_then_wrapped(y, ts):
    model = _checked(_INNER, ts)
    return model(y)


def test_a_check_that_raises_before_a_helper_returns_an_object():
    function = autoconv.autoconv(checked_then_wrapped)
    y = T([0.5, -1.0])
    assert_close(function(y, T([0.0, 1.0, 2.0])), checked_then_wrapped(y, T([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match="strictly increasing"):
        function(y, T([0.0, 3.0, 2.0]))
    assert function.trace_count == 1


def test_s05_a_check_that_raises_before_a_helper_returns_an_object_compiled_is_refused():
    # Under dynamo the raise cannot become the assertion that the graph takes the other
    # branch (NOTE [branches that always raise]); the refusal names the raising branch and
    # the fixes that fit it (NOTE [a refused if whose branch raises, under dynamo] in
    # runtime/errors.py), where it suggested a tensor value for the return value.
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(checked_then_wrapped), fullgraph=True,
                             backend="eager")
    y, ts = T([0.5, -1.0]), T([0.0, 1.0, 2.0])
    with pytest.raises(StagingError, match=r"test_tester44.py:\d+: .*Its true branch raises: "
                       r"under torch.compile.*torch._assert_async"):
        compiled(y, ts)


def _asserted(model, ts):
    torch._assert_async(torch.as_tensor(_strictly_increasing(ts)),
                        "Evaluation times `ts` must be strictly increasing.")
    return _Wrapped(model)


def asserted_then_wrapped(y, ts):
    return _asserted(_INNER, ts)(y)


def test_s05_the_fix_the_refusal_names_compiles():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(asserted_then_wrapped), fullgraph=True,
                             backend="eager")
    y = T([0.5, -1.0])
    assert_close(compiled(y, T([0.0, 1.0, 2.0])), checked_then_wrapped(y, T([0.0, 1.0, 2.0])))
    with pytest.raises(RuntimeError, match="strictly increasing"):
        compiled(y, T([0.0, 3.0, 2.0]))


# s03: with pyro's validation off (torch's Distribution.__init__ check asks for a tensor's
# value: refused readably, naming validate_args=False), `HMC._find_reasonable_step_size`
# (`while direction_new == direction and self._min_stepsize < step_size < ...:` of
# `1 if self._direction_threshold < -delta_energy else -1`, drawing momenta with pyro.sample)
# stopped in "tracing it changes the global ExpandedDistribution.has_rsample (False before the
# trace, <property object ...> after it)": the guard took pyro's base class's value for its
# subclass's property. Fixed: NOTE [class attributes shadowed in the MRO] in
# autoconv/captures.py; tests/reference/test_captured.py holds the kind.
def _potential(z):
    return 0.5 * (z["x"] ** 2 / T([1.0, 4.0])).sum()


def reasonable_step_size(kernel, x):
    return torch.tensor(kernel._find_reasonable_step_size({"x": x}))


def _fixed_momentum(name):
    """In place of HMC._sample_r's pyro.sample draws: one momentum for every trip, so that the
    comparison with Python depends on no random state (a run of the whole file once gave
    Python 1.0 for seed 1 where it gives 4.0 alone, with the draws)."""
    r = T([0.8, -0.6])
    return {"x": r}, {("x",): r}  # (scaled by site, unscaled by block: identity mass matrix)


def test_s03_pyro_hmc_finds_a_reasonable_step_size():
    pyro = pytest.importorskip("pyro")
    from pyro.infer.mcmc import HMC
    with pyro.validation_enabled(False):
        kernel = HMC(potential_fn=_potential, step_size=1.0, adapt_step_size=True)
        kernel.initial_params = {"x": T([0.5, -0.5])}
        kernel.setup(warmup_steps=10)
        kernel._sample_r = _fixed_momentum
        function = autoconv.autoconv(reasonable_step_size)
        inputs = [T([0.5, -0.5]), T([4.0, 3.0]), T([0.01, 0.02])]
        steps = [reasonable_step_size(kernel, x) for x in inputs]
        assert len({float(s) for s in steps}) > 1, steps  # the loop's other trip counts
        for x, want in zip(inputs, steps):
            assert_close(function(kernel, x), want)


# s06: `sdeint` without `bm` makes its own `BrownianInterval(t0=ts[0], t1=ts[-1], ...)`,
# whose `__init__` (run by Python, unconverted) asks `if t0 > t1:` of the traced times: torch's
# raw GuardOnDataDependentSymNode ("Could not guard on data-dependent expression Eq(u7, 1)",
# caused by autoconv's grad_mode.py). Fixed first as a StagingError at the constructor's line;
# now (init49) the constructor runs converted, its `if t0 > t1: raise` a graph assertion, and
# the call is refused further on, honestly, where the constructor seeds its path from numpy's
# generator (`entropy = np.random.randint(...)`: one number at tracing, a constant of the graph).
def test_s06_torchsde_sdeint_with_its_own_brownian_interval_is_refused_at_its_numpy_draw():
    torchsde, sde, _ = _sde_parts()
    from torchsde._brownian import brownian_interval

    def solve(y0, ts):
        return torchsde.sdeint(sde, y0, ts, method="euler", dt=0.1)

    with pytest.raises(StagingError, match=r"draws a number from numpy's random generator "
                                           r"\(`numpy\.random\.randint\(\.\.\.\)`\)") as error:
        autoconv.autoconv(solve)(*_TIMES[0])
    assert error.value.filename == brownian_interval.__file__
