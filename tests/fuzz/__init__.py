"""A differential fuzzer for autoconv: random control flow, plain Python vs one traced graph.

`generator` writes random functions over 0-d int64 tensors; `runner` checks each against plain
Python (one `ConcreteFunction` traced on the first input and replayed on inputs that take other
paths); `minimize` shrinks a failing program. `run_fuzz` ties them together for the CLI
(`python -m tests.fuzz`, `make fuzz`) and `tests/test_fuzz.py`. See docs/fuzzing.md.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from .generator import KNOWN_BUGS, Program, generate
from .minimize import minimize
from .runner import Failure, Invalid, check, choose_inputs, define, forget

__all__ = ["Summary", "run_fuzz", "prepare", "write_program", "load_program", "generate", "check",
           "minimize", "Failure", "Invalid"]


@dataclass
class Summary:
    """Counts of one fuzzing run."""

    seed: int
    programs: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)  # (Program, Failure)
    seconds: float = 0.0
    extras: frozenset = frozenset()  # generator.EXTRAS asked for (the CLI's `--with`)

    def report(self) -> str:
        """The summary the CLI prints."""
        parts = ", ".join(f"{k} {self.counts[k]}" for k in
                          ("ok", "mismatch", "crash", "internal", "timeout", "invalid"))
        return (f"fuzz seed {self.seed}: {self.programs} programs in {self.seconds:.1f} s: {parts}"
                + (f"\nreproduce: python -m tests.fuzz --seed {self.seed} "
                   + "".join(f"--with {name} " for name in sorted(self.extras)) + "--only "
                   + " ".join(str(program.index) for program, _ in self.failures)
                   if self.failures else ""))


def prepare(program: Program, rng: random.Random | None = None) -> list:
    """Inputs for `program` that take different paths through it (raises `Invalid`)."""
    fn = define(program.source)
    try:
        return choose_inputs(fn, program.k, rng or random.Random(program.index))
    finally:
        forget(fn)


def write_program(path: str, source: str, inputs: list, description: str, xfail=None,
                  export: bool = False) -> None:
    """Write a program as a regression file: its source, `INPUTS`, `XFAIL` (a reason) and,
    with `export`, `EXPORT = True` (tests/test_fuzz.py then also exports it)."""
    with open(path, "w") as f:
        f.write(f'r"""{description}"""\n\nimport torch\n\n\n{source.strip()}\n\n\n')
        f.write(f"# x, y: 0-d int64 tensors; k: a Python int\nINPUTS = {inputs!r}\n")
        f.write(f"XFAIL = {xfail!r}\n")
        if export:
            f.write("EXPORT = True\n")


def load_program(path: str) -> tuple[str, list, str | None]:
    """(source, inputs, xfail reason) of a regression file written by `write_program`."""
    with open(path) as f:
        source = f.read()
    namespace: dict = {}
    exec(compile(source, path, "exec"), namespace)
    return source, [tuple(r) for r in namespace["INPUTS"]], namespace.get("XFAIL")


def run_fuzz(n: int, seed: int, *, size: int = 8, out: str | None = None, compile_every: int = 0,
             minimize_budget: float = 0.0, time_limit: float = 60.0, avoid=KNOWN_BUGS,
             log=None, only=None, extras=frozenset(),
             compile_time_limit: float | None = None) -> Summary:
    """Generate and check `n` programs from `seed`; failing ones go to `out` if given.

    Every program is checked by one trace and replays; every `compile_every`-th one also as a
    saved and loaded `torch.export` program (strict=False) and under
    `torch.compile(fullgraph=True)` (issue 10 item 6). The first failure of each kind is minimised for up to
    `minimize_budget` seconds. `avoid` names constructs the generator leaves out. `only`: the
    indices of the stream's programs to check instead of the first `n` (each program is made
    from the seed and its index alone, so program 140 of a run is the same program here, with
    the same checks). `extras`: constructs of `generator.EXTRAS` to generate too.
    `time_limit`: CPU seconds a program's trace, replay and export may take;
    `compile_time_limit`: its torch.compile stage's (`time_limit` where None; NOTE [the compile
    stage's own time limit] in runner.py).
    """
    log = log or (lambda message: None)
    summary = Summary(seed, extras=frozenset(extras))
    start = time.monotonic()
    # Ctrl-C (SIGINT) stops after the current program and still reports what ran. A flag, not
    # KeyboardInterrupt: torch may catch that inside a trace and it would count as a failure.
    stop = [False]
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    try:
        _run(summary, range(n) if only is None else list(only), size, out, compile_every,
             minimize_budget, (time_limit, compile_time_limit), avoid, log, start, stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if stop[0]:
        log(f"interrupted after {summary.programs} programs")
    summary.seconds = time.monotonic() - start
    return summary


def _run(summary, indices, size, out, compile_every, minimize_budget, limits, avoid, log,
         start, stop):
    seed, minimised = summary.seed, set()
    time_limit, compile_time_limit = limits
    n = len(indices)
    for number, index in enumerate(indices):
        if stop[0]:
            return
        program = generate(seed, index, size, avoid, summary.extras)
        try:
            inputs = prepare(program)
            every_nth = bool(compile_every) and index % compile_every == 0
            failure = check(program.source, inputs, time_limit=time_limit, compile=every_nth,
                            export=every_nth, compile_time_limit=compile_time_limit)
        except Invalid as e:
            failure = Failure("invalid", "reference", str(e))
            inputs = []
        summary.programs += 1
        if failure is None:
            summary.counts["ok"] += 1
        else:
            summary.counts[failure.category] += 1
            summary.failures.append((program, failure))
            log(f"[{index}] {failure}")
            if out:
                _save(out, program, inputs, failure, minimised, minimize_budget, time_limit, log)
        if (number + 1) % 10 == 0 or number + 1 == n:
            log(f"{number + 1}/{n} programs, {len(summary.failures)} failing, "
                f"{time.monotonic() - start:.0f} s")


def _save(out, program, inputs, failure, minimised, budget, time_limit, log):
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"seed{program.seed}-{program.index}-{failure.category}")
    description = (f"Fuzz failure (seed {program.seed}, program {program.index}): {failure}\n\n"
                   f"{failure.trace}")
    exported = failure.stage == "export"
    write_program(stem + ".py", program.source, inputs, description.replace('"""', "'''"),
                  export=exported)
    key = failure.signature()
    if budget and inputs and key not in minimised:
        minimised.add(key)
        source, small = minimize(program.source, inputs, key, budget_s=budget,
                                 compile=failure.stage == "compile",
                                 export=failure.stage in ("export", "compile"), time_limit=time_limit, log=log)
        write_program(stem + "-min.py", source, small,
                      f"Minimised (seed {program.seed}, program {program.index}): {failure}",
                      export=exported)
        log(f"  wrote {stem}-min.py")
