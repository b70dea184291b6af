"""Collatz steps: a `while` loop whose condition is a tensor becomes one torch.while_loop.

    python examples/collatz.py
"""

import torch

import autoconv


def collatz_steps(n):
    """How many Collatz steps take `n` down to 1."""
    steps = torch.tensor(0)
    while n > 1:  # n is a tensor: the loop is staged, not unrolled
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def main():
    print("== converted source: autoconv.to_code(collatz_steps)")
    print(autoconv.to_code(collatz_steps).rstrip())

    f = autoconv.autoconv(collatz_steps)
    cf = f.get_concrete_function(torch.tensor(27))
    print("\n== graph: cf.code (and the subgraphs of its while_loop / cond nodes)")
    for name, module in cf.graph_module.named_modules():
        print(f"-- {name or 'main graph'}")
        print(module.code.strip())

    print("\n== graph vs plain Python")
    for n in (27, 97, 1):
        graph = f(torch.tensor(n))
        python = collatz_steps(torch.tensor(n))
        print(f"collatz_steps({n:2}): graph {graph.item():3}   python {python.item():3}")
        assert graph.item() == python.item()
    print(f"traced {f.trace_count} time(s) for {len(f.concrete_functions)} signature(s)")
    assert f.trace_count == 1


if __name__ == "__main__":
    main()
