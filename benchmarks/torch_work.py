"""The torch work autoconv asks for, counted per phase: a pytest plugin.

    OMP_NUM_THREADS=1 PYTHONPATH=benchmarks python -m pytest -p no:xdist -p torch_work -q \
        tests -k "test_conditionals.py or test_loops.py"

Per outermost phase (autoconv's trace, torch.export.export, torch.compile's dynamo, the rest)
it prints the CPU (`time.process_time()`, nested phases subtracted), and, outside dynamo, the
body traces torch's operators make (`reenter_make_fx` in torch.cond / torch.while_loop), the
engine's body runs (`_run_body`) and the probes it opens, by the function that opened them.
Select tests with `-k` over whole files (the compile sample chooses among the collected tests,
as suite_sampler.py says).
"""

from __future__ import annotations

import collections
import sys
import time

_cpu = collections.Counter()
_counts = collections.defaultdict(collections.Counter)  # phase -> what -> count
_stack = []  # [phase, start, nested]
_tests = collections.defaultdict(collections.Counter)  # test -> phase's what -> count
_current = [None]


def _phase() -> str:
    return _stack[0][0] if _stack else "rest"


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        if _stack and _stack[0][0] != name and name != "dynamo":
            return fn(*args, **kwargs)  # (counted as the outer phase's)
        start = time.process_time()
        _stack.append([name, start, 0.0])
        try:
            return fn(*args, **kwargs)
        finally:
            entry = _stack.pop()
            spent = time.process_time() - entry[1]
            _cpu[name] += spent - entry[2]
            _counts[name]["calls"] += 1
            if _stack:
                _stack[-1][2] += spent
    wrapper.__wrapped__ = fn
    return wrapper


def _bodies(graph_module) -> int:
    """The cond / while_loop bodies in `graph_module` and its subgraphs (each traced once)."""
    import torch

    count = 0
    for module in graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op == "call_function" and getattr(node.target, "__name__", "") in (
                    "cond", "while_loop"):
                count += 2
    return count


def _kept(what, fn, graph):
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        if len(_stack) <= 1:
            try:
                found = _bodies(graph(result))
                _counts[what]["bodies in the graph"] += found
                _tests[_current[0]][f"{what}: bodies in the graph"] += found
            except Exception:  # (a refusal's partial result: not counted)
                pass
        return result
    wrapper.__wrapped__ = fn
    return wrapper


def _counted(what, fn, caller=False):
    import torch

    def wrapper(*args, **kwargs):
        if not torch.compiler.is_dynamo_compiling():
            key = what if not caller else f"{what} from {sys._getframe(1).f_code.co_name}"
            _counts[_phase()][key] += 1
            _tests[_current[0]][f"{_phase()}: {key}"] += 1
        return fn(*args, **kwargs)
    wrapper.__wrapped__ = fn
    return wrapper


def pytest_configure(config):
    import torch
    import torch._dynamo.convert_frame as convert_frame
    import torch._higher_order_ops.cond
    import torch._higher_order_ops.while_loop

    import autoconv.function as function
    import autoconv_runtime.staging.context as context
    import autoconv_runtime.staging.torch as staging

    function.Function._trace_locked = _timed("autoconv trace", _kept(
        "autoconv trace", function.Function._trace_locked, lambda c: c.graph_module))
    torch.export.export = _timed("torch.export.export", _kept(
        "torch.export.export", torch.export.export, lambda p: p.graph_module))
    convert_frame._compile = _timed("dynamo", convert_frame._compile)
    for name in ("cond", "while_loop"):  # (the package's names are the operators)
        module = sys.modules[f"torch._higher_order_ops.{name}"]
        module.reenter_make_fx = _counted("body traced by make_fx", module.reenter_make_fx)
    staging._run_body = _counted("_run_body", staging._run_body)
    staging.probe = _counted("probe", staging.probe, caller=True)
    staging.types_probe = _counted("types probe", staging.types_probe, caller=True)
    context.types_probe = _counted("types probe", context.types_probe, caller=True)
    _start[0] = time.process_time()


_start = [0.0]


def pytest_runtest_setup(item):
    _current[0] = item.nodeid


def _extra(counts, phase) -> int:
    return (counts[f"{phase}: body traced by make_fx"]
            - counts[f"{phase}: bodies in the graph"])


def pytest_terminal_summary(terminalreporter):
    write = terminalreporter.write_line
    total = time.process_time() - _start[0]
    write(f"torch_work: CPU {total:.1f} s")
    for name in ("autoconv trace", "torch.export.export", "dynamo"):
        write(f"  {name}: {_cpu[name]:.1f} s CPU, {_counts[name]['calls']} calls")
    for phase, counts in sorted(_counts.items()):
        for what, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            if what != "calls":
                write(f"  [{phase}] {what}: {n}")
    for phase in ("autoconv trace", "torch.export.export"):
        write(f"  tests whose {phase} traced bodies the graph does not hold (traced, held):")
        ranked = sorted(_tests.items(), key=lambda kv: -_extra(kv[1], phase))
        for test, counts in ranked[:12]:
            if _extra(counts, phase) > 0:
                write(f"    {_extra(counts, phase)} "
                      f"({counts[f'{phase}: body traced by make_fx']}, "
                      f"{counts[f'{phase}: bodies in the graph']}) {test}")
