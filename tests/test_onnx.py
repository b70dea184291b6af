"""ONNX export of converted functions (autoconv/onnx.py): If / Loop nodes that run in
onnxruntime and equal Python, on inputs that take different paths."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import autoconv
import autoconv.onnx
from programs import collatz_steps, early_return, for_break_continue, if_elif, squares
from support import assert_close

# NOTE [libraries imported by the tests that use them]: not at collection, which every xdist
# worker makes of every file: onnxscript and onnxruntime cost about 0.9 s of CPU to import
# (docs/testing.md, "The suite's time (session 46)"), paid by both workers for tests one runs.
if any(importlib.util.find_spec(name) is None for name in ("onnxruntime", "onnxscript")):
    pytest.skip("needs onnxruntime and onnxscript (the onnx extra)", allow_module_level=True)


CASES = {
    "while with a conditional expression": (
        collatz_steps, [torch.tensor(27), torch.tensor(1), torch.tensor(6)], {"Loop"}),
    "if / elif / else": (if_elif, [torch.ones(3), -torch.ones(3), torch.zeros(3)], {"If"}),
    "for over a tensor, break, continue": (
        for_break_continue, [-torch.ones(5, 3), torch.ones(5, 3),
                             torch.tensor([[1.0, 2, 0], [-1, -1, 0], [-2, -3, 0], [-1, 0, 0],
                                           [-5, 0, 0]])],
        {"Loop"}),
    "early return from a loop": (
        early_return, [torch.tensor([0.0, 1, 3, 0, 0]), torch.zeros(5)], {"Loop", "If"}),
    "a list grown in a loop": (squares, [torch.tensor(4), torch.tensor(7)], {"Loop"}),
}


def _session(onnx_program, tmp_path):
    path = tmp_path / "model.onnx"
    onnx_program.save(str(path))
    import onnxruntime  # (NOTE [libraries imported by the tests that use them])
    return onnxruntime.InferenceSession(str(path))


def _run(session, x):
    (name,) = [i.name for i in session.get_inputs()]
    return torch.as_tensor(session.run(None, {name: x.numpy()})[0])


@pytest.mark.parametrize("case", CASES)
def test_onnx_equals_python(case, tmp_path):
    fn, inputs, ops = CASES[case]
    program = autoconv.autoconv(fn).export(inputs[0])
    onnx_program = autoconv.onnx.export(program, verbose=False)
    assert ops <= {node.op_type for node in onnx_program.model.graph}
    session = _session(onnx_program, tmp_path)
    for x in inputs:
        assert_close(_run(session, x), fn(x.clone()))


def test_the_documented_torch_onnx_call_works_too(tmp_path):
    """`torch.onnx.export` with `translation_table()`; the issue's example (a conditional
    expression inside a `while`) failed there with "Opset mismatch when inlining function"."""

    class Collatz(torch.nn.Module):
        def forward(self, n):
            return autoconv.convert(collatz_steps)(n)

    onnx_program = torch.onnx.export(
        Collatz(), (torch.tensor(27),), dynamo=True, verbose=False,
        custom_translation_table=autoconv.onnx.translation_table())
    session = _session(onnx_program, tmp_path)
    for n in (27, 97, 1):
        assert int(_run(session, torch.tensor(n))) == int(collatz_steps(torch.tensor(n)))
