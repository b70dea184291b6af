"""Refusals and messages found by tester 19 (repros in the session's tester19 folder)."""

import torch

from support import assert_same_result

T = torch.tensor


# (refusal_float_h_inplace_after_choice.py, from TorchRK45's adaptive step) a Python float
# chosen by an if/elif on a traced value, then `h *= factor` in a staged loop: refused as an
# in-place update of a chosen tensor, where for a number `*=` rebinds
def clamped_step(x):
    h = x.abs().sum().item()
    max_step = torch.inf
    min_step = 1e-3
    if h > max_step:
        h = max_step
    elif h < min_step:
        h = min_step
    accepted = False
    n = 0
    while not accepted:
        err = (x * h).norm().item()
        if err < 1:
            accepted = True
        else:
            h *= 0.5
        n += 1
    return h, n


def test_a_number_chosen_by_a_tensor_condition_is_rebound_by_an_augmented_assignment():
    # (torch.compile: refused by torch's own symbolic shapes, "sympy expression is NaN", at
    # `h > max_step` with an unbacked float `h` and max_step = inf; not autoconv's refusal)
    assert_same_result(clamped_step, [(T([0.3, 0.2]),), (T([3.0, 4.0]),), (T([0.0, 0.0]),)],
                       compile=False)


# (refusal_float_field_from_float_metric.py, from ReduceLROnPlateau) an object's float field
# set to `float(metric)` under a tensor `if` in a staged loop: `float(t)` of a traced tensor
# is a symbolic float, refused as "only the tensors in an object can change" (replay, export)
# and, compared with the field's `inf`, a data-dependent guard under torch.compile
class Tracker:
    def __init__(self, start):
        self.best = start
        self.bad = 0

    def step(self, metric):
        current = float(metric)
        if current < self.best * (1.0 - 1e-4):
            self.best = current
            self.bad = 0
        else:
            self.bad += 1


def track(losses):
    t = Tracker(float("inf"))
    for loss in losses:
        t.step(loss)
    return t.best, t.bad


def track_from_two(losses):
    t = Tracker(2.0)
    for loss in losses:
        t.step(loss)
    return t.best, t.bad


def test_a_float_field_set_from_float_of_a_tensor_is_carried():
    inputs = [(T([1.0, 0.5, 0.7]),), (T([1.0, 2.0, 0.5]),), (T([3.0, 2.0, 1.0]),)]
    assert_same_result(track, inputs)
    assert_same_result(track_from_two, inputs)


# (unclear_legacy_Tensor_ctor_in_branch.py, from a Dijkstra) a call that fails on traced values
# in a branch of a staged `if` (here in a staged loop, where it cannot be specialised) was
# reported at the `if` with advice to move a `raise` out of a `try` the function did not have
def legacy_constructor_in_a_branch(d, w):
    out = torch.zeros(2)
    i = 0
    while d.sum() > i:
        if d[0] + w < d[1]:
            out = torch.Tensor([1, d[0] + w])
        i += 1
    return out


def test_a_call_failing_in_a_branch_is_named_at_its_line():
    import re

    import pytest

    import autoconv
    from autoconv_runtime import StagingError

    with pytest.raises(StagingError) as caught:
        autoconv.autoconv(legacy_constructor_in_a_branch)(T([0.0, 5.0]), T(1.0))
    message = str(caught.value)
    line = legacy_constructor_in_a_branch.__code__.co_firstlineno + 5
    assert re.search(rf"a call in a branch at .*test_tester19.py:{line} fails", message), message
    assert "not allocated yet" in message and "torch.Tensor([...])" in message
    assert "`try`" not in message
