"""break48: optim47's training steps inside converted code, tried by someone who did not write
them, against plain Python over four calls (the loss, the parameters, every entry of the
optimizer's state, a scheduler's state): forms optim47's own tests do not cover.

autoconv's replay only: torch.export traces no optimizer step and torch.compile breaks the graph
around torch.optim's step on purpose (tests/real/test_optim47.py's docstring).
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError


def _model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=0.01, foreach=True)


def _groups(model):
    return torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.2},
                            {"params": model[2].parameters()}], lr=0.05, momentum=0.5,
                           foreach=True)


def _adamw(model):
    return torch.optim.AdamW(model.parameters(), lr=0.01, amsgrad=True, fused=True)


def _loss(model, x, y):
    return ((model(x) - y) ** 2).mean()


def plain_step(model, opt, sched, x, y):
    loss = _loss(model, x, y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.detach()


def clipped_step(model, opt, sched, x, y):
    loss = _loss(model, x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    opt.step()
    opt.zero_grad()
    return loss.detach()


def scheduled_step(model, opt, sched, x, y):
    loss = _loss(model, x, y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    sched.step()
    return loss.detach()


def step_under_a_tensor_if(model, opt, sched, x, y):
    loss = _loss(model, x, y)
    loss.backward()
    if loss > 1.0:
        opt.step()
    opt.zero_grad()
    return loss.detach()


def two_steps_in_a_python_loop(model, opt, sched, x, y):
    for _ in range(2):
        loss = _loss(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.detach()


def accumulated_over_two_backwards(model, opt, sched, x, y):
    first = _loss(model, x[:2], y[:2])
    first.backward()
    second = _loss(model, x[2:], y[2:])
    second.backward()  # (the line the refusal names)
    opt.step()
    opt.zero_grad()
    return (first + second).detach()


def _two(make_optimizer, make_scheduler=None):
    made = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _model()
        opt = make_optimizer(model)
        made.append((model, opt, make_scheduler(opt) if make_scheduler else None))
    return made


def _calls():
    torch.manual_seed(1)
    return [(torch.randn(5, 3) * (1 if i % 2 else -3), torch.randn(5, 2)) for i in range(4)]


def _assert_steps_like_python(step, make_optimizer, make_scheduler=None):
    (m1, o1, s1), (m2, o2, s2) = _two(make_optimizer, make_scheduler)
    function = autoconv.autoconv(step)
    for x, y in _calls():
        torch.testing.assert_close(function(m2, o2, s2, x, y), step(m1, o1, s1, x, y))
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p2, p1)
        assert p2.grad is None and p1.grad is None
        assert set(o2.state[p2]) == set(o1.state[p1])
        for key, value in o1.state[p1].items():
            torch.testing.assert_close(o2.state[p2][key], value)
    if s1 is not None:
        assert s2.state_dict() == s1.state_dict()
        assert [g["lr"] for g in o2.param_groups] == [g["lr"] for g in o1.param_groups]


@pytest.mark.parametrize("make_optimizer", [_sgd, _groups, _adamw],
                         ids=["sgd_nesterov_weight_decay", "two_param_groups", "adamw_amsgrad_fused"])
@pytest.mark.parametrize("step", [plain_step, clipped_step, step_under_a_tensor_if,
                                  two_steps_in_a_python_loop])
def test_training_steps_match_python(step, make_optimizer):
    _assert_steps_like_python(step, make_optimizer)


def test_a_scheduler_stepped_in_the_function_matches_python():
    # (the learning rate a StepLR halves every second call: a Python float the next call's
    # trace reads anew)
    _assert_steps_like_python(scheduled_step, _sgd,
                              lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, 0.5))


def test_gradients_accumulated_over_two_backwards_are_refused_at_the_second():
    (model, opt, _), _ = _two(_sgd)
    x, y = _calls()[0]
    line = accumulated_over_two_backwards.__code__.co_firstlineno + 4
    with pytest.raises(StagingError, match=rf"test_break48_training\.py:{line}:.*\.backward\(\)"):
        autoconv.autoconv(accumulated_over_two_backwards)(model, opt, None, x, y)
