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


def build(backend: str, graph_module: GraphModule, example_inputs) -> Callable:
    """The callable that runs `graph_module` with `backend` (one of `BACKENDS`)."""
    try:
        builder = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") \
            from None
    runner = builder(graph_module, example_inputs)
    if grad_mode.sets_grad_mode(graph_module):
        runner = _restoring_grad_mode(runner)
    return runner
