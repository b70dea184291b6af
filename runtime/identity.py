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


def identical(a, b) -> bool:
    """`a is b`, leaving no node in dynamo's graph where either is a number.

    Dynamo answers `is` between two numbers read from tensors (`t.item()`, which it shows as
    Python numbers) but keeps a dead `operator.is_not` node in the graph. Inside a staged
    body that node reads the enclosing graph's number, which torch's while_loop then takes as
    an operand and refuses for a float ("can only be of (Tensor, int, SymInt)": a power
    iteration's `lam = lam_new` after a tensor `break`). `id` leaves no node.
    """
    if type_in(a, _NUMBERS) or type_in(b, _NUMBERS):
        return id(a) == id(b)
    return a is b
