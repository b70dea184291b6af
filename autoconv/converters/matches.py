"""`match` statements become an if/elif chain; patterns that bind names bind them in its branches.

    match obj:                                  if torch.is_tensor(obj):
        case _ if torch.is_tensor(obj):             return Dense(obj)
            return Dense(obj)               ->  elif isinstance(obj, LinearOperator):
        case LinearOperator():                      return obj
            return obj                          else:
        case [a, b]:                                matched = ac.matched(
            return a + b                                ac.match_sequence(obj, 2, False), '[a, b]')
                                                    if matched:
                                                        a, b = obj[0], obj[1]
                                                        return a + b

NOTE [match statements as if chains]
The converters stage `if` statements, and a `match` that is a dispatch on its subject's type or
value (linear_operator's `to_linear_operator`, called by most of its functions: tester50 s02) is
an `if`/`elif` chain with Python's own tests: a class pattern without arguments is
`isinstance(subject, C)`, a value pattern `subject == v`, `None` / `True` / `False` an `is`
test, `|` an `or` of its alternatives, `_` always true; a guard is `and`-ed after the pattern,
as Python evaluates it only where the pattern matched. The subject is evaluated once, into a
fresh variable; a parameter is read again (no case runs before a test reads it), unless a
guard's `:=` rebinds it (match50 s02) or a pattern binds its name. Any other name may be
unbound, where Python raises before a first `case _ if ...:` runs (s03), or rebound by a
guard's call (a global, a `nonlocal` of a nested function: s04), so it is copied too. A
pattern that takes the subject apart (`[a, *rest]`, `{"k": v, **rest}`, `Point(0, y=yy)`)
tests its structure with the runtime's `match_*` functions and its items (`subject[0] == 0`,
`subject.y`) in the order Python reads them; one that binds names (those, `case x:`, `... as
n`) assigns them from the subject's items where the whole pattern matched, before its guard,
as Python does (since session 51; NOTE [patterns that bind names] in runtime/matching.py:
such a test must be Python's, and one that depends on a traced tensor is refused at the
case). A `|` of patterns that bind names tries them in order, binding the names of the first
that matches; inside another pattern (`[x, (a, 1) | (1, a)]`) it is an `or` of the
alternatives' tests, each name bound to a conditional expression of them (since session 52:
NOTE [alternatives that bind inside a pattern]). `case True:` is
`subject is True`, which never matches 1, also where the subject is a bool on some paths and
an int on others (NOTE [identity of a bool of two kinds] in runtime/staging/constants.py).

NOTE [alternatives that bind inside a pattern]
`case [x, (b, 1) | (1, b)]:` binds `b` from the item of the alternative that matched. A
pattern's test is one expression and its bindings are assigned after it (`matched` checks the
test is Python's), so the `|` is `t1 or t2` and `b` is `s[1][0] if t1 else s[1][1]`: the
alternative's test is read again only where the whole pattern matched, a Python bool then, and
its items are read where that alternative matched, in Python's order of alternatives. A test
read twice calls `__eq__`, `len` and `isinstance` of the subject's items twice where Python's
`match` calls them once (real51's refusal before session 52: nothing in a pattern is meant to
have effects). The last alternative needs no test (the whole pattern matched), nor does an
irrefutable one, which Python allows only last.

Runs before the other passes (conversion.py), on the parsed tree: it leaves no `match` for them.
"""

from __future__ import annotations

import ast
import copy

import gast

from ..errors import ConversionError

__all__ = ["lower_matches"]

_FIX = ("write the `|` at the top of the case (`case [a, 1] | [1, a]:`), or one case per "
        "alternative")


def lower_matches(tree, namer, filename: str, runtime: str):
    """`tree` with each `match` statement replaced by an if/elif chain (NOTE [match statements
    as if chains]) that calls the runtime, named `runtime`, to test a pattern's structure;
    raises a ConversionError at a pattern the chain cannot express."""
    return _Lowering(namer, filename, runtime).visit(tree)


class _Lowering(gast.NodeTransformer):
    def __init__(self, namer, filename, runtime):
        self.namer = namer
        self.filename = filename
        self.runtime = runtime
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
                or _rebound_in_guards(subject.id, node.cases)
                or subject.id in _bound_names(node.cases)):
            name = self.namer.new("match_subject")
            out.append(gast.copy_location(_assign(name, subject), node))
            subject = _name(name)
        chain = None
        for case in reversed(node.cases):
            alternatives = self._alternatives(case.pattern, lambda: _name(subject.id))
            for test, _, pattern in alternatives:
                if test is not None:  # (an error in a test names the case's line, not line 1)
                    _locate(test, pattern)
            if case.guard is not None and (alternatives[0][0] is not None
                                           or alternatives[0][1]) and any(
                    n.__class__ is gast.NamedExpr for n in gast.walk(case.guard)):
                raise ConversionError(
                    "unsupported", self.filename, case.guard.lineno, case.guard.col_offset + 1,
                    construct="`:=` in the guard of a `match` case that has a pattern (the "
                              "guard is the right operand of an `and` after the pattern's test)",
                    fix="bind the value before the `match`, or test it in the case's body")
            chain = self._case(case, alternatives, chain)
        if chain is not None:
            out.extend(chain)
        return out or gast.copy_location(gast.Pass(), node)

    def _alternatives(self, pattern, subject):
        """[(test, bindings, pattern)] of `pattern`: one, or each of a `|` of patterns that
        bind names, tried in order (the names of the first that matches are bound)."""
        if pattern.__class__ is gast.MatchOr:
            parts = [(*self._pattern(p, subject), p) for p in pattern.patterns]
            if any(bindings for _, bindings, _ in parts):
                return parts
        return [(*self._pattern(pattern, subject), pattern)]

    def _case(self, case, alternatives, chain):
        """The statements of `case` with the `chain` of the cases after it as its else."""
        body = list(case.body)
        test, bindings, _ = alternatives[0]
        before = []
        if len(alternatives) == 1 and bindings and test is None:  # (`case x:`, `_ as n`)
            before = [_locate(_assign_all(bindings), case.pattern)]
        elif len(alternatives) == 1 and bindings and case.guard is None:
            flag = self.namer.new("pattern_matched")
            before = [self._matched(flag, test, case.pattern)]
            body = [_locate(_assign_all(bindings), case.pattern), *body]
            test = _name(flag)
        elif bindings:  # NOTE [patterns that bind names] in runtime/matching.py
            flag = self.namer.new("pattern_matched")
            before = self._bind_first(flag, alternatives)
            test = _name(flag)
        if case.guard is not None:
            test = case.guard if test is None else gast.BoolOp(op=gast.And(),
                                                               values=[test, case.guard])
        if test is None:  # (`case _:` matches all: the cases after it are never tried)
            return before + body
        branch = gast.If(test=test, body=body, orelse=chain or [])
        return before + [gast.copy_location(branch, case.pattern)]

    def _bind_first(self, flag, alternatives):
        """`flag = <the first alternative matched>; if flag: <its bindings> else: <the next
        alternative's>`: Python binds a pattern's names before its guard runs."""
        (test, bindings, pattern), rest = alternatives[0], alternatives[1:]
        assign = _locate(_assign_all(bindings), pattern)
        if test is None:
            return [_locate(_assign(flag, gast.Constant(value=True, kind=None)), pattern),
                    assign]
        orelse = self._bind_first(flag, rest) if rest else []
        return [self._matched(flag, test, pattern),
                _locate(gast.If(test=_name(flag), body=[assign], orelse=orelse), pattern)]

    def _matched(self, flag, test, pattern):
        """`flag = ac.matched(test, '<pattern>')`: the test of a pattern that binds names."""
        source = ast.unparse(gast.gast_to_ast(pattern))
        return _locate(_assign(flag, self._runtime_call(
            "matched", test, gast.Constant(value=source, kind=None))), pattern)

    def _pattern(self, pattern, subject):
        """(the expression that is true where `pattern` matches the value `subject()` gives,
        None: always; the names it binds, each with the expression of its value)."""
        cls = pattern.__class__
        if cls is gast.MatchAs:
            test, bindings = (None, []) if pattern.pattern is None else self._pattern(
                pattern.pattern, subject)
            if pattern.name is not None:
                bindings = [*bindings, (pattern.name, subject())]
            return test, bindings
        if cls is gast.MatchValue:
            return _compare(subject(), gast.Eq(), pattern.value), []
        if cls is gast.MatchSingleton:
            return _compare(subject(), gast.Is(),
                            gast.Constant(value=pattern.value, kind=None)), []
        if cls is gast.MatchClass:
            return self._class(pattern, subject)
        if cls is gast.MatchSequence:
            return self._sequence(pattern, subject)
        if cls is gast.MatchMapping:
            return self._mapping(pattern, subject)
        if cls is gast.MatchOr:
            parts = [self._pattern(p, subject) for p in pattern.patterns]
            if any(bindings for _, bindings in parts):
                return _either(parts)
            if any(test is None for test, _ in parts):
                return None, []
            return gast.BoolOp(op=gast.Or(), values=[test for test, _ in parts]), []
        raise ConversionError("unsupported", self.filename, pattern.lineno,
                              pattern.col_offset + 1, construct=f"a `match` {cls.__name__}",
                              fix=_FIX)

    def _class(self, pattern, subject):
        """`Point(0, y=yy)`: an instance with those attributes, then each sub-pattern on its
        attribute (a positional one's named by the class's `__match_args__`)."""
        if not (pattern.patterns or pattern.kwd_patterns):
            return gast.Call(func=_name("isinstance"), args=[subject(), pattern.cls],
                             keywords=[]), []
        names = gast.Tuple(elts=[gast.Constant(value=a, kind=None) for a in pattern.kwd_attrs],
                           ctx=gast.Load())
        structure = self._runtime_call("match_class", subject(), pattern.cls,
                                       gast.Constant(value=len(pattern.patterns), kind=None),
                                       names)
        items = [(p, self._item(subject, "match_positional", pattern.cls, i))
                 for i, p in enumerate(pattern.patterns)]
        items += [(p, (lambda attr: lambda: gast.Attribute(
            value=subject(), attr=attr, ctx=gast.Load()))(attr))
            for attr, p in zip(pattern.kwd_attrs, pattern.kwd_patterns)]
        return self._items(structure, items, [])

    def _sequence(self, pattern, subject):
        """`[a, *rest, b]`: a sequence (not a str) of that length, then each item's pattern."""
        stars = [i for i, p in enumerate(pattern.patterns) if p.__class__ is gast.MatchStar]
        star = stars[0] if stars else None
        fixed = len(pattern.patterns) - len(stars)
        structure = self._runtime_call("match_sequence", subject(),
                                       gast.Constant(value=fixed, kind=None),
                                       gast.Constant(value=star is not None, kind=None))
        items, rest = [], []
        for i, p in enumerate(pattern.patterns):
            if i == star:
                if p.name is not None:
                    after = len(pattern.patterns) - i - 1
                    rest.append((p.name, self._runtime_call(
                        "match_rest", subject(), gast.Constant(value=i, kind=None),
                        gast.Constant(value=after, kind=None))))
                continue
            index = i if star is None or i < star else i - len(pattern.patterns)
            items.append((p, _subscript(subject, lambda index=index: gast.Constant(
                value=index, kind=None))))
        return self._items(structure, items, rest)

    def _mapping(self, pattern, subject):
        """`{"k": v, **rest}`: a Mapping holding each key, then each value's pattern."""
        keys = gast.Tuple(elts=[copy.deepcopy(k) for k in pattern.keys], ctx=gast.Load())
        structure = self._runtime_call("match_mapping", subject(), keys)
        items = [(p, _subscript(subject, lambda k=k: copy.deepcopy(k)))
                 for k, p in zip(pattern.keys, pattern.patterns)]
        rest = [] if pattern.rest is None else [(pattern.rest, self._runtime_call(
            "match_mapping_rest", subject(), copy.deepcopy(keys)))]
        return self._items(structure, items, rest)

    def _items(self, structure, items, rest):
        """The test `structure and <each item's test>`, and the names the items bind."""
        tests, bindings = [structure], []
        for p, item in items:
            test, bound = self._pattern(p, item)
            if test is not None:
                tests.append(test)
            bindings += bound
        return (tests[0] if len(tests) == 1 else gast.BoolOp(op=gast.And(), values=tests),
                bindings + rest)

    def _item(self, subject, function, klass, index):
        return lambda: self._runtime_call(function, subject(), copy.deepcopy(klass),
                                          gast.Constant(value=index, kind=None))

    def _runtime_call(self, function, *args):
        return gast.Call(func=gast.Attribute(value=_name(self.runtime), attr=function,
                                             ctx=gast.Load()), args=list(args), keywords=[])


def _either(parts):
    """(test, bindings) of a `|` of patterns that bind names inside another pattern
    (`[x, (b, 1) | (1, b)]`): `t1 or t2`, and each name the first alternative that matched
    binds, `v1 if t1 else v2` (NOTE [alternatives that bind inside a pattern])."""
    for number, (test, _) in enumerate(parts):
        if test is None:  # (an irrefutable alternative: Python allows it only last)
            parts = parts[:number + 1]
            break
    tests = [test for test, _ in parts]
    test = None if tests[-1] is None else (
        tests[0] if len(tests) == 1 else gast.BoolOp(op=gast.Or(), values=tests))
    bindings = []
    for name, _ in parts[0][1]:  # (Python's compiler: every alternative binds the same names)
        *earlier, (_, last) = parts
        value = dict(last)[name]
        for alternative, bound in reversed(earlier):
            value = gast.IfExp(test=copy.deepcopy(alternative), body=dict(bound)[name],
                               orelse=value)
        bindings.append((name, value))
    return test, bindings


def _compare(subject, op, value):
    return gast.Compare(left=subject, ops=[op], comparators=[copy.deepcopy(value)])


def _subscript(subject, key):
    return lambda: gast.Subscript(value=subject(), slice=key(), ctx=gast.Load())


def _bound_names(cases) -> set:
    """The names the cases' patterns bind."""
    return {n.name for case in cases for n in gast.walk(case.pattern)
            if n.__class__ in (gast.MatchAs, gast.MatchStar) and n.name is not None} | {
        n.rest for case in cases for n in gast.walk(case.pattern)
        if n.__class__ is gast.MatchMapping and n.rest is not None}


def _rebound_in_guards(name, cases):
    """Whether a guard's `:=` binds `name`: the later cases test the subject, not the name."""
    return any(n.__class__ is gast.NamedExpr and n.target.id == name
               for case in cases if case.guard is not None for n in gast.walk(case.guard))


def _assign(name, value):
    return gast.Assign(targets=[_name(name, gast.Store())], value=value, type_comment=None)


def _assign_all(bindings):
    """`a, b = e1, e2`: every value read before any name is bound."""
    if len(bindings) == 1:
        return _assign(*bindings[0])
    return gast.Assign(
        targets=[gast.Tuple(elts=[_name(n, gast.Store()) for n, _ in bindings],
                            ctx=gast.Store())],
        value=gast.Tuple(elts=[v for _, v in bindings], ctx=gast.Load()), type_comment=None)


def _locate(tree, origin):
    for node in gast.walk(tree):
        if getattr(node, "lineno", None) is None and hasattr(node, "_attributes") and (
                "lineno" in node._attributes):
            gast.copy_location(node, origin)
    return tree


def _name(identifier, ctx=None):
    return gast.Name(id=identifier, ctx=ctx or gast.Load(), annotation=None, type_comment=None)
