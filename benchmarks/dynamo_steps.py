"""How much of dynamo's work a torch.compile of converted code is autoconv's runtime.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dynamo_steps.py             # CPU time per compile
    COUNT=1 .venv/bin/python benchmarks/dynamo_steps.py                       # + frames and steps
    COUNT=1 TOP=40 ONLY=nested_if .venv/bin/python benchmarks/dynamo_steps.py # + where they go

For each of a few reference functions (tests/reference/), the CPU time of the first call of
`torch.compile(convert(fn), fullgraph=True, backend="eager", dynamic=False)` (dynamo's trace).
COUNT=1 also counts dynamo's inlined frames and bytecode steps (by patching its
InstructionTranslator: torch 2.13's internals); TOP=n lists the files and functions they go to.
TREE=DIR runs another checkout: DIR holds `autoconv` and `autoconv_runtime` (links to a tree's
autoconv/ and runtime/) and DIR/tests its tests (the figures of docs/testing.md compare two
trees so, one run after the other). Read the times as ratios (see docs/testing.md).

Other functions, named on the command line instead of the reference cases:

    COUNT=1 TOP=30 .venv/bin/python benchmarks/dynamo_steps.py FUZZ_FILE.py  # a fuzz program
    COUNT=1 .venv/bin/python benchmarks/dynamo_steps.py tests.reference.test_loops:while_with_if_inside

A fuzz program file (tests/fuzz's failure files: `fuzz_fn` and `INPUTS`) runs `fuzz_fn` on its
first inputs (x, y as 0-d tensors, k as it is); `module:function` runs the function on the
module's first `INPUTS` row, or on `--args` (a Python expression giving a tuple, `torch` and `T`
in scope). An error the compile ends in is shown (its type and first line) and counted as done:
docs/fuzzing.md's "Compile time-outs" reads the steps of programs that end in one. COUNT's
wrapper of dynamo's `inline_call_` is one more frame per inlined call, which autoconv's depth
check (NOTE [nesting under dynamo]) counts as a second inlined call: a program near the limit
can end in the depth refusal only when counted (fuzz seed 4301's program 20 compiles without).
"""
import sys, time, os, collections
import argparse
_parser = argparse.ArgumentParser(
    description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1],
    formatter_class=argparse.RawDescriptionHelpFormatter)
_parser.add_argument("targets", nargs="*",
                     help="fuzz program files or module:function (default: the reference cases)")
_parser.add_argument("--args", help="a Python expression for the inputs of a module:function")
_parser.add_argument("--count", action="store_true", help="count frames and steps (COUNT=1)")
_parser.add_argument("--top", type=int, help="list where they go, this many rows (TOP=n)")
_options = _parser.parse_args()
if _options.count or _options.top:
    os.environ["COUNT"] = "1"
if _options.top:
    os.environ["TOP"] = str(_options.top)
TREE = os.environ.get("TREE")
if TREE:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
    sys.path.insert(0, TREE)
    sys.path.insert(0, os.path.join(TREE, "tests"))
else:
    _ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, _ROOT)  # (test_compile_cost imports `tests.reference...`)
    sys.path.insert(0, os.path.join(_ROOT, "tests"))
import torch, torch._dynamo
import autoconv
from torch._dynamo.utils import counters
from reference import test_conditionals as c, test_loops as l, test_lists as li
from reference import test_branch_lists as bl
from reference import test_constants as co
from reference import test_jumps as j
from test_compile_cost import sum_over_three_ranges

T = torch.tensor


CASES = [
    ("nested_if", c.nested_if, (c.QUADRANTS[0],)),
    # (docs/benchmarks.md's issue-12 rows: one `if` returning; a while with an `if ...: break`)
    ("early_return", j.early_return, (T([1.0, -2.0, 3.0]),)),
    ("while_break", j.while_break, (T([1.0, 2.0, -1.0, 4.0]),)),
    # (an `if` / `elif` binding a str: `_carry_changing_constants`' probe, docs/testing.md)
    ("status_in_if_elif", co.status_in_if_elif, (T([1.0, -2.0]),)),
    # (a while whose `if` breaks: the test `not did_break and ...` is a torch.cond)
    ("greedy_steps", j.greedy_steps, (j._TABLE, T(3))),
    ("several_variables", c.several_variables, (c.VEC3_INPUTS[0],)),
    ("while_with_if_inside", l.while_with_if_inside, (T(7),)),
    ("nested_range_tensor", l.nested_range_tensor, (T(5),)),
    ("for_over_rows", l.for_over_rows, (T([[1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]]),)),
    ("running_sums", li.running_sums, (T([1.0, 2.0, 3.0]),)),
    ("cat_until_negative", li.cat_until_negative, (li.ROWS[0],)),
    # (nested staged statements: a while, an if in it, two ifs in that one; about a minute)
    ("bracketing", bl.bracketing, bl._STEPS[0]),
    # (three staged `for`s, a number coming in: NOTE [verdicts of a staged for loop]; defined
    # here, so that TREE= runs the same function)
    ("three_ranges", sum_over_three_ranges, (T(5),)),
]


def _target(spec):
    """(name, function, inputs) of a fuzz program file or a `module:function`."""
    import importlib, importlib.util
    if spec.endswith(".py") and os.path.exists(spec):
        loaded = importlib.util.spec_from_file_location("fuzz_program", spec)
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        x, y, k = module.INPUTS[0]
        return os.path.basename(spec)[:-3], module.fuzz_fn, (T(x), T(y), k)
    module_name, _, function_name = spec.partition(":")
    module = importlib.import_module(module_name)
    if _options.args:
        inputs = eval(_options.args, {"torch": torch, "T": T})
    else:
        inputs = module.INPUTS[0]
    return function_name, getattr(module, function_name), tuple(inputs)


if _options.targets:
    CASES = [_target(spec) for spec in _options.targets]
only = os.environ.get("ONLY")
PROFILE = os.environ.get("PROFILE")  # a path prefix: cProfile of each compile there
COUNT = os.environ.get("COUNT")

import torch._dynamo.symbolic_convert as sc


def _short(filename):
    # torch's files from torch/, the runtime's from runtime/ (autoconv_runtime)
    filename = filename.split("site-packages/")[-1]
    at = filename.rfind("/runtime/")
    return filename[at + 1:] if at >= 0 else filename

csteps = collections.Counter(); isteps = collections.Counter(); callers = collections.Counter(); fsteps = collections.Counter(); calls = collections.Counter(); excl = collections.Counter(); incl = collections.Counter()
steps = [0]
if COUNT:
    orig = sc.InliningInstructionTranslator.inline_call_
    stack = []
    def inline_call_(self, *a, **k):
        code = self.f_code
        key = (_short(code.co_filename), code.co_name, code.co_firstlineno)
        calls[key] += 1
        if any(w in key[0] for w in ("_pytree", "polyfills", "_higher_order")):
            p = self.parent.f_code
            pk = (_short(p.co_filename), p.co_name, p.co_firstlineno)
            if not any(w in pk[0] for w in ("_pytree", "polyfills")):
                callers[(key[1], pk)] += 1
        stack.append(0.0)
        t0 = time.process_time(); s0 = steps[0]
        try:
            return orig(self, *a, **k)
        finally:
            isteps[key] += steps[0] - s0
            p = self.parent.f_code
            if not any(w in p.co_filename for w in ("_pytree", "polyfills")) and any(w in key[0] for w in ("_pytree", "polyfills", "_prims_common", "contextlib", "higher_order")):
                pk = (_short(p.co_filename), p.co_name, p.co_firstlineno)
                csteps[(key[1], pk)] += steps[0] - s0
            dt = time.process_time() - t0
            child = stack.pop()
            excl[key] += dt - child
            incl[key] += dt
            if stack: stack[-1] += dt
    sc.InliningInstructionTranslator.inline_call_ = inline_call_
    orig_step = sc.InstructionTranslatorBase.step
    def step(self):
        steps[0] += 1
        code = self.f_code
        fsteps[(_short(code.co_filename), code.co_name, code.co_firstlineno)] += 1
        return orig_step(self)
    sc.InstructionTranslatorBase.step = step

# warm up: one unrelated compile so import costs are not counted
torch._dynamo.reset()
torch.compile(lambda x: x + 1, fullgraph=True, backend="eager", dynamic=False)(T(1.0))
total = 0.0
rows = []
for name, fn, args in CASES:
    if only and name not in only.split(","):
        continue
    conv = autoconv.convert(fn)
    torch._dynamo.reset()
    calls.clear(); csteps.clear(); isteps.clear(); callers.clear(); fsteps.clear(); excl.clear(); incl.clear(); steps[0] = 0
    compiled = torch.compile(conv, fullgraph=True, backend="eager", dynamic=False)
    a = [x.clone() if isinstance(x, torch.Tensor) else x for x in args]
    t0 = time.process_time(); w0 = time.perf_counter()
    if PROFILE:
        import cProfile, pstats
        pr = cProfile.Profile(); pr.enable()
    try:
        out = compiled(*a)
    except Exception as error:  # (a fuzz program's compile may end in one: its cost still counts)
        print(f"  ends in {type(error).__name__}: {str(error).splitlines()[0][:160]}")
    if PROFILE:
        pr.disable(); pr.dump_stats(f"{PROFILE}_{name}.prof")
    cpu = time.process_time() - t0; wall = time.perf_counter() - w0
    total += cpu
    ninl = sum(calls.values())
    rows.append((name, cpu, wall, ninl, steps[0]))
    print(f"{name:24s} cpu {cpu:6.2f}s wall {wall:6.2f}s inlined {ninl:5d} steps {steps[0]:6d}", flush=True)
    if COUNT and os.environ.get("TOP"):
        byfile = collections.Counter()
        for (f, n, l), k in calls.items():
            byfile[f] += k
        for f, k in byfile.most_common(12): print("   ", k, f)
        for (f, n, l), k in calls.most_common(int(os.environ["TOP"])): print("     ", k, f, n, l)
        byf = collections.Counter()
        for (f, n, l), t in excl.items(): byf[f] += t
        print("  exclusive time by file:")
        for f, t in byf.most_common(12): print(f"    {t:6.2f}", f)
        byf = collections.Counter()
        for (f, n, l), t in fsteps.items(): byf[f] += t
        print("  steps by file:")
        for f, t in byf.most_common(12): print(f"    {t:6d}", f)
        print("  inclusive steps of runtime functions:")
        for key, k in isteps.most_common(200):
            if key[0].startswith("runtime"): print(f"    {k:6d} x{calls[key]:4d} own {fsteps[key]:5d}", *key)
        print("  inclusive steps of torch helpers by caller:")
        for (c, pk), k in csteps.most_common(30): print(f"    {k:6d} {c:20s}", *pk)
        print("  runtime callers of pytree/polyfills:")
        for (c, pk), k in callers.most_common(40): print(f"    {k:5d} {c:20s}", *pk)
        print("  steps by function:")
        for key, t in fsteps.most_common(int(os.environ["TOP"])): print(f"    {t:6d} x{calls[key]:4d}", *key)
        print("  exclusive time by function (calls):")
        for key, t in excl.most_common(int(os.environ["TOP"])): print(f"    {t:6.2f} incl {incl[key]:6.2f} x{calls[key]:4d}", *key)
import autoconv_runtime; print(autoconv_runtime.__file__)
print(f"TOTAL cpu {total:.2f}s  load {os.getloadavg()}")
