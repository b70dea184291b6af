"""Newton's square root to a tolerance: `while abs(y * y - x) > tol` on tensors.

The loop runs until the answer is good enough, so its trip count is only known when the graph
runs; torch.while_loop carries `y` from one iteration to the next.

    python examples/newton_sqrt.py
"""

import math

import torch

import autoconv


def newton_sqrt(x, tol=1e-10):
    """The square root of `x` by Newton's method, to within `tol` of x."""
    y = x
    while abs(y * y - x) > tol:
        y = (y + x / y) / 2
    return y


def main():
    print("== converted source: autoconv.to_code(newton_sqrt)")
    print(autoconv.to_code(newton_sqrt).rstrip())

    f = autoconv.autoconv(newton_sqrt)
    example = torch.tensor(2.0, dtype=torch.float64)
    cf = f.get_concrete_function(example)
    print("\n== graph: cf.code (and the subgraphs of its while_loop node)")
    for name, module in cf.graph_module.named_modules():
        print(f"-- {name or 'main graph'}")
        print(module.code.strip())

    print("\n== graph vs plain Python (the same function on Python floats) vs math.sqrt")
    for x in (2.0, 10.0, 1234.5):
        graph = f(torch.tensor(x, dtype=torch.float64)).item()
        python = newton_sqrt(x)
        print(f"newton_sqrt({x:6}): graph {graph:.12f}   python {python:.12f}   "
              f"math.sqrt {math.sqrt(x):.12f}")
        assert abs(graph - python) < 1e-9 and abs(graph - math.sqrt(x)) < 1e-9
    assert f.trace_count == 1


if __name__ == "__main__":
    main()
