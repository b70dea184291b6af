"""Test configuration: tests import their helpers from tests/support.py."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (as AUTOCONV_SLOW=1 does)")


def pytest_collection_modifyitems(config, items):
    slow = config.getoption("--run-slow") or os.environ.get("AUTOCONV_SLOW") == "1"
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow or AUTOCONV_SLOW=1")
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
