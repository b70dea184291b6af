"""`match` statements against plain Python (PEP 634): the subject evaluated once, `case True:`
an identity, `case 1:` an equality, class patterns `isinstance`, guards in order, in autoconv's
replay, torch.export and torch.compile (NOTE [match statements as if chains])."""

import enum

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result, function_from_source


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
