"""Findings of tester 34: published code and practitioners' loops run as a new user would, in
autoconv's replay (traced once, replayed on inputs that take other paths), a saved and loaded
torch.export program and torch.compile(fullgraph=True), against plain Python.

Sources (each test names its own):
- gradient-descent and fixed-point loops recording their trajectory (`traj.append(x)` then
  `x -= lr * g`, the optimisation tutorials' and notebooks' way of plotting a path), and
  speed33's lists of 0-d numbers grown in a `while` (autoconv/scalar_loops.py): s01.

A finding not fixed is a strict xfail whose reason starts with its id (tester34 sNN).
"""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import Calling, assert_same_result


# --- s01: a tensor appended to a list, then updated in place (fixed) -----------------------
# `traj.append(x)` puts the tensor itself in Python's list; `x -= lr * g` (or `x /= 2`,
# `x.mul_(0.5)`) afterwards reaches every item that is `x`: Python's trajectory is the last
# point repeated. Under a tensor `while` the list is a buffer of copies: autoconv's replay,
# torch.export and torch.compile gave the points as they were when appended, silently (also
# after the loop: `x.add_(1)` reaching `traj[-1]`, `traj[-1].add_(1)` reaching `x`; and a
# Python `for` whose staged `if` appends). Now refused at the update's line in every mode
# (NOTE [tensors appended, then updated in place] in autoconv/converters/kept_views.py).

def _descend(x, lr):
    traj = []
    while x.norm() > 0.1:
        traj.append(x)
        x -= lr * 2 * x
    return traj


def _halve_scalar(x):
    out = []
    while x > 1:  # (0-d: speed33's loop of Python numbers)
        out.append(x)
        x /= 2
    return out


def _update_after(x):
    out = []
    while x.sum() > 1:
        x = x * 0.5
        out.append(x)
    x.add_(100)
    return out


def _item_updated_after(x):
    out = []
    while x.sum() > 1:
        x = x * 0.5
        out.append(x)
    out[-1].add_(100)
    return out, x


def _appended_in_a_staged_if(x):
    out = []
    for _ in range(3):
        if x.sum() > 1:
            out.append(x)
        x.mul_(0.5)
    return out


@pytest.mark.parametrize("fn, args", [
    (_descend, (torch.tensor([1.0, -2.0]), 0.25)),
    (_halve_scalar, (torch.tensor(10.0),)),
    (_update_after, (torch.full((2,), 10.0),)),
    (_item_updated_after, (torch.full((2,), 10.0),)),
    (_appended_in_a_staged_if, (torch.full((2,), 10.0),)),
])
def test_s01_tensor_appended_then_updated_in_place_is_refused(fn, args):
    python = fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
    assert python  # (Python's list holds the updated tensor)
    with pytest.raises(StagingError, match=r"holds `\w+` itself in Python"):
        autoconv.autoconv(fn)(*args)


@pytest.mark.slow
def test_s01_refused_under_export_and_compile():
    x = torch.tensor([1.0, -2.0])
    with pytest.raises(StagingError, match="holds `x` itself"):
        torch.export.export(Calling(autoconv.convert(_descend)), (x, 0.25), strict=False)
    torch._dynamo.reset()
    with pytest.raises(StagingError, match="holds `x` itself"):
        torch.compile(autoconv.convert(_descend), fullgraph=True, backend="eager")(x, 0.25)


def _descend_copies(x, lr):
    traj = []
    while x.norm() > 0.1:
        traj.append(x.clone())
        x -= lr * 2 * x
    return traj, x


def _descend_rebinding(x, lr):
    traj = []
    while x.norm() > 0.1:
        traj.append(x)
        x = x - lr * 2 * x
        x.mul_(1.0)  # (a new tensor: the list does not hold it)
    x.add_(1)
    return traj, x


@pytest.mark.parametrize("fn", [_descend_copies, _descend_rebinding])
def test_s01_copies_and_rebound_names_still_run(fn):
    assert_same_result(fn, [(torch.tensor([1.0, -2.0]), 0.25), (torch.tensor([4.0, 3.0]), 0.25),
                            (torch.tensor([0.01, 0.0]), 0.25)], compile=False)
