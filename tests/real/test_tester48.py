"""Findings of tester 48: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them):
- xitorch 0.5.1: `_get_largest_eival` (the power iteration its `solve` runs to test
  positive definiteness: a `for` whose `break` sits under `if i > 0:`, a tensor `if torch.all`,
  `xnorm_prev = None` before the loop) is right in every mode. Its public `solve`,
  `rootfinder` and `symeig` run their solvers in autograd.Functions' forwards: refused
  honestly (the message names the Function). `LinearOperator.m(A)` decides `is_hermitian`
  with `torch.allclose` and passes it to `MatrixLinearOperator.__init__`, which tests it:
  refused honestly (constructors ran unconverted); right in the replay and export since
  init49 converts constructors. `davidson` seeds torch's generator
  (`torch.manual_seed(12421)`) even for `v_init="eye"`: refused honestly.
- torchdyn 1.0.6 (with attrs): `odeint(f, x, t_span, solver="rk4", save_at=...)` (a list set
  under a tensor `if torch.isclose(t, save_at).sum():` and appended under another in the
  time loop) is right in the replay and a saved and loaded export, on save_at that take
  other paths. With `t_span` an input the replay guards `if t_span[1] < t_span[0]` (the true
  branch makes a lambda) and an exported program raises the guard's message on reversed
  time: honest. Under torch.compile a global `t_span` is a graph input, so the same `if` is
  refused (honest; dynamo alone breaks the graph there). `dopri5` / `tsit5` are refused:
  `dt` is (1,) in one branch and () in the other (honest, names `dt` and both shapes). Its
  line searches (`NaiveSearch`, `LineSearchArmijo`) test `torch.isfinite(g0).all()` in
  `__init__`: refused honestly (constructor); right in the replay and export since init49
  (Armijo's search under torch.compile: refused honestly, `alpha0` an int before its `while`
  and a tensor in it).
- roma 1.8.0: `special_procrustes`, `rotvec_to_rotmat`, `unitquat_to_rotvec`,
  `unitquat_slerp`, `rigid_points_registration` right in every mode (no staged flow);
  `if roma.is_rotation_matrix(R): ... else: special_procrustes` is staged and right.
- geomloss 0.3.1 `SamplesLoss("sinkhorn", backend="tensorized")`: its epsilon schedule comes
  from `diameter.item()` through numpy: refused honestly at `sinkhorn_divergence.py:145`
  (replay, export); with `diameter=` given it is right in every mode; "energy" too.
- ncps 1.0.1 `CfC` / `LTC` (Python loops over time): right in every mode, nothing staged.
- julius 0.2.8 (`resample_frac`, `lowpass_filter`), torch-dct 0.1.6 (`dct_2d`/`idct_2d`):
  right in the replay and export.
- torchkbnufft 1.5.2 `KbNufft`: `fft_and_scale` (a script function) grows `pad_sizes` with
  `int(gd - im)` over `zip(grid_size.flip((0,)), im_size.flip((0,)))`: refused at `F.pad` as
  "a list grown under tensor control flow" the code does not have (s01, fixed: NOTE [a zip's
  length known while tracing]). The sizes come from buffers, traced as torch.export's are, so
  the FFT's shape stays data-dependent: refused honestly at `fft.py:14`, where torch.export
  and torch.compile without autoconv fail too.
- torch-pca 1.1.0 `PCA(n_components=0.9).fit_transform` (a component count from
  `searchsorted(...).item()`, then slices by it): right in the replay and export, 3 and 1
  columns from one trace; under torch.compile refused honestly at the slice
  (`pca_main.py:232`). `PCA(n_components=2, svd_solver="full")`: right in every mode.
- torchimize 0.0.16: every solver calls `torch.linalg.lstsq`, which torch cannot trace
  (DynamicOutputShapeException, with or without autoconv; torch's). NOTE: its wheel installs
  a top-level `tests` package that shadows this repository's `tests` (a namespace package),
  so `from tests.support import ...` breaks in a venv that has it: never add it to `real`.
"""

from __future__ import annotations

import pytest
import torch

from autoconv_runtime import StagingError
from tests.support import assert_same_result

import autoconv

T = torch.tensor
F64 = torch.float64


# --- xitorch: a power iteration whose `break` sits under `if i > 0:` -------------------------

def largest_eigenvalue(A, x):
    from xitorch._impls.linalg.solve import _get_largest_eival
    return _get_largest_eival(lambda v: A @ v, x)


def test_xitorch_power_iteration_breaks_on_convergence():
    pytest.importorskip("xitorch")
    fast = torch.diag(T([5.0, 1.0, 0.5, 0.1], dtype=F64))   # converges in a few steps
    slow = torch.diag(T([1.0, 0.99, 0.98, 0.97], dtype=F64))  # runs all 10
    x0 = torch.ones(4, 1, dtype=F64)
    assert_same_result(largest_eigenvalue, [(fast, x0), (slow, x0), (torch.eye(4, dtype=F64), x0)],
                       compile=False)


# --- torchdyn: the fixed-step solver's solution list, set and grown under tensor `if`s --------

class _Decay(torch.nn.Module):
    def forward(self, t, x):
        return -x + torch.sin(t)


_DECAY = _Decay()


def rk4_saved_at(x, save_at):
    from torchdyn.numerics import odeint
    return odeint(_DECAY, x, torch.linspace(0, 1, 3), solver="rk4", save_at=save_at)[1]


def test_torchdyn_rk4_solution_list_under_tensor_ifs():
    pytest.importorskip("torchdyn")
    pytest.importorskip("attr")
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    # The first time is saved or not (`sol = [x]` under a tensor `if`), then the loop appends.
    assert_same_result(rk4_saved_at, [(x, T([0.0, 0.5])), (x * 5, T([0.5, 1.0]))],
                       compile=False)


# --- torchdyn: line searches whose constructor tests the residual (init49) -------------------

_A = T([[3.0, 1.0], [1.0, 2.0]])


def _residual(z):
    return _A @ z - 1.0


def _line_search(kind, z0, dz):
    from torchdyn.numerics.solvers import root
    searcher = getattr(root, kind)(_residual, _residual(z0), dz, z0)
    alpha, phi = searcher.search()
    return torch.as_tensor(alpha, dtype=torch.float32), phi


def naive_line_search(z0, dz):
    return _line_search("NaiveSearch", z0, dz)


def armijo_line_search(z0, dz):
    return _line_search("LineSearchArmijo", z0, dz)


# `LineSearcher.__init__` sets `self.phi0 = _safe_norm(g0)**2`, whose `if not
# torch.isfinite(v).all(): return np.inf` ran unconverted in the constructor: refused (tester48).
# Constructors now run converted: right in the replay and a saved and loaded export, on steps
# accepted at once, after some backtracking, and never (an infinite residual).
@pytest.mark.parametrize("fn", [naive_line_search, armijo_line_search])
def test_torchdyn_line_searches_test_the_residual_in_their_constructor(fn):
    pytest.importorskip("torchdyn")
    pytest.importorskip("attr")
    z0 = torch.zeros(2)
    assert_same_result(fn, [(z0, T([0.2, 0.4])), (z0, T([5.0, 5.0])),
                            (z0, T([float("inf"), 1.0]))], compile=False)


# --- xitorch: `LinearOperator.m` decides `is_hermitian` and its constructor tests it (init49) -

def hermitian_operator(A, x):
    import xitorch
    op = xitorch.LinearOperator.m(A)
    return op.mv(x), torch.as_tensor(op.is_hermitian)


def test_xitorch_matrix_operator_constructor_tests_a_staged_flag():
    # `MatrixLinearOperator.__init__` runs `super(MatrixLinearOperator, self).__init__(...)`,
    # whose `if is_hermitian and shape[-1] != shape[-2]:` read the flag `torch.allclose` gave:
    # refused as an unconverted constructor (tester48). Its class's own `__new__` and both
    # `__init__`s now run converted (`super(C, self)` too).
    pytest.importorskip("xitorch")
    x = T([1.0, 2.0], dtype=F64)
    assert_same_result(hermitian_operator, [(T([[2.0, 1.0], [1.0, 3.0]], dtype=F64), x),
                                            (T([[2.0, 1.0], [0.0, 3.0]], dtype=F64), x)],
                       compile=False, staged=False)


# --- roma: a staged `if` on its own predicate ----------------------------------------------

def rotvec_of_nearest_rotation(R):
    import roma
    if roma.is_rotation_matrix(R, epsilon=1e-5):
        return roma.rotmat_to_rotvec(R)
    return roma.rotmat_to_rotvec(roma.special_procrustes(R))


def test_roma_is_rotation_matrix_under_a_tensor_if():
    roma = pytest.importorskip("roma")
    generator = torch.Generator().manual_seed(0)
    rotations = roma.random_rotmat(2, generator=generator)
    assert_same_result(rotvec_of_nearest_rotation,
                       [rotations, torch.randn(2, 3, 3, generator=generator)], compile=False)


# --- geomloss: the epsilon schedule read from the data -------------------------------------

def sinkhorn(x, y):
    from geomloss import SamplesLoss
    return SamplesLoss("sinkhorn", p=2, blur=0.05, backend="tensorized")(x, y)


def test_geomloss_sinkhorn_schedule_from_item_is_refused_at_its_line():
    pytest.importorskip("geomloss")
    x, y = torch.randn(5, 2), torch.randn(6, 2)
    with pytest.raises(StagingError, match=r"sinkhorn_divergence\.py:145: .*np\.arange"):
        autoconv.autoconv(sinkhorn)(x, y)


# --- torchkbnufft: pad sizes read from the module's size buffers ---------------------------

def test_torchkbnufft_pad_sizes_from_buffers_refused_where_torch_refuses():
    # s01 (fixed): `fft_and_scale` grows `pad_sizes` over zip(grid_size, im_size), which was
    # refused at F.pad as "a list grown under tensor control flow". The list is now Python's;
    # the sizes, read from buffers (traced, as torch.export's are), still make the FFT's shape
    # data-dependent, which torch.export refuses without autoconv too: an honest message there.
    tkbn = pytest.importorskip("torchkbnufft")
    nufft = tkbn.KbNufft(im_size=(8, 8))
    trajectory = torch.rand(2, 20, generator=torch.Generator().manual_seed(0)) * 6 - 3
    image = torch.ones(1, 1, 8, 8, dtype=torch.complex64)
    with pytest.raises(StagingError, match=r"fft\.py:14: in a tensor-dependent expression"):
        autoconv.autoconv(lambda x, k: nufft(x, k))(image, trajectory)


# --- torch-pca: a number of components read from the data ----------------------------------

def pca_for_nine_tenths_of_the_variance(x):
    from torch_pca import PCA
    return PCA(n_components=0.9).fit_transform(x)


def test_torch_pca_components_chosen_by_explained_variance():
    # `searchsorted(...).item() + 1` components, then `vh_mat[: self.n_components_]`: 3 and 1
    # columns on these inputs, from one trace.
    pytest.importorskip("torch_pca")
    generator = torch.Generator().manual_seed(0)
    spread = torch.randn(10, 4, generator=generator)
    one_direction = torch.randn(10, 4, generator=generator) * T([10.0, 1.0, 0.1, 0.01])
    assert_same_result(pca_for_nine_tenths_of_the_variance, [spread, one_direction],
                       staged=False, compile=False)
