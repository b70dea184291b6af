"""Operands of a staged statement that are the tensor its body reads by closure, under dynamo.

NOTE [an operand and a tensor read by closure updated as one under dynamo]
`f(W)` where `f`'s staged body updates its argument in place and reads the global `W` by name
(`while n < 3: x.add_(1); s = s + W.sum()`), or updates `W` in place and reads `x` (`while
x.sum() < 1000: W.add_(x + 1)`): in Python `x` is `W`, and each read sees each update. Dynamo
makes the argument and the global one tensor (one input of its graph, guarded as duplicates),
but the statement's operand and the tensor the body reads by closure are two inputs of the
body's graph: the body updates its own copy of the operand and reads the lifted tensor as it
was before the statement, or updates the lifted tensor (taken under no_grad: NOTE [free
variables updated in a body under dynamo]) and reads the operand as it was before. The loop's
results were [3, 7, 11, 15] for Python's [7, 15, 23, 31] (break50 s03) and 3 for 15 (wrong50).
Replay gives the body's copy to the read instead (NOTE [an outside tensor read by its own name
in a body updating it as an argument] in outside_writes.py), through a torch-function mode that
dynamo does not trace. So at the end of each body dynamo traces, the operands' tensors in the
enclosing graph (the runtime's `operands.flat`, as dynamo holds them) are compared with the
lifted ones by storage, through the copies the runtime makes of an operand: where the body
writes one and reads the other, the statement is refused at its line, naming both. These
functions read dynamo's state and are called for real (`_dynamo_marked_constant`) with
constants only, as freevar_updates.py's are.
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import sys

import torch

__all__ = ["check", "note_test"]

# NOTE [a loop's test reading by closure the tensor its body updates as an operand]
# `f(W)` where `while W.sum() < 10: x.add_(1)` (or `while n < 3 and W.sum() < 10:`): the test
# reads the global, the body updates the argument, one tensor in Python (4 trips: [4, 4, 4]).
# Dynamo traces the test (cond_fn) before the body, and lifts `W` into the test's graph as an
# input of its own while the body updates its copy of the carried operand: torch refused the
# loop only when compiling the graph, "cond_fn might be aliasing the input or the output", at
# no user line. So the test records the enclosing graph's nodes it reads by closure (on the
# enclosing tracer, `note_test`), and the body's `check` compares those with the operands it
# writes by storage, as it does its own reads: refused at the loop's line, naming both.
_TEST_READS = "_autoconv_test_reads"

_FOLLOWED = frozenset({"clone", "view_as", "view", "detach", "contiguous"})


def check(statement: str) -> int:
    """At the end of a body dynamo traces (for the `statement`): refuse where the body writes
    in place an operand or a tensor it reads by closure while it reads the other and the two
    are one tensor (NOTE [an operand and a tensor read by closure updated as one under
    dynamo]). Called for real.

    Raises:
        StagingError: at the statement's line, naming the operand and the tensor read.
    """
    from torch._dynamo.symbolic_convert import InstructionTranslator

    from .freevar_updates import _updated_name

    tx = InstructionTranslator.current_tx()
    tracer = tx.output.current_tracer if tx is not None else None
    if tracer is None or tracer.parent is None:
        return 0
    # (the loop's test, traced just before this body: NOTE [a loop's test reading by closure
    # the tensor its body updates as an operand]; taken, so no later body sees it)
    tested = tracer.parent.__dict__.pop(_TEST_READS, None) or ()
    if not tracer.lifted_freevars and not tested:
        return 0
    # (each placeholder's node in the enclosing graph: a lifted one's, and an operand's, in the
    # order of the runtime's operands; torch.cond's branches get the operands lifted too)
    origin = {inner.node: out.node for out, inner in tracer.lifted_freevars.items()}
    own = [n for n in tracer.graph.nodes if n.op == "placeholder" and n not in origin]
    outer = _operand_nodes(tx)
    if outer is None or (own and len(outer) != len(own)):
        return 0
    origin.update((p, node) for p, node in zip(own, outer) if node is not None)
    operands = set(own) if own else {p for p, node in origin.items() if _copy_of(node, outer)}
    written = _written_roots(tracer.graph)
    for updated, site in written.items():
        storage = _storage(origin[updated]) if updated in origin else None
        if storage is None:
            continue
        for read, node in origin.items():
            # (two operands that are one tensor are the runtime's to join: NOTE [one tensor
            # given as two inputs] in runtime/operators.py)
            if read is not updated and (read in operands or read.users) and \
                    (read not in operands or updated not in operands) and \
                    _storage(node) == storage:
                argument = _operand_name(node, None) or _operand_name(
                    origin[updated], read.name)
                _refuse(statement, site, _read_site(read), argument)
        for node, read_site in tested:
            if _storage(node) == storage:
                # (the argument's name as the user wrote it where dynamo's is `L['args'][0]`:
                # the updated one's, on the body's line)
                argument = _operand_name(origin[updated], None) or (
                    _updated_name(*site) if site else None) or "the argument"
                _refuse(statement, site, read_site, argument)
    return 0


def note_test(statement: str) -> int:
    """At the end of a loop's test dynamo traces: records on the enclosing tracer the nodes of
    the enclosing graph the test reads by closure, with the user's line of each read, for the
    body's `check` (NOTE [a loop's test reading by closure the tensor its body updates as an
    operand]). Called for real."""
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    tracer = tx.output.current_tracer if tx is not None else None
    if tracer is None or tracer.parent is None:
        return 0
    tracer.parent.__dict__[_TEST_READS] = [
        (out.node, _read_site(inner.node)) for out, inner in tracer.lifted_freevars.items()
        if inner.node.users]
    return 0


def _operand_nodes(tx):
    """The enclosing graph's node of each of the statement's operands (None for a value that
    is not a tensor), from the runtime's `_run_body` frame dynamo runs; None where not found."""
    from torch._dynamo.variables import TensorVariable

    frame = tx.output.current_tx
    while frame is not None and not (frame.f_code.co_name == "_run_body"
                                     and frame.f_code.co_filename.endswith("torch.py")):
        frame = getattr(frame, "parent", None)
    try:
        operands = frame.symbolic_locals["operands"]
        flat = frame.output.side_effects.load_attr(operands, "flat")
        return [i.as_proxy().node if isinstance(i, TensorVariable) else None
                for i in flat.items]
    except Exception:  # noqa: BLE001 (dynamo's internals as they are: not checked)
        return None


def _storage(node):
    """The storage of the tensor `node` makes, through the runtime's own copies of it."""
    from torch.multiprocessing.reductions import StorageWeakRef

    while (node.op == "call_method" and node.target in _FOLLOWED and node.args
           and isinstance(node.args[0], torch.fx.Node) and _runtimes(node)):
        node = node.args[0]  # (a copy the runtime made: its value is the operand's)
    fake = node.meta.get("example_value")
    if not isinstance(fake, torch.Tensor):
        return None
    return StorageWeakRef(fake.untyped_storage())


def _same_storage(a, b) -> bool:
    x, y = (n.meta.get("example_value") for n in (a, b))
    return (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
            and x.untyped_storage()._cdata == y.untyped_storage()._cdata)


def _operand_name(node, fallback: str) -> str:
    """The argument's name of the function dynamo traces that `node` (or the runtime's copy
    of it) is, else `fallback`."""
    while (node.op == "call_method" and node.target in _FOLLOWED and node.args
           and isinstance(node.args[0], torch.fx.Node) and _runtimes(node)):
        node = node.args[0]
    source = getattr(node.meta.get("grapharg"), "source", None)
    name = getattr(source, "name", "")
    found = re.fullmatch(r"L\['(\w+)'\]", (name() if callable(name) else name) or "")
    return found.group(1) if found else fallback


def _copy_of(node, outer) -> bool:
    """Whether `node` is a copy (or view) the runtime made of one of the nodes `outer`: what it
    gives torch.cond's branches for an operand, which dynamo lifts into them. Not one of
    `outer` itself: that is the tensor a branch reads by closure that dynamo made one with an
    operand (the runtime gives the branches copies)."""
    while node.op == "call_method" and node.target in _FOLLOWED and node.args and \
            isinstance(node.args[0], torch.fx.Node) and _runtimes(node):
        node = node.args[0]
        if any(node is o for o in outer):
            return True
    return False


def _runtimes(node) -> bool:
    """Whether the innermost frame that made `node` is the runtime's (not the user's)."""
    from ..errors import users_file
    from .freevar_updates import _FRAME

    frames = _FRAME.findall(node.meta.get("stack_trace") or "")
    # (not a call of the user's that the runtime's converted_call makes)
    return bool(frames) and not users_file(frames[-1][0]) and \
        os.path.basename(frames[-1][0]) != "calls.py"


def _written_roots(graph) -> dict:
    """{placeholder: the (file, line) of the user's first in-place write of it, or of a copy or
    view of it, in `graph`} (None where no user line is found)."""
    from .dead_probes import _written
    from .freevar_updates import _user_frame

    root = {}
    found = {}
    for node in graph.nodes:
        if node.op == "placeholder":
            root[node] = node
            continue
        for target in _written(node) or ():
            origin = root.get(target)
            if origin is not None and origin not in found:
                site = _user_frame(node.meta.get("stack_trace") or "")
                found[origin] = site[:2] if site else None
        # (through views of it and the runtime's copies: a copy the user makes is apart)
        if node.op in ("call_method", "call_function") and node.args and \
                isinstance(node.args[0], torch.fx.Node) and node.args[0] in root and (
                    _same_storage(node, node.args[0]) or _runtimes(node)):
            root.setdefault(node, root[node.args[0]])
    return found


def _read_site(placeholder):
    """(file, line) of the user's first use of `placeholder`, or None."""
    from .freevar_updates import _user_frame

    for user in placeholder.users:
        site = _user_frame(user.meta.get("stack_trace") or "")
        if site:
            return site[:2]
    return None


def _names(site) -> list:
    """The names and dotted attributes the user's line at `site` reads, in order."""
    if site is None:
        return []
    text = linecache.getline(*site).strip()
    try:
        # (a compound statement's header: `while W.sum() < 10:` given a body to parse)
        tree = ast.parse(text + (" pass" if text.endswith(":") else ""))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) or (
                isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)):
            try:
                found.append(ast.unparse(node))
            except Exception:  # noqa: BLE001
                continue
    return list(dict.fromkeys(found))


def _global_name(site, names) -> str | None:
    """The first of `names` (or, where `names` is None, of the names on the line at `site`) that
    is a global (or a global's attribute) holding a tensor in the module of `site`'s file."""
    module = next((m for m in list(sys.modules.values())
                   if site and getattr(m, "__file__", None) == site[0]), None)
    for name in _names(site) if names is None else names:
        if module is not None and isinstance(_value_of(name, module), torch.Tensor):
            return name
    return None


def _value_of(name: str, module):
    """The value of `name` (names, attributes and constant subscripts: `D['w'].v`) in
    `module`, or None."""
    def value(node):
        if isinstance(node, ast.Name):
            return getattr(module, node.id, None)
        if isinstance(node, ast.Attribute):
            return getattr(value(node.value), node.attr, None)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            held = value(node.value)
            return held.get(node.slice.value) if isinstance(held, dict) else None
        return None

    try:
        return value(ast.parse(name, mode="eval").body)
    except Exception:  # noqa: BLE001 (a name the line's source does not resolve)
        return None


def _refuse(statement, write, read, argument: str) -> None:
    from ..errors import dynamo_user_location, raise_at_under_dynamo
    from .freevar_updates import _updated_name

    updated = (_updated_name(*write) if write else None) or argument
    outside = _global_name(write, [updated]) if updated != argument else None
    if outside is not None:
        what = f"updates '{outside}' in place and reads '{argument}'"
    else:
        outside = next((n for n in _names(read) if n not in (updated, argument)
                        and _global_name(read, [n])), "a global")
        what = f"updates '{updated}' in place and reads '{outside}'"
    problem = (f"the {statement} {what}, which are one tensor (the argument '{argument}' given "
               f"'{outside}' itself, or a view of its memory): torch.compile stages the body "
               f"with one of them as it was before the {statement}, where Python's reads see "
               "each update")
    fix = (f"Pass the tensor once (read it as '{argument}' in the body, not as '{outside}'), "
           f"or give a copy (`f({outside}.clone())`) where it need not see the update")
    raise_at_under_dynamo(dynamo_user_location(), statement, problem, fix)


check._dynamo_marked_constant = True  # (dynamo calls it for real)
note_test._dynamo_marked_constant = True
