"""torch.fx.symbolic_trace of modules that call converted code: cond / while_loop nodes over
sub-GraphModules traced by the same Tracer (runtime/staging/tracers/symbolic.py), equal to
Python on inputs that take different paths."""

from __future__ import annotations

import pytest
import torch

import autoconv
from programs import collatz_steps, early_return, for_break_continue, if_elif, logical
from support import COND, WHILE_LOOP, assert_close, count_ops


class _Calls(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = autoconv.convert(fn)

    def forward(self, x):
        return self.fn(x)


def _check(fn, inputs, tracer=None, module=None):
    module = module or _Calls(fn)
    reference = fn or module
    if tracer is None:
        traced = torch.fx.symbolic_trace(module)
    else:
        traced = torch.fx.GraphModule(module, tracer.trace(module))
    assert count_ops(traced, COND, WHILE_LOOP) > 0, traced.code
    for x in inputs:
        assert_close(traced(x.clone()), reference(x.clone()))
    return traced


CASES = {
    "while with a conditional expression": (
        collatz_steps, [torch.tensor(27), torch.tensor(1), torch.tensor(6)]),
    "if / elif / else": (if_elif, [torch.ones(3), -torch.ones(3), torch.zeros(3)]),
    "and / or / not": (logical, [torch.ones(3), -torch.ones(3), torch.full((3,), -9.0),
                                 torch.full((3,), 5.0)]),
    "for over a tensor, break, continue": (
        for_break_continue, [torch.tensor([[1.0, 2], [-1, -1], [-2, -3], [-1, 0]]),
                             torch.ones(3, 2), -torch.ones(4, 2)]),
    "early return from a loop": (
        early_return, [torch.tensor([0.0, 1, 3, 0, 0]), torch.zeros(5)]),
}


@pytest.mark.parametrize("case", CASES)
def test_symbolic_trace_equals_python(case):
    fn, inputs = CASES[case]
    _check(fn, inputs)


def test_the_issue_example_gives_a_while_loop_with_a_cond_inside():
    traced = _check(collatz_steps, [torch.tensor(27), torch.tensor(97)])
    assert count_ops(traced, WHILE_LOOP) == 1 and count_ops(traced, COND) == 1
    assert traced(torch.tensor(97)) == 118


class _Stepper(torch.nn.Module):
    """Parameters read in nested staged statements."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)
        self.scale = torch.nn.Parameter(torch.full((3,), 0.5))
        self.register_buffer("shift", torch.ones(3))

    def forward(self, x):
        return autoconv.convert(_Stepper.steps)(self, x)

    def steps(self, x):
        while x.sum() < 10:
            if x.sum() > 0:
                x = x + self.linear(x).abs() * self.scale + self.shift
            else:
                x = x + self.shift
        return x


def test_parameters_are_operands_and_the_module_is_left_as_it_was():
    model = _Stepper()
    keys = list(model.state_dict())
    traced = _check(None, [torch.ones(3), -torch.ones(3), torch.full((3,), 20.0)],
                    module=model)
    assert list(model.state_dict()) == keys  # no submodule or entry added to the user's module
    for name, sub in traced.named_modules():
        if name and isinstance(sub, torch.fx.GraphModule):  # bodies read parameters as inputs
            assert not any(n.op == "get_attr" and "graph" not in n.target
                           for n in sub.graph.nodes), (name, sub.code)
    with torch.no_grad():  # a changed parameter is read by the traced module (not baked)
        model.scale.fill_(2.0)
    assert_close(traced(torch.ones(3)), model(torch.ones(3)))


class _PythonOnly(torch.nn.Module):
    """Python control flow of its own: fx can call it as a leaf, never trace it."""

    def forward(self, x):
        return x * 3 if float(x.sum()) > 0 else x


def opaque_step(x):  # public: fx autowraps no name that starts with "_"
    return x + float(x.sum() > 100)  # Python float() of a tensor: fx must not trace into it


class _Custom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.leaf = _PythonOnly()

    def forward(self, x):
        return autoconv.convert(_Custom.body)(self, x)

    def body(self, x):
        while x.sum() < 20:
            if x.max() > 1:
                x = self.leaf(x) + 1
            else:
                x = opaque_step(x) + 2
        return x


class _LeafTracer(torch.fx.Tracer):
    def __init__(self):
        super().__init__(autowrap_functions=(opaque_step,))

    def is_leaf_module(self, module, qualified_name):
        return isinstance(module, _PythonOnly) or super().is_leaf_module(module, qualified_name)


def test_a_custom_tracer_with_leaf_modules_and_autowrapped_functions():
    traced = _check(None, [torch.ones(3), torch.zeros(3), torch.full((3,), 30.0)],
                    tracer=_LeafTracer(), module=_Custom())
    nodes = [n for sub in traced.modules() if isinstance(sub, torch.fx.GraphModule)
             for n in sub.graph.nodes]
    assert any(n.op == "call_module" and n.target == "leaf" for n in nodes)
    # one node calling it (by name: pytest may hold two copies of this module's functions)
    assert any(n.op == "call_function" and getattr(n.target, "__name__", "") == "opaque_step"
               for n in nodes)


def test_plain_functions_trace_too():
    traced = torch.fx.symbolic_trace(autoconv.convert(if_elif))
    for x in (torch.ones(3), -torch.ones(3), torch.zeros(3)):
        assert_close(traced(x), if_elif(x))


class _Plain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x) * 2


_PLAIN = _Plain()


def _traces_a_module_itself(x):
    graph = torch.fx.symbolic_trace(_PLAIN)
    if x.sum() > 0:
        y = graph(x)
    else:
        y = x - 1
    return y


# NOTE [a user's symbolic trace inside autoconv's]: fx.symbolic_trace called by the traced
# code met autoconv's torch-function mode, which asked a Proxy for its truth: fx's "symbolically
# traced variables cannot be used as inputs to control flow" for a module without any.
def test_symbolic_trace_called_inside_a_converted_function():
    inputs = [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])]
    staged = autoconv.autoconv(_traces_a_module_itself)
    for x in inputs:
        assert_close(staged(x), _traces_a_module_itself(x))
    assert staged.trace_count == 1


class _Branching(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            y = self.lin(x)
        else:
            y = x * 2
        return y


class _ConvertedForward(_Branching):
    forward = autoconv.convert(_Branching.forward)


def test_a_module_with_a_converted_forward_traces():
    module = _ConvertedForward()
    traced = torch.fx.symbolic_trace(module)
    assert count_ops(traced, COND) == 1
    for x in [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])]:
        assert_close(traced(x), module(x))


# NOTE [a converted module as torch.fx.symbolic_trace's root]: fx's "Proxy object cannot be
# iterated" at autoconv's line became an error that says what to trace instead.
@pytest.mark.parametrize("wrap", [autoconv.convert, autoconv.autoconv])
def test_symbolic_trace_of_a_converted_module_says_what_to_trace(wrap):
    with pytest.raises(autoconv.ConversionError,
                       match=r"torch.fx.symbolic_trace of autoconv\.(convert|autoconv)\(module\) "
                             r"\(_Branching\).*`@autoconv.convert` on _Branching.forward"
                       ) as refused:
        torch.fx.symbolic_trace(wrap(_Branching()))
    assert refused.value.filename == __file__
