"""ListConverter: append / extend statements become assignments of the list."""

from support import assert_converts


def test_append_extend():
    assert_converts(
        """
        def f(xs):
            out = []
            for x in xs:
                out.append(x)
            out.extend(xs)
            return out
        """,
        """
        def f(xs):
            out = []

            def loop_body(x, out):
                out = ac.list_append(out, x)
                return out,
            out, = ac.for_stmt(xs, None, loop_body, (out,), ('out',))
            out = ac.list_extend(out, xs)
            return out
        """,
    )
