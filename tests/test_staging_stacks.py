"""A staging interrupted before the `try` that pops what it pushed leaves nothing on the
runtime's stacks for later traces (NOTE [stacks of an unfinished staging],
runtime/staging/context.py): the statements being staged, the watches of their bodies' raises
and the names of their inputs. Before, the statement stayed counted in every later trace
(`staging_depth()` 1 outside any statement) and its inputs' names stayed held.
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime.staging import context, objects


def doubled(x):
    while x.sum() < 10:
        x = x * 2
    return x


def nested(x):
    if x.sum() > 0:
        while x.sum() < 10:
            x = x * 2
    else:
        x = x - 1
    return x


def _once(monkeypatch, owner, name):
    real = getattr(owner, name)

    def failing(*args, **kwargs):
        monkeypatch.setattr(owner, name, real)
        raise KeyboardInterrupt  # (as Ctrl-C between a push and its `try`)
    monkeypatch.setattr(owner, name, failing)


# (the staging decorator's push of the statement and its barrier; an operator's push of its
# inputs' names before its watch; each in the outermost statement and in a nested one)
@pytest.mark.parametrize("fn", [doubled, nested], ids=["outermost", "nested"])
@pytest.mark.parametrize("where", [(context, "_barrier"), (context, "watch_raises")],
                         ids=["statement", "shown_inputs"])
def test_stacks_are_empty_after_an_interrupted_push(monkeypatch, fn, where):
    interrupted = autoconv.autoconv(fn)
    if fn is nested:  # (the nested statement's push fails: the if's is below it)
        calls = []
        real = getattr(*where)

        def second(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        monkeypatch.setattr(*where, second)
    else:
        _once(monkeypatch, *where)
    with pytest.raises(KeyboardInterrupt):
        interrupted(torch.ones(3))
    monkeypatch.undo()
    other = autoconv.autoconv(doubled)
    assert other(torch.ones(3)).tolist() == doubled(torch.ones(3)).tolist() == [4.0] * 3
    assert context.staging_depth() == 0
    assert context._watch_stack() == []
    assert objects._shown_inputs == []
    # (the interrupted function traces again, right, on both paths)
    assert interrupted(torch.ones(3)).tolist() == fn(torch.ones(3)).tolist()
    assert interrupted(torch.full((3,), 5.0)).tolist() == fn(torch.full((3,), 5.0)).tolist()
    if fn is nested:
        assert interrupted(-torch.ones(3)).tolist() == nested(-torch.ones(3)).tolist()
    assert context.staging_depth() == 0 and context._watch_stack() == []
