"""The public API: Function, ConcreteFunction, convert, to_code, do_not_convert, eager switch."""

import pytest
import torch

import autoconv
from autoconv import TensorSpec
from programs import collatz_steps


def python_collatz(n):
    steps = 0
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def scaled(x, factor=2.0, *, shift=0.0):
    if x.sum() > 0:
        return x * factor + shift
    return x - shift


def test_function_traces_once_per_signature():
    f = autoconv.autoconv(collatz_steps)
    assert f.python_function is collatz_steps
    for n, want in [(27, 111), (7, 16), (1, 0), (2, 1)]:
        assert f(torch.tensor(n)).item() == want
    assert f.trace_count == 1
    f(torch.tensor([5]))  # a new shape is a new signature
    assert f.trace_count == 2
    assert len(f.concrete_functions) == 2


def test_decorator_forms():
    @autoconv.autoconv
    def a(x):
        return x + 1

    @autoconv.autoconv()
    def b(x):
        return x + 2

    assert a(torch.tensor(1)).item() == 2 and b(torch.tensor(1)).item() == 3
    assert a.__name__ == "a"


def test_concrete_function_members():
    f = autoconv.autoconv(collatz_steps)
    cf = f.get_concrete_function(TensorSpec((), torch.int64))
    assert isinstance(cf, autoconv.ConcreteFunction)
    assert isinstance(cf.graph_module, torch.fx.GraphModule)
    assert cf.graph is cf.graph_module.graph
    assert "while_loop" in cf.code
    assert "Tensor(shape=[], dtype=torch.int64" in str(cf.signature)
    assert cf(torch.tensor(27)).item() == 111
    with pytest.raises(TypeError, match="was traced for"):
        cf(torch.tensor([27]))
    assert f.get_concrete_function(torch.tensor(3)) is cf  # same signature, same graph


def relu_branches(x):
    if x.sum() > 0:
        return torch.relu(x) * 2
    return torch.relu(-x) + 1


def test_a_users_fx_pass_over_graph_module_then_torch_compile():
    # perf54: the module read was fx's lazy kind, whose `recompile()` only marks its code
    # stale, and torch.compile(fullgraph=True) then refused it; and an edit changed the
    # function's replay where made before its first call only (NOTE [the graph module a user
    # reads] in autoconv/concrete.py)
    f = autoconv.autoconv(relu_branches)
    x = torch.tensor([1.0, -2.0, 3.0, 4.0])
    cf = f.get_concrete_function(x)
    assert cf._user_graph_module is None  # tracing does not make the module a user reads
    relus = 0
    for module in cf.graph_module.modules():  # the cond's bodies included
        assert type(module).recompile is torch.fx.GraphModule.recompile
        for node in module.graph.nodes:
            if node.target is torch.ops.aten.relu.default:
                node.target = torch.ops.aten.gelu.default
                relus += 1
        module.recompile()
    assert relus == 2
    assert cf.graph is cf.graph_module.graph
    compiled = torch.compile(cf.graph_module, fullgraph=True, backend="aot_eager")
    gelu = torch.nn.functional.gelu
    for arg, want in [(x, gelu(x) * 2), (-x, gelu(x) + 1)]:  # both branches
        (got,) = compiled(arg)
        torch.testing.assert_close(got, want)
    # the function's replay is not the user's edit, first call or not, in either backend
    torch.testing.assert_close(f(x), relu_branches(x))
    torch.testing.assert_close(f(-x), relu_branches(-x))
    g = autoconv.autoconv(relu_branches, backend="fx")
    for module in g.get_concrete_function(x).graph_module.modules():
        module.graph.eliminate_dead_code()
        for node in module.graph.nodes:
            if node.target is torch.ops.aten.relu.default:
                node.target = torch.ops.aten.gelu.default
        module.recompile()
    torch.testing.assert_close(g(x), relu_branches(x))
    torch.testing.assert_close(g(-x), relu_branches(-x))


def test_keyword_and_default_arguments():
    f = autoconv.autoconv(scaled)
    x = torch.ones(2)
    torch.testing.assert_close(f(x), scaled(x))
    torch.testing.assert_close(f(x, 3.0, shift=1.0), scaled(x, 3.0, shift=1.0))
    torch.testing.assert_close(f(-x, shift=1.0), scaled(-x, shift=1.0))
    assert f.trace_count == 3  # Python values are part of the signature


def test_python_values_run_as_python():
    converted = autoconv.convert(python_collatz)
    assert converted(27) == 111 and converted(1) == 0


def test_nested_structures_in_and_out():
    def f(pair, table):
        a, b = pair
        if a.sum() > b.sum():
            out = {"big": a, "small": b}
        else:
            out = {"big": b, "small": a}
        return out, table["k"] * 2

    g = autoconv.autoconv(f)
    for a, b in [(torch.ones(2), torch.zeros(2)), (torch.zeros(2), torch.ones(2))]:
        got, k = g((a, b), {"k": torch.tensor(3.0)})
        want, wk = f((a, b), {"k": torch.tensor(3.0)})
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(k, wk)
    assert g.trace_count == 1


def test_run_functions_eagerly():
    calls = []

    def f(x):
        calls.append(1)
        return x + 1

    g = autoconv.autoconv(f)
    g(torch.ones(1))
    g(torch.ones(1))
    assert len(calls) == 1  # Python side effects run while tracing only
    autoconv.run_functions_eagerly(True)
    try:
        assert autoconv.functions_run_eagerly()
        g(torch.ones(1))
        assert len(calls) == 2
    finally:
        autoconv.run_functions_eagerly(False)
    assert not autoconv.functions_run_eagerly()


def helper_with_branch(x):
    if x.sum() > 0:
        return x * 2
    return x


def test_user_functions_are_converted_recursively():
    def f(x):
        return helper_with_branch(x) + 1

    cf = autoconv.autoconv(f).get_concrete_function(torch.ones(2))
    assert "cond" in cf.code
    torch.testing.assert_close(cf(-torch.ones(2)), torch.zeros(2))


def test_do_not_convert():
    @autoconv.do_not_convert
    def opaque(x):
        return x + 1

    assert autoconv.convert(opaque) is opaque

    def f(x):
        return opaque(x)

    assert autoconv.convert(f)(torch.ones(1)).item() == 2


def test_to_code_shows_runtime_calls():
    code = autoconv.to_code(collatz_steps)
    assert "ac.while_stmt(loop_test, loop_body, (n, steps), ('n', 'steps'), kept=(1,))" in code
    assert "ac.if_exp(n % 2 == 0, lambda n: n // 2, lambda n: 3 * n + 1, (n,))" in code


class Gate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(3, 3)
        self.b = torch.nn.Linear(3, 3)

    def forward(self, x):
        if x.mean() > 0:
            return self.a(x)
        return self.b(x)


def test_module_parameters_are_read_live():
    torch.manual_seed(0)
    module = Gate()
    f = autoconv.autoconv(module)
    x = torch.ones(2, 3)
    torch.testing.assert_close(f(x), module(x))
    torch.testing.assert_close(f(-x), module(-x))
    with torch.no_grad():
        module.a.weight.mul_(3.0)
    torch.testing.assert_close(f(x), module(x))
    assert f.trace_count == 1


def test_methods_and_partials_convert():
    import functools

    class Thing:
        def scale(self, x):
            return x * 2 if x.sum() > 0 else x

    thing = Thing()
    bound = autoconv.convert(thing.scale)
    torch.testing.assert_close(bound(torch.ones(1)), torch.full((1,), 2.0))
    partial = autoconv.convert(functools.partial(scaled, factor=5.0))
    torch.testing.assert_close(partial(torch.ones(1)), torch.full((1,), 5.0))


def test_retrace_warning():
    f = autoconv.autoconv(lambda x, k: x * k)
    with pytest.warns(UserWarning, match="traced 5 times"):
        for k in range(5):
            f(torch.ones(1), k)


def _steps(x):
    if x.sum() > 0:
        return x * 2
    return -x


class _Helper(torch.nn.Module):
    def forward(self, x):
        return x + 1 if x.sum() > 0 else x - 1

    def shift(self, x):
        return x + 10 if x.sum() > 0 else x - 10


@pytest.mark.parametrize("convert_first", [False, True])
def test_convert_called_in_code_torch_compile_traces(convert_first):
    # README's embedding pattern, a forward calling autoconv.convert(fn), under
    # torch.compile(fullgraph=True): dynamo refused the conversion's lock ("Unsupported context
    # manager ... RLock", tester t11 repro 10), even with the conversion cached; and a module's
    # or a method's twin, bound with types.MethodType, which dynamo cannot call
    class Gate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.helper = _Helper()

        def forward(self, x):
            return (autoconv.convert(_steps)(x) + autoconv.convert(self.helper)(x)
                    + autoconv.convert(self.helper.shift)(x))

    gate = Gate()
    if convert_first:
        gate(torch.ones(2))
    compiled = torch.compile(Gate(), fullgraph=True, backend="eager")
    exported = torch.export.export(Gate(), (torch.ones(2),), strict=False).module()
    for x in (torch.ones(2), -torch.ones(2), torch.tensor([3.0, -1.0])):
        torch.testing.assert_close(compiled(x), gate(x))
        torch.testing.assert_close(exported(x), gate(x))


def test_readme_quick_example_runs_as_written_and_shows_the_real_converted_source(tmp_path):
    # tester36b s05: README's "(real output)" of to_code was several sessions old (no
    # aug_assign, check_aliases, kept=): the first block is run from a file, as a user would,
    # and the second must be what to_code gives for it
    import importlib.util
    import os
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    quick = readme.split("## Quick example", 1)[1]
    example, shown = re.findall(r"```python\n(.*?)```", quick, re.S)[:2]
    path = tmp_path / "readme_quick.py"
    path.write_text(example)
    spec = importlib.util.spec_from_file_location("readme_quick", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.collatz_steps(torch.tensor(27)).item() == 111
    assert module.collatz_steps.trace_count == 1
    assert autoconv.to_code(module.collatz_steps.python_function).strip() == shown.strip()
