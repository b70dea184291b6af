"""Each autoconv trace of a test run, one line a trace: a pytest plugin.

    OMP_NUM_THREADS=1 PYTHONPATH=benchmarks TRACE_LOG_OUT=/tmp/traces.tsv \\
        python -m pytest -q -p trace_log -p cpu_durations tests -k "test_loops.py"

Appends `trace`, the test's node id, the traced function's file:line:name, its input signature
(shape and dtype of each tensor leaf, the type name of any other) and the trace's CPU s to
TRACE_LOG_OUT (with xdist, each worker its own lines). Used to find functions traced by more
than one test with the same signature (a trace a file's tests could share) and the share of
the tests' CPU spent in autoconv's traces: docs/testing.md, "The suite's time (session 55)".
Wraps `Function._trace_locked`, the caller of the trace, so no frame of it is inside one.
"""

from __future__ import annotations

import os
import time

import autoconv.function as _function

_OUT = os.environ.get("TRACE_LOG_OUT")
_trace_locked = _function.Function._trace_locked


def _leaf(value) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{tuple(value.shape)}{value.dtype}"
    return type(value).__name__


def _where(function) -> str:
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    if code is None:
        return repr(function)
    return f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}"


def _logged(self, signature, leaves, plan=()):
    start = time.process_time()
    try:
        return _trace_locked(self, signature, leaves, plan)
    finally:
        if _OUT:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
            leaves_ = "|".join(_leaf(leaf) for leaf in leaves)
            cpu = time.process_time() - start
            with open(_OUT, "a") as f:
                f.write(f"trace\t{test}\t{_where(self.python_function)}\t{leaves_}\t{cpu:.4f}\n")


_function.Function._trace_locked = _logged
