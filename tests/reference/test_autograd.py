"""Reference tests: `torch.autograd.grad` inside the body of a staged statement.

torch traces the bodies of cond / while_loop below the Autograd dispatch key; autoconv traces
them with the caller's Autograd keys (NOTE [autograd in staged bodies] in
runtime/staging/tracers/make_fx.py), so the gradient a body computes is recorded into its graph
as explicit ops. Replay and torch.export run it; under torch.compile dynamo refuses
`autograd.grad` in a cond / while_loop body (its own error). The inputs take different numbers
of steps.
"""

import pytest
import torch

import autoconv
from support import assert_same_result

T = torch.tensor


def _objective(y):
    return ((y - 3.0) ** 4).sum()


def descend_to_tolerance(x, tol):
    """Gradient descent on a function of the loop state, until the gradient is small."""
    steps = torch.zeros((), dtype=torch.int64)
    g = torch.ones_like(x)
    while g.abs().max() > tol and steps < 50:
        y = x.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = _objective(y)
        g = torch.autograd.grad(loss, y)[0]
        x = x - 0.01 * g
        steps += 1
    return x, steps


def newton_step_if_convex(x):
    """A branch that differentiates twice (a Hessian-vector product) only where it is taken."""
    if x.sum() > 0:
        y = x.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = (y ** 3).sum()
            (g,) = torch.autograd.grad(loss, y, create_graph=True)
            (hv,) = torch.autograd.grad(g, y, torch.ones_like(g))
        x = x - g.detach() / hv
    return x


_DESCENT_INPUTS = [(T([1.0, 2.0]), T(2.0)), (T([2.5, 3.5]), T(0.01)), (T([2.9, 3.1]), T(5.0))]


def test_autograd_grad_in_a_while_loop_body():
    assert_same_result(descend_to_tolerance, _DESCENT_INPUTS, compile=False)


def test_autograd_grad_twice_in_a_branch():
    assert_same_result(newton_step_if_convex, [(T([1.0, 2.0]),), (T([-1.0, -2.0]),)],
                       compile=False)


def test_gradient_ops_are_in_the_body_graph():
    concrete = autoconv.autoconv(descend_to_tolerance).get_concrete_function(*_DESCENT_INPUTS[0])
    body = concrete.graph_module.while_loop_body_graph_0
    # (y - 3) ** 4 differentiated: 4 * (y - 3) ** 3, as a pow by 3 in the body
    assert any(node.target is torch.ops.aten.pow.Tensor_Scalar and node.args[1] == 3
               for node in body.graph.nodes), body.code


def test_torch_compile_refuses_with_dynamos_error():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(descend_to_tolerance), fullgraph=True,
                             backend="eager")
    with pytest.raises(Exception, match="autograd"):  # noqa: PT011 - dynamo's own error
        compiled(*_DESCENT_INPUTS[0])
