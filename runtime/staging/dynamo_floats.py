"""Under dynamo, the Python floats a staged statement reads first are constants (guarded)."""

from __future__ import annotations

import functools

# NOTE [floats first read in a staged statement]
# Dynamo makes a Python float it reads symbolic once the float has changed between compiled
# calls (`specialize_float` is off: a float64 0-d tensor input, read back as a SymFloat), and
# lifts a SymFloat that a torch.cond / while_loop body reads from outside as an operand of the
# operator, which torch 2.13 refuses ("can only be of (Tensor, int, SymInt) but got SymFloat",
# an AssertionError of torch's naming no line of the user's). The floats the bodies' own code
# reaches are given their values first (NOTE [symbolic floats held by objects] in
# runtime/staging/torch.py), but not a float that a helper the body calls reads from a global
# object (break43 s04), a method's read of its object's field, or one read through `getattr`
# with a computed name. So while dynamo traces a staged statement (its probes of the bodies
# included, which read first), it treats each float read for the first time as a constant
# guarded on its value, as it does where `specialize_float` is set: another value compiles
# the function again, which the floats the bodies' code reaches did already. Floats read
# outside any staged statement keep dynamo's own treatment. The setting is put back when the
# outermost statement ends, and by dynamo's clean-up of the frame if its trace stops inside.


def floats_specialized(on: bool) -> bool:
    """Set dynamo's `specialize_float` to `on` (NOTE [floats first read in a staged
    statement]); returns its value before. Called for real by dynamo."""
    from torch._dynamo import config
    from torch._dynamo.symbolic_convert import InstructionTranslator

    before = config.specialize_float
    if on == before:
        return before
    config.specialize_float = on
    tx = InstructionTranslator.current_tx()
    if on and tx is not None:
        tx.output.add_cleanup_hook(functools.partial(setattr, config, "specialize_float", before))
    return before


floats_specialized._dynamo_marked_constant = True
