"""A staged `for` over a tensor reads its rows as Python's loop does (runtime/operators.py, NOTE
[the rows a staged loop reads]); `reversed` of a staged range; `range` / `enumerate` / `zip` of
tensors outside a `for` statement (runtime/iteration.py, NOTE [staged iterables outside a for
statement]). Found by the tester (t8 repros 9, 14, 18 and 19)."""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_result

ROWS = [torch.tensor([[1., 2.], [3., 4.]]), torch.tensor([[60., 50.], [1., -1.]]),
        torch.tensor([[1., 2.], [60., 50.]])]


# --- items updated in place: Python's items are views of the rows ---------------------------

def double_rows(x):
    x = x.clone()
    for row in x:
        row.mul_(2)
    return x


def bump_until(x):
    x = x.clone()
    for row in x:
        if row.sum() > 100:
            break
        row += 1
    return x


def test_rows_updated_in_place_through_the_item():
    # t8 repro 9: x was left unchanged ([[1, 2], [3, 4]]) in every mode.
    assert autoconv.autoconv(double_rows)(ROWS[0]).tolist() == [[2., 4.], [6., 8.]]
    assert autoconv.autoconv(bump_until)(ROWS[0]).tolist() == [[2., 3.], [4., 5.]]
    assert_same_result(bump_until, ROWS)


def rows_by_enumerate_and_zip(x, w):
    x = x.clone()
    for i, row in enumerate(x):
        row[0] = row.sum() + i
    for scale, row in zip(w, x):
        if scale < 0:
            break
        row.mul_(scale)
    return x


def test_items_of_enumerate_and_zip_updated_in_place():
    assert_same_result(rows_by_enumerate_and_zip, [
        (ROWS[0], torch.tensor([2., 3.])), (ROWS[1], torch.tensor([2., -1.])), (ROWS[2], torch.tensor([-1., 2.]))],
        compile=False)


def nested_and_listed(x):
    x = x.clone()
    out = []
    for i, row in enumerate(x):
        for v in row:  # the inner loop's items are views of the outer item's
            if v < 0:
                v.zero_()
        out.append(row * 2)  # (a list grown: this loop runs as Python over the rows)
        if i + 1 < x.shape[0]:
            x[i + 1] = x[i + 1] * 10
    return out, x


def test_nested_loops_and_a_list_grown_over_updated_rows():
    assert_same_result(nested_and_listed, [torch.tensor([[1., -2.], [-3., 4.]]),
                                           torch.tensor([[-1., 2.], [3., 4.]])], compile=False)


def argument_rows(x):
    # the caller's tensor itself: Python updates it
    for row in x:
        row.clamp_(min=0)
    return x * 1


def test_an_argument_updated_through_the_item():
    x = torch.tensor([[-1., 2.], [3., -4.]])
    f = autoconv.autoconv(argument_rows)
    assert f(x).tolist() == [[0., 2.], [3., 0.]]
    assert x.tolist() == [[0., 2.], [3., 0.]]
    assert_same_result(argument_rows, [torch.tensor([[-1., 2.], [3., -4.]])], export=False,
                       compile=False)


# --- later rows updated through the name: Python reads each row when it reaches it ----------

def carry_sum(x):
    x = x.clone()
    tot = torch.zeros(())
    for i, a in enumerate(x):
        if a < 0:
            break
        tot = tot + a
        if i + 1 < x.shape[0]:
            x[i + 1] = x[i + 1] + a
    return tot


def carry_nobreak(x):
    x = x.clone()
    tot = torch.zeros(())
    for i, a in enumerate(x):
        tot = tot + a
        if i + 1 < x.shape[0]:
            x[i + 1] = x[i + 1] + a
    return tot


def test_a_later_row_updated_through_the_name():
    # t8 repro 19: 6 (the rows as they were before the loop) instead of 10.
    x = torch.tensor([1., 2., 3.])
    assert autoconv.autoconv(carry_sum)(x).item() == 10.
    assert autoconv.autoconv(carry_nobreak)(x).item() == 10.
    assert_same_result(carry_sum, [x, torch.tensor([1., -5., 3.]), torch.tensor([-1., 2., 3.])])
    assert_same_result(carry_nobreak, [x, torch.tensor([0., 5., -3.])], export=False,
                       compile=False)


def rows_of_an_input_updated_in_place(x):
    x = x.clone()
    tot = torch.zeros(())
    for a in x:
        tot = tot * 2 + a
        x.add_(1)
    return tot, x


def test_rows_of_a_tensor_the_body_updates_in_place():
    assert_same_result(rows_of_an_input_updated_in_place,
                       [torch.tensor([1., 2., 3.]), torch.tensor([0., -4., 2.])], compile=False)


# --- where Python's order cannot be kept: refused ---------------------------------------

def item_and_name_updated(x):
    x = x.clone()
    tot = torch.zeros(())
    for row in x:
        row.mul_(2)
        tot = tot + x.sum()
    return tot


def updated_and_rebound(x):
    tot = torch.zeros(())
    for a in x:
        tot = tot + a
        x += 1
        x = x * 2
    return tot


@pytest.mark.parametrize("fn", [item_and_name_updated, updated_and_rebound])
def test_an_order_of_updates_a_staged_loop_cannot_keep_is_refused(fn):
    with pytest.raises(StagingError, match="test_loop_items.py:[0-9]+: .*for loop"):
        autoconv.autoconv(fn)(torch.tensor([1., 2.]))


# --- reversed(range(n)) with a traced n ---------------------------------------------------

def digits_from_end(x, n):
    acc = torch.zeros(())
    for i in reversed(range(n)):
        if x[i] < 0:
            break
        acc = acc * 10 + x[i]
    return acc


def odd_from_end(x, n):
    acc = torch.zeros(())
    for i in reversed(range(1, n, 2)):
        acc = acc * 10 + x[i]
    return acc


def test_reversed_range_of_a_traced_bound():
    # t8 repro 14: "TypeError: 'StagedRange' object is not reversible".
    x = torch.tensor([1., 2., 3., 4., 5.])
    assert autoconv.autoconv(digits_from_end)(x, torch.tensor(5)).item() == 54321.
    assert_same_result(digits_from_end, [(x, torch.tensor(5)), (x, torch.tensor(0)),
                                         (torch.tensor([1., -2., 3., 4., 5.]), torch.tensor(4))])
    assert_same_result(odd_from_end, [(x, torch.tensor(5)), (x, torch.tensor(4)),
                                      (x, torch.tensor(1))], export=False, compile=False)


def reversed_enumerate(x):
    for i, v in reversed(enumerate(x)):
        x = x + v
    return x


def test_reversed_enumerate_is_a_type_error_as_in_python():
    with pytest.raises(TypeError, match="'enumerate' object is not reversible"):
        reversed_enumerate(torch.ones(2))
    with pytest.raises(TypeError, match="'enumerate' object is not reversible"):
        autoconv.autoconv(reversed_enumerate)(torch.ones(2))


# --- enumerate / zip / range of tensors outside a for statement ---------------------------

def weighted(x, weights):
    return sum(w * a for w, a in zip(weights, x))


def index_map(x):
    return len({i: a for i, a in enumerate(x)})


def py_argmax(x):
    return max(enumerate(x), key=lambda p: p[1])[0]


def listed(x):
    return [i * v for i, v in list(enumerate(x, 1))]


def test_enumerate_and_zip_in_comprehensions_and_calls():
    # t8 repro 18: "TypeError: 'StagedZip' object is not iterable" (autoconv's own types).
    x = torch.tensor([1., 2., 3.])
    assert autoconv.autoconv(weighted)(x, [0.5, 0.25, 0.25]).item() == 1.75
    assert autoconv.autoconv(index_map)(x) == 3
    assert_same_result(weighted, [(x, [0.5, 0.25, 0.25])], staged=False)
    assert_same_result(index_map, [(x,)], staged=False, export=False)
    assert_same_result(py_argmax, [torch.tensor([1., 5., 3.]), torch.tensor([7., 5., 3.]),
                                   torch.tensor([1., 5., 9.])], staged=False)
    assert_same_result(listed, [x], staged=False, compile=False)


def range_listed(x, n):
    return [x[i] for i in range(n)]


def test_a_traced_range_outside_a_for_statement_is_refused():
    with pytest.raises(StagingError, match="range\\(\\) outside a for statement.*`for` statement"):
        autoconv.autoconv(range_listed)(torch.ones(3), torch.tensor(2))
