"""LogicalConverter: and / or / not / conditional expressions / chained comparisons."""

from support import assert_converts


def test_bool_ops():
    assert_converts(
        """
        def f(a, b, c):
            return a and b or not c
        """,
        """
        def f(a, b, c):
            return ac.or_(ac.and_(a, lambda b: b, (b,)), lambda c: ac.not_(c), (c,))
        """,
    )


def test_if_exp():
    assert_converts(
        """
        def f(a, b):
            return a if a > b else b
        """,
        """
        def f(a, b):
            return ac.if_exp(a > b, lambda a, b: a, lambda a, b: b, (a, b))
        """,
    )


def test_chained():
    assert_converts(
        """
        def f(a, b, c):
            return a < b <= c, a < g(b) < c
        """,
        """
        def f(a, b, c):
            return ac.and_(a < b, lambda b, c: b <= c, (b, c)), ac.and_(a < (compared := ac.converted_call(g, b)), lambda c, compared: compared < c, (c, compared))
        """,
    )
