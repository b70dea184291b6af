"""Trace time of nested staged statements: how many times a body runs per trace.

A staged statement may take several attempts (an input the bodies change carried as state, a
tensor of an object updated in place on one path and replaced on another given back, a dtype
promoted): each attempt runs the bodies, and with them the statements nested in them. Without
NOTE [restaging verdicts] (runtime/staging/restaging.py) each nested statement took its own
failed attempts again on every run of the enclosing bodies, so the runs of a body doubled per
level of nesting (fuzzer seed 28, program 28: an `if/elif` chain of eight tests did not trace in
300 s of CPU).
"""

import collections
import math

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_result, function_from_source


class State:
    def __init__(self, v):
        self.v = v

    def step(self, t):
        if t > 0:
            self.v = (self.v + t) % 7
        else:
            self.v = (self.v - t) % 5


def _chain(levels: int) -> str:
    """A `while` over an `if/elif` chain `levels` tests deep: each branch replaces or updates
    in place `s.v` (a carried object's field) or calls a method that replaces it."""
    lines = ["def fn(x, y):",
             "    s = State(x + 1)",
             "    i = torch.tensor(0)",
             "    while i < 3:",
             "        i += 1"]
    for level in range(levels):
        keyword = "if" if level == 0 else "elif"
        lines.append(f"        {keyword} x + {level} > y:")
        lines.append(f"            count({level})")
        lines.append("            s.v -= x % 5" if level % 2 else "            s.step(y - x)")
    lines.append("        else:")
    lines.append("            s.v = (s.v + y) % 3")
    lines.append("    return s.v + i")
    return "\n".join(lines)


def _counter(counting: bool = True):
    """A `count(level)` the generated code calls, and the Counter it adds to.

    Without `counting` it changes nothing: a Counter the trace itself changes is guarded as a
    dict is (tester40 s11), so a graph traced on it refuses its next call, honestly (Python
    counts again where the replay does not); the tests comparing with Python on several
    inputs, and dynamo (which refuses that side effect in a staged body), take it so."""
    runs = collections.Counter()

    @autoconv.do_not_convert
    def count(level):
        if counting:
            runs[level] += 1

    return count, runs


def _runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_chain(levels), {"State": State, "count": count, "torch": torch})
    return fn, runs


def test_a_nested_chain_over_a_carried_object_runs_each_body_a_bounded_number_of_times():
    fn, runs = _runs(6)
    args = (torch.tensor(1), torch.tensor(3))
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert torch.equal(got, want)
    # Each level's statement takes its failed attempts once per distinct entry: a body at depth
    # d runs a few times per level above it, not 2**d times (the innermost ran 128 times, now 8).
    assert max(runs.values()) <= 40, runs
    assert runs[5] <= 3 * runs[2], runs



def _nested(levels: int) -> str:
    """`levels` ifs, each nested in the one before, each stepping a carried object."""
    lines = ["def fn(x, y):", "    s = State(x + 1)"]
    for level in range(levels):
        pad = "    " * (level + 1)
        lines += [f"{pad}if x > {level - 3}:", f"{pad}    count({level})", f"{pad}    s.step(y)"]
    lines.append("    return s.v + x")
    return "\n".join(lines)


def test_nested_ifs_over_a_carried_object_under_export_run_each_body_as_the_trace_does():
    # NOTE [verdicts under export]: non-strict export took `is_compiling()` for dynamo and kept
    # no verdicts: each enclosing probe staged the ifs nested in it in full, and the innermost
    # body of four ran 16 times (2, 6, 14, 30 runs in all at depths 1 to 4), the staged trace's 2.
    count, runs = _counter()
    fn = function_from_source(_nested(4), {"State": State, "count": count, "torch": torch})
    args = (torch.tensor(1), torch.tensor(2))
    want = fn(*args)
    for run in (lambda: autoconv.autoconv(fn)(*args),
                lambda: torch.export.export(Calling(autoconv.convert(fn)), args,
                                            strict=False).module()(*args)):
        runs.clear()
        assert torch.equal(run(), want)
        assert runs == {level: 2 for level in range(4)}, runs


# NOTE [levels proved in make test]: a check against Python of a nested model costs most in
# its torch.export, which grows with the depth: the chain's 4 levels exported in 10.0 s of CPU
# and 3 in 4.3 s (save and load 4.9 and 2.3 s), the search's 3 levels in 13.6 s and 2 in 3.9 s
# (session 45, at load 10). make test checks one level fewer than the model was written with,
# on inputs that take every branch at that depth (the chain's 3 levels' each `elif` and its
# `else`, the search's `break` at each level and the loop's `else`); the written depth runs in
# make test-slow (tests/slow_tests.txt). The runs-counting tests beside them stay as deep.
_CHAIN_INPUTS = [(torch.tensor(x), torch.tensor(y))
                 for x, y in ((1, 3), (5, 0), (-2, 4), (2, 2), (1, 2))]


@pytest.mark.parametrize("levels", [3, 4], ids=lambda n: f"{n}_levels")
def test_a_nested_chain_over_a_carried_object_matches_python(levels):
    fn, _ = _runs(levels, counting=False)
    assert_same_result(fn, _CHAIN_INPUTS, compile=False)


# torchmin's BFGS loop body (bfgs.py:187-264), in small: each step calls methods that change two
# objects the loop only reads (`hess.update(s, y)`, the objective's `sf.nfev += 1`), and each
# tensor-dependent `break` nests the rest of the body one staged `if` deeper, under a status
# the breaks set (a variable first bound there: its placeholder is learnt by a probe).

class _Evaluations:
    def __init__(self):
        self.n = torch.zeros(())

    def evaluate(self, x):
        self.n = self.n + 1
        return x * 0.5 + 1


class _Step:
    def __init__(self, x):
        self.v = x

    def update(self, t):
        self.v = self.v * 0.5 + t


def _steps(levels: int) -> str:
    lines = ["def fn(x):",
             "    ev = _Evaluations()",
             "    st = _Step(x)",
             "    for i in range(3):"]
    for level in range(levels):
        lines += [f"        count({level})",
                  "        y = ev.evaluate(st.v)",
                  "        st.update(y)",
                  f"        if y.sum() > {level + 4}:",
                  f"            status = {level}",
                  "            break"]
    lines += ["    else:",
              "        status = -1",
              "    return st.v, ev.n, status"]
    return "\n".join(lines)


def _step_runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_steps(levels), {
        "_Evaluations": _Evaluations, "_Step": _Step, "count": count, "torch": torch})
    return fn, runs


def test_nested_breaks_over_objects_two_calls_change_run_each_body_a_bounded_number_of_times():
    # NOTE [inputs changed together] (runtime/staging/objects.py) and NOTE [placeholder types
    # kept] (runtime/staging/restaging.py): each level's statement found one changed object
    # per attempt, and each level's probe for the status's placeholder ran the levels below it
    # again (torchmin's BFGS: its innermost bodies ran 39-42 times in one trace).
    fn, runs = _step_runs(5)
    args = (torch.tensor([0.5, 1.0]),)
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert all(torch.equal(torch.as_tensor(g), torch.as_tensor(w)) for g, w in zip(got, want))
    # (the innermost body ran 20 times, 4 per level; now 11, 2 per level: each level's
    # statement stages twice, its first attempt finding both objects changed)
    assert max(runs.values()) <= 12, runs


_STEP_INPUTS = [(torch.tensor(v),) for v in ([0.5, 1.0], [4.0, 4.0], [-9.0, 1.0], [1.0, 2.5])]


def test_nested_breaks_over_objects_two_calls_change_match_python():
    fn, _ = _step_runs(3, counting=False)
    assert_same_result(fn, _STEP_INPUTS, compile=False)


# (dynamo refused it with 'mapping proxy affected by dictionary mutation' until tester33's s04
# fix: `_has_slots` is no longer traced by dynamo)
@pytest.mark.xfail(strict=True, raises=StagingError, reason=(
    "found in session 33, not fixed: under torch.compile, three levels of `if`s in a `for` "
    "whose bodies change two objects stage about 1008 frames deep in dynamo's interpreter; "
    "refused with the StagingError that says so (recursion limit), not run"))
def test_nested_breaks_over_objects_two_calls_change_under_torch_compile():
    fn, _ = _step_runs(3, counting=False)
    assert_same_result(fn, _STEP_INPUTS, staged=False, export=False)


# torch's `_strong_wolfe` bracketing loop (torch/optim/lbfgs.py:55-93), in small: each
# tensor-dependent `break` binds the bracket lists first, so every `if` the breaks nest holds a
# list its branches grow, and probes its branches in full (NOTE [counts of an if's probe]).

def _brackets(levels: int) -> str:
    lines = ["def fn(x):",
             "    t = x.sum()",
             "    i = 0",
             "    while i < 3:"]
    for level in range(levels):
        lines += [f"        count({level})",
                  f"        if t * {level + 2} > {level + 20}:",
                  f"            bracket = [t - {level}, t]",
                  "            break"]
    lines += ["        t = t * 1.5",
              "        i += 1",
              "    else:",
              "        bracket = [t, t]",
              "    return bracket[0] + bracket[1]"]
    return "\n".join(lines)


def _bracket_runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_brackets(levels), {"count": count, "torch": torch})
    return fn, runs


def test_nested_breaks_binding_lists_run_each_body_a_bounded_number_of_times():
    # NOTE [list growth kept] (runtime/staging/torch.py)
    fn, runs = _bracket_runs(5)
    args = (torch.tensor([0.5, 1.0]),)
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert torch.equal(got, want)
    # (each level's `if` was staged in its enclosing one's probe and again in its torch.cond:
    # the innermost body ran 48 times, 3, 6, 12, 24, 48 by depth; now 11)
    assert max(runs.values()) <= 12, runs


_BRACKET_INPUTS = [(torch.tensor(v),) for v in ([0.5, 1.0], [4.0, 4.0], [-9.0, 1.0], [9.0, 2.5])]


def test_nested_breaks_binding_lists_match_python():
    fn, _ = _bracket_runs(3, counting=False)
    assert_same_result(fn, _BRACKET_INPUTS, compile=False)


# Found in session 34: the compile sample had deferred this compile check to `make test-slow`
# since the test came in (session 32), where nobody ran it; run alone, it fails. Not a wrong
# value: dynamo refuses, though not with autoconv's StagingError at the user's line.
@pytest.mark.slow
@pytest.mark.xfail(strict=True, raises=torch._dynamo.exc.UncapturedHigherOrderOpError, reason=(
    "found in session 34, not fixed: under torch.compile, three nested `break`s binding a list "
    "in a `while` make dynamo refuse a torch.cond whose body mutates a dict from outside it "
    "(\"Attempted to mutate ConstDictVariable\", at runtime/operators.py's if_stmt)"))
def test_nested_breaks_binding_lists_under_torch_compile():
    fn, _ = _bracket_runs(3, counting=False)
    assert_same_result(fn, _BRACKET_INPUTS, staged=False, export=False)


# torch's `_strong_wolfe` under torchmin's BFGS (torch/optim/lbfgs.py:55-93), in small: the
# objective is a bound method (`obj_func = sf.dir_evaluate`) whose calls count in its object
# (`sf.nfev += 1`), each `break` binds a bracket list, and the rest of the loop body, calling
# the objective again, nests one staged `if` deeper per `break`. Each `if` found the object
# changed through the method, then its count replaced, in each form of each enclosing `if`,
# whose copies of the object and rebuilt method made every entry new: the innermost body at
# depth d ran about 3^d times (127 at depth 4; BFGS's trace did not end in 15 minutes).

class _Objective:
    def __init__(self):
        self.nfev = 0

    def evaluate(self, x, t):
        self.nfev += 1
        y = x * t
        return (y * y).sum(), y


def _search(levels: int) -> str:
    lines = ["def search(obj_func, x, t):",
             "    f_new, g_new = obj_func(x, t)",
             "    i = 0",
             "    while i < 3:"]
    for level in range(levels):
        lines += [f"        count({level})",
                  f"        if f_new * {level + 1} > {level + 30}:",
                  f"            bracket = [t - {level}, f_new]",
                  "            break",
                  "        f_new, g_new = obj_func(x, t)"]
    lines += ["        t = t * 1.5",
              "        i += 1",
              "    else:",
              "        bracket = [t, f_new]",
              "    return bracket[0] + bracket[1], g_new",
              "",
              "def fn(x):",
              "    sf = _Objective()",
              "    out, g = search(sf.evaluate, x, 1.0)",
              "    return out, g, sf.nfev"]
    return "\n".join(lines)


def _search_runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_search(levels), {"count": count, "_Objective": _Objective})
    return fn, runs


def test_nested_breaks_calling_a_method_that_counts_run_each_body_a_bounded_number_of_times():
    # NOTE [callables of rebuilt objects] and NOTE [carried forms kept]
    # (runtime/staging/restaging.py)
    fn, runs = _search_runs(4)
    args = (torch.tensor([0.5, 1.0]),)
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert all(torch.equal(torch.as_tensor(g), torch.as_tensor(w)) for g, w in zip(got, want))
    # (4, 13, 41, 127 by depth before; now 4, 9, 15, 21: a few runs more per level)
    assert max(runs.values()) <= 24, runs
    assert runs[3] - runs[2] <= 8, runs


_SEARCH_INPUTS = [(torch.tensor(v),) for v in ([0.5, 1.0], [4.0, 4.0], [1.5, 2.0], [0.1, 0.2],
                                               [2.0, 2.5])]


# (2 levels in make test, the model's 3 in make test-slow: NOTE [levels proved in make test])
@pytest.mark.parametrize("levels", [2, 3], ids=lambda n: f"{n}_levels")
def test_nested_breaks_calling_a_method_that_counts_match_python(levels):
    fn, _ = _search_runs(levels, counting=False)
    assert_same_result(fn, _SEARCH_INPUTS, compile=False)


# torch's `_strong_wolfe` closer still (session 35): the step `t` is a Python float on the loop's
# first trip and a 0-d tensor after it (`_cubic_interpolate` returns one), and each `break` binds
# the bracket `[t_prev, t]` of both. What the real program does and the model above did not:
# the loop's first attempt finds the bracket's numbers meeting a tensor (lists.
# NumbersMeetTensor, a failure the restaging verdicts do not keep), and each guard `if` a
# `break` nests, entered from an entry known only by its form (NOTE [carried forms kept]), runs
# its bodies once more for the dtype promotion of `t` (`_Promote`, kept by entry only): the
# operator's runs of a level's body per staging of the level above rise from 1 to 1.1-1.6, as
# in the real program (1.06-1.33 in its bracketing loop), and the innermost bodies ran 6, 14,
# 27, 40 times at depths 1 to 4 (4, 9, 15, 21 above). Most came from each guard `if` finding
# the objective changed through `obj_func`, then its count replaced, only once its attempts had
# run the levels below it (wolfe36 s01): since session 37 such an attempt ends at the next
# statement it enters (NOTE [attempts decided before a nested statement] in
# runtime/staging/restaging.py), and the promotion of `t` is chosen from the `if`'s list probe
# (NOTE [promotions chosen by an if's list probe] in runtime/staging/torch.py): 6, 12, 15, 20.

def _wolfe_search(levels: int) -> str:
    lines = ["def search(obj_func, x, t):",
             "    f_new, g_new = obj_func(x, t)",
             "    t_prev = 0",
             "    i = 0",
             "    while i < 3:"]
    for level in range(levels):
        lines += [f"        count({level})",
                  f"        if f_new * {level + 1} > {level + 30}:",
                  "            bracket = [t_prev, t]",
                  "            break",
                  "        f_new, g_new = obj_func(x, t)"]
    lines += ["        t_prev = t",
              "        t = interpolate(t, f_new)",
              "        i += 1",
              "    else:",
              "        bracket = [t_prev, t]",
              "    return bracket[0] + bracket[1], g_new",
              "",
              "def fn(x):",
              "    sf = _Objective()",
              "    out, g = search(sf.evaluate, x, 1.0)",
              "    return out, g, sf.nfev"]
    return "\n".join(lines)


def _interpolate(t, f_new):
    # (a tensor, whatever `t` is: as `_cubic_interpolate`'s `min(max(min_pos, ...), ...)`)
    return torch.minimum(f_new * 0 + t * 1.5, f_new + 100)


def _wolfe_runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_wolfe_search(levels), {
        "count": count, "_Objective": _Objective, "interpolate": _interpolate, "torch": torch})
    return fn, runs


def test_nested_breaks_binding_a_step_that_becomes_a_tensor_run_each_body_a_bounded_number_of_times():
    fn, runs = _wolfe_runs(4)
    args = (torch.tensor([0.5, 1.0]),)
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert all(torch.equal(torch.as_tensor(g), torch.as_tensor(w)) for g, w in zip(got, want))
    # (6, 14, 27, 40 by depth before session 37: NOTE [attempts decided before a nested
    # statement] in runtime/staging/restaging.py, 6, 14, 20, 28; NOTE [promotions chosen by an
    # if's list probe] in runtime/staging/torch.py, 6, 12, 15, 20. As the model above: a few
    # runs more per level)
    assert max(runs.values()) <= 24, runs
    assert runs[3] - runs[2] <= 8, runs


def test_nested_breaks_binding_a_step_that_becomes_a_tensor_match_python():
    fn, _ = _wolfe_runs(3, counting=False)
    assert_same_result(fn, _SEARCH_INPUTS, compile=False)


# One `if` (a function's, called three times per trip) entered with an int and a float32
# tensor, then with a float and a float64 tensor, promotes differently each time: whatever the
# restaging verdicts keep of one entry's promotion (sessions 35-36 tried keeping it by form and
# by the round's description), the other entry must not take it.

_PROMOTING = """
def step(v, x):
    if x.sum() > 0:
        v = v + 1
    else:
        v = x.sum() * 2
    return v

def fn(x):
    i = torch.tensor(0)
    a, b = 0, 0.5
    while i < 3:
        a = step(a, x)
        b = step(b, x.double())
        a = step(a, x)
        i += 1
    return a, b
"""

_PROMOTING_INPUTS = [(torch.tensor(v),) for v in ([0.5, 1.0], [-4.0, 1.0], [-1.0, 0.25])]


def test_one_if_promoting_differently_by_entry_matches_python():
    fn = function_from_source(_PROMOTING, {"torch": torch})
    assert_same_result(fn, _PROMOTING_INPUTS, compile=False)


# NOTE [attempts decided before a nested statement] (runtime/staging/restaging.py): an attempt
# whose body has changed an object it only reads (through a bound method) ends at the next
# staged statement it enters. Where the user's own handler catches every exception around that
# statement, or the body undoes the change before its end, the attempt must still end as the
# change decided, never succeed with the handler's fallback or without the object carried.

_CAUGHT_AROUND_A_NESTED_IF = """
def fn(x):
    sf = _Objective()
    evaluate = sf.evaluate
    out = x.sum()
    if x.sum() > 1:
        f, g = evaluate(x, 2.0)
        try:
            if f > 3:
                out = f + 1
            else:
                out = f - 1
        except Exception:
            out = f * 0
    return out, sf.nfev
"""

_UNDONE_AFTER_A_NESTED_IF = """
def fn(x):
    tally = _Tally()
    bump = tally.bump
    out = x.sum()
    if x.sum() > 1:
        bump(1)
        if out > 3:
            out = out + 1
        else:
            out = out - 1
        bump(-1)
    return out, tally.n
"""


class _Tally:
    def __init__(self):
        self.n = 0

    def bump(self, k):
        self.n += k

_DECIDED_INPUTS = [(torch.tensor(v),) for v in ([0.5, 1.0], [0.1, 0.2], [2.0, 2.5], [0.4, 0.8])]


@pytest.mark.parametrize("source", [_CAUGHT_AROUND_A_NESTED_IF, _UNDONE_AFTER_A_NESTED_IF],
                         ids=["caught_around_a_nested_if", "undone_after_a_nested_if"])
def test_an_attempt_decided_before_a_nested_if_matches_python(source):
    fn = function_from_source(source, {"_Objective": _Objective, "_Tally": _Tally,
                                       "torch": torch})
    assert_same_result(fn, _DECIDED_INPUTS, compile=False)



# NOTE [replaced records of an enclosing carry] (runtime/staging/objects.py): the loop body
# changes the controller it only reads (`self.h *= factor`), so the loop is staged again with
# it moved into the state, in a second `carry` around the first one's wrappers; the first one's
# record of `info["steps"]` replaced was taken by the second, which carried the wrong slot and
# refused "`info['steps']` is replaced" (before session 42's guard, it staged again one level
# deeper each time, until the stack overflowed: k-diffusion's `DPMSolver.dpm_solver_adaptive`,
# tests/real/test_tester43.py).
_proposals = collections.Counter()
_counting = []  # (on only for the count below: a run of the graph counts nothing)


@autoconv.do_not_convert
def _count_proposal():
    if _counting:
        _proposals["propose"] += 1


class _StepController:
    """k-diffusion's `PIDStepSizeController` in brief: a float read from the error, its
    `math.atan`, the step size `h` scaled by it in place."""

    def __init__(self, h):
        self.h = h

    def propose(self, error):
        _count_proposal()
        factor = 1 + math.atan(1 / (float(error) + 1e-8) - 1)
        self.h *= factor
        return factor >= 0.81


def _adaptive_counts(x, t_end):
    pid = _StepController(0.3)
    s = torch.zeros(())
    info = {"steps": 0, "n_accept": 0}
    while s < t_end:
        x_new = x * torch.exp(-torch.minimum(t_end - s, torch.tensor(pid.h)))
        if pid.propose((x_new - x).abs().sum()):
            x, s = x_new, s + pid.h
            info["n_accept"] += 1
        info["steps"] += 1
    return x, s, info


_ADAPTIVE_INPUTS = [(torch.tensor(x), torch.tensor(t)) for x, t in (
    ([1.0, -2.0], 1.0), ([10.0, -8.0], 1.0), ([0.1, 0.3], 2.0), ([3.0, 0.0], 0.0))]


def test_counts_in_a_dict_under_a_loop_carrying_a_changed_controller_match_python():
    # (steps rejected on the second, none taken on the last: each count a tensor the loop
    # carries, as it carries a local's)
    assert [_adaptive_counts(*args)[2] for args in _ADAPTIVE_INPUTS] == [
        {"steps": 3, "n_accept": 3}, {"steps": 14, "n_accept": 12}, {"steps": 2, "n_accept": 2},
        {"steps": 0, "n_accept": 0}]
    _proposals.clear()
    _counting.append(True)
    try:
        autoconv.autoconv(_adaptive_counts).get_concrete_function(*_ADAPTIVE_INPUTS[0])
    finally:
        _counting.clear()
    assert _proposals["propose"] <= 12, _proposals
    assert_same_result(_adaptive_counts, _ADAPTIVE_INPUTS)


# hang55: fuzz seed 5403's program 26 (an `elif` whose branch calls a counting object and a
# method counting in a list, under two staged loops) did not trace in 60 s of CPU. Its kind,
# with no loop: an `if/elif` chain `levels` tests long before such a branch. Each level's
# statement finds the objects changed (ChangedInput) and their numbers replaced
# (_ReplacedRecord) one per attempt, each attempt running the chain below it again, and the
# level below, staged inside the enclosing statement's last form (the objects carried), meets
# an entry no verdict is kept for and finds them again: the body `levels` deep ran 7, 15, 30
# times at depths 0, 1, 2 (the innermost 9, 22, 49 for chains of 1, 2, 3; 4.2 s of CPU for 2
# levels, 12 s for 3). Issue 10 item 3 asks for at most one run more per failed staging.

class _Calls:
    def __init__(self):
        self.calls = [0]
        self.seen = {"n": 0}
        self.n = 0

    def __call__(self, t):
        self.calls[0] += 1
        self.seen["n"] = self.seen["n"] + 2
        if t > -1:
            self.n += 1
        return t % 7 + self.calls[0] % 3


class _Meter:
    def __init__(self, state):
        self.state = state

    def tick(self, t):
        self.state[0] += 1
        return t % 4


def _counting_chain(levels: int) -> str:
    lines = ["def fn(x, y):", "    o = None", "    a = y", "    cnt = Calls()",
             "    state = [0]", "    tick = Meter(state).tick"]
    for level in range(levels):
        lines += [f"    {'if' if level == 0 else 'elif'} x > {5 + level}:",
                  f"        count({level})", f"        a = a + {level}"]
    lines += ["    elif o is None or o >= y:", f"        count({levels})",
              "        a = (tick(y) - cnt(y)) % 100", "        o = a - 3",
              "    else:", "        a = a * 2",
              "    return (a + (torch.tensor(0) if o is None else o) + cnt.calls[0]"
              " + 10 * cnt.seen['n'] + 100 * cnt.n + 1000 * state[0])"]
    return "\n".join(lines)


def _counting_chain_runs(levels: int, counting: bool = True):
    count, runs = _counter(counting)
    fn = function_from_source(_counting_chain(levels), {
        "count": count, "torch": torch, "Calls": _Calls, "Meter": _Meter})
    return fn, runs


def test_an_elif_chain_calling_counting_objects_matches_python():
    fn, _ = _counting_chain_runs(2, counting=False)
    inputs = [(torch.tensor(x), torch.tensor(y)) for x, y in ((1, 2), (9, 2), (6, 2), (1, -5))]
    assert_same_result(fn, inputs, compile=False)


def test_an_optional_the_enclosing_form_carries_keeps_the_nested_statements_form():
    # hang55b: in the outer `if`'s last form `o` (None before it, bound under the last `elif`)
    # is a StagedOptional, and the nested `elif`s met a form no staging had kept, taking their
    # failed attempts again (the chain of 2: 7, 15, 22 runs by depth, now 7, 14, 20). NOTE
    # [optionals in a form] in restaging.py.
    from autoconv_runtime.staging import optionals, restaging

    def body(o, cnt):
        return o

    optional = optionals.StagedOptional(torch.tensor(False), torch.tensor(1), "o")
    cnt = _Calls()
    assert (restaging._form_key((body,), (None, cnt))
            == restaging._form_key((body,), (optional, cnt)))
    assert (restaging._form_key((body,), (torch.tensor(1), cnt))
            != restaging._form_key((body,), (optional, cnt)))


def test_an_elif_chain_calling_counting_objects_follows_its_forms_kept_verdicts():
    # hang56: in the enclosing statements' later forms each level met a new entry and found
    # again what its staging from another entry had kept: the `_GiveBack` of `cnt.n` (NOTE
    # [tensors given back by a statement's form] in objects.py), a `_ReplacedRecord` of a
    # number that form carries as a tensor already (NOTE [numbers an enclosing form carries])
    # and the Optioned of `o` (NOTE [retabled slots kept] in restaging.py). The chain of 3 ran
    # its bodies 7, 14, 27, 43 times by depth, now 7, 13, 19, 21: the innermost a few runs
    # more than the level above it, not about twice as many.
    fn, runs = _counting_chain_runs(3)
    args = (torch.tensor(1), torch.tensor(2))
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert torch.equal(got, want)
    assert runs[3] <= runs[2] + 4, runs


@pytest.mark.xfail(strict=True, reason="hang55: each elif level runs the next one more than "
                   "once (7, 13, 15 runs by depth): open, issue 10 item 3")
def test_an_elif_chain_calling_counting_objects_runs_each_body_a_bounded_number_of_times():
    fn, runs = _counting_chain_runs(2)
    args = (torch.tensor(1), torch.tensor(2))
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert torch.equal(got, want)
    # (today 7, 13, 15 by depth: 7, 14, 20 before hang56)
    assert runs[1] <= runs[0] + 4, runs
