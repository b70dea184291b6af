"""A name a tensor condition binds to one of two existing tensors, then updated in place, updates
the chosen tensor (NOTE [in-place updates of a choice]).

    acc = pos if c else neg     ->  chosen = c
                                    acc = pos if chosen else neg
    acc += v                        acc += v
                                    ac.write_back_choice(acc, chosen, pos, neg)
"""

from __future__ import annotations

import copy

import gast

from .. import templates
from ..analysis.annos import copy_origin
from ..analysis.nodes import WALKED_FIELDS, children, walk, walked_fields
from ..transformer import Converter
from . import unbound
from .generators import leaves_generators_alone

# NOTE [in-place updates of a choice]
# `acc = pos if score > 0 else neg` (or an `if` / `else` binding `acc`, the swap
# `if a < b: a, b = b, a`, `m = max(a, b)`, `acc = c and pos or neg`) makes `acc` the tensor
# `pos` or `neg` itself in Python, and `acc += score` then updates the chosen one (the caller's
# running sums). Staged, the choice is torch.cond's output (or torch.maximum's), a new tensor,
# and the update never reached `pos` or `neg` (silently wrong in the three modes). The
# converter keeps the condition in a local (`chosen`), and after each in-place update of `acc`
# that follows the statement in the same block it writes `acc` back into the tensor each path
# chose:
#     pos.copy_(where(chosen, acc, pos)); neg.copy_(where(chosen, neg, acc))
# which is Python's result whichever path the run takes, and a no-op where the statement ran
# as Python (`chosen` a bool: acc is pos or neg already). A path whose value was computed in
# the branch (`acc = neg * 2`) has nothing to write back. A source the statement itself
# rebinds (the swap) is read before it (`sources`), when it is bound there for certain (a
# parameter, or assigned earlier in the block).
# An `elif` chain, or an `if` with a branch ending in a jump (`return`, `raise`, `break`,
# `continue`: the code after it does not run on that path), is kept by the index of the
# branch taken instead: `chosen = -1` before it, `chosen = i` at the start of each branch that
# falls through, and `write_back_path(acc, chosen, [a, b, c])` (a condition of a later branch
# is evaluated only where Python does). A branch that may bind `acc` to another name's tensor
# in a nested statement (`if d: acc = neg`) leaves that path unknown: an update is refused.
# The other way round, `pos.add_(v)` after the choice (or an update of another choice's name
# whose sources it shares) is an update of `acc` in Python: `acc` is refreshed,
#     acc.copy_(where(chosen, pos, neg))
# after the statement (a compound one too, unless it reads `acc`: refused there).
# The write-back follows a simple statement; an in-place update of `acc` inside a compound
# statement (a loop, an `if`) is refused with a StagingError there; the watch ends where a
# source or `acc` is rebound. The bodies of `if`s, loops and `try`s are rewritten too: there
# the write-back's `copy_` into a tensor from outside the body is an update the body's run
# sees by the tensor's version (NOTE [inputs updated unseen] in runtime/staging/torch.py),
# carried and written back after the statement (torch.compile's dynamo refuses such a body:
# "Encountered input mutation during higher order op tracing"). A returned choice: NOTE
# [returned choices] and [returned paths]. A name (or `d["k"]`, `o.h`) a compound statement
# rebinds on some paths only, its tensor held elsewhere too (a parameter, an alias), is a
# choice between its tensor before and a new one, by the statement's own flag (`_KeptWatch`:
# NOTE [a name kept on some paths of a staged statement] in runtime/operators.py).

# NOTE [returned choices]
# `def pick(x, y, c): return x if c else y` returns the argument itself in Python, and the
# caller's `out = pick(a, b, c); out.add_(1)` updates `a` or `b`. Staged, `pick`'s result is a
# new tensor. The converted `return` marks its result with the condition and the sources
# (`returned_choice`, an attribute of the tensor; under torch.compile of a view of it: dynamo
# refuses an attribute of torch.cond's output itself), and after an
# in-place update of a name bound to a call's result the converted caller writes it back
# (`write_back_returned`: nothing where the result is not marked), into the source's own
# sources too where it was a marked result itself. `y += v` reads the mark from a local that
# holds `y` as the call returned it (under torch.compile the in-place operator gives a new
# variable without the attribute). An update inside a compound statement is refused where
# the result is marked. `if c: return x`: NOTE [returned paths]. Out of reach: the function
# autoconv, torch.export or torch.compile runs itself: its caller is Python, and a graph's
# output cannot be one of its inputs on some paths only.

# NOTE [returned paths]
# `def helper(x, c): if c.sum() > 0: return x` then `return x * 2`: Python returns the argument
# itself on the first path, and the caller's `y = helper(a, c); y.add_(1)` updates `a` there.
# The return converter makes the early return the state of a staged `if` (`retval`), a new
# tensor, and the update missed `a` (silently, in the three modes). Returned choices' mark
# (NOTE [returned choices]) is made by the index of the return taken: `which = -1` first,
# `which = i` before the i-th return, and the return converter's last statement is
# `return ac.returned_path(retval, which, [sources])`; a caller's write-back is then
# `write_back_path` by that index. A returned name is a source where its value at the end is
# the one it returned (nothing stores to it from the top-level statement holding the return
# on, and it is bound for certain before: a parameter or a top-level assignment); a name whose
# every store computes a new tensor (an operator, a torch function that makes no view) has
# nothing to write back; any other (`x = x + 1` in the loop around `if c[i]: return x`, where
# the first iteration returns the argument; `return a if d else b`; a name bound in the
# branch to a call's result or a view) is an unknown path, and a caller's in-place update of
# the result is refused (`write_back_returned`), never silently missed. (A view returned as an
# expression, `return x[0]` under a staged `if`, is a new tensor too and is not followed:
# open.) The function autoconv, torch.export or
# torch.compile runs itself has no converted caller: NOTE [returned choices].
# `which` is an int64 output of the staged `if`, which torch 2.13's cond backward rejected
# under export and AOT autograd ("outs_to_grad length (1) != tangents length (2)"; backed out
# once for it): autoconv's fix of that backward (NOTE [second-order gradients through
# operators] in runtime/staging/operator_autograd.py) drops integer outputs' gradients. Open:
# under torch.export the caller's write-back moves the version of the argument that the
# helper's cond saved for its backward, which then raises torch's "modified by an inplace
# operation" (loud; replay and torch.compile, whose tracer copies operands, are right).
RETURNED_PATHS = "_autoconv_returned_paths"  # (which, [source]) on the FunctionDef


class Unknown(str):
    """A returned value's source the converter cannot follow (the returned expression)."""


def _returned_names(node, params) -> list:
    """[(return statement, source)] of the returns of `node` itself that may give another
    name's tensor (NOTE [returned paths]): the returned name, or an `Unknown` where the
    converter cannot follow it. [] where the function's only return is its last statement
    (none is lowered into a staged `if`)."""
    from .returns import only_final_return

    body = node.body
    if only_final_return(body):
        return []
    own = []  # (top-level index, return statement)
    for k, top in enumerate(body):
        stack = [top]
        while stack:
            n = stack.pop()
            if isinstance(n, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                continue  # (their own returns)
            if isinstance(n, gast.Return):
                own.append((k, n))
                continue
            stack.extend([c for c in children(n)
                          if isinstance(c, (gast.stmt, gast.excepthandler))])
    if not any(_may_be_existing(r.value) for _, r in own):
        return []
    stores = [_names_stored(stmt) for stmt in body]
    declared = {name for n in walk(node) if isinstance(n, (gast.Global, gast.Nonlocal))
                for name in n.names}
    out = []
    for k, ret in sorted(own, key=lambda pair: (pair[1].lineno, pair[1].col_offset)):
        value = ret.value
        if isinstance(value, gast.Name):
            name = value.id
            later = any(name in stored for stored in stores[k:])
            certain = name in params or any(name in stores[j] and _simple(body[j])
                                             for j in range(k))
            if name not in declared and not later and certain:
                source = name
            elif name not in declared and name not in params and _computed_only(node, name):
                source = None
            else:
                source = Unknown(name)
        elif _may_be_existing(value):
            # `return a if d else b`, `return self.buf`, `return x[0]`, `return g(x)`
            source = Unknown(ast_text(value))
        else:
            source = None
        out.append((ret, source))
    # (a return of a new value leaves `which` at -1: nothing to write back on that path)
    return [(ret, source) for ret, source in out if source is not None]


# torch functions whose result may be a view of an argument (an in-place update of it reaches
# the argument in Python)
_VIEWS = frozenset({
    "reshape", "view_as_real", "view_as_complex", "narrow", "squeeze", "unsqueeze", "flatten",
    "unflatten", "select", "t", "transpose", "swapaxes", "swapdims", "permute", "movedim",
    "moveaxis", "chunk", "split", "tensor_split", "unbind", "as_strided", "diagonal", "detach",
    "real", "imag", "broadcast_to", "atleast_1d", "atleast_2d", "atleast_3d", "hsplit",
    "vsplit", "dsplit", "ravel", "adjoint", "conj", "resolve_conj", "resolve_neg", "alias",
    "broadcast_tensors", "meshgrid",
})


def _computed_only(node, name) -> bool:
    """Whether every store to `name` in `node` binds a new tensor (`name = a * 2`,
    `name = torch.zeros(n)`, `name += v` of such), so it is never another name's tensor."""
    accounted = set()  # the targets of `name = <new value>` and `name += v`
    for n in walk(node):
        if isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Name):
            accounted.add(id(n.target))  # (in place: the tensor an assignment made)
        elif (isinstance(n, gast.Assign) and not _may_be_existing(n.value)
              and all(isinstance(t, gast.Name) for t in n.targets)):
            accounted.update(id(t) for t in n.targets)
    for n in walk(node):
        if (isinstance(n, gast.Name) and n.id == name and isinstance(n.ctx, _STORES)
                and id(n) not in accounted):
            return False  # another name's value, a loop target, with-as, a walrus, del
        if isinstance(n, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)) and (
                n.name == name and n is not node):
            return False
    return True


def _may_be_existing(value) -> bool:
    """Whether a returned expression may be a tensor that exists before the `return` (a name,
    an attribute, an item or view, a call's result), not a new one (an operator, a torch
    function that makes no view, a method that makes a new tensor)."""
    if value is None or isinstance(value, (gast.Tuple, gast.List, gast.Dict, gast.Set,
                                           gast.ListComp, gast.DictComp, gast.SetComp,
                                           gast.GeneratorExp, gast.JoinedStr, gast.Lambda)):
        return False  # (a new container: its items are not the caller's names)
    if _new_value(value):
        return False
    if isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute) and (
            value.func.attr in _NEW_METHODS):
        return False
    if isinstance(value, gast.Call) and isinstance(value.func, gast.Name) and (
            value.func.id in _NEW_BUILTINS):
        return False  # (numbers, text, containers: never a tensor updated in place)
    return True


_NEW_BUILTINS = frozenset({
    "len", "int", "float", "bool", "complex", "str", "repr", "abs", "round", "tuple", "list",
    "dict", "set", "frozenset", "sorted", "range", "enumerate", "zip", "map", "filter",
    "reversed", "isinstance", "hasattr", "type", "id", "hash", "format",
})

# tensor methods whose result is a new tensor (or a Python value), never the receiver
_NEW_METHODS = frozenset({
    "clone", "sum", "mean", "prod", "norm", "std", "var", "abs", "exp", "log", "sqrt",
    "sigmoid", "tanh", "relu", "neg", "pow", "matmul", "mm", "bmm", "item", "tolist",
    "numel", "dim", "size", "softmax", "log_softmax", "logsumexp", "cumsum", "argmax",
    "argmin", "all", "any", "square", "reciprocal", "sign", "floor", "ceil", "round",
})


def _new_value(value) -> bool:
    """Whether expression `value` makes a new object (an operator, a constant, a torch
    function that makes no view)."""
    if isinstance(value, (gast.BinOp, gast.UnaryOp, gast.Compare, gast.Constant)):
        return True
    if isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute):
        func = value.func
        return (isinstance(func.value, gast.Name) and func.value.id == "torch"
                and func.attr not in _VIEWS)
    return False


def ast_text(value) -> str:
    """The source of expression `value`, for a message."""
    import ast

    try:
        return ast.unparse(gast.gast_to_ast(value))
    except Exception:  # (only a message's text)
        return "the returned value"


_WRITE_BACK = "ac.write_back_choice(target, chosen, if_true, if_false)"
_WRITE_BACK_ITEM = "ac.write_back_item(target, items, chosen)"
_REFRESH_ITEM = "ac.refresh_item(target, items, chosen, held, stored, rebound)"
_REFRESH_AFTER_CALL = "ac.refresh_item_after_call(target, items, chosen, versions, name)"
_REFRESH_HELD = "ac.refresh_held(target, chosen, before, held, seen)"
_REFUSE_HELD = "ac.refuse_held(target, chosen, before, held, name, sources, where, seen)"
_REFUSE_ITEM_REFRESH = ("ac.refuse_item_refresh(target, items, chosen, name, sources, where, "
                        "held)")
_WRITE_BACK_PATH = "ac.write_back_path(target, chosen, sources)"
_REFRESH = "ac.refresh_choice(target, chosen, if_true, if_false)"
_REFUSE = "ac.refuse_choice_update(target, chosen, name, sources)"
_RETURNED = "ac.returned_choice(value, chosen, if_true, if_false)"
_WRITE_BACK_RETURNED = "ac.write_back_returned(target, name)"
_WRITE_BACK_HELD = "ac.write_back_returned(target, name, held)"
_REFUSE_RETURNED = "ac.refuse_returned_update(target, name)"
_REFUSE_WHERE = "ac.refuse_choice_update(target, chosen, name, sources, where)"
# (an item of a tensor may be a copy in Python, which nothing refuses: NOTE [items that are
# copies] in runtime/choices.py)
_REFUSE_ITEM = "ac.refuse_item_update(target, items, chosen, name, sources, where)"


# NOTE [a refreshed name is not read]
# `ac.refresh_choice(w, ...)` after an update of `u` stands for no read of the user's: in
# Python `w` is `u` itself where the tensor condition bound it, and nothing where it did not.
# The bound-flag pass (converters/unbound.py) took its `w` for a read and checked it, so a
# graph taking the path that left `w` unbound raised UnboundLocalError where Python returns
# (`if c: w = u; w[0] = z` then `u.mul_(2)`: brk49 s02). The name is passed as it is, the
# placeholder on such a path, which the refresh's `where` leaves unread.
def _target_unchecked(statements: list) -> list:
    """`statements` (one `ac.refresh_choice(target, ...)`) with `target` left unchecked by the
    bound-flag pass (NOTE [a refreshed name is not read])."""
    for statement in statements:
        call = getattr(statement, "value", None)
        if isinstance(call, gast.Call) and call.args and isinstance(call.args[0], gast.Name):
            setattr(call.args[0], unbound.UNCHECKED, True)
    return statements


def _names_stored(node) -> set:
    """Names `node` stores to (assignments, loop targets, with-as, del), nested functions and
    classes left out (their own scopes), except their own names."""
    out = set()
    # (a stack over the nodes' __dict__, not a recursion through ast's per-node generators:
    # this runs on every statement of the function)
    stack = [node]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        n = pop()
        cls = n.__class__
        if cls in _OWN_SCOPES:
            out.add(n.name)
            continue
        if cls is gast.Lambda or cls is gast.AnnAssign and n.value is None:
            # (`y: T` alone binds nothing: taken for a binding, a name first bound in a loop
            # was read before its first trip, UnboundLocalError where Python runs: torch-kf's
            # `saver: GaussianState`, tester55)
            continue
        if cls is gast.Name and n.ctx.__class__ in _STORES:
            out.add(n.id)
        attrs = n.__dict__
        for field in WALKED_FIELDS.get(cls) or walked_fields(cls):
            value = attrs.get(field)
            if value.__class__ is list:
                extend([v for v in value if v.__class__ in _ENTERED])
            elif value.__class__ in _ENTERED:
                push(value)
    return out


# Node classes `_names_stored` enters: those with fields (contexts and operators are read from
# their parent)
_ENTERED = frozenset(cls for cls in vars(gast).values()
                     if isinstance(cls, type) and issubclass(cls, gast.AST) and cls._fields)


_OWN_SCOPES = (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)
_STORES = (gast.Store, gast.Del)


def _bare_bindings(branch) -> dict:
    """{name: source name, None where the branch computes its value, or _UNKNOWN where a
    nested statement binds it} of a branch."""
    out = {}
    for stmt in branch:
        pairs = []
        if isinstance(stmt, gast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
            if isinstance(target, gast.Name) and isinstance(value, gast.Name):
                pairs = [(target.id, value.id)]
            elif (isinstance(target, (gast.Tuple, gast.List))
                  and isinstance(value, (gast.Tuple, gast.List))
                  and len(target.elts) == len(value.elts)
                  and all(isinstance(e, gast.Name) for e in target.elts + value.elts)):
                pairs = [(t.id, v.id) for t, v in zip(target.elts, value.elts)]
        if pairs:
            # simultaneous: the sources are read before any target is stored
            current = {t: out.get(v, v) for t, v in pairs}
            out.update(current)
            continue
        # a simple statement computes the name's value; a compound one that may bind it to
        # another name's tensor (`if d: acc = neg`) leaves the path unknown
        for name in _names_stored(stmt):
            out[name] = None if _simple(stmt) or not _may_alias(stmt, name) else _UNKNOWN
    return out


def _bare(value) -> bool:
    """Whether `value` may be another name's object itself (`neg`, `pos if c else neg`)."""
    if isinstance(value, gast.Name):
        return True
    if isinstance(value, gast.IfExp):
        return _bare(value.body) or _bare(value.orelse)
    if isinstance(value, gast.BoolOp):
        return any(_bare(v) for v in value.values)
    if isinstance(value, (gast.Tuple, gast.List)):
        return any(_bare(v) for v in value.elts)
    return False


def _may_alias(stmt, name) -> bool:
    """Whether a statement nested in `stmt` may bind `name` to another name's object."""
    for n in walk(stmt):
        if isinstance(n, gast.Assign) and _bare(n.value) and any(
                isinstance(t, gast.Name) and t.id == name
                or isinstance(t, (gast.Tuple, gast.List))
                and any(isinstance(e, gast.Name) and e.id == name for e in t.elts)
                for t in n.targets):
            return True
    return False


def _in_place_of(node, name) -> bool:
    """Whether statement `node` (nested statements included) updates `name`'s value in place."""
    for n in walk(node):
        if isinstance(n, gast.AugAssign):
            target = n.target
            while isinstance(target, (gast.Subscript, gast.Attribute)):
                target = target.value
            if isinstance(target, gast.Name) and target.id == name:
                return True
        elif isinstance(n, (gast.Assign, gast.Delete)):
            for target in n.targets:
                if isinstance(target, (gast.Subscript, gast.Attribute)):
                    while isinstance(target, (gast.Subscript, gast.Attribute)):
                        target = target.value
                    if isinstance(target, gast.Name) and target.id == name:
                        return True
        elif isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (isinstance(n.func.value, gast.Name) and n.func.value.id == name
                    and method.endswith("_") and not method.startswith("_")):
                return True
    return False


def _given_to_a_call(stmt, name) -> bool:
    """Whether `stmt` is a call statement given `name` itself as an argument (`scale_(y)`),
    which may update its tensor in place."""
    if not (isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call)):
        return False
    call = stmt.value
    return any(isinstance(a, gast.Name) and a.id == name
               for a in [*call.args, *(k.value for k in call.keywords)])


# Builtins that only read their arguments: `len(items)` neither updates a tensor in place nor
# rebinds a list's item (tester31 s04: `if i == len(u)` after `x = u[i]` was refused under
# torch.compile as a call that may rebind one).
_READING_BUILTINS = frozenset((
    "len", "isinstance", "type", "id", "hash", "repr", "str", "bool", "int", "float", "abs",
    "min", "max", "sum", "any", "all", "sorted", "tuple", "range", "enumerate", "zip", "print"))


def _calls_given(node, name, reading=frozenset()) -> bool:
    """Whether statement `node` (nested statements included) calls a function given `name`
    itself as an argument, or a view method's view of it (`helper(items)`, `y = f(data) + 1`,
    `helper(data.view(2, -1))`; not a method of `name`, which `_tensor_update_of` reads),
    which may update its tensors in place. Calls of the builtins named in `reading` (those of
    `_READING_BUILTINS` the function does not rebind) do not."""
    for n in walk(node):
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Name) and n.func.id in reading:
            continue
        if isinstance(n, gast.Call) and any(
                isinstance(a, gast.Name) and a.id == name or _viewed(a, name)
                for a in [*n.args, *(k.value for k in n.keywords)]):
            return True
    return False


def _viewed(node, name) -> bool:
    """Whether `node` is a chain of subscripts and view methods of `name` with a view method
    in it (`data.view(2, -1)`, `data.t()[0]`): a view of its tensor, whose version counter it
    shares (a call given one is followed as one given `name`: NOTE [rows read with a traced
    index, their tensor updated after] in runtime/choices.py)."""
    methods = False
    while True:
        if (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
                and node.func.attr in _VIEW_METHODS):
            node, methods = node.func.value, True
        elif isinstance(node, gast.Subscript):
            node = node.value
        else:
            return methods and isinstance(node, gast.Name) and node.id == name


def _tensor_updates(node) -> set:
    """The names whose tensors statement `node` may update in place (`_tensor_update_of`)."""
    out = set()
    for n in walk(node):
        targets = ([n.target] if isinstance(n, gast.AugAssign) else n.targets
                   if isinstance(n, gast.Assign) else [])
        for target in targets:
            if isinstance(n, gast.AugAssign) and isinstance(target, gast.Name):
                out.add(target.id)
            while isinstance(target, gast.Subscript):
                target = target.value
                if isinstance(target, gast.Name):
                    out.add(target.id)
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (isinstance(n.func.value, gast.Name) and method.endswith("_")
                    and not method.startswith("_")):
                out.add(n.func.value.id)
    return out


def _tensor_update_of(node, name) -> bool:
    """Whether statement `node` (nested statements included) may update the tensor `name` is
    bound to in place: `name += v`, `name[i] = v`, `name.add_(v)` (not `name.attr = v`)."""
    for n in walk(node):
        targets = ([n.target] if isinstance(n, gast.AugAssign) else n.targets
                   if isinstance(n, gast.Assign) else [])
        for target in targets:
            if isinstance(n, gast.AugAssign) and isinstance(target, gast.Name):
                if target.id == name:
                    return True
            while isinstance(target, gast.Subscript):
                target = target.value
                if isinstance(target, gast.Name) and target.id == name:
                    return True
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (isinstance(n.func.value, gast.Name) and n.func.value.id == name
                    and method.endswith("_") and not method.startswith("_")):
                return True
    return False


def _updatable(paths, sources) -> list:
    """The sources among `paths` whose own in-place updates `refresh_choice` follows: names
    of tensors from before the choice (not a name the choice binds itself: the swap)."""
    if isinstance(paths, _Item):
        return []
    return [p for p in dict.fromkeys(paths) if p is not None and p != _UNKNOWN
            and p not in sources]


def _reads(node, name) -> bool:
    return any(isinstance(n, gast.Name) and n.id == name and isinstance(n.ctx, gast.Load)
               for n in walk(node))


def _simple(node) -> bool:
    return isinstance(node, (gast.Expr, gast.Assign, gast.AugAssign, gast.AnnAssign))


def _has_named_expr(node) -> bool:
    return any(isinstance(n, gast.NamedExpr) for n in walk(node))


_KEPT = "chosen = ac.kept_object(name, before)"


_KEPT_ITEM = "chosen = ac.kept_object(path, before, True)"
_WRITE_BACK_KEPT = "ac.write_back_kept(target, chosen, before, name, alias)"


class _Everything(frozenset):
    """Every name (the locals where no function is being converted)."""

    def __contains__(self, item) -> bool:
        return True


class _KeptWatch:
    """A name (or with `node`, an item or attribute `d["k"]`, `o.h`) a compound statement may
    leave bound to its object on some paths (NOTE [a name kept on some paths of a staged
    statement]): the local holding that object, the flag of whether the name still is it, and
    the other names bound to it (its aliases)."""

    def __init__(self, name, before, chosen, aliases, node=None, holders=()):
        self.name, self.before, self.chosen, self.aliases = name, before, chosen, set(aliases)
        self.node, self.holders = node, set(holders)
        self.source_text = ("(on the paths of an earlier staged statement that do not rebind "
                            "it) its own tensor from before that statement")


def _path(node):
    """The text of `node` where it is an item of a name by a constant key (`d["k"]`, `l[0]`)
    or an attribute of a name (`o.h`), else None."""
    if isinstance(node, gast.Attribute) and isinstance(node.value, gast.Name):
        return f"{node.value.id}.{node.attr}"
    if (isinstance(node, gast.Subscript) and isinstance(node.value, gast.Name)
            and isinstance(node.slice, gast.Constant)):
        return f"{node.value.id}[{node.slice.value!r}]"
    return None


def _paths_stored(stmt) -> dict:
    """{text: node} of the items and attributes (`_path`) `stmt` sets (not `+=`: in place)."""
    out = {}
    for n in walk(stmt):
        if isinstance(n, gast.Assign):
            for target in n.targets:
                for t in walk(target):
                    path = _path(t) if isinstance(getattr(t, "ctx", None), gast.Store) else None
                    if path is not None:
                        out.setdefault(path, t)
    return out


def _always_sets(block, path) -> bool:
    """`_always_rebinds` of an item or attribute."""
    return _every_path_binds(block, lambda stmt: isinstance(stmt, gast.Assign)
                             and path in _paths_stored(stmt))


def _path_update_of(node, path) -> bool:
    """`_tensor_update_of` of an item or attribute: `d["k"] += v`, `d["k"][i] = v`,
    `d["k"].add_(v)`."""
    for n in walk(node):
        targets = ([n.target] if isinstance(n, gast.AugAssign) else n.targets
                   if isinstance(n, gast.Assign) else [])
        for target in targets:
            if isinstance(n, gast.AugAssign) and _path(target) == path:
                return True
            while isinstance(target, gast.Subscript):
                target = target.value
                if _path(target) == path:
                    return True
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (_path(n.func.value) == path and method.endswith("_")
                    and not method.startswith("_")):
                return True
    return False


def _set_from_a_name(prior, path) -> bool:
    """Whether one of the statements `prior` sets `path` to a name's tensor (`d = {"k": y}`,
    `d["k"] = y`, `o.h = y`, `l = [y]`): another reference to it."""
    root = path.split(".")[0].split("[")[0]
    for stmt in prior:
        if not (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1):
            continue
        target, value = stmt.targets[0], stmt.value
        if _path(target) == path and isinstance(value, gast.Name):
            return True
        if isinstance(target, gast.Name) and target.id == root:
            if isinstance(value, gast.Dict) and any(
                    isinstance(k, gast.Constant) and path == f"{root}[{k.value!r}]"
                    and isinstance(v, gast.Name) for k, v in zip(value.keys, value.values)):
                return True
            if isinstance(value, gast.List) and any(
                    path == f"{root}[{i!r}]" and isinstance(v, gast.Name)
                    for i, v in enumerate(value.elts)):
                return True
    return False


def _path_aliases(prior, path) -> set:
    """The names bound to the tensor of `path` by plain assignments (`alias = d["k"]`) among
    the statements `prior`, neither they nor `path` rebound since."""
    out = set()
    for stmt in prior:
        if (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name) and _path(stmt.value) == path):
            out.add(stmt.targets[0].id)
            continue
        stored = _names_stored(stmt)
        if path in _paths_stored(stmt) or path.split(".")[0].split("[")[0] in stored:
            out = set()
        out -= stored
    return out


def _always_rebinds(block, name) -> bool:
    """Whether every path through `block` (a list of statements) rebinds `name` by a simple
    assignment or leaves the block by a jump (a staged statement's flag for it would be False
    on every path)."""
    return _every_path_binds(block, lambda stmt: isinstance(stmt, (gast.Assign, gast.AnnAssign))
                             and name in _names_stored(stmt))


def _every_path_binds(block, binds) -> bool:
    """Whether every path through `block` reaches a statement `binds` says binds, or leaves the
    block by a jump; an `if` counts where both its branches do."""
    for stmt in block:
        if isinstance(stmt, (gast.Return, gast.Raise, gast.Break, gast.Continue)) or binds(stmt):
            return True
        if isinstance(stmt, gast.If) and _every_path_binds(stmt.body, binds) and (
                _every_path_binds(stmt.orelse, binds)):
            return True
    return False


# NOTE [aliases bound before an enclosing statement]
# `alias = y`, then `for i in range(3): if c > i: y = v * 2` / `alias.add_(1)` (a loop run as
# Python; fuzz47): the watch of `y` kept on some paths of the staged `if` (NOTE [a name kept
# on some paths of a staged statement]) knew only the aliases its own block bound, and
# `alias` is bound before the loop: on the trips that kept `y`, Python's `y` saw the update,
# autoconv's (the cond's new tensor) did not, silently (3 for 6). A nested block's aliases
# are those bound before it too (the statements before the enclosing ones, then its own).
# In a loop body that relation may not hold on a later trip (`y` rebound on an earlier
# one): the refresh of `y` from its object before the statement, on the paths that kept it,
# then reads the same value it holds (`y` is that object on those paths), which is right.
# A loop's target is bound anew at each trip (`_header_stores`).


_BLOCK_STATEMENTS = frozenset({gast.If, gast.For, gast.AsyncFor, gast.While, gast.With,
                               gast.AsyncWith, gast.Try, gast.TryStar})


def _header_stores(stmt) -> list:
    """Stand-ins for what a compound statement binds before its body runs (a `for`'s target,
    a `with`'s names): assignments that end the aliases `_aliases` finds."""
    targets = []
    if isinstance(stmt, (gast.For, gast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (gast.With, gast.AsyncWith)):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars is not None]
    return [gast.Assign(targets=[gast.Name(id=name, ctx=gast.Store(), annotation=None,
                                           type_comment=None)],
                        value=gast.Constant(value=None, kind=None), type_comment=None)
            for target in targets for name in sorted(_names_stored(target))]


def _aliases(prior, name) -> set:
    """The names bound to `name`'s object by plain assignments (`alias = y`, `y = x`) among
    the statements `prior` of a block, not rebound since."""
    groups = {}  # {name: the set of names bound to its object}
    for stmt in prior:
        if (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name) and isinstance(stmt.value, gast.Name)):
            target, source = stmt.targets[0].id, stmt.value.id
            if target == source:
                continue
            groups.get(target, set()).discard(target)
            group = groups.setdefault(source, {source})
            group.add(target)
            groups[target] = group
            continue
        for stored in _names_stored(stmt):
            if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name) and (
                    stmt.target.id == stored):
                continue  # (in place for a tensor)
            groups.get(stored, set()).discard(stored)
            groups.pop(stored, None)
    return groups.get(name, {name}) - {name}


def _holders(prior, name) -> set:
    """The names bound, by plain assignments among the statements `prior` of a block, to a
    value that may hold `name`'s tensor or a view of it (`row = y[:2]`, `t = y.T`, `box = [y]`,
    `h = f(y)`: `_gives_away`), neither they nor `name` rebound since (NOTE [views of a name
    kept on some paths] in runtime/choices.py). Plain aliases (`alias = y`) are `_aliases`."""
    out = set()
    for stmt in prior:
        stored = _names_stored(stmt)
        if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name):
            stored = stored - {stmt.target.id}  # (in place for a tensor)
        if name in stored:
            out = set()
            continue
        out -= stored
        if (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name)
                and not isinstance(stmt.value, gast.Name) and _gives_away(stmt.value, name)):
            out.add(stmt.targets[0].id)
    return out


def _view_bases(prior, name) -> set:
    """The name whose tensor `name` was bound to a view of by the last binding of `name` among
    the statements `prior` of a block (`u = t[1:]`, `u = t.view(-1)`: {`t`}), neither rebound
    since; else empty. An in-place update of the base is one of `name`'s tensor (NOTE [views of
    a name kept on some paths] in runtime/choices.py)."""
    for k in range(len(prior) - 1, -1, -1):
        stmt = prior[k]
        if name not in _names_stored(stmt):
            continue
        if not (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name)):
            return set()
        node, steps = stmt.value, False
        while True:
            if (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
                    and node.func.attr in _VIEW_METHODS):
                node = node.func.value
            elif isinstance(node, gast.Subscript) or (
                    isinstance(node, gast.Attribute) and node.attr in _VIEW_METHODS):
                node = node.value
            else:
                break
            steps = True
        if not (steps and isinstance(node, gast.Name)) or node.id == name or any(
                node.id in _names_stored(later) and not (
                    isinstance(later, gast.AugAssign) and isinstance(later.target, gast.Name))
                for later in prior[k + 1:]):
            return set()
        return {node.id}
    return set()


def _root(node):
    """The name at the root of `node`'s items and attributes (`box[0].h` -> `box`), or None."""
    while isinstance(node, (gast.Subscript, gast.Attribute)):
        node = node.value
    return node.id if isinstance(node, gast.Name) else None


def _updates_through(stmt, name) -> bool:
    """Whether `stmt` may update in place a tensor reached through `name` (a holder:
    `_holders`): `name.add_(v)`, `name[0].add_(v)`, `name[i] = v`, `name += v`,
    `name[0] += v`, or a call statement given `name` or an item of it (`out=name`,
    `helper(name[0])`)."""
    if _updates_by_operator(stmt, name):
        return True
    if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call):
        call = stmt.value
        return any(_root(a) == name for a in [*call.args, *(k.value for k in call.keywords)])
    return False


# Tensor methods that give a view of their receiver: an update of the view is one of the
# receiver's (`data.t()[0].fill_(0)`, `data.view(-1)[0] = v`: tester21b s10, s11, wrong under
# torch.compile, where the row read by index is refreshed by name only)
_VIEW_METHODS = frozenset({
    "view", "view_as", "t", "transpose", "permute", "squeeze", "unsqueeze", "narrow", "select",
    "expand", "expand_as", "diagonal", "unfold", "as_strided", "detach", "movedim", "swapdims",
    "swapaxes", "unflatten", "flatten", "reshape", "T", "mT", "H", "mH", "real", "imag",
    "data"})


def _view_root(node):
    """`_root` through view methods too (`data.t()[0]` -> `data`)."""
    while True:
        if (isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute)
                and node.func.attr in _VIEW_METHODS):
            node = node.func.value
        elif isinstance(node, (gast.Subscript, gast.Attribute)):
            node = node.value
        else:
            return node.id if isinstance(node, gast.Name) else None


def _updates_by_operator(stmt, name) -> bool:
    """`_updates_through` without calls given `name`: by an operator or a method's own
    update (`name[0].add_(v)`, `name[i] = v`, `name += v`), also through a view of it
    (`name.t()[0].fill_(0)`)."""
    for n in walk(stmt):
        if isinstance(n, gast.AugAssign) and _view_root(n.target) == name:
            return True
        if isinstance(n, gast.Assign) and any(
                isinstance(t, gast.Subscript) and _view_root(t) == name for t in n.targets):
            return True
        if isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute):
            method = n.func.attr
            if (method.endswith("_") and not method.startswith("_")
                    and _view_root(n.func.value) == name):
                return True
    return False


def _text(node) -> str:
    return gast.unparse(node).strip()


def _held_node(holder):
    """The expression of `holder` a guard is given, its root name read as it is (NOTE [held
    names a statement may leave unread])."""
    node = templates.name(holder) if isinstance(holder, str) else copy.deepcopy(holder)
    root = node
    while isinstance(root, (gast.Subscript, gast.Attribute)):
        root = root.value
    if isinstance(root, gast.Name):
        setattr(root, unbound.UNCHECKED, True)
    return node


# NOTE [held names a statement may leave unread]
# The guards before and after a statement that updates in place a name that may hold a chosen
# row (`ac.refuse_item_refresh(..., m)`, `ac.refresh_held(..., m)`) are given that name, and run
# whether or not the statement reads it. Python reads it only where the statement updates it:
# torch_optimizer's SWATS binds `max_exp_avg_sq` only `if amsgrad:` and updates it (`out=`) only
# under another `if amsgrad:` inside a tensor `if`; a checked read (`ac.ld`, unbound.py) in the
# guard raised UnboundLocalError where amsgrad is False and Python runs (tester39 s01). The
# guard's read is unchecked: an unbound name is its Undefined placeholder there, which holds no
# tensor and so is never followed (runtime/choices.py, `_row_followed`).


def _binds_root(stmt, node) -> bool:
    """Whether statement `stmt` binds the root name of `node` (`o` of `o.h`)."""
    return _root(node) in _names_stored(stmt)


def _outside_updates(stmt, local) -> list:
    """The expressions whose tensors `stmt` updates in place (`g.add_(v)`, `g[i] = v`,
    `g += v`, `out=g`; trailing items dropped: `g[0].add_(v)` -> `g`) that may hold a tensor
    from outside the function the converter cannot follow: rooted at a name not local to it
    (a global, a closure's), or reached through an attribute (`self.buf`). NOTE [views of a
    name kept on some paths] in runtime/choices.py."""
    found = {}

    def add(target):
        while isinstance(target, gast.Subscript):
            target = target.value
        root = _root(target)
        if root is None:
            return
        if isinstance(target, gast.Attribute) or (isinstance(target, gast.Name)
                                                  and root not in local):
            found.setdefault(_text(target), target)

    for n in walk(stmt):
        if isinstance(n, gast.AugAssign):
            add(n.target)
        elif isinstance(n, gast.Assign):
            for t in n.targets:
                if isinstance(t, gast.Subscript):
                    add(t)
        elif isinstance(n, gast.Call):
            if isinstance(n.func, gast.Attribute) and n.func.attr.endswith("_") and (
                    not n.func.attr.startswith("_")):
                add(n.func.value)
            for k in n.keywords:
                if k.arg == "out":
                    add(k.value)
    return list(found.values())


def _shared(prior, name, entry=None) -> bool:
    """Whether `name`'s object before the statement after `prior` (the statements of its
    block before it) may be held by something else: a parameter or a name bound outside the
    function, a value that may be another's (`y = x[0]`, `y = self.buf`, `y = f(x)`), or one
    given away since its binding (`alias = y`, `f(y)`, `[y]`, `y[0]`, `y.view(-1)`); not a new
    tensor only read by operators and new-value methods since. `entry`: where the block
    starts, for a name bound outside it (NOTE [names private to the function])."""
    for k in range(len(prior) - 1, -1, -1):
        stmt = prior[k]
        if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name) and (
                stmt.target.id == name):
            continue  # (in place for a tensor)
        if name not in _names_stored(stmt):
            continue
        if not isinstance(stmt, gast.Assign) and _keeps_private([stmt], name):
            continue  # (the object from before or a new one: NOTE [names private to the function])
        if not (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name)
                and not _may_be_existing(stmt.value)):
            return True
        return any(_gives_away(later, name) for later in prior[k + 1:]) or _gives_away(
            stmt.value, name)
    if entry is None or any(_gives_away(stmt, name) for stmt in prior):
        return True
    return not _keeps_private(entry.head, name) or _shared(entry.prior, name, entry.outer)


# NOTE [a name kept across staged statements]
# `alias = y`, then `if c > 0: y = v * 2`, then `if c > 3: y = v * 3`, then `y.add_(1)`: on
# the paths that kept `y` through both statements, the update reaches `alias`. Each statement
# had its watch (NOTE [a name kept on some paths of a staged statement] in
# runtime/operators.py), but the second statement's rebinding ended the first's, and the
# second's object from before is the first's staged result, a new tensor: the update was
# written back into it and missed `alias` (every mode; the second watch alone also misses
# `alias.add_(1)`, `alias` no longer an alias of `y` there). A later compound statement that
# may leave the name bound (not an `if` that rebinds it on every path) renews the watch
# instead: the statement flags the name too, and after it `kept_object(y, y_before)` with the
# first object follows the marks back through both statements (the first's flag and the
# second's). Found writing the regression test of fuzz seed 4701, program 20.


# NOTE [names private to the function]
# The body of an `if` or a loop is a block of its own, and a name bound before the statement
# is bound outside that block. Taken as held elsewhere (as a parameter is), `c = torch.tensor(3)`
# then `if x < 1:` holding a staged `for` that rebinds `c` on some trips and `c %= 6` after it
# watched `c` as a kept name (NOTE [a name kept on some paths of a staged statement]) and
# refused the next compound statement's `c -= 1` (the StagingError, or a graph specialised on
# that statement's test: fuzz seed 3401, program 145), where the same lines in the function's
# own block converted and agreed. A nested block asks the enclosing one (`_Entry`): the name is
# private where it is there and the statement's parts the body may run after (an `if`'s test;
# for a loop, the whole loop: an earlier trip ran its body) give it away nowhere and bind it
# only to new values. So does a compound statement of the block before it that binds the name
# only to new values and gives it away nowhere (`if x > 1: c = y % 5`, then `if y > 0: c = y *
# 2`, then `if x > 0: c += 3`): after it the name is its object from before or a new one, so
# the search goes on above it (it was taken as held elsewhere, and the `c += 3` refused: fuzz
# seed 4701, program 20).


class _Entry:
    """Where a nested block starts: the statements of the enclosing block before its statement
    (`prior`), the parts of that statement that may run before the block (`head`), and the
    enclosing block's own entry (`outer`; None for the function's body)."""

    __slots__ = ("prior", "head", "outer")

    def __init__(self, prior, head, outer):
        self.prior, self.head, self.outer = prior, head, outer


def _keeps_private(nodes, name) -> bool:
    """Whether `nodes` neither give away `name`'s object (`_gives_away`) nor bind `name` but to
    a new value (`name = a + 1`) or in place (`name += 1`)."""
    for node in nodes:
        if _gives_away(node, name):
            return False
        for n in walk(node):
            if isinstance(n, (gast.Global, gast.Nonlocal)) and name in n.names or isinstance(
                    n, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef, gast.Lambda)) and any(
                    isinstance(m, gast.Name) and m.id == name for m in walk(n)):
                return False  # (another scope may bind or hold it)
            if isinstance(n, gast.Assign):
                if any(isinstance(t, gast.Name) and t.id == name for t in n.targets) and not (
                        len(n.targets) == 1 and not _may_be_existing(n.value)):
                    return False
            elif isinstance(n, gast.AugAssign):
                continue
            elif isinstance(n, gast.Name) and n.id == name and not isinstance(n.ctx, gast.Load):
                if not isinstance(_store_parent(node, n), (gast.Assign, gast.AugAssign)):
                    return False  # (a loop's target, `with ... as`, `:=`, unpacking, `del`)
    return True


def _store_parent(root, target):
    """The node under `root` whose direct child is `target`."""
    for n in walk(root):
        if any(child is target for child in children(n)):
            return n
    return None


_OPERANDS = (gast.BinOp, gast.UnaryOp, gast.Compare, gast.BoolOp)


def _gives_away(node, name) -> bool:
    """Whether `node` reads `name` other than as an operator's operand, the receiver of a
    method that makes a new value or updates in place, or an argument of a torch function that
    makes no view (a read that may let something else hold its object)."""
    parents = {}
    for n in walk(node):
        for child in children(n):
            parents[id(child)] = n
    for n in walk(node):
        if not (isinstance(n, gast.Name) and n.id == name and isinstance(n.ctx, gast.Load)):
            continue
        parent = parents.get(id(n))
        if isinstance(parent, _OPERANDS) or isinstance(parent, gast.AugAssign):
            continue
        if isinstance(parent, gast.Subscript) and not isinstance(parent.ctx, gast.Load):
            continue  # (`y[i] = v`: an update)
        if isinstance(parent, gast.Attribute):
            call = parents.get(id(parent))
            if parent.attr in ("shape", "dtype", "device", "ndim", "requires_grad"):
                continue
            if isinstance(call, gast.Call) and call.func is parent and (
                    parent.attr in _NEW_METHODS or parent.attr.endswith("_")
                    and isinstance(parents.get(id(call)), gast.Expr)):
                continue
            if not isinstance(parent.ctx, gast.Load):
                continue
        if isinstance(parent, gast.Call) and n is not parent.func and _new_of_items(parent):
            continue
        if isinstance(parent, (gast.List, gast.Tuple)) and isinstance(parent.ctx, gast.Load):
            # (`torch.stack([y, z])`, `sum([y, z])`: a list only the call reads; fuzz seed
            # 3401, program 145)
            call = parents.get(id(parent))
            if isinstance(call, gast.Call) and any(a is parent for a in call.args) and (
                    _new_of_items(call)):
                continue
        return True
    return False


# builtins whose result, given tensors (or a list of them), is a new value, never one of them
_NEW_OF_TENSORS = frozenset({"len", "abs", "sum", "int", "float", "bool", "round", "str",
                             "repr", "format"})


def _new_of_items(call) -> bool:
    """Whether `call` makes a new value from its arguments (`_new_value`, or a builtin of
    `_NEW_OF_TENSORS`), holding none of them."""
    return _new_value(call) or (isinstance(call.func, gast.Name)
                                and call.func.id in _NEW_OF_TENSORS)


_UNKNOWN = "<bound in a nested statement>"  # a path whose binding the converter cannot follow


class _Paths(tuple):
    """The sources of a name an `if` / `elif` chain binds, by the index of the branch taken
    (`chosen` is that index: -1 where none bound it or the branch jumped away)."""


def _ends_in_jump(branch) -> bool:
    return bool(branch) and isinstance(branch[-1], (gast.Return, gast.Raise, gast.Break,
                                                    gast.Continue))


def _yields(nodes) -> bool:
    return any(isinstance(n, (gast.Yield, gast.YieldFrom, gast.Await))
               for node in nodes for n in walk(node))


class _Item(str):
    """The source of a name bound to an item of the list `items` (`x = items[k]`)."""

    @property
    def items(self) -> str:
        return str(self)


def _item_update(stmt):
    """(list name, index, node whose receiver is the item) of a statement that updates an item
    of a list in place: `items[k].method_(...)`, `items[k][i] = v`, `items[k][i] += v`."""
    if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call):
        func = stmt.value.func
        if not (isinstance(func, gast.Attribute) and func.attr.endswith("_")
                and not func.attr.startswith("_")):
            return None
        holder = func
    elif isinstance(stmt, gast.Assign) and len(stmt.targets) == 1:
        holder = stmt.targets[0]
    elif isinstance(stmt, gast.AugAssign):
        holder = stmt.target
    else:
        return None
    if not isinstance(holder, (gast.Attribute, gast.Subscript)) or (
            not isinstance(stmt, gast.Expr) and not isinstance(holder, gast.Subscript)):
        return None
    item = holder.value
    if not (isinstance(item, gast.Subscript) and isinstance(item.value, gast.Name)
            and not isinstance(item.slice, (gast.Slice, gast.Tuple, gast.Constant))):
        return None  # (a constant index is never traced: `d["inner"]["t"] = v` stays as is)
    return item.value.id, item.slice, holder


@leaves_generators_alone
class ChoiceConverter(Converter):
    """Writes an in-place update of a name bound to a choice between tensors back into the
    chosen tensor (NOTE [in-place updates of a choice])."""

    statements_only = True

    def _new(self, stem: str) -> str:
        name = self.ctx.namer.new(stem)
        self.ctx.local_names.add(name)  # (later passes pass locals to their lambdas)
        return name

    def visit_FunctionDef(self, node):
        args = node.args
        params = {a.id for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.id for a in (args.vararg, args.kwarg) if a is not None}
        returns = _returned_names(node, params)
        outer_items, self.loop_items = getattr(self, "loop_items", set()), set()
        outer_locals = getattr(self, "function_locals", None)
        # (one walk for both: each was a walk of the whole function)
        declared, stored = set(), set()
        for n in walk(node):
            cls = n.__class__
            if cls is gast.Name:
                if isinstance(n.ctx, (gast.Store, gast.Del)):
                    stored.add(n.id)
            elif cls is gast.Global or cls is gast.Nonlocal:
                declared.update(n.names)
        self.function_locals = (params | stored) - declared
        outer_entry, self.entry = getattr(self, "entry", None), None
        outer_prior, self.outside_prior = getattr(self, "outside_prior", []), []
        node.body = self._block(node.body, params)
        self.entry = outer_entry
        self.outside_prior = outer_prior
        self.loop_items = outer_items
        self.function_locals = outer_locals
        if returns:
            self._index_returns(node, returns)
        return node

    def _index_returns(self, node, returns) -> None:
        """`which = i` before the i-th `return name` of `node`, `which = -1` first, and the
        sources by index for the return converter's last `return` (NOTE [returned paths])."""
        which = self._new("which")
        self.ctx.display_names[which] = "<return taken>"
        index = {id(ret): i for i, (ret, _) in enumerate(returns)}
        stack = [node.body]
        while stack:
            body = stack.pop()
            for i in range(len(body) - 1, -1, -1):
                stmt = body[i]
                if id(stmt) in index:
                    body[i:i] = copy_origin(templates.replace(
                        "which = i", which=which,
                        i=gast.Constant(value=index[id(stmt)], kind=None)), stmt)
                    continue
                if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                    continue
                for field in ("body", "orelse", "finalbody"):
                    block = getattr(stmt, field, None)
                    if isinstance(block, list) and block and isinstance(block[0], gast.stmt):
                        stack.append(block)
                for handler in getattr(stmt, "handlers", ()):
                    stack.append(handler.body)
                for case in getattr(stmt, "cases", ()):
                    stack.append(case.body)
        node.body[:0] = copy_origin(templates.replace(
            "which = -1", which=which), node.body[0] if node.body else node)
        setattr(node, RETURNED_PATHS, (which, [source for _, source in returns]))

    visit_AsyncFunctionDef = visit_FunctionDef

    def _block(self, stmts, bound) -> list:
        bound = set(bound)
        inner = set(bound)
        # (each statement's stored names once, after its inner blocks: three walks of every
        # statement, nested ones again at each level, were a tenth of this pass; nothing below
        # stores a name into the statement itself)
        stores = []
        entry = getattr(self, "entry", None)
        # (NOTE [aliases bound before an enclosing statement])
        outside = getattr(self, "outside_prior", [])
        for i, stmt in enumerate(stmts):  # inner blocks first
            if stmt.__class__ in _BLOCK_STATEMENTS:  # (a list per statement: a block's only)
                self.outside_prior = outside + stmts[:i] + _header_stores(stmt)
            # (NOTE [names private to the function])
            self.entry = None
            if isinstance(stmt, gast.If):
                self.entry = _Entry(stmts[:i], [stmt.test], entry)
            elif isinstance(stmt, (gast.For, gast.AsyncFor, gast.While)):
                self.entry = _Entry(stmts[:i], [stmt], entry)
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef)):
                self.visit_FunctionDef(stmt)
            elif isinstance(stmt, (gast.With, gast.AsyncWith)):
                stmt.body = self._block(stmt.body, set())
            elif isinstance(stmt, (gast.If, gast.For, gast.AsyncFor, gast.While)):
                # Staged bodies too: the write-back's `copy_` into a tensor from outside the
                # body is an update the body's run sees by the tensor's version (NOTE [inputs
                # updated unseen] in runtime/staging/torch.py), carried and written back after
                # the statement (NOTE [in-place updates of a choice])
                targets = (_names_stored(stmt.target)
                           if isinstance(stmt, (gast.For, gast.AsyncFor)) else set())
                in_body = inner | targets
                # (a loop's items are followed by the loop: NOTE [loop items rebound on some
                # paths] in converters/control_flow.py)
                outer_items = getattr(self, "loop_items", set())
                self.loop_items = outer_items | targets
                stmt.body = self._block(stmt.body, in_body)
                self.loop_items = outer_items
                stmt.orelse = self._block(stmt.orelse, inner)
            elif isinstance(stmt, gast.Try):
                stmt.body = self._block(stmt.body, inner)
                for handler in stmt.handlers:
                    handler.body = self._block(handler.body, set())
                stmt.orelse = self._block(stmt.orelse, set())
                stmt.finalbody = self._block(stmt.finalbody, set())
            stores.append(_names_stored(stmt))
            inner |= stores[-1]
        self.entry = entry
        self.outside_prior = outside
        out = []
        active = []  # the choices whose names are watched: (sources, chosen, before, watched)
        kept = []  # NOTE [a name kept on some paths of a staged statement]: _KeptWatch
        called = set()  # names bound to a call's result: NOTE [returned choices]
        holders = {}  # {such a name: the local holding it as the call returned it}
        for i, stmt in enumerate(stmts):
            pre, post = [], []
            returned = self._returned_choice(stmt)
            if returned is not None:
                out.extend(returned)
                continue
            augmented = (stmt.target.id if isinstance(stmt, gast.AugAssign)
                         and isinstance(stmt.target, gast.Name) else None)
            for name in sorted(called):
                if _tensor_update_of(stmt, name):
                    if not _simple(stmt):
                        pre.extend(copy_origin(templates.replace(
                            _REFUSE_RETURNED, ac=self.ctx.runtime, target=holders.get(name, name),
                            name=gast.Constant(value=name, kind=None)), stmt))
                        continue
                    held, template = holders.get(name, name), _WRITE_BACK_HELD
                    if name == augmented and name not in holders:
                        # `y += v`: the mark is read from `y` before it, then and after (under
                        # torch.compile the in-place operator's result is a new variable
                        # without it)
                        held = holders[name] = self._new(name + "_returned")
                        pre.extend(copy_origin(templates.replace(
                            "held = target", held=held, target=name), stmt))
                    if held == name:
                        template = _WRITE_BACK_RETURNED
                    post.extend(copy_origin(templates.replace(
                        template, ac=self.ctx.runtime, target=name, held=held,
                        name=gast.Constant(value=name, kind=None)), stmt))
            called -= stores[i] - {augmented}
            for name in list(holders):
                if name not in called:
                    del holders[name]
            if (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], gast.Name)
                    and isinstance(stmt.value, gast.Call)):
                called.add(stmt.targets[0].id)
            update = _item_update(stmt)
            choice = None if update is not None else self._choice(stmt, bound)
            if update is not None:
                # `slots[k].add_(v)`: as `item = slots[k]; item.add_(v)`, written back
                items, key, holder = update
                chosen, item = self._new("chosen"), self._new(items + "_item")
                pre = copy_origin(templates.replace(
                    "chosen = key\nitem = items[chosen]", chosen=chosen, key=key, item=item,
                    items=items), stmt)
                holder.value = copy_origin(templates.name(item), holder)
                post = copy_origin(templates.replace(
                    _WRITE_BACK_ITEM, ac=self.ctx.runtime, target=item, items=items,
                    chosen=chosen), stmt)
            # an update of one choice's name is one of its sources' too (`p = a if c else b`,
            # `q = b if d else a`, `p.add_(1)`: `q` may be `a`)
            indirect = {p for sources, *_ in active for name, paths in sources.items()
                        if _in_place_of(stmt, name) for p in _updatable(paths, sources)}
            refreshes = []
            for watch in active:
                before_stmt, written, refreshed = self._around(stmt, *watch[:3], indirect,
                                                               update)
                pre, post = pre + before_stmt, post + written
                refreshes += refreshed
            post += refreshes
            for watch in kept:
                before_stmt, written = self._around_kept(stmt, watch, stores[i])
                pre, post = pre + before_stmt, post + written
            stored = stores[i]
            # (a later statement that may leave the name bound on some paths only renews its
            # flag: NOTE [a name kept across staged statements])
            renewed = [w for w in kept if w.node is None and w.name in stored
                       and isinstance(stmt, (gast.If, gast.For, gast.While))
                       and not (isinstance(stmt, gast.If) and _always_rebinds([stmt], w.name))]
            kept = [w for w in kept if (w.name not in stored or (
                w.name == augmented and _simple(stmt))) and (w.node is None or (
                    w.node.value.id not in stored and w.name not in _paths_stored(stmt)))]
            kept += renewed
            for watch in renewed:
                watch.chosen = self._new("chosen")
                stmt._autoconv_watched = getattr(stmt, "_autoconv_watched", set()) | {watch.name}
                post.extend(copy_origin(templates.replace(
                    _KEPT, ac=self.ctx.runtime, chosen=watch.chosen, name=watch.name,
                    before=watch.before), stmt))
            for watch in kept:
                watch.aliases -= stored
                watch.holders -= stored
            if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name):
                stored_apart = stored - {stmt.target.id}  # in place for a tensor
            else:
                stored_apart = stored
            active = [w for w in active if not stored_apart & w[3]]
            rest = stmts[i + 1:]
            if choice is not None:
                # its names, their sources, and other choices' names (updated, they write back
                # into its sources)
                seen = set(choice[1]) | {p for paths in choice[1].values()
                                         for p in _updatable(paths, choice[1])}
                # (`c = data[k]`, then `data.add_(1)`: NOTE [rows read with a traced index,
                # their tensor updated after] in runtime/choices.py)
                seen |= {paths.items for paths in choice[1].values() if isinstance(paths, _Item)}
                seen |= {name for sources, *_ in active for name in sources}
                rows = [paths for paths in choice[1].values() if isinstance(paths, _Item)]
                if not any(_in_place_of(later, name) for later in rest for name in seen) and not (
                        # (a row's tensor updated through another name, or an item of a list)
                        rows and any(_outside_updates(later, set()) for later in rest)) and not (
                        # (or by a call given the tensor or the list: `helper(items)`)
                        any(_calls_given(later, items, self._reading_builtins())
                            for later in rest for items in rows)) \
                        and not (  # (or through a view of it: `data.t()[0].fill_(0)`)
                        any(_updates_by_operator(later, row.items) for later in rest
                            for row in rows)):
                    choice = None
            if choice is not None:
                test, sources, make = choice
                chosen = self._new("chosen")
                pre.extend(copy_origin(templates.replace(
                    "chosen = test", chosen=chosen, test=test), stmt))
                # sources the statement rebinds are read before it
                before = {}
                for name, paths in sources.items():
                    for source in () if isinstance(paths, _Item) else paths:
                        if source is None or source not in stored or source in before:
                            continue
                        if source not in bound:  # not bound before it: nothing to write
                            before[source] = None
                            continue
                        before[source] = self._new(source + "_chosen")
                        pre.extend(copy_origin(templates.replace(
                            "alias = source", alias=before[source], source=source), stmt))
                made = make(chosen)
                watched = set(sources)
                for paths in sources.values():
                    watched |= ({paths.items} if isinstance(paths, _Item)
                                else {p for p in paths if p is not None})
                active.append((sources, chosen, before, watched))
            else:
                made = [stmt]
            if isinstance(stmt, (gast.If, gast.For, gast.While)):
                taken = set(choice[1]) if choice is not None else set()
                # (in the order `_kept_names` gives: the `x_before = x` lines and kept_object
                # calls are written in it, and a set's order changes with PYTHONHASHSEED)
                for name in self._kept_names(stmt, stmts[:i], stmts[i + 1:], bound, stored):
                    if name in taken:
                        continue
                    watch = _KeptWatch(name, self._new(name + "_before"), self._new("chosen"),
                                       _aliases(outside + stmts[:i], name),
                                       holders=_holders(stmts[:i], name)
                                       | _view_bases(stmts[:i], name))
                    self.ctx.display_names[watch.before] = f"<{name} before>"
                    stmt._autoconv_watched = getattr(stmt, "_autoconv_watched", set()) | {name}
                    pre.extend(copy_origin(templates.replace(
                        "before = name", before=watch.before, name=name), stmt))
                    post.extend(copy_origin(templates.replace(
                        _KEPT, ac=self.ctx.runtime, chosen=watch.chosen, name=name,
                        before=watch.before), stmt))
                    kept.append(watch)
                for path, node in self._kept_paths(stmt, stmts[:i], stmts[i + 1:], bound):
                    watch = _KeptWatch(path, self._new("item_before"), self._new("chosen"),
                                       _path_aliases(stmts[:i], path), node)
                    if isinstance(node, gast.Attribute):
                        read = templates.replace("getattr(root, attr, None)",
                                                 root=node.value.id,
                                                 attr=gast.Constant(value=node.attr,
                                                                    kind=None))[0].value
                    else:
                        read = templates.replace("ac.item_or_none(root, key)",
                                                 ac=self.ctx.runtime, root=node.value.id,
                                                 key=copy.deepcopy(node.slice))[0].value
                    pre.extend(copy_origin(templates.replace(
                        "before = read", before=watch.before, read=read), stmt))
                    post.extend(copy_origin(templates.replace(
                        _KEPT_ITEM, ac=self.ctx.runtime, chosen=watch.chosen,
                        path=copy.deepcopy(node), before=watch.before), stmt))
                    kept.append(watch)
            out.extend(pre)
            out.extend(made)
            out.extend(post)
            bound |= stored
        return out

    def _around_kept_path(self, stmt, watch, stored) -> tuple:
        """`_around_kept` of an item or attribute: each in-place update of it, or of an alias
        of its tensor before the statement, by a simple statement is written back (refused
        where the statement's flag is not known: `write_back_kept`); one inside a compound
        statement is refused where the statement was staged."""
        pre, post = [], []
        updates = _path_update_of(stmt, watch.name)
        aliases = sorted(a for a in watch.aliases if _tensor_update_of(stmt, a))
        if not (updates or aliases):
            return pre, post
        shown = gast.Constant(value=watch.name, kind=None)
        if not _simple(stmt):
            where = (f"`{watch.name}` is updated in place inside this statement" if updates
                     else " or ".join(f"`{a}`" for a in aliases)
                     + " is updated in place inside this statement")
            pre.extend(copy_origin(templates.replace(
                _REFUSE_WHERE, ac=self.ctx.runtime, target=copy.deepcopy(watch.node),
                chosen=watch.chosen, name=shown,
                sources=gast.Constant(value=watch.source_text, kind=None),
                where=gast.Constant(value=where, kind=None)), stmt))
            return pre, post
        if updates:
            post.extend(copy_origin(templates.replace(
                _WRITE_BACK_KEPT, ac=self.ctx.runtime, target=copy.deepcopy(watch.node),
                chosen=watch.chosen, before=watch.before, name=shown,
                alias=gast.Constant(value="", kind=None)), stmt))
        for alias in aliases:
            post.extend(copy_origin(templates.replace(
                _WRITE_BACK_KEPT, ac=self.ctx.runtime, target=copy.deepcopy(watch.node),
                chosen=watch.chosen, before=watch.before, name=shown,
                alias=gast.Constant(value=alias, kind=None)), stmt))
        return pre, post

    def _locals(self) -> set:
        """The names local to the function being converted (all, where none is)."""
        found = getattr(self, "function_locals", None)
        return found if found is not None else _Everything()

    def _kept_names(self, stmt, prior, rest, bound, stored) -> list:
        """The names, sorted, compound statement `stmt` may rebind on some paths and leave bound to
        their object on others, whose object someone else may hold (`_shared`) and a later
        statement of the block updates in place (through the name or an alias): NOTE [a name
        kept on some paths of a staged statement] in runtime/operators.py. `stored`: the names
        `stmt` stores to, as `_block` found them after rewriting its inner blocks (a choice made
        of `stmt` since adds only its fresh `chosen`, which is not in `bound`)."""
        names = (stored & bound) - getattr(self, "loop_items", set())
        if isinstance(stmt, gast.For):
            names -= _names_stored(stmt.target)
        out = []
        later_updates = None
        for name in sorted(names):
            if isinstance(stmt, gast.If) and _always_rebinds([stmt], name):
                continue
            if later_updates is None:  # (one walk of the rest, where a name may be watched)
                later_updates = set().union(*(_tensor_updates(later) for later in rest))
                later_updates |= {a.id for later in rest if isinstance(later, gast.Expr)
                                  and isinstance(later.value, gast.Call)
                                  for a in [*later.value.args,
                                            *(k.value for k in later.value.keywords)]
                                  if isinstance(a, gast.Name)}
            # (NOTE [aliases bound before an enclosing statement]: `self.outside_prior`)
            aliases = _aliases(getattr(self, "outside_prior", []) + prior, name)
            if not later_updates & ({name} | aliases) and not any(
                    _updates_through(later, h) for h in _holders(prior, name)
                    for later in rest) and not (
                        # (the tensor it may be a view of, where it is read after: `u = t[1:]`)
                        any(_updates_through(later, b) for b in _view_bases(prior, name)
                            for later in rest) and any(_reads(later, name) for later in rest)
                    ) and not (
                        # (a parameter, or a name bound from something that may be held
                        # outside the function: a later update of a global's or an
                        # attribute's tensor may be an update of it, NOTE [views of a name
                        # kept on some paths] in runtime/choices.py)
                        any(_outside_updates(later, self._locals()) for later in rest)):
                continue
            if _shared(prior, name, getattr(self, "entry", None)):
                out.append(name)
        return out

    def _kept_paths(self, stmt, prior, rest, bound) -> list:
        """[(text, node)] of the items and attributes (`d["k"]`, `o.h`: a constant key of a
        name) compound statement `stmt` may set on some paths only, which a later statement
        of the block updates in place (or a name bound to the tensor before it): NOTE [a name
        kept on some paths of a staged statement] in runtime/operators.py."""
        out = {}
        for path, node in _paths_stored(stmt).items():
            if node.value.id not in bound or path in out:
                continue
            if isinstance(stmt, gast.If) and _always_sets([stmt], path):
                continue
            aliases = _path_aliases(prior, path)
            if not aliases and not _set_from_a_name(prior, path):
                continue  # (no other reference to its tensor seen: a module's buffer)
            if any(_path_update_of(later, path) or any(_tensor_update_of(later, a)
                                                      for a in aliases) for later in rest):
                out[path] = node
        return sorted(out.items())

    def _around_kept(self, stmt, watch, stored) -> tuple:
        """(statements before, write-backs after) `stmt` for a name kept on some paths of a
        staged statement (NOTE [a name kept on some paths of a staged statement]): an in-place
        update of the name is written back into its object before the statement, one of an
        alias of that object refreshes the name, by the statement's flag."""
        name, pre, post = watch.name, [], []
        if watch.node is not None:
            return self._around_kept_path(stmt, watch, stored)
        # (a call given the tensor, as a statement of its own, may update it: `scale_(y)`)
        updates_name = _tensor_update_of(stmt, name) or _given_to_a_call(stmt, name)
        updated_aliases = sorted(a for a in watch.aliases if _tensor_update_of(stmt, a)
                                 or _given_to_a_call(stmt, a))
        # (a view or a container of its tensor: NOTE [views of a name kept on some paths])
        held = [(h, True) for h in sorted(watch.holders) if _updates_through(stmt, h)]
        if not (updates_name or updated_aliases):
            # (a tensor reached from outside the function, or through an attribute, that may
            # be its tensor: `STATE.add_(1)`, `self.buf += 1`)
            held += [(h, False) for h in _outside_updates(stmt, self._locals())
                     if _simple(stmt) or not _binds_root(stmt, h)]
        if held and not (updates_name or updated_aliases):
            for holder, seen in held:
                shown = holder if isinstance(holder, str) else _text(holder)
                if not _simple(stmt):
                    if not _reads(stmt, name):
                        continue  # (refreshed after it)
                    where = (f"`{shown}`, which may hold `{name}`'s tensor from before, is "
                             f"updated in place inside this statement, which reads `{name}`")
                    pre.extend(copy_origin(templates.replace(
                        _REFUSE_HELD, ac=self.ctx.runtime, target=name, chosen=watch.chosen,
                        before=watch.before, held=_held_node(holder),
                        name=gast.Constant(value=name, kind=None),
                        sources=gast.Constant(value=watch.source_text, kind=None),
                        where=gast.Constant(value=where, kind=None),
                        seen=gast.Constant(value=seen, kind=None)), stmt))
            for holder, seen in held:
                if _simple(stmt) or not _reads(stmt, name):
                    post.extend(copy_origin(templates.replace(
                        _REFRESH_HELD, ac=self.ctx.runtime, target=name, chosen=watch.chosen,
                        before=watch.before, held=_held_node(holder),
                        seen=gast.Constant(value=seen, kind=None)), stmt))
            return pre, post
        if not (updates_name or updated_aliases):
            return pre, post
        where = ""
        if not _simple(stmt):
            if updates_name and name in stored:
                where = f"`{name}` is updated in place and rebound inside this statement"
            elif updates_name and any(_reads(stmt, a) for a in watch.aliases):
                shown = " or ".join(f"`{a}`" for a in sorted(watch.aliases)
                                    if _reads(stmt, a))
                where = (f"`{name}` is updated in place inside this statement, which reads "
                         f"{shown}")
            elif updated_aliases and _reads(stmt, name):
                shown = " or ".join(f"`{a}`" for a in updated_aliases)
                where = f"{shown} is updated in place inside this statement, which reads `{name}`"
        if where:
            pre.extend(copy_origin(templates.replace(
                _REFUSE_WHERE, ac=self.ctx.runtime, target=name, chosen=watch.chosen,
                name=gast.Constant(value=name, kind=None),
                sources=gast.Constant(value=watch.source_text, kind=None),
                where=gast.Constant(value=where, kind=None)), stmt))
            return pre, post
        if updates_name:
            post.extend(copy_origin(templates.replace(
                _WRITE_BACK_KEPT, ac=self.ctx.runtime, target=name, chosen=watch.chosen,
                before=watch.before, name=gast.Constant(value=name, kind=None),
                alias=gast.Constant(value="", kind=None)), stmt))
        if updated_aliases:
            post.extend(copy_origin(_target_unchecked(templates.replace(
                _REFRESH, ac=self.ctx.runtime, target=name, chosen=watch.chosen,
                if_true=templates.name(watch.before),
                if_false=gast.Constant(value=None, kind=None))), stmt))
        return pre, post

    def _returned_choice(self, stmt):
        """`return a if c else b` (a side a name) -> the statements that mark the result with
        its sources (NOTE [returned choices]), else None."""
        if not (isinstance(stmt, gast.Return) and isinstance(stmt.value, gast.IfExp)
                and not _has_named_expr(stmt.value.test)):
            return None
        value = stmt.value
        paths = [v.id if isinstance(v, gast.Name) else None for v in (value.body, value.orelse)]
        if paths == [None, None]:
            return None
        chosen = self._new("chosen")
        out = copy_origin(templates.replace("chosen = test", chosen=chosen, test=value.test),
                          stmt)
        value.test = templates.name(chosen)
        sources = [self._source(path, {}) for path in paths]
        for source in sources:  # (read as they are: Python evaluates the taken side only)
            setattr(source, unbound.UNCHECKED, True)
        stmt.value = copy_origin(templates.replace(
            _RETURNED, ac=self.ctx.runtime, value=value, chosen=chosen,
            if_true=sources[0], if_false=sources[1])[0].value, value)
        return out + [stmt]

    def _around(self, stmt, sources, chosen, before, indirect, update=None) -> tuple:
        """(statements before, write-backs after, refreshes after) `stmt` for a choice of
        `sources`: the write-backs (or refusals) of in-place updates of its names, the
        refreshes of a name after an in-place update of one of its sources (`indirect`: the
        sources of other choices' names it updates)."""
        pre, post, refreshes = [], [], []
        names = [n for n in sources if _in_place_of(stmt, n)]
        # `acc = pos if c else neg` then `pos.add_(v)`: `acc` is `pos` in Python
        refreshed = [n for n, paths in sources.items() if n not in names and any(
            p in indirect or _in_place_of(stmt, p) for p in _updatable(paths, sources))]
        for name, paths in sources.items():
            # `c = data[k]` then `data.add_(1)` (or `v.add_(1)` of `v = data[1:]`, or
            # `items[0].add_(1)` of a list): `c` is the row itself in Python (NOTE [rows read
            # with a traced index, their tensor updated after] in runtime/choices.py)
            if isinstance(paths, _Item):
                pre_item, refreshed_item = self._around_row(stmt, name, paths.items, chosen,
                                                            update)
                pre += pre_item
                refreshes += refreshed_item
        for name in names:
            if not _simple(stmt) or _UNKNOWN in sources[name]:
                pre.extend(copy_origin(self._refusal(
                    name, chosen, sources[name],
                    "" if not _simple(stmt) else
                    f"`{name}` is updated in place here, but a branch binds it in a nested "
                    "statement"), stmt))
            else:
                post.extend(copy_origin(
                    self._write_back(name, chosen, sources[name], before), stmt))
        for name in refreshed:
            if _UNKNOWN in sources[name] or not _simple(stmt) and _reads(stmt, name):
                shown = " or ".join(f"`{p}`" for p in _updatable(sources[name], sources)
                                    if p in indirect or _in_place_of(stmt, p))
                pre.extend(copy_origin(self._refusal(
                    name, chosen, sources[name],
                    f"{shown} is updated in place "
                    + ("here, but a branch binds it in a nested statement"
                       if _UNKNOWN in sources[name] else
                       f"inside this statement, which reads `{name}`")), stmt))
            else:
                # after a compound statement too: it does not read `name`
                refreshes.extend(copy_origin(
                    self._refresh(name, chosen, sources[name], sources), stmt))
        return pre, post, refreshes

    def _reading_builtins(self) -> frozenset:
        """`_READING_BUILTINS` less the names the function's code binds or its globals hold."""
        return frozenset(n for n in _READING_BUILTINS
                         if n not in self.ctx.local_names and n not in self.ctx.globals)

    def _around_row(self, stmt, name, items, chosen, update) -> tuple:
        """(refusals before, refreshes after) `stmt` of `name` read as `items[chosen]`."""
        pre, post = [], []
        direct = (_in_place_of(stmt, items) or (update is not None and update[0] == items))
        # a call given the tensor or the list (`helper(items)`) may update it in place, or
        # rebind a list's item, which the converter cannot tell apart: the trace tells by the
        # tensors' identities and version counters (NOTE [rows read with a traced index, their
        # tensor updated after])
        by_call = not direct and not _updates_by_operator(stmt, items) and _calls_given(
            stmt, items, self._reading_builtins())
        direct = direct or (not by_call and _updates_through(stmt, items))
        # (a list's `items[i] = t`, or a call given the list, may rebind an item)
        stored = any(isinstance(n, gast.Assign) and any(
            isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name)
            and t.value.id == items for t in n.targets) for n in walk(stmt)) or (
                _given_to_a_call(stmt, items))
        held = [] if direct else [
            h for h in _outside_updates(stmt, set())
            if not (isinstance(h, gast.Name) and h.id in (items, name))
            and (_simple(stmt) or not _binds_root(stmt, h)) and not _binds_root(stmt, h)]
        if by_call:
            versions = self._new("versions")
            pre.extend(copy_origin(templates.replace(
                "versions = ac.item_versions(items)", versions=versions, ac=self.ctx.runtime,
                items=items), stmt))
            post.extend(copy_origin(templates.replace(
                _REFRESH_AFTER_CALL, ac=self.ctx.runtime, target=name, items=items,
                chosen=chosen, versions=versions,
                name=gast.Constant(value=name if _reads(stmt, name) else "", kind=None)),
                stmt))
        # (after a statement that may rebind an item of a list: `rebound`)
        rows_stored = self.__dict__.setdefault("_rows_stored", set())
        rebound = name if (chosen, name) in rows_stored and (direct or held) else ""
        if stored:
            rows_stored.add((chosen, name))
        for holder in [None] * direct + held:
            shown = f"`{items}`" if holder is None else f"`{_text(holder)}`"
            holder_node = (gast.Constant(value=None, kind=None) if holder is None
                           else _held_node(holder))
            if not _simple(stmt) and _reads(stmt, name):
                pre.extend(copy_origin(templates.replace(
                    _REFUSE_ITEM_REFRESH, ac=self.ctx.runtime, target=name, items=items,
                    chosen=chosen, name=gast.Constant(value=name, kind=None),
                    sources=gast.Constant(value=f"an item of `{items}`", kind=None),
                    where=gast.Constant(
                        value=f"{shown} is updated in place inside this statement, which reads "
                              f"`{name}`" + ("" if holder is None else
                                             f" (read from `{items}` with a traced index)"),
                        kind=None),
                    held=holder_node), stmt))
            else:
                post.extend(copy_origin(templates.replace(
                    _REFRESH_ITEM, ac=self.ctx.runtime, target=name, items=items,
                    chosen=chosen, held=holder_node,
                    stored=gast.Constant(value=stored, kind=None),
                    rebound=gast.Constant(value=rebound if not stored else "", kind=None)),
                    stmt))
        return pre, post

    def _refresh(self, name, chosen, paths, sources) -> list:
        kept = set(_updatable(paths, sources))
        shown = [p if p in kept else None for p in paths]
        if isinstance(paths, _Paths):
            return _target_unchecked(templates.replace(
                _REFRESH, ac=self.ctx.runtime, target=name, chosen=chosen,
                if_true=gast.List(elts=[self._source(p, {}) for p in shown],
                                  ctx=gast.Load()),
                if_false=gast.Constant(value=None, kind=None)))
        return _target_unchecked(templates.replace(
            _REFRESH, ac=self.ctx.runtime, target=name, chosen=chosen,
            if_true=self._source(shown[0], {}),
            if_false=self._source(shown[1], {})))

    def _source(self, source, before):
        if source is None or source == _UNKNOWN:
            return gast.Constant(value=None, kind=None)
        if source in before:
            if before[source] is None:
                return gast.Constant(value=None, kind=None)
            return templates.name(before[source])
        return templates.name(source)

    def _write_back(self, name, chosen, paths, before) -> list:
        if isinstance(paths, _Item):
            return templates.replace(_WRITE_BACK_ITEM, ac=self.ctx.runtime, target=name,
                                     items=paths.items, chosen=chosen)
        if isinstance(paths, _Paths):
            return templates.replace(
                _WRITE_BACK_PATH, ac=self.ctx.runtime, target=name, chosen=chosen,
                sources=gast.List(elts=[self._source(p, before) for p in paths],
                                  ctx=gast.Load()))
        return templates.replace(
            _WRITE_BACK, ac=self.ctx.runtime, target=name, chosen=chosen,
            if_true=self._source(paths[0], before),
            if_false=self._source(paths[1], before))

    def _refusal(self, name, chosen, paths, where="") -> list:
        if isinstance(paths, _Item):
            return templates.replace(
                _REFUSE_ITEM, ac=self.ctx.runtime, target=name, items=paths.items,
                chosen=chosen, name=gast.Constant(value=name, kind=None),
                sources=gast.Constant(value=f"an item of `{paths.items}`", kind=None),
                where=gast.Constant(value=where, kind=None))
        shown = " or ".join(f"`{p}`" for p in dict.fromkeys(paths)
                            if p is not None and p != _UNKNOWN)
        if _UNKNOWN in paths:
            shown = (shown + " or " if shown else "") + "another name's tensor"
        if where:
            return templates.replace(
                _REFUSE_WHERE, ac=self.ctx.runtime, target=name, chosen=chosen,
                name=gast.Constant(value=name, kind=None),
                sources=gast.Constant(value=shown, kind=None),
                where=gast.Constant(value=where, kind=None))
        return templates.replace(
            _REFUSE, ac=self.ctx.runtime, target=name, chosen=chosen,
            name=gast.Constant(value=name, kind=None),
            sources=gast.Constant(value=shown, kind=None))

    def _if_choice(self, stmt):
        """`_choice` of an `if` statement: two branches that fall through by their condition
        (`chosen = test`), an `elif` chain or a branch ending in a jump by the index of the
        branch taken (`chosen = i` at the start of each branch that falls through)."""
        branches, tests, last = [stmt.body], [stmt.test], stmt
        while len(last.orelse) == 1 and isinstance(last.orelse[0], gast.If):
            last = last.orelse[0]
            branches.append(last.body)
            tests.append(last.test)
        branches.append(last.orelse)
        if any(_has_named_expr(t) for t in tests) or _yields(branches[0]) or any(
                _yields(b) for b in branches[1:]):
            return None
        dead = [_ends_in_jump(b) for b in branches]
        bindings = [{} if d else _bare_bindings(b) for b, d in zip(branches, dead)]
        names = dict.fromkeys(n for b in bindings for n in b)
        by_index = len(branches) > 2 or any(dead)
        sources = {}
        for name in names:
            paths = tuple(None if d else b.get(name, name) for b, d in zip(bindings, dead))
            if any(p is not None and p != name for p in paths):
                sources[name] = _Paths(paths) if by_index else paths
        if not sources:
            return None
        if not by_index:
            test = stmt.test

            def make(chosen):
                stmt.test = templates.name(chosen)
                return [stmt]

            return test, sources, make

        def make(chosen):
            for i, branch in enumerate(branches):  # (the lists of the tree: `else` too)
                if not dead[i]:
                    branch[:0] = copy_origin(templates.replace(
                        "chosen = i", chosen=chosen, i=gast.Constant(value=i, kind=None)),
                        branch[0] if branch else stmt)
            return [stmt]

        return gast.Constant(value=-1, kind=None), sources, make

    def _choice(self, stmt, bound):
        """(test, {name: (source if true, source if false)}, make(chosen) -> statements) of a
        statement that binds names to existing values under a condition, else None."""
        if isinstance(stmt, gast.If):
            return self._if_choice(stmt)
        if not (isinstance(stmt, gast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], gast.Name)):
            return None
        name, value = stmt.targets[0].id, stmt.value
        if (isinstance(value, gast.Subscript) and isinstance(value.value, gast.Name)
                and not isinstance(value.slice, (gast.Slice, gast.Tuple))):
            # `buf = hist[step % n]`: with a traced index, the row of the stacked items
            test = value.slice

            def make(chosen):
                value.slice = templates.name(chosen)
                return [stmt]

            return test, {name: _Item(value.value.id)}, make
        if (isinstance(value, gast.BoolOp) and isinstance(value.op, gast.Or)
                and len(value.values) == 2 and isinstance(value.values[0], gast.BoolOp)
                and isinstance(value.values[0].op, gast.And)
                and isinstance(value.values[0].values[-1], gast.Name)
                and isinstance(value.values[1], gast.Name)
                and not _has_named_expr(value)):
            # `acc = c and pos or neg` is `pos if (c and pos) else neg`: where `c and pos`
            # holds, its value is `pos`
            test = value.values[0]
            paths = (value.values[0].values[-1].id, value.values[1].id)

            def make(chosen):
                stmt.value = copy_origin(gast.IfExp(
                    test=templates.name(chosen), body=templates.name(paths[0]),
                    orelse=templates.name(paths[1])), value)
                return [stmt]

            return test, {name: paths}, make
        if isinstance(value, gast.IfExp) and not _has_named_expr(value.test):
            paths = tuple(v.id if isinstance(v, gast.Name) else None
                          for v in (value.body, value.orelse))
            if paths == (None, None):
                return None
            test = value.test

            def make(chosen):
                value.test = templates.name(chosen)
                return [stmt]

            return test, {name: paths}, make
        if (isinstance(value, gast.Call) and isinstance(value.func, gast.Name)
                and value.func.id in ("max", "min") and "max" not in bound
                and "min" not in bound and len(value.args) == 2 and not value.keywords
                and all(isinstance(a, gast.Name) for a in value.args)):
            first, second = (a.id for a in value.args)
            # Python's max gives the first of equal values: the second only where greater
            compare = gast.Gt() if value.func.id == "max" else gast.Lt()
            test = gast.Compare(left=templates.name(second), ops=[compare],
                                comparators=[templates.name(first)])
            return test, {name: (second, first)}, lambda chosen: [stmt]
        return None
