"""TryConverter: a `try` around a torch operation that fails on some data is staged as its
`_ex` form and an `if`, or its call refused when traced (runtime/fallible.py)."""

from support import assert_converts


def test_one_assignment_and_a_handler_binding_it_become_try_call_and_an_if():
    assert_converts(
        """
        def f(A):
            try:
                L = torch.linalg.cholesky(A)
            except RuntimeError:
                L = torch.linalg.cholesky(A + 1)
            return L
        """,
        """
        def f(A):
            L, failed = ac.try_call(RuntimeError, torch.linalg.cholesky, A)

            def if_true(L, A):
                L = torch.linalg.cholesky(A + 1)
                return L,
            L, = ac.if_stmt(failed, if_true, None, (L,), ('L',), (A,))
            return L
        """,
    )


def test_other_shapes_call_through_fallible():
    assert_converts(
        """
        def f(A):
            try:
                L = torch.linalg.cholesky(A)
                L = L * 2
            except RuntimeError:
                L = A
            return L
        """,
        """
        def f(A):
            try:
                L = ac.fallible(torch.linalg.cholesky, '`except RuntimeError:` (line 6)')(A)
                L = L * 2
            except RuntimeError:
                L = A
            return L
        """,
    )


def test_a_handler_that_cannot_catch_the_error_is_left_alone():
    assert_converts(
        """
        def f(A):
            try:
                L = torch.linalg.cholesky(A)
            except ValueError:
                L = A
            return L
        """,
        """
        def f(A):
            try:
                L = torch.linalg.cholesky(A)
            except ValueError:
                L = A
            return L
        """,
    )


def test_one_assignment_of_a_value_the_graph_may_check_becomes_try_value_and_an_if():
    # NOTE [a try around a value the graph checks] (runtime/fallible.py)
    assert_converts(
        """
        def f(x, n):
            try:
                m = 10.0 / n
            except ZeroDivisionError:
                m = -1.0
            return x * m
        """,
        """
        def f(x, n):
            m, failed = ac.try_value(ZeroDivisionError, lambda n: ac.binary(10.0, '/', n), (n,))

            def if_true(m):
                m = -1.0
                return m,
            m, = ac.if_stmt(failed, if_true, None, (m,), ('m',))
            return ac.binary(x, '*', m)
        """,
    )


def test_a_value_with_a_call_of_the_users_stays_a_try():
    assert_converts(
        """
        def f(x, n):
            try:
                m = helper(n)
            except ZeroDivisionError:
                m = -1.0
            return x * m
        """,
        """
        def f(x, n):
            try:
                m = ac.converted_call(helper, n)
            except ZeroDivisionError:
                m = -1.0
            return ac.binary(x, '*', m)
        """,
    )


def test_a_returned_value_the_graph_may_check_becomes_try_value_an_if_and_a_return():
    # (tester22 s10) the division of two items is the runtime's, whose check is the try's
    # failure; the handler leaves, so the value is returned after it
    assert_converts(
        """
        def f(a, b):
            try:
                return a.item() / b.item()
            except ZeroDivisionError:
                return 0.0
        """,
        """
        def f(a, b):
            do_return = False
            retval = ac.Undefined('return value')
            value, failed = ac.try_value(ZeroDivisionError, lambda a, b: ac.binary(a.item(), '/', b.item()), (a, b))

            def if_true(retval, value):
                do_return = True
                retval = 0.0
                return retval,

            def if_false(retval, value):
                do_return = True
                retval = value
                return retval,
            retval, = ac.if_stmt(failed, if_true, if_false, (retval,), ('<return value>',), (value,))
            return retval
        """,
    )


def test_a_returned_value_whose_handler_falls_through_stays_a_try():
    assert_converts(
        """
        def f(a, b):
            try:
                return a.item() / b.item()
            except ZeroDivisionError:
                pass
            return 0.0
        """,
        """
        def f(a, b):
            do_return = False
            retval = ac.Undefined('return value')
            try:
                do_return = True
                retval = ac.binary(a.item(), '/', b.item())
            except ZeroDivisionError:
                pass

            def if_true(retval):
                do_return = True
                retval = 0.0
                return retval,
            retval, = ac.if_stmt(ac.not_(do_return), if_true, None, (retval,), ('<return value>',), after_jump='return or raise')
            return retval
        """,
    )


def test_a_row_read_in_a_try_catching_index_errors_is_the_runtimes():
    # (tester22 s11) NOTE [a row of a tensor of data-dependent length in a try]
    assert_converts(
        """
        def f(x):
            try:
                first = x[x > 0][0].item()
            except IndexError:
                first = -1.0
            return first
        """,
        """
        def f(x):
            first, failed = ac.try_value(IndexError, lambda x: ac.getitem(ac.getitem(x, x > 0), 0).item(), (x,))

            def if_true(first):
                first = -1.0
                return first,
            first, = ac.if_stmt(failed, if_true, None, (first,), ('first',))
            return first
        """,
    )
