"""The python backend's lowering: what it removes, what it must keep, and that it computes what
torch's own execution of the graph computes."""

import copy
import math
import random
import re
import warnings

import pytest
import torch
from torch.fx._lazy_graph_module import _LazyGraphModule
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

import autoconv
from autoconv.backends import build, compile_python
from autoconv.python_backend import _fast_entry, _int64_add, _int64_add_source, lower
from programs import halves_until_small
from reference.test_jumps import while_break

aten = torch.ops.aten


def _targets(graph_module):
    return [n.target for m in graph_module.modules() if isinstance(m, torch.fx.GraphModule)
            for n in m.graph.nodes if n.op == "call_function"]


def _graph(fn, *args):
    return make_fx(autoconv.convert(fn), tracing_mode="fake")(*args)


def _same_as_fx(graph_module, *args):
    want = graph_module(*[a.clone() for a in args])
    got = build("python", graph_module, args)(*[a.clone() for a in args])
    got, want = pytree.tree_leaves(got), pytree.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def counting(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n - 2
        steps += 1
    return steps


def test_in_place_on_fresh_tensors_becomes_functional_and_copies_go():
    graph_module = _graph(counting, torch.tensor(9))
    assert aten.add_.Tensor in _targets(graph_module)
    lowered = lower(graph_module)
    targets = _targets(lowered)
    assert aten.add_.Tensor not in targets and aten.add.Tensor in targets
    assert aten.clone.default not in targets
    assert aten.add_.Tensor in _targets(graph_module)  # the captured graph is left as it was
    for n in (0, 1, 2, 9, 10):
        _same_as_fx(graph_module, torch.tensor(n))


def test_in_place_on_an_input_stays_in_place():
    def bump(x):
        x += 1
        return x * 2

    graph_module = _graph(bump, torch.ones(2))
    assert aten.add_.Tensor in _targets(lower(graph_module))
    x = torch.ones(2)
    build("python", graph_module, (x,))(x)
    assert x.tolist() == [2.0, 2.0]  # the caller sees the write, as in Python


def pick(x, y):
    if x.sum() > 0:
        z = x  # the branch returns its input: the copy must stay
    else:
        z = y * 2
    return z


def test_branch_returning_its_input_keeps_the_copy():
    graph_module = _graph(pick, torch.ones(2), torch.ones(2))
    lowered = lower(graph_module)
    assert aten.clone.default in _targets(lowered)
    x = torch.ones(2)
    out = build("python", graph_module, (x, x))(x, torch.ones(2))[0]
    out += 1
    assert x.tolist() == [1.0, 1.0]


def keep_or_halve(x):
    y = x * 3
    if y.sum() > 100:
        y = y * 0.5  # the else keeps y: torch's cond returns a copy of it
    return y + 1


def keep_or_halve_and_read(x):
    y = x * 3
    z = y
    if y.sum() > 100:
        z = y * 0.5
    return z, y  # y read after the if: the copy stays


# NOTE [operands passed through a cond]: a branch that leaves a value as it was returns the
# operand itself where nothing else reads that memory after the `if` (a copy of a large tensor
# per untaken `if` was 8x eager's time).
@pytest.mark.parametrize("x", [torch.ones(4), torch.full((4,), 10.0)])  # else / then taken
def test_a_value_an_if_leaves_as_it_was_is_not_copied(x):
    graph_module = _graph(keep_or_halve, torch.ones(4))
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert "clone(" not in source
    _same_as_fx(graph_module, x)
    torch.testing.assert_close(autoconv.autoconv(keep_or_halve)(x), keep_or_halve(x))
    graph_module = _graph(keep_or_halve_and_read, torch.ones(4))
    assert "clone(" in compile_python(lower(graph_module)).__autoconv_source__
    _same_as_fx(graph_module, x)
    z, y = build("python", graph_module, (x,))(x)
    z.add_(1)  # the caller's write to one result does not reach the other
    torch.testing.assert_close(y, x * 3)


def test_linear_is_fused_and_ops_bind_to_c_functions():
    layer = torch.nn.Linear(3, 2)
    graph_module = make_fx(lambda w, b, x: torch.nn.functional.linear(x, w, b))(
        layer.weight.detach(), layer.bias.detach(), torch.ones(4, 3))
    lowered = lower(graph_module)
    assert aten.linear.default in _targets(lowered) and aten.addmm.default not in _targets(lowered)
    assert _fast_entry(aten.addmm.default) is torch._C._VariableFunctions.addmm
    assert _fast_entry(aten.linear.default) is torch._C._nn.linear
    assert _fast_entry(aten.add_.Tensor) is torch._C.TensorBase.add_
    # Private and non-aten ops keep their overload.
    assert _fast_entry(aten._to_copy.default) is aten._to_copy.default._op
    _same_as_fx(graph_module, layer.weight.detach(), layer.bias.detach(), torch.randn(4, 3))


def test_generated_source_is_python_control_flow():
    graph_module = _graph(pick, torch.ones(2), torch.ones(2))
    source = compile_python(graph_module).__autoconv_source__
    assert "    if " in source and "else:" in source
    assert "cond" not in source.replace("_cond", "")  # no torch.cond call left


@pytest.mark.parametrize("n", [0, 1, 5])
def test_loop_results_do_not_alias_inputs(n):
    def keep(x, n):
        while n > 0:
            n = n - 1
        return x, n

    graph_module = _graph(keep, torch.ones(2), torch.tensor(3))
    x, count = torch.ones(2), torch.tensor(n)
    outs = build("python", graph_module, (x, count))(x, count)
    outs[-1].add_(100)  # writing to a loop result must not reach the caller's tensor
    assert count.item() == n


class _OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the aten overloads that run."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


def _run_logged(runner, *args):
    with _OpLog() as log:
        out = runner(*args)
    return out, log.ops


def mlp(w1, b1, w2, b2, x):
    hidden = torch.nn.functional.linear(x, w1, b1).relu()
    return torch.sigmoid(torch.nn.functional.linear(hidden, w2, b2))


def _mlp_inputs():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g) for s in ((5, 3), (5,), (2, 5), (2,), (4, 3))]


def test_activation_writes_into_a_fresh_tensor_only_with_grad_off():
    inputs = _mlp_inputs()
    graph_module = make_fx(mlp)(*inputs)
    runner = build("python", graph_module, inputs)
    source = runner.__autoconv_source__
    assert "    grad = is_grad_enabled()" in source
    assert "relu_or_in_place = relu if grad else relu_" in source
    # sigmoid's result is the output: what matters is that its input is nobody else's.
    assert "sigmoid_or_in_place = sigmoid if grad else sigmoid_" in source
    want = graph_module(*inputs)
    with torch.no_grad():
        got, ops = _run_logged(runner, *inputs)
    assert {aten.relu_.default, aten.sigmoid_.default} <= set(ops)
    assert not {aten.relu.default, aten.sigmoid.default} & set(ops)
    torch.testing.assert_close(got, want)
    got, ops = _run_logged(runner, *inputs)
    assert {aten.relu.default, aten.sigmoid.default} <= set(ops)
    assert not {aten.relu_.default, aten.sigmoid_.default} & set(ops)
    torch.testing.assert_close(got, want)


def test_gradients_through_activations_match_eager():
    def net(x):
        h = torch.exp(torch.nn.functional.linear(x, w))  # exp saves its result for backward
        return torch.relu(h).sum() + torch.tanh(x * 3).sum()

    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, generator=g, requires_grad=True)
    x = torch.randn(2, 4, generator=g, requires_grad=True)
    f = autoconv.autoconv(net)
    want_x, want_w = torch.autograd.grad(net(x), (x, w))
    got_x, got_w = torch.autograd.grad(f(x), (x, w))
    source = f.concrete_functions[0]._runner.__autoconv_source__
    assert "relu_or_in_place" in source and "tanh_or_in_place" in source
    torch.testing.assert_close(got_x, want_x)
    torch.testing.assert_close(got_w, want_w)


_ROW = torch.tensor([1.0, -2.0, 3.0])


def shared(x, n):
    y = x * 2
    z = torch.relu(y) + y  # y is read again after relu
    view = torch.relu(z.view(-1))  # a view of z, which is returned
    inputs = torch.relu(x)  # the caller's tensor
    counts = torch.sigmoid(n * 3)  # int64 in, float out
    grown = torch.mul(x.sum() * 2, _ROW)  # a 0-d tensor times a constant row: a larger result
    return z, view, inputs, counts, grown


def test_activation_stays_functional_where_the_write_would_show():
    args = (torch.randn(2, 3), torch.tensor([1, 2]))
    graph_module = make_fx(shared)(*args)
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert "relu_or_in_place" not in source and "sigmoid_or_in_place" not in source
    # x.sum() * 2 may be computed in place (the sum is fresh); its product with _ROW may not.
    assert re.search(r"mul_or_in_place\(v\d+_sum", source)
    assert [line for line in source.splitlines() if "attr_" in line][0].split(" = ")[1] \
        .startswith("mul(")
    x = args[0].clone()
    with torch.no_grad():
        got = build("python", graph_module, args)(x, args[1])
    torch.testing.assert_close(x, args[0])
    for g, w in zip(got, shared(*args)):
        torch.testing.assert_close(g, w)


def test_unsafe_view_is_not_a_fresh_tensor():
    def f(a, b):
        product = aten.mm.default(a, b)
        flat = aten._unsafe_view.default(product, [6])  # shares product's memory
        return product, aten.relu.default(flat)

    args = (torch.randn(2, 3), torch.randn(3, 3))
    graph_module = make_fx(f)(*args)
    assert aten._unsafe_view.default in _targets(graph_module)
    assert "_or_in_place" not in compile_python(graph_module).__autoconv_source__
    with torch.no_grad():
        product, _ = build("python", graph_module, args)(*args)
    torch.testing.assert_close(product, args[0] @ args[1])


def test_in_place_activation_inside_a_branch_matches_fx():
    def branchy(x):
        if x.sum() > 0:
            y = torch.relu(x * 2)
        else:
            y = torch.tanh(x - 1)
        return y

    graph_module = _graph(branchy, torch.ones(3))
    assert "relu_or_in_place" in compile_python(lower(graph_module)).__autoconv_source__
    with torch.no_grad():
        for x in (torch.ones(3), -torch.ones(3), torch.tensor([-1.0, 2.0, 0.5])):
            _same_as_fx(graph_module, x)


def test_temporaries_are_deleted_after_their_last_read():
    inputs = _mlp_inputs()
    source = build("python", make_fx(mlp)(*inputs), inputs).__autoconv_source__
    lines = [line.strip() for line in source.splitlines()]
    deleted = [name for line in lines if line.startswith("del ")
               for name in line[4:].split(", ")]
    assert deleted  # the first linear's result, the relu's, ...
    for name in deleted:
        reads = [i for i, line in enumerate(lines)
                 if name in line and not line.startswith((f"{name} =", "del "))]
        assert lines.index(f"del {name}") > max(reads) if f"del {name}" in lines else True
    assert not lines[-1].startswith("del")  # nothing after the return
    assert "linear(" in source  # ops are called by their own names


def loop_of_activations(x):
    while x.sum() < 10:
        x = torch.relu(x * 2) + 1  # fresh temporaries inside the loop body
    return torch.sigmoid(x - 3).neg()


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("fn, example, inputs, in_place", [
    (loop_of_activations, torch.ones(3),
     [torch.ones(3), torch.full((3,), 20.0), torch.tensor([-1.0, 0.5, 2.0])], True),
    # the counter steps in place (the loop owns its state: `_carried_writes`); a float16 `n`
    # keeps the tensor loop (int64 runs on Python numbers: test_scalar_loops.py)
    (counting, torch.tensor(9.0, dtype=torch.float16),
     [torch.tensor(n, dtype=torch.float16) for n in (0.0, 1.0, 9.0)], True),
])
def test_results_match_fx_with_grad_on_and_off(grad, fn, example, inputs, in_place):
    graph_module = _graph(fn, example)
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert ("_or_in_place" in source) == in_place
    with torch.set_grad_enabled(grad):
        for x in inputs:
            _same_as_fx(graph_module, x)


def test_a_tensor_finds_the_graph_traced_for_its_spec():
    # The fast signature path keys on torch.Size, the spec path on a tuple: one signature.
    f = autoconv.autoconv(lambda a, b: a * b)
    spec = autoconv.TensorSpec((2, 3))
    f.get_concrete_function(spec, spec)
    f(torch.ones(2, 3), torch.ones(2, 3))
    f(torch.ones(2, 3), torch.ones(2, 3, requires_grad=True))  # a new signature
    assert f.trace_count == 2
    f(torch.ones(3, 2), torch.ones(3, 2))
    assert f.trace_count == 3


def blocks_example(x):
    blocks = torch.arange(36).reshape(1, 6, 6)
    return torch.cat([blocks[:, :, 1:].flatten(), blocks[:, 1:, :].flatten()]) * x.sum()


def test_reshape_of_a_slice_keeps_its_copy():
    # reshape of a non-contiguous slice records clone(contiguous) + view: the copy is what
    # makes the view legal, so it stays (it used to be dropped: "view size is not compatible").
    x = torch.ones(3)
    for backend in ("python", "fx"):
        torch.testing.assert_close(autoconv.autoconv(blocks_example, backend=backend)(x),
                                   blocks_example(x))


def flat_double(x):
    return x.reshape(-1) * 2


def test_a_transposed_argument_traces_its_own_graph():
    # A graph traced for a contiguous tensor records reshape as view; the layout is part of
    # the signature, so a transposed tensor of the same shape gets a graph of its own.
    f = autoconv.autoconv(flat_double)
    x = torch.arange(9.0).reshape(3, 3)
    torch.testing.assert_close(f(x), flat_double(x))
    torch.testing.assert_close(f(x.t()), flat_double(x.t()))
    assert f.trace_count == 2


def in_place_on_argument(x, y):
    x.add_(1)
    return x * y


def output_is_view_of_input(x):
    return x.view(-1)[1:], x.t()


def two_outputs_alias(x):
    y = x * 2
    return y, y.view(-1)


def copy_then_view(x):
    y = x.clone()
    return y.view(-1), x


def staged_copy(x):
    if x.sum() > 0:
        y = x + 1
    else:
        y = x - 1
    z = y.clone()
    return y, z


def float_add_double(x, d):
    y = x * 1  # fresh float tensor
    y.add_(d)  # stays float32; the functional form would be float64
    return y


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("fn, make_args", [
    (in_place_on_argument, lambda: (torch.ones(2, 2), torch.full((2, 2), 3.0))),
    (output_is_view_of_input, lambda: (torch.arange(6.0).reshape(2, 3),)),
    (two_outputs_alias, lambda: (torch.arange(4.0).reshape(2, 2),)),
    (copy_then_view, lambda: (torch.arange(4.0).reshape(2, 2),)),
    (staged_copy, lambda: (torch.arange(4.0).reshape(2, 2),)),
    (staged_copy, lambda: (-torch.arange(4.0).reshape(2, 2),)),
    (float_add_double, lambda: (torch.ones(3), torch.full((3,), 0.1, dtype=torch.float64))),
])
def test_views_and_writes_on_inputs_and_outputs_match_eager(grad, fn, make_args):
    """Values, dtypes, and what writing to the first output does to the other outputs and to
    the arguments, as in eager."""

    def observe(function):
        args = make_args()
        with torch.set_grad_enabled(grad):
            outs = function(*args)
        outs = outs if isinstance(outs, tuple) else (outs,)
        before = [(o.clone(), o.dtype) for o in outs]
        outs[0].add_(100)
        return before, [o.clone() for o in outs], [a.clone() for a in args]

    want = observe(fn)
    got = observe(autoconv.autoconv(fn))
    for (g, g_dtype), (w, w_dtype) in zip(got[0], want[0]):
        assert g_dtype == w_dtype
        torch.testing.assert_close(g, w)
    for g, w in zip(got[1] + got[2], want[1] + want[2]):
        torch.testing.assert_close(g, w)

def tokens_until(x, stop):
    """A list grown under a tensor while: appended once per trip, stacked after the loop."""
    tokens = [x]
    while x < stop:
        x = x * 2 + 1
        tokens.append(x)
    return torch.stack(tokens)


_TRIPS = [(torch.tensor(5), torch.tensor(3)),  # 0 trips
          (torch.tensor(1), torch.tensor(2)),  # 1 trip
          (torch.tensor(0), torch.tensor(100)),  # 7 trips, as traced
          (torch.tensor(0), torch.tensor(5000))]  # 13 trips


def rows_until(x, stop):
    """`tokens_until` over a vector: a list of rows (one of numbers runs as a Python list,
    NOTE [lists of numbers in scalar loops])."""
    tokens = [x]
    while x.sum() < stop:
        x = x * 2 + 1
        tokens.append(x)
    return torch.stack(tokens)


_ROW_TRIPS = [(torch.tensor([5, 1]), torch.tensor(3)),  # 0 trips
              (torch.tensor([1, 0]), torch.tensor(2)),  # 1 trip
              (torch.tensor([0, 0]), torch.tensor(100)),  # 6 trips, as traced
              (torch.tensor([0, 1]), torch.tensor(5000))]  # 11 trips


@pytest.mark.parametrize("grad", [True, False])
def test_list_append_in_a_while_writes_the_buffer_in_place_with_grad_off(grad):
    graph_module = _graph(rows_until, *_ROW_TRIPS[2])
    source = compile_python(lower(graph_module)).__autoconv_source__
    # The choice is made once, before the loop (the body is written inline, in the loop).
    # (perf20: the list's count runs as a Python int, the write is `_index_put_row`)
    choice = re.search(r"\n( *)(\w*index_put\w*_or_in_place\d*) = (_?index_put\w*) if "
                       r"(grad\d*) else \3_\n", source)
    assert choice
    loop = source[source.rindex("while True:"):]  # (the first loop counts the trips)
    assert f"{choice.group(1)}while True:" in source and choice.group(2) not in loop.split(
        "\n")[0]
    # The buffer is written where the loop carries it: no copy of it in the loop, no call of
    # a function per trip.
    written = re.search(rf"{choice.group(2)}\((\w+),", loop).group(1)
    assert f"{written} = clone(" not in loop and "_fresh1(" not in loop
    assert "while True:" in source and "graph_" not in loop
    with torch.set_grad_enabled(grad):
        for args in _ROW_TRIPS:
            _same_as_fx(graph_module, *args)
    for fn, trips in ((rows_until, _ROW_TRIPS), (tokens_until, _TRIPS)):
        f = autoconv.autoconv(fn)
        with torch.set_grad_enabled(grad):
            for args in trips:
                torch.testing.assert_close(f(*args), fn(*args), rtol=0, atol=0)


def _buffer_loop(reads_old, aliased):
    """while i < n: buf[i] = 2 i (functional index_put), optionally reading the old buffer
    (a running sum) or returning the new one in two slots."""
    def fn(n):
        i = torch.zeros((), dtype=torch.int64)
        buf, total = torch.zeros(8), torch.zeros(())
        twin = torch.zeros(8)

        def cond(i, buf, total, twin, n):
            return i < n

        def body(i, buf, total, twin, n):
            new = aten.index_put.default(buf, [i.reshape(1)], (i * 2.0).reshape(1))
            total = total + buf.sum() if reads_old else total.clone()
            if aliased:
                return i + 1, new, total, new  # the next trip's buf and twin: one tensor
            return i + 1, new, total, twin.clone()

        # The operator itself (not torch.while_loop, which refuses aliasing through dynamo).
        return torch.ops.higher_order.while_loop(cond, body, (i, buf, total, twin), (n,))

    return fn


@pytest.mark.parametrize("reads_old, aliased, in_place", [
    (False, False, True), (True, False, False), (False, True, False)])
def test_buffer_write_keeps_its_copy_where_another_reader_sees_the_buffer(
        reads_old, aliased, in_place):
    fn = _buffer_loop(reads_old, aliased)
    graph_module = make_fx(fn)(torch.tensor(3))
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert ("index_put_or_in_place" in source) == in_place
    with torch.no_grad():
        for n in (0, 1, 3, 8):
            _same_as_fx(graph_module, torch.tensor(n))


# --- recurrent cells, copies in graphs that write in place ------------------------------------

_GRU = torch.nn.GRUCell(3, 4)


def gru_steps(x, h):
    for _ in range(2):
        h = _GRU(x, h)
    return h


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_gru_cell_runs_as_one_op_and_matches_eager_bitwise(grad, batched):
    # make_fx records gru_cell as 13 ops; the python backend calls aten.gru_cell (the same ops
    # in C++, so the same bits on CPU), and linear of a vector without its view / unview.
    x, h = torch.randn(2, 3) if batched else torch.randn(3), torch.randn(2, 4) if batched \
        else torch.randn(4)
    f = autoconv.autoconv(gru_steps)
    with torch.set_grad_enabled(grad):
        concrete = f.get_concrete_function(x, h)
        lowered = lower(concrete.graph_module)
        targets = _targets(lowered)
        assert targets.count(aten.gru_cell.default) == 2, lowered.code
        assert aten.sigmoid_.default not in targets and aten.view.default not in targets
        assert torch.equal(f(x, h), gru_steps(x, h))
    if grad:
        hidden = h.clone().requires_grad_()
        f(x, hidden).sum().backward()
        want = hidden.detach().clone().requires_grad_()
        gru_steps(x, want).sum().backward()
        torch.testing.assert_close(hidden.grad, want.grad)


def written_copy(x):
    y = x.clone()
    y[0] = 5.0  # a write into the copy: the copy must stay
    return y, x * 2


def copies_of_a_written_temporary(x):
    t = x * 2
    u = t.clone()
    t.view(-1)[0] = 7.0  # a write through a view of the source: the copy must stay
    return u, t


@pytest.mark.parametrize("fn", [written_copy, copies_of_a_written_temporary])
def test_copies_of_written_memory_stay(fn):
    x = torch.tensor([1.0, 2.0, 3.0])
    graph_module = _graph(fn, x)
    _same_as_fx(graph_module, x)
    assert aten.clone.default in _targets(lower(graph_module))
    assert all(torch.equal(a, b) for a, b in zip(autoconv.autoconv(fn)(x.clone()), fn(x.clone())))


# --- loops writing their carried state in place (_carried_writes, _owned_by_loop) -------------

def _tensor_loop(source: str) -> tuple[list[str], str]:
    """The python backend's last tensor loop in `source`: the lines that set its state
    locals before it (`vN_while_loop_K = ...`), and the loop's text from `while True:` on."""
    head, loop = source[:source.rindex("while True:")], source[source.rindex("while True:"):]
    entry = []
    # the state, then the invariant inputs' items and the in-place choice
    for line in reversed(head.rstrip().splitlines()):
        if re.match(r" *v\d+_while_loop\w*_\d+ = ", line):
            entry.insert(0, line)
        elif entry or not re.match(r" *(grad\d*|\w+_or_in_place\d*|inv\d+_item) = ", line):
            break
    return entry, loop


def _carried_loop(body_kind):
    """while i < n: a body over carried (i, x, y) of one of the kinds the python backend must
    keep functional, or may write in place ("in_place")."""
    def fn(n):
        i, x, y = torch.zeros((), dtype=torch.int64), torch.ones(3, 3), torch.zeros(())

        def cond(i, x, y, n):
            return i < n

        def body(i, x, y, n):
            if body_kind == "in_place":  # x read (by the sum) before it is written
                total = y + x.sum()
                return i + 1, x * 2, total
            if body_kind == "read_after":  # the sum reads the old x after the write
                new = x * 2
                return i + 1, new, y + x.sum()
            if body_kind == "reads_view":  # x + x.t() reads what it would write
                return i + 1, x + x.t(), y.clone()
            if body_kind == "result_read":  # the new x is read in the body too (kept:
                new = x + 1                     # the rule asks for one reader, the output)
                return i + 1, new, new.sum()
            raise AssertionError(body_kind)

        return torch.ops.higher_order.while_loop(cond, body, (i, x, y), (n,))

    return fn


@pytest.mark.parametrize("body_kind, in_place", [
    ("in_place", True), ("read_after", False), ("reads_view", False), ("result_read", False)])
def test_carried_state_is_written_in_place_only_where_no_read_sees_it(body_kind, in_place):
    fn = _carried_loop(body_kind)
    graph_module = make_fx(fn)(torch.tensor(2))
    source = compile_python(lower(graph_module)).__autoconv_source__
    entry, loop = _tensor_loop(source)
    state = [line.split(" = ")[0].strip() for line in entry]
    # The counter is written in place in every kind; x only where nothing reads the old x.
    assert re.search(rf"add_or_in_place\d*\({state[0]},", loop), source
    assert bool(re.search(rf"(mul|add)_or_in_place\d*\({state[1]},", loop)) == in_place, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for n in (0, 1, 3):
                _same_as_fx(graph_module, torch.tensor(n))


def test_a_value_read_after_the_loop_enters_it_as_a_copy():
    def fn(n):
        i, fresh, kept = torch.zeros((), dtype=torch.int64), torch.zeros(2), torch.zeros(2)
        out = torch.ops.higher_order.while_loop(
            lambda i, a, b, n: i < n, lambda i, a, b, n: (i + 1, a + 1, b + 1),
            (i, fresh, kept), (n,))
        return out, kept  # `kept` is read after the loop: the loop must not write into it

    graph_module = make_fx(fn)(torch.tensor(2))
    source = compile_python(lower(graph_module)).__autoconv_source__
    entry, _ = _tensor_loop(source)
    # i and `fresh` (allocated here, read only by the loop) go in as they are; `kept` is copied.
    assert len(entry) == 3 and sum("_fresh1(" in line for line in entry) == 1, entry
    with torch.no_grad():
        for n in (0, 3):
            (i, a, b), kept = build("python", graph_module, (torch.tensor(n),))(torch.tensor(n))
            assert i.item() == n and torch.equal(a, torch.full((2,), float(n)))
            assert torch.equal(b, a) and torch.equal(kept, torch.zeros(2))


def count_to_shaped(n):
    i = torch.zeros((), dtype=n.dtype)
    while i < n:  # (1,)-shaped: a tensor loop, its test reshaped to [] for while_loop
        i += 1
    return i


def test_loop_test_of_one_element_is_read_without_its_reshape():
    graph_module = _graph(count_to_shaped, torch.full((1,), 3))
    source = compile_python(lower(graph_module)).__autoconv_source__
    # A one-element bound is one number: the loop runs on Python numbers (scalar_loops.py),
    # its test a Python comparison, without the reshape (or any aten call).
    loop = source[source.index("while True:"):]
    assert ".item()" in source and "lt(" not in loop and "view(" not in loop, source
    with torch.no_grad():
        for n in (0, 1, 4):
            _same_as_fx(graph_module, torch.full((1,), n))


def test_keywords_the_binding_defaults_differently_are_still_passed():
    # make_fx leaves out reduction=1 (mean); the C binding's default reduction is 0 (none).
    def fn(x, y):
        return torch.nn.functional.binary_cross_entropy_with_logits(x, y) + x.argmax(0)

    args = (torch.randn(4), torch.rand(4))
    source = compile_python(lower(make_fx(fn)(*args))).__autoconv_source__
    assert "reduction=1" in source and "keepdim" not in source, source
    got = build("python", make_fx(fn)(*args), args)(*args)
    torch.testing.assert_close(pytree.tree_leaves(got)[0], fn(*args))


@pytest.mark.parametrize("fn", [
    lambda x: x[torch.randint(x.shape[0], (2,))],
    lambda x: x[torch.randint(0, x.shape[0], (3,))],
    lambda x: x[torch.randperm(x.shape[0])],
    lambda x: x.flatten()[torch.tril_indices(2, 2)[0]],
], ids=["randint", "randint_low", "randperm", "tril_indices"])
def test_a_dtype_the_schema_defaults_is_passed_as_a_dtype(fn):
    # (tester t13 repro 4) The schemas default `ScalarType dtype=long`, which Python reads as
    # c10's code 4: passed as it was, the binding raised TypeError on every call.
    x = torch.arange(10.0).view(5, 2)
    got = autoconv.autoconv(fn)(x)
    torch.manual_seed(0)
    expected = fn(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype


def test_a_list_append_is_one_index_put_at_the_0d_count():
    # StagedList.append writes row `count` with the 0-d count itself: no reshape of the count,
    # no unsqueeze of the item (a call each per trip at replay).
    graph_module = _graph(tokens_until, *_TRIPS[2])
    body = graph_module.while_loop_body_graph_1  # (graph 0 counts the trips)
    puts = [n for n in body.graph.nodes if n.target is aten.index_put.default]
    assert len(puts) == 1
    (index,) = puts[0].args[1]
    assert index.meta["val"].dim() == 0 and puts[0].args[2].meta["val"].dim() == 0
    assert not any(n.target in (aten.view.default, aten.unsqueeze.default, aten.reshape.default)
                   for n in body.graph.nodes)


def branching_in_a_loop(x, n):
    while n > 0:
        if x.sum() > 0:
            x = x - 1
        else:
            x = x * 2
        n = n - 1
    return x


def test_branches_and_loops_are_written_inline():
    # One function: the loop's test and body and the branches are lines of it, the in-place
    # choice made once, before the loop.
    args = (torch.tensor([3.0, -1.0]), torch.tensor([4]))
    graph_module = _graph(branching_in_a_loop, *args)
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert source.count("def ") == 1, source
    assert "while True:" in source and " if " in source.split("while True:")[1]
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for x, n in [(torch.tensor([3.0, -1.0]), torch.tensor([4])),
                         (torch.tensor([-3.0, 1.0]), torch.tensor([0])),
                         (torch.tensor([0.5, 0.25]), torch.tensor([3]))]:
                _same_as_fx(graph_module, x, n)


def _dead_and_live_writes(x):
    scratch = x * 2          # a fresh tensor, written in place, never read: dead
    scratch.add_(1).sigmoid_()
    kept = x * 3             # written in place, then read: live
    kept.mul_(2)
    x.add_(1)                # an input: its write stays
    noise = torch.empty(2)   # a random write into a fresh tensor stays (the generator advances)
    noise.uniform_()
    return kept


def test_dead_in_place_writes_into_fresh_tensors_are_eliminated():
    from autoconv import graph_passes

    graph_module = make_fx(_dead_and_live_writes)(torch.ones(2))
    graph_passes.eliminate_dead_code(graph_module, graph_passes.has_effects)
    graph_module.recompile()
    targets = [n.target for n in graph_module.graph.nodes if n.op == "call_function"]
    assert aten.sigmoid_.default not in targets and aten.mul.Tensor in targets
    assert targets.count(aten.add_.Tensor) == 1 and aten.mul_.Tensor in targets  # x's, kept's
    assert aten.uniform_.default in targets
    x = torch.ones(2)
    torch.testing.assert_close(graph_module(x), torch.full((2,), 6.0))
    torch.testing.assert_close(x, torch.full((2,), 2.0))


class _Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.cell = torch.nn.Embedding(8, 16), torch.nn.GRUCell(16, 16)
        self.out = torch.nn.Linear(16, 8)

    def forward(self, h):
        token, tokens, steps = torch.tensor(1), [], 0
        while token != 0 and steps < 12:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
            steps += 1
        return torch.stack(tokens)


def test_a_body_run_to_learn_its_types_leaves_no_ops_outside_the_loop():
    # The run of the loop's body that sizes the list it grows left its ops in the graph: the
    # GRU cell's in-place ops (fx's elimination keeps them), one decoder step more per call.
    model = _Decoder()
    function = autoconv.autoconv(model)
    for seed in range(6):
        h = torch.randn(16, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(function(h), model(h))
    top = [n.target for n in function.concrete_functions[0].graph_module.graph.nodes
           if n.op == "call_function"]
    assert aten.embedding.default not in top and aten.addmm.default not in top, top


def _suppress(scores, keep):
    index = torch.arange(4)
    for i in range(4):
        if keep[i]:
            keep = keep & ((scores[i] <= 0.5) | (index <= i))
    return keep


def _escaping(x):
    index = torch.arange(4)
    if x.sum() > 0:
        mask = index <= 1  # returned: the caller may write into it
        shifted = index * 2
        shifted.add_(1)  # written in place
        return x + shifted, mask, (index + 1).view(2, 2)  # a view escapes
    return x, index > 5, index.view(2, 2)


def test_values_made_from_constants_in_a_branch_are_computed_once():
    # (perf18) nms_mask's `index <= i` in each unrolled `if keep[i]:` was an op per trip with
    # the same result on every call: the python backend computes it when it is built.
    scores, keep = torch.tensor([0.2, 0.9, 0.4, 0.7]), torch.tensor([True, True, False, True])
    graph_module = _graph(_suppress, scores, keep)
    lowered = lower(graph_module)
    assert _targets(graph_module).count(aten.le.Scalar) == 8
    assert _targets(lowered).count(aten.le.Scalar) == 4  # `scores[i] <= 0.5` only
    run = build("python", graph_module, (scores, keep))
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for _ in range(2):
                for k in (keep, ~keep, torch.ones(4, dtype=torch.bool)):
                    torch.testing.assert_close(run(scores, k), graph_module(scores, k))
                    torch.testing.assert_close(pytree.tree_leaves(run(scores, k))[0],
                                               _suppress(scores, k))


def test_a_value_made_from_constants_that_escapes_or_is_written_is_made_per_call():
    x = torch.ones(4)
    graph_module = _graph(_escaping, x)
    run = build("python", graph_module, (x,))
    for _ in range(2):
        want = _escaping(x)
        got = run(x)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w)
        for g in got:  # the caller's writes reach no later call
            g.zero_()


def _decode(h, w):
    token = torch.tensor(1)
    steps = 0
    out = h.new_zeros(())
    while token != 0 and steps < 6:
        h = torch.tanh(h @ w)
        token = h.argmax() % 3
        out = out + h.sum()
        steps += 1
    return out, token, steps  # the final count: a tensor again after the loop


def _scaled(h, w):
    steps = 0
    while h.sum() > 0 and steps < 6:
        h = h @ w - 0.1 * steps  # the counter read as a number, not only counted
        steps += 1
    return h


def test_a_loop_counter_runs_as_a_python_int():
    # (perf18) A greedy decoder's `steps` dispatched a `lt` and an `add_` on every trip.
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    h = torch.randn(4, generator=torch.Generator().manual_seed(1))
    graph_module = _graph(_decode, h, w)
    source = compile_python(lower(graph_module)).__autoconv_source__
    loop = source.split("while True:")[1]
    assert " < 6)" in loop and "_int64_add(" in loop, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for seed in range(6):
                h = torch.randn(4, generator=torch.Generator().manual_seed(seed))
                _same_as_fx(graph_module, h, w)
                got = build("python", graph_module, (h, w))(h, w)
                want = _decode(h, w)
                for g, e in zip(pytree.tree_leaves(got), want):
                    torch.testing.assert_close(g, torch.as_tensor(e))


@pytest.mark.parametrize("step", [1, 3, -1, -2, 0, 2 ** 62, -(2 ** 63)])
def test_a_counters_inline_addition_wraps_as_int64_does(step):
    # (replay43) `steps += 1` is written inline, the call kept for the sums past int64
    source = _int64_add_source("count", step, "_int64_add")
    for count in (0, 5, -5, 2 ** 62, 2 ** 63 - 1, 2 ** 63 - 2, -(2 ** 63), -(2 ** 63) + 1):
        got = eval(source, {"_int64_add": _int64_add, "count": count})
        want = torch.tensor(count, dtype=torch.int64).add(step).item()
        assert type(got) is int and got == want == _int64_add(count, step), (count, step)


def _count_to(n):
    i = torch.zeros((), dtype=n.dtype)
    while i < n:  # float16: a tensor loop whose test compares the two items
        i += 1
    return i


def test_a_loop_test_reads_an_input_it_does_not_carry_once():
    # (replay43) `n.item()` was read on every trip of the float16 loop
    n = torch.tensor(5.0, dtype=torch.float16)
    graph_module = _graph(_count_to, n)
    source = compile_python(lower(graph_module)).__autoconv_source__
    before, loop = source.split("while True:")
    assert re.search(r"inv\d+_item = item\(v0_n_1\)", before), source
    assert "item(v0_n_1)" not in loop and re.search(r"< inv\d+_item", loop), source
    for value in (5.0, 0.0, -1.0, 2.5, 100.0, float("nan")):
        n = torch.tensor(value, dtype=torch.float16)
        _same_as_fx(graph_module, n)
        got = build("python", graph_module, (n,))(n)
        torch.testing.assert_close(pytree.tree_leaves(got)[0], _count_to(n), rtol=0, atol=0)


def _tokens_from(first, h, w):
    token = first
    tokens = []
    steps = 0
    while token != 0 and steps < 6:
        h = torch.tanh(h @ w)
        token = h.argmax() % 3
        tokens.append(token)
        steps += 1
    return torch.stack(tokens), steps


def test_a_loops_final_count_is_checked_and_read_as_a_number():
    # (replay43) the count made a 0-d tensor again only for `gt`, `_assert_async` and
    # `_local_scalar_dense` after the loop: NOTE [a loop's final count read as a number]
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    h = torch.randn(4, generator=torch.Generator().manual_seed(1))
    f = autoconv.autoconv(_tokens_from)
    with torch.no_grad():
        for seed in range(4):
            h = torch.randn(4, generator=torch.Generator().manual_seed(seed))
            got, want = f(torch.tensor(1), h, w), _tokens_from(torch.tensor(1), h, w)
            assert torch.equal(got[0], want[0]) and got[1] == want[1]
        source = f.concrete_functions[0]._runner.__autoconv_source__
        after = source[source.rindex("while True:"):]
        assert "_assert_number(" in after and " gt(" not in after, source
        assert "_local_scalar_dense(" not in after and "_assert_async(" not in after, source
        with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
            _tokens_from(torch.tensor(0), h, w)
        with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
            f(torch.tensor(0), h, w)  # no trip: the same error as Python's


def _counting_from_0(n):
    steps = 0  # enters the loop as full([], 0)
    while n > 1:
        n = n - 2
        steps += 1
    return steps


def test_a_loop_of_numbers_only_stays_a_scalar_loop():
    # (a counter made a Python int would have made scalar_loops refuse the whole loop)
    graph_module = _graph(_counting_from_0, torch.tensor(9))
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert ".item()" in source and "_int64_add" not in source, source
    for n in (torch.tensor(9), torch.tensor(0)):
        _same_as_fx(graph_module, n)


def test_a_counter_read_as_a_number_stays_a_tensor():
    w = torch.eye(4) * 1.5
    graph_module = _graph(_scaled, torch.ones(4), w)
    source = compile_python(lower(graph_module)).__autoconv_source__
    # (its test still reads it as a number: `item(steps) < 6`, exact for a 0-d int64)
    assert "_int64_add(" not in source and "_to_copy(v" in source, source
    for h in (torch.ones(4), -torch.ones(4), torch.full((4,), 0.05)):
        _same_as_fx(graph_module, h, w)


def _appending(h, w):
    token, tokens, steps = torch.tensor(1), [], 0
    while token != 0 and steps < 8:
        h = torch.tanh(h @ w)
        token = h.argmax() % 3
        tokens.append(token)
        steps += 1
    return torch.stack(tokens), steps


def test_a_list_count_and_a_token_test_run_on_python_ints():
    # (perf20) The decoder's list count (the row its append writes) was a 0-d tensor: an
    # `index_put_` through the advanced-indexing kernel and an `add_` per trip; its test
    # `token != 0` a `ne` and a `bool()`. Now `buffer[count] = token` at a Python int and
    # `item(token) != 0`.
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    h = torch.randn(4, generator=torch.Generator().manual_seed(1))
    graph_module = _graph(_appending, h, w)
    source = compile_python(lower(graph_module)).__autoconv_source__
    loop = source[source.rindex("while True:"):]
    assert "_index_put_row_or_in_place" in source and "index_put_(" not in loop, source
    assert " != 0)" in loop and "item(" in loop and " ne(" not in loop, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for seed in range(8):
                h = torch.randn(4, generator=torch.Generator().manual_seed(seed))
                got = build("python", graph_module, (h, w))(h, w)
                want = _appending(h, w)
                _same_as_fx(graph_module, h, w)
                torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    f = autoconv.autoconv(_appending)
    for seed in range(8):
        h = torch.randn(4, generator=torch.Generator().manual_seed(seed))
        got, want = f(h, w), _appending(h, w)
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
        assert int(got[1]) == want[1]


def _up_to(i, n):
    while i < n:
        i = i + 1.5
    return i


def _doubling(x, t, limit):
    while t <= limit:  # 0-d, beside a state that is not (a tensor loop)
        x = x * 2
        t = t + 1
    return x, t


def test_a_loop_test_comparing_two_0d_tensors_of_one_dtype_reads_their_items():
    # (speed37) A float16 `while i < n:` is a tensor loop (no Python numbers for the
    # dtype): its `lt` and the `bool()` of its result were half of a trip. Both 0-d and of
    # one dtype, it compares their items, as torch compares them in that dtype; of two
    # dtypes (a promotion) it keeps the op. Every bound: eager's result, bit for bit.
    bounds = (0.0, -0.0, 1.0, 7.25, 20.0, -3.0, math.inf, -math.inf, math.nan)
    for dtype in (torch.float16, torch.bfloat16):
        f = autoconv.autoconv(_up_to)
        for start in (0.0, -0.0, 2.5):
            for bound in bounds:
                i, n = torch.tensor(start, dtype=dtype), torch.tensor(bound, dtype=dtype)
                if bound == math.inf:
                    continue  # (eager never ends)
                got, want = f(i, n), _up_to(i, n)
                assert got.dtype == want.dtype and torch.equal(got, want), (start, bound)
                assert torch.signbit(got) == torch.signbit(want)
        source = f.concrete_functions[0]._runner.__autoconv_source__
        loop = source[source.index("while True:"):]
        # (`n`, not carried, read once before the loop: NOTE [a loop test's reads of
        # invariant inputs])
        assert re.search(r"\(v\d+_item < inv\d+_item\)", loop) and " lt(" not in loop, source
    mixed = autoconv.autoconv(_up_to)
    i, n = torch.tensor(1.0, dtype=torch.float16), torch.tensor(7.3)
    assert torch.equal(mixed(i, n), _up_to(i, n))
    assert " lt(" in mixed.concrete_functions[0]._runner.__autoconv_source__
    for dtype in (torch.float32, torch.int32, torch.float64):
        f = autoconv.autoconv(_doubling)
        for t, limit in ((0, 3), (2, 2), (5, 1), (0, 0)):
            args = (torch.ones(3), torch.tensor(t, dtype=dtype), torch.tensor(limit, dtype=dtype))
            for g, w in zip(f(*args), _doubling(*args)):
                assert g.dtype == w.dtype and torch.equal(g, w)
        source = f.concrete_functions[0]._runner.__autoconv_source__
        assert " le(" not in source[source.index("while True:"):], source


def test_a_row_write_at_an_int_index_is_index_puts():
    from autoconv.python_backend import _index_put_row, _index_put_row_
    buffer = torch.arange(12.0).reshape(4, 3)
    for index in (0, 3, -1, -4):
        row = torch.tensor([7.0, 8.0, 9.0])
        want = torch.index_put(buffer, (torch.tensor(index),), row)
        torch.testing.assert_close(_index_put_row(buffer, index, row), want, rtol=0, atol=0)
        torch.testing.assert_close(_index_put_row_(buffer.clone(), index, torch.tensor(5.0)),
                                   torch.index_put(buffer, (torch.tensor(index),),
                                                   torch.tensor(5.0)), rtol=0, atol=0)
    for index in (4, -5):  # out of range: index_put_'s own error
        with pytest.raises(Exception) as error:
            torch.index_put_(buffer.clone(), (torch.tensor(index),), torch.tensor(1.0))
        with pytest.raises(type(error.value), match=re.escape(str(error.value))):
            _index_put_row_(buffer.clone(), index, torch.tensor(1.0))


def test_a_graph_inductor_cannot_compile_is_a_staging_error_naming_the_backend():
    # torch's inductor fails to lower this graph (the list's length, an unbacked size, reaches
    # a cond: "LoweringException: KeyError: 'unbacked_bindings'"), which reached the user as
    # pages of inductor's IR; the python backend runs the same graph
    from autoconv_runtime import StagingError

    f = autoconv.autoconv(halves_until_small, backend="inductor")
    with pytest.raises(StagingError, match=r"the 'inductor' backend \(torch.compile\) could not "
                       r"compile halves_until_small's graph: torch's InductorError"
                       r".*backend=\"python\"") as error:
        f(torch.full((3,), 4.0))
    assert type(error.value.__cause__).__name__ == "InductorError"
    torch.testing.assert_close(autoconv.autoconv(halves_until_small)(torch.full((3,), 4.0)),
                               halves_until_small(torch.full((3,), 4.0)))


def _embedding_decoder(h, table, w):
    token, tokens, steps = torch.tensor(1), [], 0
    while token != 0 and steps < 8:
        h = torch.tanh(torch.nn.functional.embedding(token, table).unsqueeze(0) @ w + h)
        token = h[0].argmax() % table.shape[0]
        tokens.append(token)
        steps += 1
    return torch.stack(tokens), h


def test_an_embedding_row_at_a_0d_index_is_one_copy():
    # (speed31) `unsqueeze(embedding(table, token), 0)` in a decoder's trip is one
    # `narrow_copy` of the row: the same values, shape and strides, a fresh tensor.
    g = torch.Generator().manual_seed(0)
    table, w = torch.randn(5, 4, generator=g), torch.randn(4, 4, generator=g)
    h = torch.randn(1, 4, generator=g)
    graph_module = _graph(_embedding_decoder, h, table, w)
    source = compile_python(lower(graph_module)).__autoconv_source__
    assert "_embedding_row(" in source and " embedding(" not in source, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for seed in range(6):
                h = torch.randn(1, 4, generator=torch.Generator().manual_seed(seed))
                got = build("python", graph_module, (h, table, w))(h, table, w)
                want = _embedding_decoder(h, table, w)
                for a, b in zip(got, want):
                    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # autograd through a table that requires grad: embedding's own gradient
    leaf = table.clone().requires_grad_()
    got = build("python", graph_module, (h, leaf, w))(h, leaf, w)[1].sum()
    want = _embedding_decoder(h, leaf, w)[1].sum()
    (got_grad,), (want_grad,) = torch.autograd.grad(got, leaf), torch.autograd.grad(want, leaf)
    torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=0)


def test_an_embedding_row_is_embeddings_row():
    from autoconv.python_backend import _embedding_row
    table = torch.arange(15.0).reshape(5, 3)
    for index in (0, 4):
        for t in (table, table.t().contiguous().t()):
            got = _embedding_row(t, torch.tensor(index))
            want = torch.embedding(t, torch.tensor(index)).unsqueeze(0)
            torch.testing.assert_close(got, want, rtol=0, atol=0)
            assert got.stride() == want.stride() and got.data_ptr() != t.data_ptr()
    for index in (5, -1):  # out of range: embedding's own error
        with pytest.raises(Exception) as error:
            torch.embedding(table, torch.tensor(index))
        with pytest.raises(type(error.value), match=re.escape(str(error.value))):
            _embedding_row(table, torch.tensor(index))


class _UnbatchedGRUDecoder(torch.nn.Module):
    """A greedy decoder whose GRU state is 1-d: nn.GRUCell unsqueezes it to 2-d for the cell
    and squeezes the cell's result back on every trip."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(6, 8)
        self.cell = torch.nn.GRUCell(8, 8)
        self.out = torch.nn.Linear(8, 6)

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


def test_a_loop_carries_its_state_in_the_shape_its_body_reads():
    # (speed35) the 1-d state of an unbatched GRUCell was carried as `squeeze(new, 0)` and
    # read back as `unsqueeze(h, 0)` on every trip: now carried 2-d, squeezed once after the
    # loop; the embedding row is written out (`narrow_copy` at the index's item, no call).
    torch.manual_seed(0)
    model = _UnbatchedGRUDecoder().eval()
    h = torch.randn(8)
    function = autoconv.autoconv(model)
    function(h)
    source = function.concrete_functions[0]._runner.__autoconv_source__
    loop = source[source.index("while True:"):source.index("del", source.rindex(", = ("))]
    assert "[None]" not in loop and "unsqueeze" not in loop, source
    assert "narrow_copy(" in loop and "= _embedding_row(" not in loop, source
    # (the final state's only: the body's `out` runs on the cell's row since replay41, NOTE [a
    # vector's linear on its row])
    assert source.count("squeeze(") == 1, source
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            for seed in range(8):
                h = torch.randn(8, generator=torch.Generator().manual_seed(seed))
                got, want = function(h), model(h)
                for a, b in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
                    torch.testing.assert_close(a, b, rtol=0, atol=0)
                    assert a.shape == b.shape and a.stride() == b.stride()


def _state_read_by_test(h, w):
    h = h.abs()
    while h.sum() < 40:  # (the test reads the carried value: it stays 1-d)
        h = (torch.tanh(h.unsqueeze(0) @ w) + h.unsqueeze(0) * 1.5).squeeze(0) + 1
    return h


def _state_read_twice(h, w):
    h = h.abs()
    while h[0] < 40:
        g = h.unsqueeze(0)
        h = (torch.tanh(g @ w) + g * 1.5).squeeze(0) + 1
        h = (h.unsqueeze(0) * 2).squeeze(0) + h[0]  # (read whole, not only unsqueezed)
    return h


def _state_read_whole(h, w):
    n = torch.tensor(5)
    while n > 0:  # (the body reads the state whole beside its unsqueeze: it stays 1-d)
        g = h.unsqueeze(0)
        h = (torch.tanh(g @ w) + g).squeeze(0) + h
        n = n - 1
    return h


@pytest.mark.parametrize("fn", [_state_read_by_test, _state_read_twice, _state_read_whole])
def test_a_state_read_other_than_unsqueezed_keeps_its_shape(fn):
    w = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    h = torch.zeros(3)
    graph_module = _graph(fn, h, w)
    for seed in range(4):
        h = torch.randn(3, generator=torch.Generator().manual_seed(seed))
        got = build("python", graph_module, (h, w))(h, w)
        torch.testing.assert_close(got, fn(h, w), rtol=0, atol=0)


# NOTE [results written into dead temporaries] (replay40): with grad off a layer's `linear`
# writes into the result of the layer before last, dead by then; never into a tensor a view,
# an output or a later read still reaches.
def _layers(depth, width=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(width, width, generator=g) / width ** 0.5,
             torch.randn(width, generator=g)) for _ in range(depth)]


_CHAIN = _layers(6)
_WRITES_INTO_TEMPORARY = re.compile(
    r"\blinear\([^\n]*, out=v\d+_\w+\) if out_allowed\d* else linear\(")


def relu_chain(x):
    for w, b in _CHAIN:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x


def chain_with_a_kept_view(x):
    w, b = _CHAIN[0]
    h = torch.relu(torch.nn.functional.linear(x, w, b))
    row = h[0]  # a view of the first temporary, read after the others are made
    for w, b in _CHAIN[1:]:
        h = torch.relu(torch.nn.functional.linear(h, w, b))
    return h + row


def chain_returning_a_temporary(x):
    w, b = _CHAIN[0]
    first = torch.relu(torch.nn.functional.linear(x, w, b))
    h = first
    for w, b in _CHAIN[1:]:
        h = torch.relu(torch.nn.functional.linear(h, w, b))
    return first, h


def chain_reading_a_temporary_late(x):
    w, b = _CHAIN[0]
    first = torch.nn.functional.linear(x, w, b)
    h = torch.sigmoid(first)
    for w, b in _CHAIN[1:]:
        h = torch.relu(torch.nn.functional.linear(h, w, b))
    return h * first.sum()  # `first` is read after the chain: no layer may write into it


@pytest.mark.parametrize("fn, reuses", [(relu_chain, 4), (chain_with_a_kept_view, 3),
                                        (chain_returning_a_temporary, 3),
                                        (chain_reading_a_temporary_late, 3)])
def test_a_layer_writes_into_a_dead_temporary_only_with_grad_off(fn, reuses):
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    f = autoconv.autoconv(fn)
    with torch.no_grad():
        want = fn(x)
        got = f(x)
        source = f.concrete_functions[0]._runner.__autoconv_source__
        assert len(_WRITES_INTO_TEMPORARY.findall(source)) == reuses, source
        for g, w in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
            assert torch.equal(g, w)  # the same kernel: bit for bit
        # another call's temporaries are its own: the first call's results are unchanged
        kept = [t.clone() for t in pytree.tree_leaves(got)]
        f(x * 3)
        for g, k in zip(pytree.tree_leaves(got), kept):
            assert torch.equal(g, k)
    assert f.trace_count == 1


def test_a_layer_into_a_dead_temporary_leaves_gradients_as_eager():
    weights = [(w.clone().requires_grad_(), b.clone().requires_grad_()) for w, b in _CHAIN]

    def net(x):
        for w, b in weights:
            x = torch.relu(torch.nn.functional.linear(x, w, b))
        return x.sum()

    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(3), requires_grad=True)
    f = autoconv.autoconv(net)
    with torch.no_grad():
        assert torch.equal(f(x), net(x))
    assert _WRITES_INTO_TEMPORARY.search(f.concrete_functions[0]._runner.__autoconv_source__)
    leaves = [x, *(t for pair in weights for t in pair)]
    want = torch.autograd.grad(net(x), leaves)
    got = torch.autograd.grad(f(x), leaves)
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def test_a_temporary_is_reused_only_by_a_result_of_its_shape():
    g = torch.Generator().manual_seed(4)
    wide = (torch.randn(12, 8, generator=g), torch.randn(12, generator=g))

    def widths(x):
        for i, (w, b) in enumerate(_CHAIN[:4]):
            x = torch.relu(torch.nn.functional.linear(x, w, b))
            if i == 1:
                y = torch.relu(torch.nn.functional.linear(x, *wide))
        return x, torch.nn.functional.linear(y, torch.ones(8, 12), torch.zeros(8))

    x = torch.randn(5, 8, generator=g)
    f = autoconv.autoconv(widths)
    with torch.no_grad():
        want, got = widths(x), f(x)
    for gv, wv in zip(got, want):
        assert torch.equal(gv, wv)


def test_a_layer_into_a_dead_temporary_under_autocast_and_inference_mode():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(5))
    f = autoconv.autoconv(relu_chain)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = relu_chain(x)
        got = f(x)
        assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    with torch.inference_mode():
        assert torch.equal(f(x), relu_chain(x))
    assert all(_WRITES_INTO_TEMPORARY.search(c._runner.__autoconv_source__)
               for c in f.concrete_functions)


def _layer_program(seed):
    """A chain of 8 layers, each a `linear` then one of: an activation, a residual add, a
    view kept to the end, the result kept to the end, a transposed copy, an `mm`, an
    `addmm`, a concatenation of halves, in-place updates of the result."""
    rnd = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    weights = _layers(8, seed=seed)
    kinds = [rnd.choice(["plain", "residual", "view", "kept", "transposed", "mm", "addmm",
                         "cat", "in_place"]) for _ in weights]

    def program(x):
        kept = []
        for (w, b), kind in zip(weights, kinds):
            h = torch.nn.functional.linear(x, w, b)
            if kind == "plain":
                x = torch.relu(h)
            elif kind == "residual":
                x = x + torch.relu(h)
            elif kind == "view":
                kept.append(h[1:3])
                x = torch.tanh(h)
            elif kind == "kept":
                kept.append(h)
                x = torch.sigmoid(h)
            elif kind == "transposed":
                x = torch.relu(h.t().contiguous().t()) * 1.0
            elif kind == "mm":
                x = torch.mm(torch.relu(h), w)
            elif kind == "addmm":
                x = torch.addmm(b, h, w.t())
            elif kind == "cat":
                x = torch.cat([h[:, :4], x[:, 4:]], 1)
            else:
                h.mul_(0.5)
                x = h.add_(1)
        return x, [t.sum() for t in kept]

    return program, torch.randn(5, 8, generator=g)


@pytest.mark.parametrize("seed", range(12))
def test_dead_temporaries_in_layer_programs_give_eagers_values(seed):
    program, x = _layer_program(seed)
    f = autoconv.autoconv(program)
    with torch.no_grad():
        for scale in (1.0, -2.0, 3.0):
            want, got = program(x * scale), f(x * scale)
            want, got = pytree.tree_leaves(want), pytree.tree_leaves(got)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert torch.equal(g, w)


# break40 s01: a custom autograd Function runs as `autoconv::function_apply`, whose schema
# says nothing of aliasing while its forward may return its input (or a view of it): the
# layer's result it returned was overwritten by a later layer's, written into it as dead.
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class _Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def chain_keeping_a_function_result(x):
    w, b = _CHAIN[0]
    kept = _GradReverse.apply(torch.nn.functional.linear(x, w, b))
    same = _Identity.apply(torch.nn.functional.linear(x, *_CHAIN[1]))
    for w, b in _CHAIN[2:]:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x + same.sum(), kept


def test_a_custom_functions_result_keeps_its_layers_temporary():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(6))
    f = autoconv.autoconv(chain_keeping_a_function_result)
    with torch.no_grad():
        got = [f(x * scale) for scale in (1.0, -2.0)]
        want = [chain_keeping_a_function_result(x * scale) for scale in (1.0, -2.0)]
        # the chain's own layers still write into dead temporaries
        assert _WRITES_INTO_TEMPORARY.search(f.concrete_functions[0]._runner.__autoconv_source__)
    for g, w in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
        assert torch.equal(g, w)


# break40 s02: an in-place view op (`set_`, `resize_`, `t_`) changes what memory, shape or
# strides a temporary has: `set_` made a dead layer's result share a kept one's memory, which
# the next layer then overwrote; `resize_` made the reuse resize it back, with torch's warning.
def chain_after_a_set(x):
    kept = torch.nn.functional.linear(x, *_CHAIN[0])
    h = torch.nn.functional.linear(x, *_CHAIN[1])
    h.set_(kept)
    read = torch.tanh(h)
    for w, b in _CHAIN[2:]:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x, read, kept


def chain_after_a_resize(x):
    h = torch.nn.functional.linear(x, *_CHAIN[0])
    h.resize_(4, 4)
    read = torch.tanh(h)
    for w, b in _CHAIN[1:]:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x, read


def chain_after_a_transpose_in_place(x):
    h = torch.nn.functional.linear(x, *_CHAIN[0])
    h.t_()
    read = torch.tanh(h)
    for w, b in _CHAIN[1:]:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x, read


@pytest.mark.parametrize("fn", [chain_after_a_set, chain_after_a_resize,
                                chain_after_a_transpose_in_place])
def test_an_in_place_view_op_keeps_its_temporary(fn):
    x = torch.randn(8, 8, generator=torch.Generator().manual_seed(7))
    f = autoconv.autoconv(fn)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "output ... was resized" from a reuse)
        got = [f(x * scale) for scale in (1.0, -2.0)]
        want = [fn(x * scale) for scale in (1.0, -2.0)]
        assert _WRITES_INTO_TEMPORARY.search(f.concrete_functions[0]._runner.__autoconv_source__)
    for g, w in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
        assert torch.equal(g, w)


def test_a_layer_inside_a_forward_ad_dual_level_runs_its_functional_op():
    # break40 s03: `linear_out` has no forward derivative (NotImplementedError under no_grad)
    import torch.autograd.forward_ad as forward_ad

    x, tangent = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(8))
    f = autoconv.autoconv(relu_chain)
    with torch.no_grad():
        assert torch.equal(f(x), relu_chain(x))  # the layers write into dead temporaries
        with forward_ad.dual_level():
            got = forward_ad.unpack_dual(f(forward_ad.make_dual(x, tangent)))
            want = forward_ad.unpack_dual(relu_chain(forward_ad.make_dual(x, tangent)))
    assert torch.equal(got.primal, want.primal) and torch.equal(got.tangent, want.tangent)
    assert _WRITES_INTO_TEMPORARY.search(f.concrete_functions[0]._runner.__autoconv_source__)
    assert f.trace_count == 1


# break40: a layer's result kept through a view of each kind (or an alias the tracer sees
# through: `.data`, `detach`, `reshape` of a contiguous result) is never written into.
_KEPT_ALIASES = {
    "data": lambda h: h.data,
    "detach": lambda h: h.detach(),
    "reshape": lambda h: h.reshape(8, 5),
    "unbind": lambda h: h.unbind(0)[2],
    "expand": lambda h: h[:1].expand(3, 8),
    "as_strided": lambda h: h.as_strided((2, 2), (1, 8)),
    "movedim": lambda h: h.movedim(0, 1),
    "split": lambda h: h.split(2)[1],
    "view_dtype": lambda h: h.view(torch.int32),
    "contiguous": lambda h: h.contiguous(),
    "eval_dropout": lambda h: torch.dropout(h, 0.5, False),
}


def chain_keeping_an_alias(x, alias):
    kept = alias(torch.nn.functional.linear(x, *_CHAIN[0]))
    for w, b in _CHAIN[1:]:
        x = torch.relu(torch.nn.functional.linear(x, w, b))
    return x, kept


@pytest.mark.parametrize("alias", list(_KEPT_ALIASES))
def test_a_layers_result_kept_through_an_alias_is_never_written_into(alias):
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(9))
    f = autoconv.autoconv(chain_keeping_an_alias)
    with torch.no_grad():
        got = [f(x * scale, _KEPT_ALIASES[alias]) for scale in (1.0, -2.0)]
        want = [chain_keeping_an_alias(x * scale, _KEPT_ALIASES[alias]) for scale in (1.0, -2.0)]
        assert _WRITES_INTO_TEMPORARY.search(f.concrete_functions[0]._runner.__autoconv_source__)
    for g, w in zip(pytree.tree_leaves(got), pytree.tree_leaves(want)):
        assert torch.equal(g, w)


def test_a_lowered_break_flags_loop_test_runs_in_python():
    # The converter leaves `not did_break and i < 4` unstaged (NOTE [a comparison beside a
    # traced test]): a logical_and of a logical_not and a comparison, read only for its truth,
    # runs as Python's `and` of the two truths, the counter compared as a number.
    x = torch.tensor([1.0, 2.0, -1.0, 4.0])
    graph_module = _graph(while_break, x)
    source = compile_python(lower(graph_module)).__autoconv_source__
    loop = source[source.rindex("while True:"):]
    assert " and bool(" in loop and "logical_and(" not in loop, source
    for x in ([1.0, 2.0, -1.0, 4.0], [-1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]):
        _same_as_fx(graph_module, torch.tensor(x))
        got = build("python", graph_module, (torch.tensor(x),))(torch.tensor(x))
        want = while_break(torch.tensor(x))
        for g, e in zip(pytree.tree_leaves(got), want):
            torch.testing.assert_close(g, torch.as_tensor(e))


class _TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer("shift", torch.full((2,), 0.5))

    def forward(self, x):
        return self.head(torch.relu(self.lin(x))) + self.shift


def test_a_modules_parameters_are_read_by_the_graphs_function_and_seen_live():
    # NOTE [parameters read by the graph's function]: the runner takes only the argument
    torch.manual_seed(0)
    model, x = _TwoLayers().eval(), torch.randn(3, 4)
    f = autoconv.autoconv(model)
    with torch.no_grad():
        assert torch.equal(f(x), model(x))
        concrete = f.concrete_functions[0]
        assert concrete._runner.reads_state
        assert "_state_" in concrete._runner.__autoconv_source__
        assert len(concrete._inputs([x])) == 1
        # replaced by assignment, changed in place, a buffer rebound: the next call sees each
        model.lin.weight = torch.nn.Parameter(torch.randn(4, 4))
        assert torch.equal(f(x), model(x))
        model.head.bias.add_(1.0)
        assert torch.equal(f(x), model(x))
        model.shift = torch.full((2,), -3.0)
        assert torch.equal(f(x), model(x))
        assert f.trace_count == 1
        # gone (`del`, then a plain tensor attribute in its place): traces again, right
        del model.head.weight
        model.head.weight = torch.ones(2, 4)
        assert torch.equal(f(x), model(x))
        assert f.trace_count == 2
        # the fx backend's copy of the graph takes every input again
        fx = autoconv.autoconv(model, backend="fx")
        assert torch.equal(fx(x), model(x))
        assert not getattr(fx.concrete_functions[0]._runner, "reads_state", False)


def test_a_modules_arguments_go_to_its_graphs_function_as_they_are():
    # NOTE [leaves that are the graph's inputs]: a module whose graph's function reads the
    # parameters itself is handed the call's own arguments; a runner swapped in, or a copy's
    # runner of another backend, takes the parameters as arguments again
    torch.manual_seed(0)
    model, x = _TwoLayers().eval(), torch.randn(3, 4)
    f = autoconv.autoconv(model)
    with torch.no_grad():
        want = model(x)
        assert torch.equal(f(x), want) and torch.equal(f(x), want)
        concrete = f.concrete_functions[0]
        args = (x,)
        assert concrete._inputs(args) is args
        model.lin.weight = torch.nn.Parameter(torch.randn(4, 4))  # read live, as before
        assert torch.equal(f(x), model(x)) and f.trace_count == 1
        with_fx = copy.copy(concrete)
        with_fx.backend, with_fx._runner = "fx", None
        assert torch.equal(with_fx(x), model(x))
        assert len(with_fx._inputs(args)) == 1 + len(list(model.parameters())) + 1
        own = concrete._runner
        concrete._runner = with_fx._runner  # (as tests/opdb.py swaps a runner in)
        try:
            assert concrete._inputs(args) is not args
            assert torch.equal(f(x), model(x))
        finally:
            concrete._runner = own
        assert concrete._inputs(args) is args and torch.equal(f(x), model(x))


def test_a_graph_reading_parameters_keeps_gradients_as_eager():
    torch.manual_seed(1)
    model, x = _TwoLayers(), torch.randn(3, 4)
    f = autoconv.autoconv(model)
    want = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    got = torch.autograd.grad(f(x).sum(), list(model.parameters()))
    assert f.concrete_functions[0]._runner.reads_state
    for g, w in zip(got, want):
        assert torch.equal(g, w)


def _code_generated(module) -> bool:
    return not (isinstance(module, _LazyGraphModule) and type(module)._needs_recompile())


def _doubled_or_less_one(x):
    if x.sum() > 0:
        y = x * 2
    else:
        y = x - 1
    return y


def test_the_traces_code_is_generated_only_for_a_backend_that_runs_its_modules():
    # NOTE [the trace's code generated where it runs] in autoconv/backends.py: the python
    # backend generates its own code, so the trace's modules keep theirs ungenerated (10 ms of
    # the seed model's first call); the fx backend runs them, and `code` reads it.
    x = torch.tensor([1.0, -3.0])
    for backend in ("python", "fx"):
        f = autoconv.autoconv(_doubled_or_less_one, backend=backend)
        for v in (x, -x):  # (both branches, one graph)
            torch.testing.assert_close(f(v), _doubled_or_less_one(v))
        (concrete,) = f.concrete_functions
        modules = list(concrete._graph_module.modules())
        assert len(modules) > 1  # (the branches' modules)
        if backend == "python":
            assert not any(_code_generated(m) for m in modules)
            assert "cond" in concrete.code and _code_generated(modules[0])  # (made when read)
        else:
            assert all(_code_generated(m) for m in modules)
