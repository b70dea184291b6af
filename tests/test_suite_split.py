"""The split of the suite between `make test` and `make test-slow` (docs/testing.md): the list
of tests measured too slow for `make test` (tests/slow_tests.txt) names tests that exist, and
reads as conftest.py reads it."""

from __future__ import annotations

import ast
import os

import pytest

import conftest

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
