"""The device check's smoke test (benchmarks/device_check.sh): the README's collatz (a staged
`while` with a conditional expression) and a staged `if`, traced once and replayed on the
device named (cuda or cpu), in seconds. (In a file: converted code needs its source.)

    python benchmarks/device_smoke.py cuda
"""

import sys
import time

import torch

from autoconv import autoconv


@autoconv
def collatz_steps(n):
    steps = torch.tensor(0, device=n.device)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


@autoconv
def clipped(x, w):
    if (x * w).sum() > 0:
        return x * w
    return x - w


def main(device: torch.device) -> None:
    start = time.perf_counter()
    for n, want in ((27, 111), (97, 118)):
        got = collatz_steps(torch.tensor(n, device=device))
        assert got.device.type == device.type and int(got) == want, (n, got)
    w = torch.tensor([1.0, -2.0, 3.0], device=device)
    for x in (torch.ones(3, device=device), -torch.ones(3, device=device)):
        got = clipped(x, w)
        assert got.device.type == device.type
        torch.testing.assert_close(got, clipped.python_function(x, w))
    assert collatz_steps.trace_count == 1 and clipped.trace_count == 1
    print(f"smoke test on {device}: ok in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda"))
