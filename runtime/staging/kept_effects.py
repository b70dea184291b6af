"""Keeping a staged statement whose bodies hold a graph assertion through dead-code elimination.

NOTE [assertions in bodies whose outputs are unused]
A `raise` or `assert` under a tensor condition becomes `_assert_async` in a body of a
`torch.cond` / `torch.while_loop` (runtime/operators.py, `raise_`). torch's dead-code
elimination (`torch.fx.Graph.eliminate_dead_code`) keeps `_assert_async` itself (it is in
`torch.fx.node._side_effectful_functions`), but asks `Node.is_impure` about the operator node
that holds the body, and torch 2.13 counts `cond` and `while_loop` as pure whatever their bodies
do (torch tried to look into submodules, pytorch#166609, and backed it out, pytorch#167443). So a
statement whose outputs nothing reads is erased with its assertions:

- a helper `def check(x): if c1: raise ...; if c2: raise ...` called as `check(x)`: the second
  check runs under `if not <returned>:` and its own flag output is read by nothing, so
  torch.export's pass over the bodies (the recursion in `eliminate_dead_code`, which uses the
  default purity) erased it: the exported program accepted what Python refuses (kornia's
  `camtoworld_to_worldtocam_Rt(check_rotation=True)` took a reflection), silently;
- `ep.run_decompositions()`, AOT autograd (torch.compile's aot_eager and inductor) use the
  default purity at the top level too: there every such statement was erased, also an
  `assert` in a `while` whose carried values are unused after it.

`install_kept_effects_fix` makes `Node.is_impure` say yes for an operator node (a higher-order
operator) whose bodies, read through its `get_attr` arguments, hold an impure node themselves,
at any depth. Applied only where torch's purity does not already look into them.

Inductor decides by its own IR: its scheduler drops a buffer nobody reads unless
`has_side_effects()`, which its `Conditional` and `WhileLoop` nodes never say (the same
statements lost their checks under torch.compile's default backend).
`install_inductor_fix` makes them look into their subgraphs the same way. Importing inductor
costs seconds, so it is applied when the outermost staged statement is traced by dynamo and
inductor is already loaded (torch.compile's inductor backend loads it before dynamo traces).
"""

from __future__ import annotations

import sys

import torch

__all__ = ["install_kept_effects_fix", "install_inductor_fix", "bodies_have_effects"]


def _body_module(node: torch.fx.Node, arg):
    """The GraphModule a `get_attr` argument of `node` reads, or None."""
    if not (isinstance(arg, torch.fx.Node) and arg.op == "get_attr"):
        return None
    owner = node.graph.owning_module
    if owner is None:
        return None
    target = owner
    for part in str(arg.target).split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target if isinstance(target, torch.fx.GraphModule) else None


def bodies_have_effects(node: torch.fx.Node, impure_random: bool = True) -> bool:
    """Whether a body `node` (a higher-order operator's call) runs holds a node with a side
    effect (an assertion, a print, an in-place update), at any depth."""
    if node.op != "call_function" or not isinstance(node.target, torch._ops.HigherOrderOperator):
        return False
    args = list(node.args) + list(node.kwargs.values())
    flat = []
    for arg in args:
        flat.extend(arg if isinstance(arg, (list, tuple)) else [arg])
    for arg in flat:
        body = _body_module(node, arg)
        if body is None:
            continue
        for inner in body.graph.nodes:
            if inner.op in ("placeholder", "output", "get_attr"):
                continue
            if inner.is_impure(impure_random):
                return True
    return False


_installed = False


def install_kept_effects_fix() -> bool:
    """Apply NOTE [assertions in bodies whose outputs are unused]'s fix; True where applied
    (or torch's purity already looks into the bodies)."""
    global _installed
    if _installed:
        return True
    original = torch.fx.Node.is_impure
    if getattr(original, "_autoconv_looks_into_bodies", False):
        _installed = True
        return True

    def is_impure(self, impure_random: bool = True) -> bool:
        if original(self, impure_random):
            return True
        return bodies_have_effects(self, impure_random)

    is_impure._autoconv_looks_into_bodies = True
    is_impure.__doc__ = original.__doc__
    is_impure.__wrapped__ = original
    torch.fx.Node.is_impure = is_impure
    _installed = True
    return True


def _graph_has_effects(graph_module) -> bool:
    return any(node.op not in ("placeholder", "output", "get_attr") and node.is_impure()
               for node in graph_module.graph.nodes)


_inductor_installed = [False]


def install_inductor_fix() -> bool:
    """Make inductor's `Conditional` / `WhileLoop` IR nodes count as having side effects where
    a subgraph holds an impure node (NOTE [assertions in bodies whose outputs are unused]);
    True where applied. Only where inductor is already loaded. (Dynamo calls it for real.)"""
    if _inductor_installed[0]:
        return True
    ir = sys.modules.get("torch._inductor.ir")
    if ir is None:
        return False
    install_kept_effects_fix()
    _patch_inductor(ir)
    _inductor_installed[0] = True
    return True


def _patch_inductor(ir) -> None:
    for name, subgraphs in (("Conditional", ("true_subgraph", "false_subgraph")),
                            ("WhileLoop", ("cond_subgraph", "body_subgraph"))):
        kind = getattr(ir, name, None)
        # (the scheduler asks `hasattr(node, "has_side_effects") and node.has_side_effects()`)
        original = getattr(kind, "has_side_effects", None)
        if kind is None or getattr(original, "_autoconv_looks_into_bodies", False):
            continue

        def has_side_effects(self, original=original, subgraphs=subgraphs) -> bool:
            if original is not None and original(self):
                return True
            for attribute in subgraphs:
                body = getattr(getattr(self, attribute, None), "graph_module", None)
                if body is not None and _graph_has_effects(body):
                    return True
            return False

        has_side_effects._autoconv_looks_into_bodies = True
        kind.has_side_effects = has_side_effects


install_inductor_fix._dynamo_marked_constant = True  # (dynamo calls it rather than tracing it)
