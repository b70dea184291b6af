"""A function chosen by a tensor condition, then called: one cond over the calls
(NOTE [functions chosen by a tensor condition] in runtime/chosen_calls.py)."""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result

T = torch.tensor


def _forward(t, y):
    return t * y + 1


def _backward(t, y):
    return t - y


class _Field(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, t, y):
        return y * self.k + t


_F1, _F2 = _Field(2.0), _Field(-0.5)


def functions_chosen(t, y):
    # (torchdiffeq's shape: the direction of `t` picks the function the solver calls)
    a, b = _forward, _backward
    func = a if t[0] > t[1] else b
    return func(t, y) + func(-t, y=y)


def modules_chosen(t, y):
    f, g = _F1, _F2
    func = f if t.sum() > 0 else g
    return func(t, y)


def chosen_in_a_loop(x):
    a, b = torch.sin, torch.cos
    while x.sum() < 5:
        f = a if x[0] > 0 else b
        x = x + f(x).abs() + 0.5
    return x


_PAIRS = [(T([0.0, 1.0]), T([2.0, 3.0])), (T([1.0, 0.0]), T([2.0, 3.0])),
          (T([-4.0, 2.0]), T([0.5, -1.0]))]


@pytest.mark.parametrize("fn", [functions_chosen, modules_chosen])
def test_a_function_chosen_by_a_tensor_condition_is_called_under_cond(fn):
    # export specialised the graph on the condition and refused the other value; torch.compile
    # refused the choice ("'a if c else b' gives a Python function on its true side")
    assert_same_result(fn, _PAIRS)


def test_a_function_chosen_in_a_staged_loop():
    assert_same_result(chosen_in_a_loop, [T([1.0, 2.0]), T([-1.0, -5.0]), T([3.0, -1.0])])


def _other_structures(x):
    a, b = (lambda v: (v, v)), (lambda v: v)
    f = a if x.sum() > 0 else b
    return f(x)


def _type_tested(x):
    a, b = _F1, torch.sin
    m = a if x.sum() > 0 else b
    return x if isinstance(m, torch.nn.Module) else -x


def _attribute_read(x):
    a, b = _F1, _F2
    m = a if x.sum() > 0 else b
    return x * m.k


def test_candidates_of_other_structures_are_refused():
    with pytest.raises(StagingError, match="a Python tuple in the true branch"):
        autoconv.autoconv(_other_structures)(T([1.0, 2.0]))


@pytest.mark.parametrize("fn, match", [
    (_type_tested, "isinstance.*a function a tensor condition chose"),
    (_attribute_read, "attribute .k.*a function a tensor condition chose")])
def test_a_chosen_function_used_otherwise_specialises_or_is_refused(fn, match):
    # autoconv's trace specialises the graph on the condition there, as at the choice before
    function = autoconv.autoconv(fn)
    for x in (T([1.0, 2.0]), T([-1.0, -5.0]), T([3.0, 1.0])):
        torch.testing.assert_close(function(x), fn(x))
    assert function.trace_count == 2
    torch._dynamo.reset()
    with pytest.raises(StagingError, match=match):
        torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(T([1.0, 2.0]))
