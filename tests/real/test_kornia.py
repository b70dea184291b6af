"""kornia 0.9.0: union-find connected components (nested `while True` with `torch.equal`
breaks), morphological reconstruction (`while changed` with `changed = bool(tensor)`), and
canny (hysteresis `while (...).any()`, behind a bare annotation and a torch alias)."""

import pytest
import torch

import autoconv
from tests.support import assert_close, assert_same_result

kornia = pytest.importorskip("kornia")
from kornia.contrib.connected_components import connected_components_union_find  # noqa: E402
from kornia.morphology import reconstruction  # noqa: E402


def _image(seed, p):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 1, 6, 6, generator=generator) < p).float()


def components(image):
    return connected_components_union_find(image)


@pytest.mark.slow  # 24 s on the loaded 2-core machine
def test_connected_components_union_find():
    assert_same_result(components, [_image(0, 0.5), _image(1, 0.7), _image(2, 0.3)],
                       compile=False)


def reconstruct(seed, mask):
    return reconstruction(seed, mask)


@pytest.mark.slow  # 31 s on the loaded 2-core machine
def test_morphological_reconstruction():
    masks = [_image(i, 0.6) for i in range(2)]
    seeds = [m * (torch.rand(m.shape, generator=torch.Generator().manual_seed(9)) < 0.3)
             for m in masks]
    assert_same_result(reconstruct, list(zip(seeds, masks)), compile=False)


def canny(image):
    return kornia.filters.canny(image)


def _images():
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(1, 1, 8, 8, generator=generator) for _ in range(2)]


@pytest.mark.slow  # 66 s: dynamo traces all of canny
def test_canny_exports_and_compiles():
    # Under export and compile kornia skips its sigma check; canny's hysteresis loop is its own
    # torch.while_loop under export and autoconv's under compile.
    images = _images()
    expected = [canny(image) for image in images]
    program = torch.export.export(_Canny(), (images[0],), strict=False).module()
    torch._dynamo.reset()
    compiled = torch.compile(autoconv.convert(canny), fullgraph=True, backend="eager")
    for image, want in zip(images, expected):
        assert_close(program(image), want)
        assert_close(compiled(image), want)


class _Canny(torch.nn.Module):
    def forward(self, image):
        return autoconv.convert(canny)(image)


def test_canny_replay_specialises_the_sigma_message_chosen_by_a_tensor():
    # gaussian.py:208 `KORNIA_CHECK(positive, "..." if positive else f"...")` with
    # `positive = bool((host_sigma > 0).all())`: a str chosen by a traced bool cannot be a
    # torch.cond; at the top level the trace follows the value it has, under a guard (NOTE
    # [specialisation]), and replay equals kornia's own result on other images.
    images = _images()
    function = autoconv.autoconv(canny)
    for image in images:
        for got, want in zip(function(image), canny(image)):
            assert_close(got, want)


def _descriptors(seed, near):
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(6, 8, generator=generator)
    b = torch.cat([a[:near] + 0.01 * torch.randn(near, 8, generator=generator),
                   torch.randn(4, 8, generator=generator)])
    return a, b


def snn(a, b):
    return kornia.feature.match_snn(a, b, 0.8)


def test_match_snn():
    # (tester24 s11) the matches' mask-sized distances, an early return of empty tensors where
    # there are none: refused in replay and export as a tensor "updated in place here". Replay
    # and compile equal kornia's own; under export kornia's _cdist takes another formula
    # (is_exporting), so the distances are close, the indices equal.
    far = torch.randn(1, 8, generator=torch.Generator().manual_seed(3))
    # (seven near copies of one far descriptor: every ratio near 1, no match)
    none = (_descriptors(1, 0)[0], far.repeat(7, 1) + 1e-4 * torch.arange(7.0).unsqueeze(1))
    inputs = [_descriptors(0, 3), none, _descriptors(2, 3)]
    assert_same_result(snn, inputs, export=False)
    program = torch.export.export(_Snn(), inputs[0], strict=False).module()
    for a, b in inputs:
        (dist, idx), (want_dist, want_idx) = program(a, b), snn(a, b)
        assert torch.equal(idx, want_idx)
        torch.testing.assert_close(dist, want_dist, atol=1e-3, rtol=0.1)


class _Snn(torch.nn.Module):
    def forward(self, a, b):
        return autoconv.convert(snn)(a, b)
