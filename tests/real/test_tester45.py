"""Findings of tester 45: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them):
- torchmetrics 1.9.0: `kendall_rank_corrcoef` (its `_MetricVariant.from_str`, a class method
  calling `super().from_str` under `try: ... except ValueError`) stopped the compiler in a
  TypeError, then raised torchmetrics' "Invalid variant" (s01, fixed: runtime/calls.py
  `super_method`, autoconv/converters/raises.py; its test without torchmetrics is in
  tests/reference/test_calls.py).

A finding not fixed is a strict xfail whose reason starts with its id (tester45 sNN).
"""

from __future__ import annotations

import pytest
import torch

from tests.support import assert_same_result

T = torch.tensor


# --- torchmetrics -------------------------------------------------------------------------------

def kendall_tau_c(preds, target):
    from torchmetrics.functional import kendall_rank_corrcoef
    return kendall_rank_corrcoef(preds, target, variant="c", t_test=True)


def test_s01_torchmetrics_kendall_with_its_variant_enum():
    pytest.importorskip("torchmetrics")
    # ties in the second pair
    inputs = [(T([0.5, 1.0, 2.0, 1.0]), T([1.0, 2.0, 0.5, 3.0])),
              (T([0.5, 0.5, 0.5, 0.7]), T([0.0, 1.0, 0.5, 0.5]))]
    assert_same_result(kendall_tau_c, inputs, compile=False, staged=False)
