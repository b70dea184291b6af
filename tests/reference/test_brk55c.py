"""Reference tests: brk55c (issue 10), breaking what Session 55 merged: parts held by a carried
object kept by identity (silent55). Fixed since ident56."""

import collections

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import exported

T = torch.tensor
_Pair = collections.namedtuple("_Pair", "scale items")


class _Step:
    def __init__(self, x, cfg):
        self.x = x
        self.cfg = cfg


def _named_tuple_list_grown_in_rebound_object(x):
    cfg = _Pair(torch.tensor(3.0), [])
    s = _Step(x, cfg)
    if x.sum() < 10:
        s = _Step(s.x + 1, s.cfg)
        s.cfg.items.append(s.x.sum())
    return s.x * (len(cfg.items) + 1)


def _named_tuple_list_grown_in_object_not_rebound(x):
    cfg = _Pair(torch.tensor(3.0), [])
    s = _Step(x, cfg)
    if x.sum() < 10:
        s.x = s.x + 1
        s.cfg.items.append(s.x.sum())
    return s.x * (len(cfg.items) + 1)


def _named_tuple_list_grown_in_a_loop(x):
    cfg = _Pair(torch.tensor(3.0), [])
    s = _Step(x, cfg)
    while s.x.sum() < 10:
        s.x = s.x * 2
        s.cfg.items.append(1)
    return s.x * (len(cfg.items) + 1)


# (A list in a named tuple that a carried object holds, appended to on the traced path: the
# named tuple is a constant of the statement, so the trace grew the caller's list and the
# replay on the other path kept the traced length, silently: [40, 6] for Python's [20, 3] in
# replay and torch.export, the object rebound or not. Now the `if` is specialised on its
# condition, as for a list a plain object holds: NOTE [containers in constant tuples] in
# runtime/staging/objects.py. Under torch.compile dynamo refuses it, "Unsafe side effect".)
@pytest.mark.parametrize("fn", [_named_tuple_list_grown_in_rebound_object,
                                _named_tuple_list_grown_in_object_not_rebound])
def test_a_list_in_a_named_tuple_grown_on_the_traced_path_only(fn):
    inputs = [T([1.0, 2.0]), T([20.0, 3.0]), T([1.0, 2.0])]
    want = [[4.0, 6.0], [20.0, 3.0], [4.0, 6.0]]
    assert [fn(x).tolist() for x in inputs] == want
    staged = autoconv.autoconv(fn)
    assert [staged(x).tolist() for x in inputs] == want
    message = r"`s\.cfg\.items` is changed in the true branch, held by a tuple"
    with pytest.raises(RuntimeError, match=message):
        autoconv.autoconv(fn).get_concrete_function(inputs[1])(inputs[0])
    program = exported(fn, (inputs[0],))
    assert program(inputs[0]).tolist() == want[0]
    with pytest.raises(RuntimeError, match=message):
        program(inputs[1])


def test_a_list_in_a_named_tuple_grown_in_a_staged_loop_is_refused():
    # (a loop cannot be specialised on its trips)
    assert _named_tuple_list_grown_in_a_loop(T([1.0, 2.0])).tolist() == [12.0, 24.0]
    with pytest.raises(StagingError, match=r"test_brk55c.py:\d+: .*`s\.cfg\.items` is changed "
                       "in the loop body, held by a tuple"):
        autoconv.autoconv(_named_tuple_list_grown_in_a_loop)(T([1.0, 2.0]))
