"""Findings of tester 47 written without the libraries they came from (those are in
tests/real/test_tester47.py): each kind checked against plain Python in every mode."""

import functools
import inspect

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_result

T = torch.tensor


# --- s03: a helper cached by functools.lru_cache, called by converted code --------------------

@functools.lru_cache(None)
def _scale_for(n):
    return 2.0 if n > 2 else 3.0


@functools.cache
def _offset_for(n):
    return n + 1


def scaled_when_positive(x):
    # autoray's `_infer_class_backend_cached`, which each torchquad function calls, is one
    s = _scale_for(x.shape[0])
    if x.sum() > 0:
        x = x * s
    return x + _offset_for(3)


def test_s03_lru_cache_helper_is_called_as_it_is_under_torch_compile():
    # (tester47 s03) under torch.compile: dynamo's "assume_constant_result argument conversion
    # failed", naming autoconv's `_runs_as_it_is` and no line of the user's
    # (replay and export called it as it is already: only the compile is checked here)
    converted = autoconv.convert(scaled_when_positive)
    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True, backend="eager", dynamic=False)
    for x in (T([1.0, 2.0, 3.0]), T([-1.0, -2.0, 0.5])):
        assert torch.equal(compiled(x.clone()), scaled_when_positive(x.clone()))


class _Scales:
    @functools.lru_cache(None)
    def factor(self, n):
        return n * 0.5


_SCALES = _Scales()


def scaled_by_a_cached_method(x):
    if x.sum() > 0:
        x = x * _SCALES.factor(4)
    return x


def test_s03_lru_cache_method_in_a_staged_branch_replay_and_export():
    assert_same_result(scaled_by_a_cached_method, [T([1.0, 2.0]), T([-1.0, -2.0])],
                       compile=False)


def scaled_by_a_cached_method_of_a_local(x):
    scales = _Scales()
    if x.sum() > 0:
        x = x * scales.factor(3)
    return x


def test_s03_lru_cache_method_in_a_staged_branch_under_torch_compile():
    # (tester47 s03) dynamo's UncapturedHigherOrderOpError ("raised exception AttributeError()"),
    # no line of the user's: NOTE [cached methods under dynamo]
    for fn in (scaled_by_a_cached_method, scaled_by_a_cached_method_of_a_local):
        converted = autoconv.convert(fn)
        torch._dynamo.reset()
        compiled = torch.compile(converted, fullgraph=True, backend="eager", dynamic=False)
        for x in (T([1.0, 2.0]), T([-1.0, -2.0])):
            assert torch.equal(compiled(x.clone()), fn(x.clone()))


# --- s02, s04: refusals whose message names a branch the user did not write -------------------

def _line_of(fn, text):
    """(file, line) of the first line of `fn` holding `text`."""
    lines, first = inspect.getsourcelines(fn)
    return __file__, first + next(i for i, line in enumerate(lines) if text in line)


class _CheckedK(torch.nn.Module):
    # torch_kmeans' `_check_k`: raises whose message prints the tensor, then a number kept
    def check_k(self, k, n):
        if (k >= n).any():
            raise ValueError(f"k must be smaller than n={n}, got {k}.")
        if (k <= 1).any():
            raise ValueError("k=1 is ambiguous")
        self._k_max = int(k.max())
        return k.to(dtype=torch.long)

    def forward(self, x):
        k = torch.empty(x.shape[0], dtype=torch.long).fill_(3)
        k = self.check_k(k, x.shape[1])
        return x[:, :self._k_max] * 2


_CHECKED_K = _CheckedK()


def first_k_columns(x):
    return _CHECKED_K(x)


def test_s02_attribute_set_after_a_raising_if_is_not_said_to_be_set_in_its_branch():
    # (tester47 s02) "set in the true branch" of an `if` whose true branch only raises: the
    # refusal of the converter's guard of the code after it (NOTE [refusals of the code after
    # a jump])
    with pytest.raises(StagingError) as refused:
        torch.export.export(_Calling(), (torch.ones(2, 5),), strict=False)
    message = str(refused.value)
    assert "set in the true branch" not in message
    assert "if statement that may return or raise: 'self._k_max' of module 'self' is set " \
           "after it (where it does not return or raise)" in message, message
    assert (refused.value.filename, refused.value.lineno) == _line_of(
        _CheckedK.check_k, "if (k >= n).any():")


class _Calling(torch.nn.Module):
    def forward(self, x):
        return autoconv.convert(first_k_columns)(x)


def normalized_rows_or_none(w, c):
    # torchquad's `VEGASMap._smooth_map`: an input divided in place, then `return None` where a
    # row's weights are all zero
    w /= c
    s = w.sum(1)
    if (s == 0).any():
        return None
    d = w / s[:, None]
    return d


def test_s04_return_none_after_an_in_place_write_names_the_return():
    # (tester47 s04) "'d' has no value in the true branch ... Assign 'd' in every branch":
    # `d` is carried only for the other path's return (NOTE [a variable unbound where the
    # function returns None])
    f = autoconv.autoconv(normalized_rows_or_none)
    with pytest.raises(StagingError) as refused:
        f(torch.ones(2, 3), torch.ones(2, 3))
    message = str(refused.value)
    assert "'d' has no value" not in message
    assert "the function returns None in the true branch and a value on the other" in message
    assert (refused.value.filename, refused.value.lineno) == _line_of(
        normalized_rows_or_none, "if (s == 0).any():")


# --- s01: a clock read whose number the graph never uses -------------------------------------

def fit_with_timing(x, verbose=0):
    # fast_pytorch_kmeans' fit_predict: the time is printed only when verbose
    from time import time
    start = time()
    for _ in range(10):
        x = x * 0.5
        if x.abs().max() < 0.1:
            break
    if verbose >= 1:
        print(f"done in {time() - start:.3f}s")
    return x


@pytest.mark.xfail(strict=True, reason=(
    "tester47 s01: `start = time()` whose number is used only under `if verbose >= 1:` (a "
    "Python False) is refused at the clock read in every mode (NOTE [clocks and Python random "
    "draws under a tracer]), though the graph would never hold it; timing code around a loop "
    "is common in practitioners' code (fast_pytorch_kmeans' fit_predict)"))
def test_s01_an_unused_clock_read_is_not_refused():
    assert_same_result(fit_with_timing, [T([1.0, -3.0]), T([0.05, 0.01])], compile=False)


# --- s05: a user method named like a tensor method, on an attribute of `self` ----------------

class _Block(torch.nn.Module):
    def inverse(self, y):
        # normflows' iResBlock.inverse: a fixed-point loop on a tensor condition
        x = y
        while (x.abs() > 1).any():
            x = x / 2
        return x


class _Flow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = _Block()

    def inverse(self, z):
        return self.block.inverse(z)


_FLOW = _Flow()


def flow_inverse(z):
    return _FLOW.inverse(z)


def test_s05_user_method_named_like_a_tensor_method_on_a_submodule_is_converted():
    # (tester47 s05) left unconverted, its `while` on a tensor was refused: NOTE [a method
    # named like a tensor method, on an attribute of self]
    assert_same_result(flow_inverse, [T([4.0, 0.5]), T([0.2, -0.3])])


# --- s06: a size test after a traced index, replayed where the size is 0 ----------------------

def nans_imputed_at_the_ends(x):
    # torchcde's `_linear_interpolation_coeffs_with_missing_values_scalar`, cut after its
    # first use of the NaN indices
    path_no_nan = x.masked_select(~torch.isnan(x))
    if path_no_nan.size(0) == 0:
        return torch.zeros(x.size(0), dtype=x.dtype)
    if path_no_nan.size(0) == x.size(0):
        return x
    x = x.clone()
    if torch.isnan(x[0]):
        x[0] = path_no_nan[0]
    if torch.isnan(x[-1]):
        x[-1] = path_no_nan[-1]
    nan_indices = torch.arange(x.size(0)).masked_select(torch.isnan(x))
    if nan_indices.size(0) == 0:
        return x
    prev_nan_index = nan_indices[0]  # noqa: F841 (torchcde goes on from here)
    return torch.nan_to_num(x, -1.0)


_NAN = float("nan")
_S06_INPUTS = [T([0.0, _NAN, 4.0, 9.0, 16.0]), T([_NAN, 1.0, 4.0, 9.0, 16.0])]


def test_s06_size_test_after_imputing_replayed_where_no_index_is_left():
    # (tester47 s06) traced on a NaN inside the path and replayed on one whose only NaN is the
    # first item (imputed: `nan_indices` is empty and the function returns early), the replay
    # raised torch's "Runtime assertion failed for expression u1 >= 1" of `nan_indices[0]`:
    # NOTE [torch's size assertions in a branch's graph]. The export refuses the `if` at the
    # user's line (NOTE [facts a branch relies on])
    assert_same_result(nans_imputed_at_the_ends, _S06_INPUTS, export=False, compile=False)
    with pytest.raises(StagingError, match=r"a branch relies on the outcome") as refused:
        torch.export.export(Calling(autoconv.convert(nans_imputed_at_the_ends)),
                            (_S06_INPUTS[0],), strict=False)
    assert (refused.value.filename, refused.value.lineno) == _line_of(
        nans_imputed_at_the_ends, "if nan_indices.size(0) == 0:")


def first_positive_tested_twice(x):
    # (a second test of the size a branch relied on (`u0 >= 1` for `idx[0, 0]`), inside a
    # staged branch: staged, not folded to the first branch's answer, though the branch's
    # assertion of it is gone: NOTE [torch's size assertions in a branch's graph])
    y = x * 2
    if y.sum() > -1000:
        idx = (y > 0).nonzero()
        v = y.sum() * 0
        if idx.numel() > 0:
            v = y[idx[0, 0]]
        if idx.numel() > 0:
            v = v + 100
        y = v
    return y


def test_s06_a_size_a_branch_relied_on_tested_again_is_not_folded():
    assert_same_result(first_positive_tested_twice, [T([1.0, -2.0]), T([-1.0, -2.0])],
                       export=False, compile=False)


@pytest.mark.slow  # (143 s at load 16 on the 2-core machine)
@pytest.mark.xfail(strict=True, raises=RuntimeError, reason=(
    "tester47 s06 under torch.compile: dynamo traces the branches itself and puts torch's "
    "assertion of `nan_indices[0]` (`u1 >= 1`) where the size is made, so the input whose path "
    "returns early raises torch's bare \"Runtime assertion failed for expression u5 >= 1\", no "
    "line of the user's (the export's refusal, NOTE [facts a branch relies on], cannot read "
    "dynamo's sizes)"))
def test_s06_size_test_after_imputing_under_torch_compile():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(nans_imputed_at_the_ends), fullgraph=True,
                             backend="eager")
    for x in _S06_INPUTS:
        torch.testing.assert_close(compiled(x.clone()), nans_imputed_at_the_ends(x.clone()),
                                   equal_nan=True)


# --- the fix of an attribute updated in place beside a gradient, under torch.compile ---------

class _Histogram:
    def __init__(self):
        self.hist = torch.zeros(2)

    def add(self, v):
        self.hist[0] += v


_HISTOGRAM = _Histogram()
_WEIGHT = torch.tensor(2.0, requires_grad=True)


def attribute_counted_beside_a_weight(x):
    # normflows' InducedNormLinear.compute_weight: `self.scale.copy_(sigma)` in a staged loop
    s = torch.zeros(())
    for v in x:
        _HISTOGRAM.add(v)
        s = s + _WEIGHT * v
    return s


def test_an_attribute_updated_beside_a_gradient_is_refused_with_a_python_fix():
    # (tester47) the fix read `def add(self.hist, ...)`, which is no Python
    from autoconv_runtime import StagingError

    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(attribute_counted_beside_a_weight),
                             fullgraph=True, backend="eager")
    with pytest.raises(StagingError) as refused:
        compiled(T([1.0, 2.0]))
    assert "self.hist" in str(refused.value), str(refused.value)
    assert "(self.hist," not in str(refused.value)
    assert "`def add(hist, ...)`, called with `self.hist`" in str(refused.value)
