"""Property tests: on Python values the runtime operators are exactly the Python they replace,
and on traced tensors they agree with it."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.fx.experimental.proxy_tensor import make_fx

import autoconv_runtime as ac

values = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.text(max_size=2),
                   st.lists(st.integers(), max_size=2))


@given(values, values)
def test_and_or_not_match_python(a, b):
    calls = []

    def right():
        calls.append(1)
        return b

    assert ac.and_(a, right) == (a and b)
    assert len(calls) == (1 if a else 0)  # the right side only runs when Python runs it
    calls.clear()
    assert ac.or_(a, right) == (a or b)
    assert len(calls) == (0 if a else 1)
    assert ac.not_(a) == (not a)


@given(values, st.integers(), st.integers())
def test_if_exp_matches_python(cond, a, b):
    assert ac.if_exp(cond, lambda: a, lambda: b) == (a if cond else b)


@given(st.integers(-3, 40), st.integers(1, 5))
def test_while_stmt_matches_python(n, step):
    def test(i, total):
        return i < n

    def body(i, total):
        return i + step, total + i

    i, total = 0, 0
    while i < n:
        i, total = i + step, total + i
    assert ac.while_stmt(test, body, (0, 0), ("i", "total")) == (i, total)


@given(st.lists(st.integers(-9, 9), max_size=8), st.integers(-9, 9))
def test_for_stmt_with_extra_test_matches_python_break(items, stop):
    def body(item, seen, broke):
        return seen + [item], item == stop

    def extra_test(seen, broke):
        return not broke

    seen, broke = ac.for_stmt(items, extra_test, body, ([], False), ("seen", "broke"))
    expected = []
    for item in items:
        expected.append(item)
        if item == stop:
            break
    assert seen == expected


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(-4, 4, allow_nan=False), min_size=3, max_size=3),
       st.floats(-2, 2, allow_nan=False))
def test_staged_if_stmt_matches_python(data, threshold):
    def f(x, t):
        def if_true(y):
            return (x * 2,)

        def if_false(y):
            return (x - t,)

        return ac.if_stmt(x.sum() > t, if_true, if_false, (ac.Undefined("y"),), ("y",))[0]

    x, t = torch.tensor(data), torch.tensor(threshold)
    graph = make_fx(f, tracing_mode="fake")(torch.zeros(3), torch.tensor(0.0))
    expected = x * 2 if x.sum() > t else x - t
    torch.testing.assert_close(graph(x, t), expected)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 30))
def test_staged_while_stmt_matches_python(n):
    def f(limit):
        return ac.while_stmt(lambda i, s: i < limit, lambda i, s: (i + 1, s + i),
                             (0, 0), ("i", "s"))

    graph = make_fx(f, tracing_mode="fake")(torch.tensor(3))
    i, s = graph(torch.tensor(n))
    assert (i.item(), s.item()) == (n, sum(range(n)))


def test_runtime_tells_classes_apart_by_identity():
    # The runtime runs under dynamo on any value a program holds; `type(v) in (bool, int)`
    # compares classes with `==`, which dynamo cannot trace for an opaque class such as
    # torch.Generator's ("Missing richcompare_impl override"): autoconv_runtime.identity.type_in.
    import pathlib
    import re

    root = pathlib.Path(ac.__file__).parent
    found = [f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py")
             if path.name != "identity.py"  # (its docstring shows the test)
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\btype\([^()]*\) (not )?in\b", line.split("#")[0])]
    assert found == []


def test_flattening_without_pytree_matches_pytree():
    # staging/torch.py flattens a statement's state of leaves and one-level nodes itself
    # (dynamo traces pytree's flattening step by step: docs/testing.md, "Where the time
    # goes"); the leaves, their order and the values made again must be pytree's.
    from torch.utils import _pytree as pytree

    from autoconv_runtime.iteration import StagedRange
    from autoconv_runtime.lists import StagedList
    from autoconv_runtime.staging import torch as staging
    from autoconv_runtime.traced import enumerate as traced_enumerate

    t = torch.tensor([1.0, 2.0])
    fake = torch._subclasses.FakeTensorMode()
    with fake:  # a grown list flattens to its buffer and count where they are staged
        grown = StagedList(torch.zeros(4, 2), torch.tensor(1), True, "vals")
    states = [
        (t, 1, 2.5, True),
        (t, grown, 3),
        (StagedRange(torch.tensor(0), torch.tensor(5), 1), t),
        ((t, 1), [t, 2.0], {"b": t, "a": 1}, t),
        ((t, (t, 1)),),  # deeper: pytree's own
    ]
    for state in states:
        leaves, spec = staging._flatten(state)
        want = pytree.tree_leaves(state)
        assert len(leaves) == len(want) and all(a is b for a, b in zip(leaves, want))
        again = staging._unflatten(leaves, spec)
        assert pytree.tree_structure(again) == pytree.tree_structure(state)
        assert all(a is b for a, b in zip(pytree.tree_leaves(again), want))
        for value in state:
            assert all(a is b for a, b in zip(staging._leaves(value),
                                              pytree.tree_leaves(value)))
            mapped = staging._map_leaves(lambda leaf: leaf, value)
            assert pytree.tree_structure(mapped) == pytree.tree_structure(value)
    assert list(traced_enumerate("ab", 3)) == list(enumerate("ab", 3))


_CLASSES = (int, float, bool, str, list, tuple, type(None), torch.Tensor, (int, float))


@given(values, st.sampled_from(_CLASSES))
def test_type_tests_match_python(value, classinfo):
    assert ac.isinstance_(value, classinfo) == isinstance(value, classinfo)
    assert ac.type_(value) is type(value)


def test_type_tests_answer_for_the_value_staging_stands_in_for():
    # NOTE [type tests of staged values]: a number's stand-in, a symbolic number, a grown list
    from autoconv_runtime.augmented import mark
    from autoconv_runtime.lists import StagedList

    for tensor, kind in ((torch.tensor(0.5, dtype=torch.float64), float),
                         (torch.tensor(0.5), float), (torch.tensor(3), int),
                         (torch.tensor(True), bool)):
        stand_in = mark(tensor.clone())
        assert ac.type_(stand_in) is kind
        assert ac.isinstance_(stand_in, kind) and not ac.isinstance_(stand_in, torch.Tensor)
        assert ac.isinstance_(tensor, torch.Tensor)  # (an unmarked tensor is a tensor)
    grown = StagedList(torch.zeros(4), torch.tensor(1), name="vals")
    assert ac.type_(grown) is list and ac.isinstance_(grown, (list, tuple))

    def read(x):
        v, k = x.max().item(), ac.int_(x.argmax())
        return torch.tensor([ac.isinstance_(v, float), ac.isinstance_(k, int),
                             ac.type_(v) is float, ac.isinstance_(v, torch.Tensor)])

    graph = make_fx(read, tracing_mode="symbolic")(torch.tensor([1.0, 2.0]))
    assert graph(torch.tensor([1.0, 2.0])).tolist() == [True, True, True, False]


def test_no_function_dynamo_calls_for_real_is_named_like_a_builtin():
    # NOTE [names of functions dynamo calls for real] in runtime/staging/dead_probes.py: dynamo
    # installs such a function's result in the user's module under the function's name
    import builtins
    import importlib
    import pkgutil

    shadowing = []
    for info in pkgutil.walk_packages(ac.__path__, ac.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if getattr(value, "_dynamo_marked_constant", False) and hasattr(
                    builtins, getattr(value, "__name__", "")):
                shadowing.append(f"{info.name}.{value.__name__}")
    assert not shadowing
