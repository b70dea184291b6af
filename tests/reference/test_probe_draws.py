"""Random draws of bodies autoconv runs ahead (probes), in all three modes (tester 19).

A probe's ops are dead code, but a random op moves torch's generator each time the graph runs:
under torch.compile the probes' draws stayed in dynamo's graph, so a seeded call drew other
numbers than Python (NOTE [random draws of probes under dynamo] in
runtime/staging/dynamo_draws.py). Each function is compared with Python, seeded alike, in
replay, in the saved exported program and under torch.compile, and the compiled graph holds
only the draws the program makes.
"""

import io

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from support import Calling

T = torch.tensor


# (tester 19, wrong_compile_rand_in_loop_with_break.py) speculative decoding's accept loop
def accept_loop(p):
    n = 0
    for i in range(3):
        r = torch.rand(1)
        if r < p[i]:
            n += 1
        else:
            break
    return n, r


def accept_loop_then_draw(p):
    n = 0
    for i in range(3):
        r = torch.rand(1)
        if r < p[i]:
            n += 1
        else:
            break
    return n, torch.rand(1)


# README's forms: a list grown in a branch, a loop carrying a float
def grows_a_list_in_a_branch(x):
    out = []
    if x.sum() > 0:
        out.append(torch.rand(2))
        out.append(x * 2)
    return x + len(out), torch.rand(())


def loop_carrying_a_float(x):
    scale = 1.0
    while x.sum() > 1:
        x = x - torch.rand(())
        scale = scale * 0.5
    return x, scale, torch.rand(())


def bounded_rollout_in_a_branch(x, y):
    out = []
    if y > 0:
        i = 0
        while i < 30 and x.sum() > 1:
            x = x - torch.rand(())
            out.append(x)
            i += 1
    return x + len(out), torch.rand(())


def dropout_in_a_loop(x):
    n = 0
    while x.sum() > 1:
        x = torch.nn.functional.dropout(x, 0.5) * 0.5
        n += 1
    return x, n, torch.rand(())


def counted_from_a_draw(x, y):
    vals = []
    if y > 0:
        n = (torch.rand(()) * 5).long()
        while n > 0:
            n = n - 1
            vals.append(n)
    return x + len(vals)


def _flat(value):
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flat(item)]
    return [torch.as_tensor(value).double()]


def _same_draws(fn, inputs, run):
    for seed, args in enumerate(inputs):
        torch.manual_seed(seed)
        want = fn(*args)
        torch.manual_seed(seed)
        got = run(*args)
        for g, w in zip(_flat(got), _flat(want), strict=True):
            torch.testing.assert_close(g, w)


def _draws_in(gm) -> int:
    count = 0
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in (
                torch.rand, torch.nn.functional.dropout):
            count += 1
        if node.op == "get_attr" and isinstance(getattr(gm, node.target, None),
                                                torch.fx.GraphModule):
            count += _draws_in(getattr(gm, node.target))
    return count


CASES = [
    (accept_loop, [(T([0.9, 0.9, 0.9]),), (T([0.9, 0.05, 0.9]),), (T([0.5, 0.5, 0.5]),)], 2),
    (accept_loop_then_draw, [(T([0.9, 0.9, 0.9]),), (T([0.9, 0.05, 0.9]),),
                             (T([0.5, 0.5, 0.5]),)], 3),
    (grows_a_list_in_a_branch, [(T([1.0, 2.0]),), (T([-3.0, 1.0]),)], 2),
    (loop_carrying_a_float, [(T([4.0]),), (T([0.5]),), (T([2.5]),)], 2),
    (bounded_rollout_in_a_branch, [(T([4.0]), T(1)), (T([6.0]), T(1)), (T([3.0]), T(0))], 2),
    (dropout_in_a_loop, [(T([4.0, 3.0]),), (T([0.5, 0.2]),)], 2),
]


@pytest.mark.parametrize("fn, inputs, draws", CASES, ids=[c[0].__name__ for c in CASES])
def test_probes_draw_no_numbers_in_any_mode(fn, inputs, draws):
    replayed = autoconv.autoconv(fn)
    _same_draws(fn, inputs, replayed)
    program = torch.export.export(Calling(autoconv.convert(fn)), inputs[0], strict=False)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    _same_draws(fn, inputs, torch.export.load(saved).module())
    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return gm

    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend=keep)
    _same_draws(fn, inputs, compiled)
    # only the program's own draw sites: a probe's became zeros
    assert [_draws_in(gm) for gm in graphs] == [draws] * len(graphs)


def test_a_count_that_depends_on_a_draw_is_refused_under_compile():
    # The branch's probe sizes the list from a count made of a draw: under dynamo the draw
    # became zeros, which would size it wrong; refused as under make_fx
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(counted_from_a_draw), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match="draws random numbers"):
        compiled(T(1), T(1))


def draws_beside_a_counted_loop(x, y):
    vals = []
    if y > 0:
        z = x + torch.rand(())
        n = y + 2
        while n > 0:
            n = n - 1
            vals.append(n)
        x = z
    return x + len(vals), torch.rand(())


def test_a_branch_that_draws_and_grows_a_list_by_a_count_is_refused_under_compile():
    # Under dynamo the count's making is not seen: a branch that draws and grows a list by a
    # count known only when it runs is refused (before: the probe drew for real, and every
    # later draw differed from Python's); replay and torch.export tell, and are right
    inputs = [(T(1.0), T(1)), (T(2.0), T(3)), (T(3.0), T(0))]
    _same_draws(draws_beside_a_counted_loop, inputs, autoconv.autoconv(draws_beside_a_counted_loop))
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(draws_beside_a_counted_loop), fullgraph=True,
                             backend="eager")
    with pytest.raises(StagingError, match="cannot tell there whether the size depends"):
        compiled(*inputs[0])
