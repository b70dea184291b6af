"""The python backend's lowering: what it removes, what it must keep, and that it computes what
torch's own execution of the graph computes."""

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

import autoconv
from autoconv.backends import _fast_entry, _lower_for_python, build, compile_python

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
    lowered = _lower_for_python(graph_module)
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
    assert aten.add_.Tensor in _targets(_lower_for_python(graph_module))
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
    lowered = _lower_for_python(graph_module)
    assert aten.clone.default in _targets(lowered)
    x = torch.ones(2)
    out = build("python", graph_module, (x, x))(x, torch.ones(2))[0]
    out += 1
    assert x.tolist() == [1.0, 1.0]


def test_linear_is_fused_and_ops_bind_to_c_functions():
    layer = torch.nn.Linear(3, 2)
    graph_module = make_fx(lambda w, b, x: torch.nn.functional.linear(x, w, b))(
        layer.weight.detach(), layer.bias.detach(), torch.ones(4, 3))
    lowered = _lower_for_python(graph_module)
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
