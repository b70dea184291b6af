"""The tracer registry (runtime/staging/registry.py): the built-in tracers, registering a
third-party one, and docs/embedding.md's worked example, which must run."""

from __future__ import annotations

import linecache
import pathlib
import re

import pytest
import torch

import autoconv
from autoconv_runtime import eager, is_staged
from autoconv_runtime.staging import registry

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "embedding.md"


def test_builtin_tracers_in_the_documented_order():
    assert [t.name for t in autoconv.tracers()] == [
        "dynamo", "torch.func", "make_fx", "fx.symbolic_trace", "dispatch modes", "python"]


def _example_blocks():
    text = DOCS.read_text()
    section = text.split("## A third-party tracer", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_third_party_tracer_of_the_docs_runs():
    code = _example_blocks()[0]
    namespace = {"__name__": "embedding_example"}
    # compiled as a file of its own, so that autoconv can read the functions' source
    filename = str(DOCS) + ":third-party-tracer"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        exec(compile(code, filename, "exec"), namespace)  # its asserts compare with Python
    finally:
        del linecache.cache[filename]
    assert "loop(lambda v0, v1: (v0 > 1)" in namespace["program"]
    assert "sym" not in [t.name for t in autoconv.tracers()]  # it unregisters itself


class _Box:
    """A third-party value: a number in a box, staged while its tracer runs."""

    def __init__(self, value):
        self.value = value

    def clone(self):
        return _Box(self.value)

    def __gt__(self, other):
        return _Box(self.value > other)

    def __add__(self, other):
        return _Box(self.value + other)


class _BoxTracer(autoconv.StagingTracer):
    """Records the statements it stages and runs them as Python on the boxed values."""

    name = "box"

    def __init__(self):
        self.staged, self.running = [], False

    def is_staged(self, value):
        return isinstance(value, _Box)

    def is_tracing(self):
        return self.running

    def cond(self, pred, true_fn, false_fn, operands):
        self.staged.append("cond")
        return (true_fn if pred.value else false_fn)(*operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        self.staged.append("while_loop")
        while cond_fn(*carried, *additional).value:
            carried = tuple(body_fn(*carried, *additional))
        return carried


def _count_up(x):
    if x > 0:
        x = x + 1
    while x > 5:
        x = x + -1
    return x


@pytest.fixture
def box_tracer():
    tracer = autoconv.register_tracer(_BoxTracer())
    tracer.running = True
    yield tracer
    tracer.running = False
    autoconv.unregister_tracer("box")


def test_a_registered_tracer_stages_its_values(box_tracer):
    assert is_staged(_Box(1)) and not eager()
    for start, want in ((7, 5), (-2, -2), (3, 4)):
        assert autoconv.convert(_count_up)(_Box(start)).value == want
    assert box_tracer.staged.count("cond") == 3 and box_tracer.staged.count("while_loop") == 3


def test_eager_while_no_registered_tracer_runs(box_tracer):
    box_tracer.running = False
    assert eager()
    assert not registry.owner(1) is box_tracer


def test_register_places_before_the_generic_tracers_or_where_asked(box_tracer):
    names = [t.name for t in autoconv.tracers()]
    assert names.index("box") == names.index("dispatch modes") - 1
    other = _BoxTracer()
    other.name = "box2"
    autoconv.register_tracer(other, before="dynamo")
    try:
        assert autoconv.tracers()[0] is other
        again = _BoxTracer()  # the same name replaces the earlier one
        autoconv.register_tracer(again)
        assert box_tracer not in autoconv.tracers() and again in autoconv.tracers()
    finally:
        autoconv.unregister_tracer("box2")


def test_register_refuses_what_is_not_a_tracer():
    with pytest.raises(TypeError, match="StagingTracer"):
        autoconv.register_tracer(object())
    with pytest.raises(ValueError, match="no tracer named 'nope'"):
        autoconv.register_tracer(_BoxTracer(), before="nope")
    with pytest.raises(ValueError, match="built-in"):
        autoconv.unregister_tracer("make_fx")
    autoconv.unregister_tracer("never registered")  # nothing to do


def test_builtin_tracers_own_what_the_old_checks_did():
    dynamo, func, make_fx, symbolic, modes, python = autoconv.tracers()
    x = torch.ones(2)
    assert not any(t.is_staged(x) for t in autoconv.tracers())  # a concrete tensor
    fake = torch._subclasses.FakeTensorMode().from_tensor(x)
    assert modes.is_staged(fake)
    graph = torch.fx.Graph()
    proxy = torch.fx.Proxy(graph.placeholder("x"), torch.fx.Tracer())
    assert symbolic.is_staged(proxy) and is_staged(proxy)
    seen = []
    torch.func.vmap(lambda row: seen.append(func.is_staged(row)) or row)(torch.ones(2, 2))
    assert seen == [True]
    assert not python.is_staged(x) and not python.is_tracing()
