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


@pytest.mark.xfail(strict=True, reason=(
    "a bool() a staged statement gave is a new tensor without the mark of Python's bool: "
    "`b is True` is False on every path (x - 1 for Python's x + 1), README Known shapes"))
def test_a_bool_a_staged_statement_gave_tested_by_is():
    assert_same_result(_is_true_of_a_bool_a_branch_chose, _SIGNS, compile=False, export=False,
                       staged=False)
