"""One pass per function scope: liveness and definedness of local names at each compound statement.

Runs once, after break/continue/return are lowered (so control flow is structured), and before
control flow is converted. Converters read the results through `annos.get_anno`.
"""

from __future__ import annotations

import gast

from .activity import activity_of, cell_stores, reads_writes
from .nodes import walk_statements
from .annos import Anno, get_anno, set_anno

__all__ = ["analyze"]

_COMPOUND = (gast.If, gast.While, gast.For)
_SCOPES = (gast.FunctionDef, gast.Lambda)
_TRIES = (gast.Try, gast.TryStar)
# A handler's last statement after which the code following the `try` does not run
_LEAVES = (gast.Raise, gast.Return, gast.Break, gast.Continue)


def analyze(function) -> None:
    """Annotate every If / While / For in `function` and in the functions nested in it."""
    statements = walk_statements(function)
    # (NOTE [a function made in a staged body assigning a variable]: looked for only where
    # some function declares a `nonlocal`)
    cells = any(node.__class__ is gast.Nonlocal for node in statements)
    for node in statements:
        if isinstance(node, _SCOPES):
            _analyze_scope(node, cells)


def _declared(scope) -> set[str]:
    names = set()
    for node in _own_nodes(scope):
        if isinstance(node, (gast.Global, gast.Nonlocal)):
            names.update(node.names)
    return names


def _own_nodes(scope):
    """Statements of `scope` outside its nested scopes (global and nonlocal are statements)."""
    stack = list(scope.body) if isinstance(scope.body, list) else []
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES + (gast.ClassDef,)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            value = getattr(node, field, None)
            if value.__class__ is list:
                stack.extend(value)


def _params(scope) -> set[str]:
    args = scope.args
    return {
        a.id
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
        if a is not None
    }


def _analyze_scope(scope, cells=False) -> None:
    if isinstance(scope, gast.Lambda):
        return  # expressions only: nothing to annotate
    declared = _declared(scope)
    activity = _Activity(cells)
    _, assigned, mutated = activity.block(scope.body)
    # NOTE [changed objects]: a name whose object a body changes in place (`s.v = x`,
    # `d['k'] += 1`) is assigned by that body too, so that the object's new contents are state
    # the statement carries; a parameter's object outlives the call, so its changes are live at
    # the end. Names of other scopes (globals, closures) are not: the runtime refuses changes to
    # their objects in staged bodies.
    params = _params(scope)
    local = (params | assigned) - declared
    activity.local = local
    _Liveness(declared, activity).block(scope.body, mutated & params)
    _definedness(scope.body, _params(scope), declared, activity)


# NOTE [a function made in a staged body assigning a variable]
# `def tick(): nonlocal n; n += 1`, made and called in a statement's body (the lowering of an
# early `return` moves the rest of the function, a `def` among it, into an `if`'s branch):
# the call assigns `n`, but no statement of the body does, so the statement did not carry
# `n`, and the body function read and wrote the enclosing function's own `n` through its
# closure: run once per trace (a branch's trace and its probe, a loop body's attempts) it gave
# `x - 2` where Python gives `x - 1`, silently (session 47's repro). A staged body runs its
# Python more than once; only what it gives back counts once. So a `nonlocal` a function
# made in a body assigns (`activity.cell_stores`, through the functions nested in it) is a
# write of the statement where the function binds the name, as an assignment is: the
# statement carries `n`, its body function takes `n` as a parameter or keeps it in the
# function's cells (NOTE [functions private to a statement] in converters/control_flow.py),
# and the nested function's `nonlocal` binds the body's `n`. Its reads count as reads there
# too (`free_reads`: a declared `nonlocal` is the enclosing scope's name). A `global`, or a
# `nonlocal` that no function up to the converted one binds, cannot be carried: the
# function's first statement refuses a call in a staged body, at its line
# (`ac.assigns_outside`), as a body assigning a declared global is refused. A closure made
# outside the body that assigns its `nonlocal` is refused by the runtime (NOTE [Python state
# a staged body changes] in runtime/staging/python_state.py).


class _Activity:
    """reads_writes of statements, each computed once: a compound statement's comes from its
    parts', so nested bodies are not walked again for every enclosing statement."""

    def __init__(self, cells=False):
        self.cache = {}
        self.local = set()
        self.cells = {} if cells else None  # statement's id -> its cell_stores

    def of(self, node):
        """(reads, writes, mutated) of a statement (see activity_of)."""
        found = self.cache.get(id(node))
        if found is not None:
            return found
        if node.__class__ in (gast.If, gast.While):
            reads, writes, mutated = (set(x) for x in activity_of(node.test))
            self._add_block(node.body + node.orelse, reads, writes, mutated)
        elif node.__class__ is gast.For:
            reads, writes, mutated = (set(x) for x in activity_of(node.iter))
            target = activity_of(node.target)
            writes |= target[1]
            mutated |= target[2]
            self._add_block(node.body + node.orelse, reads, writes, mutated)
        else:
            reads, writes, mutated = activity_of(node)
        found = self.cache[id(node)] = (reads, writes, mutated)
        return found

    def _add_block(self, stmts, reads, writes, mutated):
        for stmt in stmts:
            r, w, m = self.of(stmt)
            reads |= r
            writes |= w
            mutated |= m

    def block(self, stmts):
        reads, writes, mutated = set(), set(), set()
        self._add_block(stmts, reads, writes, mutated)
        return reads, writes, mutated

    def cell_stores(self, stmts) -> set:
        """The names the functions and classes defined in `stmts` assign through `nonlocal`
        (NOTE [a function made in a staged body assigning a variable])."""
        if self.cells is None:
            return set()
        stored = set()
        for stmt in stmts:
            found = self.cells.get(id(stmt))
            if found is None:
                if stmt.__class__ in (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef):
                    found = cell_stores(stmt)
                else:
                    found = set()
                    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                        value = getattr(stmt, field, None)
                        if value.__class__ is list:
                            found |= self.cell_stores(value)
                self.cells[id(stmt)] = found
            stored |= found
        return stored


class _Liveness:
    def __init__(self, declared, activity):
        self.declared = declared
        self.activity = activity
        # The names live where an exception raised by the statement being analysed goes: the
        # handlers and `finally` of the `try` statements around it (NOTE [liveness of a try])
        self.raised = set()

    def block(self, stmts, live):
        for stmt in reversed(stmts):
            live = self.stmt(stmt, live) | self.raised
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
        if isinstance(node, gast.With):
            # Straight-line code (as AutoGraph takes it): a context manager that suppresses an
            # exception (contextlib.suppress) is the exception. Taking every part as optional
            # made names the body assigns and reads (`with torch.enable_grad(): loss = f(y)`
            # then `grad(loss, y)`) look read before assigned: state of an enclosing loop.
            targets = reads_writes([i.optional_vars for i in node.items if i.optional_vars])[1]
            header = reads_writes([i.context_expr for i in node.items])[0]
            return (self.block(node.body, live_after) - targets) | header
        if isinstance(node, _TRIES):
            return self._try(node, live_after)
        reads, writes, _ = self.activity.of(node)
        if node.__class__ is gast.Raise:
            # (left as written only where a `try` or a `with` may catch it: the code after
            # the raise never runs, what runs next is what `raised` holds)
            return reads | self.raised
        return (live_after - writes) | reads

    def _try(self, node, live_after):
        """The names live before a `try` (NOTE [liveness of a try])."""
        # (a `try` of several assignments staged as one value: autoconv/converters/tries.py)
        set_anno(node, Anno.LIVE_OUT, frozenset(live_after))
        outer = self.raised
        # The `finally` ends the statement normally, or re-raises to what an enclosing `try`
        # runs next (jumps are flags by now: their paths are the normal one).
        finally_normal = self.block(node.finalbody, set(live_after))
        finally_raised = self.block(node.finalbody, set(outer)) if node.finalbody else outer
        self.raised = finally_raised
        try:
            handled = self._handlers(node, finally_normal)
            orelse = self.block(node.orelse, set(finally_normal))
            self.raised = handled | finally_raised
            body = self.block(node.body, orelse)
        finally:
            self.raised = outer
        # (the handlers and the `finally` may start before the body's first statement)
        return body | handled | finally_raised

    def _handlers(self, node, live_after):
        """The names live at the entry of some handler of the `try` `node`."""
        handled = set()
        while True:
            live = set()
            for handler in node.handlers:
                # `except E as e` binds `e` before the handler and deletes it after: never
                # live-in.
                bound = {handler.name.id} if handler.name is not None else set()
                live |= self.block(handler.body, live_after | handled) - bound
            # (`except*`: a handler may run after another, until no name is added)
            if node.__class__ is gast.Try or live <= handled:
                return live | handled
            handled |= live

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
        reads, writes, mutated = self.activity.block(bodies)
        # See NOTE [changed objects].
        writes = writes | (mutated & self.activity.local)
        # NOTE [a function made in a staged body assigning a variable]
        writes |= self.activity.cell_stores(bodies) & self.activity.local
        set_anno(node, Anno.READS, frozenset(reads | test_reads))
        set_anno(node, Anno.MUTATED, frozenset(mutated))
        set_anno(node, Anno.LIVE_OUT, frozenset(live_out))
        set_anno(node, Anno.BODY_LIVE_IN, frozenset(body_live_in))
        set_anno(node, Anno.WRITES, frozenset((writes | set(targets)) - self.declared))


# NOTE [liveness of a try]
# An exception may leave a `try`'s body at any point, before its first statement included, so
# the names live at each handler's entry, and at the `finally`'s where it re-raises, are live
# throughout the body (`_Liveness.raised`, added at every statement boundary of the body) and
# before the `try`. The names live after the statement are live before it only through the
# paths that reach its end: the body, then the `else`, then the `finally`; a handler, then the
# `finally`. So `try: w = x * 2 except RuntimeError: w = x` then `out + w.max()` does not read
# `w` before the `try`, where taking every name live after the `try` as live before it made
# `w` state of an enclosing loop, with no value on the `if`'s other path (tester54,
# torch-kmeans' ConstrainedKMeans: a false refusal). An exception raised in a handler, the
# `else` or the `finally` goes to the enclosing `try` (its names are `raised` there); one that
# leaves the function carries nothing, as everywhere else in this analysis. Sound above all:
# a name left out is state a staged statement drops (a wrong number).


def _definedness(stmts, defined, declared, activity):
    defined = set(defined)
    for node in stmts:
        if isinstance(node, _COMPOUND):
            set_anno(node, Anno.DEFINED_IN, frozenset(defined | declared))
        if isinstance(node, gast.If):
            body = _definedness(node.body, defined, declared, activity)
            orelse = _definedness(node.orelse, defined, declared, activity)
            defined = body & orelse
        elif isinstance(node, (gast.While, gast.For)):
            inner = set(defined)
            if isinstance(node, gast.For):
                inner |= reads_writes(node.target)[1]
            _definedness(node.body, inner, declared, activity)
            defined = _definedness(node.orelse, defined, declared, activity)
        elif isinstance(node, gast.With):
            defined = _definedness(node.body, defined | reads_writes(
                [i.optional_vars for i in node.items if i.optional_vars])[1], declared, activity)
        elif isinstance(node, _TRIES):
            defined = _try_definedness(node, defined, declared, activity)
        else:
            defined |= activity.of(node)[1]
    return defined


def _try_definedness(node, defined, declared, activity):
    """The names certainly bound after a `try` that completes normally (definite assignment):
    those its body and `else` bind where every handler that falls through binds them too, and
    those its `finally` binds.

    A handler or a `finally` may start after any statement of the body, so their own compound
    statements see only the names bound before the `try`. Taking no name of the body as bound
    after it made a number the body reads (`try: r = x.sum().item()`, then a staged `if r > 1`)
    no operand of the staged statements after it: their bodies read it from their closure,
    where torch.tensor of the traced number failed and the `if` was specialised (tester28 s03).
    """
    after = _definedness(node.orelse, _definedness(node.body, defined, declared, activity),
                         declared, activity)
    for handler in node.handlers:
        # `except E as e` deletes `e` when the handler ends
        bound = {handler.name.id} if handler.name is not None else set()
        handled = _definedness(handler.body, defined | bound, declared, activity) - bound
        if not handler.body or handler.body[-1].__class__ not in _LEAVES:
            after &= handled
    return after | _definedness(node.finalbody, defined, declared, activity)
