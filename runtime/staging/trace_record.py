"""What autoconv's own trace (and export) staged: the fake modes it ran under and the staged
statements it traced, so that the check at its end can name the statement a leaked value of
the trace came from (NOTE [no value of a trace escapes] in autoconv/trace_leaks.py).

Open only while `autoconv.capture` traces or exports (`recording`); elsewhere (torch.compile,
another tracer running converted code, eager runs) each hook is one attribute read.
"""

from __future__ import annotations

import contextlib
import threading

from torch.utils import _pytree as pytree

from ..errors import user_location

__all__ = ["Record", "recording", "note_fake_mode", "statement_traced"]


class Record:
    """The trace's fake modes (`modes`, by id) and its staged statements: `last`, the
    (statement, (file, line)) traced last, and `produced`, {id(value): (statement, (file,
    line))} for each value a statement gave as its result (`held` keeps them alive, so that no
    other object takes their ids while the record is open)."""

    def __init__(self):
        self.modes: dict = {}
        self.last = None
        self.produced: dict = {}
        self.held: list = []

    def statement_of(self, value):
        """(statement, (file, line)) of the statement whose result `value` is, else None."""
        return self.produced.get(id(value))


_open = threading.local()


@contextlib.contextmanager
def recording():
    """A new Record, kept while the block runs (an outer one is set aside meanwhile)."""
    outer = getattr(_open, "record", None)
    record = _open.record = Record()
    try:
        yield record
    finally:
        _open.record = outer


def note_fake_mode() -> None:
    """Record the fake mode the running trace computes under (the first time it is met)."""
    record = getattr(_open, "record", None)
    if record is None:
        return
    from torch._guards import detect_fake_mode

    mode = detect_fake_mode()
    if mode is not None:
        record.modes.setdefault(id(mode), mode)


def statement_traced(statement: str, result) -> None:
    """Record that `statement` was staged and gave `result` (its new state), with the user's
    line that runs it."""
    record = getattr(_open, "record", None)
    if record is None:
        return
    entry = (statement, user_location())
    record.last = entry
    leaves = pytree.tree_leaves(result)
    record.held.append(leaves)
    for leaf in leaves:
        record.produced[id(leaf)] = entry
