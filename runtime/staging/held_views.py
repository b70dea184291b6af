"""The tensors an input object of a staged statement holds, for the check of views of tensors
the statement updates in place (`_refuse_views_of_written` in runtime/operators.py).

NOTE [a view held by an input object]
`h.w = h.flat[:1]` before `if x.sum() > 0: h.flat.add_(1); r = h.w * 10` (h an argument): in
Python `h.w` sees the update (20 at x = [1, 0]). The statement updates `h.flat` as an input
carried as a state slot (its own copy in each body), and the body reaches `h.w` through the
object `h`, which torch's operator lifts as an operand from before the statement: 10, and the
loop `while h.w.sum() < 5: h.flat.add_(1)` ran 20 trips for Python's 4 (replay and
torch.export; torch-levenberg-marquardt's parameters are views of its `flat_params`, set through
`p.data = ...`). The check of views compared the statement's tensor inputs only; an input
that is an object, a module, a dict or a list hides the view. So, only for a statement that
updates an input in place (rare: the check returns first otherwise), the tensors such inputs
hold are compared with the updated ones by storage too: an object's fields, a dict's values, a
list's or tuple's items (to `_DEPTH` levels, each container once), a module's parameters and
buffers. A tensor the body never reads is compared as well: the statement is refused at its
line where a view of an updated tensor is reachable through its inputs, with what to write
instead (read the view after the statement, or compute it from the updated tensor in the
body), never staged with a stale view.

NOTE [a view held by a global object]
The same through a global (or a closure's) object the bodies read by name: `G.w.add_(1); r =
G.flat * 10` in a staged `if`. `G.w` is an input of the statement, updated as its own copy;
`G.flat`, read by name, is the real tensor, a constant of the body lifted from before the
statement: 0 for Python's 10, in autoconv's replay (views52's strict xfail). So the tensors
the objects that the bodies' code loads by name hold are compared as well (`read_tensors`;
one level of code: a helper the body calls that reads the global is not followed).

NOTE [a view held by a named tuple]
`h = Flat(flat, flat[:1])` (a `collections.namedtuple`), then `while h.w.sum() < 5:
h.flat.add_(1)`, or the test `view_of(h).sum() < 5` with a helper returning `h.w`: in Python
`h.w` sees each update (4 trips from [1, 0]). Both staged loops ran 20 trips (the cap) in
replay and torch.export, the first under torch.compile too (brk53). The walks above asked a
tuple for `type(value) is tuple` and an object for its `__dict__`: a named tuple is neither, so
the fields it holds were never compared; and where a helper's update moves the named tuple into
the state (objects.with_input_as_state), the check of a tuple's items sharing memory asked the
same of it. A named tuple (a tuple subclass, torch's structseqs too) is walked as the tuple it
is, both places: refused at the loop's line, with what to write instead. Under dynamo, which
`held_tensors` is not traced for (objects' `__dict__`), a tuple input's own tensors are
compared (`tuple_tensors`): the first loop gave 20 under torch.compile.
"""

from __future__ import annotations

import dis
import types

import torch

__all__ = ["held_tensors", "read_tensors", "tuple_tensors"]

_DEPTH = 4  # (`self.model.layer.weight`: an object, a module, its submodule's parameter)


def held_tensors(value, name: str) -> list:
    """[(tensor, its name)] the non-tensor input `value` (shown as `name`) holds (NOTE [a view
    held by an input object])."""
    found: list = []
    _collect(value, name, found, set(), _DEPTH)
    return found


def tuple_tensors(value, name: str) -> list:
    """[(tensor, its name)] the tuple (or named tuple) input `value` holds, in its nested tuples
    too: what dynamo traces of `held_tensors` (NOTE [a view held by a named tuple])."""
    found: list = []
    fields = getattr(type(value), "_fields", None)
    for i, item in enumerate(value):
        shown = f"{name}.{fields[i]}" if fields and i < len(fields) else f"{name}[{i}]"
        if isinstance(item, torch.Tensor):
            found.append((item, shown))
        elif isinstance(item, tuple):
            found.extend(tuple_tensors(item, shown))
    return found


def read_tensors(bodies) -> list:
    """[(tensor, its name)] the objects that the code of the functions `bodies` (and the code
    nested in it) loads by name from globals and closure cells hold (NOTE [a view held by a
    global object])."""
    found: list = []
    seen: set = set()
    for fn in bodies:
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        cells = dict(zip(code.co_freevars, fn.__closure__ or ()))
        for name in _loaded_names(code):
            cell = cells.get(name)
            if cell is not None:
                try:
                    value = cell.cell_contents
                except ValueError:  # (an empty cell)
                    continue
            elif name in fn.__globals__:
                value = fn.__globals__[name]
            else:
                continue
            if not isinstance(value, torch.Tensor):  # (a tensor read by its own name: NOTE
                # [an outside tensor read by its own name in a body updating it as an
                # argument] in outside_writes.py)
                _collect(value, name, found, seen, _DEPTH)
    return found


_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_DEREF", "LOAD_CLASSDEREF"})


def _loaded_names(code) -> set:
    names = {i.argval for i in dis.get_instructions(code) if i.opname in _LOADS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _loaded_names(const)
    return names


def _collect(value, name, found, seen, depth) -> None:
    if isinstance(value, torch.Tensor):
        found.append((value, name))
        return
    if depth == 0 or id(value) in seen:
        return
    if isinstance(value, torch.nn.Module):
        seen.add(id(value))
        found.extend((t, f"{name}.{n}") for n, t in value.named_parameters(remove_duplicate=False))
        found.extend((t, f"{name}.{n}") for n, t in value.named_buffers(remove_duplicate=False))
        return
    if type(value) is dict:
        seen.add(id(value))
        for key, item in value.items():
            _collect(item, f"{name}[{key!r}]", found, seen, depth - 1)
        return
    if type(value) is list or isinstance(value, tuple):
        # (a named tuple, or torch's structseq such as `torch.max(x, 0)`'s, is a tuple too: its
        # fields were left out, NOTE [a view held by a named tuple])
        seen.add(id(value))
        fields = getattr(type(value), "_fields", None)
        for i, item in enumerate(value):
            shown = f"{name}.{fields[i]}" if fields and i < len(fields) else f"{name}[{i}]"
            _collect(item, shown, found, seen, depth - 1)
        return
    fields = getattr(value, "__dict__", None)
    if type(fields) is not dict or isinstance(value, (type, types.ModuleType, types.FunctionType,
                                                      types.MethodType)):
        return
    seen.add(id(value))
    for key, item in fields.items():
        _collect(item, f"{name}.{key}", found, seen, depth - 1)
