"""Python numbers carried by staged statements keep Python's meaning: a float is a float64 (a
C double), an int an int64, and where one meets a tensor it acts as Python's number would (a
'wrapped number' that only raises the category: a float32 tensor stays float32).
NOTE [numbers as tensors] in runtime/values.py."""

import functools
import io
import math

import pytest

import torch
from torch.utils import _pytree as pytree

import autoconv
from autoconv_runtime import StagingError
from tests.support import Calling, assert_same_exactly, assert_same_result


def _modes(fn, args, export=True, compile=True):
    """fn's results: staged replay, the saved and loaded exported program, torch.compile.

    A test calls this once per input; the modes are made once per function (the export once per
    input signature: shapes, dtypes and the other arguments' values) and run on each input, so
    the second input replays the first one's trace, program and compiled code. That is
    assert_same_result's check (one graph, inputs on other paths), in about a third less time
    than converting, exporting and compiling again per input (docs/testing.md)."""
    modes = _made.get(fn)
    if modes is None:
        converted = autoconv.convert(fn)
        modes = _made[fn] = {"staged": autoconv.autoconv(fn), "converted": converted,
                             "exported": {}}
    results = [modes["staged"](*args)]
    if export:
        key = _signature(args)
        module = modes["exported"].get(key)
        if module is None:
            program = torch.export.export(Calling(modes["converted"]), args, strict=False)
            saved = io.BytesIO()
            torch.export.save(program, saved)
            saved.seek(0)
            module = modes["exported"][key] = torch.export.load(saved).module()
        results.append(module(*args))
    if compile:
        if "compiled" not in modes:
            torch._dynamo.reset()
            # dynamic=False: another input's sizes compile again with static sizes, as the
            # fresh compile per input did
            modes["compiled"] = torch.compile(modes["converted"], fullgraph=True,
                                              backend="eager", dynamic=False)
        results.append(modes["compiled"](*args))
    return results


_made: dict = {}


def _signature(args):
    """What an exported program is specialised to: the tensors' shapes and dtypes, the other
    arguments' values."""
    return tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else repr(a)
                 for a in pytree.tree_leaves(args))


def _assert_within_an_ulp(got: float, want: float) -> None:
    """A math function of a carried number is torch's kernel (`math.sqrt(r)` is `torch.sqrt`),
    which need not round as the C library's does: on an AVX2 AMD CPU torch's float64 sqrt of
    4.913273373914064 is one ulp above `math.sqrt`'s (measured 2026-12-02), where an Intel CPU
    gave them equal. Exact operators stay compared exactly elsewhere."""
    assert abs(got - want) <= math.ulp(want), (got, want)


def _dtypes(value):
    """The dtype of each leaf, a Python number as the graph carries it."""
    kinds = {bool: torch.bool, int: torch.int64, float: torch.float64}
    return [leaf.dtype if isinstance(leaf, torch.Tensor) else kinds[type(leaf)]
            for leaf in pytree.tree_leaves(value)]


def steps_to_reach(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.1
        k += 1
    return k, t


def test_a_float_counter_is_a_float64_in_every_mode():
    # (tester t8, repro 2) t was carried as a float32: 10 trips where Python makes 11, and
    # t = 1.0000000149 instead of 1.0999999999999999.
    x = torch.tensor(1.0, dtype=torch.float64)
    assert steps_to_reach(x) == (11, 1.0999999999999999)
    other = torch.tensor(0.35, dtype=torch.float64)
    assert [int(v) for v in autoconv.autoconv(steps_to_reach)(other)][0] == 4
    for k, t in _modes(steps_to_reach, (x,)):
        assert int(k) == 11 and float(t) == 1.0999999999999999
        assert _dtypes((k, t)) == [torch.int64, torch.float64]


def march(x):
    t = 1.0
    n = 0
    while t < x and n < 100:  # (the bound: a float32 t never moves, and the loop would hang)
        t += 2e-8
        n += 1
    return n


def test_a_step_below_float32_resolution_still_moves_the_counter():
    # (tester t8, repro 17) float32's 1.0 + 2e-8 is 1.0: the graph looped forever.
    x = torch.tensor(1.0000002, dtype=torch.float64)
    assert march(x) == 10
    assert int(autoconv.autoconv(march)(x)) == 10


def accumulate(x):
    total = 0.0
    for v in x:
        if v > 0:
            total += v
    return total


def scaled(x):
    scale = 1.0
    while scale < x.abs().max():
        scale *= 2.0
    return x / scale, scale


def test_a_carried_float_meeting_float32_tensors_gives_float32_as_in_python():
    x = torch.tensor([0.1, -2.0, 0.7])
    assert accumulate(x).dtype == torch.float32  # Python: 0.0 + a float32 tensor
    assert float(autoconv.autoconv(accumulate)(-x)) == accumulate(-x)
    # (torch.compile too: a loop there cannot be retried with a promoted dtype, so a float
    # meeting a float32 tensor must be found before the loop is traced)
    for result in _modes(accumulate, (x,), export=False):
        assert _dtypes(result) == [torch.float32]
        torch.testing.assert_close(result, accumulate(x))
    y = torch.tensor([3.0, -9.5])
    for out, scale in _modes(scaled, (y,), compile=False):
        assert out.dtype == torch.float32 and float(scale) == 16.0
        torch.testing.assert_close(out, y / 16.0)


def halves(x):
    k = 7
    j = 0
    while k > x:
        k /= 2     # an int divided: a float64 in Python
        j += 0.5   # an int plus a float: a float64
    # (+ 0.0: where the loop makes no trip `k` and `j` are ints, a kind a returned number
    # shows, NOTE [numbers of two kinds returned] in runtime/augmented.py)
    return k + 0.0, j + 0.0


def test_numbers_promote_as_python_numbers_do():
    x = torch.tensor(0.01, dtype=torch.float64)
    want = halves(x)
    for result in _modes(halves, (x,), compile=False):
        assert _dtypes(result) == [torch.float64, torch.float64]
        assert [float(v) for v in result] == list(want)


def counted_in_a_dict(x):
    stats = {"total": 0.0, "n": 0}
    for v in x:
        if v > 0:
            stats["total"] += v  # a float32 tensor in Python (the float meets v)
            stats["n"] += 1
    return stats


def test_numbers_in_a_carried_dict_promote_leaf_by_leaf():
    # A float in a dict is a float64 too; meeting the float32 item on one path it becomes a
    # float32 there, as in Python, while the int stays an int64.
    x = torch.tensor([0.1, -2.0, 0.7])
    want = counted_in_a_dict(x)
    for result in _modes(counted_in_a_dict, (x,), export=False):
        assert _dtypes(result) == [torch.float32, torch.int64]
        torch.testing.assert_close(result["total"], want["total"])
        assert int(result["n"]) == 2


def counted_beside_a_tensor(x):
    stats = {"total": 0.0, "m": torch.zeros(())}
    for v in x:
        if v > 0:
            stats["total"] += v
            stats["m"] += 1
    return stats


def test_numbers_beside_a_tensor_in_a_carried_dict_promote_under_compile():
    # The merge of two fixes: torch.compile's probe for the dict's tensors updated in place
    # decided the float's dtype (float64) before the loop's own probe promoted it (float32):
    # torch's "Expected body_fn_output and carried_inputs to have same metadata".
    x = torch.tensor([0.1, -2.0, 0.7])
    want = counted_beside_a_tensor(x)
    for result in _modes(counted_beside_a_tensor, (x,), export=False):
        assert _dtypes(result) == [torch.float32, torch.float32]
        torch.testing.assert_close(result["total"], want["total"])
        torch.testing.assert_close(result["m"], want["m"])


class _Holder:
    pass


class _BiasCorrected:
    def __init__(self):
        self.state = {"step": 0}

    def update(self, w):
        self.state["step"] += 1
        return w / (1 - 0.999 ** self.state["step"])


def bias_corrected_in_a_field(w):
    h = _Holder()
    h.state = {"step": 0}
    while w.abs().max() > 100:
        h.state["step"] += 1
        w = w / (1 - 0.999 ** h.state["step"]) * 1e-3
    return w, h.state["step"]


def bias_corrected_by_a_method(w):
    opt = _BiasCorrected()
    while w.abs().max() > 100:
        w = opt.update(w) * 1e-3
    return w, opt.state["step"]


def test_an_int_in_a_dict_an_object_holds_is_a_python_int_in_arithmetic():
    # Hand-written Adam's bias correction (tester t16 repro 1): the int `step` in a dict held by
    # an attribute, `0.999 ** step`, was torch's float32 power of an int64 (41.794304 where
    # Python's float64 power gives 41.791878), read through the attribute's local in the loop
    # and through the dict in the field of a method's `self`.
    for fn, compile in ((bias_corrected_in_a_field, True), (bias_corrected_by_a_method, False)):
        for w in (torch.tensor([1000.0, 2000.0]), torch.tensor([3e6, 1e5])):
            want = fn(w)
            for result in _modes(fn, (w,), compile=compile):
                assert result[0].dtype == torch.float32
                assert torch.equal(result[0], want[0]), (fn.__name__, result, want)
                assert int(result[1]) == want[1]


# Carried numbers are weak scalars: where one meets a tensor it takes torch's dtype for the
# Python number it stands for (NOTE [weak numbers] in runtime/arithmetic.py).

def steps_until(T):
    t = 0.0
    n = 0
    while t < T:
        t += 0.1
        n += 1
    return n


def test_a_carried_float_is_compared_with_a_float32_tensor_in_float32():
    # (tester t9, repro 16) Python compares 0.30000000000000004 with float32 0.3 in float32
    # (equal): 3 trips for 0.3 and 10 for 1.0, where a float64 comparison made 4 and 11.
    assert [steps_until(torch.tensor(v)) for v in (0.3, 1.0)] == [3, 10]
    for result in _modes(steps_until, (torch.tensor(0.3),)):
        assert int(result) == 3
    assert int(autoconv.autoconv(steps_until)(torch.tensor(1.0))) == 10
    # a float64 bound compares in float64, as in Python
    assert int(autoconv.autoconv(steps_until)(torch.tensor(0.3, dtype=torch.float64))) == 3


def scalar_ode(y):
    t = 0.0
    h = 0.25
    while t < 1.0 and y < 100:
        y = y + h * y * t
        t += h
    return y, t


def scale_by(x):
    s = 1.0
    if x.sum() > 0:
        s = 0.5
    return x.sum() * s


def test_a_carried_float_keeps_a_float32_tensor_float32():
    # (tester t9, repro 17) `h * y * t` with a carried float t made y a float64 (and the loop
    # was refused: "give 'y' one dtype"); a number after a staged if made `x.sum() * s` float64
    y = torch.tensor(1.0)
    want = scalar_ode(y)
    for out, t in _modes(scalar_ode, (y,)):
        assert out.dtype == torch.float32 and float(t) == 1.0
        torch.testing.assert_close(out, want[0])
    for x in (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])):
        for result in _modes(scale_by, (x,), compile=False):
            assert result.dtype == torch.float32
            torch.testing.assert_close(result, scale_by(x))


def harmonic(n):
    s = 0.0
    for k in range(1, n + 1):
        s += 1.0 / k
    return s


def test_a_float_divided_by_a_range_index_is_a_float64():
    # (tester t9, repro 11) `1.0 / k` of the staged range's int64 index gave the default
    # float32: H(1000) = 7.4854784 instead of Python's 7.485470860550343.
    assert harmonic(torch.tensor(1000)) == 7.485470860550343
    n = torch.tensor(100)  # (float32 gives 5.187378 here)
    for result in _modes(harmonic, (n,), compile=False):
        assert result.dtype == torch.float64 and float(result) == harmonic(n) == 5.187377517639621
    assert float(_modes(harmonic, (torch.tensor(7),), export=False)[1]) == harmonic(7)


def argmax_scan(x):
    best = -1
    best_i = 0
    for i, v in enumerate(x):
        if v > best:
            best = v.item()
            best_i = i
    return best_i, best + 0.0  # (the int -1 where no item beats it: see `halves`)


def test_an_int_that_takes_a_float_becomes_a_float64():
    # (tester t9, repro 8) A running max started as an int and given `v.item()` (a symbolic
    # float) failed inside the engine ("to() received an invalid combination of arguments").
    x = torch.tensor([0.5, 2.0, 1.0])
    assert argmax_scan(x) == (1, 2.0)
    for i, best in _modes(argmax_scan, (x,), compile=False):
        assert int(i) == 1 and float(best) == 2.0 and best.dtype == torch.float64
    # torch.compile cannot stage the loop again with the float's dtype: a clear error
    torch._dynamo.reset()
    with pytest.raises(Exception, match="'best' is a Python int before the loop and becomes a "
                       "float in the loop body.*Start 'best' as .*'best = -1.0'"):
        torch.compile(autoconv.convert(argmax_scan), fullgraph=True, backend="eager")(x)


def mixed(x, y):
    s = 0.5
    k = 3
    flag = False
    if x.sum() > 0:
        s = 0.25
        k = 4
        flag = True
    return (x * s,       # float32 tensor and a float: float32
            y * s,       # int32 tensor and a float: the default float
            y + k,       # int32 tensor and an int: int32
            k / 2,       # ints: a Python float
            k * s,       # an int and a float: a Python float
            s < x.max(),  # a float and a float32 tensor: compared in float32
            -s * x,      # a negated float: still a float
            x.max() > k,  # an int and a float32 tensor
            flag | (y > 0))  # a bool and a bool tensor


def test_carried_numbers_meet_tensors_as_python_numbers_do():
    y = torch.tensor(3, dtype=torch.int32)
    for x in (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])):
        want = mixed(x, y)
        for result in _modes(mixed, (x, y), compile=False):
            assert _dtypes(result) == _dtypes(want)
            for got, expected in zip(result, want):
                torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected),
                                           check_dtype=False)


def halving(x):
    lr = 1.0
    steps = 0
    while (x * lr).abs().max() > 0.1:
        lr /= 2
        steps += 1
    return x * lr, steps, lr > x.sum()


def test_numbers_carried_by_a_loop_meet_its_tensors_as_python_numbers_do():
    for x in (torch.tensor([3.0, -1.0]), torch.tensor([0.05, 0.01])):
        want = halving(x)
        results = _modes(halving, (x,), compile=bool(x[0] > 1))  # (one compile: suite time)
        for result in results:
            assert _dtypes(result) == [torch.float32, torch.int64, torch.bool]
            assert int(result[1]) == want[1] and bool(result[2]) == bool(want[2])
            torch.testing.assert_close(result[0], want[0])


def rebound(x):
    loss = 0.0
    k = 0
    for v in x:
        loss = loss + v.sum()  # a float plus a float32 tensor: a float32 tensor
        k = k + 0.5            # an int plus a float: a float64
    return loss, k + 0.0  # (the int 0 after no trip: see `halves`)


def test_numbers_rebound_by_arithmetic_promote_as_python_numbers_do():
    # (README: `loss = loss + x.sum()` carried a float64, `k = k + 0.5` a float32, before
    # the arithmetic of carried numbers went through the runtime)
    x = torch.tensor([[1.0, 2.0], [0.5, -3.0]])
    want = rebound(x)
    for result in _modes(rebound, (x,), compile=False):
        assert _dtypes(result) == [torch.float32, torch.float64]
        assert float(result[1]) == want[1]
        torch.testing.assert_close(result[0], want[0])


def soft_threshold(x, lam):
    if x.abs().max() > lam:
        return x.sign() * (x.abs() - lam).clamp(min=0)
    return x * 0


def test_a_float_argument_changing_between_compiled_calls():
    # (tester t9, repro 15) Compiled again for a new value, dynamo makes the float a SymFloat,
    # which the staged cond lifted as an operand: torch's "can only be of (Tensor, int,
    # SymInt)" assertion. The bodies get its value (a guard: compiled again per value).
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(soft_threshold), fullgraph=True, backend="eager")
    x = torch.tensor([1.0, -0.2, 0.6])
    for lam in (0.5, 0.7, 1.5):
        torch.testing.assert_close(compiled(x, lam), soft_threshold(x, lam))


# A number a statement's body makes a tensor of its own dtype (`total += v`, an int64 `v`) is a
# tensor after the statement on the paths that ran the body and the number on the others
# (NOTE [numbers on some paths] in runtime/augmented.py).

def summed_twice(x, n):
    total = 0
    for i in range(n):
        total += x[i] * 3  # an int plus an int64 tensor: an int64 tensor
    for i in range(n):
        total += x[i] / 2  # in place on an int64 tensor: Python raises
    return total


def test_a_number_a_loop_made_a_tensor_is_not_updated_as_a_number():
    # (numbers2, repro 1) the second loop updated `total` as a number: 21.0, where Python
    # raises "result type Float can't be cast to the desired output type Long".
    x = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="can't be cast"):
        summed_twice(x, torch.tensor(3))
    torch._dynamo.reset()
    for run in (autoconv.autoconv(summed_twice),
                lambda *a: torch.export.export(Calling(autoconv.convert(summed_twice)), a,
                                               strict=False),
                torch.compile(autoconv.convert(summed_twice), fullgraph=True,
                              backend="eager")):
        # (torch.compile: the second loop cannot change the type of what it carries)
        with pytest.raises(Exception, match="(in-place \\+= cannot make a torch.int64 tensor "
                           "torch.float32|cannot change the type of a number it carries)"):
            run(x, torch.tensor(3))


def summed_then_updated(x, n):
    total = 0
    for i in range(n):
        total += x[i]
    total += 1           # an int: the same dtype either way
    return total * 2, total


def counted_then_halved(x, n):
    k = 0
    while k < n:
        k += 1
    k += 0.5             # a number after the loop on every path: rebound as a float
    return k


def summed_then_divided(x, n):
    total = 0
    for i in range(n):
        total += x[i]
    return total / 2     # a float32 tensor, or (no trip) a float: a StagingError


def test_a_number_on_some_paths_is_computed_where_both_readings_agree():
    x = torch.tensor([1, 2, 3])
    for n in (3, 0):
        want = summed_then_updated(x, torch.tensor(n))
        for result in _modes(summed_then_updated, (x, torch.tensor(n))):
            assert [int(v) for v in result] == [int(v) for v in want]
            assert _dtypes(result) == [torch.int64, torch.int64]
        for result in _modes(counted_then_halved, (x, torch.tensor(n))):
            assert float(result) == counted_then_halved(x, torch.tensor(n))
            assert result.dtype == torch.float64
    for run in _runs(summed_then_divided):
        with pytest.raises(Exception, match="`/` gives a torch.float32 value where it is the "
                           "tensor and a torch.float64 value where it is the number"):
            run(x, torch.tensor(3))


def _runs(fn):
    torch._dynamo.reset()
    return (autoconv.autoconv(fn),
            lambda *a: torch.export.export(Calling(autoconv.convert(fn)), a, strict=False),
            torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager"))


def kept_float64(x, y):
    s = 0.0
    for v in x:
        s += v           # a float64 tensor
    for w in y:
        s += w           # in place: stays float64 (Python), or (no trip before) float32
    return s


def test_a_float_a_loop_made_a_float64_tensor_meets_a_float32_one():
    x, y = torch.tensor([1.5, 2.0], dtype=torch.float64), torch.tensor([0.1, 0.2])
    assert kept_float64(x, y).dtype == torch.float64
    for run in _runs(kept_float64):
        with pytest.raises(Exception, match="`\\+=` of a torch.float32 tensor gives a "
                           "torch.float64 value where it is the tensor"):
            run(x, y)


# A carried number given to a torch function is the Python number it stands for (NOTE
# [numbers as arguments] in runtime/arithmetic.py).

def made_from_a_float(x):
    s = 0.0
    while s < x.sum():
        s += 0.5
    return torch.tensor(s), torch.arange(3) * s, torch.full((2,), s), torch.where(x > 0, s, x)


def methods_given_a_float(x):
    s = 0.0
    while s < x.sum():
        s += 0.5
    y = x.sum()
    return y.add(s), y.mul(s), x.new_full((2,), s), torch.clamp(y, max=s), torch.add(y, s)


def made_from_an_int(x):
    k = 0
    while k < x.sum():
        k += 1
    return torch.tensor([k, 2]), torch.tensor([[k, 0.5], [1, k]])


def test_a_carried_number_given_to_torch_functions_is_a_python_number():
    # (numbers2, repros 2 and 3) torch.tensor(s) was a float64 where Python makes the default
    # float32; torch.tensor([k, 2]) failed with torch's "data is not allocated yet".
    for x in (torch.tensor([1.0, 0.2]), torch.tensor([-1.0, -0.2])):
        want = made_from_a_float(x)
        for result in _modes(made_from_a_float, (x,)):
            assert _dtypes(result) == _dtypes(want) == [torch.float32] * 4
            for got, expected in zip(result, want):
                torch.testing.assert_close(got, expected)
        want = methods_given_a_float(x)  # (a 0-d float32 tensor and a float: float32)
        for result in _modes(methods_given_a_float, (x,)):
            assert _dtypes(result) == _dtypes(want) == [torch.float32] * 5
            for got, expected in zip(result, want):
                torch.testing.assert_close(got, expected)
        want = made_from_an_int(x)
        for result in _modes(made_from_an_int, (x,)):
            assert _dtypes(result) == _dtypes(want) == [torch.int64, torch.float32]
            for got, expected in zip(result, want):
                torch.testing.assert_close(got, expected)


STEP = 0.5


def stepped(x):
    s = 0.0
    while s < x.sum():
        s += STEP
    if x.max() > STEP:
        return x * STEP, s
    return x, s


def test_a_global_float_changing_between_compiled_calls():
    # (numbers2, repro 4) Compiled again for a new value, dynamo makes the global a SymFloat,
    # which the staged loop lifted as an operand: torch's "can only be of (Tensor, int,
    # SymInt)" assertion. The converter passes it to the statements as an input, as an
    # argument is (compiled again per value).
    global STEP
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(stepped), fullgraph=True, backend="eager")
    x = torch.tensor([1.0, 0.2])
    try:
        for STEP in (0.5, 0.25, 0.3):
            want = stepped(x)
            got = compiled(x)
            torch.testing.assert_close(got[0], want[0])
            assert float(got[1]) == want[1]
    finally:
        STEP = 0.5


def halved_before_added(x):
    k = 0
    m = 0.0
    for v in x:
        m = k / 2        # a float on the first trip, a float32 tensor on the others
        k += v
    return m, k


def summed_ints(x):
    total = 0
    for v in x:
        total += v
    return total


def test_a_number_the_loop_body_makes_a_tensor_is_one_after_the_first_trip():
    # `m` took the float64 of the first trip on every trip, where Python gives float32 tensors
    # from the second one: a StagingError now, in every mode.
    x = torch.tensor([1, 2, 3])
    assert halved_before_added(x)[0].dtype == torch.float32
    for run in _runs(halved_before_added):
        with pytest.raises(Exception, match="`/` gives a torch.float32 value where it is the "
                           "tensor"):
            run(x)
    # (and an int64 running sum stays one, over an empty tensor too, compiled again for it)
    compiled = _runs(summed_ints)[2]
    for xs in (x, x[:0]):
        assert int(compiled(xs)) == summed_ints(xs)
        assert _dtypes(compiled(xs)) == [torch.int64]


# Python's number rules where torch's differ (NOTE [Python's number rules] in
# runtime/augmented.py).

def inverse_count(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.3
        k += 1
    return k ** -1, pow(k, -1), (k > 2) + (k > 1), (k > 2) - (k > 3), -(k > 2), ~(k > 2)


def test_int_powers_and_bool_arithmetic_are_python_numbers():
    # (tester t11, repro 1) `k ** -1` of a carried int raised torch's "Integers to negative
    # integer powers are not allowed" (no line); True + True was True, ~True False (silently)
    for x in (torch.tensor(1.0), torch.tensor(2.0)):
        want = inverse_count(x)
        for result in _modes(inverse_count, (x,)):
            assert _dtypes(result) == _dtypes(want) == [torch.float64] * 2 + [torch.int64] * 4
            assert [float(v) for v in result] == [float(v) for v in want]


def divided_by_count(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.3
        k += 1
    return 12 / (k - 4)


def raised_to_count(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.3
        k += 1
    return 2 ** (k - 5)


def fractional_power(x):
    t = 0.0
    while t < x:
        t += 0.3
    return (1.0 - t) ** 0.5


def test_python_errors_of_carried_numbers_are_raised_by_the_graph():
    # A division by a carried zero and 0 ** -1 raise ZeroDivisionError in Python (torch: inf);
    # an int raised to a negative carried int is a float (torch: a wrong int, 2 ** -1 == 0) and
    # a negative float raised to a fractional power a complex (torch: nan): the graph raises.
    four, seven = torch.tensor(1.0), torch.tensor(2.0)  # (k = 4 and 7 trips)
    assert divided_by_count(seven) == 4.0 and raised_to_count(seven) == 4
    for fn, bad, good, error in ((divided_by_count, four, seven, ZeroDivisionError),
                                 (raised_to_count, four, seven, ValueError),
                                 (fractional_power, four, torch.tensor(0.5), ValueError)):
        staged = autoconv.autoconv(fn)
        assert float(staged(good)) == fn(good)
        with pytest.raises(error, match=r"test_numbers.py:\d+"):
            staged(bad)
        for mode in _modes(fn, (good,)):
            assert float(mode) == fn(good)
        program = torch.export.export(Calling(autoconv.convert(fn)), (good,), strict=False)
        with pytest.raises(RuntimeError, match=error.__name__):
            program.module()(bad)
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
        with pytest.raises(RuntimeError, match=error.__name__):
            compiled(bad)


def rounded(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.3
        k += 1
    return round(t, 1), round(t), math.floor(t), math.ceil(-t), math.trunc(t), math.sqrt(t), \
        abs(-t), divmod(k, 3), divmod(-t, 0.5), round(k, -1)


def test_builtins_and_math_functions_of_carried_numbers():
    # (tester t11, repro 2) round(t, 1) raised "type FakeTensor doesn't define __round__"
    for x in (torch.tensor(1.0), torch.tensor(2.0)):
        want = rounded(x)
        for result in _modes(rounded, (x,)):
            assert _dtypes(result) == _dtypes(want)
            assert [float(v) for v in pytree.tree_leaves(result)] == [
                float(v) for v in pytree.tree_leaves(want)]


def radius_grown_by_sqrt(x):
    r = 1.0
    n = 0
    while x.sum() > r:
        r = math.sqrt(r + 1) * 2  # an operator applied to a math function's number
        n += 1
    return r, n


def test_an_operator_on_a_math_function_of_a_carried_number():
    # (tester t14 repro 7) `math.sqrt(r + 1) * 2` was torch's `*` of the stand-in, a tensor: r
    # was refused as a number on one path and a tensor on the other, in every mode, where
    # `(r + 1) ** 0.5 * 2` worked
    for x in (torch.tensor([4.5]), torch.tensor([0.1])):
        want = radius_grown_by_sqrt(x)
        assert want in ((4.6618369632880965, 4), (1.0, 0))
        for result in _modes(radius_grown_by_sqrt, (x,)):
            assert int(result[1]) == want[1]
            _assert_within_an_ulp(float(result[0]), want[0])


def rounded_near_a_tie(x):
    t = 2.15
    while t < x:
        t += 1.0
    return round(t, 1), round(t * 10, 0), round(0.125 + t - t, 2)


def test_round_to_digits_is_pythons_correctly_rounded_one():
    # 2.15 is 2.1499999999999999 as a float: Python rounds it to 2.1; torch.round(t,
    # decimals=1) rounds 21.5 (the rounded product) half to even, 2.2. And 0.125 is a tie.
    for x in (torch.tensor(0.0), torch.tensor(3.0)):
        want = rounded_near_a_tie(x)
        assert want[0] in (2.1, 3.1) and want[2] == 0.12
        for result in _modes(rounded_near_a_tie, (x,)):
            assert [float(v) for v in result] == list(want)


def exponential(x):
    t = 0.0
    while t < x:
        t += 0.3
    return math.exp(t)


def test_other_math_functions_of_carried_numbers_are_pythons():
    # (was refused: NOTE [math functions of graph numbers] in runtime/libm.py computes them by
    # Python's math in the graph)
    for x in (torch.tensor(1.0), torch.tensor(2.0)):
        want = exponential(x)
        for result in _modes(exponential, (x,)):
            assert _dtypes(result) == _dtypes(want) and float(result) == want, (result, want)


def flipped(x):
    flag = False
    c = 0
    for v in x:
        if v > 0:
            flag = not flag
            c += 1
    # (+ 0.0: returned, a number of two kinds is refused, NOTE [numbers of two kinds returned]
    # in runtime/augmented.py; what this checks is the and / or inside the graph)
    return ((flag and c) + 0.0, (flag or c) + 0.0, (c and flag) + 0.0, (flag and 5) + 0.0,
            (c or 2.5) + 0.0)


def test_and_or_of_carried_numbers_of_two_dtypes_in_every_mode():
    # (tester t11, repro 3) torch.compile raised torch's "When merging two branches' output in
    # torch.cond, expected same dtype ... int64 and bool"; every mode gives the value Python
    # gives, promoted to one dtype (a graph has no path-dependent dtype)
    for x in (torch.tensor([1., -1, 2]), torch.tensor([1., -1, -2])):
        want = flipped(x)
        for result in _modes(flipped, (x,)):
            assert [float(v) for v in result] == [float(v) for v in want]


def flipped_and_computed(x):
    flag = False
    c = 0
    for v in x:
        if v > 0:
            flag = not flag
            c += 1
    return ((flag and c * 2) + 0.0, (flag or c + 1) + 0.0, (c > 1) and x.sum(),
            flag or x.sum() > 0)  # (+ 0.0: see `flipped`)


def test_and_or_with_a_computed_right_side_of_another_dtype_in_every_mode():
    # torch.compile raised torch's "expected same dtype but got torch.int64 and torch.bool"
    # where the right side is computed (README, Errors that do not say what to change): its
    # dtype is known only inside the branch (NOTE [and / or of two dtypes under dynamo])
    for x in (torch.tensor([1., -1, 2]), torch.tensor([1., -1, -2]), torch.tensor([-1., -2])):
        want = flipped_and_computed(x)
        for result in _modes(flipped_and_computed, (x,)):
            assert [float(v) for v in result] == [float(v) for v in want]


def updated_after(x):
    k = 0
    while k < x:
        k += 1
    big = k > 2
    big += True  # (an int in Python: 2 or 1)
    t = 1.0
    t /= k - 3  # (a float64 in Python; a Python float's __truediv__ gave a float32 tensor)
    return big, t


def test_augmented_assignments_of_numbers_read_from_carried_ones():
    for x in (torch.tensor(4.0), torch.tensor(0.0)):
        want = updated_after(x)
        for result in _modes(updated_after, (x,)):
            assert _dtypes(result) == _dtypes(want) == [torch.int64, torch.float64]
            assert [float(v) for v in result] == list(want)
    with pytest.raises(ZeroDivisionError, match=r"test_numbers.py:\d+: division by zero"):
        autoconv.autoconv(updated_after)(torch.tensor(3.0))


def _times(a, g):
    return a * g + 1.0  # (a helper with no statement of its own)


def doubled_then_scaled(g):
    t = 1.0
    while g * t < 10:
        t = t * 2
    return _times(t, g)  # a Python float and a 0-d float32 tensor: float32 in Python


# A number a staged statement carries, given to a function, reaches it as its float64 stand-in;
# that function's arithmetic on it was torch's (float64 with a 0-d float32 tensor, where Python
# gives float32, in every mode: what stopped torchmin's BFGS first, torch.optim.lbfgs's
# _cubic_interpolate given the bracket's step lengths). The function now runs a twin converted
# with the parameters given stand-ins counted as numbers (NOTE [numbers given to a function] in
# runtime/calls.py).


def test_a_carried_float_given_to_a_helper_meets_its_tensors_as_a_python_float():
    for g in (torch.tensor(1.5), torch.tensor(0.3)):
        want = doubled_then_scaled(g)
        assert want.dtype == torch.float32
        for result in _modes(doubled_then_scaled, (g,)):
            assert result.dtype == torch.float32, result
            torch.testing.assert_close(result, want)


def _bounded(a, g, bounds=None):
    lo, hi = bounds  # (items of a tuple of numbers: numbers)
    return _times(a, g) + lo * g - hi  # (and given on to another function)


class _Scaler:
    def scale(self, a, g):
        return a * g


def given_as_keyword_method_and_partial(g):
    t = 1.0
    while g * t < 10:
        t = t * 2
    return (_bounded(t, g, bounds=(t / 2, t * 3)), _Scaler().scale(t, g),
            functools.partial(_times, t)(g), _times(g, g))


def test_a_carried_float_given_in_a_tuple_to_a_method_or_a_partial_stays_a_python_float():
    for g in (torch.tensor(1.5), torch.tensor(0.3)):
        want = given_as_keyword_method_and_partial(g)
        assert _dtypes(want) == [torch.float32] * 4
        for result in _modes(given_as_keyword_method_and_partial, (g,)):
            assert _dtypes(result) == _dtypes(want), result
            assert [v.item() for v in result] == [v.item() for v in want]


def incremented_under_if(g):
    t = 1.0
    if g > 1:
        t = 8.0
    if g > 0:
        t += 1  # (`kept=`: a tensor would be written back; a number is rebound)
    return t * g


def _incremented(a, g):
    if a > 3:
        a += 1
    return a * g


def incremented_by_a_helper(g):
    t = 1.0
    while g * t < 10:
        t = t * 2
    return _incremented(t, g)


@pytest.mark.parametrize("fn", [incremented_under_if, incremented_by_a_helper])
def test_a_carried_float_updated_in_a_staged_if_stays_a_python_float(fn):
    # under torch.export the stand-in of a slot the `if` updates with `+=` was copied (an
    # operand written back after the statement) and the copy was no longer marked: float64
    # where Python gives float32 (replay and compile were right)
    # (positive `g` only: `incremented_by_a_helper`'s loop never ends for g <= 0, in Python too)
    inputs = [(torch.tensor(1.5),), (torch.tensor(0.3),), (torch.tensor(20.0),)]
    assert all(fn(*args).dtype == torch.float32 for args in inputs)
    assert_same_exactly(fn, inputs)


def test_a_function_given_a_number_keeps_its_plain_converted_source():
    # the twin for numbers is made for the call that gives one; the source autoconv shows
    # (and the twin of calls given tensors only) is the function as written
    autoconv.autoconv(doubled_then_scaled)(torch.tensor(1.5))
    assert "ac.binary" not in autoconv.to_code(_times)
    assert "a * g + 1.0" in autoconv.to_code(_times)

# A Python float in an object's field that a staged statement changes is carried as a float64
# stand-in like a local one: `x + s.h` with a 0-d float32 `x` is float32, as in Python (it was
# float64 on both paths, the untaken one too; tester t15 repro 2).

class _Step:
    def __init__(self, h):
        self.h = h


def step_doubled_in_if(x):
    s = _Step(0.1)
    if x > 0:
        s.h = s.h * 2
    return x + s.h


def test_a_carried_float_in_an_attribute_meets_a_tensor_as_a_python_float():
    inputs = [(torch.tensor(2.0),), (torch.tensor(-0.3),)]
    assert all(step_doubled_in_if(*args).dtype == torch.float32 for args in inputs)
    # (exact: -0.3 + 0.1 in float32; torch.compile refuses an object whose only changed field
    # is a number: tester t15 repro 4, another issue)
    assert_same_exactly(step_doubled_in_if, inputs, compile=False)


def summed_square_roots(x):
    s = 0.0
    while x.sum() > 1:
        x = x * 0.5
        s = s + math.sqrt(float(x.sum()))
    return s


def summed_as_tensors(x):
    s = torch.zeros(())
    while x.sum() > 1:
        x = x * 0.5
        s = s + torch.tensor(float(x.sum()))
    return s


def test_math_and_torch_tensor_of_float_of_a_traced_tensor_are_staged():
    # `math.sqrt(float(t))` of a traced `t` in a staged loop (tester t16 repro 3, an adaptive
    # step control) was refused: math asked the symbolic float for its value
    for fn in (summed_square_roots, summed_as_tensors):
        for x in (torch.tensor([3.0, 4.0]), torch.tensor([30.0, 4.0]), torch.tensor([0.1])):
            want = fn(x)
            for result in _modes(fn, (x,)):
                assert torch.as_tensor(result).dtype == torch.as_tensor(want).dtype or (
                    isinstance(want, float) and result.dtype == torch.float64)
                _assert_within_an_ulp(float(result), float(want))

# A float a loop carries, read by a staged `if` nested in it (adaptive step control), is a Python
# float there too: `t + h` with a float32 `t` stays float32. Under torch.compile the `if`'s
# bodies got `h` as a float64 tensor that no longer stood in for a number, and the branches
# disagreed on `t`'s dtype (tester t16 repro 5).

def step_control(t, t1):
    h = 0.1
    while t < t1:
        if h > 0.05:
            t = t + h
        h = h * float(t1 - t + 1) ** 0.5
    return t, h


def test_a_carried_float_read_by_a_nested_if_stays_a_python_float():
    args = (torch.tensor(0.0), torch.tensor(1.0))
    want_t, want_h = step_control(*args)
    assert want_t.dtype == torch.float32 and type(want_h) is float
    assert want_t.item() == pytest.approx(1.1956965) and want_h == pytest.approx(0.24918030620008963)
    for t, h in _modes(step_control, args):
        assert t.dtype == torch.float32, t
        assert t.item() == want_t.item()
        assert _dtypes(h) == [torch.float64]
        assert float(h) == pytest.approx(want_h, rel=1e-12)


# Floats an object holds (here in a list attribute) that a staged body reads: a call with other
# values makes dynamo recompile with them symbolic (SymFloat), which torch.cond refuses as an
# operand; they are given their values instead (NOTE [symbolic floats held by objects]; tester
# t15 repro 8).

class _Poly:
    def __init__(self, coeffs):
        self.coeffs = coeffs

    def __call__(self, x):
        acc = torch.zeros_like(x)
        for c in self.coeffs:
            acc = acc * x + c
        return acc


def descend(coeffs, x):
    p = _Poly(coeffs)
    it = 0
    while (p(x).abs() > 1e-9).any():
        x = x - 0.01 * p(x)
        it += 1
        if it >= 5:
            break
    return x, it


def test_floats_an_object_holds_stay_numbers_when_compile_makes_them_symbolic():
    calls = [([1.0, 0.0, -2.0], torch.tensor([1.0, -1.0], dtype=torch.float64)),
             ([1.0, -6.0, 11.0, -6.0], torch.tensor([0.0, 3.7], dtype=torch.float64))]
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(descend), fullgraph=True, backend="eager")
    for coeffs, x in calls:
        want_x, want_it = descend(list(coeffs), x)
        given = list(coeffs)
        got_x, got_it = compiled(given, x)
        assert given == coeffs and all(type(c) is float for c in given)
        assert got_x.dtype == torch.float64
        torch.testing.assert_close(got_x, want_x)
        assert int(got_it) == want_it == 5
    torch.testing.assert_close(want_x, torch.tensor([0.2454, 3.5609], dtype=torch.float64),
                               atol=1e-4, rtol=0)
    for got_x, got_it in _modes(descend, calls[1], compile=False):
        torch.testing.assert_close(got_x, want_x)
        assert int(got_it) == 5

# A number given to a function in `*args` / `**kwargs`, or in a field of an object a field holds
# (`s.inner.h`), was not seen by the call (NOTE [numbers given to a function] in
# runtime/calls.py): the function's `hs[0] * g`, `s.inner.h * g` were torch's float64 where
# Python's float keeps a float32 `g` float32 (and the statement's own `s.inner.h * 2` made the
# nested field a plain float64 tensor).

class _Inner:
    def __init__(self, h):
        self.h = h


class _Outer:
    def __init__(self, h):
        self.inner = _Inner(h)


def _read_nested(s, g):
    return s.inner.h * g + 1.0


def nested_field_given(g):
    s = _Outer(0.1)
    if g > 0:
        s.inner.h = s.inner.h * 2
    return _read_nested(s, g)


def _starred(g, *hs, **kw):
    return hs[0] * g + kw["k"] * g - hs[1]


def given_starred(g):
    t = 1.0
    while g * t < 10:
        t = t * 2
    hs = (t, t / 2)
    return _starred(g, *hs, k=t)


class _OuterReading(_Outer):
    def read(self, g):
        return self.inner.h * g + 1.0


def nested_field_of_self(g):
    s = _OuterReading(0.1)
    if g > 0:
        s.inner.h = s.inner.h * 2
    return s.read(g)


# Under torch.compile the call looks at the fields the called code reads by name (dynamo may
# not read every object's `__dict__`); a field's field was not looked at, so `s.inner.h * g`
# ran in the plain twin and was float64 there (README known shapes until session 27).
@pytest.mark.parametrize("fn", [nested_field_given, nested_field_of_self, given_starred])
def test_a_number_in_a_fields_field_or_in_star_args_given_to_a_function(fn):
    # (a negative `g` takes the other branch of the fields' `if`; `given_starred` loops on it)
    inputs = [(torch.tensor(1.5),), (torch.tensor(0.3 if fn is given_starred else -0.3),)]
    assert all(fn(*args).dtype == torch.float32 for args in inputs)
    assert_same_exactly(fn, inputs)


def power_iteration(A, num_iters=1000, tol=1e-10):
    # As tutorials write it: numbers read with `.item()`, `abs` of them in the stopping test.
    v = torch.ones(A.shape[0], dtype=A.dtype)
    v = v / v.norm()
    lam = 0.0
    for i in range(num_iters):
        w = A @ v
        lam_new = (v @ w).item()
        v = w / w.norm()
        if abs(lam_new - lam) < tol * abs(lam_new):
            break
        lam = lam_new
    return lam_new, v, i


def rounded_items(x):
    k = 0.0
    for v in x:
        n = v.item()
        if abs(n) > 1:
            k = k + round(n) + math.floor(n) + math.ceil(n) + round(abs(n), 1)
    return x * k, n


def test_functions_of_numbers_read_from_tensors_are_saved_and_compiled():
    # `abs`, `round`, `math.floor`, `math.ceil` of a number read with `.item()` that a staged
    # statement carries (the converter rewrites its functions: runtime/arithmetic.py) kept Python's
    # function in torch.export's graph, which torch.export.save cannot write ("Failed
    # serializing node abs_3 ... target=operator.abs"); they are tensor ops of its stand-in.
    # Under torch.compile the loop-created `lam_new`, compared by identity with a number kept
    # from a probe, left a dead `operator.is_not` node that made while_loop take the float
    # as an operand ("can only be of (Tensor, int, SymInt)"): numbers are compared by id.
    # (backend="eager": torch 2.13's inductor reads `.item()` in a while_loop body with less
    # than float64 precision, 28 trips for 39 with torch's while_loop alone, no autoconv.)
    d = torch.float64
    assert_same_result(power_iteration, [torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=d)),
                                         torch.diag(torch.tensor([1.0, 1.0, 1.0, 9.0], dtype=d)),
                                         torch.diag(torch.tensor([3.9, 1.0, 2.0, 4.0], dtype=d))])
    assert_same_result(rounded_items, [torch.tensor([1.25, 1.5, 0.5]),
                                       torch.tensor([0.5, -0.25, 3.5]),
                                       torch.tensor([-2.5, -0.75, -1.5])])


def scaled_by_item(x):
    s = x.sum().item()
    return x * abs(s)


def scaled_by_float(x):
    s = float(x.sum())
    n = int(x[0])
    return x * round(abs(s), 2) + abs(n), math.floor(s)


def test_functions_of_numbers_read_from_tensors_outside_any_statement():
    # The same builtins of a number read from a traced tensor that no staged statement carries
    # (an earlier tester: `abs()` of an `.item()` number, torch.export.save failed with
    # "Failed serializing node abs_1 ... target=operator.abs"): a function that calls one counts
    # the names bound from `.item()`, `float(t)`, `int(t)` as numbers (NOTE [numbers read from
    # tensors] in autoconv/converters/numbers.py), so they are tensor ops here too and the
    # arithmetic after them keeps `x`'s float32.
    for fn in (scaled_by_item, scaled_by_float):
        assert_same_result(fn, [torch.tensor([3.0, -4.5]), torch.tensor([1.25, 2.0])],
                           staged=False)
        for got in _modes(fn, (torch.tensor([3.0, -4.5]),)):
            first = got[0] if isinstance(got, tuple) else got
            assert first.dtype == torch.float32, (fn.__name__, got)


def number_over_tensor(x):
    k = float(x[0])
    n = 0
    while x.sum() * n < 40:  # a tensor condition: `k` is carried, a float's stand-in after it
        k = k + 0.1
        n += 1
    y = k / x
    q = k
    q /= x
    return y, q


def test_a_number_divided_by_a_tensor_rounds_as_python_does():
    # Python's `k / x` of a float `k` is torch's `x.__rtruediv__(k)`: `x.reciprocal() * k`,
    # which rounds otherwise than a division in about a quarter of float32 values; a carried
    # `k` was divided (NOTE [a number divided by a tensor] in runtime/arithmetic.py). Found in
    # torch.optim.lbfgs's `3 * (f1 - f2) / (x1 - x2)` with torchmin's float values: the line
    # search's step was 3e-7 off.
    inputs = [(torch.linspace(0.1, 5.0, 200),), (torch.linspace(0.3, 9.0, 200),)]
    assert all(w.dtype == torch.float32 for w in number_over_tensor(*inputs[0]))
    assert_same_exactly(number_over_tensor, inputs)


def length_penalised(x, alpha=0.6):
    step = 0
    while x.sum() < 30:
        x = x * 2
        step += 1
        lp = (5.0 + step) ** alpha  # GNMT's length penalty: a Python float in Python
        y = x[0] / lp
    return y


def scaled_by_a_field(x, cfg):
    step = 0
    while x.sum() < 30:
        x = x * 2
        step += 1
        lr = cfg["lr"] * step
        y = x[0] * lr
    return y


@pytest.mark.parametrize("fn, args", [
    (length_penalised, (torch.tensor([1.1, 0.3, 2.0]),)),
    (length_penalised, (torch.tensor([3.3, 0.7, 0.1]), 0.5)),
    (scaled_by_a_field, (torch.tensor([1.1, 0.3, 2.0]), {"lr": 0.1})),
])
def test_a_number_bound_from_a_carried_one_and_a_parameter_keeps_float32(fn, args):
    # tester20: `lp = step ** alpha` with `alpha` a parameter was read as a plain name, so
    # `x[0] / lp` divided by a 0-d float64 and gave float64 where Python gives float32
    assert fn(*args).dtype == torch.float32
    assert_same_exactly(fn, [args])


# --- a carried Python int past int64's range (NOTE [carried ints past int64] in
# runtime/arithmetic.py): an OverflowError at the user's line, never a wrapped value -----------

def factorial(n):
    f = 1
    i = 1
    while i <= n:
        f = f * i  # README's example: fact(25) wrapped around
        i = i + 1
    return f


def factorial_augmented(n):
    f = 1
    i = 1
    while i <= n:
        f *= i
        i += 1
    return f


def doubled(n):
    f = 1
    i = 0
    while i < n:
        f = f + f
        i += 1
    return f


def powers(x, n):
    f = 3
    i = 0
    while i < n:
        f = f * 3
        x = x * 1.5
        i += 1
    return x, f


def _int_modes(fn, args):
    """fn run on `args`: staged (traced on small values, replayed), exported (traced, saved,
    loaded), compiled."""
    small = tuple(T(2) if isinstance(a, torch.Tensor) and a.dtype == torch.int64 else a
                  for a in args)
    staged = autoconv.autoconv(fn)
    staged(*small)
    program = torch.export.export(Calling(autoconv.convert(fn)), small, strict=False)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    torch._dynamo.reset()
    return [staged, torch.export.load(saved).module(),
            torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")]


T = torch.tensor


@pytest.mark.parametrize("fn, args, last", [
    (factorial, (T(20),), (T(21),)),
    (factorial_augmented, (T(20),), (T(25),)),
    (doubled, (T(62),), (T(63),)),
    (powers, (torch.ones(2), T(38)), (torch.ones(2), T(39))),
], ids=lambda v: getattr(v, "__name__", ""))
def test_a_carried_int_past_int64_raises_where_python_grows(fn, args, last):
    line = fn.__code__.co_firstlineno + 4
    for i, run in enumerate(_int_modes(fn, args)):
        want = fn(*args)
        got = run(*args)
        assert (got[1] if isinstance(want, tuple) else got).item() == (
            want[1] if isinstance(want, tuple) else want)
        assert fn(*last) != 0  # (Python's int grows)
        kind = OverflowError if i == 0 else Exception  # (torch's RuntimeError outside autoconv)
        with pytest.raises(kind, match=rf"numbers.py:{line}: a Python int carried by a staged "
                                       r"statement left int64's range"):
            run(*last)


def test_a_counter_adds_no_check():
    def count(n):
        s = 0
        i = 0
        while i < n:
            i = i + 1
            s += 2
        return s

    concrete = autoconv.autoconv(count).get_concrete_function(T(5))
    assert "_assert_async" not in concrete.code
    for sub in concrete.graph_module.modules():
        assert "_assert_async" not in getattr(sub, "code", "")


# --- tester21: numbers a staged statement makes, read by torch functions ------------------------

def _assert_python_results(fn, inputs, compile=True):
    """`fn` against plain Python on each input, dtypes included: autoconv traced on
    `inputs[0]` and replayed on all, the exported program saved and loaded, and (with
    `compile`) torch.compile(fullgraph=True)."""
    inputs = [args if isinstance(args, tuple) else (args,) for args in inputs]
    expected = [fn(*args) for args in inputs]
    staged = autoconv.autoconv(fn)
    program = torch.export.export(Calling(autoconv.convert(fn)), inputs[0], strict=False)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    loaded = torch.export.load(saved).module()
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    for run in (staged, loaded, compiled) if compile else (staged, loaded):
        for args, want in zip(inputs, expected):
            got = run(*args)
            assert _dtypes(got) == _dtypes(want), (run, args)
            for g, w in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
                torch.testing.assert_close(torch.as_tensor(g), torch.as_tensor(w))
    assert staged.trace_count == 1


def bound_in_both_branches(x):
    if x.sum() > 0:
        m, k, b = 0.5, 3, True
    else:
        m, k, b = 0.25, 4, False
    return torch.tensor(m), x * m, torch.full((2,), m), torch.tensor(k), torch.tensor([k, 1]), \
        torch.tensor(b)


def chosen_by_an_expression(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    m = 10.0 / n if n != 0 else -1.0
    return torch.tensor(m)


def test_a_number_every_branch_binds_is_a_python_number_after_the_if():
    # (tester21 s03) torch.tensor(m) of `m = 0.5` / `m = 0.25` bound in the branches of a tensor
    # `if` was a float64 tensor where Python gives float32, in every mode; `x * m` too under
    # the same shape (NOTE [numbers bound in every branch] in runtime/staging/torch.py)
    both = (torch.tensor([1., 2.]), torch.tensor([-1., -2.]))
    _assert_python_results(bound_in_both_branches, both)
    _assert_python_results(chosen_by_an_expression, both)


def bound_to_a_number_or_a_float64(x):
    if x.sum() > 0:
        m = 0.5
    else:
        m = torch.tensor(0.25, dtype=torch.float64)
    return x * m


def made_from_a_number_or_a_float64(x):
    if x.sum() > 0:
        m = 0.5
    else:
        m = torch.tensor(0.25, dtype=torch.float64)
    return torch.tensor(m)


def test_a_number_on_one_branch_and_a_tensor_on_the_other_keeps_pythons_dtype_or_refuses():
    # `x * m` is float32 on both paths in Python (a 0-d float64 does not raise a float32
    # tensor); torch.tensor(m) is float32 on one and float64 on the other: refused at the
    # line, never one of them on both paths (NOTE [numbers on some paths])
    _assert_python_results(bound_to_a_number_or_a_float64,
                           [torch.tensor([1., 2.]), torch.tensor([-1., -2.])])
    with pytest.raises(StagingError, match="torch.tensor of it"):
        autoconv.autoconv(made_from_a_number_or_a_float64)(torch.tensor([1., 2.]))


def frank_wolfe_step(a, b, c, alpha):
    # (torchjd's MGDAWeighting: a constant step size on two paths, a tensor on the third)
    if c <= a:
        gamma = 1.0
    elif b <= a:
        gamma = 0
    else:
        gamma = (b - a) / (b + c - 2 * a)
    return (1 - gamma) * alpha + gamma


def test_a_number_constant_one_branch_binds_meets_the_tensor_another_binds():
    # (tester50 s01) `gamma` is a float32 tensor after the `if` in every mode, as Python's
    # `(1 - gamma) * alpha` computes. Under torch.compile the float became a float64 tensor
    # and the branches were refused as differing in dtype (NOTE [number constants bound in one
    # branch under dynamo] in runtime/staging/torch.py)
    T = torch.tensor
    alpha = T([0.25, 0.75])
    _assert_python_results(frank_wolfe_step, [(T(1.0), T(2.0), T(3.0), alpha),
                                              (T(1.0), T(2.0), T(0.5), alpha),
                                              (T(1.0), T(0.5), T(3.0), alpha)])


class _Plateau:
    def __init__(self):
        self.bad, self.best, self.lr = 0, torch.tensor(float("inf")), 0.1

    def step(self, metric):
        if metric < self.best:
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.bad > 1:
            self.lr, self.bad = self.lr * 0.5, 0


def stepped_lr(metric):
    s = _Plateau()
    s.best, s.bad = torch.tensor(1.5), 1
    s.step(metric)
    return torch.tensor(s.lr), metric * s.lr


def test_a_field_a_method_changed_under_a_staged_if_is_a_python_float():
    # (tester21 s03) `s.step(m)` at the top level of the function, then torch.tensor(s.lr):
    # float64 where Python's float makes float32. (Under torch.compile the method's second
    # `if` on a field its first one changed is refused: README, "State in objects".)
    _assert_python_results(stepped_lr, [torch.tensor(2.0), torch.tensor(1.0)], compile=False)


def halved_lrs(losses):
    lr = 0.1
    lrs = []
    for loss in losses:
        if loss > 1.0:
            lr = lr * 0.5
        lrs.append(lr)
    return torch.tensor(lrs)


def counted_ints(losses):
    n = 0
    ns = []
    for loss in losses:
        if loss > 1.0:
            n += 1
        ns.append(n)
    return torch.tensor(ns)


def test_torch_tensor_of_a_list_of_carried_numbers_has_pythons_dtype():
    # (tester21 s09) float64 under torch.compile; torch's "data is not allocated" elsewhere
    inputs = [torch.tensor([2.0, 0.5, 3.0]), torch.tensor([0.5, 0.5, 0.2]),
              torch.tensor([2.0, 2.0, 2.0])]
    _assert_python_results(halved_lrs, inputs)
    _assert_python_results(counted_ints, inputs)


def max_of_an_int_and_a_float(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    return torch.tensor(max(n, 0.5)) * 3


def max_of_floats(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    return torch.tensor(max(float(n), 0.5)) * 3, torch.tensor(min(n, 1))


def test_min_max_of_an_int_and_a_float_the_graph_chooses_is_refused():
    # (tester21 s10) Python's max returns the argument itself: the int n where it wins (int64)
    # and 0.5 elsewhere; the graph gave a float on every path
    with pytest.raises(StagingError, match=r"test_numbers.py:\d+.*Python float and a Python "
                                           r"int.*float\(\.\.\.\)"):
        autoconv.autoconv(max_of_an_int_and_a_float)(torch.tensor([1., 1.]))
    _assert_python_results(max_of_floats, [torch.tensor([1., 1.]), torch.tensor([-1., -1.])])


def divided_in_a_try(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    try:
        m = 10.0 / n
    except ZeroDivisionError:
        m = -1.0
    return torch.tensor(m), x * m


def floor_divided_in_a_try(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    try:
        q = 10 // n + int(math.sqrt(n - 1))
    except (ArithmeticError, ValueError):
        return torch.tensor(-1)
    return torch.tensor(q)


def divided_in_a_longer_try(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    try:
        m = 10.0 / n
        m = m * 2
    except ZeroDivisionError:
        m = -1.0
    return torch.tensor(m)


def test_a_try_around_a_value_the_graph_checks_runs_the_handler_where_python_does():
    # (tester21 s05) ZeroDivisionError escaped the try in replay; torch.export's program raised
    # RuntimeError where Python runs the handler (NOTE [a try around a value the graph checks]
    # in runtime/fallible.py)
    inputs = [torch.tensor([1., 2.]), torch.tensor([-1., -2.]), torch.tensor([1., -2.])]
    _assert_python_results(divided_in_a_try, inputs)
    _assert_python_results(floor_divided_in_a_try, inputs)


def divided_in_a_try_whose_handler_reads_it(x):
    n = 0
    m = 5.0
    for v in x:
        if v > 0:
            n += 1
    try:
        m = 10.0 / n
        m = m * 2
    except ZeroDivisionError:
        m = m - 1.0
    return torch.tensor(m)


def test_any_other_try_around_a_graph_check_is_refused_at_the_check():
    # (the handler reads `m`, which Python's failing division left as it was)
    fn = divided_in_a_try_whose_handler_reads_it
    line = fn.__code__.co_firstlineno + 7
    with pytest.raises(StagingError, match=rf"test_numbers.py:{line}: .*ZeroDivisionError.*"
                                           r"except ZeroDivisionError:"):
        autoconv.autoconv(fn)(torch.tensor([1., 2.]))
    with pytest.raises(StagingError, match="except ZeroDivisionError:"):
        torch.export.export(Calling(autoconv.convert(fn)), (torch.tensor([1., 2.]),),
                            strict=False)


def safe_ratio(a, b):
    try:
        return a.item() / b.item()
    except ZeroDivisionError:
        return 0.0


def ratio_of_sums_in_a_helper(x, y):
    return torch.tensor(safe_ratio(x.sum(), y.sum()))


def ratios_in_a_loop(x, y):
    tot = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0:
            tot += safe_ratio(x[i], y[i])
    return torch.tensor(tot)


_RATIOS = [(torch.tensor([1., 2.]), torch.tensor([2., 2.])),
           (torch.tensor([1., 2.]), torch.tensor([0., 0.])),
           (torch.tensor([-1., 2.]), torch.tensor([1., 0.]))]


def test_a_helpers_try_around_a_division_of_items_runs_the_handler():
    # (tester22 s10) `try: return a.item() / b.item()` was Python's division of two symbols
    # in the graph, which raised ZeroDivisionError out of it (replay on other inputs, export,
    # compile) where Python returns the handler's 0.0; replay refused the helper's float given
    # to torch.tensor, and the handler's float was float64 there (NOTE [a user's function's
    # result given to a module's function] in autoconv/converters/numbers.py)
    _assert_python_results(ratio_of_sums_in_a_helper, _RATIOS)
    # Inside a staged loop's body torch.compile cannot stage the handler's path: refused at
    # the try with what to write instead (NOTE [a staged try under dynamo])
    _assert_python_results(ratios_in_a_loop, _RATIOS, compile=False)
    line = safe_ratio.__code__.co_firstlineno + 2
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(ratios_in_a_loop), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match=rf"test_numbers.py:{line}: .*if n != 0 else"):
        compiled(*_RATIOS[0])


def picked_in_a_helper(a):
    if a.sum() > 0:
        r = 1.5
    else:
        r = 2.5
    return r


def tensor_of_a_helpers_float(x):
    return torch.tensor(picked_in_a_helper(x)), x * picked_in_a_helper(x)


def test_a_helpers_float_given_to_torch_tensor_is_pythons_float():
    # it was float64 (the staged `if`'s stand-in) where Python's float makes float32
    _assert_python_results(tensor_of_a_helpers_float, [torch.tensor([1.]), torch.tensor([-1.])])


def first_positive(x):
    try:
        first = x[x > 0][0].item()
    except IndexError:
        first = -1.0
    return torch.tensor(first)


def last_positive_row(x):
    try:
        row = x[x[:, 0] > 0][-1]
    except LookupError:
        row = torch.zeros(2)
    return row


def second_positive(x):
    try:
        second = x[x > 0][1]
    except IndexError:
        second = torch.tensor(-1.0)
    return second * 2


def test_a_try_around_a_row_of_a_data_dependent_length_runs_the_handler():
    # (tester22 s11) replay raised IndexError, export and compile torch's "Runtime assertion
    # failed for expression u0 >= 1" where Python runs the handler (NOTE [a row of a tensor of
    # data-dependent length in a try] in runtime/subscripts.py)
    _assert_python_results(first_positive, [torch.tensor([-1., 2.]), torch.tensor([-1., -2.]),
                                            torch.tensor([3., 2.])])
    _assert_python_results(last_positive_row, [torch.tensor([[1., 2.], [3., 4.]]),
                                               torch.tensor([[-1., 2.], [-3., 4.]]),
                                               torch.tensor([[-1., 2.], [3., 5.]])])
    _assert_python_results(second_positive, [torch.tensor([1., 2., 3.]),
                                             torch.tensor([1., -2., -3.]),
                                             torch.tensor([-1., -2., -3.])])


def divmod_and_round_of_items(x):
    tot = 0
    out = torch.zeros(())
    for v in x:
        q, r = divmod(int(v), 3)
        if r == 0:
            tot += q
        h = round(float(v) / 7, 1)
        if h > 0.5:
            out = out + h
    k = round(float(x.sum()) / 7, 2)
    return torch.tensor(tot), out, x * k, torch.tensor([q, r]), torch.tensor(k)


def test_divmod_and_round_of_numbers_read_from_tensors():
    # (tester21 s07) divmod(int(v), 3): SymInt has no divmod; (s08) round(float(v), 1) left
    # Python's round in the graph, which torch.export.save could not write
    _assert_python_results(divmod_and_round_of_items,
                           [torch.tensor([3, 4, 9]), torch.tensor([1, 6, 2])])


def filled_with_a_branch_number(x):
    if x.sum() > 0:
        n = 3
    else:
        n = 2
    return torch.full_like(x, n), torch.scalar_tensor(n), torch.full_like(x, n * 0.5)


def test_fill_value_of_a_carried_number():
    # (tester21b s22) torch.compile: dynamo read the 0-d stand-in with .item() into an unbacked
    # symbol no output holds (PendingUnbackedSymbolNotFound; NOTE [a number's stand-in as a fill
    # value] in runtime/arithmetic.py)
    _assert_python_results(filled_with_a_branch_number,
                           [torch.tensor([1., 2.]), torch.tensor([-1., -2.])])


def tensor_of_an_int_read_from_a_tensor(x):
    k = int(x.argmax())
    s = x.max().item()
    return torch.tensor(k), torch.tensor(s), x[k]


def test_torch_tensor_of_a_number_read_from_a_tensor():
    # (tester21b s23) autoconv's own trace refused `torch.tensor(k)` of `k = int(t)` (torch.tensor
    # asks a symbolic int for its value under make_fx), where export and compile took it
    _assert_python_results(tensor_of_an_int_read_from_a_tensor,
                           [torch.tensor([1., 2.]), torch.tensor([3., -2.])])


class _Best:
    def __init__(self):
        self.best = 100.0


def best_field_from_float(x):
    s = _Best()
    if x[0] < s.best:
        s.best = float(x[0])
    return torch.tensor(s.best)


class _Stopper:
    def __init__(self):
        self.best = float("inf")
        self.bad = 0

    def step(self, loss):
        if loss < self.best:
            self.best = float(loss)
            self.bad = 0
        else:
            self.bad += 1


def early_stopping(x):
    tr = _Stopper()
    for v in x:
        tr.step(v)
    return torch.tensor(tr.best), torch.tensor(tr.bad)


def test_a_float_field_set_from_float_of_a_tensor_under_a_staged_if():
    # (tester21b s05) the field's tensor made of float(t) read as a tensor on that path, and the
    # statement was refused as a number on one path and a tensor on another
    _assert_python_results(best_field_from_float, [torch.tensor([3., 2.]), torch.tensor([300., 2.])])
    _assert_python_results(early_stopping, [torch.tensor([3., 2., 4., 1.]),
                                            torch.tensor([1., 2., 3., 4.])])


class _Meter:
    def __init__(self):
        self.vals = []
        self.total = 0.0
        self.count = 0

    def update(self, v):
        self.total += float(v)
        self.count += 1


def metered(x):
    m = _Meter()
    for v in x:
        if v > 0:
            m.update(v)
    return x * m.total, torch.tensor(m.count)


def test_a_method_updating_number_fields_under_a_staged_if_in_a_loop():
    # (tester21b s09) torch.compile: `self.total += v` updated the field's stand-in in place, no
    # probe saw the object change, and dynamo refused the write inside torch.cond ("HOP: Unsafe
    # side effect"; NOTE [fields updated by a method] in the control-flow converter)
    _assert_python_results(metered, [torch.tensor([1., -2., 4.]), torch.tensor([-1., -2., -3.])])


def reciprocals_in_a_try(x):
    acc = 0.0
    for v in x:
        n = int(v)
        try:
            r = 1.0 / n
        except ZeroDivisionError:
            r = 0.0
        acc += r
    return x * acc


def divided_in_a_try_in_a_branch(x):
    n = 0
    for v in x:
        if v > 0:
            n += 1
    if x.sum() > 0:
        try:
            r = 4.0 / n
        except ZeroDivisionError:
            r = 0.0
    else:
        r = -1.0
    return x * r


def test_a_try_around_a_division_in_a_staged_body():
    # (tester21b s20) `1.0 / int(v)` in a staged loop: the symbolic int's own division raised out
    # of the graph where Python runs the handler. Under torch.compile the try in an operator's
    # body is refused at the try (NOTE [a staged try under dynamo] in runtime/fallible.py): dynamo
    # refused the write that collects the check (torch's "HOP: Unsafe side effect")
    loop_inputs = [torch.tensor([4., 5., 2.]), torch.tensor([1., 0., 2.])]
    branch_inputs = [torch.tensor([1., 2.]), torch.tensor([-1., -2.]), torch.tensor([-1., 0.5])]
    _assert_python_results(reciprocals_in_a_try, loop_inputs, compile=False)
    _assert_python_results(divided_in_a_try_in_a_branch, branch_inputs, compile=False)
    for fn, inputs, line in ((reciprocals_in_a_try, loop_inputs, 5),
                             (divided_in_a_try_in_a_branch, branch_inputs, 7)):
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
        at = fn.__code__.co_firstlineno + line
        with pytest.raises(StagingError, match=rf"test_numbers.py:{at}: .*try statement.*"
                                               r"if n != 0 else"):
            compiled(inputs[0])


# --- tester21b: numbers read back from carried lists and helpers ---------------------------------
# NOTE [items of carried lists] in autoconv/converters/numbers.py, NOTE [sums of numbers] in
# runtime/builtins.py: each was a float64 tensor where Python's float makes float32.

def sum_of_grown_floats(x):
    vals = []
    n = 0
    while n < x.shape[0] and x[n] < 10:
        vals.append(x[n].item() * 0.5)
        n += 1
    return torch.tensor(sum(vals)), x * sum(vals)


def items_of_grown_floats(x):
    lr = 1.0
    lrs = []
    for v in x:
        if v > 0:
            lr = lr * 0.5
        lrs.append(lr)
    last = lrs[-1]
    return (torch.tensor(min(lrs)), torch.tensor(max(lrs)), torch.tensor(lrs[-1]),
            torch.tensor(lrs[0] + 1.0), torch.arange(3) * lrs[-1], torch.tensor(last),
            torch.tensor(max(lrs, default=0.0)))


def _last_of(xs):
    return xs[-1]


def iterated_grown_floats(x):
    lr = 1.0
    lrs = []
    for v in x:
        if v > 0:
            lr = lr * 0.5
        lrs.append(lr)
    out = []
    for lr_ in lrs:
        out.append(torch.tensor(lr_))
    for i, lr_ in enumerate(lrs):
        out.append(torch.arange(2) * lr_)
    return out[0], out[-1], torch.tensor(_last_of(lrs))


def _average(t, n):
    return t / n


def averaged_by_a_helper(x):
    total = 0.0
    n = 1
    for v in x:
        if v > 0:
            total += float(v)
            n += 1
    mean = _average(total, n)
    return torch.tensor(_average(total, n)), torch.tensor(mean), torch.arange(2) * mean


class _AverageMeter:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def add(self, v):
        self.total += v
        self.count += 1

    def avg(self):
        return self.total / max(self.count, 1)


def averaged_by_a_method(x):
    m = _AverageMeter()
    for v in x:
        if v > 0:
            m.add(float(v))
    return torch.tensor(m.avg()), torch.arange(2) * m.avg()


def sum_of_a_branch_list(x):
    if x.sum() > 0:
        ws = [0.25, 0.75]
    else:
        ws = [1.0]
    return torch.tensor(sum(ws)), torch.arange(3) * sum(ws), torch.tensor(sum(ws, 1))


def sums_of_carried_numbers(x):
    a = 0.0
    b = 1
    for v in x:
        if v > 0:
            a += 0.5
            b += 1
    return torch.tensor(sum([a, b])), torch.tensor(sum([b, b])), torch.tensor(sum([b], 0.5))


def greedy_decode(logits):
    toks = []
    scores = []
    for t in range(logits.shape[0]):
        p = logits[t].softmax(-1)
        tok = p.argmax()
        if tok.item() == 0:
            break
        toks.append(tok.item())
        scores.append(p.max().item())
    if len(toks) == 0:
        return torch.zeros(0, dtype=torch.long), torch.tensor(0.0)
    return torch.tensor(toks), torch.tensor(sum(scores) / len(scores))


def counted_ints_read_back(x):
    counts = []
    for v in x:
        if v > 0:
            counts.append(int(v))
    return torch.tensor(sum(counts)), torch.tensor(len(counts)), torch.full((2,), len(counts))


def test_sum_min_max_and_items_of_a_grown_float_list_are_python_floats():
    # (tester21b s01, s06) float64 in every mode
    _assert_python_results(sum_of_grown_floats, [torch.tensor([1., 2., 30., 4.]),
                                                 torch.tensor([1., 2., 3., 4.])])
    _assert_python_results(items_of_grown_floats, [torch.tensor([1., -1., 2.]),
                                                   torch.tensor([-1., -1., -2.])])
    _assert_python_results(iterated_grown_floats, [torch.tensor([1., -1., 2.]),
                                                   torch.tensor([-1., -1., -2.])])


def test_a_float_a_helper_returns_from_carried_numbers_is_a_python_float():
    # (tester21b s07) torch.tensor(avg(total, n)) was float64 where `total / n` inline was right
    inputs = [torch.tensor([1., -2., 3.5]), torch.tensor([2., -3., -4.]),
              torch.tensor([-2., -3., -4.])]
    _assert_python_results(averaged_by_a_helper, inputs)
    # (under torch.compile a field a method changes under a staged `if` is torch's refusal:
    # README, "State in objects")
    _assert_python_results(averaged_by_a_method, inputs, compile=False)


def test_sum_of_a_list_of_numbers_is_a_python_number():
    # (tester21b s08) sum(ws) of a list bound in a staged `if`'s branches: float64
    both = [torch.tensor([1., 2.]), torch.tensor([-1., -2.])]
    _assert_python_results(sum_of_a_branch_list, both)
    _assert_python_results(sums_of_carried_numbers, [torch.tensor([1., -1., 2.]),
                                                     torch.tensor([-1., -1., -2.])])
    _assert_python_results(counted_ints_read_back, [torch.tensor([1., -1., 2.]),
                                                    torch.tensor([-1., -1., -2.])])


def test_a_greedy_decoders_mean_score_is_float32_on_every_path():
    # (tester21b s24) float64 on the traced path (another value: 0.8319129546 for Python's
    # float32 0.8319129348), and the two returns' dtypes differed: torch.export specialised
    # the graph, torch.compile refused it
    _assert_python_results(greedy_decode, [
        torch.tensor([[0., 2., 1.], [0., 1., 3.], [5., 0., 0.]]),
        torch.tensor([[3., 2., 1.], [0., 1., 3.], [5., 0., 0.]]),
        torch.tensor([[0., 2., 1.], [0., 1., 3.], [0., 5., 0.]])])


def full_of_branch_ints(x):
    n = 1
    a = 2
    while x.sum() > n:
        n = n * 2
    if x.sum() > 0:
        a = 5
    if x.sum() > 0:
        k, flag = 3, True
    else:
        k, flag = 4, False
    return (torch.full((2,), n), torch.full((2,), max(a, 3)), torch.full((2,), 0.5 * n),
            torch.full((2,), k), torch.full((2,), flag), torch.full((2,), fill_value=k))


def test_torch_full_of_a_carried_int_is_int64_under_compile_too():
    # (tester21b s03) torch.compile gave [3.0, 3.0] float32: dynamo reads a 0-d tensor's fill
    # as the default float
    _assert_python_results(full_of_branch_ints, [torch.tensor([1., 5., 2.]),
                                                 torch.tensor([-1., -1., -2.])])


# --- tester22: numbers of grown lists read in a caller, inline concatenations, and / or ---------

def _positives_until_zero(x):
    vals = []
    i = 0
    while x[i] != 0:
        vals.append(float(x[i]))
        i += 1
    return vals


def floats_grown_in_a_helper(x):
    vals = _positives_until_zero(x)
    return (torch.tensor(sum(vals)), torch.tensor(max(vals, default=0.0)),
            torch.tensor(vals[0] if len(vals) > 0 else 0.0), torch.tensor(sum(vals.copy())))


def _mean(v):
    return sum(v) / len(v) if len(v) > 0 else 0.0


def mean_of_grown_floats_in_a_helper(x):
    vals = []
    i = 0
    while x[i] != 0:
        vals.append(float(x[i]))
        i += 1
    return torch.tensor(_mean(vals))


def sums_of_grown_floats_concatenated_inline(x):
    vals = []
    i = 0
    while x[i] != 0:
        vals.append(float(x[i]))
        i += 1
    return torch.tensor(sum(vals + [2.0])), torch.tensor(min(vals + [9.0]))


def and_or_of_carried_floats(x):
    vals = _positives_until_zero(x)
    last = len(vals) > 0 and vals[-1] or -1.0
    return torch.tensor(last)


_NONEMPTY = [(T([3., 0., 2., 0., 5.]),), (T([-1., 4., 0., 0., 0.]),)]


@pytest.mark.parametrize("fn, inputs", [
    (floats_grown_in_a_helper, _NONEMPTY),
    (mean_of_grown_floats_in_a_helper, _NONEMPTY + [(T([0., 4., 0., 0., 0.]),)]),
    (sums_of_grown_floats_concatenated_inline, _NONEMPTY + [(T([0., 4., 0., 0., 0.]),)]),
    (and_or_of_carried_floats, _NONEMPTY + [(T([0., 4., 0., 0., 0.]),)]),
])
def test_numbers_of_grown_float_lists_keep_python_dtypes_in_every_mode(fn, inputs):
    # a list grown in a helper and returned, given to a helper, concatenated inline, and and/or
    # of its items: float64 (or refused) where Python's floats make float32 (tester22 s03, s06,
    # s08, s13). Traced on the first input, the others take other paths.
    first = autoconv.autoconv(fn)
    converted = autoconv.convert(fn)
    program = torch.export.export(Calling(converted), inputs[0], strict=False)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    loaded = torch.export.load(saved).module()
    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True, backend="eager")
    for args in inputs:
        want = fn(*args)
        for got in (first(*args), loaded(*args), compiled(*args)):
            assert [float(v) for v in pytree.tree_leaves(got)] == [
                float(v) for v in pytree.tree_leaves(want)]
            assert _dtypes(got) == _dtypes(want)


def min_of_grown_floats_with_an_int_default(x):
    vals = _positives_until_zero(x)
    return torch.tensor(min(vals, default=7))


def test_min_of_grown_floats_with_a_default_of_another_kind_is_refused_at_the_line():
    # Python gives the int 7 where the list is empty and a float elsewhere (tester22 s06: 7.0)
    with pytest.raises(StagingError, match=r"default=float\(\.\.\.\)") as caught:
        autoconv.autoconv(min_of_grown_floats_with_an_int_default)(T([3., 0., 1.]))
    assert "test_numbers.py" in str(caught.value)


# NOTE [numbers of two kinds] in runtime/augmented.py: a number that is an int (or a bool) on
# some paths of a staged statement and a float on others is a float64 in the graph on every
# path. Where its kind is seen the use is refused at its line, naming it (or, where the value
# knows its paths, raises on the paths of the other kind only); elsewhere it works. Each
# input below takes another path than the first.

def _refused_in_every_mode(fn, inputs, match):
    """`fn` converted raises a StagingError matching `match` at this file's line, traced on
    each input, in autoconv's trace, torch.export and torch.compile."""
    converted = autoconv.convert(fn)
    for args in inputs:
        with pytest.raises(StagingError, match=match) as caught:
            autoconv.autoconv(fn)(*args)
        assert "test_numbers.py" in str(caught.value)
        with pytest.raises(StagingError, match=match):
            torch.export.export(Calling(converted), args, strict=False)
        torch._dynamo.reset()
        with pytest.raises(StagingError, match=match):
            torch.compile(converted, fullgraph=True, backend="eager")(*args)


def int_or_half(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    return torch.tensor(k)


def one_or_half(x):
    if x.sum() > 0:
        m = 1
    else:
        m = 0.5
    return torch.tensor(m)


def int_or_half_plus_one(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    j = k + 1
    return torch.tensor(j)


def int_tensor_times_int_or_half(x):
    k = 1
    if x.sum() > 0:
        k = 0.5
    return torch.arange(3) * k


def type_of_int_or_half(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    return x * (1.0 if type(k) is float else 2.0)


def text_of_int_or_half(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    print(f"k={k}")
    return x * k


def _right_here_raising_there(fn, right, raising, match):
    """`fn` converted, traced (or exported, compiled) on each input: Python's result on
    `right`, and on `raising` (where Python's number is of the kind the graph cannot give) a
    RuntimeError matching `match` at this file's line."""
    converted = autoconv.convert(fn)
    want = fn(*right)
    for first in (right, raising):
        saved = io.BytesIO()
        torch.export.save(torch.export.export(Calling(converted), first, strict=False), saved)
        saved.seek(0)
        torch._dynamo.reset()
        for run in (autoconv.autoconv(fn), torch.export.load(saved).module(),
                    torch.compile(converted, fullgraph=True, backend="eager")):
            if first is raising:
                run(*right)  # (dynamo's first call traces; compile on the other input)
            with pytest.raises(RuntimeError, match=match) as caught:
                run(*raising)
            assert "test_numbers.py" in str(caught.value)
            got = run(*right)
            assert got.dtype == want.dtype and torch.equal(got, want), (run, got, want)


_TWO_PATHS = [(T([1.0, 3.0]),), (T([-5.0, -3.0]),)]


@pytest.mark.parametrize("fn, shown", [
    (int_or_half, r"torch\.tensor\(\) of it shows the kind: torch\.int64 where it is an int "
                  r"and torch\.float32 where it is a float"),
    (int_or_half_plus_one, r"torch\.tensor\(\) of it"),
    (int_tensor_times_int_or_half, r"`\*` with a torch\.int64 tensor"),
    (type_of_int_or_half, r"type\(\) shows the kind"),
    (text_of_int_or_half, r"text of it shows the kind: '1' where it is an int and '1\.0'"),
])
def test_an_int_on_some_paths_and_a_float_on_others_is_refused_where_its_kind_shows(fn, shown):
    # (README "Known shapes": `k = 0; if c: k = 0.5`, then torch.tensor(k) was float32 where
    # Python gives int64 on the int paths)
    _refused_in_every_mode(fn, _TWO_PATHS, rf"'k' is an int on some paths and a float on "
                                           rf"others.*{shown}.*`k = 0\.0` rather than `k = 0`")


def test_a_number_bound_to_an_int_in_one_branch_and_a_float_in_the_other_is_refused():
    converted = autoconv.convert(one_or_half)
    for args in _TWO_PATHS:
        with pytest.raises(StagingError, match=r"'m' is an int on some paths and a float on "
                           r"others.*torch\.tensor\(\) of it"):
            autoconv.autoconv(one_or_half)(*args)
        with pytest.raises(StagingError, match=r"'m' is an int on some paths"):
            torch.export.export(Calling(converted), args, strict=False)
        # (torch.compile refuses the if itself: 'm' is an int64 in one branch, a float64 in
        # the other)
        torch._dynamo.reset()
        with pytest.raises(StagingError, match=r"'m'"):
            torch.compile(converted, fullgraph=True, backend="eager")(*args)


def int_or_half_where_its_kind_does_not_show(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    j = k + 1
    shown = isinstance(k, (int, float))
    print(f"k={k:.2f}")
    return (x * k + x * j, torch.tensor(k * 0.5), torch.tensor(k / 2), x.sum() > k,
            torch.tensor(shown))


def test_an_int_on_some_paths_and_a_float_on_others_works_where_its_kind_does_not_show():
    assert_same_exactly(int_or_half_where_its_kind_does_not_show, _TWO_PATHS)


def bool_and_float(x):
    n = 0
    h = 0.0
    while x.sum() > n:
        n += 1
        h = h + 0.5
    b = n > 1 and h
    return torch.tensor(b)


def last_or_false(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(float(v))
    b = len(vals) > 0 and vals[-1]
    return torch.tensor(b)


@pytest.mark.parametrize("fn", [bool_and_float, last_or_false])
def test_and_of_a_carried_bool_and_a_float_raises_where_it_is_the_bool(fn):
    # (README "Known shapes": `n > 1 and h` was 0.0 where Python gives False)
    _right_here_raising_there(fn, (T([3.0, 1.0]),), (T([-0.5, -1.0]),),
                              r"the value of an `and` is a bool on some paths and a float on "
                              r"others.*torch\.tensor\(\) of it.*here it is a bool.*"
                              r"`h if n > 1 else 0\.0`")


def bool_and_float_as_a_test(x):
    n = 0
    h = 0.0
    while x.sum() > n:
        n += 1
        h = h + 0.5
    if n > 1 and h:
        return x * 2
    return x


def test_and_of_a_carried_bool_and_a_float_as_a_condition_is_staged():
    assert_same_exactly(bool_and_float_as_a_test, [(T([0.5, -1.0]),), (T([3.0, 1.0]),)])


def item_of_ints_and_floats(x):
    k = int(x.argmax())
    return torch.tensor([1, 0.5, 2][k])


def items_of_one_kind(x):
    k = int(x.argmax())
    w = [0.25, 0.5, 2.0][k]
    return torch.tensor([0.25, 0.5, 2.0][k]), torch.tensor(w), torch.tensor([1, 3, 2][k])


_THREE_PATHS = [(T([1.0, 3.0, 2.0]),), (T([5.0, 3.0, 2.0]),), (T([1.0, 3.0, 5.0]),)]


def test_an_item_of_a_list_of_ints_and_floats_chosen_by_a_traced_int_raises_for_an_int():
    # (README "Known shapes": `[1, 0.5, 2][k]` was a float64 on every path)
    _right_here_raising_there(item_of_ints_and_floats, (T([1.0, 3.0, 2.0]),),
                              (T([5.0, 3.0, 2.0]),),
                              r"the item of a list of floats and ints chosen by a traced "
                              r"index is an int on some paths and a float on others.*here it "
                              r"is an int")


def test_an_item_of_a_list_of_one_kind_chosen_by_a_traced_int_has_python_s_dtype():
    # (the floats were float64 where Python's float gives float32)
    assert_same_exactly(items_of_one_kind, _THREE_PATHS)


def sum_of_floats_grown_or_none(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(float(v))
    return torch.tensor(sum(vals))


def sum_of_grown_floats_from_a_float(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(float(v))
    return torch.tensor(sum(vals, 0.0)), x * sum(vals)


def test_sum_of_grown_floats_raises_where_the_list_stays_empty():
    # (README "Known shapes": 0.0 where Python's sum of an empty list is the int 0)
    _right_here_raising_there(sum_of_floats_grown_or_none, (T([1.0, 3.0]),),
                              (T([-5.0, -3.0]),),
                              r"sum\(vals\), of a list grown under tensor control flow that "
                              r"may stay empty, is an int on some paths.*here it is an int.*"
                              r"`sum\(vals, 0\.0\)`")
    assert_same_exactly(sum_of_grown_floats_from_a_float, _TWO_PATHS)


def _grown_floats(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(float(v))
    return vals


def first_grown_float(x):
    v = _grown_floats(x)
    return torch.tensor(v[0])


def test_an_item_of_a_list_a_helper_grew_read_by_index_is_a_python_float():
    # (README "Known shapes": float64 where Python's float gives float32)
    assert_same_exactly(first_grown_float, [(T([1.0, 3.0]),), (T([-5.0, 3.0]),)])


def int_then_floats_read(x):
    total = 0
    for v in x:
        if v > 0:
            total += float(v)
    return torch.tensor(total)


def int_then_floats_read_times_x(x):
    total = 0
    for v in x:
        if v > 0:
            total = total + float(v)
    return x * total


def test_an_int_a_loop_adds_floats_read_from_a_tensor_to_is_of_two_kinds():
    # (README "Known shapes": `total` was a float32 tensor on every path, `torch.tensor(total)`
    # float32 where Python's no-trip `0` gives int64; its sums were float32 ones)
    converted = autoconv.convert(int_then_floats_read)
    for args in _TWO_PATHS:
        with pytest.raises(StagingError, match=r"'total' is an int on some paths and a float "
                           r"on others.*torch\.tensor\(\) of it") as caught:
            autoconv.autoconv(int_then_floats_read)(*args)
        assert "test_numbers.py" in str(caught.value)
        with pytest.raises(StagingError, match=r"'total' is an int on some paths"):
            torch.export.export(Calling(converted), args, strict=False)
        # (torch.compile refuses the loop itself: an int that becomes a float)
        torch._dynamo.reset()
        with pytest.raises(StagingError, match=r"'total' is a Python int before the loop"):
            torch.compile(converted, fullgraph=True, backend="eager")(*args)
    # where the kind does not show, the sum is Python's float64 one of the float32 items
    assert_same_exactly(int_then_floats_read_times_x,
                        [(T([0.1, 0.2, 0.7, 0.3]),), (T([-5.0, -3.0, -1.0, -2.0]),)],
                        compile=False)


def returns_int_or_half(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    return x + 1, k


def indexes_with_int_or_half(x):
    k = 1
    if x.sum() > 0:
        k = 0.5
    return x[k]


def sizes_with_int_or_half(x):
    k = 1
    if x.sum() > 0:
        k = 0.5
    return torch.zeros(k) + x.view(k, -1).sum()


def counts_with_int_or_half(x):
    k = 1
    if x.sum() > 0:
        k = 0.5
    s = x[0]
    for i in range(k):
        s = s + x[i]
    return s


@pytest.mark.parametrize("fn, shown", [
    (returns_int_or_half, r"returning it from the function shows the kind: the result is a "
                          r"0-d tensor of its Python dtype: torch\.int64 where it is an int and "
                          r"torch\.float64 where it is a float.*`k = 0\.0`"),
    (indexes_with_int_or_half, r"indexing with it shows the kind: an int counts and a float "
                               r"raises TypeError.*an int where it is bound"),
    (sizes_with_int_or_half, r"torch\.zeros\(\) of it shows the kind.*an int where it is bound"),
    (counts_with_int_or_half, r"range\(\) of it shows the kind.*an int where it is bound"),
])
def test_a_number_of_two_kinds_returned_or_used_as_an_index_or_size_is_refused(fn, shown):
    # (README "Known shapes": returned, it was a float64 0-d tensor on the int paths too; as an
    # index or size, torch's own error without the line or the name)
    _refused_in_every_mode(fn, _TWO_PATHS, rf"'k' is an int on some paths and a float on "
                                           rf"others.*{shown}")


def _int_or_half_of(x):
    k = 0
    if x.sum() > 0:
        k = 0.5
    return k


def scaled_by_a_helpers_int_or_half(x):
    return x * _int_or_half_of(x)


def test_a_helper_returning_a_number_of_two_kinds_to_its_caller_is_not_refused():
    assert_same_exactly(scaled_by_a_helpers_int_or_half, _TWO_PATHS)


# --- lead26: numbers a tensor `if` chose, appended to a list a staged `while` grows ---------

def _appended_choices(x, first):
    vals = []
    i = 0
    while x[i] > -5:
        k = first
        if x[i] < 0:
            k = 0.5
        vals.append(k)
        i += 1
    return vals


def last_of_float_choices(x):
    vals = _appended_choices(x, 0.0)
    return torch.tensor(vals[-1]), torch.tensor(sum(vals)), x * vals[0]


def last_of_int_or_half_choices(x):
    vals = _appended_choices(x, 0)
    return torch.tensor(vals[-1])


_CHOICE_INPUTS = [(T([1., -1., 2., -9.]),), (T([1., 2., -3., -9.]),), (T([-1., -9., 3., 4.]),),
                  (T([2., -9., 1., 1.]),)]


def test_floats_a_tensor_if_chose_appended_in_a_staged_while_stay_python_floats():
    # the loop's types-only probe ran the `if` and left its float an unmarked tensor, so the
    # list was grown as a list of tensors: float64 where Python's float gives float32
    assert_same_exactly(last_of_float_choices, _CHOICE_INPUTS)


def test_a_number_of_two_kinds_appended_to_a_list_a_staged_while_grows_is_refused():
    # (float64 0-d tensors on every path, then float32: Python's int gives int64; the items of
    # the list's buffer keep one dtype and not their kinds)
    line = _appended_choices.__code__.co_firstlineno + 7
    _refused_in_every_mode(last_of_int_or_half_choices, _CHOICE_INPUTS[:2],
                           rf"test_numbers.py:{line}: .*'k' is an int on some paths and a float "
                           rf"on others.*appending it to 'vals'")


# A variable that is a Python float in one branch of a tensor `if` and a float32 tensor in the
# other (torch's strong Wolfe step: `_cubic_interpolate`'s branches) is one float32 value of
# the graph, the float rounded to float32 on its paths (README known shapes). Where it meets a
# float32 tensor Python rounds the float so too, and the graph's value is Python's on both
# paths; Python's float arithmetic on it (`t * 0.7`) differs in the last bits on the float's
# path. Refusing that arithmetic at the line was tried in session 27 (floats27, reverted): it
# refused torch's `_strong_wolfe` at lbfgs.py:57 (`c1 * t`), which replays Python's values on
# the starts of tests/real/test_torchmin.py; the way is a flag of the float's paths in the
# graph (as `kind_seen`'s `narrow`), carried across the loops.

_FLOAT_OR_TENSOR_PATHS = [(T([0.1, 0.05]),), (T([1.3, 0.8]),)]


def float_or_float32_times_a_float(x):
    t = 0.3
    m = x.sum()
    if m > 1:
        t = m * 0.5
    return x * (t * 0.7)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "silently wrong (README known shapes): a float in one branch and a float32 tensor in the "
    "other is the float rounded to float32 in the graph: x * (t * 0.7) differs from Python's "
    "in the last bits on the float's path"))
def test_a_float_or_a_float32_tensor_by_path_in_float_arithmetic():
    assert_same_exactly(float_or_float32_times_a_float, _FLOAT_OR_TENSOR_PATHS, export=False,
                        compile=False)


def _scaled(x, t):
    return x * t - t * x[0]


def float_or_float32_with_float32_tensors(x):
    t = 0.3
    m = x.sum()
    if m > 1:
        t = m * 0.5
    return x * t + _scaled(x, t)


def test_a_float_or_a_float32_tensor_by_path_meeting_float32_tensors_is_pythons():
    # (torch rounds a Python float meeting a float32 tensor to float32, as the graph holds it)
    assert all(float_or_float32_with_float32_tensors(*args).dtype == torch.float32
               for args in _FLOAT_OR_TENSOR_PATHS)
    assert_same_exactly(float_or_float32_with_float32_tensors, _FLOAT_OR_TENSOR_PATHS)


# tester42 s02: a number a conditional expression chooses under a tensor test (pyro's
# `direction = 1 if threshold < -delta_energy else -1`) is a 0-d int64 stand-in that no
# statement carries: its arithmetic was torch's, `2 ** direction` of -1 torch's integer power 0
# where Python's is 0.5, and `direction * 0.1` a float32, silently, in every mode (NOTE
# [numbers a conditional expression chooses] in autoconv/converters/numbers.py).

def _stepped_by_a_chosen_direction(x):
    step = 1 if x.sum() > 0 else -1
    return x + torch.tensor(step * 0.1, dtype=torch.float64)


def _stepped_by_an_inline_choice(x):
    return x + torch.tensor((1 if x.sum() > 0 else -1) * 0.1, dtype=torch.float64)


@pytest.mark.parametrize("fn", [_stepped_by_a_chosen_direction, _stepped_by_an_inline_choice])
def test_a_number_a_conditional_expression_chooses_is_a_python_number(fn):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert_same_exactly(fn, [(x,), (-x,)])


def _doubled_or_halved(x):
    direction = 1 if x.sum() > 0 else -1
    return x * 2 ** direction


def _doubled_or_halved_inline(x):
    return x * 2 ** (1 if x.sum() > 0 else -1)


@pytest.mark.parametrize("fn", [_doubled_or_halved, _doubled_or_halved_inline])
def test_an_int_power_by_a_chosen_negative_int_is_refused_not_zero(fn):
    # Python's `2 ** -1` is the float 0.5; an int graph value cannot be one (the statement
    # form, `if ...: d = 1 else: d = -1`, was refused so already). autoconv's graph is
    # specialised on the exponent's sign since session 43 (tester42 s03: NOTE [an int power
    # whose sign only the graph knows] in runtime/arithmetic.py), a graph per sign; under
    # torch.compile the graph's check refuses the negative one
    x = torch.tensor([1.0, 2.0])
    function = autoconv.autoconv(fn)
    for given in (-x, x, -x):
        got, want = function(given), fn(given)
        assert got.dtype == want.dtype and torch.equal(got, want)
    assert function.trace_count == 2
    torch._dynamo.reset()
    with pytest.raises(Exception, match="negative int is a float in Python"):
        torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(-x)


# tester45 s03: torch_geometric's `scatter` joins `src.size()` with a number a conditional
# expression chose under a traced test: torch.Size's `+` raised a TypeError naming a FakeTensor
# (NOTE [a size joined with carried numbers] in runtime/arithmetic.py).
def scatter_into_a_chosen_size(src, index):
    dim_size = int(index.max()) + 1 if index.sum() > 0 else 4
    size = src.size()[:0] + (dim_size,) + src.size()[1:]
    return src.new_zeros(size).index_add_(0, index, src)


def test_a_size_joined_with_a_number_a_conditional_expression_chose():
    src = T([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert_same_result(scatter_into_a_chosen_size,
                       [(src, T([0, 2, 2])), (src, T([0, 0, 0])), (src, T([1, 0, 1]))])
