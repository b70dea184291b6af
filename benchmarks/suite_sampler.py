"""Where the suite's CPU goes, test by test: a pytest plugin sampling the stack every 5 ms of CPU.

    OMP_NUM_THREADS=1 PYTHONPATH=benchmarks python -m pytest -p no:xdist -p suite_sampler -q tests/reference/test_loops.py
    SAMPLER_OUT=/tmp/samples.txt SAMPLER_TOP=40 ...

At the end it prints each phase's share of the samples (the outermost phase on the stack wins:
a probe inside torch.export counts as the export's), the functions with the most samples
(inclusive: a function counts once per sample where it is on the stack) and the tests with the
most CPU. A SIGPROF timer (ITIMER_PROF: user + sys of the process), so the figures hold under
load. Only the main thread is sampled (the tests run there).

Select tests with `-k` over whole files, not by node ids: the compile sample
(tests/compile_sample.py) chooses its representatives among the collected tests, so a test
named alone compiles where `make test` would defer its compile (session 36 measured an
edit-distance test at 45.8 s so; 3.6 s as `make test` runs it).
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time

INTERVAL = 0.005
# (phase, a frame on the stack that marks it: file name part, function name)
PHASES = [
    ("torch.compile (dynamo)", "torch/_dynamo/convert_frame.py", None),
    ("torch.export.export", "torch/export/__init__.py", "export"),
    ("torch.export save / load", "torch/export/__init__.py", "save"),
    ("torch.export save / load", "torch/export/__init__.py", "load"),
    ("autoconv trace", "autoconv/function.py", "get_concrete_function"),
    ("autoconv trace", "autoconv/function.py", "_trace_locked"),
    ("conversion", "autoconv/conversion.py", "convert_function"),
]

_samples = collections.Counter()     # (file, function) -> inclusive samples
_phases = collections.Counter()
_self = collections.Counter()        # (file, function) -> samples where it is the running frame
_tests = collections.Counter()
_test_phases = collections.defaultdict(collections.Counter)  # test -> phase -> samples
_current = [None]
_total = [0]


def _phase_of(frame) -> str:
    found = "other (plain Python, replay, collection)"
    while frame is not None:
        code = frame.f_code
        for name, part, function in PHASES:
            if part in code.co_filename and (function is None or code.co_name == function):
                found = name  # (walking outwards: the outermost match is kept last)
                break
        frame = frame.f_back
    return found


def _sample(signum, frame):
    _total[0] += 1
    phase = _phase_of(frame)
    if _current[0] is not None:
        _tests[_current[0]] += 1
        _test_phases[_current[0]][phase] += 1
    _phases[phase] += 1
    _self[(frame.f_code.co_filename, frame.f_code.co_firstlineno, frame.f_code.co_name)] += 1
    seen = set()
    while frame is not None:
        code = frame.f_code
        key = (code.co_filename, code.co_firstlineno, code.co_name)
        if key not in seen:
            seen.add(key)
            _samples[key] += 1
        frame = frame.f_back


def pytest_configure(config):
    signal.signal(signal.SIGPROF, _sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
    _start[0] = time.process_time()


_start = [0.0]


def pytest_runtest_protocol(item, nextitem):
    _current[0] = item.nodeid
    # (armed again for each test: the fuzz runner's CPU timeout, tests/fuzz/runner.py, takes
    # SIGPROF and ITIMER_PROF for its own runs and disarms them after; a fuzz test's own CPU is
    # not sampled)
    signal.signal(signal.SIGPROF, _sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)


def pytest_runtest_logfinish(nodeid, location):
    _current[0] = None


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/wt/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def pytest_unconfigure(config):
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    cpu = time.process_time() - _start[0]
    top = int(os.environ.get("SAMPLER_TOP", "40"))
    total = max(_total[0], 1)
    lines = [f"CPU {cpu:.1f} s (user + sys), {_total[0]} samples of {INTERVAL * 1000:.0f} ms"]
    lines.append("\nphase shares:")
    for name, n in _phases.most_common():
        lines.append(f"  {100 * n / total:5.1f}%  {name}")
    lines.append("\ntests by CPU (s):")
    for name, n in _tests.most_common(top):
        shares = ", ".join(f"{p.split(' (')[0]} {100 * k / n:.0f}%"
                           for p, k in _test_phases[name].most_common(3))
        lines.append(f"  {n * INTERVAL:7.2f}  {name}  ({shares})")
    lines.append("\nfunctions, inclusive share:")
    for (path, line, name), n in _samples.most_common(top * 3):
        lines.append(f"  {100 * n / total:5.1f}%  {name}  {_short(path)}:{line}")
    lines.append("\nfunctions, self share:")
    for (path, line, name), n in _self.most_common(top):
        lines.append(f"  {100 * n / total:5.1f}%  {name}  {_short(path)}:{line}")
    text = "\n".join(lines) + "\n"
    out = os.environ.get("SAMPLER_OUT")
    if out:
        with open(out, "w") as f:
            f.write(text)
    sys.stderr.write(text)
