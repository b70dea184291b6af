"""Reference tests: numpy's scalar types and the methods of numbers only the graph knows (a
staged loop's count, `np.exp` of it), which torch's internals refused unreadably (break44c,
issue 10: NOTE [numpy's scalar types of graph numbers] in runtime/arithmetic.py, NOTE [methods
of numbers the graph computes] in runtime/builtins.py).

Each case is compared with plain Python, dtypes included, in replay, export and compile; the
inputs take other paths than the traced one.
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


def _count(x):
    k = 0
    for v in x:
        if v > 0:
            k += 1
    return k


# `np.float64(k)` asked the stand-in for its value (torch's "tensor subclasses", read as numpy
# given a traced tensor) and, under torch.compile, dynamo traced it as numpy on a tensor and
# refused `while a < 10:` as "Data-dependent branching" inside the runtime.
def _while_over_numpy_float(x):
    k = _count(x)
    a = np.float64(k)
    while a < 10:
        a = a * 2
    return torch.tensor(a), torch.tensor(np.int64(x.sum().item())), torch.tensor(np.bool_(k))


def test_numpy_scalar_types_of_graph_numbers():
    assert_same_exactly(_while_over_numpy_float, _COUNTED)


def _narrow_numpy_float(x):
    return torch.tensor(np.float32(_count(x)))


def test_numpy_narrow_scalar_type_of_a_graph_number_is_refused():
    with pytest.raises(StagingError, match=r"test_numpy_methods.py:\d+: .*numpy.float32\(\) of a "
                       r"number only the graph knows.*np.float64\(v\)"):
        autoconv.autoconv(_narrow_numpy_float)(*_COUNTED[0])


# `a.conjugate()` / `a.astype(np.float64)` of `a = np.exp(k)`: looked up on the number's 0-d
# stand-in ("'FakeTensor' object has no attribute 'conjugate'"; dynamo's "Unhandled tensor
# method" under torch.compile).
def _methods_of_numbers(x):
    k = _count(x)
    a = np.exp(k)
    f = k * 0.5
    return (torch.tensor(a.conjugate()), torch.tensor(a.astype(np.float64)),
            torch.tensor(f.conjugate()))


def test_conjugate_and_same_type_astype_of_graph_numbers():
    assert_same_exactly(_methods_of_numbers, _COUNTED)


def _astype_narrow(x):
    return torch.tensor(np.exp(_count(x)).astype(np.float32))


def _is_integer(x):
    k = _count(x)
    h = k * 0.5
    return torch.tensor(1.0 if h.is_integer() else 2.0)


def _no_such_method(x):
    try:
        return np.exp(_count(x)).no_such_method()
    except AttributeError as error:
        assert "'numpy.float64' object has no attribute 'no_such_method'" in str(error)
        return x


def test_other_methods_of_graph_numbers_are_refused_at_the_line():
    with pytest.raises(StagingError, match=r"test_numpy_methods.py:\d+: .*`.astype\(\)` of "
                       r"numpy's float64 computed from traced tensors.*\.to\(dtype\)"):
        autoconv.autoconv(_astype_narrow)(*_COUNTED[0])
    with pytest.raises(StagingError, match=r"`.is_integer\(\)` of a float computed"):
        autoconv.autoconv(_is_integer)(*_COUNTED[0])
    assert torch.equal(autoconv.autoconv(_no_such_method)(*_COUNTED[0]), _COUNTED[0][0])
