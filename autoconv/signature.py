"""Input signatures: the cache key of a traced graph, cheap to compute on every call."""

from __future__ import annotations

from dataclasses import dataclass

import collections
import enum
import logging
import math
import sys
import types

import torch
from torch.utils import _pytree as pytree

from autoconv_runtime.staging.tensor_reads import state_of as tensor_state_of

from .object_paths import shared_containers

__all__ = ["ALIASED", "SAME_TENSOR", "TENSOR_STATE", "TensorSpec", "Signature", "aliased_leaves",
           "grad_key",
           "changing_fields", "keyed_path", "with_aliasing", "with_tensor_state",
           "signature_of"]


@dataclass(frozen=True)
class TensorSpec:
    """A tensor argument described by its shape and dtype (and device), standing for any tensor
    that matches them. `None` in `shape` is a size that may vary."""

    shape: tuple
    dtype: torch.dtype = torch.float32
    device: str | torch.device = "cpu"
    requires_grad: bool = False

    def example(self) -> torch.Tensor:
        """A tensor matching the spec (zeros; sizes left open become 2)."""
        shape = tuple(2 if s is None else s for s in self.shape)
        return torch.zeros(shape, dtype=self.dtype, device=self.device,
                           requires_grad=self.requires_grad)

    def mismatch(self, value) -> str | None:
        """Why `value` does not match this spec, or None when it does."""
        if not isinstance(value, torch.Tensor):
            return f"expected a tensor, got {type(value).__name__}"
        shape = tuple(value.shape)
        if len(shape) != len(self.shape) or any(
                want is not None and want != got for want, got in zip(self.shape, shape)):
            return f"expected shape {list(self.shape)}, got {list(shape)}"
        if value.dtype != self.dtype:
            return f"expected dtype {self.dtype}, got {value.dtype}"
        if value.device != torch.device(self.device):
            return f"expected device {self.device}, got {value.device}"
        return None


class Signature:
    """What a `ConcreteFunction` was traced for: the argument structure, tensor metadata, the
    Python values of every other argument, and (for modules) the training flag.

    Hashable and comparable; `key` holds one entry per flattened argument leaf.
    """

    __slots__ = ("key", "treespec", "extra", "_hash")

    def __init__(self, key: tuple, treespec, extra: tuple = ()):
        self.key = key
        self.treespec = treespec
        self.extra = extra
        self._hash = hash((key, extra))

    def __hash__(self) -> int:
        return self._hash

    def with_extra(self, entry: tuple) -> Signature:
        """This signature with one more (name, value) entry."""
        return Signature(self.key, self.treespec, self.extra + (entry,))

    def __eq__(self, other) -> bool:
        # (a call of positional tensors shares its treespec object with the trace's: `is`
        # spares pytree's Python-level comparison)
        return (isinstance(other, Signature) and self._hash == other._hash
                and self.key == other.key and self.extra == other.extra
                and (self.treespec is other.treespec or self.treespec == other.treespec))

    def __str__(self) -> str:
        parts = [describe_leaf(leaf) for leaf in self.key]
        # (a module's field is keyed by `scalar_key`: shown as its value)
        parts += [f"{name}={value[1] if name.startswith('module.') else value!r}"
                  for name, value in self.extra]
        return f"({', '.join(parts)})"

    __repr__ = __str__


def describe_leaf(leaf: tuple) -> str:
    """One signature entry as a user reads it."""
    if leaf[0] == "tensor":
        _, shape, dtype, device, grad, strides = leaf[:6]
        kind = "Parameter" if leaf[6:] == (PARAMETER,) else "Tensor"
        view = ""
        if strides is not None and isinstance(strides[0], str):
            # (NOTE [conjugate and negative views keyed])
            view, strides = f", a {strides[0]}", strides[1]
        return (f"{kind}(shape={list(shape)}, dtype={dtype}, device={device}"
                + (f", stride={tuple(strides)}" if strides is not None else "") + view
                + (", requires_grad=True" if grad else "")
                + (f", grad of shape {list(grad[1])}" if isinstance(grad, tuple) else "") + ")")
    return repr(leaf[2])


def changing_fields(keys) -> list:
    """[(field, values seen as text)] for the fields that differ between `keys`, one
    argument object's signature entries (NOTE [fields of argument objects]); [] where the
    entries are not of one object or its fields do not differ."""
    if len(keys) < 2 or any(k[0] not in ("value", "object") or len(k) < 4 for k in keys) or len(
            {k[1:3] for k in keys}) != 1:
        return []
    tables = [dict(k[3]) for k in keys]
    out = []
    for name in dict.fromkeys(n for table in tables for n in table):
        seen = list(dict.fromkeys(table.get(name) for table in tables))
        if len(seen) > 1:
            texts = list(dict.fromkeys(_field_text(key) for key in seen))
            if len(texts) == 1:
                texts = [texts[0] + ", its contents changing"]
            out.append((name, ", ".join(texts[:5]) + (", ..." if len(texts) > 5 else "")))
    return out


def _field_text(key) -> str:
    if key is None:
        return "unset"
    if key[0] in _SCALARS or key[0] is NEGATIVE_ZERO or isinstance(key[0], type) and issubclass(
            key[0], enum.Enum):
        return repr(key[1])
    if key[0] in (list, tuple):
        return f"a {key[0].__name__} of {key[1]} items"
    if isinstance(key[0], type) and issubclass(key[0], dict):
        return f"a dict of {len(key[1])} items"
    return "another object" if key[0] == "object" else "a tensor"


def _layout(tensor: torch.Tensor):
    """None for a contiguous tensor, else its strides; for a conjugate or negative view, its
    kind and strides (NOTE [conjugate and negative views keyed]).

    A graph is traced for its examples' memory layout: make_fx records `reshape` of a
    contiguous tensor as `view`, which fails on a transposed one, so a layout is part of the
    signature as shape is.
    """
    contiguous = tensor.is_contiguous()
    if (not contiguous or tensor.dtype.is_complex) and (tensor.is_conj() or tensor.is_neg()):
        return (_VIEWS[tensor.is_conj(), tensor.is_neg()], tensor.stride())
    return None if contiguous else tensor.stride()


# NOTE [conjugate and negative views keyed]
# `z.conj()` is a lazy view: the tensor is `z`'s memory with a conjugate bit that each operator
# resolves as it reads it, and a few refuse it (`view_as_real`, which `x.real` of a complex
# tensor is). A graph traced on a plain complex tensor and called with a conjugate view of the
# same shape (or the other way round) shared one key, and its replay failed inside the graph
# with torch's bare "view_as_real doesn't work on unresolved conjugated tensors" (brk48 s02).
# The bit (and the negative bit of a conjugate view's `.imag`) is part of the layout entry, so
# each kind of view traces its own graph, as torch's C++ check of the last call's tensors tells
# them apart already (NOTE [the last call's tensors checked in C++]). Read only where the
# layout is read already (a tensor not contiguous) or the dtype is complex (every conjugate
# view's): a contiguous real tensor, the common call, pays one attribute of its dtype (the key
# read the dtype already). A contiguous negative view (the `.imag` of a conjugate view of one
# element) keys as a plain tensor: the graph's operators resolve its bit as they read it (a
# view, a reshape, an expand and an in-place add of a view replayed across the two agree).
_VIEWS = {(True, False): "conjugate view", (False, True): "negative view",
          (True, True): "conjugate and negative view"}


def grad_key(tensor: torch.Tensor):
    """The requires_grad entry of a tensor's key: False, True, or for a leaf that holds a
    gradient its shape, dtype, device and layout, since the graph reads `.grad` as an input
    (NOTE [gradients of arguments] in capture.py)."""
    if not tensor.requires_grad:
        return False
    grad = tensor.grad if tensor.is_leaf else None  # (a non-leaf's `.grad` warns)
    if grad is None:
        return True
    return ("grad", tuple(grad.shape), grad.dtype, grad.device, _layout(grad))


def _leaf_key(leaf):
    if isinstance(leaf, torch.Tensor):
        if is_traced_subclass(leaf):  # NOTE [tensor subclass arguments] in capture.py
            return ("value", type(leaf), _SubclassKey(leaf))
        if type(leaf) is _Parameter:  # NOTE [parameters traced as parameters] in capture.py
            return ("tensor", tuple(leaf.shape), leaf.dtype, leaf.device, grad_key(leaf),
                    _layout(leaf), PARAMETER)
        return ("tensor", tuple(leaf.shape), leaf.dtype, leaf.device, grad_key(leaf),
                _layout(leaf))
    if isinstance(leaf, TensorSpec):
        return ("tensor", tuple(leaf.shape), leaf.dtype, torch.device(leaf.device),
                leaf.requires_grad, None)
    if isinstance(leaf, torch.nn.Module):
        # its mode, as a converted module's (`evaluate(model, x)` after `train_step(model, x)`
        # keeps both graphs); the rest of what its code reads is guarded (NOTE [places in
        # argument objects] in captures.py)
        return ("value", type(leaf), leaf, (("training", _field_key(leaf.training, 0)),))
    if is_ndarray(leaf):  # NOTE [numpy arrays keyed by their values]
        return ("value", type(leaf), ArrayKey(leaf))
    if type(leaf) is types.MethodType and _is_plain_object(leaf.__self__):
        # NOTE [bound methods as arguments]: its object's fields, as the object's own
        return ("value", types.MethodType, leaf, _python_fields(leaf.__self__))
    try:
        hash(leaf)
    except TypeError:  # a dataclass, a list ...: the object, and the Python values it holds
        if _is_keyed_mapping(leaf):
            # a dict subclass torch's pytree takes for a leaf (a Counter): its items, as an
            # argument dict's are keyed; by its `__dict__` alone a Counter changed between calls
            # replayed the counts of the trace (tester38 s04)
            return ("object", type(leaf), id(leaf), _field_key(leaf, _FIELD_DEPTH))
        return ("object", type(leaf), id(leaf), _python_fields(leaf))
    if type(leaf).__hash__ is object.__hash__ and _holds_fields(leaf):
        # equal only to itself, so a field changed between calls (`cfg.scale = 5.0`) would
        # otherwise find the graph traced with the old value
        return ("value", type(leaf), leaf, _python_fields(leaf))
    if type(leaf) is float and not leaf and _negative(leaf):
        return ("value", NEGATIVE_ZERO, leaf)  # NOTE [scalars keyed by type and sign]
    if type(leaf) not in _SCALARS and is_numpy_scalar(leaf):
        return ("value", *scalar_key(leaf))
    return ("value", type(leaf), leaf)


# the last entry of an nn.Parameter argument's key (NOTE [parameters traced as parameters] in
# capture.py)
PARAMETER = "parameter"
_Parameter = torch.nn.Parameter


def is_parameter_key(leaf_key) -> bool:
    """Whether a signature entry is an nn.Parameter argument's."""
    return leaf_key[0] == "tensor" and leaf_key[6:] == (PARAMETER,)


def is_traced_subclass(tensor) -> bool:
    """Whether `tensor` is of a torch.Tensor subclass that a trace would see as a plain tensor
    (any but nn.Parameter): NOTE [tensor subclass arguments] in capture.py."""
    kind = type(tensor)
    return kind is not torch.Tensor and kind is not torch.nn.Parameter and not isinstance(
        tensor, torch._subclasses.FakeTensor)


class _SubclassKey:
    """A subclass argument's key entry: equal to no other, so that such a call traces (and is
    refused: NOTE [tensor subclass arguments] in capture.py) after any graph."""

    __slots__ = ("name",)

    def __init__(self, tensor):
        self.name = type(tensor).__qualname__

    def __repr__(self) -> str:
        return f"a {self.name} (a torch.Tensor subclass)"


# NOTE [numpy arrays keyed by their values]
# A numpy array the function reads is a constant of its graph: make_fx bakes in what the trace
# read (`float(a[0])`, `torch.from_numpy(a)`, numpy's own arithmetic in Python), and numpy has
# no version counter to tell an array changed in place. Keyed by the object alone, `a[0] = 5.0`
# between calls replayed the old values (break41 s04, silently wrong). torch.compile makes an
# ndarray argument a graph input (dynamo wraps it as a tensor, so a change is read by the
# graph); torch.export takes tensors only. autoconv keys an ndarray argument (or one in an
# argument object's field) by its values: dtype, shape and bytes, and guards a global's or a
# closure's the code reads the same way (captures.py), so a changed array traces again, as a
# changed Python number does. Copying and comparing the bytes costs time in the array's size on
# every call (docs/function.md gives figures); an array whose values change on every call
# traces every call, which the retrace warning reports: pass such values as a tensor
# (`torch.from_numpy(a)`), a graph input read on each call.
def is_ndarray(value) -> bool:
    """Whether `value` is a numpy.ndarray (not a subclass's)."""
    numpy = sys.modules.get("numpy")  # (never imported here: a program without numpy has none)
    return numpy is not None and type(value) is numpy.ndarray


# NOTE [numpy scalars keyed as Python numbers]
# A numpy scalar (`np.float64(2.0)`, `np.int64(3)`, `np.bool_(True)`: what `a.sum()`,
# `np.mean(...)` return) is a number a trace bakes in, as a Python float is, but its type is not
# one of `_SCALARS`: in an argument object's field (or a global or closure list's item) it was
# left out of the key and unguarded, so `cfg.scale = np.float64(3.0)` after 2.0 replayed 2.0,
# silently (break42 s03). It is keyed (and guarded, captures.py) by its type, value and sign.
def is_numpy_scalar(value) -> bool:
    """Whether `value` is a numpy number or bool scalar (hashable, immutable)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, (numpy.number, numpy.bool_))


def is_numpy_float(value) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.floating)


class ArrayKey:
    """A numpy array's signature entry: its dtype, shape and values (NOTE [numpy arrays keyed
    by their values]). Hashable; equal to the entry of an array of equal dtype, shape and
    bytes."""

    __slots__ = ("dtype", "shape", "data", "_hash")

    def __init__(self, array):
        # (the dtype itself, not `dtype.str`: a structured dtype's str is `|V16` for any field
        # names, so an array of other fields found the graph reading `s["a"]` of the first:
        # break42 s02)
        self.dtype, self.shape = array.dtype, array.shape
        # an object array's bytes are its items' addresses, not their values (an item changed
        # in place kept them: break42 s04): keyed by itself, equal to no other key
        self.data = array.tobytes() if not array.dtype.hasobject else object()
        # (not the bytes' own hash: hashing them cost 5x their copy; graphs of one shape of
        # array are few, and equality compares the bytes)
        self._hash = hash((self.dtype, self.shape, self.data[:64] if not array.dtype.hasobject
                           else self.data))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (type(other) is ArrayKey and self._hash == other._hash
                and self.dtype == other.dtype and self.shape == other.shape
                and self.data == other.data)

    def __repr__(self) -> str:
        return f"ndarray(shape={list(self.shape)}, dtype={self.dtype}, its values)"


def subclass_in(key):
    """The name of the first torch.Tensor subclass whose tensor signature entries `key` (nested
    tuples) hold, or None (NOTE [tensor subclass arguments] in capture.py)."""
    if type(key) is _SubclassKey:
        return key.name
    if type(key) is tuple:
        for entry in key:
            found = subclass_in(entry)
            if found is not None:
                return found
    return None


def _is_keyed_mapping(value) -> bool:
    """A dict subclass holding its state in its items only (a Counter, an OrderedDict, a
    defaultdict, scipy's OptimizeResult): keyed by its items, as a dict is."""
    return isinstance(value, dict) and not getattr(value, "__dict__", None)


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


# NOTE [scalars keyed by type and sign]
# A graph bakes in the Python numbers its trace read, computed in their type and with their
# sign: `torch.tensor(s)` is int64 for 2 and float32 for 2.0, `torch.full((1,), flag)` bool
# for True and int64 for 1, and `math.copysign(1.0, s)`, `1 / s`, `atan2` tell -0.0 from 0.0.
# Python finds each pair equal (and hashing alike), so a key of the value alone found the
# graph traced with the other (break41 s01, s02: a module's `self.scale = 2` after 2.0 gave a
# float where Python gives an int; `f(x, -0.0)` after `f(x, 0.0)` the other sign). A scalar's
# key is its type and value, and a negative zero's is marked apart (the check is a truth test
# on the float path only, so the common key is built as before).
class NEGATIVE_ZERO:  # noqa: N801  (a marker in a key's type slot, shown as float's)
    __name__ = "float"


def _negative(zero: float) -> bool:
    return math.copysign(1.0, zero) < 0


def scalar_key(value) -> tuple:
    """The key of a Python scalar: its type and value, -0.0 apart from 0.0 (NOTE [scalars
    keyed by type and sign])."""
    kind = type(value)
    if kind is float and not value and _negative(value):
        return (NEGATIVE_ZERO, value)
    if kind not in _SCALARS and is_numpy_scalar(value):
        # (its type in the key: -0.0 as a numpy float is equal to float's -0.0)
        return (kind, value, not value and is_numpy_float(value) and _negative(value))
    return (kind, value)


# Callables in fields, keyed by themselves (equal to themselves only; a bound method to one of
# the same function and object)
_CALLABLES = frozenset({types.FunctionType, types.BuiltinFunctionType, types.MethodType})


def _holds_fields(obj) -> bool:
    # A module's Python attributes are not part of the key (README, Limitations): walking every
    # submodule's on each call would cost the replay's fast path.
    # Nor a logger's (or its handlers'): logging configuration and the records a handler keeps
    # are the process's, which a graph does not read (a logging call runs while tracing only:
    # NOTE [logging while tracing] in runtime/logs.py); a handler's growing list of records
    # was guarded as the logger's value and failed right after every trace.
    return hasattr(obj, "__dict__") and not isinstance(
        obj, (torch.nn.Module, type, types.FunctionType, types.MethodType, types.ModuleType,
              logging.Logger, logging.LoggerAdapter, logging.Handler))


def _python_fields(obj, depth: int | None = None) -> tuple:
    """The Python values an object holds in its fields (its `__dict__`), as a key: a graph
    bakes in every Python value it reads (tf.function's rule), so a changed one needs a new
    trace (NOTE [fields of argument objects]). Tensors and modules are left out."""
    fields = getattr(obj, "__dict__", None)
    if not isinstance(fields, dict):
        return ()
    depth = _FIELD_DEPTH if depth is None else depth
    out = []
    for k, v in fields.items():
        kind = type(v)
        if kind in _SCALARS:  # (the common field inline: no call of `_field_key`)
            out.append((k, (kind, v) if v or kind is not float else scalar_key(v)))
            continue
        key = _field_key(v, depth)
        if key is not None:
            out.append((k, key))
    # (names are distinct: tuples compare on their names alone, as the sort's key)
    out.sort()
    return tuple(out)


# How many levels of lists, dicts and plain objects below an argument object the key holds.
_FIELD_DEPTH = FIELD_DEPTH = 3
# A list or dict longer than this keys its length (and a dict its keys) but not its items.
_LONG = LONG = 64
_TENSOR_FIELD = ("tensor",)
_SCALAR_TYPES = frozenset(_SCALARS)
_TENSOR_TYPE = frozenset({torch.Tensor})
# NOTE [signature of a field in one C pipeline]
# The key of a list, tuple or dict field whose items are all scalars, or all plain tensors, is
# built by C calls (a subset test of the items' types, then `zip` of the types and the values,
# or a tuple of tensor entries made once per length) instead of one `_field_key` call an item:
# the same key, object for object equal, so every signature is what it was, at about a third
# of the cost (benchmarks/call_overhead.py). The runs of tensor entries are shared tuples, so
# the cache lookup's comparison with the traced signature finds them identical (an `is`)
# instead of comparing an entry an item.
_TENSOR_RUNS = tuple((_TENSOR_FIELD,) * n for n in range(_LONG + 1))


def _items_key(values, depth: int) -> tuple:
    """The keys of a list's (or a dict's) items, as `_field_key` of each gives them."""
    types = set(map(type, values))
    if types <= _SCALAR_TYPES:
        if float in types and 0.0 in values:  # (a -0.0 among them: NOTE [scalars keyed by
            return tuple(map(scalar_key, values))  # type and sign])
        return tuple(zip(map(type, values), values))
    if types <= _TENSOR_TYPE:
        return _TENSOR_RUNS[len(values)]
    return tuple(_field_key(v, depth) for v in values)


def _field_key(value, depth: int):
    """The key of one value in an argument object's fields, or None where it is left out."""
    kind = type(value)
    if kind in _SCALARS or isinstance(value, enum.Enum):
        return scalar_key(value)  # NOTE [scalars keyed by type and sign]
    if isinstance(value, torch.Tensor):
        if is_traced_subclass(value):  # NOTE [tensor subclass arguments] in capture.py
            return _SubclassKey(value)
        return _TENSOR_FIELD  # (a place in a list; its value is the graph's input or guarded)
    if kind is list or kind is tuple:
        if depth <= 0 or len(value) > _LONG:
            return (kind, len(value))
        return (kind, len(value), _items_key(value, depth - 1))
    if kind is dict or _is_keyed_mapping(value):
        # (a defaultdict too: torch.optim's `self.state`, whose keys decide the path a step
        # takes, `if "momentum_buffer" not in state`; tester34 s04)
        if depth <= 0 or len(value) > _LONG:
            return (kind, tuple(value))
        return (kind, tuple(zip(value, _items_key(list(value.values()), depth - 1))))
    if depth > 0 and _is_plain_object(value):
        return ("object", id(value), _python_fields(value, depth - 1))
    if kind in _CALLABLES:
        # (a function in a field, `s.fn = triple` replacing `double`, or a closure,
        # `make_scaler(3.0)` replacing `make_scaler(2.0)`: the graph bakes in the code it
        # called and what its cells held, so another function is another graph, as another
        # partial is; tester35 s06)
        return ("callable", value)
    if is_ndarray(value):  # NOTE [numpy arrays keyed by their values]
        return ArrayKey(value)
    if is_numpy_scalar(value):  # NOTE [numpy scalars keyed as Python numbers]
        return scalar_key(value)
    return None


def keys_fields(value) -> bool:
    """Whether a call's signature keys the fields of `value`, an argument or a value in an
    argument object's fields (NOTE [fields of argument objects])."""
    return _is_plain_object(value)


def _is_plain_object(value) -> bool:
    """An object keyed by identity whose fields the signature holds (`_python_fields`)."""
    return type(value).__hash__ in (object.__hash__, None) and _holds_fields(value)


def keyed_path(roots, path) -> bool:
    """Whether a call's signature holds the Python value at `path` (object_paths' steps from
    `(args, kwargs, bound_self)`): an argument's leaf, or a value in an argument object's
    fields as `_python_fields` keys them. A graph replayed for the signature then finds there
    the value its trace found (NOTE [fields of argument objects])."""
    if path[0] == ("item", 2):
        return False  # a bound method's `self`: not an argument of the signature
    value = roots[path[0][1]]
    depth = None  # inside the arguments' pytree; then the depth left in an object's fields
    for kind, key in path[1:]:
        if depth is None and kind == "item" and isinstance(value, (list, tuple, dict)):
            value = value[key]
            continue
        if depth is None:
            if kind != "attr" or not _is_plain_object(value):
                return False
            depth = _FIELD_DEPTH
        elif kind == "attr":
            if depth <= 0 or not _is_plain_object(value):
                return False
            depth -= 1
        elif (not isinstance(value, (list, tuple, dict)) or depth <= 0
              or len(value) > _LONG):
            return False
        else:
            depth -= 1
        try:
            value = getattr(value, key) if kind == "attr" else value[key]
        except (AttributeError, KeyError, IndexError, TypeError):
            return False
    return True


# NOTE [bound methods as arguments]
# A bound method passed as an argument (`minimize(problem.loss, x0)`, `step(tracker.update, x)`)
# is equal to another of the same function and object, so the signature keyed it as one value
# whatever its object held: a Python number of the object read by the method (`self.k`) and
# changed between calls kept the value it had when the graph was traced, silently (tester35
# s05). Its object's fields are keyed as those of an argument object are (below), where the
# object is one whose fields the signature would key; a module's method stays keyed by itself
# (its attributes are guarded: NOTE [places in argument objects] in captures.py).


# NOTE [fields of argument objects]
# A plain object passed as an argument (an early-stopping tracker, a config, a logger) is keyed
# by identity and by the Python values in its fields, down three levels of lists, dicts and
# plain objects: scalars by type and value, lists by length, dicts by keys, tensors by place
# only (the graph reads them anew on each call, and compares their shapes and dtypes: NOTE
# [tensors in argument objects' fields] in capture.py). The graph bakes in every Python value the
# trace read there, and the call's stores there are repeated on each replay (NOTE [changed
# Python values] in capture.py): `log.history.append(loss)` stores at the index the trace
# appended at, which is the list's end only while its length is the one traced (tester30 s04:
# one item, overwritten on every replay), and `tracker.bad += 1` stores the number the next
# call must start from. So a changed length or number makes a new signature, which traces
# anew, as Python computes anew. Longer lists and dicts (over `_LONG`) key their size only.


_is_leaf = pytree.tree_is_leaf
_positional_specs: dict[int, object] = {}  # number of tensor args -> treespec of (args, {})
_Tensor = torch.Tensor


def signature_of(args: tuple, kwargs: dict, extra: tuple = ()):
    """(Signature, flat leaves) of a call; `extra` adds (name, value) pairs to the key."""
    if not kwargs:
        # The common call (positional tensors, numbers, objects): no pytree walk, when every
        # argument is a leaf of pytree's (NOTE [signature without the pytree walk]).
        positional = positional_key(args)
        if positional is not None:
            key, tensors = positional
            n = len(args)
            spec = _positional_specs.get(n)
            if spec is None:
                spec = _positional_specs[n] = pytree.tree_flatten((args, {}))[1]
            if tensors > 1 and same_tensor_twice(args, tensors):
                # NOTE [aliased arguments]
                extra = (*extra, (SAME_TENSOR, _same_tensor_groups(args)))
            return Signature(key, spec, extra), args
    leaves, treespec = pytree.tree_flatten((args, kwargs))
    key = tuple(_leaf_key(leaf) for leaf in leaves)
    tensors = [id(leaf) for leaf in leaves if isinstance(leaf, _Tensor)]
    if len(set(tensors)) != len(tensors):
        extra = (*extra, (SAME_TENSOR, _same_tensor_groups(leaves)))
    return Signature(key, treespec, extra), leaves


def positional_key(args: tuple):
    """(key, number of tensors) of positional arguments that are all leaves of pytree's: the
    `Signature.key` of such a call, entry for entry; None where one is not a leaf."""
    # (A torch.Size is a tuple, equal and hashing alike: the shape goes into the key as is.)
    key = []
    tensors = 0
    for a in args:
        if type(a) is _Tensor:
            dtype = a.dtype
            key.append(("tensor", a.shape, dtype, a.device,
                        a.requires_grad and grad_key(a),
                        None if a.is_contiguous() and not dtype.is_complex else _layout(a)))
            tensors += 1
        elif _is_leaf(a):
            key.append(_leaf_key(a))
            tensors += isinstance(a, _Tensor)
        else:
            return None
    return tuple(key), tensors


# NOTE [the last call's tensors checked in C++]
# A replayed call's test for the last call's graph (NOTE [the last call's graph] in
# function.py) built each tensor argument's key, `positional_key`: five reads of the tensor
# through its Python bindings (shape, dtype, device, requires_grad, is_contiguous), a tuple,
# and the comparison with the last call's. Warm that is 0.7 µs, but after other work has run
# (an eager model in between: the benchmarks' "cold" call) the bindings' code and objects are
# out of the caches: 3-9 µs. Where the last call's arguments were all plain tensors that
# require no grad, torch's own C++ tensor check (`TensorGuards`, what dynamo's guards use)
# is made from them: one call that holds exactly where each argument has the same Python
# type, dispatch keys (device type, layout, inference, conjugate and negative views), dtype,
# device index, requires_grad (torch 2.13 compares the tensor's own flag, grad mode on or
# off: tests/test_function_last_call.py) and sizes and strides. Each tensor's key is then
# the last call's, entry for entry: the same shape, dtype, device, requires_grad False, and
# the same strides give the same contiguity. Where it does not hold (stricter than the key:
# a contiguous tensor with other strides on a dimension of size 1), the key is built and
# compared as before. A copied or pickled Function makes its own (`_last` is made anew).
try:
    from torch._C._dynamo.guards import TensorGuards as _TensorGuards
except ImportError:  # (a torch without dynamo's guards: the keys are compared)
    _TensorGuards = None


def tensors_check(args: tuple):
    """A C++ check that positional `args` are tensors with the keys of these (NOTE [the last
    call's tensors checked in C++]), or None where one is not a plain tensor that requires
    no grad."""
    if _TensorGuards is None or not args or not all(
            type(a) is _Tensor and not a.requires_grad for a in args):
        return None
    return _TensorGuards(*args, dynamic_dims_sizes=[list(a.shape) for a in args],
                         dynamic_dims_strides=[list(a.stride()) for a in args]).check


def same_tensor_twice(args: tuple, tensors: int) -> bool:
    """Whether one tensor object is two of the positional `args` (`tensors`: how many are
    tensors, more than one)."""
    if len(args) == 2:
        return args[0] is args[1]
    return len({id(a) for a in args if isinstance(a, _Tensor)}) != tensors


# NOTE [signature without the pytree walk]
# `pytree.tree_flatten((args, {}))` cost about 7 µs of a call `f(obj, x)` with an argument
# object (half its signature). Where every positional argument is a leaf of pytree's (a
# tensor, a number, an object of a type pytree does not flatten; `pytree.tree_is_leaf` says,
# so a registered dataclass or a namedtuple takes the walk), the leaves are the arguments
# themselves and the treespec is that of any n leaves: the key, the leaves and the spec are
# those the walk gives, entry for entry, so every call keys as it did.


SAME_TENSOR = "same tensor for arguments"
ALIASED = "aliased arguments"
TENSOR_STATE = "tensor state"


def with_tensor_state(signature, leaves, kinds: tuple):
    """`signature` keyed by the `kinds` of state (storage offset, inference flag, version)
    of the tensor `leaves`, its own such entry replaced (NOTE [tensor state read while
    tracing] in autoconv_runtime/staging/tensor_reads.py); `signature` itself for no kinds."""
    if not kinds:
        return signature
    extra = tuple(entry for entry in signature.extra if entry[0] != TENSOR_STATE)
    state = tensor_state_of([leaf for leaf in leaves if isinstance(leaf, _Tensor)], kinds)
    return Signature(signature.key, signature.treespec, (*extra, (TENSOR_STATE, (kinds, state))))


def _same_tensor_groups(leaves) -> tuple:
    """Groups (tuples of leaf indices) of the leaves that are one tensor object."""
    owners: dict = {}
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, _Tensor):
            owners.setdefault(id(leaf), []).append(i)
    return tuple(tuple(group) for group in owners.values() if len(group) > 1)


def module_python_fields(module) -> tuple:
    """The names of the public attributes of `module` that hold Python scalars
    (`self.temperature`); `training` is keyed on its own."""
    return tuple(k for k, v in module.__dict__.items()
                 if type(v) in _SCALARS and k[0] != "_" and k != "training")


# NOTE [aliased arguments]
# One tensor object passed for two arguments (`attn(x, x)` then `attn(x, memory)`, `f([a, a])`):
# make_fx gives it one fake tensor, so the graph has one input read for both, and replayed on
# two tensors it read the first for both (`x - y` gave 0). Which leaves are the same object is
# part of the signature (SAME_TENSOR, in `extra`): a set of ids per call, ~0.1 us, and nothing
# for a one-tensor call. It keys Python's `x is y` decisions too (nn.MultiheadAttention's).
# Arguments that share memory without being one object (`f(a, a[0])`, `f(a, a.T)`) are
# distinct fakes over one storage, so the graph reads each; what aliasing changes there is a
# graph that writes one argument in place and reads the other, computed with two memories
# where the call has one (`a.add_(1)` then `b.sum()` must see the add). Asking every call for
# storages costs the fast path, so a graph that writes its arguments in place asks
# (Function.__call__): arguments sharing memory make a signature of their own, traced with
# the arguments as they are (make_fx keeps their aliasing), and a graph traced on such
# arguments is kept under that signature only (Function._trace), never replayed for
# arguments that do not share memory.
def with_aliasing(signature, leaves):
    """`signature` with the ALIASED entry where `leaves` share memory, else `signature` itself
    (NOTE [aliased arguments]); for graphs that write their inputs."""
    shared = aliased_leaves(leaves)
    return signature.with_extra((ALIASED, shared)) if shared else signature


CAPTURED_ALIAS = "arguments that are captured tensors"
SHARED_CONTAINERS = "containers under two paths"


def with_shared_containers(signature, args, kwargs):
    """`signature` with the SHARED_CONTAINERS entry where a dict, list or tuple is reached
    under two paths of the call's arguments, else `signature` itself (NOTE [containers under
    two paths] in capture.py); for graphs that store into the call's objects."""
    shared = shared_containers((args, kwargs))
    return signature.with_extra((SHARED_CONTAINERS, shared)) if shared else signature


def shared_in(signature) -> tuple:
    """The SHARED_CONTAINERS entry of `signature`: ((path, first path), ...), or ()."""
    for name, value in signature.extra:
        if name == SHARED_CONTAINERS:
            return value
    return ()


# NOTE [arguments that are captured tensors]
# `f(G, v, c)` where the body updates the global `G` in place (`G.add_(1)`): make_fx gives the
# argument and the global one fake tensor (its converter keeps one fake per real tensor), and
# after the global's in-place update the trace reads the argument as the update's result. A
# graph traced on `f(G, ...)` read the global where a later call's argument was another
# tensor, and one traced on another tensor never knew the argument could be the global
# (silently wrong both ways). So, for a graph that writes such a tensor in place
# (`graph_passes.written_constants`: a few, usually none), which argument leaves share memory
# with which of them is part of the signature (CAPTURED_ALIAS), as for arguments sharing
# memory (NOTE [aliased arguments]): each such call compares storage pointers (about 0.3 us
# an argument tensor), and a graph is replayed only for calls that alias as its trace did.
# Nothing is asked of a graph that writes no captured tensor.
# NOTE [a captured tensor read in a body, the argument it is updated]
# The other way round: `f(W)` whose staged body updates its argument in place and reads the
# global `W` by its own name. Traced on `W`, the body reads its copy of the argument there
# (NOTE [an outside tensor read by its own name in a body updating it as an argument] in
# runtime/staging/outside_writes.py), which holds for calls given `W` only; traced on another
# tensor, the body reads `W` as an operand lifted from before the statement, which holds for
# calls given another tensor only (24 for Python's 36 either way, wrong49). So a graph that
# writes its inputs is keyed as above by the tensors its staged bodies read from outside (the
# constants given to a cond / while_loop) and those the trace read as the argument: a few,
# usually none.
def with_captured_aliasing(signature, leaves, constants):
    """`signature` with the CAPTURED_ALIAS entry where tensor `leaves` share memory with one of
    `constants`, else `signature` itself (NOTE [arguments that are captured tensors])."""
    shared = captured_sharing(leaves, constants)
    return signature.with_extra((CAPTURED_ALIAS, shared)) if shared else signature


def captured_sharing(leaves, constants) -> tuple:
    """((leaf index, constant index), ...) of the tensor `leaves` that share memory with one
    of the tensors `constants`; () where none does."""
    # (plain loops: on the call's path, where a comprehension's own frame costs as much)
    owners = {}
    for j, constant in enumerate(constants):
        owners[constant.untyped_storage().data_ptr()] = j
    owners.pop(0, None)  # (an empty tensor's: no memory to share)
    shared = ()
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor):
            memory = leaf.untyped_storage().data_ptr()
            if memory in owners:
                shared += ((i, owners[memory]),)
    return shared


def aliased_leaves(leaves) -> tuple:
    """Groups (tuples of leaf indices) of tensor leaves that share memory, or () if none do."""
    owners: dict = {}
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor) and leaf.numel():
            owners.setdefault(leaf.untyped_storage().data_ptr(), []).append(i)
    return tuple(tuple(group) for group in owners.values() if len(group) > 1)
