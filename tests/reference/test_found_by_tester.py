"""Reduced programs from converting published code (kornia 0.9.0's canny / gaussian_blur2d)."""

import pytest
import torch
from torch.nn.functional import relu
from torch.compiler import is_compiling as _is_compiling

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_result


def annotated_then_branched(x):
    # kornia's _gaussian_blur2d: `host_sigma: T` alone, then assigned in every branch.
    h: torch.Tensor
    if x.sum() > 0:
        h = x * 2
    else:
        h = -x
    return h


def test_a_bare_annotation_binds_nothing_before_a_staged_if():
    # It counted as an assignment: the if passed the unbound name as its state
    # (UnboundLocalError while tracing, in every mode).
    assert_same_result(annotated_then_branched, [torch.ones(3), -torch.ones(3)], compile=False)


def _library_flag():
    return _is_compiling()


def torch_functions_by_name(x):
    # kornia calls `torch.compiler.is_compiling` by an alias; `relu` imported by name.
    if _library_flag():
        x = x + 0
    if x.sum() > 0:
        x = x - 1
    return relu(x)


def test_torch_functions_called_by_a_bare_name_under_torch_compile():
    # converted_call read the torch function's __dict__, which dynamo cannot:
    # "torch._dynamo.exc.Unsupported: Unsupported method call".
    assert_same_result(torch_functions_by_name, [torch.ones(3), -torch.ones(3)], export=False)


def _check(ok, message):
    if not ok:
        raise ValueError(message)


def message_chosen_by_a_tensor(x):
    positive = bool((x > 0).all())
    _check(positive, "x must be positive" if positive else f"x must be positive, got {x}")
    return x * 2


def test_a_str_chosen_by_a_tensor_condition_is_specialised():
    # It was refused as "in a tensor-dependent if statement" (no if, no value named); since
    # specialisation, the top-level conditional expression follows its condition under a guard.
    function = autoconv.autoconv(message_chosen_by_a_tensor)
    assert torch.equal(function(torch.ones(2)), torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="x must be positive"):
        function(-torch.ones(2))


def grow_columns_until_zero(x):
    # A beam-search shape: each step appends a column, and a tensor test stops early.
    seqs = torch.zeros(2, 0)
    for t in range(3):
        seqs = torch.cat([seqs, x[:, t:t + 1]], 1)
        if x[0, t] == 0:
            break
    return seqs


def test_a_tensor_grown_along_dim_1_in_a_loop_with_a_tensor_break():
    # It let torch's internal PendingUnbackedSymbolNotFound escape while the range was unrolled
    # under torch.conds; the range is now one staged loop, in which the column count would
    # depend on the trip count: refused at the line that grows it.
    x = torch.tensor([[1., 2., 0.], [3., 4., 5.]])
    with pytest.raises(StagingError, match="slices a tensor by a number the graph computes") \
            as caught:
        autoconv.autoconv(grow_columns_until_zero)(x)
    assert caught.value.lineno == grow_columns_until_zero.__code__.co_firstlineno + 4


def iterate_until_tolerance(x):
    # Sinkhorn / gradient descent / CG: `for it in range(max_iter): ...; if err < tol: break`.
    for _ in range(4):
        x = x * 0.5
        if x.abs().max() < 0.1:
            break
    return x


def iterate_until_tolerance_longer(x):
    for _ in range(40):
        x = x * 0.5
        if x.abs().max() < 0.1:
            break
    return x


def test_a_python_range_with_a_tensor_break_is_one_loop():
    from tests.support import COND, WHILE_LOOP, count_ops
    # It stayed a Python loop whose every iteration after the first was a torch.cond holding a
    # copy of the body (gradient descent with range(100): 110 s to trace). Now the first
    # iteration runs as Python (its break is one cond) and the rest of the range is one
    # while_loop: the graph does not grow with the range.
    concrete = assert_same_result(iterate_until_tolerance, [torch.ones(2), torch.ones(2) * 0.15,
                                                            torch.ones(2) * 100])
    assert count_ops(concrete.graph_module, WHILE_LOOP) == 1, concrete.code
    longer = autoconv.autoconv(iterate_until_tolerance_longer).get_concrete_function(torch.ones(2))
    assert (count_ops(longer.graph_module, COND, WHILE_LOOP)
            == count_ops(concrete.graph_module, COND, WHILE_LOOP)), longer.code


def accept_step(k, y0, accept):
    # torchdiffeq's bosh3 / adaptive_heun step with a 1-element state: the branch's value is a
    # slice whose size-1 dimension has stride 4, which torch.cond refused ("output stride is
    # not a simple accumulative multiplication of sizes")
    y = y0
    if accept:
        y = k[:, 0]
    return y + 1


def test_a_slice_with_a_size_1_dimension_as_a_branch_value():
    k = torch.arange(4.).reshape(1, 4)
    assert_same_result(accept_step, [(k, torch.zeros(1), torch.tensor(True)),
                                     (k, torch.zeros(1), torch.tensor(False))])


_BORDERS = {"reflect", "replicate"}


def message_naming_a_set(x, border="reflect"):
    # kornia's filter2d check: an f-string that formats a set of the valid options.
    _check(border in _BORDERS, f"Invalid border {border}. Expected one of {_BORDERS}")
    if x.sum() > 0:
        x = x * 2
    return x


def test_an_f_string_that_formats_a_set_under_torch_compile():
    # `format(a_set, "")` fails inside dynamo (KeyError); converted f-strings used it.
    assert_same_result(message_naming_a_set, [torch.ones(3), -torch.ones(3)], export=False)


def _solve(matmul, b, steps):
    # A conjugate-gradient-like helper that takes the operator as a callback (linear_operator's
    # minres, GPyTorch's CG).
    x = torch.zeros_like(b)
    r = b - matmul(x)
    k = 0
    while r.abs().sum() > 1e-3 and k < steps:
        x = x + 0.5 * r
        r = b - matmul(x)
        k += 1
    return x


def solve_with_closures(A, b):
    def scaled(v):
        return A @ v * 1.0
    return _solve(lambda v: A @ v, b, 50) + _solve(scaled, b, 3)


def test_a_closure_over_a_tensor_passed_to_a_helper_under_torch_compile():
    # A closure made inside the compiled region is no constant for dynamo: asking whether it
    # runs as it is raised "ClosureConversionError: failed to convert closure cell to Python
    # constant".
    A = torch.eye(3) * 1.5
    assert_same_result(solve_with_closures, [(A, torch.ones(3)), (A, torch.zeros(3))])
