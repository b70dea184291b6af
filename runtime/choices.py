"""In-place updates of a name a tensor condition bound to one of two existing tensors, or of an
item of a Python list read with a traced index (NOTE [in-place updates of a choice] in
autoconv/converters/choices.py)."""

from __future__ import annotations

import torch

from . import augmented
from .errors import StagingError
from .staging import tensor_reads
from .identity import type_in
from .lists import StagedList
from .operators import _STANDS_FOR
from .values import is_staged

__all__ = [
    "refresh_choice",
    "refresh_item",
    "refresh_item_after_call",
    "item_versions",
    "refresh_held",
    "refuse_held",
    "refuse_item_refresh",
    "refuse_returned_update",
    "returned_choice",
    "returned_path",
    "write_back_returned",
    "refuse_choice_update",
    "refuse_item_update",
    "write_back_choice",
    "write_back_kept",
    "item_or_none",
    "write_back_item",
    "write_back_path",
]


def _taken(chosen):
    taken = chosen.bool()
    return taken.reshape(()) if taken.numel() == 1 else taken


def write_back_choice(value, chosen, if_true, if_false) -> None:
    """After an in-place update of `value`, the name bound to `if_true` where `chosen` holds
    and to `if_false` elsewhere: as Python, where `value` is the chosen tensor itself,
    `if_true.copy_(where(chosen, value, if_true))`, and `if_false` likewise. Nothing where the
    choice ran as Python (`chosen` not a traced tensor, or `value` one of the sources) or
    `value` is not a tensor."""
    if not (isinstance(chosen, torch.Tensor) and isinstance(value, torch.Tensor)
            and is_staged(chosen)) or value is if_true or value is if_false:
        return  # (an eager run of converted code, where the fast path is off, too)
    taken = _taken(chosen)
    for source, where in ((if_true, taken), (if_false, ~taken)):
        if isinstance(source, torch.Tensor) and source is not value:
            source.copy_(torch.where(where, value, source))


def item_or_none(items, key):
    """`items[key]`, or None where it has no such item (before a statement that may set it:
    NOTE [a name kept on some paths of a staged statement] in runtime/operators.py)."""
    try:
        return items[key]
    except (KeyError, IndexError, TypeError):
        return None


def write_back_kept(value, chosen, before, name: str, alias: str = "") -> None:
    """After an in-place update of `value` (an item or attribute a staged statement may have
    rebound on some paths only; with `alias`, after an update of `alias`, a name bound to its
    tensor before the statement): as `write_back_choice(value, chosen, before, None)` (with
    `alias`, `refresh_choice`), where `chosen` (`kept_object`'s) is known.

    Raises:
        StagingError: `chosen` is None: the statement was staged and which paths rebound
            `value` is not known.
    """
    if chosen is None and isinstance(value, torch.Tensor) and is_staged(value):
        what = f"`{alias}`, bound to `{name}`'s tensor before," if alias else f"`{name}`"
        raise StagingError(
            "choice",
            f"`{name}` is rebound on some paths only of a staged statement before this line, "
            f"and {what} is updated in place here: in Python, on the paths that kept it, "
            f"`{name}` is still the tensor from before (which other names may hold), but "
            f"staged `{name}` is a new tensor on every path, so the update would miss the other",
            f"Update out of place (`{name} = {name} + v`), or rebind `{name}` on every path "
            "of the statement")
    if alias:
        refresh_choice(value, chosen, before, None)
    elif not (isinstance(before, torch.Tensor) and before.requires_grad and before.is_leaf
              and torch.is_grad_enabled()):
        # (a leaf that requires grad: Python's update of it in place raises on the paths that
        # kept it, the others' does not; the write-back would raise on every path)
        write_back_choice(value, chosen, before, None)
        _write_back_older(before, chosen)


# NOTE [an older object a kept one stands for]
# `alias = y`, then `for i in range(3): if c > i: y = v * 2` / `y.add_(1)`, the loop run as
# Python: each trip's body watches `y` (NOTE [a name kept on some paths of a staged statement]
# in operators.py) from its own start, where `y` is the previous trip's staged `if` result, a
# new tensor; the update was written back into it and never reached `alias` (1 for Python's
# 3 where `c <= 0`, every mode). That result is marked (`_STANDS_FOR`: the object it held
# before, and the flag of whether it still is it), so a write-back into it goes on into that
# older object by its flag, and so on up the marks: in Python, on those paths, they are one
# tensor. An update of `alias` itself inside such a body refreshes `y` the other way, from
# the oldest object down (`_refresh_from_older`, since session 48).


def _write_back_older(before, chosen) -> None:
    """After `before` got a staged write-back by `chosen`: the same into each older object
    it stands for, by its mark's flag (NOTE [an older object a kept one stands for])."""
    if not (isinstance(chosen, torch.Tensor) and is_staged(chosen)):
        return
    marked = getattr(before, _STANDS_FOR, None)
    while marked is not None:
        older, flag = marked
        if not isinstance(older, torch.Tensor) or older is before:
            return
        write_back_choice(before, flag, older, None)
        before, marked = older, getattr(older, _STANDS_FOR, None)


def write_back_path(value, which, sources) -> None:
    """After an in-place update of `value`, the name an `if` / `elif` chain bound to
    `sources[which]` (`which` the index of the branch taken, -1 where it bound none or jumped
    away): as Python, `sources[i].copy_(where(which == i, value, sources[i]))` for each source
    that is a tensor. Nothing where the chain ran as Python (`which` not traced) or `value` is
    one of the sources."""
    if not isinstance(value, torch.Tensor):
        return
    if isinstance(which, torch.SymInt):
        which = torch.scalar_tensor(which, dtype=torch.int64)
    if not (isinstance(which, torch.Tensor) and is_staged(which)) or any(
            value is source for source in sources):
        return
    for i, source in enumerate(sources):
        if isinstance(source, torch.Tensor):
            source.copy_(torch.where(which.reshape(()) == i, value, source))


def refresh_choice(value, chosen, if_true, if_false) -> None:
    """After an in-place update of `if_true` or `if_false`, the name `value` a tensor
    condition bound to one of them (staged, a new tensor: the condition's output): as Python,
    where `value` is that tensor itself, `value.copy_(where(chosen, if_true, if_false))`, a
    source that is None (the path computed `value`) read as `value`. Nothing where the choice
    ran as Python (`chosen` not a traced tensor, or `value` one of the sources). With a list
    `if_true` (`which` for `chosen`), the sources of an `if` / `elif` chain, by index."""
    if not isinstance(value, torch.Tensor):
        return
    if isinstance(chosen, torch.SymInt):
        chosen = torch.scalar_tensor(chosen, dtype=torch.int64)
    if not (isinstance(chosen, torch.Tensor) and is_staged(chosen)):
        return
    if isinstance(if_true, (list, tuple)):
        sources, which = if_true, chosen.reshape(())
        if any(value is source for source in sources):
            return
        out = value
        for i, source in enumerate(sources):
            if isinstance(source, torch.Tensor):
                out = torch.where(which == i, source, out)
        value.copy_(out)
        return
    if value is if_true or value is if_false:
        return
    # (a source kept on some paths of an earlier statement is, on those paths, the older
    # object, whose update this may be: NOTE [aliases bound before an enclosing statement] in
    # autoconv/converters/choices.py)
    for source in (if_true, if_false):
        if isinstance(source, torch.Tensor):
            _refresh_from_older(source)
    taken = _taken(chosen)
    value.copy_(torch.where(taken, if_true if isinstance(if_true, torch.Tensor) else value,
                            if_false if isinstance(if_false, torch.Tensor) else value))


def _refresh_from_older(value) -> None:
    """`value` refreshed from each older object it stands for, the oldest first, by its
    mark's flag (NOTE [an older object a kept one stands for]): on those paths Python's
    `value` is that object, which an alias may have updated in place."""
    chain = []
    current, marked = value, getattr(value, _STANDS_FOR, None)
    while marked is not None:
        older, flag = marked
        if not isinstance(older, torch.Tensor) or older is current or any(
                older is newer for newer, _, _ in chain):
            break
        chain.append((current, flag, older))
        current, marked = older, getattr(older, _STANDS_FOR, None)
    for newer, flag, older in reversed(chain):
        if isinstance(flag, torch.SymInt):
            flag = torch.scalar_tensor(flag, dtype=torch.int64)
        if isinstance(flag, torch.Tensor) and is_staged(flag):
            newer.copy_(torch.where(_taken(flag), older, newer))


def refuse_choice_update(value, chosen, name: str, sources: str, where: str = "") -> None:
    """Raise a StagingError for an in-place update of `name` (or of one of its `sources`)
    where `name` is a staged choice between `sources` and no write-back is made: by default
    an update of `name` inside a compound statement; `where` says otherwise.

    Raises:
        StagingError: `chosen` and `value` are tensors (the choice was staged).
    """
    if isinstance(chosen, torch.SymInt):
        chosen = torch.scalar_tensor(chosen, dtype=torch.int64)
    # (a stand-in for a Python number, chosen between numbers: `h *= 0.5` rebinds it in
    # Python, and no other name shares the update)
    if (isinstance(chosen, torch.Tensor) and isinstance(value, torch.Tensor)
            and is_staged(chosen) and not augmented.is_stand_in(value)):
        where = where or f"`{name}` is updated in place inside this statement"
        raise StagingError(
            "choice",
            f"`{name}` is {sources} in Python, chosen by a tensor condition, and {where}: in "
            f"Python `{name}` and the chosen tensor are one tensor, but "
            f"staged `{name}` is a new tensor (the condition's output), so the update would "
            "not reach the other",
            f"Update `{name}` out of place (`{name} = {name} + v`) and write it where it "
            f"belongs under the condition (`torch.where(cond, {name}, ...)`), or move the "
            "in-place update out of the compound statement")


def _copies(items, key) -> bool:
    """Whether `items[key]`, a tensor indexed by one traced `key`, is a copy in Python: advanced
    indexing (an index tensor of dim >= 1, a bool or uint8 mask; NOTE [items that are copies]).
    A 0-d integer index (a SymInt too) selects as an int does: a view."""
    if not isinstance(items, torch.Tensor) or not isinstance(key, torch.Tensor):
        return False
    return key.dim() != 0 or key.dtype in (torch.bool, torch.uint8)


# NOTE [items that are copies]
# `c = data[k]` with a traced `k` is watched as an item of `data` (NOTE [in-place updates of a
# choice] in autoconv/converters/choices.py): with a 0-d integer `k` Python's `c` is a view of
# `data` (torch reads the index as an int), and an update of `c` reaches `data`, which the
# staged gather does not (written back after a simple statement, refused inside a compound
# one). With `k` a 1-d index tensor or a mask (the rows of a k-means' centroids,
# `data[idx]`) Python's `c` is a new tensor, advanced indexing's copy, and `data` must not
# change: the write-back would have put the update into `data` (silently wrong) and the
# refusal was a false one (tester, kmeans). Which kind of index it is is known only at run
# time (the converter sees a name), so the runtime tells them apart by the traced key.


def refuse_item_update(value, items, key, name: str, sources: str, where: str = "") -> None:
    """`refuse_choice_update` for `name` read as `items[key]` with a traced `key`: nothing where
    that is a copy in Python (NOTE [items that are copies]), which no update of `name` reaches
    `items` through.

    Raises:
        StagingError: `key` is traced and `items[key]` is `items`' item (or view) in Python.
    """
    if isinstance(key, torch.SymInt):
        key = torch.scalar_tensor(key, dtype=torch.int64)
    if _copies(items, key):
        return
    refuse_choice_update(value, key, name, sources, where)


def write_back_item(value, items, key) -> None:
    """After an in-place update of `value`, read as `items[key]` from a Python list or tuple of
    tensors with a traced index (a row of the stacked items, runtime/subscripts.py): as Python,
    where `value` is the item itself, `items[i].copy_(where(key == i, value, items[i]))` for
    each item. From a tensor, `items[key] = value` where that is a view in Python (a 0-d
    integer `key`). Under dynamo, a list grown under tensor control flow read with an int:
    its buffer's row set to `value` (NOTE [an item of a grown list updated under dynamo] in
    runtime/lists.py). Nothing where `key` is not traced, `value` is one of the items, or
    `items[key]` is a copy (NOTE [items that are copies])."""
    if not isinstance(value, torch.Tensor):
        return
    if torch.compiler.is_dynamo_compiling() and type(items) is StagedList \
            and type(key) is int and not isinstance(key, bool):
        # NOTE [an item of a grown list updated under dynamo]
        items[key] = value
        return
    if isinstance(key, torch.SymInt):
        key = torch.scalar_tensor(key, dtype=torch.int64)
    if not isinstance(key, torch.Tensor) or not is_staged(key):
        return
    if _copies(items, key):
        return
    if isinstance(items, torch.Tensor):
        # `x[k]` with a traced `k` is a view in Python (a 0-d index is an int), a gather when
        # staged (runtime/subscripts.py): the row is put back (onto itself, were it a view)
        from .subscripts import setitem

        setitem(items, key, value)
        return
    if not type_in(items, (list, tuple)) or any(value is item for item in items):
        return
    size = len(items)
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            item.copy_(torch.where((key == i) | (key == i - size), value, item))


# NOTE [rows read with a traced index, their tensor updated after]
# `c = data[k]` with a traced 0-d integer `k` is a view of `data` in Python, a gather staged
# (runtime/subscripts.py): a later `data.add_(1)` (or `data[0] = v`, `data += v`) reached
# `c` in Python and missed it staged (every mode, silently). The converter watches `c` as an
# item of `data` (NOTE [in-place updates of a choice] in autoconv/converters/choices.py) and
# after each such update of `data` by a simple statement, or a compound one that does not
# read `c`, reads the row again into `c` (`refresh_item`): one gather and copy in the graph,
# only where the source updates `data` while `c` is bound to the row; nothing where `k` was
# not traced (`c` a view already) or the index makes a copy in Python (NOTE [items that are
# copies]). A compound statement that updates `data` and reads `c` is refused at its line.
# An update through another name (`v = data[1:]; v.add_(1)`, `alias = data`, a global view
# of it) is followed where the updated tensor shares the memory of `data`, which the trace
# knows by `_base` (under torch.compile, where it cannot be relied on, always). A row of a
# Python list of tensors read with a traced index (`c = items[k]`, the stacked items' row
# staged) is read again after an in-place update of an item (`items[0].add_(1)`, `t =
# items[0]; t.add_(1)`), not after `items[0] = t`, which rebinds the item (`c` keeps the old
# tensor, as the gathered row does). An update by a call given the list or the tensor
# (`helper(items)`) is followed by the version counters of the tensors: `item_versions`
# before the statement, `refresh_item_after_call` after it, which reads the row again where an
# item (or the tensor) changed in place, and refuses where the statement also rebound an item
# or read the row (stale inside the statement).


# NOTE [views of a name kept on some paths]
# `row = y[:2]` (or `t = y.T`, `box = [y]`, `h = f(y)`), then a staged statement that rebinds
# `y` on some paths only, then `row.add_(1)` (`box[0].add_(1)`, `torch.add(v, 1, out=row)`):
# in Python, on the paths that left `y` bound to its tensor, the update reaches `y`. Staged,
# `y` is the statement's new tensor on every path, and it missed the update (every mode,
# silently). The converter watches `y` as a name kept on some paths (NOTE [a name kept on
# some paths of a staged statement] in runtime/operators.py) where a later statement of the
# block updates such a holder in place, and refreshes `y` after it from its tensor before the
# statement, by the statement's flag: `y.copy_(where(chosen, y_before, y))` (`refresh_held`),
# which is Python's `y` on every path. Whether the holder shares `y_before`'s memory is
# known at trace time (its `_base`): the refresh is staged only where it may; under
# torch.compile, where dynamo's `_base` cannot be relied on, always (a `where` and a copy). A
# compound statement that updates the holder and reads `y` is refused at its line. The tensor
# `y` was bound to a view of (`y = t[1:]`, `_view_bases`) is such a holder too, where `y` is
# read after: `t.add_(1)` reaches `y` on the paths that kept the view (0 for Python's 1 before
# session 46, every mode).


def _may_share(held, before) -> bool:
    """Whether `held` (a tensor, or a list / tuple / dict of them) may share `before`'s
    memory; True for anything else (an object)."""
    import torch.utils._pytree as pytree

    if isinstance(held, torch.Tensor):
        leaves = [held]
    elif type_in(held, (list, tuple, dict)):
        leaves = pytree.tree_leaves(held)
        if not all(isinstance(v, torch.Tensor) or type_in(v, (int, float, bool, str))
                   or v is None for v in leaves):
            return True
        leaves = [v for v in leaves if isinstance(v, torch.Tensor)]
    else:
        return True
    base = before._base if before._base is not None else before
    return any(t is before or t is base or t._base is base for t in leaves)


def _holds_no_tensor(held) -> bool:
    """Whether `held` is a list / tuple / dict of Python numbers, strings and None only (a
    counter `stats["clipped"] += 1`), which can share no tensor's memory: known under dynamo
    too, where `_base` cannot be relied on (tester23 s07 refused such a counter there). A
    number a staged statement carries is its stand-in there, a 0-d tensor, which `+=` and the
    item writes rebind (`aug_assign`), never write into: it counts as the number."""
    import torch.utils._pytree as pytree

    return type_in(held, (list, tuple, dict)) and all(
        type_in(v, (int, float, bool, str)) or v is None or augmented.is_stand_in(v)
        for v in pytree.tree_leaves(held))


def _held(held, before, seen, refusing=False) -> bool:
    """Whether `held` may share `before`'s memory: known at trace time. Under dynamo, whose
    `_base` cannot be relied on, True for a refresh; for a refusal, True for a holder the
    converter saw take it (`seen`: `row = y[:2]`) or `before` itself. A global's or an
    attribute's tensor (`f(G, v, c)` then `G.add_(1)`) is a real tensor in the trace and the
    argument its fake: the fake mode's own fake of the global tells (autoconv traces a graph
    of its own for calls given such a tensor: NOTE [arguments that are captured tensors] in
    autoconv/signature.py)."""
    if type_in(held, (int, float, bool, str)) or held is None or _holds_no_tensor(held):
        return False
    if torch.compiler.is_dynamo_compiling():
        # (the refresh is Python's value wherever it runs: a false positive costs a `where`)
        return seen or held is before or not refusing
    return _may_share(_as_traced(held, before), before)


def _as_traced(held, before):
    """`held`, a real tensor (a global's) where `before` is a fake one, as the fake the trace
    gives it (one per real tensor: an argument that is that tensor is that fake)."""
    fake_mode = getattr(before, "fake_mode", None)
    if fake_mode is None:
        return held
    import torch.utils._pytree as pytree
    from torch._subclasses.fake_tensor import FakeTensor

    def traced(value):
        if isinstance(value, torch.Tensor) and not isinstance(value, FakeTensor):
            try:
                return fake_mode.from_tensor(value)
            except Exception:  # (one it cannot convert: a subclass; compared as it is)
                return value
        return value

    if isinstance(held, torch.Tensor):
        return traced(held)
    if type_in(held, (list, tuple, dict)):
        return pytree.tree_map(traced, held)
    return held


def refresh_held(value, chosen, before, held, seen=True) -> None:
    """After an in-place update through `held`, a value that may hold `before` (the tensor a
    name had before a staged statement that rebound it on some paths only) or a view of it:
    `refresh_choice(value, chosen, before, None)` where `held` may share its memory (NOTE
    [views of a name kept on some paths])."""
    if not (isinstance(before, torch.Tensor) and isinstance(value, torch.Tensor)):
        return
    if _held(held, before, seen):
        refresh_choice(value, chosen, before, None)


def refuse_held(value, chosen, before, held, name, sources, where, seen=True) -> None:
    """Before a compound statement that updates `held` in place and reads `name`: a
    StagingError where `held` may share the memory of `before`, `name`'s tensor before a
    staged statement that rebound it on some paths only (NOTE [views of a name kept on some
    paths])."""
    if not (isinstance(before, torch.Tensor) and isinstance(value, torch.Tensor)):
        return
    if _held(held, before, seen, refusing=True):
        refuse_choice_update(value, chosen, name, sources, where)


def _row_followed(value, items, key, held, stored) -> bool:
    """Whether `value`, read as `items[key]`, is to be read again after an in-place update
    (NOTE [rows read with a traced index, their tensor updated after])."""
    if not isinstance(value, torch.Tensor) or value is items:
        return False
    if isinstance(items, torch.Tensor):
        if isinstance(key, torch.SymInt):
            key = torch.scalar_tensor(key, dtype=torch.int64)
        if not isinstance(key, torch.Tensor) or not is_staged(key) or _copies(items, key):
            return False
    elif type_in(items, (list, tuple)) and items and all(
            isinstance(item, torch.Tensor) for item in items):
        # (a list's `items[0] = t` rebinds the item: `value` keeps the old tensor)
        if stored or not _is_traced_index(key) or any(value is item for item in items):
            return False
    else:
        return False
    if held is None:
        return True
    # an update through another name (`v = data[1:]; v.add_(1)`, `t = items[0]; t.add_(1)`):
    # where it shares the memory of `items` (or of an item), which the trace knows by
    # `_base`; under dynamo, whose `_base` cannot be relied on, always (a false positive
    # costs a gather and a copy)
    if type_in(held, (int, float, bool, str)) or held is None or _holds_no_tensor(held):
        return False
    if torch.compiler.is_dynamo_compiling():
        return True
    leaves = [items] if isinstance(items, torch.Tensor) else list(items)
    return any(_may_share(_as_traced(held, leaf), leaf) for leaf in leaves)


def _is_traced_index(key) -> bool:
    return isinstance(key, torch.SymInt) or (isinstance(key, torch.Tensor) and is_staged(key)
                                             and not key.is_floating_point())


def refuse_item_refresh(value, items, key, name: str, sources: str, where: str,
                        held=None) -> None:
    """Before a compound statement that updates `items` (or `held`, where it shares their
    memory) in place and reads `name`, bound to `items[key]` with a traced `key`: a
    StagingError (NOTE [rows read with a traced index, their tensor updated after])."""
    if _row_followed(value, items, key, held, False):
        if isinstance(items, torch.Tensor):
            refuse_item_update(value, items, key, name, sources, where)
        else:
            refuse_choice_update(value, key, name, sources, where)


def refresh_item(value, items, key, held=None, stored=False, rebound="") -> None:
    """After an in-place update of the tensor `items` (or of an item of the Python list
    `items`; `stored`: the statement stored into `items[...]`, which rebinds a list's item),
    `value` read as `items[key]` with a traced 0-d integer `key` (the row itself in Python,
    a gather staged): `value.copy_(items[key])` (NOTE [rows read with a traced index, their
    tensor updated after]). `held`: the tensor the statement updated where that is another
    name's (`v` of `v = data[1:]`), followed where it shares the memory of `items`. Nothing
    where `key` is not traced or `items[key]` is a copy in Python. `rebound`: the name of the
    row, where an earlier statement stored into `items[...]` since it was read: for a Python
    list, a StagingError (the row may be the old item or the new one's; not known to the
    graph).

    Raises:
        StagingError: `rebound`, `items` a Python list of tensors, `key` traced.
    """
    if not _row_followed(value, items, key, held, stored):
        return
    if rebound and not isinstance(items, torch.Tensor):
        raise StagingError(
            "item",
            f"`{rebound}` was read as an item of a Python list with a traced index, an item "
            "of that list was then rebound (`items[i] = t`), and now an item is updated in "
            f"place: in Python `{rebound}` is the old item or the new one's tensor, by the "
            "index, which the graph's row does not follow",
            f"Read `{rebound}` from the list again after rebinding the item, or update the "
            "items out of place and build a new list")
    from .subscripts import getitem

    value.copy_(getitem(items, key))


def item_versions(items):
    """The tensor `items`, or a Python list's tensor items, each with its version counter,
    before a statement that gives them to a call (`refresh_item_after_call`); None for anything
    else."""
    if isinstance(items, torch.Tensor):
        return ((items, tensor_reads.version_of(items)),)
    if type_in(items, (list, tuple)) and all(isinstance(v, torch.Tensor) for v in items):
        return tuple((v, tensor_reads.version_of(v)) for v in items)
    return None


def refresh_item_after_call(value, items, key, versions, name: str = "") -> None:
    """After a statement that gave `items` (a tensor, or a Python list of tensors) to a call,
    `value` read as `items[key]` with a traced 0-d integer `key` (a gather staged, the row
    itself in Python) read again where the call updated a tensor in place: `versions` is
    `item_versions(items)` before the statement (NOTE [rows read with a traced index, their
    tensor updated after]). `name`: the row's name where the statement also reads it.

    Under torch.compile a version counter is a number known when the graph runs: the row is
    read again whether or not it changed (the same row where it did not), and where the
    statement reads the row, the graph asserts that the row's values did not change.

    Raises:
        StagingError: the call updated a tensor in place and also rebound an item of the list
            (`items[i] = t`; under torch.compile: rebound one), or the statement reads the
            row (`name`), which was stale there; under torch.compile that check is a graph
            assertion (a RuntimeError with the message when run).
    """
    if versions is None or not _row_followed(value, items, key, None, False):
        return
    now = item_versions(items)
    rebound = now is None or len(now) != len(versions) or any(
        t is not u for (t, _), (u, _) in zip(now, versions))
    shown = name or "the row"
    fix = (f"Read `{shown}` again after the call, or have the call return the updated tensors "
           "instead of changing them in place")
    if torch.compiler.is_dynamo_compiling():
        if rebound:
            raise StagingError("item", f"`{shown}` was read as an item of a list with a traced "
                               "index, and a call given the list rebinds an item: under "
                               "torch.compile whether it also updated one in place is known "
                               "only when the graph runs", fix)
        row = _row(items, key)
        if name:
            # (dynamo's version counters are read when the graph starts: the row's own values
            # tell whether the statement read a stale `name`)
            # (a StagingError cannot be made under dynamo: its text is the message)
            same = row == value
            if row.is_floating_point():
                same = same | (row.isnan() & value.isnan())  # (NaN is no change)
            torch._assert_async(same.all(), (
                f"StagingError: `{name}` was read as an item with a traced index, and a call "
                f"updated its tensors in place inside a statement that reads it. {fix}"))
        value.copy_(row)
        return
    before = dict((id(t), v) for t, v in versions)
    updated = any(id(t) in before and before[id(t)] != v for t, v in now or ())
    if not updated:
        return  # (items rebound only: the row keeps the old tensor, as Python's)
    if rebound or name:
        raise StagingError(
            "item",
            f"`{shown}` was read as an item with a traced index, and a call given the "
            + ("list both rebinds an item and updates one in place" if rebound else
               f"tensors updates them in place inside a statement that reads `{shown}`")
            + ": the graph's row (a copy) does not follow that update", fix)
    value.copy_(_row(items, key))


def _row(items, key):
    from .subscripts import getitem

    return getitem(items, key)


_MARK = "_autoconv_chosen_from"  # NOTE [returned choices] in autoconv/converters/choices.py


def returned_choice(value, chosen, if_true, if_false):
    """`value` (`if_true if chosen else if_false`, returned), marked with its sources where the
    choice was staged (a new tensor): a caller updating it in place writes it back."""
    if (isinstance(chosen, torch.Tensor) and is_staged(chosen) and isinstance(value, torch.Tensor)
            and value is not if_true and value is not if_false):
        value = _mark(value, (chosen, if_true, if_false))
    return value


def _mark(value, mark):
    if torch.compiler.is_dynamo_compiling():
        # dynamo refuses an attribute of torch.cond's output ("setattr() on unsupported
        # type"), not of a view of it, which no one else holds either
        value = value.view_as(value)
        value._autoconv_chosen_from = mark
    else:
        setattr(value, _MARK, mark)
    return value


def returned_path(value, which, sources):
    """`value`, the function's result, marked with `sources` (by `which`, the index of the
    `return` taken: NOTE [returned paths] in autoconv/converters/choices.py) where a staged
    statement chose it (a new tensor): a caller updating it in place writes it back. A source
    is a tensor (the name that return gave), None (a new value on that path) or a str (one the
    converter cannot follow: the caller's update is refused)."""
    if isinstance(which, torch.SymInt):
        which = torch.scalar_tensor(which, dtype=torch.int64)
    if (isinstance(which, torch.Tensor) and is_staged(which) and isinstance(value, torch.Tensor)
            and not any(value is source for source in sources)):
        value = _mark(value, (which, list(sources), None))
    return value


def write_back_returned(value, name: str = "the result", held=None) -> None:
    """After an in-place update of `value`, a call's result: where it is a marked choice
    (`returned_choice`, `returned_path`; the mark read from `held` where given: `value` before
    the update), written back into the tensor each path chose, and on into that tensor's own
    sources where it was a marked result too.

    Raises:
        StagingError: a path may have returned a tensor the converter cannot follow.
    """
    held = value if held is None else held
    mark = getattr(held, _MARK, None) if isinstance(held, torch.Tensor) else None
    if mark is None:
        return
    chosen, if_true, if_false = mark
    if isinstance(if_true, list):
        unknown = [s for s in if_true if isinstance(s, str)]
        if unknown:
            shown = " or ".join(f"`{s}`" for s in dict.fromkeys(unknown))
            raise StagingError(
                "choice",
                f"`{name}` is a tensor the called function returned from inside a staged "
                f"statement ({shown} on one of its paths, which may be another tensor itself "
                "in Python, an argument or a view of one), updated in place here: in Python "
                "the update may reach that tensor, but staged the result is a new tensor",
                f"Update `{name}` out of place (`{name} = {name} + v`), or update the "
                "argument itself where you mean to")
        write_back_path(value, chosen, if_true)
        sources = if_true
    else:
        write_back_choice(value, chosen, if_true, if_false)
        sources = (if_true, if_false)
    for source in sources:
        if isinstance(source, torch.Tensor) and source is not value:
            write_back_returned(source)


def refuse_returned_update(value, name: str) -> None:
    """Raise a StagingError for an in-place update of `name`, a marked choice a call returned,
    inside a compound statement (no write-back there).

    Raises:
        StagingError: `value` is marked (`returned_choice`).
    """
    if isinstance(value, torch.Tensor) and getattr(value, _MARK, None) is not None:
        raise StagingError(
            "choice",
            f"`{name}` is a tensor the called function returned by a tensor condition (an "
            "argument itself in Python), updated in place inside this statement: in Python "
            "that updates the argument, but staged the result is a new tensor",
            f"Update `{name}` in place outside the compound statement, or out of place "
            f"(`{name} = {name} + v`) and write the arguments where they belong")
