"""LogicalConverter: and / or / not / conditional expressions / chained comparisons."""

import torch

from support import assert_converts, assert_same_result


def test_bool_ops():
    assert_converts(
        """
        def f(a, b, c):
            return a and b or not c
        """,
        """
        def f(a, b, c):
            return ac.or_(ac.and_(a, lambda b: b, (b,), plain=True), lambda c: ac.not_(c), (c,))
        """,
    )


def test_if_exp():
    # (a returned choice of names is marked with its sources: NOTE [returned choices])
    assert_converts(
        """
        def f(a, b):
            return a if a > b else b
        """,
        """
        def f(a, b):
            chosen = a > b
            return ac.returned_choice(ac.if_exp(chosen, lambda a, b: a, lambda a, b: b, (a, b), plain=True), chosen, a, b)
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


def test_and_or_read_only_for_truth_get_test():
    # An if / while test, a comprehension condition and the operand of `not` read only the
    # truth value; where a side may not be a bool (`n`), the call says so. Sides that are bools
    # (comparisons, `not`) need nothing.
    assert_converts(
        """
        def f(n, x, xs):
            if n and x > 0:
                x = -x
            ys = [v for v in xs if v or n]
            return not (n or x), x > 0 and not n, n and x, ys
        """,
        """
        def f(n, x, xs):

            def if_true(x):
                x = -x
                return x,
            x, = ac.if_stmt(ac.and_(n, lambda x: x > 0, (x,), test=True, pure=True), if_true, None, (x,), ('x',))
            ys = [v for v in xs if ac.filter_test(ac.or_(v, lambda n: n, (n,), plain=True), '[v for v in xs if v or n]')]
            return ac.not_(ac.or_(n, lambda x: x, (x,), test=True, plain=True, pure=True)), ac.and_(x > 0, lambda n: ac.not_(n), (n,)), ac.and_(n, lambda x: x, (x,), plain=True), ys
        """,
    )


def test_plain_side_of_a_test_is_read_first_and_constant_comparisons_fold():
    # Read for its truth, a plain right side (a name, a constant) is read first: a Python value
    # whose truth decides the test makes it a Python bool (NOTE [a plain side that decides a
    # test]). A comparison of number constants is its constant; a constant that decides an
    # and / or read for its truth ends it, the sides before it grouped (fuzz seed 26, 225).
    assert_converts(
        """
        def f(c, p, flag):
            if c < p or 1 <= 2:
                c = c + 1
            while c > 9 and flag and 2 > 3 and c:
                c = c - 1
            return c < p or 1 <= 2
        """,
        """
        def f(c, p, flag):

            def if_true(c):
                c = c + 1
                return c,
            c, = ac.if_stmt(ac.or_(c < p, lambda : True, test=True, plain=True, pure=True), if_true, None, (c,), ('c',))

            def loop_test(c, flag):
                return ac.and_(ac.and_(c > 9, lambda flag: flag, (flag,), test=True, plain=True, pure=True), lambda : False, test=True, plain=True, pure=True)

            def loop_body(c, flag):
                c = c - 1
                return c,
            c, = ac.while_stmt(loop_test, loop_body, (c,), ('c',), (flag,))
            return ac.or_(c < p, lambda : True, plain=True)
        """,
    )


def int_and_bool_tests(n, x):
    """Sides of different dtypes (int64 and bool) in tests: Python reads only their truth."""
    total = torch.zeros((), dtype=torch.int64)
    if n and x > 0:
        total += 1
    if not (n or x < 0):
        total += 10
    while n and total < 5:
        total += 2
    return total


def test_int_and_bool_sides_in_tests_stage_everywhere():
    # Under torch.compile and export, dynamo traces the bodies and a failed cond cannot be
    # retried with promoted dtypes: the tests must stage as truth values from the start.
    t = torch.tensor
    assert_same_result(int_and_bool_tests, [(t(1), t(2)), (t(0), t(2)), (t(3), t(-1)),
                                            (t(0), t(-4))])


def test_identity_comparisons():
    # A constant set under tensor control flow is carried as an index: `is` goes through the
    # runtime, which compares indices (NOTE [constants under tensor control flow]).
    assert_converts(
        """
        def f(a, b):
            return a is None, a is not b, a is b is None
        """,
        """
        def f(a, b):
            return ac.is_(a, None), ac.is_not(a, b), ac.and_(ac.is_(a, b), lambda b: ac.is_(b, None), (b,))
        """,
    )


LIMIT = 3


def test_a_comparison_of_locals_read_for_truth_is_pure():
    # (NOTE [a comparison beside a traced test] in runtime/operators.py: not a subscript, a
    # global, nor a value read as such)
    assert_converts(
        """
        def f(x, i, n):
            if x > 0 and i < n:
                x = x + 1
            if x > 0 and x[i] > 0 or i < LIMIT:
                x = x + 2
            y = x > 0 and i < n
            return x, y
        """,
        """
        def f(x, i, n):

            def if_true(x):
                x = x + 1
                return x,
            x, = ac.if_stmt(ac.and_(x > 0, lambda i, n: i < n, (i, n), pure=True), if_true, None, (x,), ('x',))

            def if_true_1(x):
                x = x + 2
                return x,
            x, = ac.if_stmt(ac.or_(ac.and_(x > 0, lambda i, x: ac.getitem(x, i) > 0, (i, x)), lambda i: i < LIMIT, (i,)), if_true_1, None, (x,), ('x',))
            y = ac.and_(x > 0, lambda i, n: i < n, (i, n))
            return x, y
        """,
    )


def test_pure_sides_of_a_test_fold_into_the_sides_before_them():
    # (NOTE [pure sides of a test fold left]: a side comparing locals, a `not` of a local, a
    # chained comparison of locals and an and / or of them are computed beside the sides before
    # them; the sides after one that is not (a call) stay in its lambda)
    assert_converts(
        """
        def f(x, y, k, q, done):
            if y != q and x < k and g(x) < 2 and (k == q or x >= y == q):
                x = x + 1
            while not done and (k < q and x > 0):
                x = x - 1
            return x
        """,
        """
        def f(x, y, k, q, done):

            def if_true(x):
                x = x + 1
                return x,
            x, = ac.if_stmt(ac.and_(ac.and_(y != q, lambda k, x: x < k, (k, x), pure=True), lambda k, q, x, y: ac.and_(ac.converted_call(g, x) < 2, lambda k, q, x, y: ac.or_(k == q, lambda q, x, y: ac.and_(x >= y, lambda q, y: y == q, (q, y), pure=True), (q, x, y), pure=True), (k, q, x, y), pure=True), (k, q, x, y)), if_true, None, (x,), ('x',))

            def loop_test(x, done, k, q):
                return ac.and_(ac.not_(done), lambda k, q, x: ac.and_(k < q, lambda x: x > 0, (x,), pure=True), (k, q, x), pure=True)

            def loop_body(x, done, k, q):
                x = x - 1
                return x,
            x, = ac.while_stmt(loop_test, loop_body, (x,), ('x',), (done, k, q))
            return x
        """,
    )
