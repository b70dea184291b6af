"""Graph shape: cond / while_loop nodes where the data decides, none where Python decides, and
read-only tensors lifted as operands (never baked as constants)."""

import torch

import autoconv
from support import COND, WHILE_LOOP, count_ops


def tensor_branch(x):
    if x.sum() > 0:
        y = x * 2
    else:
        y = x - 1
    return y


def python_branch(x, flag):
    if flag:
        y = x * 2
    else:
        y = x - 1
    return y


def python_loop(x, n):
    for _ in range(n):
        x = x + 1
    while n > 0:
        n -= 1
        x = x * 2
    return x


def tensor_loop(x, n):
    i = 0
    while i < n:
        x = x + 1
        i += 1
    return x


def reads_outer(x, w):
    # NOTE [closure operands]: the branch reads `w`. Every tensor a body reads from outside it
    # becomes an operand of the cond node (runtime/staging/tracers/make_fx.py, _lift_constants); if
    # one were baked as a constant, replaying the graph with another `w` would return the traced
    # one's result and this test would fail.
    if x.sum() > 0:
        y = x * w
    else:
        y = x + w
    return y


def test_tensor_condition_is_a_cond_node():
    cf = autoconv.autoconv(tensor_branch).get_concrete_function(torch.ones(3))
    assert count_ops(cf.graph_module, COND) == 1
    assert count_ops(cf.graph_module, WHILE_LOOP) == 0


def test_python_condition_leaves_no_node():
    f = autoconv.autoconv(python_branch)
    cf = f.get_concrete_function(torch.ones(3), True)
    assert count_ops(cf.graph_module, COND, WHILE_LOOP) == 0
    torch.testing.assert_close(cf(torch.ones(3), True), torch.ones(3) * 2)
    other = f.get_concrete_function(torch.ones(3), False)
    torch.testing.assert_close(other(torch.ones(3), False), torch.zeros(3))
    assert f.trace_count == 2  # a new Python value is a new signature


def test_python_loops_unroll_without_nodes():
    cf = autoconv.autoconv(python_loop).get_concrete_function(torch.zeros(2), 3)
    assert count_ops(cf.graph_module, COND, WHILE_LOOP) == 0
    torch.testing.assert_close(cf(torch.zeros(2), 3), python_loop(torch.zeros(2), 3))


def test_tensor_loop_is_a_while_loop_node():
    cf = autoconv.autoconv(tensor_loop).get_concrete_function(torch.zeros(2), torch.tensor(3))
    assert count_ops(cf.graph_module, WHILE_LOOP) == 1
    for n in (0, 1, 5):
        torch.testing.assert_close(cf(torch.zeros(2), torch.tensor(n)), torch.full((2,), float(n)))


def test_closure_tensors_are_operands_not_constants():
    f = autoconv.autoconv(reads_outer)
    cf = f.get_concrete_function(torch.ones(2), torch.ones(2))
    assert not [n for n in cf.graph.nodes if n.op == "get_attr" and "constant" in str(n.target)]
    for x in (torch.ones(2), -torch.ones(2)):
        for w in (torch.ones(2), torch.tensor([3.0, -4.0])):
            torch.testing.assert_close(cf(x, w), reads_outer(x, w))


def test_eager_tensors_take_the_python_path():
    # Outside a tracer a concrete tensor condition runs as a Python `if`: no torch.cond call.
    converted = autoconv.convert(tensor_branch)
    calls = []
    original = torch.cond
    torch.cond = lambda *a, **k: calls.append(a) or original(*a, **k)
    try:
        torch.testing.assert_close(converted(torch.ones(3)), torch.ones(3) * 2)
    finally:
        torch.cond = original
    assert calls == []


def test_make_fx_of_converted_function():
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(autoconv.convert(tensor_branch), tracing_mode="fake")(torch.ones(3))
    assert count_ops(gm, COND) == 1
    torch.testing.assert_close(gm(-torch.ones(3)), tensor_branch(-torch.ones(3)))


SCALE = torch.tensor([2.0, -1.0])


def reads_by_python_closure(x, w, n):
    # `scale` reads `w` by a Python closure the converter does not see, and the loop body reads
    # the global SCALE and makes a constant of its own.
    def scale(v):
        return v * w

    i = 0
    while i < n:
        if x.sum() > 0:
            x = scale(x) - torch.tensor(1.0)
        else:
            x = x * SCALE + 3
        i += 1
    return x


def _body_constants(graph_module):
    """Tensor attributes read by get_attr in any cond / while_loop body."""
    found = []
    for name, module in graph_module.named_modules():
        if name and isinstance(module, torch.fx.GraphModule):
            found += [n.target for n in module.graph.find_nodes(op="get_attr")
                      if isinstance(getattr(module, n.target), torch.Tensor)]
    return found


def test_bodies_hold_no_tensor_constants():
    cf = autoconv.autoconv(reads_by_python_closure).get_concrete_function(
        torch.ones(2), torch.ones(2), torch.tensor(2))
    assert count_ops(cf.graph_module, WHILE_LOOP) == 1 and count_ops(cf.graph_module, COND) == 1
    assert _body_constants(cf.graph_module) == []
    for x in (torch.ones(2), torch.tensor([-5.0, 1.0])):
        for w in (torch.ones(2), torch.tensor([3.0, -4.0])):
            for n in (0, 1, 3):
                torch.testing.assert_close(cf(x, w, torch.tensor(n)),
                                           reads_by_python_closure(x, w, torch.tensor(n)))


def test_exported_bodies_hold_no_tensor_constants():
    program = autoconv.autoconv(reads_by_python_closure).export(
        torch.ones(2), torch.ones(2), torch.tensor(2))
    assert _body_constants(program.graph_module) == []


def loop_reading_a_view_by_closure(x, y):
    p = x[0]  # a view of x, which the loop's test reads by closure

    def below(v):
        return v < p

    while below(y):
        y = y + 1
    return y


def test_lifting_a_view_traces_nothing_into_the_graph():
    # NOTE [meta values of lifted constants] (runtime/staging/tracers/make_fx.py): making the
    # fake value of the lifted view replayed it on a fake base (`as_strided`) in the graph being
    # traced, which then held that base as a constant (a value of the trace; inside a staged
    # body it was lifted up to the top graph: "left a value of the trace (FakeTensor)").
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(autoconv.convert(loop_reading_a_view_by_closure), tracing_mode="fake")(
        torch.tensor([5.0, 1.0]), torch.tensor(1.0))
    assert count_ops(gm, WHILE_LOOP) == 1
    assert not [n for n in gm.graph.nodes if n.op == "get_attr"
                and isinstance(getattr(gm, n.target), torch.Tensor)], gm.code
    assert count_ops(gm, torch.ops.aten.as_strided.default) == 0, gm.code
    for x, y in ((torch.tensor([5.0, 1.0]), torch.tensor(1.0)),
                 (torch.tensor([0.0, 1.0]), torch.tensor(2.0))):
        torch.testing.assert_close(gm(x, y), loop_reading_a_view_by_closure(x, y))


def dead_branch(x):
    if x.sum() > 0:
        unused = x * 2  # noqa: F841 (no later reader: the cond has no outputs anyone uses)
    return x + 1


def printing_branch(x):
    if x.sum() > 0:
        unused = x * 2  # noqa: F841
        print("positive:", x)
    return x + 1


def test_a_cond_nothing_reads_is_dropped_unless_it_prints(capfd):
    dead = autoconv.autoconv(dead_branch).get_concrete_function(torch.ones(2))
    assert count_ops(dead.graph_module, COND) == 0
    printing = autoconv.autoconv(printing_branch).get_concrete_function(torch.ones(2))
    assert count_ops(printing.graph_module, COND) == 1
    capfd.readouterr()
    printing(torch.ones(2))
    printing(-torch.ones(2))
    assert capfd.readouterr().out == "positive: tensor([1., 1.])\n"
