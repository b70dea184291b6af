"""Values of torch.export's trace stored into the attributes of an object a call runs on.

NOTE [values of an export stored on an object]
`self.num_pos = len(idx)` in a module's forward (pytorch-metric-learning's miners record
`self.num_triplets = len(a)`), `idx` rows `torch.where` chose: under autoconv's own trace the
containers from outside are watched (NOTE [trace values stored outside] in autoconv/captures.py),
but non-strict `torch.export` of the converted function runs the store as Python, and a module
it reaches from outside (a global miner) kept the export's symbol `u0` after the export, where
Python's holds the count: a later `int(miner.num_pos)` raised torch's data-dependent error, a
print showed "u0" (tester40 s10). torch puts back the attributes of the exported module's own
submodules (`_detect_attribute_assignment`), silently, and nothing those of another object. So,
while exporting, a user object that a converted call runs on (a module, the object of a bound
method) has its attributes looked at after the call: one that now holds a symbolic number or a
tensor of the trace is put back, with the others, and the call refused at the user's line.
So are the contents of each list, dict or plain object among them (`self.stats.n = len(idx)`,
`self.history.append(len(idx))`: break46b s01), one level deep; nn.Module's own tables are
not looked into (they are the module's parameters, buffers, submodules and hooks).
Only under torch.export (not dynamo, which keeps Python's count as a side effect; not
autoconv's trace, which has its own watch): a copy of `__dict__` per call costs little there.
An object the function makes itself (`kf = Kalman()`, whose `update` stores `self.x = ...`:
tester42's filter, pyro's dual averaging) holds the trace's values as Python's holds the
call's own, and dies with the call: the objects made by a class call in converted code while
exporting are remembered (weakly) and left alone, and so is a call in a staged body, whose
objects are the statement's copies (a store on an outside object there is not seen yet).
The exported module's own modules are torch's to put back: rebinding an attribute they had is
left to torch (refusing it refused `torch.export.export(autoconv(loss))` whose miner stores
`self.num_pos = len(idx)`, which exported before: break46b s04); an attribute they did not
have and what a plain object among them holds, which torch does not put back, are checked.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
import weakref

import torch

from .. import errors
from . import context
from ..identity import type_in

__all__ = ["attributes", "checked_call", "made", "made_in_trace", "refuse_values_stored",
           "note_code", "install_end_check"]

_made: dict = {}  # id -> weak reference of the objects class calls made while exporting


def made(obj):
    """`obj`, made by a class call in converted code while exporting: remembered as the
    function's own (NOTE [values of an export stored on an object])."""
    try:
        ref = weakref.ref(obj, lambda _, key=id(obj): _made.pop(key, None))
    except TypeError:  # (no weak references: a class with __slots__ without __weakref__)
        return obj
    _made[id(obj)] = ref
    return obj


def made_in_trace(obj) -> bool:
    ref = _made.get(id(obj))
    return ref is not None and ref() is obj


_EXPORT_TRACE = os.path.join("torch", "export", "_trace.py")
_roots: list = [None, frozenset()]  # the last exported module seen and the ids of its modules


def restored_by_torch(owner) -> bool:
    """Whether `owner` is one of the modules of the module torch.export's non-strict trace is
    exporting, whose attributes torch puts back after the trace (`_detect_attribute_assignment`
    of its `non_strict_root`, a local of torch/export/_trace.py's frame below this call)."""
    if not isinstance(owner, torch.nn.Module):
        return False
    frame, root = sys._getframe(1), None
    while frame is not None and root is None:
        if frame.f_code.co_filename.endswith(_EXPORT_TRACE):
            root = frame.f_locals.get("non_strict_root")
        frame = frame.f_back
    if not isinstance(root, torch.nn.Module):
        return False
    if _roots[0] is not root:
        _roots[:] = [root, frozenset(id(m) for m in root.modules())]
    return id(owner) in _roots[1]


def _trace_value(value) -> str:
    """"a tensor" / "a number" where `value` is a stand-in of the export running (NOTE [a
    user's own fake values are not the export's]), else ""."""
    from torch._subclasses.functional_tensor import FunctionalTensor

    if isinstance(value, torch._subclasses.FakeTensor):
        return "a tensor" if not _modes or id(value.fake_mode) in _modes else ""
    if isinstance(value, FunctionalTensor):
        return "a tensor"
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        env = getattr(value.node, "shape_env", None)
        theirs = (not _modes or env is None
                  or any(getattr(m, "shape_env", None) is env for m in _modes.values()))
        return "a number" if theirs else ""
    return ""


# NOTE [a user's own fake values are not the export's]
# The walks below refuse a global, closure or object that holds a fake tensor or a symbolic
# number after torch.export. A user may hold such values themselves, made before the export
# under a fake mode or ShapeEnv of their own (a config's shape probe, `with FakeTensorMode():
# probe = torch.empty(3, 4)`): brk56b found that refused as the export's ("`_OWN_FAKE.probe`
# holds a tensor of the export's trace"). So each converted frame's first runtime call while
# exporting notes the fake mode it runs under (`_note_mode`, torch's detect_fake_mode), as
# does the end of the export (its ExportArtifact's fake_mode), and only a fake tensor of a
# noted mode, or a symbolic number of a noted mode's ShapeEnv, is the export's. Where no mode
# was noted (torch's internals moved) every one counts, as before: a false refusal is better
# than a fake value kept.
_modes: dict = {}  # id(fake mode) -> fake mode, of the export running (cleared at its end)


def _note_mode(mode=None) -> None:
    """Note `mode`, else the fake mode the running trace computes under, as the export's."""
    from torch._guards import detect_fake_mode

    mode = mode if mode is not None else detect_fake_mode()
    if mode is not None:
        _modes.setdefault(id(mode), mode)


def attributes(owner) -> dict | None:
    """A copy of the attributes of `owner`, the object a call runs on, taken before it, with
    a copy of what each list, dict or plain object among them holds (NOTE [values of an export
    stored on an object])."""
    fields = getattr(owner, "__dict__", None)
    if type(fields) is not dict:
        return None
    return {"fields": dict(fields),
            "inner": {name: (value, _contents(value)) for name, value in fields.items()
                      if name not in _MODULE_FIELDS and _contents(value) is not None}}


# (nn.Module's own tables: parameters, buffers, submodules, hooks, compared as the module's)
_MODULE_FIELDS = frozenset(torch.nn.Module().__dict__)


def _contents(value):
    """A copy of what `value` holds, where it is a list, a dict or a plain object, else None."""
    if type(value) is list:
        return list(value)
    if type(value) is dict:
        return dict(value)
    fields = getattr(value, "__dict__", None)
    if type(fields) is dict and not isinstance(value, (torch.nn.Module, torch.Tensor, type)) \
            and not callable(value):
        return dict(fields)
    return None


def _stored_inside(value, contents) -> str:
    """What of the export's trace the call put into `value` (a list, dict or plain object
    whose contents were `contents` before it), or ""."""
    if type(value) is list:
        items, held = value, contents
    else:
        table = value if type(value) is dict else value.__dict__
        items, held = table.values(), contents.values()
    held_ids = {id(item) for item in held}
    return next((what for item in items
                 if id(item) not in held_ids and (what := _trace_value(item))), "")


def _put_back(value, contents) -> None:
    if type(value) is list:
        value[:] = contents
    else:
        table = value if type(value) is dict else value.__dict__
        table.clear()
        table.update(contents)


_checking: set = set()  # ids of the objects whose call checked_call is running


def checked_call(owner, fn, args, kwargs, location=None):
    """`fn(*args, **kwargs)`, a call running on `owner`, whose attributes are checked after it
    (NOTE [values of an export stored on an object]). A refusal is located at `location`
    where given (the function's `def`, for the exported call itself, which no converted code
    makes), else at the caller's line. Not an object the function made, nor a call in a
    staged body (see the NOTE)."""
    key = id(owner)
    if key in _checking or made_in_trace(owner) or context.in_staged_body():
        # (a wrapper's call of the same object's forward is checked once)
        return fn(*args, **kwargs)
    before = attributes(owner)
    _checking.add(key)
    try:
        result = fn(*args, **kwargs)
    finally:
        _checking.discard(key)
    refuse_values_stored(owner, before, restored_by_torch(owner), location)
    return result


def refuse_values_stored(owner, before: dict | None, restored: bool = False,
                         location=None) -> None:
    """After the call on `owner`: an attribute rebound to a value of the export's trace is
    refused, every attribute put back as `before` (NOTE [values of an export stored on an
    object]). `restored`: `owner` is a module torch puts back (`restored_by_torch`), so only
    attributes new to it and plain objects among them are looked at. (Not a context manager:
    the error is located at the caller's frame, or at `location` where given.)"""
    if before is None:
        return
    fields = owner.__dict__
    found = next(((name, what, False) for name, value in list(fields.items())
                  if value is not before["fields"].get(name, fields)
                  and not (restored and name in before["fields"])
                  and (what := _trace_value(value))), None)
    # (break46b s01: `self.stats.n = len(idx)`, `self.history.append(len(idx))`; torch's
    # snapshot of a module it restores copies lists and dicts, not plain objects)
    found = found or next(((name, what, True) for name, (value, contents)
                           in before["inner"].items()
                           if not (restored and type_in(value, (list, dict)))
                           and (what := _stored_inside(value, contents))), None)
    if found:
        name, what, inside = found
        for value, contents in before["inner"].values():
            _put_back(value, contents)
        fields.clear()
        fields.update(before["fields"])
        shown = f"{type(owner).__name__}.{name}" + (" (into what it holds)" if inside else "")
        written = f"`self.{name}` updated" if inside else f"`self.{name} = ...`"
        raise (errors.StagingError if location is None else functools.partial(
            errors.StagingError.at, location))(
            "call", f"the call stores {what} the exported graph computes into {shown} "
            f"({written}), an attribute of a Python object: torch.export cannot "
            "store into a Python object on each call, and the object would keep the "
            "export's " + ("symbol" if what == "a number" else "fake tensor")
            + " where Python's holds the call's own value",
            "Return the value and store it in the caller, or keep it in a registered "
            "buffer updated in place (`self.count.fill_(n)`: the graph repeats that on "
            "each call)")


# NOTE [values of an export left in globals]
# The checks above look at the object of a call (a module, a bound method's) outside staged
# bodies. A plain function storing a count on a global object (`_STATS.n = len(idx)`, break46b
# s02), a method called in a staged `if` storing on a global object (the call is the branch's,
# unchecked: s03), an object the function made and kept in a global list (`_KEPT.append(r)`,
# made objects are left alone: s03) left torch.export's symbol `u0` or fake tensor there, and
# a later `int(_STATS.n)` raised torch's data-dependent error (issue 10: no value from tracing
# escapes). So, while exporting, the code of each converted frame that calls into the runtime
# (`converted_call`) and each user function called so has the globals it names copied (the
# first time: what they held, and what their lists, dicts and plain objects held); when
# torch's non-strict export returns, those globals are walked (`_DEPTH` levels of lists,
# dicts and plain objects' fields: not modules, which torch puts back, nor tensors), and one
# reaching a symbolic number or a tensor of the trace is put back as copied and the export
# refused at the line naming the global. A value stored before the code's first runtime call
# has no copy to go back to: refused all the same. A global class is walked as a plain object
# (its own attributes, put back with setattr): a converted constructor keeping its instances or
# its last value in a class attribute (`Shared.items.append(x * 2)`, `Reg.last = x`) left a
# fake tensor there after the export (break50 s01).
_DEPTH = 3
_noted: dict = {}  # id(code) -> (code, globals, {name: (object, copies)}) during one export
# id(function) -> (function, [(kind, name, object, copies)]) of the closure cells and defaults
# of the functions noted (NOTE [values of an export left in closures and defaults])
_noted_cells: dict = {}
_exporting = [0]  # depth of torch.export's non-strict traces running


def note_code(code, table, fn=None) -> None:
    """While exporting, copy what the globals `code` names (in `table`) hold, the first time
    (NOTE [values of an export left in globals]); with `fn` (the function of `code`), what
    its closure cells and defaults hold too."""
    if _exporting[0]:
        _note_mode()  # (NOTE [a user's own fake values are not the export's])
    if fn is not None and _exporting[0] and id(fn) not in _noted_cells:
        _note_cells(fn)
    if not _exporting[0] or id(code) in _noted or type(table) is not dict:
        return
    copies = {}
    for name in _names(code):
        value = table.get(name)
        if _walked(value):
            copies[name] = (value, _copies(value, _DEPTH))
    _noted[id(code)] = (code, table, copies)


# NOTE [values of an export left in closures and defaults]
# The walk of NOTE [values of an export left in globals] looked at globals only: a function
# storing into a dict, list or object its closure holds (`box["v"] = x * 2`, `box` a closure
# variable) or a default argument holds (`def f(x, box={})`) left torch.export's FakeTensor
# there after the export, silently (found by the end-of-export check, NOTE [no value of a
# trace escapes] in autoconv/trace_leaks.py, which raised its internal error). The closure
# cells and defaults of the functions the exported module holds as the export begins (the
# converted function itself, `_note_module`) are copied, and an item of what they hold that
# the export changed to a value of the trace is put back and the export refused at the line
# naming the variable. Not those of a function the call makes (`objective` closing over a
# `state` list the call made: test_callee_side_effects), whose state is the call's own and
# dies with it, as NOTE [values of an export stored on an object] says of made objects; nor
# an item held before the export (a user's own fake tensor).
def _note_cells(fn) -> None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    held = []
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            held.append(("the closure variable", name, cell.cell_contents))
        except ValueError:  # (a cell not yet bound)
            pass
    defaults = getattr(fn, "__defaults__", None) or ()
    positional = code.co_varnames[:code.co_argcount]
    held += [("the default of the parameter", name, value) for name, value in
             zip(positional[len(positional) - len(defaults):], defaults)]
    held += [("the default of the parameter", name, value)
             for name, value in (getattr(fn, "__kwdefaults__", None) or {}).items()]
    _noted_cells[id(fn)] = (fn, [(kind, name, value, _copies(value, _DEPTH))
                                 for kind, name, value in held if _walked(value)])


def _note_module(root) -> None:
    """Copy what the globals of the exported module's forwards, and of the functions its
    modules hold (`Calling(convert(fn))`), name, before the trace runs them."""
    if not isinstance(root, torch.nn.Module):
        return
    for module in root.modules():
        for value in (getattr(type(module), "forward", None), *list(module.__dict__.values())):
            value = getattr(value, "func", value)  # (a partial's function)
            value = getattr(value, "__func__", value)
            if type(value) is types.FunctionType:
                note_code(value.__code__, value.__globals__, value)


def _names(code) -> set:
    names, stack = set(), [code]
    while stack:
        inner = stack.pop()
        names.update(inner.co_names)
        stack.extend(c for c in inner.co_consts if type(c) is type(code))
    return names


def _walked(value) -> bool:
    """Whether the walk looks into `value`: a list, a dict, a plain object or a class."""
    if type_in(value, (list, dict)) or isinstance(value, type):
        return True
    return (type(getattr(value, "__dict__", None)) is dict
            and not isinstance(value, (torch.nn.Module, torch.Tensor))
            and not callable(value) and not type_in(value, (types.ModuleType,)))


def _table_of(value):
    return value if type_in(value, (list, dict)) else value.__dict__


def _copy_of(value):
    """(what `_restore` puts back, the copy) of a walked `value`."""
    table = _table_of(value)
    if type(table) is list:
        return table, list(table)
    if isinstance(value, type):  # (a class's attributes: a read-only mapping)
        return value, dict(table)
    return table, dict(table)


def _restore(container, copy) -> None:
    if not isinstance(container, type):
        from .python_state import _put_back

        _put_back(container, copy)
        return
    for name in [name for name in container.__dict__ if name not in copy]:
        delattr(container, name)
    for name, value in copy.items():
        if container.__dict__.get(name, copy) is not value:
            setattr(container, name, value)


def _copies(value, depth: int) -> list:
    """[(container, a copy of it)] for `value` and what it holds, `depth` levels."""
    out, seen, todo = [], set(), [(value, depth)]
    while todo:
        item, left = todo.pop()
        if id(item) in seen or not _walked(item):
            continue
        seen.add(id(item))
        table = _table_of(item)
        out.append(_copy_of(item))
        if left > 1:
            todo.extend((v, left - 1) for v in (table if type(table) is list
                                                 else list(table.values())))
    return out


_PLAIN = (int, float, bool, str, bytes, type(None))


def _found(value, depth: int, path: str):
    """(path, what) of the first value of the trace `value` reaches, or None."""
    if type_in(value, _PLAIN):  # (the common item: a config's number or name)
        return None
    what = _trace_value(value)
    if what:
        return path, what
    if depth == 0 or not _walked(value):
        return None
    table = _table_of(value)
    items = enumerate(list(table)) if type(table) is list else list(table.items())
    for key, item in items:
        if type_in(item, _PLAIN):
            continue
        found = _found(item, depth - 1, "")
        if found:
            inner = (f"{path}[{key!r}]" if type_in(value, (list, dict)) else f"{path}.{key}")
            return inner + found[0], found[1]
    return None


def _check_end() -> None:
    try:
        _check_noted()
    finally:
        _modes.clear()


def _check_noted() -> None:
    noted = list(_noted.values())
    _noted.clear()
    cells = list(_noted_cells.values())
    _noted_cells.clear()
    for fn, held in cells:  # NOTE [values of an export left in closures and defaults]
        for kind, name, value, copies in held:
            found = _stored_since(copies, name)
            if found is None:
                continue
            _put_all_back(noted, cells)
            _refuse_left(python_state_line(fn, name), found,
                         f"{kind} '{name}' of {fn.__qualname__}")
    walked = set()  # (id of a globals table, name): the functions of one module share them
    for code, table, _ in noted:
        for name in sorted(_names(code)):
            if name not in table or (id(table), name) in walked:
                continue
            walked.add((id(table), name))
            found = _found(table[name], _DEPTH, name)
            if found is None:
                continue
            _put_all_back(noted, cells)
            _refuse_left(python_state_line(code, name), found, f"the global '{name}'")


def _stored_since(copies, name: str):
    """(place, what) of the first value of the trace an item of the containers `copies`
    copied holds that is not the item copied (a user's own fake tensor held before is not
    the export's), or None."""
    for container, copy in copies:
        table = _table_of(container) if not isinstance(container, type) else container.__dict__
        items = enumerate(list(table)) if type(table) is list else list(table.items())
        before = dict(enumerate(copy)) if type(copy) is list else copy
        for key, item in items:
            if key in before and before[key] is item:
                continue
            found = _found(item, _DEPTH, "")
            if found:
                shown = f"[{key!r}]" if type_in(table, (list, dict)) else f".{key}"
                where = name if container is copies[0][0] else f"{name}..."
                return where + shown + found[0], found[1]
    return None


def python_state_line(fn, name):
    from .python_state import _line_naming

    return _line_naming(fn, name)


def _put_all_back(noted, cells) -> None:
    """The containers the noted code's globals, closures and defaults held, as copied."""
    for _, _, others in noted:  # (this code's copies among them)
        for _, (_, held) in others.items():
            for container, copy in held:
                _restore(container, copy)
    for _, held in cells:
        for _, _, _, copies in held:
            for container, copy in copies:
                _restore(container, copy)


def _refuse_left(location, found, reached: str):
    place, what = found
    raise errors.StagingError.at(
        location, "function",
        f"after torch.export, `{place}` (reached from {reached}) holds "
        f"{what} of the export's trace (" + ("a symbol such as u0" if what == "a number"
                                             else "a fake tensor")
        + "), not a value of a call: the exported program cannot store into a "
        "Python object on each call",
        "Return the value from the function and store it in the caller, or keep it "
        "in a registered buffer or a global tensor updated in place (`t.fill_(n)`: "
        "the program repeats that on each call)")


_NOT_A_KNOWN_TYPE = re.compile(r"Found <class '([^']+)'> in output, which is not a known type")


def refuse_object_outputs(error) -> None:
    """NOTE [objects an exported function returns]: an exported program gives back tensors in
    the containers pytree knows, and non-strict export refuses an object of a user class among
    its outputs with torch's "register a pytree" RuntimeError, which names neither the
    function nor what to do. (autoconv's own replay makes such objects again: NOTE [objects a
    function returns] in autoconv/returned_objects.py; registering the user's class with
    pytree for them would change how every pytree function of the process sees it.) Raised
    as a StagingError from torch's, naming the class and the fix."""
    found = _NOT_A_KNOWN_TYPE.search(str(error)) if type(error) is RuntimeError else None
    if found is None:
        return
    raise errors.StagingError(
        "return",
        f"the exported function returns an object of class {found.group(1)}, which a "
        "torch.export program cannot give back: its outputs are tensors in tuples, lists, "
        "dicts and classes registered with pytree",
        "Return the object's tensors (a tuple or dict of them) and build the object outside "
        "the exported function, or register the class with "
        "torch.utils._pytree.register_dataclass / register_pytree_node") from error


def install_end_check() -> None:
    """Wrap torch.export's non-strict trace with `_check_end` (NOTE [values of an export left
    in globals]), once; nothing where torch's internals moved."""
    try:
        from torch.export import _trace
    except ImportError:
        return
    current = getattr(_trace, "_non_strict_export", None)
    if current is None or getattr(current, "_autoconv_checked", False):
        return

    @functools.wraps(current)
    def _non_strict_export(*args, **kwargs):
        _exporting[0] += 1
        try:
            if _exporting[0] == 1:
                _note_module(args[0] if args else kwargs.get("mod"))
            result = current(*args, **kwargs)
        except BaseException as error:
            if _exporting[0] == 1:
                _noted.clear()
                _noted_cells.clear()
                _modes.clear()
            refuse_object_outputs(error)
            raise
        finally:
            _exporting[0] -= 1
        if _exporting[0] == 0:
            _note_mode(getattr(result, "fake_mode", None))  # (the export's own)
            _check_end()
        return result

    _non_strict_export._autoconv_checked = True
    _trace._non_strict_export = _non_strict_export
