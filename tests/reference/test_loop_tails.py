"""Reference tests: a `while True:` loop whose tail, after its last `if c: continue`, runs on
the trip the loop ends with (NOTE [a loop's exit tail] in autoconv/converters/loop_tails.py).

The tail sets a dict's keys, appends to a list, binds locals and an object's field, and
returns or breaks: it runs once, after the loop, on the loop's final state. The inputs run one
trip and many; every mode against plain Python.
"""

import torch

from support import assert_same_result

T = torch.tensor

# (one trip, three, five)
INPUTS = [(T([6.0, 7.0]),), (T([1.0, 2.0]),), (T([0.1, 0.2]),)]


def stats_set_before_the_return(x):
    # torchode's AutoDiffAdjoint.solve: `stats` gets its keys on the last trip only
    stats = {}
    n_steps = torch.zeros((), dtype=torch.long)
    while True:
        x = x * 2 + 1
        n_steps += 1
        go = x.sum() < 10
        if go:
            continue
        stats["n_steps"] = n_steps
        stats["last"] = x.sum()
        return x, stats


class _Log:
    def __init__(self):
        self.final = None


def everything_set_in_the_tail_then_break(x):
    hist = []
    log = _Log()
    while True:
        y = x.sum()
        x = x * 2 + 1
        if x.sum() < 10:
            continue
        hist.append(y)
        log.final = x.mean()
        z = y * 3
        break
    return x, z, hist, log.final


def tail_under_a_final_if(x):
    out = {}
    while True:
        x = x * 2 + 1
        if x.sum() >= 10:
            out["x"] = x
            if x.shape[0] > 1:
                out["first"] = x[0]
                return out
            else:
                return out
        x = x - 0.5  # (after the tail)


def test_stats_set_before_the_return():
    assert_same_result(stats_set_before_the_return, INPUTS)


def test_everything_set_in_the_tail_then_break():
    assert_same_result(everything_set_in_the_tail_then_break, INPUTS)


def test_tail_under_a_final_if():
    assert_same_result(tail_under_a_final_if, INPUTS)
