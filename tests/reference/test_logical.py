"""Reference tests: `and`, `or`, `not`, chained comparisons, and their mixes with Python bools.

Short-circuiting must survive staging: the right operand runs only when Python would run it,
so inputs where evaluating it would fail (an index past the end) must still work on replay.
"""

import pytest
import torch

import autoconv
from support import COND, WHILE_LOOP, assert_same_result, count_ops, slow_compile

T = torch.tensor


# --- short-circuit guards an index -----------------------------------------------------------

def and_guards_index(x, i):
    if i < 4 and x[i] > 0:
        y = x * 2
    else:
        y = x
    return y


def or_guards_index(x, i):
    if i >= 4 or x[i] < 0:
        y = x - 1
    else:
        y = x + 1
    return y


def count_leading_positives(x):
    # when every element is positive, the test is evaluated with i == 4: x[4] must not run
    i = 0
    while i < 4 and x[i] > 0:
        i += 1
    return i


def ifexp_guards_index(x, i):
    v = x[i] if i < 4 else x[0] * 0
    return v


def chained_guards_index(x, i):
    if 0 <= i < 4 and x[i] > 1:
        y = x[i]
    else:
        y = x.sum() * 0
    return y


# --- values of and / or / not ----------------------------------------------------------------

def and_condition_three(x):
    if x[0] > 0 and x[1] > 0 and x[2] > 0:
        y = x + 1
    else:
        y = x - 1
    return y


def and_or_not_mixed(x):
    if (x[0] > 0 or x[1] > 0) and not x[2] > 0:
        y = x * 2
    else:
        y = x * 3
    return y


def not_condition(x):
    if not (x > 0).any():
        y = torch.zeros_like(x)
    else:
        y = x
    return y


def not_value(x):
    return not x.sum() > 0


def and_value(x, y):
    # `a and b` is a if a is falsy, else b
    return x.sum() and y.sum()


# --- chained comparisons ---------------------------------------------------------------------

def chained_two(x):
    if 0 < x.sum() < 10:
        y = x
    else:
        y = -x
    return y


def chained_three(x, y):
    if x.min() < y.min() < x.max() < y.max():
        out = x + y
    else:
        out = x - y
    return out


def chained_middle_expression(x):
    # the middle operand is an expression: evaluated once, then compared twice
    if -1 < x.mean() * 2 < 1:
        y = x * 10
    else:
        y = x
    return y


def chained_in_ifexp(x):
    return x.sum() if x[0] < x[1] <= x[2] else -x.sum()


# --- mixes with Python bools -----------------------------------------------------------------

def python_bool_and_tensor(x, flag):
    if flag and x.sum() > 0:
        y = x * 2
    else:
        y = x
    return y


def tensor_and_python_bool(x, flag):
    if x.sum() > 0 and flag:
        y = x * 2
    else:
        y = x
    return y


def python_bool_or_tensor(x, flag):
    if flag or x.sum() > 0:
        y = x * 2
    else:
        y = x
    return y


def not_python_and_tensor(x, flag):
    return not flag and x.max() > 1


def tensor_or_constant_comparison(x, k):
    # (fuzz seed 26, program 225: `1 <= 2` decides the test, so Python takes the first branch
    # whatever `x` is; staged, the `if` traced the elif chain too, four staged statements deep
    # in the fuzz program, 620k of dynamo's steps before its refusal for depth)
    if x.sum() > k or 1 <= 2:
        y = x * 2
    elif x[0] > 0:
        y = x
        while y.sum() < 10:
            y = y + 1
    else:
        y = -x
    return y


def tensor_and_flags(x, on, off):
    # (a Python flag that decides a test after the tensor side: `and` with a false one, `or`
    # with a true one, a constant after a longer chain, and a while test)
    if x.sum() > 0 and off:
        x = x + 1
    if x[0] > 0 or on:
        x = x * 2
    if x[0] > 0 or x[1] > 0 or 1 < 2 or x[2] > 0:
        x = x - 3
    while x.sum() > 100 and off:
        x = x - 1
    return x


QUADRANTS = [T([1.0, 2.0, 0.5]), T([1.0, -2.0, 0.5]), T([-1.0, 2.0, 0.5]), T([-1.0, -2.0, 0.5])]
SIGNS = [T([1.0, 1.0, 1.0]), T([1.0, 1.0, -1.0]), T([-1.0, 1.0, -1.0]), T([-1.0, -1.0, -1.0]),
         T([-1.0, -1.0, 1.0])]
X4 = T([1.0, -2.0, 3.0, 4.0])
INDEXED = [(X4, T(0)), (X4, T(1)), (X4, T(3)), (X4, T(4)), (X4, T(7))]

CASES = [
    (and_guards_index, INDEXED, COND),
    (or_guards_index, INDEXED, COND),
    (count_leading_positives, [T([1.0, 2.0, 3.0, 4.0]), T([1.0, -2.0, 3.0, 4.0]),
                               T([-1.0, 2.0, 3.0, 4.0])], WHILE_LOOP),
    (ifexp_guards_index, INDEXED, COND),
    (chained_guards_index, INDEXED + [(X4, T(-1))], COND),
    (and_condition_three, SIGNS, COND),
    (and_or_not_mixed, SIGNS, COND),
    (not_condition, [T([1.0, -2.0]), T([-1.0, -2.0])], COND),
    (not_value, [T([1.0, 2.0]), T([-1.0, -2.0])], None),
    (and_value, [(T([1.0, 2.0]), T([5.0, 6.0])), (T([1.0, -1.0]), T([5.0, 6.0]))], COND),
    (chained_two, [T([1.0, 2.0]), T([-1.0, 2.0]), T([5.0, 6.0])], COND),
    (chained_three, [(T([0.0, 5.0]), T([1.0, 6.0])), (T([0.0, 5.0]), T([1.0, 4.0])),
                     (T([0.0, 5.0]), T([-1.0, 6.0]))], COND),
    (chained_middle_expression, [T([0.1, 0.2]), T([1.0, 2.0]), T([-1.0, -2.0])], COND),
    (chained_in_ifexp, [T([1.0, 2.0, 3.0]), T([1.0, 3.0, 3.0]), T([3.0, 2.0, 1.0]),
                        T([1.0, 3.0, 2.0])], COND),
    (python_bool_and_tensor, [(T([1.0, 2.0]), True), (T([-1.0, -2.0]), True)], COND),
    (tensor_and_python_bool, [(T([1.0, 2.0]), True), (T([-1.0, -2.0]), True)], COND),
    (python_bool_or_tensor, [(T([1.0, 2.0]), False), (T([-1.0, -2.0]), False)], COND),
    (not_python_and_tensor, [(T([1.0, 2.0]), False), (T([-1.0, -2.0]), False)], None),
]


# Compiled in `make test`: `and` / a conditional expression guarding an index, a while on `and`,
# `and` / `or` / `not` mixed, values of tensor logic, a three-way chain, a chain in a conditional
# expression and Python bools beside tensors; the others are variants of these (slow_compile).
COMPILED_IN_SLOW = ["or_guards_index", "chained_guards_index", "and_condition_three",
                    "not_condition", "chained_two",
                    "chained_middle_expression", "python_bool_and_tensor", "python_bool_or_tensor"]


@pytest.mark.parametrize("fn, inputs, op", slow_compile(CASES, COMPILED_IN_SLOW),
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_staged_logical(fn, inputs, op):
    # `op` None: the result is a value of tensor logic; a graph may or may not need a cond
    concrete = assert_same_result(fn, inputs, staged=op is not None)
    if op is not None:
        assert count_ops(concrete.graph_module, op) > 0, concrete.code


@pytest.mark.parametrize("fn, inputs", [
    (python_bool_and_tensor, [(T([1.0, 2.0]), False), (T([-1.0, -2.0]), False)]),
    (python_bool_or_tensor, [(T([1.0, 2.0]), True), (T([-1.0, -2.0]), True)]),
    (not_python_and_tensor, [(T([1.0, 2.0]), True), (T([-1.0, -2.0]), True)]),
], ids=["false-and", "true-or", "not-true-and"])
def test_python_short_circuit_skips_the_tensor_operand(fn, inputs):
    # The Python operand decides: the tensor operand is never evaluated, so nothing is staged.
    concrete = assert_same_result(fn, inputs, staged=False)
    assert count_ops(concrete.graph_module, COND, WHILE_LOOP) == 0, concrete.code


@pytest.mark.parametrize("fn, inputs", [
    (tensor_and_python_bool, [(T([1.0, 2.0]), False), (T([-1.0, -2.0]), False)]),
    (tensor_or_constant_comparison, [(T([1.0, 2.0]), 0), (T([-1.0, -2.0]), 0),
                                     (T([1.0, -2.0]), 0)]),
    (tensor_and_flags, [(T([1.0, 2.0, 3.0]), True, False), (T([-1.0, -2.0, 3.0]), True, False),
                        (T([60.0, 70.0, 3.0]), True, False)]),
], ids=["tensor-and-false", "tensor-or-constant", "flags"])
def test_python_side_after_the_tensor_decides_the_test(fn, inputs):
    # The tensor side is evaluated, as in Python, but a Python value after it decides the
    # test's truth on every path (NOTE [a plain side that decides a test]): nothing is staged,
    # so no branch Python never takes is traced.
    concrete = assert_same_result(fn, inputs, staged=False)
    assert count_ops(concrete.graph_module, COND, WHILE_LOOP) == 0, concrete.code


# --- short-circuit guards an index a probe reads -----------------------------------------------
# Autoconv runs a staged statement's bodies ahead as a probe, outside the `and` that guards the
# read, and some of the probe's ops stayed in torch.compile's graph (backend "eager" runs it as
# it is): Python's loop ends at `i == x.shape[0]` where the graph read `x[i]` past the end, an
# IndexError (slowA38 s01). NOTE [probes in the bodies of operators a probe stages] in
# runtime/staging/dead_probes.py, NOTE [indices of a probe's reads] in runtime/subscripts.py.

def leading_nonnegatives_grown(x):
    # (the loop grows a list: its trips are counted by a probe, inside which the while_loop's
    # test, and the test's own probe of the `and`, were traced)
    vals = [x[0] * 0]
    i = 0
    while i < x.shape[0] and x[i] >= 0:
        vals.append(x[i] * 2)
        i += 1
    return torch.stack(vals).sum(), torch.tensor(len(vals))


def leading_nonnegatives_grown_with_or(x):
    vals = [x[0] * 0]
    i = 0
    while not (i == x.shape[0] or x[i] < 0):
        vals.append(x[i] * 2)
        i += 1
    return torch.stack(vals).sum(), torch.tensor(len(vals))


def leading_positives_of_a_list_grown(x):
    items = [x[0], x[1], x[2]]
    vals = [x[0] * 0]
    i = 0
    while i < len(items) and items[i] > 0:
        vals.append(items[i])
        i += 1
    return torch.stack(vals).sum(), torch.tensor(len(vals))


def leading_nonnegative_numbers(x):
    # (`float(x[i])` in the probe: its `.item()` stays in the graph, as every number a probe
    # reads does, and with it the read it is made of)
    out = []
    i = 0
    while i < x.shape[0] and float(x[i]) >= 0:
        out.append(float(x[i]) * 2)
        i += 1
    return torch.tensor(sum(out, 0.0))


def numbers_over_one_counted_in_a_loop(x):
    n = 0
    i = 0
    while i <= x.shape[0]:
        if i < x.shape[0] and float(x[i]) > 1:
            n += 1
        i += 1
    return torch.tensor(n)


PROBED_INDEX_CASES = [leading_nonnegatives_grown, leading_nonnegatives_grown_with_or,
                      leading_positives_of_a_list_grown, leading_nonnegative_numbers,
                      numbers_over_one_counted_in_a_loop]
# (every row read: the loop's test is evaluated with `i` one past the end; a negative row
# stops it early, the first row at once)
PROBED_INDEX_INPUTS = [T([1.0, 2.0, 3.0]), T([1.0, -2.0, 3.0]), T([-1.0, 2.0, 3.0])]


@pytest.mark.parametrize("fn", PROBED_INDEX_CASES, ids=lambda f: f.__name__)
def test_short_circuit_guards_an_index_a_probe_reads(fn):
    assert_same_result(fn, PROBED_INDEX_INPUTS)


# --- Python values only: exact Python semantics ----------------------------------------------

def python_and_or(a, b, c):
    return (a and b) or c


def python_not_and(a, b):
    return not a and b


def python_chain(a, b, c):
    return a < b <= c


@pytest.mark.parametrize("a, b, c", [
    (0, 1, 2), (1, 0, 2), (1, 2, 0), ([], "x", None), ("s", [], 0), (None, None, "c"),
    (3, 3, 3), (1.5, 2, 2),
])
def test_python_values_keep_python_semantics(a, b, c):
    assert autoconv.convert(python_and_or)(a, b, c) == python_and_or(a, b, c)
    assert autoconv.convert(python_not_and)(a, b) == python_not_and(a, b)
    if all(isinstance(v, (int, float)) for v in (a, b, c)):
        assert autoconv.convert(python_chain)(a, b, c) == python_chain(a, b, c)


def chained_with_call(a, b, log):
    return a < note(b, log) < 10


def note(value, log):
    log.append(value)
    return value


def short_circuit_calls(a, log):
    return a > 0 and note(a, log) > 5 or note(-a, log) > 5


@pytest.mark.parametrize("a, b", [(0, 5), (6, 5), (0, 20)])
def test_chained_middle_operand_evaluated_once(a, b):
    log = []
    assert autoconv.convert(chained_with_call)(a, b, log) == chained_with_call(a, b, [])
    assert log == [b]


@pytest.mark.parametrize("a, expected_log", [(7, [7]), (3, [3, -3]), (-8, [8]), (0, [0])])
def test_right_operand_only_evaluated_when_needed(a, expected_log):
    log = []
    assert autoconv.convert(short_circuit_calls)(a, log) == short_circuit_calls(a, [])
    assert log == expected_log


# --- a comparison beside a traced test (NOTE [a comparison beside a traced test]) ------------
# An `and` / `or` read for its truth whose right side compares locals: no cond where they are
# tensors and numbers (the test of every loop whose `break` is lowered to a flag), the cond
# kept where one is of another kind.

def flag_and_count_below(x, n):
    i = 0
    total = torch.zeros(())
    done = x[0] < 0
    while not done and i < n:
        total = total + x[i]
        i += 1
        done = total > 2
    return total, i


def sum_or_count_at_least(x, k):
    if x.sum() > 0 or k >= 2:
        return x * 2
    return x - 1


def sum_or_mode_is(x, mode):
    if x.sum() > 0 or mode == "always":
        return x * 2
    return x - 1


@pytest.mark.parametrize("fn, inputs, conds", [
    (flag_and_count_below, [(T([1.0, 0.5, 0.25, 4.0]), 4), (T([-1.0, 2.0, 3.0, 4.0]), 4),
                            (T([1.0, 0.5, 0.25, 0.125]), 4), (T([3.0, 1.0, 1.0, 1.0]), 4)], 0),
    (sum_or_count_at_least, [(T([1.0, 2.0]), T(0)), (T([-1.0, -2.0]), T(0)),
                             (T([-1.0, -2.0]), T(3)), (T([1.0, -2.0]), T(3))], 1),
    (sum_or_mode_is, [(T([1.0, 2.0]), "never"), (T([-1.0, -2.0]), "never")], 2),
], ids=["loop-test", "or-count", "or-str-keeps-cond"])
def test_a_comparison_beside_a_traced_test(fn, inputs, conds):
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, COND) == conds, concrete.code


# --- pure sides of a test fold left (NOTE [pure sides of a test fold left]) -----------------
# Comparisons of locals, `not` of a local and chained comparisons of locals are computed beside
# the sides before them: a chain with one call in it is one cond, not one nested per side (fuzz
# seed 4301's compile time-outs).

def pure_sides_around_a_call(x, k):
    s = x.sum()
    m = x.max()
    if s > 0 and k < 3 and x.abs().max() > 1 and (k == 2 or m >= s >= k):
        return x * 2
    return x - 1


def flag_and_chained_bounds(x, n):
    i = 0
    total = torch.zeros(())
    done = x[0] < 0
    while not done and (i < n and -4 < total < 6):
        total = total + x[i]
        i += 1
        done = total > 2
    return total, i


@pytest.mark.parametrize("fn, inputs, conds", [
    (pure_sides_around_a_call, [(T([1.0, 2.0]), T(2)), (T([1.0, 0.5]), T(2)),
                                (T([1.0, 2.0]), T(1)), (T([3.0, 0.5]), T(1)),
                                (T([-1.0, -2.0]), T(1)), (T([1.0, 2.0]), T(3))], 2),
    (flag_and_chained_bounds, [(T([1.0, 0.5, 0.25, 4.0]), T(4)),
                               (T([-1.0, 2.0, 3.0, 4.0]), T(4)),
                               (T([1.0, 0.5, 0.25, 0.125]), T(3)),
                               (T([-3.0, -1.0, -1.0, 1.0]), T(4))], 0),
], ids=["if-call-between", "loop-flag-chain"])
def test_pure_sides_of_a_test_fold_left(fn, inputs, conds):
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, COND) == conds, concrete.code
