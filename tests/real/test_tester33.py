"""Findings of tester 33: published code and practitioners' loops run as a new user would, in
autoconv's replay (traced once, replayed on inputs that take other paths), a saved and loaded
torch.export program and torch.compile(fullgraph=True), against plain Python.

Sources (each test names its own):
- kornia 0.9.0, `kornia.image.draw.draw_point2d` (a `raise ValueError` under a tensor `.any()`,
  then `image[:, y, x] = color`): s01, and the same write in a staged `if` under
  `torch.no_grad()` (inference code drawing into an image): s02.

A finding not fixed is a strict xfail whose reason starts with its id (tester33 sNN).
"""

import pytest
import torch

import autoconv
from tests.support import Calling, assert_same_result


# --- s01: kornia's draw_point2d (fixed) -----------------------------------------------------
# kornia/image/draw.py: `if ((x < 0) | ... ).any(): raise ValueError(...)`, then
# `image[:, y, x] = color.expand(...)`, an `index_put_` whose indices hold a None for the
# leading slice. autoconv's replay (python backend) called it through torch's C binding
# `torch.index_put`, which refuses a None in the indices: an internal TypeError ("expected
# Tensor as element 0 in argument 1, but got NoneType") from "<autoconv graph ...>" on every
# call. torch.export and torch.compile were right.

def _draw(image, points):
    from kornia.image.draw import draw_point2d
    return draw_point2d(image.clone(), points, torch.tensor([1.0]))


def test_s01_kornia_draw_point2d_replays():
    image = torch.zeros(1, 5, 5)
    assert_same_result(_draw, [(image, torch.tensor([[1., 2.], [3., 4.]])),
                               (image, torch.tensor([[0., 0.], [4., 4.]]))])
    f = autoconv.autoconv(_draw)
    f(image, torch.tensor([[1., 2.], [3., 4.]]))
    with pytest.raises(ValueError, match="points must lie inside"):
        f(image, torch.tensor([[1., 2.], [7., 4.]]))


def _scatter_columns(image, ys, xs):
    image = image.clone()
    if (ys >= 0).all():
        image[:, ys, xs] = 1.0
        image[..., ys, 0] += image[:, ys, 1]
    return image


@pytest.mark.parametrize("grad", [True, False])
def test_s01_index_put_with_a_slice_before_the_index_tensors(grad):
    # The kind, outside kornia: both `index_put` and its in-place form (chosen with grad off),
    # at the top level and in a staged branch.
    image = torch.zeros(2, 4, 4)
    with torch.set_grad_enabled(grad):
        assert_same_result(_scatter_columns, [
            (image, torch.tensor([0, 3]), torch.tensor([1, 2])),
            (image, torch.tensor([-1, 3]), torch.tensor([1, 2])),
            (image, torch.tensor([2, 2]), torch.tensor([0, 3]))])


# --- s02: an in-place write in a staged if under no_grad, in torch.export (fixed) -----------
# Under torch.no_grad(), a staged `if` chooses again with grad on each state value a branch
# gives back unchanged (NOTE [values passed through a staged if under no_grad]), by identity:
# the branch's copy of `image`, written in place (`image[:, ys, xs] = 1.0`) and given back,
# was taken as passed through, and `where(cond, image_before, result)` undid the write. The
# exported program returned the image as it was before the `if` on the path that writes it
# (silently wrong; the program before saving, and saved and loaded). Replay and
# torch.compile were right.

def _drawn_if_valid(image, ys, xs):
    image = image.clone()
    if (ys >= 0).all():
        image[:, ys, xs] = 1.0
    return image


def test_s02_in_place_write_in_a_staged_if_under_no_grad_exports():
    image = torch.zeros(2, 4, 4)
    inputs = [(image, torch.tensor([0, 3]), torch.tensor([1, 2])),
              (image, torch.tensor([-1, 3]), torch.tensor([1, 2]))]
    with torch.no_grad():
        program = torch.export.export(Calling(autoconv.convert(_drawn_if_valid)), inputs[0],
                                      strict=False).module()
        for args in inputs:
            torch.testing.assert_close(program(*args), _drawn_if_valid(*args))
        assert_same_result(_drawn_if_valid, inputs)
