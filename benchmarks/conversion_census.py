"""Census of converted code: is a conversion change byte for byte neutral?

Converts every function and method defined at module level in tests/reference/*.py,
tests/programs.py, benchmarks/sample_functions.py and examples/*.py (and any files given after
the output path), each plain and with every parameter a number's stand-in
(`converted_tree(fn, numbers=...)`), and writes {file::name::mode: [converted source, hash of
the positioned stdlib AST, hash of the context's side results]} (or the error) as JSON.
Compare two runs with `--compare A.json B.json`.

    # before: another checkout's autoconv/ (e.g. `git archive main autoconv | tar -x -C /tmp/main`)
    PYTHONHASHSEED=0 AC_ROOT=/tmp/main python benchmarks/conversion_census.py /tmp/before.json
    PYTHONHASHSEED=0 python benchmarks/conversion_census.py /tmp/after.json
    python benchmarks/conversion_census.py --compare /tmp/before.json /tmp/after.json

Session 33 (conv33) ran it after each change of the conversion-time work: 4,916 conversions,
0 differences.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import importlib.util
import inspect
import json
import os
import sys
import types
import warnings


def _targets(module):
    for name, obj in sorted(vars(module).items()):
        if isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
            yield name, obj
        elif isinstance(obj, type) and obj.__module__ == module.__name__:
            for attr, member in sorted(vars(obj).items()):
                member = getattr(member, "__func__", member)
                if isinstance(member, types.FunctionType):
                    yield f"{name}.{attr}", member


def census(out_path: str, extra=()) -> None:
    from autoconv import conversion, emit

    print("autoconv from", os.path.dirname(conversion.__file__))
    files = (sorted(glob.glob("tests/reference/*.py")) + ["tests/programs.py",
             "benchmarks/sample_functions.py"] + sorted(glob.glob("examples/*.py")) + list(extra))
    out = {}
    for k, path in enumerate(files):
        spec = importlib.util.spec_from_file_location(f"_census_{k}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as e:  # noqa: BLE001 - a file that does not import is recorded
            out[path] = f"module error {type(e).__name__}"
            continue
        for name, fn in _targets(module):
            try:
                params = frozenset(inspect.signature(fn).parameters)
            except (TypeError, ValueError):
                params = frozenset()
            for mode, numbers in (("plain", frozenset()), ("numbers", params)):
                key = f"{path}::{name}::{mode}"
                try:
                    tree, ctx = conversion.converted_tree(fn, numbers=numbers)
                    source = emit.to_source(tree)
                    dump = ast.dump(emit.to_ast(tree), include_attributes=True)
                    side = repr((sorted(ctx.callees), ctx.try_blocks,
                                 sorted(ctx.display_names.items()), ctx.stages, ctx.makes_text,
                                 ctx.uses_class_cell))
                    out[key] = [source, hashlib.sha1(dump.encode()).hexdigest(),
                                hashlib.sha1(side.encode()).hexdigest()]
                except Exception as e:  # noqa: BLE001 - a refusal is part of the census
                    out[key] = f"error {type(e).__name__}: {str(e)[:200]}"
    with open(out_path, "w") as f:
        json.dump(out, f, sort_keys=True)
    errors = sum(isinstance(v, str) for v in out.values())
    print(f"{len(out)} conversions, {errors} errors")


def compare(a_path: str, b_path: str) -> int:
    with open(a_path) as f:
        a = json.load(f)
    with open(b_path) as f:
        b = json.load(f)
    differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    print(f"{len(a)} and {len(b)} conversions, {len(differ)} differences")
    for key in differ[:50]:
        print("  ", key)
    return 1 if differ else 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    # (another checkout's autoconv/ first, where AC_ROOT names one; then this one's tests)
    sys.path[:0] = [os.environ.get("AC_ROOT", "."), ".", "tests", "benchmarks"]
    census(sys.argv[1], sys.argv[2:])
