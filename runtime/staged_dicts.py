"""A dict whose keys the first trip of a peeled loop set: each such key held with a flag the
graph computes (NOTE [a dict the first trip gives keys]).

NOTE [a dict the first trip gives keys]
A solver's statistics or a training loop's record start empty and get their keys on the
loop's first trip:

    stats = {}
    while t < t_end:
        ...
        if not stats:                  # or `if "first" not in stats:`, `stats["n"] = n`
            stats = {"first": e, "last": e}
        stats["last"] = e

A torch.while_loop carries one structure, and no `if` output holds a key on one path only. The
loop's first trip is peeled (NOTE [a loop's first trip peeled] in staging/peeling.py), and
there the dict is given its gained keys before the `if`, placeholders of the kinds the first
trip sets (zeros of the tensor's shape and dtype, a Python zero for a number, an empty list
for a list the loop grows: `hist.setdefault("loss", []).append(v)`, `if "err" not in hist:
hist["err"] = []`, `stats["hist"] = stats.get("hist", []) + [v]`, since session 51): the taken
branch runs the body on the dict without them, as Python's first trip sees it, and the kept
branch keeps the placeholders. The loop after the `if` carries the dict with every key: its
body runs only where the first trip ran (the test is pure: the engine's rule 1), where Python's
dict holds them too, so there it is a plain dict. After the loop the dict is a `StagedDict`:
its values, and for each gained key a 0-d bool tensor, the first trip's test, saying whether
Python's dict has it.

Reading one: `d[k]` is the value, checked in the graph (Python's KeyError at the user's line
where the key is missing); `k in d`, `len(d)` and its truth in `if` / `while` / `not` are
staged on the flags (a bool's and an int's stand-ins); `d.get(k)` of a missing key's default
None is a StagedOptional, of a tensor default of the value's shape and dtype a
`torch.where`, and of an empty list a grown list's value itself (the `if` that peels the first
trip makes the key's list a grown list, of the placeholder's length 0 where the first trip
did not run, and the loop after it grows it only where it did). Every other use (iteration,
`.items()`, another default, a method that changes it) needs Python to know the keys: at the top level of autoconv's trace the graph is
specialised on the flags (a guard, and a trace of its own for inputs that take the other
path); under torch.compile and torch.export that is refused at the user's line. Returned from
the function, it becomes the dict of its present keys when the graph runs (the pytree node
unflattens concrete flags); under torch.compile, where dynamo rebuilds the object the frame
returns, it is a StagedDict of real tensors, a Mapping of its present keys (NOTE [returned
under dynamo] in runtime/lists.py). Only a loop at the top level of the function is peeled so: a
StagedDict is no state another staged statement carries.
"""

from __future__ import annotations

import collections.abc
import weakref

import torch
from torch.utils import _pytree as pytree

from .augmented import graph_check, is_stand_in, kind_of, mark, mark_kinds, mark_view
from .errors import StagingError, user_location
from .identity import type_in
from .values import is_staged

__all__ = ["StagedDict", "truth", "length", "contains", "lend_grown", "grown_through_lent",
           "changed_through_lent", "lent_lists_back"]

_STATEMENT = "while loop"


class StagedDict:
    """The dict `values` less the keys of `flags` whose flag (a 0-d bool tensor) is false
    when the graph runs. `name` is the variable's, for messages; `where` the loop's (file,
    line)."""

    def __init__(self, values: dict, flags: dict, name: str = "dict", where=None,
                 statement: str = _STATEMENT, ordered: bool = True):
        self._items, self._flags, self.name, self.where = values, flags, name, where
        # (the statement after which the keys are known only to the graph: for messages;
        # `ordered`: False where keys of independent flags were set in an order the data
        # decides, NOTE [keys set on some paths] in staging/flagged_keys.py)
        self.statement, self.ordered = statement, ordered
        # (True for the copy a staged body is given by the statement that carries it: NOTE
        # [keys set on some paths] in staging/flagged_keys.py)
        self.carried = False
        # (key -> the Python kinds of the number it holds, where it holds one: its item is a
        # graph tensor that stands in for it, NOTE [a flagged key's number] in
        # staging/flagged_keys.py)
        self.numbers = {}

    def __repr__(self) -> str:
        if not self._unknown():
            return repr(self._settled("repr()", True))
        return (f"StagedDict({self.name!r}, keys {list(self._items)!r}, some set by a loop's "
                "first trip)")

    def _unknown(self) -> bool:
        return any(is_staged(flag) for flag in self._flags.values())

    # What the graph computes from the flags.

    def __getitem__(self, key):
        value = self._items[key]
        flag = self._flags.get(key)
        if flag is not None:
            if not is_staged(flag):
                if not bool(flag):
                    raise KeyError(key)
            else:
                graph_check(flag, KeyError, repr(key))
        return self._number_item(key, value)

    def _number_item(self, key, value):
        """`value`, the item of `key`, marked as its number's stand-in where the key holds a
        Python number (NOTE [a flagged key's number] in staging/flagged_keys.py)."""
        kinds = self.numbers.get(key)
        if kinds is None or not isinstance(value, torch.Tensor) or is_stand_in(value):
            return value
        return mark_kinds(mark_view(value), kinds, f"`{self.name}[{key!r}]`")

    def get(self, key, default=None):
        if key not in self._items:
            return default
        flag = self._flags.get(key)
        if flag is None or not is_staged(flag):
            if flag is None or bool(flag):
                return self._number_item(key, self._items[key])
            return default
        value = self._items[key]
        if default is None:
            from .staging.optionals import StagedOptional

            return StagedOptional(torch.logical_not(flag), value, f"{self.name}.get({key!r})",
                                  self.where)
        if (isinstance(value, torch.Tensor) and isinstance(default, torch.Tensor)
                and value.shape == default.shape and value.dtype == default.dtype):
            return torch.where(flag, value, default)
        number = _number(value)
        if number is not None and type_in(default, (bool, int, float)):
            # (a count the key holds, `d.get("n", 0) + 1`: the value where the key is there,
            # the number where not; a number's stand-in where the value is one, NOTE [keys
            # set on some paths] in staging/flagged_keys.py)
            chosen = torch.where(flag, number, default)
            if key in self.numbers:
                return _number_or_default(chosen, flag, self.numbers[key], default,
                                          f"`{self.name}.get({key!r}, ...)`")
            return mark(chosen) if number is not value or is_stand_in(value) else chosen
        if type(default) is list and not default and self.carried and type(value) is list:
            # (the key's list in a staged body, empty where the key is missing: NOTE [a list
            # a flagged key lends])
            lent = _LentList(value)
            lent._owner, lent._key = self, key
            return lent
        if type(default) is list and not default and _grown_list(value):
            # (a list the loop grows: empty where the key is missing, the first trip's
            # placeholder `[]` kept by a loop that ran no trip; lent, so that an append to it
            # reaches the dict: NOTE [a grown list a flagged key lends])
            return lend_grown(self, key, value, flag)
        return self._settled(f"`.get({key!r}, default)` with a default of another kind than "
                             "the value").get(key, default)

    def setdefault(self, key, default=None):
        """`d.setdefault(key, default)`: where the key's flag is traced, its value or
        `default` (as `get`), the key present from then on."""
        flag = self._flags.get(key)
        if (key not in self._items or flag is None or not is_staged(flag) or default is None
                or not self.carried and _in_body()):
            return self._settled("`.setdefault`").setdefault(key, default)
        value = self.get(key, default)  # (refused where the default is of another kind)
        # (the key's own list, not the copy `get` lends: set from here on, on this path)
        if type(value) is _LentList or getattr(value, "lent", None) is not None:
            value = self._items[key]
        self._items[key] = value
        del self._flags[key]
        return value

    # What needs the keys as Python knows them.

    def __contains__(self, key) -> bool:
        return key in self._settled("`in` outside converted code")

    def __len__(self) -> int:
        return len(self._settled("len() outside converted code"))

    def __bool__(self) -> bool:
        return bool(self._settled("its truth value outside converted code"))

    def __iter__(self):
        return iter(self._settled("iterating over it", True))

    def flagged(self, part: str):
        """[(item, flag), ...] of a `for` over the dict (`part`: "keys", "values" or "items")
        in converted code, each key's flag a 0-d bool tensor where the graph decides whether
        Python's dict holds it, else None (NOTE [a for loop over keys set on some paths])."""
        if not self.ordered and len(self._flags) > 1:
            self._settled("iterating over it", True)  # (refused: the order is the data's)
        pairs = []
        for key in list(self._items):
            flag = self._flags.get(key)
            if flag is not None and not is_staged(flag):
                if not bool(flag):
                    continue
                flag = None
            value = self._number_item(key, self._items[key])
            item = key if part == "keys" else value if part == "values" else (key, value)
            pairs.append((item, flag))
        return pairs

    def __eq__(self, other):
        return self._settled("`==`") == other

    __hash__ = None

    def keys(self):
        if self._unknown():
            return FlaggedView(self, "keys")
        return self._settled("`.keys()`", True).keys()

    def items(self):
        if self._unknown():
            return FlaggedView(self, "items")
        return self._settled("`.items()`", True).items()

    def values(self):
        if self._unknown():
            return FlaggedView(self, "values")
        return self._settled("`.values()`", True).values()

    def __setitem__(self, key, value):
        self._refuse_in_body("setting an item of it")
        self._items[key] = value
        self._flags.pop(key, None)

    def __delitem__(self, key):
        self._refuse_in_body("deleting an item of it")
        if key in self._flags:
            self._settled("`del`")
        del self._items[key]  # (Python's KeyError where it is missing)

    # A copy, like a dict's, owns its tables: `copy.copy`'s default shared them, so an item set
    # on the copy was counted by the original (break50 s02: len 2 for Python's 1).
    def __copy__(self):
        made = StagedDict(dict(self._items), dict(self._flags), self.name, self.where,
                          self.statement, self.ordered)
        made.numbers = dict(self.numbers)
        return made

    def __deepcopy__(self, memo):
        import copy

        made = StagedDict(copy.deepcopy(self._items, memo), dict(self._flags), self.name,
                          self.where, self.statement, self.ordered)
        made.numbers = dict(self.numbers)
        return made

    def __ior__(self, other):
        for key, value in dict(other).items():
            self[key] = value
        return self

    def __or__(self, other):
        if not isinstance(other, collections.abc.Mapping):
            return NotImplemented
        merged = self.__copy__()
        merged |= other
        return merged

    def __ror__(self, other):
        if not isinstance(other, collections.abc.Mapping):
            return NotImplemented
        return dict(other) | self._settled("`|`")

    def __getattr__(self, name):
        # (values(), pop, update, setdefault, copy ...: the dict of its present keys)
        if name.startswith("__") or name in ("_items", "_flags", "name", "where", "carried",
                                                    "statement", "ordered"):
            raise AttributeError(name)
        return getattr(self._settled(f"`.{name}`", True), name)

    def _refuse_in_body(self, use: str) -> None:
        from .staging import context

        if context.in_staged_body() and not self.carried:
            raise self._refusal(use, "in the body of another staged statement")

    def _settled(self, use: str, in_order: bool = False) -> dict:
        """The dict of the present keys, the flags decided: known, or at the top level of
        autoconv's trace by specialising the graph on them (NOTE [specialisation] in
        staging/specialize.py); refused in a staged body, under dynamo and torch.export.
        `in_order`: the use reads the keys' order, which a dict not `ordered` does not know
        where two of its flagged keys are present."""
        decided = {}
        for key, flag in list(self._flags.items()):
            decided[key] = bool(self._specialised(flag, use) if is_staged(flag) else flag)
        if in_order and not self.ordered and sum(decided.values()) > 1:
            raise self._refusal(use, "a use that reads the order of its keys, which is the "
                                "order the paths the data took set them in")
        for key, present in decided.items():
            if not present:
                del self._items[key]
            del self._flags[key]
        return self._items

    def _specialised(self, flag, use: str) -> bool:
        from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

        from .staging import context, specialize

        error = self._refusal(use)
        if torch.compiler.is_dynamo_compiling() or not isinstance(flag, torch.Tensor):
            raise error
        probing = context.probing()
        try:
            return specialize.specialize(flag, "if statement or loop", error,
                                         context.in_staged_body() or probing, probing)
        except GuardOnDataDependentSymNode:
            raise error from None

    def _refusal(self, use: str, why: str = "") -> StagingError:
        at = f" at {self.where[0]}:{self.where[1]}" if self.where else ""
        gained = ", ".join(repr(k) for k in self._flags)
        why = why or "a use that needs to know its keys"
        where = (f"where the loop{at} ran a trip" if self.statement == _STATEMENT else
                 f"on some paths of the {self.statement}{at}")
        error = StagingError(
            self.statement,
            f"'{self.name}' holds the key{'s' if len(self._flags) > 1 else ''} {gained} only "
            f"{where}, which the graph knows when it runs; {use} is {why}",
            f"Ask for the keys in converted code (`if {next(iter(self._flags), 'k')!r} in "
            f"{self.name}:`, `len({self.name})`, `{self.name}.get(k)`: staged tests), or give "
            f"'{self.name}' its keys where it is made, before the {self.statement}")
        location = user_location()
        if location is not None and error.filename is None:
            error = StagingError.at(location, error.statement, error.problem, error.fix)
        return error


# NOTE [a list a flagged key lends]
# A key set on some paths that holds a list (`if c: st.setdefault("hist", []).append(v)`, or
# `st["hist"] = st.get("hist", []) + [v]`, in a staged loop) is carried with a placeholder list,
# empty where the key is missing (NOTE [keys set on some paths] in staging/flagged_keys.py), so
# that in a body `st.get("hist", [])` is that list: Python's value on every path, as long as the
# list grows only where the key is set. A list grown in a staged body is a value the statement
# carries by the dict (staging/dict_lists.py): an append through another name (`h =
# st.get("hist", []); h.append(v)`) would reach neither the dict, where Python's key holds that
# list, nor be kept out of it, where Python's `[]` is a fresh list. So `get` lends the list for
# reading and `+` only; changing it in place is refused at the line, with `setdefault` as the fix.
class _LentList(list):
    """The list of a flagged key, as `d.get(key, [])` gives it in a staged body. (No
    `__init__` of its own: dynamo cannot trace one.)"""

    _owner: StagedDict
    _key = None

    def _refused(self, *_, **__):
        name, key = self._owner.name, self._key
        raise StagingError.at(
            user_location(), self._owner.statement,
            f"the list that `{name}.get({key!r}, [])` gives is changed in place, and '{name}' "
            f"holds the key {key!r} on some paths only: where it holds it, Python changes "
            f"`{name}[{key!r}]` too, and where not, a new list",
            f"Change it through the dict: `{name}.setdefault({key!r}, []).append(v)`, or "
            f"`{name}[{key!r}] = {name}.get({key!r}, []) + [v]`")

    append = extend = insert = pop = remove = clear = sort = reverse = _refused
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refused


# NOTE [a grown list a flagged key lends]
# After the staged statement a key's list the loop grew is a StagedList, a value: its append
# gives a new list (runtime/lists.py), which the converted `h = ac.list_append(h, x)` binds to
# `h` alone. `st.get("hist", [])` gave the dict's own object, so `h = st.get("hist", []);
# h.append(x)` grew `h` and left `st["hist"]` as it was (2 for Python's 3, keys54). Python's
# `h` is the dict's list where the key is there, a fresh `[]` where not. So `get` lends a copy
# that remembers the dict, the key, the key's flag and the list it was lent from; an append to
# the copy (`grown_through_lent`) sets the dict's list to the grown one where the flag holds
# (the buffer shared, the count chosen by the flag), and the grown copy is lent from that. Where
# the dict's list changed since the lending (through the dict, or another copy), the copy is no
# longer Python's list on either path: its append is refused at the line.
def lend_grown(owner: StagedDict, key, value, flag):
    """A copy of the StagedList `value`, `owner[key]`, whose appends reach `owner` where
    `flag` (a 0-d bool tensor, or None: the key is there) holds."""
    lent = type(value)(value.buffer, value.count, value.reserved, value.name, value.numbers)
    _lend(lent, (owner, key, flag, value, (value.buffer, value.count)))
    return lent


_LENT = weakref.WeakSet()  # (the copies lent and still held: `lent_lists_back` asks them)


def _lend(copy, record) -> None:
    """Marks `copy` as lent by `record` (owner, key, flag, the dict's list, its rows and count
    then), and the dict's list as having lent it (NOTE [the dict's list grown after lending])."""
    copy.lent = record
    if not torch.compiler.is_dynamo_compiling():  # (dynamo cannot hash a StagedList; under it
        _LENT.add(copy)  # the flagging loop holding the dict's list is refused before this)
    base = record[3]
    base.lent_to = [*(c for c in getattr(base, "lent_to", ()) if c.lent[3] is base), copy]


def _chosen(flag, mine, other):
    """The list `mine` where `flag` holds, `other` where not (one buffer of both's rows)."""
    from torch.fx.experimental.symbolic_shapes import guard_or_false

    if flag is None:
        return mine.buffer, mine.count
    a, b = mine.capacity, other.capacity
    if not guard_or_false(a == b):
        if guard_or_false(a > b):
            other = other.grown(a - b)
        elif guard_or_false(b > a):
            mine = mine.grown(b - a)
        else:
            mine, other = mine.grown(b), other.grown(a)
    return torch.where(flag, mine.buffer, other.buffer), torch.where(flag, mine.count,
                                                                       other.count)


# NOTE [the dict's list grown after lending]
# `h = st.get("hist", [])`, then `st.setdefault("hist", []).append(y)`: Python's `h` is the
# dict's list where the key was there, so `len(h)` counts `y`; where it was not, `h` is the
# fresh `[]` and the dict a new list. The append through the dict changes the dict's StagedList
# in place (`take`, NOTE [a grown list changed in place] in runtime/lists.py), which the copy
# `get` lent did not follow: `len(h)` missed `y` (2 for Python's 3, silent55). So the dict's
# list keeps the copies it lent, and `take` has each follow it where the copy's flag holds,
# keeping the copy's own rows where not (after an append through the copy, the two lists hold
# different rows on those paths: one buffer of both, chosen by the flag, not the dict's alone).
# So does every change in place of the dict's list (`st["hist"].pop()`, `del st["hist"][0]`,
# `.insert`, `.clear()`, `st["hist"][0] = v`, `+=`: `_changed` in runtime/lists.py), and one
# through a copy (`h.pop()`, `h[0] = v`, `h += [v]`) changes the dict's list where the flag
# holds (`changed_through_lent`): before alias56 each changed its own list only, `len(h)` 3 for
# Python's 2 after `st["hist"].pop()`, silently in replay and export.
def follow(base, grown) -> None:
    """Each copy `base` lent and still shares (NOTE [the dict's list grown after lending]) made
    `grown` where its key's flag holds; called as `base` takes `grown`'s rows in place."""
    for copy in getattr(base, "lent_to", ()):
        owner, key, flag, held, (rows, count) = copy.lent
        if held is not base or base.buffer is not rows or base.count is not count:
            continue  # (rebound or changed since: the copy's own append is refused)
        copy.buffer, copy.count = _chosen(flag, grown, copy)
        copy.numbers = grown.numbers
        copy.lent = (owner, key, flag, base, (grown.buffer, grown.count))


def changed_through_lent(copy) -> None:
    """The dict's list `copy` (a list `lend_grown` gave, just changed in place: `h.pop()`,
    `h[0] = v`, `h += [v]`) was lent from, changed the same where the key's flag holds (NOTE
    [the dict's list grown after lending]); its other copies follow."""
    owner, key, flag, base, (rows, count) = copy.lent
    if owner._items.get(key) is not base or base.buffer is not rows or base.count is not count:
        raise _changed_after(owner, key, "changed in place")
    rows, count = _chosen(flag, copy, base)
    # (`follow` gives `copy` its own rows back where the flag does not hold: Python's fresh
    # list, changed)
    base.take(type(base)(rows, count, base.reserved, base.name, copy.numbers))


def _changed_after(owner, key, what: str) -> StagingError:
    return StagingError.at(
        user_location(), owner.statement,
        f"the list that `{owner.name}.get({key!r}, [])` gave is {what} after "
        f"`{owner.name}[{key!r}]` changed, which the {owner.statement} grew: Python's "
        f"list is the dict's where the key is there, and a list of the graph's is a value",
        f"Change it through the dict: `{owner.name}.setdefault({key!r}, []).append(v)`, and "
        f"read `{owner.name}.get({key!r}, [])` again after it")


def grown_through_lent(target, grown):
    """`grown`, `target` (a list `lend_grown` gave) after an append: the dict's list set to it
    where the key's flag holds (NOTE [a grown list a flagged key lends])."""
    owner, key, flag, base, (rows, count) = target.lent
    # (the dict's list rebound, or changed in place since it was lent: NOTE [a grown list
    # changed in place] in runtime/lists.py)
    if owner._items.get(key) is not base or base.buffer is not rows or base.count is not count:
        raise _changed_after(owner, key, "appended to")
    # (where the flag does not hold, the dict's own rows: they differ from the copy's after an
    # append through the dict, NOTE [the dict's list grown after lending])
    rows, count = _chosen(flag, grown, base)
    held = type(grown)(rows, count, grown.reserved, grown.name, grown.numbers)
    owner._items[key] = held
    _lend(grown, (owner, key, flag, held, (held.buffer, held.count)))
    return grown


# NOTE [a lent list grown by a staged statement]
# `h = st.get("hist", [])`, then `if x[0].sum() > 0: h.append(x[0])`: a staged body carries
# `h` as state, by value, without the lending (the body's append makes a new list), so the
# dict kept its list: `len(st.get("hist", []))` 2 for Python's 3 (silent55). Writing the new
# `h` back into the dict after the statement (lent55's first form) was wrong where the body
# rebinds `h` instead (`h = h + [x[0]]`: a new list Python's dict never sees; 3 for Python's 2),
# and the statement's carried state does not say which of the two its body did: so a lent list
# a staged statement grows or rebinds is refused at the statement.
def lent_lists_back(out, state, statement: str):
    """`out`, a staged statement's state after it (`state` before); refuses a list a flagged
    key lent (`h = st.get(k, [])`) that the statement grew or rebound (NOTE [a lent list grown
    by a staged statement])."""
    for before, after in zip(state, out):
        record = getattr(before, "lent", None) if _grown_list(before) else None
        # (an `after` still lent: grown outside staged bodies, through `grown_through_lent`)
        if (record is None or after is before or type(after) is not type(before)
                or getattr(after, "lent", None) is not None):
            continue
        owner, key = record[0], record[1]
        raise StagingError.at(
            user_location(), statement,
            f"the list that `{owner.name}.get({key!r}, [])` gave is grown or rebound in the "
            f"{statement}: Python's list is the dict's where the key is there (`h.append(v)` "
            "grows the dict's, `h = h + [v]` does not), and a staged statement carries it as "
            "a value of its own",
            f"Append through the dict: `{owner.name}.setdefault({key!r}, []).append(v)` in the "
            f"{statement}, and read `{owner.name}.get({key!r}, [])` again after it")
    _lenders_kept(out, state, statement)
    return out


# NOTE [a dict's list a staged statement changes while lent]
# `h = st.get("hist", [])`, then `if x.sum() > 0: st["hist"].append(x)` (or `.extend`, `+=`,
# `st["hist"][0] = v`): the `if` carries the dict, its list a value of the statement's own, so
# the copy `h` kept the rows it had: `len(h)` 3 for Python's 4, silently in replay and export
# (alias56); `st["hist"][0] = v` left a trace's FakeTensor in the graph. Python's `h` sees an
# append in place and not `st["hist"] = ...`, which the statement's state does not tell apart
# (NOTE [a lent list grown by a staged statement]): so a statement after which a dict of its
# state holds another list (or other rows) at a key whose list a copy still lent is refused at
# the statement. The copies are kept in a weak set: one no name holds any more is no other name.
# (`pop`, `insert`, `del`, `clear` in a staged body are refused by the list itself.)
def _lenders_kept(out, state, statement: str) -> None:
    """Refuses a statement that changed the list of a dict of its state while a copy of it
    is lent (NOTE [a dict's list a staged statement changes while lent])."""
    if torch.compiler.is_dynamo_compiling() or not _LENT:  # (dynamo first: NOTE above)
        return
    after_of = {id(before): after for before, after in zip(state, out)
                if type(before) is StagedDict}
    for copy in list(_LENT):
        owner, key, _, base, (rows, count) = copy.lent
        after = after_of.get(id(owner))
        if after is None:
            continue
        now = after._items.get(key) if type(after) is StagedDict else None
        if now is base and base.buffer is rows and base.count is count:
            continue
        raise StagingError.at(
            user_location(), statement,
            f"`{owner.name}[{key!r}]` changes in the {statement} while another name holds the "
            f"list `{owner.name}.get({key!r}, [])` gave: Python's other name is the dict's "
            "list where the key is there (an append in place grows it, `st[k] = ...` does not), "
            "and the staged statement carries the dict's list as a value of its own",
            f"Read `{owner.name}.get({key!r}, [])` again after the {statement}, not the name "
            "bound before it")


# NOTE [a for loop over keys set on some paths]
# `for k, v in st.items(): total = total + v` after a staged statement set some of `st`'s keys
# on some paths: Python's loop runs the body once per key present, in the dict's order. With
# the keys' order known (one flagged key, or keys whose flags were set in the dict's order),
# converted code's `for` over the dict, `.keys()`, `.values()` or `.items()` runs one copy of
# the body per key, that of a flagged key under a torch.cond on its flag (as an iteration
# after a traced `break` is: operators._guarded_body), so the body runs where Python's does
# and its value is Python's on every path: the sum over present keys is each value added under
# its flag. The view is that dict's only where converted code's `for` reads it; anything else
# (`list(st.items())`, `len`) needs the keys as before: specialised at the top level, refused
# in a staged body and under torch.compile.
class FlaggedView:
    """`st.keys()` / `.values()` / `.items()` of a StagedDict whose flags the graph decides."""

    def __init__(self, owner: StagedDict, part: str):
        self.owner, self.part = owner, part

    def flagged(self):
        return self.owner.flagged(self.part)

    def _settled(self):
        return getattr(self.owner._settled(f"`.{self.part}()`", True), self.part)()

    def __iter__(self):
        return iter(self._settled())

    def __len__(self):
        return len(self._settled())

    def __contains__(self, item):
        return item in self._settled()


def _flag_or(left, right):
    return right if left is None else torch.logical_or(left, right)


def truth(value: StagedDict):
    """`bool(value)` as a 0-d bool tensor (a bool's stand-in), or a Python bool where known."""
    if any(key not in value._flags for key in value._items):
        return True
    found = None
    for flag in value._flags.values():
        found = _flag_or(found, flag)
    return False if found is None else mark(found.view(()))


def length(value: StagedDict):
    """`len(value)`: an int's stand-in (a 0-d int64 tensor) where a flag is traced."""
    if not value._unknown():
        return len(value._settled("len()"))
    count = len(value._items) - len(value._flags)
    for flag in value._flags.values():
        count = flag.to(torch.int64) + count
    return mark(count.view(()))


def contains(key, value: StagedDict):
    """`key in value`: a bool's stand-in where its flag is traced."""
    if key not in value._items:
        return False
    flag = value._flags.get(key)
    if flag is None or not is_staged(flag):
        return flag is None or bool(flag)
    return mark(flag.view(()))


def _flatten(value: StagedDict):
    if not value._unknown():
        # A concrete StagedDict (what torch.compile returns) is its present items, as a dict is.
        present = value._settled("flattening it", True)
        return list(present.values()), ("items", tuple(present))
    keys = list(value._items)
    flagged = [k for k in keys if k in value._flags]
    return ([value._items[k] for k in keys] + [value._flags[k] for k in flagged],
            (tuple(keys), tuple(flagged), value.name, value.statement, value.ordered,
             tuple(value.where) if value.where else None,
             tuple((k, tuple(kinds)) for k, kinds in value.numbers.items())))


def _unflatten(children, context):
    if context[0] == "items":
        return dict(zip(context[1], children))
    keys, flagged, name, statement, ordered, where, numbers = context
    keys, flagged = tuple(keys), tuple(flagged)
    values = dict(zip(keys, children[:len(keys)]))
    flags = dict(zip(flagged, children[len(keys):]))
    if all(isinstance(f, torch.Tensor) and not is_staged(f) for f in flags.values()):
        # A graph's output, or an exported program's: the dict the function returned.
        if not ordered and sum(bool(flags[k]) for k in flags) > 1:
            # (its keys in the order the paths the data took set them: no graph knows it)
            error = StagedDict(values, flags, name, where, statement)._refusal(
                "returning it", "a use that reads the order of its keys, which is the order "
                "the paths the data took set them in")
            # (at the statement that set them: the graph runs with no user line on the stack)
            raise StagingError.at(where, error.statement, error.problem, error.fix) if where \
                else error
        return {k: v for k, v in values.items() if k not in flags or bool(flags[k])}
    made = StagedDict(values, flags, name, where, statement, ordered)
    made.numbers = {key: tuple(kinds) for key, kinds in numbers}
    return made


pytree.register_pytree_node(StagedDict, _flatten, _unflatten,
                            serialized_type_name="autoconv_runtime.staged_dicts.StagedDict")
# (what torch.compile returns: NOTE [returned under dynamo] in runtime/lists.py)
collections.abc.Mapping.register(StagedDict)


def _number_or_default(chosen, flag, kinds, default, what: str):
    """`d.get(k, default)` of a key holding a number of `kinds`, `chosen` its graph value: a
    stand-in of the number, tagged with the default's kind too where that differs (`d.get("n",
    1)` of a float: an int where the key is missing, NOTE [numbers of two kinds])."""
    chosen = mark_view(chosen)
    every = {*kinds, kind_of(default)}
    narrow = None
    if len(every) == 2 and len(kinds) == 1:
        # (the narrower kind's paths: the default's where it is the narrower, else the key's)
        wider = max(every, key=("bool", "int", "float", "complex").index)
        narrow = torch.logical_not(flag) if kind_of(default) != wider else flag
    return mark_kinds(chosen, every, what, narrow=narrow)


def _number(value):
    """`value` as a 0-d tensor where it is a number or a 0-d tensor, else None."""
    if type_in(value, (bool, int, float)):
        return torch.tensor(value)
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value
    return None


def _in_body() -> bool:
    from .staging import context

    return context.in_staged_body()


def _grown_list(value) -> bool:
    """Whether `value` is a list a peeled loop grew from its first trip's empty placeholder
    (NOTE [a dict the first trip gives keys])."""
    from .lists import StagedList

    return isinstance(value, StagedList)
