"""Reference tests: session 46's break of session 45's changes (break46): the captures search's
stop at library code (NOTE in autoconv/captures.py `_search_function`), nested restaging under
torch.export (NOTE [verdicts under export]), type tests of a None-or-value carrier and the
export-alias copy tracking (NOTE [inputs that share memory under export]), and the generated
guard check (NOTE [guards checked by generated code]), against plain Python.

A function is traced once and replayed after the state it reads changes, or on inputs that take
the other paths.
"""

import functools

import torch

import autoconv
from support import assert_close

T = torch.tensor

# --- s01: a function registered with functools.singledispatch --------------------------------
# The search stops at library code but follows the user's function a library wrapper's closure
# holds; singledispatch's wrapper holds only its `dispatch` function, whose closure holds the
# registry dict: the registered implementation's globals were never searched, so `SCALE`
# changed between calls replayed the traced value (2 for Python's 3), silently.

SCALE = 2.0


@functools.singledispatch
def _scaled(x):
    return x * 0


@_scaled.register(torch.Tensor)
def _(x):
    return x * SCALE


def calls_a_singledispatch_function(x):
    return _scaled(x)


def _helper_calling_it(x):
    return _scaled(x) + 1


def calls_a_helper_calling_a_singledispatch_function(x):
    return _helper_calling_it(x)


def _after_a_change(fn, change):
    """`fn` traced, `change()` run, `fn` called again: Python's value both times."""
    global SCALE
    saved = SCALE
    try:
        function = autoconv.autoconv(fn)
        x = T([1.0, 2.0])
        assert_close(function(x), fn(x))
        change()
        assert_close(function(x), fn(x))
    finally:
        SCALE = saved


def _rescale():
    global SCALE
    SCALE = 3.0


def test_s01_a_global_a_singledispatch_implementation_reads_is_guarded():
    _after_a_change(calls_a_singledispatch_function, _rescale)
    _after_a_change(calls_a_helper_calling_a_singledispatch_function, _rescale)
