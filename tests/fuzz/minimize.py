"""Shrink a failing program while it keeps failing the same way.

Greedy passes over the tree until none applies: delete a statement, replace a compound statement
by one of its bodies, replace an expression by one of its parts or a constant, drop inputs. A
candidate counts only if plain Python still runs it on every input and the differential check
fails with the same `Failure.signature()`. The `guardN` counters that bound while loops are kept
(their increments and their place in the loop test), so every candidate still terminates.
"""

from __future__ import annotations

import ast
import copy
import time

from .generator import GUARD
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


def minimize(source: str, inputs: list, signature: tuple, *, compile: bool = False,
             budget_s: float = 300.0, time_limit: float = 30.0, log=None):
    """The smallest program and inputs found (within `budget_s`) that fail with `signature`."""
    deadline = time.monotonic() + budget_s
    tree = ast.parse(source)
    tries = [0]

    def fails(candidate_tree, candidate_inputs):
        if time.monotonic() > deadline:
            return False
        tries[0] += 1
        try:
            text = ast.unparse(ast.fix_missing_locations(candidate_tree)) + "\n"
            failure = check(text, candidate_inputs, compile=compile, time_limit=time_limit)
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
