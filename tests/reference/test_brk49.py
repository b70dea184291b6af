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
