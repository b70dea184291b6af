"""ONNX export of converted functions: `torch.onnx.export(..., dynamo=True)` with the one
translation autoconv's graphs need from torch 2.13 (see NOTE [ONNX subgraph opset]).

    program = autoconv.onnx.export(f.export(x))       # or any ExportedProgram / nn.Module
    program.save("f.onnx")                             # If / Loop nodes; runs in onnxruntime

Needs the `onnx` extra (onnx, onnxscript, onnxruntime to run the result).
"""

from __future__ import annotations

import torch

__all__ = ["export", "translation_table"]

# NOTE [ONNX subgraph opset]
# torch.onnx (2.13) lowers each cond / while_loop body to an ONNX function in the domain
# "pkg.torch.__subgraph__". Its while_loop lowering calls the test function once before the
# Loop (the first test) through a helper that stamps the call with the ONNX opset's version
# (18 / 20), while every other call into that domain has none, which counts as version 1. The
# model then imports the domain at version 20 and a function calling another function (a body
# whose `if` or `while` is staged: an `n // 2 if n % 2 == 0 else 3 * n + 1` in a `while`) at
# version 1, and the inliner that runs before the opset conversion refuses: "Opset mismatch
# when inlining function ... while_loop_body_graph_0". The translation below is torch's own,
# with the stray version removed from the calls into the function domain.


def translation_table() -> dict:
    """The `custom_translation_table` for `torch.onnx.export(..., dynamo=True)` that
    autoconv's graphs need: `{torch.ops.higher_order.while_loop: <torch's translation, fixed>}`.

    Raises ImportError when onnxscript is not installed.
    """
    from torch.onnx._internal.exporter import _constants, _core
    from torch.onnx._internal.exporter._torchlib.ops import hop

    def while_loop(cond_func, body_func, carried_inputs, additional_inputs):
        outputs = hop.higher_order_while_loop(cond_func, body_func, carried_inputs,
                                              additional_inputs)
        for node in _core.current_tracer.nodes:
            if node.domain == _constants.LOCAL_FUNCTION_DOMAIN:
                node.version = None  # a function call: the domain's version is the model's
        return outputs

    return {torch.ops.higher_order.while_loop: while_loop}


def export(model, args=(), kwargs=None, **options):
    """`torch.onnx.export(model, args, kwargs, dynamo=True, **options)` with
    `translation_table()` added to `options["custom_translation_table"]`.

    `model` is a `torch.export.ExportedProgram` (such as `Function.export(...)` gives) or an
    `nn.Module` whose forward calls converted code. Returns the `torch.onnx.ONNXProgram`.
    Raises what torch.onnx.export raises; ImportError without onnxscript.
    """
    table = {**translation_table(), **options.pop("custom_translation_table", {})}
    return torch.onnx.export(model, tuple(args), kwargs=kwargs, dynamo=True,
                             custom_translation_table=table, **options)
