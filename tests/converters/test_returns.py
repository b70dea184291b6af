"""ReturnConverter: returns anywhere become do_return / retval and one final return."""

from support import assert_converts


def test_early_return():
    assert_converts(
        """
        def f(x):
            if x > 0:
                return x
            return -x
        """,
        """
        def f(x):
            do_return = False
            retval = ac.Undefined('return value')
            which = -1

            def if_true(retval, which, x):
                which = 0
                do_return = True
                retval = x
                return retval, which

            def if_false(retval, which, x):
                do_return = True
                retval = -x
                return retval, which
            retval, which = ac.if_stmt(x > 0, if_true, if_false, (retval, which), ('<return value>', '<return taken>'), (x,))
            return ac.returned_path(retval, which, [x])
        """,
    )


def test_only_final_return_is_kept():
    assert_converts(
        """
        def f(x):
            y = x + 1
            return y
        """,
        """
        def f(x):
            y = x + 1
            return y
        """,
    )


def test_return_in_loop():
    assert_converts(
        """
        def f(xs, t):
            for x in xs:
                if x == t:
                    return x
            return t
        """,
        """
        def f(xs, t):
            do_return = False
            retval = ac.Undefined('return value')
            which = -1

            def extra_test(do_return, retval, which, t):
                return ac.not_(do_return)

            def loop_body(x, do_return, retval, which, t):

                def if_true(do_return, retval, which, x):
                    which = 0
                    do_return = True
                    retval = x
                    return do_return, retval, which
                do_return, retval, which = ac.if_stmt(x == t, if_true, None, (do_return, retval, which), ('<return flag>', '<return value>', '<return taken>'), (x,))
                return do_return, retval, which
            do_return, retval, which = ac.for_stmt(xs, extra_test, loop_body, (do_return, retval, which), ('<return flag>', '<return value>', '<return taken>'), (t,))

            def if_true_1(retval, which, t):
                which = 1
                do_return = True
                retval = t
                return retval, which
            retval, which = ac.if_stmt(ac.not_(do_return), if_true_1, None, (retval, which), ('<return value>', '<return taken>'), (t,), after_jump='return or raise')
            return ac.returned_path(retval, which, ['x', t])
        """,
    )


def test_return_out_of_try_and_its_else():
    # the else block runs only when the body did not return; finally runs either way
    assert_converts(
        """
        def f(x):
            try:
                if x > 0:
                    return x
            except KeyError:
                pass
            else:
                x = x * 2
            return x
        """,
        """
        def f(x):
            do_return = False
            retval = ac.Undefined('return value')
            which = -1
            try:

                def if_true(do_return, retval, which, x):
                    which = 0
                    do_return = True
                    retval = x
                    return do_return, retval, which
                do_return, retval, which = ac.if_stmt(x > 0, if_true, None, (do_return, retval, which), ('<return flag>', '<return value>', '<return taken>'), (x,))
            except KeyError:
                pass
            else:

                def if_true_1(x):
                    x = x * 2
                    return x,
                x, = ac.if_stmt(ac.not_(do_return), if_true_1, None, (x,), ('x',))

            def if_true_2(retval, which, x):
                which = 1
                do_return = True
                retval = x
                return retval, which
            retval, which = ac.if_stmt(ac.not_(do_return), if_true_2, None, (retval, which), ('<return value>', '<return taken>'), (x,), after_jump='return or raise')
            return ac.returned_path(retval, which, ['x', x])
        """,
    )


def test_return_from_except_handler():
    assert_converts(
        """
        def as_tuple(v):
            try:
                iter(v)
            except TypeError:
                return (v,)
            return tuple(v)
        """,
        """
        def as_tuple(v):
            do_return = False
            retval = ac.Undefined('return value')
            try:
                iter(v)
            except TypeError:
                ac.reraise_staging_error()
                do_return = True
                retval = v,

            def if_true(retval, v):
                do_return = True
                retval = tuple(v)
                return retval,
            retval, = ac.if_stmt(ac.not_(do_return), if_true, None, (retval,), ('<return value>',), (v,), after_jump='return or raise')
            return retval
        """,
    )
