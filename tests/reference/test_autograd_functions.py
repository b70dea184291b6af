"""Custom `torch.autograd.Function`s in converted code, the kinds torchdiffeq's solvers met
(session 34): under torch.export a Function's result linked to its arguments only by the
Function (`_StitchGradient`), a forward writing through `.data` (`_UncheckedAssign`), `None`
among `Fn.apply`'s arguments and results (`OdeintAdjointMethod`), a forward with tensor
conditions, and a loop-carried field of an object whose grad differs by trip count."""

import functools

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close, assert_same_result, exported

T = torch.tensor


class _Stitch(torch.autograd.Function):
    """`out`, with the gradient of `x` (torchdiffeq's `_StitchGradient`)."""

    @staticmethod
    def forward(ctx, x, out):
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


def _next_below(x):
    with torch.no_grad():
        out = torch.nextafter(x, x - 1)
    return _Stitch.apply(x, out)


def stitched_on_one_path(x, p):
    # torchdiffeq's misc.py:191 (`elif perturb is Perturb.PREV: t = _nextafter(t, t - 1)`)
    t = x * 3
    if p.sum() > 0:
        t = _next_below(t)
    return t


def test_a_function_result_with_its_arguments_grad_is_no_grad_mode_difference():
    # Python's `t` requires grad on both paths where `x` does: the Function links its result
    # to `x`. torch.export's graph holds the forward's ops only, so the branch read as one
    # that cut the gradient, and the `if` was refused ("'t' may require grad after the false
    # branch but not after the true branch").
    assert_same_result(stitched_on_one_path, [(T([1.0, 2.0]), T(1.0)), (T([1.0, 2.0]), T(-1.0)),
                                              (T([0.5, -2.0]), T(3.0))], compile=False)


def test_a_function_result_with_its_arguments_grad_under_compile():
    converted = torch.compile(autoconv.convert(stitched_on_one_path), fullgraph=True,
                              backend="eager")
    for p in (T(1.0), T(-1.0)):
        x, x_ = T([1.0, 2.0], requires_grad=True), T([1.0, 2.0], requires_grad=True)
        got, want = converted(x, p), stitched_on_one_path(x_, p)
        assert got.requires_grad == want.requires_grad
        got.sum().backward()
        want.sum().backward()
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(x.grad, x_.grad)


class _UncheckedAssign(torch.autograd.Function):
    """torchdiffeq's rk_common.py:29: a write past autograd's version counter."""

    @staticmethod
    def forward(ctx, scratch, value, index):
        ctx.index = index
        scratch.data[index] = value
        return scratch

    @staticmethod
    def backward(ctx, grad_scratch):
        return grad_scratch, grad_scratch[ctx.index], None


def stages_written_through_data(y):
    k = torch.empty(*y.shape, 3, dtype=y.dtype)
    k = _UncheckedAssign.apply(k, y, (..., 0))
    for i in range(2):
        if k[..., i].sum() > 0:
            value = k[..., i] * 2
        else:
            value = k[..., i] - 1
        k = _UncheckedAssign.apply(k, value, (..., i + 1))
    return k.sum(-1)


def test_a_forward_writing_through_data_exports():
    # torch.export (without autoconv too) traced `scratch.data[index] = value` into a tensor
    # it never saw: "We found a fake tensor in the exported program constant's list". The
    # forward reads `.data` as a traced `detach()` there (the same memory).
    assert_same_result(stages_written_through_data,
                       [(T([1.0, 2.0]),), (T([-1.0, 2.0]),), (T([-3.0, -0.5]),)], compile=False)


class _Scaled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, bias):
        out = x * (2.0 if scale is None else scale)
        return out, None, (out + 1 if bias is None else out + bias)

    @staticmethod
    def backward(ctx, g, _, h):
        return g * 2 + h * 2, None, None


def with_none_arguments(x):
    y, nothing, z = _Scaled.apply(x, None, None)
    if y.sum() > 0:
        y = y + z
    assert nothing is None
    return y


def test_none_among_a_functions_arguments_and_results():
    # `None` marked where a tensor goes in the call's record: autoconv's trace raised
    # StopIteration (torchdiffeq's `OdeintAdjointMethod.apply(..., event_fn=None, ...)`)
    function = autoconv.autoconv(with_none_arguments)
    for values in ([1.0, 2.0], [-1.0, -2.0]):
        assert_close(function(T(values)), with_none_arguments(T(values)))
    assert function.trace_count == 1
    module = exported(with_none_arguments, (T([1.0, 2.0]),))
    assert_close(module(T([-1.0, -2.0])), with_none_arguments(T([-1.0, -2.0])))


class _Halve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        while x.abs().sum() > 1:
            x = x / 2
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def loops_in_a_forward(x):
    return _Halve.apply(x) + 1


def test_a_tensor_condition_in_a_functions_forward_names_the_function():
    # torch calls the forward, unconverted; the message said torch's `Function.apply` called
    # the code, with nothing about the Function
    with pytest.raises(StagingError) as caught:
        autoconv.autoconv(loops_in_a_forward)(T([3.0, 4.0]))
    message = str(caught.value)
    assert caught.value.lineno == _Halve.forward.__code__.co_firstlineno + 2, message
    assert "forward of _Halve, a custom torch.autograd.Function" in message
    assert "`_Halve.apply` outside the autoconv function" in caught.value.fix


class _Solver:
    def __init__(self, state):
        self.state = state


@torch.no_grad()
def _next_step(dt, err):
    return dt * torch.clamp(0.9 / err, 0.2, 5.0)


def stepped_object(y, end):
    solver = _Solver({"t": torch.zeros(()), "dt": y.abs().sum() * 0.1})
    while solver.state["t"] < end:
        dt = solver.state["dt"]
        solver.state = {"t": solver.state["t"] + dt, "dt": _next_step(dt, y.abs().mean())}
    return solver.state["t"]


def test_a_carried_fields_grad_refusal_names_the_field():
    # Python's `solver.state["dt"]` requires grad after zero trips (where `y` does), never
    # after some (`@torch.no_grad()`): true, and refused under torch.export, whose program may
    # be called with inputs that require grad. The message named 'solver' and asked for
    # `solver = solver.detach()`.
    with pytest.raises(StagingError) as caught:
        exported(stepped_object, (T([1.0, 2.0]), T(1.0)))
    message = str(caught.value)
    assert "'solver.state['dt']' may require grad before the loop" in message, message
    assert "under torch.export" in message
    assert "solver = solver.detach()" not in caught.value.fix


def halved_under_no_grad_on_one_path(y, c):
    solver = _Solver({"t": y * 2, "dt": y.sum()})
    if c > 0:
        with torch.no_grad():
            solver.state = {"t": solver.state["t"], "dt": solver.state["dt"] / 2}
    return solver.state["t"] + solver.state["dt"]


def test_a_branchs_grad_refusal_names_the_field():
    # (at the top level the `if` is specialised, with the refusal as the guard's reason)
    module = exported(halved_under_no_grad_on_one_path, (T([1.0, 2.0]), T(1.0)))
    assert_close(module(T([3.0, 2.0]), T(2.0)), halved_under_no_grad_on_one_path(
        T([3.0, 2.0]), T(2.0)))
    with pytest.raises(RuntimeError, match=r"'solver.state\['dt'\]' may require grad after "
                                           r"the false branch"):
        module(T([1.0, 2.0]), T(-1.0))


# --- a Function's `apply` held by a name, under torch.compile (tester53) -------------------------
# NOTE [a Function's apply held by a name under dynamo] in runtime/calls.py. Each backward below
# is not the forward's derivative, so a gradient equal to Python's is one the Function's
# backward gave.


class _Squared(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g  # (the derivative is 2x)


class _TimesK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k * 5, None


def _local_function_apply():
    class Cubed(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return x * g  # (the derivative is 3x^2)

    return Cubed.apply


class _Holder:
    squared = staticmethod(_Squared.apply)


squared = _Squared.apply  # (as torchinterp1d publishes `interp1d`)
scaled_twice = functools.partial(_TimesK.apply, k=2.0)
_BY_NAME = {"squared": _Squared.apply}
_IN_A_LIST = [_Squared.apply]
cubed = _local_function_apply()


def _closure_of_apply():
    held = _Squared.apply

    def grow(x):
        while x.sum() < 100:
            x = held(x) + 1
        return x

    return grow


def grow_through_held_applies(x):
    steps = 0
    while x.sum() < 100:
        x = (squared(x) * 0.5 + _Holder.squared(x) * 0.25 + scaled_twice(x)
             + _BY_NAME["squared"](x) * 0.125 + _IN_A_LIST[0](x) * 0.0625 + cubed(x) * 0.01 + 1)
        steps += 1
    return x, steps


_GROW_INPUTS = [T([1.5, 1.0, 1.2]), T([0.5, 2.0, 3.0]), T([10.0, 40.0, 60.0])]  # 3, 2, 0 trips


def _value_and_gradient(fn, x0):
    x = x0.clone().requires_grad_()
    out = fn(x)
    y = out[0] if isinstance(out, tuple) else out
    (gradient,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    return out, gradient


@pytest.mark.parametrize("fn", [grow_through_held_applies, _closure_of_apply()],
                         ids=["global-static-partial-dict-list-local", "closure"])
def test_a_functions_apply_held_by_a_name_under_compile(fn):
    # Before: dynamo's "GetAttrVariable(GetAttrVariable(AutogradFunctionVariable(), apply),
    # __func__) has no type", from converted_call.
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    for x0 in _GROW_INPUTS:
        (want, want_gradient), (got, got_gradient) = (_value_and_gradient(fn, x0),
                                                      _value_and_gradient(compiled, x0))
        assert_close(got, want)
        assert_close(got_gradient, want_gradient)


def test_a_functions_apply_held_by_a_name_in_replay_and_export():
    assert_same_result(grow_through_held_applies, [(x,) for x in _GROW_INPUTS], compile=False)
    function = autoconv.autoconv(grow_through_held_applies)
    for x0 in _GROW_INPUTS:
        (want, want_gradient), (got, got_gradient) = (
            _value_and_gradient(grow_through_held_applies, x0),
            _value_and_gradient(function, x0))
        assert_close(got, want)
        assert_close(got_gradient, want_gradient)


# --- gradients through a Function taken inside the function (brk54) ---------------------------
# NOTE [gradients through a Function taken while tracing] in runtime/staging/autograd_functions.py.
# `_Squared.backward` is 3 * x * g (not 2 * x * g): a gradient of the forward's ops differs.


def _gradient_through_apply_without_a_branch(x):
    y = x.clone().requires_grad_(True)
    out = _Squared.apply(y)
    (g,) = torch.autograd.grad(out.sum(), y)
    return out.detach(), g


def _backward_through_a_dict_held_apply_in_a_loop(x):
    y = x.clone().requires_grad_(True)
    z = y
    while z.sum() < 20:
        z = _BY_NAME["squared"](z) + 1
    z.sum().backward()
    return z.detach(), y.grad


def test_a_gradient_through_apply_taken_inside_the_function():
    # Before: torch's "element 0 of tensors does not require grad" (no branch), zeros (loop)
    x = torch.tensor([1.0, 1.5, 2.0])
    want = _gradient_through_apply_without_a_branch(x)
    assert want[1].tolist() == [3.0, 4.5, 6.0]
    got = autoconv.autoconv(_gradient_through_apply_without_a_branch)(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    function = autoconv.autoconv(_backward_through_a_dict_held_apply_in_a_loop)
    for x in (torch.tensor([1.0, 1.5, 2.0]), torch.tensor([10.0, 6.0, 7.0])):
        want = _backward_through_a_dict_held_apply_in_a_loop(x)
        got = function(x)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)
    assert want[1].tolist() == [1.0, 1.0, 1.0]  # (no trip on the second input)


# --- a Function's `apply` read inside the converted function (apply55) -----------------------
# NOTE [a Function's apply read in the compiled frame] in runtime/calls.py. `_Squared.backward`
# is 3 * x * g, so a gradient equal to Python's is the Function's.


class _Box:
    pass


def apply_read_into_a_name_and_a_field(x):
    a = _Squared.apply
    box = _Box()
    box.act = _Squared.apply
    times_two = functools.partial(_TimesK.apply, k=2.0)
    if x.sum() > 0:
        y = a(x) + box.act(x * 0.5) + times_two(x) * 0.25
    else:
        y = x - 1
    while y.sum() < 40:
        y = box.act(y) + 1
    return y


class _ApplySetInForward(torch.nn.Module):
    def forward(self, x):
        self.act = _Squared.apply
        if x.sum() > 0:
            return self.act(x) * 2
        return x * 3


_READ_INPUTS = [T([1.0, 2.0]), T([-1.0, -2.0]), T([5.0, 6.0])]  # if: both paths; while: 1, 0


@pytest.mark.parametrize("fn", [apply_read_into_a_name_and_a_field, _ApplySetInForward()],
                         ids=["name-and-field", "module-field"])
def test_a_functions_apply_read_inside_the_function(fn):
    # Before (compile): dynamo's "builtin isinstance() cannot determine type of argument
    # GetAttrVariable(AutogradFunctionVariable(), apply)", from the `if`'s runtime (or torch's
    # own nn.Module.__setattr__ for `self.act = ...`)
    assert_same_result(fn, [(x,) for x in _READ_INPUTS], compile=False)
    function = autoconv.autoconv(fn)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    for x0 in _READ_INPUTS:
        want, want_gradient = _value_and_gradient(fn, x0)
        for got, got_gradient in (_value_and_gradient(function, x0),
                                  _value_and_gradient(compiled, x0)):
            assert_close(got, want)
            assert_close(got_gradient, want_gradient)
    assert _value_and_gradient(fn, T([1.0, 2.0]))[1].tolist() == (
        [32.8125, 180.0] if fn is apply_read_into_a_name_and_a_field else [6.0, 12.0])
