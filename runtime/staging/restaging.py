"""What a staged statement's failed attempts found, kept for its next staging from the same
entry in the same trace (NOTE [restaging verdicts]).

Low in the engine: the statements (runtime/operators.py) open a frame (`enter`, `leave`); the
places in `torch.py` and `objects.py` that stage a statement again after an attempt run the
attempt through `attempt`.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
import weakref

import torch

from ..identity import type_in
from . import context, optionals, verdicts

__all__ = ["enter", "leave", "attempt", "by_form", "RUN", "counts", "kept_key", "known_kept",
           "keep", "watch", "run_watched", "decided", "Abandoned"]

# NOTE [restaging verdicts]
# Staging a statement may take several attempts: an attempt runs the bodies under torch's
# operator and ends with what it found, then the statement is staged again in another form
# (an input the bodies change carried as state, `objects.ChangedInput`; a list replaced,
# `lists.ReplacedList`; a dtype promoted, `_Promote`; a tensor of an object updated in place on
# one path and replaced on another, given back; ...). A statement nested in the bodies is staged
# once per run of the enclosing bodies, and takes its own failed attempts each time: a failed
# attempt per level doubled the runs per level of nesting (seed 28's program 28 of the fuzzer,
# an `if/elif` chain of eight tests over a carried object, ran its innermost body 2^7 times and
# did not finish in 300 s of CPU).
#
# Each staged statement, outside dynamo, opens a frame keyed by its body code (and closure
# cells) and everything of its entry a body can branch on (`verdicts`' description, with each
# tensor's sizes and plain objects described by their fields: a carried object is rebuilt for
# each run of the enclosing body). The frame numbers the attempts staging the statement makes
# (in a deterministic order: the same entry takes the same attempts), and keeps how each ended:
# with one of the exceptions that make it stage again, with internal values only (indices,
# names, dtypes), or not. When the statement is staged again from an equal entry in the same
# outermost statement's trace (the enclosing body run again by an enclosing attempt), an attempt
# that failed before raises its exception again without running the bodies, and the numbering
# skips what that attempt made (its nested statements' attempts). An attempt that succeeded
# runs as before, checks and all: a kept verdict only ever skips to a form of the statement an
# earlier staging chose, which carries more (an input as state, a tensor given back) and gives
# Python's results as the first form would. Each statement is then staged with failed attempts
# once per distinct entry, and a body at depth d runs O(d) times, not 2^d.
#
# Not under dynamo: its statements keep their own verdicts (NOTE [probe verdicts]), and it
# refuses the bookkeeping inside the bodies it traces. There the callers stage directly, not
# through `attempt` and a lambda: each Python frame is a level of dynamo's own interpreter, and
# the two frames per staged statement took linear_operator's MINRES (tests/real/
# test_tester30.py) past the depth torch.compile can trace (NOTE [nesting under dynamo]).
#
# NOTE [verdicts under export]
# "Under dynamo" is `torch.compiler.is_dynamo_compiling()`, not `is_compiling()`: the latter is
# also true for the whole of a non-strict torch.export, whose trace runs the function, its
# statements and their probes as Python, with no interpreter of dynamo's to keep verdicts of
# its own. Tested with `is_compiling()`, export kept no restaging verdicts, no placeholder
# types and no list growth: each probe of an enclosing statement staged the statements nested
# in it in full, failed attempts and all, and a chain of ifs over a carried object ran its
# innermost body 2, 6, 14, 30 times at depths 1 to 4 (2^(d+1) - 2; fuzz seed 4201's program 140
# did not export in 180 s of CPU, session 45), where the staged trace ran it 2, 4, 6, 8 times.
# Only the bodies torch.cond and torch.while_loop hand to dynamo during an export are dynamo's.
# The same holds where the engine chooses whether to stage through `attempt` (`stage_while`,
# the rounds of an `if` and a loop in torch.py): tested with `is_compiling()` until session 51,
# an export staged a loop that changes an input through a method, nested in probed `if`s, and
# failed again in every probe (its bodies traced 22 times against the trace's 14).

_local = threading.local()

# NOTE [restaging state of an unfinished staging]
# The memo of verdicts belongs to the outermost statement being staged, and lives while it does:
# its frame holds it, and `leave` drops it. A staging can end without `leave`: an exception
# raised between a statement's `enter` and the `try` whose `finally` leaves it (in `enter`
# itself, while it describes the entry; a KeyboardInterrupt; the fuzzer's alarm), or a frame
# left open above the one that leaves. Kept in a module-level memo, as it was, the memo then
# stayed open for good: every later statement of every later trace, in any function, took
# itself for a nested one, and the memo kept each entry's objects (a method's `self`, the
# objects its closure reaches) for the life of the process. After the tests one pytest worker
# had run before it, methods33's five Solvers were never freed (session 50's clean clone of
# 1ec0462; tests/test_restaging_state.py). So the open frames are the ones whose statement is
# still running: each is held weakly here (the operator's local `frame` holds it, and goes
# with that Python frame), with the id of the Python frame that entered it, which must still
# be on the stack (a traceback kept by the user or by pytest keeps a finished Python frame,
# and so its `frame`, alive, but off the stack). The frames that fail either test are closed
# before the stack is read, and the memo with the outermost one: nothing of a staging outlives
# it, and no trace meets another's verdicts.


def _on_stack(frame_id: int, python_frame) -> bool:
    while python_frame is not None:
        if id(python_frame) == frame_id:
            return True
        python_frame = python_frame.f_back
    return False


def _frames() -> list:
    """The frames of the statements being staged now, outermost first (NOTE [restaging state
    of an unfinished staging])."""
    refs = getattr(_local, "frames", None)
    if refs is None:
        refs = _local.frames = []
    if not refs:
        return []
    frames = [ref() for ref in refs]
    here = sys._getframe(1)
    live = len(frames)
    # (the innermost first: the Python frames of the live ones are below each other's)
    while live and (frames[live - 1] is None or not _on_stack(frames[live - 1].caller, here)):
        live -= 1
    if live < len(frames):
        del refs[live:]
        del frames[live:]
        if not frames:
            _watches().clear()  # (watches are opened inside a statement's staging only)
    return frames


def _memo():
    frames = _frames()
    return frames[0].memo if frames else None


class _Frame:
    __slots__ = ("known", "seen", "key", "outermost", "form_known", "form_key", "memo",
                 "caller", "__weakref__")

    def __init__(self, known, key, outermost, form_known=None, form_key=None, memo=None,
                 caller=0):
        self.known = known  # the outcomes of the last staging from this entry, or None
        self.seen = []  # this staging's: (tag, failure or None, end) per attempt
        self.key, self.outermost = key, outermost
        # the outcomes of the last staging of this statement's code from any entry (NOTE
        # [carried forms kept]), or None
        self.form_known, self.form_key = form_known, form_key
        self.memo = memo  # the outermost frame's: the verdicts of its nested statements
        self.caller = caller  # id of the Python frame of the operator that entered it


def _closure_walk(fn, parts, leaf, depth=0) -> bool:
    """Appends to `parts` the code of `fn` and of the functions its cells hold, and gives each
    other cell value and default to `leaf` (False from it: no key); False where `fn` is no
    Python function or nests too deep."""
    code = getattr(fn, "__code__", None)
    if code is None or depth > 16:
        return False
    parts.append(code)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # (an empty cell)
            parts.append("<empty cell>")
            continue
        if isinstance(value, types.FunctionType):
            if not _closure_walk(value, parts, leaf, depth + 1):
                return False
        elif not leaf(value):
            return False
    return all(leaf(default) for default in getattr(fn, "__defaults__", None) or ())


def _closure_parts(fn, parts, objects) -> bool:
    def leaf(value):
        objects.append(value)
        return True

    return _closure_walk(fn, parts, leaf)


def _plain_object(value) -> bool:
    from . import objects as carried_objects

    return carried_objects.is_plain_object(value) and not isinstance(value, type)


def _describe(value, parts, objects, depth=0) -> bool:
    if isinstance(value, torch.Tensor):
        # (its sizes too: outside dynamo a body may branch on a static size)
        parts.append(tuple(s if type(s) is int else None for s in value.shape))
        objects.extend(s for s in value.shape if type(s) is not int)
        return verdicts._describe(value, parts, objects)
    if type_in(value, (tuple, list)) and depth < 8:
        parts.append((type(value), len(value)))
        return all(_describe(v, parts, objects, depth + 1) for v in value)
    elif type(value) is dict and depth < 8:
        parts.append((dict, len(value)))
        for name, item in value.items():
            if not type_in(name, (str, int, bool)):
                return False
            parts.append(name)
            if not _describe(item, parts, objects, depth + 1):
                return False
        return True
    elif depth < 8 and _plain_object(value):
        # (a carried object is rebuilt for each run of an enclosing body: by its fields)
        fields = getattr(value, "__dict__", None)
        if type(fields) is not dict:
            return False
        parts.append(("object", type(value)))
        return _describe(fields, parts, objects, depth + 1)
    elif depth < 4 and _rebuilt_kind(value):  # NOTE [callables of rebuilt objects]
        return _describe_callable(value, parts, objects, depth)
    elif type_in(value, (set, frozenset)) and all(_plain(v) for v in value):
        # (what a runtime wrapper of the bodies notes of their runs, made for each staging:
        # `carry`'s leaves updated and replaced, by its contents, as its other cells are)
        parts.append((type(value), tuple(sorted(value, key=repr))))
        return True
    elif isinstance(value, str) and type(value).__name__ == "CarriedName":
        # (objects.CarriedName: a name with its leaves' paths, by both)
        parts.append(("carried name", str(value), value.leaves))
        return True
    return verdicts._describe(value, parts, objects)


# NOTE [callables of rebuilt objects]
# A statement that carries an object a callable input reaches (`obj_func = sf.dir_evaluate`,
# whose calls count `sf.nfev`: NOTE [objects reached through a callable] in objects.py) gives
# its bodies that callable rebuilt around the body's copy of the object, a new bound method
# (or partial, or closure) for each run of the body. By identity, a statement nested in the
# body, entered with it, never met a known entry: each of its stagings took its failed
# attempts again, and torch's `_strong_wolfe` under torchmin's BFGS ran its innermost bodies
# about 3^d times at depth d (docs/benchmarks.md, session 33). A bound method is described by
# its function and its object (by its fields, as a carried object is), a partial by its
# function and arguments, a closure by its code, globals, defaults and cells: what a call of
# it can do with what it is given.


def _rebuilt_kind(value) -> bool:
    kind = type(value)
    return (kind is types.MethodType or kind is functools.partial
            or (kind is types.FunctionType and value.__closure__ is not None))


def _describe_callable(value, parts, objects, depth) -> bool:
    kind = type(value)
    if kind is types.MethodType:
        parts.append(kind)
        objects.append(value.__func__)
        return _describe(value.__self__, parts, objects, depth + 1)
    if kind is functools.partial:
        parts.append((kind, len(value.args), tuple(value.keywords)))
        return (_describe(value.func, parts, objects, depth + 1)
                and all(_describe(v, parts, objects, depth + 1)
                        for v in (*value.args, *value.keywords.values())))
    parts.append((kind, value.__code__))
    objects.append(value.__globals__)
    if not _describe((value.__defaults__, value.__kwdefaults__), parts, objects, depth + 1):
        return False
    for cell in value.__closure__:
        try:
            contents = cell.cell_contents
        except ValueError:  # (an empty cell)
            parts.append("<empty cell>")
            continue
        if not _describe(contents, parts, objects, depth + 1):
            return False
    return True


def _key_of(parts, bodies, values, body_parts, describe=None):
    """(parts, objects) describing `bodies` (each by `body_parts`) entered with `values` (by
    `describe`, `_describe` by default), after the leading `parts`; None where something
    cannot be described or hashed."""
    objects = []
    try:
        for fn in bodies:
            if fn is None:
                parts.append(None)
            elif not body_parts(fn, parts, objects):
                return None
        if not (describe or _describe)(values, parts, objects):
            return None
        hash(tuple(parts))
    except (TypeError, RecursionError):
        return None
    return tuple(parts), tuple(objects)


# NOTE [carried forms kept]
# The restaging verdicts are kept by entry, and a statement nested in a body whose enclosing
# statement is staged in several forms meets a new entry in each: the objects a callable input
# reaches are the enclosing body's copies, their numbers Python numbers or the tensors a form
# carries them as. torch's `_strong_wolfe` under torchmin's BFGS: each `if` its breaks nest
# found the objective's `sf` changed through `obj_func` (ChangedInput), then its count
# `sf.nfev` replaced (a number carried from then on), in every form of every enclosing level,
# and each failed attempt ran the levels below it again: its innermost bodies ran about 3^d
# times at depth d, and the trace did not end in 15 minutes (docs/benchmarks.md).
#
# Whether a body changes an object it is given, or replaces a number held in one, is a matter
# of its code, not of the tensors or copies it is given. So the attempts of each staging are
# also kept under a key of the statement's form alone: the code of its bodies and of the
# functions their closures hold, its state's names, and the kinds of its state and inputs
# (each value by its type; names and flags by value). A staging whose entry is unknown follows
# the kept sequence of that form while its failed attempts are of the kinds `attempt`'s caller
# accepts for the values at hand (`form`): an input moved into the state (objects.
# ChangedInput: an object or dict, or one a callable reaches, not a list or a tensor, whose
# carrying depends on what was done to it) and a number or named tuple of a carried object
# carried (objects._ReplacedRecord, where the path names one). Each is a form that carries
# more and gives Python's results on an entry whose bodies do not make that change too: a
# carried tensor no body changes is left as it was, and so is a carried number no body binds
# anew (NOTE [numbers no body changes] in objects.py), so aliases keep seeing the same
# objects. A statement then takes its failed attempts once per form, and a body at depth d
# runs O(d) times.


# NOTE [optionals in a form]
# A name bound to None before an enclosing statement and to a tensor in one of its branches
# (`o = None`, then `o = a - 3` under an `elif`) is carried by the enclosing statement's later
# forms as a StagedOptional, and a statement nested in its bodies then met a form of its own
# that no staging had kept: in the enclosing statement's last form it took all its failed
# attempts again (hang55b, fuzz seed 5403's program 26). Whether a body changes an object or
# replaces a number held in one does not hang on which of None or an optional the name holds:
# the optional stands for the None on the paths that do not bind it, and a kept attempt is
# only followed where its caller finds it right for the values at hand (`form`), a form that
# carries more. So an optional is described as the None it stands for.


# NOTE [retabled slots kept]
# A round of a staged statement (`if round`, `loop round` in torch.py) that finds a name None on
# one path and a value on another (`o = None`, then `o = a - 3` under an `elif`) ends with
# `optionals.Optioned`, and the statement is traced again carrying it as an optional. That
# ending was kept as nothing: a later staging from the same entry ran the bodies again to find
# it, and one from another entry of the same form stopped following the kept sequence there,
# taking every later failed attempt again (hang55's chain, fuzz seed 5403's program 26). An
# Optioned is now kept as the other verdicts are, without the statement it names (`unkept`:
# given again as the statement whose round raises it again): from the same entry, the slot and
# its value's shape, dtype and device are this entry's, and it is raised again without running
# the bodies. From another entry of the form the value's shape may be another (a form knows
# kinds, not sizes), so the round runs (`RUN`), finding its own, and the kept sequence is
# followed on only where the round ended as the kept one did, after as many nested attempts.


def _form_parts(value, parts, depth=0) -> None:
    kind = type(value)
    if (kind is tuple or kind is list) and depth < 8:
        parts.append((kind, len(value)))
        for item in value:
            _form_parts(item, parts, depth + 1)
    elif kind is dict and depth < 8:
        parts.append((dict, len(value)))
        for name, item in value.items():
            parts.append(name if type_in(name, (str, int, bool)) else type(name))
            _form_parts(item, parts, depth + 1)
    elif value is None or kind is str or kind is bool:
        parts.append(value)
    elif kind is optionals.StagedOptional:  # NOTE [optionals in a form]
        parts.append(None)
    else:
        parts.append(kind)


def _form_key(bodies, values):
    """The key of the form of a statement with the body functions `bodies` entered with
    `values` (NOTE [carried forms kept]), or None."""
    def body_parts(fn, parts, objects):
        def leaf(value):
            parts.append(value if value is None or type(value) is str else type(value))
            return True
        return _closure_walk(fn, parts, leaf)

    def describe(values, parts, objects):
        _form_parts(values, parts)
        return True

    return _key_of(["form"], bodies, values, body_parts, describe)


def _key(bodies, values):
    # (a probe's run of a statement may stage it otherwise than the operator's: kept apart)
    return _key_of([context.probing(), context.probing_types()], bodies, values,
                   _closure_parts)


def enter(bodies, values):
    """Opens a frame for the staging of one statement with the body functions `bodies` entered
    with `values` (see NOTE [restaging verdicts]), for `leave`; None under dynamo. The
    outermost statement's frame holds the verdicts of all the statements nested in it,
    forgotten when it ends.

    Raises Abandoned, before opening anything, where an enclosing attempt's outcome is already
    decided (NOTE [attempts decided before a nested statement])."""
    if torch.compiler.is_dynamo_compiling():  # NOTE [verdicts under export]
        return None
    _abandon_decided()
    # (the entry is described before anything is opened: NOTE [restaging state of an
    # unfinished staging])
    key = _key(bodies, values)
    form_key = _form_key(bodies, values)
    frames = _frames()
    outermost = not frames
    if outermost:
        _watches().clear()  # (what a staging that ended without closing its watches left)
        # (and the names of the inputs of one interrupted before its `try`: only statements
        # that enter here push them, NOTE [stacks of an unfinished staging] in context.py)
        from . import objects as carried_objects

        carried_objects.unshow_inputs(0)
    memo = {} if outermost else frames[0].memo
    known = None
    if key is not None:
        known = _find(memo, key)
        counts["entries"] += 1
        counts["entries known"] += known is not None
    form_known = None if form_key is None else _find(memo, form_key)
    frame = _Frame(known, key, outermost, form_known, form_key, memo if outermost else None,
                   id(sys._getframe(1)))
    _local.frames.append(weakref.ref(frame))
    return frame


def leave(frame) -> None:
    """Closes `frame` (from `enter`), keeping its attempts' outcomes, and any frame still open
    inside it (one whose staging ended without `leave`)."""
    if frame is None:
        return
    refs = getattr(_local, "frames", None) or []
    at = next((i for i in range(len(refs) - 1, -1, -1) if refs[i]() is frame), None)
    if at is None:  # (closed already, as a stale frame or with an enclosing one)
        return
    del refs[at:]
    if frame.outermost:
        return
    memo = _memo()
    if memo is None:
        return
    if frame.key is not None:
        _keep(memo, frame.key, frame.seen)
    if frame.form_key is not None:
        _keep(memo, frame.form_key, frame.seen)


def _find(memo, key):
    for objects, seen in memo.get(key[0], ()):
        if verdicts._same_objects(objects, key[1]):
            return seen
    return None


def _keep(memo, key, seen) -> None:
    entries = memo.setdefault(key[0], [])
    for i, (objects, _) in enumerate(entries):
        if verdicts._same_objects(objects, key[1]):
            entries[i] = (objects, seen)
            return
    entries.append((key[1], seen))


# NOTE [attempts decided before a nested statement]
# Two of the outcomes that end an attempt are found by a wrapper of the bodies once a body has
# returned, yet decided as soon as the body has made its change: an object the bodies only read
# changed (objects.ChangedInput, `refusing_uncarried_changes`' comparison of what they reach)
# and a number or named tuple of a carried object replaced (objects._ReplacedRecord, `carry`'s
# flattening of the body's copy). What the body runs after that change is thrown away with the
# attempt, and the statements nested there are each staged in full, with their own failed
# attempts. torch's `_strong_wolfe` under torchmin's BFGS: each guard `if` a `break` nests
# calls the objective (`obj_func`, counting `sf.nfev`) first, then stages the next level; its
# first attempt (the objective changed) and its second (`sf.nfev` replaced) each ran all the
# levels below it, whose own first attempts did the same: the innermost bodies ran 6, 14, 27,
# 40 times at depths 1 to 4 in the model (tests/reference/test_restaging.py, `_wolfe_search`),
# and BFGS's trace did not end in 15 minutes (docs/benchmarks.md, sessions 35 to 37).
#
# So each such wrapper opens a watch (`watch`) for its body's run, with a function that tells
# the outcome already decided (or None), and a staged statement entered in the body asks the
# open watches, outermost first (everything an attempt runs is thrown away with it), before it
# opens its frame (`enter`): the first decided ends its attempt there with `Abandoned`, which
# passes through the body and the statements between (an internal exception: never a branch's
# or a loop body's own, and converted `except` handlers let it through) to the wrapper, which
# raises its own exception as it would have at the body's end, with what it finds then (an
# object changed and restored as before). A nested statement whose own check finds an object
# changed at its body's end (the change made after its last nested statement: the bracketing
# loop's body, whose last guard `if` calls the objective) asks the same before undoing it: an
# enclosing attempt the change decides (it reads the same object, or a copy it carries holds
# the number replaced) ends first. An attempt a watch has abandoned never succeeds: where the
# body was kept from ending (a handler the user wrote catching every exception), the wrapper
# still raises what its watch found. That only ever makes the statement carry more (NOTE
# [carried forms kept]). The inputs a body changes after the first are found by the next
# attempts, one each (NOTE [inputs changed together]), each running the body only up to its
# next nested statement.


class Abandoned(Exception):
    """Internal, never reaches the user: ends an attempt whose outcome the watch `args[0]`
    found decided at the entry of a nested statement (NOTE [attempts decided before a nested
    statement])."""

    @property
    def watch(self):
        return self.args[0]


class _Watch:
    __slots__ = ("decided", "found")

    def __init__(self, decided):
        self.decided, self.found = decided, None


def _watches() -> list:
    watches = getattr(_local, "watches", None)
    if watches is None:
        watches = _local.watches = []
    return watches


def watch(decided):
    """Opens a watch over the run of a body that a wrapper is about to make (NOTE [attempts
    decided before a nested statement]): `decided()` gives what decides the attempt's outcome
    already (any value but None), kept in the watch's `found` when a nested statement abandons
    the attempt. Returns the watch, for `run_watched`; None under dynamo and outside a staged
    statement's trace."""
    if torch.compiler.is_dynamo_compiling() or _memo() is None:
        return None
    opened = _Watch(decided)
    _watches().append(opened)
    return opened


def run_watched(opened, body, args):
    """`body(*args)` under the watch `opened` (from `watch`, or None), closed after it; None
    where a nested statement abandoned the attempt for `opened`."""
    try:
        return body(*args)
    except Abandoned as abandoned:
        if opened is None or abandoned.watch is not opened:
            raise
        return None
    finally:
        if opened is not None:
            watches = _watches()
            if watches and watches[-1] is opened:
                watches.pop()
            elif opened in watches:
                watches.remove(opened)


def decided():
    """The outermost open watch whose attempt's outcome is decided now (its `found` set), or
    None (NOTE [attempts decided before a nested statement])."""
    for opened in getattr(_local, "watches", None) or ():
        found = opened.decided()
        if found is not None:
            opened.found = found
            counts["abandoned"] += 1
            return opened
    return None


def _abandon_decided() -> None:
    opened = decided()
    if opened is not None:
        raise Abandoned(opened)


# (how many statement entries were seen, and attempts skipped; how many runs of a statement's
# bodies that learn its placeholders were skipped: for measuring, docs/benchmarks.md)
counts = {"entries": 0, "entries known": 0, "attempts": 0, "skipped": 0,
          "skipped by form": 0, "abandoned": 0,
          "placeholder probes": 0, "placeholder probes skipped": 0,
          "list probes": 0, "list probes skipped": 0}


# NOTE [placeholder types kept]
# A staged `if` that may bind its return value (or a variable read through a bound flag) runs
# its bodies once as a types-only probe to learn the type of the placeholder it carries for it
# (`_fill_return_placeholders` in torch.py). The probe runs the statements nested in the bodies
# too, each by types (NOTE [types-only probes]), so in a chain of nested ifs under early returns
# or breaks (torchmin's BFGS loop body: six levels, bfgs.py:209-264) the probe at each level ran
# the whole chain below it again, and the innermost bodies ran once per enclosing level (39-42
# times in one trace, session 32). Yet the probe of an enclosing statement has already run the
# nested statement's bodies from an entry of the same types, and the nested statement's own
# probe would learn the same placeholders from them: a body's outputs' types are a function of
# its code and of the types (and Python values) of what it is given.
#
# So, outside dynamo and within one outermost statement's trace (as the restaging verdicts),
# the placeholders a statement's bodies give from an entry are kept under a description of that
# entry: the bodies' code and what their closures hold (wrappers of the converted bodies hold
# values made for each staging, described by structure as the state is, not by identity), the
# state's and the inputs' description (tensors by sizes, dtype, device and number marks; plain
# objects by their fields; other objects by identity), the slots' kinds and flags, and which
# slots take a placeholder. Only shapes and dtypes are kept (placeholders are zeros; the
# tensors themselves belong to the graph they were made in), and only where every size is a
# plain int. A later staging of the statement from an equal entry builds its placeholders from
# what was kept and skips the probe: the operator's run of the bodies that follows checks
# everything as before.


def _cells_described(fn, parts, objects) -> bool:
    return _closure_walk(fn, parts, lambda value: _describe(value, parts, objects))


def kept_key(tag: str, bodies, slots, values):
    """The key of what a probe of `bodies` entered with `values` learnt of the slots `slots`
    (`tag`: which probe; NOTE [placeholder types kept]), or None where it cannot be described or
    nothing is kept (under dynamo, outside a staged statement)."""
    if torch.compiler.is_dynamo_compiling() or _memo() is None:
        return None
    return _key_of([("kept", tag), tuple(slots)], bodies, values, _cells_described)


def known_kept(key):
    """What `keep` kept under `key`, or None."""
    memo = _memo()
    if key is None or memo is None:
        return None
    return _find(memo, key)


def keep(key, kept) -> None:
    memo = _memo()
    if key is not None and memo is not None:
        _keep(memo, key, kept)


def _plain(value) -> bool:
    if value is None or type_in(value, (bool, int, str, float)) or isinstance(
            value, (torch.dtype, torch.device)):
        return True
    if type_in(value, (tuple, list, set, frozenset)):
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _failure(error: BaseException):
    """What rebuilds `error` (its type, args and attributes), or None where they are not all
    internal values."""
    attributes = dict(getattr(error, "__dict__", {}))
    # (what names the staging the error was raised in, given again where it is raised again:
    # NOTE [retabled slots kept])
    attributes.update((name, None) for name in getattr(type(error), "unkept", ()))
    if not _plain(error.args) or not _plain(attributes):
        return None
    return type(error), error.args, attributes


def _rebuilt(failure) -> BaseException:
    kind, args, attributes = failure
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(attributes)
    return error


_BY_FORM = "_autoconv_kept_by_form"

# `form`'s answer for an attempt run again whatever another entry's staging found, its kept
# sequence followed on where it ends as that one did (NOTE [retabled slots kept])
RUN = "run"


def by_form(error: BaseException) -> bool:
    """Whether `attempt` raised `error` from a staging of the statement's form from another
    entry (NOTE [carried forms kept]), not from one of this entry's runs."""
    return getattr(error, _BY_FORM, False) is True


def attempt(tag: str, run, restaging: tuple, form=None):
    """`run()`, an attempt at staging the innermost open statement; an exception among
    `restaging` (the ones that make it stage again) is kept, and raised again without running
    when the statement is next staged from the same entry (NOTE [restaging verdicts]). `form`:
    whether such an exception, kept from a staging of the statement's code from another entry,
    only chooses a form that is right for this one too (NOTE [carried forms kept]), or `RUN`:
    the attempt is run, and the kept sequence followed on where it ends alike."""
    if torch.compiler.is_dynamo_compiling():
        return run()
    frames = _frames()
    if not frames:
        return run()
    frame = frames[-1]
    number = len(frame.seen)
    frame.seen.append(None)
    counts["attempts"] += 1
    known = frame.known
    if known is not None:
        before = known[number] if number < len(known) else None
        if before is None or before[0] != tag:
            frame.known = None  # (another sequence of attempts: nothing more is skipped)
        elif before[1] is not None:
            counts["skipped"] += 1
            frame.seen[number] = before
            frame.seen.extend(known[number + 1:before[2]])
            raise _rebuilt(before[1])
    known = frame.form_known
    rerun = None  # (what another entry's attempt ended with, run again here)
    if known is not None and frame.known is None:
        before = known[number] if number < len(known) else None
        if before is None or before[0] != tag:
            frame.form_known = None
        elif before[1] is not None:
            error = _rebuilt(before[1])
            verdict = False if form is None else form(error)
            if verdict == RUN:
                rerun = before
            elif not verdict:
                frame.form_known = None
            else:
                counts["skipped by form"] += 1
                # (kept so: a staging from this entry raises it again as another entry's)
                setattr(error, _BY_FORM, True)
                frame.seen[number] = (tag, _failure(error), before[2])
                frame.seen.extend(known[number + 1:before[2]])
                raise error
    try:
        result = run()
    except restaging as error:
        frame.seen[number] = (tag, _failure(error), len(frame.seen))
        if rerun is not None and (type(error) is not rerun[1][0]
                                  or len(frame.seen) != rerun[2]):
            frame.form_known = None  # (ended otherwise, or its nested attempts were others)
        raise
    except BaseException:
        if rerun is not None:
            frame.form_known = None
        raise
    frame.seen[number] = (tag, None, len(frame.seen))
    if rerun is not None:
        frame.form_known = None  # (it ended otherwise here: the kept sequence is another's)
    return result
