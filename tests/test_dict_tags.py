"""A graph's captured places checked by the dicts' version tags (NOTE [dict version tags] in
autoconv/captures.py): once a graph's tags are taken, a call whose dicts all kept their tags
skips the per-place pipelines. Each test replays a graph until the tags are in use, then
changes what it reads, and compares with plain Python on the next calls."""

import collections
import types

import pytest
import torch

import autoconv
from autoconv import captures

_WARM = captures._TAG_WAIT + 2  # calls before a change: the tags are in use from the last


def _tags_in_use(function) -> bool:
    return any(concrete._captured._tags is not None for concrete in function.concrete_functions)


needs_tags = pytest.mark.skipif(captures._tag_kinds() is None,
                                reason="no dict version tags in this Python / torch")


class Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 2.0

    def forward(self, x):
        return x * self.scale


def _stack():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), Scaled(),
                               torch.nn.Linear(4, 3)).eval()


def _warm(function, x):
    for _ in range(_WARM):
        function(x)
    assert _tags_in_use(function)


def _same_as_eager(model, function, x):
    with torch.no_grad():
        expected = model(x)
        for _ in range(3):  # (the call that sees the change, and the ones after it)
            torch.testing.assert_close(function(x), expected)


def _add_hook(model):
    model[1].register_forward_hook(lambda module, inputs, output: output + 1.0)


def _remove_hooks(model):
    model[1]._forward_hooks.clear()


def _rebind_hook_table(model):
    # (a table rebound, then a hook in the new one: the tags follow the table held now)
    model[1]._forward_hooks = collections.OrderedDict()
    _add_hook(model)


def _pre_hook(model):
    model[3].register_forward_pre_hook(lambda module, inputs: (inputs[0] * 0.5,))


def _replace_submodule(model):
    model[3] = torch.nn.Linear(4, 3)


def _swap_submodules(model):
    model[0], model[3] = model[3], model[0]
    model[0], model[3] = model[3], model[0]  # the same objects, in place again
    model._modules["2"] = Scaled()  # another object at one key, the same length


def _reorder_submodules(model):
    relu = model._modules.pop("1")
    model._modules["1"] = relu  # the same submodules and names, another order


def _change_number(model):
    model[2].scale = 3.0


def _rebind_parameter(model):
    model[0].weight = torch.nn.Parameter(torch.ones(4, 4))


def _append_submodule(model):
    model.append(torch.nn.Tanh())


def _set_submodule_mode(model):
    model[1].train()


CHANGES = [_add_hook, _remove_hooks, _rebind_hook_table, _pre_hook, _replace_submodule,
           _swap_submodules, _reorder_submodules, _change_number, _rebind_parameter,
           _append_submodule, _set_submodule_mode]


@needs_tags
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__.strip("_"))
def test_a_module_changed_after_its_graph_is_tagged_matches_eager(change):
    model = _stack()
    if change is _remove_hooks:
        _add_hook(model)
    function = autoconv.autoconv(model)
    x = torch.randn(5, 4)
    with torch.no_grad():
        _warm(function, x)
        change(model)
        _same_as_eager(model, function, x)


CONFIG = {"scale": 2.0, "shift": torch.tensor(1.0)}
SCALE = 2.0


def from_a_config(x):
    return x * CONFIG["scale"] + CONFIG["shift"]


def from_a_global(x):
    return x * SCALE


@needs_tags
def test_a_global_dicts_items_changed_after_tagging():
    function = autoconv.autoconv(from_a_config)
    x = torch.randn(3)
    _warm(function, x)
    CONFIG["scale"] = 5.0
    try:
        torch.testing.assert_close(function(x), x * 5.0 + 1.0)
        CONFIG["shift"] = torch.tensor(-1.0)  # a tensor rebound: the graph's constant was the old
        torch.testing.assert_close(function(x), x * 5.0 - 1.0)
    finally:
        CONFIG["scale"], CONFIG["shift"] = 2.0, torch.tensor(1.0)


def test_a_global_rebound_on_every_call_is_read_each_time():
    # A script's top-level loop rebinds the module's globals between calls: their namespace is
    # read place by place on every call, never by its tag (which moves on every call).
    global SCALE
    function = autoconv.autoconv(from_a_global)
    x = torch.randn(3)
    try:
        for step in range(2 * _WARM):
            SCALE = float(step % 3)
            torch.testing.assert_close(function(x), x * SCALE)
    finally:
        SCALE = 2.0


def test_tags_of_a_module_changed_before_each_call_stop_being_taken(monkeypatch):
    # (a training loop setting a Python attribute the graph does not read: the module's
    # `__dict__`'s tag moves on every call, and the places the pipelines read still hold)
    taken = []
    make = captures._version_tags
    monkeypatch.setattr(captures, "_version_tags", lambda tables: taken.append(1) or make(tables))
    model = _stack()
    function = autoconv.autoconv(model)
    x = torch.randn(5, 4)
    with torch.no_grad():
        expected = model(x)
        for step in range(8 * captures._TAG_WAIT):
            model[0].step = step
            torch.testing.assert_close(function(x), expected)
    assert function.trace_count == 1
    assert len(taken) <= captures._TAG_MISSES + 1  # (taken again after each miss, then never)


@needs_tags
def test_a_held_config_objects_number_changed_after_tagging():
    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = types.SimpleNamespace(inner=types.SimpleNamespace(gain=2.0))

        def forward(self, x):
            return x * self.cfg.inner.gain

    model = Head()
    function = autoconv.autoconv(model)
    x = torch.randn(3)
    _warm(function, x)
    model.cfg.inner.gain = 4.0
    torch.testing.assert_close(function(x), x * 4.0)
    model.cfg.inner = types.SimpleNamespace(gain=0.5)
    torch.testing.assert_close(function(x), x * 0.5)


@needs_tags
def test_a_global_hook_registered_after_tagging():
    model = _stack()
    function = autoconv.autoconv(model)
    x = torch.randn(5, 4)
    with torch.no_grad():
        _warm(function, x)
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda module, inputs, output: output * 2 if isinstance(module, Scaled) else None)
        try:
            _same_as_eager(model, function, x)
        finally:
            handle.remove()
        _same_as_eager(model, function, x)
