"""`match` statements whose patterns only test the subject become an if/elif chain.

    match obj:                                  if torch.is_tensor(obj):
        case _ if torch.is_tensor(obj):             return Dense(obj)
            return Dense(obj)               ->  elif isinstance(obj, LinearOperator):
        case LinearOperator():                      return obj
            return obj                          else:
        case _:                                     raise TypeError(...)
            raise TypeError(...)

NOTE [match statements as if chains]
The converters stage `if` statements, and a `match` that is a dispatch on its subject's type or
value (linear_operator's `to_linear_operator`, called by most of its functions: tester50 s02) is
an `if`/`elif` chain with Python's own tests: a class pattern without arguments is
`isinstance(subject, C)`, a value pattern `subject == v`, `None` / `True` / `False` an `is`
test, `|` an `or` of its alternatives, `_` always true; a guard is `and`-ed after the pattern,
as Python evaluates it only where the pattern matched. The subject is evaluated once, into a
fresh variable; a parameter is read again (no case runs before a test reads it), unless a
guard's `:=` rebinds it (match50 s02). Any other name may be unbound, where Python raises
before a first `case _ if ...:` runs (s03), or rebound by a guard's call (a global, a
`nonlocal` of a nested function: s04), so it is copied too. Patterns that bind names or
take the subject apart (`case x:`, `case Point(x=0)`, `[a, *rest]`, `{"k": v}`, `... as name`)
are refused as before: the names they bind on a failed match, and the order in which Python
reads the subject's items and attributes, are not an if chain's. `case True:` is `subject is
True`, which never matches 1, also where the subject is a bool on some paths and an int on
others (NOTE [identity of a bool of two kinds] in runtime/staging/constants.py).

Runs before the other passes (conversion.py), on the parsed tree: it leaves no `match` for them.
"""

from __future__ import annotations

import gast

from ..errors import ConversionError

__all__ = ["lower_matches"]

_KINDS = {"MatchSequence": "sequence pattern", "MatchMapping": "mapping pattern",
          "MatchClass": "class pattern with arguments"}
_FIX = ("test the subject in an if/elif chain (isinstance(...), ==), then take the values out "
        "of it in the branch")


def lower_matches(tree, namer, filename: str):
    """`tree` with each `match` statement replaced by an if/elif chain (NOTE [match statements
    as if chains]); raises a ConversionError at a pattern the chain cannot express."""
    return _Lowering(namer, filename).visit(tree)


class _Lowering(gast.NodeTransformer):
    def __init__(self, namer, filename):
        self.namer = namer
        self.filename = filename
        self.params = [set()]  # (the enclosing function's that only its own code rebinds)

    def visit_FunctionDef(self, node):
        args = node.args
        shared = {name for n in gast.walk(node) if n.__class__ is gast.Nonlocal
                  for name in n.names}  # (a nested function's `nonlocal` may rebind one)
        self.params.append({a.id for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                           args.vararg, args.kwarg] if a is not None} - shared)
        self.generic_visit(node)
        self.params.pop()
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.params.append(set())
        self.generic_visit(node)
        self.params.pop()
        return node

    def visit_Match(self, node):
        self.generic_visit(node)  # (a match in a case's body first)
        out = []
        subject = node.subject
        if (subject.__class__ is not gast.Name or subject.id not in self.params[-1]
                or _rebound_in_guards(subject.id, node.cases)):
            name = self.namer.new("match_subject")
            out.append(gast.copy_location(gast.Assign(
                targets=[gast.Name(id=name, ctx=gast.Store(), annotation=None, type_comment=None)],
                value=subject, type_comment=None), node))
            subject = gast.Name(id=name, ctx=gast.Load(), annotation=None, type_comment=None)
        chain = None
        for case in reversed(node.cases):
            test = self._test(case.pattern, subject)
            if test is not None:  # (an error in a test names the case's line, not line 1)
                _locate(test, case.pattern)
            if case.guard is not None and test is not None and any(
                    n.__class__ is gast.NamedExpr for n in gast.walk(case.guard)):
                raise ConversionError(
                    "unsupported", self.filename, case.guard.lineno, case.guard.col_offset + 1,
                    construct="`:=` in the guard of a `match` case that has a pattern (the "
                              "guard is the right operand of an `and` after the pattern's test)",
                    fix="bind the value before the `match`, or test it in the case's body")
            if case.guard is not None:
                test = case.guard if test is None else gast.BoolOp(op=gast.And(),
                                                                   values=[test, case.guard])
            if test is None:  # (`case _:` matches all: the cases after it are never tried)
                chain = list(case.body)
                continue
            branch = gast.If(test=test, body=list(case.body), orelse=chain or [])
            chain = [gast.copy_location(branch, case.pattern)]
        if chain is not None:
            out.extend(chain)
        return out or gast.copy_location(gast.Pass(), node)

    def _test(self, pattern, subject):
        """The expression that is true where `pattern` matches `subject`; None: always."""
        cls = pattern.__class__
        if cls is gast.MatchAs and pattern.name is None and pattern.pattern is None:
            return None
        if cls is gast.MatchValue:
            return self._compare(subject, gast.Eq(), pattern.value)
        if cls is gast.MatchSingleton:
            return self._compare(subject, gast.Is(),
                                 gast.Constant(value=pattern.value, kind=None))
        if cls is gast.MatchClass and not (pattern.patterns or pattern.kwd_patterns):
            return gast.Call(func=gast.Name(id="isinstance", ctx=gast.Load(), annotation=None,
                                            type_comment=None),
                             args=[_load(subject), pattern.cls], keywords=[])
        if cls is gast.MatchOr:
            tests = [self._test(p, subject) for p in pattern.patterns]
            if any(t is None for t in tests):
                return None
            return gast.BoolOp(op=gast.Or(), values=tests)
        raise ConversionError("unsupported", self.filename, pattern.lineno,
                              pattern.col_offset + 1, construct=_refused(pattern), fix=_FIX)

    @staticmethod
    def _compare(subject, op, value):
        return gast.Compare(left=_load(subject), ops=[op], comparators=[value])


def _refused(pattern) -> str:
    """What the refused `pattern` is, for the message at its line."""
    if pattern.__class__ is gast.MatchAs:
        kind = (f"capture pattern (`case {pattern.name}:` binds {pattern.name})"
                if pattern.pattern is None else f"pattern with `as {pattern.name}`")
    else:
        kind = _KINDS[pattern.__class__.__name__]
    return f"a `match` {kind}, which binds names or takes the subject apart,"


def _rebound_in_guards(name, cases):
    """Whether a guard's `:=` binds `name`: the later cases test the subject, not the name."""
    return any(n.__class__ is gast.NamedExpr and n.target.id == name
               for case in cases if case.guard is not None for n in gast.walk(case.guard))


def _locate(tree, origin):
    for node in gast.walk(tree):
        if getattr(node, "lineno", None) is None and hasattr(node, "_attributes") and (
                "lineno" in node._attributes):
            gast.copy_location(node, origin)


def _load(name):
    return gast.Name(id=name.id, ctx=gast.Load(), annotation=None, type_comment=None)
