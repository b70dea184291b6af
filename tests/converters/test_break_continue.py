"""BreakContinueConverter: break and continue become flags and guards."""

from support import assert_converts


def test_break_with_else():
    assert_converts(
        """
        def f(n):
            i = 0
            while i < n:
                if i > 3:
                    break
                i += 1
            else:
                i = -1
            return i
        """,
        """
        def f(n):
            i = 0
            did_break = False

            def loop_test(did_break, i, n):
                return ac.and_(ac.not_(did_break), lambda i, n: ac.compare(i, '<', n), (i, n), pure=True)

            def loop_body(did_break, i, n):

                def if_true(did_break):
                    did_break = True
                    return did_break,
                did_break, = ac.if_stmt(ac.compare(i, '>', 3), if_true, None, (did_break,), ('<break flag>',))

                def if_true_1(i):
                    i = ac.aug_assign(i, '+=', 1)
                    return i,
                i, = ac.if_stmt(ac.not_(did_break), if_true_1, None, (i,), ('i',), kept=(0,), after_jump='break')
                return did_break, i
            did_break, i = ac.while_stmt(loop_test, loop_body, (did_break, i), ('<break flag>', 'i'), (n,), kept=(1,))

            def if_true_2(i):
                i = -1
                return i,
            i, = ac.if_stmt(ac.not_(did_break), if_true_2, None, (i,), ('i',))
            return i
        """,
    )


def test_continue_in_for():
    assert_converts(
        """
        def f(xs):
            s = 0
            for x in xs:
                if x < 0:
                    continue
                s += x
            return s
        """,
        """
        def f(xs):
            s = 0

            def loop_body(x, s):
                did_continue = False

                def if_true(did_continue):
                    did_continue = True
                    return did_continue,
                did_continue, = ac.if_stmt(x < 0, if_true, None, (did_continue,), ('<continue flag>',))

                def if_true_1(s, x):
                    s = ac.aug_assign(s, '+=', x)
                    return s,
                s, = ac.if_stmt(ac.not_(did_continue), if_true_1, None, (s,), ('s',), (x,), kept=(0,), after_jump='continue')
                return s,
            s, = ac.for_stmt(xs, None, loop_body, (s,), ('s',), kept=(0,))
            return s
        """,
    )


def test_alias_checks_after_a_jump_are_not_guarded():
    # NOTE [alias checks after a jump are not guarded]: the check after an `if` that calls the
    # user's code and breaks runs on every path, with no `if not did_break:` of nothing around
    # it (a staged `if` with no state under dynamo)
    assert_converts(
        """
        def f(x):
            s = x * 0
            for v in x:
                s = s + v
                if g(v) > 2:
                    break
            return s
        """,
        """
        def f(x):
            s = x * 0
            did_break = False

            def extra_test(did_break, s):
                return ac.not_(did_break)

            def loop_body(v, did_break, s):
                s = s + v

                def if_true(did_break):
                    did_break = True
                    return did_break,
                did_break, = ac.if_stmt(ac.converted_call(g, v) > 2, if_true, None, (did_break,), ('<break flag>',))
                return did_break, s
            did_break, s = ac.for_stmt(x, extra_test, loop_body, (did_break, s), ('<break flag>', 's'), item_passed=True)
            return s
        """,
    )
