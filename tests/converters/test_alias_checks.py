"""The alias-check pass: `ac.check_aliases()` after the statements that may update a tensor in
place, and none after those that cannot (NOTE [names that only hold numbers])."""

import textwrap

import gast
import pytest

import autoconv
from autoconv.converters.alias_checks import number_names
from support import function_from_source


def _checks_after(source: str) -> list:
    """The user's statements (as converted) that a check follows, in order."""
    lines = autoconv.to_code(function_from_source(source)).strip().splitlines()
    return [lines[i - 1].strip() for i, line in enumerate(lines)
            if line.strip() == "ac.check_aliases()"]


def test_a_counter_of_python_numbers_is_not_followed_by_a_check():
    assert _checks_after("""
        def f(x):
            i = 0
            t = 0.0
            h = 0.1
            y = x[0]
            i += 1
            t += h
            h *= 1.5
            y += 1
            return x, i, t, y
    """) == ["ac.write_back_item(y, x, chosen)"]  # (after `y += 1`'s write-back)


def test_an_augmented_assignment_of_a_name_that_may_hold_a_tensor_is_checked():
    # `n` is a parameter, `k` a loop's target, `m` bound to a call on one path
    assert _checks_after("""
        def f(x, n):
            m = 0
            if n > 1:
                m = x.sum()
            n += 1
            m += 1
            for k in x:
                k += 1
            return n, m
    """) == ["n += 1", "m = ac.aug_assign(m, '+=', 1)", "k = ac.aug_assign(k, '+=', 1)",
             "ac.for_stmt(x, None, loop_body, (), (), item_updated=True)"]


@pytest.mark.parametrize("source, expected", [
    ("def f(x):\n    t = 0.0\n    t += h\n    h = 0.1\n    h *= 2 ** -1\n", {"t", "h"}),
    ("def f(x):\n    h = 0.1\n    h = min(h, 1.0)\n", set()),
    ("def f(h):\n    h += 1\n", set()),
    ("def f(x):\n    global g\n    g = 0\n", set()),
    ("def f(x):\n    i = 0\n    for i in range(3):\n        pass\n", set()),
    ("def f(x):\n    a, b = 0, 1\n    c = -1\n", {"c"}),
    ("def f(x):\n    i = 0\n    def g(i):\n        return i\n", set()),
    ("def f(x):\n    i = 0\n    import i\n", set()),
    ("def f(x):\n    s = 'a'\n    n = True\n", {"n"}),
])
def test_names_that_only_hold_numbers(source, expected):
    assert number_names(gast.parse(textwrap.dedent(source)).body[0]) == expected
