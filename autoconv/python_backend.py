"""The python backend: a captured torch.fx graph compiled to straight-line Python.

The graph becomes one Python function. Each aten op is bound to its fastest Python entry
point (the C binding that `torch.addmm` uses rather than the `torch.ops.aten.addmm.default`
overload object), and staged control flow runs as Python, inline in that function: a `cond`
node becomes an `if` on its predicate over the branches' lines, a `while_loop` node a `while`
over its test's and body's lines (no call, no tuple of the state, no grad-mode check per
trip). Outside a tracer that is what the original Python did, at the cost of one `bool()` of a
0-d tensor, instead of the ~40 µs a `torch.cond` call costs in eager mode. Autograd records through it as through eager code. Each temporary is deleted after
its last read, and with grad mode off a pointwise op (an activation after a linear layer) writes
into the fresh tensor it reads when nothing else reads that tensor, and a matrix product (a
layer's `linear`) into a temporary of its shape the call is done with; in a `while` body, a list's
append writes the loop's own buffer, and a pointwise op its own carried value (`i += 1`), in
place when nothing in the body reads the old value after it (`_carried_writes`). A loop test is
read without the reshape to `[]` torch's while_loop wants. Keywords equal to the defaults the C
binding shares are left out (each costs its argument parser about 0.3 µs).
Building it takes milliseconds. The graph is first lowered (`lower`) by rewrites from
`graph_passes.py`.
"""

from __future__ import annotations

import builtins
import copy
import functools
import itertools
import keyword
import math
import operator
import re
from typing import Callable

import torch
from torch.fx import GraphModule, Node
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.utils import _pytree as pytree

from . import graph_passes, grown_lists, rnn_cells, scalar_loops
from .graph_passes import is_fresh, same_known_shape, same_strides

__all__ = ["build", "compile_python", "lower"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop
_FUNCTIONS = torch._C._VariableFunctions
_NN_FUNCTIONS = torch._C._nn
_METHODS = torch._C.TensorBase
# names of the generated locals
_LOCAL_NAME = re.compile(r"(v|inv)\d+_|grad\d*$|out_allowed\d*$|.*_or_in_place\d*$")
_INLINE_OPERATORS = {
    operator.getitem: "{0}[{1}]",
    operator.add: "({0} + {1})",
    operator.sub: "({0} - {1})",
    operator.mul: "({0} * {1})",
    operator.floordiv: "({0} // {1})",
    operator.truediv: "({0} / {1})",
    operator.mod: "({0} % {1})",
    operator.neg: "(-{0})",
    # (Python ints' comparisons: `counters_as_ints`)
    operator.lt: "({0} < {1})",
    operator.le: "({0} <= {1})",
    operator.gt: "({0} > {1})",
    operator.ge: "({0} >= {1})",
    operator.eq: "({0} == {1})",
    operator.ne: "({0} != {1})",
}


# A loop test's `and` / `or` / `not` read only for its truth (`_truths_as_bools`): the truth
# of each operand, already computed, taken in Python.
def _truth_and(a, b) -> bool:
    return bool(a) and bool(b)


def _truth_or(a, b) -> bool:
    return bool(a) or bool(b)


def _truth_not(a) -> bool:
    return not a


_INLINE_OPERATORS.update({_truth_and: "(bool({0}) and bool({1}))",
                          _truth_or: "(bool({0}) or bool({1}))", _truth_not: "(not {0})"})


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
    # (an out= overload names its outputs by the schema, `max.dim_max(..., max=, max_values=)`,
    # where the binding takes one `out=` tuple: `torch.max(v, 0, out=(m, j))` in a staged
    # body failed at the replay)
    if op.namespace == "aten" and not name.startswith("_") and not any(
            argument.is_out for argument in op._schema.arguments):
        for holder in (_FUNCTIONS, _NN_FUNCTIONS, _METHODS):
            entry = getattr(holder, name, None)
            if entry is not None and type(entry).__name__ in (
                    "builtin_function_or_method", "method_descriptor"):
                return entry
    return op._op if isinstance(op, torch._ops.OpOverload) else op


def _binding_refuses(node: Node) -> bool:
    """Whether `node`'s op has a list-of-optional-tensors argument (`Tensor?[] indices`)
    that the recording gave a None: `image[:, y, x] = v` is `index_put_(image, [None, y,
    x], v)`. The schema takes it, but the C bindings `torch.index_put` and
    `Tensor.index_put_` parse that argument as a list of tensors and raise "expected Tensor
    as element 0 ... but got NoneType"; such a node calls the overload itself."""
    op = node.target
    if not isinstance(op, torch._ops.OpOverload):
        return False
    for i, argument in enumerate(op._schema.arguments):
        if str(argument.type) != "List[Optional[Tensor]]":
            continue
        value = node.args[i] if i < len(node.args) else node.kwargs.get(argument.name)
        if isinstance(value, (list, tuple)) and any(v is None for v in value):
            return True
    return False


def _with_defaults(op: torch._ops.OpOverload, args: tuple, kwargs: dict):
    """`args` and `kwargs` with the arguments the recording left out given, by name, their
    schema default where the C binding's default might differ from it.

    make_fx omits arguments equal to their default, and a C binding's default may differ
    from the schema's: `torch.binary_cross_entropy_with_logits(x, y)` does not reduce, while
    the overload's schema says `reduction=1` (mean). By name, not by position: `torch.add(x,
    1e-6, 1)` would select the binding's deprecated `add(input, alpha, other)` signature.
    Defaults the binding is known to share (`_binding_keeps_default`) are left out: each
    keyword costs the binding's argument parser about 0.3 µs per call.
    """
    kwargs = dict(kwargs)
    for argument in op._schema.arguments[len(args):]:
        if (argument.name not in kwargs and argument.has_default_value()
                and not _binding_keeps_default(op, argument.name)):
            value = argument.default_value
            if type(value) is int and "ScalarType" in str(argument.real_type):
                # A schema reads `ScalarType dtype=long` as c10's code, 4; the binding takes
                # the dtype (`randint`, `randperm`, `tril_indices` without a dtype).
                value = _scalar_types()[value]
            kwargs[argument.name] = value
    return args, kwargs


@functools.cache
def _scalar_types() -> dict:
    """c10's ScalarType codes -> torch dtypes, read from torch's own schema parser (5 ms: made
    when a graph first needs it)."""
    table = {}
    for name, dtype in vars(torch).items():
        if isinstance(dtype, torch.dtype):
            try:
                schema = torch._C.parse_schema(f"f(ScalarType a={name}) -> ()")
            except RuntimeError:
                continue  # (names the schema language does not spell)
            table[schema.arguments[0].default_value] = dtype
    return table



_ENUM_TYPES = re.compile(r"ScalarType|MemoryFormat|Layout|Device")


@functools.lru_cache(maxsize=None)
def _binding_keeps_default(op: torch._ops.OpOverload, name: str) -> bool:
    """Whether leaving argument `name` out of a call of `op`'s C binding gives it `op`'s
    schema default.

    The binding's argument parser reads each default from the schema's text: a literal (None,
    a bool, a number) it reads as the schema does, an enum name it does not (`int
    reduction=Mean` reads as 0; dtypes, memory formats and layouts other than None are names
    too). And it
    picks among the overloads of `op`'s name by the arguments given: where every overload has
    `name` with the same literal default, leaving it out selects the overload and the value
    the recording had (TorchScript's `aten::add.int` and the like are not the binding's).
    """
    defaults = set()
    for overload in op.overloadpacket.overloads():
        schema = getattr(op.overloadpacket, overload)._schema
        if not any("Tensor" in str(a.type) for a in (*schema.arguments, *schema.returns)):
            continue  # TorchScript's builtins on numbers, strings and lists: not bound
        argument = next((a for a in schema.arguments if a.name == name), None)
        if argument is None or not argument.has_default_value():
            return False
        value = argument.default_value
        if value is not None and (type(value) not in (bool, int, float) or name == "reduction"
                                  or _ENUM_TYPES.search(str(argument.real_type))):
            return False
        defaults.add((type(value), value))
    return len(defaults) == 1


# NOTE [Python numbers as 0-d operands]: `le(row, 0.5)` cost 2.9 µs a call where `le(row, t)`,
# `t` a 0-d float32 tensor holding 0.5, costs 1.1 (CPU, 32 elements; speed34): for a number
# the C binding makes a "wrapped number" tensor (int64, float64 or bool) on every call, and
# TensorIterator casts it to the op's common dtype (`.to()`, an allocation) before the kernel
# runs. The `.Scalar` overloads of these ops are their `.Tensor` overloads at
# `wrapped_scalar_tensor(other)`, so the backend makes that cast once, when it is built: the
# operand is `scalar_tensor(other, wrapped dtype).to(common dtype)`, the very tensor the kernel
# read. What a wrapped number changes besides is type promotion (it ranks below a 0-d tensor)
# and, for reduced-precision and complex dtypes, kernels that read the number before the cast
# (`original_scalar_value`, in the op-math type): hence only where the common dtype is the
# tensor operand's own and is not complex, and, for float16 and bfloat16, only a number the
# dtype holds exactly (1, 0.5, 2.0 ** -3: the op-math value read before the cast is then the
# one read after it; 0.1 keeps the number). A float16 loop's `i += 1` paid the wrapping on
# every trip: 1.10x eager's time per trip of `while i < n` (speed37). CPU only: a CUDA kernel
# may take a CPU scalar another way than a tensor of its device (the divisor's reciprocal),
# and this one stays a CPU tensor as the wrapped number was, which is not measured there.
_SCALAR_OPERAND_OPS = frozenset(
    getattr(torch.ops.aten, name) for name in (
        "add", "sub", "mul", "div", "eq", "ne", "lt", "le", "gt", "ge",
        "bitwise_and", "bitwise_or", "bitwise_xor"))
_SCALAR_OPERAND_DTYPES = frozenset((
    torch.float32, torch.float64, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.uint8, torch.bool))
_REDUCED_FLOAT_DTYPES = frozenset((torch.float16, torch.bfloat16))  # (exact numbers only)


def _scalar_operand(node: Node) -> torch.Tensor | None:
    """For `op(tensor, number)` (NOTE [Python numbers as 0-d operands]): the 0-d tensor that
    the op's kernel reads for the number; None where it is not known to be the same."""
    op = node.target
    if (op.overloadpacket not in _SCALAR_OPERAND_OPS or len(node.args) < 2
            or type(node.args[1]) not in (int, float, bool)
            or op._overloadname not in ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode")):
        return None
    tensor, number = node.args[:2]
    if type(number) is bool and op.overloadpacket is torch.ops.aten.sub:
        # (torch refuses `x - True` by the number's kind, which a cast 0-d tensor hides:
        # tester34b s04)
        return None
    val = tensor.meta.get("val") if isinstance(tensor, Node) else None
    if not (isinstance(val, torch.Tensor) and val.device.type == "cpu"
            and (val.dtype in _SCALAR_OPERAND_DTYPES or val.dtype in _REDUCED_FLOAT_DTYPES)
            # (true division promotes integers to a float type the cast did not aim at)
            and (op.overloadpacket is not torch.ops.aten.div or val.dtype.is_floating_point)
            and torch.result_type(torch.empty(0, dtype=val.dtype), number) == val.dtype):
        return None
    wrapped = torch.bool if type(number) is bool else \
        torch.int64 if type(number) is int else torch.float64
    try:
        operand = torch.scalar_tensor(number, dtype=wrapped).to(val.dtype)
    except RuntimeError:  # (an int outside int64's range: left to the binding's own error)
        return None
    if val.dtype in _REDUCED_FLOAT_DTYPES and not operand.item() == number:
        return None  # rounded (or nan): the kernel would read the number unrounded
    return operand


def _as_subscript(node: Node) -> str | Node | None:
    """What `x[...]` holds (source text, or the index's node) to compute what `node`
    computes, where the subscript's C path is quicker than the binding's argument parser:
    `select(x, 0, i)` at a literal int is `x[i]` (`applySelect`: 0.75 against 1.0 µs a
    call), `unsqueeze(x, 0)` is `x[None]` (0.6 against 0.8 µs): the same view, sizes,
    strides and offset, with the same autograd; `index(x, [i])` at one integer or bool index
    of one or more dimensions is `x[i]` (the same `aten::index`, 2.4 against 3.4 µs: `index`
    has no binding but the overload's); a 0-d index, which a subscript takes as a `select`
    (a view), keeps the op."""
    if not (len(node.args) >= 2 and not node.kwargs and isinstance(node.args[0], Node)
            and isinstance(node.args[0].meta.get("val"), torch.Tensor)):
        return None
    if (node.target is torch.ops.aten.select.int and len(node.args) == 3
            and type(node.args[1]) is int and node.args[1] == 0 and type(node.args[2]) is int):
        return repr(node.args[2])
    if (node.target is torch.ops.aten.unsqueeze.default and len(node.args) == 2
            and type(node.args[1]) is int and node.args[1] == 0):
        return "None"
    if node.target is torch.ops.aten.index.Tensor and len(node.args) == 2 \
            and isinstance(node.args[1], (list, tuple)) and len(node.args[1]) == 1:
        (index,) = node.args[1]
        val = index.meta.get("val") if isinstance(index, Node) else None
        if (isinstance(val, torch.Tensor) and val.dim() >= 1
                and val.dtype in (torch.int64, torch.int32, torch.bool)):
            return index
    return None


class _Emitter:
    """Writes the Python source of one graph; constants and callees go into `namespace`.

    The cond branches and while_loop tests and bodies of the graph are written inline, into
    the same function (`inline`): a staged `if` is a Python `if` whose branches are the
    branch graphs' lines, a staged `while` a `while True:` whose test and body are lines of
    the loop, its state locals. A trip then costs no Python call, no tuple of the state and
    no grad-mode check (made once before the loop).
    """

    def __init__(self, namespace: dict, owner: GraphModule, fast_ops: bool, carried: int = 0,
                 *, parent: _Emitter | None = None, indent: str = "    "):
        self.namespace = namespace
        self.owner = owner
        self.fast_ops = fast_ops
        self.carried = carried  # a while_loop body: how many leading placeholders the loop owns
        self.indent = indent
        self.names: dict[Node, str] = {}
        self.bound: set[Node] = set()  # items of a cond's result its branches set (`cond`)
        # node -> the dead temporary its result is written into, and those temporaries
        # (NOTE [results written into dead temporaries]; set by `emit`)
        self.recycle: dict[Node, Node] = {}
        self.reused: set[Node] = set()
        # a loop body's row write kept until the loop ends -> the locals of its run
        # (NOTE [row writes kept until the loop ends]; set by `while_loop`)
        self.row_runs: dict[Node, tuple] = {}
        # a loop body's placeholder -> the local holding its `item()`, read by the loop's test
        # on this trip (NOTE [a trip's number read by its test and its body]; set by `inline`)
        self.trip_numbers: dict[Node, str] = {}
        if parent is None:
            self.lines: list[str] = []
            self.callees: dict[int, str] = {}  # id(callable) -> its name in `namespace`
            self.counter = itertools.count()  # numbers the function's locals
            self.scalars: dict = {}  # (dtype, repr) -> a 0-d operand's name (`_scalar_operand`)
            # the in-place choices of inlined branches, made once at the function's start
            # (`emit`; None where the function changes grad mode), and their locals
            self.branch_choices: list[str] | None = None
            self.branch_locals: dict = {}
        else:  # an inlined subgraph: the same function's lines, callees and local names
            self.lines, self.callees, self.counter = parent.lines, parent.callees, parent.counter
            self.scalars = parent.scalars
            self.branch_choices, self.branch_locals = parent.branch_choices, parent.branch_locals

    def local(self, hint: str) -> str:
        return f"v{next(self.counter)}_{hint}"[:40]

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

    def callee(self, target, overload: bool = False) -> str:
        """The name the source calls `target` by: one name per callable, the op's own name
        where that is free (`linear(...)`), so that the source reads like the model.
        `overload`: an op called as its overload, never its C binding (`_binding_refuses`)."""
        if isinstance(target, torch._ops.OpOverload):
            entry = ((target._op if overload else _fast_entry(target)) if self.fast_ops
                     else target)
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
            subscript = _as_subscript(node) if callee is None else None
            if subscript is not None:
                inside = subscript if isinstance(subscript, str) else self.arg(subscript)
                return f"{self.arg(node_args[0])}[{inside}]"
        args = [self.arg(a) for a in node_args]
        if self.fast_ops and isinstance(node.target, torch._ops.OpOverload):
            operand = _scalar_operand(node)
            if operand is not None:
                key = (operand.dtype, repr(node_args[1]))
                if key not in self.scalars:
                    self.scalars[key] = self.constant(operand, "scalar")
                args[1] = self.scalars[key]
        args += [f"{k}={self.arg(v)}" for k, v in node_kwargs.items()]
        if node.target is _int64_add and type(node.args[1]) is int and not node.kwargs:
            return _int64_add_source(args[0], node.args[1], self.callee(_int64_add))
        inline = _INLINE_OPERATORS.get(node.target)
        if inline is not None and not node.kwargs:
            return inline.format(*args)
        return f"{callee or self.callee(node.target, _binding_refuses(node))}({', '.join(args)})"

    def choose_in_place(self, graph: torch.fx.Graph, lines: list[str]) -> dict[Node, str]:
        """node -> the local that holds its op or, with grad mode off, the op's in-place form.

        The choice is made by `lines` (this graph's first, or, for a loop's test and body,
        lines before the loop: once per loop, not per trip): with grad mode on, the tensor
        written to might be one autograd saved for backward.
        """
        # A graph that changes grad mode itself (`with torch.no_grad():` in the function)
        # would need the choice made per region: it keeps the functional ops.
        if any(n.op == "call_function" and n.target is torch._C._set_grad_enabled
               for n in graph.nodes):
            candidates, self.copies_left_out = {}, set()
        else:
            candidates = _in_place_candidates(graph)
            self.copies_left_out, buffer_writes = _carried_writes(graph, self.carried)
            candidates.update(buffer_writes)
        chosen = {}
        # (where a grad-mode local is read: `grad_now`)
        self.choice_lines, self.grad_local, self.out_local = lines, None, None
        if not candidates:
            return chosen
        indent = self.indent if lines is self.lines else ""
        if lines is self.branch_choices:  # one grad local and one local per op, shared
            locals_ = self.branch_locals
            grad = locals_.get("grad")
            if grad is None:
                number = next(self.counter)
                grad = locals_["grad"] = f"grad{number}" if number else "grad"
                lines.append(f"{grad} = {self.callee(torch.is_grad_enabled)}()")
            number = grad[4:]
        else:
            number = next(self.counter)
            grad = f"grad{number}" if number else "grad"
            lines.append(f"{indent}{grad} = {self.callee(torch.is_grad_enabled)}()")
            locals_ = {}
        self.grad_local = grad
        for node, in_place in candidates.items():
            overload = _binding_refuses(node)
            local = locals_.get((node.target, overload))
            if local is None:
                functional = self.callee(node.target, overload)
                inplace = self.callee(in_place, overload)
                local = locals_[node.target, overload] = \
                    f"{functional}_or_in_place{number or ''}"
                lines.append(f"{indent}{local} = {functional} if {grad} else {inplace}")
            chosen[node] = local
        return chosen

    def grad_now(self) -> str:
        """A local holding `is_grad_enabled()`, set where this graph's in-place choices are
        made (`choose_in_place`): once before a loop or where the function starts, unless
        grad mode may change in between."""
        if self.grad_local is None:
            lines = self.choice_lines
            indent = self.indent if lines is self.lines else ""
            self.grad_local = f"grad{next(self.counter)}"
            lines.append(f"{indent}{self.grad_local} = {self.callee(torch.is_grad_enabled)}()")
        return self.grad_local

    def out_allowed(self) -> str:
        """A local holding whether an `out=` form may run (NOTE [results written into dead
        temporaries]): grad mode off and no forward-AD dual level, read once where the
        in-place choices are made, as `grad_now` is (a layer of the seed model read the dual
        level's attribute of a global module on every call: 100 times a call)."""
        if self.out_local is None:
            lines = self.choice_lines
            indent = self.indent if lines is self.lines else ""
            grad = self.grad_now()
            dual = self.callee(torch.autograd.forward_ad)
            self.out_local = f"out_allowed{next(self.counter)}"
            lines.append(f"{indent}{self.out_local} = not ({grad} or "
                         f"{dual}._current_level >= 0)")
        return self.out_local

    def embedding_row(self, node: Node) -> str:
        """`_embedding_row(weight, index)` written out: the row's `narrow_copy` at the
        index's `item()` where the index is in range and autograd need not see the
        weight, else the call (embedding's own error or gradient). A trip of a decoder paid
        the call's frame, `weight.shape[0]` and a grad-mode check (speed35: 13 µs of
        gru_greedy's 17 trips)."""
        weight, index = (self.arg(a) for a in node.args[:2])
        rows = node.args[0].meta["val"].shape[0] if isinstance(node.args[0], Node) else None
        rows = rows if type(rows) is int else f"{weight}.shape[0]"
        number = self.trip_numbers.get(node.args[1])
        if number is not None and _read_unchanged(node.args[1], node):
            return (f"{self.callee(torch.narrow_copy)}({weight}, 0, {number}, 1) "
                    f"if 0 <= {number} < {rows} and not ({weight}.requires_grad "
                    f"and {self.grad_now()}) else {self.call(node)}")
        at = self.local("row")
        return (f"{self.callee(torch.narrow_copy)}({weight}, 0, {at}, 1) "
                f"if 0 <= ({at} := {index}.item()) < {rows} and not ({weight}.requires_grad "
                f"and {self.grad_now()}) else {self.call(node)}")

    def subgraph(self, node: Node) -> str:
        module = getattr(self.owner, node.target)
        return self.constant(compile_python(module, self.fast_ops, _carried_count(node)),
                             node.target)

    def emit(self, graph: torch.fx.Graph, function_name: str, reads=(),
             missing: Callable | None = None) -> str:
        """The source of a function `function_name` that runs `graph`; `reads`: (dict, key)
        of each of its first placeholders, read by the function itself where it starts
        (NOTE [parameters read by the graph's function]), `missing()` called where one is
        gone."""
        # A staged `if`'s branches choose their in-place ops where the function starts, with
        # the function's own, not each time one runs (nms_mask: 32 branches, each asking for
        # grad mode), where grad mode is the same throughout the function.
        if not _changes_grad_mode(self.owner):
            self.branch_choices = []
        self.in_place = self.choose_in_place(
            graph, self.lines if self.branch_choices is None else self.branch_choices)
        if self.fast_ops and not _changes_grad_mode(self.owner):
            self.recycle = _recycling_plan(graph, self.in_place)
            self.reused = set(self.recycle.values())
        params = [self.names.setdefault(n, self.local(n.name))
                  for n in graph.nodes if n.op == "placeholder"]
        result = self.body(graph)
        if result is not _NO_OUTPUT:
            self.lines.append(f"{self.indent}return {self.arg(result)}")
        if self.branch_choices:
            self.lines[:0] = [self.indent + line for line in self.branch_choices]
        if reads:
            self.lines[:0] = self.state_reads(params[:len(reads)], reads, missing)
            params = params[len(reads):]
        header = f"def {function_name}({', '.join(params)}):"
        return "\n".join([header, *(self.lines or ["    return None"])])

    def state_reads(self, names: list[str], reads, missing) -> list[str]:
        """The lines that bind `names` to the items `reads` (dict, key) names, in one `try`
        whose KeyError calls `missing` (NOTE [parameters read by the graph's function])."""
        tables: dict[int, str] = {}
        lines = [f"{self.indent}try:"]
        for name, (table, key) in zip(names, reads):
            held = tables.get(id(table))
            if held is None:
                held = tables[id(table)] = self.constant(table, "_state")
            lines.append(f"{self.indent}    {name} = {held}[{key!r}]")
        lines += [f"{self.indent}except KeyError:",
                  f"{self.indent}    {self.constant(missing, '_state_missing')}()",
                  f"{self.indent}    raise"]
        return lines

    def inline(self, module: GraphModule, inputs: list[str], indent: str, carried: int = 0,
               prologue: list[str] | None = None, left_out=frozenset(),
               row_runs=None, named=None, trip_numbers=None) -> tuple[_Emitter, object]:
        """Write the lines of subgraph `module` at `indent`, its placeholders bound to the
        expressions `inputs`; its in-place choice into `prologue` (unindented) where given;
        the clones `left_out` as their sources; `row_runs`: its row writes kept until the
        loop ends (`Emitter.row_runs`); `named`: its nodes already computed, to the locals
        holding them (never deleted in it); `trip_numbers`: placeholder index -> the local
        holding its `item()` on this trip (NOTE [a trip's number read by its test and its
        body]). Returns the subgraph's emitter and its output value (name it with the
        emitter's `arg`)."""
        child = _Emitter(self.namespace, module, self.fast_ops, carried, parent=self,
                         indent=indent)
        child.row_runs = row_runs or {}
        if trip_numbers:
            placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
            child.trip_numbers = {placeholders[i]: local for i, local in trip_numbers.items()}
        child.in_place = child.choose_in_place(
            module.graph, child.lines if prologue is None else prologue)
        if left_out:
            child.copies_left_out = set(child.copies_left_out) | set(left_out)
        placeholders = [n for n in module.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(inputs):
            raise NotImplementedError(f"subgraph with {len(placeholders)} inputs called with "
                                      f"{len(inputs)}")
        child.names.update(zip(placeholders, inputs))
        if named:
            child.names.update(named)
            child.bound.update(named)
        return child, child.body(module.graph)

    def release(self, output) -> None:
        """`del` this (inlined) graph's locals that its output held, once it was read."""
        self.free(dict.fromkeys(v for v in pytree.tree_leaves(output) if isinstance(v, Node)),
                  self.lines)

    def body(self, graph: torch.fx.Graph):
        """Write the lines of `graph`'s nodes but its placeholders (already named); returns
        the output node's value (`_NO_OUTPUT` where there is none)."""
        body, indent = self.lines, self.indent
        in_place = self.in_place
        freed = _last_readers(graph)
        inlined = _inlined_subgraphs(graph)
        for node in graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                return node.args[0]
            if node in self.bound:
                self.free(freed.get(node, ()), body)
                continue
            name = self.names[node] = self.local(node.name)
            if node.op == "get_attr":
                value = getattr(self.owner, node.target)
                if node in inlined:
                    pass  # written where the cond / while_loop that runs it is
                elif isinstance(value, GraphModule):
                    self.names[node] = self.subgraph(node)
                else:  # tensor constants are read from the module, as the GraphModule does
                    self.names[node] = self.constant(value, "attr")
            elif node.op == "call_function" and node.target is _COND and all(
                    b in inlined for b in node.args[1:3]):
                self.cond(node, name)
            elif node.op == "call_function" and node.target is _WHILE_LOOP and all(
                    f in inlined for f in node.args[:2]):
                self.while_loop(node, name)
            elif node.op == "call_function" and node.target is _COND:
                pred, true_fn, false_fn, operands = node.args
                operands = ", ".join(self.arg(o) for o in operands)
                target = f"{name} = " if node.users else ""
                body.append(f"{indent}if {self.arg(pred)}:")
                body.append(f"{indent}    {target}{self.names[true_fn]}({operands})")
                body.append(f"{indent}else:")
                body.append(f"{indent}    {target}{self.names[false_fn]}({operands})")
            elif node.op == "call_function" and node.target is _WHILE_LOOP:
                cond_fn, body_fn, carried, additional = node.args[:4]
                extra = "".join(f", {self.arg(a)}" for a in additional)
                entry = [self.arg(v) if _enters_as_is(v, node) else f"_fresh1({self.arg(v)})"
                         for v in carried]
                body.append(f"{indent}{name} = ({', '.join(entry)}{',' if entry else ''})")
                body.append(f"{indent}while {self.names[cond_fn]}(*{name}{extra}):")
                body.append(f"{indent}    {name} = {self.names[body_fn]}(*{name}{extra})")
            elif node in self.copies_left_out:  # see _carried_writes
                body.append(f"{indent}{name} = {self.arg(node.args[0])}")
            elif node.op in ("call_function", "call_method"):
                if node.op == "call_method":
                    receiver, *rest = (self.arg(a) for a in node.args)
                    expr = f"{receiver}.{node.target}({', '.join(rest)})"
                elif node.target is _embedding_row and self.fast_ops:
                    expr = self.embedding_row(node)
                else:
                    expr = self.call(node, in_place.get(node))
                if node in self.row_runs:  # NOTE [row writes kept until the loop ends]
                    self.row_run_lines(node, name, expr)
                    self.free(freed.get(node, ()), body)
                    continue
                temporary = self.recycle.get(node)
                if temporary is not None:  # NOTE [results written into dead temporaries]
                    buffer = self.names[temporary]
                    # (forward AD's dual tensors have no out= form: read only with grad off)
                    expr = f"{expr[:-1]}, out={buffer}) if {self.out_allowed()} else {expr}"
                body.append(f"{indent}{name} = {expr}" if node.users else f"{indent}{expr}")
                if temporary is not None:
                    body.append(f"{indent}del {buffer}")
            else:
                raise NotImplementedError(f"graph node {node.op} {node.target}")
            self.free(freed.get(node, ()), body)
        return _NO_OUTPUT

    def row_run_lines(self, node: Node, name: str, expr: str) -> None:
        """The lines of a row write kept until the loop ends (NOTE [row writes kept until the
        loop ends]): `expr` (the write itself) with grad mode on; else the row joins the run
        where it is the run's next one and in the buffer, or the run is written and another
        begins (`_row_run`)."""
        pending, start, following, room = self.row_runs[node]
        buffer, index, values = (self.arg(a) for a in node.args)
        indent, lines = self.indent, self.lines
        lines.append(f"{indent}if {pending} is None:")
        lines.append(f"{indent}    {name} = {expr}")
        lines.append(f"{indent}elif {index} == {following} and {index} < {room}:")
        lines.append(f"{indent}    {pending}.append({values})")
        lines.append(f"{indent}    {following} += 1")
        lines.append(f"{indent}    {name} = {buffer}")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    {start}, {following} = {self.callee(_row_run)}({buffer}, "
                     f"{start}, {pending}, {index}, {values}, {room})")
        lines.append(f"{indent}    {name} = {buffer}")

    def cond(self, node: Node, name: str) -> None:
        """A staged `if`: the branches' lines under a Python `if` on the predicate; `name`
        is set to the tuple of the taken branch's results, or, where the graph reads only
        items of it, each item's local to its result (no tuple made and taken apart)."""
        pred, true_fn, false_fn, operands = node.args
        inputs = [self.arg(o) for o in operands]
        indent = self.indent
        dead = _dead_after(node)
        items = _items_read(node)
        if items is not None:
            self.names[node] = ""  # (no local: nothing to `del`)
            for item in items.values():
                self.names[item] = self.local(item.name)
            self.bound.update(items.values())
        for keyword, branch in ((f"if {self.arg(pred)}:", true_fn), ("else:", false_fn)):
            self.lines.append(f"{indent}{keyword}")
            module = getattr(self.owner, branch.target)
            child, output = self.inline(module, inputs, indent + "    ",
                                        prologue=self.branch_choices,
                                        left_out=_passed_through(module, dead))
            if node.users:
                outputs = output if isinstance(output, (tuple, list)) else (output,)
                if items is None:
                    self.lines.append(f"{indent}    {name} = {child.arg(tuple(outputs))}")
                else:
                    self.lines.extend(f"{indent}    {self.names[item]} = {child.arg(outputs[k])}"
                                      for k, item in items.items())
            child.release(output)
            if self.lines[-1] == f"{indent}{keyword}":
                self.lines.append(f"{indent}    pass")

    def while_loop(self, node: Node, name: str) -> None:
        """A staged `while`: `while True:` with the test's lines, a `break` on its result
        and the body's lines, over one local per carried value; `name` is set to the tuple
        of their final values."""
        cond_fn, body_fn, carried, additional = node.args[:4]
        body, indent = self.lines, self.indent
        grown = node.meta.get(grown_lists.GROWN)  # buffers that grow as it runs
        # A loop over 0-d numbers runs as Python arithmetic where that is exact.
        scalar = scalar_loops.emit_scalar_while(
            node, name, self.owner, self.arg, self.namespace, indent)
        if scalar is not None:
            guard, lines = scalar
            if guard is None:
                body.extend(lines)
                return
            body.append(f"{indent}if {guard}:")
            body.extend("    " + line for line in lines)
            body.append(f"{indent}else:")
            indent += "    "
        # Carried values enter the loop as copies: the loop's outputs never alias its
        # inputs (torch's contract for while_loop), even when it runs zero times;
        # except those no one else can see (`_owned_by_loop`).
        state = [self.local(f"{name[name.index('_') + 1:]}_{i}") for i in range(len(carried))]
        for local, value in zip(state, carried):
            entry = self.arg(value) if _enters_as_is(value, node) \
                else f"_fresh1({self.arg(value)})"
            body.append(f"{indent}{local} = {entry}")
        inputs = state + [self.arg(a) for a in additional]
        test_module, body_module = (getattr(self.owner, f.target) for f in (cond_fn, body_fn))
        # The in-place choices are made once, before the loop, unless grad mode may change
        # inside it.
        per_trip = _changes_grad_mode(test_module) or _changes_grad_mode(body_module)
        prologue = None if per_trip else []
        if grown:  # the trips, and each buffer's rows, as Python ints
            trips = self.local("trips")
            body.append(f"{indent}{trips} = 0")
            capacity = {slot: self.local("rows") for slot in grown[1]}
            for slot, local in capacity.items():
                body.append(f"{indent}{local} = {state[slot]}.shape[0]")
        row_runs, flush = {}, None
        kept = (_row_write_kept(test_module, body_module, _carried_count_of(node))
                if self.fast_ops and not per_trip else None)
        if kept is not None:  # NOTE [row writes kept until the loop ends]
            slot, write = kept
            pending, start, following = (self.local(h) for h in ("pending", "start", "next"))
            room = capacity.get(slot) if grown else None
            if room is None:  # (written in place only: its rows stay those it has)
                room = self.local("room")
                body.append(f"{indent}{room} = {state[slot]}.shape[0]")
            body.append(f"{indent}{pending} = None if "
                        f"{self.callee(torch.is_grad_enabled)}() else []")
            body.append(f"{indent}{start} = {following} = -1")
            row_runs[write] = (pending, start, following, room)
            flush = (f"{indent}if {pending}:",
                     f"{indent}    {self.callee(_write_rows)}({state[slot]}, {start}, "
                     f"{pending})",
                     f"{indent}del {pending}")
        # NOTE [a loop test's reads of invariant inputs]
        invariant = {}
        if self.fast_ops:
            for read in _invariant_items(test_module, len(carried)):
                invariant[read] = f"inv{next(self.counter)}_item"
                body.append(f"{indent}{invariant[read]} = {self.callee(_METHODS.item)}("
                            f"{inputs[_placeholder_index(read.args[0])]})")
        # NOTE [a trip's number read by its test and its body]
        numbers, trip_numbers = {}, {}
        if self.fast_ops:
            rows = _rows_of_trip_values(body_module)
            for read in _carried_items(test_module, len(carried)):
                slot = _placeholder_index(read.args[0])
                if slot not in rows:
                    continue
                if slot not in trip_numbers:
                    trip_numbers[slot] = f"trip{next(self.counter)}_item"
                numbers[read] = trip_numbers[slot]
        loop_at = len(body)
        body.append(f"{indent}while True:")
        for slot, local in trip_numbers.items():
            body.append(f"{indent}    {local} = {self.callee(_METHODS.item)}({state[slot]})")
        test, output = self.inline(test_module, inputs, indent + "    ", prologue=prologue,
                                   named={**invariant, **numbers})
        if isinstance(output, (tuple, list)):
            (output,) = output
        body.append(f"{indent}    if not {test.arg(output)}:")
        body.append(f"{indent}        break")
        test.release(output)
        if grown:  # the rows the graph would have sized each buffer with for one trip more
            symbol, rows = grown
            room = self.callee(grown_lists.room)
            for slot, expr in rows.items():
                need = grown_lists.rows_source(expr, symbol, f"{trips} + 1")
                body.append(f"{indent}    if {capacity[slot]} < {need}:")
                body.append(f"{indent}        {state[slot]} = {room}({state[slot]}, {need})")
                body.append(f"{indent}        {capacity[slot]} = {state[slot]}.shape[0]")
            body.append(f"{indent}    {trips} += 1")
        child, output = self.inline(body_module, inputs, indent + "    ",
                                    _carried_count_of(node), prologue, row_runs=row_runs,
                                    trip_numbers=trip_numbers)
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        if state:
            body.append(f"{indent}    {', '.join(state)}, = {child.arg(tuple(outputs))}")
        child.release(output)
        if prologue:
            body[loop_at:loop_at] = [indent + line for line in prologue]
        if flush:  # (the loop ends at its `break` only: the rows kept, written)
            body.extend(flush)
        if grown:  # the rows the graph sized it with
            symbol, rows = grown
            exactly = self.callee(grown_lists.rows_exactly)
            for slot, expr in rows.items():
                body.append(f"{indent}{state[slot]} = {exactly}({state[slot]}, "
                            f"{grown_lists.rows_source(expr, symbol, trips)})")
        if node.users:
            body.append(f"{indent}{name} = ({', '.join(state)}{',' if state else ''})")
        if state:  # the tuple holds them now (or nothing does)
            body.append(f"{indent}del {', '.join(state)}")

    def free(self, values, body: list) -> None:
        """`del` the locals read for the last time: a tensor's memory goes back to the
        allocator as soon as the graph is done with it, as in eager code, not at return."""
        names = [self.names[v] for v in values
                 if v.op in ("call_function", "call_method") and v.users
                 and self.names.get(v, "").startswith("v") and v not in self.reused]
        if names:
            body.append(f"{self.indent}del {', '.join(names)}")


_NO_OUTPUT = object()


def _items_read(cond: Node) -> dict[int, Node] | None:
    """position -> the node reading it, where `cond`'s result is read only by one
    `getitem` per position; else None."""
    items = {}
    for user in cond.users:
        if (user.op != "call_function" or user.target is not operator.getitem
                or type(user.args[1]) is not int or user.args[1] in items or user.kwargs):
            return None
        items[user.args[1]] = user
    return items or None


def _dead_after(cond: Node) -> set[int]:
    """The positions of `cond`'s operands that the cond may return as they are (NOTE [operands
    passed through a cond]): a tensor the graph owns, passed once, that nothing reads after
    the cond, nor any view of it."""
    operands = cond.args[3]
    order = {n: i for i, n in enumerate(cond.graph.nodes)}
    at = order[cond]
    dead = set()
    for k, operand in enumerate(operands):
        if not isinstance(operand, Node) or sum(o is operand for o in operands) != 1 \
                or not (_owns_memory(operand) or _sole_cond_result(operand)):
            continue
        if all(user is cond or (order[user] < at and user.op != "output")
               for alias in graph_passes.aliases(operand) for user in alias.users) \
                and all(order[alias] < at for alias in graph_passes.aliases(operand)):
            dead.add(k)
    return dead


def _sole_cond_result(node: Node) -> bool:
    """`node` is the only item read of a cond's one result: no other name for its memory."""
    if node.op != "call_function" or node.target is not operator.getitem:
        return False
    source = node.args[0]
    return (isinstance(source, Node) and source.target is _COND and len(source.users) == 1
            and len(source.meta.get("val") or ()) == 1)


def _passed_through(branch: GraphModule, dead: set[int]) -> set[Node]:
    """The clones in `branch` of the operands at positions `dead` that it returns as its
    results, which may be the operands themselves.

    NOTE [operands passed through a cond]: torch's cond may not return its operands, so the
    branch that leaves a value as it was (`if keep[i]: keep = keep & m`, whose else keeps
    `keep`) returns a copy of it, which eager Python never makes. Where the operand is memory
    the calling graph allocated and nothing reads after the cond, no one can tell the copy
    from the operand: it is returned as it is. The copy stays where the branch writes into
    the operand or returns it (or a view of it) twice, or where the copy's strides differ.
    """
    if not dead:
        return set()
    graph = branch.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = pytree.tree_leaves(graph.output_node().args[0])
    written = graph_passes._written_memory(graph)
    if written is None:
        return set()
    left_out = set()
    for k in dead:
        if k >= len(placeholders):
            continue
        placeholder = placeholders[k]
        copies = [v for v in outputs if isinstance(v, Node)
                  and graph_passes._memory_of(v) in (placeholder, v) and _is_clone(v)
                  and v.args[0] is placeholder]
        if len(copies) != 1:
            continue
        (copy_,) = copies
        value, before = copy_.meta.get("val"), placeholder.meta.get("val")
        if (sum(v is copy_ for v in outputs) != 1 or len(copy_.users) != 1
                or placeholder in written or copy_ in written
                or any(isinstance(v, Node) and graph_passes._memory_of(v) is placeholder
                       for v in outputs)
                or not (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                        and same_strides(value, before))):
            continue
        left_out.add(copy_)
    return left_out


def _inlined_subgraphs(graph: torch.fx.Graph) -> set[Node]:
    """The get_attr nodes of subgraphs that are only ever run as a cond branch or a
    while_loop's test or body: written inline, not compiled to a function of their own."""
    inlined = set()
    for node in graph.nodes:
        if node.op != "get_attr" or not node.users:
            continue
        if all(user.target is _COND and node in user.args[1:3] and node is not user.args[0]
               and node not in user.args[3]
               or user.target is _WHILE_LOOP and node in user.args[:2]
               and node not in (*user.args[2], *user.args[3]) and len(user.args) == 4
               and not user.kwargs
               for user in node.users):
            inlined.add(node)
    return inlined


def _changes_grad_mode(module: GraphModule) -> bool:
    return any(n.op == "call_function" and n.target is torch._C._set_grad_enabled
               for m in module.modules() if isinstance(m, GraphModule) for n in m.graph.nodes)


def _carried_count_of(loop: Node) -> int:
    """How many leading placeholders of `loop`'s body the loop owns (see `_carried_writes`)."""
    cond_fn, body_fn, carried, additional = loop.args[:4]
    return 0 if body_fn is cond_fn else len(carried)


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
    output either), of the result's dtype, shape and strides, with no two elements sharing
    memory. The op's other arguments may be tensors (`keep & (iou[i] <= 0.5)`, speed34): none
    is the input, and none can be a view of it, which would be a second reader. Nothing
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
                or source in pytree.tree_leaves((rest, node.kwargs))):
            continue
        value, before = node.meta.get("val"), source.meta.get("val")
        if (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and value.dtype == before.dtype and same_known_shape(value, before)
                and same_strides(value, before) and not _may_overlap(before)):
            chosen[node] = in_place
    return chosen


# NOTE [results written into dead temporaries]
# With grad mode off, each `linear` of a chain of layers allocated its result (a new tensor,
# its storage and its Python object: about 0.5 µs of the seed model's ~6 µs a layer) while
# the result of the layer before last had just been deleted, of the same shape. Where a
# matrix product's result (`linear` of a 2-d input with a bias, `addmm`, `mm`: their `out=`
# forms run the same kernel, bit for bit) has a static, contiguous shape, it is written with
# `out=` into such a dead temporary of the same shape, dtype and device, one this call of the
# function allocated (never one kept across calls: two threads or a re-entrant call each have
# their own). A temporary is dead where every tensor sharing its memory was read for the last
# time: the value itself and the in-place writes on it (an activation chosen in place, whose
# result is the same tensor; not an in-place view op such as `set_`, `resize_`); a view of
# it, a cond / while_loop operand, an output, a Python helper's argument or any op that may
# alias it (any op not aten's, whose schema is not trusted: a custom autograd Function may
# return its input) keeps it from being reused. The
# choice is made where the function is built (`_recycling_plan`), the `del` of a temporary
# to be reused deferred to the line that reuses it, and at most two dead temporaries of one
# kind are held at a time (the rest deleted as before), so memory stays eager's within two
# tensors a shape. With grad mode on the functional op runs, as autograd needs, and so it does
# inside a forward-AD dual level (`linear_out` has no forward derivative: break40 s03). Both
# are read once, where the function's in-place choices are (`out_allowed`): neither changes
# within a graph that does not set grad mode (a dual level is entered and left by the
# caller's `with fwAD.dual_level()`, never by an aten op), as the in-place choices assume.
_OUT_FORMS = frozenset((torch.ops.aten.linear.default, torch.ops.aten.addmm.default,
                        torch.ops.aten.mm.default))
_HELD_PER_KIND = 2


def _out_kind(node: Node):
    """(shape, dtype, device) of `node`'s result where an `out=` form may write it into a
    temporary (NOTE [results written into dead temporaries]); else None."""
    if node.op != "call_function" or node.target not in _OUT_FORMS:
        return None
    val = node.meta.get("val")
    if (not isinstance(val, torch.Tensor) or val.layout is not torch.strided
            or not all(type(size) is int for size in val.shape) or not val.is_contiguous()):
        return None
    if node.target is torch.ops.aten.linear.default:
        inputs = node.args[0]
        shape = inputs.meta.get("val") if isinstance(inputs, Node) else None
        # (linear's out= form runs addmm for a 2-d input with a bias only; else matmul then
        # add, which may round otherwise than linear's own fused path)
        if (len(node.args) < 3 or node.args[2] is None or node.kwargs
                or not isinstance(shape, torch.Tensor) or shape.dim() != 2):
            return None
    elif node.kwargs:  # (addmm's beta / alpha: kept on the functional call)
        return None
    return (tuple(val.shape), val.dtype, val.device)


def _same_tensor_of(node: Node, source: Node, in_place: dict) -> bool:
    """Whether `node`'s result is the very tensor `source` (its only alias kind allowed for a
    reused temporary): an op chosen in place on it, or an aten op writing it in place."""
    if node in in_place and node.args and node.args[0] is source:
        return True
    op = node.target
    if not isinstance(op, torch._ops.OpOverload) or not node.args or node.args[0] is not source:
        return False
    # An in-place view op changes the tensor's shape, strides or memory: `set_(t, s)` makes
    # `t` share `s`'s, and a layer written into dead `t` overwrote `s` (break40 s02).
    if torch.Tag.inplace_view in op.tags:
        return False
    schema = op._schema
    first = schema.arguments[0].alias_info if schema.arguments else None
    return (first is not None and first.is_write and len(schema.returns) == 1
            and schema.returns[0].alias_info is not None
            and schema.returns[0].alias_info.before_set == first.before_set
            and all(a.alias_info is None for a in schema.arguments[1:]))


def _only_reads(node: Node) -> bool:
    """Whether `node` reads its tensor arguments without aliasing or writing any of them.

    Only aten's schemas are trusted to say so: another library's op may run any code under a
    schema without alias annotations, `autoconv::function_apply` a user's `Function.forward`
    that returns its input or a view of it (a gradient reversal's `x.view_as(x)`: its
    result was overwritten by a later layer's, break40 s01)."""
    op = node.target
    return (isinstance(op, torch._ops.OpOverload) and op.namespace == "aten"
            and _schema_only_reads(op))


@functools.cache
def _schema_only_reads(op: torch._ops.OpOverload) -> bool:
    return (all(a.alias_info is None for a in op._schema.arguments)
            and all(r.alias_info is None for r in op._schema.returns))


def _recycling_plan(graph: torch.fx.Graph, in_place: dict) -> dict[Node, Node]:
    """node -> the dead temporary (the node that allocated it) its result is written into
    (NOTE [results written into dead temporaries])."""
    order = {node: i for i, node in enumerate(graph.nodes)}
    kinds = {node: kind for node in graph.nodes if (kind := _out_kind(node)) is not None}
    if not kinds:
        return {}
    root: dict[Node, Node] = {}  # a tensor -> the temporary whose memory it is
    escaped: set[Node] = set()
    for node in graph.nodes:
        for value in node.all_input_nodes:
            source = root.get(value)
            if source is None or source in escaped:
                continue
            if node.op != "output" and _same_tensor_of(node, value, in_place):
                root[node] = source
            elif node.op == "output" or not _only_reads(node):
                escaped.add(source)
        if node in kinds:
            root[node] = node
    # where each temporary is dead: after the last read of every tensor that is it
    dead_after: dict[Node, int] = {}
    for value, source in root.items():
        last = max((order[user] for user in value.users), default=order[value])
        dead_after[source] = max(dead_after.get(source, 0), last)
    deaths = sorted((at, order[source], source) for source, at in dead_after.items()
                    if source not in escaped)
    plan: dict[Node, Node] = {}
    held: dict = {}  # kind -> temporaries dead and not yet reused, oldest first
    next_death = 0
    for node in graph.nodes:
        i = order[node]
        while next_death < len(deaths) and deaths[next_death][0] < i:
            source = deaths[next_death][2]
            kind = held.setdefault(kinds[source], [])
            kind.append(source)
            del kind[:-_HELD_PER_KIND]
            next_death += 1
        kind = kinds.get(node)
        if kind is not None and held.get(kind):
            plan[node] = held[kind].pop()
    return plan


# NOTE [a loop test's reads of invariant inputs]
# A tensor `while` over a 0-d float16 `i < n` read `n.item()` on every trip (the comparison
# taken in Python: `_comparisons_as_numbers`), though `n` is not the loop's: a placeholder of
# the test past its carried slots is an input the loop reads and never writes (torch's
# while_loop refuses a body that mutates its inputs; the python backend writes in place only
# tensors the loop or an op of its own allocated, `_carried_writes`, `_in_place_candidates`,
# and a carried value that might share an input's memory enters as a copy,
# `_owned_by_loop`). Its `item()` is then the same number on every trip: read once, before
# the loop, where the test runs at least once, and never raising (one element, statically).
def _invariant_items(test: GraphModule, carried: int) -> list[Node]:
    """The `item()`s a loop test reads of its inputs past the `carried` slots (NOTE [a loop
    test's reads of invariant inputs])."""
    inputs = [n for n in test.graph.nodes if n.op == "placeholder"][carried:]
    found = []
    for node in test.graph.nodes:
        if (node.op == "call_function" and node.target is _METHODS.item and not node.kwargs
                and len(node.args) == 1 and node.args[0] in inputs):
            val = node.args[0].meta.get("val")
            if isinstance(val, torch.Tensor) and statically_known_true(val.numel() == 1):
                found.append(node)
    return found


# NOTE [a trip's number read by its test and its body]
# A decoder's loop tests its token (`while token != eos`: the test's `item()` of the carried
# token, `_comparisons_as_numbers`) and its body reads the same token's row
# (`embed(token)`: `embedding_row`, another `item()`): two `item()`s of one tensor a trip,
# each about 0.5-1 µs of argument parsing and dispatch. The test's `item()` of a carried
# slot whose placeholder the body's row reads, before anything writes it (`_read_unchanged`),
# is read once where the trip starts, into a local the test reads and does not delete, and
# the row reads that number: the carried value is the one the test
# read (the body's placeholders are the trip's carried values, reassigned only at its end).
# An `item()` of one element never raises, so reading it first changes no error; it is the
# same call on the same tensor, so the same Python number.
def _carried_items(test: GraphModule, carried: int) -> list[Node]:
    """The `item()`s a loop test reads of its first `carried` (carried) inputs, each of one
    element (NOTE [a trip's number read by its test and its body])."""
    inputs = [n for n in test.graph.nodes if n.op == "placeholder"][:carried]
    return [node for node in test.graph.nodes
            if node.op == "call_function" and node.target is _METHODS.item
            and not node.kwargs and len(node.args) == 1 and node.args[0] in inputs
            and isinstance(val := node.args[0].meta.get("val"), torch.Tensor)
            and statically_known_true(val.numel() == 1)]


def _rows_of_trip_values(body: GraphModule) -> set[int]:
    """The placeholder indices of `body` whose `_embedding_row` reads them as the trip gave
    them (NOTE [a trip's number read by its test and its body])."""
    placeholders = [n for n in body.graph.nodes if n.op == "placeholder"]
    return {placeholders.index(node.args[1]) for node in body.graph.nodes
            if node.op == "call_function" and node.target is _embedding_row
            and len(node.args) > 1 and node.args[1] in placeholders
            and _read_unchanged(node.args[1], node)}


def _read_unchanged(placeholder: Node, reader: Node) -> bool:
    """Whether every user of `placeholder` before `reader` only reads it (so nothing has
    written it, or a view of it, when `reader` runs)."""
    for node in placeholder.graph.nodes:
        if node is reader:
            return placeholder.op == "placeholder"
        if placeholder in node.all_input_nodes and not (
                _only_reads(node) or node.target is _METHODS.item):
            return False
    return False


def _placeholder_index(node: Node) -> int:
    return [n for n in node.graph.nodes if n.op == "placeholder"].index(node)


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


def _carried_writes(graph: torch.fx.Graph, carried: int):
    """In a while_loop body the python backend runs: the copies it can leave out and the
    writes to carried values that may then be done in place (node -> in-place overload).

    torch's while_loop tracing copies each carried input on entry to the body and each result
    on exit, and a list's append is a functional `index_put` (another copy): three copies of
    the buffer per iteration; a counter's `i += 1` is a functional `add` (an allocation). The
    python backend's loop owns its carried tensors (it copies them once, before the loop,
    unless they are its own already: `_owned_by_loop`), so for slot i with the shape

        placeholder_i -> clone -> write(clone, ...) -> clone -> output[i]

    where `write` is a buffer write (`_BUFFER_WRITES`) or a pointwise op with an in-place
    form, each value has that one reader (and the output holds it once, at i), and the write
    gives the dtype, shape and strides of placeholder_i, the clones are left out and the
    write may go into the placeholder: by induction slot i is the same tensor, the loop's own
    copy, at every iteration, and nothing else in the body reads it, so nothing sees the old
    value. Either clone may be missing (`drop_clones` removes them from a body that mutates
    nothing); where the copy-in is, the placeholder may have other readers, provided they and
    every view of it and its readers come before the write (`_read_before`): the index that
    `steps += 1` counts with. The write is in place only with grad mode off (as for
    `_in_place_candidates`); with grad on it stays functional, without the two copies.
    """
    if not carried:
        return set(), {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"][:carried]
    outputs = pytree.tree_leaves(graph.output_node().args[0])
    order = {node: i for i, node in enumerate(graph.nodes)}
    left_out, writes = set(), {}
    for slot, placeholder in enumerate(placeholders):
        if slot >= len(outputs) or not isinstance(outputs[slot], Node):
            continue
        result = outputs[slot]
        write = result.args[0] if _is_clone(result) else result
        in_place = _in_place_form(write)
        if in_place is None or (write is not result and len(write.users) != 1):
            continue
        source = write.args[0]
        if _is_clone(source) and source.args[0] is placeholder:
            if len(placeholder.users) != 1 or len(source.users) != 1:
                continue
        elif source is not placeholder or not _read_before(placeholder, write, order):
            continue
        if (source in pytree.tree_leaves((write.args[1:], write.kwargs))
                or len(result.users) != 1
                or [i for i, v in enumerate(outputs) if v is result] != [slot]):
            continue
        value, before = write.meta.get("val"), placeholder.meta.get("val")
        if not (isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor)
                and value.dtype == before.dtype and same_known_shape(value, before)
                and same_strides(value, before) and not _may_overlap(before)):
            continue
        left_out |= {n for n in (source, result) if _is_clone(n)}
        writes[write] = in_place
    return left_out, writes


def _in_place_form(node: Node) -> torch._ops.OpOverload | None:
    """The in-place overload of a buffer write or pointwise aten op (`add` -> `add_`)."""
    op = node.target
    if op is _index_put_row:  # (a row write at a Python int index: `counters_as_ints`)
        return _index_put_row_
    if (node.op != "call_function" or not isinstance(op, torch._ops.OpOverload)
            or op.namespace != "aten" or not node.args or not isinstance(node.args[0], Node)
            or (op not in _BUFFER_WRITES and torch.Tag.pointwise not in op.tags)):
        return None
    packet = getattr(torch.ops.aten, op.overloadpacket.__name__ + "_", None)
    return getattr(packet, op._overloadname, None)


def _read_before(placeholder: Node, write: Node, order: dict) -> bool:
    """Whether every view of `placeholder` and every reader of it or of its views but `write`
    comes before `write` in `graph`, none is an output or a cond / while_loop (whose results
    the python backend may not copy), so that writing into it at `write` changes nothing they
    read; `write` itself reads no view of it (`x.add_(x.t())` reads what it writes)."""
    aliases = graph_passes.aliases(placeholder)
    for alias in aliases:
        if alias is not placeholder and order[alias] > order[write]:
            return False
        for user in alias.users:
            if user in aliases or (user is write and alias is placeholder):
                continue
            if (user is write or user.op == "output" or order[user] > order[write]
                    or user.target in (_COND, _WHILE_LOOP)):
                return False
    return True


def _only_reader(node: Node | None) -> Node | None:
    """The one node that reads `node`, or None."""
    return next(iter(node.users)) if node is not None and len(node.users) == 1 else None


def _is_clone(node: Node | None) -> bool:
    return (node is not None and node.op == "call_function"
            and node.target is torch.ops.aten.clone.default
            and not node.kwargs.get("memory_format"))


def _owns_memory(node: Node) -> bool:
    """A tensor a (non-view) op of this graph allocated, the only reference to its memory.

    Stricter than `is_fresh`: items of cond / while_loop results may be the same tensor twice.
    """
    return isinstance(node.target, torch._ops.OpOverload) and is_fresh(node)


def _may_overlap(value: torch.Tensor) -> bool:
    """Whether two elements of `value` might share memory (a zero stride over a size > 1)."""
    return not all(statically_known_true(stride != 0) or statically_known_true(size <= 1)
                   for size, stride in zip(value.shape, value.stride()))


def _fresh1(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def _owned_by_loop(value, loop: Node) -> bool:
    """Whether the carried `value` of `loop` may enter it without a copy: a tensor this graph
    allocated (`_owns_memory`), without overlapping elements, read by nothing but `loop`, once,
    in a graph that does not change grad mode (so the body's in-place writes, made with grad
    off only, cannot reach a tensor autograd saved under grad on). No one can then tell the
    loop's state from the value, and the loop may write into it."""
    carried, additional = loop.args[2], loop.args[3]
    val = value.meta.get("val") if isinstance(value, Node) else None
    return (isinstance(val, torch.Tensor) and _owns_memory(value) and len(value.users) == 1
            and sum(v is value for v in carried) == 1 and value not in additional
            and not _may_overlap(val)
            and not any(n.op == "call_function" and n.target is torch._C._set_grad_enabled
                        for n in loop.graph.nodes))


def _enters_as_is(value, loop: Node) -> bool:
    """Whether the carried `value` of `loop` enters it without `_fresh1`: a Python number
    the graph holds as a literal (`_fresh1` returns it as is: one call less a carried
    counter, `_fresh1(0)`), or a tensor the loop owns (`_owned_by_loop`)."""
    return type(value) in (int, float, bool) or _owned_by_loop(value, loop)


_compiled = itertools.count()


def compile_python(graph_module: GraphModule, fast_ops: bool = True,
                   carried: int = 0, reads=(), missing: Callable | None = None) -> Callable:
    """Compile `graph_module`'s graph (its cond / while_loop subgraphs inline) to a Python
    function.

    The result takes the graph's placeholders positionally and returns what the graph returns.
    `fast_ops=False` calls the aten overloads themselves (for comparison). `carried` > 0: the
    graph is the body of a while_loop emitted here, whose first `carried` placeholders are
    tensors the loop owns (see `_carried_writes`). `reads`: the first placeholders are not
    arguments but `dict[key]` of each (dict, key), read where the function starts, and
    `missing()` is called where one is not there (NOTE [parameters read by the graph's
    function]).
    """
    namespace: dict = {"_fresh1": _fresh1}
    emitter = _Emitter(namespace, graph_module, fast_ops, carried)
    name = f"graph_{next(_compiled)}"
    source = emitter.emit(graph_module.graph, name, reads, missing)
    filename = f"<autoconv graph {name}>"
    exec(compile(source, filename, "exec"), namespace)
    function = namespace[name]
    # The sources of this graph and the subgraphs it calls, for reading (`python_source`).
    function.__autoconv_source__ = "\n\n".join(
        [getattr(v, "__autoconv_source__", "") for v in namespace.values()
         if callable(v) and hasattr(v, "__autoconv_source__")] + [source])
    return function


def lower(graph_module: GraphModule) -> GraphModule:
    """A copy of `graph_module` with the python backend's rewrites (`graph_passes`) applied to
    its graph and every subgraph."""
    # The passes rewrite graphs, never tensors: constants are shared with the captured module,
    # not copied (copying a constant that is a non-leaf tensor requiring grad would fail).
    shared = {id(value): value for module in graph_module.modules()
              for value in itertools.chain(vars(module).values(), module._parameters.values(),
                                           module._buffers.values())
              if isinstance(value, torch.Tensor)}
    lowered = copy.deepcopy(graph_module, memo=shared)
    predicates: set[int] = set()  # id()s of the subgraphs that are loop tests (see below)
    graph_passes.mark_written_by_caller(lowered)  # (read by drop_clones)
    for module in lowered.modules():  # parents before their subgraphs
        if isinstance(module, GraphModule):
            for rewrite in _LOWERING:
                rewrite(module)
            predicates |= {id(getattr(module, name)) for name in _loop_tests(module.graph)}
            if id(module) in predicates:  # a test: run through bool() only
                _, branches = graph_passes.predicate_output(module)
                predicates |= {id(getattr(module, name)) for name in branches}
            graph_passes.eliminate_dead_code(module, graph_passes.has_effects)
            module.recompile()
    # (after the rewrites, which may turn the ops reading a constant into new-tensor ones)
    for module in (graph_passes.fold_into_branches(lowered) | counters_as_ints(lowered)
                   | carried_as_read(lowered) | drop_unread_operands(lowered)
                   | predicates_as_numbers(lowered)):
        graph_passes.eliminate_dead_code(module, graph_passes.has_effects)
        module.recompile()
    return lowered


def _operator_runs(root: GraphModule) -> dict[int, int]:
    """{id of a branch or loop GraphModule: how many cond / while_loop nodes run it}: a rewrite
    of a subgraph that more than one operator runs would change them all."""
    runs: dict[int, int] = {}
    for module in root.modules():
        if isinstance(module, GraphModule):
            for node in module.graph.nodes:
                if node.op == "call_function" and node.target in (_COND, _WHILE_LOOP):
                    for holder in node.args[:2] if node.target is _WHILE_LOOP \
                            else node.args[1:3]:
                        key = id(getattr(module, holder.target))
                        runs[key] = runs.get(key, 0) + 1
    return runs


def drop_unread_operands(root: GraphModule) -> set[GraphModule]:
    """Leave out a cond's operands that neither branch reads; returns the modules changed.

    After `fold_into_branches`, nms_mask's 32 branches no longer read `index` (their `index
    <= i` is a constant), yet each cond still passed it, which kept `arange(n)` alive: an op
    per call whose result nothing read. Only branches that this one cond runs are changed.
    """
    runs = _operator_runs(root)
    changed = set()
    for module in list(root.modules()):
        if not isinstance(module, GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op != "call_function" or node.target is not _COND or node.kwargs:
                continue
            pred, true_fn, false_fn, operands = node.args
            branches = [getattr(module, b.target) for b in (true_fn, false_fn)]
            if true_fn is false_fn or any(runs.get(id(b)) != 1 for b in branches):
                continue
            places = [[n for n in b.graph.nodes if n.op == "placeholder"] for b in branches]
            if any(len(p) != len(operands) for p in places):
                continue
            unread = [k for k in range(len(operands))
                      if not places[0][k].users and not places[1][k].users]
            if not unread:
                continue
            for branch, branch_places in zip(branches, places):
                for k in unread:
                    branch.graph.erase_node(branch_places[k])
                branch.recompile()
            node.args = (pred, true_fn, false_fn,
                         type(operands)(o for k, o in enumerate(operands) if k not in unread))
            changed.add(module)
    return changed


def _loop_tests(graph: torch.fx.Graph) -> list[str]:
    """The subgraphs of `graph` that only while_loops' tests are: the python backend reads
    their result with `bool()` and nothing else (`graph_passes.predicate_output`)."""
    tests = []
    for node in graph.nodes:
        if node.op != "get_attr" or not node.users:
            continue
        if (all(user.target is _WHILE_LOOP and user.args[0] is node
                and node not in (user.args[1], *user.args[2], *user.args[3])
                for user in node.users)
                and sum(n.op == "get_attr" and n.target == node.target
                        for n in graph.nodes) == 1):
            tests.append(node.target)
    return tests


def embedding_rows(module: GraphModule) -> None:
    """`unsqueeze(embedding(weight, index), 0)` at a 0-d CPU index becomes
    `_embedding_row(weight, index, ...)`: one copy of the row (`narrow_copy`) instead of an
    embedding and an unsqueeze.

    A greedy decoder feeds its last token back through `nn.Embedding` into a cell that takes
    2-d inputs (benchmarks/loops.py's gru_greedy): the two calls were 3.4 µs of a trip, the
    `item` and `narrow_copy` 1.9 µs (speed31). The new node stands where the embedding read
    the weight, and its Python target is no fresh tensor to later passes (`is_fresh`), so none
    writes into it or folds it.
    """
    aten = torch.ops.aten
    graph = module.graph
    for node in list(graph.nodes):
        if not (node.op == "call_function" and node.target is aten.embedding.default
                and len(node.users) == 1 and not node.kwargs and len(node.args) >= 2):
            continue
        after = next(iter(node.users))
        weight, index = node.args[:2]
        if not (after.op == "call_function" and after.target is aten.unsqueeze.default
                and after.args[0] is node and after.args[1:] == (0,) and not after.kwargs):
            continue
        weight_val, index_val = (v.meta.get("val") if isinstance(v, Node) else None
                                 for v in (weight, index))
        # (CPU only: on a GPU the index's item() would wait for the device every trip)
        if not (isinstance(weight_val, torch.Tensor) and isinstance(index_val, torch.Tensor)
                and weight_val.dim() == 2 and index_val.dim() == 0
                and index_val.dtype in (torch.int64, torch.int32)
                and weight_val.device.type == "cpu" and index_val.device.type == "cpu"):
            continue
        with graph.inserting_before(node):
            row = graph.call_function(_embedding_row, tuple(node.args))
        row.meta = dict(after.meta)
        after.replace_all_uses_with(row)
        graph.erase_node(after)
        graph.erase_node(node)


def flat_argmax(module: GraphModule) -> None:
    """`argmax(view(y, [N]), 0 or -1)` becomes `argmax(y)`: torch's argmax over no dim reads
    `y` flattened, in the order the view reads it, so the same index, of the same 0-d
    int64 tensor; one call fewer (a decoder's `out(h).argmax(-1)` after NOTE [a vector's linear
    on its row] in graph_passes.py: 0.9 µs of a trip)."""
    aten = torch.ops.aten
    for node in list(module.graph.nodes):
        if not (node.op == "call_function" and node.target is aten.argmax.default
                and not node.kwargs and len(node.args) == 2 and node.args[1] in (0, -1)):
            continue
        flat = node.args[0]
        if not (isinstance(flat, Node) and flat.op == "call_function"
                and flat.target is aten.view.default and not flat.kwargs
                and len(flat.args[1]) == 1 and isinstance(flat.args[0], Node)):
            continue
        node.args = (flat.args[0],)


def _embedding_row(weight: torch.Tensor, index: torch.Tensor, *rest) -> torch.Tensor:
    """`unsqueeze(embedding(weight, index, *rest), 0)` for a 0-d `index`: row `index` of
    `weight` copied, shape [1, D]. An index out of range, and autograd through a weight that
    requires grad (`padding_idx` and `scale_grad_by_freq` shape only the gradient), are left to
    `embedding` itself."""
    i = index.item()
    if 0 <= i < weight.shape[0] and not (weight.requires_grad and torch.is_grad_enabled()):
        return torch.narrow_copy(weight, 0, i, 1)
    return torch.unsqueeze(torch.embedding(weight, index, *rest), 0)


# Ops whose result is the same, bit for bit, with their two tensor operands swapped, on the
# dtypes `commute_into_fresh` takes (integers and bools: no rounding, no NaN payload).
_COMMUTATIVE = frozenset((torch.ops.aten.bitwise_and.Tensor, torch.ops.aten.bitwise_or.Tensor,
                          torch.ops.aten.bitwise_xor.Tensor, torch.ops.aten.logical_and.default,
                          torch.ops.aten.logical_or.default, torch.ops.aten.logical_xor.default,
                          torch.ops.aten.eq.Tensor, torch.ops.aten.ne.Tensor))


def commute_into_fresh(module: GraphModule) -> None:
    """`bitwise_and(x, fresh)`, where `x` is not the graph's to write and `fresh` is, becomes
    `bitwise_and(fresh, x)`, so that `_in_place_candidates` may write the result into `fresh`.

    nms_mask's `keep = keep & ((iou[i] <= 0.5) | (index <= i))` reads `keep`, a branch's
    operand, first: the `and` made a new mask in each of the 32 branches where it can write
    into the `or`'s (0.9 against 1.2 µs, speed34). Only for integer and bool operands of one
    dtype, shape and strides, so the swap changes no value, no type and no layout.
    """
    for node in module.graph.nodes:
        if (node.op != "call_function" or node.target not in _COMMUTATIVE
                or len(node.args) != 2 or node.kwargs):
            continue
        first, second = node.args
        if not (isinstance(first, Node) and isinstance(second, Node) and first is not second
                and not (len(first.users) == 1 and _owns_memory(first))
                and len(second.users) == 1 and _owns_memory(second)):
            continue
        a, b = first.meta.get("val"), second.meta.get("val")
        if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.dtype == b.dtype and not a.dtype.is_floating_point
                and not a.dtype.is_complex and same_known_shape(a, b) and same_strides(a, b)):
            node.args = (second, first)


# In the order they ran before the split; each ordering kept (see each pass's docstring).
_LOWERING = (graph_passes.fuse_linear, flat_argmax,
             lambda module: rnn_cells.fuse_gru_cells(module.graph),
             graph_passes.in_place_to_functional, graph_passes.drop_clones, embedding_rows,
             commute_into_fresh,
             # (on the loops' writes as `drop_clones` left them; before `counters_as_ints`,
             # which reads them then)
             grown_lists.grow_in_loops)


def build(graph_module: GraphModule, reads=(), missing: Callable | None = None) -> Callable:
    """The python backend's callable for `graph_module`: lowered, then compiled (`reads`,
    `missing`: `compile_python`'s)."""
    return compile_python(lower(graph_module), reads=reads, missing=missing)


_COUNTER_COMPARISONS = {getattr(torch.ops.aten, name).Scalar: getattr(operator, name)
                        for name in ("lt", "le", "gt", "ge", "eq", "ne")}
_TENSOR_COMPARISONS = {getattr(torch.ops.aten, name).Tensor: getattr(operator, name)
                       for name in ("lt", "le", "gt", "ge", "eq", "ne")}
# (real dtypes whose every value is a Python int or float exactly)
_EXACT_ITEM_DTYPES = frozenset((
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
    torch.int32, torch.int64, torch.uint8))
_COUNTER_ADDS = (torch.ops.aten.add.Tensor, torch.ops.aten.add.Scalar)


def _tensor_while_loops(root: GraphModule, runs: dict[int, int]):
    """The while_loops of `root` and its subgraphs whose test and body only that loop runs
    (`runs`: `_operator_runs(root)`), but for those whose whole state is numbers, as
    (module, loop node, test, body). Such a loop runs on Python numbers already (and would
    not, given an int among its tensors): asked here as the emitter will ask. The nodes of
    each module are listed before its loops are yielded, so a caller may insert nodes."""
    for module in list(root.modules()):
        if not isinstance(module, GraphModule):
            continue
        for loop in list(module.graph.nodes):
            if loop.op != "call_function" or loop.target is not _WHILE_LOOP:
                continue
            test, body = (getattr(module, f.target) for f in loop.args[:2])
            if runs.get(id(test)) != 1 or runs.get(id(body)) != 1:
                continue
            if scalar_loops.emit_scalar_while(loop, "_", module, lambda value: "_", {}, "")\
                    is not None:
                continue
            yield module, loop, test, body


def counters_as_ints(root: GraphModule) -> set[GraphModule]:
    """Run the 0-d int64 counters of a tensor `while` as Python ints; returns the modules
    changed.

    A greedy decoder's `while token != eos and steps < max_len:` ... `steps += 1` carries
    `steps` as a 0-d tensor through a loop whose other state is tensors (scalar_loops.py takes
    only loops whose whole state is numbers): a `lt` and an `add_` dispatch on every trip for
    arithmetic Python does in nanoseconds. A carried value is a counter when it enters as
    `full([], c)` of int64 on the CPU, the body reads it only to add an integer to it and
    carry the sum back in its own slot, and the test reads it only in comparisons with
    integers, directly or in a cond branch (a subgraph only that cond runs), whose results
    reach nothing but the test's truth value (read with `not`). Its final value becomes a
    0-d int64 tensor again after the loop; its additions wrap around as int64's do
    (`_int64_add`). The body may also read it as the row a list's append writes
    (`index_put(buffer, [count], item)`, `_row_write`): with grad off that is `buffer[count] =
    item` at the Python int, a `select` and a `copy_` in C++ (perf20: the 0-d index tensor
    took the advanced-indexing kernel, and the count an `add_`, on every trip). A
    loop test's other comparisons of a 0-d integer tensor with an integer, or of two 0-d
    tensors of one dtype, whose result is only tested, read the tensors' `item()`
    (`_comparisons_as_numbers`: `token != eos`, a float16 `i < n`).
    """
    changed = set()
    runs = _operator_runs(root)
    for module, loop, test, body in _tensor_while_loops(root, runs):
        truths = _tested_truths(test, _test_output(test))
        for k, value in enumerate(loop.args[2]):
            start = _counter_start(value)
            if start is None or sum(v is value for v in loop.args[2]) != 1:
                continue
            rewrites = []
            if not (_counter_in_body(body, k, rewrites) and _counter_in_test(
                    test, k, rewrites, truths, runs)):
                continue
            for graph_module, node, function in rewrites:
                node.target, node.kwargs = function, {}
                if function is _index_put_row:  # index_put(buffer, [count], values)
                    node.args = (node.args[0], node.args[1][0], node.args[2])
                changed.add(graph_module)
            carried = list(loop.args[2])
            carried[k] = start
            loop.args = (*loop.args[:2], tuple(carried), *loop.args[3:])
            for user in list(loop.users):  # the final count, a tensor again
                if user.target is operator.getitem and user.args[1] == k:
                    with module.graph.inserting_after(user):
                        again = module.graph.call_function(
                            torch.ops.aten.scalar_tensor.default, (user,),
                            {"dtype": torch.int64})
                    again.meta = dict(user.meta)
                    user.replace_all_uses_with(again, lambda n, a=again: n is not a)
                    _final_count_reads(module.graph, user, again)
            changed.add(module)
        if _comparisons_as_numbers(test, truths, runs) | _truths_as_bools(test, truths):
            changed.add(test)
    return changed


_TRUTH_OPS = {torch.ops.aten.logical_and.default: _truth_and,
              torch.ops.aten.logical_or.default: _truth_or,
              torch.ops.aten.logical_not.default: _truth_not}


def _tested_truths(test: GraphModule, truth) -> set:
    """The nodes of a loop test whose value is only tested: the value it returns, and, through
    the `logical_and` / `logical_or` / `logical_not` of 0-d CPU tensors that reach it, their
    operands read by nothing else (`not done and steps < limit`, a test whose right side
    compares locals: NOTE [a comparison beside a traced test] in runtime/operators.py)."""
    if truth is None:
        return set()
    tested, grown = {truth}, True
    while grown:
        grown = False
        for node in test.graph.nodes:
            if (node not in tested and node.op == "call_function" and node.users
                    and _cpu_0d(node.meta.get("val"))
                    and all(u in tested and _truth_op(u) for u in node.users)):
                tested.add(node)
                grown = True
    return tested


def _truth_op(node: Node) -> bool:
    """A `logical_and` / `logical_or` / `logical_not` of 0-d CPU tensors only (so that every
    operand a rewrite makes a Python bool is read by one that becomes Python too)."""
    return (node.target in _TRUTH_OPS and not node.kwargs
            and all(isinstance(a, Node) and _cpu_0d(a.meta.get("val")) for a in node.args))


def _truths_as_bools(test: GraphModule, truths: set) -> bool:
    """Take a loop test's `logical_and` / `logical_or` / `logical_not` read only for its truth
    (`_tested_truths`) in Python: `bool(a) and bool(b)` of the operands' values, computed
    before it (the converter leaves a comparison beside a traced test unstaged), where a
    comparison `_comparisons_as_numbers` made a Python bool has no tensor to give
    `logical_and`, and a dispatch is dearer than two `bool`s of 0-d CPU tensors. Returns
    whether `test` changed."""
    changed = False
    for node in test.graph.nodes:
        if node in truths and _truth_op(node):
            node.target = _TRUTH_OPS[node.target]
            changed = True
    return changed


def carried_as_read(root: GraphModule) -> set[GraphModule]:
    """Carry a while_loop's value in the shape its body reads it in; returns the modules
    changed.

    A cell taking 2-d inputs in a loop over a 1-d state (nn.GRUCell / RNNCell / LSTMCell on
    an unbatched input: `h = cell(x, h)` is `squeeze(gru_cell(x, unsqueeze(h, 0)), 0)`)
    made the trip read `unsqueeze(h, 0)` of the value it had carried as `squeeze(new, 0)`:
    a view undone on every trip (gru_greedy: 0.6 µs of a 28 µs trip, speed35). Where the
    body reads the carried value only as `unsqueeze(value, d)`, the test does not read it,
    and the body carries back `squeeze(new, d)` of a `new` whose size at `d` is 1 and whose
    stride there is the one `unsqueeze` gives back (so `unsqueeze(squeeze(new, d), d)` is
    `new` itself: the same storage, offset, sizes and strides), the loop carries
    `unsqueeze(value, d)` in and `new` around, and squeezes its final value after the loop.
    The body reads the very tensor it read before, on every trip.
    """
    aten = torch.ops.aten
    changed = set()
    for module, loop, test, body in _tensor_while_loops(root, _operator_runs(root)):
        graph = module.graph
        output = body.graph.output_node()
        for k, value in enumerate(loop.args[2]):
            outs = output.args[0]
            place, tested = _placeholder(body, k), _placeholder(test, k)
            if (place is None or tested is None or tested.users or len(place.users) != 1
                    or not isinstance(outs, (tuple, list)) or k >= len(outs)
                    or not isinstance(value, Node)):
                continue
            (read,) = place.users
            new = _squeezed_back(read, outs[k])
            if new is None:
                continue
            d = read.args[1]
            with graph.inserting_before(loop):
                entry = graph.call_function(aten.unsqueeze.default, (value, d))
            entry.meta = dict(read.meta)
            read.replace_all_uses_with(place)
            place.meta = dict(read.meta)
            tested.meta = dict(read.meta)
            body.graph.erase_node(read)
            output.args = (type(outs)(new if i == k else o for i, o in enumerate(outs)),)
            loop.args = (*loop.args[:2], tuple(entry if i == k else v
                                               for i, v in enumerate(loop.args[2])),
                         *loop.args[3:])
            vals = loop.meta.get("val")
            if isinstance(vals, (tuple, list)) and k < len(vals):
                loop.meta["val"] = type(vals)(new.meta.get("val") if i == k else v
                                              for i, v in enumerate(vals))
            for user in list(loop.users):  # the final value in the shape it had
                if user.target is operator.getitem and user.args[1] == k:
                    with graph.inserting_after(user):
                        again = graph.call_function(aten.squeeze.dim, (user, d))
                    again.meta = dict(user.meta)
                    user.meta = dict(new.meta)
                    user.replace_all_uses_with(again, lambda n, a=again: n is not a)
            changed |= {module, body, test}
    return changed


def _squeezed_back(read: Node, out) -> Node | None:
    """The `new` of a body that reads its carried value as `read` = `unsqueeze(value, d)`
    and carries back `out` = `squeeze(new, d)`, where `unsqueeze(squeeze(new, d), d)` is
    `new` itself (`carried_as_read`); else None."""
    aten = torch.ops.aten
    if not (read.op == "call_function" and read.target is aten.unsqueeze.default
            and not read.kwargs and len(read.args) == 2 and type(read.args[1]) is int
            and isinstance(out, Node) and out.op == "call_function"
            and out.target is aten.squeeze.dim and not out.kwargs
            and len(out.args) == 2 and out.args[1] == read.args[1]
            and isinstance(out.args[0], Node)):
        return None
    d, new = read.args[1], out.args[0]
    val, before = new.meta.get("val"), read.meta.get("val")
    if not (isinstance(val, torch.Tensor) and isinstance(before, torch.Tensor)
            and 0 <= d < val.dim() and val.dim() == before.dim()
            and val.dtype == before.dtype and val.device == before.device
            and all(type(n) is int for n in (*val.shape, *val.stride()))
            and val.shape[d] == 1):
        return None
    sizes, strides = list(val.shape), list(val.stride())
    del sizes[d], strides[d]
    # (the stride `unsqueeze` gives its new dimension of size 1)
    return new if val.stride(d) == (sizes[d] * strides[d] if d < len(sizes) else 1) else None


def _comparisons_as_numbers(test: GraphModule, truths: set, runs) -> bool:
    """Compare a loop test's 0-d tensors as Python numbers where the comparison's result is
    only tested (reaches the test's truth value, directly or as an operand a cond branch
    returns as it is): `token != eos` becomes `item(token) != eos`, of a 0-d integer tensor
    and an integer in its dtype's range; `i < n` becomes `item(i) < item(n)`, of two 0-d
    tensors of one real dtype (a float16 loop's test: a `lt` and a `bool` of its result were
    half of a trip, speed37). Exact: such a tensor's item is its value, and torch compares
    the two in their dtype, with no promotion, as Python compares the numbers (nan unequal
    to everything, -0.0 equal to 0.0). Returns whether `test` changed."""
    changed = False
    for node in list(test.graph.nodes):
        if node.kwargs or len(node.args) != 2:
            continue
        if node.target in _COUNTER_COMPARISONS:
            value, other = node.args
            val = value.meta.get("val") if isinstance(value, Node) else None
            if not (_cpu_0d(val) and not val.dtype.is_floating_point
                    and not val.dtype.is_complex and val.dtype != torch.bool
                    and type(other) is int
                    and torch.iinfo(val.dtype).min <= other <= torch.iinfo(val.dtype).max):
                continue
            operands, function = (value,), _COUNTER_COMPARISONS[node.target]
        elif node.target in _TENSOR_COMPARISONS:
            vals = [a.meta.get("val") if isinstance(a, Node) else None for a in node.args]
            if not (all(map(_cpu_0d, vals)) and vals[0].dtype == vals[1].dtype
                    and vals[0].dtype in _EXACT_ITEM_DTYPES):
                continue
            operands, function = node.args, _TENSOR_COMPARISONS[node.target]
        else:
            continue
        if not _only_tested(node, test, truths, runs):
            continue
        with test.graph.inserting_before(node):
            items = [test.graph.call_function(_METHODS.item, (a,)) for a in operands]
        node.target, node.args = function, (*items, *node.args[len(items):])
        changed = True
    return changed


# NOTE [a staged if's comparison taken on numbers]
# `if x.mean() > 0.05:` in a staged body was `gt(mean, 0.05)` and then `bool()` of its 0-d
# result: a dispatch, a bool tensor and a second call to decide a Python `if` (`gt` 1.3 µs and
# `bool` 0.3 against `item` 0.2; the branchy seed model's graph 22 µs less a call, speed50).
# Where a cond's predicate is a comparison read by nothing else, of a 0-d CPU tensor of a
# real dtype with a number, or of two such tensors of one dtype, it is taken on their
# `item()`s: exact, as `_comparisons_as_numbers` says of a
# loop test's, with the number as the kernel reads it, cast to the tensor's dtype once, when
# the function is built (`_scalar_operand`: NOTE [Python numbers as 0-d operands]), so a
# float32 `mean > 0.05` compares with float32's 0.05, as torch does, and an integer outside
# the tensor's dtype (which torch wraps) keeps the op. Not inside a loop that scalar_loops.py
# runs on numbers: it writes its own conds, from the ops it knows.
def predicates_as_numbers(root: GraphModule) -> set[GraphModule]:
    """Take the comparisons that only decide a cond on Python numbers (NOTE [a staged if's
    comparison taken on numbers]); returns the modules changed."""
    numeric: set[int] = set()  # the loops' subgraphs that scalar_loops.py writes itself
    for module in list(root.modules()):
        if not isinstance(module, GraphModule):
            continue
        for loop in module.graph.nodes:
            if (loop.op == "call_function" and loop.target is _WHILE_LOOP
                    and scalar_loops.emit_scalar_while(loop, "_", module, lambda value: "_",
                                                       {}, "") is not None):
                for holder in loop.args[:2]:
                    numeric |= {id(m) for m in getattr(module, holder.target).modules()}
    changed = set()
    for module in list(root.modules()):
        if not isinstance(module, GraphModule) or id(module) in numeric:
            continue
        for cond in list(module.graph.nodes):
            if cond.op != "call_function" or cond.target is not _COND:
                continue
            pred = cond.args[0]
            if not (isinstance(pred, Node) and pred.op == "call_function"
                    and len(pred.users) == 1 and pred not in cond.args[3]):
                continue
            compared = _compared_as_numbers(pred)
            if compared is None:
                continue
            operands, function, number = compared
            with module.graph.inserting_before(pred):
                items = [module.graph.call_function(_METHODS.item, (a,)) for a in operands]
            pred.target, pred.args = function, (*items, *number)
            changed.add(module)
    return changed


def _compared_as_numbers(node: Node):
    """(tensors, Python comparison, (number,) or ()) where `node` compares a 0-d CPU tensor of a
    real dtype with a number, or two of one dtype, exactly as the comparison of their items
    with the number torch's kernel reads (NOTE [a staged if's comparison taken on numbers]);
    else None."""
    if node.kwargs or len(node.args) != 2:
        return None
    if node.target in _TENSOR_COMPARISONS:
        vals = [a.meta.get("val") if isinstance(a, Node) else None for a in node.args]
        if (all(map(_cpu_0d, vals)) and vals[0].dtype == vals[1].dtype
                and vals[0].dtype in _EXACT_ITEM_DTYPES):
            return node.args, _TENSOR_COMPARISONS[node.target], ()
        return None
    if node.target not in _COUNTER_COMPARISONS:
        return None
    value, other = node.args
    val = value.meta.get("val") if isinstance(value, Node) else None
    if not (_cpu_0d(val) and val.dtype in _EXACT_ITEM_DTYPES and type(other) in (int, float)):
        return None
    if not val.dtype.is_floating_point:  # (an integer the dtype holds: torch wraps others)
        if not (type(other) is int
                and torch.iinfo(val.dtype).min <= other <= torch.iinfo(val.dtype).max):
            return None
        return (value,), _COUNTER_COMPARISONS[node.target], (other,)
    operand = _scalar_operand(node)  # (the number cast to the tensor's dtype, as the kernel)
    if operand is None:
        return None
    return (value,), _COUNTER_COMPARISONS[node.target], (operand.item(),)


def _cpu_0d(val) -> bool:
    return isinstance(val, torch.Tensor) and val.dim() == 0 and val.device.type == "cpu"


def _only_tested(node: Node, graph: GraphModule, truths: set, runs) -> bool:
    """Whether only the truth value of `node` is read: it is one of `truths` (a loop test's
    result) where the graph returns it, a cond's predicate, or an operand that a cond's
    branches (run by that cond only) return as they are at results only tested."""
    for user in node.users:
        if user.op == "output":
            if node not in truths:
                return False
        elif user in truths and user.target in _TRUTH_OPS:
            continue  # (an `and` / `or` / `not` only tested: `_tested_truths`)
        elif user.target is _COND:
            pred, true_fn, false_fn, operands = user.args
            if node not in operands:
                if pred is not node:
                    return False
                continue
            if sum(o is node for o in operands) != 1:
                return False
            position = list(operands).index(node)
            tested = {item.args[1] for item in user.users
                      if item.target is operator.getitem and item in truths
                      and len(item.users) == 1}
            if len(tested) != len(user.users):
                return False
            for branch in (true_fn, false_fn):
                sub = getattr(graph, branch.target)
                place = _placeholder(sub, position)
                outs = sub.graph.output_node().args[0]
                if (runs.get(id(sub)) != 1 or place is None
                        or not isinstance(outs, (tuple, list))
                        or any(u.op != "output" for u in place.users)
                        or any(o is place for i, o in enumerate(outs) if i not in tested)):
                    return False
        else:
            return False
    return True


def _counter_start(value) -> int | None:
    """The Python int a carried `full([], c, dtype=int64)` on the CPU starts from, else None."""
    if not (isinstance(value, Node) and value.target is torch.ops.aten.full.default
            and len(value.users) == 1):
        return None
    val = value.meta.get("val")
    fill = value.args[1] if len(value.args) > 1 else None
    if (isinstance(val, torch.Tensor) and val.dim() == 0 and val.dtype == torch.int64
            and val.device.type == "cpu" and type(fill) is int and list(value.args[0]) == []):
        return fill
    return None


def _placeholder(module: GraphModule, index: int) -> Node | None:
    places = [n for n in module.graph.nodes if n.op == "placeholder"]
    return places[index] if index < len(places) else None


def _counter_in_body(body: GraphModule, k: int, rewrites: list) -> bool:
    place = _placeholder(body, k)
    output = body.graph.output_node()
    outs = output.args[0]
    if place is None or not isinstance(outs, (tuple, list)):
        return False
    adds = [user for user in place.users if user.target in _COUNTER_ADDS]
    rows = [user for user in place.users if _row_write(user, place)]
    if len(adds) != 1 or len(rows) > 1 or len(place.users) != 1 + len(rows):
        return False
    (add,) = adds
    if not (add.args[0] is place and len(add.args) == 2
            and type(add.args[1]) is int and not add.kwargs
            and list(add.users) == [output] and k < len(outs) and outs[k] is add
            and sum(o is add for o in outs) == 1):
        return False
    rewrites.append((body, add, _int64_add))
    # (the rewrites are made only once the test, too, reads the counter as a number)
    rewrites += [(body, row, _index_put_row) for row in rows]
    return True


def _row_write(node: Node, index: Node) -> bool:
    """Whether `node` is `index_put(buffer, [index], values)` (a list's append: one row of a
    buffer of the values' dtype, not accumulated) that reads `index` there only."""
    if not (node.target is torch.ops.aten.index_put.default and len(node.args) in (3, 4)
            and not node.kwargs and (len(node.args) == 3 or node.args[3] is False)):
        return False
    buffer, indices, values = node.args[:3]
    if not (isinstance(indices, (list, tuple)) and len(indices) == 1 and indices[0] is index
            and buffer is not index and values is not index):
        return False
    buffer_val, values_val = (v.meta.get("val") if isinstance(v, Node) else None
                              for v in (buffer, values))
    return (isinstance(buffer_val, torch.Tensor) and isinstance(values_val, torch.Tensor)
            and buffer_val.dim() >= 1 and buffer_val.dtype == values_val.dtype)


# NOTE [row writes kept until the loop ends]
# A list appended to on every trip of a tensor `while` (a greedy decoder's tokens) is a buffer
# the loop writes a row of per trip (`buffer[count] = item`, `_index_put_row_`): a `select`
# and a `copy_` through the indexing machinery, about 5 µs a trip (gru_greedy: 17 trips of
# ~25 µs each), where TorchScript's loop appends to a Python list. Where nothing in the loop
# reads the buffer but its row write (the test does not; the body's one reader of its slot is
# the write, whose result goes back to the slot only) and nothing in the loop writes any
# tensor in place (no in-place choice but the write's, no mutating op, no nested cond or
# loop), no one can tell when a row is written before the loop ends: with grad mode off the
# rows are kept, a run of consecutive ones from `start`, and written when the loop ends, at
# its `break` (the loop's only way out but an exception, after which no one reads the
# buffer: the loop owns it, `_carried_writes`), one `stack` and one copy into the run's rows
# (`_write_rows`). Nothing writes a kept row's tensor in the meantime (nothing in the loop
# writes in place), so the values written are those a write at the trip would have written.
# A row that is not the run's next one, or not in the buffer's rows (so out of range or
# negative), writes the run and then itself (`_row_run`) at its trip, in order, as before:
# the same rows, the same error where one is raised. The same bits as each trip's write
# (copies). With grad mode on the write is the functional one, as before.
def _row_write_kept(test: GraphModule, body: GraphModule, carried: int):
    """(slot, write node) of a loop body's row write that may be kept until the loop ends
    (NOTE [row writes kept until the loop ends]), else None."""
    writes = [n for n in body.graph.nodes if n.target in (_index_put_row, _index_put_row_)]
    if len(writes) != 1 or writes[0].target is not _index_put_row or len(writes[0].args) != 3:
        return None
    write = writes[0]
    buffer, index, values = write.args
    placeholders = [n for n in body.graph.nodes if n.op == "placeholder"]
    outputs = pytree.tree_leaves(body.graph.output_node().args[0])
    source = buffer.args[0] if _is_clone(buffer) and len(buffer.users) == 1 else buffer
    if source not in placeholders[:carried] or values is buffer or values is source:
        return None
    slot = placeholders.index(source)
    result = outputs[slot] if slot < len(outputs) else None
    if not isinstance(result, Node):
        return None
    result_source = result.args[0] if _is_clone(result) else result
    if (len(source.users) != 1 or list(buffer.users) != [write] or result_source is not write
            or len(write.users) != 1 or (result is not write and len(result.users) != 1)
            or sum(o is result for o in outputs) != 1):
        return None
    test_placeholders = [n for n in test.graph.nodes if n.op == "placeholder"]
    if slot >= len(test_placeholders) or test_placeholders[slot].users:
        return None
    if write not in _carried_writes(body.graph, carried)[1]:
        return None
    if not (_writes_nothing(test, 0) and _writes_nothing(body, carried, write)):
        return None
    return slot, write


def _writes_nothing(module: GraphModule, carried: int, write: Node | None = None) -> bool:
    """Whether the python backend's lines of `module` (a loop's test or body, `carried`:
    its slots; the cond branches it runs, to any depth) write no tensor in place but at
    `write`: no in-place choice, no mutating op, no loop."""
    graph = module.graph
    candidates = dict(_in_place_candidates(graph))
    candidates.update(_carried_writes(graph, carried)[1])
    candidates.pop(write, None)
    if candidates:
        return False
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if node.target is _WHILE_LOOP or (isinstance(node.target, torch._ops.OpOverload)
                                          and node.target._schema.is_mutable):
            return False
        if node.target is _COND and not all(
                isinstance(branch, Node) and branch.op == "get_attr"
                and _writes_nothing(getattr(module, branch.target), 0)
                for branch in node.args[1:3]):
            return False
    return True


def _write_rows(buffer: torch.Tensor, start: int, rows: list) -> None:
    """`buffer[start + k] = rows[k]` for each row kept (NOTE [row writes kept until the loop
    ends]): one `stack` where every row has the buffer's row shape."""
    if len(rows) == 1:
        buffer[start] = rows[0]
        return
    shape = buffer.shape[1:]
    # Stacked straight into the run's rows where it can (no tensor made and then copied; the
    # first row's shape tested, `stack` testing the others': 13.4 -> 8-9 µs for 17 rows of
    # the GRU decoder, warm). `stack` refuses, before writing anything, rows of unequal
    # shapes and rows sharing memory with the buffer; rows of another dtype, which `out`
    # does not convert, are not given to it: those take the copy below, as before.
    if rows[0].shape == shape and rows[0].dtype == buffer.dtype:
        try:
            torch.stack(rows, out=buffer[start:start + len(rows)])
            return
        except (RuntimeError, TypeError):
            pass
    if all(row.shape == shape for row in rows):
        buffer[start:start + len(rows)] = torch.stack(rows)
        return
    for k, row in enumerate(rows, start):
        buffer[k] = row


def _row_run(buffer, start: int, rows: list, index: int, values, room: int) -> tuple:
    """A row write that is not the next of the kept run `rows` (from `start`): the run is
    written, then the row begins another where it is in the buffer (`0 <= index < room`),
    else is written now (NOTE [row writes kept until the loop ends]). Returns the run's
    (start, next row)."""
    if rows:
        _write_rows(buffer, start, rows)
        rows.clear()
    if 0 <= index < room:
        rows.append(values)
        return index, index + 1
    _index_put_row_(buffer, index, values)
    return -1, -1


def _index_put_row(buffer: torch.Tensor, index: int, values: torch.Tensor) -> torch.Tensor:
    """`index_put(buffer, [index], values)` with `index` a Python int (a counter run as one,
    `counters_as_ints`): the functional form, for grad mode on."""
    return torch.index_put(buffer, (torch.scalar_tensor(index, dtype=torch.int64),), values)


def _index_put_row_(buffer: torch.Tensor, index: int, values: torch.Tensor) -> torch.Tensor:
    """`index_put_(buffer, [index], values)` with `index` a Python int: `buffer[index] =
    values` (a `select` and a `copy_` in C++, without the advanced-indexing kernel a tensor
    index takes), the same write: the same row, negative indices counted from the end, values
    broadcast to the row (of the same dtype: `_row_write`). An index out of range is left to
    `index_put_` itself, for torch's own error."""
    try:
        buffer[index] = values
    except IndexError:
        torch.index_put_(buffer, (torch.scalar_tensor(index, dtype=torch.int64),), values)
    return buffer


# NOTE [a loop's final count read as a number]
# A list grown in a tensor loop is stacked after it: the graph checks that the list is not
# empty (`_assert_async(gt(count, 0), "stack expects a non-empty TensorList")`) and slices
# the buffer to the count's `_local_scalar_dense`. Where the count is a Python int
# (`counters_as_ints`), it was made a 0-d int64 tensor again for those reads only: four ops
# (`scalar_tensor`, `gt`, `_assert_async`, `_local_scalar_dense`, about 5 µs a call of the
# GRU decoder) for what Python does on the int. The count is an int64 value, so its
# `_local_scalar_dense` is the int itself, and its comparison with an int of int64's range
# is Python's; the assertion raises torch's RuntimeError with the same message
# (`_assert_number`), which the Function maps to the user's exception as before.
def _final_count_reads(graph: torch.fx.Graph, count: Node, again: Node) -> None:
    """Reads of the 0-d tensor `again` made of the Python int `count` after its loop that
    Python does on the int (NOTE [a loop's final count read as a number])."""
    for reader in list(again.users):
        if (reader.target is torch.ops.aten._local_scalar_dense.default
                and reader.args == (again,) and not reader.kwargs):
            reader.replace_all_uses_with(count)
            graph.erase_node(reader)
            continue
        compare = _FINAL_COUNT_COMPARISONS.get(reader.target)
        other = reader.args[1] if len(reader.args) == 2 else None
        if (compare is None or reader.args[0] is not again or reader.kwargs
                or type(other) is not int or not -2 ** 63 <= other < 2 ** 63
                or not reader.users
                or not all(user.target is torch.ops.aten._assert_async.msg
                           and user.args[0] is reader and len(user.args) == 2
                           and isinstance(user.args[1], str) and not user.kwargs
                           for user in reader.users)):
            continue
        reader.target, reader.args = compare, (count, other)
        reader.meta.pop("val", None)
        for user in reader.users:
            user.target = _assert_number


_FINAL_COUNT_COMPARISONS = {**_COUNTER_COMPARISONS,
                            **{getattr(torch.ops.aten, name).Tensor: getattr(operator, name)
                               for name in ("lt", "le", "gt", "ge", "eq", "ne")}}


@torch.fx.node.has_side_effect
def _assert_number(condition: bool, message: str) -> None:
    """`_assert_async(condition, message)` of a Python bool (NOTE [a loop's final count read
    as a number]): torch's RuntimeError, with its message."""
    if not condition:
        raise RuntimeError(message)


def _int64_add_source(count: str, step: int, call: str) -> str:
    """`_int64_add(count, step)` written inline: the sum where it cannot leave int64's range
    (`count` is an int64 value: the counter's start or an earlier sum), else the call that
    wraps it. A decoder's two counters paid a Python call each on every trip."""
    if step == 0:
        return count
    bound = f"<= {0x7FFFFFFFFFFFFFFF - step}" if step > 0 else f">= {-0x8000000000000000 - step}"
    return f"({count} + {step} if {count} {bound} else {call}({count}, {step}))"


def _int64_add(count: int, step: int) -> int:
    """`count + step` as torch's int64 addition gives it (wrapping around at 2**63)."""
    total = count + step
    if -0x8000000000000000 <= total <= 0x7FFFFFFFFFFFFFFF:
        return total
    return scalar_loops._wrap(total, -0x8000000000000000, 0x10000000000000000)


def _test_output(test: GraphModule) -> Node | None:
    """The node a loop test returns (its truth value is all that is read)."""
    out = test.graph.output_node().args[0]
    if isinstance(out, (tuple, list)):
        out = out[0] if len(out) == 1 else None
    return out if isinstance(out, Node) else None


def _counter_in_test(graph: GraphModule, k: int, rewrites: list, truth, runs) -> bool:
    """Whether placeholder `k` of `graph` is read only by integer comparisons whose results
    reach only `truth` values (nodes whose value is only tested), directly or through
    branches of a cond; collects the comparisons' rewrites."""
    place = _placeholder(graph, k)
    if place is None:
        return False
    truths = truth if isinstance(truth, set) else {truth}
    for user in place.users:
        if user.target in _COUNTER_COMPARISONS:
            if not (user.args[0] is place and len(user.args) == 2
                    and type(user.args[1]) is int and not user.kwargs
                    and user in truths and len(user.users) == 1):
                return False
            rewrites.append((graph, user, _COUNTER_COMPARISONS[user.target]))
        elif user.target is _COND and place in user.args[3] and place is not user.args[0]:
            position = list(user.args[3]).index(place)
            if sum(o is place for o in user.args[3]) != 1:
                return False
            # the branch outputs whose cond result is only tested
            tested = {item.args[1] for item in user.users
                      if item.target is operator.getitem and item in truths
                      and len(item.users) == 1}
            if len(tested) != len(user.users):
                return False
            for branch in user.args[1:3]:
                sub = getattr(graph, branch.target)
                if runs.get(id(sub)) != 1:
                    return False
                outs = sub.graph.output_node().args[0]
                inner = {outs[i] for i in tested if isinstance(outs[i], Node)} - {
                    o for i, o in enumerate(outs) if i not in tested}
                if not _counter_in_test(sub, position, rewrites, inner, runs):
                    return False
        else:
            return False
    return True
