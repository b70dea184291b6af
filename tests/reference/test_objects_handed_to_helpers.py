"""Reference tests: an object the function hands to a helper of the user's (`helper(x, CFG)`)
is guarded on the fields the helper's code reads: a change between calls gives what Python
gives (NOTE [objects handed to helpers] in autoconv/captures.py)."""

import torch

import autoconv

T = torch.tensor


class _Cfg:
    def __init__(self, k):
        self.k = k


CFG = _Cfg(2.0)


def _scaled(x, c):
    return x * c.k


def _hands_a_global_over(x):
    if x.sum() > 0:
        return _scaled(x, CFG)
    return x


def _hands_a_cell_over(cfg):
    def fn(x):
        if x.sum() > 0:
            return _scaled(x, cfg)
        return x
    return fn


# (the global's and the cell's `k`, read by the helper's code only, were not guarded: [2, 4]
# for Python's [5, 10] in replay; torch.compile was right)
def test_a_field_a_helper_reads_of_a_global_it_is_handed():
    CFG.k = 2.0
    function = autoconv.autoconv(_hands_a_global_over)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    CFG.k = 5.0
    assert _hands_a_global_over(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]


def test_a_field_a_helper_reads_of_a_closure_cell_it_is_handed():
    cfg = _Cfg(2.0)
    fn = _hands_a_cell_over(cfg)
    function = autoconv.autoconv(fn)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    cfg.k = 5.0
    assert fn(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]
