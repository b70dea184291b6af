"""Tensors a function reads without getting them as arguments (NOTE [captured tensors] in
autoconv/captures.py): a global table, a closure's tensor, a module's plain tensor attribute,
updated in place or rebound between calls, give what Python gives on the next call."""

import types

import pytest
import torch

import autoconv
from support import assert_close

T = torch.tensor
TABLE = T([1.0, 2.0, 3.0])
CONFIG = {"offset": T([0.5, 0.5, 0.5])}
settings = types.ModuleType("settings")  # a module imported as a global (`cfg.TABLE`)
settings.SCALE = T(2.0)


def from_the_table(x):
    w = TABLE * 2  # computed from the global before use: was folded at trace time
    if x.sum() > 0:
        return x + w
    return x - w


def _table_weight():
    return TABLE + CONFIG["offset"]


def through_a_helper(x):
    w = _table_weight()  # the globals of a function it calls, a dict's item
    if x.sum() > 0:
        return x * w
    return x


def from_a_module_global(x):
    s = settings.SCALE * 1.0
    if x.sum() > 0:
        return x * s
    return x


def _closure():
    bias = T([1.0, 1.0, 1.0])

    def with_bias(x):
        b = bias * 1.0
        if x.sum() > 0:
            return x + b
        return x - b

    def rebind(value):
        nonlocal bias
        bias = value

    return with_bias, lambda: bias, rebind


class Scaler(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = T(2.0)  # a plain attribute: not a parameter, not a buffer

    def forward(self, x):
        s = self.scale * 1.0
        return x * s if x.sum() > 0 else x


class Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Scaler()

    def forward(self, x):
        return self.inner(x) + self.inner.scale


XS = [T([1.0, 2.0, 3.0]), T([-1.0, -2.0, -1.0])]


def _modes(fn, compile=False):
    """(name, callable) for autoconv's replay, and torch.compile (which guards on such tensors
    itself; checked on a few kinds only, for the suite's time)."""
    modes = [("staged", autoconv.autoconv(fn))]
    if compile:
        torch._dynamo.reset()
        modes.append(("compile", torch.compile(autoconv.convert(fn), fullgraph=True,
                                               backend="eager")))
    return modes


def _check(fn, modes, updates):
    """After each update (a callable), every mode gives what `fn` gives on XS."""
    for update in [lambda: None, *updates]:
        update()
        for x in XS:
            want = fn(x)
            for name, run in modes:
                torch.testing.assert_close(run(x), want, msg=lambda m, n=name: f"{n}: {m}")


@pytest.fixture
def table():
    global TABLE
    saved = TABLE.clone(), CONFIG["offset"], settings.SCALE
    yield
    TABLE = saved[0]
    CONFIG["offset"], settings.SCALE = saved[1], saved[2]


def test_regression_a_global_table_updated_in_place_is_read_at_each_call(table):
    # /work/repros/t8/repro_12.py: the first call's table was folded into the graph
    _check(from_the_table, _modes(from_the_table),
           [lambda: TABLE.mul_(10), lambda: TABLE.copy_(T([0.0, 0.0, 0.0]))])


def test_a_global_rebound_traces_again(table):
    def rebind(value):
        global TABLE
        TABLE = value

    run = autoconv.autoconv(from_the_table)
    for x in XS:
        run(x)
    rebind(T([5.0, 5.0, 5.0]))
    for x in XS:
        torch.testing.assert_close(run(x), from_the_table(x))
    assert run.trace_count == 2
    rebind(T([7.0, 7.0]))  # another shape: the new graph is for it
    torch.testing.assert_close(run(T([1.0, 1.0])), from_the_table(T([1.0, 1.0])))


def test_a_helpers_global_and_a_dict_item_are_read_at_each_call(table):
    def rebind():
        CONFIG["offset"] = T([2.0, 2.0, 2.0])

    _check(through_a_helper, _modes(through_a_helper),
           [lambda: TABLE.add_(1), lambda: CONFIG["offset"].mul_(3), rebind])


def test_a_tensor_of_a_module_imported_as_a_global(table):
    def rebind():
        settings.SCALE = T(-3.0)

    _check(from_a_module_global, _modes(from_a_module_global),
           [lambda: settings.SCALE.fill_(4.0), rebind])


def test_a_closure_cell_updated_in_place_or_rebound():
    fn, bias, rebind = _closure()
    _check(fn, _modes(fn), [lambda: bias().mul_(3), lambda: rebind(T([9.0, 8.0, 7.0]))])


def test_regression_a_modules_plain_tensor_attribute_filled_or_rebound():
    # /work/repros/t8/repro_13.py: the graph kept the tensor seen at trace time
    module = Scaler()
    run = autoconv.autoconv(module)

    def rebind():
        module.scale = T(7.0)

    for update in (lambda: None, lambda: module.scale.fill_(5.0), rebind):
        update()
        for x in XS:
            torch.testing.assert_close(run(x), module(x))
    assert run.trace_count == 2  # the rebinding traced again, the fill_ did not


@pytest.mark.parametrize("compile", [
    False, pytest.param(True, marks=pytest.mark.slow)], ids=["staged", "compile"])
def test_a_submodules_plain_tensor_attribute(compile):
    # (torch.compile guards on such tensors itself; slow: a recompile per rebinding)
    module = Outer()
    modes = _modes(module, compile=compile)

    def rebind():
        module.inner.scale = T(-1.0)

    _check(module, modes, [lambda: module.inner.scale.add_(1), rebind])


def test_a_tensor_the_function_makes_is_still_folded():
    def made_here(x):
        w = torch.tensor([1.0, 2.0, 3.0]) * 2
        if x.sum() > 0:
            return x + w
        return x - w

    run = autoconv.autoconv(made_here)
    concrete = run.get_concrete_function(XS[0])
    assert "aten.mul" not in concrete.code  # computed once, at trace time
    for x in XS:
        torch.testing.assert_close(run(x), made_here(x))


STEP = torch.zeros(())


def count_step(g):
    STEP.add_(1)
    return g / STEP


def make_bump_if_positive():
    k = torch.zeros(())

    def bump_if_positive(x):
        if x.sum() > 0:
            k.add_(1)
        return x * k

    return bump_if_positive, k


def test_an_outside_tensor_updated_in_place_is_updated_once_per_call():
    # NOTE [outside tensors updated while tracing]: make_fx ran `STEP.add_(1)` on the real
    # tensor while tracing, and the graph's op runs again at each call: STEP was 2 after the
    # first call (an Adam step count off by one, silently), and one more per retrace.
    STEP.zero_()
    function = autoconv.autoconv(count_step)
    assert_close(function(torch.ones(2)), torch.ones(2))
    assert_close(function(torch.ones(3)), torch.full((3,), 0.5))  # a second trace
    assert STEP.item() == 2.0
    fn, k = make_bump_if_positive()
    function = autoconv.autoconv(fn)
    for x, want in [(torch.ones(2), 1.0), (-torch.ones(2), 1.0), (torch.ones(2), 2.0)]:
        function(x)
        assert k.item() == want
