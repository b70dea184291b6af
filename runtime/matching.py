"""The tests and items of `match` patterns that bind names, as Python's `match` takes them.

NOTE [patterns that bind names]
A pattern that binds names (`case [a, b]:`, `case {"k": v}:`, `case Point(x=0, y=yy):`,
`case x:`, `... as n`) is lowered to a test of the subject's structure, then the bindings
(autoconv/converters/matches.py: NOTE [match statements as if chains]). Python binds a
pattern's names only where the whole pattern matched, and before its guard runs (so a failed
guard leaves them bound). Which names are bound, and which items and attributes the case then
reads, is decided by Python, so the pattern's test must be a Python bool: a subject that is a
list, tuple, dict or object whose structure is Python's, also where its items are tensors.
Where a test depends on a traced tensor (`case [0, b]:` of a list of tensors, `case {"k": 1}`
of a tensor value) the names a graph would bind differ by path: `matched` refuses it at the
case's line. A concrete eager tensor is tested as Python does. The structure tests are
PEP 634's: a sequence pattern matches a `collections.abc.Sequence` other than str, bytes and
bytearray (never a tensor, which is no Sequence), a mapping pattern a `Mapping` holding each
key, a class pattern an instance whose attributes exist, its positional sub-patterns named by
`__match_args__` (the subject itself for one sub-pattern of bool, int, str, tuple ...).
"""

from __future__ import annotations

import collections.abc

from .errors import StagingError
from .values import is_staged

__all__ = ["matched", "match_sequence", "match_mapping", "match_class", "match_positional",
           "match_rest", "match_mapping_rest"]

# The classes whose one positional sub-pattern matches the subject itself (PEP 634).
_SELF_MATCHING = (bool, bytearray, bytes, dict, float, frozenset, int, list, set, str, tuple)
_NOT_SEQUENCES = (str, bytes, bytearray)


def matched(test, pattern: str) -> bool:
    """`bool(test)` for the test of a pattern that binds names (NOTE [patterns that bind
    names]); `pattern` is the pattern's source, for the message.

    Raises:
        StagingError: where the test is a traced value, at the case's line.
    """
    if test is True or test is False:
        return test
    if is_staged(test):
        raise StagingError(
            "match", f"the pattern `case {pattern}:` binds names and whether it matches "
            "depends on a traced tensor, so which names the case binds would be known only "
            "when the graph runs",
            "Test the tensor in an `if` (or a guard `case [a, b] if a.sum() > 0:` whose "
            "pattern only takes the subject apart), then take the values out in the branch")
    return bool(test)


def match_sequence(subject, length: int, starred: bool) -> bool:
    """Whether a sequence pattern of `length` items (besides a `*rest`, where `starred`)
    matches `subject`: `[a, b]` of `(1, 2)`, never of a str or a tensor."""
    if not isinstance(subject, collections.abc.Sequence) or isinstance(subject, _NOT_SEQUENCES):
        return False
    return len(subject) >= length if starred else len(subject) == length


def match_mapping(subject, keys: tuple) -> bool:
    """Whether a mapping pattern with `keys` matches `subject`: a Mapping holding each."""
    if not isinstance(subject, collections.abc.Mapping):
        return False
    return all(key in subject for key in keys)


def match_class(subject, klass, positional: int, names: tuple) -> bool:
    """Whether `klass(<positional sub-patterns>, name=...)` matches `subject` as far as its
    structure goes: an instance with each attribute the sub-patterns read.

    Raises:
        TypeError: as Python's, for a `klass` that is no class, or more positional
            sub-patterns than its `__match_args__` names.
    """
    if not isinstance(klass, type):
        raise TypeError("called match pattern must be a class")
    if not isinstance(subject, klass):
        return False
    names = (*_positional_names(klass, positional), *names)
    return all(name is None or hasattr(subject, name) for name in names)


def match_positional(subject, klass, index: int):
    """The value the positional sub-pattern `index` of `klass(...)` takes from `subject`."""
    name = _positional_names(klass, index + 1)[index]
    return subject if name is None else getattr(subject, name)


def match_rest(subject, start: int, after: int) -> list:
    """The list a `*rest` binds: the items of `subject` from `start` but the last `after`."""
    return list(subject[start:len(subject) - after])


def match_mapping_rest(subject, keys: tuple) -> dict:
    """The dict a `**rest` binds: the items of `subject` whose key is none of `keys`."""
    return {key: value for key, value in subject.items() if key not in keys}


def _positional_names(klass, count: int) -> tuple:
    """The attributes `count` positional sub-patterns of `klass` read (None: the subject)."""
    if count == 0:
        return ()
    names = getattr(klass, "__match_args__", None)
    if names is None:
        if count == 1 and issubclass(klass, _SELF_MATCHING):
            return (None,)
        names = ()
    if not isinstance(names, tuple):
        raise TypeError(f"{klass.__name__}.__match_args__ must be a tuple (got "
                        f"{type(names).__name__})")
    if count > len(names):
        raise TypeError(f"{klass.__name__}() accepts {len(names)} positional sub-pattern"
                        f"{'' if len(names) == 1 else 's'} ({count} given)")
    return names[:count]
