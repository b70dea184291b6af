"""A probe's random draws under dynamo: zeros of the draw's shape, drawn from no generator.

NOTE [random draws of probes under dynamo]
Outside dynamo, the draws a probe traced become zeros in the graph make_fx builds once the
outermost probe ends (NOTE [random draws of probes] in context.py). Under dynamo the graph is
dynamo's own, out of the runtime's reach, and a probe's draws stayed draws: dead code, but a
random op is kept for its effect on torch's generator, so the compiled function drew more
numbers than Python and every later draw differed (a list grown in a staged `if` with a
`torch.rand` in the branch gave another result than Python under the same seed, also on the
path that does not take the branch). So under dynamo the outermost probe runs its bodies under
`ZeroDraws`, a TorchFunctionMode (dynamo traces one entered in the code it traces) that answers
each call of a random function (`torch.rand`, `Tensor.uniform_`, dropout in training ...) with
zeros of the shape and dtype it would give, and records that the probe drew. A probe whose
count (a loop's trips, the rows a branch appends) could depend on what it drew is refused by
its caller, as outside dynamo (there the graph shows which count a draw reaches; here only
that the probe drew and the count is not a constant). The random functions are those of
torch's namespace, `Tensor`'s methods, `torch.nn.functional` and `torch.nn.init` whose ops
carry torch's `nondeterministic_seeded` tag; a random op reached otherwise (a C++ extension's)
is not seen, and still draws.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["ZeroDraws"]


def _sized(args, kwargs, first=0):
    """The size of a factory call (`torch.rand(2, 3)`, `torch.rand((2, 3))`, `size=`)."""
    if "size" in kwargs:
        size = kwargs["size"]
    else:
        size = args[first:]
        if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
            size = size[0]
    return tuple(size)


def _factory_kwargs(kwargs, dtype=None):
    out = {name: kwargs[name] for name in ("dtype", "device", "layout", "requires_grad")
           if kwargs.get(name) is not None}
    if dtype is not None:
        out.setdefault("dtype", dtype)
    return out


def _like(tensor, kwargs, dtype=None):
    return torch.zeros_like(tensor, **_factory_kwargs(kwargs, dtype))


def _rand(args, kwargs):  # torch.rand / randn(*size, generator=, dtype= ...)
    return torch.zeros(_sized(args, kwargs), **_factory_kwargs(kwargs))


def _randint(args, kwargs):  # torch.randint([low,] high, size, ...)
    size = kwargs["size"] if "size" in kwargs else args[-1]
    return torch.zeros(tuple(size), **_factory_kwargs(kwargs, torch.int64))


def _randperm(args, kwargs):
    n = args[0] if args else kwargs["n"]
    return torch.zeros((n,), **_factory_kwargs(kwargs, torch.int64))


def _first_like(args, kwargs):  # rand_like, bernoulli(p), poisson(rates) ...
    tensor = args[0] if args else kwargs["input"]
    return _like(tensor, kwargs)


def _randint_like(args, kwargs):
    tensor = args[0] if args else kwargs["input"]
    return _like(tensor, kwargs)


def _normal(args, kwargs):  # normal(mean, std[, size]), either a tensor or a number
    mean = args[0] if len(args) > 0 else kwargs.get("mean", 0.0)
    std = args[1] if len(args) > 1 else kwargs.get("std", 1.0)
    size = args[2] if len(args) > 2 else kwargs.get("size")
    if size is not None:
        return torch.zeros(tuple(size), **_factory_kwargs(kwargs))
    parts = [t for t in (mean, std) if isinstance(t, torch.Tensor)]
    if len(parts) == 2:
        return torch.zeros_like(parts[0] + parts[1])
    return torch.zeros_like(parts[0])


def _binomial(args, kwargs):
    count = args[0] if args else kwargs["count"]
    prob = args[1] if len(args) > 1 else kwargs["prob"]
    return torch.zeros_like(count + prob)


def _multinomial(args, kwargs):
    probs = args[0] if args else kwargs["input"]
    n = args[1] if len(args) > 1 else kwargs["num_samples"]
    return torch.zeros((*probs.shape[:-1], n), dtype=torch.int64, device=probs.device)


def _in_place(args, kwargs):  # Tensor.uniform_(...): the target filled with zeros
    with torch.no_grad():
        return args[0].zero_()


def _dropout(args, kwargs, default=True):
    """A dropout-like function's zeros where it draws (in training, with p > 0), else None."""
    p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
    train = args[2] if len(args) > 2 else kwargs.get("training", kwargs.get("train", default))
    if not train or (isinstance(p, (int, float)) and p == 0):
        return None
    return torch.zeros_like(args[0] if args else kwargs["input"])


def _alpha_dropout(args, kwargs):  # (F.alpha_dropout's `training` is False by default)
    return _dropout(args, kwargs, default=False)


def _rrelu(args, kwargs):
    training = args[3] if len(args) > 3 else kwargs.get("training", False)
    if not training:
        return None
    return torch.zeros_like(args[0] if args else kwargs["input"])


# {name: its zeros given (args, kwargs), or None where the call draws nothing}
_MAKERS = {maker.__name__: maker for maker in (
    _rand, _randint, _randperm, _first_like, _randint_like, _normal, _binomial, _multinomial,
    _in_place, _dropout, _alpha_dropout, _rrelu)}


def _table():
    F, init, T = torch.nn.functional, torch.nn.init, torch.Tensor
    table = {torch.rand: _rand, torch.randn: _rand, torch.randint: _randint,
             torch.randperm: _randperm, torch.rand_like: _first_like,
             torch.randn_like: _first_like, torch.randint_like: _randint_like,
             torch.bernoulli: _first_like, torch.poisson: _first_like,
             torch._standard_gamma: _first_like, torch._sample_dirichlet: _first_like,
             torch.normal: _normal, torch.binomial: _binomial,
             torch.multinomial: _multinomial, T.multinomial: _multinomial,
             T.bernoulli: _first_like,
             torch.dropout: _dropout, torch.alpha_dropout: _dropout,
             torch.feature_dropout: _dropout, torch.feature_alpha_dropout: _dropout,
             F.dropout: _dropout, F.dropout1d: _dropout, F.dropout2d: _dropout,
             F.dropout3d: _dropout, F.alpha_dropout: _alpha_dropout,
             F.feature_alpha_dropout: _alpha_dropout,
             F.rrelu: _rrelu, torch.rrelu: _rrelu, F.gumbel_softmax: _first_like}
    for name in ("uniform_", "normal_", "bernoulli_", "exponential_", "geometric_", "cauchy_",
                 "log_normal_", "random_"):
        table[getattr(T, name)] = _in_place
    for name in ("uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
                 "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_"):
        table[getattr(init, name)] = _in_place
    return {func: maker.__name__ for func, maker in table.items()}


# {random function: the name of its zeros-maker in _MAKERS}
_ZEROS = _table()


def _zeros_of(func):
    """The name of a random function's zeros-maker, `_OPERATOR` for a torch operator that
    traces bodies (torch.cond, while_loop), else None (dynamo calls this for real: a function
    in, a constant out)."""
    if func is torch.cond or isinstance(func, torch._ops.HigherOrderOperator):
        return _OPERATOR
    return _ZEROS.get(func)


_zeros_of._dynamo_marked_constant = True
_OPERATOR = "<operator>"


class ZeroDraws(TorchFunctionMode):
    """Within: calls of torch's random functions give zeros and draw nothing; `drew` counts
    those made outside the bodies of torch operators (NOTE [random draws of probes under
    dynamo]). Dynamo traces an operator's bodies, where this mode is not on torch's stack (its
    call of the operator is its own), so each body enters a ZeroDraws of its own; dynamo
    refuses a body's writes to `drew`, which counts no draw there.

    `refused`: (statement, problem, fix) of the StagingError raised at a draw, here or in an
    operator's body; `refused_in_bodies`: the same for the draws in operators' bodies only.
    """

    def __init__(self, refused=None, refused_in_bodies=None):
        super().__init__()
        self.drew = 0
        self.refused = refused
        self.refused_in_bodies = refused_in_bodies if refused is None else refused

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        maker = _zeros_of(func)
        if maker is _OPERATOR:
            refused = self.refused_in_bodies
            return func(*[_within_zero_draws(a, refused) if _is_body(a) else a for a in args],
                        **kwargs)
        if maker is not None:
            out = _MAKERS[maker](args, kwargs)
            if out is not None:
                if self.refused is not None:
                    from ..errors import StagingError

                    raise StagingError(*self.refused)
                self.drew += 1
                return out
        return func(*args, **kwargs)


def _is_body(value) -> bool:
    return callable(value) and not isinstance(value, (torch.Tensor, type))


def _within_zero_draws(fn, refused):
    def body(*args):
        with ZeroDraws(refused):
            return fn(*args)
    return body
