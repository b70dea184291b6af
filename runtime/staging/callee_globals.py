"""Globals a callee of a staged body assigns, and the constructors a body calls, as callees.

    class Counted:                              if x.sum() > 0:      # staged
        def __init__(self, v):                      s = Counted(x)   -> StagingError at `N += 1`:
            global N                            else:                   the count would be made
            N += 1                                  s = Counted(-x)     once per trace

See NOTE [a count a constructor or callee keeps in a global].
"""

from __future__ import annotations

import dis
import types

from ..errors import StagingError
from ..identity import identical, type_in
from . import specialize

__all__ = ["GlobalNames", "constructors", "assigned_globals", "assigned_refusal", "shown",
           "changed_name", "assigned_problem", "store_line"]


# NOTE [a count a constructor or callee keeps in a global]
# `class Counted: def __init__(self, v): global N; N += 1` (or `_MADE[0] += 1`), made in the
# branches of a tensor `if`: the branches run while tracing (obj50's probes of the objects they
# bind run them again, NOTE [objects bound in branches]), never when the graph runs, so the
# graph returned the trace's count (5 for Python's 1, brk50 s05), silently. A constructor is
# a callee like any other (NOTE [a count a callee keeps in a global's object] in
# python_state.py): a user class a body's code names is followed into its `__new__`,
# `__init__` and `__post_init__` (its user bases' too: `super().__init__()`). And a callee
# (function or constructor) that assigns a global itself (`global N; N += 1`, which a body's
# own code cannot do: the converter refuses it) has that global compared across the body: a
# number changed there is put back and refused at the callee's line, as is a tensor of the
# trace stored there. A global first set from None (a cache built once), a bool (a flag) or an
# object stays the once-while-tracing effect, as in Python's first call.
class GlobalNames:
    """The globals a callee assigns (`names` of the module `table`), as a table of the checks
    of python_state.py: a key is a global's name."""

    __slots__ = ("table", "names")

    def __init__(self, table: dict, names: tuple):
        self.table, self.names = table, names

    def items(self):
        return [(n, self.table.get(n, _EMPTY)) for n in self.names]

    def get(self, name):
        return self.table.get(name, _EMPTY)

    def put_back(self, old: dict) -> None:
        for name, value in old.items():
            if value is _EMPTY:
                self.table.pop(name, None)
            elif self.table.get(name, _EMPTY) is not value:
                self.table[name] = value


_EMPTY = object()


def constructors(cls: type):
    """The functions that run when `cls` (a user class) is called: the `__new__`, `__init__`
    and `__post_init__` of it and of its bases (library classes' are skipped by the caller)."""
    for klass in cls.__mro__:
        for name in ("__new__", "__init__", "__post_init__"):
            fn = vars(klass).get(name)
            fn = getattr(fn, "__func__", fn)  # (`__new__` is a staticmethod in the class)
            if isinstance(fn, types.FunctionType):
                yield fn


def assigned_globals(code: types.CodeType) -> tuple:
    """The globals `code` assigns or deletes (`global N; N += 1`)."""
    found = _ASSIGNED.get(code)
    if found is None:
        found = _ASSIGNED[code] = tuple(dict.fromkeys(
            i.argval for i in dis.get_instructions(code)
            if i.opname in ("STORE_GLOBAL", "DELETE_GLOBAL")))
    return found


_ASSIGNED: dict = {}


def changed_name(table: GlobalNames, old: dict):
    """The global of `table` that held a number (not a bool) in `old` and now holds another
    value, or that now holds a tensor of the trace; None where none did."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    for name, was in old.items():
        now = table.get(name)
        if identical(now, was):
            continue
        if isinstance(now, (FakeTensor, FunctionalTensor)):
            return name
        if type_in(was, (int, float, complex)) and not (type(now) is type(was) and now == was):
            return name
    return None


def assigned_refusal(callee, name: str, where: str, statement: str) -> StagingError:
    problem, fix = assigned_problem(shown(callee), name, where, statement)
    return specialize.never(StagingError.at(store_line(callee, name), statement, problem, fix))


def assigned_problem(caller: str, name: str, where: str, statement: str) -> tuple:
    """(problem, fix) of a refusal of the callee `caller` assigning the global `name`."""
    problem = (f"'{caller}' assigns the global '{name}', called {where}; a staged body runs "
               "once while tracing (and never when the graph runs), so the assignment happens "
               f"once, not on every trip or only on the path taken, and the {statement} "
               "cannot carry a global")
    fix = (f"Return what '{caller}' counts and add it up in a variable the {statement} "
           f"carries, assigning '{name}' outside the function, or keep '{name}' in a tensor "
           f"updated in place (`{name}.add_(1)` of a global tensor: the graph repeats that)")
    return problem, fix


def shown(callee) -> str:
    """`Counted.__init__` for a constructor, a function's own name otherwise."""
    name = callee.__name__
    if name.startswith("__") and name.endswith("__"):
        return callee.__qualname__.rpartition("<locals>.")[2]
    return name


def store_line(callee, name: str) -> tuple:
    code = callee.__code__
    for instruction in dis.get_instructions(code):
        if (instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL")
                and instruction.argval == name and instruction.positions
                and instruction.positions.lineno):
            return code.co_filename, instruction.positions.lineno
    return code.co_filename, code.co_firstlineno
