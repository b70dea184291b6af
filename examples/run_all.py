"""Run every example in this folder as a script; exit non-zero if any of them fails.

    python examples/run_all.py            (what `make demo` runs)
"""

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def examples():
    """The example scripts: every .py file here except this one and private helpers."""
    return sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))


def main() -> int:
    failed = []
    scripts = examples()
    for script in scripts:
        print(f"\n{'=' * 30} {script.name} {'=' * 30}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        seconds = time.perf_counter() - start
        status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"--- {script.name}: {status} in {seconds:.1f}s", flush=True)
        if result.returncode != 0:
            failed.append(script.name)
    print(f"\n{len(scripts) - len(failed)} of {len(scripts)} examples passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed or not scripts else 0


if __name__ == "__main__":
    sys.exit(main())
