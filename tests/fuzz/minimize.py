"""Shrink a failing program while it keeps failing the same way.

Greedy passes over the tree until none applies: delete a statement, replace a compound statement
by one of its bodies, replace an expression by one of its parts or a constant, drop inputs. A
candidate counts only if plain Python still runs it on every input and the differential check
fails with the same `Failure.signature()`. The `guardN` counters that bound while loops are kept
(their increments and their place in the loop test), so every candidate still terminates.

A candidate must also stay a program the generator could have written (`_valid`): no constant
where Python raises TypeError if it ran (`0(...)`, `0[1]`, `0.item()`, `for i in 0`, `raise 0`,
which a staged branch traces even where Python never runs it), no read of a local that no
statement binds on every path to the read (a deleted `a = ...` or `guard1 = 0`; a loop's
variable read outside its loop), `m` (generator.UNBOUND) bound only inside loops, and no read
of a name the module does not define. Otherwise the minimised program fails for another reason than the original (seed 1:
`2 == q` with `q` never bound, `m = 0` moved out of its loop into an `if 0:`, which autoconv
specialises as documented).
"""

from __future__ import annotations

import ast
import builtins
import copy
import time

from .generator import GUARD, UNBOUND
from .runner import Invalid, check

__all__ = ["minimize"]


def _is_guard_stmt(node) -> bool:
    return (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)
            and node.target.id.startswith(GUARD))


def _guard_test(test):
    """The `guardN < K` comparison inside a while test, if any."""
    for node in ast.walk(test):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                and node.left.id.startswith(GUARD)):
            return node
    return None


def _bodies(tree):
    """Every statement list in the tree, as (owner, field)."""
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield node, name


def _statement_edits(tree):
    """Candidate trees with one statement removed or one compound statement flattened."""
    count = sum(len(getattr(o, f)) for o, f in _bodies(tree))
    for index in range(count):
        for variant in range(4):
            new = copy.deepcopy(tree)
            spots = [(o, f, i) for o, f in _bodies(new) for i in range(len(getattr(o, f)))]
            owner, field, i = spots[index]
            stmts = getattr(owner, field)
            node = stmts[i]
            if _is_guard_stmt(node) or isinstance(node, ast.FunctionDef):
                break
            if variant == 0:
                replacement = []
            elif variant in (1, 2) and isinstance(node, (ast.If, ast.For, ast.While)):
                replacement = node.body if variant == 1 else node.orelse
                replacement = [s for s in replacement if not _is_guard_stmt(s)]
                if variant == 2 and not replacement:
                    continue
            elif variant == 3 and isinstance(node, ast.If) and node.orelse:
                node.orelse = []
                replacement = [node]
            else:
                continue
            new_stmts = stmts[:i] + replacement + stmts[i + 1:]
            if not new_stmts and isinstance(owner, ast.FunctionDef):
                continue
            setattr(owner, field, new_stmts or [ast.Pass()])
            yield new


def _simpler(node):
    """Simpler expressions to put in place of `node`."""
    if isinstance(node, ast.BinOp):
        yield node.left
        yield node.right
    elif isinstance(node, ast.BoolOp):
        yield from node.values
        if len(node.values) > 2:
            for i in range(len(node.values)):
                yield ast.BoolOp(node.op, node.values[:i] + node.values[i + 1:])
    elif isinstance(node, ast.IfExp):
        yield node.body
        yield node.orelse
    elif isinstance(node, ast.UnaryOp):
        yield node.operand
    elif isinstance(node, ast.Compare) and len(node.ops) > 1:
        yield ast.Compare(node.left, node.ops[:1], node.comparators[:1])
    elif isinstance(node, ast.Call) and node.args and not isinstance(node.func, ast.Name):
        yield from node.args
    if not isinstance(node, ast.Constant):
        yield ast.Constant(0)
        yield ast.Constant(1)


def _expression_edits(tree):
    """Candidate trees with one expression replaced by a simpler one."""
    def slots(root):
        out = []
        for parent in ast.walk(root):
            if _is_guard_stmt(parent) or isinstance(parent, (ast.arguments, ast.arg)):
                continue
            for field, value in ast.iter_fields(parent):
                if isinstance(parent, ast.While) and field == "test":
                    continue  # handled below: the guard must stay in the test
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    if isinstance(item, ast.expr) and not isinstance(item.ctx if hasattr(item, "ctx") else None, ast.Store):
                        if isinstance(item, ast.Name) and item.id.startswith(GUARD):
                            continue
                        out.append((parent, field, i if isinstance(value, list) else None, item))
        return out

    count = len(slots(tree))
    for index in range(count):
        probe = copy.deepcopy(tree)
        parent, field, i, item = slots(probe)[index]
        if _guard_test(item) is not None and isinstance(parent, ast.BoolOp):
            continue
        for option in list(_simpler(item)):
            new = copy.deepcopy(tree)
            parent, field, i, _ = slots(new)[index]
            option = copy.deepcopy(option)
            if i is None:
                setattr(parent, field, option)
            else:
                getattr(parent, field)[i] = option
            yield new
    for node_index, node in enumerate(n for n in ast.walk(tree) if isinstance(n, ast.While)):
        guard = _guard_test(node.test)
        if guard is not None and guard is not node.test:
            new = copy.deepcopy(tree)
            loop = [n for n in ast.walk(new) if isinstance(n, ast.While)][node_index]
            loop.test = _guard_test(loop.test)
            yield new


# (parent type, field) where a constant raises TypeError when Python evaluates it
_NO_CONSTANT = {(ast.Call, "func"), (ast.Subscript, "value"), (ast.Attribute, "value"),
                (ast.For, "iter"), (ast.Raise, "exc"), (ast.Raise, "cause")}


def _constant_misplaced(tree) -> bool:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.Constant) and (type(parent), field) in _NO_CONSTANT:
                return True
    return False


class _Unbound(Exception):
    pass


def _reads_unbound(fn: ast.FunctionDef, module_names) -> bool:
    """Whether `fn` may read a local before a statement binds it on every path to the read (a
    parameter, an assignment before it; a loop's variable inside its loop), other than `UNBOUND`,
    which only loops may bind; or a name neither it, the module nor builtins define."""
    local = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)
             and isinstance(n.ctx, ast.Store)} | {a.arg for a in fn.args.args}

    def check(node, bound):
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                if n.id in bound or (n.id == UNBOUND and UNBOUND in local):
                    continue
                if n.id in local or not (n.id in module_names or hasattr(builtins, n.id)):
                    raise _Unbound(n.id)

    def stores(target):
        return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}

    def block(stmts, bound, in_loop):
        for stmt in stmts:
            bound = statement(stmt, bound, in_loop)
            if bound is None:  # a jump: nothing after it runs
                return None
        return bound

    def joined(*paths):
        falls = [p for p in paths if p is not None]
        return set.intersection(*falls) if falls else None

    def statement(stmt, bound, in_loop):
        if isinstance(stmt, ast.Assign):
            check(stmt.value, bound)
            for target in stmt.targets:
                if not isinstance(target, ast.Name):
                    check(target, bound)  # `s.v = ...` reads `s`
            names = set().union(*(stores(t) for t in stmt.targets))
            if UNBOUND in names and not in_loop:
                raise _Unbound(UNBOUND)  # `m` outside loops: not a program the generator writes
            return bound | names
        if isinstance(stmt, ast.AugAssign):
            check(stmt.value, bound)
            if isinstance(stmt.target, ast.Name):
                if stmt.target.id == UNBOUND and not in_loop:
                    raise _Unbound(UNBOUND)
                check(ast.Name(stmt.target.id, ast.Load()), bound)
            else:
                check(stmt.target, bound)
            return bound
        if isinstance(stmt, (ast.Return, ast.Raise)):
            for child in ast.iter_child_nodes(stmt):
                check(child, bound)
            return None
        if isinstance(stmt, (ast.Break, ast.Continue)):
            return None
        if isinstance(stmt, ast.If):
            check(stmt.test, bound)
            return joined(block(stmt.body, set(bound), in_loop),
                          block(stmt.orelse, set(bound), in_loop))
        if isinstance(stmt, ast.While):
            check(stmt.test, bound)
            block(stmt.body, set(bound), True)
            return block(stmt.orelse, set(bound), in_loop)  # the body may make no trip
        if isinstance(stmt, ast.For):
            check(stmt.iter, bound)
            block(stmt.body, bound | stores(stmt.target), True)
            return block(stmt.orelse, set(bound), in_loop)
        if isinstance(stmt, ast.Try):
            body = block(stmt.body, set(bound), in_loop)
            handled = [block(h.body, set(bound), in_loop) for h in stmt.handlers]
            after = joined(body, *handled)
            final = block(stmt.finalbody, set(bound), in_loop)
            return None if after is None or final is None else after | final
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            return bound | {stmt.name}
        for child in ast.iter_child_nodes(stmt):
            check(child, bound)
        return bound

    try:
        block(fn.body, {a.arg for a in fn.args.args}, False)
    except _Unbound:
        return True
    return False


def _valid(tree) -> bool:
    """Whether a candidate stays a program the generator could write (see the module's
    docstring)."""
    if _constant_misplaced(tree):
        return False
    module_names = {"torch"}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            module_names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module_names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            module_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return not any(_reads_unbound(node, module_names) for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name != "traced")


def minimize(source: str, inputs: list, signature: tuple, *, compile: bool = False,
             export: bool = False, budget_s: float = 300.0, time_limit: float = 30.0, log=None):
    """The smallest program and inputs found (within `budget_s`) that fail with `signature`."""
    deadline = time.monotonic() + budget_s
    tree = ast.parse(source)
    tries = [0]

    def fails(candidate_tree, candidate_inputs):
        if time.monotonic() > deadline:
            return False
        if not _valid(candidate_tree):
            return False
        tries[0] += 1
        try:
            text = ast.unparse(ast.fix_missing_locations(candidate_tree)) + "\n"
            failure = check(text, candidate_inputs, compile=compile, export=export,
                            time_limit=time_limit)
        except (Invalid, RecursionError):
            return False
        return failure is not None and failure.signature() == signature

    # Fewer inputs first: every later candidate is then cheaper to check.
    for row in list(inputs):
        fewer = [r for r in inputs if r is not row]
        if fewer and fails(tree, fewer):
            inputs = fewer
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for edits in (_statement_edits, _expression_edits):
            for candidate in edits(tree):
                if fails(candidate, inputs):
                    tree, progress = candidate, True
                    break
            if progress:
                break
    if log:
        log(f"  minimised in {tries[0]} checks")
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n", inputs
