"""Typical 10-40 line functions with loops, ifs, breaks, continues and early returns.

`benchmarks/conversion.py` converts each of them (autoconv and, when installed, diastatic-malt);
`benchmarks/python_values.py` and `benchmarks/staged.py` run a few of them. They work on Python
values and on tensors alike.
"""

import torch


def collatz_steps(n):
    """How many Collatz steps take `n` down to 1."""
    steps = 0
    while n > 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps


def newton_sqrt(x, tol=1e-10):
    """The square root of `x` by Newton's method, to within `tol` of x."""
    y = x
    while abs(y * y - x) > tol:
        y = (y + x / y) / 2
    return y


def first_index_over(values, threshold):
    """The index of the first value above `threshold`, or -1; stops at a negative value."""
    found = -1
    for i in range(len(values)):
        v = values[i]
        if v < 0:
            break
        if v > threshold:
            found = i
            break
    return found


def piecewise(x, low=0.0, high=1.0):
    """A clipped, piecewise-polynomial response with an early return per region."""
    if x < low:
        return low
    if x > high:
        return high
    span = high - low
    t = (x - low) / span
    if t < 0.5:
        y = 2 * t * t
    else:
        u = 1 - t
        y = 1 - 2 * u * u
    return low + span * y


def sum_of_primes(limit):
    """The sum of the primes below `limit`, by trial division."""
    total = 0
    for n in range(2, limit):
        is_prime = True
        d = 2
        while d * d <= n:
            if n % d == 0:
                is_prime = False
                break
            d += 1
        if not is_prime:
            continue
        total += n
    return total


def binary_search(values, target):
    """The index of `target` in the sorted `values`, or -1."""
    lo = 0
    hi = len(values) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        v = values[mid]
        if v == target:
            return mid
        elif v < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def gcd_lcm(a, b):
    """(gcd, lcm) of two positive integers; (0, 0) when either is not positive."""
    if a <= 0 or b <= 0:
        return 0, 0
    x, y = a, b
    while y != 0:
        x, y = y, x % y
    g = x
    lcm = a // g * b
    return g, lcm


def clipped_running_mean(xs, clip=3.0, max_items=100):
    """Mean of `xs` with each value clipped to +-clip; stops after `max_items` or a NaN."""
    total = 0.0
    count = 0
    for x in xs:
        if count >= max_items:
            break
        if x != x:  # NaN
            break
        if x > clip:
            x = clip
        elif x < -clip:
            x = -clip
        total = total + x
        count += 1
    if count == 0:
        return 0.0
    return total / count


def row_abs_sum(x):
    """For each row of a 2-D tensor: the row sum if it is positive, else minus the sum of its
    absolute values (a loop over rows with an if, on tensors)."""
    out = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        s = x[i].sum()
        if s > 0:
            out[i] = s
        else:
            out[i] = -x[i].abs().sum()
    return out


# The functions conversion.py converts: realistic, mixed control flow, 10-40 lines each.
CONVERSION_SAMPLES = [
    collatz_steps,
    newton_sqrt,
    first_index_over,
    piecewise,
    sum_of_primes,
    binary_search,
    gcd_lcm,
    clipped_running_mean,
    row_abs_sum,
]
