"""Findings of tester 23 (repros in the session's tester23 folder) in the saved torch.export
program and torch.compile: a grad-mode block in a staged branch, a builtin of a helper's
number, `out=` in a staged loop, and a loop item rebound next to a dict of Python ints."""

import io

import pytest
import torch

import autoconv
from autoconv_runtime.staging import export_passes
from support import Calling, assert_same_exactly

T = torch.tensor


def _saved_and_loaded(fn, args):
    saved = io.BytesIO()
    torch.export.save(torch.export.export(Calling(autoconv.convert(fn)), args, strict=False),
                      saved)
    saved.seek(0)
    return torch.export.load(saved).module()


def _value_and_grad(fn, y):
    y = y.detach().clone().requires_grad_()
    out = fn(y)
    if out.requires_grad:
        out.sum().backward()
    return out.detach(), y.grad


# (s02) a grad-mode block in a tensor `if` that breaks out of a `while True:` (torchdiffeq's
# odeint_event with method="rk4"): the loop body traced once more for its carried values left
# an empty grad-mode region in the graph, which torch.export.save wrote without outputs and
# torch.export.load refused ("Node.meta wrap_with_set_grad_enabled is missing val field")
def _grad_block_in_a_break(mode):
    def f(y):
        t0 = torch.zeros(())
        while True:
            t1 = t0 + 0.1
            if y * t1 > 0.3:
                with mode():
                    e = t1 * y * 2
                break
            t0 = t1
        return e + y
    return f


_MODES = {"no_grad": torch.no_grad, "enable_grad": torch.enable_grad,
          "set_grad_enabled_false": lambda: torch.set_grad_enabled(False)}


@pytest.mark.parametrize("mode", list(_MODES))
def test_a_grad_mode_block_in_a_branch_that_breaks_a_loop(mode):
    fn = _grad_block_in_a_break(_MODES[mode])
    inputs = [(T(1.0),), (T(2.0),), (T(5.0),)]  # 3, 2 and 1 trips
    assert_same_exactly(fn, inputs)
    program = _saved_and_loaded(fn, inputs[0])
    replay = autoconv.autoconv(fn)
    for (y,) in inputs:
        want = _value_and_grad(fn, y)
        for run in (program, replay):
            got = _value_and_grad(run, y)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), (run, y)


class _EmptyNoGrad(torch.nn.Module):
    def forward(self, y):
        with torch.no_grad():
            pass
        return y + 1


class _DeadNoGrad(torch.nn.Module):
    def forward(self, y):
        with torch.no_grad():
            (y - 0.5).sign()  # (read by nothing: torchdiffeq's event function's sign)
        return y + 1


@pytest.mark.parametrize("module", [_EmptyNoGrad(), _DeadNoGrad()], ids=["empty", "dead"])
def test_a_no_grad_block_whose_values_nothing_reads_is_saved_and_loaded(module):
    # torch's own fault, without a staged statement (NOTE [export drops grad-mode regions
    # around operators])
    assert export_passes.install_export_fixes()
    saved = io.BytesIO()
    torch.export.save(torch.export.export(module, (T(1.0),), strict=False), saved)
    saved.seek(0)
    assert torch.equal(torch.export.load(saved).module()(T(2.0)), T(3.0))


# (s06, helper variant) a builtin of numbers given a helper's result, a number the helper read
# from a tensor: Python's operator.abs of the symbolic float stayed in the graph, which
# torch.export.save cannot write ("Failed serializing node abs_1")
def as_float(v):
    return v.item() if isinstance(v, torch.Tensor) else float(v)


def newton_helper(x):
    for it in range(50):
        fx = x * x * x - 2 * x - 5
        if abs(as_float(fx)) < 1e-6:
            break
        x = x - fx / (3 * x * x - 2)
    return x, torch.tensor(it)


def newton_helper_named(x):
    for it in range(50):
        fx = x * x * x - 2 * x - 5
        v = as_float(fx)
        if abs(v) < 1e-6:
            break
        x = x - fx / (3 * x * x - 2)
    return x, torch.tensor(it)


def builtins_of_a_helper_number(x):
    return (torch.tensor(abs(as_float(x.sum()))), torch.tensor(round(as_float(x.max()), 1)),
            x * abs(-as_float(x.min()) * 2))


def rounded_helper_numbers(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += round(as_float(x[i]), 2)
        if x[i] < 0:
            break
    return torch.tensor(s)


_NEWTON = [(T(2.0, dtype=torch.float64),), (T(10.0, dtype=torch.float64),)]
_ROWS = [(T([0.123, -0.5, 0.777]),), (T([-1.4, 0.25, 0.3]),), (T([0.2, 0.25, 0.3]),)]


@pytest.mark.parametrize("fn, inputs", [
    (newton_helper, _NEWTON), (newton_helper_named, _NEWTON),
    (builtins_of_a_helper_number, _ROWS), (rounded_helper_numbers, _ROWS),
], ids=["newton", "newton_named", "top_level", "rounded_in_loop"])
def test_a_builtin_of_a_number_a_helper_read_from_a_tensor(fn, inputs):
    assert_same_exactly(fn, inputs)


# (s09) `out=` of a torch function in a staged loop: the loop's body wrote its operand `buf`
# without carrying it (torch.compile: dynamo's "Encountered input mutation during higher order
# op tracing"), where `buf.add_(v)` is carried as an update in place
def out_in_a_loop_with_a_break(x):
    buf = torch.zeros(())
    for i in range(x.shape[0]):
        if x[i] > 1.0:
            break
        torch.add(buf, x[i], out=buf)
    return buf


def out_under_an_if(x):
    buf = torch.ones(())
    for i in range(x.shape[0]):
        if x[i] > 0:
            torch.mul(buf, x[i], out=buf)
    return buf


def out_of_another_tensor(x):
    buf = torch.zeros(2)
    for i in range(x.shape[0]):
        if x[i].sum() > 5:
            break
        torch.add(x[i], 1.0, out=buf)
    return buf


def out_tuple(x):
    m = torch.zeros(())
    j = torch.zeros((), dtype=torch.long)
    for i in range(x.shape[0]):
        if x[i].sum() > 5:
            break
        torch.max(x[i], 0, out=(m, j))  # (the replay called torch.max with max=, max_values=)
    return m, j


def in_place_function(x):
    buf = torch.zeros(2)
    for i in range(x.shape[0]):
        if x[i].sum() > 5:
            break
        buf += x[i]
        torch.relu_(buf)
    return buf


def out_into_an_argument(x, buf):
    for i in range(x.shape[0]):
        if x[i].sum() > 5:
            break
        torch.add(buf, x[i], out=buf)
    return buf * 1


_PAIRS = [T([[1.0, 2.0], [-3.0, 1.0], [4.0, 4.0]]), T([[9.0, 2.0], [3.0, 1.0], [4.0, 0.0]]),
          T([[1.0, -2.0], [3.0, 1.0], [0.5, 0.0]])]


@pytest.mark.parametrize("fn, inputs", [
    (out_in_a_loop_with_a_break, [(T([0.5, 2.0, 0.1]),), (T([3.0, 0.2, 0.3]),),
                                  (T([0.1, 0.2, 0.3]),)]),
    (out_under_an_if, [(T([2.0, -1.0, 3.0]),), (T([-2.0, -1.0, 3.0]),)]),
    (out_of_another_tensor, [(x,) for x in _PAIRS]),
    (out_tuple, [(x,) for x in _PAIRS]),
    (in_place_function, [(x,) for x in _PAIRS]),
    (out_into_an_argument, [(x, torch.zeros(2)) for x in _PAIRS]),
], ids=["break", "if", "other_tensor", "tuple", "relu_", "argument"])
def test_out_keyword_in_a_staged_loop(fn, inputs):
    assert_same_exactly(fn, inputs)


def test_out_into_an_argument_updates_the_callers_tensor():
    for x in _PAIRS:
        want, got = torch.zeros(2), torch.zeros(2)
        out_into_an_argument(x, want)
        autoconv.autoconv(out_into_an_argument)(x, got)
        assert torch.equal(got, want)


# (s07) a loop's row rebound under a tensor `if` next to a counter in a dict (or list) of
# Python numbers: under torch.compile the counter's `+=` counted as an in-place update of a
# holder that may share the row's tensor ("`stats` is updated in place inside this statement,
# which reads `g`"); numbers, and the stand-ins a staged statement carries for them, are
# rebound by `+=`, never written into
def clip_counted_in_a_dict(x):
    stats = {"clipped": 0}
    total = torch.zeros(())
    for i in range(x.shape[0]):
        g = x[i]
        n = g.norm()
        if n > 1.0:
            g = g / n
            stats["clipped"] += 1
        total = total + g.sum()
        if n < 1e-3:
            break
    return torch.tensor(stats["clipped"]), total


def clip_counted_in_a_list(x):
    counts = [0, 0.0]
    total = torch.zeros(())
    for i in range(x.shape[0]):
        g = x[i]
        n = g.norm()
        if n > 1.0:
            g = g / n
            counts[0] += 1
            counts[1] += 0.5
        total = total + g.sum()
        if n < 1e-3:
            break
    return torch.tensor(counts[0]), torch.tensor(counts[1]), total


_CLIPPED = [(T([[3.0, 4.0], [0.1, 0.0], [0.0, 0.0], [5.0, 5.0]]),),
            (T([[0.3, 0.4], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0]]),)]


@pytest.mark.parametrize("fn", [clip_counted_in_a_dict, clip_counted_in_a_list],
                         ids=["dict", "list"])
def test_a_row_rebound_next_to_a_counter_of_python_numbers(fn):
    assert_same_exactly(fn, _CLIPPED)
