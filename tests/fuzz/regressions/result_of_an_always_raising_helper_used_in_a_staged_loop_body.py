r"""A staged `while` whose body returns a value computed from a helper that always raises
(`h1(...) + 0`, `h1` raising UnboundLocalError), on inputs where Python runs no trip (returns
`(a, a)`): tracing the body met the raise, and the code after it ran on a None, an internal
TypeError ("unsupported operand type(s) for +: 'NoneType' and 'int'") escaping to the user.
Minimised from fuzz seed 4601, program 98 (session 46; also at session 45's 0ae9ca7). Session 47
(wrong47): a body that raised at its own level never completes a trip, so where its staging then
fails the loop becomes an assertion, with the raise's message, that its test is false (NOTE [a
loop body that always raises] in runtime/operators.py): replay raises the helper's exception
where Python enters the loop and returns `(a, a)` elsewhere. COMPILE = False: under
torch.compile the body's raise cannot be watched, and dynamo still stops at the None's use (its
"Observed exception"): the strict xfail tests/reference/test_jumps.py::
test_a_loop_body_using_a_helper_whose_every_path_raises_under_compile."""

import torch


def h0(x, y, k):
    q = 0

def h1(x, y, k):
    raise UnboundLocalError('fuzz')

def fuzz_fn(x, y, k):
    a = torch.tensor(3)
    guard0 = 0
    while 0 >= y and guard0 < 2:
        guard0 += 1
        return (h0(0, h1(0, 0, 0) + 0, 0), 0)
    return (a, a)


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(3, 5, 2)]
XFAIL = None
COMPILE = False
