"""Tensors from outside a traced function that it updates in place, put back after the trace.

NOTE [outside tensors updated while tracing]
make_fx keeps a tensor the function reads from a global, a closure or an attribute (not an
argument) as a constant of the graph: the tensor itself. An in-place op on it runs for real while
tracing (a fake trace of `STEP.add_(1)` leaves `STEP` one higher), and the graph's own op updates
the same tensor at every call: each trace added one update Python never made. While autoconv
traces, the first in-place update of each such tensor saves its value, and the trace ends by
putting the saved values back, so that only the graph's runs update it.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils import _pytree as pytree

from ..identity import type_in

__all__ = ["restoring", "note", "note_read", "is_outside", "VALUE_READS", "as_traced",
           "same_tensor", "standing_in", "stood_for"]

_state = threading.local()


# The tensor methods that read a tensor's value into Python (make_fx then bakes the value read)
VALUE_READS = frozenset({torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__int__,
                         torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.tolist})


@contextlib.contextmanager
def restoring():
    """Within: outside tensors updated in place are saved first (`note`); on leaving (the
    outermost trace) each is put back. Gives the list of the values read from outside tensors
    (`note_read`): [(tensor, method, value)], complete once the context is left."""
    outer = getattr(_state, "saved", None)
    if outer is None:
        _state.saved = {}
        _state.reads = []
        _stand.stood = {}
    reads = _state.reads
    try:
        yield reads
    finally:
        if outer is None:
            saved, _state.saved = _state.saved, None
            _state.reads = None
            _stand.stood = None
            from .specialize import untraced

            with untraced(), torch.no_grad():
                for tensor, value in saved.values():
                    tensor.copy_(value)


def _in_place(func) -> bool:
    name = getattr(func, "__name__", "")
    return ((name.endswith("_") and not name.startswith("_"))
            or (name.startswith("__i") and name.endswith("__") and name != "__init__")
            or name == "__setitem__")


def _in_place_on_lists(func) -> bool:
    """`torch._foreach_add_` and its kin, which update each tensor of their first argument, a
    list: torch.optim's foreach steps count `state["step"]` so (a 0-d tensor on the CPU, which a
    fake trace updates for real: NOTE [outside tensors updated while tracing])."""
    name = getattr(func, "__name__", "")
    return name.startswith("_foreach_") and name.endswith("_")


def is_outside(tensor) -> bool:
    """Whether `tensor` is a real tensor from outside the trace. The trace's own tensors are
    fake; so are the ones `torch.func.vmap` / `grad` / `jacrev` wrap inside the traced function,
    but their wrappers have the plain `torch.Tensor` class: saved and put back after the trace
    like outside ones, a `jacrev` in the function raised functorch's "your tensor may have
    escaped from inside a function being vmapped" at the trace's end."""
    return ((type(tensor) is torch.Tensor or type(tensor) is torch.nn.Parameter)
            and not torch._C._functorch.is_functorch_wrapped_tensor(tensor))


def note(func, args, kwargs) -> None:
    """Save the value of a real (outside) tensor that `func` is about to update in place."""
    saved = getattr(_state, "saved", None)
    if saved is None:
        return
    targets = []
    if args and _in_place(func):
        targets.append(args[0])
    elif args and _in_place_on_lists(func) and isinstance(args[0], (list, tuple)):
        targets.extend(t for t in args[0] if isinstance(t, torch.Tensor))
    out = kwargs.get("out") if kwargs else None
    if out is not None:
        targets.extend(out if isinstance(out, (tuple, list)) else (out,))
    for tensor in targets:
        if is_outside(tensor) and id(tensor) not in saved:
            from .specialize import untraced

            with untraced():
                saved[id(tensor)] = (tensor, tensor.detach().clone())


def note_read(func, args, value) -> None:
    """Record that the trace read `value` from a real (outside) tensor with `func` (one of
    `VALUE_READS`): make_fx bakes it into the graph, so each call checks it again
    (NOTE [captured Python values] in autoconv/captures.py)."""
    reads = getattr(_state, "reads", None)
    if reads is None or not args:
        return
    tensor = args[0]
    if is_outside(tensor):
        _refuse_read_of_own_update(func, tensor, value)
        reads.append((tensor, func, value))


# NOTE [an outside tensor read after the function updated it]
# A value read into Python from a tensor from outside the function (a module's buffer, a
# global) is baked into the graph and guarded: each call reads the tensor again and traces
# anew where it holds another value. Where the function itself updated that tensor in place
# before the read (ema-pytorch's `EMA.update`: `step = self.step.item()`, then
# `self.step += 1`, called three times in a loop), the trace read the value its own update
# made, and the trace's end puts the tensor back (NOTE [outside tensors updated while
# tracing]): the guard fails right after every trace, a RuntimeError naming neither the
# library's line nor a form to write (tester55). The read is refused at its line where the
# value differs from the one the tensor held before the trace's update; a read of a value the
# update left as it was still holds its guard.
def _refuse_read_of_own_update(func, tensor, value) -> None:
    saved = getattr(_state, "saved", None)
    if not saved or id(tensor) not in saved or func not in VALUE_READS:
        return
    from ..errors import StagingError, user_location
    from .specialize import untraced

    with untraced():
        before = func(saved[id(tensor)][1])
    if type(before) is type(value) and before == value:
        return
    raise StagingError.at(
        user_location(), "function",
        f"`{func.__name__}` reads into Python a tensor from outside the function (a module's "
        f"buffer, a global: {before!r} when the call began) that the function updated in place "
        f"before this read ({value!r} here): autoconv traces the function once into a graph, "
        "which would keep this call's number for every later call",
        "Keep the count in a tensor and compute with it as a tensor (`torch.where` on it, not "
        "`.item()`), or call the code that updates and reads it outside the autoconv function")


# NOTE [an argument that is an outside tensor]
# `f(TOTAL)` where `f`'s staged loop updates the global `TOTAL` in place and reads its argument
# `x` (`while n > 0: TOTAL.add_(x)`): in Python `x` is `TOTAL` and sees each update. The trace
# holds them as two objects: the global is the real tensor (make_fx makes it a constant of the
# graph) and the argument the fake tensor the trace's fake mode made of it, which its converter
# gives back for the real one (one fake per real tensor: NOTE [arguments that are captured
# tensors] in autoconv/signature.py). A staged statement joins the operands that are one tensor
# (NOTE [one tensor given as two inputs], NOTE [inputs updated in place] in
# runtime/operators.py) and refuses those that share memory with one it updates (NOTE [views
# carried as state slots]) by `is` and by storage, which never met here: the body updated its
# copy of `TOTAL` and read `x` as it was before the loop on every trip (36 for Python's 1024,
# in every staged `if`, `while` and `for`, nested too). So a real outside tensor is compared
# as the fake the trace made of it (`as_traced`): the argument and the global are one operand
# of the bodies, and a view of one is refused as a view of the other. The graph is kept for
# calls that alias so only (CAPTURED_ALIAS). Not under torch.export, whose program lifts the
# global as a constant of its own, apart from the argument, and is run on other tensors (a loop
# joined so gave 1024 for another tensor of the global's value where Python gives 36; the program
# traced on the global and given the global is torch's own, README), nor under dynamo, which
# makes them one tensor but the body's two inputs: refused there (NOTE [an operand and a tensor
# read by closure updated as one under dynamo] in closure_aliases.py).
def as_traced(tensor):
    """The fake tensor the active fake mode made of `tensor`, a real tensor from outside the
    traced function, where it made one; else `tensor` (NOTE [an argument that is an outside
    tensor])."""
    if torch.compiler.is_dynamo_compiling() or not is_outside(tensor) \
            or torch.compiler.is_exporting():
        return tensor
    from torch._guards import detect_fake_mode

    mode = detect_fake_mode()
    if mode is None:
        return tensor
    fake = mode.fake_tensor_converter._get_memo(tensor)
    return tensor if fake is None else fake


def as_real(tensor):
    """`tensor` where it is a real tensor from outside the trace, the real tensor the active
    fake mode made it of where it is such a fake, else None (NOTE [two real tensors of one
    memory, one of them read by the trace] in runtime/operators.py)."""
    if is_outside(tensor):
        return tensor
    if not isinstance(tensor, FakeTensor) or torch.compiler.is_exporting():
        return None
    from torch._guards import detect_fake_mode

    mode = detect_fake_mode()
    if mode is None:
        return None
    converter = mode.fake_tensor_converter
    memo = converter.tensor_memo
    for real, tid in list(converter.meta_converter.describer.lookup_tensor.items()):
        if memo.get(tid) is tensor:
            return real if is_outside(real) else None
    return None


def same_tensor(a, b) -> bool:
    """`a is b`, or one of them the fake tensor the trace made of the other (NOTE [an argument
    that is an outside tensor])."""
    if a is b:
        return True
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or \
            type(a) is type(b) or torch.compiler.is_dynamo_compiling() \
            or torch.compiler.is_exporting():
        return False
    return as_traced(a) is as_traced(b)



# NOTE [an outside tensor read by its own name in a body updating it as an argument]
# The other way round from NOTE [an argument that is an outside tensor]: `f(W)` where `f`'s
# staged loop updates its argument in place (`x.add_(1)`) and reads the global `W` by its own
# name (`s = s + W.sum()`, or a helper it calls does). In Python `W` is `x` and sees each
# update. The bodies get their own copy of `x` (NOTE [inputs updated in place] in
# runtime/operators.py), but `W` read by name is the real tensor, which make_fx keeps as a
# constant of the body, lifted as an operand from before the statement (under dynamo, the
# argument's tensor that dynamo made of both): every trip read `W` as it was before the loop
# (24 for Python's 36, wrong49; an `if` likewise). No converter can see the read (it may be
# in any callee), so while a body that updates such an argument runs, its torch calls are
# given the body's copy for the tensor the argument is: the real tensor whose fake the trace
# made the argument of, or (in a nested body) the enclosing body's copy of it, resolved
# through every enclosing body's copies in turn (the graph then holds for calls given the
# global only: NOTE [a captured tensor read in a body, the argument it is updated] in
# autoconv/signature.py). An argument that is a view of the tensor read (`f(W[:1])`), or of
# which it is a view, cannot be given so: the read is refused at its line. Not under
# torch.export, whose program lifts the global as a constant of its own, apart from the
# argument (NOTE [an argument that is an outside tensor]); under dynamo, which does not trace
# this mode, refused (NOTE [an operand and a tensor read by closure updated as one under
# dynamo] in closure_aliases.py).
class _StandIns(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        pairs = _stand.pairs
        if pairs:
            args, kwargs = pytree.tree_map_only(
                torch.Tensor, lambda t: _stood_for(t, pairs), (args, kwargs))
        return func(*args, **kwargs)


def _stood_for(tensor, pairs):
    """The body's copy for `tensor`, a real outside tensor, where a body being run updates
    the argument it is; else `tensor`."""
    start = as_traced(tensor) if is_outside(tensor) else tensor
    if start is tensor:
        return tensor  # (a traced tensor read by closure: not one this NOTE is about)
    key = start
    for original, copy in pairs:  # (outermost first: each inner body's copy is of the outer's)
        if key is original:
            key = copy
    if key is start:
        if isinstance(start, FakeTensor) and any(
                isinstance(o, FakeTensor) and _same_storage(start, o) for o, _ in pairs):
            raise _view_read_refusal()
        return tensor
    stood = getattr(_stand, "stood", None)  # (the graph holds for calls that alias so only)
    if stood is not None:
        stood.setdefault(id(tensor), tensor)
    return key


def _same_storage(a, b) -> bool:
    from torch.multiprocessing.reductions import StorageWeakRef

    return StorageWeakRef(a.untyped_storage()) == StorageWeakRef(b.untyped_storage())


def _view_read_refusal():
    """A StagingError: a body updating an argument that is a view of a tensor from outside (or
    the tensor of which it is a view) reads that tensor by its own name (`f(W[:1])`, the body
    `x.add_(1)` then `W.sum()`), which only a copy from before the statement can give it."""
    from ..errors import StagingError
    from .context import staged_statement

    statement = staged_statement() or "statement"
    return StagingError(
        statement,
        f"the {statement} updates an argument in place that shares memory with a tensor it "
        "also reads from outside the function (a global, a closure's or an attribute's: the "
        "argument a view of it, or it a view of the argument), which in Python sees each "
        f"update; the staged {statement} would read it as it was before",
        "Read the outside tensor through the argument, pass the whole tensor as the argument, "
        "or take a copy before the call where it need not see the update")


def stood_for() -> tuple:
    """The real tensors the trace so far gave torch calls the body's copy of an argument for
    (NOTE [an outside tensor read by its own name in a body updating it as an argument]),
    within `restoring`."""
    stood = getattr(_stand, "stood", None)
    return tuple(stood.values()) if stood else ()


_stand = threading.local()


def _made_of_outside(fake) -> bool:
    """Whether the trace's fake mode made `fake` of a real tensor (an argument of the traced
    function, which may be a global's tensor too)."""
    if not isinstance(fake, FakeTensor):
        return False
    from torch._guards import detect_fake_mode

    mode = detect_fake_mode()
    return mode is not None and any(
        v is fake for v in mode.fake_tensor_converter.tensor_memo.values())


@contextlib.contextmanager
def standing_in(pairs):
    """Within (a staged body run): a real outside tensor (or an enclosing body's copy) that
    is the `original` of one of `pairs` [(original, the body's copy)] is given to torch calls as
    the copy (NOTE [an outside tensor read by its own name in a body updating it as an
    argument])."""
    stack = getattr(_stand, "pairs", None)
    if stack is None:
        stack = _stand.pairs = []
    if torch.compiler.is_dynamo_compiling() or torch.compiler.is_exporting() or not pairs \
            or not any(any(o is c for _, c in stack) or _made_of_outside(o) for o, _ in pairs):
        yield
        return
    stack.extend(pairs)
    try:
        with _StandIns():
            yield
    finally:
        del stack[len(stack) - len(pairs):]


def resumed():
    """Where a body of a staged statement nested in a body that `standing_in` runs is traced:
    its stand-ins again (torch calls a higher-order operator's bodies with the torch-function
    modes around it taken off); else None."""
    return _StandIns() if getattr(_stand, "pairs", None) else None


# NOTE [outside tensors updated in a probe]
# The run of a statement's bodies that learns the types of the values they return (a staged
# `if` with an early return, a loop that binds a variable first in its body: runtime/staging/
# torch.py `_fill_return_placeholders`), or the rows they append to the lists they grow
# (`_probe_lists`), works on copies of the statement's values, but a tensor the body reaches
# otherwise is the real one: from outside the function (a global, an item of a global dict, a
# module's plain attribute or dict item: `STATS["n"] += 1`), or a variable of the function
# itself that the body reads by closure, not as an input, because it may be unbound when the
# statement starts (bound in one branch of an earlier `if`: linear_operator's CG allocates
# `alpha`, `beta`, `mul_storage` ... only where the right-hand side has not converged, and its
# loop updates them with `out=` and in place). Its in-place update would run, and be traced,
# outside torch.cond / while_loop: an update Python never made, on every call (the graph's
# in-place nodes are kept for their effect, and the statement's own node then reads the tensor
# as the probe left it). The CG's first iteration updated its search direction and residual
# product twice: its result was 0.13 off after one iteration where Python's is 0.14, and 1.7e-4
# relative off at convergence. An in-place op never changes its target's type (dtype, shape),
# so the probe skips the update of every tensor it did not make itself: the op gives back its
# target unchanged, and only the statement's real run (in the operator's body, where torch
# carries the update) updates it. The tensors the probe made (its copies of the statement's
# values, whatever its bodies compute) are updated as the body says, so the values it learns
# are the body's. Open: a full probe (the rows an `if`'s branches append) whose count depends
# on such an update counts on the value before it.
class _SkipOutsideUpdates(torch.overrides.TorchFunctionMode):
    def __init__(self, owned, kept):
        super().__init__()
        self.owned = owned  # id -> each tensor made while a probe runs (weakly held)
        self.kept = kept  # ids of the traced tensors whose updates run (and are refused)
        self.saved = {}  # id -> (kept tensor, its value before the probe's first update of it)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if args and _in_place(func) and func.__name__ not in _RUN \
                and self._other(args[0]):
            if func.__name__ not in _SHAPES or _same_shape(func, args):
                return args[0]
        out = kwargs.get("out")
        if isinstance(out, torch.Tensor) and self._other(out):
            return out
        if isinstance(out, (tuple, list)) and out and all(
                isinstance(o, torch.Tensor) and self._other(o) for o in out):
            return out if isinstance(out, tuple) else tuple(out)
        # NOTE [kept tensors put back after a probe]
        if args and _in_place(func) and func.__name__ not in _RUN:
            self._save(args[0])
        for target in (out if isinstance(out, (tuple, list)) else (out,)):
            self._save(target)
        result = func(*args, **kwargs)
        for value in (result if isinstance(result, (tuple, list)) else (result,)):
            if isinstance(value, torch.Tensor):
                self.owned[id(value)] = value
        return result

    def _save(self, tensor) -> None:
        if (isinstance(tensor, torch.Tensor) and id(tensor) in self.kept
                and id(tensor) not in self.saved and self.owned.get(id(tensor)) is not tensor):
            self.saved[id(tensor)] = (tensor, tensor.detach().clone())

    def put_back(self) -> None:
        """Give each kept tensor the probe updated its value from before the probe, in the
        graph being traced (NOTE [kept tensors put back after a probe])."""
        # (grad mode changed only where needed: make_fx records each change as a graph node,
        # and a graph that changes grad mode is traced once per mode)
        for tensor, value in self.saved.values():
            if tensor.requires_grad:
                with torch.no_grad():
                    tensor.copy_(value)
            else:
                tensor.copy_(value)
        self.saved.clear()

    def _other(self, tensor) -> bool:
        """Whether `tensor` is a tensor the probe did not make (and not one in `kept`)."""
        if not isinstance(tensor, torch.Tensor) or self.owned.get(id(tensor)) is tensor:
            return False
        return type_in(tensor, (torch.Tensor, torch.nn.Parameter)) or id(tensor) not in self.kept


# NOTE [kept tensors put back after a probe]
# The tensors of objects a probe's bodies reach (`kept`: a plain object's tensor field, a
# module's buffer) are updated as the bodies say, for the caller to refuse the statement by
# their version counters (NOTE [probes updating objects in place] in staging/torch.py). But a
# probe may also end by an exception the caller takes as "stage the statement again another
# way": `objects.ChangedInput`, raised when a body changed an object it only reads (torchmin's
# BFGS loop: `hess.update(s, y)` sets `self.n_updates` and writes `self.H` in place, the first
# staging passes `hess` as an input, the second carries it). The probe's update then stayed in
# the graph, outside the operator, and the statement staged again updated the tensor once
# more: the Hessian scaled twice, `x` wrong, silently (session 26, reduced in session 27 to
# tests/reference/test_jumps.py's probed object updates). So the value a kept tensor had
# before the probe's first update of it is saved, and put back (in the graph) when the probe
# ends, however it ends: the probe leaves no update behind, and the refusal still sees the
# version counter moved.


# in-place ops that may change their target's shape: run as they are, unless the shape stays
# (`beta.resize_as_(rip)` on a tensor of rip's shape changes nothing)
_SHAPES = frozenset({"resize_", "resize_as_", "set_", "squeeze_", "unsqueeze_", "t_",
                     "transpose_", "swapdims_", "swapaxes_", "as_strided_"})
# in-place ops that change no value (autograd's flag): run as they are
_RUN = frozenset({"requires_grad_", "retain_grad"})


def _same_shape(func, args) -> bool:
    """Whether a resize in `_SHAPES` leaves its target's shape as it is."""
    name, target = func.__name__, args[0]
    if name == "resize_as_" and len(args) > 1 and isinstance(args[1], torch.Tensor):
        return tuple(target.shape) == tuple(args[1].shape)
    if name == "resize_" and len(args) > 1:
        size = args[1] if len(args) == 2 else args[1:]
        try:
            return tuple(target.shape) == tuple(size)
        except TypeError:
            return False
    return False


_owned = threading.local()


@contextlib.contextmanager
def skipped_in_probe(kept=()):
    """Within (a probe of a statement's bodies): in-place updates of tensors the probe did not
    make (from outside the traced function, or the function's own read by closure) are
    skipped (NOTE [outside tensors updated in a probe]). Nested probes share what the
    outermost one made. `kept`: traced tensors whose updates still run, for the caller to
    refuse by their version counters (NOTE [probes updating objects in place] in
    staging/torch.py: a module's buffer that its own forward updates)."""
    outer = getattr(_owned, "tensors", None)
    # (by id: a set would compare tensors with ==)
    owned = outer if outer is not None else weakref.WeakValueDictionary()
    _owned.tensors = owned
    mode = _SkipOutsideUpdates(owned, {id(t) for t in kept})
    try:
        with mode:
            yield
    finally:
        _owned.tensors = outer
        mode.put_back()  # (outside the mode, which would run the copy as the probe's own)
