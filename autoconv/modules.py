"""`ConvertedModule`: what `autoconv(module)` returns, an `nn.Module` that is also a `Function`.

    model = autoconv(MyModel())     # as torch.compile returns its OptimizedModule
    model(x)                        # traced once per signature, then the graph runs
    model.parameters(), model.state_dict(), model.to(...), model.eval(), model.lin
                                    # the original module's, shared (see below)
    DistributedDataParallel(model)  # trains as DDP(MyModel()) does

The wrapper shares the original's tables of parameters, buffers and submodules, so names,
`state_dict()` keys and `load_state_dict` are the original's, and `to()` / `cuda()` change the
original's tensors. Its own hooks and the original module's hooks run as Python around each
call, the graph inside: a hook's side effects happen on every call, as they do eagerly, and
`fully_shard(model)` (FSDP2) keeps gathering and freeing its parameters around the graph.

A module whose forward is torch's and that wraps a user module in `.module`
(`DistributedDataParallel`, `DataParallel`) keeps its forward, run as Python on every call (DDP's
gradient synchronisation is there); the wrapped module's forward is the traced graph. Hooks of
submodules reached inside the forward are traced into the graph like the rest of it.
"""

from __future__ import annotations

import torch

from autoconv_runtime import calls
from autoconv_runtime.values import eager

from . import captures, function, targets
from .function import Function, _function_fields, _made_again

__all__ = ["ConvertedModule"]

# Module tables the wrapper shares with the original module (see the module docstring).
_SHARED_TABLES = ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")
_module_call = torch.nn.Module.__call__
_tracing_state = torch._C._get_tracing_state
# (`model.compile()`'s, which nn.Module's pickling leaves out too)
_NOT_COPIED = frozenset((*_function_fields(), *_SHARED_TABLES, "_outer", "_compiled_call_impl"))


def _wrapped_module(module: torch.nn.Module) -> torch.nn.Module | None:
    """`module.module` for a library wrapper module (DDP, DataParallel), else None."""
    inner = module.__dict__.get("_modules", {}).get("module")
    forward = type(module).forward
    if isinstance(inner, torch.nn.Module) and calls.is_library_function(forward):
        return inner
    return None


class ConvertedModule(Function, torch.nn.Module):
    """`autoconv(module)`: a `Function` of the module that is an `nn.Module` as well.

    Calling it runs the module's hooks, then the graph traced for the arguments' signature.
    `parameters()`, `state_dict()`, `load_state_dict()`, `to()`, `train()` / `eval()` and
    attribute access (`model.lin`) are the original module's.
    """

    def __init__(self, module: torch.nn.Module, **options):
        torch.nn.Module.__init__(self)
        outer, inner = module, _wrapped_module(module)
        Function.__init__(self, inner if inner is not None else module, **options)
        # Function keeps the module as plain attributes, not as a registered submodule.
        for name in ("python_function", "_module"):
            self._modules.pop(name, None)
        object.__setattr__(self, "python_function", outer)
        object.__setattr__(self, "_module", inner if inner is not None else module)
        object.__setattr__(self, "_outer", outer)
        for table in _SHARED_TABLES:
            object.__setattr__(self, table, getattr(outer, table))
        self.training = outer.training

    # NOTE [the wrapper's call folded]
    # A replayed call went nn.Module's `__call__` -> our `_call_impl` -> `forward` ->
    # `Function.__call__` -> the last call's graph (NOTE [the last call's graph] in
    # function.py), each layer a Python frame and its own tests: 2-3 µs of a small module's
    # 12 (warm). Where each layer would pass the call on to the next unchanged (no
    # `model.compile()`, no hook of the wrapper's, of the module's or torch's global ones, no
    # jit trace, the original module converted itself (no DDP around it), not run eagerly, no
    # other tracer, no input_signature, positional arguments) the call takes the last call's
    # graph here, with the same test `Function.__call__` makes; anything else takes the
    # layers, which decide as before, and so does a graph whose guards fail (a Rebound, raised
    # before the graph runs: the layers trace again). (nn.Module's `__call__` is otherwise
    # the wrapper's: hooks, then forward.)
    def __call__(self, *args, **kwargs):
        # (eager() first: under dynamo it is a constant False, so that dynamo reads and
        # guards none of the attributes after it)
        if (eager() and not kwargs and self._compiled_call_impl is None
                and (last := self._last) is not None
                and not (self._forward_hooks or self._forward_pre_hooks
                         or self._backward_hooks or self._backward_pre_hooks)
                and self._outer is self._module and not targets.has_hooks(self._module)
                and self.input_signature is None and not function._run_eagerly
                and not _tracing_state()):
            concrete = self._last_graph(last, args)
            if concrete is not None:
                try:
                    return concrete._run_flat(concrete._inputs(args), args, kwargs)
                except captures.Rebound:  # (raised before the graph runs: the layers trace)
                    pass
        return _module_call(self, *args, **kwargs)

    # NOTE [global hooks around the wrapper]
    # `forward` calls the original module, whose __call__ runs torch's global hooks
    # (`register_module_forward_hook`) around it, with the original as the hook's module. Run
    # around the wrapper as well (nn.Module's `_call_impl`), a hook that applies to every
    # module changed the output twice (x + 2 for Python's x + 1, silently: break45b s05;
    # torch.compile(module) warns of the same). Where the wrapper has no hook of its own, its
    # `_call_impl` (which nn.Module's __call__ looks up on the instance) is its forward, the
    # original's call running the global hooks once; with one, nn.Module's (README,
    # "Limitations"). (In `_call_impl`, not in a `__call__` of our own: that was one more
    # Python frame on every call, about 1-2 µs of a Linear's 59 at load 7.)
    def _call_impl(self, *args, **kwargs):
        if (self._forward_hooks or self._forward_pre_hooks or self._backward_hooks
                or self._backward_pre_hooks or torch._C._get_tracing_state()):
            return torch.nn.Module._call_impl(self, *args, **kwargs)
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        # The original module is called as Python, so that its hooks run on every call (FSDP's
        # unshard / reshard, a hook that logs or keeps activations), and a library wrapper's
        # forward too; the forward of the module autoconv converted is the graph (an instance
        # attribute `forward`, for this call only). The trace runs that forward without hooks.
        outer, inner = self._outer, self._module
        try:
            if outer is inner and not targets.has_hooks(inner):  # nothing to run around it
                return Function.__call__(self, *args, **kwargs)
            with targets.forward_replaced(inner, self._call_graph):
                return outer(*args, **kwargs)
        except torch.fx.proxy.TraceError as error:
            # NOTE [a converted module as torch.fx.symbolic_trace's root] in targets.py
            targets.raise_if_symbolic_trace_root(inner, "autoconv.autoconv(module)", args,
                                                 kwargs, error)
            raise

    def __reduce_ex__(self, protocol):  # NOTE [a Function copied or pickled] in function.py
        # (the tables are the module's, shared again by the new wrapper)
        return _made_again, (type(self), self._outer, self._options()), {
            k: v for k, v in self.__dict__.items() if k not in _NOT_COPIED}

    def _call_graph(self, *args, **kwargs):
        return Function.__call__(self, *args, **kwargs)

    def train(self, mode: bool = True):
        """Set training mode on the original module (and so on this one)."""
        self.python_function.train(mode)
        self.training = mode
        return self

    def state_dict(self, *args, **kwargs):
        """The original module's `state_dict()` (same keys)."""
        return self.python_function.state_dict(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return torch.nn.Module.__getattr__(self, name)
        except AttributeError:
            return getattr(self.__dict__["python_function"], name)

    def __repr__(self) -> str:
        return Function.__repr__(self)
