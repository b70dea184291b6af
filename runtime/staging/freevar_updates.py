"""Tensors from outside a staged body that it updates in place, under dynamo: staged under no_grad.

NOTE [free variables updated in a body under dynamo]
A body can update in place a tensor that is not among the statement's values: one a helper
reaches by closure (`hist = torch.zeros(2); def bump(i): hist[i] += 1`, called in a staged
loop: tester31 s02, s03), a global (`HIST[i] += 1` in a helper), an attribute of a global
object. Outside dynamo the tracer runs the update in the operator's subgraph, which torch
carries. Dynamo lifts such a tensor into the body's graph as an extra input (a "lifted
freevar") and refuses the body that writes one ("Encountered input mutation during higher
order op tracing", with no user line), except where grad mode is off: then torch.cond and
torch.while_loop take the update as theirs (dynamo's `supports_input_mutation`), and eager,
aot_eager and inductor give Python's result. The runtime cannot carry the tensor instead:
dynamo shows no `__closure__` of a function made in its trace and refuses writes to a cell or
a global in a body, so the helper would still read the outer tensor.

So at the end of each body dynamo traces (`check`), the body's lifted inputs are looked at
through dynamo's own record (their fake tensors' versions); where one was updated with grad
mode on, the statement whose operator encloses the body (the outermost one dynamo traces: its
key is given by `outermost`) is noted, and dynamo's analysis of the frame restarts
(RestartAnalysis, as dynamo's own speculation does), so that the next trace stages that
operator under `torch.no_grad()`. Grad mode then changes nothing only if no tensor the bodies
get requires grad: where one does (a parameter read in the body, an operand that requires
grad), a StagingError at the line of the update names the tensor and the helper and says to
pass the tensor in as an argument, which the statement carries (NOTE [inputs updated unseen
under dynamo]). Probes run bodies outside the operator, and their updates of tensors from
before the probe are dead code there (NOTE [updates of tensors from before a probe under
dynamo] in dead_probes.py): only the operator updates. A test run under the user's no_grad
(where dynamo took the update already) counted a global one too high before. The restart costs
one more trace of the frame. These functions read dynamo's state and are called for real (`_dynamo_marked_constant`) with
constants only, as dead_probes.py's are.
"""

from __future__ import annotations

import ast
import linecache
import re

import torch

__all__ = ["outermost", "check"]

_NO_GRAD: set = set()  # keys of statements whose operator is staged under no_grad
# the key of the outermost operator traced now; whether it is under the no_grad chosen here;
# whether its operands require grad
_CURRENT = [None, False, False]
_GENERATED = re.compile(r"(if_true|if_false|loop_body|loop_test|extra_test)(_\d+)?$|<lambda>$")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def outermost(key, grads: bool) -> bool:
    """The statement of `key` (constants: its location and bodies' code), whose operands
    require grad where `grads`, stages the operator that encloses every other one dynamo
    traces now: whether to stage it under no_grad (NOTE [free variables updated in a body
    under dynamo]). Called for real."""
    forced = key in _NO_GRAD and torch.is_grad_enabled() and not grads
    _CURRENT[:] = key, forced, grads
    return forced


def check(statement: str) -> int:
    """At the end of a body dynamo traces (for the `statement`): restart dynamo's analysis
    where the body updated a tensor lifted into its graph with grad mode on; refuse where the
    operator is staged under no_grad but a tensor of the body requires grad. Called for real.

    Raises:
        RestartAnalysis: the first time the outermost statement's bodies update such a tensor.
        StagingError: where no_grad cannot give Python's result.
    """
    from torch._dynamo.symbolic_convert import InstructionTranslator

    tx = InstructionTranslator.current_tx()
    tracer = tx.output.current_tracer if tx is not None else None
    if tracer is None or tracer.parent is None:
        return 0
    lifted = {getattr(p, "node", p) for p in tracer.lifted_freevars.values()}
    placeholders = [n for n in tracer.graph.nodes if n.op == "placeholder"]
    info = tracer.has_input_mutation()
    mutated = [placeholders[i] for i in info.mutated_input_indices if i < len(placeholders)]
    updated = [p for p in mutated if p in lifted]
    key, forced, grads = _CURRENT
    if forced and len(updated) < len(mutated):
        # (an operand of the statement updated in place: never expected, the runtime carries
        # those; no_grad would let torch take it where dynamo refused it, unverified)
        _refuse(tracer, next(p for p in mutated if p not in lifted), statement,
                "as it also updates a value the statement passes it")
    if not updated:
        return 0
    if torch.is_grad_enabled():
        if key is not None and key not in _NO_GRAD and not grads:
            _NO_GRAD.add(key)
            tx.speculation_log.clear()  # (the next trace takes another path, on purpose)
            raise torch._dynamo.exc.RestartAnalysis(
                restart_reason="autoconv: a staged body updates a tensor from outside it")
        _refuse(tracer, updated[0], statement, "as a value the statement starts from requires "
                "grad" if grads else "as the body turns grad mode on (torch.enable_grad())")
    if forced:
        # (the operands' placeholders are made under no_grad; a lifted tensor's is the
        # enclosing graph's own value)
        needing = [n for n in placeholders if n in lifted and getattr(
            n.meta.get("example_value"), "requires_grad", False)]
        if needing:
            _refuse(tracer, updated[0], statement,
                    f"as '{needing[0].name}', which the body reads, requires grad")
    return 0


def _refuse(tracer, placeholder, statement: str, why: str) -> None:
    from ..errors import dynamo_user_location, raise_at_under_dynamo

    site = _update_site(tracer.graph, placeholder)
    location = site[:2] if site else dynamo_user_location()
    helper = site[2] if site else None
    name = (_updated_name(*site[:2]) if site else None) or placeholder.name
    by = f"'{helper}'" if helper else "a function the body calls"
    problem = (f"{by} updates '{name}' in place, a tensor it reaches by closure or as a global "
               f"(not an argument); torch.compile stages the {statement} with such an update "
               f"only under torch.no_grad(), which would drop gradients here, {why}")
    # (an attribute, `self.scale`, is passed as its value: `def f(self.scale)` is no Python)
    parameter = name.rpartition(".")[2]
    passed = f", called with `{name}`" if parameter != name else ""
    fix = (f"Pass '{name}' to {by} as an argument (`def {helper or 'f'}({parameter}, ...)`"
           f"{passed}) so that the {statement} carries it, or return the new value and assign "
           "it in the caller")
    raise_at_under_dynamo(location, statement, problem, fix)


def _update_site(graph, placeholder):
    """(file, line, function) of the user's line of the first node of `graph` that updates
    `placeholder` (or a view of it) in place, or gives it to a nested operator; else None."""
    from .dead_probes import _written

    derived = {placeholder}
    for node in graph.nodes:
        written = _written(node) or []
        hop = node.op == "call_function" and node.target in (
            torch.ops.higher_order.cond, torch.ops.higher_order.while_loop)
        args = [a for a in node.all_input_nodes]
        if any(w in derived for w in written) or (hop and any(a in derived for a in args)):
            return _user_frame(node.meta.get("stack_trace") or "")
        if node.op in ("call_method", "call_function") and node.args and \
                node.args[0] in derived and not written:
            derived.add(node)  # (a view, or a value read from it: either leads to the update)
    return None


def _user_frame(stack_trace: str):
    from ..errors import users_file

    frames = [(f, int(line), fn) for f, line, fn in _FRAME.findall(stack_trace)
              if users_file(f)]
    if not frames:
        return None
    file, line, _ = frames[-1]
    helper = next((fn for _, _, fn in reversed(frames) if not _GENERATED.match(fn)), None)
    return file, line, helper


def _updated_name(file: str, line: int):
    """The name (or dotted attribute) the user's line updates in place, from its source."""
    text = linecache.getline(file, line).strip()
    try:
        tree = ast.parse(text.rstrip(":") + (" pass" if text.endswith(":") else ""))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        target = None
        if isinstance(node, (ast.AugAssign, ast.Assign)):
            targets = [node.target] if isinstance(node, ast.AugAssign) else node.targets
            target = next((t.value for t in targets if isinstance(t, ast.Subscript)), None)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr.endswith("_") and not node.func.attr.startswith("_"):
            target = node.func.value
        while isinstance(target, ast.Subscript):
            target = target.value
        if isinstance(target, (ast.Name, ast.Attribute)):
            return ast.unparse(target)
    return None


for _f in (outermost, check):
    _f._dynamo_marked_constant = True  # (dynamo calls them for real)
