"""DataConverter: reads and writes of `.data` go through the runtime (NOTE [writes through
.data] in autoconv/converters/control_flow.py)."""

from support import assert_converts


def test_reads_and_stores():
    assert_converts(
        """
        def f(w, v, i):
            w.data -= v
            w.data[i] = v
            w.data[0] = 1.0
            w.data.mul_(0.5)
            w.data = v
            return w.data
        """,
        """
        def f(w, v, i):
            ac.data_update_(w, ac.aug_assign(ac.data_(w), '-=', v))
            ac.data_update_(w, ac.setitem(ac.data_(w), i, v))
            ac.data_(w)[0] = 1.0
            ac.data_(w).mul_(0.5)
            ac.set_data_(w, v)
            return ac.data_(w)
        """,
    )


def test_a_loop_reading_the_owner_updates_it_not_an_alias():
    # The body reads `w` too: `w.data` is read in the body from the loop's own `w`, which the
    # loop carries (an alias read before it was a second tensor: a stale break test)
    assert_converts(
        """
        def f(w, n):
            for i in range(n):
                w.data -= 0.5 * w
                w.data.mul_(0.5)
            return w
        """,
        """
        def f(w, n):

            def loop_body(i, w):
                ac.data_update_(w, ac.aug_assign(ac.data_(w), '-=', 0.5 * w))
                ac.data_(w).mul_(0.5)
                return w,
            w, = ac.for_stmt(ac.range_(n), None, loop_body, (w,), ('w',), kept=(0,))
            return w
        """,
    )


def test_a_loop_reading_the_chain_only_keeps_its_alias():
    # (`o.data` may be an object's tensor attribute: an alias, read by `ac.data_or_`)
    assert_converts(
        """
        def f(o, n):
            for i in range(n):
                o.data.mul_(0.5)
            return o
        """,
        """
        def f(o, n):
            o_data = ac.data_or_(o, ac.Undefined('o.data'))

            def loop_body(i, o, o_data):
                o_data.mul_(0.5)
                return ()
            ac.for_stmt(ac.range_(n), None, loop_body, (), (), (o, o_data), updated=((0, 'o'), (1, 'o.data')))
            return o
        """,
    )
