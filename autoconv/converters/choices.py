"""A name a tensor condition binds to one of two existing tensors, then updated in place, updates
the chosen tensor (NOTE [in-place updates of a choice]).

    acc = pos if c else neg     ->  chosen = c
                                    acc = pos if chosen else neg
    acc += v                        acc += v
                                    ac.write_back_choice(acc, chosen, pos, neg)
"""

from __future__ import annotations

import gast

from .. import templates
from ..analysis.annos import copy_origin
from ..transformer import Converter
from .generators import leaves_generators_alone

# NOTE [in-place updates of a choice]
# `acc = pos if score > 0 else neg` (or an `if` / `else` binding `acc`, the swap
# `if a < b: a, b = b, a`, `m = max(a, b)`) makes `acc` the tensor `pos` or `neg` itself in
# Python, and `acc += score` then updates the chosen one (the caller's running sums). Staged,
# the choice is torch.cond's output (or torch.maximum's), a new tensor, and the update never
# reached `pos` or `neg` (silently wrong in the three modes). The converter keeps the condition
# in a local (`chosen`), and after each in-place update of `acc` that follows the statement in
# the same block it writes `acc` back into the tensor each path chose:
#     pos.copy_(where(chosen, acc, pos)); neg.copy_(where(chosen, neg, acc))
# which is Python's result whichever path the run takes, and a no-op where the statement ran
# as Python (`chosen` a bool: acc is pos or neg already). A path whose value was computed in
# the branch (`acc = neg * 2`) has nothing to write back. A source the statement itself
# rebinds (the swap) is read before it (`sources`), when it is bound there for certain (a
# parameter, or assigned earlier in the block). The write-back follows a simple statement; an
# in-place update of `acc` inside a compound statement (a loop, an `if`) is refused with a
# StagingError there; the scan stops where a source or `acc` is rebound. Only blocks that
# run as they are (a function's, a `with`'s) are rewritten: in the body of an `if`, a loop or
# a `try` (staged bodies) a write-back would update a tensor from outside the body that the
# control-flow converter does not see as updated. Out of reach: the identity of a returned
# choice (`if c: return x`: a caller that updates the result in place), and a source updated
# in place afterwards, read as `acc`.

_WRITE_BACK = "ac.write_back_choice(target, chosen, if_true, if_false)"
_WRITE_BACK_ITEM = "ac.write_back_item(target, items, chosen)"
_REFUSE = "ac.refuse_choice_update(target, chosen, name, sources)"


def _names_stored(node) -> set:
    """Names `node` stores to (assignments, loop targets, with-as, del), nested functions and
    classes left out (their own scopes), except their own names."""
    out = set()
    # (a stack over the nodes' __dict__, not a recursion through ast's per-node generators:
    # this runs on every statement of the function)
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        n = pop()
        cls = n.__class__
        if cls in _OWN_SCOPES:
            out.add(n.name)
            continue
        if cls is gast.Lambda:
            continue
        if cls is gast.Name and n.ctx.__class__ in _STORES:
            out.add(n.id)
        attrs = n.__dict__
        for field in cls._fields:
            value = attrs.get(field)
            if value.__class__ is list:
                extend([v for v in value if isinstance(v, gast.AST)])
            elif isinstance(value, gast.AST):
                push(value)
    return out


_OWN_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)
_STORES = (gast.Store, gast.Del)


def _jumps(nodes) -> bool:
    for node in nodes:
        for n in gast.walk(node):
            if isinstance(n, (gast.Return, gast.Break, gast.Continue, gast.Yield,
                              gast.YieldFrom, gast.Await)):
                return True
    return False


def _bare_bindings(branch) -> dict:
    """{name: source name, or None where the branch gives it another value} of a branch."""
    out = {}
    for stmt in branch:
        pairs = []
        if isinstance(stmt, gast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
            if isinstance(target, gast.Name) and isinstance(value, gast.Name):
                pairs = [(target.id, value.id)]
            elif (isinstance(target, (gast.Tuple, gast.List))
                  and isinstance(value, (gast.Tuple, gast.List))
                  and len(target.elts) == len(value.elts)
                  and all(isinstance(e, gast.Name) for e in target.elts + value.elts)):
                pairs = [(t.id, v.id) for t, v in zip(target.elts, value.elts)]
        if pairs:
            # simultaneous: the sources are read before any target is stored
            current = {t: out.get(v, v) for t, v in pairs}
            out.update(current)
            continue
        for name in _names_stored(stmt):
            out[name] = None
    return out


def _in_place_of(node, name) -> bool:
    """Whether statement `node` (nested statements included) updates `name`'s value in place."""
    for n in gast.walk(node):
        if isinstance(n, gast.AugAssign):
            target = n.target
            while isinstance(target, (gast.Subscript, gast.Attribute)):
                target = target.value
            if isinstance(target, gast.Name) and target.id == name:
                return True
        elif isinstance(n, (gast.Assign, gast.Delete)):
            for target in n.targets:
                if isinstance(target, (gast.Subscript, gast.Attribute)):
                    while isinstance(target, (gast.Subscript, gast.Attribute)):
                        target = target.value
                    if isinstance(target, gast.Name) and target.id == name:
                        return True
        elif isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (isinstance(n.func.value, gast.Name) and n.func.value.id == name
                    and method.endswith("_") and not method.startswith("_")):
                return True
    return False


def _simple(node) -> bool:
    return isinstance(node, (gast.Expr, gast.Assign, gast.AugAssign, gast.AnnAssign))


def _has_bool_op(node) -> bool:
    return any(isinstance(n, (gast.BoolOp, gast.NamedExpr)) for n in gast.walk(node))


class _Item(str):
    """The source of a name bound to an item of the list `items` (`x = items[k]`)."""

    @property
    def items(self) -> str:
        return str(self)


def _item_update(stmt):
    """(list name, index, node whose receiver is the item) of a statement that updates an item
    of a list in place: `items[k].method_(...)`, `items[k][i] = v`, `items[k][i] += v`."""
    if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call):
        func = stmt.value.func
        if not (isinstance(func, gast.Attribute) and func.attr.endswith("_")
                and not func.attr.startswith("_")):
            return None
        holder = func
    elif isinstance(stmt, gast.Assign) and len(stmt.targets) == 1:
        holder = stmt.targets[0]
    elif isinstance(stmt, gast.AugAssign):
        holder = stmt.target
    else:
        return None
    if not isinstance(holder, (gast.Attribute, gast.Subscript)) or (
            not isinstance(stmt, gast.Expr) and not isinstance(holder, gast.Subscript)):
        return None
    item = holder.value
    if not (isinstance(item, gast.Subscript) and isinstance(item.value, gast.Name)
            and not isinstance(item.slice, (gast.Slice, gast.Tuple))):
        return None
    return item.value.id, item.slice, holder


@leaves_generators_alone
class ChoiceConverter(Converter):
    """Writes an in-place update of a name bound to a choice between tensors back into the
    chosen tensor (NOTE [in-place updates of a choice])."""

    statements_only = True

    def _new(self, stem: str) -> str:
        name = self.ctx.namer.new(stem)
        self.ctx.local_names.add(name)  # (later passes pass locals to their lambdas)
        return name

    def visit_FunctionDef(self, node):
        args = node.args
        params = {a.id for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.id for a in (args.vararg, args.kwarg) if a is not None}
        node.body = self._block(node.body, params)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def _block(self, stmts, bound) -> list:
        bound = set(bound)
        for stmt in stmts:  # inner blocks first
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef)):
                self.visit_FunctionDef(stmt)
            elif isinstance(stmt, (gast.With, gast.AsyncWith)):
                stmt.body = self._block(stmt.body, set())
            # Not the bodies of an `if`, a loop or a `try`, which become staged bodies: the
            # write-back's `copy_` into a tensor from outside them is an update of an input
            # the control-flow converter does not see (NOTE [in-place updates of a choice]).
        out = []
        for i, stmt in enumerate(stmts):
            update = _item_update(stmt)
            if update is not None:
                # `slots[k].add_(v)`: as `item = slots[k]; item.add_(v)`, written back
                items, key, holder = update
                chosen, item = self._new("chosen"), self._new(items + "_item")
                out.extend(copy_origin(templates.replace(
                    "chosen = key\nitem = items[chosen]", chosen=chosen, key=key, item=item,
                    items=items), stmt))
                holder.value = copy_origin(templates.name(item), holder)
                out.append(stmt)
                out.extend(copy_origin(templates.replace(
                    _WRITE_BACK_ITEM, ac=self.ctx.runtime, target=item, items=items,
                    chosen=chosen), stmt))
                continue
            choice = self._choice(stmt, bound)
            if choice is None:
                out.append(stmt)
                bound |= _names_stored(stmt)
                continue
            test, sources, make = choice
            rest = stmts[i + 1:]
            updates = [j for j, later in enumerate(rest)
                       if any(_in_place_of(later, name) for name in sources)]
            if not updates:
                out.append(stmt)
                bound |= _names_stored(stmt)
                continue
            chosen = self._new("chosen")
            out.extend(copy_origin(templates.replace("chosen = test", chosen=chosen, test=test),
                                   stmt))
            # sources the statement rebinds are read before it
            rebound = _names_stored(stmt)
            before = {}
            for name, paths in sources.items():
                for source in paths:
                    if source is not None and source in rebound and source not in before:
                        before[source] = self._new(source + "_chosen")
            for source, alias in before.items():
                if source in bound:
                    out.extend(copy_origin(templates.replace(
                        "alias = source", alias=alias, source=source), stmt))
            out.extend(make(chosen))
            bound |= rebound
            out.extend(self._updates(rest, sources, chosen, before, bound))
            return out
        return out

    def _updates(self, rest, sources, chosen, before, bound) -> list:
        """`rest` with the write-backs (or refusals) of in-place updates of `sources`' names,
        then the rest of the block converted as a block."""
        watched = set(sources)
        for paths in sources.values():
            watched |= ({paths.items} if isinstance(paths, _Item)
                        else {p for p in paths if p is not None})
        out = []
        for j, stmt in enumerate(rest):
            names = [n for n in sources if _in_place_of(stmt, n)]
            for name in names:
                if not _simple(stmt):
                    out.extend(copy_origin(self._refusal(name, chosen, sources[name]), stmt))
            out.append(stmt)
            if _simple(stmt):
                for name in names:
                    out.extend(copy_origin(
                        self._write_back(name, chosen, sources[name], before, bound), stmt))
            stored = _names_stored(stmt)
            bound |= stored
            if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name):
                stored = stored - {stmt.target.id}  # in place for a tensor
            if stored & watched:
                return out + self._block(rest[j + 1:], bound)
        return out

    def _source(self, source, before, bound):
        if source is None:
            return gast.Constant(value=None, kind=None)
        if source in before:
            if source not in bound:  # not read before the statement: nothing to write
                return gast.Constant(value=None, kind=None)
            return templates.name(before[source])
        return templates.name(source)

    def _write_back(self, name, chosen, paths, before, bound) -> list:
        if isinstance(paths, _Item):
            return templates.replace(_WRITE_BACK_ITEM, ac=self.ctx.runtime, target=name,
                                     items=paths.items, chosen=chosen)
        return templates.replace(
            _WRITE_BACK, ac=self.ctx.runtime, target=name, chosen=chosen,
            if_true=self._source(paths[0], before, bound),
            if_false=self._source(paths[1], before, bound))

    def _refusal(self, name, chosen, paths) -> list:
        if isinstance(paths, _Item):
            shown = f"an item of `{paths.items}`"
        else:
            shown = " or ".join(f"`{p}`" for p in dict.fromkeys(paths) if p is not None)
        return templates.replace(
            _REFUSE, ac=self.ctx.runtime, target=name, chosen=chosen,
            name=gast.Constant(value=name, kind=None),
            sources=gast.Constant(value=shown, kind=None))

    def _choice(self, stmt, bound):
        """(test, {name: (source if true, source if false)}, make(chosen) -> statements) of a
        statement that binds names to existing values under a condition, else None."""
        if isinstance(stmt, gast.If) and not _has_bool_op(stmt.test):
            if _jumps(stmt.body) or _jumps(stmt.orelse):
                return None
            true, false = _bare_bindings(stmt.body), _bare_bindings(stmt.orelse)
            sources = {}
            for name in dict.fromkeys([*true, *false]):
                paths = (true.get(name, name), false.get(name, name))
                if any(p is not None and p != name for p in paths):
                    sources[name] = paths
            if not sources:
                return None
            test = stmt.test

            def make(chosen):
                stmt.test = templates.name(chosen)
                return [stmt]

            return test, sources, make
        if not (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name)):
            return None
        name, value = stmt.targets[0].id, stmt.value
        if (isinstance(value, gast.Subscript) and isinstance(value.value, gast.Name)
                and not isinstance(value.slice, (gast.Slice, gast.Tuple))):
            # `buf = hist[step % n]`: with a traced index, the row of the stacked items
            test = value.slice

            def make(chosen):
                value.slice = templates.name(chosen)
                return [stmt]

            return test, {name: _Item(value.value.id)}, make
        if isinstance(value, gast.IfExp) and not _has_bool_op(value.test):
            paths = tuple(v.id if isinstance(v, gast.Name) else None
                          for v in (value.body, value.orelse))
            if paths == (None, None):
                return None
            test = value.test

            def make(chosen):
                value.test = templates.name(chosen)
                return [stmt]

            return test, {name: paths}, make
        if (isinstance(value, gast.Call) and isinstance(value.func, gast.Name)
                and value.func.id in ("max", "min") and "max" not in bound
                and "min" not in bound and len(value.args) == 2 and not value.keywords
                and all(isinstance(a, gast.Name) for a in value.args)):
            first, second = (a.id for a in value.args)
            # Python's max gives the first of equal values: the second only where greater
            compare = gast.Gt() if value.func.id == "max" else gast.Lt()
            test = gast.Compare(left=templates.name(second), ops=[compare],
                                comparators=[templates.name(first)])
            return test, {name: (second, first)}, lambda chosen: [stmt]
        return None
