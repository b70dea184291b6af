"""The GRU greedy decoder of loops.py (a list grown under a tensor `while`), replayed with the
python backend's in-place buffer writes and, built in the same run, without them (the body
copies the buffer three times per trip): eager vs both, interleaved, with the load average.

    python benchmarks/list_buffers.py
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoconv  # noqa: E402
import loops  # noqa: E402
import staged  # noqa: E402
from autoconv import python_backend  # noqa: E402


def _with_copies(fn, args):
    """autoconv(fn) built with the in-place buffer rule off (the copies it removes kept)."""
    rule = python_backend._carried_buffer_writes
    python_backend._carried_buffer_writes = lambda graph, carried: (set(), {})
    try:
        f = autoconv.autoconv(fn)
        f(*args)
    finally:
        python_backend._carried_buffer_writes = rule
    return f


def main() -> None:
    label, make, make_args, scale, unit = next(w for w in loops.WORKLOADS if "gru" in w[0])
    fn, args = make(), make_args()
    print(f"== {label}: torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants = [("eager", lambda: fn),
                    ("autoconv (buffer copies)", lambda: _with_copies(fn, args)),
                    ("autoconv (in place)", lambda: autoconv.autoconv(fn))]
        staged._compare(label, variants, args, fn(*args), unit, scale, [])
    print(f"   load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
