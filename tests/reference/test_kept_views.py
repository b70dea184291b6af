"""Views a staged statement keeps (a loop's item, `x[i]`, a list grown from them), then updated
in place, or their tensor updated in place, with the other read afterwards: Python shares the
memory, the graph holds a copy (NOTE [views kept by a staged statement] in
runtime/staged_aliases.py). Refused at the update's line in autoconv's replay, torch.export and
torch.compile(fullgraph=True); kept views only read, cloned, or rebound give Python's values.
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_exactly

T = torch.tensor
ROWS = [(T([[1., 2.], [5., 6.], [3., 4.], [-1., -1.]]),),
        (T([[7., 2.], [5., 6.], [3., 4.], [-1., -1.]]),),
        (T([[1., 2.], [-5., 6.], [3., 4.], [-1., -1.]]),)]


def _run(fn, args, mode):
    args = tuple(a.clone() for a in args)
    if mode == "replay":
        return autoconv.autoconv(fn)(*args)
    if mode == "export":
        return torch.export.export(Calling(autoconv.convert(fn)), args, strict=False).module()(
            *args)
    torch._dynamo.reset()
    return torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(*args)


# --- refused: a kept view, or its tensor, updated in place and the other read after ---------

def best_item_updated(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v
            m = v.sum()
    best.mul_(2)  # (x, the caller's, is read after)
    return best, x


def best_item_then_a_row_updated(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v
            m = v.sum()
    x[0] += 1
    return best, x


def best_item_then_the_tensor_updated(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v
            m = v.sum()
    x.add_(1)
    return best, x


def grown_views_then_the_tensor_updated(x):
    vals = []
    i = 0
    while x[i].sum() > 0:
        vals.append(x[i])
        i += 1
    x.add_(1)
    return vals[0], x


def grown_views_then_an_item_updated(x):
    vals = []
    i = 0
    while x[i].sum() > 0:
        vals.append(x[i])
        i += 1
    vals[0].mul_(2)
    return vals[0], x


def grown_items_then_the_tensor_updated(x):
    vals = []
    for v in x:
        if v.sum() > 0:
            vals.append(v)
    x.add_(1)
    return vals[0], x


_ITEM = r"`best` is an item of `x` in Python \(bound on line {bound}\), sharing its memory"
_LIST = r"`vals` holds views of `x` in Python \(appended on line {bound}\)"


@pytest.mark.parametrize("mode", ["replay", "export", "compile"])
@pytest.mark.parametrize("fn, bound, at, words", [
    (best_item_updated, 5, 7, _ITEM + r".*Clone it where it is kept"),
    (best_item_then_a_row_updated, 5, 7, _ITEM),
    (best_item_then_the_tensor_updated, 5, 7, _ITEM),
    (grown_views_then_the_tensor_updated, 4, 6, _LIST + r".*`vals.append\(x\[i\].clone\(\)\)`"),
    (grown_views_then_an_item_updated, 4, 6, _LIST),
    (grown_items_then_the_tensor_updated, 4, 5, _LIST),
], ids=lambda v: getattr(v, "__name__", ""))
def test_an_update_of_a_kept_view_or_its_tensor_is_refused_at_the_line(fn, bound, at, words,
                                                                        mode):
    # (views24: silently wrong in every mode; `best` missed `x`'s update or `x` missed
    # `best`'s, on every input where the loop kept a row)
    first = fn.__code__.co_firstlineno
    words = words.format(bound=first + bound)
    with pytest.raises(StagingError, match=rf"test_kept_views.py:{first + at}: .*{words}"):
        _run(fn, ROWS[0], mode)


# --- right as they are: no update follows, a copy is kept, the view rebound -----------------

def best_item_only_read(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v
            m = v.sum()
    return best * 2, x


def best_item_cloned_then_updated(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v.clone()
            m = v.sum()
    best.mul_(2)
    return best, x


def best_item_of_a_local_copy_updated(x):
    y = x.clone()
    m = torch.tensor(-1e9)
    best = y[0]
    for v in y:
        if v.sum() > m:
            best = v
            m = v.sum()
    best.mul_(2)  # (`y` is not read after)
    return best


def best_item_rebound_then_updated(x):
    m = torch.tensor(-1e9)
    best = x[0]
    for v in x:
        if v.sum() > m:
            best = v
            m = v.sum()
    best = best * 1
    best.mul_(2)
    return best, x


def grown_copies_then_the_tensor_updated(x):
    vals = []
    for v in x:
        if v.sum() > 0:
            vals.append(v.clone())
    x.add_(1)
    return torch.stack(vals), x


def item_alias_updated_in_its_loop(x):
    for v in x:
        r = v
        r.mul_(2)
    return x


def item_of_a_python_loop_updated(x):
    rows = [x[0], x[1]]
    best = rows[0]
    for r in rows:
        best = r
    best.mul_(2)
    return best, x


@pytest.mark.parametrize("fn", [
    best_item_only_read, best_item_cloned_then_updated, best_item_of_a_local_copy_updated,
    best_item_rebound_then_updated, grown_copies_then_the_tensor_updated,
    item_alias_updated_in_its_loop, item_of_a_python_loop_updated,
], ids=lambda f: f.__name__)
def test_kept_views_without_a_shared_update_give_pythons_values(fn):
    assert_same_exactly(fn, ROWS)
