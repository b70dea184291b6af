"""Bound flags (autoconv/converters/unbound.py): which names get one, and where reads check it."""

from __future__ import annotations

import autoconv
from support import assert_converts, function_from_source


def test_a_name_bound_on_some_paths_of_a_loop_gets_a_flag_and_checked_reads():
    assert_converts(
        """
        def f(x):
            for v in x:
                if v > 0:
                    last = v
            return last
        """,
        """
        def f(x):
            last_bound = False
            last = ac.Undefined('last', checked=True)

            def loop_body(v, last, last_bound):
                try:
                    last
                except NameError:
                    last = ac.Undefined('last', checked=True)

                def if_true(last, last_bound, v):
                    last = v
                    last_bound = True
                    return last, last_bound
                last, last_bound = ac.if_stmt(v > 0, if_true, None, (last, last_bound), ('last', '<last bound>'), (v,))
                return last, last_bound
            last, last_bound = ac.for_stmt(x, None, loop_body, (last, last_bound), ('last', '<last bound>'))
            return ac.ld(last, last_bound, 'last')
        """,
    )


def _code(source):
    return autoconv.to_code(function_from_source(source))


def test_a_read_where_the_name_is_bound_is_not_checked():
    code = _code("""
    def f(x):
        for v in x:
            if v > 0:
                last = v
        last = x
        return last
    """)
    assert "ac.ld" not in code and "bound" not in code


def test_a_break_before_the_binding_leaves_it_unbound_at_the_loop_end():
    code = _code("""
    def f(x):
        for v in x:
            if v < 0:
                break
            last = v
        return last
    """)
    assert "ac.ld(last, last_bound, 'last')" in code


def test_names_read_by_a_lambda_are_left_alone():
    code = _code("""
    def f(x):
        for v in x:
            if v > 0:
                last = v
        g = lambda: last
        return g()
    """)
    assert "bound" not in code
    code = _code("""
    def f(x):
        for v in x:
            try:
                pass
            except ValueError as last:
                pass
            if v > 0:
                last = v
        return last
    """)
    # (since loud56 an `except ... as` name is followed: the handler binds a fresh name and
    # unbinds `last` when it ends, NOTE [names a branch unbinds])
    assert "except ValueError as last_caught:" in code
    assert "last = ac.Undefined('last', checked=True)\n            last_bound = False" in code
    assert "ac.ld(last, last_bound, 'last')" in code


def test_a_del_of_a_flagged_name_unbinds_it_and_checks_it_first():
    code = _code("""
    def f(x):
        e = x
        if x.sum() > 0:
            del e
        del e
        return x
    """)
    assert "del e" not in code
    assert "ac.ld(e, e_bound, 'e')\n    e = ac.Undefined('e', checked=True)" in code


def test_an_augmented_assignment_checks_before_it():
    code = _code("""
    def f(x):
        for v in x:
            if v > 0:
                y = v
        y += 1
        return y
    """)
    assert "ac.ld(y, y_bound, 'y')\n" in code
