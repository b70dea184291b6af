"""The numbers of a carried object that no body of a staged statement binds anew, under dynamo.

NOTE [numbers no body binds anew under dynamo]
After a staged statement, a carried object's number that every body gave back as the very
value it was given (`cfg["off"]`, only read beside `if ...: cfg["big"] = cfg["big"] + 1`) is
left as the object held it: Python never assigned it, so the caller's dict keeps its float
0.25, not the 0-d float64 tensor the operator carried it as (tester34b s02). Outside dynamo
each body's run notes the numbers it binds anew (`renumbered`, NOTE [numbers no body changes]
in objects.py); under dynamo the bodies are traced by the torch operator, which refuses a
body's write to an object made outside it, so nothing was noted and every number came back as
the operator's tensor. Whether a body gave a value back is known while dynamo traces it (`is`
of two values is decided by the tracer, no graph op): each body hands the leaf numbers of
those it gave back, as constants, to `note`, a function dynamo calls for real (as
dynamo_kinds.py's), and the statement asks `kept` after staging. A number is kept where every
body run noted it; a statement whose bodies noted nothing (none traced) keeps none, as before.

Numbers only (and numbers' stand-ins, which a body rebinds, never updates in place): a tensor
every body gives back as itself may have been updated in place (`d["v"].add_(x)`), and dynamo
shows no version counter to tell; outside an enclosing operator's body it is written back with
`copy_` (which keeps an untouched one's value), so that every reference to it sees the update,
as the probe's run has it (NOTE [dynamo and tensors of objects] in objects.py); a tensor that
requires grad, or one inside an enclosing operator's body, is replaced, as before.
"""

from __future__ import annotations

import itertools

__all__ = ["new_key", "note", "kept"]

_KEYS = itertools.count(1)
_SEEN: dict = {}  # key -> {slot: leaf numbers kept by every body run noted so far}


def new_key() -> int:
    """A key for one staged statement's carried objects."""
    return next(_KEYS)


new_key._dynamo_marked_constant = True  # (dynamo calls it for real)


def note(key: int, slot: int, numbers: tuple) -> int:
    """One body run gave back the leaves `numbers` of the state's slot `slot` unchanged."""
    slots = _SEEN.setdefault(key, {})
    slots[slot] = slots[slot] & frozenset(numbers) if slot in slots else frozenset(numbers)
    return 0


note._dynamo_marked_constant = True


def kept(key: int, slot: int) -> tuple:
    """The leaf numbers of `slot` that every body run noted kept (sorted), () if none ran."""
    return tuple(sorted(_SEEN.get(key, {}).get(slot, ())))


kept._dynamo_marked_constant = True


def forget(key: int) -> int:
    _SEEN.pop(key, None)
    return 0


forget._dynamo_marked_constant = True
