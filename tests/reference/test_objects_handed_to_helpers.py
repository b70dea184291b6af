"""Reference tests: an object the function hands to a helper of the user's (`helper(x, CFG)`)
is guarded on the fields the helper's code reads: a change between calls gives what Python
gives (NOTE [objects handed to helpers] in autoconv/captures.py)."""

import functools

import pytest
import torch

import autoconv

T = torch.tensor


class _Cfg:
    def __init__(self, k):
        self.k = k


CFG = _Cfg(2.0)


def _scaled(x, c):
    return x * c.k


def _hands_a_global_over(x):
    if x.sum() > 0:
        return _scaled(x, CFG)
    return x


def _hands_a_cell_over(cfg):
    def fn(x):
        if x.sum() > 0:
            return _scaled(x, cfg)
        return x
    return fn


# (the global's and the cell's `k`, read by the helper's code only, were not guarded: [2, 4]
# for Python's [5, 10] in replay; torch.compile was right)
def test_a_field_a_helper_reads_of_a_global_it_is_handed():
    CFG.k = 2.0
    function = autoconv.autoconv(_hands_a_global_over)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    CFG.k = 5.0
    assert _hands_a_global_over(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]


def test_a_field_a_helper_reads_of_a_closure_cell_it_is_handed():
    cfg = _Cfg(2.0)
    fn = _hands_a_cell_over(cfg)
    function = autoconv.autoconv(fn)
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    cfg.k = 5.0
    assert fn(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]


# NOTE [objects handed to code reached any way]: code reached other than by name (a method of
# another object, a function a dict holds, a partial, a helper past the helper depth) reads
# `c.k` of the object handed to it; each gave [2, 4] for Python's [5, 10] after `CFG.k = 5.0`
# in replay (reach56), silently.
class _Schedule:
    def step(self, c):
        return c.k


SCHEDULE = _Schedule()
HELPERS = {"k": lambda c: c.k}
PARTIAL = functools.partial(_scaled)


def _deep4(x, c):
    return x * c.k


def _deep3(x, c):
    return _deep4(x, c)


def _deep2(x, c):
    return _deep3(x, c)


def _deep1(x, c):
    return _deep2(x, c)


def _deep0(x, c):
    return _deep1(x, c)


def _to_a_method(x):
    if x.sum() > 0:
        return x * SCHEDULE.step(CFG)
    return x


def _to_a_dict_held_function(x):
    if x.sum() > 0:
        return x * HELPERS["k"](CFG)
    return x


def _to_a_partial(x):
    if x.sum() > 0:
        return PARTIAL(x, CFG)
    return x


def _past_the_helper_depth(x):
    if x.sum() > 0:
        return _deep0(x, CFG)
    return x


class _Scheduled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.schedule = _Schedule()

    def forward(self, x):
        if x.sum() > 0:
            return x * self.schedule.step(CFG)
        return x


def _check_across_a_change(function, plain):
    CFG.k = 2.0
    assert function(T([1.0, 2.0])).tolist() == [2.0, 4.0]
    CFG.k = 5.0
    assert plain(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([1.0, 2.0])).tolist() == [5.0, 10.0]
    assert function(T([-1.0, -2.0])).tolist() == [-1.0, -2.0]


# (past the helper depth: right in most processes; in one in six, by the order of a set of
# names under the process's string hashes (PYTHONHASHSEED=6, the session 56 lead's full run),
# `_deep3` was searched first with no steps left and never again: [2, 4] for Python's [5, 10]
# (NOTE [code reached at several depths] in autoconv/captures.py))
@pytest.mark.parametrize("fn", [_to_a_method, _to_a_dict_held_function, _to_a_partial,
                                _past_the_helper_depth], ids=lambda fn: fn.__name__)
def test_a_field_read_by_code_reached_other_than_by_name(fn):
    _check_across_a_change(autoconv.autoconv(fn), fn)


def _chain_past_the_helper_depth(tag: str):
    """`fn` handing a global config down five helpers named `{tag}0` ... `{tag}4`, the last
    reading `c.k`, in a module namespace of their own."""
    table = {"CFG": _Cfg(2.0)}
    source = [f"def {tag}4(x, c):\n    return x * c.k\n"]
    source += [f"def {tag}{i}(x, c):\n    return {tag}{i + 1}(x, c)\n" for i in range(4)]
    source.append(f"def fn(x):\n    if x.sum() > 0:\n        return {tag}0(x, CFG)\n"
                  "    return x\n")
    exec("".join(source), table)  # noqa: S102 (the names vary the order of a set of names)
    return table


# The order the search met `_deep3` in was the order of a set of names: which process failed
# depended on its string hashes, so one name reproduced it in one process in six. Ninety-six
# chains of other names give every order in one process (before the fix, about one chain in
# ten missed `CFG.k` under any hash seed tried, 0, 1, 2): the field is guarded in each. (The
# chains are made by `exec`, which autoconv cannot convert: their guards are read from the
# search itself; `_past_the_helper_depth` above is the same shape end to end.)
def test_a_field_past_the_helper_depth_is_guarded_whatever_order_the_search_meets_it_in():
    from autoconv.captures import Places

    missed = [tag for tag in (f"_h{i}_" for i in range(96))
              if "the global CFG.k" not in Places(_chain_past_the_helper_depth(tag)["fn"]).values]
    assert missed == []


def test_a_field_read_by_a_method_of_a_submodule_of_the_module():
    module = _Scheduled()
    _check_across_a_change(autoconv.autoconv(module), module)


def test_a_field_read_by_a_method_of_another_object_under_torch_compile():
    torch._dynamo.reset()
    _check_across_a_change(
        torch.compile(autoconv.convert(_to_a_method), fullgraph=True), _to_a_method)


# NOTE [code reached at any depth] in autoconv/captures.py: the search stopped three helpers
# down. Ten helpers in one module handing `CFG` down (or the last reading the global itself),
# and four in four modules of their own (`m9.d` -> `m10.d` -> `m11.d` -> `m12.d`, the last
# returning `x * c.k`): after `CFG.k = 5.0` replay gave the traced [2, 4] for Python's
# [5, 10], silently (deep57).
def _ten_helpers_down(tag: str, handed: bool):
    """The first of ten helpers `{tag}0` ... `{tag}9`, the last returning `x * c.k` of the config
    handed down (`handed`) or `x * CFG.k` of the global itself (made by `exec`: ten short
    functions each way)."""
    arguments, read = ("x, c", "c") if handed else ("x", "CFG")
    source = [f"def {tag}9({arguments}):\n    return x * {read}.k\n"]
    source += [f"def {tag}{i}({arguments}):\n    return {tag}{i + 1}({arguments})\n"
               for i in range(9)]
    exec("".join(source), globals())  # noqa: S102 (this module's CFG)
    return globals()[f"{tag}0"]


def _helpers_in_four_modules():
    """`m9.d`, each module's `d` calling the next one's, `m12.d` returning `x * c.k`."""
    import types

    module = types.ModuleType("_m12")
    exec("def d(x, c):\n    return x * c.k\n", vars(module))  # noqa: S102
    for i in (11, 10, 9):
        outer = types.ModuleType(f"_m{i}")
        outer.inner = module
        exec("def d(x, c):\n    return inner.d(x, c)\n", vars(outer))  # noqa: S102
        module = outer
    return module


_FAR_HANDED = _ten_helpers_down("_handed", handed=True)
_FAR_GLOBAL = _ten_helpers_down("_global", handed=False)
_M9 = _helpers_in_four_modules()


def _ten_down_handed(x):
    if x.sum() > 0:
        return _FAR_HANDED(x, CFG)
    return x


def _ten_down_reading_the_global(x):
    if x.sum() > 0:
        return _FAR_GLOBAL(x)
    return x


def _four_modules_down(x):
    if x.sum() > 0:
        return _M9.d(x, CFG)
    return x


@pytest.mark.parametrize("fn", [_ten_down_handed, _ten_down_reading_the_global,
                                _four_modules_down], ids=lambda fn: fn.__name__)
def test_a_field_read_any_number_of_helpers_down(fn):
    _check_across_a_change(autoconv.autoconv(fn), fn)
