"""Threads and autoconv's trace lock (docs/function.md "Threads"): no call waits forever on it,
and what a trace holds process-wide gives other threads Python's values."""

import threading

import pytest
import torch

import autoconv
from autoconv import capture, function

JOIN_SECONDS = 60  # (a guard that turns a hang into a failure, not a timed assertion)


def _joined(threads, unstick):
    """Joins `threads`; where one still waits, `unstick()` lets them end (a later test would
    otherwise wait for the trace lock a hung thread holds) and the test fails."""
    for thread in threads:
        thread.join(JOIN_SECONDS)
    hung = [thread.name for thread in threads if thread.is_alive()]
    if hung:
        unstick()
    assert not hung, f"threads still waiting (a deadlock): {hung}"


def _scaled(x):
    if x.sum() > 0:
        return x * 2
    return x * 3


# --- lock53: a user's lock and autoconv's ----------------------------------------------------
# Thread A traces `_takes_the_users_lock` (holding autoconv's trace lock); thread B holds the
# user's lock and calls another Function that must trace. Plain Python finishes both: B's call
# returns and releases the lock A waits for. With the trace lock held for A's whole trace, B
# waited for it and A for the user's lock: both hung. `capture.trace` is wrapped to place B's
# call where A holds the trace lock and has not yet reached the user's lock.

_users_lock = threading.Lock()


@autoconv.do_not_convert
def _under_the_users_lock():
    with _users_lock:
        pass


def _takes_the_users_lock(x):
    _under_the_users_lock()
    if x.sum() > 0:
        return x + 1
    return x - 1


def test_a_users_lock_held_by_a_thread_calling_a_function_that_traces(monkeypatch):
    a_traces, b_returned = threading.Event(), threading.Event()
    trace = capture.trace

    def traced_after_b(*args, **kwargs):
        a_traces.set()
        b_returned.wait(JOIN_SECONDS)
        return trace(*args, **kwargs)

    monkeypatch.setattr(capture, "trace", traced_after_b)
    f, g = autoconv.autoconv(_takes_the_users_lock), autoconv.autoconv(_scaled)
    x, results = torch.tensor([1.0, 2.0]), {}

    def a():
        results["f"] = f(x)

    def b():
        with _users_lock:
            a_traces.wait(JOIN_SECONDS)
            results["g"] = g(-x)  # A traces: Python's values for this call
            b_returned.set()

    threads = [threading.Thread(target=b, name="B", daemon=True),
               threading.Thread(target=a, name="A", daemon=True)]
    for thread in threads:
        thread.start()
    _joined(threads, _users_lock.release)  # (a Lock: any thread may release it)
    torch.testing.assert_close(results["f"], torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(results["g"], torch.tensor([-3.0, -6.0]))
    assert (f.trace_count, g.trace_count) == (1, 0)
    monkeypatch.undo()
    torch.testing.assert_close(g(x), torch.tensor([2.0, 4.0]))  # traces on a later call
    torch.testing.assert_close(g(-x), torch.tensor([-3.0, -6.0]))
    assert g.trace_count == 1


def test_get_concrete_function_waits_for_the_trace_lock_a_bounded_time(monkeypatch):
    # (it must return a graph, so it cannot run Python: the deadlock above ends with an error)
    a_traces, b_raised = threading.Event(), threading.Event()
    trace = capture.trace

    def traced_after_b(*args, **kwargs):
        a_traces.set()
        b_raised.wait(JOIN_SECONDS)
        return trace(*args, **kwargs)

    monkeypatch.setattr(capture, "trace", traced_after_b)
    monkeypatch.setattr(function, "TRACE_LOCK_WAIT", 0.2)
    f, g = autoconv.autoconv(_takes_the_users_lock), autoconv.autoconv(_scaled)
    x, results = torch.tensor([1.0, 2.0]), {}

    def a():
        results["f"] = f(x)

    def b():
        with _users_lock:
            a_traces.wait(JOIN_SECONDS)
            try:
                g.get_concrete_function(x)
            except RuntimeError as error:
                results["g"] = str(error)
            b_raised.set()

    threads = [threading.Thread(target=b, name="B", daemon=True),
               threading.Thread(target=a, name="A", daemon=True)]
    for thread in threads:
        thread.start()
    _joined(threads, _users_lock.release)
    torch.testing.assert_close(results["f"], torch.tensor([2.0, 3.0]))
    assert "_scaled: another thread has been tracing for 0.2 s" in results["g"]
    assert "lock this thread holds" in results["g"]
    monkeypatch.undo()
    torch.testing.assert_close(g.get_concrete_function(x)(-x), torch.tensor([-3.0, -6.0]))


# --- calls in another thread while a trace runs ---------------------------------------------
# Two windows of a trace: before make_fx runs the function (the trace lock held, nothing of
# torch's patched: a call that must trace runs Python, NOTE [a call that finds another thread
# tracing]) and within it (make_fx's patcher holds nn.Module's `__call__` and `__getattr__`
# and fx's tracing flag for the whole process, so a Function called there takes the inlined
# path of a call under a tracer, on real tensors). Each call equals Python's.

_GAIN = torch.tensor(2.0)


def _reads_a_global(x):
    if x.sum() > 0:
        return x * _GAIN
    return x - _GAIN


class _Gated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        y = self.lin(x)
        if y.sum() > 0:
            return y * 2
        return y - 1


_in_make_fx, _other_done = threading.Event(), threading.Event()


@autoconv.do_not_convert
def _paused_in_make_fx():
    _in_make_fx.set()
    _other_done.wait(JOIN_SECONDS)


def _paused(x):
    _paused_in_make_fx()
    if x.sum() > 0:
        return x + 1
    return x - 1


def _functions_traced_for(x):
    """A plain module, Functions and converted modules (one with a hook) of each kind, those
    that will run graphs traced for `x`'s signature."""
    module, hooked = _Gated(), _Gated()
    hooked.load_state_dict(module.state_dict())
    hooked.register_forward_hook(lambda m, args, out: out + 100)
    made = {"module": module, "hooked": hooked, "converted": autoconv.autoconv(module),
            "converted hooked": autoconv.autoconv(hooked),
            "traced": autoconv.autoconv(_scaled), "untraced": autoconv.autoconv(_scaled),
            "reads a global": autoconv.autoconv(_reads_a_global),
            "pinned": autoconv.autoconv(_scaled, input_signature=[autoconv.TensorSpec(
                (2,), torch.float32)])}
    for name in ("traced", "converted", "reads a global"):
        made[name](x)
    return made


def _calls_elsewhere(x, made):
    """Calls each kind of Function as another thread would while a trace runs; (got, want)
    pairs."""
    global _GAIN
    with torch.no_grad():
        plain = made["module"](-x), made["hooked"](-x)
    _GAIN = torch.tensor(3.0)  # the graph read 2.0: it must not be the one that runs
    try:
        pairs = [(made["traced"](-x), _scaled(-x)), (made["untraced"](-x), _scaled(-x)),
                 (made["reads a global"](x), _reads_a_global(x)),
                 (made["pinned"](-x), _scaled(-x))]
        with torch.no_grad():
            pairs += [(made["converted"](-x), plain[0]),
                      (made["converted hooked"](-x), plain[1]),
                      (made["module"](x), _Gated.forward(made["module"], x))]
    finally:
        _GAIN = torch.tensor(2.0)
    return pairs


@pytest.mark.parametrize("window", ["before make_fx", "in make_fx"])
def test_calls_in_another_thread_while_a_trace_runs_are_pythons(monkeypatch, window):
    x, results = torch.tensor([1.0, 2.0]), {}
    made = _functions_traced_for(x)
    a_traces = threading.Event()
    trace = capture.trace
    _in_make_fx.clear(), _other_done.clear()

    def traced_after_b(*args, **kwargs):
        a_traces.set()
        _other_done.wait(JOIN_SECONDS)
        return trace(*args, **kwargs)

    if window == "before make_fx":
        monkeypatch.setattr(capture, "trace", traced_after_b)
        torn = a_traces
    else:
        torn = _in_make_fx
    f = autoconv.autoconv(_paused)

    def a():
        results["f"] = f(x)

    def b():
        try:
            torn.wait(JOIN_SECONDS)
            results["pairs"] = _calls_elsewhere(x, made)
        finally:
            _other_done.set()

    threads = [threading.Thread(target=b, name="B", daemon=True),
               threading.Thread(target=a, name="A", daemon=True)]
    for thread in threads:
        thread.start()
    _joined(threads, _other_done.set)
    torch.testing.assert_close(results["f"], torch.tensor([2.0, 3.0]))
    assert len(results["pairs"]) == 7
    for got, want in results["pairs"]:
        torch.testing.assert_close(got, want)
    # (neither traced there: Python's values, or the converted body on real tensors)
    assert [made[name].trace_count for name in ("untraced", "reads a global", "pinned")] == [
        0, 1, 0]


# A torch.compile'd function entered in another thread while make_fx traces meets fx's tracing
# flag, which is the process's: dynamo raises torch's "Detected that you are using FX to
# symbolically trace a dynamo-optimized function" (loud, torch's own check, before autoconv
# runs). autoconv cannot run Python there for it: the switch dynamo reads to do so instead,
# `torch._dynamo.config.error_on_nested_fx_trace`, is per thread in torch 2.13, the calling
# thread's. Set False in that thread, the call runs the function's Python (docs/function.md).

def test_a_compiled_function_in_another_thread_during_a_trace():
    _in_make_fx.clear(), _other_done.clear()
    f, x, results = autoconv.autoconv(_paused), torch.tensor([1.0, 2.0]), {}
    compiled = torch.compile(_scaled, fullgraph=True, backend="eager")

    def a():
        results["f"] = f(x)

    def b():
        try:
            _in_make_fx.wait(JOIN_SECONDS)
            with pytest.raises(RuntimeError, match="FX to symbolically trace a dynamo-optimized"):
                compiled(-x)
            torch._dynamo.config.error_on_nested_fx_trace = False  # (this thread's)
            results["compiled"] = compiled(-x)
        finally:
            _other_done.set()

    threads = [threading.Thread(target=b, name="B", daemon=True),
               threading.Thread(target=a, name="A", daemon=True)]
    for thread in threads:
        thread.start()
    _joined(threads, _other_done.set)
    assert torch._dynamo.config.error_on_nested_fx_trace  # (not this thread's)
    torch.testing.assert_close(results["f"], torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(results["compiled"], torch.tensor([-3.0, -6.0]))
