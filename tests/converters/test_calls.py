"""CallConverter: calls go through ac.converted_call; torch, builtins and staged builtins do not."""

import autoconv
from support import assert_converts, function_from_source


def test_user_function():
    assert_converts(
        """
        def f(x):
            return helper(x) + torch.sin(x) + len(x)
        """,
        """
        def f(x):
            return ac.converted_call(helper, x) + torch.sin(x) + ac.len_(x)
        """,
    )


def test_tolist_goes_through_the_runtime():
    # (dynamo refuses `tolist()` of a float tensor; `ac.tolist_` reads its items there:
    # tester36b s06) A `tolist` given arguments is another method: left alone.
    assert_converts(
        """
        def f(x, a):
            return x.tolist(), x[0].tolist(), a.tolist(1)
        """,
        """
        def f(x, a):
            return ac.tolist_(x), ac.tolist_(x[0]), a.tolist(1)
        """,
    )


def test_method_and_builtins():
    assert_converts(
        """
        def f(x, n):
            for i in range(n):
                print(i, x)
            return x.sum()
        """,
        """
        def f(x, n):

            def loop_body(i, x):
                ac.print_(i, x)
                return ()
            ac.for_stmt(ac.range_(n), None, loop_body, (), (), (x,))
            return x.sum()
        """,
    )


def test_super_call():
    assert_converts(
        """
        def forward(self, x):
            return super().forward(x)
        """,
        """
        def forward(self, x):
            return ac.super_method(__class__, self, 'forward')(x)
        """,
    )


def test_super_call_with_its_class_and_object():
    # (xitorch's `super(MatrixLinearOperator, self).__init__(...)`: the base's method converted)
    assert_converts(
        """
        def __init__(self, mat):
            super(Matrix, self).__init__(mat.shape)
        """,
        """
        def __init__(self, mat):
            ac.super_method(Matrix, self, '__init__')(mat.shape)
        """,
    )


def test_methods_of_local_and_computed_values():
    # A user method of a local or computed value is converted; tensor methods stay as written
    # (not the names torch keeps only as "removed" stubs: `solve`, torchmin's subproblems').
    assert_converts(
        """
        def f(x, tol):
            solver = Solver(tol)
            h = make(tol).run(x).argmax(-1)
            y = Solver(tol).clip(x) + make(tol).clip(x) + make(tol).solve(x)
            return solver.norm(x) + self.lin(h).sum() + fns[0](x) + obj.step(x)
        """,
        """
        def f(x, tol):
            solver = ac.converted_call(Solver, tol)
            h = ac.converted_method_call(ac.converted_call(make, tol), 'run', x).argmax(-1)
            y = ac.converted_method_call(ac.converted_call(Solver, tol), 'clip', x) + ac.converted_call(make, tol).clip(x) + ac.converted_method_call(ac.converted_call(make, tol), 'solve', x)
            return ac.binary(ac.binary(ac.binary(ac.converted_method_call(solver, 'norm', x), '+', ac.converted_call(self.lin, h).sum()), '+', ac.converted_call(fns[0], x)), '+', ac.converted_call(obj.step, x))
        """,
        {"Solver": type("Solver", (), {"__module__": "user"})},
    )


def test_methods_of_self_attributes():
    assert_converts(
        """
        def forward(self, x):
            return self.solver.run(x) + self.weight.t() + ", ".join(names)
        """,
        """
        def forward(self, x):
            return ac.converted_method_call(self.solver, 'run', x) + ac.converted_method_call(self.weight, 't') + ', '.join(names)
        """,
    )


def test_methods_named_like_tensor_methods_of_self_attributes_decide_by_the_receiver():
    # NOTE [a method named like a tensor method, on an attribute of self]: an in-place one
    # and one of a local stay as written
    assert_converts(
        """
        def inverse(self, z):
            self.buf.add_(z)
            return self.block.inverse(z) + z.inverse()
        """,
        """
        def inverse(self, z):
            self.buf.add_(z)
            return ac.converted_method_call(self.block, 'inverse', z) + z.inverse()
        """,
    )


def test_builtins_and_torch_functions_that_read_values():
    assert_converts(
        """
        def f(x, y, vals):
            return len(vals) + min(x, y) + int(y) + torch.equal(x, y) + abs(x)
        """,
        """
        def f(x, y, vals):
            return ac.binary(ac.binary(ac.binary(ac.len_(vals) + ac.min_(x, y), '+', ac.int_(y)), '+', ac.equal_(x, y)), '+', abs(x))
        """,
    )


def test_tensor_methods_that_read_values_go_through_the_runtime():
    # (a traced tensor's `allclose`, `equal`, `is_nonzero` give a 0-d bool tensor there, as
    # torch's functions of those names do; `x.sum()` stays as written)
    assert_converts(
        """
        def f(x, y):
            return x.allclose(y, rtol=1e-06), x.equal(y), x.sum().is_nonzero(), x.sum()
        """,
        """
        def f(x, y):
            return ac.converted_method_call(x, 'allclose', y, rtol=1e-06), ac.converted_method_call(x, 'equal', y), ac.converted_method_call(x.sum(), 'is_nonzero'), x.sum()
        """,
    )


def test_type_tests_go_through_the_runtime():
    # a number's stand-in, a symbolic number, a grown list answer for the Python value they
    # stand for (NOTE [type tests of staged values] in runtime/builtins.py)
    assert_converts(
        """
        def f(x, h):
            return isinstance(h, float), type(x) is list, type("C", (), {})
        """,
        """
        def f(x, h):
            return ac.isinstance_(h, float), ac.is_(ac.type_(x), list), ac.type_('C', (), {})
        """,
    )


def test_text_builtins_and_f_strings_go_through_the_runtime():
    # NOTE [text of traced tensors]: a traced value's text is a TracedText; a function making
    # text returns through `returned_` (NOTE [text returned under torch.compile])
    assert_converts(
        """
        def f(x, n):
            a = str(x.max())
            b = f"{n} of {x!r:>8}"
            c = f"plain {{braces}}"
            return a, b, c
        """,
        """
        def f(x, n):
            a = ac.str_(x.max(), source='x.max()')
            b = ac.fstring_(ac.formatted_(n, '', '', 'n'), ' of ', ac.formatted_(x, 'r', '>8', 'x'))
            c = f'plain {{braces}}'
            return ac.returned_((a, b, c))
        """,
    )


def test_the_functions_own_return_goes_through_the_runtime_and_no_nested_one():
    # TextReturnConverter finds the returns among the function's own statements (session 37):
    # the one the jump lowerings leave at its end, not a nested function's, a class's, a
    # lambda's or a body function's the control-flow pass wrote
    source = """
        def f(x, n):
            s = str(n)
            def inner(y):
                return y
            class Box:
                def get(self):
                    return 1
            g = lambda z: z
            with open(s) as fh:
                if n > 0:
                    return g(fh)
            return x
        """
    lines = [line.strip() for line in autoconv.to_code(function_from_source(source)).splitlines()]
    returns = [line for line in lines if line.startswith("return ")]
    assert returns[:2] == ["return y", "return 1"], returns
    assert [r for r in returns if "returned_(" in r] == [returns[-1]] == [lines[-1]], returns
    assert returns[-1].startswith("return ac.returned_(") and len(returns) > 3, returns


def test_calls_that_seed_save_or_read_a_generator_go_through_the_runtime():
    # NOTE [generator state in traced code]: refused at the line under a tracer; by any name the
    # converter can resolve, torch.manual_seed's wrapper (torch._dynamo's) included
    import random

    from torch import manual_seed

    assert_converts(
        """
        def f(x):
            with torch.random.fork_rng():
                manual_seed(0)
                torch.default_generator.manual_seed(1)
                random.seed(2)
                x = x + torch.rand(2)
            return x
        """,
        """
        def f(x):
            with ac.random_state_(torch.random.fork_rng, 'torch.random.fork_rng')():
                ac.random_state_(manual_seed, 'torch.random.manual_seed')(0)
                ac.random_state_(torch.default_generator.manual_seed, 'torch.Generator.manual_seed')(1)
                ac.random_state_(random.seed, 'random.seed')(2)
                x = x + torch.rand(2)
            return x
        """,
        {"manual_seed": manual_seed, "random": random},
    )


def test_clocks_draws_and_writes_go_through_the_runtime():
    # NOTE [clocks and Python random draws under a tracer], NOTE [writes to files in staged
    # bodies]: by any name the converter can resolve (a module's, an imported name, a method of
    # datetime's classes, of a global generator object or file)
    import datetime
    import io
    import random
    import time
    from time import perf_counter

    import numpy as np

    assert_converts(
        """
        def f(x):
            x = x + time.time() + perf_counter() + datetime.datetime.now().second
            x = x + random.random() + RNG.gauss(0.0, 1.0) + np.random.rand()
            torch.save(x, LOG)
            LOG.write(b'')
            open('f', 'w')
            return x
        """,
        """
        def f(x):
            x = x + ac.outside_value_(time.time, 'time.time', 'clock')() + ac.outside_value_(perf_counter, 'time.perf_counter', 'clock')() + ac.outside_value_(datetime.datetime.now, 'datetime.datetime.now', 'clock')().second
            x = x + ac.outside_value_(random.random, 'random.random', 'draw')() + ac.outside_value_(RNG.gauss, 'random.Random.gauss', 'draw')(0.0, 1.0) + ac.outside_value_(np.random.rand, 'numpy.random.rand', 'draw')()
            ac.outside_value_(torch.save, 'torch.save', 'write')(x, LOG)
            ac.outside_value_(LOG.write, 'BytesIO.write', 'write')(b'')
            ac.outside_value_(open, 'open', 'write')('f', 'w')
            return x
        """,
        {"time": time, "perf_counter": perf_counter, "datetime": datetime, "random": random,
         "RNG": random.Random(0), "np": np, "LOG": io.BytesIO()},
    )


def test_apply_of_a_global_is_given_the_class():
    # `Fn.apply(x)` of a custom autograd Function: the runtime is given the class, which dynamo
    # can inspect, not the bound `apply` (NOTE [custom autograd Functions]).
    assert_converts(
        """
        def f(x):
            return GradReverse.apply(x, 0.5) * 2
        """,
        """
        def f(x):
            return ac.binary(ac.converted_method_call(GradReverse, 'apply', x, 0.5), '*', 2)
        """,
    )


def test_other_methods_of_a_global_function_class_are_given_the_class():
    # `Fn.forward(ctx, x)` called directly: dynamo cannot take the type of the static method
    # read from the class (NOTE [a Function's methods called directly], tester44 s04)
    import torch

    class Doubling(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    assert_converts(
        """
        def f(x):
            return Doubling.forward(None, x) + 1
        """,
        """
        def f(x):
            return ac.function_method_call(Doubling, 'Doubling', 'forward', None, x) + 1
        """,
        {"Doubling": Doubling},
    )


def test_logging_calls_named_through_globals_are_given_their_logger():
    # NOTE [logging while tracing] (runtime/logs.py): dynamo can take the type of a logger, not
    # of its bound method (tester25 s07)
    import logging
    from logging import warning as warn_once

    assert_converts(
        """
        def f(x):
            log.info("sum %.3f", x.sum())
            logging.debug("x")
            warn_once("y")
            return x
        """,
        """
        def f(x):
            ac.logging_call(log, 'info', 'sum %.3f', x.sum())
            ac.logging_call(logging, 'debug', 'x')
            ac.logging_call(None, 'warning', 'y')
            return x
        """,
        {"log": logging.getLogger("t"), "logging": logging, "warn_once": warn_once},
    )


def test_arguments_of_maths_float_functions_read_a_traced_tensors_float():
    # (NOTE [math functions of traced tensors] in runtime/builtins.py) by the module's name and
    # by a name imported from math; a constant is left as it is, and so is another module's
    # function of the same name, and math's functions that do not read a float
    import math
    import numpy
    assert_converts(
        """
        def f(x, k):
            a = math.sqrt(x), sqrt(x.sum(), *k)
            return a, math.log(2.0), np.sqrt(x), math.floor(k)
        """,
        """
        def f(x, k):
            a = ac.number_call(math.sqrt, ac.math_argument(x)), ac.converted_call(sqrt, ac.math_argument(x.sum()), *k)
            return a, math.log(2.0), np.sqrt(x), math.floor(k)
        """,
        {"math": math, "sqrt": math.sqrt, "np": numpy},
    )


def test_a_comprehension_over_a_grown_list_is_the_runtimes():
    # (NOTE [a comprehension over a grown list] in runtime/operators.py) one `for` over a name
    # the function appends to, its `if` given to the runtime; the others are left as they are
    assert_converts(
        """
        def f(x):
            vals = []
            vals.append(x)
            return [int(v) for v in vals], [v for v in vals if v], [v for v in x]
        """,
        """
        def f(x):
            vals = []
            vals = ac.list_append(vals, x)
            return ac.list_comprehension(vals, lambda v: ac.int_(v)), ac.list_comprehension(vals, lambda v: v, lambda v: v, '[v for v in vals if v]'), [v for v in x]
        """,
    )
