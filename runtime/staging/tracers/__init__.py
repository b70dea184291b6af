"""The built-in tracers, one module each, in the order the registry asks them (see
`staging/registry.py`)."""

from .dispatch import DispatchModeTracer
from .dynamo import DynamoTracer
from .func import FuncTransformTracer
from .make_fx import MakeFxTracer
from .python import PythonTracer
from .symbolic import SymbolicTracer

__all__ = ["BUILTIN", "DispatchModeTracer", "DynamoTracer", "FuncTransformTracer",
           "MakeFxTracer", "PythonTracer", "SymbolicTracer"]

BUILTIN = (DynamoTracer(), FuncTransformTracer(), MakeFxTracer(), SymbolicTracer(),
           DispatchModeTracer(), PythonTracer())
