"""Calls that hand the user's code to other threads, refused at the line while a graph is
traced: a `concurrent.futures` executor's `submit` / `map`, a `multiprocessing` pool's, a
`threading.Thread`'s `start`.

NOTE [code run on other threads while traced]
A tracer records the ops of the thread that runs it (its dispatch modes are thread-local). A
helper that `ThreadPoolExecutor.map` runs on the pool's threads computes on the trace's fake
tensors with no tracer: its ops are missing from the graph and its results are the trace's
values, which the graph then holds as constants (autoconv's internal error "left a value of
the trace (FakeTensor) as the graph constant", torch.export's "We found a fake tensor in the
exported program constant's list"), or a tensor condition in it met a fake mode that is busy
on the tracing thread ("fake_mode.in_kernel_invocation must be False"; brk54). So while a
graph other than dynamo's is traced, the call that hands the work over is refused at the
user's line with what to write instead. Under torch.compile, dynamo cannot build the executor
(its "Dynamo does not know how to trace method `__new__` of class `type`" for the pool's
queue): the standard library's pool and thread classes are refused where they are made.
Outside tracers (Python values, eager tensors) the calls run as they are.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing.pool
import threading

import torch

from .errors import StagingError
from .outside_values import graph_tracing
from .staging import specialize

# method names that run the user's callable on another thread or process, by owner class
_HANDING_OVER = (
    (concurrent.futures.Executor, frozenset({"submit", "map"})),
    (multiprocessing.pool.Pool, frozenset({"apply", "apply_async", "map", "map_async", "imap",
                                           "imap_unordered", "starmap", "starmap_async"})),
    (threading.Thread, frozenset({"start"})),
)
METHOD_NAMES = frozenset().union(*(names for _, names in _HANDING_OVER))
# (looked up by id under dynamo, which can take the id of a class read from a global)
_POOL_CLASS_IDS = {id(cls): cls.__name__ for cls in (
    concurrent.futures.ThreadPoolExecutor, concurrent.futures.ProcessPoolExecutor,
    multiprocessing.pool.Pool, multiprocessing.pool.ThreadPool, threading.Thread)}


def refuse_method(obj, name: str) -> None:
    """Refuse `obj.name(...)` where it hands code to another thread while a graph other than
    dynamo's is traced (NOTE [code run on other threads while traced])."""
    if name not in METHOD_NAMES or torch.compiler.is_dynamo_compiling():
        return
    for owner, names in _HANDING_OVER:
        if name in names and isinstance(obj, owner) and graph_tracing():
            _refuse(f"{type(obj).__name__}.{name}(...)")


def refuse_class(cls) -> None:
    """Under dynamo, refuse making one of the standard library's pools or threads (NOTE [code
    run on other threads while traced])."""
    if not isinstance(cls, type):
        # (no id of anything else: dynamo guards the id of what it is taken of, and a bound
        # method read from a global, `kf.update`, is a new object at each read, so the guard
        # failed on the frame that made it, "Guard failed on the same frame it was created")
        return
    name = _POOL_CLASS_IDS.get(id(cls))
    if name is not None:
        _refuse(f"{name}(...)")


def _refuse(call: str):
    # (never lifted by specialising a staged `if` on the other path: the trace would still
    # run the pool on its values wherever it goes)
    raise specialize.never(StagingError(
        "call",
        f"`{call}` runs your code on other threads while the graph is traced: a tracer records "
        "only the ops of its own thread, so what those threads compute would be missing from "
        "the graph (its results left as the trace's values)",
        "Call the function directly, in a loop or a comprehension (`outs = [helper(c) for c "
        "in chunks]`), which autoconv traces into the one graph; or use the pool outside the "
        "autoconv function, calling it from each thread"))
