"""Findings of tester 45: published code run as a new user would, in autoconv's replay (traced
once, replayed on inputs taking other paths), a saved and loaded torch.export program and
torch.compile(fullgraph=True), against plain Python.

Sources and what was tried (installed with `pip install --no-deps`; tests skip without them):
- torchmetrics 1.9.0: `kendall_rank_corrcoef` (its `_MetricVariant.from_str`, a class method
  calling `super().from_str` under `try: ... except ValueError`) stopped the compiler in a
  TypeError, then raised torchmetrics' "Invalid variant" (s01, fixed: runtime/calls.py
  `super_method`, autoconv/converters/raises.py; its test without torchmetrics is in
  tests/reference/test_calls.py).
- torchmetrics 1.9.0: `r2_score` and `retrieval_normalized_dcg` of one output's scores write
  through a 0-d bool mask (`raw_scores[cond] = 1 - (rss[cond] / tss[cond])`, `gain[all_irrelevant]
  = 0`): refused in replay and export, torch's own Eq(u0, 1) guard under torch.compile (s02,
  fixed: NOTE [a 0-d mask] in runtime/subscripts.py; its test without torchmetrics is in
  tests/reference/test_subscripts.py). Right in every mode: `binary_accuracy` (its
  validation's RuntimeError raised in every mode), `tweedie_deviance_score` (its ValueError),
  `spearman_corrcoef`, `pearson_corrcoef`, `binary_auroc(thresholds=5)`,
  `multiclass_accuracy(ignore_index=-1)`, `multiclass_f1_score` (weighted, micro with
  `ignore_index`), `binary_calibration_error`, `mean_absolute_percentage_error`.

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


def r2_and_ndcg(preds, target):
    from torchmetrics.functional import r2_score
    from torchmetrics.functional.retrieval import retrieval_normalized_dcg
    return r2_score(preds, target), retrieval_normalized_dcg(preds, (target > 1).long(), top_k=2)


def test_s02_torchmetrics_r2_and_ndcg_of_one_output():
    pytest.importorskip("torchmetrics")
    # r2 defined, then a constant target (tss 0, rss not); nDCG with relevant and no relevant
    inputs = [(T([0.5, 1.0, 2.0, 1.0]), T([1.0, 2.0, 0.5, 3.0])),
              (T([0.5, 0.5, 0.5, 0.5]), T([1.0, 1.0, 1.0, 1.0]))]
    assert_same_result(r2_and_ndcg, inputs, compile=False, staged=False)
