"""Lists a staged statement replaces whole: carried as tuples of tensors.

    if accept:                                    the slot of `coeffs` crosses the torch.cond
        coeffs = fit(y0, y1)    # a new list  ->  as a tuple of tensors (the bodies see lists),
                                                  and comes out as a new list

A list a body grows (append / extend) is a StagedList instead (see lists.py); one a body
replaces with another list of as many tensors of the same kinds is a value like a tuple. As for
objects a body rebuilds (objects.py), the result is a new list and the list from before the
statement stays as it was.

A body that writes items of the list it was given, keeping its length (`bracket[high_pos] =
t`, `acc[0] = acc[0] + x`), changes that list in place: it is carried as a tuple the same way,
and after the statement its items are written back into the list object itself, so every name
for it sees them, as in Python. The list is the function's own (a caller's list cannot be
written by a graph's run: refused), and no path may replace it by a new list while another
writes it in place (which object holds the new items would depend on the path: refused). A
body that shortens the list, or grows it and writes its items, is refused (the StagingError of
lists.py).
"""

from __future__ import annotations

from ..errors import StagingError
from . import context

__all__ = ["replaced_slots", "in_place_slots", "stage_replacing"]


def replaced_slots(replaced, state, names) -> list[int]:
    """The slots of the lists `replaced` (a lists.ReplacedList) names, or []."""
    return [i for i, (v, n) in enumerate(zip(state, names))
            if n in replaced.args and type(v) is list]


def in_place_slots(replaced, state, names) -> list[int]:
    """The slots of the lists whose items `replaced` (a lists.ReplacedList) says a body
    wrote in place."""
    written = replaced.args[-1] if replaced.args and type(replaced.args[-1]) is tuple else ()
    return [i for i, (v, n) in enumerate(zip(state, names)) if n in written and type(v) is list]


def stage_replacing(stage, bodies, state, names, slots, statement, in_place=()):
    """`stage(bodies, state)` with the lists in `slots` as tuples. `bodies` are (function,
    whether it returns the state, where) triples. Another list the staging then finds replaced
    is handled by `stage` itself (the same retry, one level in). Returns the new state, the
    lists as new lists.

    Raises StagingError where a body changes such a list's length in place, and where a list
    the caller passed in is written in place.
    """
    for slot in in_place:
        if context.is_caller_owned_list(state[slot]):
            raise StagingError(
                statement,
                f"'{names[slot]}' is a list the caller passed in, and its items are written "
                "under a tensor condition: the graph's run cannot write the caller's list",
                f"Write a list of your own (`{names[slot]} = list({names[slot]})` before the "
                "statement) and return it")
    out = list(stage([_with_tuples(body, returns, where, slots, names, statement, in_place)
                      for body, returns, where in bodies],
                     tuple(tuple(v) if i in slots else v for i, v in enumerate(state))))
    for slot in slots:
        if slot in in_place:
            state[slot][:] = out[slot]  # the same list object, as Python's in-place writes
            out[slot] = state[slot]
        else:
            out[slot] = list(out[slot])
    return tuple(out)


def _with_tuples(body, returns_state, where, slots, names, statement, in_place):
    def run(*args):
        args = list(args)
        items = {slot: tuple(args[slot]) for slot in slots}
        given = {slot: list(args[slot]) for slot in slots}
        for slot in slots:
            args[slot] = given[slot]
        if not returns_state:  # a loop's test
            return body(*args)
        out = list(body(*args))
        for slot in slots:
            value = out[slot]
            changed = value is given[slot] and (len(value) != len(items[slot]) or any(
                a is not b for a, b in zip(value, items[slot])))
            if type(value) is not list or (changed and (
                    slot not in in_place or len(value) != len(items[slot]))):
                what = ("has items written in place and changes its length" if slot in
                        in_place else "is replaced by a new list on one path and changed in "
                        "place" if type(value) is list else "is replaced by a new list on one "
                        f"path and made a Python {type(value).__name__}")
                raise StagingError(
                    statement,
                    f"list '{names[slot]}' {what} {where}; a list a staged statement replaces "
                    "or writes is carried as a tuple of tensors of a fixed length",
                    "Build a new list on every path (`x = [...]`), or change it after the "
                    "statement")
            out[slot] = tuple(value)
        return tuple(out)
    return run
