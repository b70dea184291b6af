"""Staged values that are another tensor (or a view of it) in Python, kept in step after
in-place updates, or refused (NOTE [staged values that alias in Python])."""

from __future__ import annotations

import weakref

import torch

from .augmented import is_stand_in
from .errors import StagingError
from .staging import tensor_reads

__all__ = ["register_row", "register_choice", "check_aliases", "check_kept_view",
           "check_kept_view_call", "check_held_view", "check_item_view_call",
           "held_view_shared"]

# NOTE [staged values that alias in Python]
# Some values are one tensor with another in Python and a copy in the graph: `c = data[k]`
# with a traced `k` (a view of `data`; staged, a gather), `c = items[k]` of a Python list of
# tensors (the item itself; staged, a row of the stacked items), `vals[i]` of a list grown
# under tensor control flow (the item; staged, a row of the list's buffer), `max(a, b)` (a or
# b; staged, torch.where's output), and the output of a staged `if` / loop whose path gave a
# view of an operand or a value read from one (`r = data[0] if c else data[1]`; torch.cond /
# while_loop outputs never alias their inputs; an operand itself, `acc = pos if c else neg`,
# is followed by name: NOTE [in-place updates of a choice]). An in-place update of either side (`data.mul_(3)`, `data.t()[0].fill_(0)`,
# `helper(data)`, `r.zero_()`, `vals[0].mul_(10)`) reached the other in Python and missed it
# staged, silently in every mode. Each such value is registered here with the tensors it may
# share memory with (its sources) and the version counters of both (a view shares its base's
# counter, and the tracers' tensors count their updates too); the converter checks them
# after each statement that may update a tensor in place (`check_aliases`,
# autoconv/converters/alias_checks.py). Where one side changed: a row is read again
# (`c.copy_(data[k])`) or written back (`data[k] = c`; a Python list's items
# `item.copy_(where(k == i, c, item))`; a grown list's buffer row), which is Python's value on
# every path; a choice's paths are not known outside the graph, and the update is refused at
# the statement's line while the choice is still held (a weak reference: a rebound or
# dropped value is not followed; a row, and an item of a grown list, are held until the next
# check, for `items[k].copy_(v)`). Where both sides changed, an earlier pass's write-back or
# refresh made them one again (NOTE [in-place updates of a choice] in
# autoconv/converters/choices.py). A staged body marks which of its outputs may be which of
# its operands (`note_outputs`), followed through the values registered inside it, and the
# statement registers its outputs after it (`register_outputs`); a state the body keeps or
# updates in place is its own slot's, written back by the statement, and not registered.
# Under torch.compile a version counter is a data-dependent symbol (dynamo refuses to branch
# on it), and nothing is registered there; a loop's output chosen from its items (`best = v`
# in `for v in x`: the body's private copies break the lookup) and a grown list of views
# (`vals.append(v)`: registering the buffer refused the statements' own write-backs) are not
# followed. Both are refused from the source instead: NOTE [views kept by a staged
# statement].

_ENTRIES: list = []


class _Entry:
    __slots__ = ("value", "held", "sources", "versions", "tracer", "refresh", "write_back",
                 "what")

    def __init__(self, value, sources, refresh, write_back, what):
        self.value = weakref.ref(value)
        # (a row is held until the next check: `items[k].copy_(v)` updates a row nothing else
        # holds; a choice nothing holds any more is not refused)
        self.held = value if refresh is not None or write_back == "held" else None
        self.sources = tuple(weakref.ref(s) for s in sources)
        self.tracer = _tracer()
        self.refresh = refresh
        self.write_back = write_back
        self.what = what
        self.snapshot(value)

    def snapshot(self, value) -> None:
        self.versions = (tensor_reads.version_of(value),) + tuple(
            _version_of(s()) for s in self.sources)


def _version_of(source):
    """A source's version: a tensor's counter; a grown list's buffer (a new tensor after
    `vals[i] = t`) and its counter."""
    if source is None:
        return None
    if isinstance(source, torch.Tensor):
        return tensor_reads.version_of(source)
    return (id(source.buffer), tensor_reads.version_of(source.buffer))


def _tracer():
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    mode = get_proxy_mode()
    return getattr(mode, "tracer", None)


def _active() -> bool:
    # (only under autoconv's own tracing and torch.export's: NOTE [staged values that alias
    # in Python])
    return not torch.compiler.is_dynamo_compiling() and _tracer() is not None


def _register(value, sources, refresh, write_back, what) -> None:
    # (a number's stand-in is no tensor to the user, which nothing aliases in Python: `h =
    # min(h, t_end - t)` of floats, then `t += h`, was refused as an update of a choice)
    if quiet() or not _active() or not isinstance(value, torch.Tensor) or is_stand_in(value):
        return
    # (a view shares its base's version counter; the base outlives a rebound view)
    sources = [(s._base if s._base is not None else s) if isinstance(s, torch.Tensor) else s
               for s in sources if isinstance(s, torch.Tensor) and not is_stand_in(s)
               or _grown(s)]
    if not sources:
        return
    tracer = _tracer()
    for e in _ENTRIES:
        if e.tracer is not tracer:
            e.held = None  # (another trace's: a finished one's tensors are not kept)
    _ENTRIES[:] = [e for e in _ENTRIES if e.value() is not None]
    _ENTRIES.append(_Entry(value, sources, refresh, write_back, what))


def register_row(value, items, key) -> None:
    """`value` is `items[key]` read with a traced 0-d integer `key`: a view of the tensor
    `items` (an item of the Python list `items`) in Python, a gather staged."""
    if not _active():
        return
    from . import subscripts

    if isinstance(items, torch.Tensor):
        def refresh(v):
            with unregistered():
                v.copy_(subscripts.getitem(items, key))

        def write_back(v):
            subscripts.setitem(items, key, v)

        _register(value, [items], refresh, write_back, "a row read with a traced index")
        return
    listed = list(items)

    def refresh_item(v):
        with unregistered():
            v.copy_(subscripts.getitem(listed, key))

    def write_back_item(v):
        size = len(listed)
        for i, item in enumerate(listed):
            item.copy_(torch.where((key == i) | (key == i - size), v, item))

    _register(value, listed, refresh_item, write_back_item,
              "an item of a list read with a traced index")


def _grown(value) -> bool:
    from .lists import StagedList

    return type(value) is StagedList


def _aliased(t, own_base=True) -> list:
    """The tensors `t` may share memory with in Python besides its own: its base (not with
    `own_base=False`: a grown list's buffer, a view of the graph's own tensor), and what the
    registered values it is or views were read or chosen from."""
    if not isinstance(t, torch.Tensor):
        return []
    own = own_base and t._base is not None
    return [_base_of(o) for o in _origins(t) if o is not t or own]


def register_grown_item(value, items, index) -> None:
    """`value` is `items[index]` of a list grown under tensor control flow (a StagedList): the
    item itself in Python, a row of the list's buffer staged (NOTE [staged values that alias
    in Python]). The items' own sources (`vals.append(v)` of a view) are not followed."""
    if quiet() or not _active():
        return
    shared = _aliased(items.buffer, own_base=False)
    if shared:  # (the item is another tensor, or a view of one: NOTE [staged values ...])
        register_choice(value, shared, "an item of a grown list that is another tensor or "
                                       "a view in Python", held=True)
        return

    def refresh(v):
        with unregistered():
            v.copy_(torch.index_select(items.buffer, 0, index.reshape(1)).squeeze(0))

    def write_back(v):
        items[index] = v

    _register(value, [items], refresh, write_back, "an item of a grown list")


def register_item(value, rows) -> None:
    """`value`, a staged loop's item, is a row of `rows` in Python. The loop follows its own
    updates (NOTE [loop items read after an update of the iterable] in
    autoconv/converters/control_flow.py); registered only so that a loop that carries it out
    (`best = v`) marks its output (`note_outputs`), never checked itself."""
    if quiet() or not _active() or not isinstance(value, torch.Tensor):
        return
    _register(value, [rows], None, "passive", "a loop's item")


def register_choice(value, sources, what: str, held: bool = False) -> None:
    """`value`, an output of a staged statement, may be one of `sources` (or a view of one)
    in Python: an in-place update of either side is refused while `value` is held (with
    `held`, held here until the next check: `vals[-1].add_(1)`)."""
    _register(value, sources, None, "held" if held else None, what)


_QUIET = [0]


class unregistered:
    """Reads made by a refresh are not registered themselves."""

    # (nothing is registered under dynamo, which refuses a staged body's mutation of a global)
    def __enter__(self):
        if not torch.compiler.is_dynamo_compiling():
            _QUIET[0] += 1

    def __exit__(self, *exc):
        if not torch.compiler.is_dynamo_compiling():
            _QUIET[0] -= 1


def quiet() -> bool:
    return _QUIET[0] > 0


def _input_positions(t, inputs) -> set:
    """The positions of the `inputs` whose memory `t` may share (itself, a view, the base)."""
    base = t._base if t._base is not None else t
    found = set()
    for j, u in enumerate(inputs):
        if isinstance(u, torch.Tensor):
            ubase = u._base if u._base is not None else u
            if t is u or base is u or base is ubase:
                found.add(j)
    return found


def _base_of(t):
    return t._base if t._base is not None else t


def _origins(t) -> list:
    """`t` and the tensors registered values it is (or views) may be in Python, followed
    through values registered from other registered values (`best = v` of a loop's item)."""
    out, todo = [], [t]
    while todo and len(out) < 64:
        u = todo.pop()
        if any(u is o for o in out):
            continue
        out.append(u)
        base = _base_of(u)
        for entry in _ENTRIES:
            value = entry.value()
            if value is not None and (value is u or _base_of(value) is base):
                todo += [s() for s in entry.sources if isinstance(s(), torch.Tensor)]
    return out


def note_outputs(outputs, inputs, aliased: dict) -> None:
    """In a body's trace: `aliased[k]` gets the positions of the body's `inputs` that its
    output leaf `k` may be (or view) in Python: an input or a view of one other than its own
    slot's (a state the body keeps or updates in place is written back by the statement), or
    a row registered here that was read from one."""
    if not _active():
        return
    import torch.utils._pytree as pytree

    for k, t in enumerate(pytree.tree_leaves(outputs)):
        if not isinstance(t, torch.Tensor):
            continue
        if k < len(inputs) and t is inputs[k]:
            continue
        # (a view of an operand, or a value read from one; an operand itself is a choice
        # between names, which NOTE [in-place updates of a choice] in
        # autoconv/converters/choices.py writes back and refreshes by name)
        found = set()
        for origin in _origins(t):
            if origin is not t or t._base is not None:
                found |= _input_positions(origin, inputs)
        if found:
            aliased.setdefault(k, set()).update(found)


def register_outputs(outputs, inputs, aliased: dict, what: str) -> None:
    """After a staged statement: its output leaves that may be one of its operands `inputs`
    in Python (`note_outputs`) are registered as choices."""
    if not aliased or not _active():
        return
    import torch.utils._pytree as pytree

    leaves = pytree.tree_leaves(outputs)
    for k, positions in aliased.items():
        if k < len(leaves):
            register_choice(leaves[k], [inputs[j] for j in positions if j < len(inputs)], what)


def check_aliases() -> None:
    """After a statement that may update a tensor in place: each registered value whose
    tensor or sources changed since is read again, written back, or refused.

    Raises:
        StagingError: a staged choice that is a tensor or a view of it in Python, one of them
            updated in place while the choice is held.
    """
    if torch.compiler.is_dynamo_compiling() or not _ENTRIES or not _active():
        return
    tracer = _tracer()
    # (an entry holds its trace's tracer: dropped with its value)
    _ENTRIES[:] = [e for e in _ENTRIES if e.value() is not None]
    for _ in range(len(_ENTRIES) + 1):
        changed = False
        for entry in list(_ENTRIES):
            value = entry.value()
            if value is None or entry.tracer is not tracer or entry.write_back == "passive":
                continue
            sources = [s() for s in entry.sources]
            if all(s is None for s in sources):
                # (nothing left that shares its memory: a probe's or an earlier run's choice
                # whose sources are gone; a dead source read as changed refused statements
                # that update nothing, fuzz seed 24 program 100)
                _ENTRIES.remove(entry)
                continue
            now = (tensor_reads.version_of(value),) + tuple(
                entry.versions[i + 1] if s is None else _version_of(s)
                for i, s in enumerate(sources))
            if now == entry.versions:
                continue
            value_changed = now[0] != entry.versions[0]
            sources_changed = now[1:] != entry.versions[1:]
            if value_changed and sources_changed:
                # (an update the converter already wrote back or read again: NOTE [in-place
                # updates of a choice] in autoconv/converters/choices.py)
                entry.snapshot(value)
                continue
            if entry.refresh is None:
                _ENTRIES.remove(entry)
                raise StagingError(
                    "choice",
                    f"a tensor chosen by a staged statement ({entry.what}) is one of the "
                    "tensors it was chosen from, or a view of one, in Python; "
                    + ("it is updated in place here, which in Python updates that tensor"
                       if value_changed else
                       "that tensor (or another view of it) is updated in place here, which "
                       "in Python reaches the chosen one")
                    + ", but staged the choice is a new tensor (torch.cond / while_loop "
                    "outputs are copies), so the update would not reach the other",
                    "Clone the chosen tensor where it is chosen (`r = data[0].clone()`) if it "
                    "should keep its values, or choose it again after the update (index after "
                    "the update, or select with `torch.where`)")
            if value_changed:
                entry.write_back(value)
            else:
                entry.refresh(value)
            entry.snapshot(value)
            changed = True
        if not changed:
            break
    for entry in _ENTRIES:
        if entry.tracer is tracer:
            entry.held = None


# NOTE [views kept by a staged statement]
# A compound statement that keeps a view of a tensor `x` (a loop's item, `best = v` in `for v
# in x`; `r = x[i]`; `vals.append(x[i])`) keeps, in Python, memory shared with `x`; staged, the
# loop's or `if`'s output is a copy (torch.cond / while_loop outputs never alias their
# inputs), and a grown list is a buffer of copies. An in-place update of either side after the
# statement (`best.mul_(2)`, `x.add_(1)`, `vals[0].mul_(2)`) reached the other in Python and
# missed it staged, silently in every mode; the registry above cannot follow a loop's output
# chosen from its private copies of the items, and dynamo gives it no version counters at all.
# The converter (autoconv/converters/kept_views.py) finds these from the source, in every
# mode: after such a statement, an update of one side where the other is read afterwards
# (later statements, an enclosing loop, the caller's argument) is preceded by
# `check_kept_view(kept, x, ...)`. It refuses when the kept value no longer shares `x`'s
# memory under a tracer: a staged statement made it a copy (on the paths that did not bind
# the view it was none in Python either, but the graph cannot tell the paths apart). A view
# the trace kept as a view (a loop run in Python, a Python `if`) shares the memory and is
# right as it is. Updates inside the statement that keeps the view are its own (loop items
# are written back; NOTE [the rows a staged loop reads]). A call given either side (`bump(x)`,
# `bump(best[0])`, `obj.bump(t=best)`) is preceded by `check_kept_view_call`, which asks the
# converter's record of the callee (and of the functions it passes the parameter on to)
# whether it updates that parameter or a view of it in place (NOTE [parameters a function
# updates in place] in autoconv/converters/kept_views.py); only then is the call checked like the update itself: a call that only reads
# is not refused. This is the source, not the version counters, so it holds under dynamo
# too. Under dynamo only ("compiled ..." kinds), the cases the registry follows in replay
# and torch.export: a view chosen by a tensor `if`, `a if c else b` or `max` / `min`, and an
# item of a list grown or bound by a staged statement (`vals.append(v)`; `b = [x[0], x[1]]`
# in a tensor `if`) updated in place. A view held in a carried dict, list or object, updated
# in place by a staged loop that reads its tensor, is refused by the loop (NOTE [a view held
# in an object, its tensor read by a loop] in staging/objects.py).


def _shares(a, b) -> bool:
    """Whether tensors `a` and `b` share memory as the tracers know it (a view's `_base`)."""
    return a is b or _base_of(a) is _base_of(b)


def check_kept_view(kept, tensor, kept_name: str, tensor_name: str, kind: str, line: int,
                    by: str | None = None) -> None:
    """Before an in-place update of `kept` (a view of `tensor` that a compound statement on
    line `line` kept: `kind` "item", "view" or "list"; "compiled ..." where only dynamo's are
    refused here: a view an `if` binds) or of `tensor`, where the other is read
    afterwards (NOTE [views kept by a staged statement]).

    Raises:
        StagingError: under a tracer, `kept` is a copy of a view of `tensor`, or a list grown
            under tensor control flow from such views.
    """
    from .lists import StagedList
    from .values import is_staged

    if kind == "compiled grown":
        # (an item of a list grown under tensor control flow, updated in place: replay and
        # torch.export write it back into the list's buffer, `register_grown_item`)
        if torch.compiler.is_dynamo_compiling() and type(kept) is StagedList:
            raise StagingError(
                "statement",
                f"an item of `{kept_name}`, a list grown (or bound) under tensor control flow "
                f"(line {line}), is updated in place here; under torch.compile the item is a "
                "copy of the list's row and the update would not reach the list",
                f"Update it out of place and store it back (`{kept_name}[0] = "
                f"{kept_name}[0] * 10`)")
        return
    if isinstance(tensor, (list, tuple)) and kind.startswith("compiled "):
        # (a Python list's row: `rows[k]` is one of its items in Python)
        if not torch.compiler.is_dynamo_compiling() or not isinstance(kept, torch.Tensor) \
                or any(isinstance(t, torch.Tensor) and _shares(kept, t) for t in tensor):
            return
        tensor, listed = next((t for t in tensor if isinstance(t, torch.Tensor)), None), True
    else:
        listed = False
    if not isinstance(tensor, torch.Tensor):
        return
    dynamo = torch.compiler.is_dynamo_compiling()
    compiled = kind.startswith("compiled ")
    if compiled:
        if not dynamo:
            return
        kind = kind[len("compiled "):]
    if not dynamo and not is_staged(tensor) and _tracer() is None:
        return
    if kind in ("list", "held list"):
        # (a number's stand-in is no tensor to the user: `ks.append(k); k += 1` of an int
        # rebinds `k` in Python, the list keeps the old number)
        if type(kept) is not StagedList or kind == "held list" and is_stand_in(tensor):
            return
    elif not isinstance(kept, torch.Tensor) or is_stand_in(kept) or _shares(kept, tensor):
        return
    copy = ("under torch.compile it is a copy (dynamo gives autoconv no version counters to "
            "follow it with)" if compiled else
            "staged it is a copy (torch.cond / while_loop outputs never alias their inputs)")
    if kind == "held list":  # NOTE [tensors appended, then updated in place]
        what = (f"`{kept_name}` holds `{tensor_name}` itself in Python (appended on line "
                f"{line}), but staged it is a list grown in a buffer of copies")
        fix = (f"Append a copy (`{kept_name}.append({tensor_name}.clone())`) if the list "
               "should keep the value it had when appended, or update out of place "
               f"(`{tensor_name} = {tensor_name} / 2`)")
    elif kind == "list":
        what = (f"`{kept_name}` holds views of `{tensor_name}` in Python (appended on line "
                f"{line}), but staged it is a list grown in a buffer of copies")
        fix = (f"Append copies (`{kept_name}.append({tensor_name}[i].clone())`) if the list "
               "should keep its values, or update out of place "
               f"(`{tensor_name} = {tensor_name} + 1`)")
    else:
        what = (f"`{kept_name}` is "
                + ("an item" if kind == "item" or listed else "a view") + f" of `{tensor_name}` "
                f"in Python (bound on line {line}), sharing its memory, but {copy}")
        fix = (f"Clone it where it is kept (`{kept_name} = ....clone()`) if it should keep "
               f"its values, or update out of place (`{kept_name} = {kept_name} * 2`)")
    how = "updated in place here" if by is None else f"updated in place here by {by}"
    raise StagingError(
        "statement",
        f"{what}; `{kept_name}` or `{tensor_name}` is {how} and the other read "
        "afterwards, which in Python sees the update and in the graph would not", fix)


# The parameters a called function updates in place are the converter's reading of it (NOTE
# [parameters a function updates in place] in autoconv/converters/kept_views.py), recorded
# with its converted code; the calls through which it passes a parameter on are followed here,
# where the function called is known (a global or closure name of the caller). Followed once
# per function (dynamo calls `_updated_parameters` for real: it is Python's reading of the
# converter's record), held weakly: keyed by code object, every function given a loop's item or
# a kept view under torch.compile stayed in memory with its code for the process's life, and
# closures of one `def` calling different functions shared the first one's answer.

_UPDATED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # function -> parameters


def _resolve(function, name: str):
    """The user function `name` means in `function`'s body (a closure cell or a global)."""
    import types

    code = function.__code__
    if name in code.co_freevars and function.__closure__:
        try:
            value = function.__closure__[code.co_freevars.index(name)].cell_contents
        except ValueError:
            return None
    else:
        value = function.__globals__.get(name)
    return value if type(value) is types.FunctionType else None


def _updated_parameters(function) -> frozenset:
    """The names of `function`'s parameters it may update in place, itself or through the
    functions it calls (NOTE [parameters a function updates in place])."""
    from .calls import parameter_updates

    if function in _UPDATED:
        return _UPDATED[function] or frozenset()
    _UPDATED[function] = None  # (a recursive call: nothing more than what is found without it)
    direct, passes = parameter_updates(function)
    found = set(direct)
    for name, where, parameter in passes:
        callee = _resolve(function, name) if parameter not in found else None
        if callee is None:
            continue
        names = _parameter_names(callee)
        given = names[where] if isinstance(where, int) and where < len(names) else where
        if given in _updated_parameters(callee):
            found.add(parameter)
    _UPDATED[function] = frozenset(found)
    return _UPDATED[function]


_updated_parameters._dynamo_marked_constant = True  # (dynamo calls it for real)


def _parameter_names(function) -> tuple:
    code = function.__code__
    return code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]


def _updated_argument(function, positions: tuple, keywords: tuple):
    """The first of the parameters at `positions` (of a call's positional arguments) or named
    `keywords` that `function` updates in place, else None."""
    updated = _updated_parameters(function)
    names = _parameter_names(function)
    for where in positions + keywords:
        name = names[where] if isinstance(where, int) and where < len(names) else where
        if name in updated:
            return name
    return None


_updated_argument._dynamo_marked_constant = True  # (dynamo calls it for real)


def updated_argument(fn, position: int):
    """The name of the parameter at `position` (of a call's positional arguments) of the
    function `fn` where `fn` updates it in place, itself or through a function it calls, else
    None (NOTE [parameters a function updates in place])."""
    if position >= fn.__code__.co_argcount:
        return None
    return _updated_argument(fn, (position,), ())


updated_argument._dynamo_marked_constant = True  # (dynamo calls it for real)


def _plain_function(fn):
    """(the Python function a call of `fn` runs, how many arguments the call puts first), or
    (None, 0) for a callee that is none (a C function, a builtin)."""
    import types

    if type(fn) is types.MethodType:
        fn, offset = fn.__func__, 1
    elif isinstance(fn, torch.nn.Module):
        fn, offset = type(fn).forward, 1
    else:
        offset = 0
    return (fn, offset) if type(fn) is types.FunctionType else (None, 0)


def check_item_view_call(fn, positions: tuple, keywords: tuple, item) -> None:
    """Before a call given views of `item`, a staged loop's item (its positional arguments at
    `positions`, its keyword arguments `keywords`): under torch.compile, refused where the loop
    does not write the item back and `fn` updates one of those parameters in place (NOTE [a
    view of a loop's item given to a call] in autoconv/converters/kept_views.py).

    Raises:
        StagingError: such a call.
    """
    from .staging.tracers.dynamo import UNMARKED_ITEM

    if not torch.compiler.is_dynamo_compiling() or not isinstance(item, torch.Tensor) \
            or not getattr(item, UNMARKED_ITEM, False):
        return
    function, offset = _plain_function(fn)
    if function is None:
        return
    name = _updated_argument(function, tuple(p + offset for p in positions), tuple(keywords))
    if name is not None:
        raise StagingError(
            "for loop",
            f"a view of the loop's item is given to '{function.__name__}', which updates it in "
            f"place (its parameter '{name}'); under torch.compile the staged loop's item is a "
            "copy of the row, and the update would not reach the tensor the loop iterates",
            "Update the item in the loop body itself (autoconv writes that update back), or "
            f"return the new values from '{function.__name__}' and write them by index "
            f"(`x[i, :1] = {function.__name__}(x[i, :1])` in `for i in range(len(x))`)")


def check_kept_view_call(fn, positions: tuple, keywords: tuple, kept, tensor, kept_name: str,
                         tensor_name: str, kind: str, line: int) -> None:
    """Before a call given a kept view or its tensor (its positional arguments at `positions`,
    its keyword arguments `keywords`): `check_kept_view` where the callee updates one of them
    in place (NOTE [parameters a function updates in place])."""
    fn, offset = _plain_function(fn)
    if fn is None:
        return
    name = _updated_argument(fn, tuple(p + offset for p in positions), tuple(keywords))
    if name is not None:
        check_kept_view(kept, tensor, kept_name, tensor_name, kind, line,
                        by=f"`{fn.__name__}` (its parameter `{name}`)")


def _held_at(holder, path):
    """What `holder` (a dict, list, tuple or object) holds at `path` (("item", key) /
    ("attr", name) steps), up to the first tensor; None where the path leads nowhere."""
    held = holder
    for kind, key in path:
        if isinstance(held, torch.Tensor):
            break
        if kind == "attr":
            held = getattr(held, key, None)
        elif isinstance(held, dict):
            held = held.get(key)
        elif isinstance(held, (list, tuple)) and isinstance(key, int) \
                and -len(held) <= key < len(held):
            held = held[key]
        else:
            held = None
        if held is None:
            return None
    return held


def held_view_shared(holder, path: tuple, tensors: tuple, names: tuple) -> str:
    """Before a tensor `if` whose branch updates in place what `holder` holds at `path`, then
    reads `tensors` (named `names`): the name of the first of them that shares memory with the
    held tensor, else "" (NOTE [a view held in an object, updated in a tensor `if` that reads
    its tensor] in autoconv/converters/kept_views.py). "" inside a staged body, where both are
    that body's own."""
    from .staging.context import in_staged_body
    from .staging.objects import _memory

    if isinstance(holder, torch.Tensor) or in_staged_body():
        return ""
    held = _held_at(holder, path)
    if isinstance(held, torch.Tensor):
        leaves = [held]
    elif isinstance(held, dict):
        leaves = list(held.values())
    elif isinstance(held, (list, tuple)):
        leaves = list(held)
    else:
        return ""
    memories = [_memory(t) for t in leaves if isinstance(t, torch.Tensor) and not is_stand_in(t)]
    dynamo = torch.compiler.is_dynamo_compiling()
    for t, name in zip(tensors, names):
        if isinstance(t, torch.Tensor) and not is_stand_in(t) and not any(t is leaf for leaf in leaves):
            memory = _memory(t)
            if any(m is memory if dynamo else m == memory for m in memories):
                return name
    return ""


def check_held_view(shared: str, held: str, holder: str) -> None:
    """At the start of a branch of a tensor `if` that updates `held` (a tensor held in
    `holder`) in place and then reads `shared`, a tensor that shares its memory
    (`held_view_shared`; "" for none): refused where the `if` is staged.

    Raises:
        StagingError: a staged `if` (its branch traced) whose branch reads `shared` after
            updating the view `held` of it.
    """
    from .staging.context import in_staged_body

    if not shared or not in_staged_body():
        return
    raise StagingError(
        "if statement",
        f"`{held}`, a tensor held in `{holder}` that shares its memory with `{shared}` (a view "
        f"of `{shared}`, or the other way round), is updated in place here, and the branch then "
        f"reads `{shared}`: in Python the read sees the update, but the staged branch carries "
        f"`{holder}`'s tensors as copies (written back after the statement) and reads "
        f"`{shared}` as it was before the `if`",
        f"Clone the view where it is put in `{holder}` (`.clone()`) if `{shared}` should not "
        f"see the update, or update `{shared}` itself in the branch and read it there")
