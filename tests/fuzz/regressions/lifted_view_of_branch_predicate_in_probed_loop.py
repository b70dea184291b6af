r"""A staged `if` whose branch holds a `while` under a Python `if`, beside a raise.

Probing the branch (for the lists it grows) staged the loop with the `if`'s predicate on its
path, a view (`view(lt, [])`) its test reads by closure; lifting it into an operand of the loop
made the placeholder's fake value with make_fx's proxy mode on, which traced the view's replay
(`as_strided` of a fresh fake base) into the branch's graph. That base, a tensor no trace
tracks, was lifted as a constant up to the top graph: "left a value of the trace (FakeTensor)
as the graph constant". The fake values are now made outside the trace. Fuzz seed 20261129,
program 9."""

import torch


class State:

    def __init__(self, v):
        self.v = v

    def bump(self, t):
        return self.v % 5 + t

    def step(self, t):
        self.v = (self.v + t) % 7

def fuzz_fn(x, y, k):
    s = State(x + 1)
    d = {'k': y + 0}
    a = y + 2
    b = y + 0
    c = x + 1
    p = k + 1
    q = k + 1
    vs = []
    if not 2 < s.v:
        if x > 5 and -2 < x > d['k'] or d['k'] < 5 or 0 <= p:
            raise ValueError('fuzz')
        if q or (a or c <= s.v or d['k'] > 2):
            guard0 = 0
            while guard0 < 2 and s.v < d['k']:
                guard0 += 1
                s.step(b * 1)
            else:
                if (a >= c or c > -1 or a < a) and q <= -1:
                    raise UnboundLocalError('fuzz')
        elif (s.v - 1).item() == p + s.v:
            vs.append(b + 2)
        else:
            p = p % 10
    return (d['k'] + (torch.stack(vs).sum() if len(vs) > 0 else torch.tensor(0)), b * (a % 4) + (5 - x))


# x, y: 0-d int64 tensors; k: a Python int
INPUTS = [(6, -6, 2), (0, 3, 2), (-3, 2, 2)]
XFAIL = None
# Under torch.compile dynamo refuses `s.step(...)` in the staged loop (a method changing an
# object the body only reads: its "Unsafe side effect"), README's open item, on main as well.
COMPILE = False
