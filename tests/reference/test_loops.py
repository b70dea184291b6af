"""Reference tests: `while`, `for` and their `else` clauses.

The inputs of each function give different trip counts (zero included), so a graph that unrolled
the traced loop fails on replay. Staged loop variables keep one dtype: float accumulators start
as floats, integer counters may start as Python ints.
"""

import pytest
import torch

import autoconv
from support import COND, WHILE_LOOP, Calling, assert_close, assert_same_result, count_ops, \
    slow_compile

T = torch.tensor


# --- while ----------------------------------------------------------------------------------

def while_halving(x):
    steps = 0
    while x > 1:
        x = x / 2
        steps += 1
    return x, steps


def collatz_steps(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def while_sum_below(x, limit):
    # adds up x's elements while the total stays below `limit`
    total = torch.zeros(())
    i = 0
    while i < 4 and total + x[i] < limit:
        total = total + x[i]
        i += 1
    return total, i


def while_else_no_break(x):
    total = torch.zeros(())
    while x.sum() > 0:
        total = total + x.sum()
        x = x - 1
    else:
        total = total * 10
    return total, x


def while_with_if_inside(x):
    evens = torch.zeros((), dtype=torch.int64)
    n = x
    while n > 0:
        if n % 2 == 0:
            evens += 1
        n = n - 1
    return evens


# --- for over range --------------------------------------------------------------------------

def range_of_tensor(n):
    s = 0
    for i in range(n):
        s += i
    return s


def range_negative_step(n):
    s = torch.zeros((), dtype=torch.int64)
    for i in range(n, 0, -1):
        s = s * 2 + i
    return s


def range_tensor_index(x, n):
    s = torch.zeros(())
    for i in range(n):
        s = s + x[i]
    return s


def range_tensor_setitem(x, n):
    out = torch.zeros_like(x)
    for i in range(n):
        out[i] = x[n - 1 - i]
    return out


def range_python_with_tensor_if(x):
    for i in range(3):
        if x.sum() > 0:
            x = x - 1
    return x


def nested_range_tensor(n):
    s = 0
    for i in range(n):
        for j in range(i):
            s += j
    return s


def python_outer_while_inner(x):
    for k in range(2):
        while x.sum() > k:
            x = x - 1
    return x


# --- for over tensors, enumerate, zip --------------------------------------------------------

def for_over_vector(x):
    s = torch.zeros(())
    for v in x:
        if v > 0:
            s = s + v * v
    return s


def for_over_rows(x):
    out = torch.zeros(x.shape[1])
    for row in x:
        if row.sum() > 0:
            out = out + row
        else:
            out = out - 1
    return out


def enumerate_tensor(x):
    s = torch.zeros(())
    for i, v in enumerate(x):
        if v > 0:
            s = s + i * v
    return s


def enumerate_range_tensor(n):
    s = 0
    for i, j in enumerate(range(2, n)):
        s += i * j
    return s


def running_sum_into_tensor(x):
    out = torch.zeros_like(x)
    acc = torch.zeros(())
    for i, v in enumerate(x):
        if v > 0:
            acc = acc + v
        out[i] = acc
    return out


def zip_range_and_tensor(x, n):
    s = torch.zeros(())
    for i, v in zip(range(n), x):
        s = s + i * v
    return s


def for_else_no_break(x):
    s = torch.zeros(())
    for v in x:
        if v > 0:
            s = s + v
    else:
        s = s * 2
    return s


def while_and_on_one_element_tensors(x, limit):
    # a staged `and` in the test (a cond whose one branch returns its operand), the counter a
    # (1,)-shaped tensor stepped in place by the python backend's loop
    steps = torch.zeros(1, dtype=torch.int64)
    while (x.sum(0, keepdim=True) < limit) and (steps < 5):
        x = x * 2
        steps += 1
    return x, steps


VEC4 = [T([1.0, -2.0, 3.0, 4.0]), T([-1.0, -2.0, -3.0, -4.0]), T([5.0, 6.0, 7.0, 8.0])]
INDEX_CASES = [(T([1.0, 2.0, 3.0, 4.0]), T(n)) for n in (0, 1, 3, 4)]

CASES = [
    (while_halving, [T(0.5), T(3.0), T(100.0)], WHILE_LOOP),
    (collatz_steps, [T(1), T(6), T(27)], WHILE_LOOP),
    (while_sum_below, [(T([1.0, 2.0, 3.0, 4.0]), T(0.5)), (T([1.0, 2.0, 3.0, 4.0]), T(4.0)),
                       (T([1.0, 2.0, 3.0, 4.0]), T(100.0))], WHILE_LOOP),
    (while_else_no_break, [T([1.0, 2.0]), T([-1.0, -2.0]), T([3.0, 4.0])], WHILE_LOOP),
    (while_with_if_inside, [T(0), T(1), T(7), T(10)], WHILE_LOOP),
    (range_of_tensor, [T(0), T(1), T(5)], WHILE_LOOP),
    (range_negative_step, [T(0), T(1), T(5)], WHILE_LOOP),
    (range_tensor_index, INDEX_CASES, WHILE_LOOP),
    (range_tensor_setitem, INDEX_CASES, WHILE_LOOP),
    (range_python_with_tensor_if, [T([1.0, 2.0]), T([-1.0, -2.0]), T([1.0, 0.0])], COND),
    (nested_range_tensor, [T(0), T(1), T(2), T(5)], WHILE_LOOP),
    (python_outer_while_inner, [T([1.0, 2.0]), T([-1.0, -2.0]), T([0.5, 0.5])], WHILE_LOOP),
    (for_over_vector, VEC4, WHILE_LOOP),
    (for_over_rows, [T([[1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]]),
                     T([[-1.0, -2.0], [-3.0, -1.0], [-0.5, 0.0]])], WHILE_LOOP),
    (enumerate_tensor, VEC4, WHILE_LOOP),
    (enumerate_range_tensor, [T(0), T(2), T(3), T(6)], WHILE_LOOP),
    (running_sum_into_tensor, VEC4, WHILE_LOOP),
    (zip_range_and_tensor, [(T([1.0, 2.0, 3.0]), T(n)) for n in (0, 2, 10)], WHILE_LOOP),
    (for_else_no_break, VEC4, WHILE_LOOP),
    (while_and_on_one_element_tensors, [(T([1.0, 2.0]), T(10.0)), (T([1.0, 2.0]), T(1.0)),
                                         (T([1.0, 2.0]), T(1000.0))], WHILE_LOOP),
]


# Compiled in `make test`: a while (with an if inside, on `and`), a for over a tensor range
# (writing items, with an if, nested), a for with else, a Python while around a staged one, a for
# over rows, enumerate and zip; the others are variants of these (slow_compile).
COMPILED_IN_SLOW = ["while_halving", "collatz_steps", "while_sum_below", "while_else_no_break",
                    "range_of_tensor", "range_negative_step",
                    "range_tensor_index", "for_over_vector", "enumerate_range_tensor",
                    "running_sum_into_tensor"]


@pytest.mark.parametrize("fn, inputs, op", slow_compile(CASES, COMPILED_IN_SLOW),
                         ids=[c[0].__name__ for c in CASES])
def test_staged_loop(fn, inputs, op):
    concrete = assert_same_result(fn, inputs)
    assert count_ops(concrete.graph_module, op) > 0, concrete.code
    if fn is nested_range_tensor:
        # the inner loop is staged inside the outer loop's body
        assert count_ops(concrete.graph_module, WHILE_LOOP) == 2, concrete.code


# --- loops that stay Python ------------------------------------------------------------------

def range_python_int(x):
    for i in range(3):
        x = x * 2 + i
    return x


def range_len_of_tensor(x):
    s = torch.zeros(())
    for i in range(len(x)):
        s = s + x[i] * i
    return s


def while_python_counter(x, n):
    i = 0
    while i < n:
        x = x + i
        i += 1
    return x


def for_python_else(x, n):
    for i in range(n):
        x = x + 1
    else:
        x = x * 10
    return x


def enumerate_zip_python(x):
    for i, (a, b) in enumerate(zip([1, 2, 3], [4, 5, 6])):
        x = x + i * a - b
    return x


PYTHON_CASES = [
    (range_python_int, [T([1.0, 2.0]), T([-3.0, 0.0])]),
    (range_len_of_tensor, [T([1.0, 2.0, 3.0]), T([-1.0, 0.0, 5.0])]),
    (while_python_counter, [(T([1.0, 2.0]), 0), (T([-1.0, 3.0]), 0)]),
    (while_python_counter, [(T([1.0, 2.0]), 4), (T([-1.0, 3.0]), 4)]),
    (for_python_else, [(T([1.0, 2.0]), 0), (T([-1.0, 3.0]), 0)]),
    (for_python_else, [(T([1.0, 2.0]), 3), (T([-1.0, 3.0]), 3)]),
    (enumerate_zip_python, [T([1.0, 2.0]), T([-3.0, 0.0])]),
]


@pytest.mark.parametrize("fn, inputs", PYTHON_CASES,
                         ids=[f"{fn.__name__}-{i}" for i, (fn, _) in enumerate(PYTHON_CASES)])
def test_python_loop_is_not_staged(fn, inputs):
    concrete = assert_same_result(fn, inputs, staged=False)
    assert count_ops(concrete.graph_module, COND, WHILE_LOOP) == 0, concrete.code


def test_loops_run_as_python_on_eager_tensors():
    for fn, inputs, _ in CASES[:8]:
        converted = autoconv.convert(fn)
        for args in inputs:
            args = args if isinstance(args, tuple) else (args,)
            got, want = converted(*args), fn(*args)
            for g, w in zip(got if isinstance(got, tuple) else (got,),
                            want if isinstance(want, tuple) else (want,)):
                torch.testing.assert_close(torch.as_tensor(g), torch.as_tensor(w),
                                           check_dtype=False)


def test_python_int_counter_carried_under_compile():
    # A Python int counter carried by a staged loop used to become torch.tensor(0), whose .item()
    # dynamo read back as its initial value after the loop.
    def halvings(x):
        steps = 0
        while x > 1:
            x = x // 2
            steps += 1
        return torch.ones(torch.as_tensor(steps).item() + 1)

    compiled = torch.compile(autoconv.convert(halvings), fullgraph=True, backend="eager")
    with torch._dynamo.config.patch(capture_scalar_outputs=True):
        for n in (1, 2, 8, 100):
            assert compiled(torch.tensor(n)).shape == halvings(torch.tensor(n)).shape


def search_while_found(x):
    # The loop's condition is a carried bool tensor itself: its predicate must not alias it.
    k = torch.tensor(0)
    found = torch.tensor(True)
    while found:
        found = x[k] > 0
        k = k + 1
    return k


def search_while_not_done(x):
    k = torch.tensor(0)
    done = torch.tensor(False)
    while not done:
        done = x[k] <= 0
        k = k + 1
    return k


@pytest.mark.parametrize("fn", [search_while_found, search_while_not_done])
def test_loop_on_a_carried_flag(fn):
    assert_same_result(fn, [T([1.0, 2.0, -1.0, 3.0]), T([-1.0, 5.0, 1.0, 1.0]),
                            T([2.0, 2.0, 2.0, -2.0])])


def sinkhorn_log_scaling(a, b, cost):
    # POT's `sinkhorn_log`, cut down: a nested helper reads `scaled` by closure while the loop
    # also reads it by name. Under torch.compile dynamo lifted the closure read as a second
    # input of the same tensor and refused the loop ("Input-to-input aliasing").
    scaled = -cost / 0.1
    u = torch.zeros(a.shape[0], dtype=cost.dtype)
    v = torch.zeros(b.shape[0], dtype=cost.dtype)

    def log_plan(u, v):
        return scaled + u[:, None] + v[None, :]

    log_a, log_b = torch.log(a), torch.log(b)
    for i in range(200):
        v = log_b - torch.logsumexp(scaled + u[:, None], 0)
        u = log_a - torch.logsumexp(scaled + v[None, :], 1)
        if i % 10 == 0:
            err = torch.norm(torch.exp(log_plan(u, v)).sum(0) - b)
            if err < 1e-6:
                break
    return torch.exp(log_plan(u, v))


def test_loop_body_reads_an_operand_by_closure_too():
    gen = torch.Generator().manual_seed(0)

    def marginals(n):
        w = torch.rand(n, generator=gen, dtype=torch.float64) + 0.1
        return w / w.sum()

    cost = torch.rand(5, 4, generator=gen, dtype=torch.float64)
    inputs = [(marginals(5), marginals(4), cost), (marginals(5), marginals(4), cost * 3.0)]
    concrete = assert_same_result(sinkhorn_log_scaling, inputs)
    assert count_ops(concrete.graph_module, WHILE_LOOP) == 1, concrete.code


# --- loops over mixed iterables: traced tensors zipped with Python values --------------------

def zip_tensor_and_list(weights):
    s = torch.zeros(())
    for w, c in zip(weights, [1.0, 2.0, 3.0]):
        if w > 0:
            s = s + w * c
    return s


def enumerate_zip_tensor_and_list(weights):
    s = torch.zeros(())
    for i, (w, c) in enumerate(zip(weights, [1.0, 2.0, 3.0])):
        if w > 0:
            s = s + w * c * i
    return s


def zip_tensor_and_tuple_of_tensors(x, a, b):
    s = torch.zeros(())
    for v, t in zip(x, (a, b)):
        if v > 0:
            s = s + t.sum() * v
    return s


def zip_python_range_and_tensor_range(x, n):
    s = torch.zeros(())
    for i, j in zip(range(n), range(10, 20)):
        s = s + x[i] * j
    return s


MIXED_CASES = [
    (zip_tensor_and_list, [T([1.0, -2.0, 3.0]), T([-1.0, 2.0, -3.0]), T([1.0, 2.0, 3.0])]),
    (zip_tensor_and_list, [T([1.0, 2.0, 3.0, 4.0]), T([-1.0, 2.0, 3.0, -4.0])]),  # list shorter
    (enumerate_zip_tensor_and_list, [T([1.0, -2.0, 3.0]), T([-1.0, 2.0, 3.0])]),
    (zip_tensor_and_tuple_of_tensors, [(T([1.0, -1.0]), T([1.0, 2.0]), T([3.0, 4.0])),
                                       (T([-1.0, 2.0]), T([1.0, 2.0]), T([3.0, 4.0]))]),
    (zip_python_range_and_tensor_range, [(T([1.0, 2.0, 3.0]), T(n)) for n in (0, 2, 3)]),
]


@pytest.mark.parametrize("fn, inputs", MIXED_CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(MIXED_CASES)])
def test_loop_over_mixed_iterable(fn, inputs):
    assert_same_result(fn, inputs)


def for_over_tuple_of_tensors(a, b, c):
    s = torch.zeros(())
    for t in (a, b, c):
        if t.sum() > 0:
            break
        s = s + t.sum()
    return s


def for_over_dict_items(x):
    d = {"a": x, "b": x * 2, "c": x * 3}
    s = torch.zeros(())
    for k, v in d.items():
        if v.sum() > 3:
            break
        s = s + v.sum()
    return s


@pytest.mark.parametrize("fn, inputs", [
    (for_over_tuple_of_tensors, [(T([-1.0]), T([2.0]), T([3.0])),
                                 (T([-1.0]), T([-2.0]), T([3.0])), (T([1.0]), T([2.0]), T([3.0]))]),
    (for_over_dict_items, [T([1.0, 1.0]), T([0.2, 0.2]), T([3.0, 1.0])]),
], ids=["tuple", "dict_items"])
def test_loop_over_python_container_of_tensors(fn, inputs):
    # a Python loop; the tensor-dependent break stages each later iteration as a cond
    assert_same_result(fn, inputs)


def test_zip_with_unselectable_python_values_is_refused():
    from autoconv_runtime import StagingError

    def f(x, n):
        s = torch.zeros(())
        for v, name in zip(range(n), ["a", "b"]):  # a staged range: no Python loop either
            s = s + v
        return s

    with pytest.raises(StagingError, match="zipped or enumerated with a traced tensor"):
        autoconv.autoconv(f)(T([1.0, 2.0]), T(2))


def test_zip_of_a_tensor_with_python_values_runs_as_python():
    # A tensor's length is known while tracing: the loop runs as Python over its rows.
    def f(x):
        s = torch.zeros(())
        for v, name in zip(x, ["a", "b"]):
            s = s + v * len(name)
        return s

    assert_same_result(f, [T([1.0, 2.0]), T([-1.0, 3.0])], staged=False)


def padded_by_zipped_sizes(x, grid_size, im_size):
    pad_sizes = []
    for gd, im in zip(grid_size.flip((0,)), im_size.flip((0,))):
        pad_sizes.append(0)
        pad_sizes.append(int(gd - im))
    return torch.nn.functional.pad(x, pad_sizes)


def padded_by_sizes_zipped_with_a_range(x, sizes):
    pad_sizes = []
    for size, before in zip(sizes, range(2)):
        pad_sizes.append(before)
        pad_sizes.append(int(size))
    return torch.nn.functional.pad(x, pad_sizes)


def test_zip_of_tensors_growing_a_list_runs_as_python():
    # tester48 s01 (torchkbnufft's fft_and_scale): the zip's length is known while tracing, so
    # `pad_sizes` stays a Python list of four sizes; it was a list of a length only the graph
    # knows, refused by F.pad (NOTE [a zip's length known while tracing]).
    x = torch.arange(16.0).reshape(4, 4)
    assert_same_result(padded_by_zipped_sizes, [(x, T([6, 5]), T([4, 4])),
                                                (x, T([7, 4]), T([4, 4]))],
                       staged=False, compile=False)
    assert_same_result(padded_by_sizes_zipped_with_a_range, [(x, T([2, 1])), (x, T([0, 3]))],
                       staged=False, compile=False)


# --- variables first bound inside a staged loop ----------------------------------------------

def last_item_and_index(x, n):
    # `last` and `i` have no value before the loop: carried with placeholders
    for i in range(n):
        if x[i] > 0:
            last = x[i]
        else:
            last = -x[i]
    return last, i


def value_of_last_iteration(x):
    i = 0
    while x[i] > 0:
        found = x[i] * 10
        i += 1
    return found


def loop_created_read_only_when_run(x, n):
    total = torch.zeros(())
    for i in range(n):
        step = x[i] * 2
        total = total + step
    return total, step


def list_of_floats_first_bound_in_loop(x):
    # torchmin's bracketing loop: `bracket_f = [f_prev, f_new]`, Python floats (`float(f)`),
    # first bound in the loop, read after it (it was refused: "'pair' has no value before the
    # loop")
    f_prev = 1.0
    while x.sum() < 10:
        f_new = float(x.sum())
        pair = [f_prev, f_new]
        f_prev = f_new
        x = x * 2
    return x.sum() * (pair[0] - pair[1])


def _cubic_step(f1, f2, t):
    return 3 * (f1 - f2) / t


def list_of_floats_given_to_a_helper(x):
    # the items are numbers' stand-ins in the helper too: float32 where Python is float32
    f_prev = 1.0
    while x.sum() < 10:
        pair = [f_prev, float(x.sum())]
        f_prev = pair[1]
        x = x * 2
    return _cubic_step(pair[0], pair[1], x.sum())


def nested_lists_first_bound_in_loop(x):
    while x.sum() < 10:
        pairs = [[x.sum(), 1.0], [x.max(), 2.0]]
        pairs[1][0] = pairs[1][0] * 3  # an item written after the list is built
        x = x * 2
    return pairs[0][0] * pairs[1][1] + pairs[1][0]


LOOP_CREATED_CASES = [
    (last_item_and_index, [(T([1.0, -2.0, 3.0]), T(n)) for n in (1, 2, 3)]),
    (value_of_last_iteration, [T([1.0, 2.0, -1.0]), T([3.0, -1.0, 2.0])]),
    (loop_created_read_only_when_run, [(T([1.0, -2.0, 3.0]), T(n)) for n in (1, 3)]),
    (list_of_floats_first_bound_in_loop, [T([1.0, 2.0]), T([0.5, 0.1]), T([2.0, 3.5])]),
    (list_of_floats_given_to_a_helper, [T([1.0, 2.0]), T([0.5, 0.1]), T([2.0, 3.5])]),
    (nested_lists_first_bound_in_loop, [T([1.0, 2.0]), T([0.5, 0.1]), T([2.0, 3.5])]),
]


@pytest.mark.parametrize("fn, inputs", LOOP_CREATED_CASES,
                         ids=[c[0].__name__ for c in LOOP_CREATED_CASES])
def test_variable_first_bound_in_staged_loop(fn, inputs):
    assert_same_result(fn, inputs)


def test_loop_created_variable_after_zero_iterations_raises_as_python():
    import io

    args = (T([1.0, -2.0, 3.0]), T(0))
    with pytest.raises(UnboundLocalError):
        last_item_and_index(*args)
    f = autoconv.autoconv(last_item_and_index)
    assert f.get_concrete_function(T([1.0, -2.0, 3.0]), T(2)) is not None
    with pytest.raises(UnboundLocalError, match="cannot access local variable"):
        f(*args)
    program = f.export(T([1.0, -2.0, 3.0]), T(2))
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    with pytest.raises(RuntimeError, match="UnboundLocalError: cannot access local variable"):
        torch.export.load(saved).module()(*args)


def list_first_bound_in_loop_after_zero_trips(x):
    while x.sum() < 10:
        acc = [x.sum(), x.max()]
        x = x * 2
    return acc[0] + acc[1]


def test_list_first_bound_in_loop_after_zero_trips_raises_as_python():
    f = autoconv.autoconv(list_first_bound_in_loop_after_zero_trips)
    assert_close(f(T([1.0, 2.0])), list_first_bound_in_loop_after_zero_trips(T([1.0, 2.0])))
    with pytest.raises(UnboundLocalError, match="'acc'"):
        f(T([4.0, 9.0]))
    assert f.trace_count == 1


def one_list_under_two_names(x):
    while x.sum() < 10:
        a = [x.sum(), x.max()]
        b = a
        x = x * 2
    b[0] = b[0] + 100.0
    return a[0]


def one_dict_under_two_names(x):
    while x.sum() < 10:
        a = {"s": x.sum()}
        b = a
        x = x * 2
    b["s"] = b["s"] + 100.0
    return a["s"]


@pytest.mark.parametrize("fn", [one_list_under_two_names, one_dict_under_two_names])
def test_one_container_first_bound_under_two_names_is_refused(fn):
    # The loop rebuilt one container per name: `a[0]` missed the write through `b` (6 where
    # Python gives 106), silently, in every mode
    from autoconv_runtime import StagingError

    kind = "list" if "list" in fn.__name__ else "dict"
    match = f"'a' and 'b' name one {kind} that the loop body binds first"
    with pytest.raises(StagingError, match=match) as caught:
        autoconv.autoconv(fn)(T([1.0, 2.0]))
    assert caught.value.lineno == fn.__code__.co_firstlineno + 1
    with pytest.raises(StagingError, match=match):
        torch.export.export(Calling(autoconv.convert(fn)), (T([1.0, 2.0]),), strict=False)
    torch._dynamo.reset()
    with pytest.raises(StagingError, match=match):
        torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(T([1.0, 2.0]))


def _value_from_an_earlier_iteration(x):
    for i in range(3):
        if i == 1:
            y = x * i
    return y


def test_value_from_an_earlier_iteration_is_kept():
    assert_same_result(_value_from_an_earlier_iteration, [(torch.tensor(2.0),)], staged=False,
                       export=False, compile=False)


def _status_before_break_in_a_long_range(x):
    # The first iteration runs as Python and leaves `status` unbound on its traced path; the
    # loop is then staged from its first item (one while_loop, not 200 guarded bodies).
    total = torch.zeros(())
    for n in range(1, 201):
        if total > x:
            status = "over"
            break
        total = total + n
    else:
        status = "done"
    return total, status


def test_range_loop_with_a_traced_break_is_one_staged_loop():
    concrete = assert_same_result(_status_before_break_in_a_long_range,
                                  [(torch.tensor(10.0),), (torch.tensor(1e6),)], export=False,
                                  compile=False)
    assert count_ops(concrete.graph_module, WHILE_LOOP) == 1


def _halve_until(x, tol: float = 0.1):
    for _ in range(50):
        x = x * 0.5
        if x.abs().max() < tol:
            break
    return x


def test_a_range_loop_with_a_break_compiles_again_on_the_next_call():
    # dynamo guarded on the thread-local that marks a range loop's first iteration, set while
    # it traced: the second call failed "Guard failed on the same frame it was created" (in a
    # process where no staged trace had set it before, as here after the reset)
    from autoconv_runtime import operators

    operators._first_iteration.__dict__.pop("created", None)
    run = torch.compile(autoconv.convert(_halve_until), fullgraph=True, backend="eager")
    for x in (T([1.0]), T([8.0])):
        torch.testing.assert_close(run(x), _halve_until(x))


# --- zip of a tensor of known length with a list of unlike items ------------------------------

def zip_with_unlike_items(alpha, y):
    betas = [torch.ones(1), torch.ones(2), torch.ones(3)]  # a Butcher tableau's rows
    for a, b in zip(alpha, betas):  # no staged loop can index `betas`: runs as Python
        y = y + a * b.sum()
    return y


def test_zip_with_a_list_of_unlike_items_runs_as_python():
    concrete = assert_same_result(
        zip_with_unlike_items, [(T([1., 2., 3.]), T(0.)), (T([-1., 0., 5.]), T(2.))],
        staged=False)
    assert count_ops(concrete.graph_module, WHILE_LOOP) == 0


# --- closures made in a loop body (issue 9 §7) -------------------------------------------------

def closures_over_the_loop_variable(x):
    fs = []
    for i in range(3):
        fs.append(lambda: x * i)
    return fs[0]() + fs[1]()


def closures_over_a_variable_the_body_assigns(x):
    fs = []
    i = 0
    while i < 3:
        fs.append(lambda: x * i)
        i += 1
    return fs[0]() + fs[1]()


def test_closures_made_in_a_loop_body_see_pythons_values():
    x = T([1.0, 2.0])
    for fn in (closures_over_the_loop_variable, closures_over_a_variable_the_body_assigns):
        torch.testing.assert_close(autoconv.convert(fn)(x), fn(x))


def _bound_at_break_or_in_else(x):
    for i in [1.0, 2.0, 3.0]:
        if x > i:
            y = x * i
            break
    else:
        y = -x
    return y


def test_variable_bound_at_a_staged_break_or_in_the_loops_else():
    # The lowered `else` (`if not did_break:`) sat on the loop's line, before the body's
    # assignment by line: `y` was reset to Undefined after the loop (UnboundLocalError). `y`
    # has a bound flag, so the `if x > i:` binding it on one path gives it a placeholder on the
    # other and stages: one graph for every path (it was specialised, one graph per path).
    function = autoconv.autoconv(_bound_at_break_or_in_else)
    for x in (T(0.5), T(1.5), T(5.0), T(2.5)):
        assert torch.equal(function(x), _bound_at_break_or_in_else(x))
    assert len(function.concrete_functions) == 1


def closures_called_in_the_loop(x):
    total = x * 0
    for i in range(3):
        g = lambda: x * i  # noqa: E731
        i = i + 1
        total = total + g()  # the current value: i + 1
    return total


def closure_made_before_the_loop(x):
    g = lambda: x * i  # noqa: E731
    total = x * 0
    i = 0
    while i < 3:
        total = total + g()
        i += 1
    return total


def closures_made_in_nested_loops(x):
    fs = []
    for j in range(2):
        for i in range(2):
            fs.append(lambda: x * i + j)
    return fs[0]() + fs[3]()


def closure_made_in_a_branch(x, flag: bool):
    y = x
    if flag:
        g = lambda: y * 2  # noqa: E731
    else:
        g = lambda: y * 3  # noqa: E731
    y = y + 1
    return g()


def test_closures_see_the_variables_current_value():
    x = T([1.0, 2.0])
    for fn, args in ((closures_called_in_the_loop, (x,)), (closure_made_before_the_loop, (x,)),
                     (closures_made_in_nested_loops, (x,)), (closure_made_in_a_branch, (x, True)),
                     (closure_made_in_a_branch, (x, False))):
        torch.testing.assert_close(autoconv.convert(fn)(*args), fn(*args))
        torch.testing.assert_close(autoconv.autoconv(fn)(*args), fn(*args))


def staged_loop_with_a_closure(x):
    # the loop is staged (its test is a tensor); the closure reads the carried value
    y = x
    fs = []
    while y.sum() < 10:
        f = lambda t: y * t  # noqa: E731
        y = f(2.0)
    return y


def test_a_staged_loop_shares_cells_under_make_fx_and_is_refused_under_compile():
    inputs = [(T([1.0, 2.0]),), (T([3.0, 4.0]),)]
    assert_same_result(staged_loop_with_a_closure, inputs, compile=False, export=False)
    compiled = torch.compile(autoconv.convert(staged_loop_with_a_closure), fullgraph=True,
                             backend="eager")
    torch._dynamo.reset()
    with pytest.raises(Exception, match="under torch.compile a staged body cannot update"):
        compiled(*inputs[0])


# --- a variable bound at a staged break and in the loop's else ---------------------------------

def first_big(x):
    for v in x:
        if v > 10:
            found = v
            break
    else:
        found = torch.tensor(-1.)
    return found


def test_variable_bound_at_a_break_over_a_tensor_or_in_the_loops_else_compiled():
    # (issue repro 9) The loop carries `found` from no value; the body's `if` binds it on the
    # break path only, and the lowered `else` on the other. Under dynamo that `if` refused
    # `found` unbound in its false branch (see the slow test for every mode).
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(first_big), fullgraph=True, backend="eager",
                             dynamic=False)
    for x in (T([1.0, 20.0, 30.0]), T([1.0, 2.0, 3.0])):
        assert torch.equal(compiled(x), first_big(x))


@pytest.mark.slow
def test_variable_bound_at_a_break_over_a_tensor_or_in_the_loops_else():
    assert_same_result(first_big, [T([1.0, 20.0, 30.0]), T([1.0, 2.0, 3.0]),
                                   T([20.0, 2.0, 3.0])])


# --- a staged loop whose body needs its index as a Python number -------------------------------

def runge_kutta_like(y, alpha):
    # torchdiffeq's _runge_kutta_step (rk_common.py:69): a tensor zipped with a list; the body
    # slices by the enumerate counter, which a staged loop would make a traced tensor
    alpha = alpha.to(torch.float32)
    k = torch.zeros(2, len(alpha) + 1)
    k[:, 0] = y
    for i, (a, b) in enumerate(zip(alpha, [torch.tensor([1.0])])):
        yi = y + torch.sum(k[..., :i + 1] * (b * a), dim=-1)
        k[:, i + 1] = yi * 2
    return k


def test_a_loop_of_known_length_whose_body_needs_the_index_runs_as_python():
    assert_same_result(runge_kutta_like, [(T([1.0, 2.0]), T([0.5], dtype=torch.float64)),
                                          (T([3.0, -1.0]), T([2.0], dtype=torch.float64))],
                       staged=False, compile=False)


# --- bare annotations ---------------------------------------------------------------------------

def _annotated(x, flag: bool):
    y: torch.Tensor
    if flag:
        y = x + 1
    else:
        y = x - 1
    return y


def annotated_in_a_loop(x):
    # (issue repro 4: kornia's gaussian_blur2d annotates a local without a value)
    while x.sum() < 10:
        x = _annotated(x, True)
    z: torch.Tensor
    if x.sum() > 12:
        z = x * 2
    else:
        z = x
    return z


def test_a_bare_annotation_binds_nothing_under_compile():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(_annotated), fullgraph=True, backend="eager")
    assert torch.equal(compiled(T([1.0, 2.0]), True), T([2.0, 3.0]))


@pytest.mark.slow
def test_a_bare_annotation_binds_nothing_in_every_mode():
    assert_same_result(annotated_in_a_loop, [T([1.0, 1.0]), T([6.0, 6.0]), T([4.0, 5.5])])


def _count_new_tokens(best):
    n = torch.tensor(0)
    prev = -1
    for t in range(best.shape[0]):
        tok = best[t].item()
        if tok != prev and tok != 0:  # a staged `and` reading a symbolic int
            n += 1
        prev = tok
    return n


def test_a_staged_and_of_symbolic_ints_compiles():
    # dynamo's tracer copied every operand of a cond, a symbolic int too ("call_method clone
    # (*(u0,))": tester)
    run = torch.compile(autoconv.convert(_count_new_tokens), fullgraph=True, backend="eager")
    for best in (T([1, 1, 0, 2, 2]), T([1, 2, 3, 0, 0])):
        assert run(best) == _count_new_tokens(best)


def count_of_a_float_tensor(x):
    total = x.sum() * 0
    for i in range(x.sum()):
        total = total + i
    return total


def test_range_of_a_float_tensor_raises_as_in_python():
    # It ran range(int(n)) (tester t9): Python asks the tensor for an index, which a float
    # tensor refuses.
    with pytest.raises(TypeError, match="only integer tensors"):
        count_of_a_float_tensor(torch.ones(3))
    with pytest.raises(TypeError, match="only integer tensors"):
        autoconv.autoconv(count_of_a_float_tensor)(torch.ones(3))


def sum_positive(x):
    s = torch.zeros(())
    for v in x[x > 0]:
        s = s + v
    return s


def test_a_loop_over_a_masked_tensor():
    # t11 repro 18's loop, without the list: torch.compile raised "Could not guard on
    # data-dependent expression Eq(u0, 0)" (the check for a loop of no trip)
    assert_same_result(sum_positive, [torch.tensor([1., -1, 2, 3]), -torch.ones(4)])


class _Operator:
    """Holds a tensor its method reads (torchmin's subproblem: `self.hessp(d)` reads the
    gradient by closure)."""

    def __init__(self, g):
        self.g = g

    def mv(self, p):
        return self.g * p


def loop_from_a_tensor_a_method_also_reads(x):
    op = _Operator(x * 0.5)
    while x.sum() < 100:
        r = op.g  # the inner loop starts from the tensor its body also reads through `op`
        while r.sum() < 50:
            r = r + op.mv(r)
        x = x + r
    return x


def test_an_operand_the_body_also_reads_by_closure():
    # torchmin's trust-ncg failed inside torch's while_loop tracing with "'Module' object has
    # no attribute 'while_loop_body_graph_0._tensor_constant11'" (NOTE [operands the tracer
    # does not track] in runtime/staging/tracers/make_fx.py)
    assert_same_result(loop_from_a_tensor_a_method_also_reads,
                       [torch.ones(2), torch.full((2,), 30.0), torch.full((2,), 200.0)])


_NUMPY_STEPS = __import__("numpy").int64(4)


def doubles_for_numpy_steps(x):
    for _ in range(_NUMPY_STEPS):
        if x.sum() > 10:
            break
        x = x * 2
    return x


def test_range_of_a_numpy_integer():
    # under torch.compile dynamo refused `range` of the numpy integer, which it sees as an
    # ndarray ("Failed to trace builtin operator", tester 2026-12-02)
    assert_same_result(doubles_for_numpy_steps, [(T([1.0, 2.0]),), (T([20.0, 1.0]),)])


def transposed_each_trip(x):
    # torch.while_loop wants a carried value's strides unchanged; `y.t() * 0.5` has the
    # transposed ones (tester25 s01: torch's "Expected carried_inputs and body_output to have
    # same metadata" in every mode)
    y = x.reshape(2, 2)
    n = 0
    while y.abs().sum() > 1:
        y = y.t() * 0.5
        n += 1
    return y, n


def test_a_loop_value_whose_strides_change():
    assert_same_result(transposed_each_trip, [torch.tensor([1.0, 2.0, 3.0, 4.0]),
                                              torch.tensor([0.1, 0.2, 0.3, 0.1]),
                                              torch.tensor([10.0, 2.0, 3.0, 40.0])])


def column_carried(te):
    # `t`, a column of a (1, 2) tensor, has stride (2,); the body's contiguous result (1,):
    # a size-1 dimension's stride is free, but torch.while_loop under dynamo compared it
    # (torchode's `t = t_eval[:, 0]`, tail50: dynamo's bare "Expected carried_inputs and
    # body_output to have same metadata")
    t = te[:, 0]
    while (t < 5).any():
        t = torch.where(t < 5, t + 1, t)
    return t


def test_a_loop_value_of_a_size_1_dimension_with_another_stride():
    assert_same_result(column_carried, [(T([[1.0, 2.0]]),), (T([[3.0, 9.0]]),)])


def suppressed_rows(x, threshold):
    # greedy suppression over the rows a mask chose: `alive` has their data-dependent length
    # `u0`, and the `if` keeps it in both branches; torch.cond gave its output a new size of
    # its own, and the loop refused `alive` as changing size each trip (errs40: torchvision's
    # `_batched_nms_vanilla`, NOTE [sizes every branch keeps] in runtime/staging/branch_facts.py)
    rows = x[x.sum(1) > 0]
    alive = torch.ones(rows.shape[0], dtype=torch.bool)
    for k in range(rows.shape[0]):
        if alive[k]:
            far = (rows - rows[k]).abs().sum(1) > threshold
            alive = alive & (far | (torch.arange(rows.shape[0]) <= k))
    return rows[alive]


def test_an_if_in_a_loop_keeps_the_length_of_masked_rows():
    generator = torch.Generator().manual_seed(0)
    x = [torch.randn(6, 2, generator=generator) for _ in range(3)]
    inputs = [(x[0], T(1.0)), (x[1], T(0.5)), (x[2], T(2.0)), (-x[2], T(0.1)),
              (-x[0].abs(), T(1.0))]
    # masks choosing 2, 3, 2, 4 and no rows
    assert [int((xi.sum(1) > 0).sum()) for xi, _ in inputs] == [2, 3, 2, 4, 0]
    assert_same_result(suppressed_rows, inputs)


# A bare annotation (`saver: T`, torch-kf's `KalmanFilter.filter`) binds nothing: taken for a
# binding before the loop, the name's object was read at the top of each trip, and the first
# trip raised UnboundLocalError where Python binds it under `if t == 0` (tester55).
def rows_saved_into_a_buffer_the_first_trip_makes(xs):
    total = xs[0] * 0
    saver: torch.Tensor
    for t, x in enumerate(xs):
        if x.sum() > 0:
            total = total + x
        if t == 0:
            saver = torch.zeros((xs.shape[0], *total.shape))
        saver[t] = total
    return saver


def test_a_name_annotated_before_a_loop_and_bound_on_its_first_trip():
    assert_same_result(rows_saved_into_a_buffer_the_first_trip_makes,
                       [T([[1.0, -3.0], [-2.0, 1.0], [3.0, 3.0]]),
                        T([[1.0, 3.0], [-2.0, 1.0], [3.0, -4.0]])])
