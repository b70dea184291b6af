"""torch-optimizer 0.3.0: `Lamb` and `AdamP`'s first `step()` over plain tensors.

Both keep their state as torch.optim does, in a defaultdict keyed by the tensors themselves
(`state = self.state[p]`, lamb.py:104, adamp.py:147), which Python hashes by identity. Over
plain tensors (not Parameters) made in the function, the second tensor is looked up in a dict
that already holds the first's state: it was refused as a lookup by a traced value (tester25
s05). The tensor is made by an operator outside any staged statement, one object on every run
as in Python, so the lookup is Python's (NOTE [tensors as keys of a dict] in
runtime/subscripts.py). Lamb's `if weight_norm == 0 or adam_norm == 0: trust_ratio = 1` then
converts (an int on one path, a tensor on the other), and AdamP's projection.

torch.export refuses both at their first `p.grad` (autoconv's rule: an exported program takes
tensors, not their gradients); torch.compile stops at `Optimizer.__init__`, where dynamo refuses
to trace `Optimizer.add_param_group` (torch's rule, with or without autoconv): autoconv refuses
the optimizer's making at the user's line (NOTE [objects dynamo cannot make] in
runtime/calls.py; dynamo's own error named only torch's frames until session 50).
"""

import pytest
import torch

optim = pytest.importorskip("torch_optimizer")

import autoconv  # noqa: E402
from autoconv_runtime import StagingError  # noqa: E402


def _step(optimizer):
    def step(w, g):
        a = w.clone()
        b = w * 0.5
        a.grad = g.clone()
        b.grad = g * 2
        optimizer([a, b], lr=0.1).step()
        return a, b
    return step


# gradients of both signs, none (AdamP's and Lamb's zero norms), and a zero weight
_INPUTS = [(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.1, -0.2, 0.3])),
           (torch.tensor([-1.0, 5.0, 0.0]), torch.tensor([0.0, 0.0, 0.0])),
           (torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0]))]


@pytest.mark.parametrize("optimizer", [optim.Lamb, optim.AdamP], ids=["Lamb", "AdamP"])
def test_first_step_over_plain_tensors_replays(optimizer):
    step = _step(optimizer)
    converted = autoconv.autoconv(step)
    for w, g in _INPUTS:
        torch.testing.assert_close(converted(w, g), step(w, g))
    # (torch.optim wraps a class's `step` when its first instance is made,
    # `Optimizer._patch_step_function`: the class's code changes during the first call, which
    # the guard on it, NOTE [code a class holds, rebound], sees once where no earlier test made
    # one; after that, every call replays)
    assert converted.trace_count <= 2
    traces = converted.trace_count
    for w, g in _INPUTS:
        torch.testing.assert_close(converted(w, g), step(w, g))
    assert converted.trace_count == traces


@pytest.mark.parametrize("optimizer", [optim.Lamb, optim.AdamP], ids=["Lamb", "AdamP"])
def test_first_step_under_export_and_compile_stop_at_their_rules(optimizer):
    step = _step(optimizer)

    class Step(torch.nn.Module):
        def forward(self, w, g):
            return autoconv.convert(step)(w, g)

    with pytest.raises(StagingError, match=r"reads `\.grad`"):
        torch.export.export(Step(), _INPUTS[0], strict=False)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(step), fullgraph=True, backend="eager")
    with pytest.raises(StagingError, match=r"test_torch_optimizer.py:\d+: .*makes an optimizer "
                       r"under torch.compile, .*`add_param_group`"):
        compiled(*_INPUTS[0])
