"""A staged `while` whose first trip sets the structure it carries, staged with that trip
peeled off as an `if` (NOTE [a loop's first trip peeled]; docs/loop-peeling.md).

Low in the engine: `while_stmt` (runtime/operators.py) runs its staging through `attempt`
and, where that ends in `StructureChanged`, stages the first trip with `if_stmt` and the
rest as the loop again.
"""

from __future__ import annotations

import ast
import contextlib
import re

import torch

from ..errors import StagingError, leave_refusing_instead, refuse_instead_under_dynamo
from . import context, dict_lists, restaging, specialize

__all__ = ["StructureChanged", "attempt", "entered", "first_trip", "left"]

# NOTE [a loop's first trip peeled]
# k-diffusion's PID step-size controller starts with `self.errs = []` and fills it on the
# first proposal (`if not self.errs: self.errs = [inv, inv, inv]`), which `dpm_solver_adaptive`
# makes from `while s < t_end - 1e-5:`. A torch.while_loop carries one structure, the state's
# before the loop, and the body's output is a list of three: refused ("changes its length").
# Yet `while t(s): s = b(s)` is Python's `if t(s): s = b(s)` followed by the same `while`: the
# first trip's structure change is between two branches of an `if`, which the engine carries
# (a list of two lengths is a StagedList of a count below its capacity, NOTE [lists bound in
# branches]; a variable None on one path a StagedOptional), and the loop after it starts from
# the structure every trip keeps.
#
# So where staging a loop ends in `StructureChanged` (a StagingError: a carried object's field
# or dict changes its length, keys or type between the state before the loop and the body's
# output, or the loop reads a list its trips grow, which the first trip's fill is too), the
# loop is staged again as the `if` of its test over its body and then the loop from the `if`'s
# outputs. Where the test was false at once the `if` kept the state and the loop's test is
# false again (the test is pure: the engine's rule 1), so it runs no trip. The peeled form is
# tried once: where it fails too, the loop's own refusal is raised, as before. The `if` is not
# specialised on the test where it cannot be staged (a dict key of a list the loop grows, which
# no `if` carries): the loop after it would meet the same change on the path the trace
# followed, so an input that ran no trip would be refused where one that ran a trip was not;
# the loop is refused on every input instead. A dict that gains keys of tensors or numbers is
# given them before the `if` (peeled_dicts.py, NOTE [a dict the first trip gives keys] in
# runtime/staged_dicts.py).
#
# The first attempt's failure is a restaging verdict (NOTE [restaging verdicts]): a loop
# nested in a body that an enclosing attempt runs again, entered the same way, goes straight
# to the peel without tracing its body once more (a peeled loop at depth 1, 2 or 3 ran its
# body 6 times in the trace: tests/reference/test_peeled_loops.py). Under dynamo the verdict
# is kept another way: NOTE [a loop's first trip peeled under dynamo].


PEEL = object()  # (`while_stmt`'s mark: the loop is staged again with its first trip peeled)


class StructureChanged(StagingError):
    """A loop's body gave its state another structure than the state had before the loop
    (NOTE [a loop's first trip peeled]): the loop may be staged again with its first trip
    peeled off as an `if`. `field`: the field of the state that changed, (name, path), or
    None (NOTE [a field the first trip sets]). `gained`: ((key, kind), ...) of the keys a dict
    there gains, each of a kind `gained_kinds` gives, or () (NOTE [a dict the first trip gives
    keys] in runtime/staged_dicts.py)."""

    def __init__(self, statement: str, problem: str, fix: str, field=None, gained=()):
        self.field, self.gained = field, gained
        if torch.compiler.is_dynamo_compiling():  # NOTE [a loop's first trip peeled under dynamo]
            _restart_peeled(field, statement, problem, fix, gained)
        super().__init__(statement, problem, fix)


# NOTE [a loop's first trip peeled under dynamo]
# Under dynamo a StagingError is raised for real through dynamo's frames (NOTE [StagingError
# under dynamo]): the loop's try cannot catch it to stage the peel. So each staged loop dynamo
# traces is recorded through functions dynamo calls for real (`entered`, `left`), by its body's
# code, and a StructureChanged raised while it is the innermost records the verdict (the field
# that changed) and restarts dynamo's analysis of the frame (dynamo's own RestartAnalysis, the
# kind that clears its speculation log: the next analysis takes another path at the loop). On
# that analysis `entered` gives the verdict and the loop goes straight to the peel. A second
# StructureChanged of a loop with a verdict (the peeled form meets the change too) is the
# loop's refusal, raised as before; a refusal of the peeled `if` is the loop's first refusal
# too, as in replay (the `if` names a branch the user did not write: `errors.
# refuse_instead_under_dynamo`). The verdicts outlive the compile: a body's code peeled once is
# peeled again at once (the peel is Python's own `if` + `while`, right on every path), carrying
# the verdict's field as a variable only where the state has that field (`_reaches`).
_LOOPS: list = []  # (the body codes of the staged loops dynamo traces, innermost last)
_VERDICTS: dict = {}  # (body code -> (its StructureChanged's `field`, its refusal, `gained`))


def entered(code) -> tuple:
    """(mark for `left`, (whether `code`'s loop is peeled, its field, its first refusal, the
    keys a dict gained)): a staged loop dynamo traces, by its body's code (NOTE [a loop's
    first trip peeled under dynamo])."""
    mark = len(_LOOPS)
    _LOOPS.append(code)
    return mark, (code in _VERDICTS, *_VERDICTS.get(code, (None, None, ())))


entered._dynamo_marked_constant = True  # (dynamo calls it for real)


def left(mark: int) -> int:
    del _LOOPS[mark:]
    return mark


left._dynamo_marked_constant = True


def _restart_peeled(field, statement, problem, fix, gained=()) -> bool:
    """Records the innermost loop's verdict and restarts dynamo's analysis; False where the
    loop has one already (its refusal stands)."""
    if not _LOOPS or _LOOPS[-1] in _VERDICTS:
        return False
    from .. import errors

    _VERDICTS[_LOOPS[-1]] = (field, (statement, problem, fix, errors._dynamo_user_location()),
                             gained)
    del _LOOPS[:]  # (the analysis starts again: what it recorded goes)
    del errors._REFUSALS_INSTEAD[:]
    from torch._dynamo.exc import UnspecializeRestartAnalysis  # (dynamo is running)

    raise UnspecializeRestartAnalysis(restart_reason="autoconv peels a loop's first trip")


_restart_peeled._dynamo_marked_constant = True


class Verdict:
    """A loop's verdict under dynamo, in place of its StructureChanged: `field` as that's,
    `refusal` its (statement, problem, fix, location) (NOTE [a loop's first trip peeled under
    dynamo])."""

    def __init__(self, field, refusal, gained=()):
        self.field, self.refusal, self.gained = field, refusal, gained


def attempt(run):
    """`run()`, the staging of the innermost open loop statement, its StructureChanged kept as
    a restaging verdict (NOTE [a loop's first trip peeled])."""
    if torch.compiler.is_dynamo_compiling():
        return run()
    return restaging.attempt("peel", run, (StructureChanged,))


# NOTE [a field the first trip sets]
# The `if` of a peeled first trip carries a variable bound to lists of two lengths as a
# StagedList (NOTE [lists bound in branches]), but a field of an object, `pid.errs` with `pid`
# an input the body changes through its method, is flattened by `objects.carry`, which
# refuses the same change between the state and a branch's output. So where the loop's refusal
# names a field by attributes and items (`(name, ".errs")`, `("objs", "[0].buf")`, `("state",
# "['hist']")`, a list a dict of the state holds, which the list probe names so: `_steps`),
# the peeled `if` carries that field as a
# variable of its own, after the state, the object holding None there meanwhile (one list
# reached both as the variable and through the object would be refused as shared): the taken
# branch sets the field of its copy to the variable, runs the body, reads the field of the
# object it gives back and sets it to None again; the other branch keeps both. After the `if`
# the field of the object the statement gives back (the user's, updated in place) is set to
# the variable, a StagedList of a traced count, which the loop then carries as the object's
# field (NOTE [a grown list in an object's field] in objects.py), or as a list of a dict of
# its state (runtime/staging/dict_lists.py). A first trip that appends in place (`if not
# state["hist"]: state["hist"].append(e)`) is still refused: the loop after the `if` holds
# the append, under its `if not`, as growth of a list it reads.

# NOTE [a caller's list in a field]
# Where the object is the caller's (`def f(x, pid)`), the field's list is too, and the list
# machinery refuses to grow a caller's list under a tensor condition (NOTE [a list the
# function did not make, grown under a tensor condition] in dict_lists.py): the graph's grown
# list is a new list, which the caller's would never become. A first trip that binds a new
# list to the field (`self.errs = [inv, inv, inv]`, k-diffusion's controller) leaves the
# caller's list as it was in Python too: the `if` carries a copy of it, and the call writes
# the field's list of the count the graph computes back into the caller's object (NOTE [a
# grown list written back] in autoconv/capture.py). A first trip that grows the list in place
# (`pid.errs.append(e)`) would change the caller's list object itself: refused, as before.
# Under torch.compile nothing writes the list back (dynamo would store the graph's StagedList
# in the caller's object): refused, the object left as it was.

_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+|'[^'\\]*'|\"[^\"\\]*\")\]")


def _steps(path: str):
    """[("attr", name) or ("item", key)] of a field's path as errors show it
    (`.state['hist']`, `[0].buf`), or None where it is not made of those steps."""
    steps, at = [], 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            return None
        steps.append(("attr", match.group(1)) if match.group(1)
                     else ("item", ast.literal_eval(match.group(2))))
        at = match.end()
    return tuple(steps)


_steps._dynamo_marked_constant = True  # (dynamo cannot trace `ast.literal_eval`)


def first_trip(stage_if, go, body, state, names, inputs, input_names, changed, finishing,
               **kwargs):
    """The state after `if go: state = body(*state, *inputs)`, staged by `stage_if`
    (`operators.if_stmt`, given `kwargs`); a field `changed` (a StructureChanged) names is
    carried as a variable of its own (NOTE [a field the first trip sets]), a dict that gains
    keys with them (NOTE [a dict the first trip gives keys]: what the loop's state needs after
    the loop is appended to `finishing`, for `finished`). `input_names`: the user's names of
    `inputs`."""
    keyed = peeled_dicts.first_trip(stage_if, go, body, state, names, inputs, input_names,
                                    changed, finishing, kwargs)
    if keyed is not None:
        return keyed
    found = _field(changed, state, names, input_names)
    # (a verdict is kept by the body's code: NOTE [a loop's first trip peeled under dynamo])
    if found is not None and type(changed) is Verdict and not _reaches(found, state, inputs):
        found = None
    if found is None:
        with _unspecialised():
            return _peeled_if(changed, lambda: stage_if(go, body, None, state, names, inputs,
                                                        **kwargs))
    return _field_first_trip(stage_if, go, body, state, names, inputs, found, changed, kwargs)


def _field_first_trip(stage_if, go, body, state, names, inputs, found, changed, kwargs):
    """`first_trip` carrying the field `found` names as a variable of its own (NOTE [a field
    the first trip sets])."""
    (where, index), steps, label = found
    count = len(state)
    last = steps[-1]

    def owner(values, given):
        """The object holding the field: in the state `values`, or the input of `given`."""
        holder = values[index] if where == "state" else given[index]
        for step in steps[:-1]:
            holder = _get(holder, step)
        return holder

    def taken(*args):
        given = args[count + 1:]
        _set(owner(args, given), last, args[count])
        out = body(*args[:count], *given)
        holder = owner(out, given)
        value = _get(holder, last)
        if outside and value is args[count]:  # NOTE [a caller's list in a field]
            raise StagingError(
                "if statement", f"'{label}' is a list the caller passed in, and the loop's "
                "first trip grows it in place", f"Bind a new list to '{label}' instead")
        _set(holder, last, None)
        return (*out, value)

    def kept(*args):
        return args[:count + 1]

    holder = owner(state, inputs)
    held = _get(holder, last)
    outside = type(held) is list and (context.is_caller_owned_list(held)
                                       or dict_lists.from_outside(held))
    if outside and torch.compiler.is_dynamo_compiling():  # NOTE [a caller's list in a field]
        raise StagingError(
            "while loop", f"'{label}' holds a list the caller passed in, which the loop's first "
            "trip replaces with a list of a length only the graph knows: under torch.compile "
            "nothing writes that list back into the caller's object (autoconv's replay, "
            "`autoconv.autoconv(fn)`, and torch.export do)",
            f"Make the object holding '{label}' in the compiled function, or return the list "
            "and store it in the caller's object after the call")
    _set(holder, last, None)
    try:
        with _unspecialised():
            out = _peeled_if(changed, lambda: stage_if(
                go, taken, kept, (*state, list(held) if outside else held), (*names, label),
                inputs, **kwargs))
    except BaseException:
        _set(holder, last, held)
        raise
    _set(owner(out, inputs), last, out[count])
    return tuple(out[:count])


def _peeled_if(changed, run):
    """`run()`, the staging of the peeled `if`; under dynamo its refusals are the loop's first
    one (NOTE [a loop's first trip peeled under dynamo])."""
    if type(changed) is not Verdict:
        return run()
    mark = refuse_instead_under_dynamo(changed.refusal)
    try:
        return run()
    finally:
        leave_refusing_instead(mark)


def _unspecialised():
    """`specialize.unspecialised()`; nothing under dynamo, which never specialises (and would
    guard the compiled code on the flag's thread-local: a recompile on every call)."""
    if torch.compiler.is_dynamo_compiling():
        return contextlib.nullcontext()
    return specialize.unspecialised()


def _reaches(found, state, inputs) -> bool:
    """Whether the field `found` names is there: a verdict under dynamo is kept by the body's
    code, which another call of its function may run on other values."""
    (where, index), steps, _ = found
    holder = state[index] if where == "state" else inputs[index]
    for kind, key in steps:
        if kind == "attr":
            if not hasattr(holder, key):
                return False
        elif not (isinstance(holder, dict) and key in holder
                  or isinstance(holder, list) and not isinstance(key, str)
                  and -len(holder) <= key < len(holder)):
            return False
        holder = _get(holder, (kind, key))
    return True


def _get(holder, step):
    kind, key = step
    return getattr(holder, key) if kind == "attr" else holder[key]


def _set(holder, step, value):
    kind, key = step
    if kind == "attr":
        setattr(holder, key, value)
    else:
        holder[key] = value


def _field(changed, state, names, input_names, whole=False):
    """((where, index), attribute names, label) of the field `changed` names, where it is a
    field by attributes of a name of the state or the inputs (or, `whole`, the name's value
    itself); else None."""
    field = getattr(changed, "field", None)
    if field is None:
        return None
    name, path = field
    steps = _steps(path)
    if steps is None or not (steps or whole):
        return None
    if name in names:
        where = ("state", list(names).index(name))
    elif name in input_names:
        where = ("input", list(input_names).index(name))
    else:
        return None
    return where, steps, f"{name}{path}"


from . import peeled_dicts  # noqa: E402 (it reads this module's helpers when called)
