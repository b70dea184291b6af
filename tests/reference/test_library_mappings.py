"""Counts kept in collections' mappings and changed by the mapping's own methods in a staged body.

`collections.Counter.update` / `.subtract` are Python code of the standard library, called as
they are (a dict's methods are not converted), which dynamo inlines. Under torch.compile a
probe's run of the body was given the caller's Counter itself (torch's pytree takes a Counter
for a leaf), so the count the statement carried started from the probe's (Python's count plus
one, silently: tester38 s01; NOTE [mappings a probe copies] in runtime/staging/torch.py).
A Counter argument changed between calls replayed the trace's counts (the signature keyed a
pytree leaf by its `__dict__` alone: tester38 s04).
Each function returns its count, against plain Python in autoconv's replay (traced once,
replayed on inputs taking the other path), a saved and loaded torch.export program and
torch.compile(fullgraph=True).
"""

from collections import Counter

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result

T = torch.tensor
# (the first takes the branch, or loops; the second does not)
INPUTS = [(T([3.0, 1.0]), T([0.0, 0.0])), (T([0.0, 0.0]), T([0.0, 0.0])),
          (T([10.0, -5.0]), T([1.0, 1.0]))]


def _loss(x, c):
    return ((x - c) ** 2).sum()


def counted_steps_of_a_while(x0, c):
    steps = Counter(step=0)
    x = x0.clone()
    while _loss(x, c) > 1e-3:
        steps.update(["step"])
        x = x - 0.4 * (x - c)
    return x, steps["step"]


def counted_step_of_an_if(x0, c):
    steps = Counter(step=0)
    x = x0.clone()
    if _loss(x, c) > 1e-3:
        steps.update({"step": 2})
        x = x - 0.4 * (x - c)
    return x, steps["step"]


def subtracted_in_an_if(x0, c):
    budget = Counter(evals=5)
    x = x0.clone()
    if _loss(x, c) > 1e-3:
        budget.subtract(["evals"])
        x = x - 0.4 * (x - c)
    return x, budget["evals"]


@pytest.mark.parametrize("fn", [counted_steps_of_a_while, counted_step_of_an_if,
                                subtracted_in_an_if])
def test_a_counter_updated_by_its_own_method_counts_as_python(fn):
    # (torch.compile before torch.export: the export's probe verdicts, kept for the bodies, spared
    # the compile the probe run that went wrong)
    assert_same_result(fn, INPUTS, export=False)
    assert_same_result(fn, INPUTS, compile=False)


def counter_given_a_key_in_a_while(x0, c):
    steps = Counter()
    x = x0.clone()
    while _loss(x, c) > 1e-3:
        steps.update(["step"])
        x = x - 0.4 * (x - c)
    return x, steps["step"]


@pytest.mark.parametrize("mode", ["replay", "compile"])
def test_a_key_a_counter_gains_in_a_loop_is_refused_naming_the_key(mode):
    # (the fix gave the optimizer's `{id(p): {...} for p in params}` for a count's key)
    with pytest.raises(StagingError) as info:
        if mode == "replay":
            autoconv.autoconv(counter_given_a_key_in_a_while)(*INPUTS[0])
        else:
            torch._dynamo.reset()
            torch.compile(autoconv.convert(counter_given_a_key_in_a_while), fullgraph=True,
                          backend="eager")(*INPUTS[0])
    message = str(info.value)
    assert "`steps` gains or loses keys in the loop body" in message
    assert "Give `steps` the key 'step' before the while loop, where it is made " \
           "(`steps['step'] = 0`" in message
    assert "id(p)" not in message


def last_step_kept_in_a_dict(x0):
    stats = {}
    x = x0.clone()
    while x.sum() > 1:
        x = x * 0.5
        stats["last"] = x
    return x, stats


def last_step_kept_in_a_dict_in_a_loop(x0):
    x = x0.clone()
    while x.sum() > 0.01:
        stats = {}
        while x.sum() > 1:
            x = x * 0.5
            stats["last"] = x
        x = x * 0.1 + 0 * len(stats)
    return x


def test_a_tensor_key_a_dict_gains_on_the_first_trip():
    # (since peel49 the first trip is peeled and the dict gets its key there: NOTE [a dict the
    # first trip gives keys] in runtime/staged_dicts.py)
    assert_same_result(last_step_kept_in_a_dict, [(T([3.0, 1.0]),), (T([0.5, 0.25]),)],
                       compile=False)


def test_a_tensor_key_a_dict_gains_in_a_loop_in_a_loop():
    # (torchode's `stats["n_steps"] = stats_n_steps` before its loop's `return`: refused
    # before session 53, "`stats` gains or loses keys in the loop body"; the inner loop's
    # first trip is peeled as an `if`, which gives the key a flag the outer loop carries:
    # NOTE [keys set on some paths] in runtime/staging/flagged_keys.py)
    assert_same_result(last_step_kept_in_a_dict_in_a_loop, [(T([3.0, 1.0]),),
                                                            (T([0.5, 0.25]),)], compile=False)


def _counted_signs(x, counts):
    if x.sum() > 0:
        counts.update(["pos"])
        x = x * 2
    else:
        counts["neg"] += 1
    return x


def test_a_counter_argument_changed_between_calls_counts_as_python():
    # A Counter argument is a leaf to torch's pytree, and the signature keyed it by its
    # `__dict__` alone: every call replayed the trace's counts (pos 1, neg 0 after three calls
    # where Python counts pos 2, neg 1; tester38 s04). Its items are keyed as a dict's are.
    function = autoconv.autoconv(_counted_signs)
    counts, python_counts = Counter(pos=0, neg=0), Counter(pos=0, neg=0)
    for x in (T([1.0]), T([-1.0]), T([2.0]), T([-3.0])):
        torch.testing.assert_close(function(x.clone(), counts), _counted_signs(x, python_counts))
        assert {k: int(v) for k, v in counts.items()} == dict(python_counts)
