"""Findings of tester 43: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried:
- k-diffusion (crowsonkb/k-diffusion, MIT, `k_diffusion/sampling.py` at 4601bf0, version
  0.2.0.dev0): `PIDStepSizeController` as published (`propose_step` reads `float(error)`, its
  `limiter` returns `1 + math.atan(x - 1)`, `self.errs` filled on the first call, `self.h *=
  factor`), driven by an adaptive Euler / Heun pair the way `DPMSolver.dpm_solver_adaptive`
  drives it (`while s < t_end`, accept or reject, counts in an `info` dict): the helper's
  `math.atan` of the number read from the tensor was refused in replay and export (s01, fixed);
  under torch.compile the float in `self.errs[0]` stopped in torch's "can only be of (Tensor,
  int, SymInt)" (s02, fixed: tests/reference/test_item_numbers.py), then in dynamo's "HOP:
  Unsafe side effect" (s03, fixed by errs44).
- k-diffusion's samplers over a Karras schedule with the exact denoiser of N(0, 1) data:
  `sample_euler`, `sample_heun`, `sample_dpm_2` (churn between `s_tmin <= sigmas[i] <= s_tmax`,
  `if sigmas[i + 1] == 0`), `sample_euler_ancestral`, `sample_dpm_2_ancestral` (a noise
  sampler passed in; `get_ancestral_step`'s `min` of tensors) and `sample_dpmpp_2m`: right in
  replay and export on schedules ending at 0 and not (13 to 35 s each at load 15; DPM++(2M)
  kept below).
- k-diffusion's `DPMSolver.dpm_solver_adaptive` itself (orders 2 and 3, the same denoiser):
  after s01's fix its trace had not ended in 15 minutes of wall time at load 10 to 15 (2.5
  minutes of CPU), and with the default 8 MiB stack the process died of SIGSEGV in the trace
  (exit 139; faulthandler's dumps show the staged `while`'s test, `s < t_end - 1e-5 if
  forward else s > t_end + 1e-5` of a traced `forward`, restaged within nested `if`s). With
  `ulimit -s unlimited` it ran 25 minutes without ending. Fixed by kdiff43 (a carry took
  another carry's record of `info['steps']` replaced): refused in about 3 s at the loop's
  line, where `self.errs` grows from [] to three items on its first trip; with the list
  filled before the loop (the same proposals at its default coefficients) it is right in
  replay from one trace. Under torch.compile(fullgraph=True, backend="eager") (session 50,
  err50; order 2, `_adaptive` below): it converts and is right, its first call 156 s of CPU
  (448 s wall at load 8 to 12 on the 2-core machine), then the inputs taking 11 and 4 steps
  ran in 0.1 s each without a recompile; left out of the suite for its time.

A finding not fixed is a strict xfail whose reason starts with its id (tester43 sNN).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import autoconv
from tests.support import assert_same_result

T = torch.tensor


# --- k-diffusion's PID step-size controller ---------------------------------------------------

class PIDStepSizeController:
    """k_diffusion/sampling.py `PIDStepSizeController` (MIT), as published."""
    def __init__(self, h, pcoeff, icoeff, dcoeff, order=1, accept_safety=0.81, eps=1e-8):
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs = []

    def limiter(self, x):
        return 1 + math.atan(x - 1)

    def propose_step(self, error):
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = self.limiter(factor)
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2] = self.errs[1]
            self.errs[1] = self.errs[0]
        self.h *= factor
        return accept


def _first_proposal(x, h):
    """One step of an Euler / Heun pair on dx/dt = -x, its error given to the controller."""
    pid = PIDStepSizeController(h, 0., 1., 0., order=2)
    x_low = x - h * x
    x_high = x - h * (x + x_low) / 2
    error = torch.linalg.norm(x_low - x_high) / 1e-3
    accept = pid.propose_step(error)
    return torch.tensor(pid.h), torch.tensor(accept)


# s01: `propose_step(error)` reads `float(error)` of the traced error, and its arithmetic gives
# `limiter` a symbolic float: the helper ran the twin that counts no parameter a number, whose
# `math.atan(x - 1)` asked the symbol for its value ("asks Python for the value of a traced
# tensor", at sampling.py's `limiter`), in replay and export. Fixed: a call given a number
# read from a traced tensor runs the numbers twin (NOTE [numbers given to a function] in
# runtime/calls.py; the kind's test is in tests/reference/test_math_functions.py).
def test_s01_k_diffusion_pid_controller_proposal_in_every_mode():
    inputs = [(T([1.0, -2.0]), 0.05), (T([0.1, 0.0]), 0.05), (T([0.3, -0.2]), 0.05)]
    assert [bool(_first_proposal(*args)[1]) for args in inputs] == [False, True, True]
    assert_same_result(_first_proposal, inputs, staged=False, compile=False)


# s03: under torch.compile the same proposal stopped in dynamo's own UncapturedHigherOrderOpError
# ("HOP: Unsafe side effect ... Attempted to mutate ListVariable(length=3)", at the method's
# `if accept:`), no wrong value: `self.errs = [inv_error, inv_error, inv_error]` holds one number
# at three items, and the staged `if` sets one item from another, which changes no item's
# identity, so the list probe saw no write and left the list a constant of the statement, which
# dynamo refuses to change in torch.cond's branch. The kind is any list whose item is written
# with the value it holds (`errs = [inv, inv, inv]` then `if inv > 0.5: errs[1] = errs[0]`, at
# a function's top level too; Python floats as well). Fixed (errs44): under dynamo a list whose
# items a body's code writes is carried (NOTE [item writes seen in the code] in
# runtime/staging/item_writes.py).
def test_s03_k_diffusion_pid_controller_proposal_compiled():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_first_proposal), fullgraph=True, backend="eager")
    for x, h in [(T([0.1, 0.0]), 0.05), (T([1.0, -2.0]), 0.05)]:
        torch.testing.assert_close(compiled(x, h), _first_proposal(x, h))


def _same_number_written_over_itself(x):
    inv = float(x.sum())
    errs = [inv, inv, inv]
    plain = [0.5, 0.5, 0.5]
    if inv > 0.5:
        errs[1] = errs[0]
        plain[2] = plain[1]
        errs[2] = errs[2] * 2
    return torch.tensor(errs) * x.sum() + torch.tensor(plain)


def test_s03_a_list_item_written_with_the_value_it_holds_compiled():
    # (the kind at a function's top level, a number read from a tensor and Python's floats)
    torch._dynamo.reset()
    fn = _same_number_written_over_itself
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    for x in (T([1.0, 2.0]), T([0.1, 0.2])):
        torch.testing.assert_close(compiled(x), fn(x))


# --- k-diffusion's adaptive DPM-Solver -------------------------------------------------------

def default_noise_sampler(x):
    """k_diffusion/sampling.py `default_noise_sampler` (MIT), as published."""
    return lambda sigma, sigma_next: torch.randn_like(x)


def get_ancestral_step(sigma_from, sigma_to, eta=1.):
    """k_diffusion/sampling.py `get_ancestral_step` (MIT), as published (not reached: eta=0)."""
    if not eta:
        return sigma_to, 0.
    sigma_up = min(sigma_to, eta * (sigma_to ** 2 * (sigma_from ** 2 - sigma_to ** 2) / sigma_from ** 2) ** 0.5)
    sigma_down = (sigma_to ** 2 - sigma_up ** 2) ** 0.5
    return sigma_down, sigma_up


class DPMSolver(nn.Module):
    """k_diffusion/sampling.py `DPMSolver` (MIT), as published but for `dpm_solver_fast`, left
    out. See https://arxiv.org/abs/2206.00927."""

    def __init__(self, model, extra_args=None, eps_callback=None, info_callback=None):
        super().__init__()
        self.model = model
        self.extra_args = {} if extra_args is None else extra_args
        self.eps_callback = eps_callback
        self.info_callback = info_callback

    def t(self, sigma):
        return -sigma.log()

    def sigma(self, t):
        return t.neg().exp()

    def eps(self, eps_cache, key, x, t, *args, **kwargs):
        if key in eps_cache:
            return eps_cache[key], eps_cache
        sigma = self.sigma(t) * x.new_ones([x.shape[0]])
        eps = (x - self.model(x, sigma, *args, **self.extra_args, **kwargs)) / self.sigma(t)
        if self.eps_callback is not None:
            self.eps_callback()
        return eps, {key: eps, **eps_cache}

    def dpm_solver_1_step(self, x, t, t_next, eps_cache=None):
        eps_cache = {} if eps_cache is None else eps_cache
        h = t_next - t
        eps, eps_cache = self.eps(eps_cache, 'eps', x, t)
        x_1 = x - self.sigma(t_next) * h.expm1() * eps
        return x_1, eps_cache

    def dpm_solver_2_step(self, x, t, t_next, r1=1 / 2, eps_cache=None):
        eps_cache = {} if eps_cache is None else eps_cache
        h = t_next - t
        eps, eps_cache = self.eps(eps_cache, 'eps', x, t)
        s1 = t + r1 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1, eps_cache = self.eps(eps_cache, 'eps_r1', u1, s1)
        x_2 = x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / (2 * r1) * h.expm1() * (eps_r1 - eps)
        return x_2, eps_cache

    def dpm_solver_3_step(self, x, t, t_next, r1=1 / 3, r2=2 / 3, eps_cache=None):
        eps_cache = {} if eps_cache is None else eps_cache
        h = t_next - t
        eps, eps_cache = self.eps(eps_cache, 'eps', x, t)
        s1 = t + r1 * h
        s2 = t + r2 * h
        u1 = x - self.sigma(s1) * (r1 * h).expm1() * eps
        eps_r1, eps_cache = self.eps(eps_cache, 'eps_r1', u1, s1)
        u2 = x - self.sigma(s2) * (r2 * h).expm1() * eps - self.sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (eps_r1 - eps)
        eps_r2, eps_cache = self.eps(eps_cache, 'eps_r2', u2, s2)
        x_3 = x - self.sigma(t_next) * h.expm1() * eps - self.sigma(t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)
        return x_3, eps_cache

    def dpm_solver_adaptive(self, x, t_start, t_end, order=3, rtol=0.05, atol=0.0078, h_init=0.05, pcoeff=0., icoeff=1., dcoeff=0., accept_safety=0.81, eta=0., s_noise=1., noise_sampler=None):
        noise_sampler = default_noise_sampler(x) if noise_sampler is None else noise_sampler
        if order not in {2, 3}:
            raise ValueError('order should be 2 or 3')
        forward = t_end > t_start
        if not forward and eta:
            raise ValueError('eta must be 0 for reverse sampling')
        h_init = abs(h_init) * (1 if forward else -1)
        atol = torch.tensor(atol)
        rtol = torch.tensor(rtol)
        s = t_start
        x_prev = x
        accept = True
        pid = PIDStepSizeController(h_init, pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety)
        info = {'steps': 0, 'nfe': 0, 'n_accept': 0, 'n_reject': 0}

        while s < t_end - 1e-5 if forward else s > t_end + 1e-5:
            eps_cache = {}
            t = torch.minimum(t_end, s + pid.h) if forward else torch.maximum(t_end, s + pid.h)
            if eta:
                sd, su = get_ancestral_step(self.sigma(s), self.sigma(t), eta)
                t_ = torch.minimum(t_end, self.t(sd))
                su = (self.sigma(t) ** 2 - self.sigma(t_) ** 2) ** 0.5
            else:
                t_, su = t, 0.

            eps, eps_cache = self.eps(eps_cache, 'eps', x, s)
            denoised = x - self.sigma(s) * eps

            if order == 2:
                x_low, eps_cache = self.dpm_solver_1_step(x, s, t_, eps_cache=eps_cache)
                x_high, eps_cache = self.dpm_solver_2_step(x, s, t_, eps_cache=eps_cache)
            else:
                x_low, eps_cache = self.dpm_solver_2_step(x, s, t_, r1=1 / 3, eps_cache=eps_cache)
                x_high, eps_cache = self.dpm_solver_3_step(x, s, t_, eps_cache=eps_cache)
            delta = torch.maximum(atol, rtol * torch.maximum(x_low.abs(), x_prev.abs()))
            error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
            accept = pid.propose_step(error)
            if accept:
                x_prev = x_low
                x = x_high + su * s_noise * noise_sampler(self.sigma(s), self.sigma(t))
                s = t
                info['n_accept'] += 1
            else:
                info['n_reject'] += 1
            info['nfe'] += order
            info['steps'] += 1

            if self.info_callback is not None:
                self.info_callback({'x': x, 'i': info['steps'] - 1, 't': s, 't_up': s, 'denoised': denoised, 'error': error, 'h': pid.h, **info})

        return x, info


def _adaptive(x, sigma_min, sigma_max, order, counted):
    # (as `sample_dpm_adaptive` calls it, but for tqdm's progress bar: `eps_callback` counts the
    # denoiser's calls)
    solver = DPMSolver(_denoiser, eps_callback=counted)
    return solver.dpm_solver_adaptive(x, solver.t(sigma_max), solver.t(sigma_min), order=order,
                                      rtol=0.05, atol=0.0078)


# kdiff43: the loop body changes the controller (`self.h *= factor`), so the staged `while` was
# staged again with it moved into its state, through a second carry whose `except` took the
# first one's record of `info['steps']` replaced (NOTE [replaced records of an enclosing carry]
# in runtime/staging/objects.py): on tester43's branch it staged again one level deeper each
# time (28 levels in 80 s), until the process died of SIGSEGV; then, with session 43's guard,
# it refused `info['steps']`, which a staged loop carries as a tensor like a local count. Then
# the trace ended in seconds at `self.errs`, which grows from [] to three items on the loop's
# first trip, under the tensor test ("`pid.errs` changes its length in the loop body"). peel46:
# the loop is staged with its first trip peeled off as an `if`, which leaves `pid.errs` a list
# of a traced length (0 or 3) that the loop then carries (NOTE [a loop's first trip peeled] in
# runtime/staging/peeling.py): Python's result, from one trace, on inputs that take other
# numbers of steps and rejections.
@pytest.mark.parametrize("order", [2, 3])
def test_k_diffusion_dpm_solver_adaptive_matches_python(order):
    calls = []

    @autoconv.do_not_convert
    def counted():
        calls.append(1)

    g = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(2, 3, generator=g) * 10, T(0.1), T(10.0)),
              (torch.randn(2, 3, generator=g) * 5, T(0.05), T(20.0)),
              (torch.randn(2, 3, generator=g), T(1.0), T(2.0))]
    # (Python's counts: 9 steps accepted, 2 rejected at order 2; 6 accepted at order 3)
    assert _adaptive(*inputs[0], order, lambda: None)[1]["steps"] == {2: 11, 3: 6}[order]
    function = autoconv.autoconv(lambda x, lo, hi: _adaptive(x, lo, hi, order, counted))
    for args in inputs:
        got, want = function(*args), _adaptive(*args, order, lambda: None)
        torch.testing.assert_close(got[0], want[0])
        assert {k: int(v) for k, v in got[1].items()} == want[1]
    assert function.trace_count == 1
    # (the denoiser's calls in the one trace: 46 at order 2, 69 at order 3, the body run by the
    # failed attempt, the peeled `if` and the loop, with their probes)
    assert len(calls) <= {2: 60, 3: 90}[order], len(calls)


# peel48: `sample_dpm_adaptive` as published wraps the solver in `with tqdm(disable=disable) as
# pbar:` (`eps_callback=pbar.update`). Every `tqdm(...)` starts tqdm's monitor thread, which
# sets `tqdm.monitor.woken` every few seconds: the graph's guard on it failed on the next call
# ("tracing it changes the global tqdm.monitor.woken", the sampler never replayed). A thread
# object's fields are not guarded (NOTE [another thread's state] in autoconv/captures.py).
try:
    from tqdm.auto import tqdm  # (a global, as k_diffusion/sampling.py imports it)
except ImportError:  # pragma: no cover
    tqdm = None


def _with_progress_bar(x):
    # (tqdm as `sample_dpm_adaptive` uses it, about a staged loop)
    with tqdm(disable=True) as pbar:
        while x.sum() < 10:
            x = x * 2 + 1
            pbar.update()
    return x


@pytest.mark.skipif(tqdm is None, reason="needs tqdm")
def test_tqdm_progress_bar_about_a_staged_loop_replays_while_its_monitor_runs():
    inputs = [T([1.0]), T([20.0]), T([0.25])]
    wants = [_with_progress_bar(x) for x in inputs]  # (Python's calls start the monitor)
    function = autoconv.autoconv(_with_progress_bar)
    for x, want in zip(inputs, wants):
        torch.testing.assert_close(function(x), want)
        if tqdm.monitor is not None:
            tqdm.monitor.woken += 1.0  # (what the monitor thread does every few seconds)
    assert function.trace_count == 1


# --- k-diffusion's DPM-Solver++(2M) sampler --------------------------------------------------

def _append_dims(x, target_dims):
    """k_diffusion/utils.py `append_dims` (MIT), as published."""
    dims_to_append = target_dims - x.ndim
    if dims_to_append < 0:
        raise ValueError(f'input has {x.ndim} dims but target_dims is {target_dims}, which is less')
    return x[(...,) + (None,) * dims_to_append]


@torch.no_grad()
def sample_dpmpp_2m(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """k_diffusion/sampling.py `sample_dpmpp_2m` (MIT), as published but for tqdm's `trange`
    (`range`)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    sigma_fn = lambda t: t.neg().exp()
    t_fn = lambda sigma: sigma.log().neg()
    old_denoised = None

    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({'x': x, 'i': i, 'sigma': sigmas[i], 'sigma_hat': sigmas[i], 'denoised': denoised})
        t, t_next = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
        h = t_next - t
        if old_denoised is None or sigmas[i + 1] == 0:
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised
        else:
            h_last = t - t_fn(sigmas[i - 1])
            r = h_last / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


def _denoiser(x, sigma):
    # (the exact denoiser of data drawn from N(0, 1): E[x0 | x] = x / (1 + sigma^2))
    return x / (1 + _append_dims(sigma, x.ndim) ** 2)


def _dpmpp_2m(x, sigmas):
    return sample_dpmpp_2m(_denoiser, x, sigmas)


def test_k_diffusion_dpmpp_2m_on_schedules_ending_at_zero_or_not():
    # `old_denoised is None or sigmas[i + 1] == 0`: a Python test, then a tensor one; right in
    # replay and export (as were `sample_euler` and `sample_heun` with churn between s_tmin and
    # s_tmax, `sample_dpm_2`, and the ancestral samplers with a noise sampler passed in)
    x = T([[4.0, -8.0, 1.5], [0.5, 12.0, -3.0]])
    inputs = [(x, T([10.0, 2.5, 0.7, 0.1, 0.0])), (x, T([10.0, 3.0, 0.3, 0.2, 0.1])),
              (x, T([1.0, 0.5, 0.25, 0.125, 0.0]))]
    assert_same_result(_dpmpp_2m, inputs, staged=True, compile=False)
