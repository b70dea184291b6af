"""Reference tests: Python side effects of callees reached through any callable form.

A staged `while` (or `if`) calls a callable that changes Python-valued state it holds: a
scipy-style counter `objective = functools.partial(f, s, calls)` with `calls = [0]` and `f`
doing `calls[0] += 1` (tester34b s01). The state is reached through the callable, not through
a name the body reads: a partial's arguments and keywords, a closure's cells, a default
argument, a callable object's attributes, a bound method of another object, a lambda, a
helper behind a `functools.wraps` decorator, a callable held in a list, a dict or an
object's field, a callable object holding a partial, a partial of a partial. Each change must come out as plain Python's (carried by the statement, written
back after it) or be refused with a StagingError; never the trace's count replayed.

The matrix: callable form x kind of change (an int in a list, a dict's counter, an object's
number attribute, an append of a Python value) x statement (a `while` with `if ...: break`, an
`if`), against plain Python in autoconv's replay (traced once, replayed on inputs taking other
paths), a saved and loaded torch.export program, and torch.compile(fullgraph=True).
"""

import functools
import io
import re
import types

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_result

T = torch.tensor


class _Box:
    """A plain object holding a Python number."""

    def __init__(self):
        self.n = 0


# --- the kinds of change: each callee takes its state first, then the tensor --------------

def _in_list(state, x):
    state[0] += 1
    return (x * 2.0).sum()


def _in_dict(state, x):
    state["n"] += 1
    return (x * 2.0).sum()


def _in_attribute(state, x):
    state.n += 1
    return (x * 2.0).sum()


def _appended(state, x):
    state.append(1)
    return (x * 2.0).sum()


KINDS = {
    "list_item": (lambda: [0], _in_list, lambda s: s[0]),
    "dict_item": (lambda: {"n": 0}, _in_dict, lambda s: s["n"]),
    "attribute": (_Box, _in_attribute, lambda s: s.n),
    "append": (list, _appended, len),
}


# --- the callable forms: each makes a one-argument callable reaching `state` -------------

class _Objective:
    """A callable object holding the state and the function in its attributes."""

    def __init__(self, fn, state):
        self.fn, self.state = fn, state

    def __call__(self, x):
        return self.fn(self.state, x)


class _Calling:
    """A callable object holding a callable (a partial) that reaches the state."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class _Holder:
    """Another object than the caller's, whose bound method reaches the state."""

    def __init__(self, fn, state):
        self.fn, self.state = fn, state

    def evaluate(self, x):
        return self.fn(self.state, x)


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper


def _closure(fn, state):
    def objective(x):
        return fn(state, x)
    return objective


def _default(fn, state):
    def objective(x, _state=state, _fn=fn):
        return _fn(_state, x)
    return objective


def _call_first(fns, x):
    return fns[0](x)


FORMS = {
    "partial": lambda fn, s: functools.partial(fn, s),
    "partial_keyword": lambda fn, s: functools.partial(lambda x, state: fn(state, x),
                                                       state=s),
    "nested_partial": lambda fn, s: functools.partial(_call_first, [functools.partial(fn, s)]),
    "closure": _closure,
    "default_argument": _default,
    "lambda": lambda fn, s: (lambda x: fn(s, x)),
    "callable_object": _Objective,
    "bound_method": lambda fn, s: _Holder(fn, s).evaluate,
    "wraps_decorated": lambda fn, s: functools.partial(_logged(fn), s),
    "object_of_partial": lambda fn, s: _Calling(functools.partial(fn, s)),
}


def _while_break(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    i = 0
    while i < 3:
        if objective(x) > 0:
            break
        x = x + 1
        i += 1
    return x, count(state)


def _in_if(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    if x.sum() > 0:
        x = x * objective(x)
    return x, count(state)


def _held_in_list(x, kind):
    make, fn, count = KINDS[kind]
    state = make()
    objectives = [functools.partial(fn, state)]
    i = 0
    while i < 3:
        if objectives[0](x) > 0:
            break
        x = x + 1
        i += 1
    return x, count(state)


def _held_in_object(x, kind):
    make, fn, count = KINDS[kind]
    state = make()
    holder = types.SimpleNamespace(f=functools.partial(fn, state))
    i = 0
    while i < 3:
        if holder.f(x) > 0:
            break
        x = x + 1
        i += 1
    return x, count(state)


def _held_in_dict(x, kind):
    make, fn, count = KINDS[kind]
    state = make()
    objectives = {"f": _closure(fn, state)}
    if x.sum() > 0:
        x = x * objectives["f"](x)
    return x, count(state)


# --- the matrix ---------------------------------------------------------------------------

# The first input is traced; the others take other paths (trips of the loop, the other branch)
INPUTS = [T([1.]), T([-5.]), T([-1.5])]

STATEMENTS = {"while_break": _while_break, "if": _in_if}
CASES = [(statement, form, kind) for statement in STATEMENTS for form in FORMS for kind in KINDS]
HELD = {"held_in_list": _held_in_list, "held_in_dict": _held_in_dict,
        "held_in_object": _held_in_object}
CASES += [(held, None, kind) for held in HELD for kind in KINDS]

# Carried in every mode but torch.compile: a number the callee sets in a list, a dict or an
# object comes out as Python's. A list the callee grows in a loop is refused; grown in an
# `if`, autoconv's replay traces the other branch again, and an exported program raises for it.
MODES = ("replay", "export", "compile")

# make test runs the replay of every case; the export of a sample (each form in the loop with
# a list counter, s01's shape, and each kind through a partial), the compile of three; make
# test-slow all.
_SAMPLED = {
    "export": {("while_break", form, "list_item") for form in FORMS} | {
        (statement, "partial", kind) for statement in STATEMENTS for kind in KINDS} | {
        ("held_in_list", None, "list_item"), ("held_in_dict", None, "dict_item"),
        ("held_in_object", None, "list_item")},
    "compile": {("while_break", "partial", "list_item"), ("while_break", "closure", "list_item"),
                ("if", "partial", "attribute")},
}


def _function(statement, form, kind):
    if form is None:
        held = HELD[statement]
        return lambda x: held(x, kind)
    fn = STATEMENTS[statement]
    return lambda x: fn(x, kind, form)


def _loop(statement) -> bool:
    return statement in ("while_break", "held_in_list", "held_in_object")


def _params():
    for statement, form, kind in CASES:
        for mode in MODES:
            marks = () if mode == "replay" or (statement, form, kind) in _SAMPLED[mode] else (
                pytest.mark.slow,)
            yield pytest.param(statement, form, kind, mode, marks=marks,
                               id=f"{statement}-{form or 'direct'}-{kind}-{mode}")


def _same(got, want):
    assert torch.equal(got[0], want[0]), (got, want)
    assert int(got[1]) == want[1], (got, want)


@pytest.mark.parametrize("statement, form, kind, mode", list(_params()))
def test_callee_side_effect_matches_python(statement, form, kind, mode):
    fn = _function(statement, form, kind)
    expected = [fn(x.clone()) for x in INPUTS]
    refused = kind == "append" and _loop(statement)
    if mode == "compile":
        # dynamo refuses a body's change to Python state it does not own ("HOP: Unsafe side
        # effect", or its "Observed exception" for a partial's): an error, never a wrong number
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager",
                                 dynamic=False)
        for x, want in zip(INPUTS, expected):
            try:
                got = compiled(x.clone())
            except Exception:  # (torch's own errors: README, torch.compile and callees' state)
                return
            _same(got, want)
        return
    if refused:
        # (at the callee's line where a callable holds the list; an object's list is refused
        # as its field: "`objective.state` changes its length in the loop body")
        with pytest.raises(StagingError, match=r"is grown by it|changes its length in the loop "
                           r"body") as refusal:
            if mode == "replay":
                autoconv.autoconv(fn)(INPUTS[0].clone())
            else:
                torch.export.export(Calling(autoconv.convert(fn)), (INPUTS[0].clone(),),
                                    strict=False)
        if form in ("partial", "nested_partial", "wraps_decorated"):
            line = _appended.__code__.co_firstlineno + 1
            assert str(refusal.value).startswith(f"{__file__}:{line}:"), refusal.value
        return
    if mode == "replay":
        run = autoconv.autoconv(fn)
        for x, want in zip(INPUTS, expected):
            _same(run(x.clone()), want)
        # one trace for the loop; the `if` growing a list specialises on its branch
        assert run.trace_count == (1 if _loop(statement) or kind != "append" else 2)
        return
    saved = io.BytesIO()
    torch.export.save(torch.export.export(Calling(autoconv.convert(fn)), (INPUTS[0].clone(),),
                                          strict=False), saved)
    saved.seek(0)
    program = torch.export.load(saved).module()
    for x, want in zip(INPUTS, expected):
        if kind == "append" and bool(x.sum() > 0) != bool(INPUTS[0].sum() > 0):
            # (a branch growing the list is not staged: the program holds the traced branch and
            # says so for the other)
            with pytest.raises(RuntimeError, match="changes its length"):
                program(x.clone())
            continue
        _same(program(x.clone()), want)


# --- counts an object keeps in its own list and dict (its method's `self.calls[0] += 1`) ----

class _Counting:
    """A callable object counting its calls in a list and a dict it holds."""

    def __init__(self):
        self.calls, self.seen = [0], {"n": 0}
        self.stats, self.by_kind = _Box(), {"f": [0]}

    def __call__(self, x):
        self.calls[0] += 1
        self.seen["n"] += 2
        self.stats.n += 3
        self.by_kind["f"][0] += 4
        return (x * 2.0).sum()


def _counts(objective):
    return (objective.calls[0], objective.seen["n"], objective.stats.n,
            objective.by_kind["f"][0])


def _counting_if(x):
    objective = _Counting()
    if x.sum() > 0:
        x = x * objective(x)
    return x, *_counts(objective)


def _counting_while_break(x):
    objective = _Counting()
    i = 0
    while i < 3:
        if objective(x) > 0:
            break
        x = x + 1
        i += 1
    return x, *_counts(objective)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fn", [_counting_if, _counting_while_break], ids=["if", "while_break"])
def test_a_count_an_object_keeps_in_its_own_list_and_dict_matches_python(fn, mode):
    # Under torch.compile Python's `+=` updated the item's (or the field's field's) stand-in in
    # place, which no body rebinding showed, and the counts came back as 0 after the `if` and as
    # one call's after the loop
    # (session 38; NOTE [fields updated by a method] in the control-flow converter)
    expected = [fn(x.clone()) for x in INPUTS]
    if mode == "replay":
        run = autoconv.autoconv(fn)
        got = [run(x.clone()) for x in INPUTS]
    elif mode == "export":
        saved = io.BytesIO()
        torch.export.save(torch.export.export(Calling(autoconv.convert(fn)),
                                              (INPUTS[0].clone(),), strict=False), saved)
        saved.seek(0)
        program = torch.export.load(saved).module()
        got = [program(x.clone()) for x in INPUTS]
    else:
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager",
                                 dynamic=False)
        got = [compiled(x.clone()) for x in INPUTS]
    for have, want in zip(got, expected):
        assert torch.equal(have[0], want[0]), (have, want)
        assert tuple(map(int, have[1:])) == want[1:], (have, want)


# --- the caller's own name for the list a moved object holds ------------------------------

class _Meter:
    """Another object counting its calls in the caller's list (`Meter(state)`)."""

    def __init__(self, state):
        self.state = state

    def tick(self, t):
        self.state[0] += 1
        return t % 6


def _count_read_in_the_branch(x, y):
    state = [0]
    meter = _Meter(state)
    meter.tick(y)
    if y > 100:
        return x
    if meter.tick(x) > 2:
        x = x + 1
    return x + state[0]


@pytest.mark.parametrize("mode", ("replay", "export"))
def test_a_branch_reads_the_count_a_method_keeps_in_the_callers_list(mode):
    # The call moved `meter` into the statement's state and the branch got a copy of it, but
    # the caller's `state` itself: `x + state[0]` read the count from before the call, one less
    # than Python's (session 38, fuzz38; NOTE [inputs held by a moved object])
    inputs = [(T(0), T(0)), (T(3), T(1)), (T(5), T(200))]
    expected = [_count_read_in_the_branch(*args) for args in inputs]
    if mode == "replay":
        run = autoconv.autoconv(_count_read_in_the_branch)
    else:
        saved = io.BytesIO()
        torch.export.save(torch.export.export(Calling(autoconv.convert(_count_read_in_the_branch)),
                                              inputs[0], strict=False), saved)
        saved.seek(0)
        run = torch.export.load(saved).module()
    for args, want in zip(inputs, expected):
        assert torch.equal(run(*args), want), (args, want)


# --- a partial and a bound method reaching one object ----------------------------------------

class _Gauge:
    """An object a bound method and a partial both count in: a list, a dict and a field."""

    def __init__(self):
        self.state, self.seen, self.k = [0], {"n": 0}, 0

    def tick(self, t):
        self.state[0] += 1
        self.seen["n"] += 1
        return t + 1


def _count_in(gauge, t):
    gauge.state[0] += 10
    gauge.k += 1
    return t * 2


def _gauge_counts(gauge):
    return 1000 * gauge.state[0] + 100 * gauge.seen["n"] + 10 * gauge.k


def _both_in_a_for_bodys_if(x):
    gauge = _Gauge()
    tick, count = gauge.tick, functools.partial(_count_in, gauge)
    y = x.sum() * 0
    for v in x:
        if v > 1:
            y = y + tick(v)
        else:
            y = y + count(v)
    return y + _gauge_counts(gauge)


def _both_in_a_while_with_one_in_an_ifs_test(x):
    gauge = _Gauge()
    tick, count = gauge.tick, functools.partial(_count_in, gauge)
    i = torch.tensor(0)
    y = x.sum() * 0
    while i < 3:
        if tick(x[i]) > 2:
            y = y + count(x[i])
        i = i + 1
    return y + _gauge_counts(gauge)


def _both_in_an_if_one_in_its_test(x):
    gauge = _Gauge()
    tick, count = gauge.tick, functools.partial(_count_in, gauge)
    y = x.sum() * 0
    if count(x.sum()) > 3:
        y = y + tick(x[0])
    return y + _gauge_counts(gauge)


def _run_in(mode, fn, example):
    """`fn` as autoconv's replay, a saved and loaded torch.export program traced on `example`,
    or torch.compile of the converted function with the backend `mode`."""
    if mode == "replay":
        return autoconv.autoconv(fn)
    if mode == "export":
        saved = io.BytesIO()
        torch.export.save(torch.export.export(Calling(autoconv.convert(fn)), (example.clone(),),
                                              strict=False), saved)
        saved.seek(0)
        return torch.export.load(saved).module()
    torch._dynamo.reset()
    return torch.compile(autoconv.convert(fn), fullgraph=True, backend=mode, dynamic=False)


_BOTH = [_both_in_a_for_bodys_if, _both_in_a_while_with_one_in_an_ifs_test,
         _both_in_an_if_one_in_its_test]
_BOTH_INPUTS = [T([3., 0., 2.]), T([0., 0., 0.]), T([5., 5., 1.])]


@pytest.mark.parametrize("mode", ["replay", "export",
                                  pytest.param("eager", marks=pytest.mark.slow),
                                  pytest.param("inductor", marks=pytest.mark.slow)])
@pytest.mark.parametrize("fn", _BOTH, ids=["for", "while", "if"])
def test_a_partial_and_a_bound_method_counting_in_one_object_match_python(fn, mode):
    # fuzz38: under torch.compile autoconv's `is` of two partials made in dynamo's trace (to
    # name a statement's input) stopped in dynamo: NOTE [identity under dynamo] in
    # runtime/identity.py; session 38 found a count the probes made reaching the object's list
    # behind it (1003 for 3), which NOTE [objects a probe's run changes under dynamo] fixed
    expected = [fn(x.clone()) for x in _BOTH_INPUTS]
    run = _run_in(mode, fn, _BOTH_INPUTS[0])
    for x, want in zip(_BOTH_INPUTS, expected):
        assert torch.equal(run(x.clone()), want), (x, want)


# --- a count after a staged `while` that raises and an `if` that changes an object ----------
# silent40 s01 (fuzz seed 4001, program 10): a `raise` in a staged `while` puts the rest of the
# function in a staged `if not <returned>`, whose types-only probe gave its body the caller's
# objects as they are; under torch.compile the inner `if` calling the counter moved the
# container the callable reaches into its state and wrote the probe's count back into the
# caller's container, which the outer `if` then carried in as its start: 2 for 1. NOTE [objects
# a probe's run changes under dynamo] in runtime/staging/torch.py.

def _count_after_raising_while(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    box = _Box()
    box.v = x[0] + 1
    d = {"k": x[1] + 0}
    guard = torch.tensor(0)
    while guard < 2 and x[2] > 10:
        guard += 1
        if x[0] > -100:
            raise ValueError("not on these inputs")
    if x.sum() <= -2:
        box.v = box.v - 2
        d["k"] = d["k"] % 2
    if x[0] != 2:
        objective(x)
    return x + box.v + d["k"], count(state)


_AFTER_RAISING_INPUTS = [T([0., 0., 1.]), T([2., -8., 1.]), T([-3., 1., 0.])]
# (dynamo refuses a body's change through a partial, closure, lambda or default argument:
# "HOP: Unsafe side effect", README "torch.compile and callees' state"; since session 44 an
# attribute a partial sets is carried here, equal to Python, the count a 0-d tensor)
_DYNAMO_CARRIES = ("bound_method", "callable_object")
_DYNAMO_CARRIES_AFTER_RAISING = {("attribute", "partial")}


def _after_raising_params():
    for kind in ("list_item", "dict_item", "attribute"):
        for form in ("bound_method", "callable_object", "partial", "closure"):
            for mode in ("replay", "export", "eager"):
                marks = (pytest.mark.slow,) if mode == "eager" and (
                    kind, form) != ("list_item", "bound_method") else ()
                yield pytest.param(kind, form, mode, marks=marks, id=f"{kind}-{form}-{mode}")


@pytest.mark.parametrize("kind, form, mode", list(_after_raising_params()))
def test_a_count_after_a_raising_while_and_an_if_changing_an_object_matches_python(
        kind, form, mode):
    # (attribute-bound_method: silent41 s01, 0 for 1 in replay and export until session 42;
    # the kind is the next tests')
    fn = lambda x: _count_after_raising_while(x, kind, form)  # noqa: E731
    expected = [fn(x.clone()) for x in _AFTER_RAISING_INPUTS]
    run = _run_in(mode, fn, _AFTER_RAISING_INPUTS[0])
    for x, want in zip(_AFTER_RAISING_INPUTS, expected):
        if mode == "eager" and form not in _DYNAMO_CARRIES and (
                kind, form) not in _DYNAMO_CARRIES_AFTER_RAISING:
            with pytest.raises(Exception, match="Unsafe side effect"):
                run(x.clone())
            return
        _same(run(x.clone()), want)


# --- an object both an input of a staged statement and held by a callable input --------------
# silent41 s01's kind: `objective = Holder(f, state).evaluate` counting in `state`, which the
# branch also reads. One run of the body changed both inputs; `state` was moved into the
# statement's state alone (the holder's change was undone with it, or found by an enclosing
# attempt that stopped at the first input it found), then the holder with a copy of its own,
# and the branch read the copy the count never reached: 0 for 1 in replay and export. NOTE
# [inputs held by a moved object] in runtime/staging/objects.py.

def _read_in_the_branch(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    n = 0
    if x[2] <= 10:
        objective(x)
        n = count(state)
    return x, n


def _read_after_a_nested_if(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    n = 0
    if x[2] <= 10:
        if x[0] != 2:
            objective(x)
        n = count(state)
    return x, n


_HELD_AND_READ = {"in_the_branch": _read_in_the_branch,
                  "after_a_nested_if": _read_after_a_nested_if}
_HELD_AND_READ_INPUTS = [T([0., 0., 1.]), T([2., -8., 1.]), T([-3., 1., 20.])]


@pytest.mark.parametrize("mode", ["replay", "export",
                                  pytest.param("eager", marks=pytest.mark.slow)])
@pytest.mark.parametrize("form", ["bound_method", "callable_object", "object_of_partial"])
@pytest.mark.parametrize("kind", ["attribute", "dict_item"])
@pytest.mark.parametrize("shape", list(_HELD_AND_READ))
def test_an_object_a_callable_changes_read_in_the_same_branch_matches_python(
        shape, kind, form, mode):
    fn = lambda x: _HELD_AND_READ[shape](x, kind, form)  # noqa: E731
    expected = [fn(x.clone()) for x in _HELD_AND_READ_INPUTS]
    assert [n for _, n in expected] == ([1, 1, 0] if shape == "in_the_branch" else [1, 0, 0])
    run = _run_in(mode, fn, _HELD_AND_READ_INPUTS[0])
    if mode == "eager" and form not in _DYNAMO_CARRIES:
        with pytest.raises(Exception, match="Unsafe side effect"):
            run(_HELD_AND_READ_INPUTS[0].clone())
        return
    for x, want in zip(_HELD_AND_READ_INPUTS, expected):
        _same(run(x.clone()), want)


# --- probes' runs under torch.compile, on the caller's objects -------------------------------
# silent41's lead: a probe's run of a statement's bodies outside torch's operator is a side
# effect dynamo keeps (NOTE [objects a probe's run changes under dynamo] in runtime/staging/
# torch.py). Three probes were suspected of running the bodies on the caller's plain objects:
# `_check_by_probe` (a number made a tensor: `promoted`), `_carry_changing_constants` (a
# constant the body changes: `changing_constant`) and the list-growth probe (a list the body
# grows: `growing_list`), also at a statement's second entry (`twice`: the inputs' verdict is
# kept, nothing watched). Each counts through a bound method in an object's field, or a dict
# item; session 42 found them all as Python's (the object is an input, watched, or moved into
# the state, before any probe runs). A list the method grows is refused (`note`).

class _ProbedMeter:
    def __init__(self):
        self.n, self.log, self.d = 0, [], {"k": 0}

    def tick(self, t):
        self.n += 1
        return t * 2

    def bump(self, t):
        self.d["k"] += 1
        return t * 2

    def note(self, t):
        self.log.append(1)
        return t * 2


def _meter_counts(m):
    return m.n * 100 + len(m.log) * 10 + m.d["k"]


def _growing_list(x, how):
    m = _ProbedMeter()
    f = getattr(m, how)
    items = []
    if x.sum() > 0:
        items.append(f(x))
    else:
        items.append(x)
    return items[0], _meter_counts(m)


def _changing_constant(x, how):
    m = _ProbedMeter()
    f = getattr(m, how)
    k = 1
    if x.sum() > 0:
        y = f(x)
        k = 2
    else:
        y = x
    return y * k, _meter_counts(m)


def _promoted(x, how):
    m = _ProbedMeter()
    f = getattr(m, how)
    s = 0
    if x.sum() > 0:
        s = f(x).sum()
    return x + s, _meter_counts(m)


def _twice(x, how):
    m = _ProbedMeter()
    f = getattr(m, how)
    s = 0
    for _ in range(2):
        if x.sum() > 0:
            s = f(x).sum()
    return x + s, _meter_counts(m)


_PROBED = {"growing_list": _growing_list, "changing_constant": _changing_constant,
           "promoted": _promoted, "twice": _twice}
_PROBED_INPUTS = [T([1., 2.]), T([-3., 1.])]


@pytest.mark.parametrize("how", ["tick", "bump", "note"])
@pytest.mark.parametrize("shape", list(_PROBED))
def test_a_count_a_probe_could_make_twice_under_torch_compile_matches_python(shape, how):
    fn = lambda x: _PROBED[shape](x, how)  # noqa: E731
    run = _run_in("eager", fn, _PROBED_INPUTS[0])
    if how == "note":
        with pytest.raises(StagingError, match="changes its length"):
            run(_PROBED_INPUTS[0].clone())
        return
    for x in _PROBED_INPUTS:
        want = fn(x.clone())
        assert want[1] in (0, 1, 2, 100, 200)
        _same(run(x.clone()), want)


class _Counted:
    def __init__(self):
        self.n = 0


def _bump(box, x):
    box.n += 1
    return x * 2


def _count_then_read(h, b, x):
    if x.sum() > 0:
        y = h(x) + b.n
    else:
        y = x - b.n
    return y


def _run_counts(holder_of):
    """(y, box.n) after each of two calls (x > 0, then x < 0), in Python and in autoconv."""
    out = []
    for fn in (_count_then_read, autoconv.autoconv(_count_then_read)):
        box = _Counted()
        holder = holder_of(box)
        out.append([(fn(holder, box, s * torch.ones(1)).item(), box.n) for s in (1, -1)])
    return out


# break42 s07, fixed in session 43: NOTE [objects holding themselves] in runtime/staging/objects.py
def test_a_holder_reaching_its_object_through_the_object_itself_matches_python():
    def holder_of(box):
        box.me = box
        return functools.partial(lambda bb, x: _bump(bb.me, x), box)

    python, converted = _run_counts(holder_of)
    assert python == [(3.0, 1), (-2.0, 1)]
    assert converted == python


# break42 s08, fixed in session 43: NOTE [holders of an object's parts] in
# runtime/staging/objects.py
def test_two_holders_of_one_object_called_through_a_lambda_match_python():
    class Holder:
        def __init__(self, box):
            self.box = box

        def bump(self, x):
            return _bump(self.box, x)

    def holder_of(box):
        first, second = Holder(box).bump, functools.partial(_bump, box)
        return lambda x: first(x) + second(x)

    python, converted = _run_counts(holder_of)
    assert python == [(6.0, 2), (-3.0, 2)]
    assert converted == python


# --- counts a callee keeps, in a loop staged twice (wrong47) -----------------------------------
# fuzz seed 4601, program 15's shape: the loop's state holds an object whose field one statement
# updates in place (`s.v += ...`) and a method replaces (`s.step(...)`), so `objects.carry`
# stages the loop a second time (`_GiveBack`); the first attempt, staged again carrying what the
# callee in the `if` test changes, wrote its count back before the second began from it (10 for
# 6, silently: NOTE [what an abandoned attempt wrote] in runtime/staging/attempt_effects.py). The
# same with each carrier, in a `while`, a `for` over a tensor's range and the `and` of an `if`
# test in a Python range loop staged from its `return` flag.

class _Stepped:
    def __init__(self, v):
        self.v = v

    def step(self, t):
        self.v = (self.v + t) % 7


class _Ticker:
    """Counts its calls in a dict and in an attribute."""

    def __init__(self):
        self.seen = {"n": 0}
        self.calls = 0

    def in_dict(self, t):
        self.seen["n"] += 2
        return t % 5 + self.seen["n"] % 3 + 2

    def in_attribute(self, t):
        self.calls += 2
        return t % 5 + self.calls % 3 + 2

    def count(self):
        return self.seen["n"] + self.calls


_GLOBAL_TICKS = [0]


def _tick_global(t):
    _GLOBAL_TICKS[0] += 2
    return t % 5 + _GLOBAL_TICKS[0] % 3 + 2


def _global_count():
    return _GLOBAL_TICKS[0]


def _closure_counter():
    n = 0

    def tick(t):
        nonlocal n
        n += 2
        return t % 5 + n % 3 + 2

    def count():
        return n
    return tick, count


def _carrier(kind):
    """(tick, count): a callable counting its calls in `kind`'s carrier, and its count."""
    ticker = _Ticker()
    _GLOBAL_TICKS[0] = 0
    carriers = {"dict_on_self": (ticker.in_dict, ticker.count),
                "attribute": (ticker.in_attribute, ticker.count),
                "global_list": (_tick_global, _global_count)}
    return carriers[kind] if kind in carriers else _closure_counter()


def counted_in_while(x, y, kind):
    tick, count = _carrier(kind)
    s = _Stepped(x + 1)
    i = torch.tensor(0)
    while i < y:
        s.v += -(i + 2) % 6
        s.step(i - 1)
        if tick(-s.v) >= 2:
            s.v = s.v * 2
        i += 1
    return s.v + 1000 * count()


def counted_in_for(x, y, kind):
    tick, count = _carrier(kind)
    s = _Stepped(x + 1)
    for i in range(y):
        s.v += -(i + 2) % 6
        s.step(i - 1)
        if tick(-s.v) >= 2:
            s.v = s.v * 2
    return s.v + 1000 * count()


def counted_in_and(x, y, kind):
    tick, count = _carrier(kind)
    s = _Stepped(x + 1)
    vs = []
    for i in range(3):
        s.v += -(i + 2) % 6
        s.step(i + y)
        if tick(-s.v) >= 2 and s.v > 1:
            vs.append(s.v)
        elif s.v == 0 and y.item() >= 9:
            return s.v
    return s.v + 1000 * count() + len(vs)


COUNTED_IN_LOOPS = [counted_in_while, counted_in_for, counted_in_and]
_COUNTED_INPUTS = [(T(0), T(3)), (T(2), T(1)), (T(5), T(0))]
_STATEMENT = ["while", "for", "and"]


@pytest.mark.parametrize("kind", ["dict_on_self", "attribute"])
@pytest.mark.parametrize("fn", COUNTED_IN_LOOPS, ids=_STATEMENT)
def test_a_count_kept_by_a_callee_in_a_loop_staged_twice_matches_python(fn, kind):
    from support import assert_same_result

    assert_same_result(lambda x, y: fn(x, y, kind), _COUNTED_INPUTS)


@pytest.mark.parametrize("fn", COUNTED_IN_LOOPS, ids=_STATEMENT)
def test_a_closure_counting_in_its_nonlocal_in_a_staged_loop_is_refused(fn):
    # (a staged `for` checked only the runtime's wrapper of its body, `step`: the count was the
    # trace's, silently, until wrong47)
    with pytest.raises(StagingError, match="'tick' assigns its nonlocal 'n'"):
        autoconv.autoconv(lambda x, y: fn(x, y, "closure"))(*_COUNTED_INPUTS[0])


@pytest.mark.parametrize("mode", ["replay", "export"])
@pytest.mark.parametrize("fn", COUNTED_IN_LOOPS, ids=_STATEMENT)
def test_a_global_list_a_callee_counts_in_in_a_staged_loop_is_refused(fn, mode):
    # (a function's globals are no object a statement carries: the body counted once per
    # trace, the graph the trace's count, 4008 for Python's 6008, silently, until session 48:
    # NOTE [a count a callee keeps in a global's object]; under torch.compile dynamo refuses
    # the store itself)
    line = _tick_global.__code__.co_firstlineno + 1
    counted = lambda x, y: fn(x, y, "global_list")  # noqa: E731
    with pytest.raises(StagingError, match=r"'_tick_global' changes `_GLOBAL_TICKS\[0\]`, a "
                       "number in the object the global") as refusal:
        if mode == "replay":
            autoconv.autoconv(counted)(*_COUNTED_INPUTS[0])
        else:
            torch.export.export(Calling(autoconv.convert(counted)), _COUNTED_INPUTS[0],
                                strict=False)
    assert str(refusal.value).startswith(f"{__file__}:{line}:"), refusal.value
    # (put back: the trace's count is no count of the program; the `and`'s loop is staged
    # from its second trip, the first counted as Python)
    assert _GLOBAL_TICKS[0] == (2 if fn is counted_in_and else 0)


def _counting_in_a_global_object(x):
    i = 0
    while x.sum() < 5:
        x = _tick_global_object(x)
        i += 1
    return x, i


class _Stats:
    calls = 0


_STATS = _Stats()


def _tick_global_object(t):
    _STATS.calls += 1  # (named by the loop's body as a global function)
    return t + 1


def test_a_global_object_a_callee_counts_in_in_a_staged_while_is_refused():
    _STATS.calls = 0
    line = _tick_global_object.__code__.co_firstlineno + 1
    with pytest.raises(StagingError, match=r"'_tick_global_object' changes `_STATS.calls`") as e:
        autoconv.autoconv(_counting_in_a_global_object)(torch.zeros(()))
    assert str(e.value).startswith(f"{__file__}:{line}:"), e.value
    assert _STATS.calls == 0


# A list or dict a callee changes (appends to, pops, sets an item of) in a global's object or
# a global itself, or a method of a global's object changing its own fields: once per trace
# (2 items for Python's 5, break48 s01) until session 49, refused now at the callee's line;
# a key added to a dict is a cache filled once, as in Python (NOTE [a count a callee keeps
# in a global's object] in runtime/staging/python_state.py).
_NOTES = []
_CACHE = {}


class _Recorder:
    def __init__(self):
        self.seen = []
        self.table = {"last": None}
        self.n = 0

    def record(self, t):
        self.seen.append(1)
        return t + 1

    def forget(self, t):
        self.table.pop("last")
        return t + 1

    def count(self, t):
        self.n += 1
        return t + 1


_RECORDER = _Recorder()


def _noted(t):
    _NOTES.append(1)
    return t + 1


def _cached(t):
    _CACHE.setdefault("k", 3)
    return t + 1


def _logging_loop(x):
    while x.sum() < 5:
        x = _noted(x)
    return x


def _recording_loop(x):
    while x.sum() < 5:
        x = _RECORDER.record(x)
    return x


def _forgetting_if(x):
    if x.sum() > 0:
        x = _RECORDER.forget(x)
    return x


def _counting_method_loop(x):
    while x.sum() < 5:
        x = _RECORDER.count(x)
    return x


def _caching_loop(x):
    while x.sum() < 5:
        x = _cached(x)
    return x


@pytest.mark.parametrize("mode", ["replay", "export"])
@pytest.mark.parametrize("fn, callee, place", [
    (_logging_loop, _noted, "`_NOTES`, the list or dict the global holds"),
    (_recording_loop, _Recorder.record, "`_RECORDER.seen`, a list or dict"),
    (_forgetting_if, _Recorder.forget, "`_RECORDER.table`, a list or dict"),
    (_counting_method_loop, _Recorder.count, "`_RECORDER.n`, a number")],
    ids=lambda v: getattr(v, "__name__", "place"))
def test_a_list_or_dict_a_callee_changes_in_a_global_in_a_staged_body_is_refused(
        fn, callee, place, mode):
    global _RECORDER
    _RECORDER = _Recorder()
    _NOTES.clear()
    line = callee.__code__.co_firstlineno + 1
    with pytest.raises(StagingError, match=re.escape(
            f"'{callee.__name__}' changes {place}")) as refusal:
        if mode == "replay":
            autoconv.autoconv(fn)(torch.zeros(2))
        else:
            torch.export.export(Calling(autoconv.convert(fn)), (torch.zeros(2),), strict=False)
    assert str(refusal.value).startswith(f"{__file__}:{line}:"), refusal.value
    # (put back: the loop's test ran once in Python, before the loop was staged)
    assert _NOTES == [] and _RECORDER.seen == [] and _RECORDER.table == {"last": None}
    assert _RECORDER.n == 0


class _Keeper:
    def __init__(self):
        self.last = None

    def keep(self, t):
        self.last = t * 2
        return t + 1


_KEEPER = _Keeper()


def _keeping_if(x):
    if x.sum() > 0:
        x = _KEEPER.keep(x)
    return x


def test_a_tensor_a_global_objects_method_stores_in_a_staged_if_is_refused():
    # (the method's object was no global the body's code sets a field of: a fake tensor of
    # the trace was left in `_KEEPER.last`, break46b s03)
    line = _Keeper.keep.__code__.co_firstlineno + 1
    with pytest.raises(StagingError, match=r"is stored into `_KEEPER.last`") as refusal:
        autoconv.autoconv(_keeping_if)(torch.ones(2))
    assert str(refusal.value).startswith(f"{__file__}:{line}:"), refusal.value
    assert _KEEPER.last is None


def test_a_key_a_callee_adds_to_a_global_dict_in_a_staged_loop_is_a_cache_filled_once():
    _CACHE.clear()
    assert_same_result(_caching_loop, [(torch.zeros(2),), (torch.full((2,), 4.0),)],
                       compile=False)
    assert _CACHE == {"k": 3}


# --- a function made in a staged body assigning a variable of the function ----------------
# `def tick(): nonlocal n; n += 1` made and called in a staged body: the body ran `tick` once
# per trace (a branch's trace and its probe, a loop body's attempts), `x - 2` where Python
# gives `x - 1`, silently, until session 48. `n` is state the statement carries now, `tick`'s
# `nonlocal` the body function's own `n` (NOTE [a function made in a staged body assigning a
# variable] in autoconv/analysis/liveness.py, NOTE [functions private to a statement] in
# autoconv/converters/control_flow.py).

def counted_after_an_early_return(x):
    n = 0
    if x.sum() > 5:
        return x
    # (the lowering of the `return` moves these statements into the `if`'s false branch)

    def tick():
        nonlocal n
        n += 1
    tick()
    return x - n


def counted_in_a_staged_while(x):
    n = 0
    while x.sum() < 10:
        def tick(step):
            nonlocal n
            n += step
        tick(2)
        x = x + 1
    return x + 100 * n


def counted_in_a_staged_for(x, k):
    n = 0
    for _ in range(k):
        def tick():
            nonlocal n
            n += 1
        tick()
        x = x + n
    return x + 100 * n


def counted_in_both_branches(x):
    n = 0
    if x.sum() > 0:
        def tick():
            nonlocal n
            n += 1
        tick()
    else:
        def tick():
            nonlocal n
            n += 3
        tick()
        tick()
    return x - n


def counted_by_a_nested_function_in_a_branch(x):
    n = torch.zeros(())
    if x.sum() > 0:
        def outer():
            def inner():
                nonlocal n
                n = n + x.sum()
            inner()
            inner()
        outer()
    return x - n


_MADE_IN_BODIES = [
    (counted_after_an_early_return, [(-torch.ones(3),), (torch.full((3,), 3.0),)]),
    (counted_in_a_staged_while, [(torch.ones(3),), (torch.full((3,), 5.0),)]),
    (counted_in_a_staged_for, [(T([1.0, 2.0]), T(3)), (T([-5.0, 0.0]), T(0))]),
    (counted_in_both_branches, [(torch.ones(3),), (-torch.ones(3),)]),
    (counted_by_a_nested_function_in_a_branch, [(torch.ones(3),), (-torch.ones(3),)]),
]


@pytest.mark.parametrize("fn, inputs", _MADE_IN_BODIES, ids=[f.__name__ for f, _ in _MADE_IN_BODIES])
def test_a_function_made_in_a_staged_body_assigning_a_nonlocal_matches_python(fn, inputs):
    from support import assert_same_result

    assert_same_result(fn, inputs)


def _made_in_a_loop_called_in_its_if(x, k):
    n = 0
    for i in range(k):
        def tick():
            nonlocal n
            n += 2
        if x.sum() > i:  # (`tick` is given to this `if`: a closure of the loop's body)
            tick()
        x = x + 1
    return x + 100 * n


_OUTER_COUNT = 0


def _counting_outside():
    n = 0

    def fn(x):
        if x.sum() > 0:
            def tick():
                nonlocal n
                n += 1  # (the line of the refusal)
            tick()
        return x - n
    return fn


def _counting_in_a_global(x):
    if x.sum() > 0:
        def tick():
            global _OUTER_COUNT
            _OUTER_COUNT += 1  # (the line of the refusal)
        tick()
    return x - _OUTER_COUNT


def test_a_function_made_in_a_loop_body_assigning_a_nonlocal_in_its_staged_if_is_refused():
    # (its `n` is the loop body's, which the `if` does not carry: refused as a closure given
    # to the body is)
    with pytest.raises(StagingError, match="'tick' assigns its nonlocal 'n'"):
        autoconv.autoconv(_made_in_a_loop_called_in_its_if)(T([1.0, 2.0]), T(3))


@pytest.mark.parametrize("mode", ["replay", "export", "compile"])
@pytest.mark.parametrize("make", [_counting_outside, lambda: _counting_in_a_global],
                         ids=["enclosing_nonlocal", "global"])
def test_a_function_made_in_a_staged_body_assigning_outside_the_function_is_refused(make, mode):
    # (a variable of no function up to the converted one: the graph cannot change it; the
    # export kept the trace's count, silently, before session 48)
    fn = make()
    code = getattr(fn, "__code__")
    line = next(i for i, text in enumerate(open(__file__).read().splitlines(), 1)
                if "(the line of the refusal)" in text and i > code.co_firstlineno)
    x = torch.ones(3)
    with pytest.raises(StagingError, match="'tick', called in a staged body, assigns the") as e:
        if mode == "replay":
            autoconv.autoconv(fn)(x)
        elif mode == "export":
            torch.export.export(Calling(autoconv.convert(fn)), (x,), strict=False)
        else:
            torch._dynamo.reset()
            torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(x)
    assert str(e.value).startswith(f"{__file__}:{line}:"), e.value
