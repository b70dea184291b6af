"""analysis/liveness.py: the names live at points of a function, source in, live sets out
(NOTE [liveness of a try]). A point is marked by a probe, `if at_name: pass`, whose LIVE_OUT
is what is live right after it."""

from __future__ import annotations

import builtins
import textwrap

import gast

from autoconv.analysis import liveness
from autoconv.analysis.annos import Anno, get_anno


def live_at(source: str) -> dict:
    """{probe name: the names live after the probe} of the function in `source`."""
    function = gast.parse(textwrap.dedent(source)).body[0]
    liveness.analyze(function)
    found = {}
    for node in gast.walk(function):
        if node.__class__ is gast.If and node.test.__class__ is gast.Name \
                and node.test.id.startswith("at_"):
            found[node.test.id] = {n for n in get_anno(node, Anno.LIVE_OUT)
                                   if n != "x" and not n.startswith("at_")
                                   and not hasattr(builtins, n)}
    return found


def test_a_name_the_body_and_every_handler_bind_is_not_live_before_the_try():
    # (tester54's repro: `w` carried by the `for` had no value on the `if`'s other path)
    live = live_at("""
        def f(x, out):
            for i in range(2):
                if at_before:
                    pass
                try:
                    w = x * 2
                except RuntimeError:
                    w = x
                out = out + w.max()
            return out
        """)
    assert live["at_before"] == {"out"}


def test_a_name_a_handler_does_not_bind_is_live_before_the_try():
    live = live_at("""
        def f(x, w):
            if at_before:
                pass
            try:
                w = x * 2
            except RuntimeError:
                pass
            return w
        """)
    assert live["at_before"] == {"w"}


def test_a_handler_leaving_by_raise_does_not_keep_the_name_live():
    live = live_at("""
        def f(x, w):
            if at_before:
                pass
            try:
                w = x * 2
            except RuntimeError as e:
                raise ValueError(str(e))
            return w
        """)
    assert live["at_before"] == set()


def test_the_names_a_handler_reads_are_live_throughout_the_body():
    # the body may raise before it binds `a` and after it rebinds it
    live = live_at("""
        def f(x, a):
            if at_before:
                pass
            try:
                if at_start:
                    pass
                a = x + 1
                if at_middle:
                    pass
                w = x / a
                if at_end:
                    pass
            except ZeroDivisionError as e:
                w = a + len(str(e))
            return w
        """)
    assert live == {"at_before": {"a"}, "at_start": {"a"}, "at_middle": {"a"},
                    "at_end": {"w"}}


def test_else_runs_after_the_body_only():
    # `v`: bound by the `else` only, so the handler's path reaches the end without it;
    # `w`: bound by the body and the handler, read by the `else` after the body's binding
    live = live_at("""
        def f(x, v):
            if at_before:
                pass
            try:
                w = x * 2
            except RuntimeError:
                w = x
            else:
                if at_else:
                    pass
                v = w + 1
            return v + w
        """)
    assert live == {"at_before": {"v"}, "at_else": {"w"}}


def test_finally_runs_on_every_path():
    # `z`: the `finally` binds it on every path; `w`: both normal paths bind it, but the
    # `finally` also runs after an exception no handler catches, which may come before `w`
    live = live_at("""
        def f(x, w, z):
            if at_before:
                pass
            try:
                w = x * 2
                if at_body:
                    pass
            except RuntimeError:
                w = x
            finally:
                if at_finally:
                    pass
                z = w * 3
            return z
        """)
    assert live == {"at_before": {"w"}, "at_body": {"w"}, "at_finally": {"w"}}


def test_a_finally_binding_the_name_after_the_handlers():
    live = live_at("""
        def f(x, w):
            if at_before:
                pass
            try:
                w = x * 2
            except RuntimeError:
                pass
            finally:
                w = x
            return w
        """)
    assert live["at_before"] == set()


def test_an_exception_of_a_nested_try_goes_to_the_outer_handler():
    # the inner `try` catches ValueError only; the outer handler reads `a`, which the inner
    # body rebinds: live throughout the inner body, its handler and before both
    live = live_at("""
        def f(x, a, b):
            if at_before:
                pass
            try:
                try:
                    a = x + 1
                    if at_inner:
                        pass
                    b = x * a
                except ValueError:
                    if at_inner_handler:
                        pass
                    b = x
                if at_after_inner:
                    pass
                w = b + 1
            except RuntimeError:
                w = a
            return w
        """)
    assert live == {"at_before": {"a"}, "at_inner": {"a"}, "at_inner_handler": {"a"},
                    "at_after_inner": {"a", "b"}}


def test_a_raise_in_the_body_goes_to_the_handler():
    live = live_at("""
        def f(x, s):
            if at_before:
                pass
            try:
                s = x.sum()
                if at_raise:
                    pass
                raise RuntimeError
            except RuntimeError:
                w = s
            return w
        """)
    # (`s` before the `try`: `x.sum()` may raise before `s` is bound)
    assert live == {"at_before": {"s"}, "at_raise": {"s"}}


def test_a_loop_in_the_body_carries_what_the_handler_reads():
    # an exception in a later trip reaches the handler with the names an earlier trip bound
    function = gast.parse(textwrap.dedent("""
        def f(x, a):
            try:
                for i in range(3):
                    a = x + i
                    b = x / a
            except ZeroDivisionError:
                b = a
            return b
        """)).body[0]
    liveness.analyze(function)
    loop = function.body[0].body[0]
    assert "a" in get_anno(loop, Anno.BODY_LIVE_IN)


def test_a_lowered_break_and_return_take_the_normal_path():
    # (as the break / return lowering leaves them: flags and `if`s; the `finally` runs
    # before the return). `w` stays live: the flags' `if`s are paths of their own.
    live = live_at("""
        def f(x, n, out):
            do_return = False
            for i in range(n):
                did_break = False
                if at_before:
                    pass
                try:
                    if x.sum() > i:
                        w = x * 2
                        did_break = True
                    if not did_break:
                        w = x
                except RuntimeError:
                    do_return = True
                    retval = out
                finally:
                    out = out + 1
                if not do_return:
                    if not did_break:
                        out = out + w.max()
            return retval, out
        """)
    assert live["at_before"] == {"out", "i", "did_break", "do_return", "retval", "w"}
