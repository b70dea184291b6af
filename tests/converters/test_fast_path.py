"""The eager fast path: with no tracer running, a converted function runs its original body.

The compiled function starts with `if ac.eager(): <original body>`; under a tracer the converted
body runs. `to_code` shows the converted body only.
"""

import traceback

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import autoconv
import autoconv_runtime
from autoconv.conversion import is_generated
from support import function_from_source

UNBOUND = """
def f(x):
    if x > 0:
        y = x
    return y
"""


def test_eager_runs_the_original_body():
    # Python's own error: the original body ran.
    converted = autoconv.convert(function_from_source(UNBOUND))
    assert autoconv_runtime.eager()
    assert converted(2) == 2
    with pytest.raises(UnboundLocalError, match="cannot access local variable 'y'"):
        converted(-2)


def test_under_a_tracer_the_converted_body_runs():
    # The converted body's check of the unbound read raised (runtime/operators.py `ld`), not
    # Python's own read: the converted body ran.
    converted = autoconv.convert(function_from_source(UNBOUND))
    with pytest.raises(UnboundLocalError) as info:
        make_fx(lambda x: converted(-2) and x)(torch.ones(2))
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(frame.filename == autoconv_runtime.operators.__file__ for frame in frames)


def test_functions_defining_functions_have_no_fast_path():
    # An inner function made by the original body would pass for a converted one.
    converted = autoconv.convert(function_from_source("""
        def make_inner(x):
            def inner(y):
                if y > 0:
                    return y + x
                return y - x
            return inner
        """))
    inner = converted(1)
    assert is_generated(inner)
    assert (inner(2), inner(-2)) == (3, -3)


def test_falling_off_the_end_returns_none():
    fn = function_from_source("""
        def f(xs):
            for x in xs:
                xs.append(x)
                break
        """)
    xs = [1]
    assert autoconv.convert(fn)(xs) is None and xs == [1, 1]


def test_global_and_nonlocal_functions_still_convert():
    # `global` must precede every use of the name in the function: no original body there.
    fn = function_from_source("""
        counter = 0
        def bump(n):
            global counter
            while n > 0:
                counter += 1
                n -= 1
            return counter
        """)
    assert autoconv.convert(fn)(3) == 3
    assert autoconv.convert(fn)(2) == 5


def test_zero_argument_super_in_the_original_body():
    class Base:
        def f(self, x):
            return x + 1

    class Child(Base):
        def f(self, x):
            if x > 0:
                return super().f(x) * 2
            return super().f(x)

    method = autoconv.convert(Child.f)
    assert method(Child(), 3) == 8 and method(Child(), -3) == -2
