"""Reference tests: brk53b (issue 10), breaking what Session 53 merged: guarded graphs that
draw or write (tester53), calls in other threads during a trace (lock53), the collector's
pause during a conversion (conv53)."""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError

T = torch.tensor


class Reversed:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, y):
        return -self.fn(y)


def double(y):
    return 2 * y


COUNT = torch.zeros(())


def writes_a_global_before_choosing_a_callable(x):
    COUNT.add_(1)
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    return fn(x) + COUNT


def closure_writing_before_choosing_a_callable():
    count = torch.zeros(())

    def step(x):
        count[()] += 1
        fn = double
        if x.sum() > 0:
            fn = Reversed(fn)
        return fn(x) + count

    return step


@pytest.mark.parametrize("make", [lambda: writes_a_global_before_choosing_a_callable,
                                  closure_writing_before_choosing_a_callable],
                         ids=["global", "closure"])
def test_a_captured_tensor_written_before_a_specialised_if_is_refused(make):
    # (was silently wrong: the graph traced for one path wrote COUNT, its guard failed and the
    # other path's graph wrote it again: [-8., -8.] and COUNT 2 for Python's [-9., -9.] and 1)
    fn = make()
    function = autoconv.autoconv(fn)
    with pytest.raises(StagingError, match="or to a tensor it captures") as caught:
        function(T([-5., -5.]))
    assert caught.value.lineno == fn.__code__.co_firstlineno + 3


def writes_a_global_after_choosing_a_callable(x):
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    COUNT.add_(1)
    return fn(x) + COUNT


def writes_its_own_constant_before_choosing_a_callable(x):
    buf = torch.tensor([1., 2.])
    buf.add_(1)
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    return fn(x) + buf


@pytest.mark.parametrize("fn", [writes_a_global_after_choosing_a_callable,
                                writes_its_own_constant_before_choosing_a_callable])
def test_a_write_a_failing_guard_cannot_repeat_is_still_specialised(fn):
    # a write after the guard, or to a tensor the function makes, happens once either way
    function = autoconv.autoconv(fn)
    for x in (T([5., 5.]), T([-5., -5.]), T([5., 5.])):
        COUNT.zero_()
        expected, count = fn(x), COUNT.item()
        COUNT.zero_()
        assert torch.equal(function(x), expected)
        assert COUNT.item() == count
    assert function.trace_count == 2


STORE = torch.zeros(2)


def overwrites_a_global_before_choosing_a_callable(x):
    STORE.copy_(x)
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    return fn(x) + STORE


def overwrites_a_global_from_itself_before_choosing_a_callable(x):
    STORE.copy_(STORE * 2 + x)
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    return fn(x) + STORE


def reads_a_global_then_overwrites_it_before_choosing_a_callable(x):
    old = STORE * 1
    STORE.fill_(3.0)
    fn = double
    if x.sum() > 0:
        fn = Reversed(fn)
    return fn(x) + old


def test_an_overwrite_a_failing_guard_repeats_alike_is_specialised():
    # view54 (NOTE [writes a failing guard repeats]): `STORE.copy_(x)` before the `if` leaves
    # the same STORE after a second run; brk53b's refusal counted it (and with it tester52's
    # `holder.flat.copy_(x)`): now one graph per path, Python's values and STORE
    fn = overwrites_a_global_before_choosing_a_callable
    function = autoconv.autoconv(fn)
    for x in (T([5., 5.]), T([-5., -5.]), T([5., 1.])):
        STORE.zero_()
        expected, stored = fn(x), STORE.clone()
        STORE.zero_()
        assert torch.equal(function(x), expected)
        assert torch.equal(STORE, stored)
    assert function.trace_count == 2


@pytest.mark.parametrize("fn", [overwrites_a_global_from_itself_before_choosing_a_callable,
                                reads_a_global_then_overwrites_it_before_choosing_a_callable],
                         ids=["from-itself", "read-first"])
def test_an_overwrite_a_failing_guard_would_not_repeat_alike_is_refused(fn):
    # (a second run would double STORE again, or `old` would read the first run's 3s)
    STORE.zero_()
    function = autoconv.autoconv(fn)
    with pytest.raises(StagingError, match="or to a tensor it captures") as caught:
        function(T([-5., -5.]))
    # (the `if` line)
    assert caught.value.lineno == fn.__code__.co_firstlineno + {
        overwrites_a_global_from_itself_before_choosing_a_callable: 3}.get(fn, 4)


# --- inference tensors in staged loops (NOTE [inference tensors' versions]) ---------------------

def sums_rows(x):
    acc = torch.zeros(x.shape[1])
    for row in x:
        if row.sum() > 0:
            acc = acc + row
        else:
            acc = acc - row
    return acc


def doubles_rows_in_place(x):
    acc = torch.zeros(x.shape[1])
    for row in x:
        row.mul_(2)
        if row.sum() > 0:
            acc += row
    return acc, x


@pytest.mark.parametrize("fn", [sums_rows, doubles_rows_in_place])
@pytest.mark.parametrize("inputs", ["inference", "normal"])
def test_a_loop_over_rows_under_inference_mode_is_python(fn, inputs):
    # (was refused: torch's "Inference tensors do not track version counter" from the loop's
    # items, then "a tensor held under two names ... is rebound" for an UNSEEN version)
    def make():
        return [T([[1., 2.], [-3., -4.], [5., -9.]]), T([[-1., 2.], [3., -4.], [5., 9.]])]

    with torch.inference_mode():
        function = autoconv.autoconv(fn)
        xs, ys = (make(), make()) if inputs == "inference" else (None, None)
    if xs is None:
        xs, ys = make(), make()
    with torch.inference_mode():
        for x, y in zip(xs, ys):
            expected, got = fn(x), function(y)
            for e, g in zip(torch.utils._pytree.tree_leaves((expected, x)),
                            torch.utils._pytree.tree_leaves((got, y))):
                assert torch.equal(e, g)


def updates_an_aliased_item_then_rebinds(x):
    params = [x]
    i = torch.tensor(0)
    while i < 3:
        params[0].add_(1)
        x = x * 2
        i += 1
    return params[0], x


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_an_item_updated_then_rebound_under_inference_mode_is_refused(mode):
    # (the tracer rebinds an updated tensor to its update's node: read as not written, the
    # loop gave x [8., 16.] for Python's [16., 24.])
    with mode():
        with pytest.raises(StagingError, match="is rebound under one of them"):
            autoconv.autoconv(updates_an_aliased_item_then_rebinds)(T([1., 2.]))


def reads_an_aliased_item_in_a_staged_if(x):
    params = [x]
    i = T(0)
    while i < 3:
        if params[0].sum() > 0:
            x = x * 2
        else:
            x = x + 1
        i += 1
    return params[0], x


def updates_an_aliased_item_in_a_staged_if(x):
    params = [x]
    i = T(0)
    while i < 3:
        if i > 0:
            params[0].add_(1)
        x = x * 2
        i += 1
    return params[0], x


@pytest.mark.parametrize("sign", [1., -1.])
def test_an_aliased_item_read_by_a_staged_if_under_inference_mode_is_python(sign):
    # (the body's graph holds a cond taking the item: its branches were read as written by
    # asking a branch's graph for each op's name, a TypeError)
    with torch.inference_mode():
        x = T([1., 2.]) * sign
        expected = reads_an_aliased_item_in_a_staged_if(x.clone())
        got = autoconv.autoconv(reads_an_aliased_item_in_a_staged_if)(x)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)


def test_an_aliased_item_updated_in_a_staged_if_under_inference_mode_is_refused():
    with torch.inference_mode():
        with pytest.raises(StagingError, match="is rebound under one of them"):
            autoconv.autoconv(updates_an_aliased_item_in_a_staged_if)(T([1., 2.]))
