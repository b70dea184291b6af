"""torch.fx.symbolic_trace (any `torch.fx.Tracer`): `cond` / `while_loop` nodes over
sub-GraphModules traced by the same Tracer.

An fx `Proxy` has no shape, dtype or value: it is staged wherever it appears. The bodies are
traced by the Tracer that made the predicate's Proxy, into a fresh graph each, so its leaf
modules and autowrapped functions stay calls. Every value a body reads from outside it becomes
an operand: a Proxy of an enclosing graph, a parameter or buffer (`get_attr`), a tensor
constant. The bodies then hold no parameters, as torch.export's do, and the traced module's
own parameters are the ones the graph reads.
"""

from __future__ import annotations

import torch
import torch.fx
from torch.fx import _symbolic_trace

from ...errors import StagingError
from ..registry import StagingTracer

COND = torch.ops.higher_order.cond
WHILE_LOOP = torch.ops.higher_order.while_loop


class SymbolicTracer(StagingTracer):
    """fx Proxies: one `cond` / `while_loop` call_function node, its bodies `get_attr`s of
    sub-GraphModules kept on the traced root."""

    name = "fx.symbolic_trace"

    def is_staged(self, value) -> bool:
        return isinstance(value, torch.fx.Proxy)

    def is_tracing(self) -> bool:
        return _symbolic_trace._is_fx_tracing_flag

    def cond(self, pred, true_fn, false_fn, operands):
        tracer = _tracer_of("if statement", pred, *operands)
        pred = _truth(tracer, pred)
        true_graph, true_count = _trace_body(tracer, true_fn, operands, "true")
        false_graph, false_count = _trace_body(tracer, false_fn, operands, "false")
        if true_count != false_count:  # staging/torch.py gives both the same state
            raise StagingError("if statement", f"the branches give {true_count} and "
                               f"{false_count} values", "This is a bug in autoconv")
        lifted = _lift_reads(tracer, (true_graph, false_graph))
        out = tracer.create_proxy(
            "call_function", COND,
            (pred, _attach(tracer, true_graph, "true_graph"),
             _attach(tracer, false_graph, "false_graph"), (*operands, *lifted)), {})
        return tuple(out[i] for i in range(true_count))

    def while_loop(self, cond_fn, body_fn, carried, additional):
        tracer = _tracer_of("while loop", *carried, *additional)
        operands = (*carried, *additional)
        test_graph, _ = _trace_body(tracer, lambda *a: (_truth(tracer, cond_fn(*a)),),
                                    operands, "test", single=True)
        body_graph, count = _trace_body(tracer, body_fn, operands, "body")
        if count != len(carried):
            raise StagingError("while loop", f"the body gives {count} values for "
                               f"{len(carried)} carried ones", "This is a bug in autoconv")
        lifted = _lift_reads(tracer, (test_graph, body_graph))
        out = tracer.create_proxy(
            "call_function", WHILE_LOOP,
            (_attach(tracer, test_graph, "while_loop_cond_graph"),
             _attach(tracer, body_graph, "while_loop_body_graph"), tuple(carried),
             (*additional, *lifted)), {})
        return tuple(out[i] for i in range(count))


def is_fx_leaf(module, args) -> bool:
    """True when an fx Tracer is tracing `module(*args)` and keeps it a `call_module` node (its
    `is_leaf_module`): converted code then calls the module itself, not its converted forward."""
    if not _symbolic_trace._is_fx_tracing_flag:
        return False
    for value in args:
        if isinstance(value, torch.fx.Proxy):
            tracer = value.tracer
            try:
                path = tracer.path_of_module(module)
            except NameError:  # not a submodule of the traced root: fx would trace through it
                return False
            return tracer.is_leaf_module(module, path)
    return False


def _tracer_of(statement, *values) -> torch.fx.Tracer:
    for value in values:
        if isinstance(value, torch.fx.Proxy):
            return value.tracer
    raise StagingError(statement, "its operands hold no torch.fx Proxy to name the Tracer",
                       "This is a bug in autoconv")


def _truth(tracer, value):
    """A 0-d bool tensor with `value`'s truth value, in the graph being traced (the value may
    be a tensor or a Python bool or number when the graph runs)."""
    as_bool = tracer.create_proxy("call_function", torch.as_tensor, (value,),
                                  {"dtype": torch.bool})
    return tracer.create_proxy("call_method", "reshape", (as_bool, ()), {})


def _trace_body(tracer, fn, operands, stem, single=False):
    """`fn` traced by `tracer` into a new graph with one input per operand; returns the graph
    and the number of outputs (a body returns a tuple, `single` a 1-tuple given as a value)."""
    graph = torch.fx.Graph(tracer_cls=type(tracer))
    outer = tracer.graph
    tracer.graph = graph
    # fx caches the Proxy of each parameter it reads, for the whole trace: a body gets its own
    # cache, so that no Proxy of a body's graph reaches the enclosing one (or a sibling).
    traced_getattr, outer_getattr = type(tracer).getattr, tracer.__dict__.get("getattr")
    tracer.getattr = lambda attr, value, cache: traced_getattr(tracer, attr, value, {})
    try:
        args = [tracer.create_proxy("placeholder", f"{stem}_{i}", (), {})
                for i in range(len(operands))]
        outputs = tuple(fn(*args))
        result = outputs[0] if single else outputs
        tracer.create_node("output", "output", (tracer.create_arg(result),), {})
    finally:
        tracer.graph = outer
        if outer_getattr is None:
            del tracer.getattr
        else:
            tracer.getattr = outer_getattr
    return graph, len(outputs)


def _lift_reads(tracer, graphs):
    """Make every value the bodies read from outside an input of each body, and return those
    values as operands in the enclosing graph (`tracer.graph`), in order.

    Read from outside: a node of an enclosing graph (a Proxy the body captured) or a tensor
    attribute of the root (`get_attr`: a parameter, buffer or tensor constant). A nested
    statement's sub-GraphModules stay `get_attr`s of the body.
    """
    outer_values = []  # nodes of tracer.graph
    found = []  # per graph: {outer value: [(node, the node it reads)]}
    attributes = {}  # target: its get_attr node in tracer.graph
    for graph in graphs:
        reads = {}
        def outer_attribute(node):
            """The get_attr node in tracer.graph for a tensor attribute, else None."""
            if node.op != "get_attr" or not isinstance(_attribute(tracer.root, node.target),
                                                       torch.Tensor):
                return None
            if node.target not in attributes:
                attributes[node.target] = tracer.create_proxy("get_attr", node.target, (),
                                                              {}).node
            return attributes[node.target]

        for node in list(graph.nodes):
            value = outer_attribute(node)
            if value is not None:
                reads.setdefault(value, []).append((node, None))
                continue
            for read in node.all_input_nodes:
                if read.graph is not graph:
                    # fx's parameter cache may hand out another graph's get_attr: by target
                    value = outer_attribute(read) or read
                    reads.setdefault(value, []).append((node, read))
        found.append(reads)
        for value in reads:
            if value not in outer_values:
                outer_values.append(value)
    for graph, reads in zip(graphs, found):
        last = list(graph.find_nodes(op="placeholder"))[-1:]
        for i, value in enumerate(outer_values):
            where = graph.inserting_after(last[0]) if last else graph.inserting_before(
                next(iter(graph.nodes)))
            with where:
                placeholder = graph.placeholder(f"lifted_{i}")
            last = [placeholder]
            for node, read in reads.get(value, ()):
                if read is None:  # a get_attr: the input takes its place
                    node.replace_all_uses_with(placeholder)
                    graph.erase_node(node)
                else:
                    node.replace_input_with(read, placeholder)
    return tuple(torch.fx.Proxy(v, tracer) for v in outer_values)


def _attribute(root, target):
    """Attribute `target` ("a.b") of `root`, or None; read from the modules' own dicts, since
    while fx traces, `Module.__getattr__` gives Proxies for parameters."""
    value = root
    for name in target.split("."):
        stores = (value.__dict__, *(value.__dict__.get(kind, {})
                                    for kind in ("_parameters", "_buffers", "_modules")))
        for store in stores:
            if name in store:
                value = store[name]
                break
        else:
            return None
    return value


def _attach(tracer, graph, stem):
    """A sub-GraphModule of `graph`, kept on the root under a fresh name; its `get_attr` node.

    Kept as a plain attribute (as torch.fx keeps tensor constants): the user's module gains no
    submodule, parameters or state_dict entries; the GraphModule fx makes copies it in.
    """
    root = tracer.root
    module = torch.fx.GraphModule(root, graph, class_name=stem)
    i = 0
    while hasattr(root, f"{stem}_{i}"):
        i += 1
    name = f"{stem}_{i}"
    root.__dict__[name] = module
    return tracer.create_proxy("get_attr", name, (), {})
