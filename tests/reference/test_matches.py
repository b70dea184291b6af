"""`match` statements against plain Python (PEP 634): the subject evaluated once, `case True:`
an identity, `case 1:` an equality, class patterns `isinstance`, guards in order, in autoconv's
replay, torch.export and torch.compile (NOTE [match statements as if chains])."""

import dataclasses
import enum

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result, exported, function_from_source


class Color(enum.Enum):
    RED = 1
    GREEN = 2


def by_identity_then_value(x, v):
    # (`case True:` is `v is True`: 1 and 1.0 go on to `case 1:`, True to the first case)
    match v:
        case True:
            return x + 10
        case 1:
            return x + 20
        case False | None:
            return x + 30
        case _:
            return x
    return x - 1


@pytest.mark.parametrize("v", [True, 1, 1.0, 0, None, 2])
def test_true_is_an_identity_and_one_an_equality(v):
    assert_same_result(by_identity_then_value, [(torch.tensor([1.0]), v)], staged=False)


def tensor_truth(x):
    # (a tensor is never the object True: Python takes `case _`)
    match x.sum() > 0:
        case True:
            return x + 1
        case False:
            return x - 1
        case _:
            return x * 0


def test_a_tensor_subject_is_never_true_or_false():
    assert_same_result(tensor_truth, [(torch.tensor([1.0]),), (torch.tensor([-1.0]),)],
                       staged=False)


def tensor_value(x):
    match x.sum():
        case 3:
            return x + 1
        case _:
            return x - 1


def test_a_tensor_subject_compared_with_a_value_is_a_staged_if():
    assert_same_result(tensor_value, [(torch.tensor([1.0, 2.0]),), (torch.tensor([-1.0, 0.0]),)])


def chosen_color(x):
    if x.sum() > 0:
        color = Color.RED
    else:
        color = Color.GREEN
    match color:
        case Color.RED:
            return x + 10
        case Color.GREEN if x.sum() < -5:
            return x + 20
    return x


def test_an_enum_chosen_by_a_tensor_condition_with_a_guard():
    # (no torch.compile: it refuses `color` unbound before the `if`, asking for a first value)
    assert_same_result(chosen_color, [(torch.tensor([1.0]),), (torch.tensor([-1.0]),),
                                      (torch.tensor([-10.0]),)], compile=False)


def test_a_bool_or_an_int_against_case_true_is_refused_at_the_case():
    # match50 s01: `m` is True or 1 by a tensor condition, one int64 stand-in whose paths the
    # tag does not know; `m is True` was False on both (20 for Python's 10, silently).
    fn = function_from_source(
        """
        def f(x):
            if x.sum() > 0:
                m = True
            else:
                m = 1
            match m:
                case True:
                    return x + 10
                case 1:
                    return x + 20
            return x
        """)
    with pytest.raises(StagingError, match="`is True` shows the kind") as info:
        autoconv.autoconv(fn)(torch.tensor([1.0]))
    assert info.value.lineno == 8


def test_an_equality_with_a_bool_or_an_int_is_staged():
    fn = function_from_source(
        """
        def f(x):
            if x.sum() > 0:
                m = True
            else:
                m = 1
            match m:
                case 1:
                    return x + 20
            return x
        """)
    assert_same_result(fn, [(torch.tensor([1.0]),), (torch.tensor([-1.0]),)])


def test_a_guard_that_rebinds_the_subject_name_leaves_the_subject():
    # match50 s02: the guard's `:=` rebinds `v`; the next case tests the subject (1), not 5
    # (the replay gave x + 1 for Python's x + 5, silently).
    fn = function_from_source(
        """
        def f(x, v):
            match v:
                case _ if (v := 5) > 100:
                    return x
                case 5:
                    return x + 1
                case _:
                    return x + v
        """)
    assert_same_result(fn, [(torch.zeros(1), 1)], staged=False)


def test_an_unbound_subject_raises_before_a_first_guard():
    # match50 s03: `case _ if ...:` first reads no subject; the replay ran its body where
    # Python raises for the unbound `mode` (x + 1 for an UnboundLocalError)
    fn = function_from_source(
        """
        def f(x, given):
            if given:
                mode = 'a'
            match mode:
                case _ if x.sum() > 0:
                    return x + 1
                case 'a':
                    return x + 2
            return x
        """)
    for run in (fn, autoconv.autoconv(fn)):
        with pytest.raises(UnboundLocalError):
            run(torch.tensor([1.0]), False)


def test_a_guard_call_that_rebinds_the_subject_leaves_the_subject():
    # match50 s04: `bump()` rebinds the nonlocal subject to 2; Python tests `case 2` against the
    # subject (1) and takes `case _` (the if chain read the name again: x + 2 for x + 3)
    fn = function_from_source(
        """
        def f(x):
            state = 1

            def bump():
                nonlocal state
                state = 2
                return False

            match state:
                case 1 if bump():
                    return x + 1
                case 2:
                    return x + 2
                case _:
                    return x + 3
        """)
    assert_same_result(fn, [(torch.zeros(1),)], staged=False)


def test_type_patterns_match_as_python():
    fn = function_from_source(
        """
        def f(v):
            match v:
                case bool():
                    return 'bool'
                case int():
                    return 'int'
                case float():
                    return 'float'
                case torch.Tensor():
                    return 'tensor'
                case str():
                    return 'str'
            return 'none'
        """)
    converted = autoconv.convert(fn)
    for v in (True, 1, 1.5, torch.ones(1), "s", None):
        assert converted(v) == fn(v)


def test_the_subject_and_the_guards_run_once_in_order():
    fn = function_from_source(
        """
        def f(values):
            it = iter(values)
            log = []
            match next(it):
                case 1 if log.append('g1') or True:
                    r = 'a'
                case 2 | 3 if log.append('g2'):
                    r = 'b'
                case _ if log.append('g3') is None:
                    r = 'c'
            return r, log, next(it)
        """)
    converted = autoconv.convert(fn)
    for values in ([1, 9], [2, 8], [4, 7]):
        assert converted(values) == fn(values)


def jumps(x, modes: list[str]):
    total = x
    for mode in modes:
        match mode:
            case "skip":
                continue
            case "stop":
                break
            case "ret":
                return total * 100
            case _:
                total = total + 1
    return total


@pytest.mark.parametrize("modes", [["a", "skip", "a", "stop", "a"], ["a", "ret"], ["a"]])
def test_break_continue_and_return_in_cases(modes):
    assert_same_result(jumps, [(torch.tensor([1.0]), modes)], staged=False)


def in_a_tensor_loop(x, mode: str):
    while x.sum() < 10:
        match mode:
            case "add":
                x = x + 1
            case "mul" if x.sum() > 2:
                x = x * 2
            case _:
                x = x + 3
    return x


@pytest.mark.parametrize("mode", ["add", "mul"])
def test_a_match_in_a_staged_while_loop(mode):
    assert_same_result(in_a_tensor_loop, [(torch.tensor([1.0]), mode),
                                          (torch.tensor([3.0]), mode)])


def break_in_a_guarded_case(x, mode: str):
    while x.sum() < 20:
        match mode:
            case "a" if x.sum() > 5:
                break
            case _:
                x = x + 1
    return x


def test_a_staged_break_in_a_guarded_case():
    assert_same_result(break_in_a_guarded_case, [(torch.tensor([1.0]), "a"),
                                                 (torch.tensor([7.0]), "a"),
                                                 (torch.tensor([30.0]), "a")])


# Patterns that bind names (NOTE [patterns that bind names] in runtime/matching.py), refused at
# the case before session 51.
@dataclasses.dataclass
class Point:
    x: object
    y: object


def taken_apart(x):
    total = x * 0
    for obj in [Point(0, x), Point(1, x * 3), [x, 2.0], (1, 2, 3, 4), {"k": x, "z": 1}, 5, "s",
                x]:
        match obj:
            case Point(x=0, y=yy):
                r = x * yy
            case Point(xx, yy) if yy.sum() > 0:  # (a staged guard after the bindings)
                r = x + xx + yy
            case [a, b]:
                r = a + b * x
            case [a, *rest, b]:
                r = a - b + len(rest) + x
            case {"k": v, **others}:
                r = v * x + len(others)
            case int(n) as m:
                r = x * n + m
            case torch.Tensor(ndim=1, shape=[size]):  # (a tensor is no Sequence: its shape is)
                r = x * size
            case other:
                r = x - 1 if isinstance(other, str) else x + 7
        total = total + r
    if total.sum() > 0:
        total = total * 2
    return total


def test_patterns_that_bind_names_take_the_subject_apart_as_python():
    # [46, 90] and [-2, -7]: `Point(1, -3x)` fails its guard on the second input and goes on
    # to `case other:`, on the first it takes the guarded case
    assert_same_result(taken_apart, [(torch.tensor([1.0, 2.0]),), (torch.tensor([-1.0, -2.0]),)])


def test_names_bound_before_a_failed_guard_stay_bound():
    fn = function_from_source(
        """
        def f(obj):
            a = b = 'before'
            match obj:
                case [a, b] if a > 5:
                    return 'guard', a, b
                case [a, *b, 9] | {"a": a, "b": [*b]} if False:
                    return 'never', a, b
                case {"k": {"j": [_, c]}} | Point(x=c, y=_) if False:
                    return 'never'
                case _:
                    return 'rest', a, b
        """, {"Point": Point})
    converted = autoconv.convert(fn)
    for obj in ([1, 2], [7, 2], (1, 2, 3), "ab", {"a": 1}):
        assert converted(obj) == fn(obj)


def tensor_test_binds(x):
    match [x.sum(), x]:
        case [0, b]:
            r = b
        case _:
            r = x + 1
    return r


@pytest.mark.parametrize("mode", ["replay", "export", "compile"])
def test_a_pattern_that_binds_with_a_tensor_test_is_refused_at_the_case(mode):
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(autoconv.convert(tensor_test_binds)(x), tensor_test_binds(x))  # (eager)
    with pytest.raises(StagingError, match=r"the pattern `case \[0, b\]:` binds names and "
                                           r"whether it matches depends on a traced tensor") as e:
        if mode == "replay":
            autoconv.autoconv(tensor_test_binds)(x)
        elif mode == "export":
            exported(tensor_test_binds, (x,))
        else:
            torch._dynamo.reset()
            torch.compile(autoconv.convert(tensor_test_binds), fullgraph=True,
                          backend="eager")(x)
    assert e.value.lineno == tensor_test_binds.__code__.co_firstlineno + 2


def alternatives_inside_a_pattern(x):
    total = x * 0
    for obj in ([x, (3, 1)], [x * 2, (1, 4)], [x, (2, 2)], [x, {"w": x * 3}], [(5, 0), x],
                [(0, 6), x * 2], [x, ((7, 0), 1)], [x, (1, (0, 8))]):
        match obj:
            case [y, ((a, 0) | (0, a), 1) | (1, (a, 0) | (0, a))]:
                r = y * a + 100
            case [y, (b, 1) | (1, b) | {"w": b}] if (y * b).sum() > 0:  # (a staged guard)
                r = y * b
            case [y, (b, 1) | (1, b) | {"w": b}]:
                r = y - b
            case [(a, 0) | (0, a), y]:
                r = y * a
            case _:
                r = x - 1
        total = total + r
    if total.sum() > 0:
        total = total * 2
    return total


def test_an_or_of_patterns_that_bind_inside_another_binds_the_first_that_matched():
    # (refused at the case before session 52, real51: NOTE [alternatives that bind inside a
    # pattern]) [492, 598] and [318, 264]: the guard's case on the first input, the one
    # after it on the second
    assert_same_result(alternatives_inside_a_pattern,
                       [(torch.tensor([1.0, 2.0]),), (torch.tensor([-1.0, -2.0]),)])
