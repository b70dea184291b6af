"""fx's `nn.Module` patches skipped while autoconv traces (issue 12: every trace's cost).

NOTE [fx's module patches skipped in autoconv's traces]
torch.fx's `Tracer.trace` sets `nn.Module.__call__` and `__getattr__` to wrappers around each
trace and back after it: four class `setattr`s for every make_fx trace, each staged body's
included. A class `setattr` of a slot method updates the slots of every `nn.Module` subclass,
so the cost grows with the module classes a process holds (0.07 ms a patch with 355 classes,
0.44-0.50 ms with 1,295: docs/testing.md, session 55). make_fx's tracer, `PythonKeyTracer`,
needs none of it: its `call_module` calls `forward` and its `getattr` returns the value, so
the wrappers do what the originals do (and with `autowrap_modules=()` the wrapper's autowrap
check patches nothing). `_Patcher.patch_method` leaves a method alone whose
`__fx_already_patched` attribute is true; the original methods carry an object here whose
truth is this thread's "inside autoconv's make_fx": true only there, so every other tracer
(`fx.symbolic_trace`, export's `_ModuleStackTracer`, another thread's) patches as before and
records its `call_module` / parameter proxies. Entered only where no tracer has patched the
methods yet (autoconv's outermost trace): inside another tracer's trace (torch.export of a
converted function) the methods are its wrappers, which this does not mark.
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = ["unpatched_modules"]

_ATTRIBUTE = "__fx_already_patched"  # what `_Patcher.patch_method` reads, unmangled


class _InsideAutoconvTrace(threading.local):
    """True in a thread while autoconv's make_fx runs (a count: traces nest)."""

    depth = 0

    def __bool__(self):
        return self.depth > 0


_INSIDE = _InsideAutoconvTrace()
_METHODS = (torch.nn.Module.__call__, torch.nn.Module.__getattr__)
for _method in _METHODS:
    setattr(_method, _ATTRIBUTE, _INSIDE)


@contextlib.contextmanager
def unpatched_modules():
    """Within it, this thread's fx traces leave `nn.Module`'s methods as they are, where they
    are still the originals (NOTE [fx's module patches skipped in autoconv's traces])."""
    if (torch.nn.Module.__call__ is not _METHODS[0]
            or torch.nn.Module.__getattr__ is not _METHODS[1]):
        yield  # another tracer's wrappers: its trace keeps its patches
        return
    _INSIDE.depth += 1
    try:
        yield
    finally:
        _INSIDE.depth -= 1
