"""torch-kmeans 0.2.0's ConstrainedKMeans (setup.cfg `real`), found by ckm55 (issue 9): its
assignment loop's `if not_assigned.any():` (constr_kmeans.py:442), staged in the body of
Lloyd's loop, updates tensors whose last size is `k_max = torch.max(k).cpu().item() + 1`, a
size only the graph knows. torch.cond's merge of their strides raised torch's data-dependent
guard, reported as "`if not_assigned.any():` asks Python for the value of a traced tensor"
(NOTE [cond outputs of data-dependent sizes] in runtime/staging/tracers/make_fx.py; the kind,
library-free: tests/reference/test_cond_data_dependent_sizes.py). Under torch.export the model
stays refused at kmeans.py:177 (`self._k_max = int(k.max())`), as KMeans is
(tests/real/test_tester54.py); torch.compile fails with dynamo's "assume_constant_result
argument conversion failed" (open)."""

from __future__ import annotations

import pytest
import torch

import autoconv

try:
    from torch_kmeans import ConstrainedKMeans
except ImportError:
    ConstrainedKMeans = None


def _points(seed, spread, low, high):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    noise = spread * torch.randn(3, 2, 2, generator=generator)
    weights = low + (high - low) * torch.rand(1, 6, generator=generator)
    return (centers[:, None, :] + noise).reshape(1, 6, 2), weights


# The first and last never fill a cluster; the others do, so that Python runs the handler of
# `if not_assigned.any():` (4, 3 and 2 times) and, for the second and third, gives other
# labels than KMeans ([[0, 0, 2, 1, 1, 2]] and [[0, 0, 1, 2, 1, 2]])
_DATA = [(0, 0.3, 0.05, 0.08), (5, 2.5, 0.3, 0.5), (6, 2.5, 0.3, 0.5), (8, 3.0, 0.3, 0.45),
         (1, 3.0, 0.3, 0.5)]


def test_constrained_kmeans_in_replay():
    # (before: the StagingError above on every call; labels equal to Python's now)
    pytest.importorskip("torch_kmeans")
    model = ConstrainedKMeans(n_clusters=3, num_init=2, max_iter=3, tol=1e-4, seed=None,
                              verbose=False)
    function = autoconv.autoconv(model)
    for seed, spread, low, high in _DATA:
        x, weights = _points(seed, spread, low, high)
        torch.manual_seed(5)
        expected = model(x, weights=weights)
        torch.manual_seed(5)
        got = function(x, weights=weights)
        assert torch.equal(got.labels, expected.labels)
        torch.testing.assert_close(got.centers, expected.centers)
        torch.testing.assert_close(got.inertia, expected.inertia)
