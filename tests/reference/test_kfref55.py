"""Reference tests: kfref55 (issue 9, real code; issue 10 item 4), torch-kf's masked update
written with a global filter: a method of a global's object named as a dict's changing one
(`kf.update(...)`) that only reads its object was refused under torch.compile as a change of
the global (NOTE [methods named as a container's changing ones] in
runtime/staging/python_state.py); a method of a global's object called under torch.compile
failed dynamo's guard on the frame that made it (runtime/threads.py's `refuse_class`)."""

import dataclasses

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close, assert_same_result

T = torch.tensor
NAN = float("nan")


@dataclasses.dataclass
class _Gaussian:
    mean: torch.Tensor
    covariance: torch.Tensor


class _Filter:
    def __init__(self, h):
        self.h = h

    def update(self, state, measure):  # (reads its object only)
        return _Gaussian(state.mean + self.h.sum() + measure.sum(), state.covariance * 2)


class _CountingFilter(_Filter):
    def update(self, state, measure):
        self.calls = self.h * 0 + 1  # (changes its object: still refused)
        return _Gaussian(state.mean + 1, state.covariance)


_KF = _Filter(T([[1.0, 0.0]]))
_COUNTING_KF = _CountingFilter(T([[1.0, 0.0]]))
_TABLE = {"n": T(0.0)}


def masked_update_by_a_global_filter(measure):
    state = _Gaussian(torch.zeros(3, 2, 1), torch.ones(3, 2, 2))
    mask = torch.isnan(measure[..., 0]).any(dim=-1)
    if mask.any():
        valid = _KF.update(_Gaussian(state.mean[~mask], state.covariance[~mask]),
                           measure[~mask])
        state.mean[~mask] = valid.mean
        state.covariance[~mask] = valid.covariance
    else:
        state = _KF.update(state, measure)
    return state.mean, state.covariance


def update_by_a_global_counting_filter(x):
    state = _Gaussian(x, x * 2)
    if x.sum() > 0:
        state = _COUNTING_KF.update(state, x)
    return state.mean


def update_of_a_global_dict(x):
    if x.sum() > 0:
        _TABLE.update(n=x.sum())
    return x * 2


# one row missing (the masked rows updated), none (the whole state rebound), all
_MEASURES = [T([[[NAN]], [[0.5]], [[-1.0]]]), T([[[2.0]], [[0.5]], [[-1.0]]]),
             torch.full((3, 1, 1), NAN)]


@pytest.mark.parametrize("mode", ["staged", "compile"])
def test_a_global_filters_reading_update_in_a_staged_if_equals_python(mode):
    # was, under torch.compile: "the object the global '_KF' holds is changed in the true
    # branch (a field or item set)" at the `_KF.update` line (tester55); Python's means by row:
    # [0, 0 | 0.5, 0.5 | 0.5, 0.5], all 2.5, all 0
    want = [masked_update_by_a_global_filter(m.clone()) for m in _MEASURES]
    assert want[0][0].flatten().tolist() == [0.0, 0.0, 0.5, 0.5, 0.5, 0.5]
    if mode == "staged":
        assert_same_result(masked_update_by_a_global_filter, _MEASURES, compile=False)
        return
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(masked_update_by_a_global_filter),
                             fullgraph=True, backend="eager")
    for m, expected in zip(_MEASURES, want):
        assert_close(compiled(m.clone()), expected)


@pytest.mark.parametrize("fn, name", [(update_by_a_global_counting_filter, "_COUNTING_KF"),
                                      (update_of_a_global_dict, "_TABLE")])
def test_a_global_changed_by_its_method_in_a_staged_if_is_still_refused_under_compile(fn, name):
    # (the method's own code sets a field of its object; a dict's `update` is a change)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    with pytest.raises(StagingError, match=f"the object the global '{name}' holds is changed"):
        compiled(T([1.0, 2.0]))
