"""`autoconv-show` end to end: targets in files and modules, --graph, and the exit-2 failures."""

import os
import subprocess
import sys

import pytest

from autoconv.cli import main

SOURCE = '''\
import torch


def collatz_steps(n):
    steps = torch.tensor(0)
    while n > 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


class Gate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(4, 2)
        self.down = torch.nn.Linear(4, 2)

    def forward(self, x):
        if x.mean() > 0:
            return self.up(x)
        return self.down(x)


def countdown(n):
    yield n
'''


@pytest.fixture
def target_file(tmp_path):
    path = tmp_path / "targets.py"
    path.write_text(SOURCE)
    return str(path)


def _fails_with_one_line(capsys, argv, *words):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("autoconv-show: error: "), err
    for word in words:
        assert word in err, err
    return err


def test_file_target_prints_converted_source(capsys, target_file):
    assert main([f"{target_file}:collatz_steps"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("def collatz_steps(n):")
    assert "ac.while_stmt(" in out and "while n > 1" not in out
    assert err == ""


def test_module_target(capsys, tmp_path, monkeypatch):
    (tmp_path / "cli_target_module.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    assert main(["cli_target_module:collatz_steps"]) == 0
    assert capsys.readouterr().out.startswith("def collatz_steps(n):")


def test_dotted_qualname(capsys, target_file):
    assert main([f"{target_file}:Gate.forward"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def forward(self, x):") and "ac.if_stmt(" in out


def test_graph_with_example(capsys, target_file):
    argv = [f"{target_file}:collatz_steps", "--graph", "--example", "torch.tensor(27)"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    source, graph = out.split("# graph traced for ", 1)
    assert "ac.while_stmt(" in source
    assert "torch.ops.higher_order.while_loop" in graph
    assert "# subgraph while_loop_body_graph_0" in graph


def test_graph_of_module_forward_takes_parameters_as_inputs(capsys, target_file):
    argv = [f"{target_file}:Gate.forward", "--graph", "--example", "Gate()",
            "--example", "torch.randn(3, 4)"]
    assert main(argv) == 0
    graph = capsys.readouterr().out.split("# graph traced for ", 1)[1]
    assert "torch.ops.higher_order.cond" in graph
    assert "def forward(self, arg0_1, arg1_1, arg2_1, arg3_1, arg4_1)" in graph


def test_regression_a_file_of_a_package_importing_its_siblings(capsys, tmp_path):
    # tester36b s04: `autoconv-show mypkg/model.py:f` ran the file alone, whose
    # `from mypkg import helpers` failed ("No module named 'mypkg'"), and so would `from .`
    package = tmp_path / "cli_pkg36"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def halve(x):\n    return x / 2\n")
    (package / "model.py").write_text(
        "from cli_pkg36 import helpers\nfrom . import helpers as same\n\n\n"
        "def shrink(x):\n    while x.sum() > 1:\n        x = same.halve(helpers.halve(x))\n"
        "    return x\n")
    assert main([f"{package / 'model.py'}:shrink"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("def shrink(x):") and "ac.while_stmt(" in out, (out, err)
    _fails_with_one_line(capsys, [f"{package / 'model.py'}:grow"],
                         "model.py has no attribute 'grow'")


def test_nonexistent_file(capsys, tmp_path):
    _fails_with_one_line(capsys, [f"{tmp_path}/missing.py:f"], "no such file", "missing.py")


def test_nonexistent_module(capsys):
    _fails_with_one_line(capsys, ["no_such_package_xyz.mod:f"], "no module named")


def test_nonexistent_qualname(capsys, target_file):
    _fails_with_one_line(capsys, [f"{target_file}:collatz"], "has no attribute 'collatz'")
    _fails_with_one_line(capsys, [f"{target_file}:Gate.backward"], "has no attribute 'backward'")


def test_unconvertible_target(capsys, target_file):
    err = _fails_with_one_line(capsys, [f"{target_file}:countdown"], "generator", "yield")
    assert f"{target_file}:25:" in err  # the user's file and line


def test_class_target_names_the_method_to_use(capsys, target_file):
    _fails_with_one_line(capsys, [f"{target_file}:Gate"], "Gate.forward")


def test_target_without_qualname(capsys, target_file):
    _fails_with_one_line(capsys, [target_file], "path/to/file.py:qualname")


def test_bad_example_and_missing_examples(capsys, target_file):
    _fails_with_one_line(capsys, [f"{target_file}:collatz_steps", "--graph", "--example", "torch.tensor("],
                         "cannot evaluate --example")
    _fails_with_one_line(capsys, [f"{target_file}:collatz_steps", "--graph"],
                         "give one --example per argument")


def test_example_without_graph_is_a_usage_error(capsys, target_file):
    with pytest.raises(SystemExit) as exit_info:
        main([f"{target_file}:collatz_steps", "--example", "torch.tensor(1)"])
    assert exit_info.value.code == 2


def test_help_describes_targets(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "path/to/file.py:qualname" in out and "package.module:qualname" in out
    assert "--example" in out and "autoconv-show examples/collatz.py:collatz_steps" in out


def _command():
    script = os.path.join(os.path.dirname(sys.executable), "autoconv-show")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "autoconv.cli"]


def test_command_line(target_file):
    ok = subprocess.run(
        _command() + [f"{target_file}:collatz_steps", "--graph", "--example", "torch.tensor(7)"],
        capture_output=True, text=True, timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("def collatz_steps(n):") and "while_loop" in ok.stdout

    bad = subprocess.run(_command() + [f"{target_file}:countdown"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "generator" in bad.stderr


def test_python_dash_m_autoconv(target_file):
    result = subprocess.run([sys.executable, "-m", "autoconv", f"{target_file}:collatz_steps"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("def collatz_steps(n):")
