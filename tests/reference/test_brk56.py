"""Reference tests: brk56 (issue 10), breaking what Session 55 merged (perf55's module patches:
a user module overriding `__call__`)."""

import pytest
import torch

import autoconv
from support import _saved_and_loaded, assert_same_result

T = torch.tensor


class _Scaled(torch.nn.Module):
    """A module whose own `__call__` scales what nn.Module's call gives."""

    def __init__(self):
        super().__init__()
        self.k = 2.0

    def __call__(self, x):
        return super().__call__(x) * self.k

    def forward(self, x):
        return x + 1


class _Branching(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scaled = _Scaled()

    def forward(self, x):
        if x.sum() > 0:
            return self.scaled(x)
        return -x


_BRANCHING = _Branching()


def _calls_a_module_with_its_own_call(x):
    return _BRANCHING(x)


# (A submodule whose class defines `__call__` was called as its forward alone, the `__call__`
# skipped, in every mode, a staged `if` around it or not: [2, 3] for Python's [4, 6], [4, 4]
# for [8, 8]. NOTE [a module's own __call__] in runtime/calls.py.)
def test_a_module_with_its_own_call_runs_it():
    inputs = [T([1.0, 2.0]), T([-5.0, 1.0]), T([3.0, 3.0])]
    assert [_calls_a_module_with_its_own_call(x).tolist() for x in inputs] == [
        [4.0, 6.0], [5.0, -1.0], [8.0, 8.0]]
    assert_same_result(_calls_a_module_with_its_own_call, inputs)


class _BranchingForward(_Scaled):
    def forward(self, x):
        if x.sum() > 0:
            return x + 1
        return x - 1


def test_a_module_with_its_own_call_and_a_staged_forward():
    module = _BranchingForward()
    module.k = 3.0
    inputs = [T([1.0, 2.0]), T([-5.0, 1.0])]
    want = [[6.0, 9.0], [-18.0, 0.0]]
    assert [module(x).tolist() for x in inputs] == want
    staged = autoconv.autoconv(lambda x: module(x) + 0)
    assert [staged(x).tolist() for x in inputs] == want
    module.k = 5.0  # (a field the `__call__` reads, changed between calls: guarded)
    assert staged(inputs[0]).tolist() == [10.0, 15.0]


# (The module given to autoconv itself defining `__call__`: autoconv(module) runs its forward
# alone, the `__call__` skipped: [2, 3] for Python's [4, 6] in replay; found by brk56, open.)
def test_autoconv_of_a_module_with_its_own_call_is_refused():
    # (silently wrong until the lead's refusal: autoconv(module) traced `forward` alone, [2, 3]
    # for Python's [4, 6]; a function calling the module runs the `__call__`, test above)
    module = _BranchingForward()
    assert module(T([1.0, 2.0])).tolist() == [4.0, 6.0]
    with pytest.raises(autoconv.ConversionError,
                       match=r"_BranchingForward, whose class defines its own `__call__`.*"
                       r"autoconv\(lambda x: module\(x\)\)") as refused:
        autoconv.autoconv(module)
    assert refused.value.filename == __file__
    assert refused.value.lineno == type(module).__call__.__code__.co_firstlineno


def _init_half(m):
    if isinstance(m, torch.nn.Linear):
        for p in m.parameters():
            torch.nn.init.constant_(p, 0.5)


class _Initialised(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        self.apply(_init_half)
        if x.sum() > 0:
            y = self.lin(x)
        else:
            y = x * 2
        return y


# `nn.init.constant_` dispatches `__torch_function__` itself and ran its `torch.no_grad()`
# unseen by the trace: the graph filled the parameter with grad on, and the replay raised
# torch's "a leaf Variable that requires grad is being used in an in-place operation" where
# Python initialises it (brk56; NOTE [grad-mode changes inside torch's Python functions]).
def test_an_init_applied_in_forward_replays_with_its_no_grad():
    inputs = [T([1.0, 2.0]), T([-1.0, -2.0])]
    want = [[2.0, 2.0], [-2.0, -4.0]]
    assert [_Initialised()(x).tolist() for x in inputs] == want
    module = _Initialised()
    staged = autoconv.autoconv(module)
    assert [staged(x).tolist() for x in inputs] == want
    with torch.no_grad():
        module.lin.weight.fill_(3.0)  # (initialised again by the next call, as in Python)
    out = staged(inputs[0])
    out.sum().backward()
    assert out.tolist() == [2.0, 2.0] and staged.trace_count == 1
    assert module.lin.weight.grad.tolist() == [[1.0, 2.0], [1.0, 2.0]]
    exported = _saved_and_loaded(autoconv.convert(_Initialised()), (inputs[0],))
    assert [exported(x).tolist() for x in inputs] == want
