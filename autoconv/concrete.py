"""`ConcreteFunction`: one traced graph of a converted function, replayed on every call of its
signature: arguments to the graph's flat inputs, the graph run by its backend, its outputs back
to the function's result, and the tensors the function stored into the caller's objects
written back (NOTE [changed arguments] in capture.py).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch.utils import _pytree as pytree

from autoconv_runtime.errors import user_exception
from autoconv_runtime.staging import grad_mode, specialize, tensor_reads

from . import backends, graph_passes, returned_objects
from .capture import (GRAPH_OUTPUT, Before, Capture, CopyOf, GrownList, NewShell, PythonOutput,
                      SamePlace, copied, field_spec)
from .captures import MISSING, Guard, GuardSet, Rebound
from .object_paths import follow, follow_or_none, path_text, store
from .signature import (ALIASED, CAPTURED_ALIAS, SAME_TENSOR, SHARED_CONTAINERS, TENSOR_STATE,
                        Signature,
                        same_tensor_twice, signature_of, tensors_check, with_aliasing,
                        with_captured_aliasing, with_shared_containers)

__all__ = ["ConcreteFunction", "ModuleState"]

_dynamo_compiling = torch.compiler.is_dynamo_compiling


class ModuleState:
    """Reads a module's parameters and buffers, in the graph's input order, on every call.

    The slots are the `_parameters` / `_buffers` dicts of the owning submodules, resolved once:
    reading them is a dict lookup per tensor (walking `named_parameters()` each call costs
    ~0.3 ms on a 200-parameter model), and it still sees parameters replaced by assignment.
    """

    def __init__(self, module: torch.nn.Module):
        tables = [(name, "_parameters") for name, _ in module.named_parameters()]
        tables += [(name, "_buffers") for name, _ in module.named_buffers()]
        self.names = [name for name, _ in tables]
        self.tables = [table for _, table in tables]
        self.slots = []
        for name, table in tables:
            owner_path, _, leaf = name.rpartition(".")
            self.slots.append((getattr(module.get_submodule(owner_path), table), leaf))
        # (the lookups in one C pipeline, where every table is a dict whose lookup is
        # dict's: a list comprehension's loop cost about 10% more)
        self._tables = tuple(table for table, _ in self.slots)
        self._leaves = tuple(leaf for _, leaf in self.slots)
        self._plain = all(type(table).__getitem__ is dict.__getitem__ for table in self._tables)
        self.tied = _tied_guards(module)


    def read(self) -> list:
        try:
            if self._plain:
                return [*map(dict.__getitem__, self._tables, self._leaves)]
            return [table[leaf] for table, leaf in self.slots]
        except KeyError as missing:
            # a parameter or buffer the graph reads is gone (`prune` moved `weight` to
            # `weight_orig`, `del module.w`): the Function traces again
            name = next(n for n, (table, leaf) in zip(self.names, self.slots) if leaf not in table)
            guard = Guard(f"the module's parameter or buffer {name}", None, True, by_value=True)
            raise Rebound(guard, MISSING) from missing


# NOTE [tied weights]
# `named_parameters()` gives a tensor held under two names once (`self.dec.weight =
# self.enc.weight`, weight tying), and the trace (`_reparametrize_module(tie_weights=True)`)
# reads it as one graph input, under the first name. A later `m.dec.weight = nn.Parameter(...)`
# unties them: the graph still gave the decoder the encoder's weight, [1, 2] for Python's
# [3, 6], silently (brk56b). So each name that held the tensor of an earlier one when the
# trace began is guarded to hold that name's tensor still (a fresh guard: `a[k] is b[j]` on
# every call; a Function traces again where it fails, the decoder's weight then its own
# input). Only tied names have such a guard: a module with none checks nothing more.
def _tied_guards(module: torch.nn.Module) -> tuple:
    """A fresh Guard for each parameter or buffer name that holds the very tensor of an earlier
    one (NOTE [tied weights])."""
    guards = []
    for named, table in ((module.named_parameters, "_parameters"),
                         (module.named_buffers, "_buffers")):
        first: dict = {}
        for name, tensor in named(remove_duplicate=False):
            slot = _slot(module, name, table)
            if id(tensor) not in first:
                first[id(tensor)] = (name, slot)
                continue
            first_name, first_slot = first[id(tensor)]
            guards.append(Guard(
                f"the module's {name}, which held the tensor of {first_name} (tied weights)",
                functools.partial(_same_slot, *first_slot, *slot), True, by_value=True,
                fresh=True))
    return tuple(guards)


def _slot(module: torch.nn.Module, name: str, table: str) -> tuple:
    owner_path, _, leaf = name.rpartition(".")
    return getattr(module.get_submodule(owner_path), table), leaf


def _same_slot(table, leaf, other_table, other_leaf) -> bool:
    return table.get(leaf) is other_table.get(other_leaf)


# NOTE [a tuple of graph outputs returned as is]
# A function that returns a tuple of tensors (`return order, keep`) had its result rebuilt by
# pytree's `tree_unflatten` from the leaves, each leaf first looked at for a Python value
# (about 1.7 µs a call, warm, for two tensors: as much as the check of a few guards). Where
# the spec is a plain tuple of leaves and every leaf is a graph output, that result is the
# tuple of the outputs themselves.
def _flat_tuple_of_outputs(out_spec, out_constants) -> int:
    """The number of outputs where the result is the tuple of the graph's outputs, else -1
    (never a number of outputs: a graph of none returns Python's constants) (NOTE [a tuple of
    graph outputs returned as is])."""
    # (each child a leaf itself: a child of a registered node type of one leaf, a staged
    # choice of strings `StagedConstant`, is made back into its Python value by unflatten)
    flat = (out_spec.type is tuple and out_spec.context is None
            and out_spec.num_children == out_spec.num_leaves == len(out_constants) > 1
            and all(child.is_leaf() for child in out_spec.children())
            and all(c is GRAPH_OUTPUT for c in out_constants))
    return len(out_constants) if flat else -1


class ConcreteFunction:
    """One traced graph of a converted function, for one input signature.

    Calling it runs the graph on new tensors of that signature; Python-valued arguments must
    equal the traced ones.
    """

    def __init__(self, graph_module: torch.fx.GraphModule, signature: Signature, tensor_slots,
                 out_spec, out_constants, name: str, *, state: ModuleState | None = None,
                 backend: str = "python", input_specs: tuple | None = None,
                 binder: Callable | None = None, changed=(), live=(), bound_self=None,
                 specialized=(), guards=(), writes=None, sized=None, captured=(),
                 rebound=(), grads=(), state_read=(), live_specs=(), read_as_arguments=(),
                 ambient: Callable | None = None, tensor_reads=(), tensor_state=(),
                 live_state=()):
        # the traced module, fx's lazy kind (NOTE [the graph module a user reads])
        self._graph_module = graph_module
        self._user_graph_module = None
        self.signature = signature
        self.backend = backend
        self._state = state
        self._tensor_slots = tensor_slots
        self._out_spec = out_spec
        self._out_constants = out_constants
        self._single_tensor = out_constants == [GRAPH_OUTPUT] and out_spec.is_leaf()
        self._flat_tuple = _flat_tuple_of_outputs(out_spec, out_constants)
        self._copied = any(isinstance(c, returned_objects.Copied) for c in out_constants)
        self._input_specs = input_specs
        self._bind = binder
        self._runner = None
        # (check, count) of the last call's positional tensors: NOTE [a graph's last call]
        self._last_call: tuple | None = None
        # The Function's keys of what is not an argument (a module's `training` and Python
        # fields, the default dtype, autocast) as traced, and how to read them now: NOTE
        # [what a direct call keys besides its arguments]
        self._ambient_now = ambient
        self._ambient = None if ambient is None else ambient_keys(signature.extra)
        self.__name__ = name
        # Paths into the call's objects that the graph's last outputs are written back to
        # (see NOTE [changed arguments]).
        self._changed = list(changed)
        # Every store into the call's objects, in Python's order: (path, GRAPH_OUTPUT) takes
        # the next changed tensor, (path, value) stores a Python value (NOTE [changed Python
        # values] in capture.py).
        self._writes = list(writes) if writes is not None else [
            (path, GRAPH_OUTPUT) for path in self._changed]
        # whether the plan stores containers the call's objects held, or one under two paths
        # (NOTE [containers under two paths] in capture.py)
        self._moves = any(isinstance(value, (Before, SamePlace)) for _, value in self._writes)
        self._live = list(live)  # paths whose tensors are the graph's last inputs
        # (index into `_live`, spec) of the argument objects' tensors read live: each call
        # compares their specs (NOTE [tensors in argument objects' fields] in capture.py)
        self._live_specs = tuple(live_specs)
        self._bound_self = bound_self
        # The values of the conditions this graph was traced for, and their guards' messages
        # (see NOTE [specialisation] in autoconv_runtime/staging/specialize.py).
        self.specialized = tuple(specialized)
        self._guards = list(guards)
        # Whether each run saves torch's generators, for a guard that fails (NOTE [a graph
        # whose guard fails draws nothing])
        self._saves_generators = bool(self._guards) and graph_passes.draws(graph_module)
        # The input shapes a symbolic trace's graph holds for, where Python code read free
        # sizes (NOTE [sizes Python code read] in capture.py); None: any matching shape.
        self._sized = sized
        # Where the tensors the graph keeps as constants were read from: each call checks they
        # still hold them (NOTE [captured tensors] in captures.py).
        self._captured = GuardSet((*captured, *(state.tied if state is not None else ())))
        # (a plain attribute: `GuardSet.__bool__` is a Python call on every replay)
        self._check_captured = self._captured.check if self._captured else None
        # The `ModuleState` slots of the buffers the forward rebinds: the graph's last outputs
        # are stored there on every call (NOTE [rebound buffers] in capture.py).
        self._rebound = tuple(rebound)
        # The slots of the arguments whose `.grad` the graph reads, after the arguments
        # (NOTE [gradients of arguments] in capture.py).
        self._grad_slots = tuple(tensor_slots[j] for j in grads)
        # The number of leaves that are the graph's inputs as they are, else -1: NOTE [leaves
        # that are the graph's inputs]
        in_order = (not grads and not live and not tensor_reads
                    and list(tensor_slots) == list(range(len(tensor_slots))))
        self._leaves_as_inputs = len(tensor_slots) if in_order and state is None else -1
        # The same for a module's call, whose state the runner reads itself: the number of
        # leaves, and that runner (set where it is built; never a runner before)
        self._state_leaves = len(tensor_slots) if in_order and state is not None else -1
        self._leaves_runner = False
        # The kinds of tensor state the trace's Python read (`x.storage_offset()` ...) and the
        # tensor arguments' values of them, which each call compares in `_inputs` (NOTE [tensor
        # state read while tracing] in autoconv_runtime/staging/tensor_reads.py)
        self.tensor_reads = tuple(tensor_reads)
        self._tensor_state = tuple(tensor_state)
        self._live_state = tuple(live_state)  # (the `_live` fields', the same kinds)
        # The process state the trace read (grad mode, os.environ ...) and its values: the
        # graph holds for those only (NOTE [process state read while tracing]).
        self.state_read = tuple(state_read)
        # The grad mode the trace ran under, where the graph records grad-mode changes (whose
        # restores hold that mode); None where the graph runs the same under either mode.
        self.grad_mode = torch.is_grad_enabled() if grad_mode.sets_grad_mode(graph_module) \
            else None
        self._other_grad_mode: ConcreteFunction | None = None
        # Whether arguments that share memory need a graph of their own (NOTE [aliased
        # arguments] in signature.py): the graph writes its inputs, or the call's objects.
        self._writes_inputs = bool(self._changed) or graph_passes.writes_inputs(graph_module)
        # The tensors from outside the function it writes in place, which an argument may be
        # too (NOTE [arguments that are captured tensors] in signature.py)
        self._written_constants = graph_passes.written_constants(graph_module)
        if self._writes_inputs:
            # (and those a staged body reads, whose argument it updates: NOTE [a captured
            # tensor read in a body, the argument it is updated] in signature.py)
            self._written_constants = tuple({id(t): t for t in (
                *self._written_constants, *graph_passes.constants_given_to_bodies(graph_module),
                *read_as_arguments)}.values())

    @classmethod
    def from_capture(cls, capture: Capture, signature: Signature, name: str,
                     **options) -> ConcreteFunction:
        """The ConcreteFunction replaying `capture` (see `capture.trace`)."""
        return cls(capture.graph_module, signature, capture.tensor_slots, capture.out_spec,
                   capture.out_constants, name, changed=capture.changed, live=capture.live,
                   specialized=capture.specialized, guards=capture.guards,
                   writes=capture.writes, sized=capture.sized, captured=capture.captured,
                   rebound=capture.rebound, grads=capture.grads,
                   state_read=capture.state_read, live_specs=capture.live_specs,
                   read_as_arguments=capture.read_as_arguments,
                   tensor_reads=capture.tensor_reads, tensor_state=capture.tensor_state,
                   live_state=capture.live_state,
                   **options)

    @property
    def graph_module(self) -> torch.fx.GraphModule:
        """The traced torch.fx GraphModule, its cond / while_loop bodies included: ordinary
        GraphModules on a copy of the graphs, made at the first read (NOTE [the graph module a
        user reads]). Editing it (an fx pass, then `recompile()`) changes what you run or
        compile from it, never this function's replay."""
        if self._user_graph_module is None:
            self._user_graph_module = copied(self._graph_module)
        return self._user_graph_module

    # NOTE [the graph module a user reads]
    # The trace runs under fx's lazy graph modules (NOTE [graph modules of an export made lazy]
    # in capture.py), and its modules stay of that class after their code is generated. A
    # lazy module's `recompile()` only marks its code stale, and Dynamo refuses to trace a
    # stale one: a user's fx pass over `cf.graph_module` (relu rewritten as gelu, then
    # `recompile()`) followed by `torch.compile(cf.graph_module, fullgraph=True)` failed
    # ("Attempted to inline function marked as skipped", perf54). So a read hands back
    # ordinary modules. They are a copy of the graphs (the tensors they hold are shared): on
    # the graph replay runs, a user's edit changed the function's replay only where the python
    # backend had not built its runner yet (the first call), and always under the fx backend,
    # which runs the module itself; a copy makes an edit mean one thing. Replay never reads
    # the property and pays nothing for it.

    @property
    def graph(self) -> torch.fx.Graph:
        """The torch.fx graph of `graph_module`; staged control flow shows as higher_order
        cond / while_loop."""
        return self.graph_module.graph

    @property
    def code(self) -> str:
        """The graph's Python source, for reading."""
        return self._graph_module.code

    def __repr__(self) -> str:
        return f"<ConcreteFunction {self.__name__}{self.signature} backend={self.backend!r}>"

    def _check_state_read(self) -> None:
        for label, (getter, args, value) in self.state_read:
            now = getter(*args)
            if now != value:
                what = f"os.environ[{label[1]!r}]" if isinstance(label, tuple) else label
                raise RuntimeError(
                    f"{self.__name__}: this graph was traced where the function read {what} "
                    f"as {value!r}, which is {now!r} now; the graph holds the path taken then. "
                    "Call the autoconv Function, which traces one graph per value")

    def _check_live_specs(self, held) -> None:
        for index, spec in self._live_specs:
            tensor = held[index]
            if not isinstance(tensor, torch.Tensor) or field_spec(tensor) != spec:
                where = (f"the argument's field {path_text(self._live[index])} (a tensor "
                         "of another shape, dtype, device, layout or requires_grad now)")
                rebound = Rebound(Guard(where, None, None), tensor)
                rebound.concrete = self
                raise rebound

    def _check_live_state(self, held) -> None:
        """Raise Rebound where an argument object's field read live has another state than
        the trace read (NOTE [tensor state of a tensor from outside] in
        autoconv_runtime/staging/tensor_reads.py)."""
        now = tensor_reads.state_of(held, self.tensor_reads)
        if now != self._live_state:
            names = [f"the argument's field {path_text(path)}" for path in self._live]
            where, traced, value = tensor_reads.describe(self.tensor_reads, self._live_state,
                                                         now, names)
            rebound = Rebound(Guard(where, None, traced, by_value=True), value)
            rebound.concrete = self
            raise rebound

    def tensor_state_holds(self, leaves) -> bool:
        """Whether the tensor `leaves` have the state the trace read (NOTE [tensor state read
        while tracing] in autoconv_runtime/staging/tensor_reads.py)."""
        return not self.tensor_reads or len(leaves) > max(self._tensor_slots, default=-1) and (
            self._tensor_state_now(leaves) == self._tensor_state)

    def _tensor_state_now(self, leaves) -> tuple:
        # (the tensor arguments', then the module's parameters' and buffers')
        tensors = [leaves[i] for i in self._tensor_slots]
        if self._state is not None:
            tensors += self._state.read()
        return tensor_reads.state_of(tensors, self.tensor_reads)

    def _check_tensor_state(self, leaves) -> None:
        """Raise Rebound where a tensor argument's state that the trace read (its storage
        offset, inference flag, version) differs now (NOTE [tensor state read while tracing]
        in autoconv_runtime/staging/tensor_reads.py)."""
        now = self._tensor_state_now(leaves)
        if now != self._tensor_state:
            names = [f"the tensor argument {j}" for j in range(len(self._tensor_slots))]
            if self._state is not None:
                names += [f"the module's {name}" for name in self._state.names]
            where, traced, value = tensor_reads.describe(self.tensor_reads, self._tensor_state,
                                                         now, names)
            rebound = Rebound(Guard(where, None, traced, by_value=True), value)
            rebound.concrete = self
            raise rebound

    def guards_hold(self, args, kwargs) -> bool:
        """Whether the places this graph was traced with still hold what they held (NOTE
        [captured tensors], [captured Python values] in captures.py; NOTE [tensors in argument
        objects' fields] in capture.py), for the call's (bound) arguments."""
        try:
            if self._check_captured is not None:
                self._check_captured()
            if self._live_specs or self._live and self.tensor_reads:
                roots = (args, kwargs, self._bound_self)
                held = [follow(roots, path)[-1] for path in self._live]
                if self._live_specs:
                    self._check_live_specs(held)
                if self.tensor_reads:
                    self._check_live_state(held)
            if self.tensor_reads:
                self._check_tensor_state(pytree.tree_leaves((args, kwargs)))
        except (Rebound, AttributeError, KeyError, IndexError, TypeError):
            return False
        return True

    def _run_flat(self, tensors, args=None, kwargs=None):
        if self._check_captured is not None:
            try:
                self._check_captured()
            except Rebound as rebound:  # (which graph: NOTE [graphs kept per guard outcome])
                rebound.concrete = self
                raise
        if self.grad_mode is not None and self.grad_mode is not torch.is_grad_enabled():
            raise RuntimeError(
                f"{self.__name__}: this graph changes grad mode (torch.no_grad / enable_grad / "
                f"set_grad_enabled) and was traced with grad mode "
                f"{'on' if self.grad_mode else 'off'}; call it with the same grad mode, or call "
                "the autoconv Function, which traces one graph per grad mode")
        if self.state_read:
            self._check_state_read()
        if self._live:
            roots = (args, kwargs, self._bound_self)
            held = [follow(roots, path)[-1] for path in self._live]
            if self._live_specs:
                self._check_live_specs(held)
            if self.tensor_reads:  # NOTE [tensor state of a tensor from outside]
                self._check_live_state(held)
            tensors = tensors + held
        runner = self._runner
        if runner is None:
            # (the call's leaves themselves may be a tuple: NOTE [leaves that are the graph's
            # inputs])
            tensors = list(tensors)
            runner = self._runner = self._build(tensors)
            if getattr(runner, "reads_state", False):  # (`tensors` were read for no runner)
                tensors = tensors[len(self._state.slots):]
                self._leaves_runner = runner  # NOTE [leaves that are the graph's inputs]
        generators = _generator_states() if self._saves_generators else None
        try:
            outputs = runner(*tensors)
        except RuntimeError as error:
            if backends.compiler_failed(self.backend, error):
                raise backends.compile_error(self.backend, self.__name__, error) from error
            index = specialize.guard_index(error, self._guards) if self._guards else None
            if index is not None:  # traced for the other value of a condition
                if generators is not None:
                    _restore_generators(generators)
                raise specialize.GuardFailed(str(error), index) from None
            # a graph assertion standing for the user's `raise` (NOTE [exceptions raised by graphs])
            raised = user_exception(error)
            if raised is None:
                raise
            raise raised from None
        if self._rebound:  # NOTE [rebound buffers] in capture.py
            count = len(outputs) - len(self._rebound)
            for index, tensor in zip(self._rebound, outputs[count:]):
                table, leaf = self._state.slots[index]
                table[leaf] = tensor
            outputs = outputs[:count]
        if self._writes:
            outputs = self._write_back(outputs, args, kwargs)
        if self._single_tensor:
            return outputs[0]
        if self._flat_tuple == len(outputs):  # NOTE [a tuple of graph outputs returned as is]
            return tuple(outputs)
        outputs = iter(outputs)
        leaves = [next(outputs) if c is GRAPH_OUTPUT else
                  c.kind(next(outputs).item()) if isinstance(c, PythonOutput) else c
                  for c in self._out_constants]
        if self._copied:  # NOTE [objects without tensors a function returns]
            leaves = returned_objects.fresh_copies(leaves)
        return pytree.tree_unflatten(leaves, self._out_spec)

    def _write_back(self, outputs, args, kwargs):
        """Store the graph's last outputs (and the Python values the call stores) into the
        call's objects; returns the other outputs."""
        count = len(outputs) - len(self._changed)
        roots = (args, kwargs, self._bound_self)
        tensors = iter(outputs[count:])
        # (what the objects held before any store: NOTE [containers under two paths])
        held = {value.path: follow(roots, value.path)[-1] for _, value in self._writes
                if isinstance(value, Before)} if self._moves else None
        for path, value in self._writes:
            if value is GRAPH_OUTPUT:
                value = next(tensors)
            elif isinstance(value, PythonOutput):  # NOTE [numbers stored into argument objects]
                value = value.kind(next(tensors).item())
            elif isinstance(value, GrownList):  # NOTE [a grown list written back] in capture.py
                value = value.make(next(tensors), next(tensors), follow_or_none(roots, path))
            elif isinstance(value, NewShell):  # NOTE [containers a call adds to its objects]
                value = value.make()
            elif isinstance(value, CopyOf):
                value = value.make(held[value.path])
            elif isinstance(value, Before):
                value = held[value.path]
            elif isinstance(value, SamePlace):
                value = follow(roots, value.path)[-1]
            store(roots, path, value)
        return outputs[:count]

    def fits_sizes(self, leaves) -> bool:
        """Whether the graph holds for these argument leaves' shapes (see `_sized`)."""
        return self._sized is None or all(
            tuple(leaves[i].shape) == shape for i, shape in zip(self._tensor_slots, self._sized))

    def _build(self, tensors) -> Callable:
        """The backend's runner; one that reads the module's parameters and buffers itself
        where it can (NOTE [parameters read by the graph's function])."""
        state = self._state
        if self.backend == "python" and state is not None and state.slots and state._plain:
            return backends.build(self.backend, self._graph_module, tensors, state.slots,
                                  state.read)
        return backends.build(self.backend, self._graph_module, tensors)

    # NOTE [parameters read by the graph's function]
    # A module's parameters and buffers are read live on every call (`ModuleState`), as the
    # graph's first inputs. The python backend's function reads them itself where it starts,
    # `w = table[name]` from the very `_parameters` / `_buffers` dicts `ModuleState` resolved,
    # instead of taking them as arguments: a call then builds no list of them and passes no
    # argument each (the seed model's 202: about 10 µs of a call). It reads the same dicts by
    # the same keys before any op runs, so it sees what `ModuleState.read` sees: a parameter
    # replaced by assignment, and one gone (its KeyError calls `ModuleState.read`, which
    # raises the Rebound that traces again). Only where every table is a plain dict (a
    # subclass's `__getitem__` may do more). Whether a runner reads them is its own
    # `reads_state` (a runner swapped in, as tests do, takes every input again).
    # NOTE [leaves that are the graph's inputs]
    # The common call of a function (tensors only, given positionally, no module state, no
    # `.grad` read, no argument object's fields) has leaves that are the graph's inputs in
    # order: the list comprehension over the slots rebuilt them as they were (about 0.3 µs of
    # a trivial graph's call), so those leaves are passed on as they are. The runner takes
    # them as `*args`; nothing appends to them (`_live` fields and state make a list). So
    # too a module's call whose runner reads the parameters and buffers itself (the seed
    # model's): its leaves are the runner's inputs as they are, where the runner is the one
    # built to read them (`_leaves_runner`; a runner swapped in, as tests do, or a copy's
    # runner built again takes the list). The comprehension, a frame of its own, and the
    # `getattr` were 0.7 µs warm, 11 µs after an eager call of the model (perf57).
    def _inputs(self, leaves):
        if len(leaves) == self._leaves_as_inputs or (
                self._runner is self._leaves_runner and len(leaves) == self._state_leaves):
            return leaves
        if self.tensor_reads:
            self._check_tensor_state(leaves)
        tensors = [leaves[i] for i in self._tensor_slots]
        if self._grad_slots:
            tensors += [leaves[i].grad for i in self._grad_slots]
        if self._state is not None and not getattr(self._runner, "reads_state", False):
            return self._state.read() + tensors  # parameters and buffers are read live
        return tensors

    def __call__(self, *args, **kwargs):
        grad = torch.is_grad_enabled()
        try:
            return self._call(args, kwargs)
        except Rebound as rebound:
            changed = rebound.changed_by_trace()
            if changed is not None:  # NOTE [values the trace changes] in captures.py
                raise TypeError(
                    f"{self.__name__}: {changed}. (Where the trace sets it once, to a value it "
                    "keeps, call the Function instead, which traces again.)") from None
            raise TypeError(
                f"{self.__name__}'s graph was traced with {rebound.what()}; call the "
                "Function instead, which traces again (NOTE [captured tensors] and [captured "
                "Python values] in autoconv/captures.py)") from None
        except BaseException:
            # A graph that raises inside one of its grad-mode regions (a guard of a
            # specialised `if` under `torch.no_grad()`) never runs the region's end: the
            # caller's grad mode would stay changed (it left grad off for every later test).
            # (A graph that returns has ended its regions: nothing to do on that path.)
            if torch.is_grad_enabled() is not grad:
                torch._C._set_grad_enabled(grad)
            raise

    # NOTE [a graph's last call]
    # A ConcreteFunction called directly (`cf(x, y)`) built the call's Signature on every
    # call (positional keys, a filtered copy of the traced extra, `Signature.__eq__`): 5-11 µs
    # of a trivial graph's call, twice the Function's own call, which skips that work for the
    # call equal to its last (NOTE [the last call's graph] in function.py). The same holds
    # here: where a call's arguments were all plain tensors that require no grad, given
    # positionally and bound as given, none given twice, and the graph writes none of the
    # call's objects nor a captured tensor (the keys that depend on memory and containers,
    # not on the tensors' specs), its signature is equal to the graph's exactly where each
    # tensor's key is equal to the last call's: torch's C++ `TensorGuards` check of them
    # (NOTE [the last call's tensors checked in C++] in signature.py) and no tensor twice
    # say so, and the call runs the graph directly. The extra part of the signature is the
    # graph's own on both ways (a direct call does not re-key the module's fields: its
    # guards do). A graph pinned by an `input_signature` takes its call's tensors alike
    # where they fit the specs (the check holds only for tensors of the same sizes, dtype and
    # device, which fit them as those did). Anything else takes the whole way, which raises
    # the mismatch as before. The first such call is remembered, not each (building the
    # check is a few µs: a graph called on sizes that vary, a dynamic one's, pays only the
    # check's failing).
    # NOTE [what a direct call keys besides its arguments]
    # A Function keys its graphs by more than the arguments (`Function._extra`): a module's
    # `training` and its own Python fields (`self.scale = 2.0`), the default dtype, autocast.
    # A graph called directly (`cf(x)`), or a pinned one (`input_signature`), took its
    # signature's entries for them as they were traced and never read them again: after
    # `model.eval()` it replayed the training path (20 for Python's 2, brkB51), after
    # `model.scale = 3.0` the old scale, silently. Each call now reads them as the Function
    # does and compares them with the traced ones (the process state the trace read is
    # checked by `_run_flat` itself); a pinned Function whose keys changed traces a graph of
    # its own for the call (`ambient_holds`), a direct call is refused.
    def ambient_holds(self) -> bool:
        """Whether the Function's keys besides the arguments are those this graph was traced
        with (NOTE [what a direct call keys besides its arguments])."""
        return self._ambient_now is None or ambient_keys(self._ambient_now()) == self._ambient

    def process_state_holds(self) -> bool:
        """Whether the process state this graph's trace read (`torch.is_grad_enabled()`,
        `os.environ[...]`: NOTE [process state read while tracing]) and the grad mode of a
        graph that changes it are as traced: where not, `_run_flat` refuses the call, and a
        pinned Function traces a graph of its own for it (NOTE [a pinned graph's process
        state])."""
        if self.grad_mode is not None and self.grad_mode is not torch.is_grad_enabled():
            return False
        return all(getter(*args) == value for _, (getter, args, value) in self.state_read)

    def _call(self, args, kwargs):
        if not self.ambient_holds():
            now = dict(ambient_keys(self._ambient_now()))
            changed = [f"{key} = {value!r}, which is {now.get(key, '<not set>')!r} now"
                       for key, value in self._ambient if now.get(key, MISSING) != value]
            changed = changed or [f"{key} set to {value!r} since" for key, value in now.items()
                                  if key not in dict(self._ambient)]
            raise TypeError(
                f"{self.__name__}'s graph was traced with {'; '.join(changed)}; call the "
                "Function instead, which traces again")
        return self._call_held(args, kwargs)

    def _call_held(self, args, kwargs):
        """`_call` where the caller has checked `ambient_holds()` (the pinned graph of a
        Function: its keys are read once a call)."""
        # (not under dynamo, which cannot call torch's C++ check: a graph called in a
        # torch.compile'd or strictly exported function takes the whole way there)
        last = None if _dynamo_compiling() else self._last_call
        if (last is not None and not kwargs and len(args) == last[1] and last[0](*args)
                and (last[1] < 2 or not same_tensor_twice(args, last[1]))):
            return self._run_flat(self._inputs(args), args, kwargs)
        if self._input_specs is not None:
            leaves = _check_input_signature(self.__name__, self._input_specs, args, kwargs)
            if not self.fits_sizes(leaves):
                raise TypeError(
                    f"{self.__name__}'s graph holds for input shapes {list(self._sized)} only: "
                    "its Python code decided on a free size while tracing (`range(x.shape[0])`, "
                    "a condition on a size, a reshape); call the autoconv Function instead, "
                    "which traces each such shape")
            if (not kwargs and self._last_call is None and len(args) == len(self._tensor_slots)
                    and not _dynamo_compiling()):
                check = tensors_check(args)
                if check is not None:
                    self._last_call = (check, len(args))
        else:
            given = args
            if self._bind is not None:
                args, kwargs = self._bind(args, kwargs)
            # the call's own aliasing entries, if any, are added as Function.__call__ adds
            # them (NOTE [aliased arguments] in signature.py)
            extra = tuple(entry for entry in self.signature.extra
                          if entry[0] not in (SAME_TENSOR, ALIASED, CAPTURED_ALIAS,
                                              SHARED_CONTAINERS))
            signature, leaves = signature_of(args, kwargs, extra)
            if self._writes_inputs:
                signature = with_aliasing(signature, leaves)
            if self._written_constants:
                signature = with_captured_aliasing(signature, leaves, self._written_constants)
            if self._writes:  # NOTE [containers under two paths] in capture.py
                signature = with_shared_containers(signature, args, kwargs)
            if signature != self.signature:
                raise TypeError(
                    f"{self.__name__} was traced for {self.signature}, got {signature}; call "
                    "the Function instead, which traces new signatures")
            if (len(leaves) == len(self._tensor_slots) and leaves is given and not kwargs
                    and self._last_call is None and not self._writes_inputs
                    and not self._written_constants and not self._writes
                    and not any(entry[0] == SAME_TENSOR for entry in signature.extra)
                    and not _dynamo_compiling()):
                check = tensors_check(leaves)
                if check is not None:
                    self._last_call = (check, len(leaves))
        return self._run_flat(self._inputs(leaves), args, kwargs)


# NOTE [a graph whose guard fails draws nothing]
# A graph specialised on a tensor condition (NOTE [specialisation]) runs until its guard's
# assertion fails; the Function then runs the graph of the other path from its start. Draws
# made before the assertion moved torch's generator, and the second graph drew again: `noise
# = torch.rand(2)` before an `if` choosing a callable gave [-9.91, -9.87] for Python's [-9.50,
# -9.23] on the other path's inputs, and left the generator two draws on (silently; tester53,
# first met as pytorch-optimizer's `compute_power_schur_newton` under inference mode). A graph
# with guards that draws saves the generators' states before each run and puts them back when
# a guard fails, so the run that counts draws as Python does. (A guarded graph that draws
# nothing pays nothing.)
def _generator_states() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.random.get_rng_state(), cuda


def _restore_generators(states: tuple) -> None:
    cpu, cuda = states
    torch.random.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def ambient_keys(extra: tuple) -> tuple:
    """The entries of a signature's `extra` that `Function._extra` gives (NOTE [what a
    direct call keys besides its arguments]): not the call's own aliasing entries, nor the
    process state, which `_run_flat` checks."""
    return tuple(entry for entry in extra if entry[0] not in (
        SAME_TENSOR, ALIASED, CAPTURED_ALIAS, SHARED_CONTAINERS, "process state", TENSOR_STATE))


def _check_input_signature(name, specs, args, kwargs) -> list:
    if kwargs or len(args) != len(specs):
        raise TypeError(f"{name} has input_signature of {len(specs)} positional tensor(s); got "
                        f"{len(args)} positional and {len(kwargs)} keyword argument(s)")
    for i, (spec, value) in enumerate(zip(specs, args)):
        why = spec.mismatch(value)
        if why is not None:
            raise TypeError(f"{name}: argument {i} does not match input_signature[{i}] {spec}: "
                            f"{why}")
    return list(args)
