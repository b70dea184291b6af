"""AssertConverter: assert becomes ac.assert_ with a lazily evaluated message."""

from support import assert_converts


def test_with_and_without_message():
    assert_converts(
        """
        def f(x):
            assert x > 0
            assert x < 10, f"too big: {x}"
            return x
        """,
        """
        def f(x):
            ac.assert_(x > 0)
            ac.assert_(x < 10, lambda : ac.fstring_('too big: ', ac.formatted_(x, '', '', 'x')))
            return x
        """,
    )
