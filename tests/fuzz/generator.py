"""Random Python functions over 0-d int64 tensors, with the control flow autoconv converts.

A program is source text for `def fuzz_fn(x, y, k)`: `x` and `y` are 0-d int64 tensors, `k` a
Python int. Plain Python on eager tensors is the reference, so every program is valid Python
that terminates, cannot overflow int64 or divide by zero, and returns int64 tensors only. It also
stays inside what autoconv documents as supported (README "Limitations"):

- every variable is assigned at the top of the function, before any branch or loop, except `m`,
  which some programs assign only inside loops and read once, in the final `return`: plain
  Python raises UnboundLocalError there when no assignment ran, and the graph must too;
- a variable that starts as a tensor only ever gets tensor values (`torch.tensor(3)`, never
  `3`), so its dtype and shape are the same on every path; a variable that starts as a Python
  int may become a tensor (staging promotes it to int64 anyway);
- no two variables share a tensor: every assignment's value is a new tensor, because
  `a += 1` mutates a tensor in place in Python while staged bodies work on private copies;
- every `while` has a guard, `guardN < K`, on a counter that is reset before the loop and
  incremented first in its body, so `continue` cannot skip it (the minimiser never removes it);
- values stay small: a plain assignment reduces anything that can grow with `% M`, augmented
  assignments add bounded amounts, `//` and `%` only by positive constants.

Around that core a program may also use (each behind a random choice, and written before
`fuzz_fn` in the same source when used): attribute and dict-item state on a local object
(`s.v`, `d['k']`, a `State` class from the prelude) and its methods (`s.bump(t)`, a value, and
`s.step(t)`, a statement that changes `s.v` under a staged `if`), helper
functions `hN(x, y, k)` generated like `fuzz_fn` (maybe behind a `functools.wraps` decorator, with
their body inside `try`, returning tuples early), `raise ValueError("fuzz")` under a condition
(outside any `try`: plain Python's exception is the reference then), the builtins `len` / `min` /
`max` / `abs` / `sum` of tensors, `for` over `zip` of a stacked tensor and a Python list, `for`
over the rows of a stacked tensor, `t.item()` in conditions, and a list `vs` grown with `append`
under tensor control flow (never inside two loops: README, a list cannot grow by a
data-dependent number of items per iteration) and read once, by the final return, with `len`,
`sum` and `torch.stack`. Since session 37 the dict state may be a `collections.defaultdict`
(its factory never called: only the key it starts with is read and written, README) and a
helper may be called through a `functools.partial` bound at the top (`ph0 =
functools.partial(h0, k=2)`, or binding the first tensor argument). Those two choices are drawn
from a second random stream (`_Generator.extra`), so that the statements of a seed's programs
stay those of earlier sessions' runs. Since session 38 a program may make callables that count
their calls in Python numbers they hold (`_Callees`: a callable object's list, dict and
attribute, a bound method of another object holding the caller's list, a partial holding the
caller's dict; `+=` or a plain assignment), call them in staged `if` tests and bodies and in
loop bodies (never in a loop's test: README, a test gives back only its condition), and return
the counts; whether it does comes from a third stream, so the other programs are unchanged.
Since session 48, with `extras={"closure"}` (the CLI's `--with closure`; off by default, so
that every earlier seed's command gives the programs it gave), a program may define a nested
function at its top that reads fuzz_fn's locals by closure (`_Closure`), and call it in values
and tests while staged bodies rebind what it reads. Since session 53 three more extras, each
from its own stream: "optional" (`_Optional`: `o = None` at the top, set to a tensor or back to
None in staged bodies, read only through `o is None` tests), "walrus" (`_Walrus`: `if (a :=
...) > 2:` binding a tensor local in an `if` / `elif` test) and "match" (`_Match`: a `match` on
a tensor or on `k`, with value, `|`, guarded capture and `_` cases).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field

__all__ = ["Program", "generate", "KNOWN_BUGS", "EXTRAS", "GUARD", "FUNCTION_NAME", "TENSOR_PARAMS", "INT_PARAMS"]

FUNCTION_NAME = "fuzz_fn"
TENSOR_PARAMS = ("x", "y")
INT_PARAMS = ("k",)
GUARD = "guard"  # prefix of while-loop counters; the minimiser keeps their increments and tests
_TENSOR_LOCALS = ("a", "b", "c")
_INT_LOCALS = ("p", "q")
UNBOUND = "m"  # see _Generator.maybe_unbound
OPTIONAL = "o"  # see _Optional
GROWN = "vs"  # see _Generator.grows_list
# Constructs that hit known, unfixed bugs (each has a strict-xfail regression in
# tests/fuzz/regressions/); the generator leaves them out unless asked, so that new bugs stand out.
# None is open: "chain" (chained comparisons) and "mixed_and_or" (an int tensor operand of
# and / or in a condition) were fixed; see chained_compare_in_nested_if.py and and_*.py there;
# so was "maybe_unbound" (a variable only loops bind: its bound flag, unbound_in_staged_if_*),
# and "callee_in_test", a counting callable (`_Callees`) called in an `if`'s test (session 39:
# count_of_bound_method_in_staged_loop_with_return.py and
# count_of_bound_method_in_returning_if_test_then_staged_loop.py).
KNOWN_BUGS = frozenset()
# Constructs added after seeds were recorded, generated only when asked (`generate(extras=...)`,
# the CLI's `--with`), each from its own random stream: "closure" (session 48, `_Closure`);
# "optional", "walrus" and "match" (session 53: `_Optional`, `_Walrus`, `_Match`).
EXTRAS = frozenset({"closure", "optional", "walrus", "match"})
# Exception types programs raise; the runner accepts these as outcomes.
RAISES = ("ValueError", "UnboundLocalError")
_CMP = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


@dataclass
class Program:
    """A generated function's source and the Python int it is called with."""

    source: str
    k: int
    seed: int = 0
    index: int = 0
    features: set = field(default_factory=set)


def _name(n, ctx=None):
    return ast.Name(id=n, ctx=ctx or ast.Load())


def _const(v):
    return ast.UnaryOp(ast.USub(), ast.Constant(-v)) if v < 0 else ast.Constant(v)


def _bin(left, op, right):
    return ast.BinOp(left, op, right)


def _tensor_const(v):
    return ast.Call(ast.Attribute(_name("torch"), "tensor", ast.Load()), [_const(v)], [])


class _Scope:
    """What a statement may read and write where it is generated."""

    def __init__(self):
        self.loop_vars: list[str] = []  # loop variables of the enclosing for loops (int valued)
        self.in_loop = False
        self.loops = 0  # how many loops enclose the statement

    def child(self, loop_var=None, in_loop=None):
        s = _Scope()
        s.loop_vars = self.loop_vars + (list(loop_var) if isinstance(loop_var, tuple) else
                                        [loop_var] if loop_var else [])
        s.in_loop = self.in_loop if in_loop is None else in_loop
        s.loops = self.loops + (1 if in_loop else 0)
        return s


# Written before `fuzz_fn` when a program uses them (see the module docstring).
_PRELUDE_IMPORTS = "import collections\nimport functools\n"
_STATE_CLASS = """
class State:

    def __init__(self, v):
        self.v = v

    def bump(self, t):
        if t > self.v:
            return t - self.v
        return self.v % 5 + t

    def step(self, t):
        if t > 0:
            self.v = (self.v + t) % 7
        else:
            self.v = (self.v - t) % 5
"""
_DECORATOR = """
def traced(fn):

    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args)
    return wrapper
"""


def _attr(obj, name, ctx=None):
    return ast.Attribute(_name(obj), name, ctx or ast.Load())


def _item(obj, key, ctx=None):
    return ast.Subscript(_name(obj), ast.Constant(key), ctx or ast.Load())


class _Callees:
    """Callables fuzz_fn makes at its top that count their calls in Python numbers they hold
    (session 38): a callable object `cnt` (`self.calls[0]`, `self.seen['n']`, maybe `self.n`),
    a bound method `tick` of another object holding fuzz_fn's list `state`, and a partial
    `pcount` of `count_in` holding fuzz_fn's dict `tally`. Each update is `+=` or a plain
    `place = place + 1`; the counts are added to the final return. The shapes of session 37's
    make test-slow finding, silently wrong under torch.compile (docs/changelog.md, session 38
    lead). Every choice comes from the program's third random stream, so that a program
    without callees is the one earlier sessions generated."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.forms = sorted(rng.sample(("object", "bound_method", "partial"), rng.randint(1, 3)))
        self.method_bound = rng.random() < 0.5  # `tick = meter.tick`, else `meter.tick(t)`
        # `self.n` counted too (an attribute store in a staged body: refused under compile)
        self.attribute = "object" in self.forms and rng.random() < 0.3
        self.used = False

    def _update(self, place, amount=1):
        if self.rng.random() < 0.65:
            return f"{place} += {amount}"
        return f"{place} = {place} + {amount}"

    def _body(self, places, reads):
        """Updates of `places` (one under an `if` on the tensor now and then) and a return of
        a new bounded tensor, maybe reading a count (a staged body reads a carried number)."""
        r = self.rng
        lines = []
        for place in r.sample(places, r.randint(1, len(places))):
            update = self._update(place, r.randint(1, 2))
            if r.random() < 0.25:
                lines += [f"if t > {r.randint(-2, 2)}:", f"    {update}"]
            else:
                lines.append(update)
        value = f"t % {r.randint(3, 7)}"
        if r.random() < 0.4:
            value += f" + {r.choice(reads)} % 3"
        return lines + [f"return {value} + {r.randint(0, 2)}"]

    def prelude(self) -> str:
        r = self.rng
        indent = lambda lines, n: "".join(" " * n + line + "\n" for line in lines)
        out = ""
        if "object" in self.forms:
            places = ["self.calls[0]", "self.seen['n']"]
            if self.attribute:
                places.append("self.n")
            out += ("\nclass Counter:\n\n    def __init__(self):\n        self.calls = [0]\n"
                    "        self.seen = {'n': 0}\n        self.n = 0\n\n"
                    "    def __call__(self, t):\n" + indent(self._body(places, places), 8))
        if "bound_method" in self.forms:
            places = ["self.state[0]"]
            out += ("\nclass Meter:\n\n    def __init__(self, state):\n"
                    "        self.state = state\n\n    def tick(self, t):\n"
                    + indent(self._body(places, places), 8))
        if "partial" in self.forms:
            places = ["tally['n']"]
            out += "\ndef count_in(tally, t):\n" + indent(self._body(places, places), 4)
        return out

    def init(self) -> list:
        """The state and callables, assigned at the top of fuzz_fn."""
        src = []
        if "object" in self.forms:
            src.append("cnt = Counter()")
        if "bound_method" in self.forms:
            src += ["state = [0]", "meter = Meter(state)"]
            if self.method_bound:
                src.append("tick = meter.tick")
        if "partial" in self.forms:
            src += ["tally = {'n': 0}", "pcount = functools.partial(count_in, tally)"]
        return ast.parse("\n".join(src)).body

    def call(self, arg):
        """A call of one of the callables on the tensor `arg` (a new bounded int64 tensor)."""
        self.used = True
        form = self.rng.choice(self.forms)
        if form == "object":
            fn = _name("cnt")
        elif form == "bound_method":
            fn = _name("tick") if self.method_bound else _attr("meter", "tick")
        else:
            fn = _name("pcount")
        return ast.Call(fn, [arg], [])

    def tensor_test(self):
        """`x > 1`: a test on a tensor, so that the statement is staged."""
        r = self.rng
        return ast.Compare(_name(r.choice(TENSOR_PARAMS + _TENSOR_LOCALS)), [r.choice(_CMP)()],
                           [_const(r.randint(-2, 4))])

    def counts(self):
        """The sum of every count, with weights so that two wrong counts do not cancel."""
        reads = []
        if "object" in self.forms:
            reads += ["cnt.calls[0]", "10 * cnt.seen['n']"] + (["100 * cnt.n"] if self.attribute
                                                               else [])
        if "bound_method" in self.forms:
            reads.append("1000 * state[0]")
        if "partial" in self.forms:
            reads.append("10000 * tally['n']")
        return ast.parse(" + ".join(reads), mode="eval").body


class _Closure:
    """A function fuzz_fn defines at its top that reads fuzz_fn's locals by closure (session
    48): `def inner(t):` returning a new bounded tensor from its argument and one or two of
    `a`, `b`, `c`, `p`, `q`, `k`, now and then under its own `if` on the tensor (as
    `State.bump`). fuzz_fn's staged bodies rebind those locals, so each call must read the
    value the name has at that point: real code's nested helpers (a `def score(t):` reading the
    caller's `scale`). It only reads: a closure assigning its `nonlocal` is refused in a staged
    body (README). Every choice comes from the program's fourth random stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.reads = rng.sample(_TENSOR_LOCALS + _INT_LOCALS + INT_PARAMS, rng.randint(1, 2))
        self.branch = rng.random() < 0.5

    def definition(self) -> ast.FunctionDef:
        r, reads = self.rng, self.reads
        value = " + ".join(f"{n} % {r.randint(2, 5)}" for n in reads)
        lines = ["def inner(t):"]
        if self.branch:
            lines += [f"    if t > {reads[0]}:", f"        return t % {r.randint(3, 7)} - {value}"]
        lines.append(f"    return t % {r.randint(3, 7)} + {value}")
        return ast.parse("\n".join(lines)).body[0]

    def call(self, arg):
        return ast.Call(_name("inner"), [arg], [])


class _Optional:
    """A local `o = None` at fuzz_fn's top that staged bodies set to a new tensor or back to
    None (session 53; README: a variable None on some paths is carried as an "is None" flag
    and a value), read only where a test narrows it: `o is None` / `o is not None` tests, the
    right side of `o is None or ...` / `o is not None and ...`, the best-so-far update `if o
    is None or t > o: o = t`, and the final return's `(torch.tensor(-1) if o is None else o)`.
    Every choice of its own comes from the program's fifth random stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def statement(self, gen, scope):
        """`o = t`, `o = None` or the best-so-far update."""
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return [ast.Assign([_name(OPTIONAL, ast.Store())], gen.bounded(scope, True))]
        if roll < 0.5:
            return [ast.Assign([_name(OPTIONAL, ast.Store())], ast.Constant(None))]
        test = ast.BoolOp(ast.Or(), [self.is_none(True),
                                     ast.Compare(gen.leaf(scope, True), [r.choice(_CMP)()],
                                                 [_name(OPTIONAL)])])
        return [ast.If(test, [ast.Assign([_name(OPTIONAL, ast.Store())],
                                         gen.bounded(scope, True))], [])]

    @staticmethod
    def is_none(positive):
        op = ast.Is() if positive else ast.IsNot()
        return ast.Compare(_name(OPTIONAL), [op], [ast.Constant(None)])

    def test(self, gen, scope, depth):
        """`o is None`, `o is not None`, or one with a comparison of `o` on its right side."""
        r = self.rng
        positive = r.random() < 0.5
        if r.random() < 0.4:
            return self.is_none(positive)
        other = gen.int_expr(scope, depth + 1)
        compare = ast.Compare(_name(OPTIONAL), [r.choice(_CMP)()], [other])
        return ast.BoolOp(ast.Or() if positive else ast.And(), [self.is_none(positive), compare])

    def read(self):
        """The final return's read: a tensor on both paths."""
        r = self.rng
        value = _bin(_name(OPTIONAL), ast.Mod(), _const(r.randint(3, 9)))
        return ast.IfExp(self.is_none(True), _tensor_const(r.randint(-3, 3)), value)


class _Walrus:
    """`if (a := t) > 2:`: an `if` or `elif` test that binds one of the tensor locals to a new
    tensor, alone or as the left side of an `and` / `or` (session 53; README refuses `:=` in a
    `while` test and on the right side of `and` / `or`, so those are not written). Its choices
    come from the program's sixth random stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def test(self, gen, scope, test):
        r = self.rng
        if r.random() >= 0.35:
            return test
        gen.features.add("walrus")
        bound = ast.NamedExpr(_name(r.choice(_TENSOR_LOCALS), ast.Store()),
                              gen.bounded(scope, True))
        compare = ast.Compare(bound, [r.choice(_CMP)()], [_const(r.randint(-2, 4))])
        if r.random() < 0.3:
            return ast.BoolOp(r.choice((ast.And(), ast.Or())), [compare, test])
        return compare


class _Match:
    """A `match` statement (session 53; README: an if / elif chain of its cases) on a new
    tensor (`match (a + y) % 4:`) or on the Python int `k`, with value cases (`case 2:`), `|`
    of values, a capture of a tensor subject into a tensor local under a guard (`case c if c >
    b:`: bound before its guard runs, whether or not it holds) and now and then a last `case
    _:`. Its choices come from the program's seventh random stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def statement(self, gen, scope, depth):
        r = self.rng
        modulus = r.randint(2, 5)
        tensor = r.random() < 0.75
        subject = gen.int_expr(scope, 1, True) if tensor else _name("k")
        subject = _bin(subject, ast.Mod(), _const(modulus))
        cases = []
        for _ in range(r.randint(1, 3)):
            roll = r.random()
            if roll < 0.2 and tensor:
                pattern = ast.MatchAs(None, r.choice(_TENSOR_LOCALS))
                guard = gen.cond(scope, 1)
            elif roll < 0.45:
                values = r.sample(range(modulus + 1), 2)
                pattern = ast.MatchOr([ast.MatchValue(ast.Constant(v)) for v in values])
                guard = None
            else:
                pattern, guard = ast.MatchValue(ast.Constant(r.randint(0, modulus))), None
            cases.append(ast.match_case(pattern, guard, gen.block(scope, depth + 1)))
        if r.random() < 0.5:
            cases.append(ast.match_case(ast.MatchAs(None, None), None,
                                        gen.block(scope, depth + 1)))
        return [ast.Match(subject, cases)]


class _Generator:
    def __init__(self, rng: random.Random, size: int, avoid=KNOWN_BUGS, parent=None,
                 extra: random.Random | None = None,
                 callee_rng: random.Random | None = None,
                 closure_rng: random.Random | None = None, extra_rngs=None):
        self.rng = rng
        # session 53's extras (each asked for, each its own stream): fuzz_fn's `o`; walrus
        # tests and `match` statements in its helpers too
        extra_rngs = extra_rngs or {}
        self.optional = None
        if parent is None and "optional" in extra_rngs and extra_rngs["optional"].random() < 0.5:
            self.optional = _Optional(extra_rngs["optional"])
        self.walrus = parent.walrus if parent is not None else (
            _Walrus(extra_rngs["walrus"]) if "walrus" in extra_rngs else None)
        self.match = parent.match if parent is not None else (
            _Match(extra_rngs["match"]) if "match" in extra_rngs else None)
        # a nested function reading fuzz_fn's locals (session 48, asked for): a fourth stream
        self.closure = None
        if parent is None and closure_rng is not None and closure_rng.random() < 0.5:
            self.closure = _Closure(closure_rng)
        # choices added in session 37 (defaultdict state, partial callables): their own stream,
        # so that `rng` draws what it drew before and a seed's statements stay the same
        self.extra = extra or random.Random(0)
        # callables counting their calls (session 38): a third stream, see _Callees
        self.callees = None
        self.no_counting = False
        if parent is None and "callee" not in avoid and callee_rng is not None and (
                callee_rng.random() < 0.35):
            self.callees = _Callees(callee_rng)
        self.partials: list[ast.Assign] = []  # `phN = functools.partial(hN, ...)`, at the top
        self.parent = parent  # the generator of fuzz_fn when this one writes a helper
        self.helpers: list[ast.FunctionDef] = []  # hN, written before fuzz_fn
        self.helper_arity: list[int] = []
        self.uses_state = parent is None and rng.random() < 0.25
        self.in_try = False
        self.avoid = avoid
        self.size = size  # an overall budget of statements, so programs stay small
        self.budget = size
        self.max_depth = 3
        self.guards = 0
        self.loops = 0
        self.arity = rng.choice((1, 1, 1, 2))
        self.features: set[str] = set()
        # `m`: a tensor local first assigned inside loops only, read once by the final return,
        # so that it may be unbound there (Python's UnboundLocalError is then the reference).
        self.maybe_unbound = (parent is None and "maybe_unbound" not in avoid
                              and rng.random() < 0.2)
        # `vs`: a list fuzz_fn grows with `append` (under staged `if`s and loops) and reads once,
        # in the final return (its length only known when the graph runs).
        self.grows_list = parent is None and "grown_list" not in avoid and rng.random() < 0.2

    @property
    def counting(self) -> bool:
        """Whether an expression here may call a counting callable (`_Callees`)."""
        return self.callees is not None and not self.no_counting

    # -- expressions ----------------------------------------------------------------------

    def leaf(self, scope, tensor: bool):
        """A variable or constant; `tensor` asks for one that is a tensor on every path."""
        r = self.rng
        if self.uses_state and r.random() < 0.25:
            self.features.add("state")
            return r.choice((_attr("s", "v"), _item("d", "k")))
        if tensor:
            return _name(r.choice(TENSOR_PARAMS + _TENSOR_LOCALS))
        pool = list(TENSOR_PARAMS + _TENSOR_LOCALS + _INT_LOCALS + INT_PARAMS) + scope.loop_vars * 2
        if r.random() < 0.3:
            return _const(r.randint(-3, 5))
        return _name(r.choice(pool))

    def int_expr(self, scope, depth=0, tensor=False):
        """An int-valued expression; with `tensor`, one that is a tensor in plain Python too."""
        r = self.rng
        if depth >= 2 or r.random() < 0.35:
            return self.leaf(scope, tensor)
        kind = r.choices(
            ("add", "sub", "mul", "floordiv", "mod", "neg", "ifexp", "boolop", "torchfn",
             "builtin", "method", "helper", "callee", "closure"),
            (5, 4, 2, 1, 1, 1, 1.5, 0.7, 1, 1.2, 0.6 if self.uses_state else 0,
             0.8 if self.parent is None and len(self.helpers) < 2 else 0,
             1.0 if self.counting else 0, 3 if self.closure else 0))[0]
        if kind == "closure":  # a nested function reading the caller's locals (a new tensor)
            self.features.add("closure")
            return self.closure.call(self.int_expr(scope, depth + 1, True))
        if kind == "callee":  # a callable counting its calls (a value: a new tensor)
            self.features.add("callee")
            return self.callees.call(self.int_expr(scope, depth + 1, True))
        if kind == "builtin":
            return self.builtin(scope, depth, tensor)
        if kind == "method":  # a converted method of a local object
            self.features.add("method")
            return ast.Call(_attr("s", "bump"), [self.int_expr(scope, depth + 1, True)], [])
        if kind == "helper":
            return self.helper_call(scope, depth)
        if kind in ("add", "sub"):
            first_tensor = tensor and r.random() < 0.5
            left = self.int_expr(scope, depth + 1, first_tensor)
            right = self.int_expr(scope, depth + 1, tensor and not first_tensor)
            return _bin(left, ast.Add() if kind == "add" else ast.Sub(), right)
        if kind == "mul":  # one side small, so products stay bounded
            small = r.choice((_const(r.randint(-2, 3)), _bin(self.leaf(scope, False), ast.Mod(),
                                                             _const(r.randint(2, 5)))))
            return _bin(self.int_expr(scope, depth + 1, tensor), ast.Mult(), small)
        if kind in ("floordiv", "mod"):
            self.features.add(kind)
            op = ast.FloorDiv() if kind == "floordiv" else ast.Mod()
            return _bin(self.int_expr(scope, depth + 1, tensor), op, _const(r.randint(2, 7)))
        if kind == "neg":
            return ast.UnaryOp(ast.USub(), self.int_expr(scope, depth + 1, tensor))
        if kind == "ifexp":
            self.features.add("ifexp")
            return ast.IfExp(self.cond(scope, depth + 1), self.int_expr(scope, depth + 1, tensor),
                             self.int_expr(scope, depth + 1, tensor))
        if kind == "boolop":
            # As a value, `a and b` is one of its operands: both are tensors so that the result
            # has one dtype on every path.
            self.features.add("boolop_value")
            op = r.choice((ast.And(), ast.Or()))
            return ast.BoolOp(op, [self.int_expr(scope, depth + 1, True) for _ in range(2)])
        self.features.add("torchfn")
        fn = r.choice(("maximum", "minimum", "abs"))
        args = [self.int_expr(scope, depth + 1, True) for _ in range(1 if fn == "abs" else 2)]
        return ast.Call(ast.Attribute(_name("torch"), fn, ast.Load()), args, [])

    def builtin(self, scope, depth, tensor):
        """`abs` / `min` / `max` / `sum` of tensors (a tensor), or `len` of one (a Python int)."""
        r = self.rng
        self.features.add("builtin")
        fn = r.choice(("abs", "min", "max", "sum", "len") if not tensor else ("abs", "min", "max", "sum"))
        if fn == "abs":
            return ast.Call(_name("abs"), [self.int_expr(scope, depth + 1, True)], [])
        if fn in ("min", "max"):
            # Python's min / max return one of their arguments: all tensors when a tensor is
            # needed; otherwise an int may take part (the result is then an int or a tensor).
            args = [self.int_expr(scope, depth + 1, True)]
            args += [self.int_expr(scope, depth + 1, tensor) for _ in range(r.choice((1, 1, 2)))]
            return ast.Call(_name(fn), args, [])
        items = [self.int_expr(scope, depth + 1, True) for _ in range(r.choice((1, 2, 3)))]
        if fn == "sum":
            return ast.Call(_name("sum"), [ast.List(items, ast.Load())], [])
        stacked = ast.Call(_attr("torch", "stack"), [ast.List(items, ast.Load())], [])
        return ast.Call(_name("len"), [stacked], [])

    def helper_call(self, scope, depth):
        """A call of a new helper `hN(x, y, k)`; its tensor arguments are new tensors (the helper
        may `+=` them, which would change the caller's tensor in plain Python)."""
        r = self.rng
        self.features.add("helper")
        name = f"h{len(self.helpers)}"
        sub = _Generator(r, 3, self.avoid, parent=self, extra=self.extra)
        sub.max_depth = 2
        fn = sub.function(name)
        self.features |= {f"helper_{f}" for f in sub.features}
        if r.random() < 0.5:
            self.features.add("wraps")
            fn.decorator_list = [_name("traced")]
        self.helpers.append(fn)
        args = [_bin(self.int_expr(scope, depth + 1, True), ast.Add(), _const(0)) for _ in range(2)]
        args.append(r.choice((_name("k"), _const(r.randint(0, 3)))))
        call = ast.Call(_name(name), args, [])
        if "partial" not in self.avoid and self.extra.random() < 0.35:
            call = self.partial_call(name, call, keyword=not fn.decorator_list)
        if sub.arity == 2:  # a helper that returns a tuple (early, too)
            return ast.Subscript(call, _const(r.randint(0, 1)), ast.Load())
        return call

    def partial_call(self, name, call, keyword: bool):
        """`call` of helper `name` made through `phN = functools.partial(name, ...)`, bound at
        the top of the function: `k` by keyword (with `keyword`: the `traced` wrapper takes
        positional arguments only), or the first tensor argument (a new tensor, as every
        helper argument is, made from the arguments before any branch)."""
        self.features.add("partial")
        bound = f"p{name}"
        partial = ast.Attribute(_name("functools"), "partial", ast.Load())
        if keyword and self.extra.random() < 0.5:
            value = ast.Call(partial, [_name(name)], [ast.keyword("k", call.args[2])])
            call = ast.Call(_name(bound), call.args[:2], [])
        else:
            first = _bin(_name(self.extra.choice(TENSOR_PARAMS)), ast.Add(),
                         _const(self.extra.randint(0, 2)))
            value = ast.Call(partial, [_name(name), first], [])
            call = ast.Call(_name(bound), call.args[1:], [])
        self.partials.append(ast.Assign([_name(bound, ast.Store())], value))
        return call

    def cond(self, scope, depth=0, boolish=False):
        """A condition: a Python bool, or a bool / int tensor whose truth value is taken.

        `boolish` (an operand of `and` / `or`) leaves out int-valued conditions while
        "mixed_and_or" is avoided."""
        r = self.rng
        weights = [6, 0.7, 1, 1, 1.5, 1.5, 0.6] if depth < 2 else [6, 0.5, 1, 0, 0, 0, 0.4]
        if "chain" in self.avoid:
            weights[1] = 0
        if boolish and "mixed_and_or" in self.avoid:
            weights[2] = 0
        if "item" in self.avoid:
            weights[6] = 0
        weights.append(1.2 if self.counting else 0)
        weights.append(1.0 if self.optional else 0)
        kind = r.choices(("cmp", "chain", "truth", "not", "and", "or", "item", "callee",
                          "optional"), weights)[0]
        if kind == "optional":  # `o is None`, `o is not None and o > 2`
            self.features.add("optional_test")
            return self.optional.test(self, scope, depth)
        if kind == "callee":  # a test calling a counting callable (`if cnt(a) > 2:`)
            self.features.add("callee_test")
            call = self.callees.call(self.int_expr(scope, depth + 1, True))
            return ast.Compare(call, [r.choice(_CMP)()], [_const(r.randint(0, 4))])
        if kind == "item":  # a Python int read from a tensor (staged when traced)
            self.features.add("item")
            item = ast.Call(ast.Attribute(self.int_expr(scope, depth + 1, True), "item",
                                          ast.Load()), [], [])
            return ast.Compare(item, [r.choice(_CMP)()], [self.int_expr(scope, depth + 1)])
        if kind == "cmp":
            return ast.Compare(self.int_expr(scope, depth + 1), [r.choice(_CMP)()],
                               [self.int_expr(scope, depth + 1)])
        if kind == "chain":
            self.features.add("chain")
            return ast.Compare(self.int_expr(scope, depth + 1), [r.choice(_CMP)(), r.choice(_CMP)()],
                               [self.int_expr(scope, depth + 1), self.int_expr(scope, depth + 1)])
        if kind == "truth":
            self.features.add("truth")
            return self.int_expr(scope, depth + 1)
        if kind == "not":
            self.features.add("not")
            return ast.UnaryOp(ast.Not(), self.cond(scope, depth + 1))
        self.features.add(kind)
        op = ast.And() if kind == "and" else ast.Or()
        return ast.BoolOp(op, [self.cond(scope, depth + 1, True) for _ in range(r.choice((2, 2, 3)))])

    # -- statements -----------------------------------------------------------------------

    def bounded(self, scope, tensor):
        """A value for a plain assignment: new (never an alias of a variable) and bounded."""
        r = self.rng
        roll = r.random()
        if roll < 0.15:
            v = r.randint(-4, 9)
            return _tensor_const(v) if tensor else _const(v)
        if roll < 0.35:  # `u + 2`: grows at most linearly with the number of iterations
            op = r.choice((ast.Add(), ast.Sub()))
            return _bin(self.leaf(scope, tensor), op, _const(r.randint(1, 3)))
        value = _bin(self.int_expr(scope, 0, tensor), ast.Mod(), _const(r.choice((5, 7, 10, 100))))
        if r.random() < 0.3:
            value = _bin(value, ast.Sub(), _const(r.randint(1, 50)))
        return value

    def assign(self, scope):
        r = self.rng
        if self.maybe_unbound and scope.in_loop and r.random() < 0.35:
            self.features.add("maybe_unbound")
            return [ast.Assign([_name(UNBOUND, ast.Store())], self.bounded(scope, True))]
        if r.random() < 0.6:
            target = r.choice(_TENSOR_LOCALS + TENSOR_PARAMS)
            tensor = True
        else:
            target = r.choice(_INT_LOCALS)
            tensor = False
        if self.uses_state and r.random() < 0.3:  # attribute / dict-item state (tensors)
            self.features.add("state_store")
            target, tensor = r.choice(("s.v", "d['k']")), True
        if r.random() < 0.45:
            self.features.add("augassign")
            op = r.choice((ast.Add(), ast.Add(), ast.Sub(), ast.FloorDiv(), ast.Mod()))
            if isinstance(op, (ast.FloorDiv, ast.Mod)):
                amount = _const(r.randint(2, 6))
            elif r.random() < 0.5:
                amount = self.leaf(scope, False)
                if isinstance(amount, ast.Name) and amount.id == target:
                    amount = _const(1)  # `a += a` doubles: unbounded in a loop
                elif isinstance(amount, ast.Name) and amount.id not in scope.loop_vars:
                    amount = _bin(amount, ast.Mod(), _const(r.randint(2, 9)))
            else:
                amount = _bin(self.int_expr(scope), ast.Mod(), _const(r.randint(2, 9)))
            return [ast.AugAssign(self.target(target), op, amount)]
        return [ast.Assign([self.target(target)], self.bounded(scope, tensor))]

    @staticmethod
    def target(name):
        if name == "s.v":
            return _attr("s", "v", ast.Store())
        if name == "d['k']":
            return _item("d", "k", ast.Store())
        return _name(name, ast.Store())

    def ret(self, scope):
        values = [self.int_expr(scope, 0, True) for _ in range(self.arity)]
        if self.callees and self.callees.rng.random() < 0.5:  # counts on an early path too
            values[0] = _bin(values[0], ast.Add(), self.callees.counts())
        return ast.Return(values[0] if self.arity == 1 else ast.Tuple(values, ast.Load()))

    def if_stmt(self, scope, depth):
        r = self.rng
        self.features.add("if")
        node = ast.If(self.if_test(scope), self.block(scope, depth + 1), [])
        tail = node
        while r.random() < 0.3:  # elif
            self.features.add("elif")
            nested = ast.If(self.if_test(scope), self.block(scope, depth + 1), [])
            tail.orelse = [nested]
            tail = nested
        if r.random() < 0.5:
            tail.orelse = self.block(scope, depth + 1)
        return [node]

    def if_test(self, scope):
        """An `if` or `elif` statement's test, maybe binding a local (`_Walrus`)."""
        test = self.test(scope)
        return self.walrus.test(self, scope, test) if self.walrus else test

    def test(self, scope):
        """An `if`'s test: a condition, calling no counting callable while "callee_in_test" is
        avoided (KNOWN_BUGS)."""
        if "callee_in_test" not in self.avoid:
            return self.cond(scope)
        self.no_counting, outer = True, self.no_counting
        try:
            return self.cond(scope)
        finally:
            self.no_counting = outer

    def while_stmt(self, scope, depth):
        r = self.rng
        self.features.add("while")
        guard = f"{GUARD}{self.guards}"
        self.guards += 1
        limit = r.randint(1, 4)
        guard_test = ast.Compare(_name(guard), [ast.Lt()], [_const(limit)])
        # (a counting callable in a loop test is refused, README: a test gives back only its
        # condition; the loop's body calls it, `if cnt(a) > 2: break`)
        self.no_counting = True
        test = self.cond(scope, 1, True)
        self.no_counting = False
        test = ast.BoolOp(ast.And(), [test, guard_test] if r.random() < 0.7 else [guard_test, test])
        inner = scope.child(in_loop=True)
        body = [ast.AugAssign(_name(guard, ast.Store()), ast.Add(), _const(1))]
        if self.counting and self.callees.rng.random() < 0.4:  # a loop its count breaks
            self.features.add("callee_break")
            call = self.callees.call(_name(self.callees.rng.choice(TENSOR_PARAMS + _TENSOR_LOCALS)))
            counted = ast.Compare(call, [ast.Gt()], [_const(self.callees.rng.randint(0, 4))])
            body.append(ast.If(counted, [ast.Break()], []))
        body += self.block(inner, depth + 1)
        orelse = []
        if r.random() < 0.1:
            self.features.add("while_else")
            orelse = self.block(scope, depth + 1)
        init = r.choice((_const(0), _tensor_const(0)))
        return [ast.Assign([_name(guard, ast.Store())], init), ast.While(test, body, orelse)]

    def for_stmt(self, scope, depth):
        r = self.rng
        var = f"i{self.loops}"
        self.loops += 1
        roll = r.random()
        if roll < 0.15:  # zip of a tensor and a Python list
            self.features.add("for_zip")
            count = r.randint(1, 3)
            items = [self.int_expr(scope, 1, True) for _ in range(count)]
            stacked = ast.Call(_attr("torch", "stack"), [ast.List(items, ast.Load())], [])
            consts = ast.List([_const(r.randint(-2, 4)) for _ in range(r.randint(count, count + 1))],
                              ast.Load())
            it = ast.Call(_name("zip"), [stacked, consts], [])
            names = (f"u{self.loops - 1}", f"w{self.loops - 1}")
            target = ast.Tuple([_name(n, ast.Store()) for n in names], ast.Store())
            body = self.block(scope.child(loop_var=names, in_loop=True), depth + 1)
            return [ast.For(target, it, body, [])]
        if roll < 0.27 and "for_rows" not in self.avoid:  # the rows of a stacked tensor
            self.features.add("for_rows")
            items = [self.int_expr(scope, 1, True) for _ in range(r.randint(1, 3))]
            it = ast.Call(_attr("torch", "stack"), [ast.List(items, ast.Load())], [])
            body = self.block(scope.child(loop_var=var, in_loop=True), depth + 1)
            return [ast.For(_name(var, ast.Store()), it, body, [])]
        if roll < 0.6:  # a tensor bound: staged when traced
            self.features.add("for_tensor")
            bound = _bin(self.int_expr(scope, 1, True), ast.Mod(), _const(r.randint(2, 5)))
            if r.random() < 0.3:
                args = [_const(r.randint(-1, 2)), bound]
            else:
                args = [bound]
        else:
            self.features.add("for_python")
            args = [r.choice((_name("k"), _const(r.randint(0, 4))))]
        it = ast.Call(_name("range"), args, [])
        body = self.block(scope.child(loop_var=var, in_loop=True), depth + 1)
        return [ast.For(_name(var, ast.Store()), it, body, [])]

    def statement(self, scope, depth):
        r = self.rng
        kinds = ["assign", "if", "while", "for"]
        weights = [5, 3, 1.2, 1.5] if depth < self.max_depth else [1, 0, 0, 0]
        if scope.in_loop:
            kinds += ["break", "continue"]
            weights += [0.6, 0.6]
        kinds.append("return")
        weights.append(0.5 if depth else 0.15)
        if not self.in_try:  # a raise inside `try` stays as written (see README): not generated
            kinds.append("raise")
            weights.append(0.25)
        if self.grows_list and scope.loops <= 1:
            kinds.append("append")
            weights.append(1.2)
        if self.uses_state:  # a method of the local object that changes its attribute
            kinds.append("method_store")
            weights.append(0.5)
        if self.callees:  # a counting callable called for its count alone
            kinds.append("callee_call")
            weights.append(0.6)
        if self.optional:
            kinds.append("optional")
            weights.append(0.8)
        if self.match and depth < self.max_depth:
            kinds.append("match")
            weights.append(0.9)
        kind = r.choices(kinds, weights)[0]
        if kind == "optional":
            self.features.add("optional")
            return self.optional.statement(self, scope)
        if kind == "match":
            self.features.add("match")
            return self.match.statement(self, scope, depth)
        if kind == "callee_call":
            self.features.add("callee_call")
            call = [ast.Expr(self.callees.call(self.int_expr(scope, 1, True)))]
            if self.callees.rng.random() < 0.5:  # under a tensor `if`: a count it carries
                self.features.add("callee_in_if")
                return [ast.If(self.callees.tensor_test(), call, [])]
            return call
        if kind == "method_store":
            self.features.add("method_store")
            step = ast.Call(_attr("s", "step"), [self.int_expr(scope, 1, True)], [])
            return [ast.Expr(step)]
        if kind == "append":
            self.features.add("grown_list")
            append = ast.Attribute(_name(GROWN), "append", ast.Load())
            return [ast.Expr(ast.Call(append, [self.bounded(scope, True)], []))]
        if kind == "raise":
            self.features.add("raise")
            exc = ast.Call(_name(r.choice(RAISES)), [ast.Constant("fuzz")], [])
            return [ast.If(self.test(scope), [ast.Raise(exc, None)], [])]
        if kind == "assign":
            return self.assign(scope)
        if kind == "if":
            return self.if_stmt(scope, depth)
        if kind == "while":
            return self.while_stmt(scope, depth)
        if kind == "for":
            return self.for_stmt(scope, depth)
        self.features.add(kind)
        if kind == "break":
            return [ast.Break()]
        if kind == "continue":
            return [ast.Continue()]
        return [self.ret(scope)]

    def block(self, scope, depth):
        r = self.rng
        count = r.randint(1, 3) if depth else r.randint(3, 6)
        out = []
        for _ in range(count):
            if self.budget <= 0 and out:
                break
            self.budget -= 1
            stmts = self.statement(scope, depth)
            out += stmts
            if isinstance(stmts[-1], (ast.Return, ast.Break, ast.Continue)):
                break  # anything after a jump in the same block is dead code
        return out

    def function(self, fn_name=FUNCTION_NAME) -> ast.FunctionDef:
        r = self.rng
        wrap_try = self.parent is not None and r.random() < 0.4
        self.in_try = wrap_try
        body = self.block(_Scope(), 0)
        if not isinstance(body[-1], ast.Return):
            body.append(self.ret(_Scope()))
        if "maybe_unbound" in self.features:  # the one read of `m`, after every loop
            _add_to_final_return(body, _name(UNBOUND))
        if "grown_list" in self.features:  # the one read of `vs`, after every loop
            length = ast.Call(_name("len"), [_name(GROWN)], [])
            if r.random() < 0.5:
                read = _bin(length, ast.Add(), ast.Call(_name("sum"), [_name(GROWN)], []))
            else:  # (torch.stack of an empty list raises in Python)
                stacked = ast.Call(_attr("torch", "stack"), [_name(GROWN)], [])
                total = ast.Call(ast.Attribute(stacked, "sum", ast.Load()), [], [])
                nonempty = ast.Compare(length, [ast.Gt()], [_const(0)])
                read = ast.IfExp(nonempty, total, _tensor_const(0))
            _add_to_final_return(body, read)
        if self.callees:  # the counts, after every loop (maybe on early returns too: ret)
            _add_to_final_return(body, self.callees.counts())
        if self.optional and self.features & {"optional", "optional_test"}:
            _add_to_final_return(body, self.optional.read())
        if wrap_try:  # `try` in a helper; nothing in the body raises
            self.features.add("try")
            if r.random() < 0.5:
                handler = ast.ExceptHandler(_name("ZeroDivisionError"), None,
                                            [ast.Return(self.ret(_Scope()).value)])
                body = [ast.Try(body, [handler], [], [])]
            else:
                body = [ast.Try(body, [], [], [ast.Assign([_name("p", ast.Store())], _const(0))])]
        init = []
        if self.parent is not None:  # a helper's parameters are its own (see helper_call)
            init += [ast.Assign([_name(t, ast.Store())], _bin(_name(t), ast.Add(), _const(0)))
                     for t in TENSOR_PARAMS]
        if self.uses_state:
            init.append(ast.Assign([_name("s", ast.Store())],
                                   ast.Call(_name("State"), [_bin(_name("x"), ast.Add(), _const(1))], [])))
            state = ast.Dict([ast.Constant("k")], [_bin(_name("y"), ast.Add(), _const(0))])
            if "defaultdict" not in self.avoid and self.extra.random() < 0.4:
                self.features.add("defaultdict")
                state = ast.Call(ast.Attribute(_name("collections"), "defaultdict", ast.Load()),
                                 [_name("int"), state], [])
            init.append(ast.Assign([_name("d", ast.Store())], state))
        for name in _TENSOR_LOCALS:
            value = r.choice((_bin(_name(r.choice(TENSOR_PARAMS)), ast.Add(), _const(r.randint(0, 3))),
                              _tensor_const(r.randint(-2, 3))))
            init.append(ast.Assign([_name(name, ast.Store())], value))
        for name in _INT_LOCALS:
            value = r.choice((_const(r.randint(0, 3)), _bin(_name("k"), ast.Add(), _const(1))))
            init.append(ast.Assign([_name(name, ast.Store())], value))
        if "grown_list" in self.features:
            init.append(ast.Assign([_name(GROWN, ast.Store())], ast.List([], ast.Load())))
        if self.optional and self.features & {"optional", "optional_test"}:
            init.append(ast.Assign([_name(OPTIONAL, ast.Store())], ast.Constant(None)))
        init += self.partials
        if self.callees:
            init += self.callees.init()
        if self.closure and "closure" in self.features:
            init.append(self.closure.definition())
        for g in range(self.guards):  # defined before every branch; reset before each loop
            init.append(ast.Assign([_name(f"{GUARD}{g}", ast.Store())], _const(0)))
        args = ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in TENSOR_PARAMS + INT_PARAMS],
                             kwonlyargs=[], kw_defaults=[], defaults=[])
        return ast.FunctionDef(name=fn_name, args=args, body=init + body, decorator_list=[])


def _add_to_final_return(body, read) -> None:
    """Adds `read` to the (first) value the function's final `return` gives."""
    final = body[-1]
    if isinstance(final.value, ast.Tuple):
        final.value.elts[0] = _bin(final.value.elts[0], ast.Add(), read)
    else:
        final.value = _bin(final.value, ast.Add(), read)


def generate(seed: int, index: int, size: int = 8, avoid=KNOWN_BUGS,
             extras=frozenset()) -> Program:
    """The `index`-th program of the stream for `seed`; the same arguments give the same source.

    `size` is a budget of statements; `avoid` names constructs to leave out (`KNOWN_BUGS`);
    `extras` names constructs of `EXTRAS` to add (without them a seed gives the programs it
    gave before they were written).
    """
    unknown = set(extras) - EXTRAS
    if unknown:
        raise ValueError(f"unknown extra constructs {sorted(unknown)}; known: {sorted(EXTRAS)}")
    rng = random.Random(f"{seed}:{index}")
    closure_rng = random.Random(f"{seed}:{index}:48") if "closure" in extras else None
    extra_rngs = {name: random.Random(f"{seed}:{index}:53:{name}")
                  for name in ("optional", "walrus", "match") if name in extras}
    gen = _Generator(rng, size, frozenset(avoid), extra=random.Random(f"{seed}:{index}:37"),
                     callee_rng=random.Random(f"{seed}:{index}:38"), closure_rng=closure_rng,
                     extra_rngs=extra_rngs)
    fn = gen.function()
    module = ast.fix_missing_locations(ast.Module(gen.helpers + [fn], []))
    prelude = ""
    if gen.helpers or gen.uses_state or gen.callees:
        prelude = _PRELUDE_IMPORTS + (_STATE_CLASS if gen.uses_state else "")
        prelude += gen.callees.prelude() if gen.callees else ""
        prelude += _DECORATOR if "wraps" in gen.features else ""
        prelude += "\n\n"
    return Program(prelude + ast.unparse(module) + "\n", rng.randint(0, 4), seed, index, gen.features)
