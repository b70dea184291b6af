"""Tensors a traced function reads without getting them as arguments (a global lookup table, a
closure's tensor, a module's plain tensor attribute): guarded on every call of its graph.

NOTE [captured tensors]
make_fx keeps such a tensor in the graph as a constant: the very object, not a copy, so an
in-place update between calls (`TABLE.mul_(10)`, `m.scale.fill_(5)`) is seen by the next call,
provided nothing computed from it was folded into a new constant at trace time
(`graph_passes.fold_constants` leaves these alone). Rebinding the name or attribute to another
tensor (`m.scale = torch.tensor(7.)`) is not seen by the graph, so each such constant found at a
place the function reads (a global of the function or of a helper it calls, an attribute of a
module imported as a global, a closure cell, a module's or `self`'s attribute, one item deep into
a dict / list / tuple there) is guarded: every call checks that the place still holds that
object (a dict lookup and an `is`), and a `Function` traces again where it does not (as
torch.compile guards on a global tensor's id). A constant found nowhere (reached through a
deeper path) is still read in place, but its rebinding is not seen (README, Limitations).
"""

from __future__ import annotations

import functools
import types

import torch

from . import graph_passes

__all__ = ["Rebound", "Guard", "guards_for"]

_MISSING = object()
_CONTAINERS = (dict, list, tuple)
_MODULE_TABLES = frozenset({"_parameters", "_buffers", "_modules"})
_HELPER_DEPTH = 3  # helpers of helpers of the function: where their globals are searched


class Rebound(Exception):
    """A place a graph's captured tensor was read from now holds another object."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


class Guard:
    """`where` (for messages) still holds `expected`: `read()` gives what it holds now."""

    __slots__ = ("where", "read", "expected")

    def __init__(self, where: str, read, expected):
        self.where, self.read, self.expected = where, read, expected

    def holds(self) -> bool:
        return self.read() is self.expected


def _item_reader(table, key):
    # (a partial of the dict's own `get`: no Python frame on each call's check)
    return functools.partial(table.get, key, _MISSING)


def _nested_reader(read, key):
    def nested():
        outer = read()
        try:
            return outer[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return nested


def _cell_reader(cell):
    def read():
        try:
            return cell.cell_contents
        except ValueError:  # an empty cell
            return _MISSING
    return read


def _add(found: dict, where: str, read, value) -> None:
    """Record the tensors at a place (`value`), and one item deep in a container there."""
    if isinstance(value, torch.Tensor):
        found.setdefault(id(value), (where, read))
    elif type(value) in _CONTAINERS and len(value) <= 64:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, torch.Tensor):
                found.setdefault(id(item), (f"{where}[{key!r}]", _nested_reader(read, key)))


def _code_names(code) -> set:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _search_function(fn, found: dict, seen: set, depth: int) -> None:
    fn = getattr(fn, "__func__", fn)
    if not isinstance(fn, types.FunctionType) or id(fn) in seen:
        return
    seen.add(id(fn))
    names = _code_names(fn.__code__)
    table = fn.__globals__
    for name in names:
        value = table.get(name, _MISSING)
        if value is _MISSING:
            continue
        _add(found, f"the global {name}", _item_reader(table, name), value)
        if isinstance(value, types.ModuleType):  # `cfg.TABLE`
            attrs = vars(value)
            for attr in names:
                if isinstance(attrs.get(attr), torch.Tensor):
                    _add(found, f"{name}.{attr}", _item_reader(attrs, attr), attrs[attr])
        elif depth and isinstance(value, types.FunctionType):
            _search_function(value, found, seen, depth - 1)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        _add(found, f"the closure variable {name}", _cell_reader(cell), value)
        if depth and isinstance(value, types.FunctionType):
            _search_function(value, found, seen, depth - 1)


def _search_object(obj, prefix: str, found: dict) -> None:
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict):
        return
    for name, value in list(attrs.items()):
        # (a module's parameters and buffers are graph inputs, never constants)
        if not name.startswith("__") and name not in _MODULE_TABLES:
            _add(found, f"{prefix}.{name}", _item_reader(attrs, name), value)


def _places(fn, module, bound_self) -> dict:
    """id(tensor) -> (where, reader) for the tensors the function may read as constants."""
    found, seen = {}, set()
    if module is not None:
        for path, sub in module.named_modules():
            _search_object(sub, "self" + (f".{path}" if path else ""), found)
            _search_function(type(sub).forward, found, seen, _HELPER_DEPTH)
    elif bound_self is not None:
        _search_object(bound_self, "self", found)
    _search_function(fn, found, seen, _HELPER_DEPTH)
    return found


def _is_trace_value(value) -> bool:
    from torch._subclasses.functional_tensor import FunctionalTensor

    return isinstance(value, (torch._subclasses.FakeTensor, FunctionalTensor))


def _constants(graph_module):
    """(module, node, tensor) for every get_attr of a real tensor in the graph and subgraphs."""
    for owner in graph_module.modules():
        if not isinstance(owner, torch.fx.GraphModule):
            continue
        for node in owner.graph.find_nodes(op="get_attr"):
            value = getattr(owner, node.target, None)
            if isinstance(value, torch.Tensor) and not _is_trace_value(value):
                yield owner, node, value


def guards_for(graph_module, fn, module=None, bound_self=None) -> tuple:
    """The guards of the graph's captured tensors found at the places the function reads."""
    constants = [(node, value) for _, node, value in _constants(graph_module)
                 if not graph_passes._made_by_function(node)]
    if not constants:
        return ()
    places = _places(fn, module, bound_self)
    guards, done = [], set()
    for _, value in constants:
        place = places.get(id(value))
        if place is not None and id(value) not in done:
            done.add(id(value))
            guards.append(Guard(place[0], place[1], value))
    return tuple(guards)
