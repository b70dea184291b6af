"""Lists held in a dict that a staged statement grows: carried as lists of the state of their own.

    state = {"hist": [], "v": x}
    while state["v"].sum() < 10:
        state["hist"].append(state["v"])      # the dict's list grows under a tensor condition
        state["v"] = state["v"] * 2

A carried dict crosses a statement as its tensors (objects.py), of a fixed structure, so a list
in it cannot grow there. Such a list (a value of a dict in the state, found when the bodies'
dict comes back with it longer, `objects.GrownInDict`) is taken out of the dict for the
statement: an extra variable of the state, which grows as a local list does (a StagedList, see
lists.py), while the dict holds a placeholder the bodies never see (each body's dict gets the
list back before the body runs). After the statement the dict holds the grown list (a
StagedList), in place, so every name for the dict sees it.

NOTE [lists held in a tuple or a list]
A list a tuple (or a list) of the state holds grows in place (`acc = ([], [])`, then
`acc[0].append(x)` in the loop, `ac.held_list_append`): the tuple is a constant of the
statement, so the trace of its body appended the body's traced values to the caller's list
once, and the graph never grew it ("stack expects a non-empty TensorList" after the loop, a
trace's value left in the graph, or dynamo's "Unsafe side effect"). Such a growth is refused at
the statement (`refusing_held_growth`) with the fix: bind the list to a name, which the
statement carries as a list of its own. Outside dynamo each body run checks the lengths of the
lists the state's tuples and lists hold, and undoes a change before refusing it; dynamo
refuses the write itself inside torch's operator, so there a body that appends through
`held_list_append` next to such a tuple is refused before it runs.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
import re
import sys
import sysconfig
import textwrap
import types

import torch

from ..errors import StagingError
from ..identity import type_in
from . import context

__all__ = ["stage_lifting", "owned", "other_name", "from_outside", "refusing_held_growth"]


class _Lifted:
    """What the dict holds at a lifted list's key while the statement is staged."""

    def __repr__(self) -> str:
        return "<list carried by the statement>"


def owned(grown, state) -> bool:
    """Whether `grown` (an objects.GrownInDict) is about a dict of `state` itself."""
    slot, _, owner = grown.args
    return slot < len(state) and state[slot] is owner


def stage_lifting(stage, bodies, state, names, grown, statement: str):
    """`stage(bodies, state, names)` with the list `state[slot][key]` (`grown` is an
    objects.GrownInDict: slot, key) an extra variable of the state. `bodies` are (function,
    returns the state, where) triples. Returns the statement's state, the dict holding the
    list after it."""
    slot, key, _ = grown.args
    owner = state[slot]
    held = owner[key]
    if context.is_caller_owned_list(held) or from_outside(held):
        raise StagingError(
            statement,
            f"`{names[slot]}[{key!r}]` is a list the caller passed in, and it grows under a "
            "tensor condition: in the graph the grown list is a new list of data-dependent "
            "length, so the caller's list would never get the items",
            f"Put a list of your own in the dict (`{names[slot]}[{key!r}] = "
            f"list({names[slot]}[{key!r}])` before the {statement}) and return it")
    alias = other_name(held)
    if alias is not None:
        raise StagingError(
            statement,
            f"`{names[slot]}[{key!r}]` is a list that grows under a tensor condition, and "
            f"'{alias}' names it too: the statement gives the dict a new list (its length is "
            f"only known when the graph runs), so '{alias}' would keep the items it had before",
            f"Read the list through the dict after the {statement} "
            f"(`{alias} = {names[slot]}[{key!r}]` after it), not through another name")
    count = len(state)
    mark = _Lifted()

    def lifting(body, returns_state, where):
        def run(*args):
            args = list(args)
            value = args.pop(count)
            given = args[slot]
            if type(given) is dict and given.get(key) is mark:
                given[key] = value
            out = body(*args)
            if not returns_state:
                return out
            out = list(out)
            mine = out[slot]
            if type(mine) is not dict or key not in mine:
                raise StagingError(
                    statement,
                    f"`{names[slot]}` holds a list at {key!r} that grows {where}, and the body "
                    f"binds `{names[slot]}` to {type(mine).__name__} or drops the key",
                    f"Keep `{names[slot]}` the same dict with the same keys in the {statement}")
            lifted = mine[key]
            mine[key] = mark
            return tuple(out) + (lifted,)
        return run

    owner[key] = mark
    try:
        out = stage([lifting(*b) for b in bodies], tuple(state) + (held,),
                    tuple(names) + (f"{names[slot]}[{key!r}]",))
    except BaseException:
        owner[key] = held
        raise
    out = list(out)
    result = out.pop(count)
    if out[slot] is not owner:  # (a carried dict is written back in place: never expected)
        owner[key] = held
        raise StagingError(statement, f"`{names[slot]}` came back as another object",
                           "This is a bug in autoconv")
    owner[key] = result
    return tuple(out)


def _package_folders(*names) -> tuple:
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found += [os.path.join(folder, "") for folder in spec.submodule_search_locations]
    return tuple(found)


# NOTE [frames searched for other names]
# The frames whose locals are not other names for a held object: torch's, the standard
# library's, the test runner's and autoconv's runtime (their locals hold the user's objects
# only as arguments passed through). This was every file under torch's parent folder, that is
# every installed package: a library's `old = self.state; if c: self.state =
# self.state._replace(...)`, then `old is self.state`, was never refused, and the graph gave
# the traced path's `is` on the other path (10 for Python's 1, reach56), silently, where the
# same code in the user's own file is specialised. An installed library's code is the user's
# code here: its frames are searched.
_ENGINE = (os.path.join(os.path.dirname(torch.__file__), ""),
           os.path.join(sysconfig.get_paths()["stdlib"], ""),
           os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ""),
           ) + _package_folders("_pytest", "pluggy")
_INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


def _engine_file(filename: str) -> bool:
    """Whether code of `filename` is searched for no other name (NOTE [frames searched for
    other names]); a package installed under the standard library's folder is searched."""
    if "/autoconv/" in filename or filename.startswith(_ENGINE[:1] + _ENGINE[2:]):
        return True
    return filename.startswith(_ENGINE[1]) and not any(part in filename for part in _INSTALLED)


def other_name(held, own=None, field_holder=None, own_containers=False):
    """A local variable of the user's code on the stack, other than `own` in the function
    whose statement grows `held`, that names the list `held`, or None (NOTE [a list the
    function did not make, grown under a tensor condition]). `field_holder`: the object or
    container whose field or item `held` is (`self` of `self.stats`); that one reference is
    not another name (a peeled dict field, runtime/staging/peeled_dicts.py). With
    `own_containers`, the containers and objects the function's own frame holds are looked
    into too (NOTE [a list a container of the function holds, grown by a name])."""
    if torch.compiler.is_dynamo_compiling():
        return _dynamo_holders("held", own, "field_holder", own_containers)[1]
    frame, exempt = sys._getframe(1), True
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _engine_file(filename):
            for name, value in frame.f_locals.items():
                if value is held and not (exempt and name == own):
                    return name
                # (a caller's container holding it: `held = make(x); f(x, *held)`)
                path = (_path_to(value, held, _DEPTH, field_holder) if not exempt or (
                    own_containers and _own_holder(value)) else None)
                if path is not None and exempt and type_in(value, (tuple, list)) and (
                        _rebuilt_from(frame.f_code, name, own, frame.f_lineno, path)):
                    path = None
                if path is not None and not (exempt and name + path == own):
                    return name + path
            # (the function's own frame ends where `own` is its name: its caller's frame
            # naming the list `own` too is another name for it)
            exempt = exempt and _GENERATED.match(frame.f_code.co_name) is not None
        frame = frame.f_back
    return None


def from_outside(held) -> bool:
    """Whether the list `held` came from outside the code torch.compile traces (an argument
    of the compiled function, a global, an attribute of one): its caller's list. False
    outside dynamo, where autoconv's trace names the caller's lists itself
    (`context.is_caller_owned_list`)."""
    if torch.compiler.is_dynamo_compiling():
        return _dynamo_holders("held", None)[0]
    return False


# NOTE [a list the function did not make, grown under a tensor condition]
# A staged statement grows a list as a new list (a StagedList, of a length known when the graph
# runs) bound to the statement's own name: a list the function did not make (its caller's, an
# argument, a global) or that another name holds would never see the items, as Python's would
# (tester34b s03: `def step(x, log): if x.sum() > 0: log.append(x * 0.5)` left the caller's
# `log` empty under torch.compile). Outside dynamo autoconv's trace knows its caller's lists
# (`context.caller_owned_lists`) and the other names are read from the frames on the stack;
# the function's own frame is exempt only for the statement's own name, so a helper's caller
# naming its list as the helper does is still another name. Under dynamo there are no frames
# to read: dynamo's own record of them is (`_dynamo_holders`, called for real), where a list
# from outside the traced code has a source, and each inlined frame's locals are variable
# trackers, the same object for the same list. A caller's container holding the list (`held =
# make(x); f(x, *held)`) is looked into a few levels deep. Such a growth is refused with a
# StagingError that says to grow a list of one's own and return it: torch.compile raises it;
# autoconv's replay and torch.export specialise the statement on its condition instead (NOTE
# [specialisation]), so an exported program holds the traced path and its guard names why.

# NOTE [a list a container of the function holds, grown by a name]
# `st = {"hist": []}; hist = st["hist"]` (or `hist = self.hist`), then `hist.append(v)` under a
# tensor `if` in a loop: the statement grows a new list bound to `hist` alone, so the dict's
# (the object's) list kept the items it had before, silently: `len(st["hist"])` was 0 for
# Python's 3 in every mode (brk55). A name for the list in the function's own frame was found,
# its containers were not (they are a caller's only above it). For the list a statement grows
# by a name (`reserve` in lists.py) the dicts and the user's objects there are looked into
# too, and the growth is refused (specialised in replay and export) as for another name. So
# are its tuples and lists (alias56: `acc = ([], [x[0]]); a0 = acc[0]`, `a0` grown, then
# `len(acc[0])` was 30 for Python's 33 in replay and export), except one the function's own
# source rebinds to a display holding the name (`acc = (a0, acc[1])` after the statement,
# test_lists.py: right and common, and a tuple cannot be changed in place) with no read of the
# holder whole, or of its item at the list's index, from the line the function's frame runs
# (the outermost statement around the growth) to that rebinding (`_rebuilt_from`, on the
# user's source: a read only an enclosing loop's next trip makes before that line is not seen).
_GENERATED = re.compile(r"(if_true|if_false|loop_body|loop_test|extra_test)(_\d+)?$|<lambda>$")


def _dynamo_holders(local: str, own, holder_local: str | None = None, own_containers=False):
    """(whether the list the calling frame holds in `local` came from outside the traced
    code, another user frame's name for it or None), read from dynamo's translators; the
    reference from what the calling frame holds in `holder_local` is not another name.
    Called for real, under dynamo."""
    tx = None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "invoke_and_store_as_constant":
            tx = frame.f_locals.get("tx")
            break
        frame = frame.f_back
    held = getattr(tx, "symbolic_locals", {}).get(local)
    if held is None:
        return False, None
    held = _unwrapped(held)
    if getattr(held, "source", None) is not None:
        return True, None
    skip = tx.symbolic_locals.get(holder_local) if holder_local else None
    skip = None if skip is None else _unwrapped(skip)
    # (the fields the traced code set on its objects: `log.kept = solver.stats`)
    fields = getattr(getattr(getattr(tx, "output", None), "side_effects", None),
                     "store_attr_mutations", {})
    exempt, tx = True, getattr(tx, "parent", None)
    while tx is not None:
        code = getattr(tx, "f_code", None)
        filename = getattr(code, "co_filename", "")
        if code is not None and not _engine_file(filename):
            for name, value in tx.symbolic_locals.items():
                value = _unwrapped(value)
                if value is held and not (exempt and name == own):
                    return False, name
                path = (_tracked_path_to(value, held, _DEPTH, skip, fields) if not exempt or (
                    own_containers and _tracked_holder(value, fields)) else None)
                if path is not None and exempt and _tracked_sequence(value) and (
                        _rebuilt_from(code, name, own, getattr(tx, "lineno", 0) or 0, path)):
                    path = None
                if path is not None and not (exempt and name + path == own):
                    return False, name + path
            exempt = exempt and _GENERATED.match(code.co_name) is not None
        tx = getattr(tx, "parent", None)
    return False, None


_dynamo_holders._dynamo_marked_constant = True  # (dynamo calls it for real)


_DEPTH = 3  # how deep in a caller's containers a list is looked for


def _path_to(value, held, depth, skip=None):
    """The subscript or attribute path from `value` to `held` through dicts, lists, tuples
    and the user's plain objects at most `depth` deep (and 64 items each), or None; a
    reference from `skip` to `held` is not counted."""
    if depth == 0:
        return None
    if type(value) is dict:
        items = [(f"[{k!r}]", v) for k, v in list(value.items())[:64]]
    elif type_in(value, (list, tuple)):
        items = [(f"[{i}]", v) for i, v in enumerate(value[:64])]
    elif _users_object(value):
        items = [(f".{k}", v) for k, v in list(vars(value).items())[:64]]
    else:
        return None
    for step, item in items:
        if item is held and value is not skip:
            return step
        rest = _path_to(item, held, depth - 1, skip)
        if rest is not None:
            return step + rest
    return None


# (the test runner's, torch's and autoconv's own objects on the stack are not the user's)
_NOT_USERS = frozenset({"builtins", "torch", "autoconv", "autoconv_runtime", "_pytest",
                        "pytest", "pluggy", "xdist", "execnet", "types", "functools"})


def _users_object(value) -> bool:
    cls = type(value)
    return (type(getattr(value, "__dict__", None)) is dict
            and cls.__module__.split(".")[0] not in _NOT_USERS
            and not isinstance(value, (type, types.ModuleType, types.FunctionType,
                                       types.MethodType, torch.nn.Module)))


def _tracked_path_to(variable, held, depth, skip=None, fields=None):
    """`_path_to` among dynamo's variable trackers (lists, tuples, dicts, and the fields of
    objects in `fields`, dynamo's record of the attributes the traced code set)."""
    if depth == 0:
        return None
    try:
        items = getattr(variable, "items", None)
    except Exception:  # noqa: BLE001 (dynamo's constant tracker raises NotImplementedError
        # for `items` of a number, a float the caller's frame holds: test_branch_lists.py's
        # bracketing in a staged loop, compiled)
        return None
    if isinstance(items, dict):
        pairs = [(f"[{_key_text(k)}]", v) for k, v in items.items()]
    elif isinstance(items, (list, tuple)):
        pairs = [(f"[{i}]", v) for i, v in enumerate(items)]
    elif _users_fields(variable, fields):
        pairs = [(f".{name}", v) for name, v in fields[variable].items()]
    else:
        return None
    for step, item in pairs[:64]:
        item = _unwrapped(item)
        if item is held and variable is not skip:
            return step
        rest = _tracked_path_to(item, held, depth - 1, skip, fields)
        if rest is not None:
            return step + rest
    return None


def _tracked_holder(variable, fields) -> bool:
    """Whether dynamo's `variable` is a dict, a tuple, a list or an object whose fields the
    traced code set."""
    try:
        return isinstance(getattr(variable, "items", None), (dict, list, tuple)) or (
            _users_fields(variable, fields))
    except Exception:  # noqa: BLE001 (as in _tracked_path_to)
        return False


def _users_fields(variable, fields) -> bool:
    """Whether dynamo's `variable` is a user's object whose fields the traced code set: not
    autoconv's own (a StagedDict's `_items` holds the dict's lists; it is no other name for
    them, as `_users_object` says outside dynamo: order56)."""
    if not (fields and variable in fields):
        return False
    try:
        cls = variable.python_type()
    except Exception:  # noqa: BLE001 (a tracker that knows no Python type: the user's)
        return True
    return str(getattr(cls, "__module__", "")).split(".")[0] not in _NOT_USERS


def _tracked_sequence(variable) -> bool:
    """Whether dynamo's `variable` is a tuple or a list."""
    try:
        return isinstance(getattr(variable, "items", None), (list, tuple))
    except Exception:  # noqa: BLE001 (as in _tracked_path_to)
        return False


def _own_holder(value) -> bool:
    """Whether `value`, held in the function's own frame, is looked into for a list a name
    grows (NOTE [a list a container of the function holds, grown by a name])."""
    return type_in(value, (dict, tuple, list)) or _users_object(value)


def _rebuilt_from(code, holder: str, own, line: int, path: str) -> bool:
    """Whether the source of `code`, after its line `line`, binds `holder` to a tuple or a
    list display holding the name `own` (`acc = (a0, acc[1])`), reading neither `holder`
    whole nor its item at `path`'s first index (nor any by a computed index) before."""
    tree, first = _parsed(code)
    if tree is None:
        return False
    line -= first - 1  # (the tree's lines count from the function's first)
    rebuilds = [node.lineno for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and node.lineno > line
                and isinstance(node.value, (ast.Tuple, ast.List))
                and any(isinstance(t, ast.Name) and t.id == holder for t in node.targets)
                and any(isinstance(e, ast.Name) and e.id == own for e in node.value.elts)]
    if not rebuilds:
        return False
    index = re.match(r"\[(\d+)\]", path)
    index = int(index.group(1)) if index else None
    kept = set()  # (the loads of `holder` that read another item: `acc[1]`)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and isinstance(node.slice, ast.Constant) and type(node.slice.value) is int
                and node.slice.value != index):
            kept.add(node.value)
    return not any(isinstance(node, ast.Name) and node.id == holder
                   and isinstance(node.ctx, ast.Load) and node not in kept
                   and line < node.lineno <= min(rebuilds) for node in ast.walk(tree))


@functools.lru_cache(maxsize=64)
def _parsed(code):
    """(the tree of `code`'s source, the line it starts at), or (None, 0) with no source."""
    try:
        lines, first = inspect.getsourcelines(code)
        return ast.parse(textwrap.dedent("".join(lines))), first
    except (OSError, TypeError, SyntaxError):  # (no source: nothing rebuilds it)
        return None, 0


_rebuilt_from._dynamo_marked_constant = True  # (dynamo calls it for real)
_parsed._dynamo_marked_constant = True


def _key_text(key) -> str:
    """A dict key dynamo tracks, as the user wrote it where it is a constant."""
    try:
        return repr(getattr(key, "vt", key).as_python_constant())
    except Exception:  # (a key that is no constant: a tensor's, an object's)
        return "..."


def _unwrapped(variable):
    try:
        return variable.unwrap() if hasattr(variable, "unwrap") else variable
    except Exception:  # (a lazy tracker not realised yet: compared as it is)
        return variable


def refusing_held_growth(bodies, state, names, statement: str):
    """`bodies` ((function, where) pairs), each refusing to grow a Python list that a tuple or
    a list of `state` holds (NOTE [lists held in a tuple or a list]).

    Raises:
        StagingError: under dynamo, where such a list is in the state and a body appends to
            a list through a container (before it runs).
    """
    slots = [(slot, name) for slot, (name, value) in enumerate(zip(names, state))
             if type_in(value, (tuple, list)) and any(type(item) is list for item in value)]
    if not slots:
        return tuple(body for body, _ in bodies)
    if torch.compiler.is_dynamo_compiling():
        if any(_appends_held(getattr(body, "__code__", None)) for body, _ in bodies):
            # (which of its lists grows, dynamo does not show before the body runs)
            raise _held_growth(statement, f"{slots[0][1]}[...]")
        return tuple(body for body, _ in bodies)

    def check(body):
        def run(*args):
            # (the lists the body is given: a probe's run gets copies of the state)
            held = [(f"{name}[{i}]", item) for slot, name in slots
                    if type_in(args[slot], (tuple, list))
                    for i, item in enumerate(args[slot]) if type(item) is list]
            before = [list(items) for _, items in held]
            failed = True
            try:
                out = body(*args)
                failed = False
            finally:
                grown = [path for (path, items), old in zip(held, before)
                         if len(items) != len(old) or any(a is not b for a, b in zip(items, old))]
                for (_, items), old in zip(held, before):
                    items[:] = old
                if grown and not failed:
                    raise _held_growth(statement, grown[0])
            return out
        return run
    return tuple(check(body) for body, _ in bodies)


def _held_growth(statement: str, path: str) -> StagingError:
    name = path.split("[")[0]
    shown = f"a list `{name}` holds" if path.endswith("[...]") else f"the list `{path}`"
    return StagingError(
        statement,
        f"{shown} grows under a tensor condition, held by `{name}` (a tuple or a list): a "
        "list grown in a staged statement is a new list (its length is only known when the "
        f"graph runs), which `{name}` cannot be given back",
        f"Bind the list to a name before the {statement} (`items = {path}`), append to "
        f"that name in the {statement}, and build `{name}` after it")


def _appends_held(code) -> bool:
    """Whether `code` (or a function defined in it) calls `ac.held_list_append`."""
    if code is None:
        return False
    if "held_list_append" in code.co_names:
        return True
    return any(_appends_held(c) for c in code.co_consts if hasattr(c, "co_names"))


_appends_held._dynamo_marked_constant = True  # (dynamo calls it for real)
