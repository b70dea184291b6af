"""The check that no value of a trace outlives it (autoconv/trace_leaks.py, NOTE [no value of a
trace escapes]): a leak is injected at each place the check looks at, by turning off the
mechanism that keeps the trace's values in (a write-back, a put-back, a refusal), and the trace
or export must raise autoconv's internal error naming the place, and the statement where one
made the value; right programs never meet it."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import autoconv
from autoconv import capture, captures, returned_objects
from autoconv.trace_leaks import LeakedTraceValue, check_trace
from autoconv_runtime.errors import StagingError
from autoconv_runtime.staging import export_state, trace_record

from support import assert_close

T = torch.tensor
_FILE = r"test_trace_leaks\.py"


class State:
    pass


class Holder:
    def __init__(self, value):
        self.value = value


def doubled_until_100(s, x):
    s.v = x
    while s.v.sum() < 100:  # the statement the leaked value is the result of
        s.v = s.v * 2
    return s.v + 1


_WHILE_LINE = doubled_until_100.__code__.co_firstlineno + 2


def _with_extra_write(extra):
    """capture._write_plan with one more entry, `extra(changed)`: (path, value)."""
    plan = capture._write_plan

    def write_plan(name, roots, values_before, shells_before, changed, location):
        entries, outputs = plan(name, roots, values_before, shells_before, changed, location)
        return entries + [extra(changed)], outputs
    return write_plan


def test_a_value_written_back_names_the_statement_that_made_it(monkeypatch):
    # each call would store the traced tensor into `s.w`
    monkeypatch.setattr(capture, "_write_plan", _with_extra_write(
        lambda changed: (((("item", 0), ("item", 0), ("attr", "w"))), changed[0][1])))
    with pytest.raises(LeakedTraceValue, match=(
            r"internal error: tracing doubled_until_100 left a value of the trace \(FakeTensor\) "
            r"in the value written back to args\[0\]\.w on each call, the result of the while "
            rf"loop at .*{_FILE}:{_WHILE_LINE}\. .*file an issue")) as error:
        autoconv.autoconv(doubled_until_100)(State(), T([1., 2.]))
    assert error.value.lineno == _WHILE_LINE


def test_a_symbolic_number_written_back(monkeypatch):
    monkeypatch.setattr(capture, "_write_plan", _with_extra_write(
        lambda changed: (((("item", 0), ("item", 0), ("attr", "n"))), changed[0][1].shape[0])))
    with pytest.raises(LeakedTraceValue, match=r"\(SymInt\) in the value written back to "
                                               r"args\[0\]\.n"):
        autoconv.autoconv(doubled_until_100, dynamic=True)(State(), T([1., 2.]))


def test_an_object_returned_holding_a_fake(monkeypatch):
    monkeypatch.setattr(returned_objects, "carried", lambda result, *_: (result, Holder(result)))
    monkeypatch.setattr(returned_objects, "refuse_escaped", lambda *_: None)
    # (`s.v + 1`, made after the loop: the loop is named as the last statement traced)
    with pytest.raises(LeakedTraceValue, match=(
            r"in the function's result\.value; the last staged statement traced was the while "
            rf"loop at .*{_FILE}:{_WHILE_LINE}")):
        autoconv.autoconv(doubled_until_100)(State(), T([1., 2.]))


def test_the_callers_object_left_holding_a_fake(monkeypatch):
    # the put-back of the caller's objects after the trace skipped
    monkeypatch.setattr(capture, "restore", lambda *_: None)
    with pytest.raises(LeakedTraceValue, match=r"FakeTensor\) in args\[0\]\.v, the result of "
                                               rf"the while loop at .*{_FILE}:{_WHILE_LINE}"):
        autoconv.autoconv(doubled_until_100)(State(), T([1., 2.]))


class Accumulator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(T(2.0))

    def forward(self, x):
        while x.sum() < 100:
            x = x * self.scale
        self.last = x
        return x


def test_a_modules_field_left_holding_a_fake(monkeypatch):
    monkeypatch.setattr(capture, "restore", lambda *_: None)
    with pytest.raises(LeakedTraceValue, match=r"FakeTensor\) in self\.last, the result of the "
                                               r"while loop"):
        autoconv.autoconv(Accumulator())(T([1., 2.]))


BOX = {}


def stores_into_a_global(x):
    BOX["v"] = x * 2
    return x + 1


def _closure_storing():
    box = {}

    def stores_into_a_closure(x):
        box["v"] = x * 2
        return x + 1
    return stores_into_a_closure


def stores_into_a_default(x, box={}):  # noqa: B006 - the default is the place checked
    box["v"] = x * 2
    return x + 1


@pytest.mark.parametrize("fn, where", [
    (stores_into_a_global, r"BOX\['v'\] \(a global read by stores_into_a_global\)"),
    (_closure_storing(), r"box\['v'\] \(a closure variable of "
                         r"_closure_storing.<locals>.stores_into_a_closure\)")])
def test_a_fake_left_outside_the_function(monkeypatch, fn, where):
    # the refusal of stores into containers from outside turned off (their put-back too)
    monkeypatch.setattr(captures.Places, "refuse_trace_values_stored", lambda *_, **__: None)
    monkeypatch.setattr(captures.Places, "forget_sizes_the_trace_changed", lambda *_: None)
    monkeypatch.setattr(captures.Places, "note_values_the_trace_changed", lambda *_: None)
    BOX.clear()
    try:
        with pytest.raises(LeakedTraceValue, match=rf"FakeTensor\) in {where}"):
            autoconv.autoconv(fn)(T([1., 2.]))
    finally:
        BOX.clear()


@pytest.mark.parametrize("make, where", [
    (_closure_storing, "the closure variable 'box' of _closure_storing.<locals>."
                       "stores_into_a_closure"),
    (lambda: stores_into_a_default, "the default of the parameter 'box' of "
                                    "stores_into_a_default")])
def test_a_closure_or_default_stored_into_under_export(monkeypatch, make, where):
    # found by this check: torch.export's watch of the globals a function names (NOTE [values
    # of an export left in globals]) did not look at closure cells and defaults, which kept the
    # export's FakeTensor, silently: now refused at the line, the container put back (NOTE
    # [values of an export left in closures and defaults])
    fn = make()
    box = (fn.__defaults__ or (None,))[0] if fn.__closure__ is None else \
        fn.__closure__[0].cell_contents
    with pytest.raises(StagingError, match=(
            rf"{_FILE}:{fn.__code__.co_firstlineno + 1}: .*after torch.export, `box\['v'\]` "
            rf"\(reached from {where}\) holds a tensor of the export's trace")):
        autoconv.autoconv(fn).export(T([1., 2.]))
    assert box == {}
    # ... and were that refusal gone, the end-of-export check names the place
    monkeypatch.setattr(export_state, "_stored_since", lambda *_: None)
    with pytest.raises(LeakedTraceValue, match=r"exporting .*\(FakeTensor\) in box\['v'\]"):
        autoconv.autoconv(fn).export(T([1., 2.]))
    box.clear()


def _exported_with(monkeypatch, change):
    """torch.export.export with `change(program, fake)` applied to its program, `fake` a
    tensor of the export's trace."""
    export = torch.export.export

    def changed_export(*args, **kwargs):
        program = export(*args, **kwargs)
        fake = next(n for n in program.graph.nodes if n.op == "placeholder").meta["val"]
        change(program, fake)
        return program
    monkeypatch.setattr(torch.export, "export", changed_export)


@pytest.mark.parametrize("change, where", [
    (lambda program, fake: program.constants.__setitem__("leak", fake),
     "the program's constant leak"),
    (lambda program, fake: program.state_dict.__setitem__("leak", fake),
     "the program's state dict entry leak"),
    (lambda program, fake: setattr(program.graph_module, "leak", fake),
     "the graph's attribute leak")])
def test_an_exported_program_holding_a_fake(monkeypatch, change, where):
    _exported_with(monkeypatch, change)
    with pytest.raises(LeakedTraceValue, match=rf"exporting doubled_until_100_of_x left a value "
                                               rf"of the trace \(FakeTensor\) in {where}"):
        autoconv.autoconv(doubled_until_100_of_x).export(T([1., 2.]))


def doubled_until_100_of_x(x):
    return doubled_until_100(State(), x)


def test_graph_places_checked():
    # a node's literal argument and a buffer of a subgraph, built by hand
    mode = FakeTensorMode()
    fake = mode.from_tensor(torch.zeros(()))
    record = trace_record.Record()
    record.modes[id(mode)] = mode
    graph_module = torch.fx.symbolic_trace(lambda x: x + 1)
    node = next(n for n in graph_module.graph.nodes if n.op == "call_function")
    node.args = (node.args[0], fake)
    with pytest.raises(LeakedTraceValue, match="an argument of the graph's node add"):
        check_trace("f", record, graph_module)
    node.args = (node.args[0], 1)
    inner = torch.fx.symbolic_trace(lambda x: x * 2)
    graph_module.add_submodule("body", inner)
    inner.register_buffer("leftover", fake)
    with pytest.raises(LeakedTraceValue, match="the graph's module body's buffer leftover"):
        check_trace("f", record, graph_module)
    # a fake tensor of another fake mode (the user's own) is not the trace's
    check_trace("f", trace_record.Record.__new__(_OtherModes), graph_module)
    # a proxy is a value of a trace whatever its mode
    proxy = torch.fx.Proxy(node)
    with pytest.raises(LeakedTraceValue, match=r"\(fx\.Proxy\) in the function's result"):
        check_trace("f", record, torch.fx.symbolic_trace(lambda x: x),
                    [(proxy, "the function's result")])


class _OtherModes(trace_record.Record):
    modes = {id(object()): FakeTensorMode()}
    last = None
    produced = {}


class Settings:
    pass


def _reading_settings(settings):
    def reads_settings_holding_the_users_fake(x):
        if settings.double:
            x = x * 2
        while x.sum() < 10:
            x = x + 1
        return x
    return reads_settings_holding_the_users_fake


def test_a_right_program_beside_the_users_own_fake_tensors():
    # a FakeTensor of the user's own fake mode, held where the function looks (a closure's
    # object), is not a leak of the trace (nor a store of it: captures.Places)
    settings = Settings()
    settings.double, settings.fake = True, FakeTensorMode().from_tensor(torch.ones(()))
    f = autoconv.autoconv(_reading_settings(settings))
    assert_close(f(T([1., 2.])), T([4., 6.]))
    assert_close(f(T([20., 2.])), T([40., 4.]))
    program = autoconv.autoconv(_reading_settings(settings)).export(T([1., 2.]))
    assert_close(program.module()(T([0., 1.])), T([4., 6.]))
