"""linear_operator (GPyTorch's conjugate gradients): `utils.linear_cg.linear_cg(A.matmul, b)`.

Its loop `for k in range(n_iter)` stops at a tensor-dependent `break` (the residual under the
tolerance), after a top-level `if has_converged.all() and not n_tridiag:` whose branches bind
different names (`n_iter = 0` in one; `alpha`, `beta`, `curr_conjugate_vec` ... only in the
`else`): the `if` is staged, those names carried with bound flags, and the loop (of no trip
where the right-hand side has converged) updates them with `out=` and in place. Two things
made the replay differ from Python (NOTE [outside tensors updated in a probe] in
runtime/staging/outside_writes.py, NOTE [reads after a loop of no trip] in
autoconv/converters/unbound.py): the probe that learns the type of `k` updated the buffers
once more outside torch.while_loop (0.13 off after one iteration, 1.7e-4 relative at
convergence), and the loop's own check of `k` raised UnboundLocalError after a loop of no trip
where Python reads `k` only under `n_iter > 0`. Under torch.compile it stopped at
`callable(A.matmul)` (linear_cg.py, before any control flow), for which dynamo has no rule
(converted code asks `ac.callable_` now), then at the loop's `@torch.jit.script` helpers
(NOTE [script functions under dynamo] in runtime/calls.py); it stops now at dynamo's refusal
of `Tensor.resize_as_()` in `_jit_linear_cg_updates` (docs/real-code.md).
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


class _Solve(torch.nn.Module):
    def forward(self, a, b):
        import autoconv

        return autoconv.convert(_solve)(a, b)


def _exported(tmp_path):
    program = torch.export.export(_Solve(), _system(24, 0), strict=False)
    torch.export.save(program, tmp_path / "cg.pt2")
    return torch.export.load(tmp_path / "cg.pt2").module()


@pytest.mark.slow
def test_linear_cg_exported_program_gives_eagers_solution(tmp_path):
    # (it refused before the `if` carried its names with bound flags: "'alpha' has no value
    # in the true branch")
    module = _exported(tmp_path)
    for a, b in [_system(24, 0), _system(24, 0, scale=0.01), _system(24, 0, scale=0.001),
                 _system(24, 3)]:
        torch.testing.assert_close(module(a, b), _solve(a, b))


@pytest.mark.slow
def test_linear_cg_exported_program_on_a_converged_right_hand_side(tmp_path):
    # (the loop is staged in a branch of an enclosing `if`, where the run of its body that
    # learns the type of `k` was not marked as a probe under torch.export: its check that
    # `curr_conjugate_vec` is bound stayed in the branch, outside torch.while_loop, and raised
    # UnboundLocalError; NOTE [probes in bodies dynamo traces] in runtime/staging/context.py)
    module = _exported(tmp_path)
    a, _ = _system(24, 0)
    b = torch.zeros(24, 2, dtype=torch.float64)
    torch.testing.assert_close(module(a, b), _solve(a, b))


@pytest.mark.slow
def test_linear_cg_under_compile_stops_at_dynamos_resize_as():
    # `callable(A.matmul)` and the loop's @torch.jit.script helpers trace now; linear_cg's
    # `beta.resize_as_(residual_inner_prod)` is torch's limit, with or without autoconv
    import autoconv

    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_solve), fullgraph=True, backend="eager")
    with pytest.raises(torch._dynamo.exc.Unsupported, match=r"resize_as_"):
        compiled(*_system(24, 0))
