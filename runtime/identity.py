"""Tests of a value's class that dynamo can trace for any value, an opaque one included.

A leaf module: values.py and the staging modules it imports use it.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["identical", "type_in"]


def type_in(value, types) -> bool:
    """`type(value) in types`, tested by identity.

    The runtime asks this of any value a program holds, traced by dynamo under torch.compile.
    `in` compares the classes with `==`, which dynamo cannot trace for the class of an opaque
    object such as a `torch.Generator` (POT's backends hold one): "Missing richcompare_impl
    override". `is` is traced for every class.
    """
    if not isinstance(value, types):
        # (then no class of `types` is value's own: one step for dynamo, for any value,
        # where the loop below costs it a few per class)
        return False
    cls = type(value)
    for known in types:
        if cls is known:
            return True
    return False


_NUMBERS = (bool, int, float)


# NOTE [identity under dynamo]
# Autoconv asks `is` of the values a program holds (whether a probe's run of a body replaced a
# container's item, which input of a statement a changed object is), and dynamo, tracing that
# under torch.compile, does not answer every such question:
# - between two numbers read from tensors (`t.item()`, which it shows as Python numbers) it
#   answers `is`, but keeps a dead `operator.is_not` node in the graph; inside a staged body
#   that node reads the enclosing graph's number, which torch's while_loop then takes as an
#   operand and refuses for a float ("can only be of (Tensor, int, SymInt)": a power
#   iteration's `lam = lam_new` after a tensor `break`). `id` leaves no node.
# - the `id` of a value made in its trace (`counts["pos"] + 1`) is a compile-time-only number
#   it refuses to compare with the `id` of a value from outside ("Comparison on compile-time-
#   only id or hash value": a Counter argument updated in a staged `if`, tester38 s05); as a
#   dict's key it is looked up, which is how numbers are compared here (the ids of two values
#   alive together differ).
# - `is` between two functools.partial objects, or two tuples, both made in its trace, it
#   refuses ("Failed to trace builtin operator `is_`": fuzz38's partial beside a bound method,
#   where autoconv looks for a statement's input by identity to name it). Under dynamo such
#   values are compared by their parts, each by identity: a tuple's items, a partial's
#   function, arguments and keywords. Two such values made of the same parts behave the same
#   in every call and every read, so for what autoconv asks (which input is this, did a body
#   replace it) they are one. Not by `id`: the `id` of an argument of the compiled function is
#   guarded by identity, which would recompile at every call given a new tuple.
_BY_PARTS = (tuple, functools.partial)


def identical(a, b) -> bool:
    """`a is b`, as dynamo can trace it (NOTE [identity under dynamo]): numbers compared by
    `id` (no node in its graph, no refusal for a number made in its trace), a number and a
    value of another class never; under dynamo,
    tuples and functools.partial objects by their parts."""
    # (isinstance first: two values neither of which is a number cost dynamo no call)
    if isinstance(a, _NUMBERS) or isinstance(b, _NUMBERS):
        a_number, b_number = type_in(a, _NUMBERS), type_in(b, _NUMBERS)
    else:
        a_number = b_number = False
    if a_number or b_number:
        # A number is never the same object as a value of another class; the `id` of that
        # other value, were it asked, would be guarded by identity when it is an argument of
        # the compiled function (a tensor argument: a recompile at every call).
        return a_number and b_number and id(b) in {id(a): None}
    if (isinstance(a, _BY_PARTS) and type(a) is type(b)
            and torch.compiler.is_dynamo_compiling()):
        return _same_parts(a, b)
    return a is b


def _same_parts(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return (identical(a.func, b.func) and _same_parts(a.args, b.args)
            and a.keywords.keys() == b.keywords.keys()
            and all(identical(v, b.keywords[k]) for k, v in a.keywords.items()))
