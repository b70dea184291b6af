"""What the conversion-time work of issue 12 relies on: the shared walk finds every node, and
the benchmark measures CPU time beside the wall clock.

The speed itself is measured by `benchmarks/conversion.py` (docs/benchmarks.md); these tests
hold what must not change while it is made faster.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import gast
import pytest

from autoconv.analysis.nodes import children, walk
from autoconv.conversion import converted_tree
from autoconv.parsing import parse_function

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import conversion as conversion_benchmark  # noqa: E402
import sample_functions  # noqa: E402

_CONTEXTS = (gast.Load, gast.Store, gast.Del, gast.Param)


def _trees():
    for fn in sample_functions.CONVERSION_SAMPLES:
        yield fn.__name__, parse_function(fn).node
        # (the converted tree: runtime calls, body functions, lambdas, tuples of names)
        yield fn.__name__ + " converted", converted_tree(fn)[0]


def test_walk_finds_every_node_but_contexts():
    # `walk` passes over the fields of each class that hold no node (session 33): a field
    # skipped wrongly would hide a subtree from every analysis reading the walk
    for label, tree in _trees():
        expected = {id(n) for n in gast.walk(tree) if not isinstance(n, _CONTEXTS)}
        # (as a set: operators are shared instances, found once per use)
        assert {id(n) for n in walk(tree)} == expected, label
        assert {id(n) for n in walk(tree.body)} == {
            id(n) for stmt in tree.body for n in gast.walk(stmt)
            if not isinstance(n, _CONTEXTS)}, label


def test_walk_enters_an_except_handlers_name():
    # (an except handler's `name` is a Name in gast, a str in ast: it is walked)
    tree = gast.parse("try:\n    pass\nexcept ValueError as e:\n    pass\n")
    names = [n.id for n in walk(tree) if isinstance(n, gast.Name)]
    assert sorted(names) == ["ValueError", "e"]


def test_walk_passes_over_nones_and_strings_in_lists():
    # (lists are pushed unfiltered: a keyword-only parameter's missing default and a dict's
    # `**` key are None, a class pattern's keyword names strings)
    source = (
        "def f(a, *, b, c=1):\n"
        "    global g\n"
        "    d = {**a, 'k': b}\n"
        "    match d:\n"
        "        case P(x, y=z) | {'k': [1, *rest], **others}:\n"
        "            return x\n"
        "        case Q(w=v) as q:\n"
        "            return q\n")
    tree = gast.parse(source)
    expected = {id(n) for n in gast.walk(tree) if not isinstance(n, _CONTEXTS)}
    assert {id(n) for n in walk(tree)} == expected
    assert all(isinstance(n, gast.AST) for n in walk(tree))


def test_walk_enters_parameter_annotations():
    # (a name's fields are not looped over: its one node, a parameter's annotation, is pushed
    # by hand, and a constant's value is never a node)
    tree = gast.parse("def f(a: T, *b: U[V], c: 'W' = 1, **d: X) -> Y:\n    return a\n")
    expected = {id(n) for n in gast.walk(tree) if not isinstance(n, _CONTEXTS)}
    assert {id(n) for n in walk(tree)} == expected
    assert {n.id for n in walk(tree) if isinstance(n, gast.Name)} == {
        "a", "b", "c", "d", "T", "U", "V", "X", "Y"}


def test_children_are_ast_child_nodes():
    for label, tree in _trees():
        for node in gast.walk(tree):
            assert children(node) == list(ast.iter_child_nodes(node)), (label, node)


def test_benchmark_reports_cpu_time(monkeypatch):
    # NOTE [wall clock and CPU time of a conversion] in benchmarks/conversion.py: the wall-clock
    # min of a conversion longer than a scheduler slice held another process's slice in every
    # run on the loaded machine (two sample functions at 12.5 ms, 5-6 ms of CPU time)
    cpu = []
    wall = conversion_benchmark._times(conversion_benchmark._autoconv_tree,
                                       sample_functions.newton_sqrt, 3, cpu)
    assert len(wall) == len(cpu) == 3 and all(t > 0 for t in cpu)
    monkeypatch.setattr(conversion_benchmark, "import_seconds", lambda repeat=3: dict.fromkeys(
        ("torch", "symbolic_shapes", "autoconv_own", "first_conversion", "second_conversion"),
        (0.0, 0.0)))
    monkeypatch.setattr(conversion_benchmark, "WARMUP", 0)
    # (two functions: the table's form, not its figures; all nine cost 40 s inside the suite)
    monkeypatch.setattr(sample_functions, "CONVERSION_SAMPLES",
                        list(sample_functions.CONVERSION_SAMPLES)[:2])
    summary = conversion_benchmark.run(rounds=1)
    assert summary["autoconv_cpu_median_ms"] > 0
    assert all(row["autoconv_cpu_ms"] > 0 for row in summary["rows"])


def test_copies_between_ast_and_gast_are_gasts_own():
    # The two copies write fields and positions as `__dict__` items (session 36): each must give
    # what gast's own converters give, positions included (the converted function's body is
    # compared statement by statement: `to_ast` puts the fast path in front of it)
    from autoconv import emit
    from autoconv.parsing import to_gast

    for path in (ROOT / "benchmarks" / "sample_functions.py", ROOT / "autoconv" / "parsing.py"):
        tree = ast.parse(path.read_text())
        assert gast.dump(to_gast(tree), include_attributes=True) == gast.dump(
            gast.ast_to_gast(tree), include_attributes=True), path
    for label, tree in _trees():
        if not label.endswith("converted"):
            continue
        for stmt in tree.body:
            ours, gasts = emit.to_ast(stmt), gast.gast_to_ast(stmt)
            assert ast.dump(ours) == ast.dump(gasts), label
            for mine, theirs in zip(ast.walk(ours), ast.walk(gasts)):
                # (a generated node without a position takes its enclosing node's)
                if getattr(theirs, "lineno", None) is not None:
                    assert (mine.lineno, mine.col_offset) == (theirs.lineno,
                                                              theirs.col_offset), label
                elif "lineno" in mine._attributes:
                    assert mine.lineno >= 1, label


def test_collector_paused_while_converting(monkeypatch):
    # NOTE [no garbage collection during a conversion] in autoconv/conversion.py: a collection
    # in the middle of a conversion walked its live trees and moved them to an older generation
    # (1.6 a conversion, and a full collection of the process every 100-300). Paused while a
    # conversion runs, resumed after it, also after a refusal; left paused where the caller
    # paused it.
    import gc

    from autoconv import conversion, errors, pipeline

    seen = []
    convert_tree = pipeline.convert_tree

    def recording(node, ctx):
        seen.append(gc.isenabled())
        return convert_tree(node, ctx)

    monkeypatch.setattr(pipeline, "convert_tree", recording)
    monkeypatch.setattr(conversion, "_code_cache", type(conversion._code_cache)())

    async def refused(x):  # (refused while parsed: a ConversionError)
        return x

    assert gc.isenabled()
    conversion.convert_function(sample_functions.newton_sqrt)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(errors.ConversionError):
        conversion.convert_function(refused)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(conversion, "_code_cache", type(conversion._code_cache)())
        conversion.convert_function(sample_functions.newton_sqrt)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert seen[-1] is False


def test_conversion_leaves_no_reference_cycles():
    # NOTE [converters without reference cycles] in autoconv/transformer.py: each converter
    # kept bound methods of itself (and three passes closures calling themselves), so that
    # about a thousand objects a conversion (330-1,340 over the sample functions) waited for
    # the garbage collector instead of being freed when the conversion returned
    import gc

    for fn in sample_functions.CONVERSION_SAMPLES:
        converted_tree(fn)  # (the templates' and classes' caches filled)
    gc.disable()
    try:
        left = {}
        for fn in sample_functions.CONVERSION_SAMPLES:
            # (young collections: what the conversion makes is young, with the collector
            # paused; a full one walks torch's objects, seconds over the nine functions)
            while gc.collect(0):  # (what came before it)
                pass
            converted_tree(fn)
            left[fn.__name__] = gc.collect(0)
    finally:
        gc.enable()
    assert left == dict.fromkeys(left, 0)


def test_step_timings_cover_the_passes_and_put_everything_back(monkeypatch):
    # benchmarks/conversion_steps.py times each step by wrapping it for the run: each wrapper
    # must be gone after it (a timer left on a converter would tax every later conversion),
    # and the steps, timed inside the whole, cannot add up to more than it
    import conversion_steps

    from autoconv import conversion, emit, pipeline
    from autoconv.analysis import liveness

    monkeypatch.setattr(sample_functions, "CONVERSION_SAMPLES",
                        list(sample_functions.CONVERSION_SAMPLES)[:2])
    converters = list(pipeline.PASSES) + [pipeline.ControlFlowConverter]
    before = ([c.__dict__.get("transform") for c in converters],
              conversion.parse_function, emit.compile_factory, liveness.analyze)
    whole, steps = conversion_steps.measure(rounds=1)
    after = ([c.__dict__.get("transform") for c in converters],
             conversion.parse_function, emit.compile_factory, liveness.analyze)
    assert after[0] == before[0] and all(a is b for a, b in zip(after[1:], before[1:]))
    assert {"parse", "ControlFlowConverter", "ChoiceConverter", "liveness"} <= set(steps)
    assert 0 < sum(steps.values()) <= whole
