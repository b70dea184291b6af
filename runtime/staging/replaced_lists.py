"""Lists a staged statement replaces whole: carried as tuples of tensors.

    if accept:                                    the slot of `coeffs` crosses the torch.cond
        coeffs = fit(y0, y1)    # a new list  ->  as a tuple of tensors (the bodies see lists),
                                                  and comes out as a new list

A list a body grows (append / extend) is a StagedList instead (see lists.py); one a body
replaces with another list of as many tensors of the same kinds is a value like a tuple. As for
objects a body rebuilds (objects.py), the result is a new list and the list from before the
statement stays as it was. A body that changes the list it was given in another way than by
growing it is refused (the StagingError of lists.py).
"""

from __future__ import annotations

from ..errors import StagingError

__all__ = ["replaced_slots", "stage_replacing"]


def replaced_slots(replaced, state, names) -> list[int]:
    """The slots of the list `replaced` (a lists.ReplacedList) names, or []."""
    name = replaced.args[0] if replaced.args else None
    return [i for i, (v, n) in enumerate(zip(state, names)) if n == name and type(v) is list]


def stage_replacing(stage, bodies, state, names, slots, statement):
    """`stage(bodies, state)` with the lists in `slots` as tuples. `bodies` are (function,
    whether it returns the state, where) triples. Another list the staging then finds replaced
    is handled by `stage` itself (the same retry, one level in). Returns the new state, the
    lists as new lists.

    Raises StagingError where a body changes such a list in place.
    """
    out = stage([_with_tuples(body, returns, where, slots, names, statement)
                 for body, returns, where in bodies],
                tuple(tuple(v) if i in slots else v for i, v in enumerate(state)))
    return tuple(list(v) if i in slots else v for i, v in enumerate(out))


def _with_tuples(body, returns_state, where, slots, names, statement):
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
            if value is given[slot] and (len(value) != len(items[slot]) or any(
                    a is not b for a, b in zip(value, items[slot]))) or type(value) is not list:
                what = ("changed in place" if type(value) is list
                        else f"made a Python {type(value).__name__}")
                raise StagingError(
                    statement,
                    f"list '{names[slot]}' is replaced by a new list on one path and "
                    f"{what} {where}; a list a staged statement replaces is carried as a "
                    "tuple of tensors",
                    "Build a new list on every path (`x = [...]`), or change it after the "
                    "statement")
            out[slot] = tuple(value)
        return tuple(out)
    return run
