"""torchcrf (pytorch-crf): CRF.decode with a mask of unequal lengths (Viterbi back-tracking over
a Python list of tensors sliced by each sequence's traced length)."""

import pytest
import torch

from tests.support import assert_same_result

torchcrf = pytest.importorskip("torchcrf")


def _inputs(lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    emissions = torch.randn(len(lengths), 5, 4, generator=generator)
    mask = torch.arange(5).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return emissions, mask


def test_decode_with_unequal_lengths():
    torch.manual_seed(0)
    crf = torchcrf.CRF(4, batch_first=True)

    def decode(emissions, mask):
        return crf.decode(emissions, mask)

    # Traced on the first; the others back-track a different number of steps per sequence.
    assert_same_result(decode, [_inputs([5, 3, 2], 0), _inputs([1, 5, 4], 1),
                                _inputs([2, 2, 5], 2)])


def test_decode_refuses_a_mask_whose_first_step_is_off():
    import autoconv

    torch.manual_seed(0)
    crf = torchcrf.CRF(4, batch_first=True)
    decode = autoconv.autoconv(lambda e, m: crf.decode(e, m))
    emissions, mask = _inputs([5, 3, 2], 0)
    decode(emissions, mask)
    mask[1] = False
    with pytest.raises(ValueError, match="mask of the first timestep must all be on"):
        decode(emissions, mask)


def test_tensors_of_the_decoded_lists():
    # (tester24 s10) torch.tensor of the lengths of the decoded lists (grown by decode's
    # back-tracking loop, a count each) raised torch's "data is not allocated yet" in replay and
    # export; torch.tensor of each list was refused as a len() of torchcrf's `best_tags`
    from tests.support import assert_same_exactly

    torch.manual_seed(0)
    crf = torchcrf.CRF(4, batch_first=True)

    def lengths_and_tags(emissions, mask):
        paths = crf.decode(emissions, mask)
        return torch.tensor([len(p) for p in paths]), [
            torch.tensor(p, dtype=torch.long) for p in paths]

    assert_same_exactly(lengths_and_tags, [_inputs([5, 3, 2], 0), _inputs([1, 5, 4], 1)])
