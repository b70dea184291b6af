"""torch.nn modules and Parameters made in converted code, refused at the line where dynamo
cannot make them in one graph.

NOTE [modules made under torch.compile]
A torch.nn module made in the function (`lin = nn.Linear(3, 2)`, `nn.LayerNorm(3)` per call)
makes its weights as `torch.nn.Parameter`s, and dynamo (torch 2.13) does not trace Parameter's
constructor: under torch.compile(fullgraph=True) it stops with its own "Attempted to use
`torch.nn.Parameter()` constructor with Dynamo", for plain Python too (not autoconv's doing:
the converted call is the direct call Python makes). Without fullgraph dynamo breaks the graph
there and runs the constructor as Python. So where one graph is required, converted code
refuses such a call at the user's line with the fix: a call of torch's class
(`made_module_`, which the converter writes for `nn.Linear(...)` through a global module) or
of a name bound to it (`Linear(...)`, through `converted_call`), and `nn.Parameter(...)` in the
user's own code (a user module's `__init__` that makes its weights, converted too). Which of
torch's classes make parameters depends on the arguments (`nn.LayerNorm(3,
elementwise_affine=False)` makes none): the class is made once for real, on the meta device,
with the call's arguments where they are all Python constants (sizes, flags, dtypes), outside
the trace; a module without parameters (`nn.ReLU()`, `nn.Softmax(-1)`, `nn.Flatten()`) is made
in the graph as before. autoconv's replay and torch.export make them as Python does.
"""

from __future__ import annotations

import torch

from .errors import StagingError
from .identity import type_in

__all__ = ["made_module_", "refuse_made_in_one_graph"]

_CONSTANTS = (bool, int, float, str, type(None), torch.dtype, torch.device)


def made_module_(klass, /, *args, **kwargs):
    """`klass(*args, **kwargs)` for `klass` a class of torch's that the converter resolved
    through a global module (`nn.Linear`, `torch.nn.Parameter`): NOTE [modules made under
    torch.compile].

    Raises:
        StagingError: under torch.compile where one graph is required and the call makes
            parameters, at the user's line.
    """
    if torch.compiler.is_dynamo_compiling():
        refuse_made_in_one_graph(klass, args, kwargs)
    return klass(*args, **kwargs)


def refuse_made_in_one_graph(klass, args, kwargs) -> None:
    """Refuse `klass(*args, **kwargs)` under dynamo where it makes parameters in a trace that
    must give one graph. Traced by dynamo."""
    if not (klass is torch.nn.Parameter or issubclass(klass, torch.nn.Module)):
        return
    if not _one_graph():
        return  # (dynamo breaks the graph there and makes it as Python does)
    if klass is not torch.nn.Parameter and not (
            _constant(args) and _constant(kwargs)
            and _torch_module_with_parameters(klass, args, kwargs)):
        return  # (the probe takes constants only: dynamo's own error, if any)
    name = "torch.nn.Parameter" if klass is torch.nn.Parameter else klass.__qualname__
    raise StagingError(
        "call", f"`{name}(...)` makes a torch.nn.Parameter under "
        "torch.compile(fullgraph=True), and dynamo does not trace Parameter's constructor "
        "(torch's own limit: plain Python stops there too)",
        "Make the module once, outside the compiled function, and pass it in (or hold it on "
        "the module you compile); or compute with torch.nn.functional on tensors (F.linear(x, "
        "w, b)); autoconv's Function and torch.export make it as Python does")


def _constant(value) -> bool:
    """Whether `value` is Python constants all through (what dynamo hands a probe)."""
    if isinstance(value, (tuple, list)):
        return all(_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_constant(k) and _constant(v) for k, v in value.items())
    return type_in(value, _CONSTANTS)


def _one_graph() -> bool:
    """Whether dynamo's trace cannot break its graph (fullgraph, or error_on_graph_break).
    Called for real by dynamo."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    return tx is not None and bool(tx.one_graph or tx.error_on_graph_break)


_one_graph._dynamo_marked_constant = True


def _torch_module_with_parameters(klass, args, kwargs) -> bool:
    """Whether `klass(*args, **kwargs)`, a module of torch's, holds parameters: made for real
    on the meta device (no memory, no random draws). A user's class is not made (its converted
    `__init__` checks the calls it makes). Called for real by dynamo."""
    if not klass.__module__.startswith("torch."):
        return False
    try:
        with torch.device("meta"):
            module = klass(*args, **kwargs)
    except Exception:  # (any error is the call's own, raised by the call in the trace)
        return False
    return any(True for _ in module.parameters())


_torch_module_with_parameters._dynamo_marked_constant = True
