"""What torch.export's trace of a converted function records for autoconv's probes (NOTE [probes
record no stack traces] in runtime/staging/context.py): a probe's nodes are dead code or counts,
and the stack torch captures for each node (about 200 frames of the runtime) was a fifth of the
export's time where statements nest."""

import io

import pytest
import torch
from torch.fx import proxy as fx_proxy

import autoconv
from autoconv_runtime.staging import context


def nested_ifs_growing_a_list(x, y):
    vs = []
    if y > 0:
        if x > 0:
            if y < 5:
                vs.append(y)
    return x + len(vs)


class _Calling(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def test_export_captures_no_stack_in_probes_and_keeps_the_staged_nodes_stacks(monkeypatch):
    captured = {True: 0, False: 0}
    extract = fx_proxy.CapturedTraceback.extract

    def counted(*args, **kwargs):
        captured[bool(context._probing[0])] += 1
        return extract(*args, **kwargs)

    monkeypatch.setattr(fx_proxy.CapturedTraceback, "extract", staticmethod(counted))
    probes = []
    probe = context._probe

    def counted_probe(types_only):
        probes.append(types_only)
        return probe(types_only)

    monkeypatch.setattr(context, "_probe", counted_probe)
    args = (torch.tensor(1.0), torch.tensor(2.0))
    program = torch.export.export(_Calling(autoconv.convert(nested_ifs_growing_a_list)), args,
                                  strict=False)
    assert probes, "the function no longer probes: choose one that does"
    assert captured[True] == 0 and captured[False] > 0, captured
    assert not torch.fx.config.do_not_emit_stack_traces
    conds = [n for n in program.graph.nodes if n.target is torch.ops.higher_order.cond]
    assert conds and all(n.meta.get("stack_trace") for n in conds)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    for x, y in [(1.0, 2.0), (-1.0, 2.0), (1.0, 7.0), (1.0, -1.0)]:
        got = torch.export.load(io.BytesIO(saved.getvalue())).module()(torch.tensor(x),
                                                                     torch.tensor(y))
        assert torch.equal(got, torch.as_tensor(nested_ifs_growing_a_list(x, y),
                                                dtype=got.dtype)), (x, y, got)


class _Stepped:
    def __init__(self, v):
        self.v = v

    def step(self, t):
        self.v = (self.v + t) % 7


def loop_changing_an_input_in_a_probed_branch(x, y, k):
    # (test_jumps.py's raise_beside_a_loop_in_a_probed_branch: the `while` changes `s`, an
    # input of its bodies, through a method, found by a first staging that fails; the `if`s
    # around it are probed for the list `vs`, and each probe stages the `while` again)
    s = _Stepped(x + 1)
    p = k + 1
    vs = []
    if s.v < 2:
        if x > 5 or 0 <= p:
            raise ValueError("fuzz")
        if k:
            guard = 0
            while guard < 2 and s.v < y:
                guard += 1
                s.step(y)
        elif s.v == p:
            vs.append(y)
    return y + len(vs)


def test_export_keeps_restaging_verdicts_as_autoconvs_trace_does(monkeypatch):
    # NOTE [verdicts under export]: `stage_while` and the rounds of an `if` and a loop took
    # `torch.compiler.is_compiling()` for dynamo, so under a non-strict export a staging that
    # failed (the input the loop changes) was not kept, and every probe of the enclosing `if`s
    # staged the loop and failed again: 22 traces of the loop's bodies against the trace's 14.
    import sys

    module = sys.modules["torch._higher_order_ops.while_loop"]
    traced = []
    reenter = module.reenter_make_fx

    def counted(fn):
        traced.append(fn)
        return reenter(fn)

    monkeypatch.setattr(module, "reenter_make_fx", counted)
    args = (torch.tensor(6.0), torch.tensor(-6.0), 2)
    concrete = autoconv.autoconv(loop_changing_an_input_in_a_probed_branch).get_concrete_function(
        *args)
    in_trace = len(traced)
    program = torch.export.export(
        _Calling(autoconv.convert(loop_changing_an_input_in_a_probed_branch)), args, strict=False)
    in_export = len(traced) - in_trace
    assert in_trace > 0, "the function no longer stages its loop: choose one that does"
    assert in_export == in_trace, (in_trace, in_export)
    exported = program.module()
    for x, y in ((6.0, -6.0), (9.0, 3.0), (1.0, 9.0)):  # (the path without the raise)
        inputs = (torch.tensor(x), torch.tensor(y), 2)
        want = loop_changing_an_input_in_a_probed_branch(*inputs)
        torch.testing.assert_close(concrete(*inputs), want)
        torch.testing.assert_close(exported(*inputs), want)
    inputs = (torch.tensor(0.0), torch.tensor(3.0), 2)  # (Python raises)
    with pytest.raises(ValueError, match="fuzz"):
        concrete(*inputs)
    with pytest.raises(RuntimeError, match="ValueError: fuzz"):
        exported(*inputs)
