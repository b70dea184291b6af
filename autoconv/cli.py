"""`autoconv-show`: print a function's converted source and, with --graph, its traced graph."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback

import torch

import autoconv_runtime

from .api import autoconv as _autoconv, to_code
from .errors import ConversionError
from .function import Function

__all__ = ["main"]

PROG = "autoconv-show"

DESCRIPTION = """\
Print the converted source of a Python function (what autoconv.to_code gives), and with
--graph the torch.fx graph it traces to for example arguments.

TARGET names the function, in one of two forms:
  path/to/file.py:qualname    a function in a file (the file is run as a module, not as __main__)
  package.module:qualname     a function in an importable module (the current directory is on
                              the import path)
qualname may be dotted: Class.method, or module_level_object.method. It may also name an
nn.Module instance (its forward is shown) or an @autoconv-decorated function."""

EPILOG = """\
examples:
  autoconv-show examples/collatz.py:collatz_steps
  autoconv-show examples/collatz.py:collatz_steps --graph --example 'torch.tensor(27)'
  autoconv-show examples.newton_sqrt:newton_sqrt --graph --example 'torch.tensor(2.0)'
  autoconv-show examples/module_branch.py:Gate.forward --graph \\
      --example 'Gate()' --example 'torch.randn(3, 4)'

exit status: 0 on success; 2 when the target does not exist, cannot be converted, or cannot be
traced into one graph (one line on stderr says why); 1 when the traced code itself raises."""


class _Failure(Exception):
    """A reason to stop, printed as one line; `status` is the exit status."""

    def __init__(self, reason: str, status: int = 2):
        super().__init__(reason)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target", metavar="TARGET",
        help="path/to/file.py:qualname or package.module:qualname",
    )
    parser.add_argument(
        "--graph", action="store_true",
        help="also trace the function with the --example arguments and print the graph code "
        "(the main graph, then the subgraphs of its cond / while_loop nodes)",
    )
    parser.add_argument(
        "--example", metavar="EXPR", action="append", default=[],
        help="one positional argument for --graph, as a Python expression evaluated with torch "
        "and the target module's globals in scope, e.g. 'torch.tensor(27)' or 'torch.randn(3, 4)'; "
        "repeat once per argument",
    )
    return parser


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", str(text).strip())


def _split(target: str) -> tuple[str, str]:
    location, sep, qualname = target.rpartition(":")
    if not sep or not location or not qualname:
        raise _Failure(f"TARGET must be path/to/file.py:qualname or package.module:qualname, "
                       f"got {target!r}")
    return location, qualname


def _is_file(location: str) -> bool:
    return location.endswith(".py") or "/" in location or os.sep in location


def _in_package(path: str) -> tuple[str, str] | None:
    """(the folder above the outermost package holding `path`, its dotted module name), or None
    where the file's folder has no `__init__.py`."""
    folder, parts = os.path.dirname(os.path.abspath(path)), [
        os.path.splitext(os.path.basename(path))[0]]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    if len(parts) == 1 or not all(part.isidentifier() for part in parts):
        return None
    return folder, ".".join(p for p in parts if p != "__init__")


def _load_file(path: str):
    if not os.path.isfile(path):
        raise _Failure(f"no such file: {path}")
    # A module of a package imports its siblings through the package (`from mypkg import
    # helpers`, `from . import helpers`): load it as `python -m mypkg.model` would, not as the
    # lone file, whose imports failed ("No module named 'mypkg'": tester36b s04).
    packaged = _in_package(path)
    if packaged is not None:
        sys.path.insert(0, packaged[0])
        return _import(packaged[1])
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"_autoconv_show_{stem}"
    spec = importlib.util.spec_from_file_location(name, os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise _Failure(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # As `python path/to/file.py` would: the file's folder is importable, the module is known.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        raise _Failure(f"running {path} failed: {type(e).__name__}: {_one_line(e)}") from None
    return module


def _import(name: str):
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise _Failure(f"no module named {name!r}") from None
        raise _Failure(f"importing {name} failed: ModuleNotFoundError: {_one_line(e)}") from None
    except (Exception, SystemExit) as e:
        raise _Failure(f"importing {name} failed: {type(e).__name__}: {_one_line(e)}") from None


def _resolve(target: str):
    """(the object TARGET names, the module it is in)."""
    location, qualname = _split(target)
    module = _load_file(location) if _is_file(location) else _import(location)
    obj, path = module, location
    for part in qualname.split("."):
        if part == "<locals>":
            raise _Failure(f"{target}: a function defined inside another function cannot be "
                           "named; move it to module level or show the outer function")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _Failure(f"{path} has no attribute {part!r}") from None
        path = f"{path}:{part}" if path == location else f"{path}.{part}"
    return obj, module


def _check_convertible(obj, target: str) -> None:
    if inspect.isclass(obj):
        if issubclass(obj, torch.nn.Module):
            raise _Failure(f"{target} is an nn.Module class; name its method instead, e.g. "
                           f"{target}.forward (or a module-level instance)")
        raise _Failure(f"{target} is a class; name one of its methods instead, e.g. "
                       f"{target}.method")


def _source(obj) -> str:
    fn = obj.python_function if isinstance(obj, Function) else obj
    return to_code(fn).rstrip() + "\n"


def _examples(exprs, module):
    namespace = dict(vars(module))
    namespace["torch"] = torch
    values = []
    for expr in exprs:
        try:
            values.append(eval(expr, namespace))  # noqa: S307 - the user's own expression
        except Exception as e:
            raise _Failure(f"cannot evaluate --example {expr!r}: {type(e).__name__}: "
                           f"{_one_line(e)}") from None
    return values


def _check_arity(obj, args, target: str) -> None:
    fn = obj.python_function if isinstance(obj, Function) else obj
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError as e:
        raise _Failure(f"{target}{signature} cannot take {len(args)} example argument(s): {e}; "
                       "give one --example per argument") from None


def _user_frame(error: BaseException, filename: str | None) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if frame.filename == filename:
            return f"{frame.filename}:{frame.lineno}: "
    return ""


def _traceable(obj, args):
    """The `Function` to trace and its arguments. `Class.forward` with an instance of the class as
    the first example traces that module, so its parameters are graph inputs."""
    if isinstance(obj, Function):
        return obj, args
    if args and isinstance(args[0], torch.nn.Module) and type(args[0]).forward is obj:
        return _autoconv(args[0]), args[1:]
    return _autoconv(obj), args


def _graph(obj, args, target: str) -> str:
    function, args = _traceable(obj, args)
    try:
        concrete = function.get_concrete_function(*args)
    except (ConversionError, autoconv_runtime.StagingError) as e:
        raise _Failure(_one_line(e)) from None
    except Exception as e:
        code = getattr(getattr(function.python_function, "forward", function.python_function),
                       "__code__", None)
        where = _user_frame(e, code.co_filename if code else None)
        raise _Failure(f"{where}tracing {target} raised {type(e).__name__}: {_one_line(e)}",
                       status=1) from None
    parts = [f"# graph traced for {concrete.signature}", concrete.code.strip()]
    for name, module in concrete.graph_module.named_modules():
        if name and isinstance(module, torch.fx.GraphModule):
            parts += ["", f"# subgraph {name}", module.code.strip()]
    return "\n".join(parts) + "\n"


def _run(args) -> str:
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    try:
        obj, module = _resolve(args.target)
        _check_convertible(obj, args.target)
        try:
            output = _source(obj)
        except ConversionError as e:
            raise _Failure(_one_line(e)) from None
        if args.graph:
            examples = _examples(args.example, module)
            _check_arity(obj, examples, args.target)
            output += "\n" + _graph(obj, examples, args.target)
        return output
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith("_autoconv_show_"):
                del sys.modules[name]


def main(argv=None) -> int:
    """Run `autoconv-show` with `argv` (default: the command line); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.example and not args.graph:
        parser.error("--example is only used with --graph")
    try:
        output = _run(args)
    except _Failure as failure:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return failure.status
    sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
