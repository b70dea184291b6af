"""Reference tests: builtins and torch functions that turn tensors into Python values.

`len`, `min`, `max`, `sum`, `any`, `all`, `bool`, `int`, `float`, `torch.equal`,
`torch.allclose`, `torch.is_nonzero` (and the tensor methods of those names), and `.item()` /
`.tolist()` results used in conditions.
Each function's inputs take different paths, so a graph that baked the traced value fails.
"""

import pytest
import torch

import autoconv
from support import (COND, WHILE_LOOP, assert_same_exactly, assert_same_result, count_ops,
                     slow_compile)

T = torch.tensor


# --- the examples --------------------------------------------------------------------

def stack_if_any(x, n):
    # len of a list grown under tensor control flow is its count
    vals = []
    zero = torch.zeros(())
    for i in range(n):
        if x[i] > 0:
            vals.append(x[i])
    return torch.stack(vals).sum() if len(vals) > 0 else zero


def find_roots(parent):
    # pointer jumping until nothing changes (union-find roots)
    for _ in range(4):
        parent = parent[parent]
        if torch.equal(parent[parent], parent):
            break
    return parent


def clip_scale(g):
    return g * min(1.0, g.abs().sum().reciprocal())


def tokens_before_end(ids):
    n = 0
    for i in range(ids.shape[0]):
        tok = ids[i].item()
        if tok == 2:
            break
        n += 1
    return n


# --- each builtin ----------------------------------------------------------------------------

def len_of_grown_list(x):
    vals = []
    for v in x:
        if v > 0:
            vals.append(v * 2)
    return len(vals) * 10


def bool_of_tensor(x):
    if bool(x.sum() > 0):
        return x + 1
    return x - 1


def int_of_tensor(x):
    # int truncates toward zero, as in Python
    k = int(x.sum())
    if k > 2:
        return x * 2
    return x


def float_of_tensor(x):
    f = float(x.max())
    if f < 0.5:
        return x + f
    return x


def max_of_tensor_and_number(x):
    return x * max(x.sum(), 0.0)


def min_of_two_tensors(x, y):
    return min(x.sum(), y.sum()) + 1


def min_of_vector(x):
    # Python's min: the first smallest element; NaNs after the first are skipped
    return min(x)


def max_with_key(x):
    return max(x[0], x[1], x[2], key=lambda v: v.abs())


def sum_of_vector(x):
    return sum(x) + sum(x, 10)


def any_all_of_vector(x):
    if any(x > 2):
        return x * 3
    if all(x > 0):
        return x * 2
    return x


def any_of_mixed_list(x):
    flags = [False, x.sum() > 0, x.max() > 5]
    if any(flags):
        return x + 1
    return x


def all_of_generator(x):
    if all(v > 0 for v in (x[0], x[1])):
        return x + 1
    return x


def allclose_stop(x):
    for _ in range(10):
        y = x * 0.5 + 1.0
        if torch.allclose(y, x):
            break
        x = y
    return x


def is_nonzero_test(x):
    if torch.is_nonzero(x.sum()):
        return x / x.sum()
    return x


def tensor_methods_as_conditions(x):
    # (the methods, not torch's functions: SWATS's `corrected_exp_avg.allclose(scaling)`
    # stopped in torch's DataDependentOutputException, tester39 s02)
    y = x * 0.5 + 1.0
    if y.allclose(x, rtol=1e-3):
        return x
    if x.equal(x.abs()):
        return y
    if (x - y).sum().is_nonzero():
        return x - y
    return x + y


def item_float_condition(x):
    s = x.sum().item()
    if s > 1.5:
        return x * s
    return x


def tolist_condition(x):
    a, b = x.tolist()
    if a > b:
        return x.flip(0)
    return x


def min_of_item_and_int(ids):
    k = min(ids[0].item(), 2)
    if k >= 2:
        return ids * 2
    return ids


VEC = [T([1.0, -2.0, 3.0]), T([-1.0, -2.0, -3.0]), T([0.2, 0.1, 0.0])]

CASES = [
    (stack_if_any, [(T([1.0, -2.0, 3.0]), T(3)), (T([-1.0, -2.0, -3.0]), T(3)),
                    (T([1.0, -2.0, 3.0]), T(0))]),
    (find_roots, [T([0, 0, 1, 2, 3]), T([0, 1, 2, 3, 4]), T([1, 2, 3, 4, 4])]),
    (clip_scale, [T([0.1, 0.2]), T([1.0, 3.0]), T([0.0, 0.0])]),
    (tokens_before_end, [T([1, 3, 2, 4]), T([2, 1, 1, 1]), T([1, 1, 1, 1])]),
    (len_of_grown_list, VEC),
    (bool_of_tensor, VEC),
    (int_of_tensor, [T([1.0, 1.5, 0.6]), T([1.0, 1.0, 0.9]), T([-4.0, 0.0, 0.5])]),
    (float_of_tensor, VEC),
    (max_of_tensor_and_number, VEC),
    (min_of_two_tensors, [(T([1.0, 2.0]), T([0.5])), (T([-1.0, 0.0]), T([2.0]))]),
    (min_of_vector, [T([3.0, 1.0, 2.0]), T([3.0, float("nan"), 2.0]), T([1.0, 1.0, 5.0])]),
    (max_with_key, [T([1.0, -3.0, 2.0]), T([4.0, -3.0, 2.0]), T([1.0, 1.0, -1.0])]),
    (sum_of_vector, [T([1, 2, 3], dtype=torch.int32), T([0, -2, 5], dtype=torch.int32)]),
    (any_all_of_vector, [T([1.0, 3.0]), T([1.0, 2.0]), T([-1.0, 1.0])]),
    (any_of_mixed_list, [T([1.0, 2.0]), T([-3.0, 6.0]), T([-1.0, -2.0])]),
    (all_of_generator, [T([1.0, 2.0]), T([-1.0, 2.0])]),
    (allclose_stop, [T([0.0, 1.0]), T([2.0, 2.0]), T([1.99999, 2.0])]),
    (is_nonzero_test, [T([1.0, 2.0]), T([1.0, -1.0])]),
    (tensor_methods_as_conditions, [T([2.0, 2.0]), T([0.0, 2.0]), T([-1.0, 0.0]),
                                    T([-2.0, 6.0])]),
    (item_float_condition, VEC),
    (tolist_condition, [T([1, 2]), T([2, 1]), T([3, 3])]),
    (min_of_item_and_int, [T([1, 5]), T([3, 5]), T([2, 0])]),
]


# Each kind of builtin is compiled in `make test`; these repeat one that is (int_of_tensor,
# bool_of_tensor, min_of_two_tensors, any_all_of_vector, item_float_condition) (slow_compile).
COMPILED_IN_SLOW = ["float_of_tensor", "is_nonzero_test", "max_of_tensor_and_number",
                    "all_of_generator", "min_of_item_and_int"]


@pytest.mark.parametrize("fn, inputs", slow_compile(CASES, COMPILED_IN_SLOW),
                         ids=[c[0].__name__ for c in CASES])
def test_builtin_on_traced_values(fn, inputs):
    assert_same_result(fn, inputs, staged=False)


def test_condition_on_item_is_one_cond():
    cf = autoconv.autoconv(tokens_before_end).get_concrete_function(T([1, 3, 2, 4]))
    assert count_ops(cf.graph_module, COND, WHILE_LOOP) >= 1, cf.code


def test_builtins_of_python_values_are_the_builtins():
    def plain(xs):
        return len(xs), min(xs), max(xs, key=abs), sum(xs), any(xs), all(xs), int(2.5), \
            float(3), bool(0), min(3, 4, default=None) if False else min(3, 4)

    converted = autoconv.convert(plain)
    assert converted([3, -4, 1]) == plain([3, -4, 1])


def test_len_of_tensor_under_tracer_is_its_size():
    def f(x):
        return x * len(x)

    assert_same_result(f, [T([1.0, 2.0])], staged=False)


def test_min_keeps_a_first_nan_as_python_does():
    f = autoconv.autoconv(min_of_vector)
    assert torch.isnan(f(T([float("nan"), 1.0, 2.0])))
    assert f(T([3.0, float("nan"), 2.0])) == 2.0


def test_min_of_vectors_is_ambiguous_as_in_python():
    from autoconv_runtime import StagingError

    def f(x, y):
        return min(x, y)

    with pytest.raises(RuntimeError):
        f(T([1.0, 2.0]), T([2.0, 1.0]))
    with pytest.raises(StagingError, match="ambiguous"):
        autoconv.autoconv(f)(T([1.0, 2.0]), T([2.0, 1.0]))


def arange_to_an_item(x):
    n = torch.ceil(x.max()).item()
    return torch.arange(0.5, n, 0.5) * x.sum()


def test_arange_to_an_item_has_the_length_the_value_gives():
    # `.item()` of a traced tensor is a symbolic float, which torch.arange fails on inside torch
    # under make_fx's fake tensors ("INTERNAL ASSERT FAILED ... dispatch_on_subclass"; tester
    # t9 repro 10, torchdiffeq's fixed-grid solvers); its length is a symbolic int now.
    assert_same_result(arange_to_an_item, [T([1.0, 2.2]), T([0.3, 4.0]), T([0.2, 0.7])],
                       staged=False)


def mean_of_positives(x):
    # tester t13 repro 26 (kornia's match_snn: `if len(match_dists) == 0:`)
    pos = x[x > 0]
    if len(pos) == 0:
        return torch.zeros(())
    return pos.sum() / len(pos)


def test_len_of_a_tensor_of_data_dependent_length_is_its_size():
    # It was refused as asking for a traced tensor's value, where `.numel()` and `.shape[0]`
    # were staged
    assert_same_result(mean_of_positives, [torch.tensor([1.0, -2.0, 3.0]),
                                           torch.tensor([-1.0, -2.0, -3.0])], staged=False)


def clamped_by_a_carried_float(x):
    lo = 0.0
    y = x
    while y.sum() < 10:
        y = y * 2
        lo = lo + 0.5
    if y.sum() > 15:
        r = min(max(y.sum() - 15, lo), 100.0)
    else:
        r = y.sum() * 0
    return r


def test_min_max_of_a_tensor_and_a_carried_number_keep_the_tensors_dtype():
    # Python gives the float32 tensor or the float; the graph's slot takes the dtype torch gives
    # the tensor next to that number (float32), as in torch.optim.lbfgs's _cubic_interpolate:
    # `min(max(min_pos, lo), hi)` was float64 and the branches' dtypes differed (a StagingError).
    # Under torch.compile the loop's `lo` is not known as a number after it: still refused.
    assert_same_result(clamped_by_a_carried_float, [T([1., 2.]), T([3., 4.]), T([20., 1.])],
                       compile=False)


# --- builtins after torch.export replaced them (tester t14 repro 19) ---------------------------

def floored_scale(x, eps: float = 1e-8):
    # kornia's rotation_matrix_to_quaternion: `radicand_floor = max(eps, 0.0)` on a default
    floor = max(eps, 0.0)
    if x.sum() > floor:
        return x * min(2.0, 3.0, key=abs)
    return x


class _LibraryCond(torch.nn.Module):
    # a library's own torch.cond: non-strict export has dynamo trace it while `max` and `min`
    # are export's replacements
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: x + 1, lambda x: x - 1, (x,))


def test_min_max_compile_after_an_export_that_ran_dynamo():
    # Dynamo's set of constant-foldable builtins, built during that export, held export's
    # replacements and not `max`: the later compile raised "invalid call to builtin op handler"
    # on `max(eps, 0.0)` (NOTE [builtins replaced while torch.export runs]).
    from torch._dynamo.variables.builtin import BuiltinVariable

    converted = autoconv.convert(floored_scale)  # (installs autoconv's torch fixes)
    BuiltinVariable._constant_fold_functions.cache_clear()  # (as in a fresh process)
    torch.export.export(_LibraryCond(), (T([1.0, 2.0]),), strict=False)
    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True, backend="eager")
    for x in (T([1.0, 2.0]), T([-1.0, -2.0])):
        torch.testing.assert_close(compiled(x), floored_scale(x))
    assert_same_result(floored_scale, [(T([1.0, 2.0]),), (T([-1.0, -2.0]),)])


def max_minus_min_of_a_stacked_grown_list(ids):
    out = []
    for t in ids:
        if t > 0:
            out.append(t)
    res = torch.stack(out)
    # (tester21: `max(res)` of a traced tensor listed its rows, asking for a length only the
    # graph knows, and was refused with a message about .item())
    return max(res) - min(res)


def test_min_max_of_a_tensor_whose_length_the_graph_knows():
    assert_same_result(max_minus_min_of_a_stacked_grown_list,
                       [(torch.tensor([1, 5, -1, 3]),), (torch.tensor([-1, 2, -3, -4]),),
                        (torch.tensor([7, 6, 5, 9]),)])


# --- min / max of numbers read from tensors (tester22 s18) -------------------------------------

def adaptive_heun(y, k, t_end_t):
    # an adaptive-step integrator with Python-float time and step
    t_end = float(t_end_t)
    t = 0.0
    h = 0.1
    tol = 1e-3
    accepted = 0
    while t < t_end:
        h = min(h, t_end - t)
        k1 = -k * y
        y_e = y + h * k1
        y_h = y + 0.5 * h * (k1 - k * y_e)
        err = (y_h - y_e).abs().max()
        if err <= tol:
            y = y_h
            t += h
            accepted += 1
        fac = 0.9 * (tol / max(float(err), 1e-12)) ** 0.5
        h = h * min(2.0, max(0.2, fac))
    return y, torch.tensor(t, dtype=torch.float64), torch.tensor(h, dtype=torch.float64), \
        torch.tensor(accepted)


_HEUN = [(T([1.0]), T(1.0), T(1.0)), (T([2.0]), T(5.0), T(0.7))]


def test_min_of_carried_floats_then_updated_is_no_alias():
    # `h = min(h, t_end - t)` of floats, then `t += h`: refused in replay and export as an
    # in-place update of a tensor chosen by min(...) (numbers are never aliased), because
    # `max(float(err), 1e-12)` gave a marked tensor whose plain arithmetic lost the mark and
    # made `h` a tensor on some paths
    assert_same_result(adaptive_heun, _HEUN)


def test_min_max_of_symbolic_floats_compute_pythons_float_ops():
    # `(tol / max(float(err), 1e-12)) ** 0.5` ran as torch's reciprocal-multiply and pow of a
    # 0-d float64: h drifted from Python's in its last bits (0.03139562306903868 for
    # ...847). Exact equality, in every mode (NOTE [min and max of symbolic numbers]).
    assert_same_exactly(adaptive_heun, _HEUN)
