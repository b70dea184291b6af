"""Kinds found by tester 54 on torch-kmeans (tests/real/test_tester54.py), without the library:
a condition whose value cannot be computed guessed into a branch that raises, a
`@staticmethod @torch.jit.script` method under torch.compile, and the text of a shape with a
data-dependent size."""

from __future__ import annotations

import pytest
import torch

import autoconv
from support import assert_same_result

X = torch.arange(12.0).reshape(1, 6, 2)


def checked(c, k_max):
    if c.size(1) != k_max:
        raise ValueError(f"centers needs {k_max} rows, got {tuple(c.shape)}")
    return c.unsqueeze(1)


def centers_of(x, k):
    # (torch.multinomial's size is data-dependent: the `if` cannot be staged, torch.cond's
    # merge of the unsqueezed outputs' strides refuses, nor its value computed for the guard)
    k_max = int(k.max())
    rows = torch.multinomial(torch.ones(1, x.shape[1]), num_samples=k.min().item())
    c = x.gather(index=rows[:, :, None].expand(1, -1, x.shape[2]), dim=1)
    return checked(c, k_max).sum((1, 2))


def test_a_guessed_condition_avoids_the_branch_that_raises():
    # (before: every call raised "centers needs {k_max} rows, got (1, u1, 2)" while traced,
    # where Python raises nothing: NOTE [a guessed condition avoids the branch that raises])
    function = autoconv.autoconv(centers_of)
    for k in ([3, 3], [2, 2], [5, 5]):
        torch.manual_seed(0)
        expected = centers_of(X, torch.tensor(k))
        torch.manual_seed(0)
        assert torch.equal(function(X, torch.tensor(k)), expected)
    with pytest.raises(ValueError, match="centers needs"):
        function(X, torch.tensor([2, 4]))  # (Python raises too)
    assert function.trace_count == 1


class Doubling(torch.nn.Module):
    @staticmethod
    @torch.jit.script
    def shift(a: torch.Tensor) -> torch.Tensor:
        return a * 2

    def forward(self, x):
        if x.sum() > 0:
            x = self.shift(x)
        return x + 1


def test_a_script_staticmethod_called_in_a_staged_branch_compiled():
    # (before: dynamo's "assume_constant_result argument conversion failed" in an
    # UncapturedHigherOrderOpError: NOTE [script methods of a class] in runtime/calls.py)
    model = Doubling()
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(model), fullgraph=True, backend="eager")
    for x in (torch.ones(2), -torch.ones(2)):
        assert torch.equal(compiled(x), model(x))
    staged = autoconv.autoconv(model)
    for x in (torch.ones(2), -torch.ones(2)):
        assert torch.equal(staged(x), model(x))


def drawn_rows_sum(x, k):
    rows = torch.multinomial(torch.ones(x.shape[0]), num_samples=k.max().item())
    c = x[rows]
    if c.sum() > 100:
        raise ValueError(f"sum too large for rows of shape {tuple(c.shape)}")
    return c.sum()


def test_the_text_of_a_shape_with_a_data_dependent_size_compiled():
    # (before: dynamo's "Failed to trace builtin operator `str` with argument types ['tuple']"
    # on every input: NOTE [text of a shape with traced sizes] in runtime/text.py)
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(drawn_rows_sum), fullgraph=True, backend="eager")
    torch.manual_seed(0)
    expected = drawn_rows_sum(torch.ones(6), torch.tensor([3]))
    torch.manual_seed(0)
    assert torch.equal(compiled(torch.ones(6), torch.tensor([3])), expected)
    with pytest.raises(Exception, match=r"sum too large for rows of shape \(.*,\)"):
        compiled(torch.ones(6) * 50, torch.tensor([3]))
    staged = autoconv.autoconv(drawn_rows_sum)
    with pytest.raises(ValueError, match=r"sum too large for rows of shape \(.*,\)"):
        staged(torch.ones(6) * 50, torch.tensor([3]))


def bound_in_a_try(x):
    out = x.sum() * 0
    for i in range(2):
        if (x > i).any():
            try:
                w = x * 2
            except RuntimeError:
                w = x
            out = out + w.max()
    return out


def summed_until(x):
    total = x.sum() * 0
    for j in range(3):
        total = total + bound_in_a_try(x + j)
        if total > 20:
            break
    return total


def test_a_name_bound_by_a_try_and_its_handler_inside_an_if_in_a_loop():
    # (torch-kmeans' ConstrainedKMeans, constr_kmeans.py:442: "'w' has no value in the false
    # branch but is used afterwards", a false refusal; at the top level the `if` specialises.
    # NOTE [liveness of a try] in autoconv/analysis/liveness.py: `w` is not live before the
    # `try`, so not state of the `for`.) Python gives 24.0 and 10.0.
    inputs = [torch.tensor([0.5, 2.5]), torch.tensor([-1.0, 0.0])]
    assert [summed_until(x).item() for x in inputs] == [24.0, 10.0]
    assert_same_result(summed_until, inputs)
