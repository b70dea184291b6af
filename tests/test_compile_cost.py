"""How many times dynamo traces a staged body under torch.compile (NOTE [one probe run for inputs
and lists] in runtime/staging/torch.py): each run of a body is a trace of it and of the runtime
it calls, and nesting multiplies the runs."""

import collections
import contextlib

import torch
from torch._dynamo import symbolic_convert

import autoconv


@contextlib.contextmanager
def body_traces():
    """A Counter of the functions dynamo inlines, by code name, while the block runs."""
    counts = collections.Counter()
    inline = symbolic_convert.InliningInstructionTranslator.inline_call_

    def counted(self, *args, **kwargs):
        counts[self.f_code.co_name] += 1
        return inline(self, *args, **kwargs)

    symbolic_convert.InliningInstructionTranslator.inline_call_ = counted
    try:
        yield counts
    finally:
        symbolic_convert.InliningInstructionTranslator.inline_call_ = inline


def nested_ifs_growing_a_list(x, y):
    vs = []
    if y > 0:
        if x > 0:
            if y < 5:
                vs.append(y)
    return x + len(vs)


def test_nested_ifs_growing_a_list_trace_each_branch_twice_per_enclosing_run():
    # Each `if` probed its branches for the inputs they change, then again for the lists they
    # grow, then torch.cond ran them: the innermost branch ran 15 times (3, 7, 15 by depth).
    # One probe run answers both now: 2, 4, 8.
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(nested_ifs_growing_a_list), fullgraph=True,
                             backend="eager")
    with body_traces() as counts:
        got = compiled(torch.tensor(1), torch.tensor(2))
    assert got.item() == nested_ifs_growing_a_list(torch.tensor(1), torch.tensor(2)).item()
    runs = {name: n for name, n in counts.items() if name.startswith("if_true")}
    assert runs == {"if_true_2": 2, "if_true_1": 4, "if_true": 8}, runs
    for x, y in [(1, 7), (-1, 2), (1, -2)]:
        assert compiled(torch.tensor(x), torch.tensor(y)).item() == \
            nested_ifs_growing_a_list(torch.tensor(x), torch.tensor(y)).item()
