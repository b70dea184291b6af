"""Tests of a value's class that dynamo can trace for any value, an opaque one included.

A leaf module: values.py and the staging modules it imports use it.
"""

from __future__ import annotations

__all__ = ["type_in"]


def type_in(value, types) -> bool:
    """`type(value) in types`, tested by identity.

    The runtime asks this of any value a program holds, traced by dynamo under torch.compile.
    `in` compares the classes with `==`, which dynamo cannot trace for the class of an opaque
    object such as a `torch.Generator` (POT's backends hold one): "Missing richcompare_impl
    override". `is` is traced for every class.
    """
    cls = type(value)
    for known in types:
        if cls is known:
            return True
    return False
