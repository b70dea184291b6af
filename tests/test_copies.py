"""`copy.copy`, `copy.deepcopy`, pickle and `torch.save` of `autoconv(model)` and of a Function:
the copy is the Function made anew, tracing on its first call (NOTE [a Function copied or
pickled] in autoconv/function.py)."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import autoconv


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.lin(x)
        return -x


@autoconv.autoconv
def halve_until_small(x):
    while x.abs().sum() > 1:
        x = x / 2
    return x


def _saved_and_loaded(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda o: pickle.loads(pickle.dumps(o)),
          "torch.save": _saved_and_loaded}
X, NEGATIVE = torch.ones(2, 4), -torch.ones(2, 4)


@pytest.mark.parametrize("how", list(COPIES))
def test_a_deep_copy_of_a_converted_module_is_its_own(how):
    # Regression: deepcopy failed with "cannot pickle 'module' object", pickle and torch.save
    # with "Can't pickle local object '_buffers_rebound_in_place.<locals>.call'" (break45b).
    torch.manual_seed(0)
    model = autoconv.autoconv(Gate().eval())
    model(X)
    twin = COPIES[how](model)
    assert type(twin) is type(model) and not twin.training and twin.trace_count == 0
    torch.testing.assert_close(twin(X), model(X))
    torch.testing.assert_close(twin(NEGATIVE), -NEGATIVE)
    with torch.no_grad():
        twin.lin.weight.add_(1.0)  # the copy's own parameters, the wrapper's tables the same
    assert twin.lin.weight is twin.python_function.lin.weight
    assert dict(twin.named_parameters()).keys() == dict(model.named_parameters()).keys()
    torch.testing.assert_close(twin(X), twin.python_function(X))
    assert not torch.equal(twin(X), model(X))
    torch.testing.assert_close(model(X), model.python_function(X))


def test_a_copy_keeps_the_wrappers_own_hook():
    model = autoconv.autoconv(Gate())
    model.register_forward_hook(_doubled)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(X), 2 * twin.python_function(X))
    loaded = pickle.loads(pickle.dumps(model))
    torch.testing.assert_close(loaded(X), 2 * loaded.python_function(X))


def _doubled(module, args, out):
    return out * 2


def test_a_shallow_copy_shares_the_module_and_traces_its_own_graphs():
    model = autoconv.autoconv(Gate())
    model(X)
    shallow = copy.copy(model)
    assert shallow.python_function is model.python_function and shallow.trace_count == 0
    torch.testing.assert_close(shallow(X), model(X))
    assert shallow.concrete_functions[0] is not model.concrete_functions[0]


def test_a_decorated_function_is_pickled_by_its_name():
    assert pickle.loads(pickle.dumps(halve_until_small)) is halve_until_small
    assert copy.deepcopy(halve_until_small) is halve_until_small
    torch.testing.assert_close(halve_until_small(torch.full((2,), 3.0)), torch.full((2,), 0.375))


def test_a_function_of_another_name_is_made_again():
    def local(x):
        return x * 2 if x.sum() > 0 else x

    function = autoconv.autoconv(local)
    function(X)
    twin = copy.deepcopy(function)
    assert twin is not function and twin.trace_count == 0 and twin.__name__ == "local"
    torch.testing.assert_close(twin(X), 2 * X)
    with pytest.raises((AttributeError, pickle.PicklingError), match="local"):
        pickle.dumps(function)  # a local function: pickle's own refusal
