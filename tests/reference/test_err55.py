"""Reference tests: err55 (issue 10), refusals and internal errors where Python runs: an
in-place write in a staged `if` to a tensor autograd saved (brk54b's wrong refusal), a
Function's `apply` stored on an object by the function on every call, a thread pool running
the user's code while traced."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError

T = torch.tensor


def _scaled_in_place(p, x):
    w = p * 1
    if x.sum() > 0:
        w.mul_(x)
    return w


def _scaled_in_place_by_a_number(p, x):
    w = p * 1
    if x.sum() > 0:
        w.mul_(2.0)
    else:
        w.mul_(x.sum())
    return w


def _scaled_in_place_in_a_nested_if(p, x):
    w = p * 1
    if x.sum() > 0:
        if x[0] > 1:
            w.mul_(x)
        else:
            w.add_(x)
    return w


def _scaled_in_place_in_a_for(p, x):
    w = p * 1
    for i in range(x.shape[0]):
        if x[i] > 2.5:
            w.mul_(x)
    return w


def _gradients(fn, p, x):
    p, x = p.clone().requires_grad_(), x.clone().requires_grad_()
    out = fn(p, x)
    grads = torch.autograd.grad(out.sum(), (p, x), allow_unused=True)
    # (torch's cond gives a zero gradient where Python's path never read `x`: None)
    return [out.detach()] + [torch.zeros_like(v) if g is None else g
                             for g, v in zip(grads, (p, x))]


_P = T([1.0, 2.0, 3.0])
_TRACED, _OTHER = T([-2.0, -3.0, -4.0]), T([2.0, 3.0, 4.0])


# (brk54b) The python backend dropped the branch's copy of `w` (nothing in the branch writes
# it), so `mul(w, x)` saved the caller's `w` for x's gradient and the caller's copy-back wrote
# it: torch's "modified by an inplace operation" at backward, where Python gives w [2, 6, 12],
# p.grad [2, 3, 4], x.grad [1, 2, 3] (NOTE [operands the caller writes after a cond]).
@pytest.mark.parametrize("fn", [_scaled_in_place, _scaled_in_place_by_a_number,
                                _scaled_in_place_in_a_nested_if, _scaled_in_place_in_a_for])
@pytest.mark.parametrize("backend", ["python", "fx"])
def test_an_in_place_write_in_a_staged_if_to_a_tensor_autograd_saved(fn, backend):
    function = autoconv.autoconv(fn, backend=backend)
    function(_P.clone().requires_grad_(), _TRACED.clone().requires_grad_())
    for x in (_OTHER, _TRACED):
        for got, want in zip(_gradients(function, _P, x), _gradients(fn, _P, x)):
            torch.testing.assert_close(got, want)
    assert function.trace_count == 1
    assert _gradients(_scaled_in_place, _P, _OTHER)[1].tolist() == [2.0, 3.0, 4.0]


class _Calling(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return autoconv.convert(self.fn)(*args)


@pytest.mark.parametrize("mode", ["export", "compile"])
def test_an_in_place_write_in_a_staged_if_to_a_tensor_autograd_saved_exported(mode):
    if mode == "export":
        saved = io.BytesIO()
        torch.export.save(torch.export.export(_Calling(_scaled_in_place), (_P, _TRACED)), saved)
        saved.seek(0)
        run = torch.export.load(saved).module()
    else:
        torch._dynamo.reset()
        run = torch.compile(autoconv.convert(_scaled_in_place), fullgraph=True,
                            backend="eager")
    for x in (_OTHER, _TRACED):
        for got, want in zip(_gradients(run, _P, x), _gradients(_scaled_in_place, _P, x)):
            torch.testing.assert_close(got, want)


class _Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):  # (3x, not the square's 2x: the gradient shows whose backward ran)
        (x,) = ctx.saved_tensors
        return 3 * x * g


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.act = None

    def forward(self, x):
        self.act = _Cube.apply
        if x.sum() > 0:
            return self.act(x)
        return -x


# (`self.act = Fn.apply` makes a new bound method on each call: its identity guard failed
# right after every trace, "traced with the object then held by self.act, which now holds
# another one", where Python gives [1, 4, 9] and the gradient [3, 6, 9])
def test_a_functions_apply_stored_on_the_module_by_its_forward():
    net = _Net()
    function = autoconv.autoconv(net)
    function((-_P).requires_grad_())
    gradients = []
    for x in (_P, -_P):
        got_x, want_x = x.clone().requires_grad_(), x.clone().requires_grad_()
        got, want = function(got_x), net(want_x)
        got.sum().backward()
        want.sum().backward()
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got_x.grad, want_x.grad)
        gradients.append(want_x.grad.tolist())
    # (two traces: the first was keyed by `module.act=None`, the module's field before it)
    assert function.trace_count == 2
    assert gradients == [[3.0, 6.0, 9.0], [-1.0, -1.0, -1.0]]


def _doubled_or_negated(c):
    if c.sum() > 0:
        return c * 2
    return -c


def _mapped_by_a_pool(x):
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(_doubled_or_negated, x.chunk(2)))
    return torch.cat(outs)


def _submitted_to_a_pool(x):
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(torch.mul, c, 2) for c in x.chunk(2)]
    return torch.cat([f.result() for f in futures])


# (the pool's threads computed on the trace's fake tensors with no tracer: autoconv's
# internal error "left a value of the trace (FakeTensor) as the graph constant", torch.export's
# "We found a fake tensor in the exported program constant's list", or, through a tensor `if`,
# "fake_mode.in_kernel_invocation must be False"; dynamo's "Dynamo does not know how to trace
# method `__new__` of class `type`"; NOTE [code run on other threads while traced])
@pytest.mark.parametrize("fn", [_mapped_by_a_pool, _submitted_to_a_pool])
@pytest.mark.parametrize("mode", ["staged", "export", "compile"])
def test_a_thread_pool_running_the_users_code_is_refused_at_the_line(fn, mode):
    x = T([1.0, 2.0, -3.0, -4.0])
    assert fn(x).tolist() in ([2.0, 4.0, 3.0, 4.0], [2.0, 4.0, -6.0, -8.0])
    if mode == "staged":
        run = autoconv.autoconv(fn)
    elif mode == "export":
        run = lambda x: torch.export.export(_Calling(fn), (x,), strict=False)  # noqa: E731
    else:
        torch._dynamo.reset()
        run = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    with pytest.raises(StagingError, match=r"test_err55\.py:\d+: .*`ThreadPoolExecutor"
                       r"(\.map|\.submit)?\(\.\.\.\)` runs your code on other threads"):
        run(x)
    assert autoconv.autoconv(fn).python_function(x).tolist() == fn(x).tolist()


class _Dropped(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        mask = (torch.rand_like(x) > 0.5).to(x.dtype)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


def _gradient_through_a_drawing_function(x):
    y = x.clone().requires_grad_(True)
    if x.sum() > 0:
        out = _Dropped.apply(y)
    else:
        out = -y
    (g,) = torch.autograd.grad(out.sum(), y)
    return out.detach(), g


# (the replay's backward ran the forward again and drew another mask: `g` differed from
# `out != 0` on every call, where Python's are equal; NOTE [a Function's forward run again
# for its backward])
def test_a_gradient_inside_through_a_function_whose_forward_draws_is_refused():
    x = torch.arange(1.0, 65.0)
    out, g = _gradient_through_a_drawing_function(x)
    assert torch.equal((out != 0).to(g.dtype), g)
    with pytest.raises(StagingError, match=r"test_err55\.py:\d+: .*_Dropped\.forward draws "
                       r"random numbers \(rand_like\.default\)"):
        autoconv.autoconv(_gradient_through_a_drawing_function)(x)
