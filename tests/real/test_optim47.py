"""optim47: torch.optim steps inside a training step under autoconv, against plain Python over
several calls: the loss, the parameters and every entry of the optimizer's state, `step`
included.

A training step is autoconv's replay only: torch.export traces no optimizer step (an exported
program takes tensors and gives tensors; it does not update a caller's optimizer), and
torch.compile(fullgraph=True) refuses torch.optim's step with or without autoconv (torch breaks
the graph on purpose around every step: `torch._dynamo.graph_break()` in optimizer.py's
`_use_grad`, pytorch#104053).

- Adam / AdamW / Adagrad built with `fused=True`, and SGD / RMSprop / Rprop / Adadelta built with
  `foreach=True` or `fused=True`, updated nothing, silently: their kernels write lists of
  tensors, which the trace did not count as writes into the parameters, so it read them again
  as fresh inputs without `.grad` (NOTE [writes into lists of tensors] in
  autoconv/graph_passes.py). Now staged.
- A foreach step counting `state["step"]` (a 0-d CPU tensor) was counted twice per call: the
  fake trace ran `_foreach_add_` on it for real (NOTE [outside tensors updated while tracing]).
- Adam, AdamW, Adagrad, NAdam, RAdam, Adamax and ASGD as constructed by default read their step
  count into a Python float: refused at the line that steps, naming the optimizer and
  `fused=True` (NOTE [optimizer steps that read their count]), no longer a RuntimeError
  without a line.
- `loss.backward()` over the parameters of a module the function is given (or `self`'s) was
  refused; traced as `torch.autograd.grad` with the gradients stored into `.grad` where they
  were None (NOTE [backward into gradients from outside] in runtime/gradients.py).
- A call leaving a new `.grad` in such a parameter left the trace's FakeTensor there,
  silently: refused, put back (NOTE [gradients left by the call] in autoconv/capture.py).
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError


def _step(model, opt, x, y):
    loss = ((model(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for p, g in zip(model.parameters(), grads):
        p.grad = g
    opt.step()  # (the line the refusals name)
    opt.zero_grad()
    return loss.detach()


_STEP_LINE = _step.__code__.co_firstlineno + 5


def _step_backward(model, opt, x, y):
    # (the usual form: NOTE [backward into gradients from outside])
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.detach()


def _pair(make_optimizer):
    made = []
    for _ in range(2):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        made.append((model, make_optimizer(model.parameters())))
    return made


def _assert_same_state(o1, m1, o2, m2):
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2)
        assert set(o1.state[p1]) == set(o2.state[p2])
        for key, value in o2.state[p2].items():
            torch.testing.assert_close(o1.state[p1][key], value)


_STAGED = {
    "adam_fused": lambda ps: torch.optim.Adam(ps, lr=0.01, fused=True),
    "adamw_fused_amsgrad": lambda ps: torch.optim.AdamW(ps, lr=0.01, fused=True, amsgrad=True),
    "adagrad_fused": lambda ps: torch.optim.Adagrad(ps, lr=0.1, fused=True),
    "sgd_momentum_foreach": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=True),
    "sgd_nesterov_fused": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                                     fused=True),
    "rmsprop_foreach": lambda ps: torch.optim.RMSprop(ps, lr=0.01, foreach=True),
    "rprop_foreach": lambda ps: torch.optim.Rprop(ps, lr=0.01, foreach=True),
    "adadelta": lambda ps: torch.optim.Adadelta(ps, lr=1.0),
}


@pytest.mark.parametrize("step", [_step, _step_backward])
@pytest.mark.parametrize("name", sorted(_STAGED))
def test_optimizer_steps_like_python_over_calls(name, step):
    (m1, o1), (m2, o2) = _pair(_STAGED[name])
    run = autoconv.autoconv(step)
    torch.manual_seed(1)
    counts = []
    for i in range(4):
        x, y = torch.randn(8, 3) * (3 if i % 2 else 0.5), torch.randn(8, 2)
        torch.testing.assert_close(run(m1, o1, x, y), step(m2, o2, x, y))
        assert all(p.grad is None for p in m1.parameters())
        _assert_same_state(o1, m1, o2, m2)
        counts.append(run.trace_count)
    assert counts[-1] == counts[-2]  # (the step's graph holds once the state is filled)


_REFUSED = {
    "Adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "AdamW": lambda ps: torch.optim.AdamW(ps, lr=0.01),
    "Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
    "Adam foreach": lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=True),
    "NAdam": lambda ps: torch.optim.NAdam(ps),
    "ASGD": lambda ps: torch.optim.ASGD(ps),
}


@pytest.mark.parametrize("name", sorted(_REFUSED))
def test_optimizer_reading_its_step_count_is_refused_at_the_step(name):
    (m1, o1), (m2, o2) = _pair(_REFUSED[name])
    run = autoconv.autoconv(_step)
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    kind = name.split()[0]
    fix = "fused=True" if kind in ("Adam", "AdamW", "Adagrad") else "capturable=True"
    # (a first call fills the state; the next one reads the count of a filled state)
    for _ in range(2):
        with pytest.raises(StagingError, match=rf"{__file__}:{_STEP_LINE}:.*torch\.optim\.{kind} "
                           rf"reads its step count.*{fix}.*outside the autoconv function"):
            run(m1, o1, x, y)
        # (the call left the caller's objects as they were)
        _assert_same_state(o1, m1, o2, m2)
        _step(m1, o1, x, y), _step(m2, o2, x, y)


def test_a_step_count_read_outside_a_step_is_not_refused_as_one():
    # (a count the function reads itself, not torch.optim's step: guarded as any value read)
    (model, opt), _ = _pair(lambda ps: torch.optim.Adam(ps, lr=0.01))
    _step(model, opt, torch.randn(8, 3), torch.randn(8, 2))

    @autoconv.autoconv
    def warmup(opt, x):
        count = opt.state[opt.param_groups[0]["params"][0]]["step"]
        return x * min(1.0, count.item() / 10)

    x = torch.ones(2)
    assert torch.equal(warmup(opt, x), x * 0.1)


class _Trainer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x)

    def train_step(self, opt, x, y):
        loss = ((self(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.detach()


def test_a_modules_training_method_steps_like_python():
    made = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _Trainer()
        made.append((model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)))
    (m1, o1), (m2, o2) = made
    run = autoconv.autoconv(m1.train_step)
    torch.manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(8, 3), torch.randn(8, 2)
        torch.testing.assert_close(run(o1, x, y), m2.train_step(o2, x, y))
        _assert_same_state(o1, m1, o2, m2)


def _accumulate(model, x, y):
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    return loss.detach()


def _step_without_clearing(model, opt, x, y):
    loss = ((model(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for p, g in zip(model.parameters(), grads):
        p.grad = g
    opt.step()
    return loss.detach()


@pytest.mark.parametrize("fn", [_accumulate, _step_without_clearing])
def test_gradients_left_in_the_callers_parameters_are_refused_and_put_back(fn):
    # (NOTE [gradients left by the call]: the trace left its FakeTensor in each `.grad`,
    # silently, and a replay stored nothing there)
    (model, opt), _ = _pair(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    weight = model.weight.detach().clone()
    args = (model, torch.randn(8, 3), torch.randn(8, 2))
    if fn is _step_without_clearing:
        args = (args[0], opt, *args[1:])
    with pytest.raises(StagingError, match=r"leaves a new `\.grad` in a parameter.*"
                       r"`opt\.zero_grad\(\)` after `opt\.step\(\)`"):
        autoconv.autoconv(fn)(*args)
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model.weight, weight) and not opt.state


def _update(opt):
    opt.step()


def _update_and_clear(opt):
    opt.step()
    opt.zero_grad()


@pytest.mark.parametrize("fn, words", [
    (_update, r"reads the gradient of the parameter param_groups\[0\]\['params'\]\[0\] of an "
              r"optimizer it was given"),
    (_update_and_clear, r"clears the gradient .*Call zero_grad\(\) outside"),
])
def test_a_step_on_the_callers_gradients_is_refused(fn, words):
    # (silently wrong before: the graph held the first call's gradients as constants, and
    # stepped on them again where the caller's backward had made new ones)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    weight = model.weight.detach().clone()
    with pytest.raises(StagingError, match=words):
        autoconv.autoconv(fn)(opt)
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))
    assert torch.equal(model.weight, weight)
