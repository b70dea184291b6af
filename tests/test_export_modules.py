"""What `Function.export` hands back (NOTE [graph modules of an export made lazy] in
autoconv/capture.py): torch.export runs on lazy graph modules, and the program's modules are
ordinary ones that print, compile, save and run as a program exported without autoconv."""

import io

import torch
from torch.fx._lazy_graph_module import _LazyGraphModule

from autoconv import autoconv


def halve_or_shift(x, n):
    i = 0
    while i < n:
        if x.sum() > 0:
            x = x - 1.5
        else:
            x = x + 2.0
        if x.mean() > 3:
            x = x * 0.5
        i += 1
    return x


INPUTS = [  # traced on the first; then no step, the `else` taken first, halvings only
    (torch.tensor([1.0, 4.0, 9.0]), torch.tensor(3)),
    (torch.tensor([1.0, 4.0, 9.0]), torch.tensor(0)),
    (torch.tensor([-9.0, -4.0, -1.0]), torch.tensor(5)),
    (torch.tensor([20.0, 30.0, 40.0]), torch.tensor(2)),
]


def test_a_nested_programs_modules_are_ordinary_and_run_as_python_in_every_use():
    program = autoconv(halve_or_shift).export(*INPUTS[0])
    modules = list(program.graph_module.modules())
    assert len(modules) == 7  # the program, the loop's condition and body, two `if`s' branches
    assert not [m for m in modules if isinstance(m, _LazyGraphModule)]
    assert "torch.ops.higher_order.cond" in str(program)
    saved = io.BytesIO()
    torch.export.save(program, saved)
    saved.seek(0)
    loaded = torch.export.load(saved).module()
    # `module()` recompiles every body (its dead code elimination): a lazy one would be stale
    # again, and Dynamo refused to trace into it.
    compiled = torch.compile(program.module(), fullgraph=True, backend="eager")
    for x, n in INPUTS:
        want = halve_or_shift(x.clone(), n)
        for run in (program.module(), loaded, compiled):
            assert torch.equal(run(x.clone(), n), want)
