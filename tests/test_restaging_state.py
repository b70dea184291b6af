"""A staging that ends without closing what it opened keeps nothing of later traces alive
(NOTE [restaging state of an unfinished staging], runtime/staging/restaging.py).

Session 50's clean clone: after the tests its pytest worker had run before it, methods33's
five Solvers were never freed. A staging had ended without `leave` (an exception between a
statement's `enter` and its `try`), the restaging memo stayed open for good, and every
later statement of every later trace kept its entry's objects in it (a method's `self`).
Each case here ends one staging that way (an interrupt where `enter` describes the entry;
one after `enter`, before the statement's `try`), then checks that the objects of later
traces are freed, that the memo is gone, and that the later traces' values are Python's.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import autoconv
from autoconv_runtime.staging import objects, restaging


class Solver:
    def __init__(self, tol, scale):
        self.tol = tol
        self.scale = scale

    @autoconv.autoconv
    def solve(self, a):
        x = a
        while (x * x - a).abs().max() > self.tol:
            x = (x + a / x) / 2
        return x * self.scale


def doubled(x):
    while x.sum() < 10:
        x = x * 2
    return x


def _in_enter(monkeypatch):
    real = restaging._form_key

    def failing(*args):
        monkeypatch.setattr(restaging, "_form_key", real)
        raise KeyboardInterrupt  # (as Ctrl-C while `enter` describes the entry)
    monkeypatch.setattr(restaging, "_form_key", failing)


def _after_enter(monkeypatch):
    real = objects.show_inputs

    def failing(*args):
        monkeypatch.setattr(objects, "show_inputs", real)
        raise KeyboardInterrupt  # (after `enter`, before the statement's `try`)
    monkeypatch.setattr(objects, "show_inputs", failing)


@pytest.mark.parametrize("where", [_in_enter, _after_enter], ids=["in_enter", "after_enter"])
def test_objects_of_later_traces_are_freed_after_an_interrupted_staging(monkeypatch, where):
    where(monkeypatch)
    interrupted = autoconv.autoconv(doubled)  # (a Function of its own: it traces here)
    with pytest.raises(KeyboardInterrupt):
        interrupted(torch.ones(3))
    refs = []
    for i in range(3):
        s = Solver(1e-3, float(i + 1))
        a = torch.tensor([4.0, 9.0])
        torch.testing.assert_close(s.solve(a), Solver.solve.python_function(s, a))
        refs.append(weakref.ref(s))
    del s
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    assert restaging._memo() is None
    # (the interrupted function traces again, right, on another path too)
    assert interrupted(torch.ones(3)).tolist() == [4.0, 4.0, 4.0]
    assert interrupted(torch.full((3,), 5.0)).tolist() == [5.0, 5.0, 5.0]
