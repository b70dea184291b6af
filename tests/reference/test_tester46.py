"""Findings of tester 46 written without the libraries they came from (those are in
tests/real/test_tester46.py): each kind checked against plain Python in every mode."""

import math
from math import sqrt

import pytest
import torch

from support import assert_same_exactly

T = torch.tensor
_SIGNS = [(T([1.5, -2.0, 3.0]),), (T([-1.0, 5.0, 0.5]),)]


def signs_of_the_largest(u):
    # tensorly's svd_flip: the item of each column largest in magnitude, chosen by a traced index
    rows = torch.argmax(torch.abs(u), dim=0)
    return torch.sign(torch.tensor([u[i, j] for i, j in zip(rows, range(u.shape[1]))]))


def items_and_numbers(x):
    a = torch.tensor([x[0], 2 * x[1]])
    b = torch.tensor([x[0].int(), 2.5])  # an int32 item and a float: float32
    c = torch.tensor([x[0].double(), 2])  # float64
    d = torch.tensor([[x[0], 1.0], [x[1], x[2]]])
    e = torch.tensor((x[1:2], x[2]))  # a one-element item of one dimension
    f = torch.as_tensor([x[0] > 0, x[1] > 0])
    return a, b, c, d, e, f


def test_s01_torch_tensor_of_traced_items_is_built_in_the_graph():
    # (tester46 s01) torch.tensor read each item's number, which a tracer does not have:
    # torch's "data is not allocated yet" in every mode (torch.compile too, for as_tensor)
    assert_same_exactly(items_and_numbers, _SIGNS)
    u = [(T([[0.5, -2.0], [-1.0, 1.0]]),), (T([[-3.0, 0.1], [1.0, 0.2]]),)]
    assert_same_exactly(signs_of_the_largest, u, compile=False)


def two_rows(x):
    return torch.tensor([x[0:2], x[2]])


def test_s01_torch_tensor_of_a_many_element_traced_item_raises_pythons_error():
    import autoconv
    with pytest.raises(ValueError, match="only one element tensors"):
        two_rows(_SIGNS[0][0])
    with pytest.raises(ValueError, match="only one element tensors"):
        autoconv.autoconv(two_rows)(_SIGNS[0][0])


class _Backend:
    k = 1.0

    @classmethod
    def scale(cls):
        return _SCALE * cls.k


_SCALE = 2.0
_BACKEND = _Backend()


def scaled_by_a_class_method(x):
    if hasattr(_BACKEND, "backend"):  # (names an attribute the object lacks)
        x = x + _BACKEND.backend
    return x * _BACKEND.scale() if x.sum() > 0 else x


def test_s02_a_class_method_read_through_an_object_is_searched_as_code():
    # (tester46 s02, tensorly's backends' `register_method`) the class method was guarded as an
    # object, by identity against a new bound method on each read: a RuntimeError ("changes it
    # right after tracing") on the first call, a TypeError of the ConcreteFunction
    global _SCALE
    import autoconv
    f = autoconv.autoconv(scaled_by_a_class_method)
    x = T([1.0, 2.0])
    concrete = f.get_concrete_function(x)
    torch.testing.assert_close(concrete(-x), -x)
    torch.testing.assert_close(f(x), 2 * x)
    try:
        _SCALE = 3.0  # the class method's global and its class's attribute are guarded
        torch.testing.assert_close(f(x), 3 * x)
        _Backend.k = 10.0
        torch.testing.assert_close(f(x), 30 * x)
    finally:
        _SCALE, _Backend.k = 2.0, 1.0
    assert f.trace_count == 3


_CURRENT = {"mode": "double"}


class _Dispatched:
    __slots__ = ["name"]

    def __init__(self, name):
        self.name = name

    def __get__(self, instance, owner=None):
        return _CURRENT[self.name]


class _Manager:
    mode = _Dispatched("mode")


def _dispatching():
    cls = _Manager

    def doubled_by_the_current_mode(x):
        y = x * 2 if cls.mode == "double" else x
        return y if y.sum() > 0 else -y
    return doubled_by_the_current_mode


def test_s03_a_descriptor_class_attribute_is_guarded_as_what_it_gives():
    # (tester46 s03, tensorly's `BackendManager.backend_name`) the descriptor object was
    # guarded at `getattr(cls, name)`, which gives what its `__get__` returns: a RuntimeError on
    # the first call, a TypeError of the ConcreteFunction
    import autoconv
    fn = _dispatching()
    f = autoconv.autoconv(fn)
    x = T([1.0, 2.0])
    torch.testing.assert_close(f.get_concrete_function(x)(-x), 2 * x)
    torch.testing.assert_close(f(x), 2 * x)
    try:
        _CURRENT["mode"] = "single"  # what `__get__` gives is guarded by value
        torch.testing.assert_close(f(x), fn(x))
        torch.testing.assert_close(f(x), x)
    finally:
        _CURRENT["mode"] = "double"
    assert f.trace_count == 2


def scaled_by_math_sqrt(x):
    # tensorly's tucker: `rec_error = sqrt(tl.abs(norm_tensor**2 - tl.norm(core, 2) ** 2)) /
    # norm_tensor`, math's sqrt (imported by name) of a 0-d tensor: Python's float of it
    r = math.sqrt(torch.abs(x.sum()))
    return x / r if r > 1 else x


def scaled_by_imported_sqrt(x):
    # the same read by the name tensorly imports (`from math import sqrt`)
    r = sqrt(torch.abs(x.sum()))
    return x / r if r > 1 else x


def math_of_tensors_and_numbers(x, k: int):
    # math's float functions of a tensor, a tensor and a number, a Python int, a constant
    a = math.atan2(x.max(), k) + math.log(x.abs().sum() + 1, 2) + math.sqrt(k) + math.exp(0.5)
    return x * a if math.isfinite(x.sum()) and math.fabs(x.min()) < 3 else x


# s04: math's functions read `__float__` of a one-element tensor; of a traced one autoconv
# raised its StagingError ("asks Python for the value of a traced tensor") where Python reads the
# tensor's float (NOTE [math functions of traced tensors] in runtime/builtins.py)
def test_s04_math_sqrt_of_a_traced_zero_d_tensor_is_its_floats():
    inputs = [(T([1.0, 3.0]),), (T([0.1, 0.2]),), (T([-4.0, 2.0]),)]
    assert_same_exactly(scaled_by_math_sqrt, inputs, compile=False)  # (compiled below)
    assert_same_exactly(scaled_by_imported_sqrt, inputs, export=False, compile=False)


def test_math_functions_of_tensors_and_numbers_read_their_floats():
    assert_same_exactly(math_of_tensors_and_numbers,
                        [(T([1.0, 3.0]), 2), (T([-4.0, 0.5]), 2), (T([0.1, 0.2]), 2)])


def test_math_of_a_tensor_of_several_items_is_pythons_value_error():
    import autoconv

    def root(x):
        return x * math.sqrt(x) if x.sum() > 0 else x
    with pytest.raises(ValueError, match="only one element tensors"):
        root(T([1.0, 4.0]))  # (Python's, from torch)
    with pytest.raises(ValueError, match="only one element tensors"):
        autoconv.autoconv(root)(T([1.0, 4.0]))


def test_math_of_text_keeps_maths_type_error():
    # (not `float("4")`, which is 4.0: math's own conversion and error)
    import autoconv

    def root(x, s):
        return x * math.sqrt(s) if x.sum() > 0 else x
    with pytest.raises(TypeError, match="must be real number"):
        autoconv.autoconv(root)(T([1.0]), "4")


def tokens_as_ints(x):
    tokens = [x[0]]
    for v in x[1:]:
        if v < 0:
            break
        tokens.append(v)
    return torch.tensor([int(t) for t in tokens])


def doubled_positives_plus_one(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(v * 2)
    return torch.stack([v + 1 for v in vals]).sum() if len(vals) > 0 else x.sum()


def scaled_tokens(x, k: float):
    # the element reads a name of the function and a Python number; a comprehension over the
    # same list with an `if` (not converted) follows on the paths where nothing grew
    tokens = [x[0]]
    for v in x[1:]:
        if v < 0:
            break
        tokens.append(v)
    return torch.stack([t * k + x[0] for t in tokens])


def thousandths_scaled(x):
    # a grown list of ints read from tensors: the comprehension's element is Python's float
    # arithmetic of each int (float64, then float32 in torch.tensor), not float32 tensor math
    ks = []
    for v in x:
        if v > 0:
            ks.append(int(v * 1000))
    return torch.tensor([k * 0.1 + 1e-3 for k in ks]) if len(ks) > 0 else x


def test_s05_a_comprehension_over_a_grown_list_is_its_staged_loop():
    # (tester46 s05) refused as "iterating it outside converted code", where the `for` loop it
    # stands for is staged (NOTE [a comprehension over a grown list] in runtime/operators.py)
    inputs = [(T([1.0, 2.0, -1.0, 3.0]),), (T([2.0, -3.0, 4.0, 5.0]),), (T([5.0, 6.0, 7.0, 8.0]),),
              (T([-5.0, 6.0, 7.0, 8.0]),)]
    assert_same_exactly(tokens_as_ints, inputs, compile=False)
    assert_same_exactly(doubled_positives_plus_one, inputs, compile=False)
    assert_same_exactly(scaled_tokens, [(x, 0.5) for (x,) in inputs], compile=False)
    gen = torch.Generator().manual_seed(0)
    assert_same_exactly(thousandths_scaled, [(torch.rand(8, generator=gen) * 7 - 1,)
                                             for _ in range(6)], compile=False)


def kept_between(x):
    tokens = [x[0]]
    for v in x[1:]:
        if v < 0:
            break
        tokens.append(v)
    return torch.tensor([int(t) for t in tokens if t > 1 and t < 7])


def test_a_filtered_comprehension_over_a_grown_list_is_its_staged_loop_and_ifs():
    inputs = [(T([1.0, 2.0, -1.0, 3.0]),), (T([2.0, -3.0, 4.0, 5.0]),), (T([5.0, 6.0, 7.0, 8.0]),),
              (T([-5.0, 6.0, 7.0, 8.0]),)]
    assert_same_exactly(kept_between, inputs, compile=False)


def test_a_filtered_comprehension_over_a_python_list_of_traced_items_is_still_refused():
    # (a list grown without staged statements is Python's, its comprehension too: its `if` of a
    # traced item is refused with the loop to write)
    import autoconv
    from autoconv_runtime import StagingError

    def positives(x):
        vals = []
        for i in range(3):
            vals.append(x[i])
        return torch.stack([v for v in vals if v > 0])
    with pytest.raises(StagingError, match=r"`for` statement that appends"):
        autoconv.autoconv(positives)(T([1.0, -2.0, 3.0]))
