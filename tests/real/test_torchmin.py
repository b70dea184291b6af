"""torchmin (pytorch-minimize): minimize with "bfgs" and "newton-exact" on Rosenbrock functions
(the iteration count depends on the starting point)."""

import pytest
import torch

from tests.support import assert_same_result

torchmin = pytest.importorskip("torchmin")


def _rosen(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


_STARTS = [(torch.tensor([-1.0, 1.0, 0.5]),), (torch.tensor([0.5, 0.5, 0.5]),)]


def _bfgs(x0):
    return torchmin.minimize(_rosen, x0, method="bfgs").x


def _newton(x0):
    return torchmin.minimize(_rosen, x0, method="newton-exact").x


@pytest.mark.xfail(strict=True, reason=(
    "torchmin/bfgs.py:200 (a status str set under a tensor condition) is still refused inside "
    "the staged loop, and the strong-Wolfe line search (torch.optim.lbfgs, torch's code: not "
    "converted) calls torchmin/function.py:153 `float(f)` on a traced value"))
def test_bfgs():
    assert_same_result(_bfgs, _STARTS)


@pytest.mark.xfail(strict=True, reason=(
    "torchmin/function.py:151: autograd.grad inside a staged loop body (the strong-Wolfe line "
    "search): torch traces cond / while_loop bodies below the autograd key, so the loss has no "
    "grad_fn (RuntimeError), and float(f) in a staged body is a data-dependent guard"))
def test_newton_exact():
    assert_same_result(_newton, _STARTS)


def test_bfgs_failure_names_the_library_line():
    import autoconv

    # The line search is torch.optim's code, which autoconv does not convert: torch's
    # data-dependent guard carries autoconv's note naming torchmin's line.
    with pytest.raises(Exception) as caught:  # noqa: PT011 - torch's own error, with a note
        autoconv.autoconv(_bfgs)(*_STARTS[0])
    notes, error = [], caught.value
    while error is not None:
        notes += getattr(error, "__notes__", [])
        error = error.__context__
    text = str(caught.value) + "".join(notes)
    assert "torchmin/function.py:153" in text, text


def test_newton_exact_failure_says_where_it_differentiates():
    import autoconv

    with pytest.raises(Exception) as caught:  # noqa: PT011 - torch's own errors, chained
        autoconv.autoconv(_newton)(*_STARTS[0])
    notes, error = [], caught.value
    while error is not None:
        notes += getattr(error, "__notes__", [])
        error = error.__context__
    assert any("torchmin/function.py:151 differentiates" in note for note in notes), notes
