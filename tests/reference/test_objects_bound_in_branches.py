"""Reference tests: an object first made in the branches of a tensor `if` is carried as the
statement's state (NOTE [objects bound in branches] in runtime/staging/branch_objects.py).

Each case against plain Python in autoconv's replay (traced once, replayed on inputs taking the
other path), a saved and loaded torch.export program and torch.compile(fullgraph=True); objects
of different classes on the two paths are refused, naming both.
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result

T = torch.tensor
_INPUTS = [(T([1.0, 2.0]),), (T([-1.0, -2.0]),), (T([3.0, -1.0]),)]


class State:
    def __init__(self, v):
        self.v = v


class Box:
    pass


class Pair:
    def __init__(self, a, n):
        self.a, self.n, self.history = a, n, [a]


def made_on_both_paths(x):
    if x.sum() > 0:
        s = State(x)
    else:
        s = State(-x)
    return s.v + 1


def filled_after_it_is_made(x):
    if x.sum() > 0:
        box = Box()
        box.v = x * 2
    else:
        box = Box()
        box.v = x - 1
    return box.v


def numbers_and_lists_in_it(x):
    # (a number field that differs between the paths, a list holding a tensor)
    if x.sum() > 0:
        p = Pair(x, 1)
    else:
        p = Pair(-x, 2)
    return p.a * p.n + p.history[0]


def another_shape_on_a_path(x):
    if x.sum() > 0:
        s = State(x)
    else:
        s = State(x[:1] * 4)
    return s.v.sum()


def objects_in_it(x):
    if x.sum() > 0:
        s = State(State(x))
    else:
        s = State(State(-x))
    return s.v.v


def read_under_the_same_test(x):
    # (unbound on the false path: the bound flag keeps it from being read there)
    if x.sum() > 0:
        s = State(x)
    y = x
    if x.sum() > 0:
        y = s.v * 2
    return y


def made_in_a_loop_body(x):
    t = x
    for _ in range(3):
        if t.sum() > 0:
            s = State(t)
        else:
            s = State(-t)
        t = s.v - 1
    return t


def made_in_a_while_loop(x):
    t = x
    while t.abs().sum() < 20:
        if t.sum() > 0:
            s = State(t * 2)
        else:
            s = State(t * 3)
        t = s.v
    return t


@pytest.mark.parametrize("fn", [made_on_both_paths, filled_after_it_is_made,
                                numbers_and_lists_in_it, another_shape_on_a_path, objects_in_it,
                                read_under_the_same_test, made_in_a_loop_body,
                                made_in_a_while_loop])
def test_an_object_made_in_the_branches(fn):
    assert_same_result(fn, _INPUTS)


class Other:
    def __init__(self, v):
        self.v = v


def of_two_classes(x):
    if x.sum() > 0:
        s = State(x)
    else:
        s = Other(-x)
    return s.v + 1


_TWO_CLASSES = (r"'s' is an object of class State in the true branch and one of class Other "
                r"in the false branch; a tensor condition chooses between objects of one "
                r"class only")


def test_objects_of_two_classes_are_refused():
    # (the replay specialises on the condition, one trace per path, as Python runs them; an
    # exported program holds one path and names the refusal on the other; under
    # torch.compile the refusal stands)
    function = autoconv.autoconv(of_two_classes)
    for (x,) in _INPUTS:
        assert torch.equal(function(x), of_two_classes(x))
    assert function.trace_count == 2
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(of_two_classes), fullgraph=True,
                             backend="eager", dynamic=False)
    with pytest.raises(StagingError, match=_TWO_CLASSES):
        compiled(*_INPUTS[0])


def returned(x):
    if x.sum() > 0:
        s = State(x)
    else:
        s = State(-x)
    return s


@pytest.mark.xfail(strict=True, reason=(
    "obj50: an autoconv Function that returns an object of a user class (not a tensor, nor a "
    "tuple, list or dict of them) gives it with the trace's FakeTensors in its fields, made "
    "or not in a staged statement (`return State(x * 3)` too): the graph's outputs are its "
    "flattened results, and the object is not among the containers rebuilt around them. "
    "Comparing such a field raises torch's DataDependentOutputException, naming no line of "
    "the user's. torch.compile gives the right object; torch.export refuses it (torch's "
    "'register a pytree' error)"))
def test_an_object_returned_by_a_function_holds_the_graphs_tensors():
    function = autoconv.autoconv(returned)
    for (x,) in _INPUTS:
        got = function(x)
        assert type(got) is State and torch.equal(got.v, returned(x).v)
