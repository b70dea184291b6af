"""The default (python) backend computes what eager PyTorch computes, on a fixed sample of
torch's operator database (`make opdb` runs all of it; see tests/opdb.py and docs/backends.md)."""

import collections

import pytest

pytest.importorskip("expecttest")  # torch's op_db imports it

import opdb  # noqa: E402  (tests/ is on the path)

STRIDE = 20  # every 20th op of op_db: about 36 operators
MAX_SAMPLES = 1  # per dtype and grad mode


def test_python_backend_equals_eager_on_a_sample_of_op_db():
    ops = opdb.op_db()[::STRIDE]
    stats, failures = collections.Counter(), []
    for op in ops:
        opdb.check_op(op, stats, failures, max_samples=MAX_SAMPLES)
    assert not failures, "\n".join(map(str, failures))
    assert stats["samples: agree"] > 2 * len(ops)  # the sample really ran
