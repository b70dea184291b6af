"""What an abandoned staging attempt wrote into Python state, put back before the next one.

NOTE [what an abandoned attempt wrote]
A staged statement is often staged more than once: an attempt ends with an exception that says
how to stage it again (`objects.carry`'s `_GiveBack` and `_ReplacedRecord`), and the first
attempt's operator is dead code. But an attempt runs Python too, and a statement staged inside
it (the statement itself, staged again carrying an object a body changed:
`objects.with_input_as_state`) writes what it carried back into the Python containers it was
given when it ends: the fields of an object, a dict's items, the list a bound method counts in
(`meter.tick` doing `self.state[0] += 2`, the list moved into the loop's state). Those writes
stayed: the next attempt started from the count the abandoned one had made, and counted again.
A `for` over a Python range, staged from the trip where its `return` flag became a tensor, with
`if tick(-s.v) >= 2:` in its body gave 10 for Python's 6 after three trips (fuzz seed 4601,
program 15), silently, in replay and torch.export. So the dicts, lists and
plain objects' fields that the statement's state and inputs reach (and those a callable among
them reaches, `objects.reached_objects`) are read before such an attempt and, when it ends in an
exception that stages the statement again, put back as they were: every attempt starts from the
state Python gave the statement. (A tensor written back in place is not put back: the attempts
update it as one trace, and only the last one's graph reads it.)
"""

from __future__ import annotations

import contextlib

import torch

from ..identity import type_in
from . import objects

__all__ = ["undone_on"]


@contextlib.contextmanager
def undone_on(*errors, values):
    """Within it, a staging attempt; where it raises one of `errors`, each container `values`
    reach is put back as it was before (NOTE [what an abandoned attempt wrote])."""
    if torch.compiler.is_dynamo_compiling():
        # (dynamo would trace the copies and the puts back too; its runs of program 15 and of
        # tests/reference/test_callee_side_effects.py's loops staged twice were right without)
        yield
        return
    saved = _contents(values)
    try:
        yield
    except errors:
        for container, old in saved:
            _put_back(container, old)
        raise


def _contents(values) -> list:
    """(container, a copy of its contents) for each list, dict and plain object's field table
    that `values` reach, or the objects a callable among them reaches."""
    found, seen = [], set()
    for value in values:
        _gather(value, found, seen)
        for reached in objects.reached_objects(value):
            _gather(reached, found, seen)
    return found


def _gather(value, found: list, seen: set) -> None:
    if id(value) in seen:
        return
    if objects.is_plain_object(value):
        seen.add(id(value))
        table = vars(value)
        found.append((table, dict(table)))
        for v in list(table.values()):
            _gather(v, found, seen)
    elif objects.is_carried_mapping(value):
        seen.add(id(value))
        found.append((value, dict(value)))
        for v in list(value.values()):
            _gather(v, found, seen)
    elif type_in(value, (list, objects.HeldList)):
        seen.add(id(value))
        found.append((value, list(value)))
        for v in list(value):
            _gather(v, found, seen)
    elif isinstance(value, tuple) and (type(value) is tuple or hasattr(type(value), "_fields")):
        for v in value:
            _gather(v, found, seen)


def _put_back(container, old) -> None:
    if isinstance(container, list):
        if len(container) != len(old) or any(a is not b for a, b in zip(container, old)):
            container[:] = old
    elif len(container) != len(old) or any(k not in old or container[k] is not old[k]
                                           for k in container):
        container.clear()
        container.update(old)
