"""The check at the end of every trace and export that no value of the trace outlives it.

NOTE [no value of a trace escapes]
A trace computes with stand-ins: fake tensors (FakeTensor), functional tensors, fx proxies, and
symbolic numbers (SymInt / SymFloat / SymBool of the trace's shape environment). One left where
Python code can see it after the trace gives the trace's value in place of the call's, on every
later call: `s.v = x; while s.v.sum() < 100: s.v = s.v * 2` once returned a FakeTensor, and its
torch.export failed with torch's "We found a fake tensor in the exported program constant's
list". Each such path was closed where it was found (the write-backs of NOTE [changed
arguments] in capture.py, NOTE [objects a function returns], NOTE [trace values stored
outside]), but the next one would be found by a user. So whatever put it there, the end of
autoconv's trace (`check_trace`) and of its export (`check_export`) walks every value Python
can reach from what they give back, and raises `LeakedTraceValue`, an internal error, on the
first stand-in met:

- the graph and its subgraphs: the values of `get_attr` nodes, the modules' parameters,
  buffers and tensor attributes, and the literal arguments of every node;
- a ConcreteFunction's Python-valued outputs, the values each call writes back into the
  caller's objects, the conditions it is specialised on, the process state it read;
- the call's objects after the trace (arguments, `self`, a module's parameters, buffers and
  fields, a real tensor's `.grad`), and what the function reaches outside itself: its
  defaults, closure cells and the globals its code names (its helpers' likewise);
- an export's constants and state dict.

A fake tensor or symbolic number of another fake mode (one the user made) is not the trace's:
only the modes the trace ran under count (`trace_record.note_fake_mode`), where any was seen.
The error names the place, and the user's staged statement the value came from: the one whose
result it is where that is known, else the statement traced last (`trace_record`). The walk
costs at trace time only (a few milliseconds for a model of a hundred layers) and stops after
`_BUDGET` objects: a backstop, not a proof.
"""

from __future__ import annotations

import functools
import itertools
import types

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch._subclasses.functional_tensor import FunctionalTensor

from autoconv_runtime.outside_objects import _is_record, _user, code_names

__all__ = ["LeakedTraceValue", "check_trace", "check_export", "check_graph"]

_BUDGET = 20_000  # objects one check visits at most (NOTE [no value of a trace escapes])
_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)
_PYTHON_VALUES = (bool, int, float, complex, str, bytes, type(None))
_MODULE_TABLES = ("_parameters", "_buffers", "_modules")


class LeakedTraceValue(RuntimeError):
    """autoconv's internal error: a value of a trace outlived it (NOTE [no value of a trace
    escapes]). `filename` / `lineno`: the user's statement it came from, where known."""

    def __init__(self, message, location=None):
        super().__init__(message)
        self.filename, self.lineno = location if location else (None, None)


def _kind(value, modes) -> str | None:
    """The kind of stand-in `value` is, if it is one of the trace's (`modes`: {id: fake mode}
    of the trace, empty where none was seen: then any fake tensor counts)."""
    if isinstance(value, torch.Tensor):
        if isinstance(value, FakeTensor):
            return "FakeTensor" if not modes or id(value.fake_mode) in modes else None
        if isinstance(value, FunctionalTensor) or torch._is_functional_tensor(value):
            return "FunctionalTensor"
        return None
    if isinstance(value, _SYMBOLIC):
        env = getattr(value.node, "shape_env", None)
        if modes and env is not None and all(getattr(m, "shape_env", None) is not env
                                              for m in modes.values()):
            return None
        return type(value).__name__
    if isinstance(value, torch.fx.Proxy):
        return "fx.Proxy"
    return None


class _Walk:
    """One check's walk: `visit` each value with the text of its place; the first stand-in
    found is kept in `found` as (kind, place, value), and the walk stops there."""

    def __init__(self, modes):
        self.modes = modes
        self.seen: set = set()
        self.visited = 0  # (values met: tensors and numbers count towards `_BUDGET` too)
        self.found = None

    def value(self, value, where: str) -> bool:
        """Whether `value` itself is a stand-in (recorded); no walk below it."""
        kind = _kind(value, self.modes)
        if kind is not None:
            self.found = (kind, where, value)
        return kind is not None

    def walk(self, roots) -> None:
        """Walk [(value, where, names, origin)] and all they hold, breadth first (a place is
        named by its fewest steps); `names`: the names the code that reaches the value reads
        (a module's globals are followed by those only); `origin`: what a place named by a
        function's own name is (its closure variable, default or global), or None."""
        level = list(roots)
        while level and self.found is None:
            following = []
            for value, where, names, origin in level:
                self.visited += 1
                if self.visited > _BUDGET:
                    return
                shown = f"{where} ({origin})" if origin else where
                if self.value(value, shown):
                    return
                if isinstance(value, torch.Tensor):
                    grad = value._grad if value.is_leaf else None  # (a non-leaf's warns)
                    if grad is not None and self.value(grad, f"{where}.grad"):
                        return
                    continue
                if isinstance(value, _PYTHON_VALUES) or id(value) in self.seen:
                    continue
                self.seen.add(id(value))
                room = _BUDGET - self.visited - len(following)
                following += [(*child, origin)
                              for child in _children(value, where, names, max(room, 0))]
                following += [(*child, f"{kind} {where}") for kind, *child in
                              (_function_places(value) if type(value) is types.FunctionType
                               and _user(value) else ())]
            level = following


def _children(value, where, names, room: int) -> list:
    """[(child, its place, names)] of what the walk follows from `value` (of a container's
    items, the first `room` only)."""
    if isinstance(value, dict):
        items = list(itertools.islice(value.items(), room))
        return [(v, f"{where}[{k!r}]", names) for k, v in items] + [
            (k, f"a key of {where}", names) for k, _ in items if not isinstance(k, str)]
    if isinstance(value, (list, tuple)):
        return [(v, f"{where}[{i}]", names)
                for i, v in enumerate(itertools.islice(value, room))]
    if isinstance(value, (set, frozenset)):
        return [(v, f"an item of {where}", names) for v in itertools.islice(value, room)]
    if isinstance(value, functools.partial):
        return [(v, f"{where} (a partial's argument)", names)
                for v in (value.func, *value.args, *(value.keywords or {}).values())]
    if isinstance(value, types.MethodType):
        return [(value.__self__, f"{where}.__self__", names), (value.__func__, where, names)]
    if isinstance(value, types.ModuleType):
        if not _user(value):
            return []
        table = vars(value)
        return [(table[n], f"{value.__name__}.{n}", names) for n in names or () if n in table]
    if isinstance(value, type):
        if not _user(value):
            return []
        return [(v, f"{value.__qualname__}.{n}", names) for n, v in list(vars(value).items())
                if not n.startswith("__") and not isinstance(
                    v, (types.FunctionType, staticmethod, classmethod, property))]
    if isinstance(value, torch.nn.Module):
        fields = vars(value)
        found = [(v, f"{where}.{n}", names) for table in _MODULE_TABLES
                 for n, v in list(fields.get(table, {}).items())]
        return found + [(v, f"{where}.{n}", names) for n, v in list(fields.items())
                        if n not in _MODULE_TABLES and not n.endswith("hooks")]
    if _is_record(value):
        try:  # (not `getattr`: a class's own `__getattr__` would run)
            fields = dict(object.__getattribute__(value, "__dict__"))
        except AttributeError:
            fields = {}
        for cls in type(value).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for slot in [slots] if isinstance(slots, str) else slots:
                descriptor = cls.__dict__.get(slot)
                if slot not in ("__dict__", "__weakref__") and hasattr(descriptor, "__get__"):
                    try:
                        fields[slot] = descriptor.__get__(value, type(value))
                    except AttributeError:  # (a slot not set)
                        pass
        return [(v, f"{where}.{n}", names) for n, v in fields.items()]
    return []


def _function_places(fn) -> list:
    """[(kind, value, name, names)] of what a user function reaches outside itself: its
    defaults, closure cells, and the globals its code names."""
    code = fn.__code__
    names = code_names((code,))
    defaults = fn.__defaults__ or ()
    positional = code.co_varnames[:code.co_argcount]
    found = [("the default of a parameter of", value, name, names) for name, value in
             zip(positional[len(positional) - len(defaults):], defaults)]
    found += [("the default of a parameter of", value, name, names)
              for name, value in (fn.__kwdefaults__ or {}).items()]
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            found.append(("a closure variable of", cell.cell_contents, name, names))
        except ValueError:  # (a cell not yet bound)
            pass
    table = fn.__globals__
    found += [("a global read by", table[n], n, names) for n in names if n in table]
    return found


def _function_roots(fn) -> list:
    """The walk's roots for the function traced: a plain function, a bound method, a
    partial, a module or a callable object."""
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    if isinstance(fn, torch.nn.Module):
        fn = type(fn).forward
    if isinstance(fn, types.FunctionType):
        return [(fn, fn.__qualname__, frozenset(), None)]
    call = getattr(type(fn), "__call__", None)
    roots = [(fn, "the function", frozenset(), None)]
    if isinstance(call, types.FunctionType):
        roots.append((call, call.__qualname__, frozenset(), None))
    return roots


def check_graph(graph_module, walk: _Walk) -> None:
    """Walk what the graph and its subgraphs hold: `get_attr` values, parameters, buffers
    and tensor attributes, and the literal arguments of every node."""
    for prefix, module in graph_module.named_modules():
        place = f"the graph's module {prefix}" if prefix else "the graph"
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for name, value in list(vars(module).items()):
            if walk.value(value, f"{place}'s attribute {name}"):
                return
        for table in ("_parameters", "_buffers"):
            for name, value in getattr(module, table).items():
                if walk.value(value, f"{place}'s {table[1:-1]} {name}"):
                    return
        for node in module.graph.nodes:
            if node.op == "get_attr":
                value = _attribute(module, node.target)
                if walk.value(value, f"{place}'s constant {node.target}"):
                    return
                continue
            for value in _literals((node.args, node.kwargs)):
                if walk.value(value, f"an argument of {place}'s node {node.name}"):
                    return


def _attribute(owner, target: str):
    value = owner
    for part in target.split("."):
        value = getattr(value, part, None)
    return value


def _literals(args):
    """The values in a node's arguments that are not nodes."""
    stack = [args]
    while stack:
        value = stack.pop()
        if isinstance(value, (tuple, list)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, slice):
            stack.extend((value.start, value.stop, value.step))
        elif not isinstance(value, (torch.fx.Node, *_PYTHON_VALUES)):
            yield value


def _raise(walk: _Walk, doing: str, name: str, record, fn) -> None:
    kind, where, value = walk.found
    made = record.statement_of(value) if record is not None else None
    statement = made or (record.last if record is not None else None)
    location = statement[1] if statement is not None else _defined_at(fn)
    at = f" at {location[0]}:{location[1]}" if location else ""
    if made:
        located = f", the result of the {statement[0]}{at}"
    elif statement is not None:
        located = f"; the last staged statement traced was the {statement[0]}{at}"
    else:
        located = f" (no staged statement was traced; {name} is defined{at})" if at else ""
    raise LeakedTraceValue(
        f"autoconv internal error: {doing} {name} left a value of the trace ({kind}) in "
        f"{where}{located}. Every later call would see the trace's value, not its own. This "
        "is a bug in autoconv: please file an issue with this function and the arguments it "
        "was called with", location)


def _defined_at(fn):
    """(file, line) of the definition of the function traced, where it has one."""
    fn = type(fn).forward if isinstance(fn, torch.nn.Module) else fn
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code is not None else None


def check_trace(name: str, record, graph_module, results=(), roots=(), fn=None) -> None:
    """Raise LeakedTraceValue where a value of autoconv's trace of `name` outlives it (NOTE
    [no value of a trace escapes]): in `graph_module`, in `results` ([(value, where)]: what
    the ConcreteFunction keeps besides its graph), under `roots` ([(value, where)]: the
    call's objects) or in what `fn` reaches outside itself. `record`: the trace's
    `trace_record.Record`."""
    walk = _Walk(record.modes if record is not None else {})
    check_graph(graph_module, walk)
    if walk.found is None:
        walk.walk([(value, where, frozenset(), None) for value, where in (*results, *roots)])
    if walk.found is None and fn is not None:
        walk.walk(_function_roots(fn))
    if walk.found is not None:
        _raise(walk, "tracing", name, record, fn)


def check_export(name: str, record, program, roots=(), fn=None) -> None:
    """`check_trace` for an ExportedProgram: its graph, constants and state dict, and the
    call's objects (`roots`) and what `fn` reaches after the export."""
    walk = _Walk(record.modes if record is not None else {})
    check_graph(program.graph_module, walk)
    if walk.found is None:
        walk.walk([(value, f"the program's constant {key}", frozenset(), None)
                   for key, value in program.constants.items()]
                  + [(value, f"the program's state dict entry {key}", frozenset(), None)
                     for key, value in program.state_dict.items()]
                  + [(value, where, frozenset(), None) for value, where in roots])
    if walk.found is None and fn is not None:
        walk.walk(_function_roots(fn))
    if walk.found is not None:
        _raise(walk, "exporting", name, record, fn)
