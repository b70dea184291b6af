"""The variables whose lists a body's own code writes items of (`errs[1] = errs[0]`)."""

from __future__ import annotations

import dis
import types

from .python_state import moved_on_stack

# NOTE [item writes seen in the code]
# A probe tells that a body wrote a list's items in place by the items' identities after it
# (lists.Growth.see): the list is then carried as a tuple and written back (replaced_lists.py).
# A write of an item that is already in the list (`errs[1] = errs[0]` where `errs = [inv, inv,
# inv]`, k-diffusion's PID controller: tester43 s03; `errs[0] = errs[0]`) changes no identity,
# so the list stayed a constant of the statement. In autoconv's replay and in torch.export the
# write then happens on the list itself, to the value it had; dynamo refuses any change of an
# outside object in torch.cond's bodies ("HOP: Unsafe side effect ... Attempted to mutate
# ListVariable", UncapturedHigherOrderOpError with no line of the user's). So under dynamo a
# list whose items the body's own code stores or deletes (read from its bytecode, as a local
# variable, which a converted body's state is) counts as written, whatever the identities say.
# A write in a function the body calls is seen by identity only, as before. The runtime's
# wrappers of a body that keep its parameters' names (objects.carry's) name the body they run
# (`_autoconv_body`), whose code is read.

_PURE_POPS = frozenset({"POP_TOP", "STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF",
                        "STORE_ATTR", "STORE_SUBSCR", "DELETE_SUBSCR", "RETURN_VALUE",
                        "LIST_APPEND", "SET_ADD", "MAP_ADD", "POP_EXCEPT"})
_WRITTEN: dict = {}  # {code: the names}


def items_written(code: types.CodeType) -> tuple:
    """The local variables of `code` whose values it stores or deletes an item of
    (`name[i] = v`, `del name[i]`), found by following where each value on the stack came from
    through the code's straight-line bytecode. Called for real by dynamo (NOTE [item writes
    seen in the code])."""
    found = _WRITTEN.get(code)
    if found is not None:
        return found
    stack, written = [], set()
    for ins in dis.get_instructions(code):
        op = ins.opname
        if op == "LOAD_FAST":
            stack.append(ins.argval)
            continue
        if moved_on_stack(stack, ins):
            continue
        if op in ("STORE_SUBSCR", "DELETE_SUBSCR") and len(stack) >= 2 \
                and isinstance(stack[-2], str):
            written.add(stack[-2])
        try:
            effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
        except ValueError:
            effect = 0
        if effect < 0:
            del stack[max(0, len(stack) + effect):]
        else:
            stack.extend([None] * effect)
        if op not in _PURE_POPS and not op.startswith("POP_JUMP") and stack and effect <= 0:
            stack[-1] = None  # (an operation's result, not the value it read)
    found = _WRITTEN[code] = tuple(sorted(written))
    return found


items_written._dynamo_marked_constant = True


def of_body(fn) -> tuple:
    """`items_written` of the code of `fn`, a body, or of the body a runtime's wrapper of it
    runs (NOTE [item writes seen in the code])."""
    while getattr(fn, "_autoconv_body", None) is not None:
        fn = fn._autoconv_body
    if type(fn) is not types.FunctionType:
        return ()
    return items_written(fn.__code__)
