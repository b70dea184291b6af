"""A variable a loop binds on some paths only carries a flag of whether it is bound; a read of
it where it may be unbound checks the flag (AutoGraph's Undefined values and `ag__.ld`).

    for v in x:                        last_bound = False
        if v > 0:                      for v in x:
            last = v          ->           if v > 0:
    return last                                last = v
                                               last_bound = True
                                       return ac.ld(last, last_bound, 'last')

A staged loop carries such a variable with a placeholder (zeros) on the paths that leave it
unbound (NOTE [loop-created variables] in runtime/staging/torch.py); without the flag the graph
returned the placeholder where Python raises UnboundLocalError. The flag is an ordinary
variable, so staged statements carry it as they carry a break flag, and `ac.ld` turns a traced
one into a graph assertion raising Python's UnboundLocalError when the graph runs (nothing
raises while tracing).

Only where it is needed: a name is flagged when some loop in the function binds it on some
paths of its body only, or binds it inside an `if` (whose other branch skips the loop), and some
read of it comes where it may be unbound (a body that always binds it needs no flag: the loop's
own check covers zero iterations; the read checks for the placeholder a loop run as Python
leaves, NOTE [reads after a loop of no trip]) (by definite assignment, as
Python's compiler reasons). A name also bound in a way the pass does not follow (an `except ...
as`, an import, a nested `def`, `del`, a walrus) or read by a nested function, lambda or
comprehension keeps the behaviour it had.

Runs after calls and subscripts are converted (`ac.ld` is the runtime's, not a user call) and
before asserts, jumps and `and` / `or` are lowered, which then treat the flag as any variable;
definite assignment here follows `break`, `continue`, `return` and `raise` itself.
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.nodes import children, walk, walk_statements
from ..transformer import Converter
from .generators import leaves_generators_alone

# Set on a Name node that reads a variable without the check of its bound flag.
UNCHECKED = "_autoconv_unchecked"
_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)
_COMPREHENSIONS = (gast.ListComp, gast.SetComp, gast.DictComp, gast.GeneratorExp)
_JUMPS = (gast.Break, gast.Continue, gast.Return, gast.Raise)


class _Top(frozenset):
    """Every name: the definitely-assigned set after a jump (no path reaches there)."""

    def __and__(self, other):
        return other

    __rand__ = __and__

    def __or__(self, other):
        return self

    __ror__ = __or__

    def __contains__(self, name):
        return True


_TOP = _Top()


def _meet(a, b):
    if isinstance(a, _Top):
        return b
    if isinstance(b, _Top):
        return a
    return a & b


def _targets(node) -> set:
    """Names an assignment target binds (not the names a subscript or attribute target reads:
    `stats['n'] = v` binds nothing)."""
    return {n.id for n in walk(node)
            if n.__class__ is gast.Name and isinstance(n.ctx, gast.Store)}


def _unbinds(node) -> set:
    """Names `node` (a statement, with what is nested in it) unbinds: each `del name` and
    each `except ... as name`, which Python deletes when its handler ends."""
    out = set()
    for n in walk(node):
        if n.__class__ is gast.Name and n.ctx.__class__ is gast.Del:
            out.add(n.id)
        elif n.__class__ is gast.ExceptHandler and n.name is not None:
            out |= _targets(n.name)
    return out


def _deleted(stmt) -> list:
    """The Name nodes a `del` statement unbinds (not `del d[k]` / `del s.a`: they unbind
    nothing)."""
    out, stack = [], list(stmt.targets)
    while stack:
        target = stack.pop()
        if target.__class__ is gast.Name:
            out.append(target)
        elif target.__class__ in (gast.Tuple, gast.List):
            stack.extend(target.elts)
    return out


def _own_expressions(stmt):
    """The expressions of `stmt` itself, not of the statements nested in it."""
    if isinstance(stmt, (gast.If, gast.While)):
        return [stmt.test]
    if isinstance(stmt, (gast.For, gast.AsyncFor)):
        return [stmt.iter]
    if isinstance(stmt, (gast.With, gast.AsyncWith)):
        return [item.context_expr for item in stmt.items]
    if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
        return _outer_expressions(stmt)
    if isinstance(stmt, gast.Try):
        return []
    if isinstance(stmt, gast.Assign):
        return [stmt.value]
    if isinstance(stmt, gast.AugAssign):
        return [stmt.value]
    if isinstance(stmt, gast.AnnAssign):
        return [stmt.value] if stmt.value is not None else []
    return [stmt]


def _outer_expressions(scope) -> list:
    """The expressions of a def, lambda or class that run where it is defined, in the scope
    around it: its parameters' defaults, its decorators, a class's bases and keywords."""
    out = list(getattr(scope, "decorator_list", ()))
    if isinstance(scope, gast.ClassDef):
        return out + list(scope.bases) + [k.value for k in scope.keywords]
    args = scope.args
    return out + list(args.defaults) + [d for d in args.kw_defaults if d is not None]


def _parameters(scope) -> set:
    """The names a def or lambda binds as its parameters (its own, not the enclosing
    function's: `lambda y, k=k: y * k` reads the enclosing `k` in its default only)."""
    args = getattr(scope, "args", None)
    if not isinstance(args, gast.arguments):
        return set()
    return {a.id for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg,
                           args.kwarg) if a is not None}


def _loads(expr):
    """Name loads in `expr` outside nested lambdas and comprehensions (a lambda's defaults
    are read where it is made: in)."""
    stack, out = [expr], []
    while stack:
        node = stack.pop()
        if node.__class__ is gast.Name:
            # (a returned choice's sources, NOTE [returned choices]: the choice reads the taken
            # side only, so they are passed as they are, placeholder and all)
            if isinstance(node.ctx, gast.Load) and not getattr(node, UNCHECKED, False):
                out.append(node)
            continue
        if node.__class__ is gast.Lambda:
            stack.extend(_outer_expressions(node))
            continue
        if isinstance(node, _SCOPES + _COMPREHENSIONS):
            continue
        stack.extend(children(node))
    return out


class _Definedness:
    """Definite assignment over one function's statements. `visit_read(name node, defined)` is
    called for every read in the function's own expressions, `visit_loop(loop, partial,
    created, in_branch)` for every loop with the names its body binds on some paths only, and
    all the names it binds, unbound before it; `in_branch` where the loop is inside an `if` (a
    path may skip it altogether)."""

    def __init__(self, on_read, on_loop, on_if=None, on_unbind=None):
        self.on_read, self.on_loop, self.on_if = on_read, on_loop, on_if
        self.on_unbind = on_unbind or (lambda names: None)
        self.exits = None  # the defined sets at the break / continue of the innermost loop
        self.branches = 0  # how many ifs enclose the statement
        self.dead = []  # the statements no path reaches (after a jump in their block)
        self.breaks = 0  # how many `break`s of the innermost loop were seen

    def block(self, body, defined):
        for stmt in body:
            if isinstance(defined, _Top):
                self.dead.append(stmt)
            defined = self.statement(stmt, defined)
        return defined

    def reads(self, stmt, defined):
        for expr in _own_expressions(stmt):
            for name in _loads(expr):
                self.on_read(stmt, name, defined)

    def statement(self, stmt, defined):
        cls = stmt.__class__
        self.reads(stmt, defined)
        if cls is gast.Assign:
            return defined | set().union(*(_targets(t) for t in stmt.targets))
        if cls is gast.AugAssign:
            if isinstance(stmt.target, gast.Name):
                self.on_read(stmt, stmt.target, defined)
            return defined | _targets(stmt.target) if isinstance(stmt.target, gast.Name) else defined
        if cls is gast.AnnAssign:
            return defined | _targets(stmt.target) if stmt.value is not None else defined
        if cls is gast.Delete:
            # (`del e` reads `e`: Python raises UnboundLocalError where it is unbound)
            names = _deleted(stmt)
            for name in names:
                self.on_read(stmt, name, defined)
            self.on_unbind({n.id for n in names})
            return defined - {n.id for n in names}
        if cls in (gast.Break, gast.Continue):
            self.breaks += cls is gast.Break
            if self.exits is not None:
                self.exits.append(defined)
            return _TOP
        if cls in (gast.Return, gast.Raise):
            return _TOP
        if cls is gast.If:
            self.branches += 1
            try:
                body, orelse = self.block(stmt.body, defined), self.block(stmt.orelse, defined)
            finally:
                self.branches -= 1
            after = _meet(body, orelse)
            if self.on_if is not None and not isinstance(after, _Top):
                some = {n for side in (body, orelse) if not isinstance(side, _Top)
                        for n in side} - after
                if some:
                    self.on_if(stmt, some)
            return after
        if cls in (gast.While, gast.For, gast.AsyncFor):
            entry = defined | (_targets(stmt.target) if cls is not gast.While else set())
            outer, self.exits = self.exits, []
            outer_breaks, self.breaks = self.breaks, 0
            end = self.block(stmt.body, entry)
            for exit_ in self.exits:
                end = _meet(end, exit_)
            self.exits = outer
            broke, self.breaks = self.breaks, outer_breaks
            bound = {n.id for n in walk(stmt.body)
                     if n.__class__ is gast.Name and n.ctx.__class__ is gast.Store}
            if cls is not gast.While:  # (the target: bound by every trip, by none of no trip)
                bound |= _targets(stmt.target)
            created = {n for n in bound if n not in defined}
            self.on_loop(stmt, {n for n in created if n not in end}, created, self.branches > 0)
            orelse = self.block(stmt.orelse, defined)
            # A loop with no `break` whose `else` jumps away (`while c: return a` / `else:
            # return b`) is left by a jump only: nothing after it runs.
            if isinstance(orelse, _Top) and not broke:
                return _TOP
            # (a name the loop unbinds, `del` or `except ... as`, may be unbound after it)
            return defined - _unbinds(stmt)
        if cls in (gast.With, gast.AsyncWith, gast.Try):
            return self._compound(stmt, defined)
        if cls in (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef):
            return defined | {stmt.name}
        return defined

    def _compound(self, stmt, defined):
        """The defined set after a `with` or `try`."""
        if stmt.__class__ in (gast.With, gast.AsyncWith):
            entry = defined | set().union(*(_targets(i.optional_vars) for i in stmt.items
                                            if i.optional_vars is not None))
            return self.block(stmt.body, entry)
        body = self.block(stmt.body, defined)
        after = self.block(stmt.orelse, body)
        for handler in stmt.handlers:
            # Python binds the `as` name for the handler and deletes it when the handler ends,
            # by a `break` / `continue` too (the exits it records).
            name = _targets(handler.name) if handler.name is not None else set()
            self.on_unbind(name)
            exits = len(self.exits) if self.exits is not None else 0
            end = self.block(handler.body, defined | name)
            if self.exits is not None:
                self.exits[exits:] = [e if isinstance(e, _Top) else e - name
                                      for e in self.exits[exits:]]
            after = _meet(after, end if isinstance(end, _Top) else end - name)
        final = self.block(stmt.finalbody, defined)
        return after if isinstance(after, _Top) else after | (
            set() if isinstance(final, _Top) else final - defined)


def _excluded(nodes) -> set:
    """Names the pass leaves alone: bound in ways it does not follow, or read by code that runs
    later or in a scope of its own (a nested function, lambda or comprehension); `nodes`: the
    walk of a function's body."""
    out = set()
    for node in nodes:
        cls = node.__class__
        if isinstance(node, _SCOPES + _COMPREHENSIONS):
            # (not the names its defaults and decorators read: they are read where it is
            # defined, `def inner(y, m=mode)`, and checked there like any read)
            outer = set() if isinstance(node, _COMPREHENSIONS) else {
                id(n) for e in _outer_expressions(node) for n in walk(e)}
            out |= {n.id for n in walk(node)
                    if n.__class__ is gast.Name and id(n) not in outer} - _parameters(node)
            if cls in (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef):
                out.add(node.name)
        elif cls in (gast.Global, gast.Nonlocal):
            out.update(node.names)
        elif cls in (gast.Import, gast.ImportFrom):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif cls is gast.NamedExpr:
            out |= _targets(node.target)
        elif cls.__name__ == "Match":
            out |= {n.id for n in walk(node) if n.__class__ is gast.Name}
            out |= {getattr(n, "name", None) for n in walk(node)} - {None}
    return out


_STRAIGHT = (gast.Assign, gast.AugAssign, gast.AnnAssign, gast.Expr, gast.Pass)


def _certainly_after_loops(function, creators):
    """`after(statement, read)`: whether the Name `read` in `statement`'s own expressions
    runs whenever a loop that binds it on every trip has ended: the loop comes before the
    statement in the same block, with only simple statements (no branch, loop, jump, `try`,
    `with` or assert) between, and the read is not in a part of an expression that may not
    run (an `if ... else` expression's sides, the right of `and` / `or`, a lambda or a
    comprehension). NOTE [reads after a loop of no trip]."""
    where = {}
    for stmt in walk_statements(function):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if block.__class__ is list:
                for i, inner in enumerate(block):
                    where[id(inner)] = (block, i)

    def maybe_skipped(stmt) -> set:
        skipped, stack = set(), list(_own_expressions(stmt))
        while stack:
            node = stack.pop()
            parts = []
            if node.__class__ is gast.IfExp:
                parts, stack = [node.body, node.orelse], stack + [node.test]
            elif node.__class__ is gast.BoolOp:
                parts, stack = node.values[1:], stack + node.values[:1]
            elif isinstance(node, _SCOPES + _COMPREHENSIONS):
                parts = [node]
            else:
                stack.extend(children(node))
            skipped |= {id(n) for part in parts for n in walk(part)}
        return skipped

    def after(stmt, read) -> bool:
        if id(stmt) not in where or id(read) in maybe_skipped(stmt):
            return False
        block, i = where[id(stmt)]
        for earlier in reversed(block[:i]):
            if read.id in creators.get(id(earlier), ()):
                return True
            if not isinstance(earlier, _STRAIGHT):
                return False
        return False

    return after


@leaves_generators_alone
class BoundFlagConverter(Converter):
    """Adds the bound flags and the checked reads, function by function."""

    statements_only = True

    def visit_FunctionDef(self, node):
        self.generic_visit(node)  # nested functions first: each is a scope of its own
        # (loops and ifs are statements: the walk need not enter expressions)
        if not any(n.__class__ in (gast.While, gast.For, gast.If)
                   for n in walk_statements(node)):
            return node
        params = {a.id for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                  + [node.args.vararg, node.args.kwarg] if a is not None}
        partial, created, unsure = set(), set(), set()
        reads = {}  # name -> [(statement, Name node)] of its unsure reads
        creators = {}  # id(loop) -> the names it binds that were unbound before it
        first_bound_by = {}  # name -> the loops that bind it first

        def on_read(stmt, name, defined):
            if name.id not in defined:
                unsure.add(name.id)
                reads.setdefault(name.id, []).append((stmt, name))

        def on_loop(loop, some_paths, all_names, in_branch):
            # A loop inside a branch: the other branch leaves its names unbound, and a staged
            # `if` carries them only with a flag (without one it was specialised at the top
            # level, the graph raising GuardFailed where Python raises UnboundLocalError, and
            # refused in a staged body; fuzz seed 13, program 23).
            partial.update(all_names if in_branch else some_paths)
            created.update(all_names)
            creators[id(loop)] = all_names
            for name in all_names:
                first_bound_by.setdefault(name, []).append(loop)

        def on_if(statement, some_paths):
            partial.update(some_paths)

        definedness = _Definedness(on_read, on_loop, on_if, partial.update)
        definedness.block(node.body, set(params))
        if not definedness.dead and unsure.isdisjoint(partial | created):
            # (every name flagged or checked below is an unsure read of a name a loop or a
            # branch binds, or of one only unreachable code binds: with neither, the walks and
            # sets below find none, and the function is returned as it is; a third of the pass)
            return node
        # (one walk of the body for `_excluded` and the stores below: nothing changes it between)
        nodes = walk(node.body)
        own = _excluded(nodes) | set(self.ctx.display_names)
        # NOTE [names only unreachable code binds]: `return y` then `m = 0` in the same block
        # makes `m` a local that no run ever binds, so Python raises UnboundLocalError at every
        # read of it. The jump lowerings drop the unreachable statements (converters/guards.py),
        # after which nothing in the converted code binds `m`: a staged body read it as a free
        # variable of the function, "cannot access free variable 'm'" (a NameError) at the
        # trace, or a specialised graph (fuzz seed 28, program 11). Such a read is an unbound
        # read wherever it runs: `ac.ld(ac.Undefined('m'), False, 'm')`, which raises as Python
        # does, and in a staged body is the graph assertion of NOTE [unbound reads in a staged
        # body].
        dead = {id(n) for stmt in definedness.dead for n in walk(stmt)
                if n.__class__ is gast.Name and isinstance(n.ctx, gast.Store)}
        stores = {}
        for n in nodes:
            if n.__class__ is gast.Name and isinstance(n.ctx, gast.Store):
                stores.setdefault(n.id, set()).add(id(n))
        never = {name for name, ids in stores.items() if ids <= dead} & unsure - own - params
        partial -= never
        created -= never
        # NOTE [reads after a loop of no trip]: a name every trip of a loop binds (its target
        # too) is unbound after a loop of no trip. A staged loop's own check
        # (`_stage_loop_created`) asserts that right after the loop, which is where Python
        # raises only where a read certainly follows the loop (`return last` after it). Where
        # the read may be on a path the call does not take, the name has a flag as well
        # (linear_operator's CG reads its loop index `k` only under `if not
        # tolerance_reached and n_iter > 0:`; a right-hand side that had converged, n_iter 0,
        # raised UnboundLocalError where Python returns). A read with no flag checks for the
        # Undefined placeholder, which a loop that runs as Python (a Python test or range)
        # and makes no trip leaves: the read went on with it ("unsupported operand type(s)
        # for +: 'FakeTensor' and 'Undefined'" while tracing, where Python raises
        # UnboundLocalError; fuzz seed 13, program 33).
        after = _certainly_after_loops(node, creators)
        uncertain = {name for name in created & unsure
                     if not all(after(stmt, read) for stmt, read in reads[name])}
        flagged = ((partial | uncertain) & unsure) - own
        unflagged = (created & unsure) - flagged - own
        # NOTE [names bound again after the loop that creates them]: a staged loop's own check
        # raises at its end where it ran no trip, which is Python's only where the read after
        # it sees the loop's value on every path. A name also bound after the loop (a second
        # loop, an `if`) takes a flag: `for i in range(n): m = ...` then `if c: m = ...`, then
        # `m`, raised for n = 0 where Python reads the `if`'s m (fuzz seed 15, program 614).
        rebound = {name for name in unflagged if not _binds_only_inside(node, name,
                                                                       first_bound_by[name])}
        flagged |= rebound
        unflagged -= rebound
        if not flagged and not unflagged and not never:
            return node
        flags = {name: self.ctx.namer.new(f"{name}_bound") for name in sorted(flagged)}
        for name, flag in flags.items():
            self.ctx.display_names[flag] = f"<{name} bound>"
            self.ctx.local_names.add(flag)  # (later passes pass locals to their lambdas)
        node._autoconv_checked = set(flagged)  # (not `unflagged`: their loops still check)
        rewrite = _Rewrite(flags, unflagged, self.ctx.runtime, never, self.ctx.namer.new)
        _Definedness(rewrite.on_read, lambda *_: None).block(node.body, set(params))
        node.body = rewrite.body(node.body)
        node.body = [s for name, flag in flags.items()
                     for s in templates.replace("flag = False", flag=flag)] + node.body
        return node


def _binds_only_inside(function, name, loops) -> bool:
    """Whether one of `loops` holds every binding of `name` in `function`."""
    stores = {id(n) for n in walk(function.body)
              if n.__class__ is gast.Name and n.id == name and isinstance(n.ctx, gast.Store)}
    return any(stores <= {id(n) for n in walk(loop) if n.__class__ is gast.Name}
               for loop in loops)


class _Rewrite:
    """Wraps the unsure reads `_Definedness` reports and sets each flag after its variable's
    every binding. The reads of `unflagged` names are checked for the Undefined placeholder
    only (`ac.ld(name, None, label)`); those of `never` (names only unreachable code binds)
    are unbound reads (`ac.ld(ac.Undefined(label), False, label)`)."""

    def __init__(self, flags, unflagged, runtime, never=frozenset(), new_name=None):
        self.flags, self.unflagged, self.runtime = flags, set(unflagged), runtime
        self.new_name = new_name
        self.never = set(never)
        self.checks = {}  # id(statement) -> the Name nodes to check, for AugAssign targets
        self.wrapped = {}  # id(Name node) -> its replacement

    def on_read(self, stmt, name, defined):
        if (name.id in self.flags or name.id in self.unflagged or name.id in self.never) and (
                name.id not in defined):
            if (stmt.__class__ is gast.AugAssign and name is stmt.target) or (
                    stmt.__class__ is gast.Delete):
                self.checks.setdefault(id(stmt), []).append(name.id)
            else:
                self.wrapped[id(name)] = name.id

    def ld(self, name):
        if name in self.never:  # NOTE [names only unreachable code binds]
            return templates.replace(
                "ac.ld(ac.Undefined(label), False, label)", ac=self.runtime,
                label=gast.Constant(value=name, kind=None))[0].value
        flag = self.flags.get(name) or gast.Constant(value=None, kind=None)
        return templates.replace(
            "ac.ld(name, flag, label)", ac=self.runtime, name=name, flag=flag,
            label=gast.Constant(value=name, kind=None))[0].value

    def body(self, stmts):
        out = []
        for stmt in stmts:
            if isinstance(stmt, _SCOPES):  # a scope of its own (its names are not flagged)
                self._wrap(stmt)  # (but its defaults and decorators are read here)
                out.append(stmt)
                continue
            for name in self.checks.get(id(stmt), ()):
                out.append(gast.Expr(value=self.ld(name)))
            self._wrap(stmt)
            for field in ("body", "orelse", "finalbody"):
                value = getattr(stmt, field, None)
                if value.__class__ is list and value and isinstance(value[0], gast.stmt):
                    setattr(stmt, field, self.body(value))
            for handler in getattr(stmt, "handlers", ()) or ():
                handler.body = self._unbound_after(handler, self.body(handler.body))
            if stmt.__class__ is gast.Delete:
                out += self._delete(stmt)
                continue
            bound = self._binds(stmt)
            if isinstance(stmt, (gast.For, gast.AsyncFor, gast.With, gast.AsyncWith)):
                # the target (the `as` names) is bound at the start of each iteration / the body
                stmt.body = self._set(bound, stmt) + stmt.body
                out.append(stmt)
                continue
            out.append(stmt)
            out += self._set(bound, stmt)
        return out

    # NOTE [names a branch unbinds]: `del e` and the end of `except ... as e:` unbind `e`.
    # Where `e` has a bound flag (or its reads check for the placeholder) that is an
    # assignment of the placeholder and of False to the flag, so that a staged statement
    # carries the unbound name as any other (a branch that deleted it returned a name it no
    # longer had: dynamo's "Could not find a local variable with name `e`" under
    # torch.compile, exp55); the reads after it raise Python's UnboundLocalError where it
    # is unbound, as the flag says. Other names keep their `del`.
    def _unbind(self, name, at) -> list:
        label = gast.Constant(value=name, kind=None)
        if name in self.flags:
            out = templates.replace("name = ac.Undefined(label, checked=True)\nflag = False",
                                    name=name, label=label, ac=self.runtime,
                                    flag=self.flags[name])
        else:
            out = templates.replace("name = ac.Undefined(label)", name=name, label=label,
                                    ac=self.runtime)
        return _located(out, at)

    def _delete(self, stmt) -> list:
        names = [n for n in _deleted(stmt) if n.id in self.flags or n.id in self.unflagged]
        if not names:
            return [stmt]
        stmt.targets = [t for t in stmt.targets if t not in names]
        kept = [stmt] if stmt.targets else []
        return kept + [s for n in names for s in self._unbind(n.id, stmt)]

    def _unbound_after(self, handler, body) -> list:
        """`body`, the handler's, with its `as` name unbound at its end and before each
        `break` / `continue` that leaves it. The handler binds a new name, given to the
        user's first: Python deletes the `as` name when the handler ends, after the
        placeholder is assigned to it."""
        names = _targets(handler.name) if handler.name is not None else set()
        names = sorted(n for n in names if n in self.flags or n in self.unflagged)
        if not names:
            return body
        caught = self.new_name(f"{names[0]}_caught")
        if any(n.__class__ is gast.Name and n.id == names[0] for n in walk(body)):
            # (only where the handler uses it: an exception object is no state a staged
            # statement in the handler could carry)
            body = _located(templates.replace("name = caught", name=names[0], caught=caught),
                            handler) + body
        handler.name = gast.Name(id=caught, ctx=gast.Store(), annotation=None,
                                 type_comment=None)

        def before_jumps(stmts):
            out = []
            for stmt in stmts:
                if stmt.__class__ in (gast.Break, gast.Continue):
                    out += [s for n in names for s in self._unbind(n, stmt)]
                elif not isinstance(stmt, _SCOPES + (gast.For, gast.AsyncFor, gast.While)):
                    for field in ("body", "orelse", "finalbody"):
                        value = getattr(stmt, field, None)
                        if value.__class__ is list and value and isinstance(value[0], gast.stmt):
                            setattr(stmt, field, before_jumps(value))
                    for inner in getattr(stmt, "handlers", ()) or ():
                        inner.body = before_jumps(inner.body)
                out.append(stmt)
            return out

        return before_jumps(body) + [s for n in names for s in self._unbind(n, handler)]

    def _binds(self, stmt) -> set:
        cls = stmt.__class__
        if cls is gast.Assign:
            names = set().union(*(_targets(t) for t in stmt.targets))
        elif cls in (gast.AugAssign, gast.AnnAssign):
            names = _targets(stmt.target) if isinstance(stmt.target, gast.Name) and (
                cls is gast.AugAssign or stmt.value is not None) else set()
        elif cls in (gast.For, gast.AsyncFor):
            names = _targets(stmt.target)
        elif cls in (gast.With, gast.AsyncWith):
            names = set().union(*(_targets(i.optional_vars) for i in stmt.items
                                  if i.optional_vars is not None))
        else:
            names = set()
        return names & set(self.flags)

    def _set(self, names, at):
        """`flag = True` for each of `names`, at the line of `at`, the statement binding them
        (a `try` around them is located by its statements' lines: converters/raises.py)."""
        return _located([s for name in sorted(names)
                         for s in templates.replace("flag = True", flag=self.flags[name])], at)

    def _wrap(self, stmt):
        """Replace the wrapped reads in `stmt`'s own expressions (not its nested statements)."""
        if not self.wrapped:
            return
        stack = [stmt]
        while stack:
            node = stack.pop()
            if node is not stmt and node.__class__ is gast.Lambda:
                stack.append(node.args)  # (its defaults are read where it is made)
                continue
            if node is not stmt and isinstance(node, _SCOPES + _COMPREHENSIONS + (gast.stmt,)):
                continue
            for field, value in gast.iter_fields(node):
                if node is stmt and field in ("body", "orelse", "finalbody", "handlers"):
                    continue
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        if item.__class__ is gast.Name and id(item) in self.wrapped:
                            value[i] = self.ld(item.id)
                        elif isinstance(item, gast.AST):
                            stack.append(item)
                elif value.__class__ is gast.Name and id(value) in self.wrapped:
                    setattr(node, field, self.ld(value.id))
                elif isinstance(value, gast.AST):
                    stack.append(value)


def _located(stmts, at) -> list:
    """`stmts` at the line of `at`."""
    for stmt in stmts:
        for inner in walk(stmt):  # (contexts, which `walk` leaves out, have no position)
            for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
                if field in inner._attributes and getattr(inner, field, None) is None:
                    setattr(inner, field, getattr(at, field, None))
    return stmts
