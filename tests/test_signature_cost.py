"""The per-call signature's shortcuts key every call as the plain computation does.

NOTE [signature without the pytree walk] and NOTE [signature of a field in one C pipeline] in
autoconv/signature.py: the shortcuts must give the very keys of the pytree walk and of one
`_field_key` an item, so that no retrace decision changes; and a field that matters, changed,
still traces again.
"""

from __future__ import annotations

import collections
import dataclasses

import pytest
import torch
from torch.utils import _pytree as pytree

import autoconv
from autoconv import signature as sig


def _walked(args):
    """The signature the pytree walk gives (the path every call took before the shortcut)."""
    leaves, spec = pytree.tree_flatten((args, {}))
    key = tuple(sig._leaf_key(leaf) for leaf in leaves)
    ids = [id(leaf) for leaf in leaves if isinstance(leaf, torch.Tensor)]
    extra = ()
    if len(set(ids)) != len(ids):
        extra = ((sig.SAME_TENSOR, sig._same_tensor_groups(leaves)),)
    return sig.Signature(key, spec, extra), leaves


def _field_key_per_item(value, depth):
    """`_field_key` as it was: one call an item (the reference the C pipelines must equal)."""
    kind = type(value)
    if kind in sig._SCALARS:
        return sig.scalar_key(value)  # (-0.0 apart: NOTE [scalars keyed by type and sign])
    if isinstance(value, torch.Tensor):
        return sig._TENSOR_FIELD
    if kind is list or kind is tuple:
        if depth <= 0 or len(value) > sig._LONG:
            return (kind, len(value))
        return (kind, len(value), tuple(_field_key_per_item(v, depth - 1) for v in value))
    if kind is dict:
        if depth <= 0 or len(value) > sig._LONG:
            return (kind, tuple(value))
        return (kind, tuple((k, _field_key_per_item(v, depth - 1)) for k, v in value.items()))
    if depth > 0 and sig._is_plain_object(value):
        return ("object", id(value), _fields_per_item(value, depth - 1))
    if kind in sig._CALLABLES:  # (a function in a field keys itself: tester35 s06)
        return ("callable", value)
    return None


def _fields_per_item(obj, depth=sig._FIELD_DEPTH):
    out = []
    for k, v in vars(obj).items():
        key = _field_key_per_item(v, depth)
        if key is not None:
            out.append((k, key))
    return tuple(sorted(out, key=lambda entry: entry[0]))


class Plain:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@dataclasses.dataclass
class Config:  # (eq=True: unhashable, keyed as an object)
    scale: float = 2.0
    steps: list = dataclasses.field(default_factory=lambda: [1, 2])


Pair = collections.namedtuple("Pair", "a b")


def _objects():
    t = torch.ones(2)
    inner = Plain(n=3, rate=0.5, t=t)
    return [
        Plain(),
        Plain(a=1, b=2.0, c="x", d=None, e=True, f=b"b", g=1j),
        Plain(t=t, items=[torch.ones(1) for _ in range(10)], cfg={"eps": 1e-3, "mode": "m"}),
        Plain(mixed=[1, 1.0, True, t, "s", None], nested=[[1, 2], [t, t], {"k": [0.5]}]),
        Plain(sub=torch.nn.Parameter(torch.ones(1)), subs=[torch.nn.Parameter(torch.ones(1))]),
        Plain(empty=[], empty_dict={}, tup=(1, 2.0), tensors=(t, t)),
        Plain(long=list(range(sig._LONG + 1)), longd={i: i for i in range(sig._LONG + 1)},
              exact=list(range(sig._LONG))),
        Plain(inner=inner, chain=Plain(a=Plain(b=Plain(c=Plain(d=1))))),
        Plain(module=torch.nn.Linear(1, 1), fn=len, dc=Config()),
        Plain(zero=0.0, negzero=-0.0, nan=float("nan"), big=2**70, signs=[0.0, -0.0, 1],
              signed={"a": -0.0, "b": 0}),
        Config(),
    ]


@pytest.mark.parametrize("index", range(len(_objects())))
def test_fields_key_as_one_call_an_item(index):
    obj = _objects()[index]
    assert sig._python_fields(obj) == _fields_per_item(obj)


@pytest.mark.parametrize("args", [
    (torch.ones(2),),
    (torch.ones(2), torch.ones(3, 2).t()),
    (torch.ones(2), 3, 2.5, "s", None),
    (Plain(a=1, items=[torch.ones(1)]), torch.ones(2)),
    (Config(), torch.ones(2)),
    (torch.nn.Parameter(torch.ones(2)), torch.ones(2)),
    (sig.TensorSpec((2, None)), 1),
    ({1, 2}, torch.ones(1)),  # unhashable, not a pytree node
    # pytree nodes: the walk
    ([torch.ones(2)], 1),
    (Pair(torch.ones(1), 2), torch.ones(1)),
    ({"a": torch.ones(1)},),
], ids=lambda args: ",".join(type(a).__name__ for a in args))
def test_positional_leaves_key_as_the_pytree_walk(args):
    got, got_leaves = sig.signature_of(args, {})
    want, want_leaves = _walked(args)
    assert got == want and got.key == want.key and got.extra == want.extra
    assert str(got.treespec) == str(want.treespec)
    assert list(got_leaves) == list(want_leaves)


def test_positional_leaves_take_no_pytree_walk(monkeypatch):
    args = (Plain(a=1, items=[torch.ones(1)] * 3), torch.ones(2), 2.0)
    sig.signature_of(args, {})  # (the treespec of three leaves, made once)

    def walk(*_):
        raise AssertionError("walked")

    monkeypatch.setattr(sig.pytree, "tree_flatten", walk)
    assert sig.signature_of(args, {})[0] == sig.signature_of(args, {})[0]


def test_same_tensor_among_other_arguments_is_keyed():
    x, y = torch.ones(2), torch.ones(2)
    for args in [(x, 1, x), (x, Plain(a=1), x, y), (1, x, x)]:
        got, _ = sig.signature_of(args, {})
        want, _ = _walked(args)
        assert got == want and got.extra == want.extra and got.extra, args
    got, _ = sig.signature_of((x, 1, 1, y), {})
    assert got.extra == ()  # two equal numbers are no aliasing


def _counted():
    def step(obj, x):
        return x * obj.rate + obj.items[1] * obj.cfg["eps"] + len(obj.items)

    return autoconv.autoconv(step)


@pytest.mark.filterwarnings("ignore:.*has been traced 5 times")
def test_a_changed_list_item_traces_again():
    f = _counted()
    obj = Plain(rate=2.0, items=[1.0, 2.0, 3.0], cfg={"eps": 0.5})
    x = torch.ones(2)
    assert torch.equal(f(obj, x), x * 2.0 + 2.0 * 0.5 + 3)
    obj.items[1] = 7.0
    assert torch.equal(f(obj, x), x * 2.0 + 7.0 * 0.5 + 3)
    obj.items[1] = 7  # an int of equal value: another type, another graph
    assert torch.equal(f(obj, x), x * 2.0 + 7 * 0.5 + 3)
    assert f.trace_count == 3
    obj.cfg["eps"] = 0.25
    assert torch.equal(f(obj, x), x * 2.0 + 7 * 0.25 + 3)
    obj.items.append(1.0)
    assert torch.equal(f(obj, x), x * 2.0 + 7 * 0.25 + 4)
    assert f.trace_count == 5


def test_a_list_of_tensors_keyed_by_length_and_kinds():
    f = _counted()
    x = torch.ones(2)
    obj = Plain(rate=1.0, items=[torch.ones(2) for _ in range(3)], cfg={"eps": 1.0})
    f(obj, x)
    obj.items[1] = 5.0  # a tensor became a number: the graph read a tensor there
    assert torch.equal(f(obj, x), x + 5.0 + 3)
    obj.items[1] = torch.ones(2)
    obj.items.append(torch.ones(2))
    assert torch.equal(f(obj, x), x + 1 + 4)
    assert f.trace_count == 3
    f(obj, x)
    assert f.trace_count == 3


def test_a_changed_number_among_positional_arguments_traces_again():
    def scaled(x, k, obj):
        return x * k + obj.bias

    f = autoconv.autoconv(scaled)
    x = torch.ones(2)
    obj = Plain(bias=1.0)
    assert torch.equal(f(x, 2, obj), x * 2 + 1.0)
    assert torch.equal(f(x, 3, obj), x * 3 + 1.0)
    obj.bias = -1.0
    assert torch.equal(f(x, 3, obj), x * 3 - 1.0)
    assert torch.equal(f(x, 3.0, obj), x * 3.0 - 1.0)
    assert f.trace_count == 4
    f(x, 3.0, obj)
    assert f.trace_count == 4


def _reads_field(c, x):
    return x * c.w


# NOTE [tensors in argument objects' fields] in autoconv/capture.py
def test_a_rebound_tensor_field_is_read_anew():
    f = autoconv.autoconv(_reads_field)
    c, x = Plain(w=torch.tensor(2.0)), torch.ones(2)
    assert torch.equal(f(c, x), x * 2.0)
    c.w = torch.tensor(5.0)  # (replayed the first tensor: x * 2.0)
    assert torch.equal(f(c, x), x * 5.0)
    c.w.fill_(9.0)
    assert torch.equal(f(c, x), x * 9.0)
    assert f.trace_count == 1
    assert not f.concrete_functions[0]._changed  # read only: nothing written back per call


def _reads_nested(c, x):
    return x * c.history[1] + c.inner.bias.sum() * c.opts["k"][0]


def test_rebound_tensors_in_lists_dicts_and_nested_objects_are_read_anew():
    f = autoconv.autoconv(_reads_nested)
    x = torch.ones(2)
    c = Plain(history=[torch.tensor(1.0), torch.tensor(2.0)], inner=Plain(bias=torch.ones(3)),
              opts={"k": [torch.tensor(3.0)]})

    def expected():
        return x * c.history[1] + c.inner.bias.sum() * c.opts["k"][0]

    assert torch.equal(f(c, x), expected())
    c.history[1] = torch.tensor(-4.0)
    c.inner.bias = torch.full((3,), 2.0)
    c.opts["k"][0] = torch.tensor(0.5)
    assert torch.equal(f(c, x), expected())
    assert f.trace_count == 1


def _reads_shape(c, x):
    return x * c.w.shape[0] + c.w.sum()


def test_a_tensor_field_of_another_shape_or_dtype_traces_again():
    f = autoconv.autoconv(_reads_shape)
    c, x = Plain(w=torch.ones(3)), torch.ones(2)
    assert torch.equal(f(c, x), x * 3 + 3)
    c.w = torch.ones(5)  # the graph baked the size the trace read
    assert torch.equal(f(c, x), x * 5 + 5)
    assert f.trace_count == 2
    c.w = torch.ones(5, dtype=torch.float64)
    out, want = f(c, x), _reads_shape(c, x)
    assert out.dtype == want.dtype and torch.equal(out, want)
    assert f.trace_count == 3
    concrete = f.get_concrete_function(c, x)
    c.w = torch.ones(2)
    with pytest.raises(TypeError, match="field"):
        concrete(c, x)


def _reads_item(c, x):
    total = 0.0
    for v in c.weights.tolist():
        total += v
    for _ in range(int(c.n)):
        x = x + 1
    return x * c.w.item() * total


def test_a_tensor_field_read_as_a_python_value_is_read_anew():
    f = autoconv.autoconv(_reads_item)
    c = Plain(w=torch.tensor(2.0), weights=torch.tensor([1.0, 2.0]), n=torch.tensor(3))
    x = torch.ones(2)
    assert torch.equal(f(c, x), _reads_item(c, x))
    c.w.fill_(3.0)
    assert torch.equal(f(c, x), _reads_item(c, x))
    c.w, c.weights, c.n = torch.tensor(5.0), torch.tensor([0.5, 0.5]), torch.tensor(1)
    assert torch.equal(f(c, x), _reads_item(c, x))  # (the values traced: x * 3.0 * 3.0 + 3)


# GuardSet.check runs only the pipelines that have places: each alone still sees its change.
SCALE = 2.0
TABLE = {"a": 1.0}


def _closure_only():
    factor = 3.0

    def scaled(x):
        return x * factor

    def rebind(value):
        nonlocal factor
        factor = value

    return scaled, rebind


def _global_only(x):
    return x * SCALE


def _dict_keys_only(x):
    return x * len(TABLE)


def test_each_guard_pipeline_alone_sees_its_change():
    global SCALE
    x = torch.ones(2)
    scaled, rebind = _closure_only()
    f = autoconv.autoconv(scaled)
    assert torch.equal(f(x), x * 3.0)
    rebind(4.0)  # a closure cell: the reads pipeline only
    assert torch.equal(f(x), x * 4.0)
    g = autoconv.autoconv(_global_only)
    assert torch.equal(g(x), x * 2.0)
    SCALE = 5.0  # a global: the items pipeline only
    try:
        assert torch.equal(g(x), x * 5.0)
    finally:
        SCALE = 2.0
    h = autoconv.autoconv(_dict_keys_only)
    assert torch.equal(h(x), x * 1)
    TABLE["b"] = 2.0  # a dict's length: the counts
    try:
        assert torch.equal(h(x), x * 2)
    finally:
        del TABLE["b"]
    assert (f.trace_count, g.trace_count, h.trace_count) == (2, 2, 2)
