"""What autoconv's own trace (and export) staged: the fake modes it ran under and the staged
statements it traced, so that the check at its end can name the statement a leaked value of
the trace came from (NOTE [no value of a trace escapes] in autoconv/trace_leaks.py).

Open only while `autoconv.capture` traces or exports (`recording`); elsewhere (torch.compile,
another tracer running converted code, eager runs) each hook is one attribute read.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import torch
from torch.utils import _pytree as pytree

from ..errors import user_location

__all__ = ["Record", "recording", "note_fake_mode", "statement_traced"]


class Record:
    """The trace's fake modes (`modes`, by id) and its staged statements: `last`, the
    (statement, (file, line)) traced last, and `produced`, {id(value): (statement, (file,
    line), a weak reference to the value)} for each tensor a statement gave as its result.
    (Weak: a strong one kept tensors alive that the runtime's own checks of aliasing expect
    to die with the trace's names.)"""

    def __init__(self):
        self.modes: dict = {}
        self.last = None
        self.produced: dict = {}

    def statement_of(self, value):
        """(statement, (file, line)) of the statement whose result `value` is, else None."""
        found = self.produced.get(id(value))
        return found[:2] if found is not None and found[2]() is value else None


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
    for leaf in pytree.tree_leaves(result):
        if isinstance(leaf, torch.Tensor):
            record.produced[id(leaf)] = (*entry, weakref.ref(leaf))
