"""A tensor's state beside its metadata that Python code reads while autoconv traces (its storage
offset, inference flag, version counter): recorded, so that graphs are keyed by it.

NOTE [tensor state read while tracing]
A signature keys a tensor argument by shape, dtype, device, requires_grad and layout (NOTE
[the last call's tensors checked in C++] in autoconv/signature.py). Python code may read more
of it and choose its path by that: `x.storage_offset()` (a view at another offset), the
`x.is_inference()` flag (a tensor made under `torch.inference_mode()`), the version counter
`x._version` (how many in-place updates it has seen: a cache's staleness test). Each is a
constant of the graph once traced, so a graph traced on a plain tensor replayed its path for
an inference tensor or a view at another offset (3, 6 for Python's 2, 4, brkB51). Keying
every call by them would cost every call and trace once per offset of a view (`f(buf[i:])`
in a loop), where almost no function reads them. So the reads the user's code makes while a
trace runs (not torch's own bookkeeping, which reads offsets for every op it records) are
recorded by kind (`watching`); a graph whose trace read one keeps the values of every tensor
argument (and a module's parameter and buffer) for that kind (`state_of`), and checks them
where it is called (a mismatch is a
failed guard: the Function traces again, or keeps the graph of those values; a direct call of
the ConcreteFunction is refused), and its Function keys its calls by those kinds from then
on (`Function._tensor_reads`). A function that reads none pays nothing.

NOTE [tensor state read in a staged body]
A staged `if` / loop body gets the tensors it reads as operands of torch.cond / while_loop,
which are new tensors of its graph: `x.storage_offset()` of a view read there was 0 where the
argument's is 1 (a wrong branch, silently), its inference flag and version count its own. Such
a read is refused at the line while autoconv traces; read before the statement, it is keyed
as above.

NOTE [tensor state of a tensor from outside]
A tensor the function reads from a global or a closure is real in the trace, and none of the
above keys it: `if G._version > 0:` kept its trace's path after `G.add_(0)` (3, 6 for
Python's 2, 4, brk52b). The user's read of one is guarded as a value read from outside is
(`outside_writes.note_read`, NOTE [captured Python values] in autoconv/captures.py): each
call reads it again (`reader`), and a change traces again. `x.untyped_storage()` is keyed
and guarded by its size in bytes, what `.size()` / `.nbytes()` of it tell (a copy of a view
has a storage of its own size). A tensor in an argument object's field so read is read live
(NOTE [tensors in argument objects' fields] in autoconv/capture.py), and its state is kept
(`Capture.live_state`) and checked on each call as an argument's is (a field's `_version`
kept its trace's path after `s.t.add_(0)`: 3, 6 for Python's 2, 4).

The trace's inputs are fake tensors, made with version 0: `x._version` read there was 0 for
an argument updated twice (0 for Python's 2, on the first call too), and `self.w._version`
0 for a parameter an optimizer had stepped. The trace's inputs take their tensors' version
counts before the function runs (`with_versions`), and share them with their views as the
tensors do. (Under torch.compile dynamo refuses `is_inference()`
and `storage_offset()` of a traced tensor, and reads `_version` right; an exported program
holds the example's values, torch's own rule without autoconv too.)
"""

from __future__ import annotations

import contextlib
import sys
import threading

import torch

from ..errors import StagingError, user_location, users_file

__all__ = ["KEYED_READS", "UNSEEN", "note", "watching", "state_of", "versions", "version_of",
           "with_versions", "describe", "reader", "by_user"]

_TensorBase = torch._C.TensorBase
# the read (as a torch function mode sees it) -> its kind, the key's name for it
KEYED_READS = {
    _TensorBase.storage_offset: "storage_offset()",
    _TensorBase.is_inference: "is_inference()",
    _TensorBase.__dict__["_version"].__get__: "_version",
    # (keyed by its size in bytes, what its reads tell apart: NOTE [tensor state of a tensor
    # from outside])
    _TensorBase.untyped_storage: "untyped_storage()",
}
_OVERRIDES = torch.overrides.__file__
_CALLS = __name__.rpartition(".staging")[0] + ".calls"  # (autoconv_runtime.calls)


class _State(threading.local):
    kinds = None  # the kinds read by the user's code while a trace runs in this thread


_state = _State()
_users: dict = {}  # file name -> whether it is the user's (`users_file`), asked once a file


@contextlib.contextmanager
def watching():
    """While autoconv traces: records the kinds the user's code reads (yields the set)."""
    outer = _state.kinds
    _state.kinds = kinds = set()
    try:
        yield kinds
    finally:
        _state.kinds = outer


def by_user(func, depth: int = 2) -> bool:
    """Whether the read of `func` that reached the trace's torch function mode was made by the
    user's code (not torch's, nor autoconv's: the compiler's own reads are its own); called
    from the mode's `__torch_function__`."""
    # (the read reaches the mode from its caller directly; other modes' handlers between, and
    # converted code's call of a real tensor's method goes through `converted_call`: `H.
    # storage_offset()` of a global was counted as the runtime's own read, and not keyed)
    frame = sys._getframe(depth)
    while frame is not None and (frame.f_code.co_name == "__torch_function__"
                                 or frame.f_code.co_filename == _OVERRIDES
                                 or frame.f_code is getattr(func, "__code__", None)
                                 or frame.f_globals.get("__name__") == _CALLS):
        frame = frame.f_back
    if frame is None:
        return False
    filename = frame.f_code.co_filename
    users = _users.get(filename)
    if users is None:
        users = _users[filename] = users_file(filename) and frame.f_globals.get(
            "__name__", "").partition(".")[0] != "autoconv"
    return users


def note(func) -> bool:
    """Record a read of `func` (one of KEYED_READS) where the user's code made it; called by
    the trace's torch function mode (`RecordGradMode`). Whether it was the user's."""
    kinds = _state.kinds
    if kinds is None or not by_user(func, 3):
        return False
    from .context import staged_statement  # (context imports the runtime's values)

    kind = KEYED_READS[func]
    statement = staged_statement()
    if statement is not None:
        # NOTE [tensor state read in a staged body]
        raise StagingError.at(
            user_location(), statement, f"`.{kind}` read inside its body is the body's copy's "
            "(the graph's operand), not the tensor's: a staged body gets its tensors as new "
            "ones, at offset 0, not inference tensors, with a version count of their own",
            f"Read it before the statement (`n = x.{kind}`) and use `n` inside")
    kinds.add(kind)
    return True


def _read(tensor, kind):
    if kind == "storage_offset()":
        return tensor.storage_offset()
    if kind == "is_inference()":
        return tensor.is_inference()
    if kind == "untyped_storage()":
        return tensor.untyped_storage().nbytes()
    # (an inference tensor has no version counter: reading it raises, as in Python)
    return None if tensor.is_inference() else tensor._version


def _reader(kind):
    def read(tensor):
        return _read(tensor, kind)

    read.__name__ = read.__qualname__ = kind.rstrip("()")
    return read


_READERS = {func: _reader(kind) for func, kind in KEYED_READS.items()}


def reader(func):
    """The read of KEYED_READS' `func` as a guard makes it again on each call, of a tensor
    from outside the function (NOTE [tensor state of a tensor from outside])."""
    return _READERS[func]


def state_of(tensors, kinds: tuple) -> tuple:
    """The values of `kinds` (sorted names of KEYED_READS) of each of `tensors`."""
    return tuple(tuple(_read(t, kind) for kind in kinds) for t in tensors)


def describe(kinds: tuple, traced: tuple, now: tuple, names) -> tuple:
    """(where, value traced, value now) of the first tensor whose state differs; `names`:
    what each tensor is, for the message."""
    for name, was, is_ in zip(names, traced, now):
        for kind, a, b in zip(kinds, was, is_):
            if a != b:
                return f"{name}'s {kind}", a, b
    return "the tensors' state", traced, now


def versions(tensors) -> tuple:
    """The version count of each of `tensors` (None for an inference tensor's), read before
    the trace (its torch function mode would see the real tensors)."""
    return tuple(None if t.is_inference() else t._version for t in tensors)


class _Unseen:
    """The version of an inference tensor (NOTE [inference tensors' versions])."""

    __slots__ = ()

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return "UNSEEN"


UNSEEN = _Unseen()


# NOTE [inference tensors' versions]
# The runtime tells a tensor updated in place by its version counter, read before and after a
# body. A function called under `torch.inference_mode()` is traced there, and the tensors it
# makes are inference tensors, which have no counter: reading one raised torch's "Inference
# tensors do not track version counter" out of a staged `for` with a `break` or a `return`, a
# loop over an object's fields, an `.item()` test (tester53; pytorch-optimizer's
# `compute_power_schur_newton` is `@torch.inference_mode()` itself), or, in a branch,
# specialised the `if` on the trace's path. The version of an inference tensor is UNSEEN,
# equal to no version, itself included: every comparison takes the tensor for updated, the
# side that carries, reads again or refuses, never the one that keeps a stale value.
# Where taking it for updated refuses what Python allows (a loop that rebinds a name one of its
# inputs shares: every `for row in x: acc = acc + row` under inference mode, brk53b), the
# body's graph is asked instead (`written_in_trace`): an op writing the tensor's memory, or the
# tensor's own node being a write (the tracer rebinds an updated tensor to its update's node;
# missing that gave [8., 16.] for Python's [16., 24.]).
def version_of(value):
    """`value._version`; None for what is not a tensor; UNSEEN for an inference tensor."""
    if not isinstance(value, torch.Tensor):
        return None
    if torch.compiler.is_dynamo_compiling():  # (dynamo refuses `is_inference()`; its reads
        return value._version                 # of `_version` are right)
    return UNSEEN if value.is_inference() else value._version


def written_in_trace(tensor) -> bool | None:
    """Whether the running trace's graph so far writes in place to `tensor` (or to memory it
    views); None where no proxy tracer holds it. For an inference tensor made in the trace,
    whose version is UNSEEN (NOTE [inference tensors' versions]): a cond / while_loop taking
    it whose bodies write anything counts as a write (the side that refuses)."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode, get_proxy_slot

    tracer = getattr(get_proxy_mode(), "tracer", None)
    slot = get_proxy_slot(tensor, tracer, None) if tracer is not None else None
    if slot is None:
        return None
    if _mutates(slot.proxy.node):  # (the tracer rebinds an updated tensor to its update)
        return True
    root = _memory_root(slot.proxy.node)
    for node in tracer.graph.nodes:
        if node.op != "call_function" or node.target is torch.ops.aten.detach_.default:
            continue
        if not any(_memory_root(a) is root for a in node.all_input_nodes):
            continue
        if _mutates(node):
            return True
        if isinstance(node.target, torch._ops.HigherOrderOperator) and any(
                _writes_anything(getattr(tracer.root, a.target, None))
                for a in node.all_input_nodes if a.op == "get_attr"):
            return True
    return False


def _mutates(node) -> bool:
    return (node.op == "call_function" and node.target is not torch.ops.aten.detach_.default
            and getattr(getattr(node.target, "_schema", None), "is_mutable", False))


def _memory_root(node):
    while getattr(node.target, "is_view", False) and node.args and isinstance(
            node.args[0], torch.fx.Node):
        node = node.args[0]
    return node


def _writes_anything(module) -> bool:
    if not isinstance(module, torch.fx.GraphModule):
        return False
    return any(_mutates(n) if n.op == "call_function"
               else _writes_anything(getattr(module, n.target, None))
               for n in module.graph.nodes if n.op in ("call_function", "get_attr"))


def with_versions(traced, counts) -> None:
    """Give each of the trace's input tensors `traced` its argument's version count, from
    `counts` (`versions`; NOTE [tensor state read while tracing])."""
    pairs = [(t, n) for t, n in zip(traced, counts)
             if n and isinstance(t, torch.Tensor) and not t.is_inference() and t._version != n]
    if pairs:
        torch._C._autograd._unsafe_set_version_counter(
            tuple(t for t, _ in pairs), tuple(n for _, n in pairs))
