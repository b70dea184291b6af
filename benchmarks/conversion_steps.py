"""Where a conversion goes, step by step, without a profiler's distortion.

cProfile multiplies a conversion's time about eightfold (a call per node visited) and so
overweights the walks; here each step is timed with `time.thread_time` around it only: the
parse, every pass of `pipeline.PASSES` and the four after liveness, liveness itself, and
`emit.compile_factory` (gast -> ast and `compile`). Rounds over the functions of
`sample_functions.CONVERSION_SAMPLES`, each converted from scratch as benchmarks/conversion.py
does, garbage collection off (NOTE [no garbage collection during a conversion] in
autoconv/conversion.py); prints the mean CPU ms per conversion of each step, the whole, and
what no step covers (the conversion's own scans, the namer, the callees' preconversion).

    python benchmarks/conversion_steps.py [ROUNDS]
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sample_functions  # noqa: E402

from autoconv import conversion, emit, pipeline  # noqa: E402
from autoconv.analysis import liveness  # noqa: E402

_AFTER_LIVENESS = ("ControlFlowConverter", "DataConverter", "GradReadConverter",
                   "TextReturnConverter")


def _timed(function, label, spent):
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - start
    return timed


def measure(rounds: int = 20) -> tuple[float, dict]:
    """(mean CPU seconds per conversion, {step: mean CPU seconds per conversion})."""
    spent = collections.defaultdict(float)
    converters = list(pipeline.PASSES) + [getattr(pipeline, n) for n in _AFTER_LIVENESS]
    saved = [(c, c.__dict__.get("transform")) for c in converters]
    saved_functions = [(liveness, "analyze"), (conversion, "parse_function"),
                       (emit, "compile_factory")]
    originals = [getattr(owner, name) for owner, name in saved_functions]
    for converter in converters:
        converter.transform = staticmethod(_timed(converter.transform, converter.__name__,
                                                  spent))
    liveness.analyze = _timed(liveness.analyze, "liveness", spent)
    conversion.parse_function = _timed(conversion.parse_function, "parse", spent)
    emit.compile_factory = _timed(emit.compile_factory, "compile_factory (to_ast, compile)",
                                  spent)

    def convert(fn):
        conversion._code_cache = type(conversion._code_cache)()
        return conversion.convert_function(fn)

    try:
        functions = sample_functions.CONVERSION_SAMPLES
        for fn in functions:  # (warm-up: the torch fixes, templates parsed, tables filled)
            convert(fn)
            convert(fn)
        spent.clear()
        collecting = gc.isenabled()
        gc.disable()
        start = time.thread_time()
        for _ in range(rounds):
            for fn in functions:
                convert(fn)
        whole = time.thread_time() - start
        if collecting:
            gc.enable()
    finally:
        for converter, transform in saved:
            if transform is None:
                del converter.transform
            else:
                converter.transform = transform
        for (owner, name), original in zip(saved_functions, originals):
            setattr(owner, name, original)
    count = rounds * len(functions)
    return whole / count, {k: v / count for k, v in spent.items()}


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    whole, steps = measure(rounds)
    print(f"== conversion steps: mean CPU ms per conversion over {rounds} rounds of the "
          f"{len(sample_functions.CONVERSION_SAMPLES)} sample functions (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"   {'whole conversion':36} {whole * 1e3:7.3f}")
    for step, seconds in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"   {step:36} {seconds * 1e3:7.3f}  {seconds / whole:5.1%}")
    print(f"   {'(no step: scans, namer, callees)':36} "
          f"{(whole - sum(steps.values())) * 1e3:7.3f}")
