"""Staged loops over 0-d integer / float64 / float32 / bool tensors run by the python backend as Python
arithmetic (autoconv/scalar_loops.py): bit for bit what eager torch and torch's own execution
of the graph (the fx backend) compute, and the tensor loop wherever that cannot be promised."""

import math

import pytest
import torch

import autoconv
from tests.support import assert_same_result


def _identical(got, want):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            _identical(g, w)
        return
    assert isinstance(got, torch.Tensor) and got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got, want) or (got.isnan() & want.isnan()).all(), (got, want)
    if want.is_floating_point() and not want.isnan().any():  # signed zeros too
        assert torch.equal(torch.copysign(torch.ones(()), got),
                           torch.copysign(torch.ones(()), want))


def _check(fn, inputs, *, scalar=True):
    """fn converted, traced on inputs[0], replayed on every input: identical to eager and to the
    fx backend; with `scalar`, the python backend ran the loop on Python numbers."""
    function = autoconv.autoconv(fn)
    fx = autoconv.autoconv(fn, backend="fx")
    for args in inputs:
        want = fn(*args)
        _identical(function(*args), want)
        _identical(fx(*args), want)
    assert function.trace_count == 1
    source = function.concrete_functions[0]._runner.__autoconv_source__
    if scalar is not None:  # None: either form, so long as the results are right
        assert (".item()" in source) == scalar, source


def collatz(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def test_collatz_runs_on_python_ints():
    _check(collatz, [(torch.tensor(n),) for n in (27, 1, 0, -5, 97, 2 ** 40 + 1)])


def tripling(x):
    """Runs until int64 arithmetic wraps around to a negative number."""
    steps = torch.tensor(0)
    while x > 0:
        x = x * 3 + 1
        steps += 1
    return x * 1000 + steps


def test_int64_arithmetic_wraps_around_as_torch_does():
    _check(tripling, [(torch.tensor(n),) for n in (1, 7, 2 ** 62, -1, 2 ** 63 - 1)])


def signs(a, b):
    i = torch.tensor(0)
    total = torch.tensor(0)
    while i < 4:
        total = total + (a - i) // b + (a + i) % b - (-a) // b
        i += 1
    return total


@pytest.mark.parametrize("a, b", [(7, 3), (-7, 3), (7, -3), (-7, -3), (0, 5)])
def test_floor_division_and_remainder_round_as_torch_does(a, b):
    _check(signs, [(torch.tensor(a), torch.tensor(b))])


def newton_sqrt(x):
    y = x
    while abs(y * y - x) > 1e-10:
        y = (y + x / y) / 2
    return y


def test_newton_float64_is_bit_identical():
    _check(newton_sqrt, [(torch.tensor(v, dtype=torch.float64),)
                         for v in (2.0, 1e-8, 12345.678, 0.5, 0.0)])


def harmonic(x, limit):
    """1 / x with x = 0.0 or -0.0 is inf or -inf in torch; Python would raise."""
    total = torch.zeros((), dtype=torch.float64)
    n = torch.tensor(0)
    while n < limit:
        total = total + 1 / x - x / (x + n)
        n += 1
    return total


@pytest.mark.parametrize("x", [0.0, -0.0, 2.0, float("inf"), float("nan")])
def test_float_division_by_zero_gives_inf_and_nan_as_torch_does(x):
    _check(harmonic, [(torch.tensor(x, dtype=torch.float64), torch.tensor(3))])


def bisection(lo, hi):
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        if (mid * mid * mid - 2 * mid - 5) * (lo * lo * lo - 2 * lo - 5) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def test_branches_inside_the_loop_run_inline():
    f64 = torch.float64
    _check(bisection, [(torch.tensor(2.0, dtype=f64), torch.tensor(3.0, dtype=f64)),
                       (torch.tensor(-4.0, dtype=f64), torch.tensor(9.0, dtype=f64)),
                       (torch.tensor(3.0, dtype=f64), torch.tensor(2.0, dtype=f64))])


def mixed(i, x):
    """int64 against float64: torch compares in float64; so must Python."""
    count = torch.tensor(0)
    while i < x and count < 5:
        i = i + 1
        count += 1
    return count * 10 + (i == x).long()


def test_mixed_int_and_float_compare_in_float64():
    big = 2 ** 53 + 1  # not a float64: compared as the float 2 ** 53
    _check(mixed, [(torch.tensor(big), torch.tensor(float(2 ** 53 + 3), dtype=torch.float64)),
                   (torch.tensor(0), torch.tensor(2.5, dtype=torch.float64))])


def nested(n):
    total = torch.tensor(0)
    i = torch.tensor(0)
    while i < n:
        j = torch.tensor(0)
        while j < i:
            total = total + j
            j += 1
        i += 1
    return total


def test_nested_loops_run_inline():
    _check(nested, [(torch.tensor(n),) for n in (0, 1, 6)])


def float32_loop(x):
    while x < 100:
        x = x * 1.1
    return x


def test_float32_runs_on_rounded_python_floats():
    _check(float32_loop, [(torch.tensor(v),) for v in (1.0, 200.0, 0.3, 99.99)])


def float32_newton(a):
    x = a / 2 + 0.1
    while (x * x - a).abs() > 1e-4:
        x = (x + a / x) / 2
    return x


def test_float32_newton_is_bit_identical():
    # 0.1 and 1e-4 are rounded to float32 before they meet a float32 tensor, as torch does
    _check(float32_newton, [(torch.tensor(v),) for v in (2.0, 10.0, 1234.5, 0.37)])


def float32_meets_float64(x, y):
    steps = torch.tensor(0)
    while x < y:
        x = x * 1.7 + 0.1  # float32
        y = y + 0.01  # float64
        steps += 1
    return x, y, steps, x == 0.1


@pytest.mark.parametrize("x, y", [(0.1, 3.0), (1.0, 1e6), (5.0, 1.0)])
def test_float32_and_float64_promote_as_torch_does(x, y):
    _check(float32_meets_float64,
           [(torch.tensor(x), torch.tensor(y, dtype=torch.float64))])


def float32_overflow(x):
    steps = torch.tensor(0)
    while x < 1e39 and steps < 200:  # 1e39 is inf in float32
        x = x * 1e10 / 3
        steps += 1
    return x, 1 / (x - x), steps


def test_float32_overflows_to_inf_as_torch_does():
    _check(float32_overflow, [(torch.tensor(3.0),), (torch.tensor(-3.0),)])


def count_up(i, n):
    while i < n:
        i += 1
    return i


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
def test_narrow_integers_run_on_python_ints(dtype):
    _check(count_up, [(torch.tensor(0, dtype=dtype), torch.tensor(n, dtype=dtype))
                      for n in (5, 0, 100)])


def doubling_wraps(x, n):
    while n > 0:
        x = x * 2 + 1
        n = n - 1
    return x, -x, abs(x)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
def test_narrow_integers_wrap_around_as_torch_does(dtype):
    _check(doubling_wraps, [(torch.tensor(3, dtype=dtype), torch.tensor(n)) for n in (40, 3, 0)])


def narrowing_conversions(x, n):
    f = torch.tensor(0.1, dtype=torch.float64)
    while n > 0:
        x = (x * 100003).int().long()  # int64 -> int32 wraps
        f = (f * 3.3).float().double()  # float64 -> float32 rounds
        n = n - 1
    return x, f


def test_conversions_to_narrower_dtypes_wrap_and_round_as_torch_does():
    _check(narrowing_conversions, [(torch.tensor(7), torch.tensor(n)) for n in (6, 0, 2)])


def vector_loop(x, n):
    while n > 0:
        x = x * 2
        n = n - 1
    return x


def test_a_vector_in_the_state_keeps_the_tensor_loop():
    _check(vector_loop, [(torch.ones(3), torch.tensor(2))], scalar=False)


def test_gradient_flows_through_the_tensor_loop_when_an_input_requires_grad():
    function = autoconv.autoconv(newton_sqrt)
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = function(x)
    y.backward()
    x_eager = x.detach().clone().requires_grad_()
    newton_sqrt(x_eager).backward()
    assert y.requires_grad
    torch.testing.assert_close(x.grad, x_eager.grad)
    assert math.isclose(x.grad.item(), 0.5 / math.sqrt(2), rel_tol=1e-6)
    with torch.no_grad():  # no grad to record: the Python loop
        _identical(function(x), newton_sqrt(x.detach()))


def test_all_modes_agree():
    assert_same_result(collatz, [(torch.tensor(27),), (torch.tensor(1),), (torch.tensor(6),)])


LIMIT = torch.tensor(5)


def reads_a_constant(n):
    """A 0-d tensor global becomes a constant of the graph: the loop keeps its tensor form."""
    i = torch.tensor(0)
    while i < n:
        i = i + LIMIT
    return i


def test_a_tensor_constant_in_the_body_keeps_the_tensor_loop():
    _check(reads_a_constant, [(torch.tensor(12),), (torch.tensor(0),)], scalar=None)


def count_to(n):
    i = torch.zeros((), dtype=n.dtype)
    while i < n:
        i += 1
    return i


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_a_one_element_bound_runs_on_python_numbers(dtype):
    # `n` of shape (1,): the test is (1,)-shaped, the counter 0-d; both one number each.
    _check(count_to, [(torch.full((1,), n, dtype=dtype),) for n in (3, 0, -2, 7)])


def one_element_state(x, n):
    """A (1, 1) float32 value and a (1,) counter in the state: their shapes come back."""
    while n > 0:
        x = x * 1.5 - 0.25
        n = n - 1
    return x, n


def test_one_element_state_keeps_its_shape():
    _check(one_element_state, [(torch.full((1, 1), 0.3), torch.tensor([n])) for n in (4, 0)])


def mixed_width_compare(i, n):
    """0-d int64 against (1,) int32: torch compares in int32 (a tensor with dimensions
    outranks a 0-d one), so the counter would be narrowed: the tensor loop keeps that."""
    while i < n:
        i = i + 1
    return i


def test_a_0d_operand_narrowed_by_a_one_element_tensor_keeps_the_tensor_loop():
    _check(mixed_width_compare, [(torch.tensor(0), torch.tensor([3], dtype=torch.int32))],
           scalar=False)


def test_one_element_loops_agree_in_all_modes():
    assert_same_result(count_to, [(torch.full((1,), 3),), (torch.full((1,), 0),)])


# A list grown by a loop of numbers (NOTE [lists of numbers in scalar loops]): a Python list
# in the loop, a tensor after it, holding what the tensor loop's row writes hold.


def _lists_check(fn, inputs, *, scalar=True):
    """`_check` of a function returning a list (stacked here) and numbers."""
    def stacked(*args):
        out, *rest = fn(*args)
        return (torch.stack(out), *rest)
    stacked.__name__ = fn.__name__
    _check(stacked, inputs, scalar=scalar)
    source = autoconv.autoconv(stacked)
    source(*inputs[0])
    text = source.concrete_functions[0]._runner.__autoconv_source__
    assert ("_put_row(" in text) == scalar, text


def float32_halvings(x):
    out = []
    while x > 1:
        out.append(x)
        x = x / 3
    return out, x


def test_a_float32_list_grown_without_bound_runs_on_python_floats():
    _lists_check(float32_halvings, [(torch.tensor(v),) for v in (3000.0, 1.5, 1e30, 7.123456789)])


def test_a_list_of_hundreds_of_rows_grows_as_the_loop_runs():
    # 1e300 in float64: 629 trips
    _lists_check(float32_halvings,
                 [(torch.tensor(v, dtype=torch.float64),) for v in (1e300, 9.0, 1.5)])


def collatz_path(n):
    path = []
    while n > 1:
        path.append(n)
        n = n // 2 if n % 2 == 0 else 3 * n + 1
    return path, n


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8])
def test_an_integer_list_grown_in_a_loop_with_branches(dtype):
    # int8 wraps around (3 * 27 + 1 = 82, 41, 124, 62, 31, 94, 47, 142 -> -114, ...): the
    # numbers written are the wrapped ones, as the tensor loop writes
    _lists_check(collatz_path, [(torch.tensor(n, dtype=dtype),) for n in (27, 6, 2, 5)])


def bounded_flags(x):
    """A bounded loop (its buffers sized once, for 12 trips) that appends a bool and a float
    made of the count: a row of each of two lists a trip."""
    flags, counts = [], []
    steps = 0
    while x > 1 and steps < 12:
        flags.append(x > 10)
        counts.append(x * 0 + steps)
        x = x / 2
        steps += 1
    return flags, torch.stack(counts), x


def test_bounded_loops_write_bool_and_float_rows_on_python_numbers():
    _lists_check(bounded_flags, [(torch.tensor(v),) for v in (3000.0, 40.0, 2.0, 1e9)])


def two_rows_a_trip(x):
    out = [x * 0]  # a row before the loop: the buffer is a cat of it and the room
    while x > 1:
        out.append(x)
        out.append(-x)  # (a row at count + 1)
        x = x / 2
    return out, x


def test_rows_before_the_loop_and_two_rows_a_trip():
    _lists_check(two_rows_a_trip,
                 [(torch.tensor(v, dtype=torch.float64),) for v in (3000.0, 0.5, 1.5, -0.0)])


def reads_its_list(x):
    out = []
    steps = 0
    while x > 1 and steps < 8:
        out.append(x)
        x = x / 2 + out[-1] / 4  # (the list is read in the loop: not a list of numbers)
        steps += 1
    return out, x


def test_a_list_the_loop_reads_keeps_the_tensor_loop():
    _lists_check(reads_its_list, [(torch.tensor(v),) for v in (3000.0, 5.0)], scalar=False)


def vector_rows(x):
    out = []
    while x.sum() > 1:
        out.append(x)
        x = x / 2
    return out, x


def test_a_list_of_vectors_keeps_the_tensor_loop():
    # (non-contiguous vectors: each row is a copy as eager's stack makes)
    _check(lambda x: torch.stack(vector_rows(x)[0]),
           [(torch.tensor([[80.0, 1.0], [3.0, 0.5]]).t()[0],),
            (torch.tensor([[900.0, 1.0], [3.0, 2.0]]).t()[1],)], scalar=False)


def test_a_list_grown_on_an_input_that_requires_grad_takes_the_tensor_loop():
    function = autoconv.autoconv(float32_halvings)
    source = None
    for start in (3000.0, 1.5, 40.0):
        results = []
        for run in (float32_halvings, function):
            x = torch.tensor(start, requires_grad=True)
            out, last = run(x)
            loss = sum((k + 1) * o for k, o in enumerate(out)) + last
            (grad,) = torch.autograd.grad(loss, x)
            results.append((loss.detach(), grad, [o.requires_grad for o in out],
                            last.requires_grad))
        assert torch.equal(results[0][0], results[1][0]), results
        assert torch.equal(results[0][1], results[1][1]), results
        assert results[0][2:] == results[1][2:]
        source = function.concrete_functions[0]._runner.__autoconv_source__
    assert function.trace_count == 1 and "_put_row(" in source
    with torch.no_grad():  # the same inputs, nothing to record: Python numbers
        x = torch.tensor(3000.0, requires_grad=True)
        got, want = function(x), float32_halvings(x)
        assert all(torch.equal(g, w) for g, w in zip(got[0], want[0]))


def test_a_list_loop_of_no_trip_raises_where_eager_does():
    function = autoconv.autoconv(lambda x: torch.stack(float32_halvings(x)[0]))
    function(torch.tensor(30.0))
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        function(torch.tensor(0.5))


def test_lists_of_numbers_agree_in_all_modes():
    assert_same_result(lambda x: torch.stack(float32_halvings(x)[0]),
                       [(torch.tensor(3000.0),), (torch.tensor(1.5),)])
    assert_same_result(lambda n: torch.stack(collatz_path(n)[0]),
                       [(torch.tensor(27),), (torch.tensor(6),)])


def test_a_row_write_indexes_the_list_as_index_put_does():
    from autoconv.scalar_loops import _put_row
    for index in (0, 2, -1, -3):
        rows, buffer = [0.0, 0.0, 0.0], torch.zeros(3)
        _put_row(rows, index, 1.5)
        buffer.index_put_((torch.tensor(index),), torch.tensor(1.5))
        assert rows == buffer.tolist()
    for index in (3, -4):
        with pytest.raises(IndexError) as torch_error:
            torch.zeros(3).index_put_((torch.tensor(index),), torch.tensor(1.5))
        with pytest.raises(IndexError, match=str(torch_error.value)):
            _put_row([0.0, 0.0, 0.0], index, 1.5)


def halving_quotients(x, n):
    """Floor division by literals at the ends of the range: // -1 of the lowest value wraps,
    // 2, // -3 and // 1 never leave it (NOTE [division by a literal in a trip])."""
    total = x * 0
    while n > 0:
        total = total + x // 2 + x // -3 + x // 1 + x // -1
        x = x - 1
        n = n - 1
    return total, x // -1


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int8, torch.uint8])
def test_floor_division_by_literals_wraps_only_where_torch_does(dtype):
    if dtype is torch.uint8:  # (no negative literal in uint8: the tensor loop)
        def fn(x, n):
            total = x * 0
            while n > 0:
                total = total + x // 2 + x // 7 + x // 1
                x = x - 1
                n = n - 1
            return total, x // 3
        _check(fn, [(torch.tensor(v, dtype=dtype), torch.tensor(2)) for v in (255, 0, 1, 128)])
        return
    info = torch.iinfo(dtype)
    _check(halving_quotients, [(torch.tensor(v, dtype=dtype), torch.tensor(2))
                               for v in (info.min + 1, info.min, info.max, -7, 0, 1)])


def divided_by_literals(x, n):
    while n > 0:
        x = x / 2 + x / -0.5 + x / 1e-300 + x / 3
        n = n - 1
    return x


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("x", [1.5, -0.0, 1e300, float("inf"), float("nan"), 3e38])
def test_float_division_by_literals_is_torch_division(dtype, x):
    # (1e-300 is 0 as a float32: `_div` keeps torch's inf; as a float64, 1e300 / 1e-300
    # overflows to inf bare)
    _check(divided_by_literals, [(torch.tensor(x, dtype=dtype), torch.tensor(2))])


def test_collatz_and_bisection_trips_divide_bare():
    function = autoconv.autoconv(collatz)
    function(torch.tensor(27))
    source = function.concrete_functions[0]._runner.__autoconv_source__
    # (`3 * n + 1` wrapped once: NOTE [wraps left to the users]; and `steps + 1`)
    assert " // 2\n" in source and source.count("_wrap(") == 2, source
    function = autoconv.autoconv(bisection)
    function(torch.tensor(2.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64))
    source = function.concrete_functions[0]._runner.__autoconv_source__
    assert " / 2.0\n" in source and "_div(" not in source.split("while True")[1].split(
        "_scalar_tensor")[0], source


def chained_products(x, n):
    """Products that leave the dtype's range before the difference that reads them wraps:
    each one's wrap left to its reader (NOTE [wraps left to the users]), but `big`, which a
    comparison reads as well, wrapped where it is made."""
    steps = torch.tensor(0)
    while n > 0:
        big = x * 101
        x = big * 77 - x * 3 + (big > 5)
        steps += 1
        n = n - 1
    return x, steps


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8,
                                   torch.uint8])
def test_wraps_left_to_the_readers_give_torchs_numbers(dtype):
    info = torch.iinfo(dtype)
    _check(chained_products, [(torch.tensor(v, dtype=dtype), torch.tensor(3))
                              for v in (info.max, info.min, info.max // 3, 1, 0)])
