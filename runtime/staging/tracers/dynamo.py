"""Dynamo (torch.compile, strict torch.export): dynamo takes the torch operators themselves."""

from __future__ import annotations

import builtins
import functools
import math
import types

import torch
from torch._higher_order_ops.cond import cond_op
from torch._higher_order_ops.while_loop import while_loop_op

from ..registry import StagingTracer
from .zero_trips import guarded_while_loop, needs_zero_trip_guard

# The attribute a staged for loop's body sets on its item under dynamo where the converter did
# not mark the item updated (NOTE [loop items updated by a call] in operators.py).
UNMARKED_ITEM = "_autoconv_unmarked_item"
# ... and on an item whose row the loop writes back (NOTE [loop items given to calls] in
# autoconv/converters/control_flow.py)
WRITTEN_ITEM = "_autoconv_written_item"


class DynamoTracer(StagingTracer):
    """Under dynamo every tensor is staged and `torch.cond` / `while_loop` are dynamo's to trace.

    `is_dynamo_compiling()` is a constant True for dynamo, which traces this runtime too, so the
    registry's question folds here, first.
    """

    name = "dynamo"
    bodies_under_dynamo = True

    def is_staged(self, value) -> bool:
        return torch.compiler.is_dynamo_compiling() and isinstance(value, torch.Tensor)

    def is_tracing(self) -> bool:
        return torch.compiler.is_dynamo_compiling()

    def cond(self, pred, true_fn, false_fn, operands):
        # Dynamo lifts a branch's operands the way it lifts closure reads, naming each input
        # after the value's node in the graph it came from; values of two enclosing graphs can
        # share a name, and torch 2.13 then generates a branch with a duplicate argument. Copies
        # made here are nodes of one graph, with distinct names.
        # (a symbolic int operand, `t.item()` read by a branch, goes in as it is)
        operands = tuple(operand.clone() if isinstance(operand, torch.Tensor) else operand
                         for operand in operands)
        # (the operator torch.cond calls under dynamo, called here: torch.cond's own frame
        # would be one more level of dynamo's inlining per nested statement, NOTE [nesting
        # under dynamo] in runtime/operators.py)
        return cond_op(pred, true_fn, false_fn, operands)

    def while_loop(self, cond_fn, body_fn, carried, additional):
        # Dynamo takes the operator itself, and read-only operands as such: reached by closure
        # instead, they are named after the enclosing bodies' nodes, and nested loops then gave
        # two of a body's inputs one name.
        # A body may still reach one of them by closure too (a nested helper reading `Mr`, as
        # POT's `sinkhorn_log` does): dynamo lifts that read as a second input of the same
        # tensor and refuses the loop ("Input-to-input aliasing"). Copies, made once per loop
        # and not per trip, are tensors of their own.
        additional = tuple(value.clone() if isinstance(value, torch.Tensor) else value
                           for value in additional)
        if needs_zero_trip_guard(carried, additional):
            return guarded_while_loop(lambda c, a: while_loop_op(cond_fn, body_fn, c, a),
                                      cond_fn, carried, additional)
        return while_loop_op(cond_fn, body_fn, carried, additional)


# NOTE [dynamo loses attribute stores]
# torch 2.13's dynamo dropped `obj.v = t` on an object made in the compiled frame once a
# torch.cond / while_loop had been traced after the object was made: the store and every later
# read of the attribute saw the object as it was before the operator, silently (with torch's
# operators alone, no autoconv). The cause: an object's `__dict__` tracker
# (`SideEffectsProxyDict`) keeps the side-effects table that was current when it was made, and
# tracing an operator's bodies replaces the frame's table with a copy taken before them (its
# bodies' side effects are undone that way); the object's later stores went into the table that
# was thrown away. `install_side_effects_fix` makes the tracker read the frame's current table.
# It is applied once, where converted code may meet dynamo (`autoconv.convert`), to torch
# versions whose tracker keeps the table (`tests/reference/test_state.py` fails where torch
# changes it).
def install_side_effects_fix() -> bool:
    """Make dynamo's `__dict__` trackers read the current side-effects table (see NOTE
    [dynamo loses attribute stores]); True where it is in place."""
    try:
        from torch._dynamo.symbolic_convert import InstructionTranslator
        from torch._dynamo.variables.dicts import SideEffectsProxyDict
    except ImportError:  # torch's internals moved: nothing to fix in this form
        return False
    current = SideEffectsProxyDict.__dict__.get("side_effects")
    if isinstance(current, property):
        return True
    if "side_effects" not in SideEffectsProxyDict.__init__.__code__.co_names:
        return False

    def side_effects(self):
        tx = InstructionTranslator.current_tx()
        return tx.output.side_effects if tx is not None else self.__dict__["side_effects"]

    def keep(self, table):  # (the tracker's own assignment in __init__)
        self.__dict__["side_effects"] = table

    SideEffectsProxyDict.side_effects = property(side_effects, keep)
    return True


# NOTE [lifted inputs named as an operand]
# A while_loop's (or cond's) bodies that both read one tensor of the enclosing graph by closure
# (a field of an object the loop reads, `x != s.v` in the test and `s.v` in the body) get it as
# a shared lifted input, which torch 2.13's dynamo adds to each body graph as a placeholder
# whose target is that tensor's node name (`_merge_graph_inputs`). An operand's placeholder may
# already have that target (dynamo names those after the operands' nodes too, and values
# flattened by pytree are all named `child`, `child_1`, ...): FX then generated the body with
# two parameters of one name, "SyntaxError: duplicate argument 'child' in function
# definition" (fuzz seed 25, program 150: the loop's carried return value was that field's
# tensor, also read by closure). The placeholders are positional, so `install_merged_inputs_fix` gives such a
# duplicate its node's own (unique) name as its target.
def install_merged_inputs_fix() -> bool:
    """Give the placeholders of the body graphs dynamo merges distinct targets (see NOTE
    [lifted inputs named as an operand]); True where it is in place."""
    try:
        from torch._dynamo.variables import higher_order_ops
    except ImportError:
        return False
    merge = getattr(higher_order_ops, "_merge_graph_inputs", None)
    if merge is None:  # torch's internals moved: nothing to fix in this form
        return False
    if getattr(merge, "_autoconv_distinct_targets", False):
        return True

    @functools.wraps(merge)
    def merged(*args, **kwargs):
        out = merge(*args, **kwargs)
        for graph in out[:2]:
            if isinstance(graph, torch.fx.Graph):
                _distinct_placeholder_targets(graph)
        return out

    merged._autoconv_distinct_targets = True
    higher_order_ops._merge_graph_inputs = merged
    return True


def _distinct_placeholder_targets(graph) -> None:
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    taken = set()
    for node in placeholders:
        if node.target in taken:
            target = node.name
            while target in taken or any(other.target == target for other in placeholders
                                         if other is not node):
                target += "_"
            node.target = target
        taken.add(node.target)


# NOTE [builtins replaced while torch.export runs]
# Non-strict torch.export replaces `builtins.max`, `builtins.min` and `math.pow` while it traces
# (`_override_builtin_ops`: partials that also take tensors). Dynamo decides which builtins it
# may run on constants from a set it builds once and keeps (`BuiltinVariable.
# _constant_fold_functions`, a `functools.cache`), reading `max` and `min` from the builtins when
# it builds it. Where dynamo first runs during an export (a library's own torch.cond or
# while_loop: kornia's canny), the set holds the partials and never the real builtins, so every
# later torch.compile in the process failed on `max(eps, 0.0, key=None)` ("invalid call to
# builtin op handler", tester t14 repro 19; with torch and kornia alone where the call has a
# keyword). `install_constant_fold_fix` keeps the real builtins, taken when the runtime is
# imported, in the set whenever it is built.
_REAL_BUILTINS = tuple(fn for fn in (builtins.max, builtins.min, math.pow)
                       if type(fn) is types.BuiltinFunctionType)


def install_constant_fold_fix() -> bool:
    """Make dynamo's set of constant-foldable builtins hold the real `max`, `min` and
    `math.pow` (see NOTE [builtins replaced while torch.export runs]); True where it does."""
    try:
        from torch._dynamo.variables.builtin import BuiltinVariable
    except ImportError:
        return False
    current = BuiltinVariable.__dict__.get("_constant_fold_functions")
    built = getattr(current, "__func__", None)
    if getattr(built, "_autoconv_keeps_builtins", False):
        return True
    built = getattr(built, "__wrapped__", None)  # (torch's function, under its cache)
    if built is None:  # torch's internals moved: nothing to fix in this form
        return False

    @functools.cache
    def constant_fold_functions():
        return built() | set(_REAL_BUILTINS)

    constant_fold_functions._autoconv_keeps_builtins = True
    BuiltinVariable._constant_fold_functions = staticmethod(constant_fold_functions)
    return True


# NOTE [a defaultdict's factory in an operator's body]
# `st = self.state[0]` of a defaultdict from outside a torch.cond / while_loop body, missing the
# key, gives the dict a key by its factory: a change of an object from outside the body, which
# dynamo refuses for a dict ("HOP: Unsafe side effect"). torch 2.13's dynamo misses it for a
# defaultdict: `DefaultDictVariable._missing_impl` stores into the dict's inner table, made as a
# new object, and where a check there raises, `BuiltinVariable`'s getitem handler takes the
# error for one a constant fold handles and folds `D[0]` on a copy of the dict. Either way the
# key was lost after the call, silently (silent36 s01; torch's operators alone, no autoconv, do
# the same). `install_defaultdict_fix` refuses such a lookup in a body where dynamo refuses a
# dict's change, with autoconv's StagingError at the user's line (not a dynamo error, which the
# fold would swallow); a defaultdict made in the body, or the frame's own, is as before.
def install_defaultdict_fix() -> bool:
    """Refuse a defaultdict from outside an operator's body given a key by its factory there
    (see NOTE [a defaultdict's factory in an operator's body]); True where it is in place."""
    try:
        from torch._dynamo.variables.base import is_side_effect_safe
        from torch._dynamo.variables.user_defined import DefaultDictVariable
    except ImportError:  # torch's internals moved: nothing to fix in this form
        return False
    missing = DefaultDictVariable.__dict__.get("_missing_impl")
    if missing is None or getattr(missing, "_autoconv_refuses", False):
        return missing is not None

    def _missing_impl(self, tx, key):
        effects = tx.output.side_effects
        if not (effects.should_allow_externally_visible_side_effects_in_subtracer()
                or effects.should_allow_side_effects_in_hop()
                or is_side_effect_safe(self.mutation_type)):
            from ...errors import _raise_under_dynamo

            _raise_under_dynamo(
                "statement", "a defaultdict from outside the staged statement's body is "
                "given a key by its factory there (a lookup of a missing key): under "
                "torch.compile torch's dynamo loses that key after the call (its own "
                "limitation, with torch.cond / while_loop alone too)",
                "Return the value and store it into the dict in the caller, or give the dict "
                "its keys before the compiled function runs")
        return missing(self, tx, key)

    _missing_impl._autoconv_refuses = True
    DefaultDictVariable._missing_impl = _missing_impl
    return True


# NOTE [storages compared under dynamo]
# A staged statement refuses two tensors it updates in place that share memory, and a view it
# reads of one it updates (NOTE [two updated tensors that share memory] in
# runtime/operators.py). Under dynamo the runtime is traced, and torch 2.13's dynamo gives
# `t.untyped_storage()` as a tracker of the fake storage but cannot compare two of them ("Failed
# to trace builtin operator" for `is`); the runtime compared `_base` instead, which memory
# shared without a view relation does not have: `u = t.detach()`, then `t.add_(1); u.mul_(2)`
# in a staged `if` gave t = [2, 4, 6, 8] for Python's [4, 6, 8, 10] under torch.compile,
# silently (break47 s03). `install_storage_identity_fix` lets `is` compare two such trackers by
# their fake storages, which fake tensors share exactly where the real ones do (views,
# `.detach()`, `.data`, and inputs that alias). Like every value dynamo folds, the answer for
# two inputs of the compiled function is not guarded (a later call whose inputs alias
# differently replays it), as `_base` was not. Under torch.func's transforms a tensor is a
# wrapper without storage, and dynamo's `untyped_storage()` failed inside dynamo
# ("InternalTorchDynamoError: Cannot access storage of BatchedTensorImpl"); there it gives the
# storage of the tensor the wrapper holds, as the runtime's `_storage_of` does outside dynamo.
def install_storage_identity_fix() -> bool:
    """Let dynamo answer `a.untyped_storage() is b.untyped_storage()` from the fake storages
    (see NOTE [storages compared under dynamo]); True where it is in place."""
    try:
        from torch._C import _functorch
        from torch._dynamo.variables.tensor import TensorVariable, UntypedStorageVariable
    except ImportError:  # torch's internals moved: nothing to fix in this form
        return False
    storage_of = TensorVariable.__dict__.get("method_untyped_storage")
    if "get_real_python_backed_value" not in UntypedStorageVariable.__dict__ \
            and storage_of is not None:
        def get_real_python_backed_value(self):
            return self.example_value  # (only `is` reads it: NOTE [storages compared ...])

        def method_untyped_storage(self, tx):
            value = self.as_proxy().node.meta.get("example_value")
            if not (isinstance(value, torch.Tensor)
                    and _functorch.is_functorch_wrapped_tensor(value)):
                return storage_of(self, tx)
            while _functorch.is_functorch_wrapped_tensor(value):
                value = _functorch.get_unwrapped(value)
            return UntypedStorageVariable(self, value.untyped_storage())

        get_real_python_backed_value._autoconv_storage = True
        UntypedStorageVariable.get_real_python_backed_value = get_real_python_backed_value
        TensorVariable.method_untyped_storage = method_untyped_storage
    _storage_identity[0] = getattr(UntypedStorageVariable.get_real_python_backed_value,
                                   "_autoconv_storage", False)
    return _storage_identity[0]


def storages_compared() -> bool:
    """Whether `install_storage_identity_fix` is in place."""
    return _storage_identity[0]


storages_compared._dynamo_marked_constant = True  # (dynamo calls it rather than tracing it)
_storage_identity = [False]


# NOTE [versions of a probe's copies under dynamo]
# Which tensors of a carried object a staged body updates in place is known outside dynamo by
# their version counters (NOTE [tensors of objects updated in place] in objects.py). Under
# dynamo, `t._version` is traced as torch's `_tensor_version`, an unbacked symbol: a Python
# `!=` of two of them is "Could not guard on data-dependent expression". The probe's run of the
# bodies (NOTE [dynamo and tensors of objects]) updates copies of its own, made in the graph,
# whose fake tensors dynamo updates in place as it traces: `install_fake_version_fix` gives
# `t._autoconv_fake_version`, that fake tensor's version as a Python int (what dynamo itself
# reads to see an in-place op). Read only of the probe's own copies: a version is no value of
# the caller's, nothing to guard.
def install_fake_version_fix() -> bool:
    """Let dynamo read `t._autoconv_fake_version` as the version of the fake tensor it traces
    `t` as (see NOTE [versions of a probe's copies under dynamo]); True where it is in place."""
    try:
        from torch._dynamo.variables.constant import ConstantVariable
        from torch._dynamo.variables.tensor import TensorVariable
    except ImportError:  # torch's internals moved: nothing to read in this form
        return False
    if "_get_fake_version" not in TensorVariable.__dict__:
        return False
    if "method_attr__autoconv_fake_version" not in TensorVariable.__dict__:
        def method_attr__autoconv_fake_version(self, tx):
            return ConstantVariable.create(self._get_fake_version())

        TensorVariable.method_attr__autoconv_fake_version = method_attr__autoconv_fake_version
    _fake_versions[0] = True
    return True


def fake_version(tensor):
    """Under dynamo, the version of the fake tensor `tensor` is traced as (a Python int); None
    where `install_fake_version_fix` is not in place (NOTE [versions of a probe's copies under
    dynamo])."""
    return tensor._autoconv_fake_version if fake_versions_known() else None


def fake_versions_known() -> bool:
    """Whether `install_fake_version_fix` is in place."""
    return _fake_versions[0]


fake_versions_known._dynamo_marked_constant = True  # (dynamo calls it rather than tracing it)
_fake_versions = [False]
