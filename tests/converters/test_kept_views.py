"""The kept-view pass: `ac.check_kept_view(...)` before an in-place update of a view a compound
statement kept, or of its tensor, only where the other is read afterwards (NOTE [views kept by
a staged statement] in runtime/staged_aliases.py)."""

import autoconv
from support import function_from_source


def _checked(source: str) -> list:
    """The user's statements (as converted) that a kept-view check precedes, in order."""
    lines = [line.strip() for line in
             autoconv.to_code(function_from_source(source)).strip().splitlines()]
    return [lines[i + 1] for i, line in enumerate(lines)
            if line.startswith("ac.check_kept_view(")
            and not lines[i + 1].startswith("ac.check_kept_view(")]


_LOOP = """
    def f(x):
        m = torch.tensor(-1e9)
        best = x[0]
        for v in x:
            if v.sum() > m:
                best = v
                m = v.sum()
"""


def test_an_update_of_a_kept_item_with_the_tensor_read_after_is_checked():
    assert _checked(_LOOP + "        best.mul_(2)\n        return best, x\n") == ["best.mul_(2)"]


def test_an_update_of_the_tensor_with_the_kept_item_read_after_is_checked():
    assert _checked(_LOOP + "        x.add_(1)\n        return best\n") == ["x.add_(1)"]


def test_kept_views_only_read_rebound_or_not_read_after_are_not_checked():
    assert _checked(_LOOP + "        return best * 2, x\n") == []
    assert _checked(_LOOP + "        best = best.clone()\n        best.mul_(2)\n"
                            "        return best, x\n") == []
    assert _checked(_LOOP.replace("def f(x):", "def f(y):\n        x = y.clone()")
                    + "        best.mul_(2)\n        return best\n") == []


def test_a_list_grown_from_views_is_checked_and_one_of_copies_is_not():
    grown = """
        def f(x):
            vals = []
            for v in x:
                if v.sum() > 0:
                    vals.append(v{})
            x.add_(1)
            return vals[0]
    """
    assert _checked(grown.format("")) == ["x.add_(1)"]
    assert _checked(grown.format(".clone()")) == []


def _call_checked(source: str) -> list:
    """The converted `ac.check_kept_view_call(...)` lines of `source`."""
    return [line.strip() for line in
            autoconv.to_code(function_from_source(source)).strip().splitlines()
            if line.strip().startswith("ac.check_kept_view_call(")]


def test_a_call_given_a_kept_view_or_its_tensor_is_checked_by_its_callee():
    # (views25: the callee's source says at trace time whether it updates the argument)
    assert _call_checked(_LOOP + "        bump(x)\n        return best\n") == [
        "ac.check_kept_view_call(bump, (0,), (), best, x, 'best', 'x', 'item', 7)"]
    assert _call_checked(_LOOP + "        self.bump(t=best[0])\n        return x\n") == [
        "ac.check_kept_view_call(self.bump, (), ('t',), best, x, 'best', 'x', 'item', 7)"]


def test_calls_of_torch_builtins_and_tensor_methods_or_with_nothing_read_after_are_not():
    assert _call_checked(_LOOP + "        y = torch.mul(x, 2)\n        return best, y\n") == []
    assert _call_checked(_LOOP + "        n = len(x)\n        return best, n\n") == []
    assert _call_checked(_LOOP + "        y = x.matmul(best)\n        return best, y\n") == []
    assert _call_checked(_LOOP.replace("def f(x):", "def f(y):\n        x = y.clone()")
                         + "        bump(x)\n        return y\n") == []


def test_the_converter_records_the_parameters_a_function_updates_in_place():
    # (views26: the runtime re-parsed the callee's source; the converter's record serves it,
    # NOTE [parameters a function updates in place])
    from autoconv.conversion import parameter_updates

    f = function_from_source("""
        def f(t, u, v, *, k):
            w = t.view(-1)
            w[0] = 1.0
            for r in k:
                r.add_(1)
            helper(u[0], v=v)
            return v.sum()
    """)
    autoconv.convert(f)
    assert parameter_updates(f) == (frozenset({"t", "k"}),
                                    (("helper", 0, "u"), ("helper", "v", "v")))


def test_a_view_of_its_tensor_given_to_a_call_refreshes_a_row_read_with_a_traced_index():
    lines = [line.strip() for line in autoconv.to_code(function_from_source("""
        def f(data, k):
            c = data[k]
            bump(data.view(2, -1))
            return c
    """)).splitlines()]
    assert "ac.refresh_item_after_call(c, data, chosen, versions, '')" in lines


def test_a_held_item_updated_in_an_if_then_reading_another_name_is_checked():
    source = """
        def f(x):
            d = {{"v": x[1:]}}
            if x.sum() > 0:
                {}
            return x
    """
    lines = [line.strip() for line in autoconv.to_code(function_from_source(
        source.format('d["v"].add_(1)\n                s = x.sum()'))).splitlines()]
    assert "d_shared = ac.held_view_shared(d, (('item', 'v'),), (x,), ('x',))" in lines
    assert "ac.check_held_view(d_shared, \"d['v']\", 'd')" in lines
    # (read before the update only, or not at all: right as it is, nothing added)
    for branch in ('s = x.sum()\n                d["v"].add_(1)', 'd["v"].add_(1)'):
        code = autoconv.to_code(function_from_source(source.format(branch)))
        assert "held_view" not in code


def _module_functions(path):
    import importlib.util
    import pathlib
    import types

    path = pathlib.Path(__file__).resolve().parent.parent.parent / path
    spec = importlib.util.spec_from_file_location(f"_kept_views_corpus_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [fn for _, fn in sorted(vars(module).items()) if isinstance(fn, types.FunctionType)
            and fn.__module__ == module.__name__ and not fn.__name__.startswith("test_")]


def test_the_pass_is_skipped_only_where_it_adds_nothing(monkeypatch):
    # NOTE [kept views with nothing updated]: the pipeline skips the pass where `may_check`
    # says no; with the skip off, every function the pass changes must be one it says yes to
    # (the kept-view and in-place reference programs, whose updates are what the pass checks,
    # and the benchmark's functions, most of which it skips)
    import gast

    from autoconv import conversion, pipeline
    from autoconv.converters import kept_views

    seen = []
    transform = kept_views.KeptViewConverter.transform.__func__

    def recorded(cls, node, ctx):
        before = gast.dump(node, include_attributes=True)
        says = kept_views.may_check(node, ctx.runtime)
        node = transform(cls, node, ctx)
        seen.append((says, gast.dump(node, include_attributes=True) != before))
        return node

    monkeypatch.setattr(kept_views.KeptViewConverter, "transform", classmethod(recorded))
    monkeypatch.setattr(pipeline, "_may_check_views", lambda node, runtime: True)
    functions = (_module_functions("tests/reference/test_kept_views.py")
                 + _module_functions("tests/reference/test_in_place.py")
                 + _module_functions("benchmarks/sample_functions.py"))
    for fn in functions:
        try:
            conversion.converted_tree(fn)
        except autoconv.ConversionError:
            pass
    changed = [says for says, change in seen if change]
    assert len(changed) >= 15 and all(changed)
    # (skipped: the benchmark's five without an update, the in-place programs that only read)
    assert sum(not says for says, _ in seen) >= 20
