"""Reference tests: gradients taken inside the function through a staged `if` / loop whose body
torch's backward cannot give as Python does (issue 10, err55 and brk55: NOTE [gradients inside
the function through a staged body] in runtime/staging/inner_gradients.py)."""

import pytest
import torch
import torch.nn.functional as F

import autoconv
from autoconv_runtime import StagingError
from tests.support import COND, count_ops, exported

_X = torch.arange(1.0, 65.0)


def _draws_in_a_branch(draw):
    def fn(x):
        y = x.clone().requires_grad_(True)
        if x.sum() > 0:
            out = draw(y)
        else:
            out = y * 3
        (g,) = torch.autograd.grad(out.sum(), y)
        return out.detach(), g
    return fn


_DRAWS = {
    "dropout": lambda y: F.dropout(y, 0.5),
    "rand_like": lambda y: y * (torch.rand_like(y) > 0.5),
    "bernoulli": lambda y: y * torch.bernoulli(torch.full_like(y, 0.5)),
    "multinomial": lambda y: y * torch.multinomial(torch.ones(64), 64, replacement=True),
    "normal_": lambda y: y * torch.empty_like(y).normal_(),
    "rrelu": lambda y: F.rrelu(y - 30.0, training=True),
}


# (was, for dropout: `g` another mask's than `out != 0`'s on every call in replay, both
# backends, silently; the exported program held the trace's fake mask)
@pytest.mark.parametrize("kind", sorted(_DRAWS))
def test_a_gradient_inside_through_a_branch_that_draws_is_refused(kind):
    fn = _draws_in_a_branch(_DRAWS[kind])
    out, g = fn(_X)
    if kind == "dropout":
        assert torch.equal(2 * (out != 0).to(g.dtype), g)
    with pytest.raises(StagingError, match=r"test_inner_gradients\.py:\d+: .*draws random "
                       r"numbers in the true branch, and a gradient through the if statement "
                       r"is taken inside the function \(line \d+\).*Draw the random numbers "
                       r"before the if"):
        autoconv.autoconv(fn)(_X)


def test_a_gradient_inside_through_a_branch_that_draws_is_refused_under_export():
    with pytest.raises(StagingError, match=r"test_inner_gradients\.py:\d+: .*native_dropout"):
        exported(_draws_in_a_branch(_DRAWS["dropout"]), (_X,))


def _draws_in_a_loop(x):
    y = x.clone().requires_grad_(True)
    out = y
    i = x.sum() * 0
    while i < x.sum() / 1000:
        out = F.dropout(out, 0.5)
        i = i + 1
    out.sum().backward()
    return out.detach(), y.grad


# (was `g` not `8 * (out != 0)` after three trips, silently)
def test_a_gradient_inside_through_a_loop_that_draws_is_refused():
    out, g = _draws_in_a_loop(_X)
    assert torch.equal(8 * (out != 0).to(g.dtype), g)
    with pytest.raises(StagingError, match=r"test_inner_gradients\.py:\d+: .*while loop: "
                       r".* draws random numbers in the loop's body"):
        autoconv.autoconv(_draws_in_a_loop)(_X)


def _dropout_in_a_branch(y):
    if y.sum() > 0:
        out = F.dropout(y, 0.5)
    else:
        out = y * 3
    return out


def _gradient_inside_a_draw_before_the_if(x):
    y = x.clone().requires_grad_(True)
    keep = (torch.rand_like(y) > 0.5).to(y.dtype)
    if x.sum() > 0:
        out = y * keep * 2
    else:
        out = y * 3
    (g,) = torch.autograd.grad(out.sum(), y)
    return out.detach(), g


# No false refusal: the gradient outside the function (the training case) and a mask drawn
# before the `if` (the fix the message gives) stay staged and right.
def test_a_branch_that_draws_with_gradients_outside_or_a_mask_drawn_before_stays_staged():
    function = autoconv.autoconv(_dropout_in_a_branch)
    for sign in (1.0, -1.0):
        y = (sign * _X).requires_grad_(True)
        out = function(y)
        out.sum().backward()
        want = 2 * (out != 0) if sign > 0 else torch.full_like(_X, 3.0)
        assert torch.equal(want.to(y.grad.dtype), y.grad)
    assert count_ops(function.get_concrete_function(y).graph_module, COND) >= 1
    function = autoconv.autoconv(_gradient_inside_a_draw_before_the_if)
    for sign in (1.0, -1.0):
        out, g = function(sign * _X)
        want = 2 * (out != 0) if sign > 0 else torch.full_like(_X, 3.0)
        assert torch.equal(want.to(g.dtype), g)


def _draws_in_a_nested_if(x):
    y = x.clone().requires_grad_(True)
    if x.sum() > 0:
        if x[0] > 0:
            keep = torch.rand_like(x) > 0.5
        else:
            keep = x > 0
        out = y * keep
    else:
        out = y * 3
    (g,) = torch.autograd.grad(out.sum(), y)
    return out.detach(), g


# A mask drawn in a nested `if` whose operands need no grad is seen by the enclosing one (was
# not refused in replay: the enclosing branch's backward drew the mask again).
def test_a_draw_in_a_nested_if_is_seen_by_the_enclosing_one():
    x = -torch.cat([_X[:1], -_X[1:8]])  # (the outer `if` true, the inner false)
    refused = (r"test_inner_gradients\.py:\d+: .*rand_like\.default draws random numbers in "
               r"the true branch")
    with pytest.raises(StagingError, match=refused):
        autoconv.autoconv(_draws_in_a_nested_if)(x)
    with pytest.raises(StagingError, match=refused):
        exported(_draws_in_a_nested_if, (x,))
