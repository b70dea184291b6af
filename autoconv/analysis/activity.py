"""Which names a piece of code reads and which it assigns, within one function scope."""

from __future__ import annotations

import gast

from .nodes import WALKED_FIELDS, walked_fields

__all__ = ["reads_writes", "free_reads", "activity_of", "seal", "cell_stores"]

_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)
_COMPREHENSIONS = (gast.ListComp, gast.SetComp, gast.DictComp, gast.GeneratorExp)


class _Activity:
    """Collects reads and writes with a class-dispatched recursive walk (NodeVisitor's
    getattr-per-node dispatch and iter_fields dominate on the small trees seen here)."""

    def __init__(self):
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        # Names bound by `:=` earlier in the walk (which follows evaluation order): reading them
        # later in the same code is not a read of the value from before it.
        self.bound_first: set[str] = set()
        # Names whose object is changed through an attribute or item (`s.v = 1`, `d['k'] += 1`)
        self.mutated: set[str] = set()
        # Names the code declares `nonlocal` (its own statements, not a nested scope's)
        self.nonlocal_names: set[str] = set()

    def visit(self, node):
        handler = _HANDLERS.get(node.__class__)
        if handler is not None:
            handler(self, node)
            return
        self.generic_visit(node)

    def generic_visit(self, node):
        # (the fields that may hold a node, in order, by the node's __dict__: a name's context
        # and the text fields have nothing to visit)
        fields = WALKED_FIELDS.get(node.__class__)
        if fields is None:
            fields = walked_fields(node.__class__)
        attrs = node.__dict__
        for field in fields:
            value = attrs.get(field)
            if value.__class__ is list:
                for item in value:
                    if hasattr(item, "_fields"):
                        self.visit(item)
            elif hasattr(value, "_fields"):
                self.visit(value)

    def visit_Name(self, node):
        if node.ctx.__class__ is gast.Load:
            if node.id not in self.bound_first:
                self.reads.add(node.id)
        else:
            # `del w` needs `w` bound as a read does: counted only as a write, a loop's `w`
            # was not carried out of it and `del w` after the loop raised UnboundLocalError
            if node.ctx.__class__ is gast.Del and node.id not in self.bound_first:
                self.reads.add(node.id)
            self.writes.add(node.id)

    def visit_target_part(self, node):
        if node.ctx.__class__ is not gast.Load:
            root = node.value
            while root.__class__ in (gast.Attribute, gast.Subscript):
                root = root.value
            if root.__class__ is gast.Name:
                self.mutated.add(root.id)
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self.visit(node.value)
        self.writes.add(node.target.id)
        self.bound_first.add(node.target.id)

    def visit_AnnAssign(self, node):
        # `h: int` alone binds nothing (reading `h` next raises UnboundLocalError), and a
        # function never evaluates its locals' annotations: counting it as a write made later
        # staged statements pass an unbound `h` as their state.
        if node.value is None:
            if node.target.__class__ is gast.Attribute:
                self.visit(node.target.value)
            elif node.target.__class__ is gast.Subscript:
                self.visit(node.target.value)
                self.visit(node.target.slice)
            return
        self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node):
        if isinstance(node.target, gast.Name):
            self.reads.add(node.target.id)
        self.generic_visit(node)

    def _nested_scope(self, node, name):
        if name is not None:
            self.writes.add(name)
        for decorator in getattr(node, "decorator_list", ()):
            self.visit(decorator)
        args = getattr(node, "args", None)
        if isinstance(args, gast.arguments):
            for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
                self.visit(default)
        self.reads |= free_reads(node)

    def visit_FunctionDef(self, node):
        self._nested_scope(node, node.name)

    def visit_ClassDef(self, node):
        for base in node.bases:
            self.visit(base)
        self._nested_scope(node, node.name)

    def visit_Lambda(self, node):
        self._nested_scope(node, None)

    def _comprehension(self, node):
        self.reads |= free_reads(node)

    def visit_alias(self, node):
        self.writes.add((node.asname or node.name).partition(".")[0])

    def visit_Global(self, node):
        pass

    def visit_Nonlocal(self, node):
        self.nonlocal_names.update(node.names)

    def visit_Constant(self, node):
        pass


_HANDLERS = {
    gast.Name: _Activity.visit_Name,
    gast.AugAssign: _Activity.visit_AugAssign,
    gast.AnnAssign: _Activity.visit_AnnAssign,
    gast.NamedExpr: _Activity.visit_NamedExpr,
    gast.FunctionDef: _Activity.visit_FunctionDef,
    gast.AsyncFunctionDef: _Activity.visit_FunctionDef,
    gast.ClassDef: _Activity.visit_ClassDef,
    gast.Lambda: _Activity.visit_Lambda,
    gast.ListComp: _Activity._comprehension,
    gast.SetComp: _Activity._comprehension,
    gast.DictComp: _Activity._comprehension,
    gast.GeneratorExp: _Activity._comprehension,
    gast.alias: _Activity.visit_alias,
    gast.Global: _Activity.visit_Global,
    gast.Nonlocal: _Activity.visit_Nonlocal,
    gast.Constant: _Activity.visit_Constant,
    gast.Attribute: _Activity.visit_target_part,
    gast.Subscript: _Activity.visit_target_part,
}


def reads_writes(nodes) -> tuple[set[str], set[str]]:
    """(names read, names assigned) by `nodes` (a node or a list), nested scopes counted by their
    free names only."""
    return activity_of(nodes)[:2]


def bound_names(function) -> set[str]:
    """The names a function binds itself (its parameters and assignments), less those
    it declares `global` or `nonlocal`."""
    _, written = reads_writes(function.body)
    args = function.args
    params = {a.id for a in args.posonlyargs + args.args + args.kwonlyargs
              + [args.vararg, args.kwarg] if a is not None}
    declared = {name for stmt in gast.walk(function) if isinstance(stmt, (gast.Global, gast.Nonlocal))
                for name in stmt.names}
    return (written | params) - declared


def activity_of(nodes) -> tuple[set[str], set[str], set[str]]:
    """(names read, names assigned, names mutated) by `nodes`. A name is mutated where its
    object changes through an attribute or item target (`s.a.b = v`, `d['k'] += 1`,
    `del s.v`): the name keeps its object, whose contents change."""
    activity = _Activity()
    for node in nodes if isinstance(nodes, list) else [nodes]:
        activity.visit(node)
    return activity.reads, activity.writes, activity.mutated


# On a sealed scope node (see `seal`): its free reads once computed, or None before.
_SEALED = "_autoconv_sealed_free_reads"


def seal(scope) -> None:
    """Mark the function `scope` as never changed again (a body function the control-flow
    pass generated): `free_reads` computes its answer once. Each enclosing statement's body
    function asks again for the functions nested in it; without this, a statement nested k deep
    had its bodies walked k times."""
    setattr(scope, _SEALED, None)


def free_reads(scope) -> set[str]:
    """Names a nested function, lambda, class or comprehension reads from its enclosing scope
    (a set the caller must not change)."""
    attrs = getattr(scope, "__dict__", None)
    if attrs is not None and _SEALED in attrs:
        found = attrs[_SEALED]
        if found is None:
            found = attrs[_SEALED] = frozenset(_free_reads(scope))
        return found
    return _free_reads(scope)


def _free_reads(scope) -> set[str]:
    activity = _Activity()
    if isinstance(scope, _COMPREHENSIONS):
        bound = set()
        for generator in scope.generators:
            activity.visit(generator.iter)
            _, targets = reads_writes(generator.target)
            bound |= targets
            for cond in generator.ifs:
                activity.visit(cond)
        for part in ("elt", "key", "value"):
            if hasattr(scope, part):
                activity.visit(getattr(scope, part))
        return activity.reads - bound
    activity, bound = _scope_activity(scope)
    # (a `nonlocal n` that the function assigns is the enclosing scope's `n`, read there)
    return activity.reads - (bound - activity.nonlocal_names)


def _scope_activity(scope):
    """The activity of a function's or class's own statements, and the names it binds (its
    assignments and parameters, those it declares `nonlocal` among them)."""
    activity = _Activity()
    body = scope.body if isinstance(scope.body, list) else [scope.body]
    for stmt in body:
        activity.visit(stmt)
    bound = set(activity.writes)
    args = getattr(scope, "args", None)
    if isinstance(args, gast.arguments):
        for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if arg is not None:
                bound.add(arg.id)
    return activity, bound


def cell_stores(scope) -> set[str]:
    """The names of the scope enclosing `scope` (a function or class defined in it) that
    `scope`, or a function nested in it, assigns through `nonlocal` (NOTE [a function made
    in a staged body assigning a variable] in liveness.py)."""
    if isinstance(scope, (gast.Lambda, *_COMPREHENSIONS)):
        return set()  # (an expression declares nothing nonlocal)
    activity, bound = _scope_activity(scope)
    stored = activity.writes & activity.nonlocal_names
    # (a nested function's `nonlocal n` is this scope's `n` where this function binds it; a
    # class's names are no method's enclosing scope)
    own = set() if scope.__class__ is gast.ClassDef else bound - activity.nonlocal_names
    for stmt in scope.body:
        for nested in _scopes_in(stmt):
            stored |= cell_stores(nested) - own
    return stored


def _scopes_in(node):
    """The functions and classes defined in `node` (a statement), not inside another."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        cls = current.__class__
        if cls in (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef):
            out.append(current)
            continue
        fields = WALKED_FIELDS.get(cls)
        if fields is None:
            if not hasattr(cls, "_fields"):
                continue
            fields = walked_fields(cls)
        attrs = current.__dict__
        for field in fields:
            value = attrs.get(field)
            if value.__class__ is list:
                stack.extend(v for v in value if hasattr(v, "_fields"))
            elif hasattr(value, "_fields"):
                stack.append(value)
    return out
