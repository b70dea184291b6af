"""One pass per function scope: liveness and definedness of local names at each compound statement.

Runs once, after break/continue/return are lowered (so control flow is structured), and before
control flow is converted. Converters read the results through `annos.get_anno`.
"""

from __future__ import annotations

import gast

from .activity import reads_writes
from .annos import Anno, get_anno, set_anno

__all__ = ["analyze"]

_COMPOUND = (gast.If, gast.While, gast.For)
_SCOPES = (gast.FunctionDef, gast.Lambda)


def analyze(function) -> None:
    """Annotate every If / While / For in `function` and in the functions nested in it."""
    for node in gast.walk(function):
        if isinstance(node, _SCOPES):
            _analyze_scope(node)


def _declared(scope) -> set[str]:
    names = set()
    for node in _own_nodes(scope):
        if isinstance(node, (gast.Global, gast.Nonlocal)):
            names.update(node.names)
    return names


def _own_nodes(scope):
    """Nodes of `scope` outside its nested scopes."""
    stack = list(scope.body) if isinstance(scope.body, list) else [scope.body]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES + (gast.ClassDef,)):
            continue
        stack.extend(gast.iter_child_nodes(node))


def _params(scope) -> set[str]:
    args = scope.args
    return {
        a.id
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
        if a is not None
    }


def _analyze_scope(scope) -> None:
    if isinstance(scope, gast.Lambda):
        return  # expressions only: nothing to annotate
    declared = _declared(scope)
    _Liveness(declared).block(scope.body, set())
    _definedness(scope.body, _params(scope), declared)


class _Liveness:
    def __init__(self, declared):
        self.declared = declared

    def block(self, stmts, live):
        for stmt in reversed(stmts):
            live = self.stmt(stmt, live)
        return live

    def stmt(self, node, live_after):
        if isinstance(node, gast.If):
            body = self.block(node.body, live_after)
            orelse = self.block(node.orelse, live_after)
            self._annotate(node, live_after, body | orelse, node.body + node.orelse, set())
            return reads_writes(node.test)[0] | body | orelse
        if isinstance(node, gast.While):
            return self._loop(node, live_after, reads_writes(node.test)[0], set(), set())
        if isinstance(node, gast.For):
            _, targets = reads_writes(node.target)
            return self._loop(node, live_after, set(), targets, reads_writes(node.iter)[0])
        if isinstance(node, (gast.Try, gast.With)):
            return self._block_statement(node, live_after)
        reads, writes = reads_writes(node)
        return (live_after - writes) | reads

    def _block_statement(self, node, live_after):
        # Conservative: any part may run, and the code after may start from any point.
        live = set(live_after)
        for field in ("finalbody", "orelse", "body"):
            live = self.block(getattr(node, field, []), live) | live
        for handler in getattr(node, "handlers", []):
            live |= self.block(handler.body, live_after)
        header = [i.context_expr for i in getattr(node, "items", [])]
        return live | reads_writes(header)[0]

    def _loop(self, node, live_after, test_reads, targets, iter_reads):
        extra = get_anno(node, Anno.EXTRA_TEST)
        if extra is not None:
            test_reads = test_reads | reads_writes(extra)[0]
        after = self.block(node.orelse, live_after)
        live_loop = after | test_reads
        while True:
            body = self.block(node.body, live_loop)
            new = after | test_reads | (body - targets)
            if new == live_loop:
                break
            live_loop = new
        self._annotate(node, after, (body - targets) | test_reads, node.body, test_reads, targets)
        return live_loop | iter_reads

    def _annotate(self, node, live_out, body_live_in, bodies, test_reads, targets=()):
        reads, writes = reads_writes(bodies)
        set_anno(node, Anno.READS, frozenset(reads | test_reads))
        set_anno(node, Anno.LIVE_OUT, frozenset(live_out))
        set_anno(node, Anno.BODY_LIVE_IN, frozenset(body_live_in))
        set_anno(node, Anno.WRITES, frozenset((writes | set(targets)) - self.declared))


def _definedness(stmts, defined, declared):
    defined = set(defined)
    for node in stmts:
        if isinstance(node, _COMPOUND):
            set_anno(node, Anno.DEFINED_IN, frozenset(defined | declared))
        if isinstance(node, gast.If):
            body = _definedness(node.body, defined, declared)
            orelse = _definedness(node.orelse, defined, declared)
            defined = body & orelse
        elif isinstance(node, (gast.While, gast.For)):
            inner = set(defined)
            if isinstance(node, gast.For):
                inner |= reads_writes(node.target)[1]
            _definedness(node.body, inner, declared)
            defined = _definedness(node.orelse, defined, declared)
        elif isinstance(node, (gast.Try, gast.With)):
            for field in ("body", "orelse", "finalbody"):
                _definedness(getattr(node, field, []), defined, declared)
            for handler in getattr(node, "handlers", []):
                _definedness(handler.body, defined, declared)
            if isinstance(node, gast.With):
                defined = _definedness(node.body, defined | reads_writes(
                    [i.optional_vars for i in node.items if i.optional_vars])[1], declared)
            else:
                defined |= _definedness(node.finalbody, defined, declared)
        else:
            defined |= reads_writes(node)[1]
    return defined
