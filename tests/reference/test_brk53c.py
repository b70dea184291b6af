"""Reference tests (brk53c): keys53's dict keys set on some paths (NOTE [keys set on some
paths] in runtime/staging/flagged_keys.py) tried against plain Python in autoconv's replay, on
inputs that set the key on every trip, on some, and on none.
"""

import io

import pytest
import torch

import autoconv

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


def float_number_read_under_the_guard(x, n):
    st = {}
    for t in range(n):
        if x[t] > 0:
            st["n"] = 0.5
    r = T(3.0)
    if "n" in st:
        r = st["n"] + T(1.0)
    return r


def float_number_plus_one(x, n):
    st = {}
    for t in range(n):
        if x[t] > 0:
            st["n"] = 0.5
    return (st.get("n", 0) + 1) * T(1.0)


def int_default_of_a_float_number(x, n):
    st = {}
    for t in range(n):
        if x[t] > 0:
            st["n"] = 0.5
    return st.get("n", 1) * T(2)


def float_number_kept(got, want):
    # (assert_close checks the dtype: float32 tensors, as Python's float times one)
    torch.testing.assert_close(got, want)
    assert got.dtype == torch.float32


@pytest.mark.parametrize("fn", [float_number_key, float_number_read_under_the_guard,
                                float_number_plus_one])
def test_a_float_number_a_flagged_key_holds_keeps_python_dtype(fn):
    # float32, as Python's (brk53c: float64 before): float_number_key 0.5, 1, 0.5, 0.5;
    # float_number_read_under_the_guard 1.5, 3, 1.5, 1.5; float_number_plus_one 1.5, 1, 1.5,
    # 1.5
    function = autoconv.autoconv(fn)
    for args in COUNTED:
        float_number_kept(function(*args), fn(*args))
    assert function.trace_count == 1


def test_an_int_default_of_a_float_number_is_checked_where_python_gives_the_int():
    # Python: the float 0.5 times T(2), tensor(1.) float32, where the key is set; the int 1
    # times T(2), tensor(2) int64, where it is not: no one dtype of the graph gives both
    # (brk53c: float64 tensor(2.) before), so that path raises at the user's line
    function = autoconv.autoconv(int_default_of_a_float_number)
    for args in (COUNTED[0], COUNTED[2], COUNTED[3]):
        float_number_kept(function(*args), int_default_of_a_float_number(*args))
    assert int_default_of_a_float_number(*COUNTED[1]).dtype == torch.int64
    with pytest.raises(RuntimeError, match="an int on some paths and a float on others"):
        function(*COUNTED[1])


def test_a_float_number_a_flagged_key_holds_saved_export():
    buffer = io.BytesIO()
    torch.export.save(autoconv.autoconv(float_number_key).export(*COUNTED[0]), buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer).module()
    for args in COUNTED:  # 0.5, 1, 0.5, 0.5, float32
        float_number_kept(loaded(*args), float_number_key(*args))


def test_a_float_number_a_flagged_key_holds_under_compile():
    # Python: tensor(0.5), tensor(1.), float32 (brk53c: refused with a dtype mismatch before)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(float_number_key), fullgraph=True,
                             backend="eager")
    for args in COUNTED[:2]:
        float_number_kept(compiled(*args), float_number_key(*args))
