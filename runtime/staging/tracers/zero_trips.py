"""A staged `while` that may run zero times, differentiated by torch's own while_loop.

NOTE [zero-trip loops under autograd]
torch 2.13's `while_loop` autograd rule is wrong for a loop that runs zero times: its backward
gives the gradient of one trip of the body (`while h.norm() < 10: h = h * w + 1` then `h * w`,
entered with `h.norm() >= 10`: dL/dw 60 where Python gives 20), while its forward value is
right. A Python `while` that is already done on entry is common (an early-exit or converged
input), and the user never chose torch's operator, so where torch's rule will differentiate the
loop, each floating result is taken as

    torch.where(test(initial state), loop result, initial value)

On zero trips the loop's result gets a zero cotangent, so its wrong backward adds nothing (the
one trip's derivatives are multiplied by zero: only a body whose derivatives at the initial
state are infinite or NaN still adds NaN), and the initial value gets the cotangent, as in
Python. (A `cond` around the loop would be exact, but torch 2.13's cond autograd fails on a
branch output that does not require grad: every loop carrying a counter.) That is where grad
mode is on and a carried or read-only floating tensor requires grad, or where a torch.export
program is made with grad mode on (it may be run later on inputs that require grad).
autoconv's own trace sees its inputs detached: it takes the guard where grad mode is on and the
graph's backend runs torch's operators (`fx`, inductor); the python backend's loop is a Python
loop, differentiated right without it.
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = ["needs_zero_trip_guard", "guarded_while_loop", "own_trace"]

_own = threading.local()  # .operators_differentiated: set while autoconv itself traces


@contextlib.contextmanager
def own_trace(operators_differentiated: bool):
    """While autoconv traces a Function: whether its replay differentiates torch's while_loop
    (every backend but the python one)."""
    before = getattr(_own, "operators_differentiated", None)
    _own.operators_differentiated = operators_differentiated
    try:
        yield
    finally:
        _own.operators_differentiated = before


def needs_zero_trip_guard(carried, additional) -> bool:
    """Whether torch's while_loop autograd may differentiate a loop over these operands."""
    if not torch.is_grad_enabled():
        return False
    tensors = [v for v in (*carried, *additional) if isinstance(v, torch.Tensor)]
    if not any(t.is_floating_point() or t.is_complex() for t in tensors):
        return False
    if torch.compiler.is_exporting():
        return True
    own = getattr(_own, "operators_differentiated", None)
    requires_grad = any(t.requires_grad for t in tensors)
    if own is not None and not torch.compiler.is_dynamo_compiling():
        # (a tensor made to require grad inside the function is differentiated while autoconv
        # traces, by torch's rule, whose backward the graph then records, on every backend:
        # `z.sum().backward()` after a loop that made no trip gave the one trip's gradient,
        # 30 for Python's 1, fn54)
        return own or requires_grad
    return requires_grad


def guarded_while_loop(loop, cond_fn, carried, additional):
    """`loop(carried, additional)` (the tracer's while_loop node), its floating results taken
    from the carried values where the loop's first test is false (see NOTE [zero-trip loops
    under autograd])."""
    first = cond_fn(*carried, *additional)
    out = tuple(loop(carried, additional))
    return tuple(
        torch.where(first, o, c) if isinstance(o, torch.Tensor) and isinstance(c, torch.Tensor)
        and (o.is_floating_point() or o.is_complex()) else o
        for o, c in zip(out, carried))
