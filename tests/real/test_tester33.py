"""Findings of tester 33: published code and practitioners' loops run as a new user would, in
autoconv's replay (traced once, replayed on inputs that take other paths), a saved and loaded
torch.export program and torch.compile(fullgraph=True), against plain Python.

Sources (each test names its own):
- an `if/elif` chain of five tests, one nested, in a `while` (trace32's restaging): s03.
- POT 0.9.7, `ot.sinkhorn` compiled as a script's first call (s04) and
  `ot.bregman.sinkhorn_epsilon_scaling` (s05).
- kornia 0.9.0, `kornia.image.draw.draw_point2d` (a `raise ValueError` under a tensor `.any()`,
  then `image[:, y, x] = color`): s01, and the same write in a staged `if` under
  `torch.no_grad()` (inference code drawing into an image): s02.

A finding not fixed is a strict xfail whose reason starts with its id (tester33 sNN).
"""

import pytest
import torch

import autoconv
from tests.support import Calling, assert_same_result


# --- s01: kornia's draw_point2d (fixed) -----------------------------------------------------
# kornia/image/draw.py: `if ((x < 0) | ... ).any(): raise ValueError(...)`, then
# `image[:, y, x] = color.expand(...)`, an `index_put_` whose indices hold a None for the
# leading slice. autoconv's replay (python backend) called it through torch's C binding
# `torch.index_put`, which refuses a None in the indices: an internal TypeError ("expected
# Tensor as element 0 in argument 1, but got NoneType") from "<autoconv graph ...>" on every
# call. torch.export and torch.compile were right.

def _draw(image, points):
    from kornia.image.draw import draw_point2d
    return draw_point2d(image.clone(), points, torch.tensor([1.0]))


def test_s01_kornia_draw_point2d_replays():
    image = torch.zeros(1, 5, 5)
    assert_same_result(_draw, [(image, torch.tensor([[1., 2.], [3., 4.]])),
                               (image, torch.tensor([[0., 0.], [4., 4.]]))])
    f = autoconv.autoconv(_draw)
    f(image, torch.tensor([[1., 2.], [3., 4.]]))
    with pytest.raises(ValueError, match="points must lie inside"):
        f(image, torch.tensor([[1., 2.], [7., 4.]]))


def _scatter_columns(image, ys, xs):
    image = image.clone()
    if (ys >= 0).all():
        image[:, ys, xs] = 1.0
        image[..., ys, 0] += image[:, ys, 1]
    return image


@pytest.mark.parametrize("grad", [True, False])
def test_s01_index_put_with_a_slice_before_the_index_tensors(grad):
    # The kind, outside kornia: both `index_put` and its in-place form (chosen with grad off),
    # at the top level and in a staged branch.
    image = torch.zeros(2, 4, 4)
    with torch.set_grad_enabled(grad):
        assert_same_result(_scatter_columns, [
            (image, torch.tensor([0, 3]), torch.tensor([1, 2])),
            (image, torch.tensor([-1, 3]), torch.tensor([1, 2])),
            (image, torch.tensor([2, 2]), torch.tensor([0, 3]))])


# --- s02: an in-place write in a staged if under no_grad, in torch.export (fixed) -----------
# Under torch.no_grad(), a staged `if` chooses again with grad on each state value a branch
# gives back unchanged (NOTE [values passed through a staged if under no_grad]), by identity:
# the branch's copy of `image`, written in place (`image[:, ys, xs] = 1.0`) and given back,
# was taken as passed through, and `where(cond, image_before, result)` undid the write. The
# exported program returned the image as it was before the `if` on the path that writes it
# (silently wrong; the program before saving, and saved and loaded). Replay and
# torch.compile were right.

def _drawn_if_valid(image, ys, xs):
    image = image.clone()
    if (ys >= 0).all():
        image[:, ys, xs] = 1.0
    return image


def test_s02_in_place_write_in_a_staged_if_under_no_grad_exports():
    image = torch.zeros(2, 4, 4)
    inputs = [(image, torch.tensor([0, 3]), torch.tensor([1, 2])),
              (image, torch.tensor([-1, 3]), torch.tensor([1, 2]))]
    with torch.no_grad():
        program = torch.export.export(Calling(autoconv.convert(_drawn_if_valid)), inputs[0],
                                      strict=False).module()
        for args in inputs:
            torch.testing.assert_close(program(*args), _drawn_if_valid(*args))
        assert_same_result(_drawn_if_valid, inputs)


# --- s03: an if/elif chain in a while loop refused by torch.export (fixed) ------------------
# Refusal of right code, with a wrong reason, torch.export only (replay and torch.compile were
# right): nothing here is under no_grad or detached, yet export said "'s' may require grad
# after the true branch but not after the false branch, which makes it under
# torch.no_grad() ... or detaches it" at `elif m > 4:`. The loop's body is first traced
# reading its carried `s` as a value that cannot require grad (NOTE [operands that can
# require grad]); the `else` chain's inner statements then detach their `s` (no path of theirs
# makes it require grad), and the enclosing `if`, whose other branch adds `m` (from `x`, which
# may), refused at once, before the loop could trace its body again reading `s` as one that
# may. A refusal there now traces the loop again first.

def _elif_chain(x):
    s = torch.zeros(())
    n = torch.zeros((), dtype=torch.long)
    while x.abs().sum() > 0.5:
        m = x.max()
        if m > 8:
            x = x / 3
            n += 3
        elif m > 4:
            x = x - 1.5
            s = s + m
        elif m > 2:
            if x.min() < 0:
                x = x.abs() * 0.5
            else:
                x = x * 0.25
            n += 1
        else:
            x = x * 0.5
            s = s - 1
    return x, s, n


_CHAIN_INPUTS = [(torch.tensor([9., -3.]),), (torch.tensor([3., -2.]),),
                 (torch.tensor([0.1, 0.2]),), (torch.tensor([5., 1.5]),)]


def test_s03_elif_chain_in_a_loop_replays_and_compiles():
    # (trace32's restaging: the chain's bodies are staged from equal entries several times)
    assert_same_result(_elif_chain, _CHAIN_INPUTS, export=False)


def test_s03_elif_chain_in_a_loop_exports():
    module = Calling(autoconv.convert(_elif_chain))
    program = torch.export.export(module, _CHAIN_INPUTS[0], strict=False).module()
    for args in _CHAIN_INPUTS:
        for got, want in zip(program(*args), _elif_chain(*args)):
            torch.testing.assert_close(got, want)


# --- s04: POT compiled first in a process (fixed: now torch's own refusal, at POT's line) ----
# Internal error, torch.compile only: `ot.sinkhorn` under torch.compile(autoconv.convert(fn),
# fullgraph=True) in a process where POT has not yet made its backend objects (its
# `ot.backend._BACKENDS` cache is empty: the first call of a script) failed with dynamo's
# "mapping proxy affected by dictionary mutation", naming no line of the user's or POT's
# code: `get_backend` fills `_BACKENDS`, then a method call on the backend object reaches
# `_has_slots` (runtime/staging/objects.py), whose `vars(klass)` dynamo gives up on after a
# dict was changed in the frame. Dynamo calls `_has_slots` for real now. The call still fails,
# for torch's reason: dynamo refuses POT's `TorchBackend.__init__` making a `torch.Generator`
# in the compiled region, and says so at POT's line. After an eager call (as tester 28 and
# 30's tests do) it compiles as far as tester28 s01's depth refusal.

def _pot_sinkhorn(a, b, M):
    import ot
    return ot.sinkhorn(a, b, M, 0.1, numItermax=20)


def _pot_problem(seed, n=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    a = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
    b = torch.full((n,), 1.0 / n, dtype=torch.float64)
    return a / a.sum(), b, torch.cdist(x, y) ** 2


def test_s04_pot_compiled_first_in_a_process_fails_at_pots_line():
    import ot.backend
    saved = dict(ot.backend._BACKENDS)
    ot.backend._BACKENDS.clear()
    torch._dynamo.reset()
    try:
        compiled = torch.compile(autoconv.convert(_pot_sinkhorn), fullgraph=True,
                                 backend="eager")
        with pytest.raises(Exception) as raised:
            compiled(*_pot_problem(0))
        message = str(raised.value)
        assert "mapping proxy" not in message, message[:300]
        assert "ot/backend.py" in message and "torch.Generator" in message, message[:600]
    finally:
        ot.backend._BACKENDS.clear()
        ot.backend._BACKENDS.update(saved)


# --- s05: POT's epsilon scaling refused for numpy on the loop index (fixed by errs40) --------
# Was a refusal of right code with a misleading message, replay and torch.export:
# `ot.bregman.sinkhorn_epsilon_scaling` computes its schedule as `(epsilon0 - reg) *
# np.exp(-n) + reg` on the counter `ii` of `for ii in range(numItermax)`, which stops at a
# tensor test (`if err <= stopThr: break`), so the loop is staged and `ii` is a traced
# integer. The StagingError says a numpy array meets a tensor and to make "the array" a tensor
# with torch.as_tensor; the user wrote no array (numpy is called on the loop's counter), and
# the message does not say that the staged loop made `ii` a tensor. Now numpy's float ufuncs
# of a graph number run in the graph as `math`'s do (NOTE [math functions of graph numbers] in
# runtime/libm.py); its kind in every mode: tests/reference/test_math_functions.py.

def _pot_epsilon_scaling(a, b, M):
    import ot
    return ot.bregman.sinkhorn_epsilon_scaling(a, b, M, 0.1, numItermax=50, epsilon0=1e3,
                                               numInnerItermax=20, stopThr=1e-6)


@pytest.mark.filterwarnings("ignore")
def test_s05_pot_epsilon_scaling_replays():
    f = autoconv.autoconv(_pot_epsilon_scaling)
    for seed in (0, 1):
        args = _pot_problem(seed)
        torch.testing.assert_close(f(*args), _pot_epsilon_scaling(*args))


# --- what worked -----------------------------------------------------------------------------
# lists32's one loop: a GRU greedy decoder that stops at an end token, with no bound on its
# steps, two lists grown per step (the tokens, and the scores then summed), the hidden state
# carried; replayed on starts that decode 5, 8 and 10 tokens and on another end token, in
# every mode; and the gradient of the summed score through the replay equals Python's.

with torch.random.fork_rng():  # (the weights of a seed, leaving the tests' generator alone)
    torch.manual_seed(0)
    _EMBED = torch.nn.Embedding(10, 8)
    _CELL = torch.nn.GRUCell(8, 8)
    _PROJECT = torch.nn.Linear(8, 10)
    _STARTS = [torch.randn(1, 8) for _ in range(3)]


def _greedy_until_eos(h, eos):
    tok = torch.tensor(1)
    out = []
    scores = []
    while tok != eos:
        h = _CELL(_EMBED(tok)[None], h)
        logp = _PROJECT(h).log_softmax(-1)[0]
        tok = logp.argmax()
        out.append(tok)
        scores.append(logp[tok])
    return torch.stack(out), torch.stack(scores).sum(), h


# (right in every mode when written: its compile in make test-slow, NOTE [compile checks outside the
# families])
@pytest.mark.slow_compile
def test_greedy_decoder_until_eos_without_a_bound():
    inputs = [(_STARTS[0], torch.tensor(5)), (_STARTS[1], torch.tensor(5)),
              (_STARTS[2], torch.tensor(5)), (_STARTS[2], torch.tensor(6))]
    assert [len(_greedy_until_eos(*args)[0]) for args in inputs] == [5, 8, 10, 1]
    with torch.no_grad():
        assert_same_result(_greedy_until_eos, inputs)
    f = autoconv.autoconv(_greedy_until_eos)
    for args in inputs:
        _CELL.zero_grad()
        _greedy_until_eos(*args)[1].backward()
        want = _CELL.weight_hh.grad.clone()
        _CELL.zero_grad()
        f(*args)[1].backward()
        torch.testing.assert_close(_CELL.weight_hh.grad, want)


# torch.optim's functional Adam (torch/optim/adam.py, `adam(...)` as torch's Adam.step calls
# it), skipped under a tensor test on the gradient (the non-finite-gradient skip of mixed
# precision training loops): the parameter and both moments updated in place on the path that
# steps, in every mode.

def _adam_unless_nonfinite(p, g, m, v, step):
    from torch.optim.adam import adam
    if torch.isfinite(g).all():
        adam([p], [g], [m], [v], [], [step], foreach=False, capturable=False,
             differentiable=False, fused=None, grad_scale=None, found_inf=None,
             has_complex=False, amsgrad=False, beta1=0.9, beta2=0.999, lr=0.01,
             weight_decay=0.0, eps=1e-8, maximize=False)
    return p, m, v, step


# (right in every mode when written: its compile in make test-slow, NOTE [compile checks outside the
# families])
@pytest.mark.slow_compile
def test_functional_adam_step_skipped_on_a_nonfinite_gradient():
    inputs = [(torch.tensor([0.5, 0.5]), g, torch.full((2,), 0.1), torch.full((2,), 0.2),
               torch.tensor(3.))
              for g in (torch.tensor([1., -2.]), torch.tensor([float("nan"), 1.]),
                        torch.tensor([0.5, 0.5]))]
    assert_same_result(_adam_unless_nonfinite, inputs)
