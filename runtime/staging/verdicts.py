"""What a probe run of a staged statement's bodies learnt, kept for the statement's next
staging in the same torch.compile trace (NOTE [probe verdicts]).

Low in the engine: `torch.py` asks it before each probe it runs under dynamo.
"""

from __future__ import annotations

import collections
import os

import torch
from torch.fx.experimental.symbolic_shapes import has_static_value

from .. import augmented
from ..identity import identical, type_in
from ..iteration import StagedEnumerate, StagedRange, StagedZip
from ..lists import StagedList
from ..values import Undefined
from . import context

__all__ = ["key", "known", "learn", "UNKNOWN", "keyed_by_entry"]

# NOTE [probe verdicts]
# Under dynamo a staged statement runs its bodies once as a probe before torch's operator
# (`_probe_input_changes`: a dict or list a body only reads that it changes through a call;
# `_check_by_probe`: the dtypes a Python number is promoted to; `_probe_lists`: the lists of the
# state a body grows, kept only where none grows, since a count is a value of the graph it was
# traced in), and dynamo then traces the bodies again for the operator. A statement nested in
# those bodies is staged once per run of the enclosing bodies, and probes again each time: with
# both probes, a body at nesting depth d was traced 3^d times (compile time grew exponentially
# with an `if/elif/elif/else` chain). Inside the operator's bodies dynamo refuses writes to the
# engine's flags, so the nested probes cannot be made cheaper there (NOTE [types-only probes] in
# torch.py). Instead each probe's verdict is kept, for the rest of the outermost statement's
# trace, under a key made of the statement's body code and everything of its entry a body can
# branch on: the structure of its state and inputs, the dtype, number of dimensions and device
# of each tensor (and whether it stands for a Python number), a grown list (StagedList) by its
# buffer, count and flags, as the tensors they are, a dict by its items (a defaultdict too, with
# its factory: by identity, each probe's watched copy of one missed, and an `if` nested in
# another that read one ran its bodies 2**d times at depth d; fuzz seed 4201's program 30, an
# if/elif chain over `d = defaultdict(int, ...)`, compiled in 95 s of CPU and 57 s with it
# described), and each other Python value by identity. A
# nested statement staged again from the same entry (the enclosing operator's trace after its
# probe) takes the verdict instead of probing: each statement probes once per distinct entry,
# and a body at depth d is traced O(d) times (not where an `if`'s branches grow a list: the probe
# sizing it hands the nested statements Python lists, torch.cond's run StagedLists, two entries;
# there one run serves the probe of the inputs and the lists', NOTE [one probe run for inputs
# and lists] in torch.py, and a body at depth d is traced 2**d times). A statement where a
# number comes in watches its inputs in its dtypes probe's run (NOTE [one probe run for inputs
# and dtypes] in torch.py): one run less of each body, and of everything nested in it.
# Verdicts are written only
# where dynamo allows it (outside the bodies of a torch operator: every first probe of a nested
# statement runs there, since probes run bodies directly), and forgotten when the outermost
# statement ends.
#
# A converted body's free variables are the runtime module and the user's closure cells, the
# same in every staging of the statement. A wrapper the runtime makes around the user's bodies
# (a conditional expression's, one carrying updated inputs) closes over those bodies, and
# cannot be told apart from another statement's by its code (dynamo does not show a function's
# closure): it is always probed, except the wrappers registered with `keyed_by_entry`, whose
# closure the entry determines, and the wrappers of a statement given `closing_over` (NOTE
# [verdicts of a staged for loop]).
#
# NOTE [verdicts of a staged for loop]
# A staged `for` runs torch.while_loop over an index with a test and a step the runtime makes
# around the user's body (`_stage_for` in runtime/operators.py): closures, so every probe of a
# `for` nested in another statement's bodies ran again in the enclosing operator's trace, and a
# body at nesting depth d of staged `for`s where a number comes in was traced 2**d times
# (`s += k` under three `for ... in range(n)`: the innermost body 8 times). What such a closure
# holds is the user's body and extra test (keyed by their code, as any body) and what the
# statement's entry determines (the numbers of state and input slots, the function that takes an
# item, by identity); where it holds nothing else (no rows written back, no number aliases, no
# inputs updated in place), `_stage_for` gives those as `closing_over` and the step and test are
# keyed by their code and that description. The iterable reaches the loop as an input: a staged
# range, enumerate or zip is described by its kind and parts, as a tuple is.

UNKNOWN = object()
_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # autoconv_runtime's files
_entry_determined = []  # code objects of wrappers whose closure the entry determines


def keyed_by_entry(fn):
    """Registers `fn`'s code (a runtime wrapper whose closure the statement's entry determines,
    such as the false branch of an `if` without `else`) as a body code verdicts may be keyed
    by. Returns `fn`."""
    _entry_determined.append(fn.__code__)
    return fn


def key(tag: str, bodies, values, closing_over=None):
    """A verdict's key for the statement with the body functions `bodies` entered with `values`
    (its state, inputs, ...); None where none can be made (see NOTE [probe verdicts]).

    `closing_over`: None, or what the runtime's wrappers among `bodies` close over beyond what
    `values` determine (functions, described by their code as the bodies are, and other values):
    they are then keyed by their code and that (NOTE [verdicts of a staged for loop])."""
    if not torch.compiler.is_dynamo_compiling() or context._verdicts[0] is None:
        return None
    parts = [tag]
    for fn in bodies:
        code = getattr(fn, "__code__", None)
        if code is None:
            return None
        if (code.co_freevars and code.co_filename.startswith(_RUNTIME) and closing_over is None
                and not _registered(code)):
            return None
        parts.append(code)
    objects = []
    if closing_over is not None and not _describe_closure(closing_over, parts, objects):
        return None
    if not _describe(values, parts, objects):
        return None
    return tuple(parts), tuple(objects)


def _describe_closure(closing_over, parts: list, objects: list) -> bool:
    """Appends the description of what a statement's wrappers close over (NOTE [verdicts of a
    staged for loop]): a function by its code, as a body, where a key may name it so; another
    value as the entry's. False where one cannot be described."""
    for value in closing_over:
        if value is None or isinstance(value, torch.Tensor) or not callable(value):
            if not _describe(value, parts, objects):
                return False
            continue
        code = getattr(value, "__code__", None)
        if code is None or (code.co_freevars and code.co_filename.startswith(_RUNTIME)
                            and not _registered(code)):
            return False
        parts.append(code)
    return True


def _registered(code) -> bool:
    for known_code in _entry_determined:
        if code is known_code:
            return True
    return False


def _describe(value, parts: list, objects: list, depth: int = 0) -> bool:
    """Appends `value`'s description: hashable parts to `parts`, values compared by identity to
    `objects`. False for a value that cannot be described. `depth`: how many plain objects
    hold it (NOTE [objects in verdicts' keys])."""
    if isinstance(value, torch.Tensor):
        parts.append(("tensor", value.dtype, value.dim(), value.device,
                      augmented.is_stand_in(value), augmented.mixed_in(value)))
        return True
    kind = type(value)
    if kind is tuple or kind is list:
        parts.append((kind, len(value)))
        for item in value:
            if not _describe(item, parts, objects, depth):
                return False
        return True
    if kind is dict or kind is collections.defaultdict:
        parts.append((kind, len(value)))
        if kind is collections.defaultdict:  # (NOTE [probe verdicts]: its factory too)
            objects.append(value.default_factory)
        for name, item in value.items():
            if not type_in(name, (str, int, bool)):
                return False
            parts.append(name)
            if not _describe(item, parts, objects, depth):
                return False
        return True
    if kind is Undefined:
        parts.append(("undefined", value.name, value.created))
        return True
    if kind is StagedList:
        # (a list a statement carries: each staging of a nested statement is handed its own,
        # a probe's copy or the operator's, so by identity it never matched; by its buffer's
        # kind, its count and its flags, as a tensor is)
        parts.append(("staged list", value.reserved, value.name, value.numbers))
        return _describe(value.buffer, parts, objects) and _describe(value.count, parts, objects)
    if value is None or kind is str:
        parts.append(value)
        return True
    if kind is StagedRange:  # (a `for`'s iterable: NOTE [verdicts of a staged for loop])
        parts.append(kind)
        return _describe((value.start, value.stop, value.step), parts, objects)
    if kind is StagedEnumerate or kind is StagedZip:
        parts.append(kind)
        if value.python is not None:  # (rows of what the user gave: by identity, as objects)
            objects.append(value)
            return True
        return _describe(value.iterable if kind is StagedEnumerate else value.iterables, parts,
                         objects) and _describe(
            value.start if kind is StagedEnumerate else None, parts, objects)
    if depth < _OBJECT_DEPTH and _plain_object(value):  # NOTE [objects in verdicts' keys]
        fields = value.__dict__
        parts.append(("object", kind, len(fields)))
        for name, item in fields.items():
            parts.append(name)
            if not _describe(item, parts, objects, depth + 1):
                return False
        return True
    # Numbers (symbolic ones too, which hashing would specialise), modules, functions, other
    # objects: by identity. An equal value in another object misses, and is probed again.
    parts.append(kind)
    objects.append(value)
    return True


# NOTE [objects in verdicts' keys]
# A plain object of the state (`s = State(x + 1)`, a record of fields that a staged statement
# carries by its tensors) reaches each staging of a nested statement as a copy rebuilt from its
# leaves (objects.carry): by identity, the probe's copy and the operator's never matched, and
# a body at nesting depth d under `if`s reading `s.v` was traced 2**d times (2, 4, 8), as a
# defaultdict's copies were (fuzz seed 4201's program 30: 57 s of CPU to compile). It is
# described as a dict is: its class and its fields, in order, each described in turn (a field
# holding another plain object too, `_OBJECT_DEPTH` deep, then by identity, which also ends a
# cycle). What a probe learns of its bodies depends on the object only through what they read
# of it: its class's code and its fields.
_OBJECT_DEPTH = 3


def _plain_object(value) -> bool:
    from .objects import is_plain_object  # (objects.py imports the engine: read when asked)

    return is_plain_object(value) and type(getattr(value, "__dict__", None)) is dict


def known(verdict_key):
    """The verdict kept under `verdict_key`, or UNKNOWN."""
    if verdict_key is None:
        return UNKNOWN
    memo = context._verdicts[0]
    if memo is None:
        return UNKNOWN
    for objects, verdict in memo.get(verdict_key[0], ()):
        if _same_objects(objects, verdict_key[1]):
            return verdict
    return UNKNOWN


def _same_objects(a: tuple, b: tuple) -> bool:
    for x, y in zip(a, b):
        if type_in(x, _NUMBERS) and type_in(y, _NUMBERS):
            if not _same_numbers(x, y):
                return False
        elif not identical(x, y):  # (numbers among them: see identical)
            return False
    return True


_NUMBERS = (bool, int, float)


def _same_numbers(x, y) -> bool:
    """Whether two numbers of verdict keys are the same entry: two constants of one type and
    value, or one symbolic number (`t.item()`). Dynamo shows a symbolic number's `id` as a
    value of its own trace, which it refuses to compare with a constant's ("Comparison on
    compile-time-only id or hash value": a statement reading `conv = t.item()` probed after
    one reading a float argument), so the two kinds are told apart first."""
    static = has_static_value(x)
    if static != has_static_value(y):
        return False
    if static:
        return type(x) is type(y) and x == y
    return identical(x, y)


def learn(verdict_key, verdict) -> None:
    """Keeps `verdict` under `verdict_key`, where dynamo allows the write (see NOTE [probe
    verdicts]); nothing elsewhere."""
    memo = context._verdicts[0]
    if verdict_key is None or memo is None or context.in_operator_bodies():
        return
    entries = memo.get(verdict_key[0])
    if entries is None:
        memo[verdict_key[0]] = [(verdict_key[1], verdict)]
    else:
        entries.append((verdict_key[1], verdict))
