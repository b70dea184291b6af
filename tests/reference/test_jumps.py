"""Reference tests: `break`, `continue` and `return` under tensor conditions.

Inputs exit early at different points (first iteration, later, never), so a graph with the traced
exit baked in fails on replay.
"""

import pytest
import torch

from support import COND, WHILE_LOOP, assert_same_result, count_ops

T = torch.tensor


# --- break -----------------------------------------------------------------------------------

def while_break(x):
    i = 0
    s = torch.zeros(())
    while i < 4:
        if x[i] < 0:
            break
        s = s + x[i]
        i += 1
    return s, i


def while_true_break(x):
    # the only exit is the break
    steps = 0
    while True:
        x = x * 2
        steps += 1
        if x.sum() > 100:
            break
    return x, steps


def for_tensor_break(x):
    s = torch.zeros(())
    for v in x:
        if v < 0:
            break
        s = s + v
    return s


def for_python_range_break(x):
    # a Python loop whose break is decided by a tensor: later iterations run under torch.cond
    s = torch.zeros(())
    for i in range(3):
        if x[i] < 0:
            break
        s = s + x[i]
    return s


def break_inner_loop_only(x):
    s = torch.zeros(())
    for row in x:
        for v in row:
            if v < 0:
                break
            s = s + v
        s = s * 10
    return s


def for_else_with_break(x):
    s = torch.zeros(())
    for v in x:
        if v > 10:
            break
        s = s + v
    else:
        s = s * -1
    return s


def while_else_with_break(x):
    i = torch.zeros((), dtype=torch.int64)
    s = torch.zeros(())
    while i < 4:
        if x[i] == 0:
            break
        s = s + 1 / x[i]
        i += 1
    else:
        s = s + 1000
    return s


# --- continue --------------------------------------------------------------------------------


def while_continue(x):
    i = torch.zeros((), dtype=torch.int64)
    s = torch.zeros(())
    while i < 4:
        i += 1
        if x[i - 1] < 0:
            continue
        s = s + x[i - 1]
    return s


def break_and_continue(x):
    s = torch.zeros(())
    for v in x:
        if v < 0:
            continue
        if v > 10:
            break
        s = s + v
    return s


# --- return ----------------------------------------------------------------------------------

def early_return(x):
    if x.sum() > 0:
        return x * 2
    return x - 1


def return_in_both_branches(x):
    if x.mean() > 0:
        return x.max()
    else:
        return x.min()


def return_in_nested_ifs(x):
    if x[0] > 0:
        if x[1] > 0:
            return x + 1
        y = x - 1
    else:
        y = x * 3
    return y * 2


def return_after_in_place_update(x):
    # The branch that returns updates `i` in place: the other path must not see that.
    i = torch.zeros(())
    if x.sum() > 0:
        i += 1
        return x + i
    return x - i


def return_number_or_tensor(x):
    if x.sum() < 0:
        return 0.0
    return x.sum()


def find_first(x, target):
    for i, v in enumerate(x):
        if v == target:
            return i
    return -1


def return_in_while(x):
    i = torch.zeros((), dtype=torch.int64)
    while i < 4:
        x = x * 2
        if x.sum() > 50:
            return x + i
        i += 1
    return x


def return_tuple_under_condition(x):
    if x.sum() > 0:
        return x, x.sum()
    return -x, x.sum() * 0


QUADRANTS = [T([1.0, 2.0, 0.5]), T([1.0, -2.0, 0.5]), T([-1.0, 2.0, 0.5]), T([-1.0, -2.0, 0.5])]
VEC4 = [T([1.0, 2.0, 3.0, 4.0]), T([1.0, -2.0, 3.0, 4.0]), T([-1.0, 2.0, 3.0, 4.0]),
        T([1.0, 2.0, 30.0, 4.0])]
ROWS = [T([[1.0, 2.0], [3.0, 4.0]]), T([[1.0, -2.0], [3.0, 4.0]]), T([[-1.0, 2.0], [3.0, -4.0]])]

CASES = [
    (while_break, VEC4, WHILE_LOOP),
    (while_true_break, [T([1.0, 2.0]), T([60.0, 1.0]), T([0.1, 0.1])], WHILE_LOOP),
    (for_tensor_break, VEC4, WHILE_LOOP),
    (for_python_range_break, [T([1.0, 2.0, 3.0]), T([1.0, -2.0, 3.0]), T([-1.0, 2.0, 3.0])],
     COND),
    (break_inner_loop_only, ROWS, WHILE_LOOP),
    (for_else_with_break, [T([1.0, 2.0, 3.0, 4.0]), T([1.0, 20.0, 3.0, 4.0])], WHILE_LOOP),
    (while_else_with_break, [T([1.0, 2.0, 4.0, 8.0]), T([1.0, 0.0, 4.0, 8.0]),
                             T([0.0, 2.0, 4.0, 8.0])], WHILE_LOOP),
    (while_continue, VEC4, WHILE_LOOP),
    (break_and_continue, [T([1.0, -2.0, 20.0, 4.0]), T([1.0, 2.0, 3.0, 4.0]),
                          T([-1.0, -2.0, -3.0, 40.0])], WHILE_LOOP),
    (early_return, QUADRANTS, COND),
    (return_in_both_branches, QUADRANTS, COND),
    (return_in_nested_ifs, QUADRANTS, COND),
    (return_after_in_place_update, QUADRANTS, COND),
    (return_number_or_tensor, QUADRANTS, COND),
    (find_first, [(T([5, 6, 7, 8]), T(5)), (T([5, 6, 7, 8]), T(8)), (T([5, 6, 7, 8]), T(9))],
     WHILE_LOOP),
    (return_in_while, [T([30.0, 1.0]), T([1.0, 2.0]), T([0.1, 0.1])], WHILE_LOOP),
    (return_tuple_under_condition, QUADRANTS, COND),
]


@pytest.mark.parametrize("fn, inputs, op", CASES,
                         ids=[getattr(c, "values", c)[0].__name__ for c in CASES])
def test_staged_jump(fn, inputs, op):
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, op) > 0, concrete.code


# --- jumps decided by Python values stay Python ----------------------------------------------

def python_break(x, n):
    for i in range(10):
        if i == n:
            break
        x = x + i
    return x


def python_return(x, flag):
    if flag:
        return x * 2
    y = x + 1
    return y


PYTHON_CASES = [
    (python_break, [(T([1.0, 2.0]), 0), (T([-1.0, 3.0]), 0)]),
    (python_break, [(T([1.0, 2.0]), 3), (T([-1.0, 3.0]), 3)]),
    (python_return, [(T([1.0, 2.0]), True), (T([-1.0, 3.0]), True)]),
    (python_return, [(T([1.0, 2.0]), False), (T([-1.0, 3.0]), False)]),
]


@pytest.mark.parametrize("fn, inputs", PYTHON_CASES,
                         ids=[f"{fn.__name__}-{i}" for i, (fn, _) in enumerate(PYTHON_CASES)])
def test_python_jump_is_not_staged(fn, inputs):
    concrete = assert_same_result(fn, inputs, staged=False)
    assert count_ops(concrete.graph_module, COND, WHILE_LOOP) == 0, concrete.code
