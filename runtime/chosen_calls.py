"""A function chosen by a tensor condition, called as one torch.cond over the calls.

    f = g if x.sum() > 0 else h       ->  f = ChosenCall(x.sum() > 0, g, h)
    y = f(t, x)                       ->  torch.cond(x.sum() > 0, lambda: g(t, x),
                                                     lambda: h(t, x))

NOTE [functions chosen by a tensor condition]
A function is no value of a graph, so a tensor condition cannot choose it; autoconv's own trace
and torch.export specialised the graph on the condition (NOTE [specialisation]: a retrace for
the other value, and an exported program that refuses it), and torch.compile refused it, having
no guard on a tensor's value. Where the candidates exist before the choice (each side of
`a if c else b` a name: reading it runs nothing), the choice is kept with its condition and each
call of it is a cond whose branches call one candidate each, in every mode: the graph holds both
paths. The candidates must give the same structure of tensors (torch.cond's rule). Anything but
a call of the choice (an attribute, a type test) has no one Python object for its answer: there
the graph is specialised on the condition, as it was at the choice before, and it is refused
where it cannot be (under torch.compile, in a staged body). A function a branch makes (`if c: func = _ReverseFunc(func)`, torchdiffeq
misc.py:273) is not such a choice: the branch would have to run outside the operator to make
it, which its other effects (a dict written, a closure's cell) forbid; it is specialised, and
refused under torch.compile, as before.
"""

from __future__ import annotations

import types

import torch
import torch.utils._pytree as pytree

from .errors import StagingError
from .values import Undefined


class ChosenCall:
    """`if_true if pred else if_false`, two callables chosen by the 0-d bool tensor `pred`."""

    # (no __slots__: dynamo read a slot of an object made in its trace wrongly, the true
    # side's bound method for the false side's)

    def __init__(self, pred, if_true, if_false):
        self.pred, self.if_true, self.if_false = pred, if_true, if_false

    def refuse(self, use: str) -> StagingError:
        """A StagingError for `use` of the choice other than a call."""
        return StagingError(
            use, f"a function a tensor condition chose ({_named(self.if_true)} or "
            f"{_named(self.if_false)}) is only known when the graph runs, and it can only be "
            "called",
            "Test or read each candidate before the choice, or choose with a Python condition")

    def taken(self, use: str):
        """The candidate the condition takes, for `use` of the choice other than a call: the
        graph specialised on the condition, as a choice the graph cannot hold is at the top
        level (NOTE [specialisation]); where it cannot be, `refuse(use)` (under torch.compile,
        in a staged body)."""
        from .operators import _specialized

        return self.if_true if _specialized(self.pred, use, self.refuse(use)) else self.if_false

    def __call__(self, *args, **kwargs):
        from . import calls
        from .staging import torch as staging

        leaves, spec = pytree.tree_flatten((args, kwargs))
        slots = [j for j, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]

        def side(fn):
            def run(_, *tensors):
                filled = list(leaves)
                for j, t in zip(slots, tensors):
                    filled[j] = t
                a, k = pytree.tree_unflatten(filled, spec)
                return (calls.converted_call(fn, *a, **k),)
            return run

        out = staging.stage_if(self.pred, side(self.if_true), side(self.if_false),
                               (Undefined("<call>"),), ("<call>",), self.pred,
                               tuple(leaves[j] for j in slots))
        return out[0]

    def __getattr__(self, name):
        if name.startswith("_"):
            # (what the runtime and torch ask of any value, `getattr(fn, "__self__", None)`:
            # this object has none of it)
            raise AttributeError(name)
        return getattr(self.taken(f"attribute .{name}"), name)


def _named(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def chosen(pred, if_true, if_false):
    """The choice of `if_true` and `if_false` by `pred` where both are callables that are not
    classes nor tensors (NOTE [functions chosen by a tensor condition]), else None."""
    def candidate(fn):
        # (not a user object's bound method: under dynamo the false side's call ran the true
        # side's object, `s1.apply` for `s2.apply`, not understood; those stay specialised)
        return (callable(fn) and not isinstance(fn, (type, torch.Tensor, types.MethodType))
                and type(fn).__module__ != "autoconv_runtime.values")
    if not (candidate(if_true) and candidate(if_false)):
        return None
    if if_true is if_false:
        return if_true
    return ChosenCall(pred, if_true, if_false)
