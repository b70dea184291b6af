"""A torch.export program's check that an input a staged statement writes back into shares no
memory with another input the statement read (NOTE [inputs that share memory under export])."""

from __future__ import annotations

import contextlib

import torch

from ..errors import user_location
from . import context

# NOTE [inputs that share memory under export]
# A staged statement's bodies update a copy of an input they write in place and the result is
# written back after it (NOTE [inputs updated in place] in runtime/operators.py); the bodies read
# every other input as it was given. Where two inputs are one tensor in Python (`prog(x, x)`, a
# view of the other, a module's buffer given as an argument), Python's reads of the other after
# the update see it: a program exported on distinct tensors read it as before (break44 s02: 3.5
# for Python's 6.5, silently). autoconv's replay keys which arguments share memory (its
# signature) and torch.compile's guards do too; an exported program has neither, and nothing in
# its graph can ask for a tensor's memory. So, while torch.export traces, before each write-back
# into one of the program's inputs, the program probes with tensor operations that stay in its
# graph: it fills the written input with 0 and then 1 (its value kept aside and restored after),
# and an input the statement read whose items read 0 and then 1 shares memory with it (NaNs,
# which differ from themselves, do not count). Where one does, the program raises at the call,
# naming the statement's line, before the input is written. The probe costs a copy of each
# tensor involved per call, only in programs whose staged statements update an input in place.
# A program lowered further (`run_decompositions()`, ONNX, AOTInductor) is made functional by
# torch, which reads every input as given with or without autoconv (`x.mul_(2); return y.sum()`
# given `(c, c)` sums the old values there): the probe sees no sharing there, torch's own rule.


def _tracer():
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    mode = get_proxy_mode()
    return getattr(mode, "tracer", None)


def _node(tensor, tracer):
    from torch.fx.experimental.proxy_tensor import get_proxy_slot

    slot = get_proxy_slot(tensor, tracer, None)
    proxy = getattr(slot, "proxy", None)
    return getattr(proxy, "node", None)


def _inputs_read(node) -> list:
    """The placeholders that a staged statement (a higher-order operator) reads on the way to
    `node`'s value: the inputs its bodies read, where sharing memory with the written one
    changes what they see (one read before it, to compute an operand, saw the tensor before
    any update, as in Python)."""
    found, seen, stack = [], set(), [node]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current.op == "call_function" and isinstance(current.target,
                                                       torch._ops.HigherOrderOperator):
            found.extend(filter(None, map(_input_of, current.all_input_nodes)))
        stack.extend(current.all_input_nodes)
    return list(dict.fromkeys(found))


def _input_of(node):
    """The placeholder `node` is, or is a view of, or autoconv's copy of on its way into the
    operator (`operand_copy`), else None."""
    while node.op == "call_function" and (node.meta.get(_OPERAND_COPY) or getattr(
            node.target, "is_view", False)) and node.args and isinstance(node.args[0],
                                                                         torch.fx.Node):
        node = node.args[0]
    return node if node.op == "placeholder" else None


# (an operand that is a view, `prog(c, c[:2])` exported on `(a, b[:2])`, reaches the operator as
# `clone(args_1)`, copied there as staging/torch.py's `_distinct` does: break45c s02, the probe
# was left out and the program read the other input as before the update, silently. A copy the
# user's code made, `y2 = y.clone()`, read the memory before the update, as Python does.)
_OPERAND_COPY = "autoconv_operand_copy"


def operand_copy(copy: torch.Tensor) -> torch.Tensor:
    """`copy`, a copy autoconv made of an operand of a staged statement as it starts; under
    torch.export, its node marked as such for `_inputs_read`."""
    if torch.compiler.is_exporting() and not torch.compiler.is_dynamo_compiling():
        tracer = _tracer()
        node = _node(copy, tracer) if tracer is not None else None
        if node is not None:
            node.meta[_OPERAND_COPY] = True
    return copy


def check_distinct(old: torch.Tensor, new: torch.Tensor) -> None:
    """Under torch.export, put into the program the check that `old`, one of its inputs that a
    staged statement writes `new` back into, shares no memory with another input it read."""
    if (not torch.compiler.is_exporting() or torch.compiler.is_dynamo_compiling()
            or context.staging_depth()):  # (a body's placeholders are no program's inputs)
        return
    tracer = _tracer()
    if tracer is None:
        return
    written, result = _view_base(_node(old, tracer)), _node(new, tracer)
    if written is None or result is None or written.op != "placeholder":
        return
    read = [node for node in _inputs_read(result) if node is not written
            and isinstance(node.meta.get("val"), torch.Tensor)
            and node.meta["val"].device == old.device]
    if not read:
        return
    live = _placeholder_tensors(tracer)
    others = [live[node] for node in read if node in live]
    if not others:
        return
    where = user_location()
    at = f"{where[0]}:{where[1]}: " if where else ""
    # (an input that requires grad, updated under no_grad in Python: `w -= lr * g`)
    graded = any(t.requires_grad for t in (old, *others))
    with torch.no_grad() if graded else contextlib.nullcontext():
        kept = old.clone()
        old.fill_(0)
        zeros = [t.clone() for t in others]
        old.fill_(1)
        shared = torch.zeros((), dtype=torch.bool, device=old.device)
        for before, t in zip(zeros, others):
            shared = shared | ((before != t) & (before == before)).any()
        old.copy_(kept)
    # (checked on the CPU: on a GPU `_assert_async` is a device-side assert, which leaves the
    # process's CUDA context unusable)
    torch._assert_async(
        (~shared).cpu(),
        f"{at}a staged statement updates an input of this exported program in place, and "
        "that input shares memory with another input the statement reads (one tensor given "
        "as two arguments, or a view of it); the exported program was traced on distinct tensors and would read the "
        "other as it was before the update. Give the program distinct tensors (`prog(x, "
        "x.clone())`), or export a function that takes the tensor once")


def _view_base(node):
    """The node `node` is a view of, through views only (`x.view(-1)`, `x.detach()`, `x[:2]`),
    or `node`: a statement that updates a view of an input writes into the input's memory.
    (Only inputs written directly were checked: `v = x.view(-1)` updated in a branch, `prog(c,
    c)` read the other argument as before the update, 2 for Python's 3, silently: break46 s02.)
    """
    while (node is not None and node.op == "call_function"
           and getattr(node.target, "is_view", False) and node.args
           and isinstance(node.args[0], torch.fx.Node)):
        node = node.args[0]
    return node


def _placeholder_tensors(tracer) -> dict:
    """The traced tensors the graph's placeholders stand for, by node (a placeholder's `val` is
    a copy of its fake tensor, which no proxy maps)."""
    found = {}
    for tensor, slot in list(tracer.tensor_tracker.items()):
        node = getattr(getattr(slot, "proxy", None), "node", None)
        if node is not None and node.op == "placeholder":
            found.setdefault(node, tensor)
    return found
