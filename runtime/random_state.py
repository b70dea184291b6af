"""Calls that set, save or read a random generator's state, refused at the line under a tracer.

NOTE [generator state in traced code]
A graph holds random ops (`torch.rand`, `torch.randn`, dropout), which draw from torch's global
generator each time the graph runs. It holds no generator state: a call that seeds, saves or
restores a generator (`torch.manual_seed(0)`, `torch.set_rng_state(s)`, `torch.seed()`,
`torch.default_generator.manual_seed(0)`, `with torch.random.fork_rng():`) runs once, while the
graph is traced, and never when it runs. The graph then draws other numbers than Python from
its second call on: Python starts the stream again on each call, the graph continues it; a
`fork_rng` block leaves the caller's generator as it was in Python and advanced by the graph.
A state read (`torch.get_rng_state()`) becomes a constant of the graph, the state at tracing.
No torch tracer can put a seed into a graph, so these are refused at the user's line under
every tracer that builds one (autoconv's, torch.export, torch.compile, torch.fx); under a
torch.func transform of concrete values, which runs the code as it is, they are called.

Converted code calls `random_state_(fn, name)(...)` for a call whose callee the converter
resolves to one of these (a `torch.`/`random.`/`numpy.random.` path, a global imported from
there); `converted_method_call` asks `refused_method` of a generator's methods
(`g = torch.default_generator; g.manual_seed(0)`). A call that no converted code makes (inside
torch, or through a local alias) is caught after the trace by its effect on the global
generator (autoconv/capture.py, NOTE [seeding torch's generators while tracing]), except where
it also puts the state back.
"""

from __future__ import annotations

import sys

import torch

from .errors import StagingError
from .staging import registry
from .staging.tracers.dispatch import under_dispatch_mode
from .staging.tracers.symbolic import SymbolicTracer

__all__ = ["random_state_", "refused", "refused_method"]

# What each call does to a generator, for the message.
_SEEDS, _SAVES, _READS = "seeds", "saves", "reads"

_GENERATOR_METHODS = {"manual_seed": _SEEDS, "seed": _SEEDS, "set_state": _SEEDS,
                      "get_state": _READS, "initial_seed": _READS}
_FUNCTIONS = (
    ("torch.random", ("manual_seed", "seed", "set_rng_state"), _SEEDS),
    ("torch.random", ("fork_rng",), _SAVES),
    ("torch.random", ("get_rng_state", "initial_seed"), _READS),
    ("torch.cuda", ("manual_seed", "manual_seed_all", "seed", "seed_all", "set_rng_state",
                    "set_rng_state_all"), _SEEDS),
    ("torch.cuda", ("get_rng_state", "get_rng_state_all", "initial_seed"), _READS),
    ("random", ("seed", "setstate"), _SEEDS),
    ("random", ("getstate",), _READS),
    ("numpy.random", ("seed", "set_state"), _SEEDS),
    ("numpy.random", ("get_state",), _READS),
)
# {name: what it does}, by the names `refused` gives (the message's)
_KINDS = {f"{module}.{name}": kind for module, names, kind in _FUNCTIONS for name in names}
_KINDS.update({f"torch.Generator.{name}": kind for name, kind in _GENERATOR_METHODS.items()})
# {id(function): (function, name)} of the modules loaded so far (numpy may come later)
_TABLE: dict = {}
_LOADED: set = {f"torch.Generator.{name}" for name in _GENERATOR_METHODS}  # (no table entry)


def refused(fn) -> str | None:
    """The name of the generator-state call `fn` is (`torch.random.manual_seed`, the method
    `torch.Generator.manual_seed` of any generator), or None. Asked by the converter of the
    callees it can resolve, once per call site."""
    if len(_LOADED) < len(_KINDS):
        for module, names, _ in _FUNCTIONS:
            for name in names:
                key = f"{module}.{name}"
                if key not in _LOADED and module in sys.modules:
                    _LOADED.add(key)
                    function = _unwrapped(getattr(sys.modules[module], name, None))
                    if function is not None:
                        _TABLE[id(function)] = (function, key)
    fn = _unwrapped(fn)
    entry = _TABLE.get(id(fn))
    if entry is not None and entry[0] is fn:
        return entry[1]
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, torch.Generator) and getattr(fn, "__name__", None) in _GENERATOR_METHODS:
        return f"torch.Generator.{fn.__name__}"
    return None


def _unwrapped(fn):
    # torch._dynamo, once imported, rebinds `torch.manual_seed` to a wrapper that disables it
    # (`torch._disable_dynamo`); `torch.random.manual_seed` stays the function itself.
    for _ in range(8):
        inner = getattr(fn, "__wrapped__", None) if callable(fn) else None
        if inner is None:
            break
        fn = inner
    return fn


def _graph_tracing() -> bool:
    """True while a tracer that builds a graph runs: make_fx (autoconv, torch.export), dynamo,
    torch.fx, a third-party tracer; False under a torch.func transform of concrete values."""
    if under_dispatch_mode():
        return True
    return any(tracer.is_tracing() for tracer in registry.tracers()
               if isinstance(tracer, SymbolicTracer) or tracer in registry.third_party)


def random_state_(fn, name: str, /):
    """`fn`, the callee of a call the converter resolved to the generator-state function
    `name` (see `refused`), refused while a graph is traced (NOTE [generator state in traced
    code]). The converter passes the name: under dynamo this runs as traced code.

    Raises:
        StagingError: under a tracer that builds a graph, at the user's line.
    """
    if _graph_tracing():
        _refuse(name, _KINDS[name])
    return fn


def refused_method(obj, name: str) -> None:
    """Refuse `obj.name(...)` for a generator's state method while a graph is traced.

    Raises:
        StagingError: for a torch.Generator's seeding or state method under such a tracer.
    """
    if name in _GENERATOR_METHODS and isinstance(obj, torch.Generator) and _graph_tracing():
        _refuse(f"torch.Generator.{name}", _GENERATOR_METHODS[name])


def _refuse(name: str, kind: str):
    python = name.startswith(("random.", "numpy."))
    generator = "Python's or numpy's random generator" if python else "a torch random generator"
    if kind == _SEEDS:
        problem = (f"`{name}(...)` sets {generator}'s state while the graph is traced: it runs "
                   "once, at tracing, not when the graph runs, so from the second call on the "
                   "graph draws other numbers than Python (which seeds again on each call)")
        fix = ("Seed outside the autoconv function (before each call, if every call must draw "
               "the same numbers), or draw the numbers outside and pass them in")
    elif kind == _SAVES:
        problem = (f"`{name}()` saves {generator}'s state and puts it back at the end of the "
                   "block while the graph is traced, not when it runs: the graph's draws would "
                   "advance the caller's generator, which Python leaves as it was")
        fix = (f"Call `{name}()` around the call of the autoconv function, or draw the numbers "
               "outside and pass them in")
    else:
        problem = (f"`{name}()` reads {generator}'s state while the graph is traced: the graph "
                   "would hold that state as a constant, the same on every call")
        fix = "Read it outside the autoconv function and pass it in if the function needs it"
    raise StagingError("function", problem, fix)
