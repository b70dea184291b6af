"""`math` functions, `min` / `max`, `bisect` and `in` of numbers only the graph knows (read with
`.item()` / `int(t)`, or counted by a staged loop): Python's values and dtypes, bit for bit, in
autoconv's replay (on inputs taking other paths than the traced one), a saved torch.export
program and torch.compile (NOTE [math functions of graph numbers] in runtime/libm.py)."""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_exactly


def sqrt_of_quotient(x):
    h = 1.0
    for i in range(x.shape[0]):
        e = x[i].item()
        if e > 2.5:
            break
        h = h * math.sqrt(1e-3 / max(e, 1e-12))
    return torch.tensor(h)


def exp_log(x):
    h = 1.0
    for i in range(x.shape[0]):
        e = x[i].item()
        if e > 2.5:
            break
        h = h * math.exp(-e) + math.log(e)
    return torch.tensor(h)


def test_math_functions_of_item_numbers_in_a_loop_with_a_tensor_break():
    # (tester23 s05) replay and export refused "asks Python for the value of a traced
    # tensor"; torch.compile raised torch's "Could not guard on data-dependent expression"
    inputs = [(torch.tensor([0.5, 2.0, 0.1]),), (torch.tensor([3.0, 0.2, 0.3]),),
              (torch.tensor([0.7, 0.9, 2.9]),)]
    assert_same_exactly(sqrt_of_quotient, inputs)
    assert_same_exactly(exp_log, inputs)


def composed(x):
    h = 1.0
    for i in range(x.shape[0]):
        e = x[i].item()
        if e > 2.5:
            break
        r = 1e-3 / max(abs(e), 1e-12)
        s = math.exp(r) + math.log10(abs(e)) * math.atan2(e, 2.0) - math.log(abs(e) + 1, 2)
        h = h * s + math.hypot(e, 1.0) ** 0.5 + math.pow(abs(e), 1.5) + math.tanh(min(e, 0.5))
    return torch.tensor(h, dtype=torch.float64)


# float64 values where torch's own kernels differ from the C library's on a one-element tensor
# (measured 2026-12-03, this AVX512 build: torch.exp and torch.log10 of the first, torch.sqrt of
# the second): the graph's values must still be Python's
_TORCH_DIFFERS = (float.fromhex("0x1.c8d01bcd9f918p+0"), float.fromhex("0x1.fcba40015b444p+594"))


def test_compositions_of_math_functions_of_item_numbers_are_pythons_bits():
    # names bound to arithmetic of the number (`r`), `abs`, `min` / `max` of it, and two- or
    # more-argument functions (`math.log(v, 2)`, `math.atan2`, `math.hypot`, `math.pow`, which
    # torch.export replaces by `x ** y` while it traces)
    inputs = [(torch.tensor([_TORCH_DIFFERS[0], 2.0, 0.1], dtype=torch.float64),),
              (torch.tensor([3.0, 0.2, 0.3], dtype=torch.float64),),
              (torch.tensor([0.7, -0.2, 0.3], dtype=torch.float64),)]
    assert_same_exactly(composed, inputs)


def top_level(x):
    e = x.min().item()
    k = int(x.argmax())
    return torch.tensor(math.exp(e) + math.sqrt(k) * math.cos(-e)), torch.tensor(
        math.sqrt(x.sum().item()), dtype=torch.float64)


def test_math_functions_of_item_numbers_outside_any_staged_statement():
    assert_same_exactly(top_level, [
        (torch.tensor([_TORCH_DIFFERS[1], 2.0], dtype=torch.float64),),
        (torch.tensor([0.1, 3.0], dtype=torch.float64),)])


def _limiter(x):
    return 1 + math.atan(x - 1)


def limited_step(e):
    inv = 1 / (float(e) + 1e-8)
    return torch.tensor(_limiter(inv), dtype=torch.float64)


def limited_steps(x, e):
    h = 0.5
    while x.sum() < 10:
        h = h * _limiter(1 / (float(e * x.sum()) + 1e-8))
        x = x + 1
    return x, torch.tensor(h, dtype=torch.float64)


def test_a_number_read_from_a_tensor_given_to_a_helper_taking_a_math_function_of_it():
    # (tester43 s01: k-diffusion's PID step-size controller, `limiter(x)` returning
    # `1 + math.atan(x - 1)` of `float(error)` arithmetic) the helper ran its plain twin, where
    # `math.atan` asked the symbolic float for its value: refused in replay and export
    assert_same_exactly(limited_step, [(torch.tensor(0.5),), (torch.tensor(3.0),)])
    assert_same_exactly(limited_steps, [(torch.zeros(2), torch.tensor(0.5)),
                                        (torch.full((2,), 4.5), torch.tensor(0.1))])


def log_of_items(x):
    h = 0.0
    for i in range(x.shape[0]):
        e = x[i].item()
        if e > 2.5:
            break
        h = h + math.log(e)
    return torch.tensor(h)


def test_a_math_function_outside_its_domain_raises_pythons_error_at_the_line():
    f = autoconv.autoconv(log_of_items)
    assert float(f(torch.tensor([0.5, 3.0]))) == pytest.approx(math.log(0.5))
    with pytest.raises(ValueError, match=r"test_math_functions.py:\d+: math domain error"):
        f(torch.tensor([0.5, 0.0, 3.0]))
    with pytest.raises(ValueError, match="math domain error"):
        log_of_items(torch.tensor([0.5, 0.0, 3.0]))


def exponential_of_carried(x):
    t = 0.0
    while t < x:
        t += 0.3
    return torch.tensor(math.exp(t) + math.sqrt(t), dtype=torch.float64)


def test_math_functions_of_a_float_a_staged_loop_carries():
    # (was refused: "exp() of a Python number a staged statement carries ... not staged")
    assert_same_exactly(exponential_of_carried, [(torch.tensor(1.0),), (torch.tensor(2.0),),
                                                 (torch.tensor(-1.0),)])


def epsilon_scaled(x):
    # POT's sinkhorn_epsilon_scaling: `(epsilon0 - reg) * np.exp(-ii) + reg` of the counter of
    # a loop staged by its tensor `break` (tester33 s05: numpy asked the counter's stand-in for
    # its values, "a numpy array used with a tensor")
    reg = 1e3
    for ii in range(30):
        reg = (1e3 - 0.1) * np.exp(-ii) + 0.1
        x = x * 0.5 + 1e-3 * np.sqrt(reg + ii) * np.log1p(float(ii))
        if x.abs().sum() < 1.0:
            break
    return x, torch.tensor(reg + np.arctan2(reg, 2.0), dtype=torch.float64)


_EPSILON_INPUTS = [(torch.tensor([3.0, 1.0]),), (torch.tensor([300.0, -40.0]),),
                   (torch.tensor([0.5, 0.1]),)]


def test_numpy_functions_of_a_staged_loops_counter():
    # (three trip counts, so three schedules at the break)
    assert len({float(epsilon_scaled(*args)[1]) for args in _EPSILON_INPUTS}) == 3
    assert_same_exactly(epsilon_scaled, _EPSILON_INPUTS, compile=False)


def epsilon_scaled_by_math(x):
    reg = 1e3
    for ii in range(30):
        reg = (1e3 - 0.1) * math.exp(-ii) + 0.1
        x = x * 0.5 + 1e-3 * math.sqrt(reg + ii) * math.log1p(float(ii))
        if x.abs().sum() < 1.0:
            break
    return x, torch.tensor(reg + math.atan2(reg, 2.0), dtype=torch.float64)


def test_numpy_functions_of_a_staged_loops_counter_compiled_say_to_write_maths():
    # (errs40 s01, below: the refusal says what runs; the numbers differ from numpy's in the
    # last bit at most, as the C library's do)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(epsilon_scaled), fullgraph=True, backend="eager")
    with pytest.raises(StagingError, match=r"test_math_functions.py:\d+: in a tensor-dependent "
                       r"for loop: 'reg' is a Python ndarray.*compute 'reg' with `math`'s "
                       r"\(`math.exp\(-k\)` for `np.exp\(-k\)`\)"):
        compiled(*_EPSILON_INPUTS[0])
    for args in _EPSILON_INPUTS:
        want = epsilon_scaled(*args)
        got = epsilon_scaled_by_math(*args)
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])
    assert_same_exactly(epsilon_scaled_by_math, _EPSILON_INPUTS, export=False)


@pytest.mark.xfail(strict=True, raises=StagingError, reason=(
    "errs40 s01: under torch.compile dynamo computes `np.exp(-ii)` of the loop's first trip "
    "itself, as a 0-d ndarray, which the loop cannot carry ('reg' is a Python ndarray before "
    "the statement)"))
def test_numpy_functions_of_a_staged_loops_counter_compiled():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(epsilon_scaled), fullgraph=True, backend="eager")
    for args in _EPSILON_INPUTS:
        got, want = compiled(*args), epsilon_scaled(*args)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def two_statement_try(a, b):
    try:
        r = a.item() / b.item()
        s = r * 2
    except ZeroDivisionError:
        s = 0.0
    return torch.tensor(s)


def two_statement_try_of_log(x):
    try:
        r = math.log(x.item())
        s = r * 2
    except ValueError:
        s = -1.0
    return torch.tensor(s)


def test_a_try_of_several_assignments_around_item_numbers():
    # (tester23 brief) a longer `try` body: the division by 0 raised ZeroDivisionError out of
    # the graph in every mode where Python runs the handler; float64 where Python's is float32
    assert_same_exactly(two_statement_try, [
        (torch.tensor(3.0), torch.tensor(2.0)), (torch.tensor(3.0), torch.tensor(0.0)),
        (torch.tensor(1.0), torch.tensor(-0.0))])
    assert_same_exactly(two_statement_try_of_log, [
        (torch.tensor(3.0),), (torch.tensor(0.0),), (torch.tensor(-1.0),)])


def try_reading_its_own_target(x, b):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 5:
            break
        try:
            r = x[i].item() / b.item()
            s = s + r * 2
        except ZeroDivisionError:
            s = s - 1.0
    return torch.tensor(s)


def test_a_try_whose_handler_reads_what_its_body_assigns_is_refused_at_the_division():
    # Python's `s` in the handler is the one before the failing statement: not staged, and the
    # division of the symbols raised ZeroDivisionError out of the graph
    with pytest.raises(StagingError, match=r"test_math_functions.py:\d+.*ZeroDivisionError.*"
                                           r"except ZeroDivisionError:"):
        autoconv.autoconv(try_reading_its_own_target)(torch.tensor([1.0, 9.0]),
                                                      torch.tensor(2.0))


MILESTONES = [1, 3]


def _counted(x):
    k = 0
    for i in range(x.shape[0]):
        if x[i] > 1.0:
            break
        k += 1
    return k


def milestone_counts(x):
    k = 0
    for i in range(x.shape[0]):
        if x[i] > 1.0:
            break
        k += 1
    n = sum(1 for m in MILESTONES if k >= m)
    right, left = bisect.bisect_right(MILESTONES, k), bisect.bisect_left(MILESTONES, k)
    lr = 1.0
    if k in MILESTONES:
        lr = 0.1
    return (torch.tensor(0.5 ** n), torch.tensor(n), torch.tensor(right), torch.tensor(left),
            torch.tensor(lr), torch.tensor(k in MILESTONES), torch.tensor(k not in MILESTONES))


def milestones_of_an_item(x):
    k = int(x.argmax())
    return torch.tensor(k in MILESTONES), torch.tensor(bisect.bisect_right(MILESTONES, k))


def test_milestone_counts_of_a_loop_counted_int():
    # (tester23 s11) MultiStepLR-style schedules: refused with the generic "asks Python for the
    # value of a traced tensor"
    inputs = [(torch.tensor([0.5, 2.0, 0.1, 0.1]),), (torch.tensor([0.1, 0.2, 0.3, 0.4]),),
              (torch.tensor([3.0, 0.2, 0.3, 0.1]),)]
    assert_same_exactly(milestone_counts, inputs)
    assert_same_exactly(milestones_of_an_item, inputs)


def float_items_summed(x):
    k = 0
    for i in range(x.shape[0]):
        if x[i] > 1.0:
            break
        k += 1
    return torch.tensor(sum(0.5 for m in MILESTONES if k >= m))


def unsorted_bisect(x):
    return torch.tensor(bisect.bisect_right([3, 1], _counted(x)))


def test_counts_that_are_not_staged_say_what_to_write():
    # (Python's sum of no float items is the int 0: a type only the graph would know)
    with pytest.raises(StagingError, match=r"test_math_functions.py:\d+.*generator.*`if`"
                                           r".*sum\(k >= m for m in M\)"):
        autoconv.autoconv(float_items_summed)(torch.tensor([0.5, 2.0]))
    with pytest.raises(StagingError, match=r"bisect_right.*sorted list.*sorted\(a\)"):
        autoconv.autoconv(unsorted_bisect)(torch.tensor([0.5, 2.0]))
