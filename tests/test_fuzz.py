"""The differential fuzzer in CI: a small fixed sample, and every bug it found as a regression.

The sample's seed is fixed, so that CI judges a change and not the day it runs on; new streams are
the job of `make fuzz` (a seed from the clock unless SEED is given), whose finds come here as
regressions. `python -m tests.fuzz --seed S --n N` reproduces a stream. Regressions are the minimised
programs in tests/fuzz/regressions/; known-unfixed ones set `XFAIL` to the reason and are strict
xfails, so a fix makes them fail until the XFAIL line is removed.
"""

import glob
import os
import time

import pytest

from fuzz import check, load_program, run_fuzz
from fuzz.runner import REPEAT, _time_limit, _Timeout

REGRESSIONS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fuzz", "regressions",
                                            "*.py")))
# Programs per CI run (~0.3 s each on 2 cores); under --run-slow (make test-slow) every
# COMPILE_EVERY-th also under torch.compile(fullgraph=True), where dynamo traces the bodies
# (program 0 alone took 35 s at load 9; the regressions above compile in make test).
SEED = 20261129
SAMPLE = 25
COMPILE_EVERY = 20


def _regression_params():
    for path in REGRESSIONS:
        _, _, xfail = load_program(path)
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        yield pytest.param(path, id=os.path.basename(path)[:-3], marks=marks)


@pytest.mark.parametrize("path", list(_regression_params()))
def test_regression(path):
    source, inputs, _ = load_program(path)
    namespace: dict = {}
    exec(compile(source, path, "exec"), namespace)
    # compile=True: the program also runs under torch.compile(fullgraph=True), where dynamo,
    # not make_fx, traces the bodies of cond / while_loop; a program whose compilation takes
    # too long for the suite says `COMPILE = False` (and why). A program found at the export
    # stage says `EXPORT = True`: it is also exported, saved and loaded (a few seconds each). A
    # program whose check takes longer than the runner's limit of CPU time (for hangs) and is
    # right says `TIME_LIMIT = <seconds>`, with its measured time; `COMPILE_TIME_LIMIT` is its
    # compile stage's (NOTE [the compile stage's own time limit] in tests/fuzz/runner.py).
    failure = check(source, inputs, filename=path, compile=namespace.get("COMPILE", True),
                    export=namespace.get("EXPORT", False),
                    time_limit=namespace.get("TIME_LIMIT", 60.0),
                    compile_time_limit=namespace.get("COMPILE_TIME_LIMIT"))
    assert failure is None, f"{os.path.basename(path)}: {failure}\n{failure.trace}"


def _assert_sample_passes(compile_every):
    # The time limit is wall time, for hangs: a compiled program of the sample (program 0, a
    # while growing a list beside a helper with try / finally) takes 35 s at load 9 on two
    # cores, and went past the default 60 s beside the other worker of `-n 2`.
    summary = run_fuzz(SAMPLE, SEED, size=5, compile_every=compile_every, time_limit=180)
    details = "\n".join(f"  program {p.index}: {f}" for p, f in summary.failures)
    assert not summary.failures, f"{summary.report()}\n{details}"


def test_random_sample():
    _assert_sample_passes(compile_every=0)


@pytest.mark.slow
def test_random_sample_compiled():
    # The same sample, programs 0 and 20 also under torch.compile (docs/testing.md).
    _assert_sample_passes(compile_every=COMPILE_EVERY)


def test_generator_is_deterministic_and_valid():
    from fuzz import generate, prepare

    first = [generate(3, i).source for i in range(20)]
    assert first == [generate(3, i).source for i in range(20)]
    for i in range(20):
        assert prepare(generate(3, i))  # plain Python runs every program on its inputs


def test_a_seed_gives_the_programs_it_gave_without_extras():
    # docs/fuzzing.md records seeds and program numbers to rerun: a construct added to the
    # generator goes behind `extras` (the CLI's `--with`) so that these stay the same (the
    # first 20 programs of seed 3, as every session since 38 generated them).
    import hashlib

    from fuzz import generate

    sources = "".join(generate(3, i).source for i in range(20))
    assert hashlib.sha256(sources.encode()).hexdigest() == (
        "57fe436929f225f0e9538fe36a37964ff27eb04dbc297cc5184dfaa67d48586a")


def test_closure_extra_reads_the_callers_locals_and_is_valid():
    from fuzz import generate, prepare

    programs = [generate(3, i, extras={"closure"}) for i in range(20)]
    assert [p.source for p in programs] == [generate(3, i, extras={"closure"}).source
                                            for i in range(20)]
    used = [p for p in programs if "closure" in p.features]
    assert used and all("def inner(t):" in p.source for p in used)
    for program in used:
        assert prepare(program)
    with pytest.raises(ValueError, match="unknown extra"):
        generate(3, 0, extras={"nonlocal"})
    # the report's reproduce line asks for the same programs
    from fuzz import Failure, Summary

    summary = Summary(3, extras=frozenset({"closure"}))
    summary.failures.append((programs[7], Failure("timeout", "compile", "ran past the limit")))
    assert summary.report().endswith("python -m tests.fuzz --seed 3 --with closure --only 7")


# Session 53's extras, each with a text its programs hold where they use it
_SESSION53_EXTRAS = {"optional": "o = None", "walrus": ":=", "match": "match "}


@pytest.mark.parametrize("extra", sorted(_SESSION53_EXTRAS))
def test_session53_extra_is_deterministic_and_valid(extra):
    from fuzz import generate, prepare

    programs = [generate(3, i, extras={extra}) for i in range(30)]
    assert [p.source for p in programs] == [generate(3, i, extras={extra}).source
                                            for i in range(30)]
    used = [p for p in programs if extra in p.features]
    assert used and all(_SESSION53_EXTRAS[extra] in p.source for p in used)
    for program in used:
        assert prepare(program)  # plain Python runs it on its inputs


def test_session53_extras_agree_with_replay():
    # Seed 3's programs 3, 6 and 10 (size 5) with all three extras: `match` statements (one in
    # a loop, capturing `b` under a guard), walrus tests in a `while` over an object and a dict,
    # `o` set and tested in a staged loop's test (the traced graph only: about 2 s of CPU).
    from fuzz import generate, prepare

    extras = {"optional", "walrus", "match"}
    for index in (3, 6, 10):
        program = generate(3, index, size=5, extras=extras)
        assert program.features & extras
        assert check(program.source, prepare(program)) is None


def test_documented_refusal_of_an_optional_under_compile_is_no_crash():
    # `--with optional`: `o` None on one path of a staged `if`; torch.compile refuses it at the
    # statement, as README documents ("under torch.compile the None is still refused"); the
    # graph and the export give Python's values, 4 on (1, 2, 0) and 7 on (-1, 2, 0).
    source = (
        "import torch\n"
        "def fuzz_fn(x, y, k):\n"
        "    o = None\n"
        "    if x > 0:\n"
        "        o = y + 0\n"
        "    return y + (torch.tensor(5) if o is None else o % 7)\n")
    assert check(source, [(1, 2, 0), (-1, 2, 0)], compile=True, export=True) is None


def test_documented_refusal_of_a_closure_read_changed_under_compile_is_no_crash():
    # Fuzz seed 4803 --with closure, program 20: `inner` reads `q`, which a staged body
    # changes; under torch.compile autoconv refuses that at the statement, as README documents
    # ("Closures see variables' current values ..."); its own graphs and export give Python's
    # values (3 s of CPU, the export and compile included).
    source = (
        "def fuzz_fn(x, y, k):\n"
        "    q = 1\n\n"
        "    def inner(t):\n"
        "        return t % 5 + q % 3\n"
        "    if x > 0:\n"
        "        q = q + 1\n"
        "    return inner(x + 0)\n")
    assert check(source, [(1, 0, 0), (-1, 0, 0)], compile=True, export=True) is None


def test_only_checks_the_programs_of_the_stream_it_names(monkeypatch):
    # (`python -m tests.fuzz --seed S --only 140`: one program of a run, as the run checked it,
    # every tenth compiled and exported too; the report's reproduce line names the failures)
    import fuzz
    from fuzz import generate, run_fuzz
    from fuzz.__main__ import main

    checked = []

    def check(source, inputs, **modes):
        checked.append((source, modes["compile"], modes["export"]))
        return fuzz.Failure("timeout", "compile", "ran past the limit") if modes["compile"] \
            else None

    monkeypatch.setattr(fuzz, "check", check)
    summary = run_fuzz(0, 3, size=5, compile_every=10, only=[7, 20])
    assert checked == [(generate(3, 7, 5).source, False, False),
                       (generate(3, 20, 5).source, True, True)]
    assert summary.programs == 2
    assert summary.report().endswith("reproduce: python -m tests.fuzz --seed 3 --only 20")
    checked.clear()
    assert main(["--seed", "3", "--size", "5", "--only", "7", "--minimize-budget", "0",
                 "--out", ""]) == 0
    assert checked == [(generate(3, 7, 5).source, False, False)]
    checked.clear()  # (`--with closure`: program 6 of that stream calls the closure)
    assert main(["--seed", "3", "--size", "5", "--only", "6", "--minimize-budget", "0",
                 "--out", "", "--with", "closure"]) == 0
    assert checked == [(generate(3, 6, 5, extras={"closure"}).source, False, False)]
    assert "def inner(t):" in checked[0][0]


# Found by the fuzzer (seed 2026, program 30, and seed 2027, program 11): the second function
# fails only after the first, which has the same shape, was traced in the same process.
_FIRST = """def fuzz_fn(x, y, k):
    if x > 0:
        pass
    elif y < 2 or x > 3:
        return (x, y)
    return (x + 1, y)
"""
_SECOND = """def fuzz_fn(x, y, k):
    if x > 0:
        pass
    elif y < 2 or x > 3:
        return y
    return (x if x >= 2 else y) * -1
"""


def test_similar_functions_traced_one_after_the_other():
    # The second used to fail in dynamo ("lift_tracked_freevar_to_input should not be called on
    # root SubgraphTracer") when torch.cond ran dynamo inside autoconv's make_fx trace.
    inputs = [(0, 0, 2), (1, 1, 2), (-1, 5, 2)]
    assert check(_FIRST, inputs, compile=True) is None
    failure = check(_SECOND, inputs, reset=False, compile=True)
    assert failure is None, str(failure)


# Over-minimised programs of fuzz seed 1 (programs 5, 18 and 68): each failed the same way as
# the original, but only by reading a name no statement binds, or by binding `m` outside a loop.
_OVER_MINIMISED = {
    "q read, never bound": """def fuzz_fn(x, y, k):
    if 0:
        for i0 in 0:
            m = 0
    elif 2 == q:
        q += 0
    return m
""",
    "m bound outside a loop": """def fuzz_fn(x, y, k):
    if 0:
        m = 0
    elif 0 == y:
        raise ValueError('fuzz')
    return m
""",
    "guard deleted": """def fuzz_fn(x, y, k):
    if x >= 0:
        while x.item() >= 0 and guard1 < 3:
            guard1 += 1
    return x
""",
    "constants where Python raises TypeError": """def fuzz_fn(x, y, k):
    if x > 0:
        raise 0('fuzz')
    return x + (0 == 0[1])
""",
}


@pytest.mark.parametrize("name", list(_OVER_MINIMISED))
def test_minimiser_keeps_programs_valid(name):
    import ast

    from fuzz.minimize import _valid

    assert not _valid(ast.parse(_OVER_MINIMISED[name]))


def test_minimiser_accepts_what_the_generator_writes():
    import ast

    from fuzz import generate
    from fuzz.minimize import _valid

    for i in range(60):
        assert _valid(ast.parse(generate(1, i).source)), i


def test_unbound_read_of_another_name_is_invalid():
    # Python's UnboundLocalError is a reference outcome only for `m`, which the generator leaves
    # unbound on purpose (and for its own `raise UnboundLocalError('fuzz')`).
    from fuzz import Invalid

    with pytest.raises(Invalid, match="UnboundLocalError"):
        check(_OVER_MINIMISED["q read, never bound"], [(0, 0, 1)])
    assert check("""def fuzz_fn(x, y, k):
    for i in range(x % 3):
        m = x + 1
    return y + m
""", [(0, 0, 1), (1, 0, 1)]) is None


def test_time_out_inside_a_staged_branch_is_a_time_out():
    # Fuzz seed 1, program 230 at load 16: the alarm fired while a staged branch was traced,
    # autoconv took it for the branch's own exception and specialised the `if` (GuardFailed at
    # replay, counted as an internal error). The runner's time-out is not an Exception.
    source = """def fuzz_fn(x, y, k):
    a = x + 1
    if a > y:
        for i0 in range(y % 3):
            a += 1
    return a
"""
    failure = check(source, [(0, 0, 1), (3, 1, 1)], time_limit=0.01)
    assert failure is not None and failure.category == "timeout", str(failure)


def test_the_compile_stage_has_its_own_time_limit():
    # NOTE [the compile stage's own time limit]: a trace and replay well within `time_limit`,
    # then a compile past its own (a hundredth of a second) is a time-out of the compile stage.
    source = """def fuzz_fn(x, y, k):
    a = x + 1
    if a > y:
        a = a - 2
    return a
"""
    failure = check(source, [(0, 0, 1), (3, 1, 1)], compile=True, time_limit=60,
                    compile_time_limit=0.01)
    assert failure is not None and (failure.category, failure.stage) == ("timeout", "compile"), \
        str(failure)


class _BurnsOnCollection:
    """Burns `seconds` of CPU in its finaliser, where a raised exception is printed and dropped
    (as session 42's alarm was, in one of torch's weakref finalisers)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __del__(self):
        end = time.process_time() + self.seconds
        while time.process_time() < end:
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_alarm_swallowed_by_a_finaliser_still_ends_the_program():
    # NOTE [a time limit no finaliser can swallow] in tests/fuzz/runner.py
    start = time.process_time()
    with pytest.raises(_Timeout):
        with _time_limit(0.05):
            _BurnsOnCollection(0.3)  # (collected at once, the alarm fires inside)
            while time.process_time() < start + 30:
                pass
    assert time.process_time() - start < 0.3 + 2 * REPEAT + 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_program_that_ends_after_a_swallowed_alarm_is_a_time_out():
    with pytest.raises(_Timeout):
        with _time_limit(0.05):
            _BurnsOnCollection(0.3)


_ARGUMENT_UPDATED_AFTER_A_CHOICE = """def fuzz_fn(x, y, k):
    b = torch.tensor(2)
    if 1 > b:
        {name} = b + 5
    guard0 = 0
    while guard0 < 3:
        guard0 += 1
        {name} += 1
    return x + {name}
"""


def test_documented_refusal_of_an_argument_updated_after_a_choice_is_no_crash():
    # Fuzz seed 24, programs 29, 95, 96, 107: `y` is the caller's tensor on the paths the
    # staged `if` did not take, then updated in place inside a loop that rebinds it. autoconv
    # refuses it (README, NOTE [in-place updates of a choice]); the runner takes that refusal
    # for an argument as the honest outcome, and nothing else.
    import torch

    import autoconv
    from autoconv_runtime import StagingError
    from fuzz import define, forget

    source = _ARGUMENT_UPDATED_AFTER_A_CHOICE.format(name="y")
    fn = define(source)
    try:
        with pytest.raises(StagingError, match="`y` is updated in place and rebound inside"):
            autoconv.autoconv(fn)(torch.tensor(3), torch.tensor(-2), 2)
    finally:
        forget(fn)
    assert check(source, [(3, -2, 2), (0, 0, 2)]) is None
    # (a local, not an argument: the generator never shares a local's tensor, so the same
    # refusal would be a crash; here the local `c` holds the argument's tensor)
    local = source.replace("    b = torch.tensor(2)\n", "    b = torch.tensor(2)\n    c = y\n"
                           ).replace("y = b + 5", "c = b + 5").replace("y += 1", "c += 1"
                                                                       ).replace("x + y", "x + c")
    failure = check(local, [(3, -2, 2), (0, 0, 2)])
    assert failure is not None and failure.category == "crash", str(failure)


def test_export_stage_runs_the_saved_program(monkeypatch):
    # Issue 10 item 6: every compile_every-th program is also exported (strict=False), saved,
    # loaded and run on the program's inputs; a graph raise comes back as RuntimeError.
    from fuzz import runner

    source = """def fuzz_fn(x, y, k):
    if x > 0:
        raise ValueError('fuzz')
    return y + k
"""
    assert check(source, [(0, 1, 2), (3, 1, 2), (-3, 4, 2)], export=True) is None
    # a saved program that disagrees is a mismatch at the export stage
    monkeypatch.setattr(runner, "_exported", lambda fn, row: lambda x, y, k: y)
    failure = check(source, [(0, 1, 2)], export=True)
    assert failure is not None and (failure.category, failure.stage) == ("mismatch", "export")
