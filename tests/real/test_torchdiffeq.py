"""torchdiffeq: odeint with method="dopri5" (adaptive steps: the step count depends on data)."""

import pytest
import torch

from tests.support import assert_same_result

torchdiffeq = pytest.importorskip("torchdiffeq")


def _solve(y0, t, k):
    return torchdiffeq.odeint(lambda s, y: -k * y, y0, t, method="dopri5", rtol=1e-5, atol=1e-6)


_INPUTS = [(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), torch.tensor(2.0)),
           (torch.tensor([1.0, 2.0]), torch.tensor([0.0, 3.0]), torch.tensor(20.0))]


@pytest.mark.xfail(strict=True, reason=(
    "torchdiffeq/_impl/misc.py:273: `if t_is_reversed:` is a tensor condition (t[0] > t[1]) whose "
    "branches assign Python objects (func = _ReverseFunc(...), a lambda closing over "
    "_grid_constructor); refused with a StagingError"))
def test_odeint_dopri5():
    assert_same_result(_solve, _INPUTS)


def test_odeint_refusal_names_the_library_line():
    import autoconv
    from autoconv_runtime.errors import StagingError

    with pytest.raises(StagingError) as caught:
        autoconv.autoconv(_solve)(*_INPUTS[0])
    assert caught.value.filename.endswith("torchdiffeq/_impl/misc.py"), caught.value
    assert caught.value.lineno == 273
