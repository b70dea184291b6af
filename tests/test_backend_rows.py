"""The python backend's rewrites of a vector's layer (NOTE [a vector's linear on its row] in
autoconv/graph_passes.py, `flat_argmax` in autoconv/python_backend.py): a 1-d `linear` of a
squeezed [1, K] row runs on the row, and an `argmax` of a flattening view on the tensor
viewed. Both give plain Python's result bit for bit."""

import re

import torch

import autoconv
from support import assert_same_exactly


class _Decoder(torch.nn.Module):
    """A greedy decoder over an unbatched GRU cell (benchmarks/loops.py's gru_greedy)."""

    def __init__(self, vocab=16, hidden=32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.cell = torch.nn.GRUCell(hidden, hidden)
        self.out = torch.nn.Linear(hidden, vocab)

    def forward(self, h):
        token = torch.tensor(1)
        tokens = []
        steps = 0
        while token != 0 and steps < 24:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
            steps += 1
        return torch.stack(tokens), h


def _source(function) -> str:
    return "\n".join(c._runner.__autoconv_source__ for c in function.concrete_functions)


def test_a_decoder_s_linear_runs_on_the_cell_s_row_bit_for_bit():
    with torch.no_grad():
        for seed in range(3):
            torch.manual_seed(seed)
            model = _Decoder().eval()
            converted = autoconv.autoconv(model)
            for h in torch.randn(4, 32, generator=torch.Generator().manual_seed(seed)):
                got, want = converted(h), model(h)
                for g, w in zip(got, want):
                    assert g.dtype == w.dtype and torch.equal(g, w), (seed, got, want)
            source = _source(converted)
            cell = re.search(r"(v\d+_gru_cell\w*) = gru_cell\(", source).group(1)
            assert re.search(rf"= linear\({cell}, ", source), source
            assert re.search(r"= argmax\(v\d+_linear\w*\)", source), source


def test_a_vector_of_a_row_that_is_not_contiguous():
    # (the row a strided slice: its 1-d linear is left as make_fx recorded it)
    layer = torch.nn.Linear(4, 3)

    def head(x):
        row = x[:, ::2]
        return layer(row.squeeze(0)).argmax(-1), layer(x[:, :4].squeeze(0))

    with torch.no_grad():
        inputs = [(torch.randn(1, 8, generator=torch.Generator().manual_seed(i)),)
                  for i in range(4)]
        assert_same_exactly(head, inputs, compile=False)


def test_argmax_of_a_flattening_view_with_ties_and_nan():
    def flat_max(x):
        return x.view(-1).argmax(-1), x.reshape(12).argmax(0), x.flatten().argmax(dim=0)

    inputs = [(torch.tensor([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 1.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0]]),),
              (torch.tensor([[1.0, float("nan"), 3.0, 0.0], [3.0, float("nan"), 1.0, 0.0],
                             [0.0, 0.0, 9.0, 0.0]]),),
              (torch.zeros(3, 4),)]
    assert_same_exactly(flat_max, inputs, compile=False)
