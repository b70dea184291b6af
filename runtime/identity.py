"""Tests of a value's class that dynamo can trace for any value, an opaque one included.

A leaf module: values.py and the staging modules it imports use it.
"""

from __future__ import annotations

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
# (`is` between two functools.partial objects, or two tuples, made in its trace, it refuses:
# "Failed to trace builtin operator `is_`", fuzz38's partial beside a bound method, open)


def identical(a, b) -> bool:
    """`a is b`, numbers compared by `id` as dynamo can trace it (NOTE [identity under
    dynamo]): no node in its graph, and no refusal for a number made in its trace."""
    if type_in(a, _NUMBERS) or type_in(b, _NUMBERS):
        return id(b) in {id(a): None}
    return a is b
