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
    assert_same_result(clamped_step, [(T([0.3, 0.2]),), (T([3.0, 4.0]),), (T([0.0, 0.0]),)])
