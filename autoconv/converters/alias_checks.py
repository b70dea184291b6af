"""After a statement that may update a tensor in place, the staged values that are that tensor
(or a view of it) in Python are kept in step, or the update refused (NOTE [staged values that
alias in Python] in runtime/staged_aliases.py).

    c = data[k]           ->  c = data[k]
    data.mul_(3)              data.mul_(3)
                              ac.check_aliases()
"""

from __future__ import annotations

import builtins

import gast

from .. import templates
from ..analysis.annos import copy_origin
from ..analysis.nodes import WALKED_FIELDS, walk, walked_fields
from ..transformer import Converter
from .generators import leaves_generators_alone

# Module names whose functions update a tensor in place only through `out=`
_MODULES = frozenset({"torch", "F", "nn", "functional", "math", "np", "numpy", "random"})
_BUILTINS = frozenset(dir(builtins))
_COMPOUND = (gast.If, gast.For, gast.While, gast.With, gast.Try, gast.AsyncFor, gast.AsyncWith)


def _root(node):
    while isinstance(node, (gast.Attribute, gast.Subscript, gast.Call)):
        node = node.func if isinstance(node, gast.Call) else node.value
    return node


def _tensor_method(attr: str) -> bool:
    """A method name of torch.Tensor that updates nothing in place (`x.sum()`)."""
    import torch

    return hasattr(torch.Tensor, attr) and not (attr.endswith("_") and not attr.endswith("__"))


# NOTE [names that only hold numbers]
# `i += 1` updates a tensor in place where `i` is one (or a view of one), so every augmented
# assignment was followed by a check, which made `autoconv-show` hard to read (a check after
# each counter's step). A local name whose every binding in the function, nested functions
# included, is a number constant or arithmetic of such names (`t = 0.0`, `t += h`, `h = h *
# 1.5`) holds a Python number wherever it is bound: Python's arithmetic of numbers gives a
# number. Parameters, loop and `with` targets, unpacking, `global` / `nonlocal` names and any
# other binding (a call, an item) leave the name out: its value may be a tensor.

def _number_value(node, numbers) -> bool:
    """Whether expression `node` is a Python number given that the names in `numbers` are."""
    if isinstance(node, gast.Constant):
        return type(node.value) in (int, float, bool, complex)
    if isinstance(node, gast.Name):
        return node.id in numbers
    if isinstance(node, gast.BinOp):
        return _number_value(node.left, numbers) and _number_value(node.right, numbers)
    if isinstance(node, gast.UnaryOp):
        return _number_value(node.operand, numbers)
    return False


def number_names(function) -> frozenset:
    """The names of `function` that hold only Python numbers (NOTE [names that only hold
    numbers])."""
    bindings, excluded, recorded = {}, set(), set()
    for n in walk(function):
        cls = n.__class__
        if cls in (gast.Assign, gast.AugAssign, gast.AnnAssign):
            targets = n.targets if cls is gast.Assign else [n.target]
            for target in targets:
                if isinstance(target, gast.Name) and n.value is not None:
                    bindings.setdefault(target.id, []).append(n.value)
                    recorded.add(id(target))
                else:  # (`a, b = ...`: each name may be anything the value unpacks to)
                    excluded.update(t.id for t in walk(target) if isinstance(t, gast.Name))
        elif cls in (gast.Global, gast.Nonlocal):
            excluded.update(n.names)
        elif cls in (gast.Import, gast.ImportFrom):
            excluded.update((a.asname or a.name).partition(".")[0] for a in n.names)
        elif cls in (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda):
            excluded.update(a.id for a in walk(n.args) if isinstance(a, gast.Name))
            if cls is not gast.Lambda:
                excluded.add(n.name)
        elif (isinstance(n, gast.Name) and not isinstance(n.ctx, gast.Load)
              and id(n) not in recorded):
            # (a loop's or a `with`'s target, `except ... as e`, a walrus, a comprehension's
            # target, `del`: bound to what autoconv does not look at here)
            excluded.add(n.id)
    numbers = {name for name in bindings if name not in excluded}
    changed = True
    while changed:  # (the greatest set whose every binding is a number given the set)
        changed = False
        for name in list(numbers):
            if not all(_number_value(v, numbers) for v in bindings[name]):
                numbers.discard(name)
                changed = True
    return frozenset(numbers)


def _may_update(node, runtime: str, numbers=frozenset(), known=None) -> bool:
    """Whether statement `node` (nested statements included) may update a tensor in place:
    an augmented assignment (not of a name that only holds numbers: `numbers`), a store into
    an item, an in-place method (`x.add_(1)`), `out=`, or a call of a function or method
    autoconv cannot tell from a pure one (`helper(data)`, `mem.write(k, v)`). `known`: {id():
    answer} of statements under `node` asked before, whose subtrees are not walked again (the
    pass asks a compound statement's inner blocks first)."""
    for n in walk(node) if not known else _walk_unknown(node, known):
        if n is True:  # (a statement under `node` known to update)
            return True
        cls = n.__class__
        if cls is gast.AugAssign:
            if isinstance(n.target, gast.Name) and n.target.id in numbers:
                continue
            return True
        if cls in (gast.Assign, gast.Delete) and any(
                isinstance(t, gast.Subscript) for t in n.targets):
            return True
        if cls is not gast.Call:
            continue
        if any(k.arg == "out" for k in n.keywords):
            return True
        func = n.func
        root = _root(func)
        if isinstance(root, gast.Name) and root.id == runtime:
            continue
        if isinstance(func, gast.Name):
            if func.id not in _BUILTINS:
                return True
        elif isinstance(func, gast.Attribute):
            attr = func.attr
            if attr.endswith("_") and not attr.startswith("_"):
                return True
            if isinstance(root, gast.Name) and root.id in _MODULES:
                continue
            if not _tensor_method(attr):
                return True
    return False


def _walk_unknown(node, known) -> list:
    """`walk(node)`, but a statement under `node` in `known` stands for its subtree: left out
    where it may not update, True where it may (`_may_update` answers at the first)."""
    stack, out = [node], []
    push, pop, emit = stack.append, stack.pop, out.append
    while stack:
        current = pop()
        if current is not node:
            answer = known.get(id(current))
            if answer is not None:
                if answer:
                    return [True]
                continue
        emit(current)
        cls, attrs = current.__class__, current.__dict__
        for field in WALKED_FIELDS.get(cls) or walked_fields(cls):  # (as `walk`)
            value = attrs.get(field)
            if value is None or value.__class__ is str:
                continue
            if value.__class__ is list:
                stack.extend([v for v in value if hasattr(v, "_fields")])
            elif hasattr(value, "_fields"):
                push(value)
    return out


def _runtime_statement(stmt, runtime: str) -> bool:
    """A statement an earlier pass added after the user's (a write-back: NOTE [in-place
    updates of a choice] in autoconv/converters/choices.py)."""
    value = getattr(stmt, "value", None)
    if not isinstance(stmt, (gast.Expr, gast.Assign)) or not isinstance(value, gast.Call):
        return False
    root = _root(value.func)
    return isinstance(root, gast.Name) and root.id == runtime


@leaves_generators_alone
class AliasCheckConverter(Converter):
    """Adds `ac.check_aliases()` after each statement that may update a tensor in place."""

    statements_only = True

    def __init__(self, ctx):
        super().__init__(ctx)
        self._numbers = None
        # id(statement) -> `_may_update`'s answer: a compound statement's inner blocks are
        # visited first, and its own question reads their answers instead of walking them again
        self._updates = {}

    def generic_visit(self, node):
        if self._numbers is None:  # (the function the pass is given: visited first)
            self._numbers = number_names(node)
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], gast.stmt):
                setattr(node, field, self._block(block))
        return node

    def _block(self, stmts) -> list:
        runtime = self.ctx.runtime
        out, pending = [], None
        for stmt in stmts:
            if pending is not None and not _runtime_statement(stmt, runtime):
                out.append(self._check(pending))
                pending = None
            out.append(stmt)
            if _runtime_statement(stmt, runtime):
                continue
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef,
                                 gast.Return, gast.Raise, gast.Break, gast.Continue)):
                continue
            updates = self._updates[id(stmt)] = _may_update(
                stmt, runtime, self._numbers, self._updates)
            if updates:
                pending = stmt
        if pending is not None:
            out.append(self._check(pending))
        return out

    def _check(self, stmt):
        check = templates.replace("ac.check_aliases()", ac=self.ctx.runtime)
        for new in check:
            copy_origin(new, stmt)
            new.value._autoconv_alias_check = True
        return check[0] if isinstance(check, list) else check


def is_alias_check(node) -> bool:
    """Whether `node` is a call this pass added, which later passes read as the runtime's own
    (it rebinds no global and no attribute: control_flow.py's `_updated_attributes`)."""
    return getattr(node, "_autoconv_alias_check", False)
