"""Findings of tester 46 written without the libraries they came from (those are in
tests/real/test_tester46.py): each kind checked against plain Python in every mode."""

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
