"""`python -m tests.fuzz --n 1000 --seed S --out fuzz-failures`: the differential fuzzer's CLI.

`--only 140 330` checks just those programs of the seed's stream (the same programs and checks
as in the full run), to reproduce a failure or a time-out one program at a time.

Prints progress and a summary; exits 1 if any program failed. Each failure is written to the
output folder as a runnable regression file (see `tests/fuzz/regressions/`), minimised for the
first failure of each kind.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import KNOWN_BUGS, run_fuzz
from .generator import EXTRAS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="how many programs (default 1000)")
    parser.add_argument("--seed", type=int, default=None, help="stream seed (default: time)")
    parser.add_argument("--out", default="fuzz-failures", help="folder for failing programs")
    parser.add_argument("--size", type=int, default=8, help="statement budget per program")
    parser.add_argument("--compile-every", type=int, default=10,
                        help="also check torch.export (strict=False, saved and loaded) and "
                        "torch.compile(fullgraph=True) on every Nth program (0: never)")
    parser.add_argument("--minimize-budget", type=float, default=120.0,
                        help="seconds to spend minimising each new kind of failure (0: none)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="seconds of CPU one program may take before it counts as a timeout "
                        "(and 20 times that of wall time)")
    parser.add_argument("--compile-time-limit", type=float, default=300.0,
                        help="seconds of CPU the torch.compile stage of a program may take, "
                        "beside --time-limit's (default 300; docs/fuzzing.md, \"Compile "
                        "time-outs\")")
    parser.add_argument("--only", type=int, nargs="+", default=None, metavar="INDEX",
                        help="check only these programs of the seed's stream (--n is ignored)")
    parser.add_argument("--known-bugs", action="store_true",
                        help="also generate constructs that hit known bugs (generator.KNOWN_BUGS)")
    parser.add_argument("--with", dest="extras", action="append", default=[],
                        choices=sorted(EXTRAS), metavar="CONSTRUCT",
                        help="also generate a construct added after earlier seeds were run "
                        f"(one of {', '.join(sorted(EXTRAS))}; repeatable; docs/fuzzing.md)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    summary = run_fuzz(args.n, seed, size=args.size, out=args.out,
                       compile_every=args.compile_every, minimize_budget=args.minimize_budget,
                       time_limit=args.time_limit,
                       avoid=frozenset() if args.known_bugs else KNOWN_BUGS,
                       log=lambda m: print(m, flush=True), only=args.only,
                       extras=frozenset(args.extras),
                       compile_time_limit=args.compile_time_limit)
    print(summary.report())
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
