"""Paths into a call's objects (its args, kwargs and bound `self`): finding the tensors a call
can reach, and reading and writing them by path (see NOTE [changed arguments] in capture.py).

A path is a tuple of ("item", key) / ("attr", name) steps from the roots tuple
`(args, kwargs, bound_self)`.
"""

from __future__ import annotations

import torch

__all__ = ["follow", "follow_or_none", "path_text", "restore", "store", "tensors_in"]


def _walk_tensors(value, path, seen, out):
    """Append (path, tensor) for the tensors reachable from `value` through dicts, lists,
    tuples and the attributes of plain objects; a path is a tuple of ("item", key) /
    ("attr", name) steps."""
    if isinstance(value, torch.Tensor):
        out.append((path, value))
        return
    if id(value) in seen or isinstance(value, (str, bytes, int, float)):
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        # Plain attributes (`self.total = t`) and submodules; parameters and buffers are the
        # graph's inputs already (`concrete.ModuleState`).
        for k, v in vars(value).items():
            if not k.startswith("_"):
                _walk_tensors(v, path + (("attr", k),), seen, out)
        for k, v in value._modules.items():
            _walk_tensors(v, path + (("attr", k),), seen, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_tensors(v, path + (("item", k),), seen, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk_tensors(v, path + (("item", i),), seen, out)
    elif hasattr(value, "__dict__") and type(value).__module__ not in ("builtins", "types"):
        for k, v in vars(value).items():
            _walk_tensors(v, path + (("attr", k),), seen, out)


def tensors_in(roots) -> dict:
    """{path: tensor} for the tensors reachable from a call's (args, kwargs, bound self)."""
    out = []
    seen = set()
    for i, root in enumerate(roots):
        _walk_tensors(root, (("item", i),), seen, out)
    return dict(out)


def path_text(path) -> str:
    """`path` as the user would write it: `args[0].total`."""
    root = ("args", "kwargs", "self")[path[0][1]]
    return root + "".join(f".{key}" if kind == "attr" else f"[{key!r}]" for kind, key in path[1:])


def follow(roots, path) -> list:
    """The objects along `path` from `roots`, the roots tuple first."""
    out = [roots]
    value = roots
    for kind, key in path:
        value = getattr(value, key) if kind == "attr" else value[key]
        out.append(value)
    return out


def follow_or_none(roots, path):
    try:
        return follow(roots, path)[-1]
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def store(roots, path, value) -> None:
    owner = follow(roots, path[:-1])[-1]
    kind, key = path[-1]
    if kind == "attr":
        setattr(owner, key, value)
    else:
        owner[key] = value


def restore(roots, path, before) -> None:
    """Put back what `path` held before the trace (the trace's objects must not keep fakes)."""
    owner = follow(roots, path[:-1])[-1]
    kind, key = path[-1]
    if path in before:
        store(roots, path, before[path])
    elif kind == "attr":
        delattr(owner, key)
    else:
        del owner[key]


