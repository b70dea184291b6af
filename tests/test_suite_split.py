"""The split of the suite between `make test` and `make test-slow` (docs/testing.md): the list
of tests measured too slow for `make test` (tests/slow_tests.txt) names tests that exist, and
reads as conftest.py reads it."""

from __future__ import annotations

import ast
import importlib
import os
import sys
import types

import pytest
import torch

import autoconv
import compile_sample
import conftest
import support
from tests import support as support_as_a_package_module  # (tests/real's import)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _test_functions(path: str) -> dict:
    """{name: whether it is parametrized} of the functions in `path`."""
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    return {node.name: any("parametrize" in ast.unparse(d) for d in node.decorator_list)
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_listed_slow_test_exists():
    # A renamed test would otherwise come back into make test's time unnoticed, and a deleted
    # one linger in the list. (The file and the function are checked; a parametrize id is not.)
    missing = []
    for node_id in conftest.listed_slow_tests():
        path, _, name = node_id.partition("::")
        function = name.split("[", 1)[0]
        if not os.path.isfile(os.path.join(ROOT, path)) or \
                function not in _test_functions(path):
            missing.append(node_id)
    assert not missing, f"tests/slow_tests.txt names tests that do not exist: {missing}"


def test_a_listed_parametrized_test_names_its_case():
    # The list matches node ids exactly: a parametrized test listed by its function's name alone
    # matched none of its cases, and they stayed in make test (session 36).
    bare = [node_id for node_id in conftest.listed_slow_tests() if "[" not in node_id
            and _test_functions(node_id.partition("::")[0]).get(node_id.partition("::")[2])]
    assert not bare, f"tests/slow_tests.txt lists parametrized tests without their case: {bare}"


def test_the_list_reads_marks_and_refuses_a_wrong_line(tmp_path):
    listed = tmp_path / "slow_tests.txt"
    listed.write_text("# mark seconds node id\n"
                      "slow_compile 43.0 tests/test_fuzz.py::test_regression[a b]\n\n"
                      "slow 20.6 tests/test_function.py::test_x  # a subprocess\n")
    assert conftest.listed_slow_tests(str(listed)) == {
        "tests/test_fuzz.py::test_regression[a b]": "slow_compile",
        "tests/test_function.py::test_x": "slow"}
    listed.write_text("slowest 1.0 tests/test_x.py::test_y\n")
    with pytest.raises(ValueError, match=r"slow_tests.txt:1: expected"):
        conftest.listed_slow_tests(str(listed))


# The compile sample (tests/compile_sample.py, NOTE [one compile per kind]): one compile per kind
# of staged statements across the family files, the cheapest, whatever the order of the tests.

def shallow(x):
    if x.sum() > 0:
        x = x + 1
    return x


def nested(x):
    if x.sum() > 0:
        if x.sum() > 1:
            x = x + 1
    return x


def looped(x):
    while x.sum() < 0:
        x = x + 1
    return x


def looped_branch(x):
    while x.sum() < 0:
        if x.sum() < -1:
            x = x + 1
        x = x + 1
    return x


def _a_compiling_test(fn):
    support.assert_same_result(fn, [(torch.ones(2),)])


def _a_round_tripping_test(fn):
    support.assert_same_result(fn, [(torch.ones(2),)], compile=False)


def _a_round_tripping_test_expecting_a_refusal(fn):
    with pytest.raises(RuntimeError):
        support.assert_same_result(fn, [(torch.ones(2),)], compile=False)


def _a_compiling_test_without_export(fn):
    support.assert_same_result(fn, [(torch.ones(2),)], export=False)


class _Marker:
    def __init__(self, name):
        self.name = name


class _Item:
    """What compile_sample reads of a pytest item: a case of `_a_compiling_test` with `fn`."""

    def __init__(self, nodeid, fn, marks=(), test=_a_compiling_test):
        self.nodeid, self.path = nodeid, os.path.join(ROOT, nodeid.partition("::")[0])
        self.function, self.module = test, sys.modules[__name__]
        self.callspec = types.SimpleNamespace(params={"fn": fn})
        self.keywords = {name: True for name in marks}
        self._marks = set(marks)

    def get_closest_marker(self, name):
        return _Marker(name) if name in self._marks else None


def _representatives(items, listed=frozenset()):
    return {item.nodeid: k for item, k, first in compile_sample.select(items, listed) if first}


def _real_module(path: str):
    """The module of a tests/real file, as pytest imported it if it did (its source is only
    read: compile_sample's facts of its functions)."""
    filename = os.path.join(ROOT, path)
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return module
    return importlib.import_module(path[:-3].replace("/", "."))


def _exporting_tests(path: str) -> dict:
    """{name: marked slow} of the test functions of `path` that export through support's
    checks (compile_sample's facts: assert_same_result / assert_same_exactly, export on)."""
    module = _real_module(path)
    return {name: any(m.name == "slow" for m in getattr(fn, "pytestmark", []))
            for name, fn in vars(module).items()
            if name.startswith("test_") and isinstance(fn, types.FunctionType)
            and fn.__module__ == module.__name__ and compile_sample._facts(fn, module)[1]}


def _files_losing_their_last_export(listed) -> list:
    """The tests/real files of `listed` (ids of tests/deferred_exports.txt) none of whose tests
    exports in make test any more: every exporting test deferred or marked slow."""
    files = sorted({node_id.split("::", 1)[0] for node_id in listed})
    return [path for path in files
            if all(slow or f"{path}::{name}" in listed
                   for name, slow in _exporting_tests(path).items())]


def test_every_deferred_export_is_an_export_of_a_test_expecting_no_refusal():
    # NOTE [one export per library file] (conftest.py): a listed test exists, exports through
    # support (else the list defers nothing), expects no refusal (one under export would not
    # be raised: pytest.raises would fail) and is not marked slow (make test runs none of it)
    wrong = []
    for node_id in sorted(conftest.listed_deferred_exports()):
        path, name = node_id.split("[", 1)[0].split("::", 1)
        module = _real_module(path)
        fn = getattr(module, name, None)
        if not isinstance(fn, types.FunctionType):
            wrong.append((node_id, "no such test"))
        elif not compile_sample._facts(fn, module)[1]:
            wrong.append((node_id, "no export through support"))
        elif compile_sample._facts(fn, module)[2]:
            wrong.append((node_id, "expects a refusal"))
        elif _exporting_tests(path)[name]:
            wrong.append((node_id, "marked slow"))
    assert not wrong, f"tests/deferred_exports.txt: {wrong}"


def test_no_library_file_loses_its_last_export_in_make_test():
    listed = conftest.listed_deferred_exports()
    assert _files_losing_their_last_export(listed) == []
    # (and the check fails where a file's kept export is listed too)
    kept = "tests/real/test_tester52b.py::test_kalman_filter_with_an_outlier_gate_in_every_mode"
    assert kept not in listed
    assert _files_losing_their_last_export(listed | {kept}) == ["tests/real/test_tester52b.py"]


def test_the_deferred_exports_list_reads_ids_and_refuses_a_wrong_line(tmp_path):
    listed = tmp_path / "deferred_exports.txt"
    listed.write_text("# a comment\n\ntests/real/test_a.py::test_b  # why\n"
                      "tests/real/test_a.py::test_c[case]\n")
    assert conftest.listed_deferred_exports(str(listed)) == {
        "tests/real/test_a.py::test_b", "tests/real/test_a.py::test_c[case]"}
    listed.write_text("tests/reference/test_a.py::test_b\n")
    with pytest.raises(ValueError, match=r"deferred_exports.txt:1: expected"):
        conftest.listed_deferred_exports(str(listed))


def test_the_collected_deferred_exports_are_marked_and_leave_their_export_out(request):
    listed = conftest.listed_deferred_exports()
    items = [item for item in request.session.items
             if item.nodeid.startswith("tests/real/")]
    if not items:
        pytest.skip("no file of tests/real collected (make test collects them all)")
    for item in items:
        deferred = item.nodeid.split("[", 1)[0] in listed
        assert (item.get_closest_marker("slow_export") is not None) is deferred, item.nodeid
        assert getattr(item, "defers_export", False) is deferred, item.nodeid


def test_a_deferred_export_alone_keeps_the_compile(monkeypatch):
    # a slow_export test that is not slow_compile: no export at all, its compile as before
    # (torch.compile asked for, here run eagerly: what it gives is the compile tests')
    exports, compiles = [], []
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export",
                        lambda *a, **k: (exports.append(1), export(*a, **k))[1])
    monkeypatch.setattr(torch, "compile", lambda fn, **k: (compiles.append(k), fn)[1])
    monkeypatch.setattr(support, "defer_compile", False)
    monkeypatch.setattr(support, "defer_export", True)
    support.assert_same_result(shallow, [(torch.ones(2),), (-torch.ones(2),)])
    support.assert_same_exactly(shallow, [(torch.ones(2),)])
    assert exports == [] and [k["fullgraph"] for k in compiles] == [True, True]


def test_one_test_compiles_each_kind_across_files_the_cheapest_in_any_order():
    items = [_Item("tests/reference/test_a.py::test_x[nested]", nested),
             _Item("tests/reference/test_a.py::test_x[looped]", looped),
             _Item("tests/reference/test_b.py::test_y[shallow]", shallow),
             _Item("tests/test_fuzz.py::test_regression[shallow]", shallow),
             _Item("tests/reference/test_b.py::test_y[xfail]", shallow, marks=["xfail"]),
             _Item("tests/reference/test_b.py::test_y[marked]", shallow, marks=["slow_compile"]),
             _Item("tests/real/test_lib.py::test_z[shallow]", shallow)]  # (not a family)
    want = {"tests/reference/test_b.py::test_y[shallow]": ("if",),
            "tests/reference/test_a.py::test_x[looped]": ("while",)}
    assert _representatives(items) == want
    assert _representatives(items[::-1]) == want
    assert _representatives(items[2:] + items[:2]) == want
    # The measured list's tests are never chosen: the kind goes to the next cheapest.
    assert _representatives(items, frozenset({"tests/reference/test_b.py::test_y[shallow]"})) == {
        "tests/test_fuzz.py::test_regression[shallow]": ("if",),
        "tests/reference/test_a.py::test_x[looped]": ("while",)}
    chosen = {item.nodeid: (k, first) for item, k, first in compile_sample.select(items)}
    assert "tests/reference/test_b.py::test_y[xfail]" not in chosen  # (always compiles)
    assert chosen["tests/reference/test_b.py::test_y[marked]"] == (None, False)
    assert "tests/real/test_lib.py::test_z[shallow]" not in chosen


def test_a_round_trip_is_kept_only_where_no_test_compiling_its_kind_makes_one():
    # NOTE [round trips of the tests that do not compile]: a test with compile=False is sampled
    # for its export's save and load: deferred where its kind's compiled representative saves
    # and loads its own, the cheapest of its kind kept where no representative does
    trips = [_Item("tests/reference/test_a.py::test_t[shallow]", shallow,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_a.py::test_t[looped]", looped,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_a.py::test_t[nested]", nested,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_b.py::test_u[looped]", looped,
                   test=_a_round_tripping_test)]
    compiled = [_Item("tests/reference/test_c.py::test_x[shallow]", shallow),
                _Item("tests/reference/test_c.py::test_v[looped]", looped,
                      test=_a_compiling_test_without_export)]
    items = trips + compiled
    # (`if`: test_x compiles and exports it, so no test_t case keeps its round trip; `while`:
    # test_v compiles without an export, so the cheaper of its round-tripping tests keeps one)
    want = {"tests/reference/test_c.py::test_x[shallow]": ("if",),
            "tests/reference/test_c.py::test_v[looped]": ("while",),
            "tests/reference/test_a.py::test_t[looped]": ("while",)}
    assert _representatives(items) == want
    assert _representatives(items[::-1]) == want
    chosen = {item.nodeid: (k, first) for item, k, first in compile_sample.select(items)}
    assert chosen["tests/reference/test_a.py::test_t[shallow]"] == (("if",), False)
    assert chosen["tests/reference/test_a.py::test_t[nested]"] == (("if",), False)
    assert chosen["tests/reference/test_b.py::test_u[looped]"] == (("while",), False)


def test_each_kind_of_the_collected_families_compiles_in_exactly_one_test(request):
    # What make test collects (each xdist worker collects the whole suite): every kind compiles
    # in one test, not deferred, unless all its tests are on the measured list (its compile is
    # make test-slow's), and every other compiling test of the families defers its compile.
    sampled = [item for item in request.session.items if hasattr(item, "compile_sample")]
    if not any(k for item in sampled for k, _ in [item.compile_sample] if k is not None):
        pytest.skip("no family file collected (make test collects them all)")
    listed = conftest.listed_slow_tests()
    by_kind = {}
    for item in sampled:
        k, first = item.compile_sample
        if k is not None:
            by_kind.setdefault(k, []).append((item, first))
    wrong = []
    for k, tests in by_kind.items():
        # (and at most one test that does not compile keeps its export's round trip: rule 4)
        compiling = [(item, first) for item, first in tests if compile_sample.compiles(item)]
        chosen = [item for item, first in compiling if first]
        if compiling and len(chosen) != 1 and \
                not (not chosen and all(i.nodeid in listed for i, _ in compiling)):
            wrong.append((k, [i.nodeid for i in chosen]))
        kept = [item.nodeid for item, first in tests if first and (item, first) not in compiling]
        if len(kept) > 1:
            wrong.append((k, kept))
        wrong.extend((k, item.nodeid) for item, first in tests
                     if first == (item.get_closest_marker("slow_compile") is not None))
    assert not wrong, f"kinds not compiled exactly once in make test: {wrong}"


def test_a_deferred_test_leaves_its_export_out_only_where_its_kind_exports_in_make_test():
    # NOTE [one export per kind] (support.py), compile_sample's rule 5: every deferred test of
    # a kind whose kept test exports leaves its export out; where the kind's only exporting
    # tests are on the measured list, no test of it is kept, so none leaves its export out
    # (the list's tests run theirs as exported), nor does a test split by mode or one that
    # expects a refusal (maybe the export's)
    trips = [_Item("tests/reference/test_a.py::test_t[shallow]", shallow,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_a.py::test_t[looped]", looped,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_b.py::test_u[looped]", looped,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_b.py::test_u[nested]", nested,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_b.py::test_u[looped_branch]", looped_branch,
                   test=_a_round_tripping_test),
             _Item("tests/reference/test_b.py::test_r[shallow]", shallow,
                   test=_a_round_tripping_test_expecting_a_refusal)]
    compiled = [_Item("tests/reference/test_c.py::test_x[shallow]", shallow),
                _Item("tests/reference/test_c.py::test_v[looped]", looped,
                      test=_a_compiling_test_without_export)]
    by_mode = _Item("tests/reference/test_d.py::test_m[export]", shallow,
                    test=_a_round_tripping_test)
    by_mode.callspec.params["mode"] = "export"
    listed = frozenset({"tests/reference/test_b.py::test_u[looped_branch]"})
    for items in (trips + compiled + [by_mode], (trips + compiled + [by_mode])[::-1]):
        sampled = compile_sample.select(items, listed)
        exported = compile_sample.exported_kinds(sampled)
        assert exported == {("if",), ("while",)}
        defers = {item.nodeid for item, k, first in sampled
                  if not first and compile_sample.defers_export(item, k, exported)}
        assert defers == {"tests/reference/test_a.py::test_t[shallow]",
                          "tests/reference/test_b.py::test_u[looped]",
                          "tests/reference/test_b.py::test_u[nested]"}


def test_each_kind_of_the_collected_families_exports_in_make_test(request):
    # What make test collects: every kind some family test exports keeps one test that exports
    # in make test (its compiling representative or its round trip: rule 4), unless all are on
    # the measured list; a test leaves its export out only if deferred and of such a kind.
    sampled = [item for item in request.session.items if hasattr(item, "compile_sample")]
    if not any(k for item in sampled for k, _ in [item.compile_sample] if k is not None):
        pytest.skip("no family file collected (make test collects them all)")
    listed = conftest.listed_slow_tests()
    exporting, kept, wrong = {}, set(), []
    for item in sampled:
        k, first = item.compile_sample
        if k is None or not compile_sample.round_trips(item):
            continue
        exporting.setdefault(k, []).append(item.nodeid)
        if not item.defers_export:
            kept.add(k)
        if item.defers_export and (first or item.get_closest_marker("slow_compile") is None):
            wrong.append((k, item.nodeid))
    wrong.extend((k, ids) for k, ids in exporting.items()
                 if k not in kept and not all(i in listed for i in ids))
    assert not wrong, f"kinds not exported in make test: {wrong}"


def test_a_deferred_export_runs_nothing_of_the_export(monkeypatch):
    # compile_sample's rule 5: a test whose kind exports in make test runs its plain Python and
    # staged replay, and no export at all (make test-slow runs it whole; the export without
    # defer_export is test_a_deferred_compile_runs_the_export_without_its_round_trip's)
    exports = []
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export",
                        lambda *a, **k: (exports.append(1), export(*a, **k))[1])
    monkeypatch.setattr(support, "defer_compile", True)
    monkeypatch.setattr(support, "defer_export", True)
    assert support.assert_same_result(shallow, [(torch.ones(2),), (-torch.ones(2),)]) is not None
    support.assert_same_exactly(shallow, [(torch.ones(2),)])
    assert exports == []


@pytest.mark.parametrize("deferred", [False, True])
def test_a_deferred_compile_runs_the_export_without_its_round_trip(deferred, monkeypatch):
    # NOTE [one round trip per kind] (tests/support.py): the kind's representative saves and
    # loads its exported program; a test whose compile is deferred runs the program as exported.
    saves = []
    save = torch.export.save
    monkeypatch.setattr(torch.export, "save", lambda *a, **k: (saves.append(1), save(*a, **k)))
    monkeypatch.setattr(support, "defer_compile", deferred)
    support.assert_same_result(shallow, [(torch.ones(2),), (-torch.ones(2),)], compile=False)
    support.assert_same_exactly(shallow, [(torch.ones(2),)], compile=False)
    assert len(saves) == (0 if deferred else 2)


@pytest.mark.parametrize("deferred", [False, True])
def test_a_program_run_as_exported_records_no_stacks_and_a_round_trip_does(deferred,
                                                                         monkeypatch):
    # NOTE [stacks of a program run as exported] (tests/support.py): the stacks are a fifth of
    # an export where nothing reads them; the saved program keeps them as a user's does, and
    # the setting is given back whatever the export does
    programs = []
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export",
                        lambda *a, **k: programs.append(export(*a, **k)) or programs[-1])
    monkeypatch.setattr(support, "defer_compile", deferred)
    support.assert_same_result(shallow, [(torch.ones(2),), (-torch.ones(2),)], compile=False)
    assert not torch.fx.config.do_not_emit_stack_traces
    staged = [n for n in programs[0].graph.nodes if n.op == "call_function"]
    assert staged and any(n.target is support.COND for n in staged)
    assert all(not n.meta.get("stack_trace") for n in staged) is deferred
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        support._saved_and_loaded(None, (), round_trip=False)
    assert not torch.fx.config.do_not_emit_stack_traces


@pytest.mark.parametrize("round_trip", [False, True])
def test_a_tests_export_makes_lazy_graph_modules_that_compute_as_python(round_trip):
    # NOTE [graph modules of a test's export made lazy] (tests/support.py): the nested bodies
    # of a program run as exported generate their code once, when run; a saved program loads
    # as a user's does (torch.export.load makes plain GraphModules); both compute Python's
    # values on inputs taking each path, and the setting is given back
    from torch.fx._lazy_graph_module import _LazyGraphModule

    module = support._saved_and_loaded(autoconv.convert(nested), (torch.ones(2),),
                                       round_trip=round_trip)
    bodies = [m for name, m in module.named_modules()
              if name and isinstance(m, torch.fx.GraphModule)]
    assert len(bodies) == 4
    assert [isinstance(m, _LazyGraphModule) for m in bodies] == [not round_trip] * 4
    assert not torch.fx._lazy_graph_module._use_lazy_graph_module_flag
    for x in (torch.ones(2), torch.full((2,), 0.25), -torch.ones(2)):
        torch.testing.assert_close(module(x.clone()), nested(x.clone()))


@pytest.mark.slow_compile
def test_a_deferred_compile_reaches_support_however_it_is_imported(request):
    # tests/real/ and six reference files import `tests.support`, a module object of its own
    # beside conftest.py's `support`: both must leave the compile out (session 44: the second
    # compiled, skipped at the call, and saved and loaded its export)
    assert support_as_a_package_module is not support
    deferred = not conftest._run_slow(request.config)
    assert support.defer_compile is deferred
    assert support_as_a_package_module.defer_compile is deferred
