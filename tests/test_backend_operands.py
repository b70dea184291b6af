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
from autoconv.backends import build
from autoconv.python_backend import (_SCALAR_OPERAND_OPS, _as_subscript, _compared_as_numbers,
                                      _scalar_operand)

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
    # float16 and bfloat16: a number the dtype holds exactly (speed37), not one it rounds
    for dtype in (torch.float16, torch.bfloat16):
        for number in (1, 0.5, -2, 300, True, math.inf):
            assert _scalar_operand(_node(aten.add.Tensor, _values(dtype), number)) is not None
        for number in (0.1, 2049 if dtype == torch.float16 else 257, 1e-45, math.nan, 2 ** 63 - 1):
            assert _scalar_operand(_node(aten.add.Tensor, _values(dtype), number)) is None
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


def nms_mask(boxes, scores):
    """benchmarks/loops.py's suppression mask: a `for` unrolled into one staged `if` a box."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    width = (torch.minimum(x2[:, None], x2[None, :]) -
             torch.maximum(x1[:, None], x1[None, :])).clamp(min=0)
    height = (torch.minimum(y2[:, None], y2[None, :]) -
              torch.maximum(y1[:, None], y1[None, :])).clamp(min=0)
    inter = width * height
    iou = inter / (area[:, None] + area[None, :] - inter)
    n = boxes.shape[0]
    index = torch.arange(n, device=boxes.device)
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    for i in range(n):
        if keep[i]:
            keep = keep & ((iou[i] <= 0.5) | (index <= i))
    return order, keep


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g) * 40
    size = torch.rand(n, 2, generator=g) * 30 + 5
    return torch.cat([corner, corner + size], 1), torch.rand(n, generator=g)


def test_a_branch_per_box_runs_the_ops_eager_runs_and_no_more():
    """speed34: each unrolled `if keep[i]:` of nms_mask is `keep[i]`, its truth value, and in
    the branch `iou[i]`, a `le` at a 0-d operand made once, and an `or` and an `and` into the
    fresh mask; the branches' in-place choice is made once per call, their result is no tuple
    and the unread `arange` is gone. Values bit for bit as eager's, grad on and off."""
    inputs = [_boxes(8, seed) for seed in range(4)]
    function = autoconv.autoconv(nms_mask)
    function(*inputs[0])
    runner = function.concrete_functions[0]._runner
    source = runner.__autoconv_source__
    assert source.count("is_grad_enabled()") == 1, source
    assert not re.search(r"\ble\(\w+, 0\.5\)", source), source
    operands = set(re.findall(r"\ble\(\w+, (scalar_\d+)\)", source))
    assert len(operands) == 1, source  # one tensor for the eight branches' 0.5
    operand = runner.__globals__[operands.pop()]
    assert operand.dim() == 0 and operand.dtype == torch.float32 and operand.item() == 0.5
    assert not re.search(r"\bselect\(\w+, 0, ", source), source  # `x[i]`
    assert len(re.findall(r"= (\w+)\[\d\]\n", source)) >= 16, source
    assert "_cond = (" not in source and "arange(" not in source, source
    assert len(re.findall(r"bitwise_and_or_in_place\(v\d+_bitwise_or, ", source)) == 8, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for boxes, scores in inputs:
                got, want = function(boxes, scores), nms_mask(boxes, scores)
                for g, w in zip(got, want):
                    assert g.dtype == w.dtype and torch.equal(g, w)


class _Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.embed = torch.nn.Embedding(16, 8)
        self.cell = torch.nn.GRUCell(8, 8)
        self.out = torch.nn.Linear(8, 16)

    def forward(self, h):
        token = torch.tensor(1)
        tokens = []
        steps = 0
        while token != 0 and steps < 12:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
            steps += 1
        return torch.stack(tokens), h


def test_a_loop_test_with_a_staged_and_makes_no_tuple():
    """A loop test's staged `and` sets its result's local in each branch (no tuple a trip);
    the state's `unsqueeze(h, 0)` is `h[None]`, once, before the loop (speed35: the loop
    carries the state 2-d, `carried_as_read`)."""
    decoder = _Decoder().eval()
    function = autoconv.autoconv(decoder)
    hs = [torch.randn(8, generator=torch.Generator().manual_seed(s)) for s in range(6)]
    function(hs[0])
    source = function.concrete_functions[0]._runner.__autoconv_source__
    loop = source[source.index("while True:"):]
    assert "_cond = (" not in loop and "_cond[" not in loop, source
    assert re.search(r"= v\d+_arg\d+_1\[None\]\n", source[:source.index("while True:")]), source
    assert "[None]" not in loop, source
    lengths = set()
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for h in hs:
                got, want = function(h), decoder(h)
                lengths.add(len(want[0]))
                for g, w in zip(got, want):
                    assert g.dtype == w.dtype and torch.equal(g, w)
    assert len(lengths) > 1  # inputs taking other paths than the traced one


def _count_up(n, step: float):
    i = torch.zeros((), dtype=n.dtype)
    while i < n:
        i += step
    return i


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16), ids=str)
def test_a_reduced_precision_loop_adds_its_exact_number_as_a_0d_operand(dtype):
    """`while i < n: i += 1` on float16 is a tensor loop (no Python numbers for the dtype):
    its `1` is the 0-d operand the kernel reads, made once (speed37: the binding wrapped it
    on every trip, 1.10x eager's time per trip); `i += 0.1`, which the dtype rounds, keeps
    the number, which the kernel reads unrounded. Every result is eager's, bit for bit, for
    bounds that take 0, 1 and many trips."""
    for step, operand in ((1, True), (0.5, True), (0.1, False)):
        function = autoconv.autoconv(lambda n: _count_up(n, step))
        # (bfloat16's `i += 0.1` stops growing at 32, where it rounds back to i)
        for bound in (0.0, -3.0, 1.0, 2.5, 12.5, 100.0 if operand else 14.0):
            n = torch.tensor(bound, dtype=dtype)
            got, want = function(n), _count_up(n, step)
            assert got.dtype == want.dtype and torch.equal(got, want), (step, bound)
        (concrete,) = function.concrete_functions
        source = concrete._runner.__autoconv_source__
        uses_operand = re.search(r"add_or_in_place\d*\(\w+, scalar_\d+\)", source)
        assert bool(uses_operand) == operand, source


def test_subscripts_are_the_ops_they_stand_for():
    """`x[i]`, `x[None]` and `x[index]` (speed34) give what `select(x, 0, i)`,
    `unsqueeze(x, 0)` and `index(x, [index])` give: values, shape, strides, view or copy,
    gradient; a 0-d index keeps the op (a subscript takes it as a select, a view)."""
    def views(x, i):
        return (x.select(0, 2), x.select(0, -1), x.unsqueeze(0), x[i] * 2, x[x[:, 0] > 0],
                x[i.int()])

    x = torch.randn(5, 3, dtype=torch.float64).t().contiguous().t()  # (strides (1, 5))
    i = torch.tensor([[4, 0], [-1, 2]])
    graph_module = make_fx(views)(x, i)
    source = build("python", graph_module, (x, i)).__autoconv_source__
    assert re.search(r"\[2\]\n", source) and re.search(r"\[-1\]\n", source), source
    assert "[None]" in source and "index(" not in source, source
    assert not re.search(r"select\(\w+, 0, ", source), source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            leaf = x.clone().requires_grad_(grad)
            got = build("python", graph_module, (x, i))(leaf, i)
            want = views(leaf, i)
            for g, w in zip(got, want):
                assert g.shape == w.shape and g.stride() == w.stride() and torch.equal(g, w)
                assert (g._base is None) == (w._base is None)
            if grad:
                got_grads = torch.autograd.grad(sum(g.sum() for g in got), leaf)
                want_grads = torch.autograd.grad(sum(w.sum() for w in want), leaf)
                assert torch.equal(got_grads[0], want_grads[0])
    graph = torch.fx.Graph()
    source_node, index_node = graph.placeholder("x"), graph.placeholder("k")
    source_node.meta["val"], index_node.meta["val"] = x, torch.tensor(1)
    assert _as_subscript(graph.call_function(aten.index.Tensor, (source_node, [index_node]))) \
        is None
    with pytest.raises(IndexError) as error:
        torch.ops.aten.index.Tensor(x, [torch.tensor([7])])
    out_of_range = make_fx(lambda x, k: x[k] * 1)(x, torch.tensor([1]))
    with pytest.raises(type(error.value), match=re.escape(str(error.value))):
        build("python", out_of_range, (x, torch.tensor([1])))(x, torch.tensor([7]))


_COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")


@pytest.mark.parametrize("name", _COMPARISONS)
def test_a_comparison_deciding_an_if_is_taken_on_the_numbers_torch_compares(name):
    """NOTE [a staged if's comparison taken on numbers]: where `_compared_as_numbers` takes a
    comparison of a 0-d tensor with a number (or of two 0-d tensors of one dtype) on Python
    numbers, the Python comparison of the items with the number it gives is torch's truth,
    for every value and number of each real dtype (float32's 0.05 is not 0.05, nan unequal,
    -0.0 equal to 0.0); integers outside the dtype, which torch wraps, and numbers that
    promote keep the op."""
    scalar, tensor = getattr(aten, name).Scalar, getattr(aten, name).Tensor
    taken = 0
    for dtype, number in itertools.product(_DTYPES, _NUMBERS + (0.05, 16777217, -0.5)):
        for value in _values(dtype):
            try:
                want = bool(scalar(value, number))
            except (RuntimeError, TypeError):
                continue
            compared = _compared_as_numbers(_node(scalar, value, number))
            if compared is None:
                continue
            taken += 1
            (operand,), function, (other,) = compared
            assert function(value.item(), other) is want, (dtype, value, number)
    assert taken > 400
    for dtype in _DTYPES:
        values = _values(dtype)
        for a, b in itertools.product(values, values):
            graph = torch.fx.Graph()
            x, y = graph.placeholder("x"), graph.placeholder("y")
            x.meta["val"], y.meta["val"] = a, b
            compared = _compared_as_numbers(graph.call_function(tensor, (x, y)))
            assert (compared is None) == (dtype in (torch.complex64, torch.bool)), dtype
            if compared is not None:
                assert compared[1](a.item(), b.item()) is bool(tensor(a, b)), (dtype, a, b)


class _Branchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(3))

    def forward(self, x, limit):
        for layer in self.layers:
            x = torch.relu(layer(x))
            if x.mean() > 0.05:
                x = x * 0.5
            else:
                x = x + 0.1
            if x.sum() <= limit:
                x = x - 1
        return x


def test_a_staged_ifs_comparison_is_a_python_comparison_of_items():
    """The branchy seed model's `if x.mean() > 0.05:` is `item(mean) > 0.05000000074505806`
    (float32's 0.05) in the generated code, and `x.sum() <= limit` of two 0-d float32 tensors
    `item(sum) <= item(limit)`: no `gt` / `le` dispatch and no `bool()` of a 0-d tensor. The
    values are eager's, bit for bit, on inputs taking each path, grad on and off."""
    model = _Branchy().eval()
    function = autoconv.autoconv(model)
    xs = [torch.randn(4, 8, generator=torch.Generator().manual_seed(s)) * s for s in range(6)]
    limits = [torch.tensor(v) for v in (-1e9, 0.0, 3.0, 1e9)]
    function(xs[0], limits[0])
    source = function.concrete_functions[0]._runner.__autoconv_source__
    assert re.search(r"\(v\d+_item > 0\.05000000074505806\)", source), source
    assert re.search(r"\(v\d+_item_\d+ <= v\d+_item_\d+\)", source), source
    assert not re.search(r"\b(gt|le)\(", source), source
    paths = set()
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for x, limit in itertools.product(xs, limits):
                got, want = function(x, limit), model(x, limit)
                assert got.dtype == want.dtype and torch.equal(got, want)
                paths.add(float(want.sum()) > 0)
    assert function.trace_count == 1 and len(paths) == 2
