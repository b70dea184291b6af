"""Reference tests: session 44's break of numpy44's fixes (break44c): numpy's scalars of graph
numbers after staged statements, under Python's attribute tests.

Each case is compared with plain Python, dtypes included; the inputs take other paths than the
traced one.
"""

import numpy as np
import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_exactly

T = torch.tensor
_COUNTED = [(T([1.0, -2.0, 3.0, 0.5]),), (T([-1.0, -2.0, -3.0, 0.5]),),
            (T([4.0, 2.0, 3.0, 5.0]),)]


# --- s01: hasattr / getattr of numpy's scalar of a graph number ------------------------------
# `a = np.exp(k)` of a carried count is numpy's float64, which has `.item()` (Python's float
# has not): `hasattr(a, "item")` answered for Python's float, False, so `b = a.item() if
# hasattr(a, "item") else a` kept numpy's float64, float64 under torch.tensor where Python's
# `a.item()` is a Python float, float32, silently.

def _item_if_numpy(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    a = np.exp(k)
    b = a.item() if hasattr(a, "item") else a
    return torch.tensor(b), torch.tensor(getattr(a, "ndim", -1))


def test_s01_hasattr_of_a_numpy_float_answers_for_numpy():
    assert hasattr(np.exp(1), "item") and not hasattr(1.0, "item")  # (Python's)
    assert_same_exactly(_item_if_numpy, _COUNTED)


def _item_if_numpy_on_some_paths(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    if k > 1:
        a = np.exp(k)
    else:
        a = 1.5
    return torch.tensor(1.0 if hasattr(a, "item") else 2.0)


def test_s01_hasattr_of_a_number_numpy_on_some_paths_is_refused():
    with pytest.raises(StagingError, match="numpy's float64 on some paths.*hasattr"):
        autoconv.autoconv(_item_if_numpy_on_some_paths)(*_COUNTED[0])


# --- s02: numpy's scalar in a dict / an object a staged `if` changes -------------------------
# np.float64 is a Python float, so the runtime compared the value before and after a branch as
# a constant: `a == b` of numpy's scalars is numpy's bool, which torch's statically_known_true
# refused with "AssertionError: Expected bool, got <class 'numpy.bool'>" (an unreadable error).
# Now the field reads as changed, refused at the user's line (a Python float there is carried).

class _Holder:
    def __init__(self, a):
        self.a = a


def _doubled_in_dict(x):
    d = {"a": np.float64(1.0)}
    for v in x:
        if v > 0:
            d["a"] = d["a"] * 2
    return torch.tensor(d["a"])


def _doubled_in_object(x):
    h = _Holder(np.float64(0.5))
    for v in x:
        if v > 0:
            h.a = h.a * 2
    return torch.tensor(h.a)


@pytest.mark.parametrize("fn, field", [(_doubled_in_dict, r"d\['a'\]"),
                                       (_doubled_in_object, "h.a")])
def test_s02_numpy_float_changed_in_a_container_is_refused_readably(fn, field):
    with pytest.raises(StagingError, match=f"`{field}` is changed in the true branch"):
        autoconv.autoconv(fn)(*_COUNTED[0])


def _python_float_doubled_in_dict(x):
    d = {"a": 1.0}
    for v in x:
        if v > 0:
            d["a"] = d["a"] * 2
    return torch.tensor(d["a"])


def test_s02_python_float_changed_in_a_dict_still_carried():
    run = autoconv.autoconv(_python_float_doubled_in_dict)
    for (x,) in _COUNTED:
        want, got = _python_float_doubled_in_dict(x), run(x)
        assert got.dtype == want.dtype and torch.equal(got, want)


# --- s03: numpy's float32 / float16 with a graph number ---------------------------------------
# `np.float32(0.5) * k` of a float a loop carries is numpy's float32 in Python (NEP 50: Python's
# float takes numpy's type), torch.tensor's float32; the graph gave numpy's float64, float64,
# silently, and `np.float16(0.5) + k` of a count float32 for Python's float16. Refused now, as
# numpy's narrower ints are (the graph's numbers are float64 / int64).

def _float32_times_carried_float(x):
    k = 0.0
    for v in x:
        if v > 0:
            k += 1.5
    return torch.tensor(np.float32(0.5) * k)


def _float16_plus_count(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    return torch.tensor(np.float16(0.5) + k)


@pytest.mark.parametrize("fn, dtype", [(_float32_times_carried_float, "float32"),
                                       (_float16_plus_count, "float16")])
def test_s03_narrow_numpy_float_with_a_graph_number_is_refused(fn, dtype):
    assert fn(_COUNTED[0][0]).dtype == getattr(torch, dtype)  # (Python's)
    with pytest.raises(StagingError, match=f"numpy's {dtype} .* is numpy's {dtype} in Python"):
        autoconv.autoconv(fn)(*_COUNTED[0])


def _float32_constant_with_python_numbers(x):
    # (no graph number: numpy's own arithmetic, as in Python)
    a = np.float32(0.5) * 3.0
    return x * a, torch.tensor(a)


def test_s03_narrow_numpy_float_with_python_numbers_is_unchanged():
    assert_same_exactly(_float32_constant_with_python_numbers, _COUNTED)


# --- s04: sum() of a list starting with numpy's scalar of a graph number ----------------------
# Python's `sum([a, 1.0])` of `a = np.exp(k)` is `0 + a + 1.0`, numpy's float64. Under
# torch.compile the first item's stand-in was taken as a view, which lost numpy's mark:
# float32 under torch.tensor, silently (`sum([1.0, a])` was right).

def _sum_starting_with_numpy(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    a = np.exp(k)
    return torch.tensor(sum([a, 1.0])), torch.tensor(sum([1.0, a]))


def test_s04_sum_of_a_list_starting_with_a_numpy_float_keeps_float64():
    assert_same_exactly(_sum_starting_with_numpy, _COUNTED)


# --- s05: numpy's scalars made before a staged `if` and chosen by it, under torch.compile -----
# `r = a if a > c else c` (or an `if` statement) of `a = np.exp(k)`, `c = np.sqrt(k)` is
# numpy's float64 on both paths: replay and torch.export keep it (float64 under torch.tensor),
# torch.compile gave a Python float's stand-in, float32, silently, until session 45. (Made
# inside the branches, break43b s02, it was right under torch.compile too.)

def _numpy_chosen_by_if(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    a = np.exp(k)
    c = np.sqrt(k)
    if a > c:
        r = a
    else:
        r = c
    return torch.tensor(r), torch.tensor(a if a > c else c)


def test_s05_numpy_floats_chosen_by_an_if_replayed_and_exported():
    assert_same_exactly(_numpy_chosen_by_if, _COUNTED, compile=False)


def test_s05_numpy_floats_chosen_by_an_if_compiled():
    # (dynamo gives a body its operands as new tensors: numpy's mark was lost, float32 for
    # Python's float64, silently; `_stand_in_as` in runtime/staging/torch.py)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_numpy_chosen_by_if), fullgraph=True,
                             backend="eager", dynamic=False)
    for (x,) in _COUNTED:
        for got, want in zip(compiled(x), _numpy_chosen_by_if(x)):
            assert got.dtype == want.dtype and torch.equal(got, want)
