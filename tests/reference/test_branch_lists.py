"""Reference tests: lists bound in staged branches and loops (StagedLists of a length the graph
chooses), written at traced positions and reduced with min / max.

The shapes are torch.optim.lbfgs's strong-Wolfe line search (`_strong_wolfe`, which torchmin's
BFGS calls inside its own staged loop): the bracketing loop binds `bracket = [t_prev, t]` or
`bracket = [t]` on the paths that break and leaves it unbound on the others; the zoom loop
writes `bracket[high_pos] = t` with `high_pos` chosen by a tensor and reads `min(bracket)`,
`max(bracket)`. NOTE [lists bound in branches] in runtime/staging/torch.py.
"""

import re

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import COND, Calling, assert_close, assert_same_result, count_ops, slow_compile

T = torch.tensor


def bracketing(x, t):
    f = (x * x).sum()
    t_prev, f_prev = torch.zeros(()), f
    done = False
    ls_iter = 0
    while ls_iter < 6:
        f_new = ((x - t) ** 2).sum()
        if f_new > f_prev:
            bracket = [t_prev, t]
            break
        if (f_new - 1).abs() < 0.5:
            bracket = [t]
            done = True
            break
        t_prev, f_prev = t, f_new
        t = t * 2
        ls_iter += 1
    if ls_iter == 6:
        bracket = [torch.zeros(()), t]
    return torch.stack(bracket).sum(), len(bracket), done


def bracketing_in_a_staged_loop(x):
    # (torchmin's BFGS: the line search runs in the body of the iteration's staged loop, so
    # no `if` of it can be specialised under a guard)
    t = torch.ones(())
    total = torch.zeros(())
    for _ in range(3):
        s, n, _ = bracketing(x, t)
        total = total + s + n
        if total > 100:
            break
        t = t * 0.5
    return total


_STEPS = [(T([3.0, 0.5]), T(0.25)), (T([0.5, 0.5]), T(1.0)), (T([100.0, 0.5]), T(0.1))]

LOOP_CASES = [
    (bracketing, _STEPS),
    (bracketing_in_a_staged_loop, [(x,) for x, _ in _STEPS]),
]


# (compiled in `make test-slow` only: dynamo takes minutes over the staged loop around it)
@pytest.mark.parametrize("fn, inputs", slow_compile(LOOP_CASES, ["bracketing_in_a_staged_loop"]),
                         ids=[c[0].__name__ for c in LOOP_CASES])
def test_list_first_bound_in_a_loop_on_the_paths_that_break(fn, inputs):
    # 'bracket' is unbound before the loop and bound to lists of 2 and 1 items on two break
    # paths: it was refused ("bound to a list in the true branch only") inside a staged loop,
    # and specialised under a guard (one graph per path) at the top level.
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, COND) > 0, concrete.code


def bracketing_python_numbers(x):
    # torchmin's call of torch's line search: the step and the values are Python floats
    # (`float(f)`), the first step the int 0. A list of numbers holds them as float64 (the int
    # promoted, as Python's arithmetic of them would), and its items read back as numbers: a
    # float64 0-d tensor would make `bracket[low] * s` float64 where Python gives float32.
    t = 1.0
    f = float((x * x).sum())
    t_prev, f_prev = 0, f
    ls_iter = 0
    while ls_iter < 6:
        f_new = float(((x - t) ** 2).sum())
        if f_new > f_prev:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            break
        if abs(f_new - 1) < 0.5:
            bracket = [t]
            bracket_f = [f_new]
            break
        t_prev, f_prev = t, f_new
        t = t * 2
        ls_iter += 1
    if ls_iter == 6:
        bracket = [0, t]
        bracket_f = [f, f_new]
    low = 0 if bracket_f[0] <= bracket_f[-1] else len(bracket) - 1
    s = x.sum()
    return bracket[low] * s, bracket_f[low] * s, max(bracket) * s, min(bracket_f) * s


def bracketing_numbers_then_tensors(x):
    # The step a Python float on the first trip, a float32 tensor on the later ones (torch's
    # `_cubic_interpolate` returns one): NOTE [lists of numbers that meet tensors].
    t = 1.0
    f = float((x * x).sum())
    t_prev, f_prev = 0, f
    ls_iter = 0
    while ls_iter < 6:
        f_new = float(((x - t) ** 2).sum())
        if f_new > f_prev:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            break
        if abs(f_new - 1) < 0.5:
            bracket = [t]
            bracket_f = [f_new]
            break
        t_prev, f_prev = t, f_new
        t = torch.clamp(x[1] * 0 + t * 2, max=50.0)
        ls_iter += 1
    if ls_iter == 6:
        bracket = [0, t]
        bracket_f = [f, f_new]
    low = 0 if bracket_f[0] <= bracket_f[-1] else len(bracket) - 1
    s = x.sum()
    return bracket[low] * s, bracket_f[low] * s, max(bracket) * s, min(bracket_f) * s


_NUMBER_STARTS = [(T([3.0, 0.5]),), (T([0.5, 0.5]),), (T([0.1, 0.2]),), (T([-30.0, 0.5]),)]


@pytest.mark.slow_compile  # (compiled in `make test-slow` only: minutes of dynamo)
def test_list_of_python_numbers_first_bound_in_a_loop():
    # (it was refused: "'bracket' gets items of different kinds appended: torch.int64 tensors
    # of shape () and torch.float64 tensors of shape ()", torch/optim/lbfgs.py:57 in BFGS)
    assert_same_result(bracketing_python_numbers, _NUMBER_STARTS)


def test_list_of_python_numbers_meeting_a_tensor_in_a_loop():
    # The loop is staged again with the list's rows float32. torch.compile: see below.
    assert_same_result(bracketing_numbers_then_tensors, _NUMBER_STARTS, compile=False)


@pytest.mark.slow
def test_list_of_python_numbers_meeting_a_tensor_under_compile_is_refused():
    # Dynamo cannot take back a loop it traces inside torch's operator to stage it again, so
    # the list of numbers that meets a float32 tensor is refused at the line (the fix: give
    # the list items of one kind, `t = torch.as_tensor(t)` before the loop).
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(bracketing_numbers_then_tensors), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match="'bracket' holds torch.float64 items of shape "
                                           r"\(\) \(Python numbers\), and a torch.float32"):
        compiled(*_NUMBER_STARTS[0])


def bound_on_a_break_path(x):
    i = 0
    while i < 3:
        if x[i] > 0:
            found = [x[i], x[i] * 2]
            break
        i += 1
    return torch.stack(found).sum()


def test_reading_a_list_no_path_bound_raises_as_python():
    # The empty StagedList the other paths carry is never read: its bound flag is false, and
    # the read raises UnboundLocalError as Python's does.
    f = autoconv.autoconv(bound_on_a_break_path)
    assert_close(f(T([-1.0, 2.0, 3.0])), bound_on_a_break_path(T([-1.0, 2.0, 3.0])))
    assert_close(f(T([1.0, 2.0, 3.0])), bound_on_a_break_path(T([1.0, 2.0, 3.0])))
    assert f.trace_count == 1
    with pytest.raises(UnboundLocalError, match="'found'"):
        bound_on_a_break_path(T([-1.0, -2.0, -3.0]))
    with pytest.raises(UnboundLocalError, match="'found'"):
        f(T([-1.0, -2.0, -3.0]))
    program = torch.export.export(Calling(autoconv.convert(bound_on_a_break_path)),
                                  (T([-1.0, 2.0, 3.0]),), strict=False).module()
    assert_close(program(T([1.0, 2.0, 3.0])), bound_on_a_break_path(T([1.0, 2.0, 3.0])))
    with pytest.raises(RuntimeError, match="UnboundLocalError"):
        program(T([-1.0, -2.0, -3.0]))


# --- the zoom phase: writes at traced positions, min / max -------------------------------------

def written_at_a_traced_position(x, k):
    if x.sum() > 0:
        bracket = [x[0], x[1]]
    else:
        bracket = [x[1]]
    bracket[k % len(bracket)] = x[0] * 10
    return torch.stack(bracket), len(bracket)


def min_and_max(x):
    if x.sum() > 0:
        bracket = [x[0], x[1], x[0] + x[1]]
    else:
        bracket = [x[1]]
    return max(bracket) - min(bracket), min(max(bracket) - x[0], x[0] - min(bracket))


def zoom(x):
    if x[0] > x[1]:
        bracket = [x[1], x[0]]
        bracket_f = [(x[1] - 1) ** 2, (x[0] - 1) ** 2]
    else:
        bracket = [x[0]]
        bracket_f = [(x[0] - 1) ** 2]
    done = len(bracket) < 2
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    it = 0
    while not done and it < 10:
        if abs(bracket[1] - bracket[0]) < 1e-3:
            break
        t = (bracket[0] + bracket[1]) / 2
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            t = min(bracket) + eps
        f_new = (t - 1) ** 2
        it += 1
        if f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
    return bracket[low_pos], bracket_f[low_pos], it


_X = [T([3.0, 0.5]), T([-3.0, 0.5]), T([1.0, 4.0])]

ZOOM_CASES = [
    (written_at_a_traced_position, [(x, T(k)) for x in _X for k in (0, 1)]),
    (min_and_max, [(x,) for x in _X]),
    (zoom, [(x,) for x in [*_X, T([5.0, -2.0]), T([0.7, 0.9])]]),
]


@pytest.mark.parametrize("fn, inputs", slow_compile(ZOOM_CASES, ["zoom"]),
                         ids=[c[0].__name__ for c in ZOOM_CASES])
def test_list_bound_in_branches_written_and_reduced(fn, inputs):
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, COND) > 0, concrete.code


def test_write_past_the_count_raises_as_python():
    # The buffer has room for the longest path's list: a write past the count of a shorter
    # one would land in a free row, where Python raises.
    f = autoconv.autoconv(written_at_a_traced_position)
    assert_close(f(T([3.0, 0.5]), T(1)), written_at_a_traced_position(T([3.0, 0.5]), T(1)))

    def past_the_end(x, k):
        if x.sum() > 0:
            bracket = [x[0], x[1]]
        else:
            bracket = [x[1]]
        bracket[k] = x[0]
        return torch.stack(bracket)

    g = autoconv.autoconv(past_the_end)
    assert_close(g(T([3.0, 0.5]), T(1)), past_the_end(T([3.0, 0.5]), T(1)))
    with pytest.raises(IndexError, match=re.escape("list assignment index out of range")):
        past_the_end(T([-3.0, 0.5]), T(1))
    with pytest.raises(IndexError, match=re.escape("list assignment index out of range")):
        g(T([-3.0, 0.5]), T(1))
    assert g.trace_count == 1


def grown_in_a_staged_if(x):
    vs = []
    if x.sum() > 0:
        vs.append(x * 2)
    return x + len(vs)


def test_a_list_grown_in_a_staged_if_compiles_once():
    # The probe of the branches' growth left `_PATH.conditions` set after the first call, and
    # dynamo's guard on it, unset, compiled the function again at the second: NOTE [a path's
    # conditions are never unset] in runtime/staging/torch.py
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(grown_in_a_staged_if), fullgraph=True,
                             backend="eager", dynamic=False)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for x in (T([1., 2.]), T([-1., -2.]), T([3., 0.])):
            assert_close(compiled(x.clone()), grown_in_a_staged_if(x))
