"""ViewAttributeConverter: reads of a tensor's view attributes (`.mT`, `.T`, `.H`, `.mH`) go
through the runtime (NOTE [view attributes under dynamo] in runtime/views.py)."""

import pytest
import torch

import autoconv
from autoconv_runtime import view_attribute_
from support import assert_converts


def test_reads_go_through_the_runtime_and_other_attributes_stay():
    assert_converts(
        """
        def f(self, x):
            a = self.H.mT @ x
            b = x.mH.sum() + x.H.shape[0]
            x.T.add_(1)
            return a + b + x.mTx
        """,
        """
        def f(self, x):
            a = ac.view_attribute_(ac.view_attribute_(self, 'H'), 'mT') @ x
            b = ac.view_attribute_(x, 'mH').sum() + ac.view_attribute_(x, 'H').shape[0]
            ac.view_attribute_(x, 'T').add_(1)
            return a + b + x.mTx
        """,
    )
    # (an object's field named so, `self.H`, is read as written: `getattr`)


def test_the_runtime_reads_the_attribute_outside_dynamo():
    x = torch.arange(6.0).reshape(2, 3)
    for name in ("mT", "T", "H", "mH"):
        assert view_attribute_(x, name) is not x
        assert torch.equal(view_attribute_(x, name), getattr(x, name))


class _Filter:
    def __init__(self):
        self.H = torch.tensor([[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]]) * (1 + 1j)


_FILTER = _Filter()


def views_of_a_field_in_both_branches(x):
    # each view of `_FILTER.H` with its tensor in one torch.cond (kf56's kind, every attribute)
    if x.real.sum() > 0:
        y = (_FILTER.H.mT @ _FILTER.H @ x).real + (_FILTER.H.T @ _FILTER.H @ x).imag
    else:
        y = (_FILTER.H.mH @ _FILTER.H @ x).real - (_FILTER.H.H @ _FILTER.H @ x).imag
    return y


def test_views_of_a_field_read_in_staged_branches_compile_and_equal_python():
    # dynamo refused each: "Higher order ops do not support aliasing" (NOTE [view attributes
    # under dynamo])
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(views_of_a_field_in_both_branches),
                             fullgraph=True, backend="eager")
    for x in (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, 2.0, -3.0])):
        x = x.to(torch.complex64)
        torch.testing.assert_close(compiled(x), views_of_a_field_in_both_branches(x))
