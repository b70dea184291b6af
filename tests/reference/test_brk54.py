"""Reference tests: brk54 (issue 10), breaking what Session 53 merged: Python's bools across
staged statements (known53) tested by type (`isinstance`, `type`) and kept by a branch."""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError

from tests.support import assert_same_result

T = torch.tensor

# (the `if` true with ok True, true with ok False, false with ok True, false with ok False)
_INPUTS = [(T([1.0, -2.0, 3.0]),), (T([-1.0, -2.0, -3.0]),), (T([5.0, 2.0, -3.0]),),
           (T([-5.0, 2.0, -3.0]),)]


def _type_tests_of_a_bool_a_branch_chose(x):
    if x.sum() > 0:
        ok = bool(x.max() > 4)
    else:
        ok = bool(x.min() < -2)
    return x + 100 * isinstance(ok, bool) + 10 * (type(ok) is bool) + ok


def _type_test_of_a_bool(x):
    ok = bool(x.max() > 4)
    return x + 100 * isinstance(ok, (bool, float)) + 10 * (type(ok) is bool)


def _a_bool_an_if_keeps_on_one_path(x):
    ok = bool(x.max() > 4)
    if x.sum() > 0:
        ok = bool(x.max() > 2)
    return x + 100 * (ok is True) + 10 * isinstance(ok, bool)


def _a_bool_kept_by_an_if_in_a_loop(x):
    ok = bool(x.max() > 4)
    for i in range(x.shape[0]):
        if x[i] > 2:
            ok = bool(x[i] > 4)
    return x + 100 * (ok is True) + 10 * (ok is False)


# (was silently wrong in every mode: `isinstance(ok, bool)` and `type(ok) is bool` of
# `bool()` of a traced tensor were False, [1., -2., 3.] for Python's [111., 108., 113.] on
# the first input; NOTE [type tests of Python's bools] in runtime/builtins.py)
@pytest.mark.parametrize("fn, staged", [(_type_tests_of_a_bool_a_branch_chose, True),
                                        (_type_test_of_a_bool, False)])
def test_type_tests_of_pythons_bool(fn, staged):
    assert fn(*_INPUTS[0]).tolist() == [111.0, 108.0, 113.0]
    assert_same_result(fn, _INPUTS, staged=staged)


# (were refused as "Python's bool on some paths ... and a bool tensor on others": the branch
# that kept `ok` left an unmarked tensor; NOTE [Python's bools kept by a branch])
@pytest.mark.parametrize("fn", [_a_bool_an_if_keeps_on_one_path,
                                _a_bool_kept_by_an_if_in_a_loop])
def test_a_bool_a_branch_keeps_is_still_pythons_bool(fn):
    assert_same_result(fn, _INPUTS)


def _type_test_of_a_bool_on_some_paths(x):
    if x.sum() > 0:
        ok = bool(x.max() > 4)
    else:
        ok = x.min() < -2  # (a tensor in Python)
    return x + 100 * isinstance(ok, bool)


def test_a_type_test_of_a_bool_on_some_paths_is_refused():
    # Python: [1., -2., 3.] + 100 where the `if` is true, the tensor's path + 0
    assert _type_test_of_a_bool_on_some_paths(*_INPUTS[0]).tolist() == [101.0, 98.0, 103.0]
    assert _type_test_of_a_bool_on_some_paths(*_INPUTS[1]).tolist() == [-1.0, -2.0, -3.0]
    with pytest.raises(StagingError, match=r"test_brk54\.py:\d+: .*`ok` is Python's bool "
                       r"\(`bool\(...\)` of a tensor\) on some paths of the if statement"):
        autoconv.autoconv(_type_test_of_a_bool_on_some_paths)(*_INPUTS[0])


class _Scaled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * ctx.k * g, None


def _gradient_of_a_functions_apply_in_a_branch(x):
    y = x.clone().requires_grad_(True)
    if x.sum() > 0:
        out = _Scaled.apply(y, 2.0)
    else:
        out = -y
    (g,) = torch.autograd.grad(out.sum(), y)
    return out.detach(), g


# (was 0 on the path that calls `apply` in autoconv's replay, [0, 0, 0] for Python's
# [4, -8, 12]; NOTE [gradients through a Function taken while tracing])
def test_a_gradient_through_a_functions_apply_taken_inside_the_function():
    fn = _gradient_of_a_functions_apply_in_a_branch
    function = autoconv.autoconv(fn)
    for args in _INPUTS[:2]:
        want = fn(*args)
        assert want[1].tolist() in ([4.0, -8.0, 12.0], [-1.0, -1.0, -1.0])
        got = function(*args)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)


def _counts_by_a_bool(x):
    counts = {True: 0, False: 0}
    for i in range(x.shape[0]):
        counts[bool(x[i] > 0)] += 1
    return x * counts[True] - counts[False]


def test_a_dict_looked_up_by_pythons_bool_of_a_traced_tensor_is_refused():
    # (was torch's KeyError naming a FakeTensor, with no line; Python: [1., -5., 5.])
    assert _counts_by_a_bool(*_INPUTS[0]).tolist() == [1.0, -5.0, 5.0]
    with pytest.raises(StagingError, match=r"test_brk54\.py:\d+: .*a dict is looked up by a "
                       r"traced value"):
        autoconv.autoconv(_counts_by_a_bool)(*_INPUTS[0])
