"""ListConverter: append / extend statements become assignments of the list."""

from support import assert_converts


def test_append_extend():
    assert_converts(
        """
        def f(xs):
            out = []
            for x in xs:
                out.append(x)
            out.extend(xs)
            return out
        """,
        """
        def f(xs):
            out = []

            def loop_body(x, out):
                out = ac.list_append(out, x)
                return out,
            out, = ac.for_stmt(xs, None, loop_body, (out,), ('out',))
            out = ac.list_extend(out, xs)
            return out
        """,
    )


def test_while_growing_a_list_gets_the_trip_bound_of_its_test():
    # `steps < limit`, steps moved by 1 once per trip: at most limit - steps more trips, which
    # sizes the list before the one staged loop (no counting loop).
    assert_converts(
        """
        def f(x, limit):
            out = []
            steps = 0
            while x > 0 and steps < limit:
                x = x - 1
                out.append(x)
                steps += 1
            return out
        """,
        """
        def f(x, limit):
            out = []
            steps = 0

            def loop_test(out, steps, x, limit):
                return ac.and_(x > 0, lambda limit, steps: ac.compare(steps, '<', limit), (limit, steps), pure=True)

            def loop_body(out, steps, x, limit):
                x = x - 1
                out = ac.list_append(out, x)
                steps = ac.aug_assign(steps, '+=', 1)
                return out, steps, x

            def loop_trips(out, steps, x, limit):
                return ac.trips_bound(x, '>', 0, -1), ac.trips_bound(steps, '<', limit, 1)
            out, steps, x = ac.while_stmt(loop_test, loop_body, (out, steps, x), ('out', 'steps', 'x'), (limit,), trips=loop_trips, kept=(1,))
            return out
        """,
    )


def test_no_trip_bound_where_the_test_does_not_bound_the_trips():
    # A step that is not once per trip (in an `if`), a bound the body changes, a counter
    # moving away from its bound, a `continue` that may skip the step: the loop keeps its
    # counting run (no trips=).
    for body in (["if x > 1:", "    i += 1"], ["n = n + 1", "i += 1"], ["i -= 1"],
                 ["if x > 1:", "    continue", "i += 1"]):
        lines = ["def f(x, n):", "    out = []", "    i = 0", "    while x > 0 and i < n:",
                 "        x = x / 2", "        out.append(x)",
                 *("        " + line for line in body), "    return out"]
        assert "trips=" not in to_code_of("\n".join(lines) + "\n"), body


def to_code_of(source):
    from support import function_from_source

    import autoconv
    return autoconv.to_code(function_from_source(source))


def test_a_nested_function_appending_to_its_enclosing_functions_list():
    # assigning `vals = ac.list_append(vals, ...)` in `push` made `vals` local to it: an
    # UnboundLocalError blamed on the user's branch (tester t11 repro 12)
    assert_converts(
        """
        def f(x):
            vals = []

            def push(v):
                vals.append(v)
            push(x)
            return vals
        """,
        """
        def f(x):
            vals = []

            def push(v):
                ac.enclosing_list_append(vals, 'append', v, 'vals')
            push(x)
            return vals
        """,
    )


def test_a_list_held_at_a_name_or_constant_key_is_grown_by_the_runtime():
    # `t[i].append(v)` became a store `t[i] = ...`, a TypeError for a tuple `t` where Python
    # appends: the runtime stores back only a new list, into a container that takes one
    assert_converts(
        """
        def f(x, i):
            t = ([], [])
            d = {"a": []}
            t[i].append(x)
            t[0].extend([x])
            d["a"].append(x)
            return t, d
        """,
        """
        def f(x, i):
            t = [], []
            d = {'a': []}
            t = ac.held_list_append(t, i, 'append', x)
            t = ac.held_list_append(t, 0, 'extend', [x])
            d = ac.held_list_append(d, 'a', 'append', x)
            return t, d
        """,
    )


def test_a_list_a_dict_makes_by_setdefault_is_grown_as_one_it_holds():
    # `hist.setdefault("loss", []).append(v)`, as training loops record histories: the key
    # set by the dict's own setdefault, then grown as `hist["loss"].append(v)` is (a default
    # other than an empty list is left as written)
    assert_converts(
        """
        def f(x, k):
            hist = {}
            hist.setdefault("loss", []).append(x)
            hist.setdefault(k, []).extend([x])
            hist.setdefault("n", [1]).append(x)
            return hist
        """,
        """
        def f(x, k):
            hist = {}
            hist = ac.held_setdefault(hist, 'loss')
            hist = ac.held_list_append(hist, 'loss', 'append', x)
            hist = ac.held_setdefault(hist, k)
            hist = ac.held_list_append(hist, k, 'extend', [x])
            ac.converted_method_call(ac.converted_method_call(hist, 'setdefault', 'n', [1]), 'append', x)
            return hist
        """,
    )


def test_a_name_changed_only_through_its_items_is_marked_for_the_runtime():
    # `log["err"].append(v)` and `log["n"] = v` change `log`'s object, never the name: a Python
    # number there (`log=False`) cannot change, and the runtime keeps it out of the staged
    # statement (NOTE [Python values changed only through their items] in runtime/operators.py)
    assert_converts(
        """
        def f(x, log=False):
            while x > 0:
                x = x - 1
                if log:
                    log["err"].append(x)
                    log["n"] = x
            return x
        """,
        """
        def f(x, log=False):

            def loop_test(log, x):
                return x > 0

            def loop_body(log, x):
                x = x - 1

                def if_true(log, x):
                    log = ac.held_list_append(log, 'err', 'append', x)
                    log['n'] = x
                    return log,
                log, = ac.if_stmt(log, if_true, None, (log,), ('log',), (x,), renewed=(0,), flagged=(0,), items_only=(0,))
                return log, x

            def loop_trips(log, x):
                return ac.trips_bound(x, '>', 0, -1),
            log, x = ac.while_stmt(loop_test, loop_body, (log, x), ('log', 'x'), trips=loop_trips, renewed=(0,), items_only=(0,))
            return x
        """,
    )
