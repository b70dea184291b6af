"""torch operations that raise on some data (a matrix not positive-definite, a singular one),
called inside a `try` whose handler catches their error.

NOTE [a try around an operation that fails on some data]
`try: L = torch.linalg.cholesky(A) except RuntimeError: L = torch.linalg.cholesky(A + jitter)`
(gpytorch's psd_safe_cholesky): Python runs the handler on the inputs where the factorisation
fails. A graph traced on an input where it succeeded has no path into the handler, and raised
torch's _LinAlgError where Python gave the handler's value. torch has a non-raising form of each
such operation (`torch.linalg.cholesky_ex` and its `info`), so the converter
(autoconv/converters/tries.py) stages the simple shape, a `try` whose body is one assignment
of such a call and whose one handler binds the same names (or leaves by `raise` / `return`),
as that form and a staged `if` on its failure:

    L, failed = ac.try_call(RuntimeError, torch.linalg.cholesky, A)
    if failed:
        L = torch.linalg.cholesky(A + jitter)

(`try_call` runs Python's own try where its arguments are not traced, or the function is not
one of torch's). Any other `try` around such a call (more statements, `except ... as e`, an
`else` / `finally`) calls it through `ac.fallible`, which refuses it when traced: a StagingError
at the call's line that names the handler and says to use the `_ex` form.
"""

from __future__ import annotations

import functools

import torch
from torch.utils import _pytree as pytree

from . import augmented
from .errors import StagingError
from .staging import context
from .values import is_staged

__all__ = ["try_call", "try_value", "fallible"]


def _ex_forms() -> dict:
    """{torch function: (its non-raising form, how many of its outputs are the result)}."""
    forms = {
        torch.linalg.cholesky: (torch.linalg.cholesky_ex, 1),
        torch.cholesky: (torch.linalg.cholesky_ex, 1),
        torch.linalg.inv: (torch.linalg.inv_ex, 1),
        torch.inverse: (torch.linalg.inv_ex, 1),
        torch.linalg.solve: (torch.linalg.solve_ex, 1),
        torch.linalg.lu_factor: (torch.linalg.lu_factor_ex, 2),
        torch.linalg.ldl_factor: (torch.linalg.ldl_factor_ex, 2),
    }
    return forms


_EX = _ex_forms()
_METHODS = {"cholesky": torch.linalg.cholesky_ex, "inverse": torch.linalg.inv_ex}
_SHOWN = {torch.linalg.cholesky_ex: "torch.linalg.cholesky_ex", torch.linalg.inv_ex:
          "torch.linalg.inv_ex", torch.linalg.solve_ex: "torch.linalg.solve_ex",
          torch.linalg.lu_factor_ex: "torch.linalg.lu_factor_ex",
          torch.linalg.ldl_factor_ex: "torch.linalg.ldl_factor_ex"}


def _ex_form(func):
    """(the non-raising form of `func`, bound to its tensor for a method; how many outputs are
    the result), or None where `func` is not one of torch's operations that fail on data."""
    try:
        found = _EX.get(func)
    except TypeError:  # unhashable
        found = None
    if found is not None:
        return found
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", None)
    if isinstance(owner, torch.Tensor) and name in _METHODS:
        return functools.partial(_METHODS[name], owner), 1
    return None


def _traced(func, args, kwargs) -> bool:
    leaves = pytree.tree_leaves((getattr(func, "__self__", None), args, kwargs))
    return any(is_staged(leaf) for leaf in leaves)


def try_call(caught, func, *args, **kwargs):
    """`(func(*args, **kwargs), False)`, or `(None, True)` where it raises `caught`: a `try`
    whose body is one such call (NOTE [a try around an operation that fails on some data]).
    Where the arguments are traced and `func` is one of torch's operations that fail on data,
    its non-raising form: (the result, a traced bool tensor, true where `func` would raise).

    Raises:
        what `func` raises other than `caught`; a StagingError passes unchanged.
    """
    form = _ex_form(func)
    if form is not None and _traced(func, args, kwargs):
        ex, count = form
        out = ex(*args, **kwargs)
        result = out[0] if count == 1 else tuple(out[:count])
        return result, (out[-1] != 0).any()
    try:
        return func(*args, **kwargs), False
    except StagingError:
        raise
    except caught:
        return None, True


# NOTE [a try around a value the graph checks]
# `try: m = 10.0 / n except ZeroDivisionError: m = -1.0` with `n` a number a staged statement
# carries (tester21 s05): the division's ZeroDivisionError is a graph assertion on values only
# the graph knows (runtime/augmented.py `graph_check`), which failed the whole graph where
# Python runs the handler. The converter (autoconv/converters/tries.py) writes a `try` whose
# body is one assignment of an expression (no staged choice, loop or user call in it) and whose
# one handler may catch such an error and binds the name on its way out as
#
#     m, failed = ac.try_value(ZeroDivisionError, lambda n: 10.0 / n, (n,))
#     if failed:
#         m = -1.0
#
# `try_value` computes the value with the checks the handler catches collected instead of
# asserted: `failed` is true where one fails (a traced bool, and the `if` is staged), and the
# value computed there (inf) is replaced by the handler's. On Python values it is Python's try.
# Any other `try` around such a check is refused at the check (`handlers.catching`).

# NOTE [a staged try under dynamo]
# Collecting a check's failure writes to `_COLLECTING`, a list made outside the bodies of the
# torch.cond / torch.while_loop dynamo traces, which refuses the write there (torch's "HOP:
# Unsafe side effect", no user line: tester21b s20, `try: r = 4.0 / n except
# ZeroDivisionError:` in a tensor `if`). There `try_value` runs the expression with the checks
# counted (by a function dynamo calls for real, `context.dry_try`), not collected: none met,
# the value is the expression's; one met, a StagingError at the try that says what to write.

def try_value(caught, compute, inputs=()):
    """`(compute(*inputs), False)`, or `(None, True)` where it raises `caught`; where the graph checks
    an error `caught` catches (NOTE [a try around a value the graph checks]), `failed` is a
    traced bool that is true where a check fails.

    Raises:
        what `compute` raises other than `caught`; a StagingError passes unchanged, and one
        for a check met under dynamo in an operator's body (NOTE [a staged try under dynamo]).
    """
    if torch.compiler.is_dynamo_compiling() and context.in_operator_bodies():
        return _try_value_in_operator(caught, compute, inputs)
    checks = augmented.collect_checks(caught)
    try:
        value = compute(*inputs)
    except StagingError:
        augmented.collected_checks(checks)
        raise
    except caught:
        augmented.collected_checks(checks)
        return None, True
    failing = augmented.collected_checks(checks)
    if not failing:
        return value, False
    failed = failing[0]
    for other in failing[1:]:
        failed = torch.logical_or(failed, other)
    return value, failed


def _try_value_in_operator(caught, compute, inputs):
    met = context.dry_try(1, 0)[1]
    try:
        value = compute(*inputs)
    except StagingError:
        context.dry_try(-1, 0)
        raise
    except caught:
        context.dry_try(-1, 0)
        return None, True
    if context.dry_try(-1, 0)[1] == met:
        return value, False
    raise StagingError(
        "try statement",
        "the error its handler catches (a division by zero) is checked on values only the "
        "graph knows, inside the body of a tensor-dependent if or loop, where torch.compile "
        "cannot stage the path into the handler",
        "Test for the case instead of catching it (`r = 4.0 / n if n != 0 else 0.0`); "
        "autoconv's own trace and torch.export run this try as Python does")


def fallible(func, handler: str):
    """`func`, called inside a `try` whose handler `handler` ("`except ...:` (line n)") would
    catch its failure on some data (NOTE [a try around an operation that fails on some
    data]).

    Raises:
        StagingError: when called on traced values and `func` is one of torch's operations
            that fail on data.
    """
    form = _ex_form(func)
    if form is None:
        return func

    def call(*args, **kwargs):
        if _traced(func, args, kwargs):
            ex = form[0].func if isinstance(form[0], functools.partial) else form[0]
            shown = _SHOWN.get(ex, "the operation's `_ex` form")
            raise StagingError(
                "try statement",
                f"this call raises on some data (torch's LinAlgError), and {handler} would "
                "then run; a graph traced on data where it succeeded has no path into the "
                "handler",
                f"Call {shown}, whose `info` is nonzero where it fails, and choose the result "
                f"with torch.where or `if (info != 0).any():` (staged), or write the `try` as "
                f"one assignment of the call with a handler that binds the same name")
        return func(*args, **kwargs)

    return call
