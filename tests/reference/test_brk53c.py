"""Reference tests (brk53c): keys53's dict keys set on some paths (NOTE [keys set on some
paths] in runtime/staging/flagged_keys.py) tried against plain Python in autoconv's replay, on
inputs that set the key on every trip, on some, and on none.
"""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError

T = torch.tensor

# (set on the first and last trips; never; on the first only; on the middle one, of 2 trips)
COUNTED = [(T([1.0, -2.0, 3.0]), T(3)), (T([-1.0, -2.0, -3.0]), T(3)),
           (T([1.0, -2.0, -3.0]), T(3)), (T([-1.0, 2.0, -3.0]), T(2))]


def _replayed(fn, inputs, extra=tuple):
    # (`extra()`: fresh further arguments for each call, a dict the caller passes)
    function = autoconv.autoconv(fn)
    for args in inputs:
        torch.testing.assert_close(function(*args, *extra()), fn(*args, *extra()))
    assert function.trace_count == 1


def read_on_a_later_trip(x, n):
    st = {}
    total = T(0.0)
    for t in range(n):
        if "last" in st:
            total = total + st["last"]
        if x[t] > 0:
            st["last"] = x[t]
    return total


def length_in_a_later_if(x, n):
    st = {"a": T(0.0)}
    for t in range(n):
        if x[t] > 0:
            st["last"] = x[t]
    if len(st) == 2:
        return x.sum()
    return -x.sum()


def given_with_the_key(x, n, st):
    for t in range(n):
        if x[t] > 0:
            st["last"] = x[t]
    return st.get("last", T(-1.0))


@pytest.mark.parametrize("fn", [read_on_a_later_trip, length_in_a_later_if])
def test_flags_read_later_in_the_loop_and_after_it(fn):
    # read_on_a_later_trip: 2, 0, 2, 0; length_in_a_later_if: 2, 6, -4, -2
    _replayed(fn, COUNTED)


def test_a_caller_dict_that_already_holds_the_key():
    # (the key is there on every path: 3, 9, 1, 2, and the caller's dict holds it)
    _replayed(given_with_the_key, COUNTED, lambda: ({"last": T(9.0)},))


def unguarded(x, n):
    st = {}
    for t in range(n):
        if x[t] > 0:
            st["last"] = x[t]
    return st["last"] * 2


def test_a_key_read_without_the_in_guard_raises_keyerror_where_python_does():
    function = autoconv.autoconv(unguarded)
    torch.testing.assert_close(function(*COUNTED[0]), T(6.0))
    with pytest.raises(KeyError, match="last"):
        function(*COUNTED[1])


def float_number_key(x, n):
    st = {}
    for t in range(n):
        if x[t] > 0:
            st["n"] = 0.5
    return st.get("n", 1.0) * T(1.0)


@pytest.mark.xfail(strict=True, reason="brk53c: a float number a flagged key holds is an "
                   "unmarked float64 0-d tensor after the loop, so `st.get('n', 1.0) * T(1.0)` "
                   "is float64 where Python's is float32 (the values are right)")
def test_a_float_number_a_flagged_key_holds_keeps_python_dtype():
    # Python: tensor(0.5) and tensor(1.), float32; replay: the same values in float64
    function = autoconv.autoconv(float_number_key)
    for args in COUNTED[:2]:
        got, want = function(*args), float_number_key(*args)
        assert got.dtype == want.dtype == torch.float32


@pytest.mark.xfail(strict=True, raises=StagingError, reason="brk53c: under torch.compile the "
                   "same function is refused with an error that fits no user fix: \"'st' is a "
                   "Python tuple in the true branch and a Python tuple in the false branch "
                   "(its item 0 is a torch.float32 tensor ... and a torch.float64 tensor) ... "
                   "with .to(dtype)\"")
def test_a_float_number_a_flagged_key_holds_under_compile():
    # Python: tensor(0.5), float32
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(float_number_key), fullgraph=True,
                             backend="eager")
    got = compiled(*COUNTED[0])
    assert got.dtype == torch.float32 and float(got) == 0.5
