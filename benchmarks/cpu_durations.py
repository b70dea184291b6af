"""CPU time of each test, and of each process's start and collection: a pytest plugin.

    OMP_NUM_THREADS=1 PYTHONPATH=benchmarks CPU_DURATIONS_OUT=/tmp/cpu.tsv \
        python -m pytest -q -p cpu_durations tests -k "test_loops.py or test_lists.py"

Appends one line a test to CPU_DURATIONS_OUT (`test`, node id, CPU s, wall s, outcome, worker)
and one a process (`collect`, worker, CPU s from the interpreter's start to the end of
collection, wall s). CPU is user + sys of the process (`time.process_time()`), so figures hold
under load, where wall time does not. With xdist each worker writes its own lines.

Select whole files with `-k` over the whole of tests/, not by naming files or node ids: the
compile sample (tests/compile_sample.py) chooses its representatives among the collected tests,
so a file collected alone compiles what `make test` defers (benchmarks/suite_sampler.py).
"""

from __future__ import annotations

import os
import time

import pytest

_OUT = os.environ.get("CPU_DURATIONS_OUT")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_WALL0 = time.time()


def _write(line: str) -> None:
    if _OUT:
        with open(_OUT, "a") as f:
            f.write(line + "\n")


def pytest_collection_finish(session):
    _write(f"collect\t{_WORKER}\t{time.process_time():.3f}\t{time.time() - _WALL0:.3f}")


_outcome = {}


def pytest_runtest_logreport(report):
    if report.failed or report.skipped or report.when == "call":
        _outcome.setdefault(report.nodeid, "skipped" if report.skipped else report.outcome)
        if report.failed:
            _outcome[report.nodeid] = "failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # (setup, call and teardown: fixtures count)
    cpu, wall = time.process_time(), time.time()
    yield
    _write(f"test\t{item.nodeid}\t{time.process_time() - cpu:.3f}\t{time.time() - wall:.3f}\t"
           f"{_outcome.pop(item.nodeid, '?')}\t{_WORKER}")
