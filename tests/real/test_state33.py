"""Session 33's findings about state objects given to an `@autoconv` step function called many
times, after tester32's leftovers (tests/real/test_tester32.py): a list held under two paths
(`lg.cur` also `lg.rows[-1]`, a dict holding one list under two keys), a Function called
alternately with two state objects whose guarded places differ, and a tensor condition in a
class body. Each is run against plain Python run on a twin of the same state, over several
calls, in autoconv's replay (traced once, replayed on inputs taking other paths).
"""

from __future__ import annotations

import pytest
import torch

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_close

T = torch.tensor
_XS = (T([1.0]), T([-1.0]), T([2.0]), T([-3.0]))


def _plain(value):
    """`value` with its tensors as lists, for comparing states."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {k: _plain(item) for k, item in value.items()}
    if hasattr(value, "__dict__"):
        return {k: _plain(item) for k, item in vars(value).items()}
    return value


def _same_over_calls(fn, make, reset, view, xs=_XS):
    """Call `autoconv(fn)` and `fn` on twin states (`make()`, put back by `reset` before each
    call: the signature repeats, so the later calls replay) and compare results and states."""
    run = autoconv.autoconv(fn)
    state, twin = make(), make()
    for x in xs:
        reset(state)
        reset(twin)
        assert_close(run(state, x), fn(twin, x))
        assert _plain(view(state)) == _plain(view(twin))
    return run


# ---------------------------------------------------------------------------------------------
# A list held under two paths of the call's objects (NOTE [containers under two paths] in
# capture.py). Was silently wrong in autoconv's replay: the trace runs on the arguments rebuilt
# from their pytree, where one list under two dict keys became two (an append through one was
# not seen through the other, and a second append overwrote the first when written back), and
# a walk of the objects meets each object once, so the write plan left out a list the call put
# under a second path (`lg.cur` stayed the old list) or raised an internal IndexError.
class _Log:
    def __init__(self):
        self.rows = []
        self.cur = []


def _append_then_keep(lg, x):
    lg.cur.append(x * 1)
    lg.rows.append(lg.cur)  # the caller's list, now also rows[-1]
    if x.sum() > 0:
        x = x + 1
    return x


def _new_list_under_two_paths(lg, x):
    lg.cur = [x * 2]
    lg.rows.append(lg.cur)
    if x.sum() > 0:
        x = x + 1
    return x


def _fresh(lg):
    lg.rows = []
    lg.cur = []


def _log_view(lg):
    return lg.rows, lg.cur, [row is lg.cur for row in lg.rows]


def test_callers_list_appended_to_another_list():
    # (was: IndexError from autoconv's write-back)
    _same_over_calls(_append_then_keep, _Log, _fresh, _log_view)


def test_new_list_stored_under_two_paths():
    # (was: lg.cur left the old empty list, `rows[0] is lg.cur` False)
    _same_over_calls(_new_list_under_two_paths, _Log, _fresh, _log_view)


def test_a_trace_alone_leaves_the_callers_lists_where_they_were():
    # (the trace's undo deleted `lg.cur`, a place the plan stores into, instead of putting the
    # caller's list back there)
    lg = _Log()
    cur, rows = lg.cur, lg.rows
    autoconv.autoconv(_new_list_under_two_paths).get_concrete_function(lg, T([1.0]))
    assert vars(lg) == {"rows": [], "cur": []} and lg.cur is cur and lg.rows is rows


def _append_to_both(d, x):
    d["a"].append(x * 3)
    d["b"].append(x * 5)
    if x.sum() > 0:
        x = x - 1
    return x, len(d["a"])


def _dict_of(shared):
    def reset(d):
        d["a"] = []
        d["b"] = d["a"] if shared else []
    return reset


@pytest.mark.parametrize("first", [True, False])
def test_one_list_under_two_keys_and_two_lists(first):
    # one Function, called with one list under two keys and with two lists, in either order:
    # (was: [x * 5] alone in the shared list, and `len` 1 where Python counts 2)
    run = autoconv.autoconv(_append_to_both)
    for shared in (first, not first, first):
        for x in _XS[:2]:
            d, twin = {}, {}
            _dict_of(shared)(d)
            _dict_of(shared)(twin)
            assert_close(run(d, x), _append_to_both(twin, x))
            assert _plain(d) == _plain(twin) and (d["a"] is d["b"]) == shared
    assert run.trace_count == 2


def _append_through_nested(d, x):
    d["outer"][0].append(x * 3)
    if x.sum() > 0:
        x = x - 1
    return x, len(d["inner"])


def test_list_in_a_list_and_under_a_key():
    def reset(d):
        d["inner"] = []
        d["outer"] = [d["inner"]]

    _same_over_calls(_append_through_nested, dict, reset, lambda d: d)


def _append_to_a(ab, x):
    a, b = ab
    a.l.append(x + 0)
    if x.sum() > 0:
        x = x + 1
    return x, len(b.l)


class _Holder:
    pass


def test_list_held_by_two_objects():
    def reset(ab):
        shared = []
        ab[0].l = shared
        ab[1].l = shared

    _same_over_calls(_append_to_a, lambda: [_Holder(), _Holder()], reset,
                     lambda ab: (ab[0].l, ab[1].l, ab[0].l is ab[1].l))


def _extend_by_rebinding(d, x):
    d["hist"] = d["hist"] + [x * 2]
    if x.sum() > 0:
        x = x - 1
    return x


def test_list_rebound_leaves_the_callers_old_list_alone():
    # (was: the new item written into the caller's old list, which `keep` holds)
    run = autoconv.autoconv(_extend_by_rebinding)
    for x in _XS:
        d, twin = {"hist": [T(0.0)]}, {"hist": [T(0.0)]}
        keep, twin_keep = d["hist"], twin["hist"]
        assert_close(run(d, x), _extend_by_rebinding(twin, x))
        assert _plain((d, keep)) == _plain((twin, twin_keep))


def test_callers_list_appended_to_keeps_its_identity_for_the_caller():
    run = autoconv.autoconv(_append_then_keep)
    for x in _XS:
        lg = _Log()
        keep = lg.cur
        run(lg, x)
        assert lg.rows[0] is keep and lg.cur is keep and _plain(keep) == [x.tolist()]


# ---------------------------------------------------------------------------------------------
# A Function called alternately with two state objects, where the object is read from a place
# the graph guards (a global rebound to each in turn, a deep config object of a trainer swapped
# between two): a failing guard dropped all the Function's graphs, and every call traced again
# (6 traces in 6 calls). The graph whose guard failed is put aside now, and the next call
# whose guards it passes runs it again, as tf.function keeps a ConcreteFunction per guard set
# (NOTE [graphs kept per guard outcome] in function.py).
class _Ema:
    def __init__(self, decay, bias):
        self.decay = decay
        self.bias = bias


EMA = _Ema(0.9, T(0.0))


def _ema_step(x):
    if x.sum() > 0:
        x = x * EMA.decay + EMA.bias
    return x


def test_global_state_object_rebound_alternately_keeps_both_graphs():
    global EMA
    first, second = _Ema(0.9, T(1.0)), _Ema(0.5, T(-1.0))
    run = autoconv.autoconv(_ema_step)
    try:
        for i, x in enumerate(_XS * 2):
            EMA = first if i % 2 == 0 else second
            assert_close(run(x), _ema_step(x))
        assert run.trace_count == 2
        EMA = _Ema(0.25, T(2.0))  # a third: traces once more, keeps the two
        assert_close(run(T([1.0])), T([2.25]))
        EMA = first
        assert_close(run(T([1.0])), T([1.9]))
        assert run.trace_count == 3
        assert len(run.concrete_functions) == 3
    finally:
        EMA = _Ema(0.9, T(0.0))


class _Node:
    pass


def _trainer(scale):
    root = _Node()
    root.state = _Node()
    root.state.cfg = _Node()
    root.state.cfg.schedule = _Node()
    root.state.cfg.schedule.warmup = _Node()
    root.state.cfg.schedule.warmup.scale = scale
    return root


def _scaled(trainer, x):
    warmup = trainer.state.cfg.schedule.warmup
    if x.sum() > 0:
        x = x * warmup.scale
    return x


def test_deep_config_swapped_between_two_keeps_both_graphs():
    run = autoconv.autoconv(_scaled)
    trainer = _trainer(1.0)
    configs = [_trainer(2.0).state.cfg.schedule.warmup, _trainer(3.0).state.cfg.schedule.warmup]
    for i, x in enumerate(_XS * 2):
        trainer.state.cfg.schedule.warmup = configs[i % 2]
        assert_close(run(trainer, x), _scaled(trainer, x))
    assert run.trace_count == 2


def test_graphs_put_aside_are_bounded():
    global EMA
    run = autoconv.autoconv(_ema_step)
    try:
        objects = [_Ema(0.1 * (i + 1), T(float(i))) for i in range(12)]
        with pytest.warns(UserWarning, match="traced 5 times"):
            for ema in objects + objects[-3:]:
                EMA = ema
                assert_close(run(T([1.0])), _ema_step(T([1.0])))
        assert run.trace_count == 12
        assert len(run.concrete_functions) <= 9
    finally:
        EMA = _Ema(0.9, T(0.0))


# ---------------------------------------------------------------------------------------------
# A tensor condition in the body of a class defined in a converted function: the body stays
# Python (NOTE [class bodies stay Python] in transformer.py), and the refusal gave the generic
# "this use of it is not staged" message, naming neither the class body nor what to write.
def _class_body_if(x):
    class Cfg:
        if x.sum() > 0:
            scale = 2.0
        else:
            scale = 3.0
    return x * Cfg.scale


def _class_body_conditional(x):
    class Cfg:
        scale = 2.0 if x.sum() > 0 else 3.0
    return x * Cfg.scale


class _Exporting(torch.nn.Module):
    def forward(self, x):
        return autoconv.convert(_class_body_if)(x)


@pytest.mark.parametrize("fn, line", [(_class_body_if, "if x.sum() > 0:"),
                                      (_class_body_conditional, "scale = 2.0 if")])
def test_tensor_condition_in_a_class_body_names_the_class_body(fn, line):
    with pytest.raises(StagingError) as raised:
        autoconv.autoconv(fn)(T([1.0]))
    message = str(raised.value)
    assert f"{__file__}:" in message and line in message
    assert "in the body of the class Cfg" in message and "before the `class` statement" in message


def test_tensor_condition_in_a_class_body_under_export():
    with pytest.raises(StagingError, match="in the body of the class Cfg"):
        torch.export.export(_Exporting(), (T([1.0]),))
