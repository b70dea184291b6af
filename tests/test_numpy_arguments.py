"""numpy arrays and scalars an autoconv Function reads (NOTE [numpy arrays keyed by their
values], NOTE [numpy scalars keyed as Python numbers] in autoconv/signature.py) and tensor
subclasses it is given (NOTE [tensor subclass arguments] in autoconv/capture.py), compared with
plain Python on calls differing in one thing (break42)."""

import dataclasses
import math
import types
import warnings

import pytest
import torch

import autoconv
from support import exported

np = pytest.importorskip("numpy")


def _same(got, want) -> bool:
    return got.dtype == want.dtype and torch.equal(got, want)


def test_a_global_array_method_call_is_converted():
    # break42 s01: the converter's look-up of `G.sum` compared the array with datetime's
    # classes by `in`, elementwise, and a ValueError (the truth value of an array) reached the
    # user at conversion
    global _G
    _G = np.array([2.0, 3.0])

    def by_sum(x):
        return x * float(_G.sum())

    function = autoconv.autoconv(by_sum)
    x = torch.ones(2)
    assert _same(function(x), by_sum(x))
    _G[0] = 5.0
    assert _same(function(x), by_sum(x))


_G = None


def test_a_numpy_array_method_under_torch_compile():
    # break42 s09: a global array's method not named as a tensor's (`_G.astype(...)`), or a
    # local array's, went through converted_call, and dynamo stopped at the type of the bound
    # method ("GetAttrVariable(NumpyNdarrayVariable(), astype) has no type"); numpy's methods
    # are called as they are now
    global _G
    _G = np.array([2.0, 3.0])

    def by_global(x):
        return x * float(_G.astype(np.float32)[0]) if x.sum() > 0 else x

    def by_local(a, x):
        b = a * 1
        return x * float(b.astype(np.float32)[1]) if x.sum() > 0 else x

    x = torch.ones(2)
    for fn, args in ((by_global, (x,)), (by_local, (_G, x))):
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
        assert _same(compiled(*args), fn(*args)), fn.__name__
        assert _same(autoconv.autoconv(fn)(*args), fn(*args)), fn.__name__


def test_a_closure_array_method_under_torch_compile():
    # break42 s10: a closure's array method went through converted_call, and torch.compile
    # stopped at dynamo's 'GetAttrVariable(NumpyNdarrayVariable(), astype) has no type'
    # (NOTE [methods of outside values] in autoconv/converters/calls.py)
    held = np.array([2.0, 3.0])

    def by_closure(x):
        return x * float(held.astype(np.float32)[0]) if x.sum() > 0 else x

    torch._dynamo.reset()
    x = torch.ones(2)
    compiled = torch.compile(autoconv.convert(by_closure), fullgraph=True, backend="eager")
    assert _same(compiled(x), by_closure(x))
    function = autoconv.autoconv(by_closure)
    assert _same(function(x), by_closure(x))
    held[0] = 5.0  # (the closure's array is guarded by its values)
    assert _same(function(x), by_closure(x))
    assert _same(function(-x), by_closure(-x))


def test_arrays_of_other_dtypes_layouts_and_fields_take_their_own_graphs():
    # break42 s02: keyed by `dtype.str`, a structured array of other field names (`|V16` both)
    # found the graph of the first (1 for Python's 2, silently)
    first = np.zeros(2, dtype=[("a", "f8"), ("b", "f8")])
    first["a"], first["b"] = 1.0, 2.0
    swapped = np.zeros(2, dtype=[("b", "f8"), ("a", "f8")])
    swapped["b"], swapped["a"] = 1.0, 2.0

    def field_a(s, x):
        return x * float(s["a"][0])

    def element(a, x):
        return x * float(a.reshape(-1)[1]) * a.shape[0]

    x = torch.ones(2)
    function = autoconv.autoconv(field_a)
    for s in (first, swapped, first):
        assert _same(function(s, x), field_a(s, x))
    grid = np.arange(6.0).reshape(2, 3)
    function = autoconv.autoconv(element)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the retrace warning)
        for a in (grid, grid.T, np.ascontiguousarray(grid.T), np.arange(10.0)[::2],
                  np.arange(10.0)[1::2], np.array([2.0, 3.0], dtype=">f8"),
                  np.array([2.0, 3.0], dtype=np.float32), np.array([2, 3], dtype="datetime64[s]"
                                                                   ).astype(np.int64)):
            assert _same(function(a, x), element(a, x)), a


def test_an_object_array_changed_in_place_traces_again():
    # break42 s04: an object array's bytes are its items' addresses; an item changed in place
    # kept them, and the replay gave the traced 2 for Python's 7, silently
    held = np.array([1.0, [2.0]], dtype=object)

    def second(o, x):
        return x * o[1][0]

    function = autoconv.autoconv(second)
    x = torch.ones(2)
    assert _same(function(held, x), second(held, x))
    held[1][0] = 7.0
    assert _same(function(held, x), second(held, x))


@dataclasses.dataclass
class _Config:
    scale: object


def test_a_numpy_scalar_changed_between_calls_matches_python():
    # break42 s03: a numpy scalar in an argument object's field, or a global list's item, was
    # neither keyed nor guarded: `cfg.scale = np.float64(3.0)` after 2.0 replayed 2.0,
    # silently (NOTE [numpy scalars keyed as Python numbers])
    def by_field(cfg, x):
        return x * math.copysign(1.0, cfg.scale) * float(cfg.scale) + torch.tensor(cfg.scale)

    def by_global(x):
        return by_field(_SCALES[0], x)

    x = torch.ones(2)
    for first, then in ((np.float64(2.0), np.float64(3.0)), (np.float32(2.0), np.float32(3.0)),
                        (np.int64(2), np.int64(3)), (np.float64(0.0), np.float64(-0.0)),
                        (np.float64(2.0), 2.0), (np.float32(2.0), np.float64(2.0))):
        cfg = _Config(first)
        function = autoconv.autoconv(by_field)
        assert _same(function(cfg, x), by_field(cfg, x))
        cfg.scale = then
        assert _same(function(cfg, x), by_field(cfg, x)), (first, then)
        _SCALES[0] = _Config(first)
        function = autoconv.autoconv(by_global)
        assert _same(function(x), by_global(x))
        _SCALES[0].scale = then
        assert _same(function(x), by_global(x)), (first, then)
    # as an argument: its type and sign in the key
    sign = autoconv.autoconv(lambda s, x: x * math.copysign(1.0, s) + torch.tensor(s))
    for s in (np.float64(0.0), np.float64(-0.0), np.float32(-0.0), -0.0, np.float64(-0.0)):
        assert _same(sign(s, x), x * math.copysign(1.0, s) + torch.tensor(s)), repr(s)


_SCALES = [None]


def test_arrays_in_containers_globals_closures_and_module_attributes_changed_in_place():
    # (right before break42 too: kept as checks of NOTE [numpy arrays keyed by their values])
    x = torch.ones(2)
    listed, mapped = [np.array([2.0])], {"a": np.array([2.0])}
    deep = _Config(types.SimpleNamespace(inner=types.SimpleNamespace(a=np.array([2.0]))))
    cases = ((lambda l, x: x * float(l[0][0]), (listed, x), listed[0]),
             (lambda d, x: x * float(d["a"][0]), (mapped, x), mapped["a"]),
             (lambda c, x: x * float(c.scale.inner.a[0]), (deep, x), deep.scale.inner.a))
    for fn, args, array in cases:
        function = autoconv.autoconv(fn)
        function(*args)
        array[0] = 4.0
        assert _same(function(*args), fn(*args))

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gains = np.array([2.0])

        def forward(self, x):
            return x * float(self.gains[0])

    model = Scaled()
    function = autoconv.autoconv(model)
    function(x)
    model.gains[0] = 4.0
    assert _same(function(x), model(x))
    model.gains = np.array([6.0])
    assert _same(function(x), model(x))
    for read in (_from_numpy, _as_tensor, _asarray):
        _GAINS[:] = [2.0, 3.0]

        def by_global(x, read=read):
            return x * read()

        function = autoconv.autoconv(by_global)
        function(x)
        _GAINS[0] = 5.0
        assert _same(function(x), by_global(x))


_GAINS = np.array([2.0, 3.0])


def _from_numpy():
    return torch.from_numpy(_GAINS)[0]


def _as_tensor():
    return torch.as_tensor(_GAINS)[0]


def _asarray():
    return float(np.asarray(_GAINS)[0])


class _Marked(torch.Tensor):
    pass


def _marked(t):
    return t * 2 if isinstance(t, _Marked) else t * 3


def test_tensor_subclasses_in_other_places_are_refused():
    # (right before break42 too: a Parameter made of a subclass, a subclass in a list or in a
    # dict field, one made by _make_subclass)
    from autoconv_runtime import StagingError

    for fn, arg in ((lambda p: _marked(p).detach(), torch.nn.Parameter(
                        torch.ones(2).as_subclass(_Marked))),
                    (lambda l: _marked(l[0]), [torch.ones(2).as_subclass(_Marked)]),
                    (_marked, torch.Tensor._make_subclass(_Marked, torch.ones(2))),
                    (lambda b: _marked(b.d["t"]), types.SimpleNamespace(
                        d={"t": torch.ones(2).as_subclass(_Marked)}))):
        with pytest.raises(StagingError, match="subclass _Marked"):
            autoconv.autoconv(fn)(arg)


def test_a_tensor_subclass_module_buffer_is_refused_naming_it():
    # break42 s05: a module's buffer of a torch.Tensor subclass was traced as a plain tensor
    # (4 for Python's 3, silently); refused as a subclass argument is
    from autoconv_runtime import StagingError

    class Buffered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("buf", torch.ones(2).as_subclass(_Marked))

        def forward(self, x):
            return x + _marked(self.buf)

    model = Buffered()
    x = torch.ones(2)
    assert torch.equal(model(x), torch.full((2,), 3.0))
    with pytest.raises(StagingError, match="buffer buf is a tensor of the torch.Tensor "
                                           "subclass _Marked"):
        autoconv.autoconv(model)(x)


def test_a_parameter_argument_is_a_parameter_to_isinstance():
    # break42 s06: an nn.Parameter argument was traced as a plain tensor, so `isinstance(p,
    # nn.Parameter)` was False in the graph (3 for Python's 2, silently), and a plain tensor
    # found its graph (NOTE [parameters traced as parameters] in autoconv/capture.py)
    def kind(p):
        return (p * 2 if isinstance(p, torch.nn.Parameter) else p * 3).detach()

    weight = torch.nn.Parameter(torch.ones(2))
    assert torch.equal(kind(weight), torch.full((2,), 2.0))
    function = autoconv.autoconv(kind)
    for p in (weight, torch.ones(2), weight, torch.ones(2, requires_grad=True), weight):
        assert _same(function(p), kind(p)), type(p)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(kind), fullgraph=True, backend="eager")
    for p in (weight, torch.ones(2)):
        assert _same(compiled(p), kind(p)), type(p)
        assert _same(exported(kind, (p,))(p), kind(p)), type(p)


def test_a_modules_parameter_is_a_parameter_to_isinstance():
    # (its fake put in place by _reparametrize_module was a plain tensor: 3 for Python's 2)
    class Registering(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))
            self.register_buffer("b", torch.ones(2))

        def forward(self, x):
            w = 2 if isinstance(self.w, torch.nn.Parameter) else 3
            b = 5 if isinstance(self.b, torch.nn.Parameter) else 7
            return x * w * b

    model = Registering()
    x = torch.ones(2)
    assert torch.equal(autoconv.autoconv(model)(x), model(x))


_MARKED_GLOBAL = torch.ones(2).as_subclass(_Marked)


def test_a_global_tensor_subclass_is_refused_naming_it():
    # break42 s11: a global (closure, partial-held, module attribute) tensor of a subclass
    # stopped the trace in torch's TypeError (unsupported operand type(s) for *: '_Marked' and
    # 'int') (NOTE [tensor subclasses from outside] in autoconv_runtime/staging/grad_mode.py)
    import functools

    from autoconv_runtime import StagingError

    held = torch.ones(2).as_subclass(_Marked)
    holder = torch.nn.Module()
    holder.t = held

    def by_global(x):
        return x + _marked(_MARKED_GLOBAL)

    def by_closure(x):
        return x + _marked(held)

    def by_partial(t, x):
        return x + _marked(t)

    def by_module_attribute(x):
        return x + holder.t.sum()

    x = torch.ones(2)
    assert torch.equal(by_global(x).as_subclass(torch.Tensor), torch.full((2,), 3.0))
    for fn, place in ((by_global, "the global _MARKED_GLOBAL"),
                      (by_closure, "the closure variable held"),
                      (functools.partial(by_partial, held), r"args\[0\]"),
                      (by_module_attribute, "holder")):
        with pytest.raises(StagingError, match=f"{place}.* subclass _Marked"):
            autoconv.autoconv(fn)(x)


def test_a_global_tensor_subclass_read_for_its_type_only_is_right():
    # (its class and metadata are the real tensor's: nothing is refused)
    def by_type(x):
        return x * 2 if isinstance(_MARKED_GLOBAL, _Marked) and _MARKED_GLOBAL.shape[0] == 2 \
            else x

    x = torch.ones(2)
    assert torch.equal(autoconv.autoconv(by_type)(x), by_type(x))
