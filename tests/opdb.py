"""Differential test of the python backend against eager over torch's operator database.

For each operator of `torch.testing._internal.common_methods_invocations.op_db`, each of its
sample inputs on the CPU (float32 and int64, inputs with and without requires_grad) is run
three ways: eagerly, through `autoconv(..., backend="fx")` and through the default
`backend="python"` (one traced graph, two backends). Wherever the fx backend agrees with eager,
the python backend must too (values, the inputs' values after the call, and with grad the
gradients). Used by tests/test_backend_opdb.py (a fixed sample) and by `make opdb` (the whole
database: `python -m tests.opdb`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import sys
import time
import warnings

import torch
from torch.utils import _pytree as pytree

import autoconv
from autoconv import backends

DTYPES = (torch.float32, torch.int64)
AGREE, DISAGREE = "agree", "disagree"


def op_db():
    from torch.testing._internal.common_methods_invocations import op_db as database

    return database


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    return value


def _same(got, want) -> bool:
    got, want = pytree.tree_leaves(got), pytree.tree_leaves(want)
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, torch.Tensor) != isinstance(g, torch.Tensor):
            return False
        if isinstance(w, torch.Tensor):
            if g.shape != w.shape or g.dtype != w.dtype:
                return False
            try:
                torch.testing.assert_close(g.detach(), w.detach(), equal_nan=True,
                                           check_device=False)
            except AssertionError:
                return False
        elif isinstance(g, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return False  # a symbol of the trace leaked out as a constant
        elif g != w and not (g != g and w != w):  # NaN equals NaN
            return False
    return True


def _gradients(inputs, outputs):
    """d(sum of the float outputs)/d(each input that requires grad), None where no path."""
    wanted = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    outs = [o for o in pytree.tree_leaves(outputs)
            if isinstance(o, torch.Tensor) and o.requires_grad and o.is_floating_point()]
    if not wanted or not outs:
        return None
    total = sum(o.float().sum() for o in outs)
    return torch.autograd.grad(total, wanted, allow_unused=True)


def _run(runner, leaves):
    """(outputs, the tensors it was given after the call, gradients) of one run on copies."""
    inputs = [_clone(v) for v in leaves]
    outputs = runner(*inputs)
    try:
        grads = _gradients(inputs, outputs)
    except RuntimeError as error:
        grads = ("error", type(error).__name__)
    return outputs, [v.detach() if isinstance(v, torch.Tensor) else v for v in inputs], grads


def check_sample(operator, sample) -> tuple[str, str]:
    """(outcome, detail) for one sample of `operator` (an OpInfo's function or in-place
    variant): an AGREE / DISAGREE, or a skip reason."""
    leaves, spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    tensor_slots = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
    tensors = [leaves[i] for i in tensor_slots]

    @autoconv.do_not_convert
    def call(*values):
        full = list(leaves)
        for slot, value in zip(tensor_slots, values):
            full[slot] = value
        input_, args, kwargs = pytree.tree_unflatten(full, spec)
        return operator(input_, *args, **kwargs)

    try:
        eager = _run(call, tensors)
    except Exception as error:
        return "eager raises", type(error).__name__
    function = autoconv.autoconv(call, backend="fx")
    try:
        concrete = function.get_concrete_function(*[_clone(t) for t in tensors])
        fx = _run(concrete, tensors)
    except Exception as error:
        return "fx raises", type(error).__name__
    if not _same(fx, eager):
        return "fx differs from eager", ""
    try:
        python = backends.build("python", concrete.graph_module, tensors)
        flat_concrete = _Rebuilt(concrete, python)
        got = _run(flat_concrete, tensors)
    except Exception as error:
        return DISAGREE, f"python backend raises {type(error).__name__}: {error}"[:300]
    if not _same(got, eager):
        return DISAGREE, "python backend's result differs from eager"
    return AGREE, ""


class _Rebuilt:
    """`concrete` run with another backend's runner on the same graph."""

    def __init__(self, concrete, runner):
        self.concrete, self.runner = concrete, runner

    def __call__(self, *args):
        concrete = self.concrete
        saved = concrete._runner
        concrete._runner = self.runner
        try:
            return concrete(*args)
        finally:
            concrete._runner = saved


def samples(op, dtype, requires_grad):
    if dtype not in op.supported_dtypes("cpu"):
        return []
    if requires_grad and not (op.supports_autograd and dtype.is_floating_point):
        return []
    return list(op.sample_inputs("cpu", dtype, requires_grad=requires_grad))


def check_op(op, stats: collections.Counter, failures: list, max_samples: int | None = None):
    """Runs every (dtype, grad) sample of `op`; counts outcomes into `stats`."""
    if torch.Tag.nondeterministic_seeded in getattr(op.op, "tags", ()) or \
            "rand" in op.name or op.name in _RANDOM:
        stats["skipped: random"] += 1
        return
    outcomes = collections.Counter()
    for dtype in DTYPES:
        for grad in (False, True):
            try:
                cases = samples(op, dtype, grad)
            except Exception:
                cases = []
                outcomes["no samples"] += 1
            variants = [("", op.op)]
            if op.inplace_variant is not None:  # in place on an argument
                variants.append(("in place", op.inplace_variant))
            for sample in cases[:max_samples]:
                for variant, operator in variants:
                    # Without grad the python backend writes pointwise results in place.
                    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                            torch.set_grad_enabled(grad):
                        warnings.simplefilter("ignore")
                        outcome, detail = check_sample(operator, sample)
                    outcomes[outcome] += 1
                    if outcome == DISAGREE:
                        failures.append((op.name, op.variant_test_name, variant, dtype, grad,
                                         detail))
    for outcome, count in outcomes.items():
        stats[f"samples: {outcome}"] += count
    if outcomes[DISAGREE]:
        stats["ops: disagree"] += 1
    elif outcomes[AGREE]:
        stats["ops: agree"] += 1
    else:
        stats["ops: skipped (no sample the fx backend runs as eager does)"] += 1


# Ops whose results depend on the random generator's state (not all carry the tag).
_RANDOM = {"bernoulli", "multinomial", "normal", "nn.functional.dropout",
           "nn.functional.dropout2d", "nn.functional.dropout3d", "nn.functional.alpha_dropout",
           "nn.functional.feature_alpha_dropout", "nn.functional.rrelu", "randint_like",
           "empty", "empty_like", "new_empty", "new_empty_strided", "empty_strided",
           "empty_permuted", "uniform", "exponential", "geometric", "cauchy", "log_normal",
           "nn.functional.fractional_max_pool2d", "nn.functional.fractional_max_pool3d",
           "torch._scaled_mm", "nn.functional.scaled_dot_product_attention"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=1, help="every STRIDE-th op")
    parser.add_argument("--ops", nargs="*", help="only these op names")
    parser.add_argument("--shard", default="0/1", help="I/N: run the I-th of N parts")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    stats, failures = collections.Counter(), []
    start = time.perf_counter()
    index, count = map(int, args.shard.split("/"))
    ops = [op for op in op_db()[::args.stride] if not args.ops or op.name in args.ops]
    ops = ops[index::count]
    for i, op in enumerate(ops):
        seen = len(failures)
        check_op(op, stats, failures)
        for failure in failures[seen:]:
            print("DISAGREE", *failure, flush=True)
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(ops)} ops, {time.perf_counter() - start:.0f} s:",
                  dict(sorted(stats.items())), flush=True)
    stats["ops tried"] = len(ops)
    print(f"\n{len(ops)} ops in {time.perf_counter() - start:.0f} s")
    for key in sorted(stats):
        print(f"  {key}: {stats[key]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
