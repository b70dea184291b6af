"""Reference tests: Python side effects of callees reached through any callable form.

A staged `while` (or `if`) calls a callable that changes Python-valued state it holds: a
scipy-style counter `objective = functools.partial(f, s, calls)` with `calls = [0]` and `f`
doing `calls[0] += 1` (tester34b s01). The state is reached through the callable, not through
a name the body reads: a partial's arguments and keywords, a closure's cells, a default
argument, a callable object's attributes, a bound method of another object, a lambda, a
helper behind a `functools.wraps` decorator, a callable held in a list or dict, a partial of
a partial. Each change must come out as plain Python's (carried by the statement, written
back after it) or be refused with a StagingError; never the trace's count replayed.

The matrix: callable form x kind of change (an int in a list, a dict's counter, an object's
number attribute, an append of a Python value) x statement (a `while` with `if ...: break`, an
`if`), against plain Python in autoconv's replay (traced once, replayed on inputs taking other
paths), a saved and loaded torch.export program, and torch.compile(fullgraph=True).
"""

import functools
import io

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_close

T = torch.tensor


class _Box:
    """A plain object holding a Python number."""

    def __init__(self):
        self.n = 0


# --- the kinds of change: each callee takes its state first, then the tensor --------------

def _in_list(state, x):
    state[0] += 1
    return (x * 2.0).sum()


def _in_dict(state, x):
    state["n"] += 1
    return (x * 2.0).sum()


def _in_attribute(state, x):
    state.n += 1
    return (x * 2.0).sum()


def _appended(state, x):
    state.append(1)
    return (x * 2.0).sum()


KINDS = {
    "list_item": (lambda: [0], _in_list, lambda s: s[0]),
    "dict_item": (lambda: {"n": 0}, _in_dict, lambda s: s["n"]),
    "attribute": (_Box, _in_attribute, lambda s: s.n),
    "append": (list, _appended, len),
}


# --- the callable forms: each makes a one-argument callable reaching `state` -------------

class _Objective:
    """A callable object holding the state and the function in its attributes."""

    def __init__(self, fn, state):
        self.fn, self.state = fn, state

    def __call__(self, x):
        return self.fn(self.state, x)


class _Holder:
    """Another object than the caller's, whose bound method reaches the state."""

    def __init__(self, fn, state):
        self.fn, self.state = fn, state

    def evaluate(self, x):
        return self.fn(self.state, x)


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper


def _closure(fn, state):
    def objective(x):
        return fn(state, x)
    return objective


def _default(fn, state):
    def objective(x, _state=state, _fn=fn):
        return _fn(_state, x)
    return objective


def _call_first(fns, x):
    return fns[0](x)


FORMS = {
    "partial": lambda fn, s: functools.partial(fn, s),
    "partial_keyword": lambda fn, s: functools.partial(lambda x, state: fn(state, x),
                                                       state=s),
    "nested_partial": lambda fn, s: functools.partial(_call_first, [functools.partial(fn, s)]),
    "closure": _closure,
    "default_argument": _default,
    "lambda": lambda fn, s: (lambda x: fn(s, x)),
    "callable_object": _Objective,
    "bound_method": lambda fn, s: _Holder(fn, s).evaluate,
    "wraps_decorated": lambda fn, s: functools.partial(_logged(fn), s),
}


def _while_break(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    i = 0
    while i < 3:
        if objective(x) > 0:
            break
        x = x + 1
        i += 1
    return x, count(state)


def _in_if(x, kind, form):
    make, fn, count = KINDS[kind]
    state = make()
    objective = FORMS[form](fn, state)
    if x.sum() > 0:
        x = x * objective(x)
    return x, count(state)


def _held_in_list(x, kind):
    make, fn, count = KINDS[kind]
    state = make()
    objectives = [functools.partial(fn, state)]
    i = 0
    while i < 3:
        if objectives[0](x) > 0:
            break
        x = x + 1
        i += 1
    return x, count(state)


def _held_in_dict(x, kind):
    make, fn, count = KINDS[kind]
    state = make()
    objectives = {"f": _closure(fn, state)}
    if x.sum() > 0:
        x = x * objectives["f"](x)
    return x, count(state)
