"""Findings of tester 40: session 39's features and published code run as a new user would, in
autoconv's replay (traced once, replayed on inputs taking other paths), a saved and loaded
torch.export program and torch.compile(fullgraph=True), against plain Python.

Sources (packages installed with `pip install --no-deps`, their tests skipped where they are
not installed):
- session 39's modules held by closures and globals, tried as training and inference code holds
  them: a submodule put in eval alone (`model.backbone.eval()`, freezing BatchNorm while the head
  trains) replayed the train-mode graph wherever the module was held (s01); a callable object
  of a user's class (a `Predictor` whose `__call__` runs the model it holds) held by a closure
  or a global (s02), a partial or callable object given to `autoconv` itself (s04) and a user's
  class used as a namespace (`Registry.scale`, s05) kept the traced values after a change, and
  a BatchNorm in an argument object's field stopped the trace in an AttributeError (s03). All
  fixed (autoconv/captures.py); their tests are in tests/reference/test_captured.py. So is
  s11: a global config that is a dict subclass (an `EasyDict`, as many training scripts hold
  theirs, an `OrderedDict`, a `defaultdict`) kept the traced values after `CFG["scale"] = 5.0`.
  An `argparse.Namespace` or `SimpleNamespace` config, in a global or a closure: right.
- session 39's object fields counted under a tensor `if` in a staged loop and read later in its
  body (a ReduceLROnPlateau-like scheduler stepped in `for loss in losses:`, an early stopper in
  `while epoch < n and not stopper.stop:`): right in replay and torch.export; torch.compile
  refuses the field set under the nested `if` (`self.scale`, `self.stop`) with silent39's
  message, honestly. A bound method counting (`meter.update(v)`, `self.n += k`) in a staged
  `while`: right in every mode (not kept: 44 s of CPU on the shared machine).
- torchmetrics 1.9.0: `retrieval_average_precision` (with and without `top_k`),
  `binary_accuracy`, `binary_f1_score`: right in every mode (not kept: tried as published);
  `retrieval_reciprocal_rank`: s08 (fixed by errs41 but for saving its export: torch's
  serializer has no `torch.sym_sum`). A greedy CTC decoder as torchaudio's ASR tutorial writes
  it (`torch.unique_consecutive(indices, dim=-1)`, then a filtering comprehension): the
  comprehension is refused honestly in replay and export; the rewrite the message proposes
  meets s09 (torch's fake shape). The same decoding as a `for t in range(T):` loop with a
  tensor `if`: right in every mode.
- a global `Meter` object whose `__call__` accumulates (`self.total = self.total + v.sum()`):
  it kept the trace's FakeTensors (fixed with s02: refused at its line, put back).
- nflows 0.14, `unconstrained_rational_quadratic_spline` (the neural spline flows' coupling
  transform: masks, `if torch.any(inside_interval_mask):` around the spline of the inside
  values, whose helper raises `InputOutsideDomain` under `torch.min(inputs) < left`): right in
  torch.export; replay refused its `F.pad` of the rows the mask chose (s06); torch.compile ran
  the probe's `torch.min` of no values outside the `if` (s07). Both fixed by errs41.

A finding not fixed is a strict xfail whose reason starts with its id (tester40 sNN).
"""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F

import autoconv
from tests.support import Calling as _Calling
from autoconv_runtime.errors import StagingError
from tests.support import assert_same_result
from torch.testing import assert_close

T = torch.tensor


# --- s06: F.pad of rows a mask chose, in autoconv's replay ------------------------------------
# nflows rational_quadratic.py:91 pads the cumulative widths of the inside values
# (`F.pad(cumwidths, pad=(1, 0), mode="constant", value=0.0)`, a (u0, K) tensor). torch's C++
# kernel of constant_pad_nd read `u0` as a number under autoconv's "fake" trace, which raised
# torch's GuardOnDataDependentSymNode, refused as a tensor's value asked by torch's code; such
# a trace is traced again with the Python dispatcher on (errs41: NOTE [torch's C++ kernels
# asking a size only the graph knows] in autoconv/capture.py).

_WIDTHS = torch.arange(12.0).reshape(3, 4)


def _padded_cumulative_rows(x, widths):
    chosen = widths[x > 0, :]
    return F.pad(torch.cumsum(chosen, dim=-1), pad=(1, 0), mode="constant", value=0.0).sum(0)


# (s06 was replay's; its fix is the trace's: its compile in make test-slow, NOTE [compile checks
# outside the families])
@pytest.mark.slow_compile
def test_s06_pad_of_rows_a_mask_chose_in_every_mode():
    assert_same_result(_padded_cumulative_rows,
                       [(x, _WIDTHS) for x in (T([1.0, -2.0, 3.0]), T([-1.0, 2.0, 3.0]),
                                               T([-1.0, -2.0, -3.0]))], staged=False)


def _padded_inside_rows(x, widths):
    # nflows' shape: the spline of the inside values, under `if torch.any(inside):`
    inside = (x > -1) & (x < 1)
    out = torch.zeros_like(x)
    if torch.any(inside):
        cumwidths = F.pad(torch.cumsum(widths[inside, :], dim=-1), pad=(1, 0), mode="constant",
                          value=0.0)
        out[inside] = cumwidths[..., -1] * x[inside]
    return out


# (as the test above: its compile in make test-slow, NOTE [compile checks outside the families])
@pytest.mark.slow_compile
def test_s06_pad_of_rows_a_mask_chose_in_a_staged_if_in_every_mode():
    assert_same_result(_padded_inside_rows,
                       [(x, _WIDTHS) for x in (T([0.5, -2.0, 0.3]), T([-5.0, 2.0, 3.0]),
                                               T([0.1, 0.2, -0.9]))])


class _InputOutsideDomain(Exception):
    pass


def _spline(inputs, widths, left=-1.0, right=1.0):
    # nflows' rational_quadratic_spline, cut down: its domain check, then the padded widths
    if torch.min(inputs) < left or torch.max(inputs) > right:
        raise _InputOutsideDomain()
    cumwidths = F.pad(torch.cumsum(widths, dim=-1), pad=(1, 0), mode="constant", value=0.0)
    return inputs * cumwidths[..., -1] + left


def _spline_of_inside_values(x, widths):
    # nflows' unconstrained_rational_quadratic_spline: the outside values pass through
    inside = (x >= -1) & (x <= 1)
    out = torch.zeros_like(x)
    out[~inside] = x[~inside]
    if torch.any(inside):
        out[inside] = _spline(x[inside], widths[inside, :])
    return out


_SPLINE_INPUTS = [(x, _WIDTHS / 10) for x in (T([-5.0, 4.0, -9.0]), T([0.5, -2.0, 0.3]),
                                               T([0.1, 0.2, -0.9]))]


# (s07's compile is test_s07_probe_reduction_of_an_empty_selection_in_every_mode's: its compile in
# make test-slow, NOTE [compile checks outside the families])
@pytest.mark.slow_compile
def test_s06_s07_nflows_spline_of_inside_values_in_every_mode():
    # the pad was refused, then specialised on the domain check's `if` (whose other branch
    # raises), and a ConcreteFunction raised GuardFailed on inputs taking the other path; under
    # torch.compile the probe's torch.min of no inside value ran outside the cond
    assert_same_result(_spline_of_inside_values, _SPLINE_INPUTS)
    assert_same_result(_spline_of_inside_values, _SPLINE_INPUTS[1:] + _SPLINE_INPUTS[:1],
                       export=False, compile=False)


def test_s06_a_size_asked_by_python_code_is_still_refused_at_its_line():
    def floor_of_chosen(x):
        return x * math.floor(x[x > 0].sum())

    with pytest.raises(StagingError, match="asks Python for the value"):
        autoconv.autoconv(floor_of_chosen)(T([1.0, -2.0, 3.0]))


# --- s07: a probe's reduction of no values under torch.compile --------------------------------
# The shape of nflows' `if torch.any(inside_interval_mask): ... rational_quadratic_spline(
# inputs[inside_interval_mask], ...)`, whose spline starts with `torch.min(inputs) < left`.
# Where no value is inside, Python skips the `if`. Under torch.compile the probe of its body
# (run ahead, outside the cond) left `torch.min(y)` in dynamo's graph: the result it feeds has
# the rows' data-dependent size, which NOTE [dead ops of probes] kept live, and with it what it
# read; the eager backend ran it on the empty selection ("min(): Expected reduction dim to be
# specified for input.numel() == 0"). Under dynamo only the node binding a symbol is kept
# (errs41: NOTE [symbols of probes under dynamo] in runtime/staging/dead_probes.py).

def _shift_by_least_chosen(x):
    chosen = x > 0
    out = torch.zeros_like(x)
    if torch.any(chosen):
        y = x[chosen]
        out[chosen] = y * 2 + torch.min(y)
    return out


def _shift_then_chosen_again(x):
    # the same `x[chosen]` after the `if`: torch memoizes the count on `chosen`, and gives the
    # probe's symbol again, whose binding must stay
    chosen = x > 0
    out = torch.zeros_like(x)
    if torch.any(chosen):
        y = x[chosen]
        out[chosen] = y * 2 + torch.min(y)
    again = x[chosen]
    return out.sum() + again.sum() * again.shape[0]


_SELECTIONS = [(T([-5.0, -4.0, -9.0]),), (T([1.0, -2.0, 3.0]),)]


@pytest.mark.parametrize("fn", [_shift_by_least_chosen, _shift_then_chosen_again])
def test_s07_probe_reduction_of_an_empty_selection_in_every_mode(fn):
    assert_same_result(fn, _SELECTIONS)


# --- s08: torchmetrics' reciprocal rank, its first hit read after an early return -------------
# torchmetrics 1.9.0 `retrieval_reciprocal_rank` (functional/retrieval/reciprocal_rank.py):
# `if not target.sum(): return tensor(0.0)`, then `position = torch.nonzero(target).view(-1)`
# and `1.0 / (position[0] + 1.0)`. Right in replay. On a query with no relevant document Python
# returns 0.0 before the `nonzero`; torch.export (even unsaved) and torch.compile raise torch's
# "Runtime assertion failed for expression u0 >= 1": the probe of the code after the `if`
# (the cond's false branch, run ahead of it) made a `nonzero` whose size binds a new symbol,
# and the range `[0]` asks of it is asserted in the outer graph, on every call (NOTE [dead ops
# of probes] keeps a node binding a symbol and the assertions on it). Saving the program also
# fails, in torch's serializer, at the `torch.sym_sum` the bound check left in the branch. An
# internal error where Python gives an answer (errs40's / steps40's area, with s07). Saving
# fixed by errs42 (runtime/staging/export_passes.py).

def _reciprocal_rank(preds, target):
    target = torch.where(preds > 0, target, torch.zeros_like(target))
    target = target[preds.topk(preds.shape[-1], sorted=True, dim=-1)[1]]
    if not target.sum():
        return torch.tensor(0.0)
    position = torch.nonzero(target).view(-1)
    return 1.0 / (position[0] + 1.0)


_QUERIES = [(T([0.2, 0.3, 0.5, 0.1]), T([True, False, True, False])),
            (T([0.9, 0.3, 0.5, 0.1]), T([False, False, False, False])),
            (T([0.2, -0.3, 0.5, 0.7]), T([False, True, False, False]))]


def test_s08_reciprocal_rank_in_replay():
    run = autoconv.autoconv(_reciprocal_rank)
    for preds, target in _QUERIES:
        torch.testing.assert_close(run(preds, target), _reciprocal_rank(preds, target))


def test_s08_reciprocal_rank_exported():
    program = torch.export.export(_Calling(autoconv.convert(_reciprocal_rank)), _QUERIES[0],
                                  strict=False)
    for preds, target in _QUERIES:
        torch.testing.assert_close(program.module()(preds, target),
                                   _reciprocal_rank(preds, target))


def test_s08_reciprocal_rank_compiled():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_reciprocal_rank), fullgraph=True,
                             backend="eager")
    for preds, target in _QUERIES:
        torch.testing.assert_close(compiled(preds, target), _reciprocal_rank(preds, target))


def test_s08_reciprocal_rank_exported_saved_and_loaded():
    # (torch's serializer has no torch.sym_sum, which torch wrote in the branch's runtime
    # assertions: fixed by errs42, NOTE [sym_sum in the asserts of exported bodies])
    saved = io.BytesIO()
    torch.export.save(torch.export.export(_Calling(autoconv.convert(_reciprocal_rank)),
                                          _QUERIES[0], strict=False), saved)
    saved.seek(0)
    module = torch.export.load(saved).module()
    for preds, target in _QUERIES:
        torch.testing.assert_close(module(preds, target), _reciprocal_rank(preds, target))


def _first_true_in_a_loop(m, x):
    # (README's other `sym_sum` shape before session 42: a staged loop indexing `nonzero()`)
    while x.sum() < 10:
        x = x + torch.nonzero(m)[0, 0] + 1
    return x


def test_s08_first_true_index_in_a_staged_loop_saved_and_loaded():
    assert_same_result(_first_true_in_a_loop, [(T([False, True, True]), T([1, 2])),
                                               (T([True, False, False]), T([3, 4]))],
                       compile=False)


def _first_hit_then_hits(preds, target):
    # the probe's nonzero beside one after the statement, of the same tensor
    if not target.sum():
        rank = torch.tensor(0.0)
    else:
        rank = 1.0 / (torch.nonzero(target).view(-1)[0] + 1.0)
    return rank + torch.nonzero(target).shape[0]


def test_s08_first_hit_beside_a_count_after_the_if_in_replay_and_compile():
    assert_same_result(_first_hit_then_hits, _QUERIES, export=False)


def test_s08_torchmetrics_reciprocal_rank_in_replay():
    retrieval = pytest.importorskip("torchmetrics.functional.retrieval")
    run = autoconv.autoconv(retrieval.retrieval_reciprocal_rank)
    for preds, target in _QUERIES:
        torch.testing.assert_close(run(preds, target),
                                   retrieval.retrieval_reciprocal_rank(preds, target))


# --- s09: torch.unique_consecutive(x, dim=-1): torch's fake shape ------------------------------
# torchaudio's ASR tutorial's GreedyCTCDecoder collapses repeats with
# `torch.unique_consecutive(indices, dim=-1)`. torch 2.13's fake implementation of
# unique_consecutive does not normalise a negative `dim` as its unique_dim does: a 1-d input of
# 6 gave the fake shape (u0, 6) where the result is (5,), so `.shape[-1]` was 6 (Python: 5) in
# every mode, silently (session 40). autoconv_runtime makes the fake implementation's `dim`
# non-negative (NOTE [a negative dim of unique_consecutive] in runtime/fake_fixes.py; silent41).

def _runs_of_labels(labels):
    runs, counts = torch.unique_consecutive(labels, return_counts=True, dim=-1)
    return runs.shape[-1], runs.numel(), counts.shape[-1], counts.max()


def _runs_of_labels_dim_0(labels):
    runs, counts = torch.unique_consecutive(labels, return_counts=True, dim=0)
    return runs.shape[-1], runs.numel(), counts.shape[-1], counts.max()


_LABELS = [(T([0, 1, 1, 2, 0, 3]),), (T([0, 0, 0, 0, 0, 0]),), (T([2, 2, 1, 1, 3, 3]),)]


def test_s09_unique_consecutive_of_the_last_dim_in_every_mode():
    assert_same_result(_runs_of_labels, _LABELS, staged=False)


# (the control: a non-negative dim was right; the fake fix compiles in the two others: its compile
# in make test-slow, NOTE [compile checks outside the families])
@pytest.mark.slow_compile
def test_s09_unique_consecutive_of_dim_0_in_every_mode():
    assert_same_result(_runs_of_labels_dim_0, _LABELS, staged=False)


def _runs_of_columns_and_rows(m):
    # (the kind: the method, a 2-d input, dim -1 and -2, with the inverse)
    columns, inverse = m.unique_consecutive(return_inverse=True, dim=-1)
    rows, counts = torch.unique_consecutive(m, return_counts=True, dim=-2)
    return (columns.shape[-1], columns.shape[0], inverse.shape[-1], columns.sum(),
            rows.shape[0], counts.shape[-1], counts.max())


_MATRICES = [(T([[0, 1, 1, 2], [0, 1, 1, 2], [3, 3, 3, 3]]),),
             (T([[1, 1, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]),),
             (T([[5, 5, 5, 5], [5, 5, 5, 5], [5, 5, 5, 5]]),)]


def test_s09_unique_consecutive_of_a_negative_dim_of_a_matrix_in_every_mode():
    assert_same_result(_runs_of_columns_and_rows, _MATRICES, staged=False)


# --- s10: a symbolic count stored on an outside module, under torch.export (fixed) -------------
# Session 39 refuses, at the storing line, a number only the graph knows stored into an object
# from outside the function (pytorch-metric-learning's miners: `self.num_triplets = len(a)`),
# and puts the object back, in autoconv's replay. torch.export of the converted function (which
# plain torch.export refuses at `len(idx)`) exported, and left the global module holding the
# export's symbol `u0`: a later `int(miner.num_pos)` raised torch's data-dependent error, a
# print showed "u0". It is refused at the call, the module put back (NOTE [values of an export
# stored on an object] in runtime/staging/export_state.py). torch.compile leaves Python's count.

class _PositiveMiner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.num_pos = 0

    def forward(self, x):
        idx = torch.where(x > 0)[0]
        self.num_pos = len(idx)
        return x[idx].sum()


_MINER = _PositiveMiner()


def _mined_loss(x):
    return _MINER(x) * 2


class _Recorder:
    def __init__(self):
        self.last = None

    def record(self, x):
        self.last = x * 2
        return x.sum()


_RECORDER = _Recorder()


def _recorded_loss(x):
    return _RECORDER.record(x) + 1


def test_s10_a_symbolic_count_stored_on_a_global_module_under_export_is_refused():
    _MINER.num_pos = 7
    with pytest.raises(StagingError, match=r"stores a number the exported graph computes into "
                       r"_PositiveMiner.num_pos.*Return the value") as info:
        torch.export.export(_Calling(autoconv.convert(_mined_loss)), (T([1.0, -2.0, 3.0]),),
                            strict=False)
    assert info.value.lineno == _mined_loss.__code__.co_firstlineno + 1
    assert type(_MINER.num_pos) is int and _MINER.num_pos == 7
    # (Python's count, compiled)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_mined_loss), fullgraph=True, backend="eager")
    assert_close(compiled(T([1.0, -2.0, 3.0])), T(8.0))
    assert type(_MINER.num_pos) is int and _MINER.num_pos == 2


def test_s10_a_tensor_stored_on_a_global_objects_field_by_its_method_under_export_is_refused():
    # (the same kind through a bound method: the object kept the export's fake tensor)
    _RECORDER.last = None
    with pytest.raises(StagingError, match=r"stores a tensor the exported graph computes into "
                       r"_Recorder.last"):
        torch.export.export(_Calling(autoconv.convert(_recorded_loss)), (T([1.0, -2.0]),),
                            strict=False)
    assert _RECORDER.last is None
