"""Test configuration: tests import their helpers from tests/support.py."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import support  # noqa: E402  (tests/ is on the path)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (as AUTOCONV_SLOW=1 does)")


def _run_slow(config) -> bool:
    return config.getoption("--run-slow") or os.environ.get("AUTOCONV_SLOW") == "1"


def pytest_collection_modifyitems(config, items):
    slow = _run_slow(config)
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow or AUTOCONV_SLOW=1")
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _slow_compile(request):
    """A test marked `slow_compile` runs its torch.compile check (support.assert_same_result's
    `compile`) only with --run-slow; `make test` runs its other modes. Such a test is one of
    several cases of one kind whose compiled cases in `make test` already cover it (the
    compile is most of a case's time: dynamo traces autoconv's runtime; docs/testing.md)."""
    if request.node.get_closest_marker("slow_compile") is None or _run_slow(request.config):
        yield
        return
    support.defer_compile = True
    try:
        yield
    finally:
        support.defer_compile = False
