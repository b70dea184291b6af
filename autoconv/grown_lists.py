"""One loop for a list grown by a `while` with no bound: the python backend runs the real loop
alone, its buffers grown as it goes, and drops the loop that counted its trips.

    # the graph (NOTE [lists in while loops] in runtime/staging/torch.py)
    counted = while_loop(test, count_body, (zeros([]), x))        # the trips only
    rows = _local_scalar_dense(counted[0])
    out = while_loop(test, body, (zeros([sym_max(rows, 1)]), full([], 0), x))

    # the python backend's lines
    buffer, count, x, trips, rows = zeros([1]), 0, x, 0, 1         # sized for no trip
    while True:
        if not <test>: break
        if rows < max(trips + 1, 1): buffer = room(...); rows = len(buffer)
        trips += 1
        <body>                                                     # the appends
    buffer = rows_exactly(buffer, max(trips, 1))                  # as the graph sized it

The counting loop's count reaches nothing but the sizes of the real loop's buffers, which are
then sized for zero trips; with nothing reading it, the counting loop is dead code, which the
clean-up drops where it has no effect (`graph_passes.has_effects`). The rows a buffer needs
before a trip are those the graph would have sized it with for that many trips (the same
expression of the count): the loop with one trip more wrote the same rows in its first trips,
since both loops take the same path (NOTE [one loop for a counted list]). After the loop the
buffer has exactly the graph's rows, the rows past the appends zeros as in the graph.
"""

from __future__ import annotations

import math
import operator

import sympy
import torch
from torch.fx import GraphModule, Node
from torch.utils._sympy import functions as sympy_functions
from torch.utils._sympy.printers import PythonPrinter

from autoconv_runtime.staging.torch import COUNTED_LOOP

__all__ = ["GROWN", "grow_in_loops", "rows_source", "room", "rows_exactly"]

_WHILE_LOOP = torch.ops.higher_order.while_loop
_aten = torch.ops.aten
# meta key of a real loop whose buffers grow: (the count's symbol, {slot: rows expression})
GROWN = "autoconv_grown"
# Ops a buffer's room is made of (`lists.reserve`, `StagedList.grown`): zeros, after the rows
# the list had (a `cat` whose last part is the room).
_ROOM = (_aten.zeros.default, _aten.new_zeros.default)
# Size arithmetic on the count (its reads that make sizes)
_SIZE_OPS = (operator.add, operator.mul, operator.sub, torch.sym_max, torch.sym_min,
             operator.floordiv)
# What a rows expression may be made of, to be printed as Python (`rows_source`)
_EXPRESSIONS = (sympy.Add, sympy.Mul, sympy.Max, sympy.Min, sympy.Integer, sympy.Symbol,
                sympy_functions.Max, sympy_functions.Min)
# Writes of a row of a buffer (a list's append), the buffer their first argument
_ROW_WRITES = (_aten.index_put.default, _aten.index_put_.default)
_COUNT_READS = (_aten.view.default, _aten.reshape.default, _aten.clone.default)


def grow_in_loops(module: GraphModule) -> bool:
    """Mark each real loop of `module`'s graph whose counting loop can be left out (`GROWN`),
    and give the reads of that count that size its buffers the count of no trip. Returns
    whether the graph changed."""
    pairs: dict[int, dict[str, list[Node]]] = {}
    for node in module.graph.nodes:
        mark = node.meta.get(COUNTED_LOOP) if node.target is _WHILE_LOOP else None
        if mark is not None:
            pairs.setdefault(mark[0], {}).setdefault(mark[1], []).append(node)
    changed = False
    for pair in pairs.values():
        counting, loops = pair.get("count", []), pair.get("loop", [])
        if len(counting) == 1 and len(loops) == 1 and loops[0].op == "call_function":
            changed |= _grow(module, counting[0], loops[0])
    return changed


def _grow(module: GraphModule, counting: Node, loop: Node) -> bool:
    # (the python backend writes the growth into the loop's lines where it writes the test and
    # the body inline: `_inlined_subgraphs` there)
    if len(loop.args) != 4 or loop.kwargs or any(
            not isinstance(f, Node) or f.op != "get_attr" or len(f.users) != 1
            for f in loop.args[:2]):
        return False
    count = _count_of(counting)
    if count is None or _draws(module, counting):
        return False
    symbol = count.meta["val"].node.expr
    sizes = _sizing(count, loop)
    if sizes is None:
        return False
    carried = loop.args[2]
    rows = {}
    for slot, value in enumerate(carried):
        if value not in sizes:
            continue
        val = value.meta.get("val")
        if (sum(v is value for v in carried) != 1 or not isinstance(val, torch.Tensor)
                or val.dim() < 1 or any(isinstance(d, torch.SymInt)
                                        and symbol in d.node.expr.free_symbols
                                        for d in val.shape[1:])):
            return False
        first = val.shape[0]
        expr = first.node.expr if isinstance(first, torch.SymInt) else sympy.Integer(first)
        if not expr.free_symbols <= {symbol} or not _printable(expr):
            return False
        if not _only_rows_written(module, loop, slot):
            return False
        rows[slot] = expr
    if not rows:
        return False
    for user in list(count.users):  # every one is a size of the buffers (`_sizing`)
        user.args = torch.fx.node.map_arg(user.args, lambda n: 0 if n is count else n)
        user.kwargs = torch.fx.node.map_arg(user.kwargs, lambda n: 0 if n is count else n)
    loop.meta[GROWN] = (symbol, rows)
    return True


def _count_of(counting: Node) -> Node | None:
    """The one `_local_scalar_dense` of an output of `counting`: the trip count as a size."""
    found = []
    for item in counting.users:
        if item.target is not operator.getitem:
            return None
        pending = list(item.users)
        while pending:
            node = pending.pop()
            if node.target in _COUNT_READS and len(node.users) >= 1:
                pending.extend(node.users)
            elif node.target is _aten._local_scalar_dense.default:
                found.append(node)
            else:
                return None
    if len(found) != 1:
        return None
    (count,) = found
    val = count.meta.get("val")
    if not (isinstance(val, torch.SymInt) and isinstance(val.node.expr, sympy.Symbol)):
        return None
    return count


def _sizing(count: Node, loop: Node) -> set[Node] | None:
    """The nodes that read `count` (directly or not) where each only sizes carried values of
    `loop` (size arithmetic, zeros and the `cat` that puts a list's rows before them), or None
    where one does anything else."""
    seen, pending = set(), [count]
    while pending:
        node = pending.pop()
        for user in node.users:
            if user is loop:
                if node in loop.args[3] or not isinstance(node.meta.get("val"), torch.Tensor):
                    return None
                continue
            if user in seen:
                continue
            if not _sizes(user, node):
                return None
            seen.add(user)
            pending.append(user)
    return seen


def _sizes(user: Node, read: Node) -> bool:
    """Whether `user`, reading `read` (a size, or a tensor of room), computes a size or room."""
    if user.op != "call_function":
        return False
    if user.target in _SIZE_OPS:
        return not isinstance(user.meta.get("val"), torch.Tensor)
    if user.target in _ROOM:
        return "fill_value" not in user.kwargs
    if user.target is _aten.cat.default:
        parts = user.args[0]
        dim = user.args[1] if len(user.args) > 1 else user.kwargs.get("dim", 0)
        # (the room last: the rows the list had keep their places)
        return (dim == 0 and isinstance(parts, (list, tuple)) and len(parts) > 0
                and parts[-1] is read and sum(p is read for p in parts) == 1)
    return False


def _only_rows_written(module: GraphModule, loop: Node, slot: int) -> bool:
    """Whether `loop`'s test leaves the carried buffer at `slot` alone and its body only
    writes rows of it (appends at counts, never below 0), each write the next one's buffer and
    the last the body's result at `slot`: then its size is nobody's business."""
    test, body = (getattr(module, f.target) for f in loop.args[:2])
    test_places = [n for n in test.graph.nodes if n.op == "placeholder"]
    places = [n for n in body.graph.nodes if n.op == "placeholder"]
    if slot >= len(places) or slot >= len(test_places) or test_places[slot].users:
        return False
    outputs = body.graph.output_node().args[0]
    if not isinstance(outputs, (tuple, list)) or slot >= len(outputs):
        return False
    node = places[slot]
    while node is not outputs[slot]:
        if len(node.users) != 1:
            return False
        (user,) = node.users
        if user.target is _aten.clone.default and not user.kwargs:
            pass
        elif not (user.target in _ROW_WRITES and user.args[0] is node
                  and len(user.args[1]) == 1 and _a_count(user.args[1][0], places)
                  and node not in user.args[1] and user.args[2] is not node):
            return False
        node = user
    return sum(o is node for o in outputs) == 1 and list(node.users) == [
        body.graph.output_node()]


def _a_count(index, places) -> bool:
    """A list's count (a carried 0-d integer), plus a non-negative int: a row at or after it."""
    while isinstance(index, Node) and (
            index.target in (_aten.add.Tensor, _aten.add.Scalar) and len(index.args) == 2
            and type(index.args[1]) is int and index.args[1] >= 0 and not index.kwargs
            or index.target is _aten.clone.default and not index.kwargs):
        index = index.args[0]
    return isinstance(index, Node) and index in places


def _draws(module: GraphModule, loop: Node) -> bool:
    """Whether a body of `loop` draws random numbers (its own, not the real loop's: the
    counting loop's are zeros already, NOTE [random draws of probes]; one left is kept)."""
    pending = [getattr(module, f.target) for f in loop.args[:2]]
    while pending:
        sub = pending.pop()
        for node in sub.graph.nodes:
            if torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ()):
                return True
            if node.op == "get_attr" and isinstance(getattr(sub, node.target, None),
                                                    GraphModule):
                pending.append(getattr(sub, node.target))
    return False


def _printable(expr) -> bool:
    return all(isinstance(e, _EXPRESSIONS) for e in sympy.preorder_traversal(expr))


def rows_source(expr, symbol, trips: str) -> str:
    """Python source of `expr` (the rows of a buffer, in the count `symbol`) at `trips` (a
    Python expression of the trips, an int)."""
    name = sympy.Symbol("_trips_", integer=True, nonnegative=True)
    source = PythonPrinter().doprint(expr.subs(symbol, name))
    return f"({source.replace('_trips_', f'({trips})')})"


# The fewest bytes a buffer grows to: a list of numbers starts with 512 rows, not 1, 2, 4 ...
# (a growth is two ops, about as costly as a trip of a small loop)
_LEAST_BYTES = 4096


def room(buffer: torch.Tensor, rows: int) -> torch.Tensor:
    """`buffer` with zero rows after its own, `rows` at least and twice its own at least (so
    that a loop of n trips grows it log n times), and `_LEAST_BYTES` at least."""
    have = buffer.shape[0]
    row_bytes = buffer.element_size() * math.prod(buffer.shape[1:])
    extra = max(rows, 2 * have, _LEAST_BYTES // max(row_bytes, 1)) - have
    return torch.cat([buffer, buffer.new_zeros((extra, *buffer.shape[1:]))])


def rows_exactly(buffer: torch.Tensor, rows: int) -> torch.Tensor:
    """`buffer` with `rows` rows: its first ones (a tensor of its own, as the graph's), or with
    zero rows after its own."""
    have = buffer.shape[0]
    if have == rows:
        return buffer
    if have > rows:
        return buffer[:rows].clone()
    return torch.cat([buffer, buffer.new_zeros((rows - have, *buffer.shape[1:]))])
