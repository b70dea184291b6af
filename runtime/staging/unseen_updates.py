"""Tensor inputs a staged body updates in place where its source does not show it, under dynamo.

NOTE [inputs updated unseen under dynamo]
A body may update a tensor it only reads where its source does not say so: a helper updating
its argument (`_accumulate(buf, x)`, tester29 s06), `torch.mul(a, b, out=buf)` or `buf.div_(k)`
inside one (linear_operator's `minres`, tester30 s05), a method, a callable. Outside dynamo
each run of a body compares the inputs' version counters (NOTE [inputs updated unseen] in
torch.py) and the statement is staged again carrying the input. Under dynamo a body's
`t._version` is a symbol of the graph, not a number, and dynamo refuses a body that writes one
of its operands ("Encountered input mutation during higher order op tracing", torch's error
with no user line), a refusal the runtime cannot catch. But dynamo runs every op on fake
tensors while it traces, and a fake tensor counts its in-place updates (views share the count
of their base): a probe run of the bodies on copies of the tensor inputs (`_probe_input_changes`
in torch.py) notes each copy's node as it is made (`watch_copy`), and after the body asks
which copies' fake tensors were updated (`updated`). Those inputs are moved into the
statement's state (objects.with_inputs_as_state): each body then updates its own copy and
gives it back, and after the statement the result is written into the input's tensor (`copy_`),
so every alias the caller holds sees it, as in Python. These functions read dynamo's graph, and
are called for real (`_dynamo_marked_constant`) with constants only, as dead_probes.py's are.

A probe is one more trace of the bodies (a staged loop of a staged `if` whose branches call a
helper compiled in 6 s instead of 3.5 s with every input probed), so it watches only the
inputs a body may update so (`may_update_unseen`): those a body reads whose code, or the code
of a function defined in it, calls a user function or method (`converted_call`); all of them
where a body is the runtime's own wrapper, whose code does not show what it calls.
"""

from __future__ import annotations

import dis
import itertools
import os
import types

import torch

__all__ = ["may_update_unseen", "body_codes", "updates_nothing", "keeps_its_state", "watch_copy",
           "updated"]

_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # autoconv_runtime's files
_CALLS = frozenset({"converted_call", "converted_method_call", "super_method"})
_KEYS = itertools.count(1)
_WATCHED: dict = {}  # key -> (the copy's node, its fake tensor's version when made)
_SEEN: dict = {}  # code -> whether it may call code that updates its inputs
_READ: dict = {}  # code -> the names it reads


def may_update_unseen(codes, count, inputs: int) -> tuple:
    """The positions among a statement's `inputs` (a number) of those a body of code in
    `codes` (code objects, taking `count` state values, then the inputs; None: the inputs are
    its last parameters, a body a runtime's wrapper runs) may update in place where its source
    does not show it (see NOTE [inputs updated unseen under dynamo]): each input a body that
    calls user code reads, and every input where a body is the runtime's own wrapper. Called
    for real."""
    found = set()
    for code in codes:
        if code in _UPDATES_NOTHING:
            continue
        if not isinstance(code, types.CodeType) or code.co_filename.startswith(_RUNTIME):
            return tuple(range(inputs))
        if not _may_update(code):
            continue
        first = code.co_argcount - inputs if count is None else count
        if first < 0 or code.co_argcount != first + inputs:
            return tuple(range(inputs))
        read = _read_names(code)
        found.update(i for i, name in enumerate(code.co_varnames[first:first + inputs])
                     if name in read)
    return tuple(sorted(found))


def updates_nothing(code) -> None:
    """Know `code`, a runtime's body, as one that reads no input (an `if`'s missing branch)."""
    _UPDATES_NOTHING.add(code)


_UPDATES_NOTHING: set = set()


# NOTE [bodies a runtime's wrapper runs]
# A statement carrying an object (objects.carry) or holding one container under two names
# (shared_containers) gives the engine its own wrappers of the user's bodies, whose code shows
# no call of the user's: every tensor input was taken as one a body may update unseen, and
# watched in a probe run of the bodies of its own (fuzz seed 4601's program 30: `s = State(x +
# 1)` carried through three nested `if`s, each probing all its inputs: 542k of dynamo's 1.38M
# steps). Those wrappers name the body they run (`_autoconv_body`, NOTE [item writes seen in the
# code] in item_writes.py), pass it the statement's inputs as its last arguments, as they are,
# and do nothing else to them: the body's own code is read instead (`body_codes`). The
# missing branch of an `if` (runtime/operators.py's `_keep_state`) reads no input at all.
def body_codes(bodies) -> tuple:
    """(the codes `may_update_unseen` reads for `bodies`, (function, returns state) pairs,
    whether any is a body a runtime's wrapper runs) (NOTE [bodies a runtime's wrapper
    runs]). (No comprehension: dynamo traces each as a frame of its own.)"""
    codes, wrapped = [], False
    for fn, _ in bodies:
        while getattr(fn, "_autoconv_body", None) is not None:
            fn, wrapped = fn._autoconv_body, True
        codes.append(getattr(fn, "__code__", None))
    return tuple(codes), wrapped


def keeps_its_state(fn) -> bool:
    """Whether `fn`, a body (perhaps a runtime's wrapper of one), is a missing branch, which
    gives its state back as it is (`updates_nothing`)."""
    while getattr(fn, "_autoconv_body", None) is not None:
        fn = fn._autoconv_body
    return getattr(fn, "__code__", None) in _UPDATES_NOTHING


def _may_update(code) -> bool:
    found = _SEEN.get(code)
    if found is None:
        found = (not _CALLS.isdisjoint(code.co_names)
                 or any(_may_update(c) for c in code.co_consts if isinstance(c, types.CodeType)))
        _SEEN[code] = found
    return found


def _read_names(code) -> frozenset:
    """The local and cell names `code` reads (the nested statements' bodies get what they
    read from it as arguments, or through its cells)."""
    found = _READ.get(code)
    if found is None:
        names = set()
        for instruction in dis.get_instructions(code):
            if instruction.opname.startswith("LOAD_") and instruction.opname != "LOAD_CONST":
                value = instruction.argval
                names.update(value if isinstance(value, tuple) else (value,))
        found = _READ[code] = frozenset(n for n in names if isinstance(n, str))
    return found


def watch_copy() -> int:
    """A key for the tensor made last in the graph dynamo is building (a probe's copy of an
    input: `t.clone()`), to ask `updated` about; 0 where that is not a copy's node. Called for
    real."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    node = next(iter(reversed(tx.output.current_tracer.graph.nodes)), None) if tx else None
    fake = None if node is None else node.meta.get("example_value")
    if not (isinstance(fake, torch.Tensor) and _is_clone(node)):
        return 0
    key = next(_KEYS)
    _WATCHED[key] = (node, fake._version)
    return key


def _is_clone(node) -> bool:
    return ((node.op == "call_method" and node.target == "clone")
            or (node.op == "call_function" and node.target in (torch.clone,
                                                               torch.Tensor.clone)))


def updated(keys) -> tuple:
    """Per key of `keys` (from `watch_copy`), whether its copy was updated in place since it
    was made; the keys are forgotten. A key 0 (a copy not watched) counts as updated: the
    caller then carries the input, which is always right. Called for real."""
    found = []
    for key in keys:
        node, version = _WATCHED.pop(key, (None, None))
        fake = None if node is None else node.meta.get("example_value")
        found.append(not isinstance(fake, torch.Tensor) or fake._version != version)
    return tuple(found)


def reset() -> int:
    """Forget the copies of a trace that ended (one that failed inside a probe left some).
    Called for real, by the outermost staged statement."""
    _WATCHED.clear()
    return 0


for _f in (may_update_unseen, watch_copy, updated, reset):
    _f._dynamo_marked_constant = True  # (dynamo calls them for real)
