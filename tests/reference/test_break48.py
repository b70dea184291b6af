"""Reference tests: session 48's break of session 47's changes (break48): wrong47's probes with
their side effects undone (runtime/staging/attempt_effects.py), peel47's fields of given objects
(NOTE [a caller's list in a field] in runtime/staging/peeling.py) and dyn47's pure sides of a
test (NOTE [pure sides of a test fold left]), against plain Python.

A function is traced once and replayed on inputs that take the other paths.
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result

T = torch.tensor


# --- a method of a global object changing it in a staged statement --------------------------

class _Counter:
    def __init__(self):
        self.calls = []

    def hit(self, v):
        self.calls.append(1)
        return v


COUNTER = _Counter()


def _test_calls_a_global_objects_method(x):
    while COUNTER.hit(x.sum()) < 10:
        x = x * 2
    return x


def _test_calls_a_given_objects_method(x, counter):
    while counter.hit(x.sum()) < 10:
        x = x * 2
    return x


def _body_calls_a_global_objects_method(x):
    while x.sum() < 10:
        COUNTER.hit(x)
        x = x * 2
    return x


def test_s01_a_given_objects_method_changing_it_in_a_loop_test_is_refused():
    counter = _Counter()
    with pytest.raises(StagingError, match="an object the loop test reads is changed"):
        autoconv.autoconv(_test_calls_a_given_objects_method)(T([1.0]), counter)


@pytest.mark.parametrize("fn", [_test_calls_a_global_objects_method,
                                _body_calls_a_global_objects_method])
def test_s01_a_global_objects_method_changing_it_in_a_loop_matches_python_or_is_refused(fn):
    global COUNTER
    function = autoconv.autoconv(fn)
    for x in (T([1.0]), T([3.0])):
        COUNTER = _Counter()
        try:
            got = function(x.clone())
        except StagingError:
            return
        mine = len(COUNTER.calls)
        COUNTER = _Counter()
        torch.testing.assert_close(got, fn(x.clone()))
        assert mine == len(COUNTER.calls)


# --- pure sides of an and/or test (dyn47's fold) --------------------------------------------

def and_of_a_python_flag_and_a_tensor_or_a_tensor(x, k):
    a = k > 2
    b = x.sum() > 0
    if a and b or x.max() > 3:
        x = x + 1
    return x


def while_and_a_count_or_a_tensor(x, k):
    n = 0
    while x.sum() < 20 and (n < k or x.max() < 5):
        x = x * 2
        n += 1
    return x, n


def break_on_and_in_a_for_else(x, k):
    for i in range(3):
        if x.sum() > i and k > i:
            break
        x = x + 1
    else:
        x = x * 10
    return x


def not_and_or_of_a_local_number(x, k):
    lim = k * 2
    r = x
    if not (x.sum() > lim) and lim > 3 or not lim:
        r = x - 1
    return r


_INPUTS = [T([1.0, 2.0]), T([-4.0, 0.5]), T([10.0, 1.0]), T([0.5, 0.25])]


@pytest.mark.parametrize("k", [0, 3])
@pytest.mark.parametrize("fn", [and_of_a_python_flag_and_a_tensor_or_a_tensor,
                                while_and_a_count_or_a_tensor, break_on_and_in_a_for_else,
                                not_and_or_of_a_local_number])
def test_and_or_tests_with_python_sides_match_python(fn, k):
    assert_same_result(fn, [(x, k) for x in _INPUTS], compile=False, staged=False)
