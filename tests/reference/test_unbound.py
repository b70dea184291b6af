"""A variable a staged loop binds on some paths only, read after it: Python raises
UnboundLocalError where no path bound it, and so must the graph (never a placeholder's zeros).
Each function is traced on an input that binds the variable and run on one that does not."""

from __future__ import annotations

import io

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling, assert_same_result, function_from_source

T = torch.tensor
MESSAGE = "cannot access local variable '{}' where it is not associated with a value"


def _raises_as_python(fn, bound, unbound, name, *, export=True, compile=True):
    """`fn` on `unbound` raises Python's UnboundLocalError in every mode, after a trace on
    `bound` (which gives Python's value)."""
    bound = bound if isinstance(bound, tuple) else (bound,)
    unbound = unbound if isinstance(unbound, tuple) else (unbound,)
    message = MESSAGE.format(name)
    with pytest.raises(UnboundLocalError, match=message):
        fn(*unbound)
    f = autoconv.autoconv(fn)
    torch.testing.assert_close(f(*bound), fn(*bound))
    with pytest.raises(UnboundLocalError, match=message):
        f(*unbound)
    assert f.trace_count == 1
    converted = autoconv.convert(fn)
    if export:
        program = torch.export.export(Calling(converted), bound, strict=False)
        saved = io.BytesIO()
        torch.export.save(program, saved)
        saved.seek(0)
        module = torch.export.load(saved).module()
        torch.testing.assert_close(module(*bound), fn(*bound))
        with pytest.raises(RuntimeError, match="UnboundLocalError: " + message):
            module(*unbound)
    if compile:
        torch._dynamo.reset()
        compiled = torch.compile(converted, fullgraph=True, backend="eager", dynamic=False)
        torch.testing.assert_close(compiled(*bound), fn(*bound))
        with pytest.raises(RuntimeError, match="UnboundLocalError: " + message):
            compiled(*unbound)


def bound_in_an_if_of_a_while(x):
    i = torch.tensor(0)
    while i < 3:
        if x[i] > 0:
            y = x * i
        i = i + 1
    return y


def bound_in_an_if_of_a_for(x):
    for v in x:
        if v > 0:
            last = v
    return last


def test_while_with_if_without_else():
    # issue 10 §1 f2: the graph returned zeros
    _raises_as_python(bound_in_an_if_of_a_while, T([1.0, 2.0, 3.0]), T([-1.0, -2.0, -3.0]), "y",
                      compile=False)


def test_for_over_a_tensor_with_if_without_else():
    # issue 10 §1 f4: the graph returned tensor(0.)
    _raises_as_python(bound_in_an_if_of_a_for, T([1.0, 2.0]), T([-1.0, -2.0]), "last",
                      export=False)


def test_bound_on_some_iterations_gives_the_last_binding():
    assert_same_result(bound_in_an_if_of_a_while, [T([1.0, 2.0, 3.0]), T([1.0, -2.0, -3.0]),
                                                   T([-1.0, 2.0, -3.0])],
                       export=False, compile=False)


def found_or_sum(x):
    found = torch.tensor(False)
    for v in x:
        if v > 0:
            last = v
            found = torch.tensor(True)
    if found:
        return last
    return x.sum()


def test_read_only_where_bound_needs_no_value_elsewhere():
    # The read is checked where it happens: a path that does not read it does not raise (also
    # after a loop of no iteration, which the loop's own check refused before).
    assert_same_result(found_or_sum, [T([1.0, 2.0]), T([-1.0, -2.0]), T([-1.0, 3.0])],
                       compile=False)


def found_in_a_range(x, n):
    found = torch.tensor(False)
    for i in range(n):
        if x[i] > 0:
            last = x[i]
            found = torch.tensor(True)
    return last if found else x.sum()


def test_range_of_a_tensor_and_zero_iterations():
    assert_same_result(found_in_a_range, [(T([1.0, 2.0]), T(2)), (T([-1.0, 2.0]), T(1)),
                                          (T([1.0, 2.0]), T(0))], export=False, compile=False)


def bound_in_an_inner_loop(x):
    for row in x:
        for v in row:
            if v > 0:
                y = v * 2
    return y


def test_nested_loops():
    _raises_as_python(bound_in_an_inner_loop, T([[1.0, -1.0], [-2.0, -3.0]]),
                      T([[-1.0, -1.0], [-2.0, -3.0]]), "y", export=False, compile=False)


def bound_before_a_break(x):
    for v in x:
        if v < 0:
            break
        last = v
    return last


def test_break_before_the_binding():
    # the body binds it on every path that reaches its end; a break skips it
    _raises_as_python(bound_before_a_break, T([1.0, -2.0]), T([-1.0, 2.0]), "last",
                      export=False, compile=False)


def augmented_after_the_loop(x):
    i = torch.tensor(0)
    while i < 2:
        if x[i] > 0:
            # (a new tensor: `y = x[i]` is a view of `x` in Python, whose `y += 1` updates the
            # argument, which a staged loop's copy cannot do: refused, tests/reference/
            # test_aliasing.py)
            y = x[i] * 2
        i = i + 1
    y += 1
    return y


def test_augmented_assignment_reads_it():
    _raises_as_python(augmented_after_the_loop, T([1.0, 2.0]), T([-1.0, -2.0]), "y",
                      export=False, compile=False)


def test_no_flag_where_every_path_binds():
    source = """
    def f(x):
        for v in x:
            if v > 0:
                last = v
            else:
                last = -v
        return last
    """
    assert "bound" not in autoconv.to_code(function_from_source(source))
    source = """
    def f(x):
        for v in x:
            if v > 0:
                last = v
        return x
    """
    assert "bound" not in autoconv.to_code(function_from_source(source))


@pytest.mark.slow
@pytest.mark.parametrize("fn, bound, unbound, name", [
    (bound_in_an_if_of_a_while, T([1.0, 2.0, 3.0]), T([-1.0, -2.0, -3.0]), "y"),
    (bound_in_an_if_of_a_for, T([1.0, 2.0]), T([-1.0, -2.0]), "last"),
    (bound_in_an_inner_loop, T([[1.0, -1.0], [-2.0, -3.0]]), T([[-1.0, -1.0], [-2.0, -3.0]]), "y"),
    (bound_before_a_break, T([1.0, -2.0]), T([-1.0, 2.0]), "last"),
    (augmented_after_the_loop, T([1.0, 2.0]), T([-1.0, -2.0]), "y"),
])
def test_every_mode(fn, bound, unbound, name):
    _raises_as_python(fn, bound, unbound, name)


@pytest.mark.slow
def test_every_mode_where_python_does_not_raise():
    assert_same_result(found_or_sum, [T([1.0, 2.0]), T([-1.0, -2.0]), T([-1.0, 3.0])])
    assert_same_result(found_in_a_range, [(T([1.0, 2.0]), T(2)), (T([-1.0, 2.0]), T(1)),
                                          (T([1.0, 2.0]), T(0))])


def bound_by_every_trip_of_a_python_loop(x, n):
    while n > 0:  # a Python int: the loop runs as Python, and makes no trip for n == 0
        m = x * 2
        n -= 1
    return x + m


def test_a_loop_run_as_python_of_no_trip():
    # Fuzz seed 13, program 33: every trip binds `m`, so it has no flag; the loop ran as Python
    # and made no trip, and the read went on with the Undefined placeholder while tracing
    # ("unsupported operand type(s) for +: 'FakeTensor' and 'Undefined'"). NOTE [reads after a
    # loop of no trip]: the read checks for the placeholder.
    message = MESSAGE.format("m")
    x = T([1.0, 2.0])
    with pytest.raises(UnboundLocalError, match=message):
        bound_by_every_trip_of_a_python_loop(x, 0)
    f = autoconv.autoconv(bound_by_every_trip_of_a_python_loop)
    torch.testing.assert_close(f(x, 2), bound_by_every_trip_of_a_python_loop(x, 2))
    with pytest.raises(UnboundLocalError, match=message):
        f(x, 0)
    with pytest.raises(UnboundLocalError, match=message):
        torch.export.export(Calling(autoconv.convert(bound_by_every_trip_of_a_python_loop)),
                            (x, 0), strict=False)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(bound_by_every_trip_of_a_python_loop),
                             fullgraph=True, backend="eager", dynamic=False)
    torch.testing.assert_close(compiled(x, 2), bound_by_every_trip_of_a_python_loop(x, 2))
    # (dynamo with fullgraph=True reports any exception the traced code raises as its own
    # "Observed exception", naming it: the original function gives the same)
    with pytest.raises(Exception, match=message):
        compiled(x, 0)


def bound_by_a_loop_in_one_branch(x):
    if x.sum() > 0:
        for v in x:
            last = v * 2
    return last


@pytest.mark.slow
def test_loop_in_one_branch_of_a_staged_if():
    # Fuzz seed 13, program 23: the loop binds `last` on every trip, but the `if`'s other branch
    # skips it; without a flag the `if` was specialised (GuardFailed at replay where Python
    # raises UnboundLocalError).
    assert "bound" in autoconv.to_code(bound_by_a_loop_in_one_branch)
    _raises_as_python(bound_by_a_loop_in_one_branch, T([1.0, 2.0]), T([-1.0, -2.0]), "last")


def read_in_a_branch_of_a_nested_staged_if(x):
    if x.sum() > 0:
        for v in x:
            last = v * 2
    elif x.sum() < -10:
        return x
    return x + last  # (converted into each branch: in the elif's else, no loop could bind it)


def test_read_in_a_staged_branch_that_no_loop_reached():
    # Fuzz seed 1, programs 5 and 18: in the branch of the inner staged `if` the flag is a
    # Python False, and the read raised UnboundLocalError while tracing, on every input (NOTE
    # [unbound reads in a staged body]); it is a graph assertion on that path.
    _raises_as_python(read_in_a_branch_of_a_nested_staged_if, T([1.0, 2.0]), T([-1.0, -2.0]),
                      "last")
    f = autoconv.autoconv(read_in_a_branch_of_a_nested_staged_if)
    with pytest.raises(UnboundLocalError, match=MESSAGE.format("last")):
        f(T([-1.0, -2.0]))  # traced on the path that raises
    torch.testing.assert_close(f(T([-20.0, 1.0])), T([-20.0, 1.0]))
    torch.testing.assert_close(f(T([1.0, 2.0])), T([5.0, 6.0]))
    assert f.trace_count == 1


def created_by_a_loop_then_bound_by_an_if(x, n):
    for i in range(n):
        m = x * 2
    if x.sum() > 0:
        m = x + 1
    return m


def created_by_a_while_then_bound_by_a_for(x, n):
    while x.sum() < n:
        m = x * 2
        x = x + 1
    for j in range(n):
        m = x * 3
    return m


@pytest.mark.parametrize("fn, inputs", [
    (created_by_a_loop_then_bound_by_an_if,
     [(T([1.0]), T(0)), (T([1.0]), T(2)), (T([-1.0]), T(3))]),
    (created_by_a_while_then_bound_by_a_for,
     [(T([5.0]), T(2)), (T([0.0]), T(2)), (T([1.0]), T(3))]),
])
def test_bound_again_after_the_loop_that_creates_it(fn, inputs):
    # Fuzz seed 15, program 614: the first loop's own check raised UnboundLocalError at its end
    # where it made no trip, though the statement after it binds the name before the read and
    # Python returns a value. Such a name carries a flag (NOTE [names bound again after the loop
    # that creates them]).
    assert "bound" in autoconv.to_code(fn)
    assert_same_result(fn, inputs)


def test_bound_again_after_the_loop_and_unbound_on_a_path():
    # (no trip and the `if` not taken: Python raises, and so does every mode)
    _raises_as_python(created_by_a_loop_then_bound_by_an_if, (T([1.0]), T(2)),
                      (T([-1.0]), T(0)), "m")

# A name a top-level `if` binds on some paths only, read after it: the `if` is staged carrying
# the name with a bound flag (as a loop-bound name), and the read raises where Python does.
# Before, the `if` was specialised on the traced path and a replay on the other path read the
# Undefined placeholder: `mode == "double"` was False (x where Python raises, silently).
def bound_in_an_elif_chain(x):
    if x.sum() > 10:
        mode = "big"
    elif x.sum() > 0:
        mode = "double"
    return x * 2 if mode == "double" else x


def bound_in_a_try_in_an_if(x):
    if x.sum() > 0:
        try:
            scale = 3
        except ValueError:
            scale = 1
    return x * scale


def read_by_a_nested_functions_default(x):
    if x.sum() > 0:
        mode = "double"

    def inner(y, m=mode):  # (the default is read here, where the def runs)
        return y * 2 if m == "double" else y

    return inner(x)


def read_by_a_lambdas_default(x):
    if x.sum() > 0:
        k = 3
    scale = lambda y, k=k: y * k  # noqa: E731
    return scale(x)


@pytest.mark.slow
@pytest.mark.parametrize("fn, name", [
    (bound_in_a_try_in_an_if, "scale"),
    (read_by_a_nested_functions_default, "mode"),
    (read_by_a_lambdas_default, "k"),
])
def test_a_name_an_if_binds_on_some_paths(fn, name):
    # (the try: the flag's assignment inside it had no line, and converting the function
    # raised TypeError in converters/raises.py; the defaults: read where the def runs, they
    # were left out of the pass with the body, and the default was the placeholder)
    _raises_as_python(fn, T([1.0, 2.0]), T([-1.0, -2.0]), name)


@pytest.mark.slow
def test_a_name_an_elif_chain_binds_on_some_paths():
    _raises_as_python(bound_in_an_elif_chain, T([1.0, 2.0]), T([-1.0, -2.0]), "mode",
                      compile=False)
    f = autoconv.autoconv(bound_in_an_elif_chain)
    for x in (T([1.0, 2.0]), T([20.0, 1.0]), T([3.0, 4.0])):
        torch.testing.assert_close(f(x), bound_in_an_elif_chain(x))
    assert f.trace_count == 1
    # torch.compile: two constants on two paths and none on the third need a value to start
    # from (with `mode = None` before the `if` it compiles)
    torch._dynamo.reset()
    with pytest.raises(StagingError) as info:
        torch.compile(autoconv.convert(bound_in_an_elif_chain), fullgraph=True,
                      backend="eager")(T([1.0, 2.0]))
    assert info.value.lineno == bound_in_an_elif_chain.__code__.co_firstlineno + 1
    assert "'mode' has no value before the statement" in str(info.value)
    assert "Assign 'mode' a constant (e.g. None) before the if" in str(info.value)


# The target of a staged `for` (or a name every trip binds) read after the loop only on some
# paths: the loop's own check asserted right after it, so a loop of no trip raised
# UnboundLocalError where Python, taking the path without the read, returns (linear_operator's
# CG reads its index `k` only under `if not tolerance_reached and n_iter > 0:`; a right-hand
# side that had converged raised). NOTE [reads after a loop of no trip].
def loop_index_read_on_some_paths(x, n):
    done = False
    for k in range(n):
        x = x * 2
        if x.sum() > 50:
            done = True
            break
    if not done and n > 0:
        x = x + k
    return x


def bound_by_every_trip_read_on_some_paths(x, n):
    for k in range(n):
        y = x * k
    if n > 0:
        x = x + y
    return x


@pytest.mark.parametrize("fn", [loop_index_read_on_some_paths,
                                bound_by_every_trip_read_on_some_paths])
def test_a_name_a_loop_binds_read_after_it_on_some_paths(fn):
    x = T([1.0, 1.0])
    assert_same_result(fn, [(x, T(5)), (x, T(0)), (x, T(2))])


def test_a_loop_index_read_after_a_loop_of_no_trip_raises_where_python_does():
    source = """
    def f(x, n):
        for k in range(n):
            x = x * 2
        return x + k
    """
    _raises_as_python(function_from_source(source), (T([1.0]), T(2)), (T([1.0]), T(0)), "k")


# A staged loop inside the body of another staged statement, whose body reads a name bound on
# some paths only (its bound flag checked at the read): the run of the loop's body that learns
# the type of `k` is a probe, and its check of the flag must not stay in the graph outside the
# loop, where it ran on every input. Under torch.export the probe was not marked inside an
# operator's body (the exported linear_operator CG raised UnboundLocalError for
# `curr_conjugate_vec` on a right-hand side that had converged), and neither was it under
# torch.compile (NOTE [probes in bodies dynamo traces] in runtime/staging/context.py).
def loop_in_a_staged_branch(x, n):
    if x.sum() > 0:
        if x.max() > 2:
            scale = x.max()
        for k in range(n):
            x = x * scale
        if n > 0:
            x = x + k
    return x


def loop_after_a_staged_raise(x, n):
    if x.isnan().any():
        raise ValueError("not a number")  # (the rest of the function is its `else`)
    if x.max() > 2:
        scale = x.max()
    for k in range(n):
        x = x * scale
    if n > 0:
        x = x + k
    return x


@pytest.mark.parametrize("fn, other", [
    (loop_in_a_staged_branch, (T([-1.0, -1.0]), T(3))),
    (loop_after_a_staged_raise, (T([4.0, 1.0]), T(1))),
])
def test_a_probe_in_a_staged_body_leaves_no_check_of_a_bound_flag(fn, other):
    # (traced where `scale` is bound; run where it is not, and the loop makes no trip)
    assert_same_result(fn, [(T([3.0, 1.0]), T(2)), (T([1.0, 1.0]), T(0)),
                            (T([3.0, 1.0]), T(0)), other])


# A name only unreachable code binds (after a `return`, or after a loop whose body and `else`
# both return) is a local no run binds: Python raises UnboundLocalError at its read. The jump
# lowerings drop that code, so a staged body read the name as a free variable of the function
# ("cannot access free variable 'm'", a NameError, at the trace; or a graph specialised on
# the staged test). NOTE [names only unreachable code binds]; fuzz seed 28, program 11.
def bound_after_a_return_in_a_staged_if(x):
    if x.sum() > 0:
        return x
        m = x + 1  # noqa: F841 - unreachable, as the fuzzer wrote it
    return x + m  # noqa: F821


def bound_after_a_while_else_that_returns(x):
    i = torch.tensor(0)
    while i < x.sum():
        while x[0] > 5:
            return x * 2
        else:
            return x * 3
        m = x % 10  # noqa: F841
    return x + m  # noqa: F821


@pytest.mark.parametrize("fn", [bound_after_a_return_in_a_staged_if,
                                bound_after_a_while_else_that_returns])
def test_a_name_only_unreachable_code_binds(fn):
    # (traced on a path that returns, the read is a graph assertion on the other path)
    _raises_as_python(fn, T([1.0, 2.0]), T([-1.0, -2.0]), "m")


# NOTE [inputs bound on some paths] (autoconv/converters/control_flow.py): a number read from a
# tensor and bound on some paths only (under a Python `if`, or in a `try` whose handler binds
# nothing), then read by a staged statement's bodies, is one of its operands. The bodies read
# it from their closure: torch.tensor of it failed while a branch was traced (a specialised
# `if`, a saved program raising on the other path), torch.cond refused the SymFloat under
# torch.compile, and a staged loop raised torch's internal "is not tracked with proxy".
def number_bound_under_a_python_if(x, flag=True):
    if flag:
        r = x.sum().item()
    if r > 1:
        return torch.tensor(r) * 2
    return torch.tensor(r)


def number_a_try_may_leave_unbound(x):
    try:
        r = x.sum().item()
    except RuntimeError:
        pass
    if r > 1:
        return torch.tensor(r) * 2
    return torch.tensor(r)


def number_bound_on_some_paths_read_by_a_staged_loop(x, flag=True):
    if flag:
        step = x.max().item()
    n = x.sum()
    while n > 0:
        n = n - step
    return n


@pytest.mark.parametrize("fn", [number_bound_under_a_python_if, number_a_try_may_leave_unbound,
                                number_bound_on_some_paths_read_by_a_staged_loop],
                         ids=lambda f: f.__name__)
def test_a_number_bound_on_some_paths_read_by_a_staged_statement(fn):
    assert_same_result(fn, [T([3.0, 1.0]), T([0.5, 0.25])])


def test_a_number_left_unbound_by_a_python_if_raises_as_python():
    x = T([3.0, 1.0])
    with pytest.raises(UnboundLocalError, match=MESSAGE.format("r")):
        number_bound_under_a_python_if(x, False)
    with pytest.raises(UnboundLocalError, match=MESSAGE.format("r")):
        autoconv.autoconv(number_bound_under_a_python_if)(x, False)


# --- a name bound and updated under the same Python flag, read from an item (tester39 s01) ---
# torch_optimizer's SWATS: `amsgrad = group['amsgrad']`, `max_exp_avg_sq` bound only `if
# amsgrad:` and updated (`out=`) only under another `if amsgrad:` inside a staged `if`. The
# guard before that statement read the name checked and raised UnboundLocalError where Python
# never reads it (NOTE [held names a statement may leave unread] in converters/choices.py).

def updated_under_the_flag_that_binds_it(x, flags):
    amsgrad = flags["amsgrad"]
    if amsgrad:
        m = torch.zeros_like(x)
    if x.sum() > 0:
        if amsgrad:
            torch.max(m, x, out=m)
        x = x * flags["lr"]
    return x


def updated_under_the_flag_in_a_loop_over_groups(x, amsgrad):
    groups = [{"amsgrad": amsgrad, "lr": 0.5}, {"amsgrad": amsgrad, "lr": 3.0}]
    for group in groups:
        use_max = group["amsgrad"]
        if use_max:
            m = torch.full_like(x, 2.0)
        if x.sum() > 0:
            if use_max:
                m.add_(x)
                x = x + m
            x = x * group["lr"]
    return x


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("fn, flags", [
    (updated_under_the_flag_that_binds_it, lambda a: {"amsgrad": a, "lr": 0.5}),
    (updated_under_the_flag_in_a_loop_over_groups, lambda a: a)])
def test_a_name_updated_only_under_the_flag_that_binds_it_is_not_read_otherwise(fn, flags,
                                                                                 amsgrad):
    assert_same_result(fn, [(T([1.0, 2.0]), flags(amsgrad)), (T([-1.0, -3.0]), flags(amsgrad)),
                            (T([0.5, -0.25]), flags(amsgrad))])


def _unbound_by_an_except_as_in_a_branch(x):
    e = x * 1
    if x.sum() > 0:
        try:
            [1][2]
        except IndexError as e:
            pass
    return e + 1


def _unbound_by_del_in_a_branch(x):
    e = x * 1
    if x.sum() > 0:
        del e
    return e + 1


_BRANCH_UNBINDS = [_unbound_by_an_except_as_in_a_branch, _unbound_by_del_in_a_branch]


@pytest.mark.parametrize("fn", _BRANCH_UNBINDS)
def test_a_name_a_branch_unbinds(fn):
    # (brk55, exp55) Python deletes `e` after its handler (and `del e`): UnboundLocalError
    # after the `if` on that path, [-2, 2] on the other, in every mode. The unbinding is an
    # assignment of the placeholder and False to `e`'s bound flag (NOTE [names a branch
    # unbinds]): under torch.compile the branch returned the name it had unbound, dynamo's
    # "Could not find a local variable with name `e`" on every input; the exported program
    # held the traced path only (specialised at the `if`).
    bound, unbound = T([-3.0, 1.0]), T([1.0, 2.0])
    assert fn(bound).tolist() == [-2.0, 2.0]
    _raises_as_python(fn, bound, unbound, "e")


def _unbound_then_bound_again(x):
    e = x * 1
    if x.sum() > 0:
        del e
        e = x * 3
    else:
        try:
            e = e + 1
            [1][2]
        except IndexError as err:
            e = e * 2
    return e + 1


def _unbound_by_a_handler_that_breaks(x):
    e, i = x * 1, torch.tensor(0)
    while i < 3:
        try:
            [1][2]
        except IndexError as e:
            if x.sum() > 0:
                break
        e = x * i
        i = i + 1
    return e


def test_a_name_a_branch_unbinds_and_binds_again():
    # `del e` then `e = x * 3` is bound after the `if` ([4, 7] for [1, 2]), as is the other
    # path's `e` beside a handler's own name ([-3, 3] for [-1, 1]).
    assert_same_result(_unbound_then_bound_again, [(T([1.0, 2.0]),), (T([-1.0, 1.0]),)])


def test_a_name_a_handler_leaving_by_break_unbinds():
    # The handler's `break` leaves it unbinding `e` (Python deletes it there too): the read
    # after the loop raises where the tensor `if` breaks, [-2, 0] after three trips otherwise.
    bound, unbound = T([-1.0, 0.0]), T([1.0, 2.0])
    assert _unbound_by_a_handler_that_breaks(bound).tolist() == [-2.0, 0.0]
    _raises_as_python(_unbound_by_a_handler_that_breaks, bound, unbound, "e", export=False,
                      compile=False)
