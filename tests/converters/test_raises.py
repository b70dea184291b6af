"""RaiseConverter: a raise becomes `ac.raise_` and a lowered return, unless a try / with of the
function may catch it."""

import pytest

import autoconv
from support import assert_converts, function_from_source


def test_raise_under_condition_is_a_lowered_return():
    assert_converts(
        """
        def f(x):
            if x > 0:
                raise ValueError("negative")
            return x
        """,
        """
        def f(x):
            do_return = False
            retval = ac.Undefined('return value')

            def if_true(retval, x):
                ac.raise_(ValueError('negative'))
                do_return = True
                return retval,

            def if_false(retval, x):
                do_return = True
                retval = x
                return retval,
            retval, = ac.if_stmt(x > 0, if_true, if_false, (retval,), ('<return value>',), (x,))
            return retval
        """,
    )


def test_function_without_return_value_returns_none():
    # `raise ... from None` keeps its cause; falling off the end still gives None
    assert_converts(
        """
        def check(x):
            if x < 0:
                raise ValueError("negative") from None
        """,
        """
        def check(x):
            do_return = False
            retval = None

            def if_true():
                ac.raise_(ValueError('negative'), None)
                do_return = True
                return ()
            ac.if_stmt(x < 0, if_true, None, (), ())
            return retval
        """,
    )


def test_raise_a_try_may_catch_stays():
    # (a body of two statements: one assignment is staged as `ac.try_value` and an `if`, NOTE
    # [a try around a value the graph checks] in runtime/fallible.py)
    assert_converts(
        """
        def f(x):
            try:
                y = x[0]
                z = y + 1
            except IndexError:
                raise ValueError("empty")
            return z
        """,
        """
        def f(x):
            try:
                y = x[0]
                z = y + 1
            except IndexError:
                raise ValueError('empty')
            return z
        """,
    )


def test_handlers_that_could_catch_a_staging_error_let_it_through():
    # IndexError cannot catch a StagingError (a TypeError); Exception, a tuple holding
    # TypeError and a bare except can (NOTE [a branch that raises while traced])
    assert_converts(
        """
        def f(x):
            try:
                y = x[0]
            except IndexError:
                y = 0
            except (KeyError, TypeError):
                y = 1
            except Exception as error:
                y = error
            except:
                y = 2
            return y
        """,
        """
        def f(x):
            try:
                y = x[0]
            except IndexError:
                y = 0
            except (KeyError, TypeError):
                ac.reraise_staging_error()
                y = 1
            except Exception as error:
                ac.reraise_staging_error()
                y = error
            except:
                ac.reraise_staging_error()
                y = 2
            return y
        """,
    )


def test_final_raise_and_bare_raise():
    assert_converts(
        """
        def fail(message):
            raise RuntimeError(message)
        """,
        """
        def fail(message):
            return ac.raise_(RuntimeError(message))
        """,
    )


@pytest.mark.parametrize("value, expected", [(1, 1), (-1, ValueError)])
def test_converted_raise_runs_as_python(value, expected):
    fn = function_from_source("""
        def f(x):
            if x < 0:
                raise ValueError("negative")
            return x
        """)
    converted = autoconv.convert(fn)
    if expected is ValueError:
        with pytest.raises(ValueError, match="negative"):
            converted(value)
    else:
        assert converted(value) == expected
