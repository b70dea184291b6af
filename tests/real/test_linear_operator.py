"""linear_operator (GPyTorch's conjugate gradients): `utils.linear_cg.linear_cg(A.matmul, b)`.

Its loop `for k in range(n_iter)` stops at a tensor-dependent `break` (the residual under the
tolerance), after a top-level `if has_converged.all() and not n_tridiag:` whose branches bind
different names (`alpha` only in the `else`): the trace specialises that `if` on the example's
value under a guard, and a right-hand side that has converged at the start is traced as the
other variant. torch.export cannot specialise (no real values), so it refuses at the library's
line; under torch.compile dynamo cannot trace `callable(A.matmul)` (linear_cg.py, before any
control flow), which is dynamo's limit (docs/real-code.md).
"""

import pytest
import torch

linear_cg = pytest.importorskip("linear_operator.utils.linear_cg").linear_cg


def _system(n, seed, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=generator, dtype=torch.float64)
    a = m @ m.T + scale * n * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return a, b


def _solve(a, b):
    return linear_cg(a.matmul, b, tolerance=1e-6)


@pytest.mark.slow
def test_linear_cg_replays_on_systems_that_take_other_iteration_counts():
    import autoconv

    solve = autoconv.autoconv(_solve)
    # 12, 27 and 28 matrix products in eager: the loop breaks at different iterations
    systems = [_system(24, 0), _system(24, 0, scale=0.01), _system(24, 0, scale=0.001)]
    converged = (systems[0][0], torch.zeros(24, 2, dtype=torch.float64))  # n_iter = 0 path
    for a, b in [*systems, converged]:
        torch.testing.assert_close(solve(a, b), _solve(a, b))


@pytest.mark.slow
def test_linear_cg_export_refuses_at_the_librarys_line():
    import autoconv
    from autoconv_runtime import StagingError

    class Solve(torch.nn.Module):
        def forward(self, a, b):
            return autoconv.convert(_solve)(a, b)

    with pytest.raises(StagingError, match=r"linear_cg\.py:\d+: .*'alpha' has no value"):
        torch.export.export(Solve(), _system(6, 0), strict=False)
