"""Capture: a converted function traced into a torch.fx graph (make_fx), or exported
(`torch.export`), with the tensors it stores into its caller's objects found and returned.

`trace` gives a `Capture`, what a `ConcreteFunction` needs to replay the graph; `export` an
`ExportedProgram`. Neither keeps state: the `Function` owns the cache.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import functools
import importlib
import random
import sys

import torch
from torch._dispatch.python import enable_python_dispatcher
from torch._subclasses.fake_tensor import is_fake
from torch.fx._lazy_graph_module import _LazyGraphModule, _use_lazy_graph_module
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.utils import stateless
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils import _pytree as pytree

from autoconv_runtime.calls import converted_submodules, has_backward_hooks
from autoconv_runtime import augmented, gradients
from autoconv_runtime.builtins import PYTHON_BOOL
from autoconv_runtime.lists import StagedList
from autoconv_runtime.errors import StagingError, asked_by_a_kernel
from autoconv_runtime.staging import (ambient, context, grad_mode, outside_writes, specialize,
                                      tensor_reads, trace_record)
from autoconv_runtime.text import TracedText
from autoconv_runtime.values import RETURN_VALUE, is_undefined

from . import captures, graph_passes, returned_objects, targets, trace_leaks, tracebacks
from .module_patches import unpatched_modules
from .object_paths import (PYTHON_VALUES, containers_in, follow, follow_or_none, is_shell,
                           lists_in, path_text, put_back, python_values_in, restore,
                           slotted_containers, store, trace_value_in_slotted,
                           Repeat, store_rebuilding, tensors_in)
from .signature import (Signature, grad_key, is_parameter_key, is_traced_subclass, keyed_path,
                        shared_in, subclass_in)

__all__ = ["GRAPH_OUTPUT", "Before", "Capture", "CopyOf", "SamePlace", "trace", "export"]

GRAPH_OUTPUT = object()  # marks an output leaf that comes from the graph


class PythonOutput:
    """Marks an output leaf that the graph gives as a 0-d tensor and the call as a Python
    number of type `kind` (the function returned a SymInt / SymFloat / SymBool)."""

    def __init__(self, kind):
        self.kind = kind

    def __repr__(self):
        return f"<graph output as {self.kind.__name__}>"


_SYMBOLIC = {torch.SymInt: (PythonOutput(int), torch.int64),
             torch.SymFloat: (PythonOutput(float), torch.float64),
             torch.SymBool: (PythonOutput(bool), torch.bool)}


@dataclasses.dataclass
class Capture:
    """One traced graph and how its flat inputs and outputs map onto the call's values."""

    graph_module: torch.fx.GraphModule
    tensor_slots: list  # which argument leaves are the graph's tensor inputs
    out_spec: pytree.TreeSpec  # the structure of the function's result
    out_constants: list  # its leaves: GRAPH_OUTPUT for the graph's outputs, else the value
    changed: list  # paths the graph's last outputs are written back to (NOTE [changed arguments])
    live: list  # paths whose tensors are the graph's last inputs
    # the condition values the graph is specialised on, and their guards' messages
    # (NOTE [specialisation] in autoconv_runtime/staging/specialize.py)
    specialized: tuple = ()
    guards: tuple = ()
    # every store into the call's objects, in order: (path, GRAPH_OUTPUT) for the next changed
    # tensor, (path, value) for a Python value (NOTE [changed Python values])
    writes: tuple = ()
    # The shapes of the graph's tensor inputs (in `tensor_slots` order) when a symbolic trace
    # fixed or bounded free sizes (Python code read them: `range(x.shape[0])`, `if n > 3`):
    # the graph holds only for those shapes (NOTE [sizes Python code read]). None otherwise.
    sized: tuple | None = None
    # the places the graph's captured tensors were read from (NOTE [captured tensors])
    captured: tuple = ()
    # the module state slots (`ModuleState.slots` indices) of the buffers the forward rebinds,
    # which the graph's very last outputs are stored into (NOTE [rebound buffers])
    rebound: tuple = ()
    # the indices (into the tensor arguments) of the arguments whose `.grad` the graph takes
    # as inputs, after theirs (NOTE [gradients of arguments])
    grads: tuple = ()
    # the process state the function read and its values: (label, (getter, args, value)), the
    # graph holds for those values only (NOTE [process state read while tracing] in
    # autoconv_runtime/staging/ambient.py)
    state_read: tuple = ()
    # (index into `live`, spec) of the argument objects' tensors read live, whose specs each
    # call compares (NOTE [tensors in argument objects' fields])
    live_specs: tuple = ()
    # the tensors from outside the function that the trace read, by their own name, as the
    # argument a staged body updates (NOTE [a captured tensor read in a body, the argument it
    # is updated] in signature.py)
    read_as_arguments: tuple = ()
    # the kinds of tensor state the user's code read (sorted names of
    # tensor_reads.KEYED_READS), and their values for each tensor argument: the graph holds
    # for those values only (NOTE [tensor state read while tracing] in
    # autoconv_runtime/staging/tensor_reads.py)
    tensor_reads: tuple = ()
    tensor_state: tuple = ()
    # their values for each argument object's field read live (`live`): NOTE [tensor state of
    # a tensor from outside] in autoconv_runtime/staging/tensor_reads.py
    live_state: tuple = ()


def trace(converted, signature: Signature, leaves, *, name: str, module=None, state=None,
          bound_self=None, dynamic: bool = False, plan=(), source=None) -> Capture:
    """Trace `converted` (the converted function, or a module's converted forward) on the
    arguments `leaves` (flattened as `signature.treespec`) into one graph.

    `state` (a `concrete.ModuleState`) gives a module's parameters and buffers, the graph's
    first inputs. `source` (the user's function or module) is where the tensors the graph
    keeps as constants are looked for, to guard them (NOTE [captured tensors]). Raises what the function raises while tracing (a StagingError for code that
    cannot be staged), and UnboundLocalError for a returned variable with no value.
    """
    tensor_slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    _refuse_subclass_arguments(name, signature, _location(source if source is not None
                                                          else converted))
    names = state.names if state is not None else []
    grads = [j for j, i in enumerate(tensor_slots) if isinstance(grad_key(leaves[i]), tuple)]
    # (NOTE [parameters traced as parameters])
    parameters = [j for j, i in enumerate(tensor_slots) if is_parameter_key(signature.key[i])]
    out_info = {}
    versions = ()  # the version counts of the trace's inputs (set below, per round)

    def flat_function(live, *tensors):
        grad_mode.function_begins()
        trace_record.note_fake_mode()  # (NOTE [no value of a trace escapes])
        params, inputs = tensors[: len(names)], tensors[len(names):]
        inputs, live_tensors = inputs[: len(tensor_slots)], inputs[len(tensor_slots):]
        _as_parameters([inputs[j] for j in parameters]
                       + [p for p, table in zip(params, state.tables if names else ())
                          if table == "_parameters"])
        grad_tensors, live_tensors = live_tensors[: len(grads)], live_tensors[len(grads):]
        for j, grad in zip(grads, grad_tensors):  # NOTE [gradients of arguments]
            inputs[j].grad = grad
        # (x._version read in the function is the argument's, self.w._version the
        # parameter's: NOTE [tensor state read while tracing])
        tensor_reads.with_versions(tensors, versions)
        full = list(leaves)
        for slot, tensor in zip(tensor_slots, inputs):
            full[slot] = tensor
        args, kwargs = _unflatten_shared(full, signature)
        roots = (args, kwargs, bound_self)
        before = tensors_in(roots)
        values_before = python_values_in(roots)
        # (a container under two paths at each: NOTE [containers under two paths])
        shells_before = {path: v if is_shell(v) else follow(roots, v.first)[-1]
                         for path, v in python_values_in(roots, repeats=True).items()
                         if is_shell(v) or type(v) is Repeat}
        out_info.pop("writes", None)
        out_info["undo"] = (roots, values_before, live, shells_before)
        # NOTE [objects a function returns]
        held_before = returned_objects.held_before_call(roots)
        out_info["grads"] = _parameter_gradients(roots)  # NOTE [gradients left by the call]
        checked = gradients.checked_gradients(frozenset(id(p) for p, _ in out_info["grads"]))
        for path, tensor in zip(live, live_tensors):
            store(roots, path, tensor)
            if path in held_specs:  # read, not stored by the call: nothing to write back
                before[path] = tensor
        if module is not None:
            # torch.func.functional_call without the module's hooks: `autoconv(module)` runs
            # them as Python around the graph on every call (ConvertedModule), where a hook's
            # side effects (FSDP's all-gather, a logging hook) happen each time.
            state_now = _every_slot(module, dict(zip(names, params)))
            fields_before = _registered_tensors(module)
            with stateless._reparametrize_module(module, state_now), \
                    context.caller_owned_lists(lists_in(roots)), checked:
                result = module.forward(*args, **kwargs)
            _undo_fields_made(name, module, fields_before)
            # _reparametrize_module puts the originals back and leaves in `state_now` what the
            # module's tables held at the end: a buffer the forward rebound holds another tensor
            out_info["rebound"] = _rebound_buffers(name, state, params, state_now,
                                                   _location(type(module).forward))
        else:
            slotted = slotted_containers(roots)  # NOTE [containers held by slotted objects]
            with context.caller_owned_lists(lists_in(roots)), checked:
                result = converted(*args, **kwargs)
            _refuse_trace_values_in_slotted(name, slotted, _location(
                source if source is not None else converted))
        _refuse_rebound_gradients(name, inputs, dict(zip(grads, grad_tensors)),
                                  _location(source if source is not None else converted))
        _refuse_gradients_left(name, out_info["grads"], _location(
            source if source is not None else converted))
        changed = _changed_objects(name, roots, before, _location(
            source if source is not None else converted), shells_before)
        # (`changed` in the order the plan's stores take the graph's last outputs, with the
        # numbers read from tensors that the call stored: NOTE [numbers read from tensors
        # stored into argument objects])
        out_info["writes"], changed = _write_plan(
            name, roots, values_before, shells_before, changed,
            _location(source if source is not None else converted))
        out_info["changed"] = [path for path, _ in changed]
        if is_undefined(result) and result.name == RETURN_VALUE:
            # No return statement ran on the path traced: every one raised in a staged body
            # (the graph's assertions raise when it runs), or the function fell off its end,
            # which returns None in Python.
            result = None
        # NOTE [objects a function returns] in returned_objects.py
        result = returned_objects.carried(
            result, roots, held_before, name,
            _location(source if source is not None else converted),
            source if source is not None else converted)
        out_leaves, out_info["spec"] = pytree.tree_flatten(result)
        returned_objects.refuse_escaped(out_leaves, roots, name, _location(
            source if source is not None else converted))
        for leaf in out_leaves:
            if is_undefined(leaf):  # Python would have raised at the read
                raise UnboundLocalError(
                    f"{name} returns local variable '{leaf.name}', which has no "
                    "value on the path taken")
        # A symbolic number (a size under a symbolic trace, `int(t)` of a traced tensor) is a
        # value of this call, not a constant: the graph outputs it as a 0-d tensor, and the
        # replay gives back the Python number (a SymInt left as a constant would escape).
        out_info["constants"] = [
            _SYMBOLIC[type(o)][0] if type(o) in _SYMBOLIC else
            GRAPH_OUTPUT if isinstance(o, torch.Tensor) else o for o in out_leaves]
        out_leaves = [torch.ops.aten.scalar_tensor.default(o, dtype=_SYMBOLIC[type(o)][1])
                      if type(o) in _SYMBOLIC else o for o in out_leaves]
        return ([o for o in out_leaves if isinstance(o, torch.Tensor)]
                + [tensor for _, tensor in changed]
                + [tensor for _, tensor in out_info.get("rebound", ())])

    example = [leaves[i] for i in tensor_slots]
    if state is not None:
        example = state.read() + example
        _refuse_subclass_state(name, state, example, _location(type(module).forward
                                                                if module is not None
                                                                else converted))
    call_roots = (*_unflatten_shared(list(leaves), signature), bound_self)
    mode = "symbolic" if dynamic else "fake"
    # what the function may read from outside, and the Python values there as the trace begins
    # (NOTE [captured Python values] in captures.py)
    places = captures.Places(source if source is not None else converted, module, bound_self,
                             _argument_objects(call_roots[:2]))
    live = []
    held_specs = {}  # path -> spec of the argument objects' tensors read live (NOTE below)
    kernels_in_python = False  # NOTE [torch's C++ kernels asking a size only the graph knows]
    with trace_record.recording() as record:  # (NOTE [no value of a trace escapes])
        while True:
            traced = functools.partial(flat_function, live)
            if module is not None:
                # functional_call runs module.forward: route it through the converted forward.
                traced = _with_converted_forward(module, converted, traced)
            # The tensors at changed paths are read on every call (see NOTE [changed
            # arguments]); a first trace finds those paths.
            inputs = (example + [leaves[tensor_slots[j]].grad for j in grads]
                      + [follow(call_roots, path)[-1] for path in live])
            may_require_grad = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
            if may_require_grad and module is not None:
                _refuse_backward_hooks(module, name)
            grad_inputs = [t.requires_grad for t in inputs]
            versions = tensor_reads.versions(inputs)
            inputs = [t.detach() if t.requires_grad else t for t in inputs]
            # Tensors the function reads from globals or closures are real, not fake: make_fx
            # makes them constants of the graph.
            # Lazy graph modules generate their code when first run or shown: fx regenerates
            # the code of every nested subgraph whenever an enclosing one changes, which made
            # code generation half of the time of tracing code with nested staged statements.
            drawn = _python_random_state()
            try:
                with tracebacks.quiet_meta_failures():  # (NOTE [inputs made fake first])
                    fakes = _fake_inputs(inputs) if mode == "fake" else inputs
                with tracebacks.quiet_meta_failures(), _use_lazy_graph_module(True), \
                        grad_mode.RecordGradMode(may_require_grad, grad_inputs,
                                                 places.subclasses), \
                        outside_writes.restoring() as values_read, \
                        specialize.tracing(plan) as guards, \
                        gradients.guarded_gradients(frozenset(places.tensors)), \
                        ambient.watching() as state_read, _imports_outside_the_trace(), \
                        tensor_reads.watching() as kinds_read, unpatched_modules(), \
                        (enable_python_dispatcher() if kernels_in_python
                         else contextlib.nullcontext()):
                    graph_module = make_fx(traced, tracing_mode=mode,
                                           _allow_non_fake_inputs=True)(*fakes)
                    read_as_arguments = outside_writes.stood_for()
                grad_mode.raise_refusal()
                ambient.refuse_clock_reads(name)
                places.refuse_trace_values_stored(name, _location(
                    source if source is not None else converted), functools.partial(
                        _traced_again, traced, mode, plan, inputs), containers_in(call_roots))
                places.forget_sizes_the_trace_changed(containers_in(call_roots))
                places.note_values_the_trace_changed()
                _refuse_python_random_draws(drawn, name,
                                            source if source is not None else converted)
                _refuse_torch_seeding(drawn, graph_module, name,
                                      source if source is not None else converted)
                _refuse_constant_gradients(graph_module, (*leaves, module, bound_self), name,
                                           _location(source if source is not None else converted))
            except Exception as error:  # noqa: BLE001 - all but one kind are raised again
                # (a refusal made in an operator, whose error Python turned into its own: NOTE
                # [tensor subclasses from outside] in autoconv_runtime/staging/grad_mode.py)
                grad_mode.raise_refusal()
                if mode != "fake" or kernels_in_python or not asked_by_a_kernel(error):
                    raise
                kernels_in_python = True
                continue  # (the `finally` puts the call's objects back first)
            finally:
                _restore_torch_generator(drawn)
                for parameter, grad in out_info.pop("grads", ()):
                    if parameter.grad is not grad:
                        parameter.grad = grad
                if "undo" in out_info:  # the call's objects must not keep the trace's values
                    roots, before, stored, shells = out_info.pop("undo")
                    if "writes" in out_info:
                        written = [path for path, _ in out_info["writes"]]
                    else:
                        written = _changed_places(roots, before, shells)
                    # (a container the caller had at a path the plan stores into goes back there:
                    # NOTE [containers under two paths])
                    held = {**shells, **before}
                    # last first: items a call appended to a list go from its end; items it
                    # removed (`l[:] = l[:1]`, a refused call) go back first first, after (put
                    # back past the list's end, they raised an internal IndexError)
                    past_end = []
                    for path in reversed(dict.fromkeys(stored + written)):
                        owner = follow_or_none(roots, path[:-1])
                        if isinstance(owner, list) and path in held \
                                and isinstance(path[-1][1], int) and path[-1][1] > len(owner):
                            past_end.append(path)
                            continue
                        restore(roots, path, held)
                    for path in reversed(past_end):
                        restore(roots, path, held)
            reread = [p for p in out_info["changed"]
                      if p not in live and isinstance(follow_or_none(call_roots, p), torch.Tensor)]
            held = _fields_held(graph_module, call_roots, leaves, values_read, live + reread)
            if not reread and not held:
                break
            live = live + reread + held
            held_specs.update((path, field_spec(follow(call_roots, path)[-1])) for path in held)
    with _use_lazy_graph_module(True):
        # (NOTE [loops traced through torch's autograd rule])
        graph_passes.loops_without_stacks(graph_module)
        graph_module = graph_passes.clean_up(graph_module, is_impure=graph_passes.has_effects)
    trace_leaks.check_trace(
        name, record, graph_module,
        [(value, "the function's result") for value in out_info["constants"]]
        + [(value, f"the value written back to {path_text(path)} on each call")
           for path, value in out_info["writes"]]
        + [(value, "a condition the graph is specialised on") for value in guards[0]]
        + [(read[-1], f"the process state read ({label})") for label, read in state_read.items()],
        [(value, where) for value, where in zip(call_roots, ("args", "kwargs", "self"))],
        source if source is not None else converted)
    # (the modules' code is generated where a backend runs them: NOTE [the trace's code
    # generated where it runs] in backends.py)
    sized = None
    if dynamic and _sizes_guarded(graph_module):
        sized = tuple(tuple(leaves[i].shape) for i in tensor_slots)
    captured = captures.guards_for(graph_module, places, values_read)
    return Capture(graph_module, tensor_slots, out_info["spec"], out_info["constants"],
                   out_info["changed"], live, tuple(guards[0]), tuple(guards[1]),
                   tuple(out_info["writes"]), sized, captured,
                   tuple(index for index, _ in out_info.get("rebound", ())), tuple(grads),
                   tuple(state_read.items()),
                   tuple((i, held_specs[p]) for i, p in enumerate(live) if p in held_specs),
                   read_as_arguments, tuple(sorted(kinds_read)), tensor_reads.state_of(
                       [leaves[i] for i in tensor_slots] + example[:len(names)],
                       tuple(sorted(kinds_read))), tensor_reads.state_of(
                       [follow(call_roots, path)[-1] for path in live],
                       tuple(sorted(kinds_read))))


# NOTE [tensors in argument objects' fields]
# A tensor in a field of a plain object passed as an argument (`f(cfg, x)` reading `cfg.w`) is
# not a leaf of the arguments' pytree: make_fx met the real tensor and kept it as a constant
# of the graph, and a call with `cfg.w` rebound to another tensor replayed the first (silently
# wrong; the signature keys such a field by its place only). Where the graph holds such a
# tensor as a constant, and the signature holds its place (`keyed_path`), the trace runs again
# with that place read live: a graph input, read from the call's object on every call, as the
# tensors a call stores into its objects are (NOTE [changed arguments]). Its shape, dtype,
# device, requires_grad and layout are not in the signature, so each call compares them with
# the trace's and, where they differ, the Function traces again (a `Rebound`), as for a global
# rebound. A tensor read with `.item()`, `.tolist()`, `int()` or `bool()` while tracing was
# baked and guarded by reading that tensor object again, which a rebinding escaped too: it is
# read live as well, and the graph reads its value as it reads an argument's. Left as
# constants, as before: a tensor the graph writes in place (its aliasing with other arguments
# is keyed for captured tensors only), and one that is also an argument's leaf.
def _fields_held(graph_module, call_roots, leaves, values_read, live) -> list:
    """The paths into the argument objects' fields whose tensors `graph_module` holds as
    constants (or whose values the trace read) and whose places the signature keys (NOTE
    [tensors in argument objects' fields])."""
    constants = {id(value) for _, node, value in captures._constants(graph_module)
                 if not graph_passes._made_by_function(node)}
    constants.update(id(tensor) for tensor, _, _ in values_read)
    if not constants:
        return []
    kept = {id(t) for t in graph_passes.written_constants(graph_module)}
    kept.update(id(leaf) for leaf in leaves if isinstance(leaf, torch.Tensor))
    return [path for path, tensor in tensors_in(call_roots).items()
            if id(tensor) in constants and id(tensor) not in kept and path not in live
            and path[0][1] != 2 and any(kind == "attr" for kind, _ in path[1:])
            and keyed_path(call_roots, path)]


def field_spec(tensor) -> tuple:
    """What a graph traced on `tensor` as an input holds for, beyond its place."""
    return (tuple(tensor.shape), tensor.dtype, tensor.device, tensor.requires_grad,
            None if tensor.is_contiguous() else tensor.stride())


# NOTE [gradients of arguments]
# make_fx traces fakes of the argument tensors, which have no `.grad`: a clip-by-norm helper
# (`for p in params: tot = tot + p.grad.pow(2).sum()`, then `p.grad.mul_(...)` under a tensor
# `if`) met None where the caller's tensors hold gradients (tester t12 repro 1). The `.grad` of
# each argument that holds one is an input of the graph, after the arguments, set as the
# fake's `.grad` while tracing; its shape and dtype are part of the signature
# (signature.grad_key), and every call passes the call's gradients, so an update in place
# reaches the caller's. The parameters of a module argument, or of an optimizer argument
# (optim47: `opt.step()` in the function after the caller's backward), are not arguments: the
# graph holds them, and the gradients read from them, as constants, the first call's, which
# later calls would read and update where the caller has new ones. Refused at the read in converted
# code (runtime/gradients.py), and after the trace for a read elsewhere (torch's
# `clip_grad_norm_`: `_refuse_constant_gradients`); the gradient of a global tensor or of a global module's
# parameter is a guarded place instead (captures.py). Under torch.export the program has no
# `.grad` of its inputs (torch's "fake tensor in the exported program constant's list"):
# refused at the read (runtime/gradients.py).
def _refuse_constant_gradients(graph_module, roots, name, location) -> None:
    """Raise StagingError where the graph holds as a constant the `.grad` of a parameter of
    a module the call was given (NOTE [gradients of arguments])."""
    grads = {}
    for root in roots:
        if isinstance(root, torch.nn.Module):
            for key, parameter in root.named_parameters():
                if parameter.grad is not None:
                    grads[id(parameter.grad)] = f"the parameter {key} of a module"
        elif isinstance(root, torch.optim.Optimizer):
            # (an optimizer's parameters are held as a module's are: stepping it in the
            # function on the gradients the caller's backward made replayed the first call's,
            # silently, optim47)
            for g, group in enumerate(root.param_groups):
                for i, parameter in enumerate(group["params"]):
                    if isinstance(parameter, torch.Tensor) and parameter.grad is not None:
                        grads.setdefault(id(parameter.grad), (
                            f"the parameter param_groups[{g}]['params'][{i}] of an optimizer"))
    if not grads:
        return
    for submodule in graph_module.modules():
        for node in getattr(submodule, "graph", torch.fx.Graph()).nodes:
            held = getattr(submodule, node.target, None) if node.op == "get_attr" else None
            if isinstance(held, torch.Tensor) and id(held) in grads:
                raise StagingError.at(
                    location, "function",
                    f"{name} reads the gradient of {grads[id(held)]} it was given (`p.grad`): "
                    "the graph holds the parameters, and their gradients, as constants: later "
                    "calls would read and update this call's gradients, not theirs",
                    f"Pass the gradients in as arguments (`{name}([p.grad for p in "
                    "model.parameters()], ...)`) and update them in place there, or compute "
                    "them in the function (`loss.backward()` before the optimizer's step, "
                    "`zero_grad()` after it)")


# NOTE [tensor subclass arguments]
# make_fx traces fake tensors, and a fake of a torch.Tensor subclass's instance is a plain
# FakeTensor (a subclass cannot be made over it either: "the raw Tensor object is already
# associated to a python object of type FakeTensor"). What the function decides on the
# argument's type (`isinstance(x, Marked)`, the subclass's own methods, a `__torch_function__`
# override) took the plain tensor's path, on the first call too, and the graph, keyed as a
# plain tensor of that shape, replayed for either (break41 s05, silently wrong). torch.compile
# guards a tensor's Python class (TENSOR_MATCH) and traces the subclass itself (or refuses it:
# "Unsupported tensor subclass attribute access" in dynamo), so there a converted function
# gets no wrong answer; torch.export's non-strict trace takes the plain path as autoconv's did
# (`isinstance` false on its fake, torch's own). So the Function refuses a subclass argument
# (nn.Parameter aside: its type is a module's bookkeeping): its signature entry equals no other
# (signature.is_traced_subclass), as is one in an argument object's field, so a call with one
# traces, and the trace refuses before it starts, naming the type and what to write instead.


def _refuse_subclass_arguments(name, signature, location) -> None:
    kind = subclass_in(signature.key)
    if kind is None:
        return
    raise StagingError.at(
        location, "function",
        f"{name} is given a tensor of the torch.Tensor subclass {kind}; autoconv traces a "
        "plain tensor in its place, so what the function decides on its type (`isinstance(x, "
        f"{kind})`, {kind}'s own methods and __torch_function__) would take a plain tensor's "
        "path, and the result would be a plain tensor",
        "Pass `x.as_subclass(torch.Tensor)` and decide on the type outside the function (or "
        f"pass a flag), or call the function without autoconv for {kind}")


def _refuse_subclass_state(name, state, tensors, location) -> None:
    """A module's parameter or buffer of a torch.Tensor subclass is a graph input made fake as
    an argument is: refused as one (NOTE [tensor subclass arguments]; break42 s05)."""
    for key, table, tensor in zip(state.names, state.tables, tensors):
        if not is_traced_subclass(tensor):
            continue
        kind, what = type(tensor).__qualname__, table[1:-1]
        raise StagingError.at(
            location, "function",
            f"{name}'s {what} {key} is a tensor of the torch.Tensor subclass {kind}; autoconv "
            f"traces a plain tensor in its place, so what the module decides on its type "
            f"(`isinstance(self.{key}, {kind})`, {kind}'s own methods and __torch_function__) "
            "would take a plain tensor's path",
            f"Register a plain tensor (`t.as_subclass(torch.Tensor)`) and decide on the type "
            f"outside the module's forward (or keep a flag), or call the module without "
            f"autoconv")


# NOTE [parameters traced as parameters]
# make_fx's fake of an nn.Parameter (an argument, or a module's parameter put in place by
# `_reparametrize_module`) is a plain FakeTensor, so `isinstance(p, nn.Parameter)` (a module
# deciding what to register, an optimizer's check) was False while tracing, and the graph, keyed
# as a plain tensor's, replayed that path for Python's other (break42 s06, silently wrong). An
# nn.Parameter argument's signature entry ends in PARAMETER (a plain tensor's graph is not
# found for it, nor its graph for a plain tensor), and its fake, as a module's parameter's, is
# marked as torch marks a Parameter of a tensor subclass (`_is_param`, which
# `nn.Parameter.__instancecheck__` reads). torch.export and torch.compile see a Parameter's
# class themselves.
def _as_parameters(fakes) -> None:
    for fake in fakes:
        if isinstance(fake, torch._subclasses.FakeTensor):  # (never the caller's tensor)
            fake._is_param = True


# NOTE [containers under two paths]
# The trace runs on the arguments rebuilt from their pytree: a dict or list the caller passes
# under two paths (`d = {"a": s, "b": s}`, `f(s, s)`) became two, and the call's objects
# another (one list appended to twice held one item, the other's `len` stayed 0: silently
# wrong). A list the call puts under a second path (`log.rows.append(log.cur)`) had no entry
# of the write plan (a walk of the objects meets each object once), so a replay left it out or
# raised an internal IndexError. So, for a graph that stores into the call's objects, which of
# their dicts, lists and tuples are one object is part of the signature (SHARED_CONTAINERS in
# signature.py, a walk of the arguments on each call of such a graph: nothing is asked of one
# that stores nothing), the trace runs on arguments shared as the caller's, and the write plan
# stores a container at each path the call put it under (`SamePlace`, `Before`). A container
# put in place of the caller's (`d["hist"] = d["hist"] + [x]`) is stored as a new one, a copy
# of the caller's with the new items, not written into the caller's, which another name may
# hold (`keep = d["hist"]` in the caller).
def _unflatten_shared(leaves, signature):
    """(args, kwargs) from `leaves`, with the containers the caller passed under two paths
    one object again (NOTE [containers under two paths])."""
    args, kwargs = pytree.tree_unflatten(leaves, signature.treespec)
    shared = shared_in(signature)
    if not shared:
        return args, kwargs
    top = [args, kwargs]
    for path, first in shared:
        value = follow(top, first)[-1]
        if follow_or_none(top, path) is not value:
            # (one the pytree kept, an object or what a partial holds, is the caller's at
            # both paths already: a partial's `args` cannot be stored, break43b s09)
            store_rebuilding(top, path, value)
    return top[0], top[1]


# NOTE [gradients bound anew]
# `p.grad = p.grad * 2` on a tensor argument (at the top level, or in a staged body: a
# rescaling under `if norm > m:`) binds a new tensor to the fake's `.grad` while tracing; the
# graph takes the caller's gradient as an input and gives back no `.grad`, so each call left
# the caller's gradient as it was, silently (tester repro compile14 item1g). Refused after the
# trace, naming the argument; an update in place (`p.grad.mul_(2)`, `p.grad.copy_(g)`) reaches
# the caller's gradient (NOTE [gradients of arguments]).
def _refuse_rebound_gradients(name, inputs, traced_grads, location) -> None:
    """Raise StagingError where the trace bound `.grad` of a tensor argument anew (`inputs`:
    the traced arguments' tensors; `traced_grads`: {index: the gradient it was given})."""
    for j, tensor in enumerate(inputs):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_leaf:
            continue
        if tensor.grad is not traced_grads.get(j):
            raise StagingError.at(
                location, "function",
                f"{name} binds `.grad` of a tensor it was given anew (`p.grad = ...`); "
                "autoconv's graph takes the caller's gradient as an input and cannot bind "
                "the caller's `.grad` to a new tensor, so the caller would keep the old one",
                "Update the gradient in place (`p.grad.mul_(2)`, `p.grad.copy_(g)`), or bind "
                "`.grad` outside the function, to a tensor it returns")


# NOTE [gradients left by the call]
# The parameters of a module or optimizer the call is given (or `self`'s) are the caller's
# tensors, and their `.grad` no path of the call's objects: a gradient the function stores
# there (`p.grad = g` of `torch.autograd.grad`, or a `loss.backward()`: NOTE [backward into
# gradients from outside] in runtime/gradients.py) is no write the graph repeats. The trace left
# its FakeTensor in the caller's `.grad` (read by the next eager step: "Cannot access data
# pointer"), and a replay stored nothing. A training step that clears them again
# (`opt.zero_grad()` after `opt.step()`) leaves each `.grad` as it found it, which replays as
# Python. One whose parameters end the call with another `.grad` than they began it is refused
# after the trace, and every `.grad` the trace changed is put back, on every outcome.
def _parameter_gradients(roots) -> list:
    """[(parameter, its .grad)] of the modules and torch.optim optimizers in the call's
    arguments and `self` (NOTE [gradients left by the call])."""
    args, kwargs, bound_self = roots
    found = {}
    with torch._C.DisableTorchFunction():  # (no real tensor through the trace's modes)
        for value in (*args, *kwargs.values(), bound_self):
            _add_parameter_gradients(value, found)
    return list(found.values())


def _add_parameter_gradients(value, found) -> None:
    if isinstance(value, torch.nn.Module):
        parameters = value.parameters()
    elif isinstance(value, torch.optim.Optimizer):
        parameters = (p for group in value.param_groups for p in group["params"])
    else:
        return
    for parameter in parameters:
        if isinstance(parameter, torch.Tensor) and not is_fake(parameter):
            found.setdefault(id(parameter), (parameter, parameter.grad))


def _refuse_gradients_left(name, held, location) -> None:
    """Raise StagingError where a parameter of `held` ([(parameter, .grad before)]) ends the
    trace with another `.grad` (NOTE [gradients left by the call])."""
    with torch._C.DisableTorchFunction():
        changed = [(parameter, grad) for parameter, grad in held if parameter.grad is not grad]
    for parameter, grad in changed:
        if parameter.grad is None and grad is not None:
            raise StagingError.at(
                location, "function",
                f"{name} clears the gradient a parameter of a module or optimizer it was given "
                "holds (`zero_grad()`, `p.grad = None`), and autoconv's graph cannot bind a "
                "parameter's `.grad` on each call",
                "Call zero_grad() outside the function, after it, or compute the gradients "
                "inside it (`loss.backward()` before the step, `zero_grad()` after it)")
        if parameter.grad is not grad:
            raise StagingError.at(
                location, "function",
                f"{name} leaves a new `.grad` in a parameter of a module or optimizer it was "
                "given (`loss.backward()`, `p.grad = g`, or `zero_grad()` of gradients it had), "
                "and autoconv's graph cannot store a parameter's `.grad` on each call",
                "Clear the gradients before the function returns (`opt.zero_grad()` after "
                "`opt.step()`), or compute them as values with torch.autograd.grad and return "
                "them")


# NOTE [undoing a trace that failed]
# A trace that raises (a StagingError for a refused store, an error in the user's code) never
# made its write plan, whose paths the undo puts back: the caller's objects kept what the
# trace stored there, values of the trace included (`log.rows` holding a FakeTensor, a counter
# bumped), and a caller that catches the error and runs on (a fallback to eager Python)
# computed with them. The places whose values differ from those before the trace, and the
# containers it added, are put back instead.
def _changed_places(roots, before, shells_before) -> list:
    """The paths under `roots` whose values the trace changed, added or removed, in walk order
    (NOTE [undoing a trace that failed]); a value still in its container, met first under
    another path now, is not (NOTE [places of values in containers])."""
    now = python_values_in(roots, shells=True)
    held_before = _places(before, shells_before)
    held_now = _places(now, {path: v for path, v in now.items() if is_shell(v)})
    out = [path for path, value in now.items()
           if (path in before and before[path] is not value)
           or (path not in before and (path not in shells_before or not is_shell(value)
                                       or shells_before[path] is not value)
               and held_before.get(_place(now, path), _NOTHING) is not value)]
    return [path for path in before if path not in now
            and held_now.get(_place(shells_before, path), _NOTHING) is not before[path]] + out


# NOTE [places of values in containers]
# A walk of the call's objects names each value by the path it meets it under first. A call
# that rebinds one path to a container (`s.cur = [x]`) where the caller's container was also
# under another (`s.rows[-1]`, the same list) makes the walk meet the old container's items
# under the other path: `s.cur[1]` was "removed" and `s.rows[1][1]` "added", though the
# caller's list holds the same items. The check for removals refused the call (a call whose
# new `cur` is shorter than the old one), and the undo of the refused trace deleted the items
# from the caller's list and then raised an internal IndexError. Both ask, for such a path,
# whether the container that held the value (then, or now) holds it at the same key: its place.
_NOTHING = object()


def _place(shells, path):
    """The place of the value at `path`: (id of the container `shells` has at the path
    before it, or None for the call's roots; the last step)."""
    if len(path) == 1:
        return None, path[-1]
    owner = shells.get(path[:-1])
    return (id(owner) if owner is not None else _NOTHING), path[-1]


def _places(values, shells) -> dict:
    """{place: value} for the {path: value} of a walk, `shells` the containers at each path
    then (`_place`)."""
    return {_place(shells, path): value for path, value in values.items()}


def _argument_objects(roots) -> list:
    """[(where, value)]: the call's argument leaves that are not tensors, named as
    object_paths.path_text names them (`args[0]`), for captures.Places (NOTE [places in
    argument objects] in captures.py)."""
    out = []
    for keys, leaf in pytree.tree_flatten_with_path(roots)[0]:
        if not isinstance(leaf, torch.Tensor) and hasattr(leaf, "__dict__"):
            out.append((("args", "kwargs")[keys[0].idx] + pytree.keystr(keys[1:]), leaf))
    return out


# NOTE [torch's C++ kernels asking a size only the graph knows]
# Some of torch's C++ kernels read their input's sizes as concrete numbers: under make_fx's
# "fake" tracing, autoconv's default, `F.pad` of the rows a mask chose (constant_pad_nd's
# kernel; nflows' rational-quadratic spline pads the cumulative widths of the inside values)
# raises torch's GuardOnDataDependentSymNode from inside FakeTensorMode's dispatch, at no line
# of the user's: no Python value was asked for (`torch.addcmul(b[rows], b[rows], x)`, which
# broadcasts the rows: torch's "SymIntArrayRef expected to contain only concrete integers",
# torchode's interpolation, tester38 s03). With the Python dispatcher on, as make_fx's
# "symbolic" tracing, torch.export and torch.compile run, torch takes its Python meta kernel
# (torch._refs), which handles the unbacked size (tester40 s06). It is off by default: it
# costs every op of a trace, and it records some ops as their decompositions (`slice` beside
# `index`), which graph passes look for as written. So a trace that fails this way is traced
# again with it on, once; a guard asked by Python code (`int(n)`, a size in a condition)
# raises as it did. A statement that cannot be staged for this error is not specialised on
# its condition either (runtime/staging/specialize.py): nflows' spline, padding inside the
# `if` whose other branch raises, was specialised on it, and its ConcreteFunction raised
# GuardFailed on inputs taking the other path; the trace is traced again instead.
#
# NOTE [inputs made fake first]
# make_fx turns its real inputs into fake tensors once its caller's torch-function modes are
# on, and `RecordGradMode` (a Python `__torch_function__`) then saw every one of the ~40 reads
# of each input's metadata that the conversion makes: 203 parameters of the seed model took
# 55 ms against 21 ms without it, a tenth of the model's first call. Made fake here, before
# that mode is on, by a fake mode built as make_fx builds its own for tracing_mode="fake"
# (make_fx takes the inputs' fake mode as its own: `detect_fake_mode`; their memo entries make
# its conversion give each back). Where another fake mode is about (a TracingContext's, one on
# the dispatch stack), make_fx's would be that one: the inputs are left real for it to
# convert, as before. (tests/test_function.py's
# test_a_modules_parameters_are_made_fake_before_the_trace_records_grad_mode)
def _fake_inputs(inputs: list) -> list:
    """`inputs` (real tensors) as fake tensors of a new fake mode, as make_fx's
    tracing_mode="fake" makes them; `inputs` themselves where make_fx would use another mode."""
    from torch._dynamo.source import ConstantSource
    from torch._functorch import config as functorch_config
    from torch._guards import detect_fake_mode
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    if not inputs or detect_fake_mode(inputs) is not None:
        return inputs
    with functorch_config.patch(fake_tensor_allow_unsafe_data_ptr_access=False):
        fake_mode = FakeTensorMode(allow_fallback_kernels=True, allow_non_fake_inputs=True,
                                   shape_env=ShapeEnv(), static_shapes=True)
    fakes = [fake_mode.from_tensor(t, source=ConstantSource(f"input{i}"))
             for i, t in enumerate(inputs)]
    for fake in fakes:  # (make_fx's conversion of them gives them back, not fakes of fakes)
        fake_mode.fake_tensor_converter.set_tensor_memo(fake, fake)
    return fakes


def _traced_again(traced, mode, plan, inputs):
    """The trace once more, its graph dropped (for an error's line: on error paths only)."""
    with tracebacks.quiet_meta_failures(), _use_lazy_graph_module(True), \
            grad_mode.RecordGradMode(), outside_writes.restoring(), specialize.tracing(plan), \
            unpatched_modules():
        make_fx(traced, tracing_mode=mode, _allow_non_fake_inputs=True)(*inputs)



def _refuse_backward_hooks(module, name) -> None:
    """Refuse a submodule's backward hooks, which the trace would drop (NOTE [backward hooks
    while tracing] in autoconv_runtime/staging/grad_mode.py)."""
    for path, sub in module.named_modules():
        if sub is not module and has_backward_hooks(sub):
            raise StagingError.at(
                _location(module), "function",
                f"{name} calls the submodule {path} ({type(sub).__name__}), which has backward "
                "hooks (register_full_backward_hook): autoconv traces on detached tensors, so "
                "the graph would compute gradients without them",
                f"Register the hook on {name}'s module itself (its hooks run around the graph), "
                "or call autoconv under torch.no_grad() where no gradient is needed")


class MadeByTheCall(StagingError):
    """The forward registered a parameter or buffer its module did not have (NOTE [module
    state made by its first call]); a Function runs that call as Python."""


# NOTE [module state made by its first call]
# A forward that registers its module's state at its first call (`if not hasattr(self,
# "scale"): self.register_buffer("scale", torch.ones_like(x))`, or a parameter so set) gave
# the module a tensor of the trace: LeakedTraceValue ("a bug in autoconv"). The parameters and
# buffers the trace added are taken away again, and the Function runs that call as plain
# Python, as the module's first call without autoconv, which makes them; the next call traces
# the module as it then is. (A plain tensor field so made, `self.scale = ...`, is refused
# after the trace: "changes it right after tracing".)
def _registered_tensors(module: torch.nn.Module) -> dict:
    """{id of a submodule: (it, the names of its parameters and buffers)}."""
    return {id(sub): (sub, frozenset((*sub._parameters, *sub._buffers)))
            for sub in module.modules()}


def _undo_fields_made(name: str, module: torch.nn.Module, before: dict) -> None:
    """Take away the parameters and buffers the forward gave `module`'s submodules and raise
    MadeByTheCall, if any (NOTE [module state made by its first call])."""
    made = [(sub, field) for key, (sub, fields) in _registered_tensors(module).items()
            for field in fields - before.get(key, (None, frozenset()))[1] if key in before]
    if not made:
        return
    for sub, field in made:
        for table in (sub._parameters, sub._buffers):
            table.pop(field, None)
        sub._non_persistent_buffers_set.discard(field)
    sub, field = made[0]
    raise MadeByTheCall(
        "function", f"{name}'s forward registers the parameter or buffer `{field}` its module "
        "did not have (made at the first call); a graph cannot make a module's state",
        "Make it in `__init__`, or call the module once before autoconv traces it (an "
        "autoconv Function runs such a call as Python)")


# NOTE [a submodule under two names]
# A module holding one submodule under two names (`self.dec = self.enc`, one layer used twice)
# names each of its parameters twice, in one table. torch's `_reparametrize_module(...,
# tie_weights=True)` swaps the trace's tensor in under both names and puts the originals back
# in the same order, so the second name's "original", the trace's tensor itself, was put back
# last: the user's module kept a FakeTensor (LeakedTraceValue at the first call). Each table
# slot is swapped once here, under its first name, which is also where a buffer the forward
# rebinds is read back (NOTE [rebound buffers]); names of other slots holding one tensor (tied
# weights) are swapped as torch's tie_weights does. The second name is a route of its own to
# the submodule: replacing it (`m.dec = nn.Linear(...)`) traces again (captures.py).
def _every_slot(module: torch.nn.Module, state: dict) -> dict:
    """`state` (first name -> the trace's tensor) with each other name of a table slot that
    holds one of its tensors added once per slot (NOTE [a submodule under two names])."""
    given = {}
    for named in (module.named_parameters, module.named_buffers):
        for name, tensor in named(remove_duplicate=False):
            given.setdefault(id(tensor), name)
    every, slots = dict(state), set()
    for named, table in ((module.named_parameters, "_parameters"),
                         (module.named_buffers, "_buffers")):
        for name, tensor in named(remove_duplicate=False):
            owner_path, _, leaf = name.rpartition(".")
            slot = (id(getattr(module.get_submodule(owner_path), table)), leaf)
            first = given.get(id(tensor))
            if slot in slots or first not in state:
                continue
            slots.add(slot)
            every.setdefault(name, state[first])
    return every


# NOTE [rebound buffers]
# `self.peak = torch.maximum(self.peak, n)` rebinds a registered buffer: nn.Module.__setattr__
# stores the new tensor in the module's `_buffers`, and every later call reads it. The trace
# runs the forward under `_reparametrize_module`, which puts the module's own tensors back on
# exit, so the store was lost and every call read the buffer's first value (silently wrong).
# The graph outputs each rebound buffer last, and every call stores it into the module's
# `_buffers` (ConcreteFunction), a rebinding as in Python (a tensor the caller kept, or one
# saved for a previous call's backward, is left as it was). The graph holds for the buffer's
# shape and dtype only (buffers are read live, not part of the signature): a forward that
# rebinds one to another shape or dtype (`torch.cat([self.seen, x])`) is refused.
# Under torch.export the converted forward turns the rebinding into an in-place copy, the
# buffer mutation the program records (targets._buffers_rebound_in_place).
def _rebound_buffers(name, state, before, after, location) -> list:
    """[(state slot index, tensor)] for the buffers the forward rebound (NOTE [rebound
    buffers]). Raises StagingError for one rebound to a non-tensor, or to another shape /
    dtype / device."""
    rebound = []
    for index, (key, old) in enumerate(zip(state.names, before)):
        new = after.get(key, old)
        if new is old or state.tables[index] != "_buffers":  # a Parameter cannot be rebound
            continue
        if not isinstance(new, torch.Tensor) or (new.shape, new.dtype, new.device) != (
                old.shape, old.dtype, old.device):
            what = (f"a tensor of shape {tuple(new.shape)} and dtype {new.dtype}"
                    if isinstance(new, torch.Tensor) else repr(new))
            raise StagingError.at(
                location, "function",
                f"{name} rebinds the buffer {key} (shape {tuple(old.shape)}, dtype "
                f"{old.dtype}) to {what}: the graph is traced for the buffer's shape and "
                "dtype, and the next call would run it on another",
                "Keep the buffer's shape and dtype (preallocate it and write into a slice), "
                f"or return the new value from {name} and keep it outside the module")
        rebound.append((index, new))
    return rebound


# NOTE [sizes Python code read]
# A symbolic trace (dynamic=True, None sizes in input_signature) leaves sizes free only while
# nothing decides on them in Python: `range(x.shape[0])` unrolls for the example's size,
# `if x.shape[0] > 3:` takes one path, `view(-1, 2)` needs an even size. torch's ShapeEnv
# records each such decision as a guard and does not check it when the graph runs, so a graph
# with guards is kept for the traced shapes only; another shape traces again (Function) or is
# refused (ConcreteFunction), never replayed on the wrong path.
def _sizes_guarded(graph_module) -> bool:
    for node in graph_module.graph.nodes:
        if node.op != "placeholder":
            break
        value = node.meta.get("val")
        shape_env = getattr(getattr(value, "fake_mode", None), "shape_env", None)
        if shape_env is not None:
            return bool(shape_env.guards)
    return False


def export(converted, args, kwargs, *, name: str, module=None,
           dynamic: bool = False, source=None) -> torch.export.ExportedProgram:
    """`converted` (the converted function, or `module`'s converted forward) as a
    `torch.export.ExportedProgram` traced non-strict on `args` / `kwargs`; with `dynamic`,
    tensor sizes are left free. `source`: the user's function or module, whose defaults,
    closure and globals must hold no value of the export after it.

    Raises what the function raises while tracing, mapped to the user's lines.
    """
    root = _Exportable(converted, module)
    dynamic_shapes = None
    if dynamic:
        auto = torch.export.Dim.AUTO
        dynamic_shapes = (tuple(
            {d: auto for d in range(a.dim())} if isinstance(a, torch.Tensor) else None
            for a in args),) if not kwargs else None
    try:
        # (NOTE [graph modules of an export made lazy]; NOTE [no value of a trace escapes])
        with trace_record.recording() as record, tracebacks.quiet_meta_failures(), \
                _use_lazy_graph_module(True):
            program = torch.export.export(root, args, kwargs or None, strict=False,
                                          dynamic_shapes=dynamic_shapes)
    except Exception as error:
        raise tracebacks.for_user(error, f"exporting {name}")  # noqa: B904
    if materialized(program.graph_module) is not program.graph_module:
        # (torch.export makes the program's own module an ordinary one; were it lazy, its
        # code is generated here, its bodies replaced above)
        _LazyGraphModule.force_recompile(program.graph_module)
    trace_leaks.check_export(name, record, program,
                             [(args, "args"), (kwargs, "kwargs"), (module, "self")],
                             source if source is not None else converted)
    return program


def materialized(graph_module):
    """`graph_module` with each lazy graph module in it (itself included) replaced by an
    ordinary one on the same graph, whose code is generated once, here."""
    for child_name, child in list(graph_module.named_children()):
        if isinstance(child, torch.fx.GraphModule):
            setattr(graph_module, child_name, materialized(child))
    if not isinstance(graph_module, _LazyGraphModule):
        return graph_module
    ordinary = torch.fx.GraphModule(graph_module, graph_module.graph,
                                    class_name=type(graph_module).__name__)
    ordinary.meta = graph_module.meta
    return ordinary



def copied(graph_module):
    """An ordinary GraphModule on a copy of `graph_module`'s graph, the GraphModules it calls
    (cond / while_loop bodies) copied so too; the tensors it holds are shared, not copied."""
    graph = copy.deepcopy(graph_module.graph)  # nodes copied, their meta shallowly
    root = {}
    for node in graph.nodes:
        if node.op in ("get_attr", "call_module"):
            value = functools.reduce(getattr, node.target.split("."), graph_module)
            root[node.target] = (copied(value) if isinstance(value, torch.fx.GraphModule)
                                 else value)
    copy_ = torch.fx.GraphModule(root, graph, class_name=type(graph_module).__name__)
    copy_.meta = dict(graph_module.meta)
    return copy_

# NOTE [graph modules of an export made lazy]
# fx's GraphModule generates and compiles its Python code whenever its graph is set or changed
# (`recompile`), and torch.export's passes over a program with nested cond / while_loop bodies
# (placeholder naming, the hop replacement, runtime assertions, unlifting) rebuild each body
# a dozen times, nearly all of it thrown away (tests/support.py, NOTE [graph modules of a
# test's export made lazy]). Under `_use_lazy_graph_module` the modules torch makes only mark
# their code stale. The program handed back has each module's code generated once from its
# final graph. A lazy module stays lazy: any later `recompile()` (the dead code elimination of
# `program.module()`'s unlifting calls it on every body) marks its code stale again, and
# Dynamo refuses to trace into a stale one (torch.compile(program.module(), fullgraph=True):
# "_LazyGraphModule._lazy_forward should not be traced"). So the bodies are handed back as
# ordinary GraphModules on the same graphs, each one's code generated once.


# NOTE [Python's random numbers while tracing]
# `random.random()` or `np.random.rand()` runs once while the graph is traced, and its number
# becomes a constant of the graph: every call would take the branch or add the noise of the
# first (silently: a RandomFlip augmentation that never flips again). torch's generators are
# ops of the graph and draw again on each call. tf.function has these trace-time semantics and
# documents them; autoconv refuses them: a trace after which Python's or numpy's global
# generator has moved is an error, and the generator is put back as it was.


# NOTE [seeding torch's generators while tracing]
# `torch.manual_seed(0)` in the traced function runs once, while tracing: Python restarts the
# stream on every call (every call draws the same noise), the graph's random ops continue it
# (silently other numbers from the second call on). The same for a `torch.Generator()` the
# function makes and seeds itself: the graph holds the one made while tracing, whose stream
# then runs on across calls. And make_fx puts a copy of any generator a random op is given
# (`generator=g`) into the graph, as it was at the trace: the graph's draws never advance the
# user's generator (an argument's, a module's). Converted code is refused at the call that
# seeds, saves or reads a generator's state (runtime/random_state.py, NOTE [generator state in
# traced code]), `with torch.random.fork_rng(): torch.manual_seed(0)` included. Code that is not
# converted (a do_not_convert helper) is caught here: a trace after which torch's default CPU
# generator has another seed or state (put back as it was), and a graph that holds a generator.
# Not detected there: a seed set and put back by code that is not converted.
# Random ops are never re-run on real tensors while tracing (specialize._value), so only
# seeding moves the generator.


# NOTE [modules first imported by a trace]: an `import` in the function runs under make_fx's
# dispatch modes, so a module imported there for the first time ran its top level in the trace:
# its tensors (torchdiffeq's Butcher tableaus, `torch.tensor([...])` in rk_common.py) were
# FakeTensors kept in the module for good, and Python's own later calls of the library raised
# torch's GuardOnDataDependentSymNode (objret50; issue 10: no value of a trace escapes it).
# A module's top level runs outside the trace's modes. Not at the `import` statement
# (`builtins.__import__`, objret50's first place): `importlib.import_module`, a package's lazy
# `__getattr__` (PEP 562, which an attribute test of the `from` list ran inside the modes)
# and `importlib.reload` reach no `__import__`, and left the module holding FakeTensors
# (break51). Every first import ends in the import system's `_load_unlocked`, and a reload in
# its `_exec`: those two run outside the modes, so an import of a module already loaded (the
# function-level imports torch's and autoconv's code make on every op) costs nothing more.
@contextlib.contextmanager
def _imports_outside_the_trace():
    bootstrap = importlib._bootstrap
    load, execute = bootstrap._load_unlocked, bootstrap._exec
    inside = []  # (the modules `_disable_current_modes` itself imports load as they are)

    def outside(run, *args):
        if inside:
            return run(*args)
        inside.append(True)
        try:
            with _disable_current_modes():
                return run(*args)
        finally:
            inside.pop()

    def loaded(spec):
        return outside(load, spec)

    def executed(spec, module):
        return outside(execute, spec, module)

    bootstrap._load_unlocked, bootstrap._exec = loaded, executed
    try:
        yield
    finally:
        bootstrap._load_unlocked, bootstrap._exec = load, execute


def _python_random_state():
    """The generators' states before a trace. torch's is moved on by one draw, put back after
    the trace (`_restore_torch_generator`): a `torch.manual_seed(s)` in the traced code then
    shows even where the caller had just seeded `s` itself, the usual script."""
    numpy = sys.modules.get("numpy")
    seed, state = torch.initial_seed(), torch.random.get_rng_state()
    torch.rand(())  # (a real draw: no tracer runs yet)
    return (random.getstate(), numpy.random.get_state() if numpy is not None else None,
            seed, state, torch.random.get_rng_state())


def _restore_torch_generator(before) -> None:
    *_, seed, state, _ = before
    if torch.initial_seed() != seed:
        torch.random.default_generator.manual_seed(seed)  # the state is set next
    torch.random.set_rng_state(state)


def _refuse_torch_seeding(before, graph_module, name, fn) -> None:
    """NOTE [seeding torch's generators while tracing]."""
    *_, seed, _, moved = before
    seeded = torch.initial_seed() != seed or not torch.equal(torch.random.get_rng_state(), moved)
    if seeded:
        problem = (f"tracing {name} seeded torch's global generator (torch.manual_seed, "
                   "torch.random.set_rng_state): that runs once, while the graph is traced, so "
                   "the graph's random ops would continue one stream across calls where Python "
                   "starts it again on each call (the same numbers every call)")
    elif _generators_in(graph_module):
        problem = (f"tracing {name} drew from a torch.Generator (`generator=`): torch's tracer "
                   "puts a copy of it, as it was then, into the graph, so the graph's draws would "
                   "neither advance your generator nor, for one the function makes and seeds, "
                   "start again on each call")
    else:
        return
    code = getattr(getattr(fn, "forward", fn), "__code__", None)
    raise StagingError.at(
        (code.co_filename, code.co_firstlineno) if code is not None else None, "function",
        problem,
        "Draw from torch's global generator (no `generator=`), seeded outside the autoconv "
        "function (before each call if every call must draw the same numbers), or draw "
        "outside the function and pass the numbers in")


def _generators_in(graph_module) -> list:
    return [v for m in graph_module.modules() for v in vars(m).values()
            if isinstance(v, torch.Generator)]


def _refuse_python_random_draws(before, name, fn) -> None:
    python_state, numpy_state, *_ = before
    moved = random.getstate() != python_state
    if numpy_state is not None:
        now = sys.modules["numpy"].random.get_state()
        moved_numpy = now[2] != numpy_state[2] or (now[1] != numpy_state[1]).any()
        if moved_numpy:
            sys.modules["numpy"].random.set_state(numpy_state)
        moved = moved or moved_numpy
    if not moved:
        return
    random.setstate(python_state)
    code = getattr(getattr(fn, "forward", fn), "__code__", None)
    raise StagingError.at(
        (code.co_filename, code.co_firstlineno) if code is not None else None, "function",
        f"tracing {name} drew numbers from Python's `random` module or numpy's global "
        "generator (random.random(), np.random.rand() ...): they run once, while the graph is "
        "traced, and their numbers would be constants of the graph, the same on every call",
        "Draw with torch instead (torch.rand(()), torch.randint, torch.bernoulli: ops of the "
        "graph, drawn again on each call), or draw outside the autoconv function and pass the "
        "number in as an argument")


def _refuse_trace_values_in_slotted(name, slotted, location) -> None:
    """StagingError, the containers put back, where the call left a value of the trace in a
    dict or list an object of a class with `__slots__` holds (NOTE [containers held by
    slotted objects] in object_paths.py)."""
    found = trace_value_in_slotted(slotted, captures.is_trace_value)
    if found is None:
        return
    put_back(slotted)
    container, key = found
    where = (f"into the field {key!r} of an object of a class declaring __slots__ "
             f"({type(container).__qualname__})" if not isinstance(container, (dict, list))
             else "into a dict, list or object held by an object of a class declaring __slots__ "
             f"(under the key {key!r})")
    raise StagingError.at(
        location, "function",
        f"{name} stores a tensor it computes {where}, which autoconv does not carry: the "
        "caller's object would keep a tensor of the trace, and no later call would store "
        "into it",
        "Change the object outside the function (return the tensor and store it in the "
        "caller), or use a class without __slots__, whose fields autoconv carries")


def _changed_objects(name, roots, before, location=None, shells_before=None) -> list:
    """[(path, tensor)] for the traced tensors the call stored into objects its caller owns
    (an argument's attribute or item, or the bound method's `self`).

    NOTE [changed arguments]: the graph returns them as extra outputs, and every call writes
    them back along the same path into that call's objects (`ConcreteFunction._write_back`),
    as Python would have changed them. A tuple's item cannot be written: refused.
    """
    changed = []
    held_before = now_shells = None
    for path, tensor in tensors_in(roots).items():
        if before.get(path) is tensor or not isinstance(tensor, torch._subclasses.FakeTensor):
            continue
        if shells_before is not None and len(path) > 1:
            # (still in its container, met first under another path: NOTE [places of values
            # in containers])
            if held_before is None:
                held_before = _places(before, shells_before)
                now_shells = {p: v for p, v in python_values_in(roots, shells=True).items()
                              if is_shell(v)}
            if held_before.get(_place(now_shells, path), _NOTHING) is tensor:
                continue
        if isinstance(follow(roots, path[:-1])[-1], tuple):
            raise StagingError.at(
                location, "function",
                f"{name} stores a traced tensor in {path_text(path)}, an item of a tuple, "
                "which autoconv cannot update on each call",
                f"Return the new value from {name} and assign it in the caller")
        changed.append((path, tensor))
    return changed


# NOTE [changed Python values]: a call may also store Python values (numbers, strings, None)
# into its arguments' dicts and lists, or append to a list argument. Where every step of the
# path is an item of a dict / list / tuple from an argument, the old value and the container's
# keys are part of the traced signature, so the call stores the same value on every call with
# that signature: the ConcreteFunction repeats the store (the next call, with the new value,
# has another signature and traces again, as Python would compute it anew). A Python value set
# on an object's attribute (`self.calls += 1`) is not in the signature: the graph could not
# repeat it, so it is refused, as is an item removed from an argument's dict or list.


def _location(fn):
    """(file, first line) of the user's function, for errors about the whole call."""
    if isinstance(fn, torch.nn.Module):
        fn = type(fn).forward
    while isinstance(fn, functools.partial) or hasattr(fn, "__wrapped__"):
        # a bound method or a module's converted forward, a wrapper around one
        fn = fn.func if isinstance(fn, functools.partial) else fn.__wrapped__
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code is not None else None


# NOTE [containers a call adds to its objects]
# `log.rows.append({"loss": loss, "step": log.count})` puts a new dict into an argument's list.
# The write plan held only the leaves under it (`rows[1]["loss"]`), whose stores need the dict
# to be there, and the trace's undo removed the leaves but left the dict, empty, in the list:
# a replay then filled the trace's leftover, and a call traced more than once (a trace taken
# again to read changed tensors, `get_concrete_function`, a retrace after a guard failed) left
# one empty dict per trace in the caller's list (`[row0, {}, row1]`, silently). A dict, list or
# plain object the call made and stored is an entry of the plan of its own (a `NewShell`,
# before what it holds): each replay stores a fresh empty one, then its leaves, and the undo
# removes it. A new tuple of Python values is stored whole (it cannot be filled).
class NewShell:
    """A write-plan entry: store a fresh copy of `template` (an empty dict, list or object of
    the kind the call made), which the entries after it fill."""

    def __init__(self, template):
        self.template = template

    def make(self):
        return copy.copy(self.template)


def _new_shell(name, path, value, shell_ids, location):
    """The plan entry of a container or object the call made and stored at `path` (NOTE
    [containers a call adds to its objects]): (NewShell or the tuple itself, whether its items
    are written by entries of their own)."""
    if isinstance(value, tuple):
        if not _python_only(value):
            raise StagingError.at(
                location, "function",
                f"{name} stores a new tuple holding tensors or objects in {path_text(path)}, "
                "which autoconv cannot rebuild on each call",
                f"Store a list or a dict there instead, or return the values from {name} and "
                "store them in the caller")
        return value, False
    # What the entries after it store is a placeholder in the template (a value of the trace,
    # a container made by the call); the rest is kept as it is: Python values (an entry
    # stores them only where they changed), tensors from outside the call and containers the
    # caller had (`hist = hist + [loss]` keeps the earlier items, the very objects)
    if isinstance(value, list):
        template = copy.copy(value)
        template[:] = [None if _made(item, shell_ids) else item for item in value]
        return NewShell(template), True
    if isinstance(value, dict):
        template = table = copy.copy(value)
    else:
        # (made without its `__init__` or `__copy__`, neither of which may touch the object
        # the trace made; an object of another kind, an enum member, is left as before)
        cls = type(value)
        if not _new_object(value):
            return None, True
        template = object.__new__(cls)
        table = vars(template)
        table.update(vars(value))
    for key, item in list(table.items()):
        if _made(item, shell_ids):
            table[key] = None
    return NewShell(template), True


def _made(item, shell_ids) -> bool:
    """Whether a value in a container the call made is a value of the trace, or a container
    or object: stored by a plan entry of its own (a NewShell, or the caller's container found
    where it is on each call: NOTE [containers under two paths])."""
    return captures.is_trace_value(item) or is_shell(item)


def _new_object(value) -> bool:
    """Whether `value` is a plain object a plan entry can make anew (`_new_shell`)."""
    return (type(value).__new__ is object.__new__ and not isinstance(value, enum.Enum)
            and isinstance(getattr(value, "__dict__", None), dict))


def _held_at(shells_before, value):
    """The first path under which the call's objects held `value` before the call."""
    return next(path for path, held in shells_before.items() if held is value)


class Before:
    """A write-plan entry: store the container or object the call's objects held at `path`
    before the call (read before any entry is stored: NOTE [containers under two paths])."""

    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path


class CopyOf(Before):
    """A write-plan entry: store a shallow copy of what `path` held before the call, with the
    keys the call's container has (`keys`: a list's length, a dict's keys, an object's
    fields): the items it dropped (`s.cur = [x]` in place of a longer list) are not kept."""

    __slots__ = ("keys",)

    def __init__(self, path, keys):
        super().__init__(path)
        self.keys = keys

    def make(self, held):
        if isinstance(held, list):
            return held[:self.keys]  # (items past it: the entries after this one append them)
        if isinstance(held, dict):
            return {k: v for k, v in held.items() if k in self.keys}
        made = object.__new__(type(held))  # (as `_new_shell` makes one: no `__init__`)
        vars(made).update((k, v) for k, v in vars(held).items() if k in self.keys)
        return made


# NOTE [a grown list written back]
# A list of a count only the graph knows (a StagedList: the field `pid.errs` of the caller's
# controller, filled on a peeled loop's first trip, NOTE [a loop's first trip peeled] in
# runtime/staging/peeling.py) left in the call's objects was planned as a new plain object:
# each call stored a StagedList of the graph's buffer and count where Python holds a list.
# It is an entry of its own: the graph returns the buffer and the count, and each call stores
# the list of the first `count` rows, Python numbers where the list held numbers (a field
# stays a number, NOTE [numbers stored into argument objects]), tensors otherwise. A new
# list, as Python's `pid.errs = [...]` makes (the peel refuses a caller's list grown in place),
# but where it is empty and the place held an empty list: the caller's, as Python leaves it
# on a path that ran no trip (a first trip that binds `[]` keeps it too: equal, not new).
class GrownList:
    """A write-plan entry: store the list of the next two changed tensors, a buffer and its
    count (NOTE [a grown list written back])."""

    __slots__ = ("numbers",)

    def __init__(self, numbers: bool):
        self.numbers = numbers

    def make(self, buffer, count, held):
        """The list to store; `held`: what the place holds before the store."""
        rows = buffer[:int(count)]
        if not len(rows) and type(held) is list and not held:
            return held  # (the call left the caller's empty list as it was)
        return rows.tolist() if self.numbers else list(rows.unbind(0))


class SamePlace:
    """A write-plan entry: store what an earlier entry stored at `path` (the call put one new
    container under two paths)."""

    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path


def _python_only(value) -> bool:
    if isinstance(value, tuple):  # (a list in it would be one object shared by every call)
        return all(_python_only(item) for item in value)
    return isinstance(value, PYTHON_VALUES)


def _write_plan(name, roots, values_before, shells_before, changed, location) -> tuple:
    """([(path, what)], outputs): what each call stores into its objects, in the order Python
    stored it (a list's items in order), for `ConcreteFunction._write_back`: GRAPH_OUTPUT (the
    next changed tensor), a PythonOutput (the next changed tensor's number: NOTE [numbers
    stored into argument objects]), a NewShell (NOTE [containers a call adds to its objects])
    or a Python value; a Before, CopyOf or SamePlace (NOTE [containers under two paths]).
    `changed`: [(path, traced tensor)]; `shells_before`: {path: object} of the containers and
    objects the call's objects held before it, under each path. `outputs`: [(path, traced
    tensor)] that the graph returns for the plan's GRAPH_OUTPUT and PythonOutput entries, in
    their order: `changed`'s, and a 0-d tensor of each symbolic number the call stored (NOTE
    [numbers read from tensors stored into argument objects])."""
    after = python_values_in(roots)
    for path, value in after.items():
        if type(value) is TracedText:  # NOTE [text stored into the call's objects]
            value.refuse_stored(path_text(path))
    for path in python_values_in(roots, shells=True):
        for i, (kind, key) in enumerate(path):
            if kind == "item" and isinstance(key, torch.Tensor) and captures.is_trace_value(key):
                # (an argument tensor is the trace's own in the trace: the caller's dict kept
                # it as a key, a FakeTensor, and each call added an entry; tester34 s04)
                raise StagingError.at(
                    location, "function",
                    f"{name} stores into a dict under a key that is a tensor of the trace (a "
                    f"tensor argument, or one computed from it), in {path_text(path[:i])}; "
                    "the caller's dict would be left holding the trace's tensor as its key, "
                    "and each call would look its entry up under the caller's tensor in vain",
                    "Key the dict by a Python value (the parameter's index, "
                    "`enumerate(params)`), or by a parameter of a module")
    gone = [path for path in values_before if path not in after]
    if gone:  # NOTE [places of values in containers]
        now = python_values_in(roots, shells=True)
        shells_now = {path: v for path, v in now.items() if is_shell(v)}
        held_now = _places(now, shells_now)
        reached = {id(v) for v in shells_now.values()}
        # (a container the call rebound, not reached any more, lost nothing: `CopyOf` keeps
        # the keys of the new one)
        gone = [path for path in gone if _place(shells_before, path) not in held_now
                and (len(path) == 1 or id(shells_before.get(path[:-1])) in reached)]
    if gone:
        raise StagingError.at(
            location, "function", f"{name} removes {path_text(gone[0])} from an object its caller passed, "
            "which autoconv cannot repeat on each call",
            f"Return what {name} computes and change the object in the caller")
    changed = dict(changed)
    shell_ids = {id(v) for v in shells_before.values()}
    plan = []
    outputs = []
    whole = []  # the paths of new tuples stored whole: their items have no entries
    for path, value in python_values_in(roots, repeats=True).items():
        if any(path[:len(w)] == w for w in whole):
            continue
        if type(value) is Repeat:  # NOTE [containers under two paths]
            held = follow(roots, value.first)[-1]
            if shells_before.get(path) is not held:
                plan.append((path, Before(_held_at(shells_before, held)) if id(held) in shell_ids
                             else SamePlace(value.first)))
            continue
        if type(value) is StagedList:  # NOTE [a grown list written back]
            parts = [(*path, ("attr", "buffer")), (*path, ("attr", "count"))]
            if all(part in changed for part in parts) and keyed_path(roots, path):
                plan.append((path, GrownList(value.numbers)))
                outputs.extend((part, changed[part]) for part in parts)
                whole.append(path)
                continue
        if is_shell(value):
            held = shells_before.get(path)
            if held is value:
                continue
            if id(value) in shell_ids:  # the caller's, put under another path
                plan.append((path, Before(_held_at(shells_before, value))))
                continue
            if (held is not None and type(held) is type(value) and not isinstance(value, tuple)
                    and (isinstance(value, (list, dict)) or _new_object(value))):
                # made in place of the caller's (`d["hist"] = d["hist"] + [x]`): a copy of the
                # caller's, whose items the entries after it change, the old items kept
                plan.append((path, CopyOf(path, len(value) if isinstance(value, list) else
                                          frozenset(value if isinstance(value, dict)
                                                    else vars(value)))))
                continue
            if not keyed_path(roots, path):
                raise StagingError.at(
                    location, "function",
                    f"{name} stores a new {type(value).__name__} in {path_text(path)}; the "
                    "graph cannot repeat that on each call, because that place's Python values "
                    "are not part of the traced signature (a bound method's self, a module, or "
                    "an object more than three levels down)",
                    f"Return it from {name} and store it in the caller")
            entry, filled = _new_shell(name, path, value, shell_ids, location)
            if entry is None:
                continue
            plan.append((path, entry))
            if not filled:
                whole.append(path)
            continue
        if path in changed:
            plan.append((path, _stored_number(roots, path, changed[path]) or GRAPH_OUTPUT))
            outputs.append((path, changed[path]))
            continue
        if type(value) in _SYMBOLIC and _written_back(roots, path):
            # NOTE [numbers read from tensors stored into argument objects]; the bound self's
            # (a module's) fields are guarded by value where read (NOTE [a number read from a
            # tensor stored into the module])
            kind, dtype = _SYMBOLIC[type(value)]
            plan.append((path, kind))
            outputs.append((path, torch.ops.aten.scalar_tensor.default(value, dtype=dtype)))
            continue
        if isinstance(value, torch.Tensor) or (
                path in values_before and type(values_before[path]) is type(value)
                and values_before[path] == value):
            continue
        if type(value) in _PLAIN_CONSTANTS and path[0] == ("item", 2):
            # NOTE [a constant stored into the module]
            plan.append((path, value))
            continue
        if not keyed_path(roots, path):
            old = f"{values_before[path]!r}" if path in values_before else "nothing"
            # (a symbol's name, `zuf3`, says nothing to the user)
            what = ("a number read from a traced tensor (`.item()`, `float(t)`)"
                    if type(value) in _SYMBOLIC else f"the Python value {value!r}")
            raise StagingError.at(
                location, "function", f"{name} sets {path_text(path)}, an attribute, to {what} "
                f"(it held {old}); the graph cannot repeat that on each call, because "
                "that attribute's Python values are not part of the traced signature (a "
                "bound method's self, a module, or an object more than three levels down)",
                f"Hold it in a tensor (a module buffer), or change it outside {name}")
        plan.append((path, value))
    return plan, outputs


_KINDS = {"bool": bool, "int": int, "float": float, "complex": complex}
_PLAIN_CONSTANTS = (bool, int, float, complex, str, type(None))


def _written_back(roots, path) -> bool:
    """Whether a number the call stores at `path` is written back on each call: the signature
    keys the place, or it is the bound self's (NOTE [a number read from a tensor stored into
    the module])."""
    return keyed_path(roots, path) or path[0] == ("item", 2)


def _stored_number(roots, path, tensor):
    """PythonOutput(kind) where the traced `tensor` the call stored at `path` stands in for a
    Python number on every path (NOTE [numbers stored into argument objects]), else None."""
    if (getattr(tensor, PYTHON_BOOL, False) is True and tensor.dim() == 0
            and tensor.dtype == torch.bool and _written_back(roots, path)):
        # (NOTE [bool() of a traced tensor stored into argument objects] in runtime/builtins.py)
        return PythonOutput(bool)
    if not (augmented.is_stand_in(tensor) and tensor.dim() == 0
            and augmented.mixed_in(tensor) is None and augmented.types_in(tensor) is None
            and augmented.kinds_in(tensor) is None and _written_back(roots, path)):
        return None
    return PythonOutput(_KINDS[augmented.kind_of(tensor)])


# NOTE [numbers stored into argument objects]
# A Python number in an argument object's field that a staged statement changes
# (`tracker.bad = 0` / `tracker.bad += 1` under a tensor `if`) leaves the statement as a
# 0-d tensor standing in for the number (NOTE [number stand-ins] in runtime/augmented.py).
# Written back as that tensor, the field became a tensor the call also returned: the next
# call's `tracker.bad += 1` then updated it in place, as Python updates a tensor, and changed
# the count the caller kept from the call before (tester30 s03: [0, 1, 2, 2] where Python
# keeps [0, 0, 1, 2]), and a learning rate scaled in a scheduler object read the last rate for
# every step kept. Where the signature holds the field (NOTE [fields of argument objects] in
# signature.py), each call writes back the Python number the graph computed (`.item()`: one
# read of a 0-d tensor), so the field stays a number, as in Python, and the next call, with
# another number there, traces anew. The function's own return of it stays a 0-d tensor
# (README: numbers a staged statement carries).
#
# NOTE [text stored into the call's objects]
# Text made from a traced tensor (`o.name = str(int(t))`, `d["tag"] = f"step{int(t)}"`) is a
# TracedText while tracing (NOTE [text of traced tensors] in runtime/text.py), whose content
# only the graph's run knows, and a graph computes no text. Stored into an argument object or
# dict, the walk of the call's objects did not take it for a value: a new field kept the
# TracedText object itself on every call, a new dict item was left out (the caller's dict
# stayed empty), and a field that held a number was refused as "removed" (break45 s04). It is
# refused where the text was made, as a returned text is.
#
# NOTE [numbers read from tensors stored into argument objects]
# A number the call reads from a traced tensor (`.item()`, `float(t)`) is a SymFloat / SymInt /
# SymBool of the trace, and so is Python arithmetic on it. Stored into an argument object's
# field (pyro's `WarmupAdapter.step` sets `self.step_size = math.exp(log_step_size)` of
# `accept_prob.item()`), it was planned as a Python value: each replay stored the trace's own
# symbol there, which the caller's object kept after the call (`float()` of it: "'NoneType'
# object has no attribute 'guard_float'", and the next call's trace died in torch's sympy code
# reading it; tester44 s01). Where the signature holds the field, it is stored as the function's
# own returned symbolic number is: the graph outputs it as a 0-d tensor and each call stores
# the Python number (`PythonOutput`), as Python stores the number it computed; the next call,
# with that number in the field, traces again.
#
# NOTE [a number read from a tensor stored into the module]
# The same store into the bound self (the autoconv'd module, a method's object: `self._k_max =
# int(k.max())` in torch-kmeans' `_check_k`) is written back as that Python number on each
# call too. The signature does not key the field, but the trace's guards do where the code
# reads it (NOTE [captured Python values] in captures.py: a module's attributes by value):
# a call that finds another number there traces again, as a keyed field's does. Before, the
# store was refused; under a `_` name it was not seen at all and the module kept the trace's
# SymInt (NOTE [a module's own fields named with `_`] in object_paths.py).
#
# NOTE [a constant stored into the module]
# A Python number, bool, string or None the call stores into the bound self is a constant of
# the trace: made of constants and of what the trace read, each place of which its guards
# hold (the module's fields by value where read: NOTE [captured Python values]), so storing it
# on each call the graph replays is what Python does there. It was refused as a store the
# signature does not key: `s._m = s._n; s._n = int(x.sum())` traced right once (`_m` kept its
# 0) and was refused on the second call, whose trace (another `_n`, a guard failed) stored
# the `_n` it read, 3 where `_m` held 0.


class _Exportable(torch.nn.Module):
    """The module torch.export traces: calls the converted function (or converted forward)."""

    def __init__(self, converted, module: torch.nn.Module | None):
        super().__init__()
        self.fn = converted
        if module is not None:  # registered, so its parameters and buffers are the program's
            self.module = module

    def forward(self, *args, **kwargs):
        trace_record.note_fake_mode()  # (NOTE [no value of a trace escapes])
        if getattr(self, "module", None) is not None:
            return _with_converted_forward(self.module, self.fn, self.module)(*args, **kwargs)
        return self.fn(*args, **kwargs)


def _with_converted_forward(module, converted, flat_function):
    def traced(*args, **kwargs):
        # converted_submodules: reached from torch's forward (nn.Sequential)
        with targets.forward_replaced(module, converted), converted_submodules(module):
            return flat_function(*args, **kwargs)

    return traced
