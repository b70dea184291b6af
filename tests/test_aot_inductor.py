"""AOTInductor: a converted function's exported program (a staged `while` with a staged `if`
in its body) compiles with `aoti_compile_and_package`, and a process without autoconv or the
source loads it with `aoti_load_package` and gets Python's answers.

Slow: the C++ build took 241 s on this project's 2-core machine under load (run with
`make test-slow`, `pytest --run-slow` or AUTOCONV_SLOW=1).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import autoconv

pytestmark = pytest.mark.slow


def collatz_steps(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


_LOAD_AND_RUN = """
import json, sys
sys.modules.update(autoconv=None, autoconv_runtime=None)  # importing them now raises
import torch
runner = torch._inductor.aoti_load_package(sys.argv[1])
answers = [int(runner(torch.tensor(n))) for n in json.loads(sys.argv[2])]
loaded = [n for n, m in sys.modules.items() if m is not None]
assert not [n for n in loaded if n.startswith(("autoconv", "tests"))], "imported"
print(json.dumps(answers))
"""


def test_aoti_package_runs_without_autoconv(tmp_path):
    program = autoconv.autoconv(collatz_steps).export(torch.tensor(27))
    path = torch._inductor.aoti_compile_and_package(
        program, package_path=str(tmp_path / "collatz.pt2"))
    inputs = [27, 1, 6, 97]
    # -I: isolated, so neither the source tree nor the user's site dir is on the path
    done = subprocess.run([sys.executable, "-I", "-c", _LOAD_AND_RUN, path, json.dumps(inputs)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [int(collatz_steps(torch.tensor(n))) for n in inputs]
