"""Where the source comes from: functions are converted where their source can be read.

Called from converted code, a function without source (made by exec, typed in a REPL), a builtin
or a C function runs as it is; a `functools.partial` of a user function, a user class's
`__call__`, class and static methods run converted. Asked for explicitly (`convert`, `to_code`,
`autoconv`), a function without source raises a `ConversionError` saying so.
"""

from __future__ import annotations

import functools

import pytest
import torch

import autoconv
from support import assert_same_result, function_from_source


class Scale:
    """A callable object whose `__call__` branches on a tensor."""

    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        if x.sum() > 0:
            return x * self.k
        return -x


class Methods:
    """Class and static methods that branch on a tensor."""

    @classmethod
    def flip(cls, x):
        if x.sum() > 0:
            return x
        return -x

    @staticmethod
    def double(x):
        if x.sum() > 0:
            return x * 2
        return x


def shift(x, by):
    """Branches on a tensor; called through a functools.partial."""
    if x.sum() > 0:
        return x + by
    return x - by


_namespace = {"torch": torch}
exec("def without_source(x):\n    return x * 3\n", _namespace)  # no linecache entry
without_source = _namespace["without_source"]
SCALE = Scale(2.0)
SHIFT = functools.partial(shift, by=1.0)


def calls_everything(x):
    """Calls each kind of callable whose source may or may not be readable."""
    if x.sum() > 0:
        y = SCALE(x) + SHIFT(x) + Methods.flip(x) + Methods.double(x)
    else:
        y = torch.sin(x) + without_source(x) + abs(x)
    return y


def _inputs():
    return [(torch.ones(2),), (-torch.ones(2),), (torch.tensor([3.0, -1.0]),)]


def test_every_kind_of_callee_runs_converted_or_as_it_is():
    # Staged: SCALE's __call__, SHIFT's function and the methods branch on tensors, so they
    # must run converted; torch.sin, abs and the exec'd function run as they are.
    assert_same_result(calls_everything, _inputs())


def _branches_on_tensor(fn, *args):
    """Trace `fn` and check its data-dependent branch became a cond (so it was converted)."""
    from support import COND, count_ops

    concrete = autoconv.autoconv(fn).get_concrete_function(*args)
    return count_ops(concrete.graph_module, COND) > 0


@pytest.mark.parametrize("callee", [SCALE, SHIFT, Methods.flip, Methods.double],
                         ids=["callable_object", "partial", "classmethod", "staticmethod"])
def test_callee_reached_through_a_value_is_converted(callee):
    def call(x, fn=callee):
        return fn(x)

    assert _branches_on_tensor(call, torch.ones(2))


def test_function_without_source_called_from_converted_code_runs_as_it_is():
    def call(x):
        if x.sum() > 0:
            return without_source(x)
        return x

    assert torch.equal(autoconv.autoconv(call)(torch.ones(2)), torch.full((2,), 3.0))
    assert torch.equal(autoconv.convert(call)(torch.ones(2)), torch.full((2,), 3.0))


@pytest.mark.parametrize("explicit", [autoconv.convert, autoconv.to_code,
                                      lambda fn: autoconv.autoconv(fn)(torch.ones(2))],
                         ids=["convert", "to_code", "autoconv"])
def test_function_without_source_converted_explicitly_raises(explicit):
    with pytest.raises(autoconv.ConversionError) as info:
        explicit(without_source)
    assert info.value.kind == "no_source"
    assert "cannot read the source of without_source" in str(info.value)
    assert "not in a REPL or exec" in str(info.value)


@pytest.mark.parametrize("callee", [len, torch.sin, torch.Tensor.sum],
                         ids=["builtin", "c_function", "tensor_method"])
def test_builtin_converted_explicitly_raises_not_function(callee):
    with pytest.raises(autoconv.ConversionError) as info:
        autoconv.convert(callee)
    assert info.value.kind == "not_function"


def test_explicit_conversion_of_partial_methods_and_descriptors():
    x = -torch.ones(2)
    assert torch.equal(autoconv.convert(SCALE)(x), SCALE(x))
    assert "ac.if_stmt" in autoconv.to_code(SCALE)
    assert torch.equal(autoconv.convert(SHIFT)(x), SHIFT(x))
    assert torch.equal(autoconv.convert(Methods.flip)(x), Methods.flip(x))
    assert torch.equal(autoconv.convert(Methods.double)(x), Methods.double(x))
    assert "ac.if_stmt" in autoconv.to_code(Methods.__dict__["flip"])
    assert "ac.if_stmt" in autoconv.to_code(Methods.__dict__["double"])


class Maker:
    """A classmethod that builds an instance and calls its method, which may return early."""

    def __init__(self, k):
        self.k = k

    def apply(self, x):
        if x.sum() > 0:
            return x * self.k
        return x / self.k

    @classmethod
    def make_and_apply(cls, x):
        return cls(2.0).apply(x)


def calls_method_of_new_object(x):
    return Maker(3.0).apply(x) + Maker.make_and_apply(x)


def test_method_of_an_object_created_in_the_function_converts_under_compile():
    # Under torch.compile the object is created inside dynamo's trace, so its method has no
    # source path; the converted method must still be reached through its class (dynamo
    # otherwise refuses the `ac.Undefined` that the early return needs).
    assert_same_result(calls_method_of_new_object, _inputs())


# Sources whose lines are hard to find: backslash continuations onto comments and onto lines of
# their own. Each must convert with all of its statements, not fail or lose its tail.
BACKSLASH_SOURCES = {
    # The continuation ends on a comment at the end of the file (no newline after it): the
    # comment belongs to the last statement.
    "comment_ends_file": "def f(x):\n    if x.sum() > 0:\n        x = x * 2\n    return x \\\n# note",
    # A line holding only a backslash at column 0: the statement it continues is indented as
    # the next line is, so the function goes on after it.
    "backslash_line_at_column_0": (
        "def f(x):\n    y = x\n\\\n    y = y * 3\n    if y.sum() > 0:\n        y = y + 1\n"
        "    return y\n"),
    "one_line_def_continued_onto_comment": (
        "def f(x): return torch.where(x > 0, x, -x) \\\n# note"),
    "nested_def_with_backslash_lines": (
        "if True:\n    def f(x):\n        y = x \\\n# note\n        if y.sum() > 0:\n"
        "            y = -y\n\\\n        y = y + 5\n        return y\n"),
}


@pytest.mark.parametrize("name", sorted(BACKSLASH_SOURCES))
def test_backslash_continuations_convert_every_statement(name):
    fn = function_from_source(BACKSLASH_SOURCES[name])
    assert autoconv.to_code(fn)
    assert_same_result(fn, _inputs(), staged=name != "one_line_def_continued_onto_comment")
