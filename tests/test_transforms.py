"""Converted code under torch.func transforms (`vmap`, `grad`), with and without a tracer.

Reference: the original function as plain Python, one example at a time. Batches mix examples
that take different branches and different trip counts, so a result that follows one path for
the whole batch fails.
"""

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import autoconv
from autoconv_runtime import StagingError
from support import COND, WHILE_LOOP, assert_close, count_ops, function_from_source

BRANCH_TWO_OUTPUTS = function_from_source(
    """
    def f(x):
        if x.sum() > 0:
            y = x * 2
            z = x + 100
        else:
            y = -x
            z = x - 100
        return y, z
    """
)

COLLATZ = function_from_source(
    """
    def f(n):
        steps = torch.tensor(0)
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return steps
    """
)

EARLY_EXIT = function_from_source(
    """
    def f(x):
        total = torch.zeros(())
        for v in x:
            if v < 0:
                return total, v
            total = total + v
        return total, torch.zeros(())
    """
)

SHORT_CIRCUIT = function_from_source(
    """
    def f(x):
        if x[0] > 0 and x[1] > 0 or not x.sum() < 5:
            return x.sum()
        return x.prod()
    """
)

NEWTON = function_from_source(
    """
    def f(a):
        x = a / 2 + 1
        while torch.abs(x * x - a) > 1e-4:
            x = (x + a / x) / 2
        return x
    """
)


def _per_example(fn, batch):
    results = [fn(example) for example in batch]
    if isinstance(results[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*results))
    return torch.stack(results)


ROWS = torch.tensor([[1.0, 2.0, 3.0], [-3.0, -1.0, 4.0], [2.0, -5.0, 1.0], [0.0, 0.0, 0.0]])

VMAP_CASES = {
    "branch_two_outputs": (BRANCH_TWO_OUTPUTS, ROWS),
    "while_trip_count_per_example": (COLLATZ, torch.tensor([1, 2, 3, 6, 7, 27])),
    "for_with_early_return": (EARLY_EXIT, ROWS),
    "and_or_not": (SHORT_CIRCUIT, torch.tensor([[1.0, 2.0], [-1.0, 9.0], [1.0, -1.0],
                                                [-4.0, 2.0]])),
    "newton_to_tolerance": (NEWTON, torch.tensor([2.0, 9.0, 0.25, 1e4])),
}


@pytest.mark.parametrize("case", sorted(VMAP_CASES))
def test_vmap_matches_python_per_example(case):
    fn, batch = VMAP_CASES[case]
    assert_close(torch.vmap(autoconv.convert(fn))(batch), _per_example(fn, batch))


def test_nested_vmap():
    batch = torch.tensor([[1, 2, 3], [6, 7, 27]])
    expected = torch.stack([_per_example(COLLATZ, row) for row in batch])
    assert_close(torch.vmap(torch.vmap(autoconv.convert(COLLATZ)))(batch), expected)


def test_vmap_branches_of_different_dtypes_name_the_variable():
    fn = function_from_source(
        """
        def f(x):
            if x.sum() > 0:
                y = x.to(torch.int64)
            else:
                y = x
            return y
        """
    )
    with pytest.raises(StagingError, match="'y'"):
        torch.vmap(autoconv.convert(fn))(ROWS)


GRAD_CASES = {
    "branch": (function_from_source(
        """
        def f(x):
            if x.sum() > 0:
                y = (x * x).sum()
            else:
                y = (x * 3).sum()
            return y
        """), [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])]),
    "newton": (NEWTON, [torch.tensor(2.0), torch.tensor(30.0)]),
}


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_grad_matches_autograd_on_python(case):
    fn, inputs = GRAD_CASES[case]
    converted_grad = torch.func.grad(autoconv.convert(fn))
    for x in inputs:
        leaf = x.clone().requires_grad_()
        (expected,) = torch.autograd.grad(fn(leaf), leaf)
        assert_close(converted_grad(x), expected)


def test_vmap_under_make_fx_traces_both_branches_and_a_select():
    graph = make_fx(torch.vmap(autoconv.convert(BRANCH_TWO_OUTPUTS)))(ROWS[:2])
    assert count_ops(graph, COND, WHILE_LOOP) == 0  # a per-example select, not one branch
    other = torch.tensor([[-1.0, -1.0, -1.0], [5.0, 5.0, 5.0]])  # the other branches
    assert_close(graph(other), _per_example(BRANCH_TWO_OUTPUTS, other))


@pytest.mark.parametrize("transform, fn, example", [
    (torch.func.grad, GRAD_CASES["branch"][0], torch.tensor([1.0, 2.0])),
    (torch.vmap, COLLATZ, torch.tensor([3, 6])),
])
def test_transforms_torch_cannot_trace_raise_a_staging_error(transform, fn, example):
    with pytest.raises(StagingError, match=f"torch.func.{transform.__name__}") as info:
        make_fx(transform(autoconv.convert(fn)))(example)
    assert info.value.filename == fn.__code__.co_filename


# --- transforms inside a function autoconv traces ----------------------------------------------

TIMES = torch.linspace(0, 3, 12, dtype=torch.float64)


def _decay(a, b):
    return a * torch.exp(-b * TIMES)


def per_row_jacobian(params):
    # levmarq-torch's Jacobian: jacrev's own in-place ops on the tensors vmap wraps were taken
    # for updates of outside tensors and put back after the trace, outside vmap (functorch's
    # "your tensor may have escaped from inside a function being vmapped")
    jac = torch.func.vmap(lambda row: torch.func.jacrev(_decay, (0, 1))(*row))
    return torch.stack(jac(params), -1)


def test_vmap_of_jacrev_inside_a_traced_function():
    fn = autoconv.autoconv(per_row_jacobian)
    for params in (torch.tensor([[1.0, 1.0], [2.0, 0.5]], dtype=torch.float64),
                   torch.tensor([[0.5, 2.0], [3.0, 0.0]], dtype=torch.float64)):
        assert_close(fn(params), per_row_jacobian(params))
    assert fn.trace_count == 1
    assert_close(torch.compile(autoconv.convert(per_row_jacobian), fullgraph=True,
                               backend="eager")(params), per_row_jacobian(params))
