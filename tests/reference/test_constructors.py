"""Reference tests: `Cls(...)` of a user class in converted code runs its converted `__init__`.

Its tensor `if`, `while` and `raise` are staged as any converted method's (NOTE [constructors of
user classes] in runtime/calls.py); a class whose metaclass has its own `__call__`, and a
dataclass's generated `__init__`, are called as they are (the `__post_init__` the latter calls
converted). Each case against plain Python
in autoconv's replay (traced once, replayed on inputs taking the other path), a saved and
loaded torch.export program and torch.compile(fullgraph=True).
"""

from __future__ import annotations

import abc
import dataclasses

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import assert_same_result, exported

T = torch.tensor


# --- a tensor `if` in `__init__` -----------------------------------------------------------------

class Scaled:
    def __init__(self, x, factor=2.0):
        self.scale = -x
        if x.sum() > 0:
            self.scale = x * factor


def scaled(x):
    return Scaled(x, factor=3.0).scale + 1


class Counted:
    def __init__(self, x):
        self.x, self.steps = x, torch.zeros((), dtype=torch.int64)
        while self.x.abs().sum() < 10:
            self.x = self.x * 2
            self.steps += 1


def counted(x):
    c = Counted(x)
    return c.x, c.steps


class Base:
    def __init__(self, x):
        self.x = x
        if x.sum() < 0:
            self.x = -x


class Derived(Base):
    def __init__(self, x, shift):
        super().__init__(x)
        self.x = self.x + shift


def derived(x):
    return Derived(x, 1.0).x


class Block(torch.nn.Module):
    def __init__(self, x):
        super().__init__()
        w = x * 3
        if x.sum() > 0:
            w = x
        self.register_buffer("w", w)

    def forward(self, y):
        return y * self.w


def block(x):
    return Block(x)(x + 1)


class Abstract(abc.ABC):
    def __init__(self, x):
        self.y = x
        if x.max() > 1:
            self.y = x / x.max()

    @abc.abstractmethod
    def value(self):
        ...


class Concrete(Abstract):
    def value(self):
        return self.y * 2


def concrete(x):
    return Concrete(x).value()


@pytest.mark.parametrize("fn", [scaled, counted, derived, block, concrete])
def test_a_tensor_condition_in_a_constructor_is_staged(fn):
    assert_same_result(fn, [(T([1.0, 2.0]),), (T([-1.0, -2.0]),), (T([4.0, 8.0]),)])


# --- `raise` under a tensor condition in `__init__` ----------------------------------------------

class Interval:
    def __init__(self, t0, t1):
        if t0 > t1:
            raise ValueError("t0 must not exceed t1")
        self.t0, self.t1 = t0, t1


def width(t0, t1):
    interval = Interval(t0, t1)
    return interval.t1 - interval.t0


class Checked:
    def __init__(self, t0, t1):
        self.t0, self.t1 = t0, t1
        if t0 > t1:
            raise ValueError("t0 must not exceed t1")


def checked_width(t0, t1):
    interval = Checked(t0, t1)
    return interval.t1 - interval.t0


def _outcome(run, args):
    try:
        return run(*args)
    except Exception as error:  # noqa: BLE001 - the outcome compared is the error's text
        return str(error).splitlines()[0].removeprefix("ValueError: ")


_ORDERED, _REVERSED = (T(0.0), T(1.0)), (T(2.0), T(1.0))


@pytest.mark.parametrize("fn", [width, checked_width])
def test_a_raise_in_a_constructor_is_a_graph_assertion(fn):
    with pytest.raises(ValueError, match="t0 must not exceed t1"):
        fn(*_REVERSED)
    concrete = autoconv.autoconv(fn).get_concrete_function(*_ORDERED)
    program = exported(fn, _ORDERED)
    for run in (concrete, program):
        assert _outcome(run, _ORDERED) == T(1.0)
        assert _outcome(run, _REVERSED) == "t0 must not exceed t1"


def test_a_raise_in_a_constructor_under_compile():
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(checked_width), fullgraph=True, backend="eager",
                             dynamic=False)
    assert _outcome(compiled, _ORDERED) == T(1.0)
    assert _outcome(compiled, _REVERSED) == "t0 must not exceed t1"


def test_a_raise_before_the_constructor_sets_its_attributes_is_refused_under_compile():
    # (the attributes are set in the branch that does not raise: under dynamo a staged body
    # cannot add an attribute, and the raising branch cannot become an assertion there)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(width), fullgraph=True, backend="eager",
                             dynamic=False)
    with pytest.raises(StagingError, match="has no attribute 't0' before the if statement"):
        compiled(*_ORDERED)


# --- objects made in staged bodies ---------------------------------------------------------------

def made_in_a_branch(x):
    # (bound before the `if`; one first bound in the branches: test_objects_bound_in_branches.py)
    made = Scaled(x * 2)
    if x.sum() > 0:
        made = Scaled(x)
    return made.scale


def made_in_a_loop(x):
    total = torch.zeros_like(x)
    while total.sum() < 20:
        total = total + Scaled(x).scale + 1
    return total


@pytest.mark.parametrize("fn", [made_in_a_branch, made_in_a_loop])
def test_an_object_made_in_a_staged_body(fn):
    assert_same_result(fn, [(T([1.0, 2.0]),), (T([-1.0, 2.0]),), (T([-1.0, -2.0]),)])


# --- classes called as they are ------------------------------------------------------------------

@dataclasses.dataclass
class Pair:
    a: torch.Tensor
    b: torch.Tensor = dataclasses.field(default_factory=lambda: torch.ones(2))


def dataclass_pair(x):
    pair = Pair(x)
    if x.sum() > 0:
        pair = Pair(x * 2, x)
    return pair.a + pair.b


def test_a_dataclass_runs_its_generated_init():
    assert_same_result(dataclass_pair, [(T([1.0, 2.0]),), (T([-1.0, -2.0]),)])


@dataclasses.dataclass
class Bounds:
    lo: torch.Tensor
    hi: torch.Tensor
    scale: dataclasses.InitVar[float] = 1.0

    def __post_init__(self, scale):
        if self.lo > self.hi:
            self.lo, self.hi = self.hi, self.lo
        self.width = (self.hi - self.lo) * scale


def interval_width(a, b):
    bounds = Bounds(a, b, 2.0)
    return bounds.lo, bounds.hi, bounds.width, "__post_init__" in vars(bounds)


def test_a_dataclass_runs_its_converted_post_init():
    # (the generated `__init__` as it is, calling the converted `__post_init__`: NOTE [a
    # dataclass's __post_init__] in runtime/calls.py)
    assert_same_result(interval_width, [(T(1.0), T(2.0)), (T(3.0), T(1.0))])


class Checking:
    """A user `__new__` (xitorch's LinearOperator checks its subclass's methods there)."""

    def __new__(cls, x):
        return super().__new__(cls)

    def __init__(self, x):
        self.x = x
        if x.sum() > 0:
            self.x = x * 2


class Other:
    def __new__(cls, x):  # (an object of another class: its `__init__` does not run)
        return Scaled(x)

    def __init__(self, x):
        raise AssertionError("not run: __new__ gave another class's object")


def checking(x):
    return Checking(x).x + Other(x).scale


def test_a_class_with_its_own_new_runs_its_converted_init():
    assert_same_result(checking, [(T([1.0, 2.0]),), (T([-1.0, -2.0]),)])


class Registry(type):
    def __call__(cls, *args):
        return super().__call__(*args)


class Registered(metaclass=Registry):
    def __init__(self, x):
        self.x = x
        if x.sum() > 0:
            self.x = x * 2


def registered(x):
    return Registered(x).x + 1


def test_a_tensor_condition_in_a_constructor_a_metaclass_calls_is_refused():
    # (the metaclass's `__call__` runs converted, and `type.__call__` runs `__init__` as it is)
    with pytest.raises(StagingError, match=r"the constructor Registered\.__init__"):
        autoconv.autoconv(registered)(T([1.0, 2.0]))


def test_the_constructor_of_a_converted_function_run_eagerly_is_python():
    # (no tracer: the converted function's fast path makes the object as Python does)
    assert autoconv.convert(scaled)(T([1.0, 2.0])).tolist() == [4.0, 7.0]


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, x):
        self.a = x * 2
        if x.sum() > 0:
            self.b = x + 1
        else:
            self.b = x - 1


def slotted(x):
    s = Slotted(x)
    return s.a + s.b


def test_a_slotted_class_whose_constructor_sets_a_field_in_a_tensor_if():
    # (a __slots__ object's fields are not carried: the replay specialises on the test, an
    # exported program holds the traced path and raises its guard's error on the other)
    function = autoconv.autoconv(slotted)
    for x in (T([3.0, 5.0]), T([-3.0, -5.0]), T([1.0, 1.0])):
        assert torch.equal(function(x), slotted(x))
    assert function.trace_count == 2


def test_a_slotted_class_whose_constructor_sets_a_field_in_a_tensor_if_compiled():
    # (dynamo refuses the store inside torch.cond itself, with no line of the user's: refused
    # before, at the store, lead49)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(slotted), fullgraph=True, backend="eager",
                             dynamic=False)
    with pytest.raises(StagingError, match=r"test_constructors.py:\d+: .*`self\.b` is set in "
                       r"the true branch, and 'self' is a Slotted, whose fields are `__slots__`"):
        compiled(T([3.0, 5.0]))


# --- objects of torch's classes ------------------------------------------------------------------

class ClippedSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                step = p.grad * group["lr"]
                if step.norm() > 0.5:
                    step = step * (0.5 / step.norm())
                p.sub_(step)


def descend(x):
    w = x.clone().requires_grad_(True)
    optimizer = ClippedSGD([w], lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
    return w.detach()


def test_an_optimizer_made_in_converted_code():
    # (its step's tensor `if` staged in autoconv's replay; under torch.compile dynamo cannot
    # make an optimizer: refused at the user's line, NOTE [objects dynamo cannot make])
    function = autoconv.autoconv(descend)
    for x in (T([1.0, 2.0]), T([0.1, -0.2]), T([-3.0, 4.0])):
        assert torch.allclose(function(x), descend(x))
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(descend), fullgraph=True, backend="eager",
                             dynamic=False)
    with pytest.raises(StagingError, match=r"test_constructors.py:\d+: .*`ClippedSGD\(\.\.\.\)` "
                       r"makes an optimizer under torch.compile"):
        compiled(T([1.0, 2.0]))


def linear_made_per_call(x):
    lin = torch.nn.Linear(3, 2)
    y = lin(x)
    if y.sum() > 0:
        y = y * 2
    else:
        y = y - 1
    return y


def test_a_module_with_parameters_made_per_call():
    # Replayed and exported, the graph draws the weights as Python does (seeded before each
    # call: seed 2 takes the `if`, the others the `else`); under torch.compile(fullgraph=True)
    # dynamo cannot make a Parameter (its own error for plain Python too): refused at the
    # user's line (NOTE [modules made under torch.compile]); it stopped in dynamo's
    # "Attempted to use `torch.nn.Parameter()` constructor" before session 51
    x = T([[1.0, 2.0, 4.0], [0.0, 3.0, 5.0]])
    function, program = autoconv.autoconv(linear_made_per_call), exported(linear_made_per_call,
                                                                          (x,))
    sums = []
    for seed in range(4):
        torch.manual_seed(seed)
        want = linear_made_per_call(x).detach()
        torch.manual_seed(seed)
        assert torch.allclose(function(x), want)
        torch.manual_seed(seed)
        assert torch.allclose(program(x), want)
        sums.append(round(want.sum().item(), 3))
    assert sums == [-5.983, -4.965, 4.49, -13.166]
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(linear_made_per_call), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match=r"test_constructors.py:\d+: .*`Linear\(\.\.\.\)` "
                       r"makes a torch.nn.Parameter under torch.compile\(fullgraph=True\)"):
        compiled(x)


def parameters_made_per_call(x):
    norm = torch.nn.LayerNorm(3)
    return norm(x) * torch.nn.Parameter(torch.ones(3))


def test_a_parameter_made_under_compile_is_refused_at_its_line():
    # (`nn.LayerNorm(3)` makes its weight and bias; `nn.Parameter(...)` is one, refused
    # whatever its arguments: dynamo cannot make any)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(parameters_made_per_call), fullgraph=True,
                             backend="eager")
    line = parameters_made_per_call.__code__.co_firstlineno + 1
    with pytest.raises(StagingError, match=rf"test_constructors.py:{line}: .*`LayerNorm"):
        compiled(T([[1.0, 2.0, 4.0]]))


def modules_without_parameters(x):
    norm = torch.nn.LayerNorm(3, elementwise_affine=False)
    y = torch.nn.Softmax(dim=-1)(norm(x))
    if x.sum() > 0:
        y = y * 2
    return y


def test_modules_without_parameters_made_per_call():
    # (made in the graph under torch.compile as before: the probe finds no parameters)
    x = T([[1.0, 2.0, 4.0], [0.0, 3.0, 5.0]])
    assert_same_result(modules_without_parameters, [(x,), (-x,)])
