"""A call dispatched to the last call's graph without its Signature (NOTE [the last call's
graph] in autoconv/function.py): every change a Signature or a guard sees between two calls is
still seen when the first of them was remembered. Each test warms the shortcut with two equal
calls, changes one thing, and compares with plain Python."""

import math
import os
import threading
import types
import warnings

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError


def _warm(function, *args):
    function(*args)
    function(*args)


def test_the_second_equal_call_takes_the_last_graph():
    def scaled(x):
        if x.sum() > 0:
            return x * 2
        return x - 1

    function = autoconv.autoconv(scaled)
    x = torch.ones(3)
    _warm(function, x)
    assert function._last is not None and function._last[2] is function.concrete_functions[0]
    assert torch.equal(function(-x), scaled(-x))
    assert function.trace_count == 1


def test_sizes_dtypes_strides_and_grad_after_the_last_call():
    def double(x):
        return x * 2

    function = autoconv.autoconv(double)
    _warm(function, torch.ones(3))
    for x in (torch.ones(4), torch.ones(3, dtype=torch.float64), torch.ones(3, 2).t()[0],
              torch.ones(3, requires_grad=True), torch.ones(3)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the fifth trace's warning)
            got = function(x)
        assert got.shape == x.shape and got.dtype == x.dtype
        assert torch.equal(got.detach(), double(x).detach())
        assert got.requires_grad == x.requires_grad
    assert function.trace_count == 5  # (the last input is the first signature again)


def test_one_tensor_given_twice_after_two_tensors_is_a_new_signature():
    def add(a, b):
        return a + b

    function = autoconv.autoconv(add)
    x, y = torch.ones(3), torch.full((3,), 2.0)
    _warm(function, x, y)
    assert torch.equal(function(x, x), add(x, x))
    assert function.trace_count == 2  # (NOTE [aliased arguments]: keyed, as without the shortcut)


def test_a_write_into_one_tensor_given_twice_after_two_tensors():
    def bump(a, b):
        a.add_(1)
        return a + b

    function = autoconv.autoconv(bump)
    x, y = torch.ones(3), torch.full((3,), 2.0)
    _warm(function, x, y)
    a, b = torch.ones(3), torch.ones(3)
    expected = bump(a, a)
    got_in = torch.ones(3)
    assert torch.equal(function(got_in, got_in), expected)
    assert torch.equal(got_in, a)


COUNTER = torch.zeros(3)


def _count_and_add(x):
    doubled = x * 2
    COUNTER.add_(1)
    return doubled + x  # (x, where it is COUNTER, read after the write)


def test_an_argument_that_is_a_captured_tensor_the_graph_writes():
    # NOTE [arguments that are captured tensors]: the graph writes the global in place; a call
    # given that very global after remembered calls given other tensors keys its aliasing
    def run(fn):
        COUNTER.zero_()
        outs = [fn(torch.ones(3)), fn(torch.ones(3)), fn(COUNTER).clone(), fn(torch.ones(3))]
        return outs, COUNTER.clone()

    expected = run(_count_and_add)
    function = autoconv.autoconv(_count_and_add)
    got = run(function)
    for g, e in zip(got[0], expected[0]):
        assert torch.equal(g, e)
    assert torch.equal(got[1], expected[1])
    assert function.trace_count == 2  # (a graph for the call given the global itself)


class _Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.drop = torch.nn.Dropout(0.5)
        self.scale = 2.0

    def forward(self, x):
        return self.drop(self.lin(x)) * self.scale


def test_a_module_put_in_eval_or_given_a_new_number_after_the_last_call():
    torch.manual_seed(0)
    model = _Scaled().eval()
    converted = autoconv.autoconv(model)
    x = torch.randn(2, 4)
    _warm(converted, x)
    model.scale = 3.0
    assert torch.equal(converted(x), model(x))
    model.train()
    torch.manual_seed(1)
    expected = model(x)
    torch.manual_seed(1)
    got = converted(x)
    assert torch.equal(got, expected)
    model.eval()
    model.lin.weight.data.mul_(2)  # (in place: read live by the same graph)
    assert torch.equal(converted(x), model(x))


def test_the_default_dtype_after_the_last_call():
    def made(x):
        return x + torch.tensor(1.5)

    function = autoconv.autoconv(made)
    x = torch.ones(2, dtype=torch.float64)
    _warm(function, x)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got, expected = function(x), made(x)
    finally:
        torch.set_default_dtype(before)
    assert torch.equal(got, expected) and got.dtype == expected.dtype


SCALE = 2.0
TABLE = torch.ones(3)


def _reads_globals(x):
    return x * SCALE + TABLE


def test_globals_rebound_after_the_last_call():
    global SCALE, TABLE
    function = autoconv.autoconv(_reads_globals)
    x = torch.arange(3.0)
    _warm(function, x)
    saved = SCALE, TABLE
    try:
        SCALE = 5.0
        assert torch.equal(function(x), _reads_globals(x))
        TABLE = torch.full((3,), 7.0)
        assert torch.equal(function(x), _reads_globals(x))
        TABLE.add_(1)  # (in place: the same graph reads it)
        assert torch.equal(function(x), _reads_globals(x))
    finally:
        SCALE, TABLE = saved


class _Ema:
    def __init__(self, decay):
        self.decay = decay


EMA = _Ema(0.5)


def _ema_step(x):
    return x * EMA.decay


def test_graphs_put_aside_and_back_after_the_last_call():
    # NOTE [graphs kept per guard outcome]: a graph parked forgets the remembered call
    global EMA
    first, second = _Ema(0.5), _Ema(0.25)
    function = autoconv.autoconv(_ema_step)
    x = torch.ones(2)
    saved = EMA
    try:
        for ema in (first, first, second, second, first, first, second):
            EMA = ema
            assert torch.equal(function(x), _ema_step(x))
    finally:
        EMA = saved
    assert function.trace_count == 2


def test_defaults_keywords_and_a_list_after_the_last_call():
    def shifted(x, shift=1.0):
        if isinstance(x, list):
            return x[0] * 10 + shift
        return x + shift

    function = autoconv.autoconv(shifted)
    x = torch.ones(2)
    _warm(function, x, 1.0)
    assert torch.equal(function(x), shifted(x))
    assert torch.equal(function(x, shift=3.0), shifted(x, shift=3.0))
    _warm(function, [x], 1.0)
    assert torch.equal(function([x], 1.0), shifted([x], 1.0))
    # (a list of one tensor flattens to the key of that tensor: a positional call of the
    # tensor itself must not find the list's graph)
    assert torch.equal(function(x, 1.0), shifted(x, 1.0))


class _Config:
    def __init__(self):
        self.gain = 2.0
        self.history = [1.0]


def test_an_argument_object_changed_after_the_last_call():
    def apply(cfg, x):
        return x * cfg.gain + len(cfg.history)

    function = autoconv.autoconv(apply)
    cfg, x = _Config(), torch.ones(2)
    _warm(function, cfg, x)
    cfg.gain = 4.0
    assert torch.equal(function(cfg, x), apply(cfg, x))
    cfg.history.append(2.0)
    assert torch.equal(function(cfg, x), apply(cfg, x))


@pytest.mark.parametrize("grad", [True, False])
def test_grad_mode_regions_after_the_last_call(grad):
    def partly_frozen(w, x):
        with torch.no_grad():
            scale = (w * 2).sum()
        return w * x * scale

    function = autoconv.autoconv(partly_frozen)
    w, x = torch.ones(3, requires_grad=True), torch.ones(3)
    with torch.set_grad_enabled(grad):
        _warm(function, w, x)
    with torch.set_grad_enabled(not grad):
        got, expected = function(w, x), partly_frozen(w, x)
    assert torch.equal(got.detach(), expected.detach())
    assert got.requires_grad == expected.requires_grad


class _Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x)


def test_a_parameter_made_a_buffer_after_the_last_call():
    # (a parameter the graph reads gone from its table: the Function forgets its graphs and
    # traces again, the remembered call with them)
    torch.manual_seed(0)
    model = _Layer()
    converted = autoconv.autoconv(model)
    x = torch.randn(2, 4)
    with torch.no_grad():
        _warm(converted, x)
        del model.lin.bias
        model.lin.register_buffer("bias", torch.full((4,), 3.0))
        assert torch.equal(converted(x), model(x))


# -- break41: sequences of calls differing in one thing, each compared with plain Python --


class _Typed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 2.0
        self.flag = True

    def forward(self, x):
        return x + torch.tensor(self.scale), torch.full((1,), self.flag)


@pytest.mark.parametrize("scale, flag", [(2, True), (2.0, 1), (2, 1)])
def test_a_module_number_of_another_type_after_the_last_call(scale, flag):
    # break41 s01: `self.scale = 2` after 2.0 (equal in Python) found the graph traced with
    # the float, whose `torch.tensor(self.scale)` is float32 where Python's is int64
    # (NOTE [scalars keyed by type and sign])
    model = _Typed()
    converted = autoconv.autoconv(model)
    x = torch.zeros(1, dtype=torch.int32)
    _warm(converted, x)
    model.scale, model.flag = scale, flag
    for _ in range(2):
        for got, expected in zip(converted(x), model(x)):
            assert torch.equal(got, expected) and got.dtype == expected.dtype


class _Signed:
    def __init__(self, s):
        self.s = s
        self.items = [s]


def test_negative_zero_after_zero():
    # break41 s02: -0.0 == 0.0 (and hashes alike), so an argument, a field or a list item of
    # -0.0 after 0.0 found the graph traced with the other sign
    def signed(x, s, obj, items):
        return x * math.copysign(1.0, s) + math.copysign(1.0, obj.s) + math.copysign(
            2.0, items[0])

    function = autoconv.autoconv(signed)
    x, obj = torch.arange(3.0), _Signed(0.0)
    _warm(function, x, 0.0, obj, [0.0])
    for s, field, item in ((-0.0, 0.0, 0.0), (0.0, -0.0, 0.0), (0.0, 0.0, -0.0),
                           (-0.0, -0.0, -0.0), (0.0, 0.0, 0.0)):
        obj.s = field
        for _ in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (the fifth trace's warning)
                got = function(x, s, obj, [item])
            assert torch.equal(got, signed(x, s, obj, [item]))


def test_defaults_changed_between_calls():
    # break41 s03: the binder's `inspect.signature` kept the defaults of its making, so `f(x)`
    # after `f.__defaults__ = (5.0,)` (or a keyword-only default changed in place) ran with the
    # old default's graph
    def scaled(x, scale=2.0, *, shift=0):
        return x * scale + shift

    function = autoconv.autoconv(scaled)
    x = torch.arange(3.0)
    _warm(function, x)
    scaled.__defaults__ = (5.0,)
    assert torch.equal(function(x), x * 5.0)
    scaled.__kwdefaults__["shift"] = 1
    assert torch.equal(function(x), x * 5.0 + 1)
    assert torch.equal(function(x, 2.0), x * 2.0 + 1)


def test_numbers_of_each_type_after_the_last_call():
    def typed(x, n):
        if isinstance(n, bool):
            return x + 100
        if isinstance(n, torch.Tensor):
            return x - n
        return x + torch.tensor(n)

    function = autoconv.autoconv(typed)
    x = torch.zeros(2, dtype=torch.int32)
    for n in (1, 1.0, True, torch.tensor(1), 1, 2):
        for _ in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (the fifth trace's warning)
                got, expected = function(x, n), typed(x, n)
            assert torch.equal(got, expected) and got.dtype == expected.dtype


def test_paths_raises_and_forgotten_graphs_after_the_last_call():
    def stepped(x, n):
        if n < 0:
            raise ValueError("negative")
        y = x * 2 if x.sum() > 0 else x - 1
        while y.sum() < n:
            y = y + 1
        return y

    function = autoconv.autoconv(stepped)
    x = torch.arange(3.0) - 1
    _warm(function, x, 5)
    for arg, n in ((-x - 1, 5), (x, 20), (x, 5)):
        assert torch.equal(function(arg, n), stepped(arg, n))
    with pytest.raises(ValueError, match="negative"):
        function(x, -1)
    assert torch.equal(function(x, 5), stepped(x, 5))
    function.get_concrete_function(torch.ones(4), 3)
    assert torch.equal(function(x, 5), stepped(x, 5))
    function._forget_graphs()
    assert function._last is None
    assert torch.equal(function(-x, 5), stepped(-x, 5))


def test_threads_calling_one_function_with_other_shapes():
    def summed(x, k):
        return (x * k).sum(0)

    function = autoconv.autoconv(summed)
    wrong = []

    def calls(seed):
        for i in range(60):
            n, k = 2 + (seed + i) % 3, (1, 2, 2.5)[(seed * i) % 3]
            x = torch.arange(float(n * 2)).reshape(n, 2)
            got = function(x, k)
            if not (torch.equal(got, summed(x, k)) and got.dtype == summed(x, k).dtype):
                wrong.append((n, k))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=calls, args=(seed,)) for seed in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert wrong == []


_GAINS = None  # a global numpy array, set by the test


def _scaled_by_global(x):
    return x * float(_GAINS[1])


def test_a_numpy_array_changed_in_place_after_the_last_call():
    # break41 s04: keyed by the object alone, the replay read the values the trace baked in
    # (2 for Python's 5, silently). NOTE [numpy arrays keyed by their values] in signature.py
    global _GAINS
    np = pytest.importorskip("numpy")

    def scaled(a, x):
        return x * float(a[0])

    def scaled_by_field(box, x):
        return x * float(box.gains[0])

    x = torch.ones(3)
    a = np.array([2.0])
    box = types.SimpleNamespace(gains=np.array([2.0, 1.0]))
    _GAINS = np.array([0.0, 2.0])
    for fn, args, array, index in ((scaled, (a, x), a, 0),
                                   (scaled_by_field, (box, x), box.gains, 0),
                                   (_scaled_by_global, (x,), _GAINS, 1)):
        function = autoconv.autoconv(fn)
        _warm(function, *args)
        for value in (5.0, -1.0, 2.0):
            array[index] = value
            for _ in range(2):
                assert torch.equal(function(*args), torch.full((3,), value)), (fn, value)
        assert function.trace_count == 3, fn.__name__  # (2.0 again: its graph is kept)


def test_a_numpy_array_changed_in_place_under_torch_compile():
    # (dynamo makes an ndarray argument a graph input and guards a global's: NOTE [numpy
    # arrays keyed by their values] in signature.py)
    global _GAINS
    np = pytest.importorskip("numpy")

    def scaled(a, x):
        return x * float(a[0]) if x.sum() > 0 else x

    def by_global(x):
        return x * float(_GAINS[0]) if x.sum() > 0 else x

    x = torch.ones(3)
    _GAINS = np.array([2.0])
    for fn, array in ((scaled, np.array([2.0])), (by_global, _GAINS)):
        torch._dynamo.reset()
        compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
        args = (array, x) if fn is scaled else (x,)
        for value in (2.0, 5.0):
            array[0] = value
            assert torch.equal(compiled(*args), torch.full((3,), value)), (fn, value)


class _Marked(torch.Tensor):
    pass


def test_a_tensor_subclass_argument_is_refused_not_traced_as_a_plain_tensor():
    # break41 s05: traced on a plain fake tensor, `isinstance(x, _Marked)` took the plain
    # path, on the first call as after a plain tensor's graph (3 for Python's 2, silently).
    # NOTE [tensor subclass arguments] in autoconv/capture.py
    def marked(x):
        return x * 2 if isinstance(x, _Marked) else x * 3

    function = autoconv.autoconv(marked)
    function_of_box = autoconv.autoconv(lambda box: marked(box.t))
    x = torch.ones(2).as_subclass(_Marked)
    assert torch.equal(marked(x), torch.full((2,), 2.0))
    for plain_first in (False, True):
        if plain_first:
            assert torch.equal(function(torch.ones(2)), torch.full((2,), 3.0))
        with pytest.raises(StagingError, match=r"subclass _Marked.*as_subclass\(torch.Tensor\)"):
            function(x)
    assert torch.equal(function(x.as_subclass(torch.Tensor)), torch.full((2,), 3.0))
    assert function.trace_count == 1
    # in an argument object's field, read by the graph as an input
    box = types.SimpleNamespace(t=torch.ones(2))
    assert torch.equal(function_of_box(box), torch.full((2,), 3.0))
    box.t = x
    with pytest.raises(StagingError, match="subclass _Marked"):
        function_of_box(box)
    # nn.Parameter, a subclass too, is traced as its tensor
    weight = torch.nn.Parameter(torch.ones(2))
    with torch.no_grad():
        assert torch.equal(function(weight), torch.full((2,), 3.0))


class _Optional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        y = self.lin(x) * getattr(self, "temperature", 1.0)
        if hasattr(self, "bias_extra"):
            y = y + self.bias_extra
        return y


def test_a_module_attribute_set_after_the_first_call():
    # break41 s07: an attribute the forward reads only where present, set after the first
    # call, was neither keyed (the names were taken at the first call) nor guarded: the graph
    # of its absence replayed, on every later call
    torch.manual_seed(0)
    model = _Optional()
    converted = autoconv.autoconv(model)
    x = torch.ones(1, 2)
    with torch.no_grad():
        _warm(converted, x)
        for name, value in (("temperature", 5.0), ("temperature", 6.0),
                            ("bias_extra", torch.full((2,), 3.0)), ("temperature", 2)):
            setattr(model, name, value)
            for _ in range(2):
                got, expected = converted(x), model(x)
                assert torch.equal(got, expected) and got.dtype == expected.dtype


def _variants():
    with torch.inference_mode():
        inference = torch.ones(2, 3)
    return [torch.ones(2, 3), torch.zeros(2, 3), torch.ones(3, 2),
            torch.ones(2, 3, dtype=torch.float64),
            torch.ones(2, 3, requires_grad=True), torch.ones(3, 2).t(), torch.ones(2, 6)[:, ::2],
            torch.nn.Parameter(torch.ones(2, 3)), torch.ones(2, 3).as_subclass(_Marked),
            inference, torch.ones(2, 3)._neg_view(), torch.ones(2, 3, device="meta"),
            torch.ones(1, 3).expand(2, 3), torch.ones(2, 3, dtype=torch.complex64).conj()]


@pytest.mark.parametrize("grad", [False, True])
def test_the_cpp_tensor_check_holds_only_where_the_key_is_the_last_call_s(grad):
    # NOTE [the last call's tensors checked in C++]: the check never takes the last call's
    # graph where the key differs (and torch compares the tensor's own requires_grad, with
    # grad mode off too)
    from autoconv.signature import positional_key

    def double(x):
        return x * 2

    function = autoconv.autoconv(double)
    with torch.set_grad_enabled(grad):
        _warm(function, torch.ones(2, 3))
        last = function._last
        assert last[3] is not None
        for x in _variants():
            expected_key = positional_key((x,))
            taken = function._last_graph(last, (x,)) is not None
            assert taken == (expected_key is not None and expected_key[0] == last[0]), x
            if last[3](x):
                assert expected_key[0] == last[0], x
    # (a size-1 dimension's stride: the same key, the C++ check stricter: the key decides)
    function = autoconv.autoconv(double)
    _warm(function, torch.ones(1, 3))
    other = torch.ones(3, 1).t()
    assert not function._last[3](other) and function._last_graph(function._last, (other,))
    assert torch.equal(function(other), double(other)) and function.trace_count == 1


def test_a_number_argument_keeps_the_key_comparison():
    def shifted(x, n):
        return x + n

    function = autoconv.autoconv(shifted)
    _warm(function, torch.ones(3), 2)
    assert function._last[3] is None
    assert torch.equal(function(torch.ones(3), 3), shifted(torch.ones(3), 3))
    assert function.trace_count == 2


START = torch.tensor([1.0, 2.0])
TOTAL = torch.zeros(2)


def _grown_from_a_global(x):
    # a loop carrying the global START, its body writing only its own temporaries in place
    h = START
    n = x.sum()
    while n > 0:
        t = h * 2
        t.add_(x)
        h = t
        n = n - 1
    return h


def _total_written_in_a_loop(x):
    n = x.sum()
    while n > 0:
        TOTAL.add_(x)
        n = n - 1
    return TOTAL * 1


def test_a_constant_carried_by_a_loop_that_writes_its_own_tensors_is_not_written():
    # NOTE [constants given to bodies that write their own tensors]: no storage comparison
    # on each call; given the global itself, the answer is still Python's
    function = autoconv.autoconv(_grown_from_a_global)
    x = torch.ones(2)
    _warm(function, x)
    assert function._last[2]._written_constants == ()
    for given in (x, START, torch.zeros(2), START):
        assert torch.equal(function(given), _grown_from_a_global(given))
    assert torch.equal(START, torch.tensor([1.0, 2.0]))


def test_a_constant_a_loop_writes_in_place_is_still_written():
    function = autoconv.autoconv(_total_written_in_a_loop)
    x = torch.ones(2)
    TOTAL.zero_()
    expected = [_total_written_in_a_loop(x), _total_written_in_a_loop(x), TOTAL.clone()]
    TOTAL.zero_()
    got = [function(x), function(x), TOTAL.clone()]
    assert any(c is TOTAL for c in function._last[2]._written_constants)
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


def test_a_loop_writing_a_global_given_that_global_as_its_argument():
    function = autoconv.autoconv(_total_written_in_a_loop)
    x = torch.ones(2)
    TOTAL.zero_()
    expected = [_total_written_in_a_loop(x), _total_written_in_a_loop(x)]
    expected += [_total_written_in_a_loop(TOTAL).clone(), TOTAL.clone()]
    TOTAL.zero_()
    got = [function(x), function(x)]
    got += [function(TOTAL).clone(), TOTAL.clone()]
    for g, e in zip(got, expected):
        assert torch.equal(g, e)


# A ConcreteFunction called directly runs its graph without building the call's Signature where
# the call's tensors are the last call's in every key (NOTE [a graph's last call] in
# autoconv/concrete.py); every mismatch the Signature saw is still refused.
def test_a_concrete_functions_equal_call_runs_and_other_tensors_are_refused():
    def scaled(x, y):
        if x.sum() > 0:
            return x * y
        return x - y

    function = autoconv.autoconv(scaled)
    x, y = torch.ones(3), torch.full((3,), 2.0)
    concrete = function.get_concrete_function(x, y)
    _warm(concrete, x, y)
    assert concrete._last_call is not None
    assert torch.equal(concrete(-x, y), scaled(-x, y))  # the other branch, other values
    for a, b in ((torch.ones(4), torch.ones(4)), (x.double(), y), (x, y.requires_grad_()),
                 (torch.ones(3, 2).t()[0], y), (x, x)):
        with pytest.raises(TypeError, match="was traced for"):
            concrete(a, b)
    y.requires_grad_(False)
    assert torch.equal(concrete(x, y), scaled(x, y))


def test_a_concrete_function_traced_on_one_tensor_twice_keeps_its_key():
    def add(a, b):
        return a + b

    function = autoconv.autoconv(add)
    x = torch.ones(3)
    concrete = function.get_concrete_function(x, x)
    _warm(concrete, x, x)
    assert concrete._last_call is None  # (its signature keys the sameness)
    with pytest.raises(TypeError, match="was traced for"):
        concrete(x, torch.full((3,), 2.0))
    assert torch.equal(concrete(x, x), add(x, x))


def test_a_concrete_function_writing_its_argument_keys_each_call():
    def bump(a, b):
        a.add_(1)
        return a + b

    function = autoconv.autoconv(bump)
    concrete = function.get_concrete_function(torch.zeros(3), torch.zeros(3))
    a, b = torch.zeros(3), torch.zeros(3)
    _warm(concrete, a, b)
    assert concrete._last_call is None  # (memory shared by arguments is keyed on each call)
    base = torch.zeros(3)
    with pytest.raises(TypeError, match="was traced for"):
        concrete(base, base[:])  # (one memory: Python's b sees the add)


def test_a_pinned_graphs_equal_call_runs_and_mismatches_are_still_named():
    def scaled(x, y):
        if x.sum() > 0:
            return x * y
        return x - y

    spec = autoconv.TensorSpec((None,), torch.float32)
    function = autoconv.autoconv(scaled, input_signature=[spec, spec])
    x, y = torch.ones(4), torch.full((4,), 2.0)
    _warm(function, x, y)
    assert function.concrete_functions[0]._last_call is not None
    assert torch.equal(function(-x, y), scaled(-x, y))
    for n in (2, 7, 4):  # (other sizes take the specs' way: the check holds for 4 only)
        a, b = torch.linspace(-1, 2, n), torch.linspace(0, 1, n)
        assert torch.equal(function(a, b), scaled(a, b))
    with pytest.raises(TypeError, match="expected dtype torch.float32, got torch.int64"):
        function(x, torch.ones(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="argument 0"):
        function(torch.ones(2, 2), torch.ones(2, 2))
    assert function.trace_count == 1


def test_a_warm_concrete_function_called_under_dynamo_takes_the_whole_way():
    # (torch's C++ check cannot be called by dynamo: a strict export of a caller of a warmed
    # ConcreteFunction failed with "Attempted to call function marked as skipped")
    def affine(x):
        return x * 2 + 1

    concrete = autoconv.autoconv(affine).get_concrete_function(torch.ones(3))
    _warm(concrete, torch.ones(3))
    assert concrete._last_call is not None

    class Caller(torch.nn.Module):
        def forward(self, x):
            return concrete(x)

    x = torch.full((3,), 2.0)
    exported = torch.export.export(Caller(), (torch.ones(3),), strict=True).module()
    assert torch.equal(exported(x), affine(x))
    compiled = torch.compile(Caller(), fullgraph=True, backend="eager")
    assert torch.equal(compiled(x), affine(x))


class _TrainingScaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))
        self.scale = 2.0

    def forward(self, x):
        if self.training:
            x = x * 10
        return x * self.w * self.scale


def test_a_direct_or_pinned_call_reads_the_modules_mode_and_fields():
    # (brkB51: after `model.eval()` a direct or pinned call replayed the training path, 20 for
    # Python's 2, and after `model.scale = 3.0` the old scale, 20 for 30: NOTE [what a direct
    # call keys besides its arguments] in autoconv/concrete.py)
    x = torch.tensor([1.0, 2.0, 3.0])
    for change, message in ((lambda m: m.eval(), r"training = True, which is False now"),
                            (lambda m: setattr(m, "scale", 3.0), r"module\.scale = ")):
        model, pinned_model = _TrainingScaled(), _TrainingScaled()
        concrete = autoconv.autoconv(model).get_concrete_function(x)
        pinned = autoconv.autoconv(pinned_model,
                                   input_signature=[autoconv.TensorSpec((3,), torch.float32)])
        _warm(concrete, x)
        _warm(pinned, x)
        change(model)
        change(pinned_model)
        with pytest.raises(TypeError, match=message):
            concrete(x)
        torch.testing.assert_close(pinned(x), pinned_model(x))  # 2, 4, 6 / 60, 120, 180
        torch.testing.assert_close(pinned(x), model(x))
        pinned_model.train()
        pinned_model.scale = 2.0
        torch.testing.assert_close(pinned(x), torch.tensor([20.0, 40.0, 60.0]))


def test_a_pinned_graph_reads_the_default_dtype():
    def plus_a_constant(x):  # (the constant is made in the default dtype, float64 below)
        return torch.tensor([1.5, 2.5]) + x

    pinned = autoconv.autoconv(plus_a_constant,
                               input_signature=[autoconv.TensorSpec((2,), torch.float32)])
    x = torch.ones(2)
    _warm(pinned, x)
    concrete = pinned.get_concrete_function()
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert pinned(x).dtype == plus_a_constant(x).dtype == torch.float64  # (float32 before)
        with pytest.raises(TypeError, match="default dtype"):
            concrete(x)
    finally:
        torch.set_default_dtype(before)
    assert pinned(x).dtype == torch.float32


def _doubled_where_inference(x):
    if x.is_inference():
        return x * 2
    return x * 3


def _doubled_at_offset_zero(x):
    if x.storage_offset() == 0:
        return x * 2
    return x * 3


def _doubled_once_updated(x):
    if x._version > 0:
        return x * 2
    return x * 3


def _inference_tensor():
    with torch.inference_mode():
        return torch.tensor([1.0, 2.0])


def _view_at_offset_one():
    return torch.tensor([0.0, 1.0, 2.0])[1:]


def _updated_twice():
    x = torch.tensor([1.0, 2.0])
    x.add_(0)
    x.add_(0)
    return x


_STATE_READS = [(_doubled_where_inference, _inference_tensor),
                (_doubled_at_offset_zero, _view_at_offset_one),
                (_doubled_once_updated, _updated_twice)]


@pytest.mark.parametrize("fn, other", _STATE_READS)
def test_python_code_reading_the_inference_flag_the_storage_offset_or_the_version(fn, other):
    # (brkB51: neither keyed nor guarded, the graph of a plain tensor replayed its path, 3, 6
    # for Python's 2, 4: NOTE [tensor state read while tracing] in
    # autoconv_runtime/staging/tensor_reads.py)
    function = autoconv.autoconv(fn)
    plain = torch.tensor([1.0, 2.0])
    _warm(function, plain)
    x = other()
    for _ in range(2):  # (each graph is kept: the calls take turns without tracing)
        torch.testing.assert_close(function(x), fn(x))  # 2, 4
        torch.testing.assert_close(function(plain), fn(plain))  # 3, 6
    assert function.trace_count == 2
    concrete = autoconv.autoconv(fn).get_concrete_function(plain)
    _warm(concrete, plain)
    with pytest.raises(TypeError, match=r"tensor argument 0's (storage_offset\(\)|is_infer"
                                        r"ence\(\)|_version) = "):
        concrete(x)
    pinned = autoconv.autoconv(fn, input_signature=[autoconv.TensorSpec((2,))])
    _warm(pinned, plain)
    torch.testing.assert_close(pinned(x), fn(x))
    torch.testing.assert_close(pinned(plain), fn(plain))


def test_the_version_read_while_tracing_is_the_arguments():
    # (the trace's fake input counted from 0: 3, 6 for Python's 2, 4 on the first call)
    x = _updated_twice()
    assert torch.equal(autoconv.autoconv(_doubled_once_updated)(x), _doubled_once_updated(x))
    view = x[1:]  # (a view shares its base's count, in the trace too)
    assert torch.equal(autoconv.autoconv(_doubled_once_updated)(view),
                       _doubled_once_updated(view))


class _ScaledOnceUpdated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, x):
        if self.w._version > 0:
            return x * 2
        return x * 3


def test_a_parameters_version_read_by_forward_is_the_parameters():
    # (the trace's fake parameter counted from 0: 3, 6 for Python's 2, 4, and the graph kept
    # the count of its trace after an update in place)
    x = torch.tensor([1.0, 2.0])
    for updated_first in (True, False):
        model = _ScaledOnceUpdated()
        if updated_first:
            with torch.no_grad():
                model.w.add_(0)
        function = autoconv.autoconv(model)
        _warm(function, x)
        torch.testing.assert_close(function(x), model(x))
        with torch.no_grad():
            model.w.add_(0)
        torch.testing.assert_close(function(x), model(x))  # 2, 4
    concrete = function.get_concrete_function(x)
    with torch.no_grad():
        model.w.add_(0)
    with pytest.raises(TypeError, match=r"the module's w's _version = 1, which is now 2"):
        concrete(x)


def _offset_read_in_a_staged_branch(x):
    y = x * 1
    if x.sum() > 0:
        if x.storage_offset() == 0:
            y = x * 2
        else:
            y = x * 3
    return y


def test_the_tensor_state_read_in_a_staged_body_is_the_arguments():
    # (the body's operand is a new tensor at offset 0: 2, 4 for Python's 3, 6; NOTE [tensor
    # state read in a staged body])
    function = autoconv.autoconv(_offset_read_in_a_staged_branch)
    for x in (_view_at_offset_one(), torch.tensor([1.0, 2.0]), -_view_at_offset_one(),
              _view_at_offset_one()):
        torch.testing.assert_close(function(x), _offset_read_in_a_staged_branch(x))


def test_the_tensor_state_under_torch_compile_is_dynamos():
    # dynamo reads the version right, and refuses the inference flag and the storage offset
    # of a traced tensor: no wrong value
    compiled = torch.compile(autoconv.convert(_doubled_once_updated), fullgraph=True,
                             backend="eager")
    for x in (torch.tensor([1.0, 2.0]), _updated_twice()):
        torch.testing.assert_close(compiled(x), _doubled_once_updated(x))
    for fn in (_doubled_where_inference, _doubled_at_offset_zero):
        with pytest.raises(torch._dynamo.exc.Unsupported):
            torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")(
                torch.tensor([1.0, 2.0]))


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="torch.export's program holds "
                   "the example's storage offset, inference flag and version (torch's own, "
                   "without autoconv too: `ep = torch.export.export(M(), (torch.ones(2),))` of `forward(x): return "
                   "x * 2 if x.storage_offset() == 0 else x * 3`, then "
                   "`ep.module()(torch.ones(3)[1:])` gives 2, 2 for Python's 3, 3)")
def test_the_tensor_state_under_torch_export_is_the_examples():
    class Offset(torch.nn.Module):
        def forward(self, x):
            return autoconv.convert(_doubled_at_offset_zero)(x)

    program = torch.export.export(Offset(), (torch.tensor([1.0, 2.0]),)).module()
    x = _view_at_offset_one()
    torch.testing.assert_close(program(x), _doubled_at_offset_zero(x))  # 2, 4 for 3, 6


# break52: a pinned Function called in another grad mode or process state.
# The pinned graph of a Function with an `input_signature` was refused where the grad mode or
# an environment variable its trace read had changed, telling the caller to call the Function
# it had called (NOTE [a pinned graph's process state]); Python gives -99, -98 under no_grad.

def _branches_on_grad_mode(x):
    if torch.is_grad_enabled():
        return x + 100
    return x - 100


def _branches_on_the_environment(x):
    if os.environ.get("AUTOCONV_BREAK52_MODE") == "a":
        return x + 100
    return x - 100


def _changes_grad_mode(x):
    with torch.no_grad():
        y = x * 2
    if y.sum() > 0:
        y = y + x
    return y


@pytest.mark.parametrize("fn", [_branches_on_grad_mode, _branches_on_the_environment,
                                _changes_grad_mode])
def test_a_pinned_function_traces_for_another_grad_mode_or_process_state(fn, monkeypatch):
    spec = [autoconv.TensorSpec((2,), torch.float32, requires_grad=True)]
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    function = autoconv.autoconv(fn, input_signature=spec)
    torch.testing.assert_close(function(x), fn(x))
    with torch.no_grad():
        monkeypatch.setenv("AUTOCONV_BREAK52_MODE", "a")
        got, want = function(x), fn(x)
        monkeypatch.delenv("AUTOCONV_BREAK52_MODE")
    torch.testing.assert_close(got, want)
    assert got.requires_grad == want.requires_grad
    assert function.trace_count == 2
    again = function(x)  # the pinned graph, as traced
    torch.testing.assert_close(again, fn(x))
    assert again.requires_grad and function.trace_count == 2


def test_a_direct_call_in_another_grad_mode_is_still_refused():
    x = torch.tensor([1.0, 2.0])
    concrete = autoconv.autoconv(_branches_on_grad_mode).get_concrete_function(x)
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"is_grad_enabled\(\) as True"):
        concrete(x)
