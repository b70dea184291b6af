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
            m, failed = ac.try_value(ZeroDivisionError, lambda n: 10.0 / n, (n,))

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
            return x * m
        """,
    )
