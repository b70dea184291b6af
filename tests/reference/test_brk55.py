"""Reference tests: brk55 (issue 10), breaking what Session 54 merged: gradients through a
custom `torch.autograd.Function`'s `apply` taken inside the function (fn54's `_TracedApply`),
and a grown list (lalias54) that a dict or an object of the function holds too."""

import re

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close, assert_same_result, exported

T = torch.tensor

# (the `if` true, false, true)
_INPUTS = [(T([1.0, -2.0, 3.0]),), (T([-1.0, -2.0, -3.0]),), (T([5.0, 2.0, -3.0]),)]


class _Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


def _second_gradient_through_apply_in_a_branch(x):
    y = x.clone().requires_grad_(True)
    if x.sum() > 0:
        out = _Cube.apply(y)
    else:
        out = y * y
    (g,) = torch.autograd.grad(out.sum(), y, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), y)
    return g.detach(), gg


def _second_gradient_through_apply(x):
    y = x.clone().requires_grad_(True)
    out = _Cube.apply(y)
    (g,) = torch.autograd.grad(out.sum(), y, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), y)
    return g.detach(), gg


# (was [0, 0, 0] for Python's [6, -12, 18] in autoconv's replay, silently, and without the `if`
# torch's "The differentiated Tensor at index 0 appears to not have been used in the graph";
# NOTE [a Function's gradient differentiated again] in runtime/staging/autograd_functions.py.
# torch.compile refuses `torch.autograd.grad` in a graph (dynamo's trace_autograd_ops).)
# Refused under torch.export since session 56: the program differentiates the forward's ops,
# right here only because `_Cube.backward` is the forward's own gradient (see below).
def test_a_second_gradient_through_a_functions_apply_in_a_branch():
    fn = _second_gradient_through_apply_in_a_branch
    assert fn(*_INPUTS[0])[1].tolist() == [6.0, -12.0, 18.0]
    assert fn(*_INPUTS[1])[1].tolist() == [2.0, 2.0, 2.0]
    assert_same_result(fn, _INPUTS, compile=False, export=False)
    with pytest.raises(StagingError, match=r"test_brk55\.py:\d+: .*_Cube\.apply is called"):
        exported(fn, _INPUTS[0])


def test_a_second_gradient_through_a_functions_apply():
    fn = _second_gradient_through_apply
    function = autoconv.autoconv(fn)
    for args in _INPUTS:
        for got, want in zip(function(*args), fn(*args)):
            torch.testing.assert_close(got, want)


class _Box:
    pass


def _grown_by_a_name_a_dict_holds(x):
    st = {"v": []}
    vals = st["v"]
    for i in range(x.shape[0]):
        if x[i] > 0:
            vals.append(x[i])
    return len(st["v"]) + 10 * len(vals)


def _grown_by_a_name_an_object_holds(x):
    o = _Box()
    o.hist = []
    hist = o.hist
    for i in range(x.shape[0]):
        if x[i] > 0:
            hist.append(x[i])
    return len(o.hist) + 10 * len(hist)


# three, two and four positive items
_ROWS = [T([3.0, -1.0, 2.0, 5.0, -4.0]), T([1.0, 4.0, -2.0, -3.0, -5.0]),
         T([-1.0, 2.0, 6.0, 1.0, 3.0])]


# (was 30 for Python's 33 in every mode, silently: the dict's or the object's list kept the
# items it had before; NOTE [a list a container of the function holds, grown by a name] in
# runtime/staging/dict_lists.py). Refused as for another name: specialised in replay (a
# graph per path), a StagingError under torch.compile.
@pytest.mark.parametrize("fn, holder", [(_grown_by_a_name_a_dict_holds, "st['v']"),
                                        (_grown_by_a_name_an_object_holds, "o.hist")])
def test_a_list_a_container_holds_grown_by_a_name_is_never_left_as_it_was(fn, holder):
    assert [fn(x) for x in _ROWS] == [33, 22, 44]
    function = autoconv.autoconv(fn)
    for x in _ROWS:
        assert_close(function(x), fn(x))
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    named = rf"test_brk55\.py:\d+: .*'{re.escape(holder)}' names it too"
    with pytest.raises(StagingError, match=named):
        compiled(_ROWS[0])


class _Product(torch.autograd.Function):
    """`a * b` with a backward that is not the product's own (as a straight-through or a
    gradient-scaling Function's is not)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b * 10, g * a * 100


def _gradient_through_apply_in_a_branch(x):
    a = x.clone().requires_grad_(True)
    b = x * 2
    if x.sum() > 0:
        out = _Product.apply(a, b)
    else:
        out = a * b
    (g,) = torch.autograd.grad(out.sum(), a)
    return g


# (was, under torch.export only, silently: the program's gradient through the branch was the
# forward's ops' (2 * x), not `_Product.backward`'s (20 * x): [2, -4, 6] for Python's [20, -40,
# 60]; torch.export of the same `torch.cond` without autoconv gives [0, 0, 0]). Refused at the
# `apply` line under export (NOTE [gradients inside the function through a staged body]);
# autoconv's replay is right (fn54).
def test_a_gradient_through_a_functions_apply_in_a_branch_is_refused_under_export():
    fn, x = _gradient_through_apply_in_a_branch, _INPUTS[0][0]
    assert fn(x).tolist() == [20.0, -40.0, 60.0]
    assert_close(autoconv.autoconv(fn)(x), fn(x))
    with pytest.raises(StagingError, match=r"test_brk55\.py:\d+: .*_Product\.apply is called "
                       r"in the true branch, .* while torch traces it \(torch\.export\)"):
        exported(fn, (x,))


class _CubeOnce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x


def _second_gradient_through_a_once_differentiable_apply(x):
    y = x.clone().requires_grad_(True)
    if x.sum() > 0:
        out = _CubeOnce.apply(y)
    else:
        out = y * y
    (g,) = torch.autograd.grad(out.sum(), y, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), y)
    return gg


# (was [6, -12, 18] in replay and export where Python raises, silently: a once_differentiable
# backward's gradient has no grad_fn, and the branch's traced backward differentiated again).
# Refused at the `apply` line (a gradient through the `if` taken with create_graph=True), on
# either path of the one graph; the path without `apply` agrees with Python ([2, 2, 2]).
def test_a_once_differentiable_backward_differentiated_again_is_refused():
    fn, x = _second_gradient_through_a_once_differentiable_apply, _INPUTS[0][0]
    with pytest.raises(RuntimeError):
        fn(x)
    assert fn(_INPUTS[1][0]).tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(StagingError, match=r"test_brk55\.py:\d+: .*_CubeOnce\.apply is called "
                       r"in the true branch, its backward is @once_differentiable"):
        autoconv.autoconv(fn)(x)


def _grown_by_a_name_a_tuple_holds(x):
    acc = ([], [x[0]])
    a0 = acc[0]
    for i in range(x.shape[0]):
        if x[i] > 0:
            a0.append(x[i])
    return len(acc[0]) + 10 * len(a0)


def _grown_by_a_name_a_list_holds(x):
    acc = [[], [x[0]]]
    a0 = acc[0]
    for i in range(x.shape[0]):
        if x[i] > 0:
            a0.append(x[i])
    return len(acc[0]) + 10 * len(a0)


def _grown_by_a_name_a_tuple_holds_deeper(x):
    acc = (([], 1), [x[0]])
    a0 = acc[0][0]
    for i in range(x.shape[0]):
        if x[i] > 0:
            a0.append(x[i])
    return len(acc[0][0]) + 10 * len(a0)


# brk55 / alias56 (NOTE [a list a container of the function holds, grown by a name] in
# runtime/staging/dict_lists.py): as the dict's list above, but held by a tuple or a list of
# the function: the tuple kept the old list, 30 for Python's 33 in replay and export,
# silently. Refused as the dict's is: a graph per path in replay, the traced path in
# torch.export (the other refused by its guard), a StagingError under torch.compile.
@pytest.mark.parametrize("fn, holder", [(_grown_by_a_name_a_tuple_holds, "acc[0]"),
                                        (_grown_by_a_name_a_list_holds, "acc[0]"),
                                        (_grown_by_a_name_a_tuple_holds_deeper, "acc[0][0]")],
                         ids=["tuple", "list", "tuple_in_a_tuple"])
def test_a_list_a_tuple_holds_grown_by_a_name(fn, holder):
    assert [fn(x) for x in _ROWS] == [33, 22, 44]
    function = autoconv.autoconv(fn)
    assert [int(function(x)) for x in _ROWS] == [33, 22, 44]
    if fn is _grown_by_a_name_a_tuple_holds:
        program = exported(fn, (_ROWS[0],))
        assert int(program(_ROWS[0])) == 33
        with pytest.raises(RuntimeError):
            program(_ROWS[1])
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    named = rf"test_brk55\.py:\d+: .*'{re.escape(holder)}' names it too.*or for a tuple"
    with pytest.raises(StagingError, match=named):
        compiled(_ROWS[0])


def _tuple_rebuilt_after_a_read_of_its_old_list(x):
    acc = ([], [x])
    a0 = acc[0]
    while x.sum() < 10:
        a0.append(x)
        x = x * 2
    n = len(acc[0])
    acc = (a0, acc[1])
    return torch.stack(acc[0] + acc[1]).sum(), n


def _tuple_rebuilt_after_the_loop(x):
    acc = ([], [x])
    a0 = acc[0]
    while x.sum() < 10:
        a0.append(x)
        x = x * 2
    acc = (a0, acc[1])
    return torch.stack(acc[0] + acc[1]).sum(), len(acc[0])


def test_a_tuple_rebuilt_from_the_grown_name_stages_unless_read_before():
    # (`acc = (a0, acc[1])` after the loop gives the tuple the grown list: staged, one trace,
    # as test_lists.py's; `len(acc[0])` read before that rebuild reads the old list: refused
    # at the loop, where Python's n is 2 and 1)
    inputs = [(T([1.0, 2.0]),), (T([3.0, 3.0]),)]
    assert [_tuple_rebuilt_after_a_read_of_its_old_list(*a)[1] for a in inputs] == [2, 1]
    with pytest.raises(StagingError, match=r"test_brk55\.py:\d+: .*'acc\[0\]' names it too"):
        autoconv.autoconv(_tuple_rebuilt_after_a_read_of_its_old_list)(*inputs[0])
    function = autoconv.autoconv(_tuple_rebuilt_after_the_loop)
    for args in inputs:
        assert_close(function(*args), _tuple_rebuilt_after_the_loop(*args))
    assert function.trace_count == 1
