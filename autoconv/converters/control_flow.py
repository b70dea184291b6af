"""`if`, `while` and `for` statements become calls with pure body functions.

    if x > 0:                      def if_true(y):
        y = x * 2                      y = x * 2
    else:               ->             return (y,)
        y = -x                     def if_false(y):
                                       y = -x
                                       return (y,)
                                   (y,) = ac.if_stmt(x > 0, if_true, if_false, (y,), ('y',))

The state of a statement is the names its bodies assign that are read afterwards or before being
assigned in a body (liveness, from `autoconv.analysis`). Bodies take the state as parameters and
return it. The locals they only read are their inputs: passed explicitly too (after the names),
so that a staged body never captures a tensor by closure. A state name that has no value before
the statement starts as `ac.Undefined('name')`; one that may have a value there (set earlier on
some path, or in an earlier iteration of an enclosing loop) keeps it:

    try:
        name
    except NameError:
        name = ac.Undefined('name')
"""

from __future__ import annotations

import copy
import re

import gast

from .. import templates
from ..analysis.activity import activity_of, reads_writes
from ..analysis.annos import Anno, copy_origin
from ..analysis.nodes import walk_statements
from ..transformer import Converter
from .generators import leaves_generators_alone


@leaves_generators_alone
class ControlFlowConverter(Converter):
    """Converts compound statements bottom-up; reads the annotations computed by the analysis."""

    statements_only = True

    reads = (Anno.LIVE_OUT, Anno.BODY_LIVE_IN, Anno.WRITES, Anno.READS, Anno.DEFINED_IN,
             Anno.EXTRA_TEST, Anno.TRIP_BOUND)

    def _state(self, node):
        live = self.anno(node, Anno.LIVE_OUT) | self.anno(node, Anno.BODY_LIVE_IN)
        return sorted(self.anno(node, Anno.WRITES) & live)

    def _if_state(self, node):
        """An `if`'s state, what its branches assign that is read after it; and its inputs.

        A name a branch reads before (possibly) assigning it there, dead after the `if`, is an
        input: the branch needs its value, nothing needs the branch's new one (whose type may
        change, or which may stay unbound on a path: a lambda in the branch reading it). One
        that may be unbound before the `if` goes in as `ac.Undefined` where it is.
        """
        writes, live = self.anno(node, Anno.WRITES), self.anno(node, Anno.LIVE_OUT)
        state = sorted(writes & live)
        declared = set().union(*(names for _, names in self.scope_declared))
        # Only names rebound by assignment: a name whose object a branch changes (`d[k] = v`,
        # a list's append) is state, so that other references to the object see the change.
        kept = node._autoconv_changed
        rebound = (writes & self.anno(node, Anno.BODY_LIVE_IN)) - live - declared - kept
        state = sorted(set(state) | (writes & self.anno(node, Anno.BODY_LIVE_IN) & kept))
        return state, sorted(set(self._inputs(node, state)) | rebound)

    def _inputs(self, node, state):
        """Locals the bodies read but do not assign (or read before assigning them), bound for
        sure when the statement starts."""
        declared = set().union(*(names for _, names in self.scope_declared))
        local = self.anno(node, Anno.WRITES) - self.anno(node, Anno.BODY_LIVE_IN)
        read_only = self.anno(node, Anno.READS) - local - set(state)
        return sorted((read_only & self.anno(node, Anno.DEFINED_IN)) - declared)

    def _undefined_inits(self, node, state, own_sites):
        """`name = ac.Undefined('name')` for each state name not certainly bound before the
        statement. A name the function assigns elsewhere too may be bound already (by an
        earlier loop that ran, or an earlier iteration of an enclosing loop): it keeps that
        value, and only starts as Undefined where it is unbound."""
        defined = self.anno(node, Anno.DEFINED_IN)
        stmts = []
        function_sites = getattr(self, "function_sites", {})
        for name in state:
            if name in defined:
                continue
            # bound before: assigned earlier in the function, or, when the statement is in a
            # loop, anywhere else in it; or by the statement itself in an earlier iteration
            # where an enclosing loop carries the name (`for i in r: if i == 1: y = i` keeps y
            # past the iterations that skip the branch).
            # A statement without a line (another pass made it): after every other site.
            others = [line for line in function_sites.get(name, [])
                      if line not in own_sites.get(name, [])]
            at = getattr(node, "lineno", None)
            bound_before = any(at is None or line < at for line in others) or bool(
                getattr(self, "loop_depth", 0) and others) or name in self._carried()
            template = _KEEP_IF_BOUND if bound_before else "name = ac.Undefined(label)"
            stmts += templates.replace(template, name=name,
                                       label=gast.Constant(value=name, kind=None),
                                       ac=self.ctx.runtime)
        return stmts

    def _carried(self) -> set:
        """The names the loops enclosing the statement (in this function) carry."""
        return set().union(*getattr(self, "loop_states", []))

    def _declarations(self, body):
        # A body function assigning a global / nonlocal name must declare it as the user did.
        if not any(names for _, names in self.scope_declared):
            return []
        _, writes = reads_writes(body)
        out = []
        for kind, names in self.scope_declared:
            declared = sorted(writes & names)
            if declared:
                out.append(kind(names=declared))
        return out

    def _unbound_reads(self, params, body):
        """Locals of a body function that its statements may read before assigning them.

        An inner `if` whose branches both assign `x` passes `x` in although its value before
        the `if` is dead; Python then never made `x` an input of this body, and reading it would
        raise UnboundLocalError. Such names start as `ac.Undefined` (a read that really came
        first would have made the name an input or state of this body).
        """
        declared = set().union(*(names for _, names in self.scope_declared))
        bound = set(params) | declared
        # One walk per statement: the body's own writes are theirs together.
        activity = [reads_writes(stmt) for stmt in body]
        local = set().union(*(writes for _, writes in activity))
        if local <= bound:
            return []
        missing = []
        for reads, writes in activity:
            missing += sorted(((reads & local) - bound) - set(missing))
            bound |= writes
        return missing

    def _body_function(self, name, params, body, state, returns=True):
        inits = []
        for missing in self._unbound_reads(params, body):
            inits += templates.replace("name = ac.Undefined(label)", name=missing,
                                       label=gast.Constant(value=missing, kind=None),
                                       ac=self.ctx.runtime)
        body = _augmented_assignments(inits + body, self.ctx.runtime)
        decls = self._declarations(body)
        for decl in decls:
            # where the body is staged, the runtime refuses the write (see ac.assigns_outside)
            kind = "global" if isinstance(decl, gast.Global) else "nonlocal"
            names = {f"name{i}": gast.Constant(value=n, kind=None)
                     for i, n in enumerate(decl.names)}
            decls = decls + templates.replace(
                f"ac.assigns_outside(kind, {', '.join(names)})", ac=self.ctx.runtime,
                kind=gast.Constant(value=kind, kind=None), **names)
        returned = templates.replace("return state", state=templates.names_tuple(state))
        fn = gast.FunctionDef(
            name=name,
            args=gast.arguments(
                args=[templates.name(p, gast.Param()) for p in params], posonlyargs=[],
                vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[],
            ),
            body=decls + body + (returned if returns else []),
            decorator_list=[], returns=None, type_comment=None, type_params=[],
        )
        if not fn.body:
            fn.body = [gast.Pass()]
        return fn

    def _call(self, template, node, state, inputs, trailing="", **subs):
        # Runtime messages name the state: autoconv's own variables by what they stand for.
        shown = getattr(self.ctx, "display_names", {})
        names = templates.strings_tuple([shown.get(name, name) for name in state])
        values = templates.names_tuple(state)
        if inputs:
            template = template[:-1] + ", inputs)"
            subs["inputs"] = templates.names_tuple(inputs)
        if trailing:
            template = template[:-1] + f", {trailing})"
        if state:
            return templates.replace(
                f"state_out = {template}", state_out=templates.names_tuple(state, gast.Store()),
                state=values, names=names, ac=self.ctx.runtime, **subs,
            )
        return templates.replace(template, state=values, names=names, ac=self.ctx.runtime, **subs)

    def visit_FunctionDef(self, node):
        outer = getattr(self, "scope_declared", ())
        declared = {gast.Global: set(), gast.Nonlocal: set()}
        for stmt in walk_statements(node):
            if stmt.__class__ in declared:
                declared[stmt.__class__].update(stmt.names)
        self.scope_declared = list(declared.items())
        outer_sites, self.function_sites = getattr(self, "function_sites", {}), _store_sites(node)
        outer_depth, self.loop_depth = getattr(self, "loop_depth", 0), 0
        outer_states, self.loop_states = getattr(self, "loop_states", []), []
        self.generic_visit(node)
        self.scope_declared, self.function_sites = outer, outer_sites
        self.loop_depth, self.loop_states = outer_depth, outer_states
        return node

    def visit_If(self, node):
        sites = _store_sites(node)  # (before the bodies below become functions)
        node._autoconv_in_place = _updated_in_place(node)
        node._autoconv_rebound, node._autoconv_item_roots = _rebound(node)
        node._autoconv_changed = _changed_objects(node)
        self.generic_visit(node)
        state, inputs = self._if_state(node)
        true_name = self.ctx.namer.new("if_true")
        functions = [self._body_function(true_name, state + inputs, node.body, state)]
        false_fn = None
        if node.orelse:
            false_fn = self.ctx.namer.new("if_false")
            functions.append(self._body_function(false_fn, state + inputs, node.orelse, state))
        trailing, in_place = _in_place_arguments(node, state, inputs)
        call = self._call("ac.if_stmt(test, if_true, if_false, state, names)", node, state,
                          inputs, trailing, test=node.test, if_true=true_name,
                          if_false=false_fn, **in_place)
        unbound = [name for name in inputs if name not in state]
        return self._undefined_inits(node, state + unbound, sites) + functions + call

    def visit_While(self, node):
        sites = _store_sites(node)  # (before the bodies below become functions)
        node._autoconv_in_place = _updated_in_place(node)
        node._autoconv_rebound, node._autoconv_item_roots = _rebound(node)
        self.loop_depth = getattr(self, "loop_depth", 0) + 1
        self.loop_states = [*getattr(self, "loop_states", []), set(self._state(node))]
        self.generic_visit(node)
        self.loop_depth -= 1
        self.loop_states = self.loop_states[:-1]
        state = self._state(node)
        inputs = self._inputs(node, state)
        test_name = self.ctx.namer.new("loop_test")
        body_name = self.ctx.namer.new("loop_body")
        test = templates.replace("return test", test=node.test)
        functions = [
            self._body_function(test_name, state + inputs, test, state, returns=False),
            self._body_function(body_name, state + inputs, node.body, state),
        ]
        trailing, subs = "", {}
        bounds = [b for b in self.anno(node, Anno.TRIP_BOUND) or () if b.counter in state]
        if bounds:
            # A loop growing a list: how many more trips it makes at most, from its test
            # (analysis/trips.py), sizes the list before the loop.
            trips_name = subs["loop_trips"] = self.ctx.namer.new("loop_trips")
            calls = [templates.replace(
                "ac.trips_bound(counter, op, bound, step)", ac=self.ctx.runtime,
                counter=b.counter, op=gast.Constant(value=b.op, kind=None),
                bound=b.bound, step=gast.Constant(value=b.step, kind=None))[0].value
                for b in bounds]
            trips = [gast.Return(value=gast.Tuple(elts=calls, ctx=gast.Load()))]
            functions.append(self._body_function(trips_name, state + inputs, trips, state,
                                                 returns=False))
            trailing = "trips=loop_trips"
        in_place, in_place_subs = _in_place_arguments(node, state, inputs)
        subs.update(in_place_subs)
        trailing = ", ".join(t for t in (trailing, in_place) if t)
        call = self._call("ac.while_stmt(loop_test, loop_body, state, names)", node, state,
                          inputs, trailing, loop_test=test_name, loop_body=body_name, **subs)
        return self._undefined_inits(node, state, sites) + functions + call

    def visit_For(self, node):
        sites = _store_sites(node)  # (before the bodies below become functions)
        node._autoconv_in_place = _updated_in_place(node)
        node._autoconv_rebound, node._autoconv_item_roots = _rebound(node)
        self.loop_depth = getattr(self, "loop_depth", 0) + 1
        self.loop_states = [*getattr(self, "loop_states", []), set(self._state(node))]
        self.generic_visit(node)
        self.loop_depth -= 1
        self.loop_states = self.loop_states[:-1]
        state = self._state(node)
        inputs = self._inputs(node, state)
        body_name = self.ctx.namer.new("loop_body")
        body = node.body
        if isinstance(node.target, gast.Name) and node.target.id not in state:
            item = node.target.id
        else:
            item = self.ctx.namer.new("item")
            body = templates.replace("target = item", target=node.target, item=item) + body
        functions = [self._body_function(body_name, [item] + state + inputs, body, state)]
        extra = self.anno(node, Anno.EXTRA_TEST)
        extra_name = None
        if extra is not None:
            extra_name = self.ctx.namer.new("extra_test")
            functions.insert(0, self._body_function(
                extra_name, state + inputs, templates.replace("return test", test=extra), state,
                returns=False))
        trailing, in_place = _in_place_arguments(node, state, inputs)
        call = self._call("ac.for_stmt(iterable, extra_test, loop_body, state, names)", node,
                          state, inputs, trailing, iterable=node.iter, extra_test=extra_name,
                          loop_body=body_name, **in_place)
        return self._undefined_inits(node, state, sites) + functions + call


_KEEP_IF_BOUND = """
try:
    name
except NameError:
    name = ac.Undefined(label)
"""

_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)


def _store_sites(node) -> dict:
    """{name: the lines where `node` assigns it}, nested scopes left out (the node itself may be
    a function: its body is walked)."""
    sites: dict = {}
    stack = list(node.body if isinstance(node, _SCOPES) else [node])
    while stack:
        n = stack.pop()
        if isinstance(n, _SCOPES):
            if not isinstance(n, gast.Lambda):
                sites.setdefault(n.name, []).append(n.lineno)
            continue
        if isinstance(n, gast.Name) and not isinstance(n.ctx, gast.Load):
            # A name another pass generated has no line: 0 counts it as possibly bound before,
            # which only costs a `try` (see _undefined_inits).
            sites.setdefault(n.id, []).append(getattr(n, "lineno", None) or 0)
        stack.extend(c for c in gast.iter_child_nodes(n))
    return sites


def _changed_objects(node) -> set:
    """Names whose objects `node` changes: attribute / item targets' roots, and lists grown
    (`name = ac.list_append(name, ...)`, written by the lists pass)."""
    changed = set(activity_of(node)[2])
    for n in gast.walk(node):
        if (isinstance(n, gast.Assign) and len(n.targets) == 1
                and isinstance(n.targets[0], gast.Name) and isinstance(n.value, gast.Call)
                and isinstance(n.value.func, gast.Attribute)
                and n.value.func.attr in ("list_append", "list_extend")):
            changed.add(n.targets[0].id)
    return changed


def _in_place_arguments(node, state, inputs):
    """(the trailing arguments, their values) that name what the bodies of `node` update in
    place (runtime/operators.py, NOTE [inputs updated in place]):

    - `updated=((position, name), ...)`: the inputs they may update in place, which the runtime
      carries as state and writes back;
    - `kept=(position, ...)`: the state they update in place only, never rebinding the name
      (`x += 1`, `x[i] = 0`), whose object the runtime writes back to and keeps bound.
    """
    trailing, subs = [], {}
    updated = [(i, name) for i, name in enumerate(inputs) if name in node._autoconv_in_place]
    if updated:
        trailing.append("updated=updated")
        subs["updated"] = gast.Tuple(elts=[
            gast.Tuple(elts=[gast.Constant(value=i, kind=None),
                             gast.Constant(value=name, kind=None)], ctx=gast.Load())
            for i, name in updated], ctx=gast.Load())
    updates = node._autoconv_in_place | node._autoconv_item_roots
    kept = [i for i, name in enumerate(state)
            if name in updates and name not in node._autoconv_rebound]
    if kept:
        trailing.append("kept=kept")
        subs["kept"] = gast.Tuple(elts=[gast.Constant(value=i, kind=None) for i in kept],
                                  ctx=gast.Load())
    return ", ".join(trailing), subs


def _rebound(node):
    """(names `node` binds: assignment, `for` and `with` targets, `del`; names whose items it
    sets: `x[i] = v`), nested scopes left out. An augmented assignment's target is not bound
    (Python updates a tensor in place)."""
    names, items = set(), set()
    stack = list(gast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        if isinstance(n, _SCOPES):
            if not isinstance(n, gast.Lambda):
                names.add(n.name)
            continue
        if isinstance(n, gast.AugAssign):
            stack.append(n.value)
            if not isinstance(n.target, gast.Name):
                stack.append(n.target)
            continue
        if _sets_item(n):  # `x = ac.setitem(x, i, v)` (the subscripts pass): `x[i] = v`
            items.add(n.targets[0].id)
            stack.extend(n.value.args)
            continue
        if (isinstance(n, gast.Subscript) and not isinstance(n.ctx, gast.Load)
                and isinstance(n.value, gast.Name)):
            items.add(n.value.id)
        if isinstance(n, gast.Name) and not isinstance(n.ctx, gast.Load):
            names.add(n.id)
        stack.extend(gast.iter_child_nodes(n))
    return names, items


def _updated_in_place(node) -> set:
    """Names whose tensors `node` may update in place: targets of augmented assignments
    (`i += 1`) and receivers of in-place methods (`y.add_(1)`), nested scopes left out."""
    names = set()
    stack = list(gast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        if isinstance(n, _SCOPES):
            continue
        if isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Name):
            names.add(n.target.id)
        elif (isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute)
              and isinstance(n.func.value, gast.Name) and _IN_PLACE.match(n.func.attr)):
            names.add(n.func.value.id)
        stack.extend(gast.iter_child_nodes(n))
    return names


# torch's naming of in-place methods: `add_`, `masked_fill_` (not `__iadd__` or `_private`)
_IN_PLACE = re.compile(r"^[a-z][a-z0-9_]*[a-z0-9]_$")


_AUGMENTED = {gast.Add: "+=", gast.Sub: "-=", gast.Mult: "*=", gast.Div: "/=",
              gast.FloorDiv: "//=", gast.Mod: "%=", gast.Pow: "**=", gast.LShift: "<<=",
              gast.RShift: ">>=", gast.BitAnd: "&=", gast.BitOr: "|=", gast.BitXor: "^=",
              gast.MatMult: "@="}
_SIMPLE = (gast.Name, gast.Constant)


def _augmented_assignments(body, ac):
    """`body` with each `target op= value` (nested scopes left out) as
    `target = ac.aug_assign(target, 'op=', value)`: a number the statement carries is a tensor
    in its staged bodies, which Python's `+=` would update in place (runtime/augmented.py, NOTE
    [number stand-ins]). A target is a name, or an item or attribute of one (`d['k']`,
    `self.n`) whose key is a name or a constant: reading it twice reads the same place."""
    out = []
    for stmt in body:
        if isinstance(stmt, gast.AugAssign) and _rereadable(stmt.target):
            read = copy.deepcopy(stmt.target)
            read.ctx = gast.Load()
            new = templates.replace(
                "target = ac.aug_assign(read, op, value)", target=stmt.target, read=read,
                op=gast.Constant(value=_AUGMENTED[type(stmt.op)], kind=None),
                value=stmt.value, ac=ac)
            copy_origin(new, stmt)
            out.extend(new)
            continue
        if not isinstance(stmt, _SCOPES):
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    setattr(stmt, field, _augmented_assignments(inner, ac))
            for handler in getattr(stmt, "handlers", None) or ():
                handler.body = _augmented_assignments(handler.body, ac)
        out.append(stmt)
    return out


def _rereadable(target) -> bool:
    if isinstance(target, gast.Name):
        return True
    if isinstance(target, gast.Attribute):
        return isinstance(target.value, gast.Name)
    return (isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name)
            and isinstance(target.slice, _SIMPLE))


def _sets_item(node) -> bool:
    """Whether `node` is `name = ac.setitem(name, key, value)`, written by the subscripts pass
    for `name[key] = value`: the object changes, the name is not rebound."""
    if not (isinstance(node, gast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], gast.Name) and isinstance(node.value, gast.Call)):
        return False
    func, args = node.value.func, node.value.args
    return (isinstance(func, gast.Attribute) and func.attr == "setitem" and bool(args)
            and isinstance(args[0], gast.Name) and args[0].id == node.targets[0].id)
