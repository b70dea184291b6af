"""Grad-mode changes inside a traced function, recorded into the captured graph.

make_fx records aten ops below the Autograd dispatch key, so `with torch.no_grad():`,
`@torch.no_grad()`, `torch.enable_grad()` and `torch.set_grad_enabled(...)` in the traced code
leave nothing in the graph: a replay that autograd records through (the python and fx backends,
inductor's compiled graph) would compute gradients through a region the Python function kept
out of autograd. Every one of those APIs ends in `torch._C._set_grad_enabled`, which has a
`__torch_function__` hook; `RecordGradMode` puts a `_set_grad_enabled(mode)` node into the
graph being traced at each call (as make_fx's `pre_dispatch=True` tracing and torch.export do,
see `PreDispatchTorchFunctionMode` in torch/fx/experimental/proxy_tensor.py), and the replay
runs them in order. `torch.fx.node` counts the call as side-effectful, so dead-code elimination
keeps it.

The recorded values are the modes the trace saw, restores included (`no_grad().__exit__`
sets the mode back to what it was at the trace's entry), so a graph holding such nodes is valid
only for the grad mode it was traced under: `Function` keeps one per mode (see
`ConcreteFunction.grad_mode`).

`torch.inference_mode()` inside the traced code does not go through `_set_grad_enabled` (it is
a C++ guard, `torch._C._InferenceMode`), so nothing would record it: tracing refuses the first
torch call made in a different inference mode than the trace began in (`StagingError` at the
user's line) rather than replay gradients eager would not compute.
"""

from __future__ import annotations

import itertools
import re
import sys
import threading
import types

import torch
from torch.fx.experimental import proxy_tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import StagingError
from . import optimizer_steps, outside_writes, tensor_reads

__all__ = ["RecordGradMode", "SET_GRAD_ENABLED", "differentiations", "function_begins",
           "inputs_require_grad", "mark_grad_leaf", "may_require_grad", "traced_grad_inputs",
           "raise_refusal", "recording", "refuse_leaf_update", "refuse_leaf_update_under_dynamo",
           "sets_grad_mode", "stands_for_grad_leaf"]

SET_GRAD_ENABLED = torch._C._set_grad_enabled
_DIFFERENTIATE = (torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward)
_GRAD = torch.autograd.grad
# NOTE [gradients with respect to arguments]
# A traced function's tensor arguments that require grad are traced detached (the replay runs
# the graph on the caller's tensors, and autograd records it there). `torch.autograd.grad(loss,
# [w])` of such an argument `w` then raised torch's "element 0 of tensors does not require
# grad and does not have a grad_fn" from inside torch, where Python computes the gradient
# (a training step written `g, = torch.autograd.grad(loss, [w])`, `w -= lr * g`): refused at
# the user's line with what to write instead. torch.export, which traces the arguments as they
# are, computes it. Inside a staged body the body's placeholders are not the function's own
# inputs, and nothing is refused there.
# `.item()` of a tensor computed from constants is that constant (specialize.constant_item)
_ITEM = torch.Tensor.item


class _Trace(threading.local):
    """Per thread, as torch's mode stacks are: the state of the trace in progress."""

    recording = 0  # >0 while an autoconv Function traces
    # Whether the traced function began in inference mode (None until it begins: make_fx
    # itself changes the mode around the function).
    inference_at_entry = None
    refused = None  # the StagingError for the trace, made at the user's line
    differentiated = 0  # calls of torch.autograd.grad / backward seen while recording
    # Whether gradients may flow at the replay: grad mode was on and an input or parameter of
    # the call required grad (the trace's own inputs are detached: NOTE [backward hooks while
    # tracing])
    may_require_grad = False
    # Whether an input or parameter of the call required grad, whatever the grad mode
    inputs_require_grad = False
    grad_inputs = None  # per input of the traced function, whether it required grad
    # id -> (place, class name) of the tensor-subclass tensors the function may read from
    # outside, or None (NOTE [tensor subclasses from outside])
    subclasses = None


def differentiations() -> int:
    """How many times the code traced so far differentiated (`torch.autograd.grad`,
    `.backward()`), counted while an autoconv Function traces: compare two counts."""
    return _trace.differentiated


_trace = _Trace()


def function_begins() -> None:
    """Called by the traced function as it begins: the inference mode it runs in."""
    _trace.inference_at_entry = torch.is_inference_mode_enabled()


def raise_refusal() -> None:
    """Raise the trace's StagingError, if it made one (call after the trace)."""
    error, _trace.refused = _trace.refused, None
    if error is not None:
        raise error


def recording() -> bool:
    """Whether an autoconv Function is tracing: a staged body then records its changes too."""
    return _trace.recording > 0


def may_require_grad() -> bool:
    """Whether gradients may flow through the graph being traced (see `RecordGradMode`)."""
    return _trace.recording > 0 and _trace.may_require_grad


def inputs_require_grad() -> bool:
    """Whether an input or parameter of the call being traced required grad (in any grad
    mode: a body may enable grad inside the caller's no_grad)."""
    return _trace.recording > 0 and _trace.inputs_require_grad


def traced_grad_inputs():
    """Per input of the function autoconv traces, whether it required grad (before the trace
    detached it); None outside such a trace."""
    return _trace.grad_inputs if _trace.recording > 0 else None


# NOTE [backward hooks while tracing]
# autoconv traces on detached inputs, so every traced tensor has requires_grad False: a
# `h.register_hook(fn)` in the function failed or, under `if h.requires_grad:`, never ran, and
# a submodule's `register_full_backward_hook` never wrapped its tensors; the replay then
# computed gradients without the hook (tester t13 repro 14: x.grad 6 for 0.6, or the unhooked
# gradient for 0). Where gradients may flow (grad mode on and an input or parameter requiring
# grad), user code registering a tensor hook, or reading `.requires_grad` of a traced tensor
# (False while tracing, maybe True at the replay, where the tensor is computed from an input
# requiring grad: of a tensor that is not, Python reads False too), and a call of a submodule
# with backward hooks, are refused at the user's line. The root module's hooks run around the graph
# (autoconv/modules.py) and are kept.
_REGISTER_HOOKS = (torch.Tensor.register_hook, torch.Tensor.register_post_accumulate_grad_hook)

# NOTE [a bool subtracted while traced]
# `x - y` with `y` a Python bool (or a bool tensor) raises in Python: torch refuses a bool
# operand of a subtraction ("Subtraction, the `-` operator, with a bool tensor is not
# supported"), Python's `True - 1 == 0` notwithstanding. torch 2.13's fake implementation of
# `aten.sub` (torch._refs.sub, which every mode traces with) has no such check: the trace
# recorded `aten.sub.Tensor(x, True)` and the graph failed on every replay with torch's bare
# message, no line of the user's (brk48 s03). The check is made while autoconv traces, where
# the user's line is on the stack, with torch's own message: the error Python raises, placed
# as Python places it.
_SUBTRACTIONS = frozenset({
    torch.Tensor.__sub__, torch.Tensor.__rsub__, torch.Tensor.__isub__, torch.Tensor.sub,
    torch.Tensor.sub_, torch.Tensor.subtract, torch.Tensor.subtract_, torch.sub,
    torch.subtract, torch.rsub})


def _is_bool(value) -> bool:
    return type(value) is bool or isinstance(value, torch.Tensor) and value.dtype is torch.bool


def _refuse_bool_subtraction(args, kwargs) -> None:
    """torch's error where an operand of a subtraction is a bool (NOTE [a bool subtracted
    while traced])."""
    operands = [v for v in (*args[:2], kwargs.get("other"), kwargs.get("input"))
                if v is not None]
    bools = [v for v in operands if _is_bool(v)]
    if not bools:
        return
    if len(bools) == len(operands):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If "
                       "you are trying to invert a mask, use the `~` or `logical_not()` "
                       "operator instead.")
_REQUIRES_GRAD = torch._C.TensorBase.__dict__["requires_grad"]  # its getter comes as `__get__`

# NOTE [metadata reads while tracing]
# A tensor's metadata read (`.shape`, `.dtype`, `.stride()`) reaches this mode as any torch call
# does, and make_fx's own bookkeeping reads a great deal of it: about 40 fields of each tensor
# it makes fake (NOTE [inputs made fake first] in autoconv/capture.py keeps its inputs' out of
# this mode), and more for each op it records. None of them changes a value, grad mode or a
# hook, nor reads a value the graph would bake (the checks below look for those), so they go
# straight through. (`.requires_grad` is not one of them: it is refused where a trace's False
# may be True at the replay.)
_METADATA = frozenset(
    [torch._C.TensorBase.__dict__[name].__get__ for name in (
        "layout", "device", "dtype", "shape", "ndim", "is_leaf", "is_sparse", "is_quantized",
        "is_nested", "is_mkldnn", "is_meta")]
    + [getattr(torch._C.TensorBase, name) for name in (
        "size", "stride", "dim", "numel", "storage_offset", "_is_view", "is_inference",
        "is_conj", "is_neg", "is_contiguous", "is_floating_point", "is_complex",
        "element_size")])


_KEYED_READS = tensor_reads.KEYED_READS
# NOTE [tensor state a trace cannot read]
# A traced tensor is a fake one: it is neither shared nor pinned (`x.is_shared()` read False
# for a tensor in shared memory: 3, 6 for Python's 2, 4, silently), and, traced detached, is a
# leaf with no grad_fn (`x.is_leaf` / `x.grad_fn is None` read True for an argument computed
# with grad, `w * 1`: 2, 4 for Python's 3, 6, brk52b). The user's read of one of them is
# refused at the line (torch's own reads go through); the leaf reads only where the tensor is
# computed from an input that requires grad (elsewhere Python reads a leaf too), under
# no_grad too: the graph is not keyed by grad mode for it, and a call with grad on replays.
# (`x.data_ptr()` raises torch's own error while traced, which a staged body's failure
# analysis reads as the body raising: NOTE [a branch that raises while traced].)
_NO_TRACED_STATE = {
    torch.Tensor.is_shared: "is_shared()",
    torch._C.TensorBase.is_pinned: "is_pinned()",
}
_LEAF_STATE = {torch._C.TensorBase.__dict__["is_leaf"].__get__: "is_leaf",
               torch._C.TensorBase.__dict__["grad_fn"].__get__: "grad_fn"}
_OVERRIDES = torch.overrides.__file__
_LIBRARY = re.compile(r"[\\/](site|dist)-packages[\\/]")


def _refuse_in_user_code(func, problem: str, fix: str) -> None:
    """Raise where the caller of `func` is the user's code (not torch's, which may read and
    register for its own purposes)."""
    from ..errors import users_file, user_location

    frame = sys._getframe(2)
    # (the call reaches this mode through torch's dispatch, `func` itself where it is Python,
    # and other torch function modes, make_fx's)
    while frame is not None and (frame.f_code.co_filename in (_OVERRIDES,)
                                 or frame.f_code.co_filename.startswith("<frozen ")
                                 or frame.f_code.co_name == "__torch_function__"
                                 or frame.f_code is getattr(func, "__code__", None)):
        frame = frame.f_back
    if frame is not None and users_file(frame.f_code.co_filename):
        library = frame.f_code.co_filename
        if _LIBRARY.search(library):
            # a library's own read (kornia choosing a path by `.requires_grad`): shown at the
            # user's line that calls into it, the library's line named
            caller = frame.f_back
            while caller is not None and (not users_file(caller.f_code.co_filename)
                                          or _LIBRARY.search(caller.f_code.co_filename)):
                caller = caller.f_back
            if caller is not None:
                problem = (f"{problem} (read by library code, {library}:{frame.f_lineno}, in "
                           f"{frame.f_code.co_name}, which may choose its path by it)")
                fix = ("Call that library function outside the autoconv function, or run the "
                       "autoconv function under torch.no_grad() where no gradient is needed")
                raise StagingError.at((caller.f_code.co_filename, caller.f_lineno), "function",
                                      problem, fix)
        raise StagingError.at(user_location(), "function", problem, fix)


# NOTE [tensor subclasses from outside]
# A tensor of a torch.Tensor subclass held by a global, a closure, a partial's argument or a
# module's attribute is a real tensor in the trace, a constant: `isinstance` sees its class,
# but torch's tracer cannot run an operation on it (`G * 2` became Python's "unsupported
# operand type(s) for *: 'Marked' and 'int'", break42 s11), and what its `__torch_function__`
# decides in Python would be baked into the graph. As a subclass argument is (NOTE [tensor
# subclass arguments] in autoconv/capture.py), it is refused, at the first torch operation on
# it, naming the place and the class: autoconv's Places finds the subclass tensors at the
# places the function may read (`Places.subclasses`), and this mode compares the operands of
# each torch call with them, only in a trace that found one. The error is kept and raised
# when make_fx returns or fails (`raise_refusal`): raised inside a tensor's operator, a
# TypeError becomes Python's "unsupported operand" error.
def _refuse_subclass_operand(args, kwargs) -> None:
    found = _subclass_operand(args) or _subclass_operand(kwargs.values())
    if found is None:
        return
    from ..errors import user_location

    where, kind = found
    _trace.refused = StagingError.at(
        user_location(), "function",
        f"{where} is a tensor of the torch.Tensor subclass {kind}: autoconv's trace cannot "
        f"run torch operations on a subclass's tensor from outside the function, and what "
        f"{kind}'s methods and __torch_function__ decide in Python would be baked into the "
        "graph",
        f"Hold a plain tensor there (`t.as_subclass(torch.Tensor)`) and decide on the type "
        f"outside the function (or pass a flag), or call the function without autoconv for "
        f"{kind}")


def _subclass_operand(values):
    subclasses = _trace.subclasses
    for value in values:
        if isinstance(value, (list, tuple)):
            for item in value:
                if id(item) in subclasses:
                    return subclasses[id(item)]
        elif id(value) in subclasses:
            return subclasses[id(value)]
    return None


# NOTE [leaves updated in place in staged bodies]
# `with torch.no_grad(): w -= lr * g` in a staged loop, `w` a leaf argument that requires grad
# (an SGD step written by hand): Python updates the leaf; `w -= lr * g` with grad enabled
# raises "a leaf Variable that requires grad is being used in an in-place operation". A staged
# body updates its own copy of `w`, no leaf, and nothing there told the two apart: the
# statement's write-back into the leaf ran with grad enabled in autoconv's graph (the trace's
# inputs are detached), which raised for both, and under torch.export with grad disabled, which
# ran both (silent36 s02). Each operand that stands for such a leaf (a leaf that requires grad,
# or one of the traced function's inputs that required grad, at the function's level; an
# enclosing body's operand marked so) has its body's copies marked (`_Operands` in
# staging/torch.py); a body's in-place torch call on a marked tensor with grad enabled raises
# Python's error, where the body's torch-function mode sees it (`RecordGradMode` in autoconv's
# trace, `_WatchingInferenceMode` under torch.export); the write-back into the leaf runs under
# no_grad, recorded in the graph. Under torch.compile dynamo traces the bodies, where no mode
# looks, and lets a body mark only the copies it makes itself (not its inputs): those are
# marked, and `w op= v` (`ac.aug_assign`) on one with grad enabled raises Python's error
# (xfail37 s01: it ran where Python raises). An in-place method there (`w.sub_(v)`) is not
# seen under dynamo.
_GRAD_LEAF = "_autoconv_grad_leaf"
_IN_PLACE_DUNDERS = frozenset({
    "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
    "__imatmul__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__",
    "__setitem__"})


_NOT_VALUE_UPDATES = frozenset({"requires_grad_", "detach_", "share_memory_", "retain_grad"})


def stands_for_grad_leaf(t, outermost: bool) -> bool:
    """Whether tensor `t` is (or, in a staged body, stands for) a leaf that requires grad when
    the graph runs (NOTE [leaves updated in place in staged bodies]). `outermost`: `t` is a
    tensor of the function's own level, not of a staged body."""
    if not isinstance(t, torch.Tensor):
        return False
    if torch.compiler.is_dynamo_compiling():  # (marks on the bodies' own copies only)
        return getattr(t, _GRAD_LEAF, False) or (outermost and t.is_leaf and t.requires_grad)
    if getattr(t, _GRAD_LEAF, False):
        return True
    if not outermost:
        return False
    if t.is_leaf and t.requires_grad:
        return True
    return _trace.recording > 0 and any(_trace.grad_inputs or ()) \
        and _is_grad_input(t, _trace.grad_inputs)


def mark_grad_leaf(t, fresh: bool = False) -> None:
    """Mark `t`, a staged body's copy of an operand that stands for a leaf that requires grad.
    `fresh`: a copy the body made itself, which dynamo lets a body mark (not its inputs)."""
    if isinstance(t, torch.Tensor) and (fresh or not torch.compiler.is_dynamo_compiling()):
        setattr(t, _GRAD_LEAF, True)


def refuse_leaf_update_under_dynamo(target) -> None:
    """`target op= value` in a staged body under dynamo, whose torch-function modes do not
    see the body: Python's error where `target` is a body's marked copy of a leaf that
    requires grad and grad is enabled (NOTE [leaves updated in place in staged bodies])."""
    if getattr(target, _GRAD_LEAF, False) and torch.is_grad_enabled():
        _raise_leaf_error()


def _raise_leaf_error():
    # (called for real by dynamo, NOTE [StagingError under dynamo]: an error raised in a body it
    # traces reaches the user as its UncapturedHigherOrderOpError)
    from torch._dynamo.exc import ShortenTraceback  # (a RuntimeError that dynamo lets through)

    raise type("RuntimeError", (ShortenTraceback,), {"__module__": "builtins"})(
        _LEAF_ERROR, first_useful_frame=None)


_raise_leaf_error._dynamo_marked_constant = True


def refuse_leaf_update(func, args) -> None:
    """Raise Python's error for an in-place torch call, with grad enabled, on a body's copy
    of a leaf that requires grad (NOTE [leaves updated in place in staged bodies])."""
    if not args or not getattr(args[0], _GRAD_LEAF, False) or not torch.is_grad_enabled():
        return
    name = getattr(func, "__name__", "")
    # (a tensor method only: `torch.nn.init.normal_(w)` runs under no_grad inside; not the
    # methods that change no value)
    if getattr(torch.Tensor, name, None) is not func or name in _NOT_VALUE_UPDATES:
        return
    if name in _IN_PLACE_DUNDERS or (name.endswith("_") and not name.startswith("_")):
        raise RuntimeError(_LEAF_ERROR)


_LEAF_ERROR = ("a leaf Variable that requires grad is being used in an in-place operation. "
               "(autoconv: in a staged body, as in Python; update it under `with "
               "torch.no_grad():`, or update a copy, `w = w - lr * g`)")


def _is_grad_input(t, grad_inputs) -> bool:
    """Whether `t` is one of the traced function's own inputs that required grad before it
    was detached."""
    node = _proxy_node(t) if isinstance(t, torch.Tensor) else None
    if node is None or node.op != "placeholder":
        return False
    # (placeholders come first in a graph)
    placeholders = list(itertools.takewhile(lambda n: n.op == "placeholder", node.graph.nodes))
    return len(placeholders) == len(grad_inputs) and grad_inputs[placeholders.index(node)]


def _proxy_node(t):
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    tracer = getattr(get_proxy_mode(), "tracer", None)
    slot = get_proxy_slot(t, tracer, None) if tracer is not None else None
    return None if slot is None else slot.proxy.node


class RecordGradMode(TorchFunctionMode):
    """While tracing under make_fx: each grad-mode change becomes a node of the graph being
    traced (the innermost one: a cond / while_loop body's graph while a body is traced; make_fx
    traces a body under a mode stack of its own, so the staging tracer enters one more of
    these around each body, see `tracers/make_fx.py`).

    `may_require_grad` (given to the outermost one): whether gradients may flow at the replay
    (NOTE [backward hooks while tracing])."""

    def __init__(self, may_require_grad: bool = False, grad_inputs=None, subclasses=None):
        super().__init__()
        self._may_require_grad = may_require_grad
        self._subclasses = subclasses or None
        # which of the traced function's inputs required grad before they were detached (the
        # outermost one only: a staged body's graph has placeholders of its own)
        self._grad_inputs = grad_inputs

    def __enter__(self):
        if _trace.recording == 0:
            _trace.inference_at_entry = _trace.refused = None
            _trace.may_require_grad = self._may_require_grad
            _trace.inputs_require_grad = self._may_require_grad or any(self._grad_inputs or ())
            _trace.grad_inputs = self._grad_inputs
            _trace.subclasses = self._subclasses
        _trace.recording += 1
        return super().__enter__()

    def __exit__(self, *exc):
        _trace.recording -= 1
        if _trace.recording == 0:
            _trace.subclasses = None
        return super().__exit__(*exc)

    def _reaches_a_grad_input(self, t) -> bool:
        """Whether traced tensor `t` may require grad when the graph runs: it is computed from
        an input that required grad (NOTE [backward hooks while tracing]). Where not, Python
        reads False too (`if mask.requires_grad:` on a mask of inputs without grad, a library
        choosing its path by it): nothing to refuse. Unknown (in a staged body's graph, a
        tensor the tracer does not hold) counts as reaching one."""
        node = _proxy_node(t) if self._grad_inputs is not None else None
        if node is None:
            return True
        placeholders = [n for n in node.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(self._grad_inputs):
            return True
        grad = {n for n, g in zip(placeholders, self._grad_inputs) if g}
        seen, todo = set(), [node]
        while todo:
            n = todo.pop()
            if n in grad:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(n.all_input_nodes)
        return False

    def _is_grad_input(self, t) -> bool:
        return _is_grad_input(t, self._grad_inputs)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(isinstance(a, torch.fx.Proxy) for a in args):
            # NOTE [a user's symbolic trace inside autoconv's]
            return func(*args, **kwargs)
        if torch.compiler.is_dynamo_compiling():
            # Dynamo traces this mode too when the traced code calls torch.cond / while_loop by
            # hand (they compile their bodies); it records grad-mode changes itself, and cannot
            # trace `is_inference_mode_enabled`.
            return func(*args, **kwargs)
        entry = _trace.inference_at_entry
        if entry is not None and torch.is_inference_mode_enabled() is not entry \
                and _trace.refused is None:
            # Raised once the trace ends (`raise_refusal`): a TypeError raised here, in a
            # tensor operator, would become Python's "unsupported operand" error.
            _trace.refused = StagingError(
                "function", "torch.inference_mode() inside the traced code leaves nothing in the "
                "graph, so the replay would compute gradients through it",
                "Write `with torch.no_grad():` instead (the graph records it), or call the "
                "autoconv function inside torch.inference_mode()")
        if func in _KEYED_READS and tensor_reads.note(func) and args \
                and outside_writes.is_outside(args[0]):
            # NOTE [tensor state of a tensor from outside] in tensor_reads.py
            read = tensor_reads.reader(func)
            outside_writes.note_read(read, args[:1], read(args[0]))
        traced = args and isinstance(args[0], torch.Tensor) \
            and not outside_writes.is_outside(args[0])
        if traced and (func in _NO_TRACED_STATE or func in _LEAF_STATE
                       and _trace.inputs_require_grad and self._reaches_a_grad_input(args[0])) \
                and tensor_reads.by_user(func):
            # NOTE [tensor state a trace cannot read]
            kind = _NO_TRACED_STATE.get(func) or _LEAF_STATE[func]
            _refuse_in_user_code(
                func, f"`.{kind}` of a traced tensor is the trace's (a fake tensor's, "
                "detached, in no shared or pinned memory), not the tensor's when the graph runs",
                f"Read `.{kind}` outside the autoconv function and pass what it decides "
                "as an argument")
        if func in _METADATA:  # NOTE [metadata reads while tracing]
            return func(*args, **kwargs)
        if _trace.subclasses is not None and _trace.refused is None:
            _refuse_subclass_operand(args, kwargs)
        if _trace.may_require_grad and torch.is_grad_enabled():
            if func in _REGISTER_HOOKS:
                _refuse_in_user_code(
                    func, "a hook registered on a traced tensor (register_hook) is not part of the "
                    "graph, so the replay would compute gradients without it",
                    "Register the hook on the autoconv function's result or input outside it, "
                    "or change the gradient with a torch.autograd.Function (kept with its "
                    "backward)")
            elif (getattr(func, "__self__", None) is _REQUIRES_GRAD
                  and getattr(func, "__name__", None) == "__get__" and not args[0].requires_grad
                  and self._reaches_a_grad_input(args[0])):
                _refuse_in_user_code(
                    func, "`.requires_grad` of a traced tensor is False while autoconv traces (on "
                    "detached inputs), but may be True when the graph runs",
                    "Decide outside the autoconv function (pass a flag), or use "
                    "torch.is_grad_enabled(), which the graph is keyed by")
        if func in _SUBTRACTIONS:  # NOTE [a bool subtracted while traced]
            _refuse_bool_subtraction(args, kwargs)
        refuse_leaf_update(func, args)  # NOTE [leaves updated in place in staged bodies]
        outside_writes.note(func, args, kwargs)  # NOTE [outside tensors updated while tracing]
        if func in outside_writes.VALUE_READS:
            if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 0:
                # (NOTE [optimizer steps that read their count])
                optimizer_steps.refuse_count_read(args[0])
            if func is _ITEM:
                from .specialize import constant_item

                value = constant_item(args[0])
                if value is not None:
                    return value
            value = func(*args, **kwargs)
            # a tensor from outside the function: its value is baked (NOTE [captured Python
            # values] in autoconv/captures.py)
            outside_writes.note_read(func, args, value)
            return value
        if func is torch.arange and any(isinstance(a, torch.SymFloat) for a in args) \
                and set(kwargs) <= {"dtype", "device", "requires_grad"}:
            from .specialize import arange_of_symbolic_floats

            return arange_of_symbolic_floats(*args, **kwargs)
        if func is _GRAD and self._grad_inputs is not None:
            wrt = kwargs.get("inputs", args[1] if len(args) > 1 else ())
            if any(self._is_grad_input(t) for t in (
                    (wrt,) if isinstance(wrt, torch.Tensor) else wrt)):
                # NOTE [gradients with respect to arguments]
                _refuse_in_user_code(
                    func, "torch.autograd.grad with respect to an argument of the function "
                    "that requires grad: autoconv traces the function on its arguments detached "
                    "(gradients reach them through the graph when it runs), so inside it they "
                    "have no grad to differentiate",
                    "Compute the gradient outside the autoconv function (return the loss), or "
                    "differentiate with respect to a copy made inside it (`w = "
                    "w.detach().requires_grad_()`), or hold the tensors in an nn.Module given "
                    "as an argument (its parameters are differentiated as in Python)")
        if func in _DIFFERENTIATE:
            _trace.differentiated += 1
        if func is SET_GRAD_ENABLED:
            (enabled,) = args
            _record_grad_mode(bool(enabled))
        elif _switches_grad_mode(func) and proxy_tensor.get_proxy_mode() is not None:
            with _GradModeOfOps():  # NOTE [grad-mode changes inside torch's Python functions]
                return func(*args, **kwargs)
        return func(*args, **kwargs)


# NOTE [a user's symbolic trace inside autoconv's]
# `torch.fx.symbolic_trace(module)` called by the traced code (a helper building a graph of a
# module on the fly) calls the module's torch functions with fx Proxies while this mode is on
# the stack: its checks asked Python for a Proxy's truth (`refuse_leaf_update`) and fx raised
# "symbolically traced variables cannot be used as inputs to control flow" for a module with
# no control flow, where Python gives the GraphModule. A Proxy is never autoconv's own (make_fx
# traces tensors), so such a call is the user's trace's: passed on untouched, to the Proxy's
# own `__torch_function__`, which records it in the user's graph.
def _record_grad_mode(enabled: bool) -> None:
    """A `_set_grad_enabled(enabled)` node in the graph being traced, if one is."""
    mode = proxy_tensor.get_proxy_mode()
    if mode is not None:
        node = mode.tracer.create_node("call_function", SET_GRAD_ENABLED, (enabled,), {})
        node.meta["val"] = None


# NOTE [grad-mode changes inside torch's Python functions]
# A torch function written in Python that dispatches `__torch_function__` itself
# (`torch.nn.init.constant_`, `normal_`, `kaiming_uniform_` ...: `if has_torch_function(...):
# return handle_torch_function(...)`) reaches `RecordGradMode` as one call, and runs with the
# mode popped: its own `with torch.no_grad(): tensor.fill_(val)` set grad mode unseen, the
# graph held `fill_` of the parameter without the no_grad, and the replay raised torch's "a
# leaf Variable that requires grad is being used in an in-place operation" where Python
# initialises the weight (brk56: `m.apply(init)`, `for p in m.parameters():
# nn.init.constant_(p, 0.5)`; torch's own make_fx, pre-dispatch too, records the same). So
# such a function (one whose code, or a function of its module it names, names `no_grad`,
# `enable_grad` or `set_grad_enabled`) runs under `_GradModeOfOps`, a dispatch mode that
# compares each aten op's grad mode with the one the graph is in and records the change
# before the op (and the way back after the function).
_GRAD_NAMES = frozenset({"no_grad", "enable_grad", "set_grad_enabled", "_set_grad_enabled"})
_switching: dict = {}  # code of a torch Python function -> whether it may switch grad mode


def _switches_grad_mode(func) -> bool:
    code = getattr(func, "__code__", None)
    if code is None or not isinstance(func, types.FunctionType):
        return False
    found = _switching.get(code)
    if found is None:
        table = getattr(func, "__globals__", {})
        named = [table.get(name) for name in code.co_names]
        found = _switching[code] = bool(_GRAD_NAMES & set(code.co_names)) or any(
            _GRAD_NAMES & set(getattr(getattr(f, "__code__", None), "co_names", ()))
            for f in named if isinstance(f, types.FunctionType))
    return found


class _GradModeOfOps(TorchDispatchMode):
    """Records a grad-mode change its ops run under that the torch-function mode did not see
    (NOTE [grad-mode changes inside torch's Python functions])."""

    def __enter__(self):
        self.recorded = torch.is_grad_enabled()
        return super().__enter__()

    def __exit__(self, *exc):
        result = super().__exit__(*exc)
        self._sync()
        return result

    def _sync(self) -> None:
        enabled = torch.is_grad_enabled()
        if enabled is not self.recorded:
            _record_grad_mode(enabled)
            self.recorded = enabled

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self._sync()
        return func(*args, **(kwargs or {}))


def sets_grad_mode(graph_module: torch.fx.GraphModule) -> bool:
    """Whether `graph_module` (or a cond / while_loop body in it) changes grad mode."""
    return any(node.op == "call_function" and node.target is SET_GRAD_ENABLED
               for module in graph_module.modules() if isinstance(module, torch.fx.GraphModule)
               for node in module.graph.nodes)
