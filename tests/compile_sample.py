"""Which tests run their torch.compile check in `make test`; `make test-slow` runs the others'.

Most of a reference test's time is its torch.compile(fullgraph=True) check (dynamo tracing
autoconv's runtime: docs/testing.md), so `make test` compiles one test per kind of staged
statements over the construct families and runs every test's other modes (plain Python, staged
replay, the torch.export program: saved and loaded in the sample, NOTE [one round trip per
kind] in support.py).
The rule, applied at collection to `tests/reference/test_*.py` and `tests/test_fuzz.py` (whose
regressions are construct families found by the fuzzer):

1. A test *compiles* when its own source, or the source of a function of its module that it
   names (or that one names, and so on), calls `torch.compile`, `assert_same_result` or
   `assert_same_exactly` (without `compile=False`) or the fuzzer's `check(..., compile=...)`,
   unless one of its parameters is a mode other than "compile" (a test split by `mode` in
   "staged", "export", ...). Other tests are not touched.
2. The *kind* of a compiling test is the set of kinds of statement autoconv stages or rewrites
   in the functions it converts: `if`, `while`, `for`, `try`, `with`, and a `break`,
   `continue` or `return` inside one of those (with DEPTH = 2, each with the statement it is
   in, `while>if`: a finer sample). The functions are the parameters of the test that are
   functions (or source text, or a fuzz program's file), the functions defined inside the
   test, and the module's functions the test names (not the `test_` ones, nor `_`-prefixed
   helpers, which hold the harness).
3. Of the compiling tests of one kind, across all the family files, the cheapest (`cost`: a
   test expecting no refusal (no `pytest.raises`) first, then the fewest staged statements,
   weighted by how deep they nest, then the smallest source, then the node id) keeps its
   compile in `make test`; the others get the `slow_compile` mark. Not a representative: a
   test the file marks `slow_compile` itself, a test tests/slow_tests.txt lists (measured too
   slow), an xfail (it always compiles: a strict xfail of a compile failure would pass without
   its compile, and fail as XPASS). The choice depends only on the tests collected, not on
   their order, so every xdist worker makes the same one (NOTE [one compile per kind]).

So a new test compiles in `make test` when it brings a new kind to the families, or is
cheaper than its kind's representative.

4. A test of the families that does not compile but saves and loads its torch.export program
   (`assert_same_result` / `assert_same_exactly` with `compile=False`, its export on) is
   sampled the same way for that round trip (NOTE [round trips of the tests that do not
   compile]): where the test that compiles its kind in `make test` saves and loads its
   program too, that round trip is the kind's; otherwise the cheapest such test of the kind
   keeps its own. The others get the `slow_compile` mark: `make test` runs their exported
   program as exported, `make test-slow` saves and loads it.

5. A test whose compile or round trip is deferred by rules 3 and 4 leaves its export out of
   `make test` too where a test of its kind exports there, unless it is split by mode or
   expects a refusal, a warning or output (`defers_export`; NOTE [one export per kind] in
   support.py): `make test` runs its plain Python and staged replay, `make test-slow` all of
   it.

A `slow_compile` test runs whole in `make test-slow`; in `make test` (conftest.py) it runs
without its compile: `support.assert_same_result` leaves the compile out and goes on, a test
that is a compile check alone (a "compile" parameter) is skipped, and a test calling
torch.compile itself is skipped at its first call of the compiled function (its plain Python,
replay and export checks ran before; what a compiled run gives, or raises, is the compile's).
`python -m tests.compile_sample` prints the kinds and the representatives.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import textwrap
import types

# Files the rule applies to (relative to tests/).
FAMILIES = ("reference" + os.sep, "test_fuzz.py")
# 1: a kind is a set of statements; 2: a set of statements each with the one it is in
# (242 tests compiled in make test instead of 188 on 2026-12-03, per file; docs/testing.md).
DEPTH = 1
_OTHER_MODES = {"staged", "export", "python", "fx", "replay"}
_STATEMENTS = {ast.If: "if", ast.While: "while", ast.For: "for", ast.Try: "try",
               ast.With: "with"}


def applies_to(path: str) -> bool:
    tests = os.path.dirname(os.path.abspath(__file__)) + os.sep
    rel = os.path.abspath(path)[len(tests):] if os.path.abspath(path).startswith(tests) else ""
    return any(rel.startswith(f) for f in FAMILIES)


# Sources and trees are read once per process: every case of a parametrized test, and every test
# naming a module's helper, asks for the same ones again (about 1 s of each xdist worker's
# collection: docs/testing.md, "The suite's time (session 36)"). The trees are only read, never
# changed.
@functools.lru_cache(maxsize=None)
def _cached_source(obj) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None


def _source(obj) -> str | None:
    try:
        return _cached_source(obj)
    except TypeError:  # (unhashable)
        return _cached_source.__wrapped__(obj)


@functools.lru_cache(maxsize=None)
def _parse(text: str):
    try:
        return ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return None


@functools.lru_cache(maxsize=None)
def _walk(tree) -> tuple:
    """ast.walk(tree), kept: a module's helper is read for every test that names it."""
    return tuple(ast.walk(tree))


@functools.lru_cache(maxsize=None)
def _paths(tree) -> frozenset:
    """The staged statements in `tree`, each with its DEPTH - 1 nearest enclosing ones
    (outermost first)."""
    found = set()

    def visit(node, stack):
        name = _STATEMENTS.get(type(node))
        if name is None and stack and isinstance(node, (ast.Break, ast.Continue, ast.Return)):
            name = type(node).__name__.lower()
        if name:
            stack = stack + (name,)
            found.add(">".join(stack[-DEPTH:]))
        for child in ast.iter_child_nodes(node):
            # a function defined inside is converted on its own: its statements start a path
            inner = () if isinstance(child, (ast.FunctionDef, ast.Lambda)) else stack
            visit(child, inner)

    visit(tree, ())
    return frozenset(found)


def _functions_of(item) -> list:
    """ASTs of what `item` converts (rule 2)."""
    module = getattr(item, "module", None)
    trees = list(_test_functions(item.function, module))
    callspec = getattr(item, "callspec", None)
    for value in (callspec.params.values() if callspec else ()):
        trees.extend(_trees_of_value(value, module))
        if isinstance(value, (tuple, list)):
            for inner in value:
                trees.extend(_trees_of_value(inner, module))
    return trees


# NOTE [facts of a test function]: every case of a parametrized test has the same function, so
# what its source says (the functions defined in it and those of its module it names; whether
# it, or they, compile, round-trip an export, expect a refusal) is read once per function, not
# once per case and per question: select() read a case's trees up to five times a case, each
# walking the test's trees again (5.3 s of each xdist worker's 16.7 s of collection, session
# 50; docs/testing.md). Only sources are read, and a module's names do not change during
# collection, so a function (with its module) gives the same answers each time.
@functools.lru_cache(maxsize=None)
def _test_functions(function, module) -> tuple:
    """The ASTs of the functions defined inside `function`'s source and of the module's
    functions it names (the test's own part of rule 2)."""
    trees = []
    test_tree = _parse(_source(function) or "")
    if test_tree is not None:
        for node in _walk(test_tree):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)) and node is not test_tree.body[0]:
                trees.append(node)
        for node in _walk(test_tree):
            if isinstance(node, ast.Name) and not node.id.startswith(("_", "test_")):
                value = getattr(module, node.id, None)
                trees.extend(_trees_of_value(value, module))
    return tuple(trees)


def _trees_of_value(value, module) -> list:
    if isinstance(value, types.FunctionType) and not value.__name__.startswith("test_"):
        if module is not None and value.__module__ != module.__name__ and \
                not value.__code__.co_filename.startswith("<autoconv-test"):
            return []
        tree = _parse(_source(value) or "")
        return [tree] if tree is not None else []
    if isinstance(value, str):
        if value.endswith(".py") and os.path.isfile(value):
            with open(value) as f:
                tree = _parse(f.read())
            return [tree] if tree is not None else []
        if "def " in value:
            tree = _parse(value)
            return [tree] if tree is not None else []
    return []


@functools.lru_cache(maxsize=None)  # NOTE [facts of a test function]
def _named_trees_of(function, module) -> tuple:
    """The ASTs of the test and of the module's functions it names, and they name (rule 1)."""
    trees, seen, todo = [], set(), [function]
    while todo:
        tree = _parse(_source(todo.pop()) or "")
        if tree is None:
            continue
        trees.append(tree)
        for node in _walk(tree):
            if isinstance(node, ast.Name) and node.id not in seen:
                seen.add(node.id)
                value = getattr(module, node.id, None)
                if isinstance(value, types.FunctionType) and module is not None \
                        and value.__module__ == module.__name__:
                    todo.append(value)
    return tuple(trees)


@functools.lru_cache(maxsize=None)  # NOTE [facts of a test function]
def _facts(function, module) -> tuple:
    """(a compiling call, an export round trip, a `pytest.raises`, the nodes) of the trees
    `_named_trees_of` gives (rules 1, 3 and 4)."""
    compiling = trips = refusal = False
    nodes = 0
    for tree in _named_trees_of(function, module):
        nodes += _weight(tree)[1]
        for node in _walk(tree):
            if isinstance(node, ast.Call):
                compiling = compiling or _compiling_call(node)
                trips = trips or _checks_export(node)
                refusal = refusal or getattr(node.func, "attr", None) == "raises" or \
                    getattr(node.func, "id", None) == "raises"
    return compiling, trips, refusal, nodes


def _facts_of(item) -> tuple:
    return _facts(item.function, getattr(item, "module", None))


def _compiling_call(node) -> bool:
    """`torch.compile(...)`, `assert_same_result` / `assert_same_exactly` without
    `compile=False`, or the fuzzer's `check(..., compile=...)` not False."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    flag = next((k.value for k in node.keywords if k.arg == "compile"), None)
    off = isinstance(flag, ast.Constant) and flag.value is False
    if name == "compile":
        return isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "torch"
    if name in ("assert_same_result", "assert_same_exactly"):
        return not off
    return name == "check" and flag is not None and not off


def _checks_export(node) -> bool:
    """`assert_same_result` / `assert_same_exactly` with the export on (their round trip)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    flag = next((k.value for k in node.keywords if k.arg == "export"), None)
    return name in ("assert_same_result", "assert_same_exactly") and \
        not (isinstance(flag, ast.Constant) and flag.value is False)


def round_trips(item) -> bool:
    """Whether `item` saves and loads an exported program through support's checks (in a test
    that does not compile: rule 4)."""
    return _facts_of(item)[1]


def compiles(item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = list(callspec.params.values()) if callspec else []
    if any(isinstance(v, str) and v in _OTHER_MODES for v in params):
        return False
    if any(isinstance(v, str) and v == "compile" for v in params):
        return True
    return _facts_of(item)[0]


def kind(item) -> tuple:
    found = set()
    for tree in _functions_of(item):
        found |= _paths(tree)
    return tuple(sorted(found))


def deferral(item) -> str:
    """How a slow_compile `item` leaves its compile to `make test-slow` under `make test`:
    "skip" for a test that is a compile check alone (a "compile" parameter), "skip at the call"
    for the others (the rest of the test from its first call of a function it compiled)."""
    callspec = getattr(item, "callspec", None)
    if callspec and any(isinstance(v, str) and v == "compile" for v in callspec.params.values()):
        return "skip"
    return "skip at the call"


# NOTE [compile checks outside the families]: the rule above samples the construct families
# only. tests/test_errors.py and tests/real/ hold findings, each a program of its own (a
# library's code, a refusal's message), so they are not sampled by kind; their files mark
# `slow_compile` (make test runs the test's plain Python, replay and export; make test-slow its
# compile too) each test whose compile proves nothing make test does not prove elsewhere: a
# program right in every mode when it was written, the control case beside a finding (the same
# code without what broke it), a second case of one finding whose fix has no path of its own
# under dynamo. A compile check stays in make test where it is the proof: a refusal or error
# only torch.compile gives (its message and line), a finding only torch.compile showed or whose
# fix has a dynamo path (tester28 s04: NOTE [numbers stored into tensors under dynamo]), or a
# wrong number under torch.compile (docs/testing.md, "The suite's time (session 44)").

# NOTE [one compile per kind]: until session 43 each family file compiled the first test of
# each kind in it: 236 tests of 41 kinds, 191 compiled in make test (the rest listed as slow),
# about 40% of its workers' time (docs/testing.md, "The suite's time (session 43)"). A kind is the set of staged statements, and what dynamo
# traces for it is autoconv's runtime for those statements, whichever file the test is in; so
# one compile per kind, across the files, keeps every kind compiled in make test. The one is the
# cheapest by `cost`, not the first in collection order: a nested statement is staged again in
# every run of the bodies around it (docs/testing.md, session 24), so its weight grows with its
# depth, and the compile's time with it. `cost` reads only the tests' sources and the key ends
# with the node id: the same collected tests give the same choice in any order, in each xdist
# worker (tests/test_suite_split.py checks both).
# (session 24: a loop's body ran 3 times in its trace, an `if` in it 9, the one in that 12)
_NESTING = 3


@functools.lru_cache(maxsize=None)
def _weight(tree) -> tuple:
    """(staged statements in `tree`, each counted _NESTING ** its depth among them; its nodes)."""
    weight = nodes = 0

    def visit(node, depth):
        nonlocal weight, nodes
        nodes += 1
        if type(node) in _STATEMENTS:
            weight += _NESTING ** depth
            depth += 1
        for child in ast.iter_child_nodes(node):
            visit(child, 0 if isinstance(child, (ast.FunctionDef, ast.Lambda)) else depth)

    visit(tree, 0)
    return weight, nodes


def _expects_a_refusal(item) -> bool:
    """Whether `item` or a function of its module it names holds a `pytest.raises`: often the
    check that a compile is refused, which shows less of the kind than a compiled run."""
    return _facts_of(item)[2]


def cost(item) -> tuple:
    """The order in which the tests of a kind are chosen to compile it (rule 3; NOTE [one compile
    per kind]): a test expecting no refusal first, then the weight of the staged statements in
    what it converts, then the size of that and of the test's own source (a test whose
    functions are not found, kind (), is told by its own), then the node id."""
    converted = [_weight(tree) for tree in _functions_of(item)]
    nodes = sum(n for _, n in converted) + _facts_of(item)[3]
    return (_expects_a_refusal(item), sum(w for w, _ in converted), nodes, item.nodeid)


# NOTE [round trips of the tests that do not compile]: NOTE [one round trip per kind] (support.py)
# left the save and load of its torch.export program to the kind's representative only for the
# tests whose compile is deferred; a family test that never compiles (`compile=False`: a model
# dynamo refuses, or one whose compile another test makes) saved and loaded its program in make
# test whatever its kind: 79 tests of 16 kinds, 77 of them of a kind a representative compiles
# and round-trips already (session 45). Their round trip proves what the representative's does,
# the serialization of the kind's statements, so it is sampled the same way (rule 4): only a
# kind no test compiles keeps one, in its cheapest such test.
def select(items, listed=frozenset()):
    """Rules 3 and 4: (item, kind, representative) for the items the rule applies to that
    compile or round-trip (kind None: marked slow_compile by its file). `listed`: the node ids
    of tests/slow_tests.txt, never representatives."""
    out, best, trips, exporting = [], {}, {}, set()
    for item in items:
        if not applies_to(str(item.path)) or "slow" in item.keywords:
            continue
        compiling = compiles(item)
        if not compiling and not round_trips(item):
            continue
        if item.get_closest_marker("xfail") is not None:
            # (a strict xfail's compile is its point: without it, it would pass and fail)
            continue
        if item.get_closest_marker("slow_compile") is not None:
            out.append((item, None, False))
            continue
        k = kind(item)
        out.append((item, k, False))
        if compiling and round_trips(item):
            exporting.add(item.nodeid)
        if item.nodeid not in listed:
            key, pool = cost(item), best if compiling else trips
            if k not in pool or key < pool[k]:
                pool[k] = key
    chosen = {key[-1] for key in best.values()}
    # (a kind whose representative compiles without an export keeps a round trip of its own)
    chosen |= {key[-1] for k, key in trips.items()
               if k not in best or best[k][-1] not in exporting}
    return [(item, k, k is not None and item.nodeid in chosen) for item, k, _ in out]


def exported_kinds(sampled) -> frozenset:
    """The kinds whose test kept by rules 3 and 4 (`select`'s `sampled`) exports in make test."""
    return frozenset(k for item, k, first in sampled
                     if first and k is not None and round_trips(item))


def defers_export(item, kind, exported) -> bool:
    """Rule 5: whether a deferred `item` of `kind` leaves its export out of make test: a test
    of its kind exports there (`exported`), and it is not split by mode (a mode's test is its
    mode's check)."""
    callspec = getattr(item, "callspec", None)
    if callspec and any(isinstance(v, str) and v in _OTHER_MODES | {"compile"}
                        for v in callspec.params.values()):
        return False
    if kind is None or kind not in exported or not round_trips(item):
        return False
    # (a test that expects a refusal, a warning or output may expect it of the export: it keeps
    # its export, as run before rule 5)
    fixtures = set(getattr(item, "fixturenames", ()))
    return not _expects_a_refusal(item) and not _watches(item.function, item.module) and \
        not fixtures & {"recwarn", "capsys", "capfd", "caplog"}


@functools.lru_cache(maxsize=None)  # NOTE [facts of a test function]
def _watches(function, module) -> bool:
    """Whether the test, or a function of its module it names, catches warnings or output
    (`pytest.warns`, `warnings.catch_warnings`, `redirect_stdout` / `redirect_stderr`)."""
    names = {"warns", "catch_warnings", "deprecated_call", "redirect_stdout", "redirect_stderr"}
    return any(isinstance(node, ast.Call) and (getattr(node.func, "attr", None) in names or
                                               getattr(node.func, "id", None) in names)
               for tree in _named_trees_of(function, module) for node in _walk(tree))


if __name__ == "__main__":  # pragma: no cover
    import sys

    import pytest

    class _Report:
        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, items):
            rows = [(item, *item.compile_sample) for item in items
                    if hasattr(item, "compile_sample")]
            for item, k, first in rows:
                print(("COMPILE " if first else "defer   ") + item.nodeid, "|", k)
            print(f"{sum(f for _, _, f in rows)} compiled of {len(rows)} compiling tests",
                  file=sys.stderr)

    sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          *(sys.argv[1:] or [os.path.dirname(__file__)])], plugins=[_Report()]))
