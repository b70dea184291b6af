"""Reference tests (brk52b): session 52's tensor state keys and views that share no element,
tried against plain Python.

A global tensor's `_version` read while tracing (guarded as a value read from outside, NOTE
[tensor state of a tensor from outside]), and an argument object's field's; an argument's
storage size; the state a trace cannot read (`is_shared()`, `is_pinned()`, `is_leaf`,
`grad_fn`: refused, NOTE [tensor state a trace cannot read]); views of another dtype
(`view_as_real`, `.view(int32)`) compared in bytes (NOTE [views of another dtype]).
"""

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from autoconv_runtime.staging.objects import spans_apart

T = torch.tensor
_G = T([1.0, 2.0])


def _doubled_once_the_global_is_updated(x):
    if _G._version > 0:
        return x * 2
    return x * 3


def test_a_globals_version_read_while_tracing_is_guarded():
    # (keyed52 keyed the arguments' state only: the graph kept 3, 6 for Python's 2, 4 after
    # `_G.add_(0)`)
    global _G
    _G = T([1.0, 2.0])  # (version 0, whatever ran before)
    fn = _doubled_once_the_global_is_updated
    function = autoconv.autoconv(fn)
    compiled = torch.compile(autoconv.convert(fn), fullgraph=True, backend="eager")
    x = T([1.0, 2.0])
    for want in (3, 2):
        for run in (function, function, compiled):
            torch.testing.assert_close(run(x), x * want)
        _G.add_(0)
    assert function.trace_count == 2


_H = torch.arange(4.0)[1:]


def _doubled_where_the_global_is_at_offset_zero(x):
    if _H.storage_offset() == 0:
        return x * 2
    return x * 3


def test_a_globals_storage_offset_read_while_tracing_is_guarded():
    # (a real tensor's method goes through converted_call, whose frame was taken for the
    # runtime's own read: nothing keyed, 3, 6 for Python's 2, 4 after `_H` was rebound)
    global _H
    fn = _doubled_where_the_global_is_at_offset_zero
    function = autoconv.autoconv(fn)
    x = T([1.0, 2.0])
    for view in (torch.arange(4.0)[1:], torch.arange(3.0)):
        _H = view
        for _ in range(2):
            torch.testing.assert_close(function(x), fn(x))
    assert function.trace_count == 2


def _doubled_for_a_large_storage(x):
    if x.untyped_storage().nbytes() > 8:
        return x * 2
    return x * 3


def test_an_arguments_storage_size_keys_the_graph():
    # (a view of a 24-byte storage, then a copy of it in 8 bytes: 0, 2 for Python's 0, 3)
    fn = _doubled_for_a_large_storage
    function = autoconv.autoconv(fn)
    view = torch.arange(6.0)[:2]
    for x in (view, view.clone(), view):
        torch.testing.assert_close(function(x), fn(x))
    assert function.trace_count == 2


def _by_is_shared(x):
    if x.is_shared():
        return x * 2
    return x * 3


def _by_is_pinned(x):
    if x.is_pinned():
        return x * 2
    return x * 3


def _by_is_leaf(x):
    if x.is_leaf:
        return x * 2
    return x * 3


def _by_grad_fn(x):
    if x.grad_fn is None:
        return x * 2
    return x * 3


_W = T([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("fn, args, kind", [
    # (a tensor in shared memory read False: 3, 6 for Python's 2, 4)
    (_by_is_shared, (T([1.0, 2.0]).share_memory_(),), r"is_shared\(\)"),
    (_by_is_pinned, (T([1.0, 2.0]),), r"is_pinned\(\)"),
    # (an argument computed with grad read as a leaf: 2, 4 for Python's 3, 6)
    (_by_is_leaf, (_W * 1,), "is_leaf"),
    (_by_grad_fn, (_W * 1,), "grad_fn"),
])
def test_tensor_state_a_trace_cannot_read_is_refused_at_the_line(fn, args, kind):
    with pytest.raises(StagingError, match=rf"test_brk52b.py:\d+: .*`\.{kind}` of a traced "
                                           "tensor is the trace's"):
        autoconv.autoconv(fn)(*args)


def _by_is_leaf_of_a_product(x):
    if (x * 1).is_leaf:
        return x * 2
    return x * 3


def test_the_leaf_state_read_under_no_grad_is_refused_too():
    # (the graph is not keyed by grad mode for it: traced under no_grad, where Python reads a
    # leaf too, it was replayed with grad on, 2, 2 for Python's 3, 3)
    with torch.no_grad(), pytest.raises(StagingError, match=r"`\.is_leaf` of a traced"):
        autoconv.autoconv(_by_is_leaf_of_a_product)(_W)


def test_the_leaf_state_of_a_tensor_without_grad_is_pythons():
    # (a tensor that requires no grad is a leaf in Python too: not refused)
    x = T([1.0, 2.0])
    for fn in (_by_is_leaf, _by_grad_fn):
        torch.testing.assert_close(autoconv.autoconv(fn)(x), fn(x))


def _imaginary_part_read_while_its_number_is_updated(c, x):
    im = torch.view_as_real(c)[0, 1:]  # the imaginary part of c[0]
    head = c[:1]
    n = x.sum()
    while n < 10:
        head.mul_(2)
        n = n + im.sum()
    return n


def test_a_view_of_another_dtype_is_compared_in_bytes():
    # (float 1 of view_as_real(c) and complex 0 of c were apart as numbers: carried as two
    # copies, 10 for Python's 15, silently; refused now, in the loop's line)
    fn = _imaginary_part_read_while_its_number_is_updated
    c = T([1 + 1j, 2 + 2j], dtype=torch.complex64)
    assert fn(c.clone(), T([1.0])) == 15
    converted = autoconv.convert(fn)

    class Program(torch.nn.Module):
        def forward(self, c, x):
            return converted(c, x)

    for run in (autoconv.autoconv(fn), lambda c, x: torch.export.export(Program(), (c, x)),
                torch.compile(converted, fullgraph=True, backend="eager")):
        with pytest.raises(StagingError, match=r"updates `head` in place and reads `im`"):
            run(c.clone(), T([1.0]))


def test_spans_apart_in_bytes():
    c = torch.zeros(4, dtype=torch.complex64)
    real = torch.view_as_real(c)
    assert not spans_apart(c[:1], real[0, 1:])
    assert spans_apart(c[:1], real[1:])
    a = torch.zeros(4, dtype=torch.float64)
    words = a.view(torch.int32)
    assert not spans_apart(a[:1], words[1:2])  # (the high word of a[0])
    assert spans_apart(a[:1], words[2:])
    grid = torch.zeros(4, 4)
    assert spans_apart(grid[:, ::2], grid[:, 1::2])  # (interleaved columns: one size)
    assert not spans_apart(grid.diagonal(), grid[1, :2])


class _Holder:
    def __init__(self, t):
        self.t = t


def _doubled_once_the_field_is_updated(s, x):
    if s.t._version > 0:
        return x * 2
    return x * 3


def test_a_fields_state_read_while_tracing_is_checked():
    # (the field, read only for its state, was read live but not checked: the graph traced
    # before `s.t.add_(0)` gave 3, 6 for Python's 2, 4; a direct call of the
    # ConcreteFunction is refused)
    fn = _doubled_once_the_field_is_updated
    function = autoconv.autoconv(fn)
    s, x = _Holder(T([1.0, 2.0])), T([1.0, 2.0])
    concrete = function.get_concrete_function(s, x)
    for want in (3, 2):
        for _ in range(2):
            torch.testing.assert_close(function(s, x), x * want)
        s.t.add_(0)
    assert function.trace_count == 2
    with pytest.raises(TypeError, match=r"the argument's field args\[0\]\.t's _version = 0, "
                                        "which is now 2"):
        concrete(s, x)


def _doubled_for_a_field_at_offset_zero(s, x):
    if s.t.storage_offset() == 0:
        return x * 2
    return x * 3


def test_a_fields_storage_offset_keeps_a_graph_per_offset():
    fn = _doubled_for_a_field_at_offset_zero
    function = autoconv.autoconv(fn)
    s, x, base = _Holder(None), T([1.0, 2.0]), T([0.0, 1.0, 2.0])
    for view in (base[:2], base[1:], base[:2], base[1:]):
        s.t = view
        torch.testing.assert_close(function(s, x), fn(s, x))  # 2, 4 then 3, 6
    assert function.trace_count == 2
