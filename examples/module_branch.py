"""An nn.Module whose forward takes a data-dependent branch: the `if` becomes one torch.cond.

Both Linear layers' parameters are inputs of the graph (not constants baked into it), so the
graph keeps working after the weights change.

    python examples/module_branch.py
"""

import torch
from torch import nn

import autoconv


class Gate(nn.Module):
    """Sends a batch through one of two layers, chosen by the sign of its mean."""

    def __init__(self):
        super().__init__()
        self.up = nn.Linear(4, 2)
        self.down = nn.Linear(4, 2)

    def forward(self, x):
        if x.mean() > 0:
            return self.up(x)
        else:
            return self.down(x)


def main():
    torch.manual_seed(0)
    gate = Gate()
    print("== converted source: autoconv.to_code(gate)  (its forward)")
    print(autoconv.to_code(gate).rstrip())

    f = autoconv.autoconv(gate)
    cf = f.get_concrete_function(torch.zeros(3, 4))
    print("\n== graph: cf.code (and the subgraphs of its cond node)")
    for name, module in cf.graph_module.named_modules():
        print(f"-- {name or 'main graph'}")
        print(module.code.strip())

    print("\n== graph vs plain Python")
    x = torch.randn(3, 4)
    with torch.no_grad():
        for label, batch in (("positive mean", x.abs()), ("negative mean", -x.abs())):
            graph, python = f(batch), gate(batch)
            print(f"{label}: graph {graph[0].tolist()}")
            print(f"{' ' * len(label)}  python {python[0].tolist()}")
            assert torch.allclose(graph, python)
        gate.up.weight.mul_(2)  # new weights, same graph: parameters are graph inputs
        graph, python = f(x.abs()), gate(x.abs())
        print(f"after doubling up.weight: graph {graph[0].tolist()}")
        print(f"                         python {python[0].tolist()}")
        assert torch.allclose(graph, python)
    assert f.trace_count == 1


if __name__ == "__main__":
    main()
