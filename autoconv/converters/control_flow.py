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

import gast

from .. import templates
from ..analysis.activity import reads_writes
from ..analysis.annos import Anno
from ..analysis.nodes import walk_statements
from ..transformer import Converter
from .generators import leaves_generators_alone


_KEEP_OR_UNDEFINED = """
try:
    name
except NameError:
    name = ac.Undefined(label)
"""

_LOOPS = (gast.For, gast.While)
_COMPOUND = (gast.If, gast.For, gast.While)
_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)


def _possibly_bound(fn) -> dict:
    """{id(statement): names that may have a value when it starts} for each if / while / for of
    `fn`'s own scope: names assigned before it on some path, and those assigned anywhere in an
    enclosing loop (an earlier iteration)."""
    found = {}

    def walk(stmts, bound):
        for stmt in stmts:
            if isinstance(stmt, _SCOPES):
                bound = bound | {stmt.name}
                continue
            if isinstance(stmt, _COMPOUND):
                found[id(stmt)] = bound
            inner = bound
            if isinstance(stmt, _LOOPS):  # the statements in it: earlier iterations too
                inner = bound | reads_writes(stmt)[1]
            for field in ("body", "orelse", "finalbody"):
                block = getattr(stmt, field, None)
                if isinstance(block, list):
                    walk(block, inner)
            for handler in getattr(stmt, "handlers", ()):
                walk(handler.body, inner)
            bound = bound | reads_writes(stmt)[1]

    walk(fn.body, frozenset())
    return found


@leaves_generators_alone
class ControlFlowConverter(Converter):
    """Converts compound statements bottom-up; reads the annotations computed by the analysis."""

    statements_only = True

    reads = (Anno.LIVE_OUT, Anno.BODY_LIVE_IN, Anno.WRITES, Anno.READS, Anno.DEFINED_IN,
             Anno.EXTRA_TEST)

    def _state(self, node):
        live = self.anno(node, Anno.LIVE_OUT) | self.anno(node, Anno.BODY_LIVE_IN)
        return sorted(self.anno(node, Anno.WRITES) & live)

    def _inputs(self, node, state):
        """Locals the bodies read but do not assign, bound for sure when the statement starts."""
        declared = set().union(*(names for _, names in self.scope_declared))
        read_only = self.anno(node, Anno.READS) - self.anno(node, Anno.WRITES) - set(state)
        return sorted((read_only & self.anno(node, Anno.DEFINED_IN)) - declared)

    def _undefined_inits(self, node, state):
        defined = self.anno(node, Anno.DEFINED_IN)
        maybe = getattr(self, "_maybe_bound", {}).get(id(node), ())
        stmts = []
        for name in state:
            if name not in defined:
                # A value it may have must survive: an iteration that does not assign it keeps
                # the previous one's (`for i in r: if i == 1: y = i` then `y`).
                template = _KEEP_OR_UNDEFINED if name in maybe else "name = ac.Undefined(label)"
                stmts += templates.replace(template, name=name,
                                           label=gast.Constant(value=name, kind=None),
                                           ac=self.ctx.runtime)
        return stmts

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
        _, local = reads_writes(body)
        declared = set().union(*(names for _, names in self.scope_declared))
        bound = set(params) | declared
        missing = []
        for stmt in body:
            reads, writes = reads_writes(stmt)
            missing += sorted(((reads & local) - bound) - set(missing))
            bound |= writes
        return missing

    def _body_function(self, name, params, body, state, returns=True):
        inits = []
        for missing in self._unbound_reads(params, body):
            inits += templates.replace("name = ac.Undefined(label)", name=missing,
                                       label=gast.Constant(value=missing, kind=None),
                                       ac=self.ctx.runtime)
        body = inits + body
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

    def _call(self, template, node, state, inputs, **subs):
        # Runtime messages name the state: autoconv's own variables by what they stand for.
        shown = getattr(self.ctx, "display_names", {})
        names = templates.strings_tuple([shown.get(name, name) for name in state])
        values = templates.names_tuple(state)
        if inputs:
            template = template[:-1] + ", inputs)"
            subs["inputs"] = templates.names_tuple(inputs)
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
        outer_bound = getattr(self, "_maybe_bound", {})
        self._maybe_bound = _possibly_bound(node)
        self.generic_visit(node)
        self.scope_declared = outer
        self._maybe_bound = outer_bound
        return node

    def visit_If(self, node):
        self.generic_visit(node)
        state = self._state(node)
        inputs = self._inputs(node, state)
        true_name = self.ctx.namer.new("if_true")
        functions = [self._body_function(true_name, state + inputs, node.body, state)]
        false_fn = None
        if node.orelse:
            false_fn = self.ctx.namer.new("if_false")
            functions.append(self._body_function(false_fn, state + inputs, node.orelse, state))
        call = self._call("ac.if_stmt(test, if_true, if_false, state, names)", node, state,
                          inputs, test=node.test, if_true=true_name, if_false=false_fn)
        return self._undefined_inits(node, state) + functions + call

    def visit_While(self, node):
        self.generic_visit(node)
        state = self._state(node)
        inputs = self._inputs(node, state)
        test_name = self.ctx.namer.new("loop_test")
        body_name = self.ctx.namer.new("loop_body")
        test = templates.replace("return test", test=node.test)
        functions = [
            self._body_function(test_name, state + inputs, test, state, returns=False),
            self._body_function(body_name, state + inputs, node.body, state),
        ]
        call = self._call("ac.while_stmt(loop_test, loop_body, state, names)", node, state,
                          inputs, loop_test=test_name, loop_body=body_name)
        return self._undefined_inits(node, state) + functions + call

    def visit_For(self, node):
        self.generic_visit(node)
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
        call = self._call("ac.for_stmt(iterable, extra_test, loop_body, state, names)", node,
                          state, inputs, iterable=node.iter, extra_test=extra_name,
                          loop_body=body_name)
        return self._undefined_inits(node, state) + functions + call
