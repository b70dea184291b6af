"""What `import autoconv` loads, and the torch internals that keep it light."""

import subprocess
import sys

import torch


def test_import_does_not_load_dynamo():
    # torch._dynamo takes seconds to import; eager use and conversion never need it, and
    # torch.compile / make_fx import it themselves when they run.
    code = "import sys, autoconv; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_constant_result_marker_is_dynamos():
    # runtime/calls.py and runtime/errors.py set this attribute themselves instead of calling
    # torch._dynamo.assume_constant_result (which would import dynamo): if torch renames it,
    # dynamo would trace those functions and fail, so this must fail first.
    import torch._dynamo

    def probe():
        return 0

    marked = torch._dynamo.assume_constant_result(probe)
    assert marked.__dict__ == {"_dynamo_marked_constant": True}
    from autoconv_runtime import calls, errors

    for fn in (calls._runs_as_it_is, calls._convert_while_compiling, errors._raise_under_dynamo):
        assert fn._dynamo_marked_constant is True


def test_every_package_is_in_the_distribution():
    # setup.cfg lists the packages by hand (runtime/ installs as autoconv_runtime): a package
    # missing there imports from a checkout or an editable install, and fails from a wheel.
    import configparser
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = set()
    for top, name in (("autoconv", "autoconv"), ("runtime", "autoconv_runtime")):
        for init in (root / top).rglob("__init__.py"):
            parts = init.parent.relative_to(root / top).parts
            on_disk.add(".".join((name, *parts)))
    assert on_disk == listed
