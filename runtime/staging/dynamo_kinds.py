"""Bodies whose outputs disagree, under dynamo: the StagingError autoconv's own trace gives.

NOTE [mismatched bodies under dynamo]
Outside dynamo, `_Watch` (torch.py) keeps every body's outputs and compares them once all have
run: a branch that makes `y` an int64 tensor where the other leaves it float32, a loop that
changes a carried value's shape, is a StagingError naming the variable, the two paths and the
fix that fits. Dynamo (torch.compile) traces the bodies itself and refuses a write to the
`_Watch` from inside one (a side effect), so there torch's own error reached the user
("expected same dtype", UncapturedHigherOrderOpError). Here each body's outputs are summed up
as constants (structure, and each tensor's dtype, sizes and device) while dynamo traces it, and
handed to a function dynamo calls for real (`_dynamo_marked_constant`), which keeps the
summaries of the statement's bodies until the last has run and compares them as `_Watch`
does (a loop's: against the values before an iteration). Only the kinds are compared: a value
whose shape depends on tensor values or a constant on one path has no words of its own here.
"""

from __future__ import annotations

import itertools

import torch
from torch.fx.experimental.symbolic_shapes import has_static_value, statically_known_true

from ..errors import _raise_under_dynamo
from ..lists import StagedList
from ..identity import type_in
from ..values import is_undefined

__all__ = ["new_key", "summary", "sizes", "resized", "check", "keep_paths", "kept_paths"]

_KEYS = itertools.count(1)
_SEEN: dict = {}  # key -> {where: summaries}


def new_key() -> int:
    """A key for one staged statement's bodies."""
    return next(_KEYS)


new_key._dynamo_marked_constant = True  # (dynamo calls it for real)


def summary(value):
    """`value` as constants: ("tensor", dtype, sizes, device) for a tensor (a size not known
    while tracing is None), a container's kind and items, ("python", type name) otherwise."""
    if isinstance(value, torch.Tensor):
        # A size dynamo made symbolic (torch.compile's second shape, `dynamic=True`) is no
        # constant: handed on, `check` could not be called for real. Dynamo reports a SymInt's
        # type as int, so it is told apart by `has_static_value`, which dynamo answers itself.
        sizes = tuple(int(s) if has_static_value(s) else None for s in value.shape)
        return ("tensor", str(value.dtype), sizes, str(value.device))
    if is_undefined(value):
        return ("unbound",)
    if isinstance(value, StagedList):
        return ("grown list",)
    if type_in(value, (tuple, list)):
        return (type(value).__name__, tuple(summary(v) for v in value))
    if type(value) is dict:
        return ("dict", tuple((k, summary(v)) for k, v in value.items()))
    return ("python", type(value).__name__)


def sizes(value):
    """`value`'s tensors' sizes (tuples, symbolic sizes included), in its structure."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if type_in(value, (tuple, list)):
        return [sizes(v) for v in value]
    if type(value) is dict:
        return {k: sizes(v) for k, v in value.items()}
    return None


def resized(before, after) -> bool:
    """Whether a tensor in `after` (a loop body's output) has a size known to differ from its
    size in `before` (`sizes` of the value before an iteration), symbolic sizes included (a
    size `s0` made `s0 - 1`), as a constant."""
    if type(before) is tuple and isinstance(after, torch.Tensor):
        return len(before) == after.dim() and any(
            statically_known_true(p != q) or _unknown(p, q) for p, q in zip(before, after.shape))
    if type(before) is list and type_in(after, (tuple, list)) and len(before) == len(after):
        return any(resized(b, a) for b, a in zip(before, after))
    if type(before) is dict and type(after) is dict and list(before) == list(after):
        return any(resized(before[k], after[k]) for k in before)
    return False


def _unknown(before, after) -> bool:
    """Whether a carried size, symbolic on a side, is not known to stay what it was: one the
    body computes from tensor values (`order = order[keep]`, NMS's shrinking index, tester
    2026-12-02) is a new symbol in each iteration, which torch's while_loop refuses ("Expected
    body_fn_output and carried_inputs to have same metadata"), as autoconv's own trace does. A
    size dynamo made symbolic for the input (`s0`) that the body keeps is known equal."""
    return not (has_static_value(before) and has_static_value(after)) \
        and not statically_known_true(before == after)


def check(key: int, where: str, outputs, count: int, names, statement: str, before=None,
          moved=None):
    """Keep `outputs` (summaries, one per name) of the body `where`; once `count` bodies have
    given theirs, raise the StagingError for the names whose kinds differ (a loop: `before`,
    the summaries before an iteration, against the one body's, and `moved`, per name whether
    `resized` found a size changed that the summaries hold as None)."""
    seen = _SEEN.setdefault(key, {})
    seen[where] = outputs
    if len(seen) < count:
        return
    del _SEEN[key]
    wheres = list(seen)
    if before is not None:
        pairs = [(before, "before an iteration", seen[wheres[0]], "after it", True)]
    else:
        pairs = [(seen[wheres[0]], wheres[0], seen[w], w, False) for w in wheres[1:]]
    problems, fixes = [], []
    for first, where_first, second, where_second, sizes in pairs:
        for i, (name, a, b) in enumerate(zip(names, first, second)):
            if _same_kind(a, b, sizes):
                if not (moved and moved[i]):
                    continue
                # (sizes dynamo made symbolic: the summaries hold them as None)
                problems.append(f"'{name}' is {_describe(a)} {where_first} and changes a size "
                                f"in an iteration")
                fixes.append(f"Give '{name}' one shape in every iteration: a staged loop "
                             "carries each value with fixed sizes (for a set that shrinks, as "
                             "NMS's `order = order[keep]`, carry a boolean mask of the full size "
                             "and update it instead)")
                continue
            else:
                problems.append(f"'{name}' is {_describe(a)} {where_first} and {_describe(b)} "
                                f"{where_second}" + _items_differing(a, b, sizes))
            fixes.append(_fix(name, a, b))
    if problems:
        _raise_under_dynamo(statement, "; ".join(problems), ". ".join(fixes))


check._dynamo_marked_constant = True  # (dynamo calls it for real: constants in)


_PATHS: dict = {}  # key -> {(slot, leaf): kinds}


def keep_paths(key: int, where: str, outputs) -> None:
    """Keep what the body `where` bound the variables unbound before the statement to
    (`outputs`: (slot, kinds per leaf) pairs, NOTE [numbers bound in every branch] in
    torch.py), for `kept_paths` once the operator has traced every body."""
    kept = _PATHS.setdefault(key, {})
    for slot, kinds in outputs:
        for i, kind in enumerate(kinds):
            kept.setdefault((slot, i), set()).add(kind)


keep_paths._dynamo_marked_constant = True  # (dynamo calls it for real: constants in)


def kept_paths(key: int) -> tuple:
    """((slot, leaf), kinds) of what `keep_paths` kept for `key`, as constants; forgets them."""
    kept = _PATHS.pop(key, {})
    return tuple((at, tuple(sorted(kinds, key=repr))) for at, kinds in kept.items())


kept_paths._dynamo_marked_constant = True


def _structure(s):
    if s[0] in ("tuple", "list"):
        return (s[0], tuple(_structure(v) for v in s[1]))
    if s[0] == "dict":
        return ("dict", tuple((k, _structure(v)) for k, v in s[1]))
    return "leaf"


def _items_differing(a, b, sizes: bool) -> str:
    """': its item 0 is ... and ...' for the leaves of two containers of one structure that
    differ (a carried object's fields, numbered as carried: the field names are not known
    here; outside dynamo torch.py names them), else ''."""
    if a[0] not in ("tuple", "list", "dict") or _structure(a) != _structure(b):
        return ""
    items = [f"item {i} is {_describe(x)} and {_describe(y)}"
             for i, (x, y) in enumerate(zip(_leaves(a), _leaves(b)))
             if not _same_kind(x, y, sizes)]
    return f" (its {', '.join(items)})" if items else ""


def _leaves(s):
    if s[0] in ("tuple", "list"):
        return [leaf for v in s[1] for leaf in _leaves(v)]
    if s[0] == "dict":
        return [leaf for _, v in s[1] for leaf in _leaves(v)]
    return [s]


def _same_kind(a, b, sizes: bool) -> bool:
    """As `_same_kind` in torch.py, on summaries."""
    if _structure(a) != _structure(b):
        return False
    leaves = list(zip(_leaves(a), _leaves(b)))
    if not all(x[0] == "tensor" and y[0] == "tensor" for x, y in leaves):
        return True  # (numbers and other tracers' values: the structure only)
    for x, y in leaves:
        if x[1] != y[1] or len(x[2]) != len(y[2]) or x[3] != y[3]:
            return False
        if sizes and any(p != q for p, q in zip(x[2], y[2]) if p is not None and q is not None):
            return False
    return True


def _describe(s) -> str:
    if s[0] == "tensor":
        shape = tuple("?" if n is None else n for n in s[2])
        return f"a {s[1]} tensor of shape {shape}".replace("'?'", "?")
    if s[0] == "unbound":
        return "unbound"
    if s[0] == "grown list":
        return "a list grown under tensor control flow"
    return f"a Python {s[1] if s[0] == 'python' else s[0]}"


def _fix(name: str, a, b) -> str:
    """As `_mismatch_fix` in torch.py, on summaries."""
    if _structure(a) != _structure(b):
        return (f"Give '{name}' the same structure on every path: the same containers holding "
                "the same number of tensors")
    if any(x[0] == y[0] == "tensor" and x[1] != y[1] for x, y in zip(_leaves(a), _leaves(b))):
        return (f"Give '{name}' one dtype on every path (e.g. with .to(dtype) or "
                "torch.zeros(..., dtype=...) before the statement)")
    return (f"Give '{name}' one shape on every path (a staged statement cannot change a "
            "tensor's number of dimensions or a fixed size)")
