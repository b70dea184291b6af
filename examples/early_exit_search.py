"""Early exit: `return` inside a `for` loop over a tensor, and -1 when nothing matches.

autoconv lowers the `return` into a flag that becomes part of the loop's condition, so the
whole search is one torch.while_loop that stops at the first match.

    python examples/early_exit_search.py
"""

import torch

import autoconv


def first_above(xs, threshold):
    """The index of the first element of `xs` greater than `threshold`, or -1 if none is."""
    for i, x in enumerate(xs):
        if x > threshold:
            return i
    return -1


def main():
    print("== converted source: autoconv.to_code(first_above)")
    print(autoconv.to_code(first_above).rstrip())

    f = autoconv.autoconv(first_above)
    cf = f.get_concrete_function(torch.zeros(5), 2.5)
    print("\n== graph for 5 floats and threshold 2.5: cf.code (and its subgraphs)")
    for name, module in cf.graph_module.named_modules():
        print(f"-- {name or 'main graph'}")
        print(module.code.strip())

    print("\n== graph vs plain Python")
    for values in ([1.0, 5.0, 3.0, 7.0, 0.0], [0.0, 1.0, 2.0, 2.5, 9.0], [0.0, 1.0, 2.0, 1.0, 0.0]):
        xs = torch.tensor(values)
        graph = int(f(xs, 2.5))
        python = first_above(xs, 2.5)
        print(f"first_above({values}, 2.5): graph {graph:2}   python {python:2}")
        assert graph == python
    assert f.trace_count == 1


if __name__ == "__main__":
    main()
