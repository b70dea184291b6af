"""`@autoconv` on a method (NOTE [a Function as a method] in autoconv/function.py): each
instance gets its own Function of the bound method, its graphs read that instance's
attributes, and a module's decorated `forward` runs as the module, under torch.export and
torch.compile too. Plain Python is the reference."""

import dataclasses
import io

import torch
from torch import nn

import autoconv
from support import COND, assert_close, count_ops


class Scaler:
    def __init__(self, k):
        self.k = k
        self.offset = torch.tensor(1.0)

    @autoconv.autoconv
    def apply(self, x):
        if x.sum() > 0:
            return x * self.k + self.offset
        return x - self.offset


def _plain(instance, method, *args):
    return getattr(type(instance), method).python_function(instance, *args)


def test_a_decorated_method_binds_its_instance():
    # before: the Function was called with `x` alone ("missing a required argument: 'x'")
    a, b = Scaler(2.0), Scaler(3.0)
    x = torch.tensor([1.0, 2.0])
    for _ in range(2):
        for obj in (a, b):
            for v in (x, -x):
                assert_close(obj.apply(v), _plain(obj, "apply", v))
    assert a.apply is a.apply  # one Function per instance, its graphs reused
    assert a.apply.trace_count == 1 and b.apply.trace_count == 1
    assert count_ops(a.apply.concrete_functions[0].graph_module, COND) == 1


def test_a_bound_method_sees_its_instance_change():
    obj = Scaler(2.0)
    x = torch.tensor([1.0, 2.0])
    obj.apply(x)
    obj.k = 5.0
    obj.offset = torch.tensor(-4.0)
    assert_close(obj.apply(x), _plain(obj, "apply", x))


def test_called_through_the_class_the_instance_is_an_argument():
    obj = Scaler(2.0)
    x = torch.tensor([1.0, -3.0])
    assert_close(Scaler.apply(obj, x), _plain(obj, "apply", x))
    assert isinstance(Scaler.apply, autoconv.Function)


@dataclasses.dataclass
class Clipper:  # a dataclass: unhashable (eq=True), so no dict key
    bound: float

    @autoconv.autoconv
    def clip(self, x):
        while x.abs().max() > self.bound:
            x = x * 0.5
        return x


class Slotted:  # no weak references: a Function per lookup, still right
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    @autoconv.autoconv
    def twice(self, x):
        if x.sum() > 0:
            return x * self.k
        return x


def test_methods_of_unhashable_and_slotted_instances():
    x = torch.tensor([8.0, -3.0])
    for obj in (Clipper(1.0), Clipper(5.0)):
        assert_close(obj.clip(x), _plain(obj, "clip", x))
    for obj in (Slotted(2.0), Slotted(3.0)):
        assert_close(obj.twice(x), _plain(obj, "twice", x))


class Net(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.k = k

    @autoconv.autoconv
    def forward(self, x):
        y = self.lin(x)
        if y.sum() > 0:
            y = y * self.k
        else:
            y = y - 1
        if self.training:
            y = y + 100
        return y


def test_a_module_whose_forward_is_decorated():
    torch.manual_seed(0)
    a, b = Net(2.0), Net(3.0)
    x = torch.randn(3, 2)
    for model in (a, b, a):
        for v in (x, -x):
            assert_close(model(v), _plain(model, "forward", v))
    a.eval()
    assert_close(a(x), _plain(a, "forward", x))
    with torch.no_grad():
        a.lin.weight.add_(1.0)  # in place: the same graph reads it
    assert_close(a(x), _plain(a, "forward", x))
    a.lin.weight = nn.Parameter(torch.ones(2, 2))  # rebound: traced again
    assert_close(a(x), _plain(a, "forward", x))
    a(x).sum().backward()
    assert a.lin.weight.grad is not None

    compiled = torch.compile(b, fullgraph=True, backend="eager")
    for v in (x, -x):
        assert_close(compiled(v), _plain(b, "forward", v))

    b.eval()
    program = torch.export.export(b, (x,), strict=False)
    assert count_ops(program.graph_module, COND) == 1
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer).module()
    for v in (x, -x):
        assert_close(loaded(v), _plain(b, "forward", v))
