"""Session 51's merged changes tried by a fresh engineer (break52): real51's `match`
patterns and the `is` tests around them (runtime/matching.py, runtime/staging/constants.py),
each checked against plain Python in replay (traced once, called again on inputs that take
the other path), torch.export and torch.compile(fullgraph=True). break52's findings on
threads are in tests/test_function.py, on pinned Functions in tests/test_function_last_call.py.
"""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result

T = torch.tensor


# --- s01: a bool of a traced tensor tested by `is` ---------------------------------------------
# `b = bool(x.sum() > 0)` then `if b is True:` gave x - 1 for Python's x + 1, and `match
# bool(...)` with `case True:` / `case False:` (literal patterns test by `is`) fell through
# both, in every mode, silently; `match t.item():` the same (NOTE [bool of a traced tensor
# tested by `is`] in runtime/staging/constants.py).

def _is_true_of_a_bool(x):
    b = bool(x.sum() > 0)
    if b is True:
        return x + 1
    return x - 1


def _match_on_a_bool(x):
    match bool(x.sum() > 0):
        case True:
            return x + 1
        case False:
            return x - 1
    return x


def _match_on_an_item(x):
    match (x.sum() > 0).item():
        case True:
            return x + 1
    return x - 1


def _is_false_of_an_item(x):
    flag = (x.max() > 1).item()
    y = x * 2
    if flag is False:
        y = y - 10
    return y


_SIGNS = [(T([1.0, 2.0]),), (T([-1.0, -2.0]),)]


@pytest.mark.parametrize("fn", [_is_true_of_a_bool, _match_on_a_bool, _match_on_an_item,
                                _is_false_of_an_item])
def test_a_bool_of_a_traced_tensor_tested_by_is(fn):
    assert_same_result(fn, _SIGNS, staged=False)


def _is_true_of_a_bool_a_branch_chose(x):
    if x.min() > 0:
        b = bool(x.sum() > 2)
    else:
        b = bool(x.sum() < -2)
    if b is True:
        return x + 1
    return x - 1


def _is_not_true_of_a_bool_a_loop_gave(x):
    b = bool(x.sum() > 100)
    n = x.sum()
    while n < 5:
        n = n + 1
        b = bool(n > 3)
    if b is not True:
        return x + 1
    return x - 1


# (known53: a staged statement's output was a new tensor without the mark of Python's bool,
# so `b is True` was False on every path: x - 1 for Python's x + 1, in every mode; NOTE
# [Python's bools across staged statements] in runtime/staging/python_bools.py)
@pytest.mark.parametrize("fn", [_is_true_of_a_bool_a_branch_chose,
                                _is_not_true_of_a_bool_a_loop_gave])
def test_a_bool_a_staged_statement_gave_tested_by_is(fn):
    assert_same_result(fn, _SIGNS + [(T([0.5, 0.5]),)])


def _is_true_of_a_bool_on_some_paths(x):
    if x.min() > 0:
        b = bool(x.sum() > 2)
    else:
        b = x.sum() < -2  # (a tensor in Python: never True)
    if b is True:
        return x + 1
    return x - 1


def test_is_true_of_a_bool_a_staged_statement_gave_on_some_paths_is_refused():
    # Python: [2, 3] and [-2, -3]; its answer is known only when the graph runs
    assert _is_true_of_a_bool_on_some_paths(T([1.0, 2.0])).tolist() == [2.0, 3.0]
    assert _is_true_of_a_bool_on_some_paths(T([-1.0, -2.0])).tolist() == [-2.0, -3.0]
    with pytest.raises(StagingError, match=r"test_break52\.py:\d+: .*`b is True`: `b` is "
                       r"Python's bool \(`bool\(...\)` of a tensor\) on some paths of the if "
                       r"statement at .*test_break52\.py:\d+ and a bool tensor on others"):
        autoconv.autoconv(_is_true_of_a_bool_on_some_paths)(T([1.0, 2.0]))
