"""SubscriptConverter: computed indices go through ac.getitem / ac.setitem; constant ones stay."""

from support import assert_converts


def test_load_store():
    assert_converts(
        """
        def f(x, i):
            y = x[i] + x[0] + x[1:]
            x[i] = y
            return x[:, i]
        """,
        """
        def f(x, i):
            y = ac.getitem(x, i) + x[0] + x[1:]
            x = ac.setitem(x, i, y)
            return ac.getitem(x, (slice(None, None, None), i))
        """,
    )
