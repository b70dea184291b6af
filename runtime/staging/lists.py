"""How a list that a staged statement grows crosses it: probed, sized, carried as a StagedList.

`stage_if` / `stage_while` run each body once with side effects off (a probe) on a copy of every
list in their state, and read what the body did to it here: how many items it appended at most
(`growth`) and their dtype and shape. The list then becomes a StagedList with that much room
reserved (times the trip count for a loop), which the torch operator carries as two tensors.
"""

from __future__ import annotations

import re

import torch
from torch.fx.experimental.symbolic_shapes import has_free_unbacked_symbols

from .. import augmented
from ..errors import StagingError
from ..lists import StagedList, UncountedList
from ..values import promote_types, to_tensor, with_number
from . import context, dict_lists
from ..traced import enumerate  # (NOTE [enumerate under dynamo] in runtime/traced.py)

__all__ = ["Growth", "ReplacedList", "BranchLists", "growing_slots", "probe_copies", "measure", "trip_bound", "reserve",
           "check_loop_growth", "release", "uncounted"]


def growing_slots(state) -> list[int]:
    """Slots of `state` holding a list a statement may grow: a Python list, or a StagedList
    that no enclosing statement has reserved room in."""
    return [i for i, v in enumerate(state)
            if type(v) is list or (isinstance(v, StagedList) and not v.reserved)]


def probe_copies(state, slots) -> list:
    """`state` with a fresh copy of each Python list in `slots`, for a probe to append to; its
    tensors copied too, so that a probe updating one in place (`bufs[0].add_(a)`) leaves the
    list's own as they are (the probe's ops are dead code, its in-place updates are not)."""
    return [[augmented.copy_of(t) if isinstance(t, torch.Tensor) else t for t in v]
            if i in slots and type(v) is list else v for i, v in enumerate(state)]


class ReplacedList(Exception):
    """Internal, never reaches the user: a body replaced the lists named in `args` with new
    lists, or wrote the items of those named in the tuple that ends `args` (no `__init__` of
    its own: dynamo cannot trace one), which the statement then carries as tuples (see
    replaced_lists.py)."""


class BranchLists(Exception):
    """Internal, never reaches the user: an `if`'s branches bind the variables named in `args`
    to Python lists whose lengths differ between the paths (or to a list where the variable is
    unbound before the statement). The statement is staged again with each a StagedList (a
    buffer of the longest path's length and a count), NOTE [lists bound in branches] in
    torch.py. (No `__init__` of its own: dynamo cannot trace one.)"""


class Growth:
    """What the probes saw a statement do to one list: the most items one run of a body
    appended, and an example item (a zero tensor of the items' dtype and shape)."""

    def __init__(self, name: str):
        self.name, self.count, self.item = name, 0, None
        self.numbers = False  # (every item a Python number: StagedList.numbers)

    def see(self, before, probe_value, out, statement: str, where: str,
            written: bool = False) -> None:
        """Record one body's effect: `out` is what the body returned for `probe_value`;
        `written`: the body's code writes the list's items (NOTE [item writes seen in the code]
        in item_writes.py)."""
        if type(before) is list:
            if out is probe_value:
                if len(out) == len(before) and (
                        written or any(a is not b for a, b in zip(out, before))):
                    # Items written in place (`bracket[i] = t`), none added: carried as a tuple
                    # and written back into the list (replaced_lists.py).
                    raise ReplacedList(self.name, (self.name,))
                if len(out) < len(before) or any(a is not b for a, b in zip(out, before)):
                    raise self._changed(statement, where)
                self._items(out[len(before):], statement)
                self.count = max(self.count, len(out) - len(before))
                return
            if type(out) is list and len(out) > len(before) and all(
                    a is b for a, b in zip(out, before)):
                # `vals = vals + [t]`: a new list that starts with the old one's items grows
                # as an append would (the old list is left as it was, as in Python).
                self._items(out[len(before):], statement)
                self.count = max(self.count, len(out) - len(before))
                return
            if isinstance(out, StagedList):  # a statement inside the body made it staged
                self._item_of(out, statement)
                self.count = _max(self.count, out.capacity - len(before))
                return
        elif isinstance(out, StagedList):
            self._item_of(out, statement)
            self.count = _max(self.count, out.capacity - before.capacity)
            return
        elif type(out) is list and statement == "if statement":
            # A branch binds a new list to a variable the statement carries as a StagedList
            # (NOTE [lists bound in branches] in torch.py): its items fill the buffer's rows.
            self._item_of(before, statement)
            self._items(out, statement)
            self.count = _max(self.count, len(out) - _as_int(before.capacity))
            return
        if type(before) is list and type(out) is list:
            # A new list (`coeffs = fit(y)`): the statement is staged again with the list as
            # a tuple (replaced_lists.py). Not a StagingError: under dynamo making one raises.
            raise ReplacedList(self.name)
        raise self._changed(statement, where)

    def _items(self, items, statement: str) -> None:
        for item in items:
            # A symbolic number (`t.item()` under a tracer) is a number too.
            if isinstance(item, bool) or not isinstance(
                    item, (torch.Tensor, int, float, torch.SymInt, torch.SymFloat)):
                loop = statement == "for loop"
                raise StagingError(
                    statement,
                    f"'{self.name}' grows under tensor control flow and a Python "
                    f"{type(item).__name__} is appended to it; such a list can hold tensors "
                    "and numbers only" + (
                        # (a loop over `zip(topv, topi)` has a trip count known while tracing:
                        # the message said only "tensor-dependent", tester t18's beam search)
                        " (a `for` over the rows of a traced tensor or a grown list, or one a "
                        "tensor condition can stop, is staged as one loop whose body is traced "
                        "once, even where its length is known while tracing)" if loop else ""),
                    (_per_field_fix(self.name, item) if type(item) is tuple else
                     f"Append tensors (one list per component for tuples), or grow "
                     f"'{self.name}' outside the statement") + (
                        "; to build Python values from a tensor's rows, loop over a Python range "
                        "of its length (`for k in range(len(t)): ... t[k]`), which runs as Python"
                        if loop else ""))
            self._kind(torch.zeros_like(to_tensor(item)), statement, _number_like(item))

    def _item_of(self, staged: StagedList, statement: str) -> None:
        buffer = staged.buffer
        self._kind(buffer.new_zeros(buffer.shape[1:]), statement, staged.numbers)

    def _kind(self, example: torch.Tensor, statement: str, number: bool = False) -> None:
        if self.item is None:
            self.item, self.numbers = example, number
            return
        if not _same_kind(self.item, example):
            merged = _number_kind(self.item, self.numbers, example, number)
        else:
            merged = self.item
        self.numbers = self.numbers and number
        if merged is not None:
            self.item = merged
        else:
            raise StagingError(
                statement,
                f"'{self.name}' gets items of different kinds appended: {_describe(self.item)} "
                f"and {_describe(example)}; a list grown under tensor control flow is stored as "
                "one tensor",
                "Append items of one dtype and shape (e.g. with .to(dtype) or .reshape(...))")

    def _changed(self, statement: str, where: str) -> StagingError:
        return StagingError(
            statement,
            f"list '{self.name}' is reassigned or changed other than by append / extend "
            f"{where}; a list can only grow under tensor control flow",
            f"Grow '{self.name}' with append or extend, or build a new list after the "
            "statement")


def _number_like(value) -> bool:
    return (isinstance(value, (int, float, torch.SymInt, torch.SymFloat))
            and not isinstance(value, bool)) or augmented.is_stand_in(value)


def _number_kind(a: torch.Tensor, a_number: bool, b: torch.Tensor, b_number: bool):
    """The example item of a list holding items of kinds `a` and `b` (0-d zeros; `*_number`
    where the kind is Python numbers'), or None where no one dtype keeps them: numbers only
    take Python's promotion (`bracket = [0, t]` of an int and a float holds floats, as
    Python's arithmetic of them gives), numbers next to tensors the tensors' dtype where a
    number of that kind leaves it as it is (NOTE [list items at traced positions] in
    runtime/subscripts.py: the same rules for a Python list)."""
    if a.dim() != 0 or b.dim() != 0 or not (a_number or b_number):
        return None
    if a_number and b_number:
        return a.new_zeros((), dtype=promote_types(a.dtype, b.dtype))
    tensor, number = (b, a) if a_number else (a, b)
    return tensor if with_number(tensor.dtype, number.dtype) == tensor.dtype else None


def _per_field_fix(name: str, item: tuple) -> str:
    """The fix for tuples appended to a list grown under tensor control flow: one list per
    field, stacked after the statement (tester t19's DTW backtrace, `path.append((i, j))`)."""
    if name == "<comprehension>":
        # (NOTE [a comprehension over a grown list]: it has no name to grow; break47b s05's
        # message said `<comprehension>_0.append(...)`)
        return ("Write one comprehension per field of the tuple (`firsts = [a for v in vals]`, "
                "`seconds = [b for v in vals]`, each item a tensor or a number) and pair them "
                "after it: `torch.stack([torch.stack(firsts), torch.stack(seconds)], dim=1)` has "
                "the tuples as its rows")
    fields = [f"{name}_{k}" for k in range(len(item))]
    values = "; ".join(f"{f}.append(...)" for f in fields)
    stacks = ", ".join(f"torch.stack({f})" for f in fields)
    return (f"Grow one list per field of the tuple (`{values}`, each item a tensor or a "
            f"number, the lists made before the statement) and pair them after it: "
            f"`torch.stack([{stacks}], dim=1)` has the tuples as its rows")


def _max(a, b):
    a, b = _as_int(a), _as_int(b)
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return torch.sym_max(a, b)


def _as_int(size):
    """`size` as an int where the sizes it is made of cancel (a list whose buffer kept its
    size grew by 0, a static inner loop by a constant)."""
    if isinstance(size, torch.SymInt):
        value = size.node.maybe_as_int()
        return size if value is None else value
    return size


def _same_kind(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.dim() != b.dim():
        return False
    try:
        return all(x == y for x, y in zip(a.shape, b.shape)
                   if isinstance(x, int) and isinstance(y, int))
    except Exception:  # noqa: BLE001 - symbolic sizes: torch checks them itself
        return True


def _describe(t: torch.Tensor) -> str:
    return f"{t.dtype} tensors of shape {tuple(t.shape)}"


def measure(names, slots, state, probes, statement: str, written=()) -> dict:
    """{slot: Growth} for the lists in `slots`, from `probes`: (probe state, its items before the
    body ran, outputs, where) for each probed body. `written`: per probe, the names whose
    items its body's code writes (NOTE [item writes seen in the code])."""
    growth, replaced, in_place, resized = {}, [], [], []
    for slot in slots:
        seen = growth[slot] = Growth(names[slot])
        ways = {}  # how the bodies that changed the list did: in place, or by a new list
        for number, (probe_state, before, outputs, where) in enumerate(probes):
            try:
                seen.see(before[slot] if type(state[slot]) is list else state[slot],
                         probe_state[slot], outputs[slot], statement, where,
                         number < len(written) and names[slot] in written[number])
            except ReplacedList as error:
                ways.setdefault(type(error.args[-1]) is tuple, where)
        if len(ways) == 2:
            name = names[slot]
            raise StagingError(
                statement,
                f"list '{name}' has items written in place {ways[True]} and is replaced by a "
                f"new list {ways[False]}; after the statement the names bound to the old list "
                "would see the new items on one path only",
                f"Write '{name}' the same way on every path: item by item (`{name}[i] = v`), "
                f"or by a new list (`{name} = [...]`)")
        if ways and statement == "if statement" and True not in ways and seen.count == 0:
            lengths = {len(out[slot]) if type(out[slot]) is list else -1
                       for _, _, out, _ in probes}
            if -1 not in lengths and len(lengths) > 1:
                resized.append(names[slot])
                continue
        if ways:
            replaced.append(names[slot])
            if True in ways:
                in_place.append(names[slot])
    if resized:  # staged again with these as StagedLists, then any replaced ones as tuples
        raise BranchLists(*resized)
    if replaced:  # all at once: each retry stages the statement (and those in it) again
        raise ReplacedList(*replaced, tuple(in_place))
    return growth


def trip_bound(trips, statement: str):
    """The most trips a loop makes, as an int or a size: `trips` is an int, a size or a 0-d
    int tensor (whose value becomes an unbacked size)."""
    if not isinstance(trips, torch.Tensor):
        return trips
    bound = trips.reshape(()).item()
    torch._check(bound >= 0)
    return bound


def reserve(value, growth: Growth, extra, like, statement: str) -> StagedList:
    """`value` (a Python list or a StagedList) as a StagedList with `extra` rows free, marked
    reserved for the statement's bodies."""
    name = growth.name
    if isinstance(value, StagedList):
        return value.grown(extra).with_flags(reserved=True)
    # NOTE [a list the function did not make, grown under a tensor condition] in dict_lists.py
    if context.is_caller_owned_list(value) or dict_lists.from_outside(value):
        raise StagingError(
            statement, f"'{name}' is a list the caller passed in, and it grows under a tensor "
            "condition: in the graph the grown list is a new list of data-dependent length, so "
            "the caller's list would never get the items",
            f"Grow a list of your own (`{name} = list({name})` before the {statement}) and "
            "return it; the caller can extend its list with it")
    alias = dict_lists.other_name(value, own=name, own_containers=True)
    if alias is not None:
        # (`keep = vals` before a loop that appends to `vals`: `keep` kept the items it had)
        fix = (f"Read the list through '{name}' after the {statement} (`{alias} = {name}` "
               "after it), not through another name")
        if not alias.isidentifier():  # (a dict's item, an object's field, a tuple's item)
            holder, index = re.fullmatch(r"(.*?)(?:\[(\d+)\])?", alias).groups()
            store = (f"`{alias} = {name}`" if index is None else
                     f"`{alias} = {name}`, or for a tuple `{holder} = (..., {name}, ...)`")
            fix = (f"Grow a list of its own (`{name} = []` before the {statement}, not "
                   f"`{alias}`'s) and store it after the {statement} ({store})")
        raise StagingError(
            statement,
            f"'{name}' is a list that grows under a tensor condition, and '{alias}' names it "
            f"too: the statement makes a new list of '{name}' (its length is only known when "
            f"the graph runs), so '{alias}' would keep the items it had before", fix)
    item = growth.item
    rows = [_as_row(v, item, name, statement) for v in value]
    device = like.device if like is not None else item.device
    buffer = torch.zeros((extra, *item.shape), dtype=item.dtype, device=device)
    if rows:
        buffer = torch.cat([torch.stack(rows).to(device=device, dtype=item.dtype), buffer])
    # torch.full, not torch.tensor: torch 2.13's dynamo gives a wrong .item() of a while_loop
    # output that started as a torch.tensor(...) constant.
    count = torch.full((), len(rows), dtype=torch.int64, device=device)
    return StagedList(buffer, count, True, name, growth.numbers)


def _as_row(value, item: torch.Tensor, name: str, statement: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and item.dim() == 0:
            return torch.tensor(value, dtype=item.dtype)
        if isinstance(value, (torch.SymInt, torch.SymFloat)) and item.dim() == 0:
            return torch.full((), value, dtype=item.dtype)
    elif augmented.is_stand_in(value) and value.dim() == 0 and item.dim() == 0:
        return value.to(item.dtype)  # (the probes chose the dtype that keeps it: _number_kind)
    elif _same_kind(value, item):
        return value
    shown = (_describe(value) if isinstance(value, torch.Tensor)
             else f"a Python {type(value).__name__}")
    raise StagingError(
        statement,
        f"'{name}' already holds {shown} and grows with {_describe(item)}; a list grown under "
        "tensor control flow is stored as one tensor",
        "Give every item of the list one dtype and shape")


def check_loop_growth(growth: Growth, statement: str) -> None:
    """Refuse a loop whose body grows a list by a data-dependent number of items: the buffer
    must be sized before the loop, from one bound per iteration."""
    count = growth.count
    if not isinstance(count, int) and has_free_unbacked_symbols(count):
        raise StagingError(
            statement,
            f"'{growth.name}' grows by a number of items that depends on tensor values in each "
            "iteration (an inner loop appends to it), so the list cannot be sized before the "
            "loop",
            f"Make the inner loop's length fixed (a for over a tensor or a Python range), or "
            f"stack the inner loop's items into one tensor and append that to '{growth.name}'")


def release(value):
    """A StagedList after the statement that reserved its room: later appends add rows."""
    return value.with_flags(reserved=False) if isinstance(value, StagedList) else value


def uncounted(state, slots, names) -> tuple:
    """`state` with each list in `slots` replaced by an UncountedList (appends dropped)."""
    return tuple(UncountedList(names[i]) if i in slots else v for i, v in enumerate(state))
