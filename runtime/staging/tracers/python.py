"""Plain Python: concrete values take a Python `if` / `while` (the registry's last resort)."""

from __future__ import annotations

from ..registry import StagingTracer


class PythonTracer(StagingTracer):
    """No tracer: every value is known, so a statement runs as the Python it stands for."""

    name = "python"

    def is_staged(self, value) -> bool:
        return False

    def cond(self, pred, true_fn, false_fn, operands):
        return (true_fn if pred else false_fn)(*operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        while cond_fn(*carried, *additional):
            carried = tuple(body_fn(*carried, *additional))
        return carried
