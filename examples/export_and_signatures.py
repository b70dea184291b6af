"""The Function layer: a pinned input signature, a visible retrace warning, and an exported
program that runs in a process without autoconv.

    python examples/export_and_signatures.py
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

import torch

import autoconv
from autoconv import TensorSpec


def halve_until_small(x, limit):
    """Halves the whole vector until its norm is under `limit`; returns it and the halvings."""
    halvings = torch.tensor(0)
    while x.norm() > limit:
        x = x / 2
        halvings += 1
    return x, halvings


def main():
    # One trace for every length: the spec leaves the size open.
    f = autoconv.autoconv(halve_until_small,
                          input_signature=[TensorSpec((None,)), TensorSpec(())])
    print("== input_signature=[TensorSpec((None,)), TensorSpec(())]")
    for n in (3, 10, 1000):
        x = torch.linspace(1.0, 5.0, n)
        got, halvings = f(x, torch.tensor(1.0))
        want, want_halvings = halve_until_small(x, torch.tensor(1.0))
        assert torch.allclose(got, want) and halvings == want_halvings
        print(f"length {n:5}: {int(halvings)} halvings (python: {int(want_halvings)})")
    print(f"traces: {f.trace_count}")
    assert f.trace_count == 1

    # Retracing on a changing Python value is visible, and says which argument changes.
    print("\n== a Python float limit is part of the signature: each new value traces again")
    g = autoconv.autoconv(halve_until_small)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for limit in (1.0, 2.0, 3.0, 4.0, 5.0):
            g(torch.ones(4), limit)
    print(f"traces: {g.trace_count}; warning:\n  {caught[-1].message}")

    # Export, save, and run the program where autoconv cannot even be imported.
    print("\n== f.export(...) -> torch.export.save -> load in a fresh process without autoconv")
    program = autoconv.autoconv(halve_until_small).export(torch.ones(4), torch.tensor(1.0))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "halve.pt2")
        torch.export.save(program, path)
        script = textwrap.dedent(f"""
            import sys
            sys.modules["autoconv"] = sys.modules["autoconv_runtime"] = None
            import torch
            run = torch.export.load({path!r}).module()
            x, halvings = run(torch.full((4,), 3.0), torch.tensor(1.0))
            print("loaded program:", int(halvings), "halvings")
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             cwd=folder, check=True).stdout.strip()
    print(out)
    want = int(halve_until_small(torch.full((4,), 3.0), torch.tensor(1.0))[1])
    assert out.endswith(f"{want} halvings")


if __name__ == "__main__":
    main()
