"""A staged `if` whose state has a size only the graph knows (`int(k.max())`, a count a mask
gave) in two or more dimensions (NOTE [cond outputs of data-dependent sizes] in
runtime/staging/tracers/make_fx.py): torch-kmeans' ConstrainedKMeans, without the library."""

from __future__ import annotations

import torch

from support import assert_same_result

K = torch.tensor([2, 1])
INPUTS = [(torch.tensor([1.0, -1.0, 2.0]), K), (torch.tensor([-1.0, -2.0, -3.0]), K),
          (torch.tensor([3.0, 1.0, -2.0]), K),
          (torch.tensor([1.0, 1.0, 1.0]), torch.tensor([3, 0]))]


def capacities(x, k):
    n = int(k.max()) + 1
    cap = torch.ones(2, n)
    i = torch.tensor(0)
    while i < 3:
        if x[i] > 0:  # (in a loop body: no specialisation)
            cap[0] = cap[0] - x[i]
        i = i + 1
    return cap.sum(1)


def test_a_staged_if_updating_a_tensor_of_a_data_dependent_size_in_a_loop():
    # (before: torch's data-dependent guard in torch.cond's merge of the strides of `cap`,
    # (2, u0 + 1), reported as "`if x[i] > 0:` asks Python for the value of a traced tensor":
    # Python's [-6, 3], [3, 3], [-9, 3] and [-8, 4] now, in replay and the saved export).
    # torch.compile still gives torch's "Could not guard on data-dependent expression
    # Eq(Max(1, u0 + 1), 1)": dynamo traces the branches itself (open, in the changelog)
    assert_same_result(capacities, INPUTS, compile=False)
