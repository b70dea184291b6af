"""`and`, `or`, `not`, conditional expressions and chained comparisons become runtime calls.

    a and b        ->  ac.and_(a, lambda b: b, (b,))       (b only evaluated when Python would)
    a or b         ->  ac.or_(a, lambda b: b, (b,))
                       (`plain=True` too where b is a name or constant: reading it runs nothing)
    not a          ->  ac.not_(a)
    a if c else b  ->  ac.if_exp(c, lambda a, b: a, lambda a, b: b, (a, b))
    a < b < c      ->  ac.and_(a < b, lambda b, c: b < c, (b, c))
                       (b evaluated once: a call in the middle is named by a temporary)
    a is b         ->  ac.is_(a, b)                         (and `is not`: ac.is_not)

The locals a lazy side reads are passed to it explicitly (its inputs), so that a staged side never
captures a tensor by closure (see control_flow.py). Where only the truth value of an `and` / `or`
is read (the test of an `if`, `while` or conditional expression, a comprehension's condition, the
operand of `not`, and the sides of such an `and` / `or`), the call gets `test=True`: staged, it
then gives a bool tensor, and sides of different dtypes (`n and x > 0`) need no promotion.
"""

from __future__ import annotations

import copy
import operator

import gast

from .. import templates
from ..analysis.activity import free_reads
from ..analysis.annos import Anno, get_anno, set_anno
from ..transformer import Converter
from .generators import leaves_generators_alone


def _thunk(body, params=()):
    return gast.Lambda(
        args=gast.arguments(args=[templates.name(p, gast.Param()) for p in params],
                            posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                            kwarg=None, defaults=[]),
        body=body,
    )


def _is_pure(node) -> bool:
    """Names, constants and attribute / subscript chains of them: safe to evaluate twice."""
    if isinstance(node, (gast.Name, gast.Constant)):
        return True
    if isinstance(node, gast.Attribute):
        return _is_pure(node.value)
    if isinstance(node, gast.Subscript):
        return _is_pure(node.value) and _is_pure(node.slice)
    if isinstance(node, gast.UnaryOp):
        return _is_pure(node.operand)
    return False


def _is_plain(node) -> bool:
    """A name, a constant, or a (negated) constant: evaluating it runs no code."""
    return isinstance(node, (gast.Name, gast.Constant)) or _is_constant_operand(node)


def _is_constant_operand(node) -> bool:
    return (isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub)
            and isinstance(node.operand, gast.Constant))


# NOTE [pure sides of a test fold left]
# Each `and` / `or` whose left side is traced is a torch.cond, and a chain nests them: `a and b
# and c` is `and_(a, lambda: and_(b, lambda: c))`, a cond in a cond's branch, and every
# staging of a cond probes and traces its branches, each nested cond again (under dynamo a
# few hundred of its steps per step of the user's code: fuzz seed 4301's programs timed out
# at torch.compile, an `if` test of five nested conds in a `while` test of four). Where only
# the truth is read, a side that runs nothing but comparisons and truth tests of the
# function's locals and constants (`_is_pure_side`) is computed beside the sides before it
# (NOTE [a comparison beside a traced test] in runtime/operators.py), so it folds into them:
# `a and b and c` with b pure is `and_(and_(a, lambda: b, pure=True), lambda: c)`, the same
# truth and evaluation order as Python's (`and` / `or` associate). A side that is not pure
# keeps the sides after it in its lambda, as before: a Python value they give short-circuits
# there, and what Python never evaluates is not traced. A comparison chain read for its truth
# (`b == q > k`) is one pure side too.
def _is_pure_side(node, local_names) -> bool:
    """A side of an `and` / `or` read for its truth that runs only comparisons and truth tests
    of the function's locals and constants: a comparison (chained too), `not` of such a side or
    of a local, a local, a constant, an and / or of such sides (NOTE [a comparison beside a
    traced test] in runtime/operators.py)."""
    if isinstance(node, gast.Constant):
        return True
    if isinstance(node, gast.Name):
        return node.id in local_names
    if isinstance(node, gast.Compare):
        return all(type(op) in _ORDERINGS for op in node.ops) and all(
            _is_plain(o) and (not isinstance(o, gast.Name) or o.id in local_names)
            for o in [node.left, *node.comparators])
    if isinstance(node, gast.UnaryOp):
        return isinstance(node.op, gast.Not) and _is_pure_side(node.operand, local_names)
    if isinstance(node, gast.BoolOp):
        return all(_is_pure_side(v, local_names) for v in node.values)
    return False


def _is_bool(node) -> bool:
    """True for an expression whose value is a bool whenever it is a Python value and a bool
    tensor whenever it is a tensor: a comparison, a `not`, True / False, an and / or of those."""
    if isinstance(node, gast.Compare):
        return True
    if isinstance(node, gast.UnaryOp):
        return isinstance(node.op, gast.Not)
    if isinstance(node, gast.Constant):
        return isinstance(node.value, bool)
    if isinstance(node, gast.BoolOp):
        return all(_is_bool(v) for v in node.values)
    return False


_ORDERINGS = {gast.Eq: operator.eq, gast.NotEq: operator.ne, gast.Lt: operator.lt,
              gast.LtE: operator.le, gast.Gt: operator.gt, gast.GtE: operator.ge}


def _folded_comparison(node):
    """A comparison of number constants (`1 <= 2`, `2 <= -1 > 0`) as its constant, else None:
    such a side of an `and` / `or` is then plain, and decides a test where Python's value
    does (NOTE [a plain side that decides a test] in runtime/operators.py). Comparing
    numbers runs no code and cannot raise."""
    operands = [node.left] + list(node.comparators)
    numbers = []
    for operand in operands:
        negated = _is_constant_operand(operand)
        constant = operand.operand if negated else operand
        if not isinstance(constant, gast.Constant) or type(constant.value) not in (bool, int,
                                                                                   float):
            return None
        numbers.append(-constant.value if negated else constant.value)
    if not all(type(op) in _ORDERINGS for op in node.ops):
        return None
    value = all(_ORDERINGS[type(op)](a, b) for op, a, b in zip(node.ops, numbers, numbers[1:]))
    return gast.copy_location(gast.Constant(value=value, kind=None), node)


@leaves_generators_alone
class LogicalConverter(Converter):
    """Rewrites boolean operators and conditional expressions into lazily evaluated calls."""

    _temporaries: set = frozenset()

    def __init__(self, ctx):
        super().__init__(ctx)
        self._tests = set()  # the and / or nodes whose value is read only for its truth

    def _read_for_truth(self, node):
        if isinstance(node, (gast.BoolOp, gast.Compare)) or (
                isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.Not)):
            self._tests.add(node)

    def _call(self, op, *args):
        return gast.Call(
            func=gast.Attribute(value=templates.name(self.ctx.runtime), attr=op, ctx=gast.Load()),
            args=list(args), keywords=[],
        )

    def _inputs(self, *bodies):
        reads = set()
        for body in bodies:
            reads |= free_reads(_thunk(body))
        # The temporaries of chained comparisons are locals too: passed in, never captured (a
        # captured one would look live after the statement, and a captured tensor is baked in).
        return sorted(reads & (self.ctx.local_names | self._temporaries))

    def _lazy_call(self, op, first, *bodies, test=False):
        """`ac.op(first, lambda <inputs>: body, ..., (<inputs>))`, and `test=True` if asked."""
        inputs = self._inputs(*bodies)
        args = [first] + [_thunk(body, inputs) for body in bodies]
        if inputs:
            args.append(templates.names_tuple(inputs))
        call = self._call(op, *args)
        if test:
            call.keywords.append(gast.keyword(arg="test", value=gast.Constant(value=True,
                                                                              kind=None)))
        return call

    def visit_BoolOp(self, node):
        read_for_truth = node in self._tests
        # Sides that are bools already (comparisons, `not`, flags) need no `test=True`.
        test = read_for_truth and not _is_bool(node)
        pure = [read_for_truth and _is_pure_side(v, self.ctx.local_names) for v in node.values]
        if read_for_truth:
            for value in node.values:
                self._read_for_truth(value)
        self.generic_visit(node)
        values = list(node.values)
        if read_for_truth:
            values, pure = self._up_to_deciding_constant(node.op, values, pure, test)
        return self._chain(node.op, values, test, read_for_truth, pure)

    def _chain(self, op, values, test, read_for_truth, pure=None):
        """`ac.op(values[0], lambda: ac.op(values[1], ...))` of converted sides; read for its
        truth, the sides marked `pure` fold into the side before them instead (NOTE [pure
        sides of a test fold left])."""
        op = "and_" if isinstance(op, gast.And) else "or_"
        pure = pure if read_for_truth and pure is not None else [False] * len(values)
        return self._chain_from(0, op, values, test, read_for_truth, pure)

    def _chain_from(self, start, op, values, test, read_for_truth, pure):
        # (a method, not a closure calling itself: that was a reference cycle holding the
        # converter, NOTE [converters without reference cycles] in transformer.py)
        result = values[start]
        end = start + 1
        while end < len(values) and pure[end]:
            result = self._side_call(op, result, values[end], test, read_for_truth, True)
            end += 1
        if end < len(values):
            result = self._side_call(op, result, self._chain_from(
                end, op, values, test, read_for_truth, pure), test, read_for_truth, False)
        return result

    def _side_call(self, op, left, right, test, read_for_truth, pure):
        plain = _is_plain(right)
        # (read for its truth, a plain side is read first: a Python value whose truth
        # decides the test makes it a Python bool, NOTE [a plain side that decides a test]
        # in runtime/operators.py)
        call = self._lazy_call(op, left, right, test=test or (read_for_truth and plain))
        if plain:
            # (reading it runs nothing: the runtime learns its dtype before staging)
            call.keywords.append(gast.keyword(arg="plain", value=gast.Constant(
                value=True, kind=None)))
        if pure:
            call.keywords.append(gast.keyword(arg="pure", value=gast.Constant(
                value=True, kind=None)))
        return call

    def _up_to_deciding_constant(self, op, values, pure, test):
        """`values` of an and / or read for its truth, cut after the first constant past the
        first side whose truth decides it (true for `or`, false for `and`; the sides after it
        are never evaluated), the sides before it grouped into one (`a or b or True` is
        `(a or b) or True`, as Python evaluates it), so that the constant is the last call's
        plain side; with the `pure` marks of the sides left."""
        deciding = isinstance(op, gast.Or)
        for i, value in enumerate(values[1:], 1):
            if isinstance(value, gast.Constant) and bool(value.value) is deciding:
                if i == 1:
                    return values[:2], pure[:2]
                return ([self._chain(op, values[:i], test, True, pure[:i]), value],
                        [all(pure[:i]), True])
        return values, pure

    def visit_UnaryOp(self, node):
        if isinstance(node.op, gast.Not):
            self._read_for_truth(node.operand)
        self.generic_visit(node)
        if isinstance(node.op, gast.Not):
            return self._call("not_", node.operand)
        return node

    def visit_IfExp(self, node):
        self._read_for_truth(node.test)
        self.generic_visit(node)
        plain = _is_plain(node.body) and _is_plain(node.orelse)
        call = self._lazy_call("if_exp", node.test, node.body, node.orelse)
        if plain:
            # (reading them runs nothing: a choice of two functions is kept, NOTE [functions
            # chosen by a tensor condition] in runtime/chosen_calls.py)
            call.keywords.append(gast.keyword(arg="plain", value=gast.Constant(value=True,
                                                                               kind=None)))
        return call

    def visit_If(self, node):
        self._read_for_truth(node.test)
        return self.generic_visit(node)

    def visit_While(self, node):
        self._read_for_truth(node.test)
        return self.generic_visit(node)

    def visit_comprehension(self, node):
        for condition in node.ifs:
            self._read_for_truth(condition)
        return self.generic_visit(node)

    def visit_Compare(self, node):
        self.generic_visit(node)
        folded = _folded_comparison(node)
        if folded is not None:
            return folded
        if not isinstance(self._temporaries, set):
            self._temporaries = set()
        if len(node.ops) == 1:
            return self._identity(node)
        operands = [node.left] + list(node.comparators)
        # Middle operands are evaluated once in Python; name the non-trivial ones.
        parts = []
        for i, (op, right) in enumerate(zip(node.ops, operands[1:])):
            left = operands[i]
            if i < len(node.ops) - 1 and not _is_pure(right):
                temp = self.ctx.namer.new("compared")
                self._temporaries.add(temp)
                operands[i + 1] = templates.name(temp)
                right = gast.NamedExpr(target=templates.name(temp, gast.Store()), value=right)
            parts.append(self._identity(gast.Compare(left=copy.deepcopy(left), ops=[op],
                                                     comparators=[right])))
        # (read for its truth, a chain of locals' comparisons is computed beside: NOTE [pure
        # sides of a test fold left])
        pure = node in self._tests and _is_pure_side(node, self.ctx.local_names)
        result = parts[-1]
        for part in reversed(parts[:-1]):
            result = self._lazy_call("and_", part, result)
            if pure:
                result.keywords.append(gast.keyword(arg="pure", value=gast.Constant(
                    value=True, kind=None)))
        return result

    def _identity(self, node):
        """`a is b` -> `ac.is_(a, b)` (and `is not`): a constant chosen under tensor control flow
        is carried as an index, which `is` alone would never find identical (NOTE [constants
        under tensor control flow] in runtime/staging/constants.py)."""
        op = node.ops[0]
        if isinstance(op, (gast.Is, gast.IsNot)):
            name = "is_" if isinstance(op, gast.Is) else "is_not"
            return self._call(name, node.left, node.comparators[0])
        return node

    def visit_For(self, node):
        extra = get_anno(node, Anno.EXTRA_TEST)
        if extra is not None:
            self._read_for_truth(extra)
            set_anno(node, Anno.EXTRA_TEST, self.visit(extra))
        self.generic_visit(node)
        return node
