"""The python backend's operands (speed34): Python numbers given to the kernel as the 0-d
tensors it reads for them, `select` as a subscript, pointwise writes into a fresh operand.
What the generated code holds, and that every value is the one eager computes, bit for bit."""

import itertools
import math
import re

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import autoconv
from autoconv.backends import build, compile_python
from autoconv.python_backend import _SCALAR_OPERAND_OPS, _scalar_operand, lower

aten = torch.ops.aten

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
           torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
_NUMBERS = (0, 1, -1, 2, 3, 300, -129, 2 ** 31 + 1, 2 ** 40 + 1, 2 ** 63 - 1, True, False,
            0.5, 0.1, -0.0, 1e-45, 3.4e38, 1e300, math.inf, -math.inf, math.nan, 2.5)


def _values(dtype):
    if dtype == torch.bool:
        return torch.tensor([True, False, True, False])
    if dtype.is_floating_point or dtype.is_complex:
        base = torch.tensor([0.0, -0.0, 0.1, 0.5, -2.5, 1e-45, 3.4e38, 1e300, math.inf,
                             -math.inf, math.nan, 7.0, -1.0, 300.0, 2.0 ** 40 + 1])
        return base.to(dtype)
    info = torch.iinfo(dtype)
    return torch.tensor([0, 1, -1 if info.min < 0 else 2, 3, info.max, info.min, 7, 100,
                         -7 if info.min < 0 else 9], dtype=torch.int64).to(dtype)


def _node(op, value, number):
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    x.meta["val"] = value
    return graph.call_function(op, (x, number))


def _same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.is_floating_point:
        assert torch.equal(torch.isnan(got), torch.isnan(want))
        same = torch.where(torch.isnan(want), torch.zeros_like(want), want)
        other = torch.where(torch.isnan(got), torch.zeros_like(got), got)
        assert torch.equal(other, same) and torch.equal(torch.signbit(other),
                                                         torch.signbit(same))
    else:
        assert torch.equal(got, want)


@pytest.mark.parametrize("packet", sorted(_SCALAR_OPERAND_OPS, key=str), ids=str)
def test_a_number_operand_is_the_0d_tensor_its_kernel_reads(packet):
    """NOTE [Python numbers as 0-d operands]: where the backend gives the kernel a 0-d tensor
    for the number, the op's result is the number's, bit for bit, in dtype and value; where
    it cannot be (type promotion, reduced precision, complex, integer true division), it
    keeps the number."""
    taken = 0
    for dtype, number in itertools.product(_DTYPES, _NUMBERS):
        value = _values(dtype)
        for overload in packet.overloads():
            op = getattr(packet, overload)
            try:
                want = op(value, number)
            except (RuntimeError, TypeError):
                continue
            operand = _scalar_operand(_node(op, value, number))
            if operand is None:
                continue
            taken += 1
            assert operand.dim() == 0 and operand.device.type == "cpu"
            # the binding's own entry at the tensor (what the generated code calls)
            got = getattr(torch, packet.__name__)(value, operand)
            _same_bits(got, want)
            for zero_d in (value[2], value[2:3]):  # a 0-d and a one-element tensor
                _same_bits(getattr(torch, packet.__name__)(zero_d, operand), op(zero_d, number))
        for dtype_kept in (torch.float16, torch.bfloat16, torch.complex64):
            assert _scalar_operand(_node(getattr(packet, packet.overloads()[0]),
                                         _values(dtype_kept), 0.1)) is None
    assert taken > 20
    # integers meeting a float: the result is a float, the number stays
    assert _scalar_operand(_node(aten.mul.Tensor, _values(torch.int64), 0.5)) is None
    assert _scalar_operand(_node(aten.div.Tensor, _values(torch.int64), 2)) is None
    assert _scalar_operand(_node(aten.add.Tensor, _values(torch.bool), 2)) is None
    # not on a GPU's tensors (not measured there)
    meta = torch.empty(3, device="meta")
    assert _scalar_operand(_node(aten.mul.Tensor, meta, 0.5)) is None


def test_a_number_operand_keeps_its_gradient():
    def scale(x):
        return (x * 0.1 + 3) / 7.0 - 2

    x = torch.randn(5, dtype=torch.float64)
    graph_module = make_fx(scale)(x)
    runner = build("python", graph_module, (x,))
    assert re.search(r"mul\(\w+, scalar_\d+\)", runner.__autoconv_source__)
    for dtype in (torch.float32, torch.float64):
        leaf = x.to(dtype).requires_grad_()
        graph_module = make_fx(scale)(leaf.detach())
        got = build("python", graph_module, (leaf.detach(),))(leaf)
        got = got[0] if isinstance(got, (list, tuple)) else got
        want = scale(leaf)
        _same_bits(got.detach(), want.detach())
        (got_grad,) = torch.autograd.grad(got.sum(), leaf)
        (want_grad,) = torch.autograd.grad(want.sum(), leaf)
        _same_bits(got_grad, want_grad)
