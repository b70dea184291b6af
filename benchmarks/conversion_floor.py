"""What a conversion costs at least while its output stays the same: the steps every
conversion takes whatever its passes do, per sample function.

For each function in `sample_functions.CONVERSION_SAMPLES`, the CPU-time min (`time.thread_time`,
NOTE [wall clock and CPU time of a conversion] in conversion.py) of `rounds` runs of:

* parse: `parsing.parse_function` (source lines, `ast.parse`, the copy to gast);
* to_ast: `emit.to_ast` of the factory `conversion._compile` compiles (the converted function,
  gast to stdlib ast);
* compile: `compile` of that module (the converted body and the fast path's original body);
* whole: `conversion.convert_function` from scratch (as benchmarks/conversion.py times it);

and the node counts of the user's def and of the compiled factory. Their sum, parse + to_ast +
compile, is what the passes cannot save: the converted code's size sets it.

    python benchmarks/conversion_floor.py [ROUNDS]
"""

from __future__ import annotations

import ast
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sample_functions  # noqa: E402

from autoconv import conversion, emit, templates  # noqa: E402
from autoconv.parsing import parse_function  # noqa: E402


def _cpu_min(step, rounds: int) -> float:
    step()  # (warm: the templates' and classes' caches)
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        step()
        best = min(best, time.thread_time() - start)
    return best


def _factory(fn):
    """The stdlib module `conversion._compile` compiles for `fn`, as built there."""
    tree, ctx = conversion.converted_tree(fn)
    tree.name = ctx.namer.new(tree.name + "_converted")
    factory = templates.replace("def factory(params):\n    converted\n    return name",
                                factory="autoconv_factory", params=[ctx.runtime],
                                converted=[tree], name=tree.name)[0]
    return factory, factory.body[-1].lineno or 1


def _fresh(fn):
    conversion._code_cache = type(conversion._code_cache)()
    return conversion.convert_function(fn)


def run(rounds: int = 25) -> dict:
    warnings.simplefilter("ignore")
    print(f"== the steps every conversion takes (CPU-time min of {rounds}, ms), load "
          f"{os.getloadavg()[0]:.2f}")
    print(f"   {'function':22} {'nodes':>5} {'->':>5} {'parse':>7} {'to_ast':>7} {'compile':>7} "
          f"{'floor':>7} {'whole':>7} {'floor/whole':>11}")
    rows = []
    for fn in sample_functions.CONVERSION_SAMPLES:
        factory, line = _factory(fn)
        module = ast.Module(body=[emit.to_ast(factory, line)], type_ignores=[])
        filename = fn.__code__.co_filename
        parse = _cpu_min(lambda: parse_function(fn), rounds)
        to_ast = _cpu_min(lambda: emit.to_ast(factory, line), rounds)
        compiled = _cpu_min(lambda: compile(module, filename, "exec", dont_inherit=True),
                            rounds)
        whole = _cpu_min(lambda: _fresh(fn), rounds)
        user_nodes = sum(1 for _ in ast.walk(ast.parse(ast.unparse(
            emit.to_ast(parse_function(fn).node)))))
        nodes = sum(1 for _ in ast.walk(module))
        floor = parse + to_ast + compiled
        rows.append({"function": fn.__name__, "user_nodes": user_nodes, "nodes": nodes,
                     "parse_ms": parse * 1e3, "to_ast_ms": to_ast * 1e3,
                     "compile_ms": compiled * 1e3, "floor_ms": floor * 1e3,
                     "whole_ms": whole * 1e3})
        print(f"   {fn.__name__:22} {user_nodes:5} {nodes:5} {parse * 1e3:7.3f} "
              f"{to_ast * 1e3:7.3f} {compiled * 1e3:7.3f} {floor * 1e3:7.3f} "
              f"{whole * 1e3:7.3f} {floor / whole:11.2f}")
    summary = {key: statistics.median(r[key] for r in rows)
               for key in ("floor_ms", "whole_ms", "parse_ms", "to_ast_ms", "compile_ms")}
    print(f"   medians: floor {summary['floor_ms']:.3f} ms (parse {summary['parse_ms']:.3f}, "
          f"to_ast {summary['to_ast_ms']:.3f}, compile {summary['compile_ms']:.3f}), whole "
          f"{summary['whole_ms']:.3f} ms; nodes: the user's def -> the compiled factory")
    summary["rows"] = rows
    return summary


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
