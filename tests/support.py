"""Shared test helpers: the two test shapes of every converter, and graph inspection.

- `assert_converts(fn_source, expected_source)`: converted source equals the expected text.
- `assert_same_result(fn, inputs)`: plain Python vs the staged graph (traced once on the first
  input, replayed on the others with the default and the "fx" backend), `torch.export(strict=False)` and
  `torch.compile(fullgraph=True)`, on inputs that take different paths.
- `slow_compile(cases, names)`: a parametrize table whose named cases run their torch.compile
  check only with --run-slow (`make test-slow`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import linecache
import os
import re
import textwrap
import time
import types

import pytest
import torch
from torch.fx._lazy_graph_module import _use_lazy_graph_module
from torch.utils import _pytree as pytree

import autoconv

__all__ = [
    "assert_converts",
    "assert_same_result",
    "assert_close",
    "count_ops",
    "slow_compile",
    "function_from_source",
    "WHILE_LOOP",
    "COND",
]

COND = torch.ops.higher_order.cond
WHILE_LOOP = torch.ops.higher_order.while_loop
_sources = 0
# Set by conftest.py for the duration of a test marked `slow_compile` without --run-slow:
# assert_same_result and assert_same_exactly leave out their torch.compile check (and go on) and
# run the torch.export program as exported, without its save and load round trip (NOTE [one
# round trip per kind]).
defer_compile = False
# Set with it where the test is of a construct family and a test of its kind exports in `make
# test` (conftest.py, NOTE [one export per kind]): the torch.export check is left out too.
defer_export = False
# AUTOCONV_TEST_PHASES=FILE: the checks append one line a phase (`test node id, phase, CPU s`)
# to FILE, the split of a family test's CPU measured in session 54 (docs/testing.md, "The
# suite's time (session 54)"). Unset, `_phase` only yields.
_PHASES = os.environ.get("AUTOCONV_TEST_PHASES")


@contextlib.contextmanager
def _phase(name: str):
    if not _PHASES:
        yield
        return
    start = time.process_time()
    try:
        yield
    finally:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with open(_PHASES, "a") as f:
            f.write(f"{test}\t{name}\t{time.process_time() - start:.4f}\n")


def slow_compile(cases, names):
    """`cases` (parametrize argument tuples, the function first) with the `slow_compile` mark on
    the cases whose function is named in `names`: `make test` runs their staged replay and
    export, `make test-slow` also their torch.compile check. Name only cases whose construct
    another case of the table still compiles in `make test` (dynamo tracing autoconv's runtime
    is most of a case's time: docs/testing.md)."""
    names = set(names)
    unknown = names - {case[0].__name__ for case in cases}
    assert not unknown, f"no such case: {sorted(unknown)}"
    return [pytest.param(*case, marks=pytest.mark.slow_compile) if case[0].__name__ in names
            else case for case in cases]


def function_from_source(source: str, globals_=None):
    """Define the function in `source` as if it were in a file (so its source can be read)."""
    global _sources
    _sources += 1
    filename = f"<autoconv-test-{_sources}>"
    source = textwrap.dedent(source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"torch": torch, **(globals_ or {})}
    exec(compile(source, filename, "exec"), namespace)
    fns = [v for k, v in namespace.items() if isinstance(v, types.FunctionType)
           and v.__code__.co_filename == filename]
    return fns[-1]


_RETURNED = re.compile(r"^(\s*return )ac\.number_returned_\((.*)\)$")


def _unchecked_return(line: str) -> str:
    """`line` with `return ac.number_returned_(v)` written as `return v` (a tuple without
    the parentheses the call's argument needs)."""
    match = _RETURNED.match(line)
    if match is None:
        return line
    value = match.group(2)
    if value.startswith("(") and value.endswith(")"):
        depth = 0
        for i, char in enumerate(value):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                break
        if i == len(value) - 1:
            value = value[1:-1]
    return match.group(1) + value


def assert_converts(source: str, expected: str, globals_=None) -> None:
    """The converted source of the function in `source` is `expected` (both dedented)."""
    fn = function_from_source(source, globals_)
    # (the alias checks after statements that may update a tensor in place are a no-op unless
    # a traced value aliases: NOTE [staged values that alias in Python]; their own tests are
    # in tests/reference/test_aliasing.py)
    # (nor is `return ac.number_returned_(v)`, the check of a number of two kinds returned by
    # the function traced: NOTE [numbers of two kinds returned] in runtime/augmented.py; its
    # own tests are in tests/reference/test_numbers.py)
    actual = "\n".join(_unchecked_return(line)
                       for line in autoconv.to_code(fn).strip().splitlines()
                       if line.strip() != "ac.check_aliases()")
    expected = textwrap.dedent(expected).strip()
    assert actual == expected, f"converted source differs:\n{actual}\n--- expected ---\n{expected}"


def assert_close(actual, expected) -> None:
    """Equal values, whether Python numbers or tensors (a graph returns 0-d tensors where
    Python returns numbers)."""
    a_leaves, _ = pytree.tree_flatten(actual)
    e_leaves, _ = pytree.tree_flatten(expected)
    assert len(a_leaves) == len(e_leaves), f"{actual!r} != {expected!r}"
    for a, e in zip(a_leaves, e_leaves):
        if isinstance(e, (torch.Tensor, bool, int, float)) and not isinstance(e, type(None)):
            torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(e), check_dtype=False,
                                       msg=lambda m: f"{actual!r} != {expected!r}: {m}")
        else:
            assert a == e, f"{actual!r} != {expected!r}"


class Calling(torch.nn.Module):
    """A module whose forward calls `fn` (what torch.export takes)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def exported(fn, args):
    """`fn` converted, exported with strict=False, saved and loaded again: the module a
    deployment runs without autoconv or the source."""
    return _saved_and_loaded(autoconv.convert(fn), args)


def _saved_and_loaded(converted, args, *, round_trip=True):
    with _use_lazy_graph_module(True):  # NOTE [graph modules of a test's export made lazy]
        if not round_trip:  # (NOTE [stacks of a program run as exported])
            with _phase("export"), _no_stack_traces():
                return torch.export.export(Calling(converted), args, strict=False).module()
        with _phase("export"):
            program = torch.export.export(Calling(converted), args, strict=False)
        with _phase("save and load"):
            saved = io.BytesIO()
            torch.export.save(program, saved)
            saved.seek(0)
            return torch.export.load(saved).module()


@contextlib.contextmanager
def _no_stack_traces():
    from torch.fx import config as fx_config

    before = fx_config.do_not_emit_stack_traces
    fx_config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        fx_config.do_not_emit_stack_traces = before


# NOTE [stacks of a program run as exported]: torch.export's tracer keeps each node's Python
# stack (`node.meta["stack_trace"]`, about 140 frames, most of them the runtime's, line by line
# for each op): 20-25% of an export's CPU where the probes' nodes record none already (NOTE
# [probes record no stack traces] in runtime/staging/context.py; docs/testing.md, session 52).
# It is debugging metadata: nothing the program computes reads it, and where the program is
# run as exported, without the save and load round trip (NOTE [one round trip per kind]),
# nothing reads it at all. So that export records none; the round trips (each kind's
# representative, every test outside the sample, `make test-slow`) record and serialize them
# as a user's export does.

# NOTE [graph modules of a test's export made lazy]: fx's GraphModule generates and compiles
# its Python code whenever its graph is set or changed (`recompile`), and each recompile
# generates all its submodules' code again: torch.export's passes over a program with nested
# cond / while_loop bodies (placeholder naming, the hop replacement, runtime assertions,
# unlifting) regenerated every body's code a dozen times, nearly all of it thrown away (a
# cProfile of test_lists / test_objects_bound_in_branches / test_staging_engine: 13,739
# recompiles, 6% of the run's time, most under torch.export; docs/testing.md, session 53).
# Under `_use_lazy_graph_module` (as autoconv's own trace runs: autoconv/capture.py) the
# modules torch makes mark their code stale and generate it once, when first run or shown,
# from the graph as it is then: the program computes the same, and save / load serialize the
# graph, not the code. One export of a loop holding two `if`s and run once: 0.167 s of CPU
# (median of six) before, 0.124 s after.

# NOTE [one export per kind]: session 54 measured where a family test's CPU goes under `make
# test` (AUTOCONV_TEST_PHASES, above; docs/testing.md, "The suite's time (session 54)"): with
# the compile and the round trip sampled by kind already, the export itself, run as exported,
# was the largest part left of the tests whose compile is deferred. What it tests is autoconv's
# graphs of the kind's statements under torch.export's non-strict tracer, as the round trip's
# export does; so it is sampled as they are: a family test whose compile is deferred leaves its
# export out too where a test of its kind exports in `make test` (the kind's representative, or
# the round trip rule 4 of tests/compile_sample.py keeps), and `make test-slow` runs it whole.
# Its plain Python and staged replay (both backends) always run.

# NOTE [one round trip per kind]: torch.export's save and load cost about half of the export
# itself (9% of a reference file's CPU against the export's 20%: docs/testing.md, session 42),
# and what they test, the serialization of autoconv's graphs (torch.cond / while_loop with their
# subgraphs, the operators in them), is the same for tests of one kind of staged statement. So
# under `make test` a test whose compile is deferred (slow_compile: its kind's representative
# compiles, tests/compile_sample.py) runs its exported program as exported, and the
# representative, every test outside the sample, and `make test-slow` run the round trip.


def assert_same_fields(got, want):
    """`got` equals Python's `want` class by class and field by field: tensors by
    `torch.equal`, lists, tuples and dicts item by item, other objects by their `vars()`. For
    results that are new objects (rebuilt at replay), where `==` would compare identities."""
    assert type(got) is type(want)
    if isinstance(want, torch.Tensor):
        assert torch.equal(got, want)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_fields(g, w)
    elif isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            assert_same_fields(got[key], want[key])
    elif hasattr(want, "__dict__"):
        assert_same_fields(vars(got), vars(want))
    else:
        assert got == want


def assert_same_result(fn, inputs, *, export=True, compile=True, staged=True, resize=False):
    """Check `fn` converted against plain Python on every input tuple in `inputs`.

    The autoconv graph is traced once, on `inputs[0]`, and replayed on all of them, so a graph
    that baked in the traced path fails. With `staged`, the graph must hold a cond or
    while_loop node. With `compile` and `resize`, torch.compile (its default dynamic=None) is
    also called on the inputs with their tensors of two rows or more doubled along the first
    dimension (`_resized`), after `inputs[0]`: dynamo compiles again with symbolic sizes, the
    way a caller's second batch size makes it. Skipped where Python raises on the doubled
    inputs. Off by default: the second compile, with symbolic sizes, cost about 26 s a call
    on the shared test machine (53 calls of test_conditionals.py and test_jumps.py: 1363 s),
    more than the rest of the check. Returns the ConcreteFunction.
    """
    inputs = [args if isinstance(args, tuple) else (args,) for args in inputs]
    with _phase("python"):
        expected = [fn(*_clone(args)) for args in inputs]
    with _phase("conversion"):
        converted = autoconv.convert(fn)
    function = autoconv.autoconv(fn)
    with _phase("trace"):
        concrete = function.get_concrete_function(*inputs[0])
    # The default backend runs the graph as Python; torch's own execution of the same graph
    # (the "fx" backend: cond / while_loop operators) must agree too.
    with _phase("replay"):
        with_fx = copy.copy(concrete)
        with_fx.backend, with_fx._runner = "fx", None
        for args, want in zip(inputs, expected):
            assert_close(concrete(*_clone(args)), want)
            assert_close(with_fx(*_clone(args)), want)
    assert function.trace_count == 1
    if staged:
        # (the graph replay runs, read in place: `graph_module` makes the user's copy of every
        # graph and generates its code again, 5.4 ms of CPU a trace of test_conditionals' and
        # test_loops' CASES, 7% of the trace's own; a test that reads it still pays it)
        assert count_ops(concrete._graph_module, COND, WHILE_LOOP) > 0, concrete.code
    if export and not defer_export:
        # The saved program (what runs without autoconv or the source) must give the same.
        module = _saved_and_loaded(converted, _clone(inputs[0]), round_trip=not defer_compile)
        with _phase("export run"):
            for args, want in zip(inputs, expected):
                assert_close(module(*_clone(args)), want)
    if compile and not defer_compile:
        with _phase("compile"):
            torch._dynamo.reset()
            compiled = torch.compile(converted, fullgraph=True, backend="eager", dynamic=False)
            with torch._dynamo.config.patch(error_on_recompile=True):
                for args, want in zip(inputs, expected):
                    assert_close(compiled(*_clone(args)), want)
        if resize:
            _assert_same_result_resized(fn, converted, inputs)
    return concrete



def assert_same_exactly(fn, inputs, *, export=True, compile=True):
    """`fn` converted gives plain Python's outputs bit for bit, dtypes included, on every input
    tuple in `inputs` (assert_same_result compares values only): autoconv's replay (traced on
    `inputs[0]`), the saved and loaded torch.export program and torch.compile(fullgraph=True).
    The outputs are tensors, or tuples of them."""
    with _phase("python"):
        expected = [fn(*_clone(args)) for args in inputs]
    runs = [autoconv.autoconv(fn)]
    with _phase("conversion"):
        converted = autoconv.convert(fn)
    if export and not defer_export:
        runs.append(_saved_and_loaded(converted, _clone(inputs[0]), round_trip=not defer_compile))
    if compile and not defer_compile:
        torch._dynamo.reset()
        runs.append(torch.compile(converted, fullgraph=True, backend="eager", dynamic=False))
    for run in runs:
        for args, want in zip(inputs, expected):
            got = run(*_clone(args))
            got_leaves, want_leaves = pytree.tree_leaves(got), pytree.tree_leaves(want)
            assert len(got_leaves) == len(want_leaves), (run, args, got, want)
            for g, w in zip(got_leaves, want_leaves):
                assert g.dtype == w.dtype and torch.equal(g, w), (run, args, got, want)

def _resized(args):
    """`args` with each tensor of two rows or more doubled along its first dimension (itself
    twice), or None where there is none."""
    found = []

    def double(a):
        if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] >= 2:
            found.append(a)
            return torch.cat([a, a]).detach().requires_grad_(a.requires_grad)
        return a.clone() if isinstance(a, torch.Tensor) else a

    out = pytree.tree_map(double, tuple(args))
    return out if found else None


def _assert_same_result_resized(fn, converted, inputs) -> None:
    """torch.compile with its default dynamic=None on `inputs[0]`, then on each input resized
    (`_resized`): the second size compiles again with symbolic sizes."""
    resized = []
    for args in inputs:
        bigger = _resized(args)
        if bigger is None:
            continue
        try:
            want = fn(*_clone(bigger))
        except Exception:  # (the function does not allow that size: a square matrix)
            continue
        resized.append((bigger, want))
    if not resized:
        return
    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True, backend="eager")
    compiled(*_clone(inputs[0]))
    for args, want in resized:
        assert_close(compiled(*_clone(args)), want)


def _clone(args):
    # Tensors inside lists and dicts too: a function may update them in place.
    return pytree.tree_map(lambda a: a.clone() if isinstance(a, torch.Tensor) else a, tuple(args))


def count_ops(graph_module: torch.fx.GraphModule, *targets) -> int:
    """How many nodes call one of `targets`, in the graph and all its subgraphs."""
    count = 0
    for module in graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            count += sum(1 for n in module.graph.nodes if n.op == "call_function"
                         and n.target in targets)
    return count
