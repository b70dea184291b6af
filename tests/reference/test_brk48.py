"""Session 48's merged changes tried by a fresh engineer (brk48): the last call's tensors checked
by torch's C++ TensorGuards, constants given to bodies that write, tensor-method names on
attributes of self, functools.lru_cache helpers while traced; each checked against plain Python
in replay (traced once, called again on other arguments and paths) and torch.export."""

import contextlib
import functools

import pytest
import torch

import autoconv
from support import assert_close, assert_same_result

T = torch.tensor


def branch(x, y):
    if x.sum() > 0:
        return x * 2 + y
    return x - y


def _same(got, want):
    assert torch.equal(got.detach(), want.detach())
    assert (got.dtype, got.requires_grad, got.is_inference()) == (
        want.dtype, want.requires_grad, want.is_inference())


# --- the last call's tensors checked in C++ (NOTE [the last call's tensors checked in C++]) ---

def _calls():
    a, b = T([1., 2.]), T([3., 4.])
    with torch.inference_mode():
        ai, bi = T([1., 2.]), T([3., 4.])
    square = T([[1., 2.], [3., 4.]])
    image = torch.arange(12.).reshape(1, 3, 2, 2)
    yield (a, b), None
    yield (-a, b), None
    yield (square.t(), torch.ones(2, 2)), None  # strides
    yield (square, torch.ones(2, 2)), None
    yield (T([0., 1., 2.])[1:], b), None  # storage offset
    yield (a.double(), b.double()), None
    yield (a.double(), b), None
    yield (T([1, 2]), T([3, 4])), None
    yield (a.clone().requires_grad_(), b), None
    yield (a, b), None
    yield (ai, bi), None  # inference tensors
    yield (a, b), torch.inference_mode()
    yield (a, b), torch.no_grad()
    yield (a, b), None
    yield (torch.nn.Parameter(a.clone(), requires_grad=False), b), None
    yield (a, a), None  # one tensor twice
    yield (a, b), None
    yield (T(1.), T(2.)), None  # 0-d, then one element
    yield (T([1.]), T([2.])), None
    yield (T(1.), T(2.)), None
    yield (image.contiguous(memory_format=torch.channels_last), torch.ones(1, 3, 2, 2)), None
    yield (image, torch.ones(1, 3, 2, 2)), None
    yield (image.contiguous(memory_format=torch.channels_last), torch.ones(1, 3, 2, 2)), None
    yield (T([1.]).expand(2), b), None  # stride 0
    yield (T([1., 2j]).conj().imag, b), None  # a negative view
    yield (a, b), None


@pytest.mark.filterwarnings("ignore:branch has been traced")
def test_calls_alternating_what_the_cpp_check_compares():
    function = autoconv.autoconv(branch)
    for args, context in _calls():
        with context or contextlib.nullcontext():
            _same(function(*args), branch(*args))


def test_grad_mode_of_a_captured_parameter_between_calls():
    w = torch.ones(2, requires_grad=True)

    def scaled(x):
        if x.sum() > 0:
            return x * w
        return x + w

    function = autoconv.autoconv(scaled)
    for context in [None, torch.no_grad(), None, torch.inference_mode(), None]:
        with context or contextlib.nullcontext():
            _same(function(T([1., 2.])), scaled(T([1., 2.])))


def test_arguments_updated_in_place_between_calls():
    function = autoconv.autoconv(branch)
    a, b = T([1., 2.]), T([3., 4.])
    for step in range(3):
        _same(function(a, b), branch(a, b))
        a.sub_(2)
        b.mul_(step + 2)


def written_into_the_first(x, y):
    if y.sum() > 0:
        x.add_(y)
    return x + y


@pytest.mark.parametrize("make", [
    lambda: (torch.ones(4), torch.ones(4)),
    lambda: (lambda t: (t, t))(torch.ones(4)),
    lambda: (lambda t: (t[:2], t[2:]))(torch.ones(4)),
    lambda: (lambda t: (t, t[:]))(torch.ones(4)),
], ids=["apart", "twice", "halves", "a view"])
def test_a_graph_writing_its_arguments_after_a_call_of_others(make):
    function = autoconv.autoconv(written_into_the_first)
    function(torch.zeros(4), torch.ones(4))
    (x, y), (x2, y2) = make(), make()
    assert_close(function(x, y), written_into_the_first(x2, y2))
    assert_close(x, x2)


class Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("buf", torch.zeros(3))

    def forward(self, x):
        if x.sum() >= 0:
            self.buf.add_(1)
        return x * 2


def test_argument_sharing_memory_with_a_buffer_the_graph_writes():
    model, plain = Counting(), Counting()
    function = autoconv.autoconv(model)
    for given in ["ones", "buffer", "ones", "a view", "ones"]:
        def argument(m):
            return {"ones": torch.ones(3), "buffer": m.buf, "a view": m.buf[1:]}[given]
        assert_close(function(argument(model)), plain(argument(plain)))
        assert_close(model.buf, plain.buf)


# --- constants given to bodies that write (NOTE [constants given to bodies that write their
# own tensors]) ------------------------------------------------------------------------------

def constant_counted_by_a_loop(x):
    c = torch.tensor(1)
    i = 0
    while x.sum() > i:
        c.add_(1)
        i += 1
    return c


def constant_indexed_by_a_loop(x):
    c = torch.zeros(2)
    while x.sum() > 0:
        c[0] += 1
        x = x - 1
    return c


def constant_written_through_a_view(x):
    c = T([1.0, 2.0])
    v = c[1:]
    while x.sum() > 0:
        v.add_(1)
        x = x - 1
    return c


def constant_written_by_a_branch(x):
    c = T([1.0, 2.0])
    if x.sum() > 0:
        c.mul_(2)
    else:
        c.sub_(1)
    return c + x


@pytest.mark.parametrize("fn", [constant_counted_by_a_loop, constant_indexed_by_a_loop,
                                constant_written_through_a_view, constant_written_by_a_branch])
def test_constants_made_in_the_function_written_by_a_body(fn):
    inputs = [T([2.]), T([3.]), T([3.]), T([-1.]), T([2.])]
    function = autoconv.autoconv(fn)
    for x in inputs:  # the remembered last graph, call after call
        assert_close(function(x.clone()), fn(x.clone()))
    assert_same_result(fn, [(x,) for x in inputs], compile=False)
