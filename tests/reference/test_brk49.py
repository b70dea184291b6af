"""brk49: session 49's merged changes tried by someone other than their authors (issue 10).

Scalar loops (autoconv/scalar_loops.py) are checked against eager torch exactly, with the
python and fx backends, traced once and replayed (`tests/test_scalar_loops.py::_check`)."""

import pytest
import torch

from tests.test_scalar_loops import _check


def int64_scaled_by_a_float(n, k):
    x = torch.tensor(0.0)
    while k > 0:
        x = x + n * 0.5
        k = k - 1
    return x


def int64_compared_with_a_float32(n, x, k):
    count = torch.tensor(0)
    while k > 0:
        count = count + (n > x).long()
        k = k - 1
    return count


# 2 ** 60 + 2 ** 36 + 1 is just above a float32 tie: the double it rounds to is the tie
_ABOVE_A_TIE = 2 ** 60 + 2 ** 36 + 1


def test_s01_an_int64_beyond_2_to_53_becomes_the_float32_torch_casts():
    # s01: int64 -> float32 went through a double (`_f32(float(n))`) and was rounded twice:
    # 2 ** 60 where torch gives 2 ** 60 + 2 ** 37 (NOTE [int64 to float32 rounded once])
    _check(int64_scaled_by_a_float, [(torch.tensor(v), torch.tensor(2)) for v in
                                     (_ABOVE_A_TIE, -_ABOVE_A_TIE, 2 ** 63 - 1, -2 ** 63, 3)])
    _check(int64_compared_with_a_float32,
           [(torch.tensor(v), torch.tensor(float(2 ** 60)), torch.tensor(1))
            for v in (_ABOVE_A_TIE, 2 ** 60 + 2 ** 36 - 1, 2 ** 60 + 2 ** 36, 5)])


def divided_by_negative_literals(y, k):
    while k > 0:
        t = y * 3
        y = (t + 1) // -3 + t % -7 - (t > 0).to(y.dtype) + y // -128
        k = k - 1
    return y


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_floor_division_and_remainder_by_negative_literals_at_the_ends_hold(dtype):
    # held: a product whose wrap is left to `+` and then read by `//`, `%` and `>`
    info = torch.iinfo(dtype)
    _check(divided_by_negative_literals, [(torch.tensor(v, dtype=dtype), torch.tensor(k))
                                          for v in (info.min, info.max, -1, 0) for k in (1, 3)])


def float_divided_by_literals(y, k):
    while k > 0:
        y = y / 0.1 + y / 1e-45 - y / -3.0
        k = k - 1
    return y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_division_by_small_and_negative_literals_holds(dtype):
    info = torch.finfo(dtype)
    _check(float_divided_by_literals, [(torch.tensor(v, dtype=dtype), torch.tensor(k))
                                       for v in (info.max, info.tiny, -0.0, 3.3, 1e-40)
                                       for k in (1, 2)])
