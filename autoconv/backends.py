"""Execution backends: how a `ConcreteFunction` runs its captured torch.fx graph.

A backend turns the captured `GraphModule` (flat tensors in, flat tensors out) into a callable.

* ``"python"`` (the default): the graph compiled to straight-line Python, staged control flow
  as Python `if` / `while` over its subgraphs (`python_backend.py`). Building it takes
  milliseconds.
* ``"fx"``: the `GraphModule` itself (torch's own execution of every node, cond and while_loop
  included).
* ``"inductor"``: `torch.compile` of the captured graph (a cold build takes seconds).
* ``"inductor_cpp"``: the same with inductor's C++ wrapper (`cpp_wrapper=True`): the code that
  calls the kernels, branches and loops included, is C++ too, so an op costs no Python call
  (a cold build takes tens of seconds: a C++ compiler runs). The fastest replay of tensor
  loops and branches on CPU (docs/benchmarks.md).
* ``"cudagraphs"``: `torch.compile(..., backend="cudagraphs")`: the graph's kernels replayed as
  one CUDA graph, `cond` as CUDA-graph conditional nodes (no host sync), for CUDA tensors.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.fx import GraphModule
from torch.fx._lazy_graph_module import _LazyGraphModule

from autoconv_runtime.errors import StagingError
from autoconv_runtime.staging import grad_mode

from . import python_backend
from .python_backend import compile_python

__all__ = ["BACKENDS", "build", "compile_python"]


def _restoring_grad_mode(runner: Callable) -> Callable:
    """`runner`, with the caller's grad mode restored however it ends: a graph that records
    `with torch.no_grad():` sets the mode back itself only when it reaches the block's end."""
    is_enabled, set_enabled = torch.is_grad_enabled, torch._C._set_grad_enabled

    def run(*args):
        mode = is_enabled()
        try:
            return runner(*args)
        finally:
            set_enabled(mode)
    return run


def _build_python(graph_module: GraphModule, example_inputs) -> Callable:
    return python_backend.build(graph_module)


def _build_fx(graph_module: GraphModule, example_inputs) -> Callable:
    return graph_module


def _build_inductor(graph_module: GraphModule, example_inputs) -> Callable:
    return torch.compile(graph_module, backend="inductor", fullgraph=True, dynamic=False)


def _build_inductor_cpp(graph_module: GraphModule, example_inputs) -> Callable:
    return torch.compile(graph_module, backend="inductor", fullgraph=True, dynamic=False,
                         options={"cpp_wrapper": True})


def _build_cudagraphs(graph_module: GraphModule, example_inputs) -> Callable:
    # torch's "cudagraphs" backend (not inductor's reduce-overhead mode) is the one that
    # captures cond as CUDA-graph conditional nodes, so a staged branch needs no host sync.
    return torch.compile(graph_module, backend="cudagraphs", fullgraph=True, dynamic=False)


BACKENDS: dict[str, Callable] = {
    "python": _build_python,
    "fx": _build_fx,
    "inductor": _build_inductor,
    "inductor_cpp": _build_inductor_cpp,
    "cudagraphs": _build_cudagraphs,
}


# The backends torch.compile builds, on the graph's first call.
_COMPILED = ("inductor", "inductor_cpp", "cudagraphs")


def compiler_failed(backend: str, error: BaseException) -> bool:
    """Whether `error`, raised by a call of `backend`'s runner, is torch.compile's own failure
    to compile the graph (dynamo's or inductor's), not the graph's run."""
    return backend in _COMPILED and type(error).__module__.startswith(
        ("torch._dynamo", "torch._inductor"))


def compile_error(backend: str, name: str, error: BaseException) -> StagingError:
    """The error for a graph of `name` that `backend` could not compile: torch's own failure
    (an inductor lowering bug, an op it has no kernel for), which otherwise reaches the user
    as pages of inductor's IR. The graph itself is right: the python and fx backends run
    every graph autoconv traces."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return StagingError.at(
        None, "function",
        f"the {backend!r} backend (torch.compile) could not compile {name}'s graph: torch's "
        f"{type(error).__name__}: {first[:300]}",
        "Use backend=\"python\" (the default) or backend=\"fx\", which run every graph "
        "autoconv traces; the error above is torch's own (`.__cause__` holds it)")


# NOTE [the trace's code generated where it runs]
# A trace's graph modules are fx's lazy ones (NOTE [graph modules of an export made lazy] in
# capture.py): their Python code is generated when they are first run. Dynamo, which the
# inductor backend and a user's torch.compile of a module run, refuses a lazy module whose
# code is not generated yet, so the code of each is generated before any backend but the
# python one is given it. The python backend never runs them: it lowers a copy of the graphs
# and generates its own code (python_backend.lower); generating theirs at the end of every
# trace was 10 ms of the seed model's 0.28 s first call (session 57), for code nothing ran.
# `ConcreteFunction.code` generates it when read (a lazy module's `code` does), and
# `ConcreteFunction.graph_module` hands out ordinary modules made from the graphs.
def generate_code(graph_module: GraphModule) -> None:
    """Generate the Python code of `graph_module` and the modules in it, where not yet done."""
    # (once each, outermost first: a module's code generation marks its children stale)
    for submodule in graph_module.modules():
        _LazyGraphModule.force_recompile(submodule)


def build(backend: str, graph_module: GraphModule, example_inputs, reads=(),
          missing: Callable | None = None) -> Callable:
    """The callable that runs `graph_module` with `backend` (one of `BACKENDS`). `reads`
    (python backend only): (dict, key) of each of the graph's first inputs, which the
    callable then reads itself instead of taking them (its `reads_state` is True; NOTE
    [parameters read by the graph's function] in concrete.py), `missing()` called where one
    is gone."""
    try:
        builder = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") \
            from None
    if reads and backend != "python":
        raise ValueError(f"the {backend!r} backend takes every input as an argument")
    if backend != "python":
        generate_code(graph_module)
    runner = (python_backend.build(graph_module, reads, missing) if reads
              else builder(graph_module, example_inputs))
    if grad_mode.sets_grad_mode(graph_module):
        runner = _restoring_grad_mode(runner)
    if reads:
        runner.reads_state = True
    return runner
