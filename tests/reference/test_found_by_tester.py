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
    assert_same_result(annotated_then_branched, [torch.ones(3), -torch.ones(3)])


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


def test_a_str_chosen_by_a_tensor_condition_is_refused_as_a_conditional_expression():
    # It was refused as "in a tensor-dependent if statement: the value becomes a Python str ...
    # move its assignment out of the if statement": no if, no value named, no assignment.
    with pytest.raises(StagingError, match=r"conditional expression: 'a if c else b' gives a "
                                           r"Python str on its true side") as caught:
        autoconv.autoconv(message_chosen_by_a_tensor)(torch.ones(2))
    assert "test_found_by_tester.py" in str(caught.value)
