"""Test configuration: tests import their helpers from tests/support.py."""

import gc
import os
import signal
import sys
import threading

# NOTE [the suite's gc thresholds]: Python's default (700, 10, 10) ran a full collection of an
# xdist worker's heap (torch, the libraries of tests/real, dynamo's caches: about half a
# million objects) every few tests, each a tenth of a second or more: 13% of the CPU of
# tests/reference/test_loops.py in one process went to the collector, 4.4 s of 34 s, 3.5 s of
# it full collections. A young generation of 10,000 objects lets the garbage of one staging
# or compile die there instead of being promoted to the old generation, whose growth is what
# triggers a full collection: 2.1 s of the same run (docs/testing.md, "The suite's time
# (session 42)"). Only when the collector runs changes; what it frees does not, and a test
# that needs a collection at a point (the memory checks of test_hygiene.py) calls
# gc.collect() itself. Set before torch is imported, so that collection benefits too.
gc.set_threshold(10_000, 20, 10)

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

import compile_sample  # noqa: E402
import support  # noqa: E402  (tests/ is on the path)

# Hypothesis's default deadline (200 ms an example) fails a property on the machine's load, not
# on its value: test_runtime_properties failed so at load 20 beside the helpers' runs (session
# 51). A hang is caught by the suite's own time-outs instead.
try:
    import hypothesis  # noqa: E402

    hypothesis.settings.register_profile("autoconv", deadline=None)
    hypothesis.settings.load_profile("autoconv")
except ImportError:  # (hypothesis is in the test extra; its tests skip without it)
    pass


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (as AUTOCONV_SLOW=1 does)")


def _run_slow(config) -> bool:
    return config.getoption("--run-slow") or os.environ.get("AUTOCONV_SLOW") == "1"


# tests/slow_tests.txt: the tests measured too slow for `make test` (docs/testing.md, "Suite
# time"), each with the mark it gets: `slow_compile` (make test runs its other modes) or `slow`.
SLOW_TESTS = os.path.join(os.path.dirname(__file__), "slow_tests.txt")


def listed_slow_tests(path: str = SLOW_TESTS) -> dict:
    """{node id: "slow" or "slow_compile"} from `path`: lines `MARK SECONDS NODEID`, `#`
    comments. Raises ValueError naming the line for a mark that is neither."""
    listed = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split(None, 2)
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("slow", "slow_compile"):
                raise ValueError(f"{path}:{number}: expected 'slow|slow_compile SECONDS NODEID', "
                                 f"got {line.strip()!r}")
            listed[fields[2].strip()] = fields[0]
    return listed


# NOTE [one export per library file]: session 54 measured tests/real's exports (export, save and
# load) at about half the CPU of its tests that check through support without a compile. A test
# of tests/real holds a finding in a published library's code; where that finding was replay's
# (a value or a refusal of autoconv's trace, "right in every mode when written", a control), its
# export proves what the file's other exports and the families' one export per kind prove (NOTE
# [one export per kind] in support.py). tests/deferred_exports.txt lists those, read by each
# test: its export is `make test-slow`'s (mark `slow_export`); a finding of torch.export or
# torch.compile, a refusal, and one test of each file keep theirs (docs/testing.md, session 54).
DEFERRED_EXPORTS = os.path.join(os.path.dirname(__file__), "deferred_exports.txt")


def listed_deferred_exports(path: str = DEFERRED_EXPORTS) -> frozenset:
    """The test ids (file::function, or with the case) `path` lists, one a line, `#` comments.
    Raises ValueError naming the line for one that is not a test id of tests/real."""
    listed = set()
    with open(path) as f:
        for number, line in enumerate(f, 1):
            node_id = line.split("#", 1)[0].strip()
            if not node_id:
                continue
            if not node_id.startswith("tests/real/") or "::" not in node_id or " " in node_id:
                raise ValueError(f"{path}:{number}: expected a test id of tests/real, "
                                 f"got {line.strip()!r}")
            listed.add(node_id)
    return frozenset(listed)


def _defers_its_export(item, listed: frozenset) -> bool:
    return item.nodeid in listed or item.nodeid.split("[", 1)[0] in listed


@pytest.hookimpl(tryfirst=True)  # (before `-m` deselects by the marks added here)
def pytest_collection_modifyitems(config, items):
    # The compile sample of the construct families (tests/compile_sample.py): one test of each
    # kind compiles in make test, the others are slow_compile; so are the tests that do not
    # compile whose export's save and load a test of their kind makes (its rule 4). A test of
    # the measured list is never that one (the list's tests were measured slow; its kind goes
    # to the next cheapest).
    listed = listed_slow_tests()
    sampled = compile_sample.select(items, listed=frozenset(listed))
    for item, kind, first in sampled:
        item.compile_sample = (kind, first)
        if kind is not None and not first:
            item.add_marker(pytest.mark.slow_compile)
    # NOTE [one export per kind] (support.py): a deferred test leaves its export out too where a
    # test of its kind exports in make test
    exported = compile_sample.exported_kinds(sampled)
    for item, kind, first in sampled:
        item.defers_export = not first and compile_sample.defers_export(item, kind, exported)
    # NOTE [one export per library file]
    deferred_exports = listed_deferred_exports()
    for item in items:
        if _defers_its_export(item, deferred_exports):
            item.defers_export = True
            item.add_marker(pytest.mark.slow_export)
    for item in items:
        mark = listed.get(item.nodeid)
        if mark == "slow_compile" and item.get_closest_marker("xfail") is not None:
            mark = "slow"  # (an xfail whose compile is deferred would pass: run it whole, later)
        if mark is not None and item.get_closest_marker(mark) is None:
            item.add_marker(getattr(pytest.mark, mark))
    slow = _run_slow(config)
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow or AUTOCONV_SLOW=1")
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)
        if "cuda" in item.keywords and not torch.cuda.is_available() and not _on_cpu(item):
            item.add_marker(skip_cuda)


def _on_cpu(item) -> bool:
    """A `cuda` test that takes tests/test_cuda.py's `device` fixture runs on the CPU under
    AUTOCONV_TEST_DEVICE=cpu (its logic checked on a machine without a GPU)."""
    return os.environ.get("AUTOCONV_TEST_DEVICE") == "cpu" and \
        "device" in getattr(item, "fixturenames", ())


@pytest.fixture(autouse=True)
def _time_limit():
    """AUTOCONV_TEST_TIMEOUT=S fails a test that runs past S seconds (the device check's runs,
    on a machine held by the minute, where pytest-timeout may be missing): SIGALRM raises in the
    test's Python code, so the run goes on to the next test."""
    seconds = int(os.environ.get("AUTOCONV_TEST_TIMEOUT", "0"))
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        pytest.fail(f"ran past AUTOCONV_TEST_TIMEOUT={seconds} s", pytrace=True)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _compile_skipped_at_the_call(model=None, **kwargs):
    """torch.compile in a slow_compile test under `make test`: calling the compiled function
    skips the rest of the test (`make test-slow` runs it; pytest.raises lets the skip through).
    Not the function itself run eagerly: what a compiled run gives or raises is the compile's
    (a refusal, a warning, a staged constant)."""
    def skip(*args, **kwargs):
        pytest.skip("slow_compile: the compiled run and what follows run with --run-slow "
                    "(make test-slow)")
    return skip if model is not None else (lambda m: skip)


@pytest.fixture(autouse=True)
def _slow_compile(request, monkeypatch):
    """A test marked `slow_compile` runs its torch.compile check only with --run-slow; `make
    test` runs its other modes (compile_sample.deferral): support.assert_same_result leaves its
    compile out (and, for a family test of a kind another test exports in make test, its
    export: compile_sample's rule 5), a test that is a compile check alone is skipped, and a
    test that calls torch.compile itself is skipped at its first call of the compiled function.
    A test marked `slow_export` (tests/deferred_exports.txt) leaves its export out the same way
    and keeps its compile (NOTE [one export per library file]). Such a test
    repeats a kind of construct that a compiled test of its file covers in `make test`
    (tests/compile_sample.py; the compile is most of a test's time: dynamo traces autoconv's
    runtime, docs/testing.md)."""
    compile_deferred = request.node.get_closest_marker("slow_compile") is not None
    export_deferred = request.node.get_closest_marker("slow_export") is not None
    if not (compile_deferred or export_deferred) or _run_slow(request.config):
        yield
        return
    if compile_deferred and compile_sample.deferral(request.node) == "skip":
        pytest.skip("slow_compile: this compile check runs with --run-slow (make test-slow)")
    modules = _support_modules()
    for module in modules:
        module.defer_compile = compile_deferred
        module.defer_export = getattr(request.node, "defers_export", False)
    if compile_deferred:
        monkeypatch.setattr(torch, "compile", _compile_skipped_at_the_call)
    try:
        yield
    finally:
        for module in modules:
            module.defer_compile = module.defer_export = False


def _support_modules() -> list:
    """tests/support.py as this file imports it (`support`) and as `from tests.support import`
    does (tests/real/, six reference files): tests/ is no package, so they are two module
    objects, each with its own `defer_compile`. Setting the first alone left the second's
    assert_same_result compiling, skipped at the call by the patched torch.compile before the
    rest of its test ran, and its export saved and loaded (session 44)."""
    return [m for m in (support, sys.modules.get("tests.support")) if m is not None]
