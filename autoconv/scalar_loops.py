"""Staged loops over 0-d (or one-element) tensors, run by the python backend as Python arithmetic.

A `while_loop` whose state is a few 0-d CPU tensors (a counter, a tolerance test, Collatz or
Newton steps) spends nearly all its time in dispatch: each aten call on a 0-d tensor costs
~1-2 µs, the arithmetic a few ns. When every value the loop's subgraphs compute is a 0-d integer
(int64, int32, int16, int8, uint8), float64, float32 or bool tensor and every op is one whose
result Python computes bit for bit the same (see `_ARITHMETIC`), the python backend runs the loop
on Python numbers instead: `.item()` of each input before the loop, Python `int` / `float` /
`bool` arithmetic inside, and one 0-d tensor per output after it. A tensor of one element with
dimensions (a bound `n` of shape (1,), and so a (1,)-shaped test) is one number too: the
pointwise ops here compute the same number whatever its shape, its outputs come back in their
shapes, and type promotion is read with the shapes (a (1,) int32 tensor outranks a 0-d int64
one, whose number would be narrowed: such a loop keeps its tensor form). Integers wrap around
at their dtype's width as torch's do. float64 is IEEE double in both. A float32 result is the double
result rounded to float32 (`_f32`), which is exactly torch's float32 result for the ops allowed
there (+, -, *, /: a double holds more than twice float32's precision, so rounding twice gives
the correctly rounded result), and a Python number meeting a float32 tensor is rounded to
float32 first, as torch casts it. Nested `cond` / `while_loop` nodes in the bodies become
Python `if` / `while` inline.

A list the loop grows (NOTE [lists of numbers in scalar loops]) is a Python list of numbers
in the loop and a tensor again after it.

Anything else (another dtype, a shape of more than one element, an op outside the table, a
print or an in-place op, an input that requires grad while grad mode is on, which must be
recorded by autograd) keeps the tensor loop: the choice is made per graph when the backend is
built, and the grad check once per call, before the loop.
"""

from __future__ import annotations

import ctypes
import functools
import math
import operator

import torch
from torch.fx import GraphModule, Node

from . import grown_lists

__all__ = ["emit_scalar_while"]

_COND = torch.ops.higher_order.cond
_WHILE_LOOP = torch.ops.higher_order.while_loop

# dtype -> the Python arithmetic that computes on it exactly ("float32": rounded by `_f32`).
_DOMAINS = {torch.int64: "int", torch.int32: "int", torch.int16: "int", torch.int8: "int",
            torch.uint8: "int", torch.float64: "float", torch.float32: "float32",
            torch.bool: "bool"}
# integer dtype -> (lowest value, number of values): torch's results wrap around in this range
_INT_RANGES = {dtype: (int(torch.iinfo(dtype).min), 2 ** torch.iinfo(dtype).bits)
               for dtype, domain in _DOMAINS.items() if domain == "int"}


# NOTE [lists of numbers in scalar loops]
# A `while` over numbers that appends a number per trip (`while x > 1: out.append(x); x = x /
# 2`) carries the list as a 1-d buffer and writes its rows, `index_put(buffer, [count],
# value)` (NOTE [lists in while loops]): a tensor loop, a write per trip eager does not make,
# 1.5-2x eager's time (issue 12). Where the buffer is carried in one slot that the test does
# not read and the body only writes rows of (`grown_lists._only_rows_written`: a chain of
# clones and row writes, each the next one's only reader, ending at the body's result in that
# slot) at a 0-d int64 / int32 index, with a 0-d value of its own dtype, no version of the
# buffer but the latest is ever read: the loop runs it as one Python list, `.tolist()` of the
# buffer on entry, each write `list[index] = value` in place, and `tensor(list, dtype)` after
# the loop. The numbers are exact in the buffer's dtype (an integer is in its range, a float32
# is rounded by `_f32` as it is made), so the tensor holds what the writes would have put
# there; negative indices count from the end as `index_put`'s do, an index out of range raises
# `index_put`'s own error (`_put_row`). A buffer that grows as the loop runs
# (`grown_lists.GROWN`) has before each trip the rows the graph would have sized it with for
# one trip more, at least (`_list_room` doubles it, as `grown_lists.room` does the tensor's),
# and after the loop the rows the graph sized it with.


class _NotScalar(Exception):
    """The loop keeps its tensor form (the reason is for debugging)."""


# aten name -> (the domains it may compute in, Python template, whether its results may need
# wrapping (int) or rounding (float32)).
# The compute domain is the dtype torch computes in: the result's for arithmetic, the operands'
# promoted dtype for comparisons. Left out on purpose: float floor_divide / remainder /
# maximum / minimum (Python's differ on signed zeros or NaN), bool arithmetic (torch's is
# logical), pow and transcendental functions (libm differences), float -> int conversion.
_ARITHMETIC = {
    "add": ({"int", "float", "float32"}, "{0} + {1}", True),
    "sub": ({"int", "float", "float32"}, "{0} - {1}", True),
    "mul": ({"int", "float", "float32"}, "{0} * {1}", True),
    "div": ({"float", "float32"}, "_div({0}, {1})", True),
    "reciprocal": ({"float", "float32"}, "_div(1.0, {0})", True),
    "floor_divide": ({"int"}, "{0} // {1}", True),
    "remainder": ({"int"}, "{0} % {1}", False),
    "neg": ({"int", "float", "float32"}, "-{0}", True),
    "abs": ({"int", "float", "float32"}, "abs({0})", True),
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


# NOTE [division by a literal in a trip]
# A trip of a scalar loop is a few Python operations, so each line it runs counts: collatz(27)
# is 111 trips of about 0.5 µs. Two guards are there only for divisors the loop computes:
# `_div` (a Python call a trip) answers a zero divisor as torch does, where Python raises,
# and the range test after `a // b` wraps the one quotient that leaves its dtype's range
# (the lowest value // -1). Dividing by a literal that is neither (a nonzero finite float as
# the compute dtype holds it; an integer other than 0 and -1), `a / d` is Python's IEEE
# division, which overflows to inf as torch's does, and `a // d` of an in-range `a` is in
# range (|a // d| <= |a| / 2 rounded up for |d| >= 2; an unsigned dtype's literal is
# positive), so both are written bare. A float32 quotient is still rounded by `_f32`.
def _by_a_literal(name: str, args, domain: str) -> bool:
    """Whether `name(*args)` is a division by a literal that needs neither `_div` nor a wrap
    (NOTE [division by a literal in a trip])."""
    if name not in ("div", "floor_divide") or len(args) != 2 or isinstance(args[1], Node) \
            or isinstance(args[1], bool) or not isinstance(args[1], (int, float)):
        return False
    divisor = args[1]
    if name == "floor_divide":
        return domain == "int" and isinstance(divisor, int) and divisor not in (0, -1)
    divisor = _f32(float(divisor)) if domain == "float32" else float(divisor)
    return domain in ("float", "float32") and divisor != 0 and math.isfinite(divisor)


# NOTE [wraps left to the users]
# An integer result is wrapped into its dtype's range where it is made (a chained range test,
# and `_wrap` where it fails). Where every reader of it is a +, - or * in the same dtype, the
# test can wait for theirs: two's complement arithmetic is arithmetic modulo 2 ** bits, so
# `wrap(wrap(a * 3) + 1)` is `wrap(a * 3 + 1)`, and the readers wrap their own results. A
# number read by anything else (a comparison, `//`, `%`, a branch, the loop's next trip, an
# output) is wrapped where it is made, as before. collatz's `3 * n + 1` tests once, not twice.
_RING_OPS = frozenset({"add", "sub", "mul", "add_", "sub_", "mul_"})


def _users_wrap(node: Node, dtype: torch.dtype) -> bool:
    """Whether every reader of `node` is a +, - or * of `dtype` numbers, which wraps its own
    result (NOTE [wraps left to the users])."""
    return bool(node.users) and all(
        user.op == "call_function" and isinstance(user.target, torch._ops.OpOverload)
        and user.target.overloadpacket.__name__ in _RING_OPS and not user.kwargs
        and len(user.args) == 2 and isinstance(user.meta.get("val"), torch.Tensor)
        and user.meta["val"].dtype == dtype for user in node.users)


def _wrap(value: int, low: int, count: int) -> int:
    """An integer result as torch's two's complement arithmetic gives it in a dtype whose
    `count` values start at `low`."""
    return (value - low) % count + low


def _f32(value: float) -> float:
    """`value` rounded to the nearest float32 (to nearest even; beyond its range, inf)."""
    return ctypes.c_float(value).value


# NOTE [int64 to float32 rounded once]
# An int64 beyond 2 ** 53 is not a double: `float(n)` rounds it, and rounding that double to
# float32 again can land on a float32 tie the integer was not on and break it the other way
# (2 ** 60 + 2 ** 36 + 1 -> the double 2 ** 60 + 2 ** 36 -> the float32 2 ** 60, where torch's
# cast rounds once, to 2 ** 60 + 2 ** 37). Such an integer is rounded to 24 significant bits
# in Python's integers, to nearest even, as the cast does; int32 and narrower are doubles.
def _int_f32(value: int) -> float:
    """The int64 `value` cast to float32 as torch casts it (NOTE [int64 to float32 rounded
    once])."""
    if -2 ** 53 <= value <= 2 ** 53:
        return _f32(float(value))
    magnitude = abs(value)
    shift = magnitude.bit_length() - 24
    kept, rest = divmod(magnitude, 1 << shift)
    half = 1 << (shift - 1)
    if rest > half or rest == half and kept & 1:
        kept += 1
    return math.copysign(float(kept << shift), value)


def _put_row(rows: list, index: int, value) -> None:
    """`index_put_(buffer, [index], value)` on the buffer's Python list of numbers."""
    try:
        rows[index] = value
    except IndexError:  # torch's own error for the index
        torch.zeros(len(rows)).index_put_((torch.tensor(index),), torch.tensor(0.0))
        raise


def _list_room(rows: list, need: int, zero) -> None:
    """`rows` grown in place to `need` rows at least and twice its own (as `grown_lists.room`
    grows a buffer: a loop of n trips grows it log n times)."""
    have = len(rows)
    rows.extend([zero] * (max(need, 2 * have) - have))


def _rows_exactly(rows: list, count: int, zero) -> list:
    """`rows` with `count` rows, as `grown_lists.rows_exactly` leaves a buffer."""
    if len(rows) > count:
        del rows[count:]
    else:
        rows.extend([zero] * (count - len(rows)))
    return rows


_ROW_PUTS = (torch.ops.aten.index_put.default, torch.ops.aten.index_put_.default)
_ZEROS = {"int": 0, "float": 0.0, "float32": 0.0, "bool": False}


def _row_buffer(owner: GraphModule, loop: Node, slot: int) -> bool:
    """Whether the carried value at `slot` of `loop` is a buffer of numbers whose rows the body
    writes and nothing reads (NOTE [lists of numbers in scalar loops])."""
    carried, additional = loop.args[2], loop.args[3]
    value = carried[slot]
    val = value.meta.get("val") if isinstance(value, Node) else None
    if not (isinstance(val, torch.Tensor) and val.dim() == 1 and val.dtype in _DOMAINS
            and val.device.type == "cpu" and sum(v is value for v in carried) == 1
            and value not in additional
            and grown_lists._only_rows_written(owner, loop, slot)):
        return False
    body = getattr(owner, loop.args[1].target)
    node = [n for n in body.graph.nodes if n.op == "placeholder"][slot]
    while node.op != "output":
        (node,) = node.users
        if node.target in _ROW_PUTS:
            index, written = node.args[1][0], node.args[2]
            index_val = index.meta.get("val")
            written_val = written.meta.get("val") if isinstance(written, Node) else None
            if (node.kwargs or len(node.args) == 4 and node.args[3] is not False
                    or not isinstance(index_val, torch.Tensor) or index_val.dim() != 0
                    or index_val.dtype not in (torch.int64, torch.int32)
                    or not isinstance(written_val, torch.Tensor) or written_val.dim() != 0
                    or written_val.dtype != val.dtype):
                return False
    return True


def _scalar_val(node: Node):
    """The node's one-element tensor value (its fake tensor: 0-d, or of shape (1,), (1, 1),
    ...), in a supported dtype on the CPU."""
    value = node.meta.get("val")
    if (not isinstance(value, torch.Tensor)
            or not all(type(size) is int and size == 1 for size in value.shape)
            or value.dtype not in _DOMAINS or value.device.type != "cpu"):
        raise _NotScalar(f"{node.format_node()}: not a one-element CPU tensor of a dtype in "
                         "_DOMAINS")
    return value


def _dtype_of(arg):
    if isinstance(arg, Node):
        return _scalar_val(arg).dtype
    if isinstance(arg, (bool, int, float)):
        return None
    raise _NotScalar(f"argument {arg!r}")


def _promoted(args) -> torch.dtype:
    """The dtype torch computes `args` in (Python numbers do not promote 0-d tensors, 0-d
    tensors do not promote tensors of one or more dimensions)."""
    dummies = [torch.empty(_scalar_val(a).shape, dtype=_dtype_of(a)) if isinstance(a, Node)
               else a for a in args]
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
        self.lists: set[str] = set()  # locals holding a buffer's Python list (`_row_buffer`)

    def fresh(self) -> str:
        self.count += 1
        return f"s{self.count}_"

    def literal(self, value, domain: str, dtype=None) -> str:
        """A Python number as the compute `domain` (of `dtype`) sees it: torch converts the
        number to the compute dtype first."""
        if isinstance(value, bool) or value is None:
            value = {"int": int, "float": float, "float32": float, "bool": bool}[domain](value)
        elif isinstance(value, int) and domain == "float32":
            value = _int_f32(value)  # NOTE [int64 to float32 rounded once]
        elif isinstance(value, int) and domain == "float":
            value = float(value)
        elif isinstance(value, float) and domain not in ("float", "float32"):
            raise _NotScalar(f"float {value} in {domain} arithmetic")
        if domain == "float32":
            value = _f32(value)
        elif domain == "int" and dtype in _INT_RANGES:
            low, count = _INT_RANGES[dtype]
            if not low <= value < low + count:  # torch's cast of it is not worth following
                raise _NotScalar(f"{value} out of {dtype}'s range")
        if isinstance(value, float) and not math.isfinite(value):
            name = f"c{len(self.namespace)}_"
            self.namespace[name] = value
            return name
        return repr(value)

    def operand(self, arg, names: dict, domain: str, dtype=None) -> str:
        """`arg` converted to `domain` (torch casts operands to the compute dtype, `dtype`)."""
        if not isinstance(arg, Node):
            return self.literal(arg, domain, dtype)
        have = _DOMAINS[_scalar_val(arg).dtype]
        name = names[arg]
        if have == domain:
            if domain == "int" and _INT_RANGES[_scalar_val(arg).dtype][1] > _INT_RANGES.get(
                    dtype, (0, 2 ** 64))[1]:
                raise _NotScalar("a wider integer into a narrower one")
            return name
        if domain == "float":
            return f"float({name})"  # float32 and integers widen exactly (int64: as torch)
        if domain == "float32":
            if have == "float":
                return f"_f32({name})"
            # (NOTE [int64 to float32 rounded once]; narrower integers are doubles)
            wide = _scalar_val(arg).dtype == torch.int64
            return f"_int_f32({name})" if wide else f"_f32(float({name}))"
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

    def listed(self, value, names) -> bool:
        """Whether `value` is held as a Python list of numbers."""
        name = names.get(value) if isinstance(value, Node) else None
        return isinstance(name, str) and name in self.lists

    def output(self, value, names, indent) -> str:
        if not isinstance(value, Node):
            raise _NotScalar(f"constant output {value!r}")
        if not self.listed(value, names):
            _scalar_val(value)
        return names[value]

    def op(self, node: Node, names: dict, indent: str) -> str:
        op = node.target
        name = op.overloadpacket.__name__
        if node.args and self.listed(node.args[0], names):
            # (`_row_buffer` found only clones and row writes of it, each its only reader)
            if op in _ROW_PUTS:
                self.lines.append(f"{indent}_put_row({names[node.args[0]]}, "
                                  f"{names[node.args[1][0]]}, {names[node.args[2]]})")
            elif op is not torch.ops.aten.clone.default:
                raise _NotScalar(node.format_node())
            return names[node.args[0]]
        if op is torch.ops.aten._assert_async.msg and isinstance(node.args[0], Node) and (
                isinstance(node.args[1], str)):
            # a graph assertion (a `raise`, NOTE [carried ints past int64] in
            # runtime/arithmetic.py): torch's RuntimeError with its message
            _scalar_val(node.args[0])
            self.namespace.setdefault("RuntimeError", RuntimeError)
            self.lines.append(f"{indent}if not {names[node.args[0]]}: "
                              f"raise RuntimeError({node.args[1]!r})")
            return None
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
            operands = [self.operand(a, names, domain, result.dtype) for a in args]
            expr = template.format(*operands)
            if _by_a_literal(name, args, domain):  # NOTE [division by a literal in a trip]
                expr = f"{operands[0]} {'//' if name == 'floor_divide' else '/'} {operands[1]}"
                wraps = wraps and name == "div"
        elif name in _COMPARISONS and len(args) == 2:
            promoted = _promoted(args)
            compute = _DOMAINS.get(promoted)
            if compute is None:
                raise _NotScalar(node.format_node())
            left, right = (self.operand(a, names, compute, promoted) for a in args)
            expr, wraps = f"{left} {_COMPARISONS[name]} {right}", False
        elif name in _LOGICAL and len(args) == _LOGICAL[name].count("{"):
            expr = _LOGICAL[name].format(*(names[a] if isinstance(a, Node) else repr(a)
                                           for a in args))
            wraps = False
        elif name == "where" and len(args) == 3 and isinstance(args[0], Node):
            a, b = (self.operand(a, names, domain, result.dtype) for a in args[1:])
            expr, wraps = f"{a} if {names[args[0]]} else {b}", False
        elif name == "_to_copy" and len(args) == 1 and isinstance(args[0], Node):
            # a conversion may narrow an integer (wrapped below) or a float64 (rounded)
            source = _scalar_val(args[0]).dtype
            expr = self.operand(args[0], names, domain, source if domain == "int" else None)
            wraps = True
        else:
            raise _NotScalar(node.format_node())
        if domain == "bool" and name in _ARITHMETIC and name not in (
                "bitwise_and", "bitwise_or", "bitwise_xor"):
            raise _NotScalar(node.format_node())
        self.owned.add(target)
        if wraps and domain == "float32" and not expr.startswith("_f32("):
            expr = f"_f32({expr})"
        self.lines.append(f"{indent}{target} = {expr}")
        if wraps and domain == "int" and not _users_wrap(node, result.dtype):
            low, count = _INT_RANGES[result.dtype]
            self.lines.append(f"{indent}if not {low} <= {target} < {low + count}:")
            self.lines.append(f"{indent}    {target} = _wrap({target}, {low}, {count})")
        return target

    def cond(self, node: Node, names: dict, indent: str) -> list[str]:
        pred, true_fn, false_fn, operands = node.args
        if not isinstance(pred, Node):
            raise _NotScalar("constant predicate")
        _scalar_val(pred)
        inputs = [names[o] if isinstance(o, Node) else None for o in operands]
        if None in inputs or any(self.listed(o, names) for o in operands):
            raise _NotScalar("constant operand, or a list")
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

    def while_loop(self, node: Node, names: dict, indent: str,
                   room: tuple[str, list[str]] | None = None) -> list[str]:
        """`room`: the trips' local and the lines that grow the lists before a trip."""
        cond_fn, body_fn, carried, additional = node.args[:4]
        cond_module, body_module = names[cond_fn], names[body_fn]
        if len(node.args) > 4 or node.kwargs or not all(
                isinstance(m, GraphModule) for m in (cond_module, body_module)):
            raise _NotScalar(node.format_node())
        if room is None and any(self.listed(v, names) for v in (*carried, *additional)):
            raise _NotScalar("a list into a nested loop")
        state = [self.fresh() for _ in carried]
        for target, value in zip(state, carried):
            if not isinstance(value, Node):
                raise _NotScalar("constant carried value")
            self.lines.append(f"{indent}{target} = {names[value]}")
            if self.listed(value, names):
                self.lists.add(target)
        extra = [names[a] for a in additional]
        if room is not None and room[1]:
            self.lines.append(f"{indent}{room[0]} = 0")
        self.lines.append(f"{indent}while True:")
        inner = indent + "    "
        (pred,) = self.graph(cond_module, state + extra, inner)
        self.lines.append(f"{inner}if not {pred}:")
        self.lines.append(f"{inner}    break")
        if room is not None and room[1]:
            self.lines.extend(inner + line.format(*state) for line in room[1])
            self.lines.append(f"{inner}{room[0]} += 1")
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
        buffers = {value for slot, value in enumerate(carried)
                   if isinstance(value.meta.get("val"), torch.Tensor)
                   and value.meta["val"].dim() == 1 and _row_buffer(owner, node, slot)}
        values = [v.meta["val"] if v in buffers else _scalar_val(v) for v in inputs]
        outputs = node.meta.get("val")
        if not isinstance(outputs, (tuple, list)) or len(outputs) != len(carried) or not all(
                isinstance(o, torch.Tensor) and o.dtype == v.dtype and o.shape == v.shape
                or i in buffers and isinstance(o, torch.Tensor) and o.dtype == v.dtype
                and o.dim() == 1 for o, v, i in zip(outputs, values, carried)):
            raise _NotScalar("outputs")
        lines: list[str] = []
        emitter = _ScalarEmitter(namespace, lines)
        names = {}
        for value in dict.fromkeys(inputs):
            names[value] = emitter.fresh()
            if value in buffers:  # (a list of its own: the writes go to it in place)
                emitter.lists.add(names[value])
                lines.append(f"{indent}{names[value]} = {arg(value)}.tolist()")
            else:
                lines.append(f"{indent}{names[value]} = {arg(value)}.item()")
        # A buffer that grows as the loop runs: grown before a trip as the tensor would be.
        symbol, rows = node.meta.get(grown_lists.GROWN) or (None, {})
        if any(carried[slot] not in buffers for slot in rows):
            raise _NotScalar("a growing buffer of more than numbers")
        room = None
        if buffers:
            trips = emitter.fresh()
            room = (trips, [])
            for slot, expr in rows.items():
                need = grown_lists.rows_source(expr, symbol, f"{trips} + 1")
                zero = _ZEROS[_DOMAINS[values[slot].dtype]]
                room[1].extend([f"if len({{{slot}}}) < {need}:",
                                f"    _list_room({{{slot}}}, {need}, {zero!r})"])
        module_names = {n: getattr(owner, n.target) for n in (cond_fn, body_fn)}
        state = emitter.while_loop(node, {**names, **module_names}, indent, room)
    except _NotScalar:
        return None
    # (`scalar_tensor` makes the 0-d tensor `tensor` makes of a number, in half the time)
    namespace.update(_div=_div, _wrap=_wrap, _f32=_f32, _int_f32=_int_f32,
                     _scalar_tensor=torch.scalar_tensor,
                     _tensor=torch.tensor,
                     _full=torch.full, _is_grad_enabled=torch.is_grad_enabled,
                     _put_row=_put_row, _list_room=_list_room, _rows_exactly=_rows_exactly)
    for slot, expr in rows.items():  # the rows the graph sized it with
        count = grown_lists.rows_source(expr, symbol, room[0])
        zero = _ZEROS[_DOMAINS[values[slot].dtype]]
        lines.append(f"{indent}{state[slot]} = _rows_exactly({state[slot]}, {count}, {zero!r})")
    dtypes = {}
    for value in values:
        dtypes[value.dtype] = f"_{str(value.dtype).replace('torch.', '')}"
        namespace[dtypes[value.dtype]] = value.dtype
    result = ", ".join(f"_tensor({s}, dtype={dtypes[v.dtype]})" if i in buffers
                       else f"_scalar_tensor({s}, dtype={dtypes[v.dtype]})" if v.dim() == 0
                       else f"_full({tuple(v.shape)}, {s}, dtype={dtypes[v.dtype]})"
                       for s, v, i in zip(state, values, carried))
    lines.append(f"{indent}{target} = ({result},)")
    # Autograd must record a loop over inputs that require grad: the tensor loop does.
    floats = dict.fromkeys(arg(v) for v, val in zip(inputs, values) if val.is_floating_point())
    guard = None
    if floats:
        requires = " or ".join(f"{f}.requires_grad" for f in floats)
        guard = f"not (_is_grad_enabled() and ({requires}))"
    return guard, lines
