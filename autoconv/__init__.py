"""autoconv: Python control flow on tensors becomes torch.cond / torch.while_loop in one graph.

    from autoconv import autoconv

    @autoconv
    def collatz_steps(n):
        steps = torch.tensor(0)
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        return steps
"""

import autoconv_runtime as _runtime
from autoconv_runtime.staging.registry import (StagingTracer, register_tracer, tracers,
                                               unregister_tracer)

from . import conversion as _conversion
from . import onnx
from .api import autoconv, convert, do_not_convert, to_code
from .errors import ConversionError
from .function import ConcreteFunction, Function, functions_run_eagerly, run_functions_eagerly
from .signature import TensorSpec

_runtime.set_converter(_conversion.convert_function, _conversion.is_generated_code,
                       _conversion.parameter_updates)

__all__ = [
    "ConcreteFunction",
    "ConversionError",
    "Function",
    "StagingTracer",
    "TensorSpec",
    "autoconv",
    "convert",
    "do_not_convert",
    "functions_run_eagerly",
    "register_tracer",
    "run_functions_eagerly",
    "to_code",
    "tracers",
    "unregister_tracer",
]
__version__ = "0.1.0"
