"""Arithmetic and comparisons on numbers the staged statements carry go through the runtime.

    t < T       ->  ac.compare(t, '<', T)        (t carried by a statement of the function)
    h * y * t   ->  ac.binary(h * y, '*', t)
    1.0 / k     ->  ac.binary(1.0, '/', k)       (k a loop's item)
    -t          ->  ac.negative(t)              (+t, ~k: ac.positive, ac.invert)
    x + s.h     ->  ac.binary(x, '+', s.h)      (s carried, and `s.h = ...` in the function)

A Python number a staged statement carries is a 0-d tensor standing in for it; torch would
promote it as a tensor, not as the Python number (NOTE [weak numbers] in
runtime/arithmetic.py). Only expressions that may read such a number are rewritten: an
operand that is a name the function's statements carry (their state, a loop's target), a
field of a carried object that the function assigns (`s.h`: the statement carries the
object's changed numbers too), any field of an object a statement's body gives to a user's
call (`s.grow()`, `update(s)`: the call may change it), a parameter a call gives a stand-in
(in the twin converted for that call: NOTE [numbers given to a function] in runtime/calls.py),
a name assigned from such an expression, an item of one, or another rewritten expression.
Everything else is left to Python. Converted code runs only under tracers, so the calls cost
nothing on eager calls.
"""

from __future__ import annotations

import copy

import gast
import torch

from .. import templates
from ..analysis.annos import copy_origin
from ..analysis.nodes import WALKED_FIELDS, children, walk, walked_fields
from .subscripts import AUGMENTED_OPERATORS

__all__ = ["carried_arithmetic"]

_BINARY = {
    gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/", gast.FloorDiv: "//",
    gast.Mod: "%", gast.Pow: "**", gast.LShift: "<<", gast.RShift: ">>", gast.BitAnd: "&",
    gast.BitOr: "|", gast.BitXor: "^",
}
# (`~flag` of a bool is an int's inversion in Python, a logical not in torch)
_UNARY = {gast.USub: "negative", gast.UAdd: "positive", gast.Invert: "invert"}
_COMPARE = {gast.Lt: "<", gast.LtE: "<=", gast.Gt: ">", gast.GtE: ">=", gast.Eq: "==",
            gast.NotEq: "!="}


def carried_arithmetic(body: list, carried: set, indices: set, ac: str,
                       local_names: frozenset = frozenset(),
                       params: frozenset = frozenset(), objects: set = frozenset()) -> list:
    """`body` (a converted function's) with the binary operators, comparisons and negations
    that may read a Python number the function's statements carry as runtime calls.

    `carried`: the names the statements carry; `indices`: the targets of loops over a range or
    an enumerate's index, Python ints in Python. Of these, the names that may hold a number
    (`_numbers`) count, and the names assigned from arithmetic of them (`u = t * 2`).
    `params`: the parameters a call gives a number's stand-in (NOTE [numbers given to a
    function] in runtime/calls.py), which count as such names too. `objects`: names whose
    objects a user's call in a statement may change (a method of theirs, or given to it), whose
    fields count as a carried object's assigned ones (`_fields`)."""
    if carried or indices or params or objects:
        # (the common case: one walk, `_scan`'s, for the returned lists too)
        assigns, names_at, parents, defs, calls, item_reads = _scan(body)
        returned = _scanned_returned_lists(assigns, names_at, parents, ac)
    else:
        returned = _returned_lists(body, ac)
        if not returned and not _calls_builtin(body, local_names, ac) and not _binds_user_result(
                body, ac) and not _binds_number_choice(body) and not _user_result_operand(
                body, ac):
            return body
        assigns, names_at, parents, defs, calls, item_reads = _scan(body)
    results = _user_results_bound(assigns, ac)
    fields = (_fields(assigns, carried) | {f"{name}.*" for name in objects}
              | {f"{name}.{part}" for name in results for part in ("*", "()")})
    # (every name bound to a number read from a tensor, or to arithmetic of one, reads its
    # operators through the runtime: NOTE [float arithmetic of numbers read from tensors] in
    # runtime/arithmetic.py)
    read_from_tensors = _converted_names(assigns, ac) if any(
        _reads_tensor_number(call, ac) for call in calls) else set()
    read = (_read_numbers(assigns, names_at, parents, ac, local_names) | returned
            | _chosen_items(assigns, ac, read_from_tensors) | read_from_tensors | results
            | _number_choices_bound(assigns))
    lists = _carried_lists(assigns, carried, ac) | returned
    # (a carried list's items may be numbers: NOTE [items of carried lists])
    # 'm.()': a method of `m` may return a number, where a staged statement may have changed
    # its fields (`m.avg()` after `m.add(v)` in a tensor loop; not in a function without
    # staged statements, whose method calls on objects would all read through the runtime)
    methods = {f"{name.partition('.')[0]}.()" for name in fields} if carried or _stages(
        names_at, ac, parents) else set()
    fields |= methods
    numbers = _numbers(assigns, set(indices) | fields | set(params) | read | lists)
    items = _loop_items(body, ac, numbers) if lists else set()
    if items - numbers:
        numbers = _numbers(assigns, numbers | items)
    names = _assigned_from(
        assigns, numbers & (set(carried) | set(indices) | fields | set(params) | read | items),
        numbers, lists)
    given = _local_function_params(defs, calls, names) - names
    if given:
        # (NOTE [numbers given to a local function])
        params = set(params) | given
        numbers = _numbers(assigns, numbers | given)
        names = _assigned_from(
            assigns, numbers & (set(carried) | set(indices) | fields | params | read | items),
            numbers, lists)
    converted = read_from_tensors - names
    # (the arguments the two questions below stop at, from the calls `_scan` found: without
    # any, no name's parents need climbing)
    tensor_args, listed_args = _tensor_and_listed_args(calls, parents)
    conversions = _conversions(names_at, ac, parents) + _user_results(names_at, ac, parents) + [
        # `torch.tensor(p)` of a name that may be a library's grown list (`_tensor_of_name`)
        node for node in names_at if tensor_args and _tensor_of_read(node, parents, tensor_args)
        or listed_args and _in_lengths_listed(node, parents, listed_args)] + [
        node for node in names_at if node.id in converted] + [
        # `math.log(x.item())`: the number read inside a module function's call (none
        # without an `.item` in the body, which the scan found)
        node for node in names_at if item_reads and _under_item(node, parents)] + [
        # `abs(fx.item())` (NOTE [numbers read from tensors]): the number is read in the
        # builtin's call itself, bound to no name, and the statement was left as written, with
        # Python's `operator.abs` in the graph (torch.export.save failed: tester23 s06); or
        # a helper's call reads it (`abs(as_float(fx))`, tester23 s06's helper variant)
        node for node in names_at if node.id in _NUMBER_BUILTINS and node.id not in local_names
        and any(isinstance(p, gast.Call) and p.func is node and any(
            _may_read_tensor_number(a, ac) for a in p.args) for p in parents.get(id(node), ()))]
    # `torch.tensor([x[0], 2 * x[1]])`: the module's name (NOTE [torch.tensor of traced items]
    # in runtime/arithmetic.py)
    # (the name under the call's function: only an attribute's `torch` of `torch.tensor` can
    # be one, a name's function holds no name)
    conversions += [call.func.value for call in calls if call.func.__class__ is gast.Attribute
                    and call.func.value.__class__ is gast.Name and _tensor_of_items(call)]
    # (`2 ** (1 if c else -1)`, inline: NOTE [numbers a conditional expression chooses])
    conversions += [node for node in names_at if node.id == ac and any(
        _chooses_number(call) for attribute in parents.get(id(node), ())
        for call in parents.get(id(attribute), ()))]
    if not names and not conversions and not lists:
        return body
    rewrite = _Rewrite(names, ac, set(local_names) | set(carried) | set(indices),
                       _reading(names_at, names | lists, parents, conversions), lists,
                       converted, results)
    return [rewrite.visit(stmt) if id(stmt) in rewrite.reading else stmt for stmt in body]


# NOTE [numbers read from tensors]
# `s = x.sum().item()` (or `float(t)`, `int(t)`) of a traced tensor is a symbolic number, and
# `abs(s)` / `round(s)` of it is recorded as Python's `operator.abs` of the symbol, which a
# saved torch.export program cannot hold (torch.export.save: "Failed serializing node abs_1").
# `number_call` stages those builtins as tensor ops (NOTE [functions of numbers] in
# runtime/arithmetic.py), and a function that calls one counts such names as numbers, as it
# counts the ones its statements carry, so the arithmetic reading the result goes through the
# runtime too (`x * abs(s)` keeps `x`'s float32). Since session 25 every operator reading such a
# name (or a `t.item()` written inline) goes through the runtime, builtin or not: torch's
# symbolic shapes simplified float arithmetic of the symbols as real algebra (NOTE [float
# arithmetic of numbers read from tensors] in runtime/arithmetic.py).

def _calls_builtin(body: list, local_names, ac: str = "ac") -> bool:
    """Whether `body` calls a builtin of numbers (`abs`, `round`, ...) not shadowed, or reads
    a number from a tensor (`ac.int_(t)`, `t.item()`: NOTE [a number read from a tensor as
    an argument]), or makes a tensor of items that may be traced (`_tensor_of_items`)."""
    return any(isinstance(node, gast.Call) and (
        isinstance(node.func, gast.Name) and node.func.id in _NUMBER_BUILTINS
        and node.func.id not in local_names or _reads_tensor_number(node, ac)
        or _given_user_result(node, ac) or _tensor_of_items(node))
        for node in walk(body))


# NOTE [a number read from a tensor as an argument]
# `k = int(x.argmax()); torch.tensor(k)` (tester21b s23): `k` is a symbolic int, which
# torch.tensor asks for its value under make_fx (autoconv's own trace refused it, where
# torch.export and dynamo take it). A module's function given a name bound to such a number is
# written `ac.number_call(fn, ...)`, as for `torch.tensor(int(t))` itself (`_conversions`),
# which makes the number its 0-d tensor for torch.tensor and hands it over as it is elsewhere.

def _converted_names(assigns, ac: str) -> set:
    """The names bound to a number read from a tensor (`k = int(t)`, `s = t.item()`), and to
    an operator or a call reading one (`r = 1e-3 / max(e, 1e-12)`: NOTE [math functions of
    numbers read from tensors]).

    Empty where no call of the body is such a read (`_reads_tensor_number`): every name found
    starts from one, so the caller asks `_scan`'s calls first (most converted functions read
    no number from a tensor, and the walks of every assigned value were a twentieth of a
    conversion)."""
    found = {name for node in assigns for name, value in _bound(node)
             if _reads_tensor_number(value, ac)}
    # `d = {"a": x[0].item(), ...}`: a literal holding such numbers, whose items (`d[k]`,
    # `v = d["a"]`) are numbers read from a tensor too (tester24 s07: `torch.tensor(d[k])`
    # asked the symbolic float for its value)
    containers = {name for node in assigns for name, value in _bound(node)
                  if isinstance(value, (gast.Dict, gast.List, gast.Tuple)) and any(
                      v is not None and _reads_tensor_number(v, ac)
                      for v in (value.values if isinstance(value, gast.Dict) else value.elts))}
    found |= containers
    # (each value walked once, for the names it reads and whether it reads a number from a
    # tensor itself: the fixed point below then asks sets, where it walked every value again
    # on every round)
    candidates = []
    for node in assigns:
        for name, value in _bound(node):
            if isinstance(value, (gast.BinOp, gast.UnaryOp, gast.Call)):
                candidates.append((name, *_names_read(value, ac)))
            elif (isinstance(value, gast.Subscript) and isinstance(value.value, gast.Name)
                    and value.value.id in containers):
                candidates.append((name, (), True))
    changed = True
    while changed:
        changed = False
        for name, reads, direct in candidates:
            if name not in found and (direct or not found.isdisjoint(reads)):
                found.add(name)
                changed = True
    return found


def _names_read(value, ac: str) -> tuple:
    """(the names `value` reads, whether it reads a number from a tensor itself: `t.item()`,
    `ac.float_(t)`, `ac.int_(t)`), not inside a lambda: `_reads_converted(value, found)` is
    `direct or found & names`."""
    names = set()
    stack = [value]
    pop, push, extend, walked = stack.pop, stack.append, stack.extend, _WALKED
    while stack:
        node = pop()
        cls = node.__class__
        if cls is gast.Name:
            names.add(node.id)
            continue
        if cls is gast.Lambda:
            continue
        if cls is gast.Call and _reads_tensor_number(node, ac):
            return names, True
        # (children through the node's __dict__, contexts and operators left out: ast's
        # iter_child_nodes is a generator per node)
        attrs = node.__dict__
        for field in WALKED_FIELDS.get(cls) or walked_fields(cls):
            child = attrs.get(field)
            kind = child.__class__
            if kind is list:
                extend([item for item in child if isinstance(item, gast.AST)])
                continue
            inner = walked.get(kind)
            if inner is None:
                inner = _walked(kind)
            if inner:
                push(child)
    return names, False


# NOTE [a count of conditions on a number]
# `n = sum(1 for m in milestones if k >= m)` of a number `k` a staged loop counted (tester23
# s11, a MultiStepLR-style schedule): the generator's `if` asks the comparison, a 0-d bool
# tensor, for its truth. Where the item is an int constant, the condition is a factor of it
# instead (`(k >= m) * 1`: Python's own int for a true one, 0 for a false one, which adds
# nothing to an int sum); any other item (`sum(w for w in ws if w > t)`, a float whose sum of
# none is the int 0) is refused at the line with what to write.

# NOTE [math functions of numbers read from tensors]
# `math.exp(-e)`, `math.sqrt(1e-3 / max(e, 1e-12))` of `e = x[i].item()` (tester23 s05): a
# module's function given an expression that reads such a number, or a name bound to one, is
# `ac.number_call`, which computes `math`'s functions of symbolic numbers by Python's `math`
# in the graph (NOTE [math functions of graph numbers] in runtime/libm.py). Only the function
# given the number directly was (`math.log(e)`), and `math.exp(-e)` asked the symbolic float
# for its value.

def _under_item(node, parents) -> bool:
    """Whether the name `node` is the root of a receiver of `.item()` (`x.item()`,
    `x.sum().item()`, `x[i].item()`)."""
    for _ in range(8):
        above = parents.get(id(node), ())
        if not above:
            return False
        node = above[0]
        if isinstance(node, gast.Attribute) and node.attr == "item":
            return True
        if not isinstance(node, (gast.Attribute, gast.Call, gast.Subscript)):
            return False
    return False


def _reads_converted(value, converted, ac: str) -> bool:
    """Whether `value` reads a number read from a tensor: a name in `converted`, `t.item()`,
    `ac.float_(t)`, `ac.int_(t)` (not inside a lambda, which runs elsewhere)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, gast.Name):
            if node.id in converted:
                return True
            continue
        if isinstance(node, gast.Lambda):
            continue
        if isinstance(node, gast.Call) and _reads_tensor_number(node, ac):
            return True
        stack.extend(children(node))
    return False


def _read_numbers(assigns, names_at, parents, ac: str, local_names) -> set:
    """The names bound to a number read from a tensor (`.item()`, `ac.float_`, `ac.int_`),
    where the body calls a builtin of numbers (NOTE [numbers read from tensors]) or stages a
    `try` (`_is_try_value`)."""
    if not any(node.id in _NUMBER_BUILTINS and node.id not in local_names and any(
            isinstance(p, gast.Call) and p.func is node for p in parents.get(id(node), ()))
            or node.id == ac and _is_try_value(parents.get(id(node), ()))
            for node in names_at):
        return set()
    read = set()
    for node in assigns:
        for name, value in _bound(node):
            if _may_read_tensor_number(value, ac) or (
                    # `r = round(float(v), 1)`, `q, r = divmod(int(v), 3)`: staged as a
                    # number's stand-in (NOTE [functions of numbers] in runtime/arithmetic.py),
                    # which `x * r` must read as the number (it was float64 for a float32 `x`)
                    isinstance(value, gast.Call) and isinstance(value.func, gast.Name)
                    and value.func.id in _NUMBER_BUILTINS and value.func.id not in local_names
                    and any(_may_read_tensor_number(arg, ac) for arg in value.args)):
                read.add(name)
    return read


def _chosen_items(assigns, ac: str, converted: set) -> set:
    """The names bound to an item of a sequence chosen by a number read from a tensor
    (`w = W[int(x.argmax())]`): of a Python list of numbers, the item is the stand-in of the
    number chosen (`_sequence_item` in runtime/subscripts.py), which `torch.tensor(w)` and
    `w + 0.5` must read as that number (tester23 s08: float64 where Python gives float32)."""
    return {name for node in assigns for name, value in _bound(node)
            if _is_getitem(value) and _chosen_by_tensor(value.args[1], ac, converted)}


def _chosen_by_tensor(key, ac: str, converted) -> bool:
    """Whether `key`, an index, is a number read from a tensor (`int(t)`, or a name bound to
    one: `k = int(x.argmax())`, then `[1, 0.5, 2][k]`)."""
    return _reads_tensor_number(key, ac) or isinstance(key, gast.Name) and key.id in converted


def _is_try_value(parents) -> bool:
    """Whether a parent of the `ac` name is `ac.try_value`: a staged `try` (NOTE [a try
    around a value the graph checks] in runtime/fallible.py), whose division of `n = int(v)`
    must go through `ac.binary` for its check to be the try's failure (tester21b s20: the
    symbolic int's own division raised out of the graph)."""
    return any(isinstance(p, gast.Attribute) and p.attr == "try_value" for p in parents)


def _reads_tensor_number(value, ac: str) -> bool:
    """Whether `value` is `t.item()`, `ac.float_(t)` or `ac.int_(t)`, or arithmetic of one
    (`float(v) / 7`)."""
    if isinstance(value, gast.BinOp):
        return _reads_tensor_number(value.left, ac) or _reads_tensor_number(value.right, ac)
    if isinstance(value, gast.UnaryOp):
        return _reads_tensor_number(value.operand, ac)
    func = value.func if isinstance(value, gast.Call) else None
    return isinstance(func, gast.Attribute) and (func.attr == "item" and not value.args or (
        func.attr in _CONVERSIONS and isinstance(func.value, gast.Name)
        and func.value.id == ac) or _is_count(value, ac))


def _is_count(value, ac: str) -> bool:
    """Whether `value` is `ac.sum_(ac.counted_(c, 1) for ...)`, the count the calls pass
    writes for `sum(1 for v in x if c)`: an int's stand-in where `c` is traced (NOTE
    [comprehensions filtered by traced tensors] in runtime/builtins.py)."""
    func, args = value.func, value.args
    if not (func.attr == "sum_" and isinstance(func.value, gast.Name) and func.value.id == ac
            and len(args) == 1 and isinstance(args[0], gast.GeneratorExp)):
        return False
    elt = args[0].elt
    return (isinstance(elt, gast.Call) and isinstance(elt.func, gast.Attribute)
            and elt.func.attr == "counted_")


def _may_read_tensor_number(value, ac: str) -> bool:
    """`_reads_tensor_number`, or a user call's result (or arithmetic of one), which may be a
    number the helper read from a tensor (`def as_float(v): return v.item()`): NOTE [numbers
    read from tensors]."""
    if isinstance(value, gast.BinOp):
        return _may_read_tensor_number(value.left, ac) or _may_read_tensor_number(value.right, ac)
    if isinstance(value, gast.UnaryOp):
        return _may_read_tensor_number(value.operand, ac)
    return _reads_tensor_number(value, ac) or _is_user_call(value, ac)


# NOTE [a user's function's result given to a module's function]
# `torch.tensor(safe_ratio(x.sum(), y.sum()))` (tester22 s10): the helper's value is a Python
# float, a number's stand-in where a staged statement of the helper chose it (`if failed:`
# of its staged `try`, `r = 1.5 if ... else 2.5`), which torch.tensor kept as float64 where
# Python's float makes float32. Such a call given straight to a module's function goes
# through `ac.number_call`, which reads a stand-in as the number (and calls the function as
# it is otherwise).

def _given_user_result(call, ac: str) -> bool:
    """Whether `call` calls a module's function (`torch.tensor(...)`) with a user call's
    result (`ac.converted_call(f, x)`) as an argument: NOTE [a user's function's result given
    to a module's function]."""
    root = call.func
    while isinstance(root, gast.Attribute):
        root = root.value
    if root is call.func or not isinstance(root, gast.Name) or root.id == ac:
        return False
    return any(_is_user_call(arg, ac) for arg in [*call.args, *(k.value for k in call.keywords)])


# NOTE [a user's function's result]
# A converted helper returns what its staged statements left: a float its loop carried
# (`s = acc(x)`, tester21b s07 / tester25 s02(c)) or an object whose fields its loop changed
# (`m = run_epoch(x, Meter())`, tester25 s02(a)) is a 0-d float64 stand-in in the caller,
# whose own statements carry nothing, so `x.sum() * s` and `torch.tensor(m.s)` were left to
# torch's promotion: float64 where Python's float keeps float32. A name bound to a user's
# call's result counts as a name that may hold a number (and its fields and methods' results as
# a changed object's: 'm.*', 'm.()'), so the arithmetic and the module calls reading it go
# through the runtime, which decides by the value's own stand-in mark (a tensor or an
# object read there costs a few checks while tracing, nothing on an eager call). So does a
# user's call written inline with a number (`np.int64(3) * count(x)`, `count(x) * 0.5`:
# `_user_result_with_a_number`); with a tensor or another call it stays Python's operator.

def _binds_user_result(body: list, ac: str) -> bool:
    """Whether `body` binds a name to a user call's result (NOTE [a user's function's
    result])."""
    return any(isinstance(node, gast.Assign) and (
        _is_user_call(node.value, ac) or _is_numbers_function_call(node.value, ac) or isinstance(
        node.value, (gast.Dict, gast.List, gast.Tuple)) and any(
            v is not None and _is_user_call(v, ac) for v in (
                node.value.values if isinstance(node.value, gast.Dict) else node.value.elts)))
               for node in walk(body))


def _user_result_operand(body: list, ac: str) -> bool:
    """Whether `body` has `_user_result_with_a_number` arithmetic."""
    return any(isinstance(node, gast.BinOp) and _user_result_with_a_number(node, ac)
               for node in walk(body))


def _user_result_with_a_number(node, ac: str) -> bool:
    """Whether the BinOp `node` is a user call's result and a number written inline
    (`np.int64(3) * count(x)`, `count(x) * 0.5`): read through the runtime as a name bound to
    the result would be (NOTE [a user's function's result]; break43b s05). (With a tensor or
    another call it is left to Python: `helper(x) + torch.sin(x)`.)"""
    for call, other in ((node.left, node.right), (node.right, node.left)):
        if _is_user_call(call, ac) and (
                isinstance(other, gast.Constant) and type(other.value) in (int, float)
                or isinstance(other, gast.Call) and _module_number_call(other.func)):
            return True
    return False


# NOTE [numbers a conditional expression chooses]
# `direction = 1 if threshold < -delta else -1` (pyro's step-size search) under a tensor test
# is staged (`ac.if_exp`) and its value is a 0-d int64 tensor standing in for the int. No
# statement carries the name, so its arithmetic was left to torch: `2 ** direction` of -1
# gave torch's integer power 0 where Python's is 0.5, silently, in every mode (tester42 s02),
# and `direction * 0.1` a float32 where Python's is a float. A name bound to a conditional
# expression (or an `and` / `or`) with a number on a side is such a number's name, read
# through the runtime as a carried one is, and such an expression written as an operand
# (`2 ** (1 if c else -1)`) is read so too; where the test is Python's, the runtime's
# arithmetic of Python numbers is Python's own.
def _binds_number_choice(body: list) -> bool:
    """Whether `body` has a conditional expression choosing a number, bound to a name or not
    (NOTE [numbers a conditional expression chooses])."""
    return any(_chooses_number(node) for node in walk(body))


def _number_choices_bound(assigns) -> set:
    """The names bound to a conditional expression choosing a number (NOTE [numbers a
    conditional expression chooses])."""
    return {name for node in assigns for name, value in _bound(node) if _chooses_number(value)}


def _chooses_number(node) -> bool:
    return any(_is_number(side, frozenset()) for side in _if_exp_sides(node))


def _user_results_bound(assigns, ac: str) -> set:
    """The names bound to a user call's result, `s = ac.converted_call(acc, x)`, or to one
    with a number written inline (NOTE [a user's function's result])."""
    return {name for node in assigns for name, value in _bound(node)
            if _is_user_call(value, ac) or _is_numbers_function_call(value, ac)
            # (`k = np.int64(3) * count(x)`, then `k / 2`: break45c s04)
            or isinstance(value, gast.BinOp) and _user_result_with_a_number(value, ac)
            or isinstance(value, (gast.Dict, gast.List, gast.Tuple))
            # (`hist = {"best": best_of(losses)}`: its items are such results)
            and any(v is not None and _is_user_call(v, ac) for v in (
                value.values if isinstance(value, gast.Dict) else value.elts))}


def _is_numbers_function_call(node, ac: str) -> bool:
    """Whether `node` is a `math` / numpy function of numbers given a user call's result
    (`a = np.exp(_count(x))`): a graph number where the callee returns one, whose `round(a,
    2)` asked the stand-in for `__round__` (break43b s08)."""
    return (isinstance(node, gast.Call) and _module_number_call(node.func)
            and any(_is_user_call(n, ac) for n in walk(node.args)))


def _is_user_call(node, ac: str) -> bool:
    func = node.func if isinstance(node, gast.Call) else None
    return (isinstance(func, gast.Attribute) and func.attr in _USER_CALLS
            and isinstance(func.value, gast.Name) and func.value.id == ac)


def _user_results(names_at: list, ac: str, parents: dict) -> list:
    """The `ac` names of the user calls given straight to a module's function
    (`_given_user_result`), or written as an operand of arithmetic, as `_reading` seeds."""
    found = []
    for node in names_at:
        if node.id != ac:
            continue
        for attribute in parents.get(id(node), ()):
            for call in parents.get(id(attribute), ()):
                if _is_user_call(call, ac) and any(
                        isinstance(outer, gast.Call) and _given_user_result(outer, ac)
                        # (an operand with a number written inline: NOTE [a user's
                        # function's result]; break43b s05's `np.int64(3) * f(x)`)
                        or isinstance(outer, gast.BinOp) and _user_result_with_a_number(
                            outer, ac)
                        for outer in parents.get(id(call), ())):
                    found.append(node)
    return found


# NOTE [items of carried lists]
# A list a staged statement grows (`lrs.append(lr)` in a tensor loop) or binds in its branches
# is a StagedList after it, whose items, sum, min and max are number stand-ins where the list
# holds Python numbers (runtime/lists.py `as_read`, runtime/builtins.py `sum_`). Read as
# plain operands they met torch's promotion as float64 0-d tensors: `torch.tensor(sum(vals))`,
# `torch.tensor(lrs[-1])` and `torch.arange(3) * lrs[-1]` were float64 where Python's float
# makes float32 (tester21b s01, s06, s24). So a carried list's name counts as a name that may
# hold a number: `lrs[-1]`, `sum(lrs)`, `min(lrs)` read one, and so does a name assigned from
# them. The same for the result of a call of the user's function given a number (`avg(total,
# n)`, `meter.avg()` of an object with carried fields: NOTE [numbers given to a function] in
# runtime/calls.py makes it a stand-in; tester21b s07). Where the value is a tensor after all,
# the runtime's operators are torch's.


_STATEMENTS = frozenset({"for_stmt", "while_stmt", "if_stmt"})


def _stages(names_at: list, ac: str, parents: dict) -> bool:
    """Whether the body calls a staged statement's operator (`ac.for_stmt`, ...)."""
    return any(node.id == ac and any(
        isinstance(parent, gast.Attribute) and parent.attr in _STATEMENTS
        for parent in parents.get(id(node), ())) for node in names_at)


def _loop_items(body: list, ac: str, numbers: set) -> set:
    """The item names of the staged `for`s over an iterable that reads a name in `numbers`
    (`for lr in lrs:` of a carried list, as `ac.for_stmt(lrs, None, loop_body, ...)` with
    `def loop_body(lr, ...)`): its items may be numbers (NOTE [items of carried lists])."""
    bodies, loops = {}, []
    for stmt in body:
        for node in gast.walk(stmt):
            if isinstance(node, gast.FunctionDef) and node.args.args:
                bodies[node.name] = node.args.args[0].id
            elif (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
                  and node.func.attr == "for_stmt" and isinstance(node.func.value, gast.Name)
                  and node.func.value.id == ac and len(node.args) > 2
                  and isinstance(node.args[2], gast.Name)):
                loops.append(node)
    return {bodies[loop.args[2].id] for loop in loops if loop.args[2].id in bodies and any(
        n.__class__ is gast.Name and n.id in numbers for n in walk(loop.args[0]))}


# NOTE [lists a user's function returns]
# A list of numbers a staged loop grew in a helper and returned (`vals = grow(x)`, then
# `torch.tensor(sum(vals))`, `vals[0]`) is a StagedList of number stand-ins in the caller too,
# which read as plain operands met torch's promotion as float64 (tester22 s08). Which call
# returns one is not known before it runs, so a name bound to a user's call counts as a
# carried list where the function reads it as a list of numbers: gives it to `sum`, `min`,
# `max` or `len`. (Counting every call's result routed the arithmetic on any helper's tensor
# through the runtime.) Where the value is a tensor after all, the runtime's operators are
# torch's.

_LIST_READS = frozenset({"sum_", "max_", "min_", "len_"})


def _returned_lists(body: list, ac: str) -> set:
    """The names bound to a user's call (`ac.converted_call`) that the body gives to
    `ac.sum_`, `ac.max_`, `ac.min_` or `ac.len_` (NOTE [lists a user's function returns])."""
    bound, read = set(), set()
    # (`walk`, not one `gast.walk` per statement: its generator per node made this scan, run
    # on every converted function, a tenth of a conversion)
    for node in walk(body):
        cls = node.__class__
        if cls is gast.Assign:
            if node.value.__class__ is gast.Call and _called(node.value) in _USER_CALLS:
                bound.update(t.id for t in node.targets if t.__class__ is gast.Name)
        elif (cls is gast.Call and node.func.__class__ is gast.Attribute
              and node.func.attr in _LIST_READS and node.func.value.__class__ is gast.Name
              and node.func.value.id == ac and node.args):
            read |= _listed(node.args[0])
        elif cls is gast.Subscript and node.value.__class__ is gast.Name and (
                node.ctx.__class__ is gast.Load):
            # (`torch.tensor(v[0])`: an item read by index, float64 where Python's float
            # gives float32, where no `sum` / `len` read it too)
            read.add(node.value.id)
    return bound & read


def _scanned_returned_lists(assigns, names_at, parents, ac: str) -> set:
    """`_returned_lists` from `_scan`'s assignments, names and parents."""
    bound = {t.id for node in assigns if node.value.__class__ is gast.Call
             and _called(node.value) in _USER_CALLS
             for t in node.targets if t.__class__ is gast.Name}
    if not bound:
        return set()
    read = set()
    for node in names_at:
        if node.id in bound and any(
                p.__class__ is gast.Subscript and p.value is node
                and p.ctx.__class__ is gast.Load for p in parents.get(id(node), ())):
            read.add(node.id)  # (an item read by index: `_returned_lists`)
            continue
        if node.id != ac:
            continue
        for attribute in parents.get(id(node), ()):
            if attribute.__class__ is gast.Attribute and attribute.attr in _LIST_READS:
                for call in parents.get(id(attribute), ()):
                    if call.__class__ is gast.Call and call.func is attribute and call.args:
                        read |= _listed(call.args[0])
    return bound & read


# NOTE [numbers given to a local function]
# A function defined in the converted one (a nested `def`, a `lambda` bound to a name) is
# converted with it and called directly, not through `ac.converted_call`, so the twin that counts
# a module-level function's parameters as numbers (NOTE [numbers given to a function] in
# runtime/calls.py) never ran for it: `g = lambda a, b: a * b; g(x.sum(), s)` with `s` a float a
# staged loop carries met the float32 sum as a 0-d float64 and gave float64 (tester24 s13).
# Here a parameter of such a function that a call gives a number counts as a name that may hold
# one, so its arithmetic goes through the runtime in its body too.

def _local_function_params(defs: list, calls: list, names: set) -> set:
    """The parameters of the functions a body defines (`def g(a, b)`, `g = lambda a, b: ...`)
    that a call of them by name gives an argument reading a name in `names`. `defs`, `calls`:
    the body's defs and assignments of a lambda, and its calls, in `_scan`'s order."""
    defined = {}
    for node in defs:
        if node.__class__ is gast.FunctionDef:
            defined[node.name] = node.args
        elif len(node.targets) == 1 and node.targets[0].__class__ is gast.Name:
            defined[node.targets[0].id] = node.value.args
    calls = [call for call in calls if call.func.__class__ is gast.Name]
    given = set()
    for args in defined.values():
        # `def f(y, k=s)`: a default reading a number is the number wherever a call leaves the
        # parameter out (tester25's flows: `y * k` was float64)
        positional = [a for a in args.posonlyargs + args.args if a.__class__ is gast.Name]
        for param, default in zip(positional[len(positional) - len(args.defaults):],
                                  args.defaults):
            if _reads_number(default, names):
                given.add(param.id)
        for param, default in zip(args.kwonlyargs, args.kw_defaults):
            if default is not None and param.__class__ is gast.Name and _reads_number(
                    default, names):
                given.add(param.id)
    for call in calls:
        args = defined.get(call.func.id)
        if args is None:
            continue
        positional = [a.id for a in args.posonlyargs + args.args if a.__class__ is gast.Name]
        for i, value in enumerate(call.args):
            if i < len(positional) and value.__class__ is not gast.Starred and _reads_number(
                    value, names):
                given.add(positional[i])
            elif (i >= len(positional) or value.__class__ is gast.Starred) and (
                    args.vararg is not None and args.vararg.__class__ is gast.Name
                    and _reads_number(value, names)):
                # `f(Box(s), y)` of `def f(*a)`: an item of `a` may be the number, or an object
                # holding it (README known shapes: `a[0].v * a[1]` was float64)
                given.add(args.vararg.id)
        for keyword in call.keywords:
            if keyword.arg is not None and _reads_number(keyword.value, names):
                given.add(keyword.arg)
            elif (keyword.arg is None or keyword.arg not in positional) and (
                    args.kwarg is not None and args.kwarg.__class__ is gast.Name
                    and _reads_number(keyword.value, names)):
                given.add(args.kwarg.id)
    return given


def _list_of(node, lists) -> bool:
    """Whether `node` is a list in `lists`, a copy of one, or a concatenation or repetition
    of one (`sum(vals + [2.0])` was float64 where `allv = vals + [2.0]; sum(allv)` was
    float32, tester22 s03)."""
    return bool(_listed(node) & lists)


def _listed(node) -> set:
    """The names `node` is a list of: itself (a name), the operands of `+` / `*`, the
    receiver of `.copy()`."""
    if isinstance(node, gast.Name):
        return {node.id}
    if isinstance(node, gast.BinOp) and isinstance(node.op, (gast.Add, gast.Mult)):
        return _listed(node.left) | _listed(node.right)
    if (isinstance(node, gast.Call) and _called(node) == "binary" and len(node.args) == 3
            and isinstance(node.args[1], gast.Constant) and node.args[1].value in ("+", "*")):
        # (as this pass rewrote `vals + [2.0]`, the operands visited first)
        return _listed(node.args[0]) | _listed(node.args[2])
    if (isinstance(node, gast.Call) and _called(node) == "converted_method_call"
            and len(node.args) == 2 and isinstance(node.args[1], gast.Constant)
            and node.args[1].value == "copy"):  # (`sum(vals.copy())`)
        return _listed(node.args[0])
    return set()


def _carried_lists(assigns, carried, ac: str) -> set:
    """The carried names bound to a list (`lrs = []`, `lrs = ac.list_append(lrs, v)`): a
    statement may grow it into a StagedList, which a torch function's call gets through
    `number_call` (`torch.tensor(lrs)` of carried floats: tester21 s09)."""
    lists = set()
    for node in assigns:
        for name, value in _bound(node):
            if name not in carried:
                continue
            func = value.func if isinstance(value, gast.Call) else None
            if isinstance(value, (gast.List, gast.ListComp)) or (
                    isinstance(func, gast.Attribute) and isinstance(func.value, gast.Name)
                    and func.value.id == ac and func.attr in ("list_append", "list_extend")):
                lists.add(name)
            elif (isinstance(func, gast.Attribute) and isinstance(func.value, gast.Name)
                    and func.value.id == ac and func.attr == "held_list_append"):
                # `m["loss"].append(v)`: the dict's lists are grown as a local's is, and
                # `torch.tensor(m["loss"])` needs `number_call` as `torch.tensor(vals)` does
                # (it was refused as a len() of the list: tester23 s04)
                lists.add(f"{name}[]")
    return lists


def _fields(assigns, carried) -> set:
    """'s.h' for each attribute of a carried name `s` that an assignment sets (`s.h = s.h * 2`
    in a staged body): the statement carries the object's number fields as stand-ins too, and
    `x + s.h` read as torch's 0-d float64 made a float32 `x` float64 where Python's float
    keeps it float32 (tester t15 repros 2, 3). Attributes read only are the object's own
    Python values, left to Python. (A dot never is in a name: the set is shared with names.)"""
    fields = set()
    for node in assigns:
        for target in node.targets:
            for t in (target.elts if isinstance(target, gast.Tuple) else (target,)):
                # `s = P(s.lr * 0.5, s.n + 1)` (or `dataclasses.replace(s, ...)`) of a carried
                # name: a new object whose number fields the statement carries as stand-ins, as
                # if each were set (`torch.tensor(s.lr)` was float64: tester24 s01, s02)
                if (isinstance(t, gast.Name) and t.id in carried
                        and isinstance(node.value, gast.Call)):
                    fields.add(f"{t.id}.*")
                field = _field(t)
                # (a field's field too, `s.inner.h = s.inner.h * 2`: carried as `s.h` is)
                if field is not None and field.partition(".")[0] in carried:
                    fields.add(field)
                # `m["best"] = float(v)` of a carried dict or list: its items are carried as
                # stand-ins as a field's are ('m[]'), and `torch.tensor(m["best"])` read the
                # float64 stand-in as a tensor where Python's float gives float32 (tester23 s03)
                if (isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name)
                        and t.value.id in carried):
                    fields.add(f"{t.value.id}[]")
    return fields


def _field(node) -> str | None:
    """'s.h' of the expression `s.h`, 's.inner.h' of `s.inner.h`, else None."""
    parts = []
    while isinstance(node, gast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not parts or not isinstance(node, gast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


# A tensor's own attributes (`x.shape`, `x.T`, `x.dtype`): not a field a call may change
_TENSOR_ATTRIBUTES = frozenset(dir(torch.Tensor))


def _field_in(node, names) -> bool:
    """Whether the attribute `node` is a field in `names`: 's.h' itself, or any field of an
    object a call may change ('s.*', `carried_arithmetic`'s `objects`) but a tensor's own
    attributes."""
    field = _field(node)
    if field is None:
        return False
    # (a field of a field, `s.inner.h`, of an object given to the call: the call looks two
    # levels down its fields for a number, `_fields_hold_number` in runtime/calls.py)
    return field in names or (f"{field.partition('.')[0]}.*" in names
                              and node.attr not in _TENSOR_ATTRIBUTES)


def _scan(body: list):
    """(the assignments, the `Name` nodes, the parents of each node by id(), the defs and
    assignments of a lambda, the calls, whether an attribute `.item` is read) of `body`, in
    one walk, which every question of this pass reads instead of walking the body again (the
    assignments in the walk's order: the fixed points below do not depend on it; the defs and
    calls in `analysis.nodes.walk`'s).
    A node found under two parents (a subtree a converter placed twice) has both. Contexts and
    operators (nodes without fields) are not entered: no name is under them, and they were a
    third of the walk."""
    assigns, names, parents, defs, calls = [], [], {}, [], []
    item_reads = False
    stack = list(body)
    pop, push = stack.pop, stack.append
    walked = _WALKED
    while stack:
        node = pop()
        cls = node.__class__
        if cls is gast.Name:
            names.append(node)
            continue
        if cls is gast.Call:
            calls.append(node)
            if node.func.__class__ is gast.Attribute and node.func.attr == "list_comprehension" \
                    and len(node.args) == 2 and node.args[1].__class__ is gast.Lambda:
                # `ac.list_comprehension(ks, lambda k: ...)` binds `k` as the comprehension it
                # stands for does (NOTE [a comprehension over a grown list] in
                # runtime/operators.py): an item of `ks`, as below
                assigns.append(gast.Assign(targets=[gast.Name(
                    id=node.args[1].args.args[0].id, ctx=gast.Store(), annotation=None,
                    type_comment=None)], value=gast.Subscript(
                        value=node.args[0], slice=gast.Constant(value=0, kind=None),
                        ctx=gast.Load()), type_comment=None))
        elif cls is gast.Assign:
            assigns.append(node)
            if node.value.__class__ is gast.Lambda:
                defs.append(node)
        elif cls is gast.FunctionDef:
            defs.append(node)
        elif cls is gast.Attribute:
            if node.attr == "item":
                item_reads = True
        elif cls is gast.comprehension:
            # `for k, v in m.items()` of a comprehension binds an item of its iterable (NOTE
            # [values leaving a container]): an assignment of `m.items()[0]` to the fixed
            # points below, which read it as the iterable's item
            assigns.append(gast.Assign(targets=[node.target], value=gast.Subscript(
                value=node.iter, slice=gast.Constant(value=0, kind=None), ctx=gast.Load()),
                type_comment=None))
        attrs = node.__dict__
        for field in WALKED_FIELDS.get(cls) or walked_fields(cls):
            value = attrs.get(field)
            kind = value.__class__
            if kind is list:
                for item in value:
                    inner = walked.get(item.__class__)
                    if inner is None:
                        inner = _walked(item.__class__)
                    if inner:
                        found = parents.get(id(item))
                        if found is None:
                            parents[id(item)] = [node]
                        else:
                            found.append(node)
                        push(item)
                continue
            inner = walked.get(kind)
            if inner is None:
                inner = _walked(kind)
            if inner:
                found = parents.get(id(value))
                if found is None:
                    parents[id(value)] = [node]
                else:
                    found.append(node)
                push(value)
    return assigns, names, parents, defs, calls, item_reads


# class -> whether `_scan` enters its instances: nodes with fields (not None, str, numbers,
# contexts or operators)
_WALKED: dict = {}


def _walked(cls) -> bool:
    inner = _WALKED[cls] = bool(getattr(cls, "_fields", None))
    return inner


# `float(t)` / `int(t)` of a traced tensor as converted code writes them, and an argument of
# math's float functions (NOTE [math functions of traced tensors] in runtime/builtins.py): a
# number's stand-in
_CONVERSIONS = frozenset({"float_", "int_", "math_argument"})


def _conversions(names_at: list, ac: str, parents: dict) -> list:
    """The `ac` names of the `ac.float_(...)` / `ac.int_(...)` calls in the body: a function
    of a module given one (`math.sqrt(float(t))`) is rewritten as for a carried number."""
    return [node for node in names_at if node.id == ac and any(
        isinstance(parent, gast.Attribute) and parent.attr in _CONVERSIONS
        for parent in parents.get(id(node), ()))]


def _is_conversion(node, ac: str) -> bool:
    """Whether `node` is `ac.float_(...)` or `ac.int_(...)`."""
    func = getattr(node, "func", None) if isinstance(node, gast.Call) else None
    return (isinstance(func, gast.Attribute) and func.attr in _CONVERSIONS
            and isinstance(func.value, gast.Name) and func.value.id == ac)


def _reading(names_at: list, names: set, parents: dict, seeds=()) -> set:
    """The id()s of the nodes that hold a `Name` of `names` (themselves included). Every
    rewrite reads such a name (an operand, an augmented target; a rewritten call is one of
    these), so the other subtrees are left as they are without a visit (a visit of every
    node was a tenth of a conversion)."""
    found = set()
    # (`s` of a field 's.h', `m` of a carried container's items 'm[]')
    roots = {name.split(".")[0].removesuffix("[]") for name in names
             if "." in name or name.endswith("[]")}
    stack = [node for node in names_at if node.id in names or node.id in roots] + list(seeds)
    while stack:
        node = stack.pop()
        if id(node) not in found:
            found.add(id(node))
            stack.extend(parents.get(id(node), ()))
    return found


_NUMBER_BUILTINS = frozenset({"round", "divmod", "pow", "abs"})
_TENSOR_METHODS = frozenset(name for name in dir(torch.Tensor) if not name.startswith("_"))

# Calls that give a Python number (as converted code writes them, and as the user does)
_NUMBER_CALLS = {"float", "int", "bool", "len", "round", "float_", "int_", "bool_", "len_",
                 "item", "sum_", "max_", "min_", "abs", "divmod"}
# `math.f(...)` and numpy's functions and scalar types of numbers (`a = np.exp(0.5)`, `a =
# np.float64(1)` before a loop that carries `a`): numbers, whose arithmetic in the loop's body
# reads the stand-in (`np.exp(a / 10)` called numpy on the tensor: ".numpy() is not supported
# for tensor subclasses"). Of a tensor they are a tensor, read through the runtime at no cost.
_NUMBER_MODULES = frozenset({"math", "np", "numpy"})
_NUMPY_NUMBER_CALLS = frozenset({
    "exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "sin", "cos",
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh",
    "arccosh", "arctanh", "hypot", "deg2rad", "rad2deg", "floor", "ceil", "trunc", "rint",
    "fabs", "abs", "absolute", "sign", "power", "float_power", "maximum", "minimum", "fmax",
    "fmin", "square", "float64", "float32", "float16", "int64", "int32", "int16", "int8",
    "uint8", "double", "single", "float_", "int_", "intp"})


def _module_number_call(func) -> bool:
    """Whether `func` is `math.<f>` or numpy's `np.<f>` of `_NUMPY_NUMBER_CALLS`."""
    if not (isinstance(func, gast.Attribute) and isinstance(func.value, gast.Name)
            and func.value.id in _NUMBER_MODULES):
        return False
    return func.value.id == "math" or func.attr in _NUMPY_NUMBER_CALLS


# Calls that give a container of their argument's items (numbers where those are)
_CONTAINER_CALLS = frozenset({"list", "tuple"})


# NOTE [values leaving a container]
# A dict (or list) a staged statement carried holds number stand-ins (`m["s"] += x[i].item()`
# in a staged loop: 'm[]'). Reading `m["s"]` was the number, but every other way its values
# leave it was torch's 0-d float64 where Python's float keeps float32 (tester26 s01-s03):
# `m.get("s")`, `sum(m.values())`, `dict(m)["s"]`, `{**m}`, `{k: v * 2 for k, v in
# m.items()}`, and `torch.tensor(list(m.values()))` (a list of traced 0-d tensors, "data is not
# allocated yet" in replay). The value of each of these holds the container's items, so it
# reads a number where the container does (`_item_sources`): a builtin that copies, views or
# iterates its arguments (`_ITEM_CALLS`), a method that gives the receiver's values
# (`_VALUE_METHODS`), `**m` / `*m` unpacked into a literal, and a comprehension's element; and
# a comprehension's (or a generator's) target is an item of its iterable (`_scan` binds it as
# one), so its arithmetic is the number's too.

# Builtins whose value holds their arguments' items: a copy, a view, an iterator or an item
# of them (as the user writes them and as the calls pass writes the staged ones)
_ITEM_CALLS = frozenset({
    "dict", "list", "tuple", "set", "frozenset", "sorted", "reversed", "iter", "next",
    "enumerate", "zip", "sorted_", "reversed_", "enumerate_", "zip_"})
# Methods giving values of their receiver, a dict or a list (the keys are left to Python: a
# staged statement carries a dict's values, never its keys)
_VALUE_METHODS = frozenset({"values", "items", "get", "copy", "pop", "popitem", "setdefault"})


def _item_sources(node) -> list:
    """The expressions whose items (or values) the expression `node` holds or gives (NOTE
    [values leaving a container]): the arguments of `dict(m)`, `list(v)`, `sorted(v)`, ...;
    the receiver of `m.values()`, `m.get(k, d)` (and its default), as written or as
    `ac.converted_method_call(m, 'get', k, d)`; what a `*` or `**` unpacks; a comprehension's
    element (its value, of a dict's)."""
    cls = node.__class__
    if cls is gast.Call:
        func = node.func
        if func.__class__ is gast.Name or (
                func.__class__ is gast.Attribute and func.attr.endswith("_")
                and func.value.__class__ is gast.Name):
            name = func.id if func.__class__ is gast.Name else func.attr
            if name in _ITEM_CALLS:
                return [*node.args, *(k.value for k in node.keywords)]
        if func.__class__ is gast.Attribute and func.attr in _VALUE_METHODS:
            return [func.value, *node.args[1:]]
        if (_called(node) == "converted_method_call" and len(node.args) >= 2
                and node.args[1].__class__ is gast.Constant
                and node.args[1].value in _VALUE_METHODS):
            return [node.args[0], *node.args[3:]]
        return []
    if cls is gast.Starred:
        return [node.value]
    if cls in (gast.ListComp, gast.SetComp, gast.GeneratorExp):
        return [node.elt]
    if cls is gast.DictComp:
        return [node.value]
    return []


def _has_items(node, names) -> bool:
    """Whether `node` is a name whose items a staged body sets ('m[]' of `m["s"] = v`:
    `_fields`), a container that may hold numbers where its literal held none (`m = {}`)."""
    return node.__class__ is gast.Name and f"{node.id}[]" in names

# operands whose type conversion cannot tell (a parameter, a global, a field, an item)
_UNKNOWN = (gast.Name, gast.Attribute, gast.Subscript)


def _names_number(node, numbers) -> bool:
    """Whether the arithmetic `node` reads a name (or field) in `numbers`."""
    if isinstance(node, gast.Name):
        return node.id in numbers
    if isinstance(node, gast.Attribute):
        return _field_in(node, numbers)
    if isinstance(node, gast.BinOp):
        return _names_number(node.left, numbers) or _names_number(node.right, numbers)
    if isinstance(node, gast.UnaryOp):
        return _names_number(node.operand, numbers)
    return False


def _is_number(node, numbers) -> bool:
    """Whether the expression `node` may be a Python number (or a container of numbers, such
    as `{'total': 0.0}`), given the names `numbers` that may hold one. Arithmetic is a number
    where every operand is one (a tensor operand makes a tensor)."""
    if isinstance(node, gast.Constant):
        return isinstance(node.value, (bool, int, float, complex))
    if isinstance(node, gast.Name):
        return node.id in numbers
    if isinstance(node, gast.Attribute):
        return _field_in(node, numbers)
    if isinstance(node, gast.UnaryOp):
        return _is_number(node.operand, numbers)
    if isinstance(node, gast.BinOp):
        left, right = _is_number(node.left, numbers), _is_number(node.right, numbers)
        # A number's name next to a name of unknown type (a parameter, a global: `step **
        # alpha` with `alpha=0.6`) may be a number too: `lp = step ** alpha` read as a plain
        # name made `x[0] / lp` torch's float32 / 0-d float64, float64 where Python's float
        # keeps float32 (tester20, a GNMT length penalty). Reading it through the runtime
        # costs nothing where it is a tensor after all.
        # (only a side reading a number's name: `x + sum(v)` stays a tensor's arithmetic)
        return left and right or (left and _names_number(node.left, numbers)
                                  and isinstance(node.right, _UNKNOWN)
                                  or right and _names_number(node.right, numbers)
                                  and isinstance(node.left, _UNKNOWN))
    if isinstance(node, gast.Compare):
        return all(_is_number(v, numbers) for v in [node.left, *node.comparators])
    if isinstance(node, gast.Subscript):
        return _is_number(node.value, numbers)
    if _is_getitem(node):  # (`ac.getitem(lrs, i)`, as the subscripts pass wrote `lrs[i]`)
        # (or `W[k]`, a sequence of unknown items chosen by a carried number: tester23 s08)
        return _is_number(node.args[0], numbers) or (
            isinstance(node.args[0], _UNKNOWN) and _names_number(node.args[1], numbers))
    if isinstance(node, gast.IfExp):
        return _is_number(node.body, numbers) or _is_number(node.orelse, numbers)
    if isinstance(node, (gast.Tuple, gast.List)):
        return any(_is_number(e, numbers) for e in node.elts)
    if isinstance(node, gast.Dict):
        return any(_is_number(v, numbers) for v in node.values)
    # (`[pos for _ in range(2)]`: tester21b s04; `dict(m)`, `m.values()`, `list(m.items())`,
    # `*vals`: NOTE [values leaving a container])
    sources = _item_sources(node)
    if sources and any(_is_number(source, numbers) or _has_items(source, numbers)
                       for source in sources):
        return True
    if isinstance(node, gast.Call):
        func = node.func
        name = func.id if isinstance(func, gast.Name) else (
            func.attr if isinstance(func, gast.Attribute) else None)
        sides = _if_exp_sides(node)
        if sides:  # `a if c else b` as the control-flow pass wrote it (`ac.if_exp`)
            return any(_is_number(side, numbers) for side in sides)
        if _user_call_given_number(node, numbers) or _list_item_call(node, numbers):
            return True
        if name in ("converted_method_call", "converted_call") and len(node.args) > 1:
            method = node.args[1]
            name = method.value if isinstance(method, gast.Constant) else None
        if (name == "getattr" and len(node.args) >= 2 and isinstance(node.args[0], gast.Name)
                and isinstance(node.args[1], gast.Constant)):
            # a composite name's local (`h_state = getattr(h, 'state', ...)`, for `h.state`):
            # a number, or a dict of them, where the field is one (t16 repro 1: the int
            # `h.state['step']` in `0.999 ** h_state['step']` read as torch's int64, float32)
            return _field_in(gast.Attribute(value=node.args[0], attr=node.args[1].value,
                                            ctx=gast.Load()), numbers)
        return name in _NUMBER_CALLS or _module_number_call(func)
    return False


def _bound(assign):
    """(name, value) for each name `assign` binds to a value it shows (`a, b = 0, x`)."""
    for target in assign.targets:
        if isinstance(target, gast.Name):
            yield target.id, assign.value
        elif (isinstance(target, gast.Tuple) and isinstance(assign.value, gast.Tuple)
              and len(target.elts) == len(assign.value.elts)):
            for t, v in zip(target.elts, assign.value.elts):
                if isinstance(t, gast.Name):
                    yield t.id, v
        elif isinstance(target, gast.Tuple):
            # `lo, hi = bounds`, `lo, hi = (a, b) if a < b else (b, a)`: each name may be any
            # item of the value (a number where one of them is)
            for t in target.elts:
                if isinstance(t, gast.Name):
                    yield t.id, assign.value


def _numbers(assigns, names: set) -> set:
    """The names that may hold a Python number on some path: `names`, and those an
    assignment binds to a number (`t = 0.0`, `best = v.item()`, `u = t * 2`)."""
    changed = True
    while changed:
        changed = False
        for node in assigns:
            for name, value in _bound(node):
                if name not in names and _is_number(value, names):
                    names.add(name)
                    changed = True
    return names


def _assigned_from(assigns, names: set, numbers: set, lists=frozenset()) -> set:
    """`names` and the number names assigned from expressions reading them (or the length
    of a carried list in `lists`: `n = len(vals)`)."""
    changed = True
    while changed:
        changed = False
        for node in assigns:
            for name, value in _bound(node):
                if name in numbers and name not in names and _reads_number(value, names,
                                                                          lists):
                    names.add(name)
                    changed = True
    return names


def _reads_number(node, names, lists=frozenset()) -> bool:
    """Whether `node` reads a name in `names`: the name, an item of it, or arithmetic of it;
    or the length of a list in `lists` (NOTE [the length of a grown list]); or a call this
    pass made (`max(abs(e), 1e-12)`: `abs(e)` is a number's)."""
    if isinstance(node, gast.Call) and getattr(node, "_autoconv_arithmetic", False):
        return True
    if isinstance(node, gast.Name):
        return node.id in names
    if node.__class__ is gast.Call and _called(node) == "ld" and node.args:
        # `ac.ld(r, r_bound, 'r')`, a read of `r` where it may be unbound (converters/unbound.py)
        return _reads_number(node.args[0], names, lists)
    if isinstance(node, gast.Attribute):  # a carried object's field (`_fields`)
        # (or a field of an item of a container that may hold numbers' objects: `a[0].v` of
        # `def f(*a)` given `Box(s)`)
        return _field_in(node, names) or (
            node.attr not in _TENSOR_ATTRIBUTES
            and (isinstance(node.value, gast.Subscript) or _is_getitem(node.value))
            and _reads_number(node.value, names, lists))
    if isinstance(node, gast.Subscript):
        if isinstance(node.value, gast.Name) and f"{node.value.id}[]" in names:
            return True  # (an item of a carried container a body sets: `_fields`)
        return _reads_number(node.value, names, lists)
    if _is_getitem(node):
        # (`W[k]` of a Python list of numbers indexed by a carried number `k` is the stand-in
        # of the number chosen: tester23 s08, where `torch.tensor(W[k])` was float64)
        return _reads_number(node.args[0], names, lists) or _reads_number(
            node.args[1], names, lists)
    if isinstance(node, gast.BinOp):
        return _reads_number(node.left, names, lists) or _reads_number(node.right, names, lists)
    if isinstance(node, gast.UnaryOp):
        return _reads_number(node.operand, names, lists)
    if isinstance(node, gast.Compare):  # (`b = k > 2`: a bool)
        return any(_reads_number(v, names, lists) for v in [node.left, *node.comparators])
    if isinstance(node, gast.IfExp):  # (`(a, b) if a <= b else (b, a)`)
        return (_reads_number(node.body, names, lists)
                or _reads_number(node.orelse, names, lists))
    if isinstance(node, (gast.Tuple, gast.List, gast.Set)):
        return any(_reads_number(e, names, lists) for e in node.elts)
    if isinstance(node, gast.Dict):
        # `hist = {"best": best}` after the loop: `hist["best"]` is the stand-in (tester25 s06:
        # `losses.sum() * hist["best"]` was float64 where Python keeps float32), as `[best]`
        return any(v is not None and _reads_number(v, names, lists) for v in node.values)
    # (NOTE [values leaving a container]: `dict(m)`, `m.get("s")`, `{**m}`, comprehensions)
    sources = _item_sources(node)
    if sources and any(_reads_number(source, names, lists) or _list_of(source, lists)
                       or _has_items(source, names) for source in sources):
        return True
    if isinstance(node, gast.Call) and _called(node) in _NUMBER_CALLS | _CONTAINER_CALLS:
        # `max(float(n), 0.5)`, `abs(t)`: a number of numbers (torch.tensor of it was float64);
        # `len(vals)`, `max(vals)` of a carried list: a number of the list's (NOTE [the length
        # of a grown list])
        return any(_reads_number(arg, names, lists) or (
            _list_of(arg, lists)) for arg in node.args)
    if isinstance(node, gast.Call) and _module_number_call(node.func):
        # (`a = np.exp(k)` of a carried `k`: `round(a, 2)` reads the stand-in, break43b s08)
        return any(_reads_number(arg, names, lists) for arg in node.args)
    if _user_call_given_number(node, names, lists):
        return True
    if _list_item_call(node, lists):
        return True
    # (`2 ** (1 if c else -1)`: NOTE [numbers a conditional expression chooses])
    return _chooses_number(node) or any(_reads_number(side, names, lists)
                                        for side in _if_exp_sides(node))


_ITEM_METHODS = frozenset({"pop", "index", "count"})


def _list_item_call(node, lists) -> bool:
    """Whether `node` is `vals.pop()` / `vals.index(v)` / `vals.count(v)` of a carried list
    (as written, or as `ac.converted_method_call(vals, 'pop')`): an item or an int of the
    list's (tester22 s04: `last = vals.pop()` read float64)."""
    if not (isinstance(node, gast.Call) and lists):
        return False
    if isinstance(node.func, gast.Attribute) and node.func.attr in _ITEM_METHODS:
        return _list_of(node.func.value, lists)
    return (_called(node) == "converted_method_call" and len(node.args) >= 2
            and isinstance(node.args[1], gast.Constant) and node.args[1].value in _ITEM_METHODS
            and _list_of(node.args[0], lists))


# NOTE [the length of a grown list]
# `10.0 / len(vals)` of a list a staged loop grew (tester21b s19): `len` gives the list's count, a
# 0-d int64 tensor, and torch's `10.0 / t` is inf where the list is empty, where Python raises
# ZeroDivisionError (or runs the `except ZeroDivisionError:` handler). The length of a carried
# list (and its `max`, `min`, `sum`) is read as a number the statements carry (a stand-in,
# `len_` marks it), so the arithmetic reading it goes through `ac.binary`, which checks the
# division as Python does (a graph assertion, or a `try`'s failure: NOTE [a try around a value
# the graph checks]), and a torch function given it goes through `ac.number_call`
# (`torch.tensor([max(ls), 1])`: tester21b s04).


_USER_CALLS = frozenset({"converted_call", "converted_method_call"})


def _is_getitem(node) -> bool:
    """Whether `node` is `ac.getitem(target, key)`."""
    return (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
            and node.func.attr == "getitem" and isinstance(node.func.value, gast.Name)
            and len(node.args) == 2)


def _user_call_given_number(node, names, lists=frozenset()) -> bool:
    """Whether `node` calls a user's function (as the calls pass wrote it) with an argument
    that may read a name in `names`, or a method of a receiver `m` with 'm.()' in it
    (`meter.avg()` after a staged statement changed `meter.total`): its result may be a number
    (NOTE [items of carried lists])."""
    if not (isinstance(node, gast.Call) and _called(node) in _USER_CALLS):
        return False
    values = [*node.args[1:], *(k.value for k in node.keywords)]
    receiver = node.args[0] if node.args else None
    if (_called(node) == "converted_method_call" and isinstance(receiver, gast.Name)
            and f"{receiver.id}.()" in names):
        return True
    return any(_reads_number(value, names, lists) for value in values)


def _lengths_listed(node) -> bool:
    """Whether `node` is a list, tuple or list comprehension of which some item reads a
    `len()`: `torch.tensor([len(p) for p in crf.decode(em, mask)])`, where a list a library
    grew under tensor control flow has a count, a 0-d tensor, for its length (torch.tensor of a
    list of traced tensors raised torch's "data is not allocated yet": tester24 s10). The names
    of such lists are not the function's, so the call goes through `number_call` on sight."""
    if not isinstance(node, (gast.List, gast.Tuple, gast.ListComp)):
        return False
    return any(isinstance(e, gast.Call) and _called(e) in ("len", "len_")
               for e in walk(node))


def _tensor_of_name(node) -> bool:
    """Whether `node` is `torch.tensor(p)` / `torch.as_tensor(p)` of a name, a field or an
    item: `p` may be a list a library grew under tensor control flow (`[torch.tensor(p) for p
    in crf.decode(em, mask)]`, a StagedList whose length torch.tensor asked for: tester24 s10),
    which `number_call` stacks, and `m["best"]` a number's stand-in a statement carried in a
    dict only a call changed (float64 where Python's float gives float32); the names this
    function grows or carries are in `lists` and `names` already."""
    return (_called(node) in ("tensor", "as_tensor") and bool(node.args)
            and isinstance(node.args[0], _UNKNOWN))


def _tensor_of_items(node) -> bool:
    """Whether `node` is `torch.tensor([...])` / `torch.as_tensor(...)` of a list, tuple or
    comprehension with an item that is not a constant (or `ac.list_comprehension`'s):
    `torch.tensor([x[0], 2 * x[1]])`, whose items may be traced tensors (NOTE [torch.tensor of traced items] in runtime/arithmetic.py),
    goes through `number_call`."""
    if not (_called(node) in ("tensor", "as_tensor") and node.args):
        return False
    if isinstance(node.args[0], gast.Call) and _called(node.args[0]) == "list_comprehension":
        return True  # (over a grown list: NOTE [a comprehension over a grown list])
    if not isinstance(node.args[0], (gast.List, gast.Tuple, gast.ListComp)):
        return False
    return any(not isinstance(e, (gast.Constant, gast.List, gast.Tuple, gast.UnaryOp,
                                  gast.expr_context, gast.unaryop))
               for e in walk(node.args[0]))


def _tensor_and_listed_args(calls: list, parents: dict) -> tuple:
    """(the id()s of the first arguments of the `_tensor_of_name` calls in `calls`, those of
    the `_lengths_listed` arguments of any call), each argument's first parent its call: where
    `_tensor_of_read` and `_in_lengths_listed` stop."""
    tensor_args, listed_args = set(), set()
    # (an argument `_lengths_listed` holds a call of `len`: without one, there is none)
    lengths = any(_called(call) in ("len", "len_") for call in calls)
    for call in calls:
        for i, arg in enumerate(call.args):
            above = parents.get(id(arg))
            if not above or above[0] is not call:
                continue
            if i == 0 and _tensor_of_name(call):
                tensor_args.add(id(arg))
            if lengths and _lengths_listed(arg):
                listed_args.add(id(arg))
    return tensor_args, listed_args


def _tensor_of_read(name, parents, tensor_args) -> bool:
    """Whether the Name `name` is read as `_tensor_of_name`'s argument (itself, or the root of
    its attribute and subscript chain); `tensor_args`: `_tensor_and_listed_args`'."""
    node = name
    for _ in range(4):
        above = parents.get(id(node), ())
        if not above:
            return False
        parent = above[0]
        if isinstance(parent, gast.Call):
            return id(node) in tensor_args
        if not (isinstance(parent, (gast.Attribute, gast.Subscript)) and parent.value is node):
            return False
        node = parent
    return False


def _in_lengths_listed(name, parents, listed_args) -> bool:
    """Whether the Name `name` is read in a module function's argument that `_lengths_listed`
    (`torch.tensor([len(p) for p in paths])`): the call is rewritten as `ac.number_call`.
    `listed_args`: `_tensor_and_listed_args`'."""
    node = name
    for _ in range(8):
        above = parents.get(id(node), ())
        if not above:
            return False
        parent = above[0]
        if id(node) in listed_args:
            return True
        node = parent
    return False


def _called(node) -> str | None:
    """The name a call's function is read by (`max_` of `ac.max_`, `round`), else None."""
    func = node.func
    return func.id if isinstance(func, gast.Name) else (
        func.attr if isinstance(func, gast.Attribute) else None)


def _if_exp_sides(node) -> list:
    """The two sides of `ac.if_exp(c, lambda ...: a, lambda ...: b, ...)` (a conditional
    expression the control-flow pass staged), else []: `m = 10.0 / n if n != 0 else -1.0` is
    a number where a side is (it was a float64 tensor for `torch.tensor(m)`)."""
    if not (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
            and isinstance(node.func.value, gast.Name)):
        return []
    if node.func.attr in ("and_", "or_") and len(node.args) >= 2:
        # `last = n > 0 and vals[-1] or -1.0` as the logical pass wrote it: either side's value
        # (tester22 s06: `torch.tensor(last)` was float64)
        right = node.args[1]
        return [node.args[0], right.body] if isinstance(right, gast.Lambda) else []
    if node.func.attr != "if_exp" or len(node.args) < 3:
        return []
    return [arg.body for arg in node.args[1:3] if isinstance(arg, gast.Lambda)]


class _Rewrite(gast.NodeTransformer):
    def __init__(self, names, ac, local_names, reading, lists=frozenset(),
                 converted=frozenset(), results=frozenset()):
        self.names = names
        self.results = results  # `_user_results_bound`: the objects `visit_Attribute` reads
        self.lists = lists  # `_carried_lists`
        self.converted = converted  # `_converted_names`
        self.ac = ac
        self.local_names = local_names
        self.reading = reading  # `_reading`: the subtrees a rewrite may change

    def visit(self, node):
        # (the visitor by a dict lookup: NodeVisitor's is a getattr of a concatenated string
        # per node)
        visitor = _VISITORS.get(node.__class__)
        return visitor(self, node) if visitor is not None else self.generic_visit(node)

    def generic_visit(self, node):
        # ast.NodeTransformer's, entering only the subtrees in `reading` (the others cannot
        # change), through the node's __dict__. A Name is not entered: no rewrite is of a name
        # alone, and nothing under it is in `reading`.
        reading = self.reading
        attrs, cls = node.__dict__, node.__class__
        for field in WALKED_FIELDS.get(cls) or walked_fields(cls):
            old = attrs.get(field)
            if old.__class__ is list:
                for value in old:
                    if id(value) in reading:
                        break
                else:
                    continue
                new = []
                for value in old:
                    if (value.__class__ is not gast.Name and id(value) in reading
                            and isinstance(value, gast.AST)):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, gast.AST):
                            new.extend(value)
                            continue
                    new.append(value)
                old[:] = new
            elif (old.__class__ is not gast.Name and id(old) in reading
                  and isinstance(old, gast.AST)):
                replaced = self.visit(old)
                if replaced is None:
                    delattr(node, field)
                else:
                    setattr(node, field, replaced)
        return node

    def _may_be_number(self, node) -> bool:
        if isinstance(node, gast.Call) and getattr(node, "_autoconv_arithmetic", False):
            return True
        # (`x[i].item() != x[i].item()` written inline: NOTE [float arithmetic of numbers
        # read from tensors] in runtime/arithmetic.py)
        return _reads_number(node, self.names, self.lists) or _reads_tensor_number(node, self.ac)

    def _call(self, node, template, **subs):
        call = templates.replace(template, ac=self.ac, **subs)[0].value
        call._autoconv_arithmetic = True
        copy_origin(call, node)
        return call

    def visit_BinOp(self, node):
        self.generic_visit(node)
        op = _BINARY.get(type(node.op))
        if op is None or not (self._may_be_number(node.left)
                              or self._may_be_number(node.right)
                              or _user_result_with_a_number(node, self.ac)):
            return node
        return self._call(node, "ac.binary(left, op, right)", left=node.left,
                          right=node.right, op=gast.Constant(value=op, kind=None))

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) != 1:
            return node  # (a chain `0 < t < 1`: left to Python)
        op = _COMPARE.get(type(node.ops[0]))
        right = node.comparators[0]
        if op is None or not (self._may_be_number(node.left) or self._may_be_number(right)):
            return node
        return self._call(node, "ac.compare(left, op, right)", left=node.left, right=right,
                          op=gast.Constant(value=op, kind=None))

    def visit_Call(self, node):
        # `torch.tensor(t)`, `torch.tensor([k, 2])`, `torch.where(c, x, t)`: a function of a
        # module (not the user's: those are `ac.converted_call`s) given a carried number
        # (NOTE [numbers as arguments] in runtime/arithmetic.py)
        if isinstance(node.func, gast.Attribute):
            node.func._autoconv_callee = True  # (a method, not a field: `visit_Attribute`)
        self.generic_visit(node)
        # A tensor method of a local (`y.add(t)`) is `ac.number_method_call(y, 'add', t)`:
        # dynamo cannot take a bound tensor method as a value.
        func = node.func
        if isinstance(func, gast.Name):
            # `round(t, 1)`, `divmod(k, 3)`: builtins left as they are by the calls pass,
            # staged by the runtime (NOTE [functions of numbers] in runtime/arithmetic.py)
            # (and of a number read from a traced tensor, `divmod(int(v), 3)`: NOTE [numbers
            # read from tensors]; torch's SymInt has no divmod, and `round` of a SymFloat
            # left Python's round in the graph, which torch.export.save cannot write:
            # tester21 s07, s08)
            if func.id not in _NUMBER_BUILTINS or func.id in self.local_names or not any(
                    self._may_be_number(v) or _may_read_tensor_number(v, self.ac)
                    for v in node.args):
                return node
            call = gast.Call(func=gast.Attribute(
                value=gast.Name(id=self.ac, ctx=gast.Load(), annotation=None, type_comment=None),
                attr="number_call", ctx=gast.Load()), args=[func] + node.args,
                keywords=node.keywords)
            call._autoconv_arithmetic = True  # (a number of it: `round(t) * 2` is rewritten)
            copy_origin(call, node)
            return call
        if not isinstance(func, gast.Attribute):
            return node
        if _called(node) == "sum_" and node.args:
            self._counted(node.args[0])
        root = func
        while isinstance(root, gast.Attribute):
            root = root.value
        if not isinstance(root, gast.Name) or root.id == self.ac:
            return node
        values = list(node.args) + [k.value for k in node.keywords]
        if not any(self._may_be_number(v) or (isinstance(v, (gast.List, gast.Tuple)) and any(
                self._may_be_number(e) for e in walk(v))) or (
                    _list_of(v, self.lists)) or _lengths_listed(v) or _tensor_of_name(node) or (
                    _tensor_of_items(node)) or (
                    isinstance(v, gast.Subscript) and isinstance(v.value, gast.Name)
                    and f"{v.value.id}[]" in self.lists) for v in values):
            # `math.sqrt(float(t))` of a traced `t` (tester t16 repro 3): the function needs
            # the stand-in's value, so the runtime stages it
            # (`torch.tensor([1, 0.5, 2][k])` of `k = int(t)`: the item is the stand-in of the
            # number chosen, float64 where Python's float gives float32)
            if root.id in self.local_names or not any(
                    _reads_converted(v, self.converted, self.ac) or _is_user_call(v, self.ac)
                    or _is_getitem(v) and _chosen_by_tensor(v.args[1], self.ac, self.converted)
                    for v in values):
                return node
        if root.id not in self.local_names:
            args, name = [func] + node.args, "number_call"
        elif func.attr in _TENSOR_METHODS and not self._may_be_number(func.value):
            args, name = [func.value, gast.Constant(value=func.attr, kind=None)] + node.args, \
                "number_method_call"
        else:
            return node
        call = gast.Call(func=gast.Attribute(
            value=gast.Name(id=self.ac, ctx=gast.Load(), annotation=None, type_comment=None),
            attr=name, ctx=gast.Load()), args=args, keywords=node.keywords)
        # Its result may stand for a number (`math.sqrt(r + 1)` of a carried float): an
        # operator applied to it is rewritten too, or `math.sqrt(r + 1) * 2` was torch's
        # float64 tensor, no longer the number, and the loop refused r as a number on one path
        # and a tensor on another (tester t14 repro 7). (`ac.binary` of tensors is torch's.)
        call._autoconv_arithmetic = True
        copy_origin(call, node)
        return call

    def _counted(self, generator):
        """`sum(1 for m in M if k >= m)` of a number `k` (NOTE [a count of conditions on a
        number]): the conditions that read a number become a factor of the item,
        `sum(ac.binary(ac.compare(k, '>=', m), '*', 1) for m in M)`; where the item is not an
        int constant, `ac.comprehension_test(c, text)`, which refuses a staged one at the
        line."""
        if not (isinstance(generator, gast.GeneratorExp) and len(generator.generators) == 1):
            return
        comprehension = generator.generators[0]
        reading = [c for c in comprehension.ifs if self._may_be_number(c)]
        if not reading:
            return
        elt = generator.elt
        if (isinstance(elt, gast.Constant) and type(elt.value) is int):
            comprehension.ifs = [c for c in comprehension.ifs if c not in reading]
            for condition in reading:
                elt = self._call(elt, "ac.binary(left, '*', right)", left=condition, right=elt)
            generator.elt = elt
            return
        comprehension.ifs = [
            self._call(c, "ac.comprehension_test(test)", test=c) if c in reading else c
            for c in comprehension.ifs]

    def visit_AugAssign(self, node):
        # `t += v` outside the staged bodies (which the control-flow pass rewrote already) on
        # a number a statement carried: the stand-in after the statement is rebound as the
        # number it stands for, not updated in place (NOTE [number stand-ins] in
        # runtime/augmented.py)
        # `t /= k - 3` of a Python float `t` and a number the statements carried: Python's
        # float meeting the stand-in would make a float32 tensor (its __rtruediv__)
        self.generic_visit(node)
        if (isinstance(node.target, gast.Attribute) and isinstance(node.target.value, gast.Name)
                and _field_in(node.target, self.names)):
            # `self.total += float(v)` of a field that may hold a number's stand-in (a method
            # given a carried object): Python's `+=` updated the 0-d tensor in place, which a
            # staged body's probe cannot see as a change of the object (the field is the same
            # tensor), and dynamo then refused the write to the object inside torch.cond
            # ("HOP: Unsafe side effect": tester21b s09); a tensor anyone else holds changed
            # too. Rebound as Python rebinds the number.
            read = copy.deepcopy(node.target)
            read.ctx = gast.Load()
        elif not (isinstance(node.target, gast.Name) and (node.target.id in self.names
                                                          or self._may_be_number(node.value))):
            return node
        else:
            read = gast.Name(id=node.target.id, ctx=gast.Load(), annotation=None,
                             type_comment=None)
        new = templates.replace("target = ac.aug_assign(read, op, value)", target=node.target,
                                read=read, value=node.value, ac=self.ac,
                                op=gast.Constant(value=AUGMENTED_OPERATORS[type(node.op)],
                                                 kind=None))
        copy_origin(new, node)
        return new[0]

    def visit_Attribute(self, node):
        # `m.avg` of an object a user's call returned (`m = Meter()`), where `avg` may be a
        # @property computing a number from its stand-in fields: the getter runs as the twin
        # that counts `self`'s fields as numbers (NOTE [a property of numbers] in
        # runtime/calls.py); `torch.tensor(m.avg)` was float64 where Python gives float32
        if isinstance(node.value, gast.Attribute):
            node.value._autoconv_callee = True  # (`m.a.b`: `m.a` is no number)
        self.generic_visit(node)
        if (not isinstance(node.ctx, gast.Load) or getattr(node, "_autoconv_callee", False)
                or not isinstance(node.value, gast.Name) or node.attr in _TENSOR_ATTRIBUTES
                or node.value.id not in self.results or node.attr.startswith("__")):
            return node
        return self._call(node, "ac.number_field(owner, name)", owner=node.value,
                          name=gast.Constant(value=node.attr, kind=None))

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        name = _UNARY.get(type(node.op))
        if name is None or not self._may_be_number(node.operand):
            return node
        return self._call(node, f"ac.{name}(value)", value=node.operand)


_VISITORS = {cls: getattr(_Rewrite, "visit_" + cls.__name__)
             for cls in (gast.BinOp, gast.Compare, gast.Call, gast.AugAssign, gast.UnaryOp,
                         gast.Attribute)}
