"""Staged loops over 0-d tensors, run by the python backend as Python arithmetic.

A `while_loop` whose state is a few 0-d CPU tensors (a counter, a tolerance test, Collatz or
Newton steps) spends nearly all its time in dispatch: each aten call on a 0-d tensor costs
~1-2 µs, the arithmetic a few ns. When every value the loop's subgraphs compute is a 0-d int64,
float64 or bool tensor and every op is one whose result Python computes bit for bit the same
(see `_OPS`), the python backend runs the loop on Python numbers instead: `.item()` of each
input before the loop, Python `int` / `float` / `bool` arithmetic inside (int64 wraps around as
torch's does; float64 is IEEE double in both), and one 0-d tensor per output after it. Nested
`cond` / `while_loop` nodes in the bodies become Python `if` / `while` inline.

Anything else (another dtype, a shape, an op outside the table, a print or an in-place op, an
input that requires grad while grad mode is on, which must be recorded by autograd) keeps the
tensor loop: the choice is made per graph when the backend is built, and the grad check once per
call, before the loop.
"""

from __future__ import annotations

import functools
import math
import operator

import torch
from torch.fx import GraphModule, Node

__all__ = ["emit_scalar_while"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop

# dtype -> the Python type that computes on it exactly.
_DOMAINS = {torch.int64: "int", torch.float64: "float", torch.bool: "bool"}
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class _NotScalar(Exception):
    """The loop keeps its tensor form (the reason is for debugging)."""


# aten name -> (the domains it may compute in, Python template, whether int results wrap).
# The compute domain is the dtype torch computes in: the result's for arithmetic, the operands'
# promoted dtype for comparisons. Left out on purpose: float floor_divide / remainder /
# maximum / minimum (Python's differ on signed zeros or NaN), bool arithmetic (torch's is
# logical), pow and transcendental functions (libm differences), float -> int conversion.
_ARITHMETIC = {
    "add": ({"int", "float"}, "{0} + {1}", True),
    "sub": ({"int", "float"}, "{0} - {1}", True),
    "mul": ({"int", "float"}, "{0} * {1}", True),
    "div": ({"float"}, "_div({0}, {1})", False),
    "reciprocal": ({"float"}, "_div(1.0, {0})", False),
    "floor_divide": ({"int"}, "{0} // {1}", True),
    "remainder": ({"int"}, "{0} % {1}", False),
    "neg": ({"int", "float"}, "-{0}", True),
    "abs": ({"int", "float"}, "abs({0})", True),
    "bitwise_and": ({"int", "bool"}, "{0} & {1}", False),
    "bitwise_or": ({"int", "bool"}, "{0} | {1}", False),
    "bitwise_xor": ({"int", "bool"}, "{0} ^ {1}", False),
}
_COMPARISONS = {"gt": ">", "lt": "<", "ge": ">=", "le": "<=", "eq": "==", "ne": "!="}
_LOGICAL = {"logical_and": "(bool({0}) and bool({1}))", "logical_or": "(bool({0}) or bool({1}))",
            "logical_xor": "(bool({0}) != bool({1}))", "logical_not": "(not {0})"}
# Views of a 0-d tensor: the same number (a write through one is seen through the other).
_VIEWS = {"view", "alias", "reshape", "_unsafe_view", "squeeze", "detach"}


def _div(a: float, b: float) -> float:
    """IEEE division as torch's: a zero divisor gives inf or nan (torch computes that rare case,
    signs of zeros and NaNs included) instead of raising."""
    if b:
        return a / b
    return (_FLOAT64(a) / b).item()


_FLOAT64 = functools.partial(torch.tensor, dtype=torch.float64)


def _wrap(value: int) -> int:
    """An int64 result as torch's two's complement arithmetic gives it."""
    return (value - _INT64_MIN) % 2 ** 64 + _INT64_MIN


def _scalar_val(node: Node):
    """The node's 0-d tensor value (its fake tensor), in a supported dtype on the CPU."""
    value = node.meta.get("val")
    if (not isinstance(value, torch.Tensor) or value.dim() != 0
            or value.dtype not in _DOMAINS or value.device.type != "cpu"):
        raise _NotScalar(f"{node.format_node()}: not a 0-d int64 / float64 / bool CPU tensor")
    return value


def _dtype_of(arg):
    if isinstance(arg, Node):
        return _scalar_val(arg).dtype
    if isinstance(arg, (bool, int, float)):
        return None
    raise _NotScalar(f"argument {arg!r}")


def _promoted(args) -> torch.dtype:
    """The dtype torch computes `args` in (Python numbers do not promote 0-d tensors)."""
    dummies = [torch.empty((), dtype=_dtype_of(a)) if isinstance(a, Node) else a for a in args]
    if len(dummies) == 1:
        return dummies[0].dtype
    return torch.result_type(*dummies)


class _ScalarEmitter:
    """Writes the Python-number form of a loop's subgraphs, inline, into the caller's lines."""

    def __init__(self, namespace: dict, lines: list[str]):
        self.namespace = namespace
        self.lines = lines
        self.count = 0
        self.owned: set[str] = set()  # locals holding numbers a subgraph computed itself

    def fresh(self) -> str:
        self.count += 1
        return f"s{self.count}_"

    def literal(self, value, domain: str) -> str:
        if isinstance(value, bool) or value is None:
            value = {"int": int, "float": float, "bool": bool}[domain](value)
        elif isinstance(value, int) and domain == "float":
            value = float(value)  # torch converts the number to the compute dtype first
        elif isinstance(value, float) and domain != "float":
            raise _NotScalar(f"float {value} in {domain} arithmetic")
        if isinstance(value, float) and not math.isfinite(value):
            name = f"c{len(self.namespace)}_"
            self.namespace[name] = value
            return name
        return repr(value)

    def operand(self, arg, names: dict, domain: str) -> str:
        """`arg` converted to `domain` (torch casts operands to the compute dtype)."""
        if not isinstance(arg, Node):
            return self.literal(arg, domain)
        have = _DOMAINS[_scalar_val(arg).dtype]
        name = names[arg]
        if have == domain:
            return name
        if domain == "float":
            return f"float({name})"
        if domain == "int":
            if have == "bool":
                return f"int({name})"
            raise _NotScalar("float to int")
        return f"({name} != 0)"

    def graph(self, module: GraphModule, inputs: list[str], indent: str) -> list[str]:
        """Emit `module`'s graph on the Python numbers named `inputs`; its outputs' names."""
        names: dict[Node, object] = {}
        placeholders = iter(inputs)
        for node in module.graph.nodes:
            if node.op == "placeholder":
                names[node] = next(placeholders)
            elif node.op == "get_attr":
                names[node] = getattr(module, node.target)
                if not isinstance(names[node], GraphModule):  # a tensor constant
                    raise _NotScalar(node.format_node())
            elif node.op == "output":
                outputs = node.args[0]
                outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
                return [self.output(o, names, indent) for o in outputs]
            elif node.op == "call_function" and node.target is operator.getitem:
                source, index = node.args
                if not isinstance(names.get(source), list):
                    raise _NotScalar(node.format_node())
                names[node] = names[source][index]
            elif node.op == "call_function" and node.target is _COND:
                names[node] = self.cond(node, names, indent)
            elif node.op == "call_function" and node.target is _WHILE_LOOP:
                names[node] = self.while_loop(node, names, indent)
            elif node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
                names[node] = self.op(node, names, indent)
            else:
                raise _NotScalar(node.format_node())
        raise _NotScalar("graph without output")

    def output(self, value, names, indent) -> str:
        if not isinstance(value, Node):
            raise _NotScalar(f"constant output {value!r}")
        _scalar_val(value)
        return names[value]

    def op(self, node: Node, names: dict, indent: str) -> str:
        op = node.target
        name = op.overloadpacket.__name__
        result = _scalar_val(node)
        allowed = {"dtype"} if name == "_to_copy" else set()
        if op.namespace != "aten" or not set(node.kwargs) <= allowed:
            raise _NotScalar(node.format_node())
        args = node.args
        if name in _VIEWS:
            _scalar_val(args[0])
            return names[args[0]]
        target = self.fresh()
        if op._schema.is_mutable:
            # `x.add_(1)` on a number the body made (its private copy of a carried value):
            # rebinding the local is the write; readers before it already hold the old number.
            written = names.get(args[0]) if isinstance(args[0], Node) else None
            if not name.endswith("_") or written not in self.owned:
                raise _NotScalar(node.format_node())
            name, target = name[:-1], written
        domain = _DOMAINS[result.dtype]
        if name == "clone" and len(args) == 1:
            self.lines.append(f"{indent}{target} = {names[args[0]]}")
            self.owned.add(target)
            return target
        if name in _ARITHMETIC:
            domains, template, wraps = _ARITHMETIC[name]
            if domain not in domains or len(args) != template.count("{"):
                raise _NotScalar(node.format_node())
            expr = template.format(*(self.operand(a, names, domain) for a in args))
        elif name in _COMPARISONS and len(args) == 2:
            compute = _DOMAINS.get(_promoted(args))
            if compute is None:
                raise _NotScalar(node.format_node())
            left, right = (self.operand(a, names, compute) for a in args)
            expr, wraps = f"{left} {_COMPARISONS[name]} {right}", False
        elif name in _LOGICAL and len(args) == _LOGICAL[name].count("{"):
            expr = _LOGICAL[name].format(*(names[a] if isinstance(a, Node) else repr(a)
                                           for a in args))
            wraps = False
        elif name == "where" and len(args) == 3 and isinstance(args[0], Node):
            a, b = (self.operand(a, names, domain) for a in args[1:])
            expr, wraps = f"{a} if {names[args[0]]} else {b}", False
        elif name == "_to_copy" and len(args) == 1:
            expr, wraps = self.operand(args[0], names, domain), False
        else:
            raise _NotScalar(node.format_node())
        if domain == "bool" and name in _ARITHMETIC and name not in (
                "bitwise_and", "bitwise_or", "bitwise_xor"):
            raise _NotScalar(node.format_node())
        self.owned.add(target)
        self.lines.append(f"{indent}{target} = {expr}")
        if wraps and domain == "int":
            self.lines.append(f"{indent}if not {_INT64_MIN} <= {target} <= {_INT64_MAX}:")
            self.lines.append(f"{indent}    {target} = _wrap({target})")
        return target

    def cond(self, node: Node, names: dict, indent: str) -> list[str]:
        pred, true_fn, false_fn, operands = node.args
        if not isinstance(pred, Node):
            raise _NotScalar("constant predicate")
        _scalar_val(pred)
        inputs = [names[o] if isinstance(o, Node) else None for o in operands]
        if None in inputs:
            raise _NotScalar("constant operand")
        results = None
        for keyword, branch in (("if", true_fn), ("else", false_fn)):
            module = names[branch]
            if not isinstance(module, GraphModule):
                raise _NotScalar("branch")
            self.lines.append(f"{indent}if {names[pred]}:" if keyword == "if" else
                              f"{indent}else:")
            outputs = self.graph(module, inputs, indent + "    ")
            if results is None:
                results = [self.fresh() for _ in outputs]
            for target, value in zip(results, outputs):
                self.lines.append(f"{indent}    {target} = {value}")
            if not outputs:
                self.lines.append(f"{indent}    pass")
        return results

    def while_loop(self, node: Node, names: dict, indent: str) -> list[str]:
        cond_fn, body_fn, carried, additional = node.args[:4]
        cond_module, body_module = names[cond_fn], names[body_fn]
        if len(node.args) > 4 or node.kwargs or not all(
                isinstance(m, GraphModule) for m in (cond_module, body_module)):
            raise _NotScalar(node.format_node())
        state = [self.fresh() for _ in carried]
        for target, value in zip(state, carried):
            if not isinstance(value, Node):
                raise _NotScalar("constant carried value")
            self.lines.append(f"{indent}{target} = {names[value]}")
        extra = [names[a] for a in additional]
        self.lines.append(f"{indent}while True:")
        inner = indent + "    "
        (pred,) = self.graph(cond_module, state + extra, inner)
        self.lines.append(f"{inner}if not {pred}:")
        self.lines.append(f"{inner}    break")
        outputs = self.graph(body_module, state + extra, inner)
        if outputs:
            self.lines.append(f"{inner}{', '.join(state)}, = {', '.join(outputs)},")
        return state


def emit_scalar_while(node: Node, target: str, owner: GraphModule, arg, namespace: dict,
                      indent: str) -> tuple[str | None, list[str]] | None:
    """Python lines that run the while_loop `node` on Python numbers and set `target` to its
    outputs as 0-d tensors, at `indent`, and the condition (None: always) under which they
    may run instead of the tensor loop; None when the loop must stay a tensor loop.

    `arg(value)` names a value of the enclosing graph.
    """
    cond_fn, body_fn, carried, additional = node.args[:4]
    inputs = [*carried, *additional]
    try:
        if not all(isinstance(v, Node) for v in inputs):
            raise _NotScalar("constant input")
        values = [_scalar_val(v) for v in inputs]
        outputs = node.meta.get("val")
        if not isinstance(outputs, (tuple, list)) or len(outputs) != len(carried) or not all(
                isinstance(o, torch.Tensor) and o.dtype == v.dtype
                for o, v in zip(outputs, values)):
            raise _NotScalar("outputs")
        lines: list[str] = []
        emitter = _ScalarEmitter(namespace, lines)
        names = {}
        for value in dict.fromkeys(inputs):
            names[value] = emitter.fresh()
            lines.append(f"{indent}{names[value]} = {arg(value)}.item()")
        module_names = {n: getattr(owner, n.target) for n in (cond_fn, body_fn)}
        state = emitter.while_loop(node, {**names, **module_names}, indent)
    except _NotScalar:
        return None
    namespace.update(_div=_div, _wrap=_wrap, _scalar_tensor=torch.tensor,
                     _is_grad_enabled=torch.is_grad_enabled)
    dtypes = {}
    for value in values:
        dtypes[value.dtype] = f"_{str(value.dtype).replace('torch.', '')}"
        namespace[dtypes[value.dtype]] = value.dtype
    result = ", ".join(f"_scalar_tensor({s}, dtype={dtypes[v.dtype]})"
                       for s, v in zip(state, values))
    lines.append(f"{indent}{target} = ({result},)")
    # Autograd must record a loop over inputs that require grad: the tensor loop does.
    floats = dict.fromkeys(arg(v) for v, val in zip(inputs, values) if val.dtype == torch.float64)
    guard = None
    if floats:
        requires = " or ".join(f"{f}.requires_grad" for f in floats)
        guard = f"not (_is_grad_enabled() and ({requires}))"
    return guard, lines
