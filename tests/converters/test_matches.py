"""matches.py: a `match` becomes an if/elif chain (NOTE [match statements as if chains]); the
names a pattern binds are assigned in its branch, a `|` of them by the first that matched."""

import pytest
import torch

import autoconv
from support import assert_converts, assert_same_result, function_from_source


def test_type_dispatch_with_a_guard_becomes_an_if_chain():
    # (linear_operator's to_linear_operator, tester50 s02)
    assert_converts(
        """
        def f(obj):
            match obj:
                case _ if torch.is_tensor(obj):
                    return obj
                case int() | float():
                    return torch.tensor(obj)
                case _:
                    raise TypeError("no")
        """,
        """
        def f(obj):
            do_return = False
            retval = ac.Undefined('return value')
            which = -1

            def if_true_1(retval, which, obj):
                which = 0
                do_return = True
                retval = obj
                return retval, which

            def if_false_1(retval, which, obj):

                def if_true(retval, obj):
                    do_return = True
                    retval = ac.number_call(torch.tensor, obj)
                    return retval,

                def if_false(retval, obj):
                    ac.raise_(TypeError('no'))
                    do_return = True
                    return retval,
                retval, = ac.if_stmt(ac.or_(ac.isinstance_(obj, int), lambda obj: ac.isinstance_(obj, float), (obj,), test=True), if_true, if_false, (retval,), ('<return value>',), (obj,))
                return retval, which
            retval, which = ac.if_stmt(ac.is_tensor_(obj), if_true_1, if_false_1, (retval, which), ('<return value>', '<return taken>'), (obj,))
            return ac.returned_path(retval, which, [obj])
        """)


def scaled(x, mode):
    match mode:
        case "double" | "twice":
            y = x * 2
        case None:
            y = x
        case _ if x.sum() > 0:
            y = x - 1
        case _:
            y = x + 1
    return y


@pytest.mark.parametrize("mode", ["double", None, "other"])
def test_value_patterns_and_a_tensor_guard_match_as_python(mode):
    # (the tensor guard is a staged `if`: each input takes one of its paths)
    assert_same_result(scaled, [(torch.tensor([1.0, 2.0]), mode),
                                (torch.tensor([-1.0, -2.0]), mode)],
                       staged=mode == "other", compile=mode == "other")


def test_the_subject_is_evaluated_once():
    calls = []

    def subject(x):
        calls.append(x)
        return x

    fn = function_from_source(
        """
        def f(x):
            match subject(x):
                case 1:
                    return "one"
                case 2:
                    return "two"
            return "other"
        """, {"subject": subject})
    assert [autoconv.convert(fn)(k) for k in (1, 2, 3)] == ["one", "two", "other"]
    assert calls == [1, 2, 3]


def test_a_class_pattern_that_binds_tests_its_structure_then_binds():
    # (NOTE [patterns that bind names] in runtime/matching.py: the test a Python bool, then
    # the binding, in the branch)
    assert_converts(
        """
        def f(obj):
            match obj:
                case Point(x=0, y=y):
                    return y
            return obj
        """,
        """
        def f(obj):
            do_return = False
            retval = ac.Undefined('return value')
            which = -1
            pattern_matched = ac.matched(ac.and_(ac.match_class(obj, Point, 0, ('x', 'y')), lambda obj: obj.x == 0, (obj,)), 'Point(x=0, y=y)')

            def if_true(retval, which, obj):
                y = obj.y
                which = 0
                do_return = True
                retval = y
                return retval, which

            def if_false(retval, which, obj):
                which = 1
                do_return = True
                retval = obj
                return retval, which
            retval, which = ac.if_stmt(pattern_matched, if_true, if_false, (retval, which), ('<return value>', '<return taken>'), (obj,))
            return ac.returned_path(retval, which, ['y', obj])
        """)


@pytest.mark.parametrize("pattern, bound, subjects", [
    ("[([a] | (a, _))]", "a", ([[5]], [(6, 7)], [(6,)], [[1, 2, 3]], [], "ab")),
    ("{'k': [v] | (1, v)}", "v", ({"k": [3]}, {"k": (1, 4)}, {"k": (2, 4)}, {"j": [3]}, [3])),
    ("[x, ((a, 0) | (0, a), 1) | (1, (a, 0) | (0, a))]", "x, a",
     ([9, ((7, 0), 1)], [9, (1, (0, 8))], [9, (1, (2, 8))], [9, ((0, 0), 1)], [9, (1, 1)]))])
def test_an_or_of_patterns_that_bind_inside_another_binds_the_first_that_matched(
        pattern, bound, subjects):
    # (refused at its line before session 52: NOTE [alternatives that bind inside a pattern])
    fn = function_from_source(
        f"""
        def f(obj):
            match obj:
                case {pattern}:
                    return {bound}
            return 0
        """)
    converted = autoconv.convert(fn)
    for obj in subjects:
        assert converted(obj) == fn(obj), obj


def test_a_walrus_in_a_guard_after_a_pattern_is_refused_as_a_guard():
    fn = function_from_source(
        """
        def f(v):
            match v:
                case 1 if (w := v + 1) > 1:
                    return w
            return 0
        """)
    with pytest.raises(autoconv.ConversionError, match="`:=` in the guard of a `match` case"):
        autoconv.to_code(fn)
