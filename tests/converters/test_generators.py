"""Generators: a generator nested in a converted function stays as written; the function around
it converts. A function that is itself a generator is refused at its first `yield`."""

import pytest
import torch

import autoconv
from support import assert_converts, assert_same_result, function_from_source


def test_nested_generator_is_left_as_written():
    assert_converts(
        """
        def f(x, n):
            def countdown(k):
                while k > 0:
                    if k % 2:
                        yield k
                    k -= 1
                return

            if x > 0:
                x = x + sum(countdown(n))
            return x
        """,
        """
        def f(x, n):

            def countdown(k):
                while k > 0:
                    if k % 2:
                        yield k
                    k -= 1
                return

            def if_true(x, countdown, n):
                x = x + ac.sum_(countdown(n))
                return x,
            x, = ac.if_stmt(x > 0, if_true, None, (x,), ('x',), (countdown, n))
            return x
        """,
    )


def test_list_appends_in_a_nested_generator_are_left_as_written():
    assert_converts(
        """
        def f(x):
            def pairs(k):
                seen = []
                for i in range(k):
                    seen.append(i)
                    yield seen
            vals = []
            vals.append(x)
            return vals, pairs
        """,
        """
        def f(x):

            def pairs(k):
                seen = []
                for i in range(k):
                    seen.append(i)
                    yield seen
            vals = []
            vals = ac.list_append(vals, x)
            return vals, pairs
        """,
    )


def count_odd_down(k):
    """A module-level generator, called from converted code as it is."""
    while k > 0:
        if k % 2:
            yield k
        k -= 1


def sums_generators(x):
    def squares(n):
        for i in range(n):
            yield i * i

    if x.sum() > 0:
        x = x + sum(squares(3)) + sum(count_odd_down(5))
    else:
        x = x - len(list(count_odd_down(4)))
    return x


def test_function_calling_generators_matches_python_everywhere():
    # Traced, exported and under torch.compile: the generators run as Python while tracing.
    assert_same_result(sums_generators, [(torch.ones(2),), (-torch.ones(2),)])


@pytest.mark.parametrize("source, line, construct", [
    ("def f(x):\n    def g():\n        yield 1\n    yield x\n", 4, "yield"),
    ("def f(x):\n    yield from range(x)\n", 2, "yield from"),
    ("def f(x):\n    if x:\n        return (yield x)\n    yield 2\n", 3, "yield"),
])
def test_function_that_is_a_generator_is_refused_at_its_first_yield(source, line, construct):
    fn = function_from_source(source)
    with pytest.raises(autoconv.ConversionError) as info:
        autoconv.to_code(fn)
    assert info.value.kind == "generator"
    assert info.value.lineno == line
    assert f"`{construct}` makes this a generator" in str(info.value)


def test_generator_called_from_converted_code_is_not_converted():
    # Converting it would raise: the runtime calls generators as they are.
    fn = function_from_source("""
        def f(x):
            return list(gen(x))
        """, {"gen": count_odd_down})
    assert autoconv.convert(fn)(5) == [5, 3, 1]
