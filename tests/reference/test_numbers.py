"""Python numbers carried by staged statements keep Python's meaning: a float is a float64 (a
C double), an int an int64, and where one meets a tensor it acts as Python's number would (a
'wrapped number' that only raises the category: a float32 tensor stays float32).
NOTE [numbers as tensors] in runtime/values.py."""

import io

import torch
from torch.utils import _pytree as pytree

import autoconv
from tests.support import Calling


def _modes(fn, args, export=True, compile=True):
    """fn's results: staged replay, the saved and loaded exported program, torch.compile."""
    results = [autoconv.autoconv(fn)(*args)]
    converted = autoconv.convert(fn)
    if export:
        program = torch.export.export(Calling(converted), args, strict=False)
        saved = io.BytesIO()
        torch.export.save(program, saved)
        saved.seek(0)
        results.append(torch.export.load(saved).module()(*args))
    if compile:
        torch._dynamo.reset()
        results.append(torch.compile(converted, fullgraph=True, backend="eager")(*args))
    return results


def _dtypes(value):
    """The dtype of each leaf, a Python number as the graph carries it."""
    kinds = {bool: torch.bool, int: torch.int64, float: torch.float64}
    return [leaf.dtype if isinstance(leaf, torch.Tensor) else kinds[type(leaf)]
            for leaf in pytree.tree_leaves(value)]


def steps_to_reach(x):
    t = 0.0
    k = 0
    while t < x:
        t += 0.1
        k += 1
    return k, t


def test_a_float_counter_is_a_float64_in_every_mode():
    # (tester t8, repro 2) t was carried as a float32: 10 trips where Python makes 11, and
    # t = 1.0000000149 instead of 1.0999999999999999.
    x = torch.tensor(1.0, dtype=torch.float64)
    assert steps_to_reach(x) == (11, 1.0999999999999999)
    other = torch.tensor(0.35, dtype=torch.float64)
    assert [int(v) for v in autoconv.autoconv(steps_to_reach)(other)][0] == 4
    for k, t in _modes(steps_to_reach, (x,)):
        assert int(k) == 11 and float(t) == 1.0999999999999999
        assert _dtypes((k, t)) == [torch.int64, torch.float64]


def march(x):
    t = 1.0
    n = 0
    while t < x and n < 100:  # (the bound: a float32 t never moves, and the loop would hang)
        t += 2e-8
        n += 1
    return n


def test_a_step_below_float32_resolution_still_moves_the_counter():
    # (tester t8, repro 17) float32's 1.0 + 2e-8 is 1.0: the graph looped forever.
    x = torch.tensor(1.0000002, dtype=torch.float64)
    assert march(x) == 10
    assert int(autoconv.autoconv(march)(x)) == 10


def accumulate(x):
    total = 0.0
    for v in x:
        if v > 0:
            total += v
    return total


def scaled(x):
    scale = 1.0
    while scale < x.abs().max():
        scale *= 2.0
    return x / scale, scale


def test_a_carried_float_meeting_float32_tensors_gives_float32_as_in_python():
    x = torch.tensor([0.1, -2.0, 0.7])
    assert accumulate(x).dtype == torch.float32  # Python: 0.0 + a float32 tensor
    assert float(autoconv.autoconv(accumulate)(-x)) == accumulate(-x)
    # (torch.compile too: a loop there cannot be retried with a promoted dtype, so a float
    # meeting a float32 tensor must be found before the loop is traced)
    for result in _modes(accumulate, (x,), export=False):
        assert _dtypes(result) == [torch.float32]
        torch.testing.assert_close(result, accumulate(x))
    y = torch.tensor([3.0, -9.5])
    for out, scale in _modes(scaled, (y,), compile=False):
        assert out.dtype == torch.float32 and float(scale) == 16.0
        torch.testing.assert_close(out, y / 16.0)


def halves(x):
    k = 7
    j = 0
    while k > x:
        k /= 2     # an int divided: a float64 in Python
        j += 0.5   # an int plus a float: a float64
    return k, j


def test_numbers_promote_as_python_numbers_do():
    x = torch.tensor(0.01, dtype=torch.float64)
    want = halves(x)
    for result in _modes(halves, (x,), compile=False):
        assert _dtypes(result) == [torch.float64, torch.float64]
        assert [float(v) for v in result] == list(want)


def counted_in_a_dict(x):
    stats = {"total": 0.0, "n": 0}
    for v in x:
        if v > 0:
            stats["total"] += v  # a float32 tensor in Python (the float meets v)
            stats["n"] += 1
    return stats


def test_numbers_in_a_carried_dict_promote_leaf_by_leaf():
    # A float in a dict is a float64 too; meeting the float32 item on one path it becomes a
    # float32 there, as in Python, while the int stays an int64.
    x = torch.tensor([0.1, -2.0, 0.7])
    want = counted_in_a_dict(x)
    for result in _modes(counted_in_a_dict, (x,), export=False):
        assert _dtypes(result) == [torch.float32, torch.int64]
        torch.testing.assert_close(result["total"], want["total"])
        assert int(result["n"]) == 2
