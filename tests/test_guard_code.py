"""The generated check of a graph's guards (NOTE [guards checked by generated code] in
autoconv/captures.py) answers as the pipelines do: a call whose places all hold takes it, and
every change the pipelines see it sees too (it then leaves the call to them)."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

import autoconv
from autoconv import captures
from autoconv.captures import GuardSet

MODE = "sum"
TABLE = torch.arange(4.0)
COUNTS = collections.defaultdict(float, {"a": 2.0})
SETTINGS = {"factor": 2.0, "shift": 1.0}


def _reads_globals(x):
    y = x * SETTINGS["factor"] + TABLE * COUNTS["a"]
    if MODE == "sum":
        return y + len(SETTINGS)
    return y


class _Scaled(nn.Module):
    def forward(self, x):
        scale = getattr(self, "scale", None)  # absent while traced
        return x if scale is None else x * scale


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), _Scaled())
        self.head = nn.Linear(2, 2)

    def forward(self, x):
        return self.head(self.body(x))


def _pipelines(guards) -> bool:
    return (guards._places_hold()
            and (not (guards._counts or guards._bare) or guards._counts_hold())
            and (not guards._tables or guards._keys_hold()))


@pytest.fixture
def compared(monkeypatch):
    """Every generated check made while the test runs answers as the pipelines do."""
    made = captures._fast_check
    answers = []

    def both(guards, unrolled):
        fast = made(guards, unrolled)

        def check():
            answers.append(fast())
            assert answers[-1] == _pipelines(guards)
            return answers[-1]
        return check

    monkeypatch.setattr(captures, "_fast_check", both)
    return answers


def _pipelines_unused(monkeypatch):
    def unused(self):
        raise AssertionError("the pipelines were run: the generated check said no")
    for method in ("_places_hold", "_counts_hold", "_keys_hold"):
        monkeypatch.setattr(GuardSet, method, unused)


def test_places_that_hold_take_the_generated_check(monkeypatch):
    torch.manual_seed(0)
    model = _Block()
    run_model = autoconv.autoconv(model)
    run_globals = autoconv.autoconv(_reads_globals)
    x = torch.ones(1, 2)
    with torch.no_grad():
        run_model(x), run_globals(torch.ones(4))
        _pipelines_unused(monkeypatch)
        for _ in range(3):
            torch.testing.assert_close(run_model(x), model(x))
            torch.testing.assert_close(run_globals(torch.ones(4)), _reads_globals(torch.ones(4)))
    assert "b" not in COUNTS  # (a defaultdict's item read without inserting one)
    assert run_model.trace_count == run_globals.trace_count == 1


def _module_changes():
    yield "a submodule replaced", lambda m: setattr(m, "head", nn.Linear(2, 2))
    yield "a hook written into a leaf's table", lambda m: m.body[0]._forward_hooks.__setitem__(
        -3, lambda mod, i, out: out * 0 + 5)
    yield "the Sequential reordered", lambda m: m.body._modules.__setitem__(
        "0", m.body._modules.pop("0"))
    yield "an attribute absent while traced set", lambda m: object.__setattr__(
        m.body[3], "scale", 3.0)
    yield "a leaf's class changed", lambda m: setattr(m.body[1], "__class__", nn.Tanh)
    yield "a forward set on a leaf", lambda m: setattr(m.body[1], "forward", lambda x: x - 1)


@pytest.mark.parametrize("what, change", list(_module_changes()),
                         ids=[w for w, _ in _module_changes()])
def test_a_module_change_is_seen_by_the_generated_check(compared, what, change):
    torch.manual_seed(0)
    model = _Block()
    run = autoconv.autoconv(model)
    x = torch.ones(1, 2)
    with torch.no_grad():
        run(x), run(x)
        change(model)
        torch.testing.assert_close(run(x), model(x))
        torch.testing.assert_close(run(x), model(x))
    assert run.trace_count == 2
    assert False in compared  # (the change was the generated check's to see)


def _global_changes():
    yield "a string global changed", "MODE", lambda: "mean"
    yield "an equal string of another object", "MODE", lambda: "".join(["s", "um"])
    yield "a dict's item changed", "SETTINGS", lambda: {**SETTINGS, "factor": 3.0}
    yield "a defaultdict's item changed", "COUNTS", lambda: collections.defaultdict(
        float, {"a": 5.0})


@pytest.mark.parametrize("what, name, value", list(_global_changes()),
                         ids=[w for w, _, _ in _global_changes()])
def test_a_global_change_is_seen_by_the_generated_check(compared, what, name, value):
    run = autoconv.autoconv(_reads_globals)
    x = torch.ones(4)
    saved = globals()[name]
    run(x), run(x)
    globals()[name] = value()
    try:
        torch.testing.assert_close(run(x), _reads_globals(x))
        torch.testing.assert_close(run(x), _reads_globals(x))
    finally:
        globals()[name] = saved
    # (an equal string holds: the graph stays, its guard now expects the new object)
    assert run.trace_count == (1 if what.startswith("an equal") else 2)


def _deep():
    return nn.Sequential(*[nn.Linear(2, 2) if i % 2 == 0 else nn.ReLU() for i in range(40)])


_DEEP_CHANGES = [
    ("a hook written into a leaf's table", lambda m: m[17]._forward_hooks.__setitem__(
        -3, lambda mod, i, out: out * 0 + 5)),
    ("a leaf replaced in the table", lambda m: m._modules.__setitem__("20", nn.Linear(2, 2))),
    ("a ReLU's class changed", lambda m: setattr(m[31], "__class__", nn.Tanh)),
]


@pytest.mark.parametrize("what, change", _DEEP_CHANGES, ids=[w for w, _ in _DEEP_CHANGES])
def test_a_long_pipeline_spelt_out_later_sees_a_change(compared, what, change):
    # (_UNROLL_AFTER checks with the long pipelines as pipelines, then spelt out)
    torch.manual_seed(0)
    model = _deep()
    run = autoconv.autoconv(model)
    x = torch.ones(1, 2)
    with torch.no_grad():
        for _ in range(captures._UNROLL_AFTER + 2):
            run(x)
        guards = run._last[2]._captured
        assert len(guards._bare) > captures._UNROLLED
        assert guards._fast.__name__ == "check"  # (the fixture's, around the spelt-out one)
        change(model)
        torch.testing.assert_close(run(x), model(x))
        torch.testing.assert_close(run(x), model(x))
    assert run.trace_count == 2
    assert False in compared


class _TrainingScaled(nn.Module):
    """Python's `if self.training` in a leaf: the graph holds the traced mode's path."""

    def forward(self, x):
        return x * 2.0 if self.training else x


def _leaky():
    # (weights that flip the sign of the second feature, biases that differ: each change
    # below changes Python's answer, which the test asserts)
    layers = []
    for i in range(20):
        linear = nn.Linear(2, 2)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
            linear.bias.copy_(torch.tensor([i / 10, -i / 10]))
        layers += [linear, nn.LeakyReLU(1.0)]
    return nn.Sequential(*layers, _TrainingScaled()).eval()


def _swapped(m):
    first, other = m[0], m[20]
    m[0], m[20] = other, first


# (change, traces after it, whether the check sees it: a parameter is read live by the same
# graph; a module's state the graph baked in traces again, seen by the check, or by the
# Function's key where it is the module's own `training`)
_STATE_CHANGES = [
    ("a parameter replaced", lambda m: setattr(m[38], "weight", nn.Parameter(
        torch.full((2, 2), 0.5))), 1, False),
    ("a parameter changed in place under no_grad", lambda m: m[38].weight.mul_(-3), 1, False),
    ("a parameter's data rebound", lambda m: setattr(m[38].weight, "data", torch.full(
        (2, 2), -1.0)), 1, False),
    ("two submodules swapped", _swapped, 2, True),
    ("a field set", lambda m: setattr(m[39], "negative_slope", 0.5), 2, True),
    ("a field written into the leaf's __dict__", lambda m: m[39].__dict__.__setitem__(
        "negative_slope", 0.5), 2, True),
    ("train() after eval()", lambda m: m.train(), 2, False),
    ("train() on one leaf", lambda m: m[40].train(), 2, True),
    ("eval() after train()", lambda m: m.eval(), 2, False),
    ("eval() on one leaf after train()", lambda m: m[40].eval(), 2, True),
]


@pytest.mark.parametrize("what, change, traces, checked", _STATE_CHANGES,
                         ids=[w for w, _, _, _ in _STATE_CHANGES])
def test_a_modules_state_change_is_seen_on_the_spelt_out_check(compared, what, change, traces,
                                                                 checked):
    # (speed52: each way a module's state changes after its graph's check is spelt out; the
    # check reads every place on every call, so each is seen: a future check that reads only
    # what changed must see each too)
    torch.manual_seed(0)
    model = _leaky().train(what.startswith("eval"))
    run = autoconv.autoconv(model)
    x = torch.tensor([[1.0, -2.0]])
    with torch.no_grad():
        for _ in range(captures._UNROLL_AFTER + 2):
            run(x)
        assert run._last[2]._captured._fast.__name__ == "check"  # (the fixture's)
        before = model(x)
        change(model)
        expected = model(x)
        assert not torch.equal(expected, before)  # (the change changes Python's answer)
        torch.testing.assert_close(run(x), expected)
        torch.testing.assert_close(run(x), expected)
    assert run.trace_count == traces
    assert (False in compared) == checked
