"""A staged `while` whose first trip sets the structure it carries, staged with that trip
peeled off as an `if` (NOTE [a loop's first trip peeled]; docs/loop-peeling.md).

Low in the engine: `while_stmt` (runtime/operators.py) runs its staging through `attempt`
and, where that ends in `StructureChanged`, stages the first trip with `if_stmt` and the
rest as the loop again.
"""

from __future__ import annotations

import torch

from ..errors import StagingError
from . import restaging

__all__ = ["StructureChanged", "attempt", "peeled_error"]

# NOTE [a loop's first trip peeled]
# k-diffusion's PID step-size controller starts with `self.errs = []` and fills it on the
# first proposal (`if not self.errs: self.errs = [inv, inv, inv]`), which `dpm_solver_adaptive`
# makes from `while s < t_end - 1e-5:`. A torch.while_loop carries one structure, the state's
# before the loop, and the body's output is a list of three: refused ("changes its length").
# Yet `while t(s): s = b(s)` is Python's `if t(s): s = b(s)` followed by the same `while`: the
# first trip's structure change is between two branches of an `if`, which the engine carries
# (a list of two lengths is a StagedList of a count below its capacity, NOTE [lists bound in
# branches]; a variable None on one path a StagedOptional), and the loop after it starts from
# the structure every trip keeps.
#
# So where staging a loop ends in `StructureChanged` (a StagingError: a carried object's field
# or dict changes its length, keys or type between the state before the loop and the body's
# output, or the loop reads a list its trips grow, which the first trip's fill is too), the
# loop is staged again as the `if` of its test over its body and then the loop from the `if`'s
# outputs. Where the test was false at once the `if` kept the state and the loop's test is
# false again (the test is pure: the engine's rule 1), so it runs no trip. The peeled form is
# tried once: where it fails too, the loop's own refusal is raised, as before.
#
# The first attempt's failure is a restaging verdict (NOTE [restaging verdicts]): a loop
# nested in a body that an enclosing attempt runs again, entered the same way, goes straight
# to the peel without tracing its body once more; at depth d a peeled loop's body runs O(d)
# times per call, not 2^d. Under dynamo a StagingError is raised for real through dynamo's
# frames (NOTE [StagingError under dynamo]) and cannot be caught to stage again: the loop is
# refused there, the message saying that replay and torch.export peel it.


PEEL = object()  # (`while_stmt`'s mark: the loop is staged again with its first trip peeled)


class StructureChanged(StagingError):
    """A loop's body gave its state another structure than the state had before the loop
    (NOTE [a loop's first trip peeled]): the loop may be staged again with its first trip
    peeled off as an `if`."""


_UNDER_COMPILE = ("; under torch.compile autoconv does not stage such a loop again with its "
                  "first trip as an `if` (its replay, `autoconv.autoconv(fn)`, and torch.export "
                  "do)")


def under_compile(problem: str) -> str:
    """`problem` of a StructureChanged, with what torch.compile does not do where it is
    raised under dynamo."""
    return problem + _UNDER_COMPILE if torch.compiler.is_dynamo_compiling() else problem


def attempt(run):
    """`run()`, the staging of the innermost open loop statement, its StructureChanged kept as
    a restaging verdict (NOTE [a loop's first trip peeled])."""
    if torch.compiler.is_dynamo_compiling():
        return run()
    return restaging.attempt("peel", run, (StructureChanged,))


def peeled_error(refused: StructureChanged, raised: BaseException):
    """What to raise where the peeled form failed with `raised`: the loop's own refusal,
    unless `raised` is not a refusal of the user's code (an internal exception passes)."""
    if isinstance(raised, StagingError):
        return refused
    return raised
