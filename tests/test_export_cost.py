"""What torch.export's trace of a converted function records for autoconv's probes (NOTE [probes
record no stack traces] in runtime/staging/context.py): a probe's nodes are dead code or counts,
and the stack torch captures for each node (about 200 frames of the runtime) was a fifth of the
export's time where statements nest."""

import io

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
