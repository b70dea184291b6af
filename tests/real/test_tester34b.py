"""Findings of tester 34b: today's changes (speed34's python-backend 0-d operands and
subscripts, compile34's joined probe, wolfe34's restaging memos) on small practitioners'
programs, against plain Python.

A finding not fixed is a strict xfail whose reason starts with its id (tester34b sNN).
"""

import functools

import pytest
import torch

import autoconv


# --- s01: a functools.partial that counts its calls in a list, called in a while's test ------
# The counter idiom of scipy-style objectives (`obj = partial(f, args, counter)`, counter a
# one-item list) called in a tensor `while`'s `if ... : break`: autoconv's replay returns the
# number of calls made while tracing (2), not the calls the loop made (Python: 1 or 3).
# Mode: autoconv.autoconv(fn) (the same function without the partial, a bound method counting
# in `self.nfev`, is right; a closure counting in a list is refused, loudly).

def _counted(scale, count, x):
    count[0] += 1
    return (x * scale).sum()


def _search(x, s):
    calls = [0]
    objective = functools.partial(_counted, s, calls)
    i = 0
    while i < 3:
        if objective(x) > 0:
            break
        x = x + 1
        i += 1
    return x, calls[0]


@pytest.mark.xfail(strict=True, reason="tester34b s01: a partial's list counter called in a "
                   "while's if/break counts the trace's calls")
def test_s01_partial_counter_in_while_break():
    f = autoconv.autoconv(_search)
    for x in (torch.tensor([1.]), torch.tensor([-5.]), torch.tensor([0.5])):
        expected = _search(x, 1.0)
        got = f(x, 1.0)
        assert torch.equal(got[0], expected[0])
        assert int(got[1]) == expected[1]


# --- s02: a read-only float in a dict comes back to the caller as a float64 tensor -------------
# A config dict passed in (`cfg = {"big": count, "off": 0.25}`), nested tensor ifs whose outer
# branch grows a list reading `cfg["off"]` and whose inner branch updates `cfg["big"]`:
# after the call, the caller's `cfg["off"]` is `tensor(0.2500, dtype=torch.float64)`, where
# Python leaves the float 0.25 (the function never assigns it). Results are right.
# Mode: torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager").

def _grow(x, cfg):
    out = []
    if x.sum() > 0:
        out.append(x + cfg["off"])
        if x.sum() > 1:
            cfg["big"] = cfg["big"] + 1
    return out, cfg["big"]


@pytest.mark.xfail(strict=True, reason="tester34b s02: under torch.compile a dict's read-only "
                   "float is written back to the caller as a float64 tensor")
def test_s02_read_only_dict_float_written_back_under_compile():
    compiled = torch.compile(autoconv.convert(_grow), fullgraph=True, backend="eager")
    cfg = {"big": torch.tensor(0), "off": 0.25}
    out, big = compiled(torch.tensor([2.]), cfg)
    assert torch.equal(out[0], torch.tensor([2.25])) and int(big) == 1
    assert type(cfg["off"]) is float and cfg["off"] == 0.25
