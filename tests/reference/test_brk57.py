"""Reference tests: brk57 (issues 9 and 10), breaking what Session 56 merged as a new user
would: tied weights (tied56), a module's own fields, tensors held in tuples (tup56).

Each case against plain Python in autoconv's replay (traced once, replayed on inputs taking the
other path, the module changed between calls), torch.export and torch.compile(fullgraph=True).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import autoconv
from support import _saved_and_loaded, assert_same_result

T = torch.tensor


class SharedLayer(nn.Module):
    """One layer used twice (`self.dec = self.enc`): its weight under two names, one table."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(2, 2, bias=False)
        self.dec = self.enc
        with torch.no_grad():
            self.enc.weight.copy_(torch.eye(2))

    def forward(self, x):
        h = self.enc(x)
        if h.sum() > 0:
            h = h * 2
        return self.dec(h)


def _untie(m):
    m.dec = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.dec.weight.copy_(torch.eye(2) * 3)


def _outputs(run, module, calls):
    out = []
    for x, change in calls:
        if change is not None:
            change(module)
        out.append(run(x.clone()).detach())
    return out


def test_a_layer_used_twice_leaves_the_module_its_own_weight():
    # (was: LeakedTraceValue at the first call, and the module's weight a FakeTensor after it:
    # torch's _reparametrize_module put the trace's tensor back under the second name)
    m = SharedLayer()
    weight = m.enc.weight
    got = autoconv.autoconv(m)(T([1.0, 1.0]))
    assert torch.equal(got.detach(), T([2.0, 2.0]))
    assert m.enc.weight is weight and m.dec.weight is weight


def test_a_layer_used_twice_then_the_second_name_replaced_traces_again():
    # (was silently the shared weight: [2, 2] for Python's [6, 6], then [-1, 1] for [-3, 3]:
    # the second name's submodule was not guarded, the module walked under its first name)
    calls = [(T([1.0, 1.0]), None), (T([1.0, 1.0]), _untie), (T([-1.0, 1.0]), None)]
    python = SharedLayer()
    want = _outputs(python, python, calls)
    assert [w.tolist() for w in want] == [[2.0, 2.0], [6.0, 6.0], [-3.0, 3.0]]
    m = SharedLayer()
    f = autoconv.autoconv(m)
    for got, w in zip(_outputs(f, m, calls), want):
        assert torch.equal(got, w)
    assert f.trace_count == 2
    torch._dynamo.reset()
    m = SharedLayer()
    compiled = torch.compile(autoconv.convert(m), fullgraph=True, backend="eager")
    for got, w in zip(_outputs(compiled, m, calls), want):
        assert torch.equal(got, w)


def test_a_layer_used_twice_exports():
    program = _saved_and_loaded(autoconv.convert(SharedLayer()), (T([1.0, 1.0]),))
    assert torch.equal(program(T([1.0, 1.0])), T([2.0, 2.0]))
    assert torch.equal(program(T([-1.0, 1.0])), T([-1.0, 1.0]))


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("n", torch.zeros(()))

    def forward(self, x):
        self.n = self.n + 1  # (a buffer rebound: NOTE [rebound buffers])
        return x * self.n


class CountedTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Counter()
        self.b = self.a

    def forward(self, x):
        y = self.a(x)
        if y.sum() > 0:
            y = y + 1
        return self.b(y)


def test_a_buffer_rebound_by_a_layer_used_twice_is_kept():
    # Python: n counts 1, 2 in the first call (4 = (1 + 1) * 2), 3, 4 in the second ...
    calls = [(T([1.0]), None), (T([-1.0]), None), (T([1.0]), None)]
    want = [T([4.0]), T([-12.0]), T([36.0])]
    python = CountedTwice()
    assert all(torch.equal(g, w) for g, w in zip(_outputs(python, python, calls), want))
    m = CountedTwice()
    f = autoconv.autoconv(m)
    assert all(torch.equal(g, w) for g, w in zip(_outputs(f, m, calls), want))
    assert m.a.n.item() == 6.0 and f.trace_count == 1



class LazyHead(nn.Module):
    """A lazy layer (parameters made at the first call, from the input's shape)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.LazyLinear(2)

    def forward(self, x):
        y = self.lin(x)
        if x.sum() > 0:
            y = y * 2
        return y


LAZY_CALLS = [T([[1.0, 1.0, 1.0]]), T([[-1.0, 1.0, -1.0]]), T([[2.0, 0.0, 0.0]])]


def _lazy_outputs(run):
    torch.manual_seed(0)  # (the parameters are drawn at the first call)
    return [run(x).detach() for x in LAZY_CALLS]


def test_a_lazy_layer_is_made_by_the_first_call():
    # (was refused: "lin.weight is a tensor of the torch.Tensor subclass
    # UninitializedParameter"; the first call now runs as Python, the next ones the graph)
    want = _lazy_outputs(LazyHead())
    m = LazyHead()
    f = autoconv.autoconv(m)
    assert all(torch.equal(g, w) for g, w in zip(_lazy_outputs(f), want))
    assert f.trace_count == 1 and m.lin.weight.shape == (2, 3)


def test_a_lazy_layer_under_torch_compile():
    # (was dynamo's "IndexError: list index out of range" at its guards: NOTE [a lazy module's
    # first call under dynamo])
    want = _lazy_outputs(LazyHead())
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(LazyHead()), fullgraph=True, backend="eager")
    got = _lazy_outputs(compiled)
    assert all(torch.allclose(g, w) for g, w in zip(got, want))


class MadeAtFirstCall(nn.Module):
    """State made by the forward at its first call, as a buffer or a parameter; and a Python
    count and list the forward changes on every call."""

    def __init__(self, how):
        super().__init__()
        self.how, self.calls, self.log = how, 0, []

    def forward(self, x):
        self.calls += 1
        self.log.append(self.calls)
        if not hasattr(self, "scale"):
            made = torch.ones_like(x) * 3
            if self.how == "buffer":
                self.register_buffer("scale", made)
            else:
                self.scale = nn.Parameter(made)
        y = x * self.scale
        if y.sum() > 0:
            y = y + 1
        return y


@pytest.mark.parametrize("how", ["buffer", "parameter"])
def test_state_made_by_the_first_call(how):
    # (was LeakedTraceValue, "a bug in autoconv": NOTE [module state made by its first call])
    xs = [T([1.0, 2.0]), T([-1.0, -2.0]), T([1.0, 2.0])]
    m = MadeAtFirstCall(how)
    f = autoconv.autoconv(m)
    got = [f(x).detach().tolist() for x in xs]
    assert got == [[4.0, 7.0], [-3.0, -6.0], [4.0, 7.0]]
    # (the first call's trace, given up, counts: the second call's graph serves the third)
    assert (m.calls, m.log, f.trace_count) == (3, [1, 2, 3], 2)
    assert type(m.scale) is (nn.Parameter if how == "parameter" else torch.Tensor)


class Held:
    def __init__(self, x, cfg):
        self.x = x
        self.cfg = cfg


def _summed_into_a_tuple_held_tensor(x):
    s = Held(x, (torch.tensor([1.0]), 2.0))
    for v in x:
        if v > 0:
            s.cfg[0].add_(v)
    return s.cfg[0] * 1


def _updated_in_a_tuple_held_in_a_staged_if(x):
    t = torch.tensor([1.0])
    s = Held(x, (t, 2.0))
    if s.x.sum() > 0:
        s.cfg[0].add_(1)
    return s.cfg[0] * s.x, t * 1


def test_a_tensor_a_tuple_holds_updated_in_a_staged_if():
    # (tup56's open shape: the update was lost, [1, -1, 2] for Python's [2, -1, 4] in the
    # replay, dynamo's "`is_not` of two tuples" under torch.compile: NOTE [a kept tuple's
    # tensors] in runtime/operators.py)
    assert_same_result(_updated_in_a_tuple_held_in_a_staged_if,
                       [(T([1.0]),), (T([-1.0]),), (T([2.0]),)])


def test_a_tensor_a_tuple_holds_updated_in_a_staged_for():
    # (was [1, 1, 1] for Python's [5, 3, 1] in the replay and the exported program, dynamo's
    # error under torch.compile)
    xs = [(T([1.0, 3.0]),), (T([-1.0, 2.0]),), (T([-1.0, -2.0]),)]
    assert [_summed_into_a_tuple_held_tensor(*x).tolist() for x in xs] == [[5.0], [3.0], [1.0]]
    assert_same_result(_summed_into_a_tuple_held_tensor, xs)
