"""Trace time of nested staged statements: how many times a body runs per trace.

A staged statement may take several attempts (an input the bodies change carried as state, a
tensor of an object updated in place on one path and replaced on another given back, a dtype
promoted): each attempt runs the bodies, and with them the statements nested in them. Without
NOTE [restaging verdicts] (runtime/staging/restaging.py) each nested statement took its own
failed attempts again on every run of the enclosing bodies, so the runs of a body doubled per
level of nesting (fuzzer seed 28, program 28: an `if/elif` chain of eight tests did not trace in
300 s of CPU).
"""

import collections

import torch

import autoconv
from support import assert_same_result, function_from_source


class State:
    def __init__(self, v):
        self.v = v

    def step(self, t):
        if t > 0:
            self.v = (self.v + t) % 7
        else:
            self.v = (self.v - t) % 5


def _chain(levels: int) -> str:
    """A `while` over an `if/elif` chain `levels` tests deep: each branch replaces or updates
    in place `s.v` (a carried object's field) or calls a method that replaces it."""
    lines = ["def fn(x, y):",
             "    s = State(x + 1)",
             "    i = torch.tensor(0)",
             "    while i < 3:",
             "        i += 1"]
    for level in range(levels):
        keyword = "if" if level == 0 else "elif"
        lines.append(f"        {keyword} x + {level} > y:")
        lines.append(f"            count({level})")
        lines.append("            s.v -= x % 5" if level % 2 else "            s.step(y - x)")
    lines.append("        else:")
    lines.append("            s.v = (s.v + y) % 3")
    lines.append("    return s.v + i")
    return "\n".join(lines)


def _runs(levels: int):
    runs = collections.Counter()

    @autoconv.do_not_convert
    def count(level):
        runs[level] += 1

    fn = function_from_source(_chain(levels), {"State": State, "count": count, "torch": torch})
    return fn, runs


def test_a_nested_chain_over_a_carried_object_runs_each_body_a_bounded_number_of_times():
    fn, runs = _runs(6)
    args = (torch.tensor(1), torch.tensor(3))
    want = fn(*args)
    runs.clear()
    got = autoconv.autoconv(fn)(*args)
    assert torch.equal(got, want)
    # Each level's statement takes its failed attempts once per distinct entry: a body at depth
    # d runs a few times per level above it, not 2**d times (the innermost ran 128 times, now 8).
    assert max(runs.values()) <= 40, runs
    assert runs[5] <= 3 * runs[2], runs


def test_a_nested_chain_over_a_carried_object_matches_python():
    fn, _ = _runs(4)
    inputs = [(torch.tensor(x), torch.tensor(y)) for x, y in ((1, 3), (5, 0), (-2, 4), (2, 2))]
    assert_same_result(fn, inputs, compile=False)
