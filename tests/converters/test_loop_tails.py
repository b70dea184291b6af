"""LoopTailConverter: the tail a `while True:` runs on its last trip moves after the loop
(NOTE [a loop's exit tail] in autoconv/converters/loop_tails.py)."""

import ast
import textwrap

import gast

from autoconv.converters.loop_tails import LoopTailConverter
from autoconv.naming import Namer
from autoconv.transformer import Context


def _rotated(source: str) -> str:
    tree = gast.parse(textwrap.dedent(source))
    LoopTailConverter.transform(tree, Context("<test>", Namer(list(gast.walk(tree)))))
    return ast.unparse(gast.gast_to_ast(tree))


def _same(source: str, expected: str) -> None:
    assert _rotated(source) == ast.unparse(ast.parse(textwrap.dedent(expected)))


def test_the_statements_after_the_last_continue_move_after_the_loop():
    # (torchode's AutoDiffAdjoint.solve)
    _same("""
        def f(x):
            stats = {}
            while True:
                x = x * 2
                if x.sum() < 10:
                    continue
                stats["n"] = x.sum()
                if flag:
                    return x, stats
                else:
                    return x, None
    """, """
        def f(x):
            stats = {}
            while True:
                x = x * 2
                if x.sum() < 10:
                    continue
                break
            stats["n"] = x.sum()
            if flag:
                return x, stats
            else:
                return x, None
    """)


def test_a_final_if_that_leaves_the_loop_becomes_a_break_and_its_breaks_are_dropped():
    _same("""
        def f(x):
            while 1:
                x = x * 2
                if x.sum() > 10:
                    hist.append(x)
                    if flag:
                        break
                    else:
                        raise ValueError(x)
            return x
    """, """
        def f(x):
            while 1:
                x = x * 2
                if x.sum() > 10:
                    break
            hist.append(x)
            if flag:
                pass
            else:
                raise ValueError(x)
            return x
    """)


def test_an_if_that_leaves_the_loop_before_the_body_ends():
    _same("""
        def f(x):
            while True:
                if x.sum() > 10:
                    out = x
                    return out
                x = x + 1
    """, """
        def f(x):
            while True:
                if x.sum() > 10:
                    break
                x = x + 1
            out = x
            return out
    """)


def test_a_loop_with_another_way_to_the_statements_after_it_stays():
    for source in [
        # another break
        """
        def f(x):
            while True:
                if x.sum() > 100:
                    break
                if x.sum() < 10:
                    continue
                return x
            return -x
        """,
        # a tail that may go on to the next trip
        """
        def f(x):
            while True:
                if x.sum() < 10:
                    continue
                if x.sum() < 20:
                    x = x + 1
                    continue
                return x
        """,
        # a tail that may fall off its end into the next trip
        """
        def f(x):
            while True:
                if x.sum() < 10:
                    continue
                if x.sum() < 20:
                    return x
                else:
                    x = x + 1
        """,
        # a test that may be false, an `else` block
        """
        def f(x):
            while x.sum() < 10:
                if x.sum() < 5:
                    continue
                return x
            return -x
        """,
        """
        def f(x):
            while True:
                if x.sum() < 5:
                    continue
                return x
            else:
                x = -x
        """,
    ]:
        assert _rotated(source) == ast.unparse(ast.parse(textwrap.dedent(source)))


def test_a_break_of_an_inner_loop_is_its_own():
    _same("""
        def f(x):
            while True:
                for i in range(3):
                    if i > 1:
                        break
                if x.sum() < 10:
                    continue
                for i in range(3):
                    break
                return x
    """, """
        def f(x):
            while True:
                for i in range(3):
                    if i > 1:
                        break
                if x.sum() < 10:
                    continue
                break
            for i in range(3):
                break
            return x
    """)
