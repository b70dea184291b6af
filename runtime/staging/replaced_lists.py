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


def replaced_slots(error: StagingError, state, names) -> list[int]:
    """The slot of the list `error` refuses for being replaced by a new list, or []."""
    name = getattr(error, "replaced_list", None)
    if name is None:
        return []
    return [i for i, (v, n) in enumerate(zip(state, names)) if n == name and type(v) is list]


def stage_replacing(stage, bodies, state, names, slots, error):
    """`stage(bodies, state)` (`bodies`: (function, whether it returns the state) pairs) with the lists in `slots` as tuples; more such lists the staging
    then refuses are added. Returns the new state, the lists as new lists. Raises `error` (or
    the retry's StagingError) where a body changes such a list in place."""
    while True:
        try:
            out = stage([_with_tuples(body, returns, slots, error) for body, returns in bodies],
                        tuple(tuple(v) if i in slots else v for i, v in enumerate(state)))
        except StagingError as again:
            more = replaced_slots(again, state, names)
            if not more or set(more) <= set(slots):
                raise
            slots = sorted(set(slots) | set(more))
            error = again
            continue
        return tuple(list(v) if i in slots else v for i, v in enumerate(out))


def _with_tuples(body, returns_state, slots, error):
    def run(*args):
        args = list(args)
        given = {slot: list(args[slot]) for slot in slots}
        for slot in slots:
            args[slot] = given[slot]
        if not returns_state:  # a loop's test
            return body(*args)
        out = list(body(*args))
        for slot in slots:
            value = out[slot]
            if type(value) is not list:
                raise error
            if value is given[slot] and (len(value) != len(args[slot]) or any(
                    a is not b for a, b in zip(value, args[slot]))):
                raise error  # changed in place (appended to: a growing list, not replaced)
            out[slot] = tuple(value)
        return tuple(out)
    return run
