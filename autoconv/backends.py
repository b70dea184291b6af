"""Execution backends: how a `ConcreteFunction` runs its captured torch.fx graph.

A backend turns the captured `GraphModule` (flat tensors in, flat tensors out) into a callable.

* ``"python"`` (the default): the graph is compiled to one straight-line Python function per
  (sub)graph. Each aten op is bound to its fastest Python entry point (the C binding that
  `torch.addmm` uses rather than the `torch.ops.aten.addmm.default` overload object), and staged
  control flow runs as Python: a `cond` node becomes an `if` on its predicate, a `while_loop`
  node a `while`. Outside a tracer that is what the original Python did, at the cost of one
  `bool()` of a 0-d tensor, instead of the ~40 µs a `torch.cond` call costs in eager mode.
  Autograd records through it as through eager code. Each temporary is deleted after its last
  read, and with grad mode off a pointwise op (an activation after a linear layer) writes into
  the fresh tensor it reads when nothing else reads that tensor; in a `while` body, a list's
  append writes the loop's own buffer in place when nothing else in the body reads the buffer.
  Building it takes milliseconds.
* ``"fx"``: the `GraphModule` itself (torch's own execution of every node, cond and while_loop
  included).
* ``"inductor"``: `torch.compile` of the captured graph (a cold build takes seconds).
* ``"cudagraphs"``: `torch.compile(..., backend="cudagraphs")`: the graph's kernels replayed as
  one CUDA graph, `cond` as CUDA-graph conditional nodes (no host sync), for CUDA tensors.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import itertools
import keyword
import math
import operator
import re
import warnings
from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.utils import _pytree as pytree

from . import graph_passes, rnn_cells, scalar_loops

__all__ = ["BACKENDS", "build", "compile_python"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop
_FUNCTIONS = torch._C._VariableFunctions
_NN_FUNCTIONS = torch._C._nn
_METHODS = torch._C.TensorBase
_LOCAL_NAME = re.compile(r"v\d+_|grad$|.*_or_in_place$")  # names of the generated locals
_INLINE_OPERATORS = {
    operator.getitem: "{0}[{1}]",
    operator.add: "({0} + {1})",
    operator.sub: "({0} - {1})",
    operator.mul: "({0} * {1})",
    operator.floordiv: "({0} // {1})",
    operator.truediv: "({0} / {1})",
    operator.mod: "({0} % {1})",
    operator.neg: "(-{0})",
}


def _fast_entry(op: torch._ops.OpOverload):
    """The quickest callable with the semantics of `op` for the arguments make_fx recorded.

    Overloads of one aten name compute the same function on different argument types, and the
    C binding `torch._C._VariableFunctions.<name>` (or `torch._C._nn.<name>`, or the tensor
    method, for in-place and view ops) dispatches to the overload the recorded arguments
    select: the same one. Python
    wrappers in `torch.functional` are never used, only C bindings.
    """
    packet = op.overloadpacket
    name = packet.__name__
    if op.namespace == "aten" and not name.startswith("_"):
        for holder in (_FUNCTIONS, _NN_FUNCTIONS, _METHODS):
            entry = getattr(holder, name, None)
            if entry is not None and type(entry).__name__ in (
                    "builtin_function_or_method", "method_descriptor"):
                return entry
    return op._op if isinstance(op, torch._ops.OpOverload) else op


def _with_defaults(op: torch._ops.OpOverload, args: tuple, kwargs: dict):
    """`args` and `kwargs` with every argument the recording left out given its schema
    default, by name.

    make_fx omits arguments equal to their default, and a C binding's default may differ
    from the schema's: `torch.binary_cross_entropy_with_logits(x, y)` does not reduce, while
    the overload's schema says `reduction=1` (mean). By name, not by position: `torch.add(x,
    1e-6, 1)` would select the binding's deprecated `add(input, alpha, other)` signature.
    """
    kwargs = dict(kwargs)
    for argument in op._schema.arguments[len(args):]:
        if argument.name not in kwargs and argument.has_default_value():
            kwargs[argument.name] = argument.default_value
    return args, kwargs


class _Emitter:
    """Writes the Python source of one graph; constants and callees go into `namespace`."""

    def __init__(self, namespace: dict, owner: GraphModule, fast_ops: bool, carried: int = 0):
        self.namespace = namespace
        self.owner = owner
        self.fast_ops = fast_ops
        self.carried = carried  # a while_loop body: how many leading placeholders the loop owns
        self.lines: list[str] = []
        self.names: dict[Node, str] = {}
        self.callees: dict[int, str] = {}  # id(callable) -> its name in `namespace`

    def constant(self, value, hint: str) -> str:
        name = f"{hint}_{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def arg(self, value) -> str:
        if isinstance(value, Node):
            return self.names[value]
        if isinstance(value, tuple):
            inner = ", ".join(self.arg(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(self.arg(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self.arg(v)}" for k, v in value.items()) + "}"
        if value is None or isinstance(value, (bool, str)):
            return repr(value)
        if isinstance(value, int):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        return self.constant(value, "const")

    def callee(self, target) -> str:
        """The name the source calls `target` by: one name per callable, the op's own name
        where that is free (`linear(...)`), so that the source reads like the model."""
        if isinstance(target, torch._ops.OpOverload):
            entry = _fast_entry(target) if self.fast_ops else target
            hint = target.overloadpacket.__name__
        else:
            entry, hint = target, getattr(target, "__name__", "fn")
        if getattr(builtins, hint, None) is entry:
            return hint
        name = self.callees.get(id(entry))
        if name is None:
            hint = "".join(c if c.isalnum() else "_" for c in hint)
            if hint in self.namespace or hasattr(builtins, hint) or not hint.isidentifier() \
                    or keyword.iskeyword(hint) or _LOCAL_NAME.match(hint):
                hint = self.constant(entry, hint)
            self.namespace[hint] = entry
            name = self.callees[id(entry)] = hint
        return name

    def call(self, node: Node, callee: str | None = None) -> str:
        node_args, node_kwargs = node.args, node.kwargs
        if self.fast_ops and isinstance(node.target, torch._ops.OpOverload):
            node_args, node_kwargs = _with_defaults(node.target, node_args, node_kwargs)
        args = [self.arg(a) for a in node_args]
        args += [f"{k}={self.arg(v)}" for k, v in node_kwargs.items()]
        inline = _INLINE_OPERATORS.get(node.target)
        if inline is not None and not node.kwargs:
            return inline.format(*args)
        return f"{callee or self.callee(node.target)}({', '.join(args)})"

    def choose_in_place(self, graph: torch.fx.Graph) -> dict[Node, str]:
        """node -> the local that holds its op or, with grad mode off, the op's in-place form.

        The choice is made once per call, at the top of the function: with grad mode on, the
        tensor written to might be one autograd saved for backward.
        """
        # A graph that changes grad mode itself (`with torch.no_grad():` in the function)
        # would need the choice made per region: it keeps the functional ops.
        if _sets_grad_mode(graph):
            candidates, self.copies_left_out = {}, set()
        else:
            candidates = _in_place_candidates(graph)
            self.copies_left_out, buffer_writes = _carried_buffer_writes(graph, self.carried)
            candidates.update(buffer_writes)
        if candidates:
            self.lines.append(f"    grad = {self.callee(torch.is_grad_enabled)}()")
        chosen, locals_ = {}, {}
        for node, in_place in candidates.items():
            local = locals_.get(node.target)
            if local is None:
                functional, inplace = self.callee(node.target), self.callee(in_place)
                local = locals_[node.target] = f"{functional}_or_in_place"
                self.lines.append(f"    {local} = {functional} if grad else {inplace}")
            chosen[node] = local
        return chosen

    def subgraph(self, node: Node) -> str:
        module = getattr(self.owner, node.target)
        return self.constant(compile_python(module, self.fast_ops, _carried_count(node)),
                             node.target)

    def emit(self, graph: torch.fx.Graph, function_name: str) -> str:
        params = []
        body = self.lines
        in_place = self.choose_in_place(graph)
        freed = _last_readers(graph)
        for node in graph.nodes:
            name = self.names[node] = f"v{len(self.names)}_{node.name}"[:40]
            if node.op == "placeholder":
                params.append(name)
            elif node.op == "get_attr":
                value = getattr(self.owner, node.target)
                if isinstance(value, GraphModule):
                    self.names[node] = self.subgraph(node)
                else:  # tensor constants are read from the module, as the GraphModule does
                    self.names[node] = self.constant(value, "attr")
            elif node.op == "call_function" and node.target is _COND:
                pred, true_fn, false_fn, operands = node.args
                operands = ", ".join(self.arg(o) for o in operands)
                target = f"{name} = " if node.users else ""
                body.append(f"    if {self.arg(pred)}:")
                body.append(f"        {target}{self.names[true_fn]}({operands})")
                body.append("    else:")
                body.append(f"        {target}{self.names[false_fn]}({operands})")
            elif node.op == "call_function" and node.target is _WHILE_LOOP:
                cond_fn, body_fn, carried, additional = node.args[:4]
                extra = "".join(f", {self.arg(a)}" for a in additional)
                # A loop over 0-d numbers runs as Python arithmetic where that is exact.
                scalar = scalar_loops.emit_scalar_while(
                    node, name, self.owner, self.arg, self.namespace, "    ")
                indent = "    "
                if scalar is not None:
                    guard, lines = scalar
                    if guard is None:
                        body.extend(lines)
                        self.free(freed.get(node, ()), body)
                        continue
                    body.append(f"    if {guard}:")
                    body.extend("    " + line for line in lines)
                    body.append("    else:")
                    indent = "        "
                # Carried values enter the loop as copies: the loop's outputs never alias its
                # inputs (torch's contract for while_loop), even when it runs zero times.
                body.append(f"{indent}{name} = _fresh({self.arg(tuple(carried))})")
                body.append(f"{indent}while {self.names[cond_fn]}(*{name}{extra}):")
                body.append(f"{indent}    {name} = {self.names[body_fn]}(*{name}{extra})")
            elif node in self.copies_left_out:  # see _carried_buffer_writes
                body.append(f"    {name} = {self.arg(node.args[0])}")
            elif node.op in ("call_function", "call_method"):
                if node.op == "call_method":
                    receiver, *rest = (self.arg(a) for a in node.args)
                    expr = f"{receiver}.{node.target}({', '.join(rest)})"
                else:
                    expr = self.call(node, in_place.get(node))
                body.append(f"    {name} = {expr}" if node.users else f"    {expr}")
            elif node.op == "output":
                body.append(f"    return {self.arg(node.args[0])}")
                continue
            else:
                raise NotImplementedError(f"graph node {node.op} {node.target}")
            self.free(freed.get(node, ()), body)
        header = f"def {function_name}({', '.join(params)}):"
        return "\n".join([header, *(body or ["    return None"])])

    def free(self, values, body: list) -> None:
        """`del` the locals read for the last time: a tensor's memory goes back to the
        allocator as soon as the graph is done with it, as in eager code, not at return."""
        names = [self.names[v] for v in values
                 if v.op in ("call_function", "call_method") and v.users]
        if names:
            body.append(f"    del {', '.join(names)}")


def _sets_grad_mode(graph: torch.fx.Graph) -> bool:
    return any(n.op == "call_function" and n.target is torch._C._set_grad_enabled
               for n in graph.nodes)


def _restoring_grad_mode(runner: Callable) -> Callable:
    """`runner`, with the caller's grad mode restored however it ends: a graph that records
    `with torch.no_grad():` sets the mode back itself only when it reaches the block's end."""
    is_enabled, set_enabled = torch.is_grad_enabled, torch._C._set_grad_enabled

    def run(*args):
        mode = is_enabled()
        try:
            return runner(*args)
        finally:
            set_enabled(mode)
    return run


def _last_readers(graph: torch.fx.Graph) -> dict[Node, list[Node]]:
    """node -> the values whose last reader (in graph order) it is."""
    last = {}
    for node in graph.nodes:
        for value in node.all_input_nodes:
            last[value] = node
    freed: dict[Node, list[Node]] = {}
    for value, reader in last.items():
        freed.setdefault(reader, []).append(value)
    return freed


def _in_place_candidates(graph: torch.fx.Graph) -> dict[Node, torch._ops.OpOverload]:
    """Pointwise ops that may write their result into their tensor input: node -> the op's
    in-place overload.

    The input must be a tensor this graph allocated, read by nothing but this op (so not an
    output either), of the result's dtype and strides, with no two elements sharing memory; the
    op's other arguments must not be tensors (so the result has the input's shape). Nothing
    else can then observe the write, except autograd, which is why the caller uses it only with
    grad off.
    """
    chosen = {}
    for node in graph.nodes:
        op = node.target
        if (node.op != "call_function" or not isinstance(op, torch._ops.OpOverload)
                or op.namespace != "aten" or torch.Tag.pointwise not in op.tags or not node.args):
            continue
        packet = getattr(torch.ops.aten, op.overloadpacket.__name__ + "_", None)
        in_place = getattr(packet, op._overloadname, None)
        source, *rest = node.args
        if (in_place is None or not isinstance(source, Node) or len(source.users) != 1
                or not _owns_memory(source)
                or not all(map(_is_scalar, pytree.tree_leaves((rest, node.kwargs))))):
            continue
        value, before = node.meta.get("val"), source.meta.get("val")
        if (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and value.dtype == before.dtype and _same_known_shape(value, before)
                and _same_strides(value, before) and not _may_overlap(before)):
            chosen[node] = in_place
    return chosen


def _carried_count(node: Node) -> int:
    """How many carried values the while_loop(s) whose body `node` (a get_attr) is pass it;
    0 where the subgraph is anything else (a cond branch, a loop test)."""
    counts = {len(user.args[2]) if user.target is _WHILE_LOOP and user.args[1] is node
              and node not in (user.args[0], *user.args[2], *user.args[3]) else 0
              for user in node.users}
    return counts.pop() if len(counts) == 1 else 0


# Ops that write rows of a buffer: a list's append (StagedList.append) and scatters.
_BUFFER_WRITES = (torch.ops.aten.index_put.default, torch.ops.aten.scatter.src,
                  torch.ops.aten.scatter.value, torch.ops.aten.index_copy.default)


def _carried_buffer_writes(graph: torch.fx.Graph, carried: int):
    """In a while_loop body the python backend runs: the copies it can leave out and the
    buffer writes that may then be done in place (node -> in-place overload).

    torch's while_loop tracing copies each carried input on entry to the body and each result
    on exit, and a list's append is a functional `index_put` (another copy): three copies of
    the buffer per iteration. The python backend's loop owns its carried tensors (it copies
    them once, before the loop, `_fresh`), so for slot i with the shape

        placeholder_i -> clone -> write(clone, ...) -> clone -> output[i]

    (either clone may be missing: `_drop_clones` removes them from a body that mutates
    nothing) where each value has that one reader (and the output holds it once, at i), the
    clones are left out and the write may go into the placeholder: by induction slot i is the
    same tensor, the loop's own copy, at every iteration, and nothing else in the body reads it, so
    nothing sees the old value. The write is in place only with grad mode off (as for
    `_in_place_candidates`); with grad on it stays functional, without the two copies.
    """
    if not carried:
        return set(), {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"][:carried]
    outputs = pytree.tree_leaves(next(n for n in graph.nodes if n.op == "output").args[0])
    left_out, writes = set(), {}
    for slot, placeholder in enumerate(placeholders):
        copy_in = _only_reader(placeholder)
        write = _only_reader(copy_in) if _is_clone(copy_in) else copy_in
        if (write is None or write.op != "call_function" or write.target not in _BUFFER_WRITES
                or write.args[0] is not (copy_in if write is not copy_in else placeholder)):
            continue
        source = write.args[0]
        copy_out = _only_reader(write)
        result = copy_out if _is_clone(copy_out) else write
        if (source in pytree.tree_leaves((write.args[1:], write.kwargs))
                or len(result.users) != 1 or next(iter(result.users)).op != "output"
                or [i for i, v in enumerate(outputs) if v is result] != [slot]):
            continue
        value, before = write.meta.get("val"), placeholder.meta.get("val")
        if not (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and value.dtype == before.dtype and _same_known_shape(value, before)
                and _same_strides(value, before) and not _may_overlap(before)):
            continue
        packet = getattr(torch.ops.aten, write.target.overloadpacket.__name__ + "_")
        left_out |= {n for n in (source, result) if _is_clone(n)}
        writes[write] = getattr(packet, write.target._overloadname)
    return left_out, writes


def _only_reader(node: Node | None) -> Node | None:
    """The one node that reads `node`, or None."""
    return next(iter(node.users)) if node is not None and len(node.users) == 1 else None


def _is_clone(node: Node | None) -> bool:
    return (node is not None and node.op == "call_function"
            and node.target is torch.ops.aten.clone.default
            and not node.kwargs.get("memory_format"))


def _is_scalar(arg) -> bool:
    """A non-tensor argument: a Python value or a graph value known to be a number."""
    if isinstance(arg, Node):
        return isinstance(arg.meta.get("val"), (int, float, bool, torch.SymInt, torch.SymFloat,
                                                torch.SymBool))
    return not isinstance(arg, torch.Tensor)


def _same_known_shape(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dim() == b.dim() and all(statically_known_true(x == y)
                                      for x, y in zip(a.shape, b.shape))


def _owns_memory(node: Node) -> bool:
    """A tensor a (non-view) op of this graph allocated, the only reference to its memory.

    Stricter than `_is_fresh`: items of cond / while_loop results may be the same tensor twice.
    """
    return isinstance(node.target, torch._ops.OpOverload) and _is_fresh(node)


def _may_overlap(value: torch.Tensor) -> bool:
    """Whether two elements of `value` might share memory (a zero stride over a size > 1)."""
    return not all(statically_known_true(stride != 0) or statically_known_true(size <= 1)
                   for size, stride in zip(value.shape, value.stride()))


def _fresh(values: tuple) -> tuple:
    return tuple(v.clone() if isinstance(v, torch.Tensor) else v for v in values)


_compiled = itertools.count()


def compile_python(graph_module: GraphModule, fast_ops: bool = True,
                   carried: int = 0) -> Callable:
    """Compile `graph_module`'s graph (and its cond / while_loop subgraphs) to Python functions.

    The result takes the graph's placeholders positionally and returns what the graph returns.
    `fast_ops=False` calls the aten overloads themselves (for comparison). `carried` > 0: the
    graph is the body of a while_loop emitted here, whose first `carried` placeholders are
    tensors the loop owns (see `_carried_buffer_writes`).
    """
    namespace: dict = {"_fresh": _fresh}
    emitter = _Emitter(namespace, graph_module, fast_ops, carried)
    name = f"graph_{next(_compiled)}"
    source = emitter.emit(graph_module.graph, name)
    filename = f"<autoconv graph {name}>"
    exec(compile(source, filename, "exec"), namespace)
    function = namespace[name]
    # The sources of this graph and the subgraphs it calls, for reading (`python_source`).
    function.__autoconv_source__ = "\n\n".join(
        [getattr(v, "__autoconv_source__", "") for v in namespace.values()
         if callable(v) and hasattr(v, "__autoconv_source__")] + [source])
    return function


def _in_place_to_functional(graph: torch.fx.Graph) -> None:
    """`r = x.add_(1)` becomes `r = x.add(1)` where that is unobservable: `x` is a fresh tensor
    of this graph (not an input, not a view), nothing read `x` before (a view taken earlier
    would see the write) and the functional op gives the dtype, shape and strides the in-place
    one gave (`x_float.add_(y_double)` stays float; `x_float.add(y_double)` is double). Later
    reads of `x` read `r`."""
    order = {node: i for i, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        op = node.target
        if node.op != "call_function" or not isinstance(op, torch._ops.OpOverload):
            continue
        name = op.overloadpacket.__name__
        if not name.endswith("_") or name.startswith("_") or not node.args:
            continue
        functional = getattr(getattr(torch.ops.aten, name[:-1], None), op._overloadname, None)
        target = node.args[0]
        if (functional is None or not isinstance(target, Node) or not _is_fresh(target)
                or any(order[user] < order[node] for user in target.users)
                or not _same_result(functional, node)):
            continue
        node.target = functional
        target.replace_all_uses_with(node, delete_user_cb=lambda user: user is not node)


def _same_result(op, node: Node) -> bool:
    """Whether `op` on `node`'s arguments gives a tensor of the dtype, shape and strides that
    `node` recorded, and has a derivative where it has floating inputs (`aten.copy`, the
    functional `copy_`, has none). Computed on fake or meta tensors; False where that cannot
    be known."""
    want = node.meta.get("val")
    if not isinstance(want, torch.Tensor):
        return False
    values = [n.meta.get("val") for n in node.all_input_nodes]
    if any(v is None for v in values):
        return False
    fake_mode = getattr(want, "fake_mode", None)

    def to_value(n):
        v = n.meta["val"]
        if not isinstance(v, torch.Tensor):
            return v
        if fake_mode is None:  # a graph traced on real tensors: predict on meta tensors
            v = torch.empty_strided(v.shape, v.stride(), dtype=v.dtype, device="meta")
        return v.detach().requires_grad_(v.is_floating_point())

    context = contextlib.nullcontext() if fake_mode is None else fake_mode
    try:
        with context, warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            args, kwargs = pytree.tree_map_only(Node, to_value, (node.args, node.kwargs))
            got = op(*args, **kwargs)
    except Exception:
        return False
    return (isinstance(got, torch.Tensor) and got.dtype == want.dtype
            and _same_known_shape(got, want) and _same_strides(got, want)
            and type(got.grad_fn).__name__ != "NotImplemented")


def _same_strides(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dim() == b.dim() and all(statically_known_true(x == y)
                                      for x, y in zip(a.stride(), b.stride()))


# Ops whose schema declares no alias, but whose result is (or may be) a view of their input.
_UNANNOTATED_ALIASES = (torch.ops.aten.lift_fresh, torch.ops.aten._unsafe_view,
                        torch.ops.aten.unsafe_split, torch.ops.aten.unsafe_split_with_sizes,
                        torch.ops.aten.unsafe_chunk)


def _is_fresh(node: Node) -> bool:
    """A tensor this graph allocated itself: not an input, constant or view of another."""
    if node.op != "call_function":
        return False
    op = node.target
    if isinstance(op, torch._ops.OpOverload):
        return not op._schema.is_mutable and not any(
            a.alias_info is not None for a in op._schema.returns) \
            and op.overloadpacket not in _UNANNOTATED_ALIASES
    return op is operator.getitem and isinstance(node.args[0], Node) and \
        node.args[0].target in (_COND, _WHILE_LOOP)


def _is_view(node: Node) -> bool:
    """`node`'s result may share memory with its first tensor argument."""
    op = node.target
    if node.op != "call_function":
        return False
    if isinstance(op, torch._ops.OpOverload):
        return any(a.alias_info is not None for a in op._schema.returns) \
            or op.overloadpacket in _UNANNOTATED_ALIASES
    return op is operator.getitem and isinstance(node.args[0], Node) and \
        node.args[0].target not in (_COND, _WHILE_LOOP)  # an item of split / unbind


def _aliases(node: Node) -> set[Node]:
    """`node` and the views of it the graph takes (transitively)."""
    seen, todo = {node}, [node]
    while todo:
        for user in todo.pop().users:
            if user not in seen and _is_view(user):
                seen.add(user)
                todo.append(user)
    return seen


def _drop_clones(graph_module: GraphModule) -> None:
    """Remove clones the Python backend does not need in a graph that mutates nothing.

    Staging clones a body's inputs and outputs because torch's cond / while_loop refuse
    aliasing between them. Run as Python, with nothing written in place, a copy `c = clone(s)`
    can only be observed two ways, and stays where either is possible:

    * its layout: `clone` makes a tensor dense (or contiguous, when `reshape` records
      `clone(memory_format=contiguous)` before a `view`), so it goes only where the copy has
      the strides `s` has;
    * its identity: where `c` (or a view of it) is an output, the caller may write to it, so it
      goes only where `s` is memory this graph allocated that nothing else reads (an output
      is then never one of the inputs, and no two outputs share memory).

    A graph that writes in place (the in-place ops of a decomposed GRU cell on its own
    temporaries) keeps the clones of the memory it writes (`_written_memory`), and drops the
    others.
    """
    graph = graph_module.graph
    written = _written_memory(graph)
    if written is None:
        return
    outputs = set(graph.output_node().all_input_nodes)
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.ops.aten.clone.default:
            continue
        source = node.args[0]
        # A write into the copy (or a view of it) or into the memory it was copied from would
        # tell them apart.
        if node in written or _memory_of(source) in written:
            continue
        value, before = node.meta.get("val"), getattr(source, "meta", {}).get("val")
        if not (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and _same_strides(value, before)):
            continue
        if outputs & _aliases(node) and not (_is_fresh(source) and len(source.users) == 1) \
                and not _output_may_be_source(node, source, graph):
            continue
        node.replace_all_uses_with(source)
        graph.erase_node(node)
    for node in list(graph.nodes):  # reshapes to the shape a tensor already has
        if (node.op == "call_function" and node.target is torch.ops.aten.view.default
                and node not in outputs and _same_shape(node, node.args[0])):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)


def _output_may_be_source(node, source, graph: torch.fx.Graph) -> bool:
    """Whether the output `node`, a clone of `source`, may be `source` itself: `source` is (a
    view of) memory this graph allocated (`_written_memory` has ruled out writes to it) that
    no other output shares, and the graph returns `node` once and no view of it. Other readers
    of `source` in the graph are done with it when the graph returns. (A loop body returning
    its new hidden state `squeeze(gru_cell(...))` keeps it without a copy.)"""
    outputs = pytree.tree_leaves(graph.output_node().args[0])
    root = _memory_of(source)
    if (not isinstance(root, Node) or not _owns_memory(root)
            or sum(o is node for o in outputs) != 1 or _aliases(node) & set(outputs) != {node}):
        return False
    return all(_memory_of(o) is not root for o in outputs if o is not node)


def _memory_of(node):
    """The node whose result owns the memory `node`'s result is (a view of): `node` itself
    where it is not a view."""
    while isinstance(node, Node) and _is_view(node) and node.args:
        node = node.args[0]
    return node


def _written_memory(graph: torch.fx.Graph) -> set[Node] | None:
    """The nodes (`_memory_of`) whose memory an op of `graph` writes in place; None where that
    cannot be told (a mutable op that is not an aten overload with a schema)."""
    written = set()
    for node in graph.nodes:
        op = node.target
        if node.op != "call_function" or not isinstance(op, torch._ops.OpOverload) \
                or not op._schema.is_mutable:
            continue
        for i, argument in enumerate(op._schema.arguments):
            if argument.alias_info is None or not argument.alias_info.is_write:
                continue
            value = node.args[i] if i < len(node.args) and not argument.kwarg_only \
                else node.kwargs.get(argument.name)
            if value is None:
                continue
            if not isinstance(value, Node):
                return None  # a list of tensors written (out= variants): not followed here
            written.add(_memory_of(value))
    return written


def _same_shape(node: Node, source) -> bool:
    value, before = node.meta.get("val"), getattr(source, "meta", {}).get("val")
    return (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
            and value.shape == before.shape)


def _fuse_linear(graph: torch.fx.Graph) -> None:
    """`addmm(b, x, t(w))`, how make_fx records `nn.Linear`, becomes one `linear(x, w, b)`."""
    aten = torch.ops.aten
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not aten.addmm.default or node.kwargs:
            continue
        bias, inputs, weight_t = node.args
        if (isinstance(weight_t, Node) and weight_t.target is aten.t.default
                and len(weight_t.users) == 1):
            with graph.inserting_before(node):
                linear = graph.call_function(aten.linear.default,
                                             (inputs, weight_t.args[0], bias))
            linear.meta = dict(node.meta)
            node.replace_all_uses_with(linear)
            graph.erase_node(node)
            graph.erase_node(weight_t)
            _unbatch_linear(graph, linear)


def _unbatch_linear(graph: torch.fx.Graph, linear: Node) -> None:
    """`view(linear(view(x, [1, K]), w, b), [N])` for a 1-d `x` (how make_fx records
    `linear` of a vector, which `aten.linear` itself computes that way) becomes
    `linear(x, w, b)`: one call instead of three."""
    aten = torch.ops.aten
    inputs = linear.args[0]
    if not (isinstance(inputs, Node) and inputs.target is aten.view.default
            and len(inputs.users) == 1 and len(linear.users) == 1):
        return
    after = next(iter(linear.users))
    vector = inputs.args[0]
    value = getattr(vector, "meta", {}).get("val")
    if not (after.target is aten.view.default and isinstance(value, torch.Tensor)
            and value.dim() == 1 and list(inputs.args[1]) == [1, value.shape[0]]
            and list(after.args[1]) == [linear.meta["val"].shape[-1]]):
        return
    linear.args = (vector, *linear.args[1:])
    linear.meta = dict(after.meta)
    after.replace_all_uses_with(linear)
    graph.erase_node(after)
    graph.erase_node(inputs)


def _lower_for_python(graph_module: GraphModule) -> GraphModule:
    # The passes rewrite graphs, never tensors: constants are shared with the captured module,
    # not copied (copying a constant that is a non-leaf tensor requiring grad would fail).
    shared = {id(value): value for module in graph_module.modules()
              for value in itertools.chain(vars(module).values(), module._parameters.values(),
                                           module._buffers.values())
              if isinstance(value, torch.Tensor)}
    lowered = copy.deepcopy(graph_module, memo=shared)
    for module in lowered.modules():
        if isinstance(module, GraphModule):
            _fuse_linear(module.graph)
            rnn_cells.fuse_gru_cells(module.graph)
            _in_place_to_functional(module.graph)
            _drop_clones(module)
            module.graph.eliminate_dead_code(is_impure_node=graph_passes.has_effects)
            module.recompile()
    return lowered


def _build_python(graph_module: GraphModule, example_inputs) -> Callable:
    return compile_python(_lower_for_python(graph_module))


def _build_fx(graph_module: GraphModule, example_inputs) -> Callable:
    return graph_module


def _build_inductor(graph_module: GraphModule, example_inputs) -> Callable:
    return torch.compile(graph_module, backend="inductor", fullgraph=True, dynamic=False)


def _build_cudagraphs(graph_module: GraphModule, example_inputs) -> Callable:
    # torch's "cudagraphs" backend (not inductor's reduce-overhead mode) is the one that
    # captures cond as CUDA-graph conditional nodes, so a staged branch needs no host sync.
    return torch.compile(graph_module, backend="cudagraphs", fullgraph=True, dynamic=False)


BACKENDS: dict[str, Callable] = {
    "python": _build_python,
    "fx": _build_fx,
    "inductor": _build_inductor,
    "cudagraphs": _build_cudagraphs,
}


def build(backend: str, graph_module: GraphModule, example_inputs) -> Callable:
    """The callable that runs `graph_module` with `backend` (one of `BACKENDS`)."""
    try:
        builder = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}") \
            from None
    runner = builder(graph_module, example_inputs)
    if any(_sets_grad_mode(m.graph) for m in graph_module.modules()
           if isinstance(m, GraphModule)):
        runner = _restoring_grad_mode(runner)
    return runner
