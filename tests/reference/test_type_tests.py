"""Reference tests: type tests, equality and membership of values staging gives another type.

A number a staged statement carries is a 0-d tensor standing in for it, `.item()` of a traced
tensor a symbolic number, a list grown under tensor control flow a StagedList, a str chosen by
tensor values a StagedConstant. `isinstance`, `type`, `==`, `in` and `not` of them answer as
Python's of the value each stands for (tester22 s16, s17, s12, s05, s09, s01, s02). Each
function's inputs take different paths, so a graph that baked the traced path fails.
"""

import math

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_result

T = torch.tensor


# --- isinstance / type of a carried number (s16) -----------------------------------------

def as_tensor_like(v, ref):
    # a library helper that dispatches on the type (optimizers' `lr`, `full_like` vs `.to`)
    if isinstance(v, torch.Tensor):
        return v.to(ref.dtype) * 100
    return torch.full_like(ref, v)


def carried_numbers_keep_their_types(x):
    h = 0.5
    n = 0
    flag = False
    while x[n] != 0:
        h = h * 2.0
        n += 1
        flag = not flag
    return (T(isinstance(h, float)), T(isinstance(n, int)), T(type(h) is float),
            T(type(n) is int), T(isinstance(flag, bool)), T(isinstance(h, torch.Tensor)),
            T(isinstance(n, (float, torch.Tensor))), as_tensor_like(h, x[:1]),
            as_tensor_like(n, x[:1]))


# --- isinstance of a number read from a traced tensor (s17) ------------------------------

def item_results_are_numbers(x):
    v = x.max().item()
    k = int(x.argmax())
    return (T(isinstance(v, float)), T(isinstance(k, int)), T(isinstance(v, torch.Tensor)),
            T(type(k) is int), T(math.isfinite(v)))


# --- isinstance / type of a grown list (s12) ---------------------------------------------

def n_items(v):
    if isinstance(v, (list, tuple)):
        return len(v)
    return 1


def grown_list_is_a_list(x):
    rows = []
    for r in x:
        if r.sum() > 0:
            rows.append(r)
    return T(isinstance(rows, list)), T(type(rows) is list), T(n_items(rows))


def branch_bound_list_is_a_list(x):
    if x.sum() > 0:
        b = [1.0, 2.0]
    else:
        b = [3.0]
    return T(isinstance(b, list)), T(b == [3.0]), T(b != [3.0])


# --- == / != of a grown list (s05) -------------------------------------------------------

def grown_list_equality(x):
    vals = []
    same = []
    i = 0
    while x[i] > 0:
        vals.append(float(x[i]))
        same.append(float(x[i]) * 1.0)
        i += 1
    found = 0
    if vals == []:
        found = 5
    return (T(vals == [3.0]), T(vals != [3.0]), T(vals == []), T([3.0] == vals),
            T(vals == same), T(vals == [3.0, "s"]), T(found), T((vals == []) + (vals == [])))


# --- `in` of a str chosen by tensor values (s09) -----------------------------------------

def carried_status_in_tuple(x):
    status = "running"
    it = 0
    while it < 10:
        x = x * 0.5 + 1.0
        if x.abs() > 100:
            status = "diverged"
            break
        if (x - 2.0).abs() < 1e-3:
            status = "converged"
            break
        it += 1
    return (x, T(status in ("converged", "running")), T(status not in ["diverged"]),
            T(status in {"diverged": 1}))


# --- `not` keeps a carried flag a bool (s01) ---------------------------------------------

def toggled_flag_plus_itself(x):
    c = False
    while x > 0:
        c = not c
        x = x - 1
    return T(c + c)


# --- torch.tensor of a list holding int() of a carried float (s02) -----------------------

def tensor_of_int_of_carried_float(x):
    b = 0.0
    c = False
    while x > 0:
        b -= 2.5
        c = not c
        x = x - 1
    return torch.tensor([int(b), 1.5]), torch.tensor([int(c) + int(c), 1.5])


CASES = [
    (carried_numbers_keep_their_types, [(T([3., 0., 2.]),), (T([1., 4., 0.]),)]),
    (item_results_are_numbers, [(T([3., 0., 2.]),), (T([1., float("inf"), 0.]),)]),
    (grown_list_is_a_list, [(T([[1., 2.], [-3., 0.], [5., 5.]]),),
                            (T([[-1., 2.], [-3., 0.], [-5., 5.]]),)]),
    (branch_bound_list_is_a_list, [(T([1.]),), (T([-1.]),)]),
    (grown_list_equality, [(T([3., 0., 2., 0., 5.]),), (T([1., 4., 0., 0., 0.]),),
                           (T([0., 4., 0., 0., 0.]),)]),
    (carried_status_in_tuple, [(T(3.0),), (T(1e6),)]),
    (toggled_flag_plus_itself, [(T(1),), (T(2),)]),
    (tensor_of_int_of_carried_float, [(T(1),), (T(2),)]),
]


@pytest.mark.parametrize("fn, inputs", CASES, ids=[c[0].__name__ for c in CASES])
def test_matches_python(fn, inputs):
    # (item_results_are_numbers has no tensor control flow: a straight graph)
    assert_same_result(fn, inputs, staged=fn is not item_results_are_numbers)


def test_results_keep_python_dtypes():
    # c + c of a toggled flag is Python's int; torch.tensor([int(b), 1.5]) the default float
    f = autoconv.autoconv(toggled_flag_plus_itself)
    assert f(T(1)).dtype == torch.int64
    g = autoconv.autoconv(tensor_of_int_of_carried_float)
    assert [t.dtype for t in g(T(2))] == [torch.float32, torch.float32]


def type_of_a_number_on_some_paths(x):
    total = 0
    for v in x:
        if v > 0:
            total += v  # an int64 tensor where the body ran, the int 0 elsewhere
    return T(type(total) is int)


def test_type_of_a_number_on_some_paths_is_refused_at_the_line():
    f = autoconv.autoconv(type_of_a_number_on_some_paths)
    with pytest.raises(StagingError, match=r"type\(\) gives torch\.Tensor where it is the tensor and int") as caught:
        f(T([1, -2, 3]))
    assert caught.value.filename == __file__


def rows_equal_to_a_list(x):
    rows = []
    for r in x:
        if r.sum() > 0:
            rows.append(r)
    return T(rows == [x[0]])


def test_equality_of_a_list_of_tensor_rows_is_refused_at_the_line():
    f = autoconv.autoconv(rows_equal_to_a_list)
    with pytest.raises(StagingError, match="torch.equal") as caught:
        f(T([[1., 2.], [-3., 0.]]))
    assert caught.value.filename == __file__


# --- a number on some paths of a staged statement, a tensor on the others (types30) --------
# NOTE [types on some paths] in runtime/augmented.py: the graph holds one tensor on every
# path, so a type test whose answer differs between the number and the tensor is refused at
# its line, naming the variable, both types and the statement that merged them; one whose
# answers agree answers. Each function's two inputs take the two paths.

def float_or_sum_isinstance(x):
    if x.sum() > 0:
        s = x.sum()
    else:
        s = 0.0
    if isinstance(s, torch.Tensor):
        return x * s
    return x + 1.0


def float_or_sum_is_tensor(x):
    s = 0.0
    if x.sum() > 0:
        s = x.sum()
    if torch.is_tensor(s):
        return x * s
    return x + 1.0


def float_or_sum_has_shape(x):
    s = 1.0
    if x.sum() > 0:
        s = x.sum()
    if hasattr(s, "shape"):
        return x * s
    return x + 1.0


def float_or_sum_dtype(x):
    s = 1.0
    if x.sum() > 0:
        s = x.sum()
    if getattr(s, "dtype", None) is None:
        return x + 1.0
    return x * s


def float_or_sum_type(x):
    s = 2.0
    if x.sum() > 0:
        s = x.sum()
    if type(s) is float:
        return x + 1.0
    return x * 2


def bool_or_tensor_is_false(x):
    s = False
    if x.sum() > 0:
        s = (x > 1).all()
    if s is False:
        return x + 1.0
    return x * 2


def float64_or_sum_isinstance(x):
    x = x.double()
    s = 0.0
    if x.sum() > 0:
        s = x.sum()
    if isinstance(s, float):
        return x + 1.0
    return x * s


def loop_sum_or_float_isinstance(x):
    s = 0.0
    for v in x:
        if v > 0:
            s = s + v
    if isinstance(s, torch.Tensor):
        return x * s
    return x + 1.0


def float_or_sum_given_to_a_helper(x):
    s = 0.5
    if x.sum() > 0:
        s = x.sum()
    return as_tensor_like(s, x)


def float_or_sum_doubled(x):
    s = 0.5
    if x.sum() > 0:
        s = x.sum()
    s2 = s * 2  # a float where `s` is one
    if isinstance(s2, torch.Tensor):
        return x * s2
    return x + 1.0


def float_or_sum_through_a_later_if(x):
    s = 0.5
    if x.sum() > 0:
        s = x.sum()
    if x[0] > 0.5:
        s = s + 1
    if isinstance(s, torch.Tensor):
        return x * s
    return x + 1.0


def float_then_tensor_in_a_loop_body(x):
    s = 0.5
    i = 0
    seen = torch.zeros(())
    while i < x.shape[0] and x[i] > -5:
        if isinstance(s, torch.Tensor):  # False on the first trip only
            seen = seen + 1
        s = s + x[i]
        i += 1
    return seen


TYPE_ON_SOME_PATHS = [
    (float_or_sum_isinstance, r"isinstance\(\.\.\., Tensor\) gives True where it is the "
                              r"tensor and False where it is the float"),
    (float_or_sum_is_tensor, r"torch\.is_tensor\(\) gives True"),
    (float_or_sum_has_shape, r"hasattr\(\.\.\., 'shape'\) gives True"),
    (float_or_sum_dtype, r"getattr\(\.\.\., 'dtype'\) gives True"),
    (float_or_sum_type, r"type\(\) gives torch\.Tensor where it is the tensor and float"),
    (bool_or_tensor_is_false, r"'s' is a Python bool on some paths .* `is False`"),
    (float64_or_sum_isinstance, r"'s' is a Python float on some paths .* "
                                r"isinstance\(\.\.\., float\) gives False"),
    (loop_sum_or_float_isinstance, r"the for loop at .*test_type_tests\.py:\d+ merged them"),
    (float_or_sum_given_to_a_helper, r"isinstance\(\.\.\., Tensor\) gives True"),
    (float_or_sum_doubled, r"a value computed from 's' is a Python float"),
    (float_or_sum_through_a_later_if, r"isinstance\(\.\.\., Tensor\) gives True"),
    (float_then_tensor_in_a_loop_body, r"the while loop at .* merged them"),
]


@pytest.mark.parametrize("fn, match", TYPE_ON_SOME_PATHS,
                         ids=[c[0].__name__ for c in TYPE_ON_SOME_PATHS])
def test_type_test_of_a_number_on_some_paths_is_refused_at_the_line(fn, match):
    # Before session 30 the type test answered "tensor" on every path (a float32 tensor in the
    # graph): the function took the tensor's branch on the inputs where Python's `s` is the
    # number, silently
    inputs = [(T([1., 2.]),), (T([-1., -2.]),)]
    converted = autoconv.convert(fn)
    statement = {loop_sum_or_float_isinstance: "the for loop",
                 float_then_tensor_in_a_loop_body: "the while loop"}.get(fn, "the if statement")
    for args in inputs:
        with pytest.raises(StagingError, match=match) as caught:
            autoconv.autoconv(fn)(*args)
        assert caught.value.filename == __file__
        assert f"{statement} at {__file__}:" in str(caught.value)
        assert "'s'" in str(caught.value) and "torch.tensor(" in str(caught.value)
        with pytest.raises(StagingError, match=match):
            torch.export.export(Calling(converted), args, strict=False)
        torch._dynamo.reset()
        # (under torch.compile a variable unbound before the `if`, a float in one branch and
        # a float32 tensor in the other, is refused at the `if` already: dynamo cannot stage
        # the promotion again)
        compile_match = "'s'" if fn is float_or_sum_isinstance else match
        with pytest.raises(StagingError, match=compile_match):
            torch.compile(converted, fullgraph=True, backend="eager")(*args)


def float_or_sum_agreeing_tests(x):
    s = 0.0
    if x.sum() > 0:
        s = x.sum()
    k = 0
    # answers that are the same for the float and for the tensor
    if isinstance(s, (float, torch.Tensor)) and s is not None and hasattr(s, "real"):
        k = 1
    return x * s + k


def toggled_flag_is_false(x):
    flag = False
    i = 0
    while x[i] > 0:
        flag = not flag
        i += 1
    if flag is False:
        return x + 1.0
    return x * 2


def carried_rate_device(x):
    lr = 0.5
    while x.sum() > 1:
        x = x * 0.5
        lr = lr * 0.5
    if getattr(lr, "device", None) is None and not hasattr(lr, "shape"):
        return x * lr
    return x


def float_or_sum_times_a_tensor(x):
    s = 0.5
    if x.sum() > 0:
        s = x.sum()
    y = s * x  # a tensor on every path
    if x[0] > 0.5:
        s = x.mean()
    else:
        s = x.max()  # rebound to a tensor on every path
    return T(isinstance(y, torch.Tensor)), T(torch.is_tensor(s)), y * s


TYPE_TESTS_THAT_AGREE = [
    (float_or_sum_times_a_tensor, [(T([1., 2.]),), (T([-1., -2.]),), (T([0.2, -2.]),)]),
    (float_or_sum_agreeing_tests, [(T([1., 2.]),), (T([-1., -2.]),)]),
    (toggled_flag_is_false, [(T([1., 1., 0.]),), (T([1., 0., 0.]),), (T([0., 1., 0.]),)]),
    (carried_rate_device, [(T([1., 2.]),), (T([0.1, 0.2]),)]),
]


@pytest.mark.parametrize("fn, inputs", TYPE_TESTS_THAT_AGREE,
                         ids=[c[0].__name__ for c in TYPE_TESTS_THAT_AGREE])
def test_type_tests_that_agree_on_every_path(fn, inputs):
    # A number's stand-in is the number to `is` and getattr / hasattr too: before session 30,
    # `flag is False` of a carried bool was False on every path, and `getattr(lr, "device",
    # None)` of a carried float the tensor's device
    assert_same_result(fn, inputs)
