"""Python's bools (`bool()` of a traced tensor) across a staged statement's outputs."""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree

from .. import augmented, errors
from ..errors import StagingError

__all__ = ["marks", "learn", "marked", "refusal", "type_test_refusal"]


# NOTE [Python's bools across staged statements]
# `bool(t)` of a traced tensor is a 0-d bool tensor marked as Python's bool (NOTE [bool of a
# traced tensor tested by `is`] in constants.py): `b is True` compares its value. A staged
# statement's outputs are new tensors, without the mark: `if c: b = bool(x.sum() > 2)` /
# `else: b = bool(x.sum() < -2)`, then `if b is True:` was False on every path (x - 1 for
# Python's x + 1, in every mode, silently: break52). So each body's raw output of a bool
# tensor is read for the mark (`learn`; under dynamo the `_Watch` keeps the marks as it
# keeps the path kinds of numbers, NOTE [numbers bound in every branch] in torch.py), a loop's
# value before it counting as the path of no trip, and the output is marked where every
# path gives Python's bool (`marked`). Where only some do (`b = x.sum() > 0` on another path,
# a tensor in Python, never `True`), the output is tagged with the variable and the
# statement: `is True` of it is refused at the user's line (`refusal`), never guessed.


def marks(leaves) -> tuple | None:
    """Per leaf of one variable (`leaves`, of a body's raw output): True where it is Python's
    bool, False where it is another 0-d bool tensor, None for the others; None where no leaf
    is a bool tensor (nothing to learn). Constants, which dynamo can hand on."""
    if not any(_bool_tensor(leaf) for leaf in leaves):
        return None
    return tuple(_mark(leaf) for leaf in leaves)


def _bool_tensor(leaf) -> bool:
    return isinstance(leaf, torch.Tensor) and leaf.dtype == torch.bool and leaf.dim() == 0


def _mark(leaf):
    if not _bool_tensor(leaf):
        return None
    return getattr(leaf, augmented.PYTHON_BOOL, False) is not False


def learn(found: dict, slot: int, per_path) -> None:
    """Add to `found` ((slot, leaf) -> the marks its paths give) the marks of `slot` on each
    path (`per_path`: `marks` of each body's raw output, and a loop's value before it)."""
    for path in per_path:
        for i, mark in enumerate(path or ()):
            if mark is not None:
                found.setdefault((slot, i), set()).add(mark)


def marked(found: dict, values: tuple, kind: str, names) -> tuple:
    """`values`, a statement's full outputs, with each bool tensor that is Python's bool on
    every path marked so, and one that is on some paths only tagged (NOTE [Python's bools
    across staged statements])."""
    if not any(True in paths for paths in found.values()):
        return values
    out = list(values)
    for (slot, i), paths in found.items():
        if True not in paths or slot >= len(out):
            continue
        leaves, spec = pytree.tree_flatten(out[slot])
        if i >= len(leaves) or not _bool_tensor(leaves[i]):
            continue
        if paths == {True}:
            mark = True
        else:
            name = names[slot] if slot < len(names) else None
            what = (f"`{name}`" if isinstance(name, str) and name.isidentifier()
                    else "a value")
            location = (errors.dynamo_user_location() if torch.compiler.is_dynamo_compiling()
                        else errors.user_location())
            mark = (what, kind, location)
        leaf = leaves[i]
        if torch.compiler.is_dynamo_compiling():
            leaf = leaf.view(leaf.shape)  # (dynamo marks a view, not an operator's output)
        setattr(leaf, augmented.PYTHON_BOOL, mark)
        leaves[i] = leaf
        out[slot] = pytree.tree_unflatten(leaves, spec)
    return tuple(out)


def refusal(mark, flag: bool) -> StagingError:
    """The error for `v is flag` of a value tagged by `marked` (Python's bool on some paths of
    a statement, another tensor on others)."""
    what, kind, location = mark
    where = f" at {location[0]}:{location[1]}" if location else ""
    name = what[1:-1] if what.startswith("`") else "v"
    return StagingError(
        "identity test",
        f"`{name} is {flag!r}`: {what} is Python's bool (`bool(...)` of a tensor) on some paths "
        f"of the {kind}{where} and a bool tensor on others, which is never {flag!r}: the "
        "answer is only known when the graph runs",
        f"Compare the value (`{name} == {flag!r}`), or make it `bool(...)` on every path")


def type_test_refusal(mark) -> StagingError:
    """The error for a type test (`isinstance`, `type`, `hasattr`) of a value tagged by
    `marked` (NOTE [type tests of Python's bools] in runtime/builtins.py)."""
    what, kind, location = mark
    where = f" at {location[0]}:{location[1]}" if location else ""
    return StagingError(
        "type test",
        f"{what} is Python's bool (`bool(...)` of a tensor) on some paths of the {kind}{where} "
        "and a bool tensor on others: its type is only known when the graph runs",
        "Make it `bool(...)` on every path, or a tensor on every path")
