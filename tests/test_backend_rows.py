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


# --- row writes kept until the loop ends (NOTE [row writes kept until the loop ends] in
# autoconv/python_backend.py, replay42) --------------------------------------------------

class _UnboundedDecoder(_Decoder):
    def forward(self, h):
        token = torch.tensor(1)
        tokens = []
        while token != 0:
            h = self.cell(self.embed(token), h)
            token = self.out(h).argmax(-1)
            tokens.append(token)
        return torch.stack(tokens), h


def _decoders():
    """(model, its inputs) of the bounded decoder and of the unbounded one (the inputs of
    seeds whose tokens reach EOS: most never do)."""
    torch.manual_seed(1)  # 24 (the bound), 4, 2 and 7 tokens
    yield _Decoder().eval(), torch.randn(6, 32, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(4)  # 1, 11, 6 and 9 tokens
    yield (_UnboundedDecoder().eval(),
           torch.randn(6, 32, generator=torch.Generator().manual_seed(4))[:5])


def test_a_decoder_s_tokens_are_written_when_its_loop_ends_bit_for_bit():
    with torch.no_grad():
        lengths = set()
        for model, inputs in _decoders():
            converted = autoconv.autoconv(model)
            for h in inputs:
                got, want = converted(h), model(h)
                lengths.add(len(want[0]))
                for g, w in zip(got, want):
                    assert g.dtype == w.dtype and torch.equal(g, w), (got, want)
            assert "_row_run(" in _source(converted)
        assert len(lengths) > 5 and {1, 24} <= lengths, lengths


def test_a_decoder_s_tokens_with_grad_mode_on_are_written_each_trip():
    # (grad on: the functional write of each trip, for autograd; the same values)
    torch.manual_seed(0)
    model = _Decoder().eval()
    converted = autoconv.autoconv(model)
    for h in torch.randn(3, 32, generator=torch.Generator().manual_seed(0)):
        got, want = converted(h), model(h)
        assert torch.equal(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])
        got[1].sum().backward()
    assert all(p.grad is not None for p in model.cell.parameters())


def _appended_then_written(x):
    # the appended tensor is the loop's state, which the loop then writes in place: its row
    # must be the value at the append, not the loop's last
    rows = []
    while x.sum() < 40:
        rows.append(x)
        x = x + 1
    return torch.stack(rows)


def _appended_twice(x):
    # two lists grown in one loop, each of the other's state
    rows, halves = [], []
    while x.sum() < 40:
        rows.append(x)
        halves.append(x * 0.5)
        x = x * 2 + 1
    return torch.stack(rows), torch.stack(halves)


def _appended_in_a_branch(x):
    # the appended value is written in place by a pointwise op in a branch of the loop
    rows = []
    while x.sum() < 40:
        y = x * 2
        if y.sum() > 10:
            y = y - 3
        rows.append(y)
        x = x + 1
    return torch.stack(rows)


def test_lists_of_loops_that_write_in_place_keep_each_row_s_value():
    with torch.no_grad():
        for fn in (_appended_then_written, _appended_twice, _appended_in_a_branch):
            converted = autoconv.autoconv(fn)
            for args in [(torch.tensor([1.0, 2.0]),), (torch.tensor([3.0, -1.0]),),
                         (torch.tensor([0.5, 4.0]),)]:
                want = fn(*args)
                got = converted(*args)
                for g, w in zip(got if isinstance(got, tuple) else (got,),
                                want if isinstance(want, tuple) else (want,)):
                    assert g.dtype == w.dtype and torch.equal(g, w), (fn.__name__, got, want)


def _kept(buffer, writes):
    # the lines `row_run_lines` writes for a loop's row write, with grad mode off, and the
    # write of the run kept at the loop's end
    from autoconv.python_backend import _row_run, _write_rows
    pending, start, following, room = [], -1, -1, buffer.shape[0]
    try:
        for index, values in writes:
            if index == following and index < room:
                pending.append(values)
                following += 1
            else:
                start, following = _row_run(buffer, start, pending, index, values, room)
    except IndexError:
        return "IndexError", buffer
    if pending:
        _write_rows(buffer, start, pending)
    return None, buffer


def _each_trip(buffer, writes):
    from autoconv.python_backend import _index_put_row_
    try:
        for index, values in writes:
            _index_put_row_(buffer, index, values)
    except IndexError:
        return "IndexError", buffer
    return None, buffer


def test_rows_kept_then_written_are_each_trip_s_writes():
    # runs broken by a row out of order, written again, negative, out of range (the same
    # error at the same write, the rows before it written), and rows broadcast to the row
    g = torch.Generator().manual_seed(0)

    def rows(*indices, shape=(3,)):
        return [(i, torch.randn(shape, generator=g)) for i in indices]

    cases = [rows(0, 1, 2, 3), rows(0, 1, 2, 1, 2, 3), rows(2, 3, 0, 1), rows(0, -1, 1, 2),
             rows(0, 1, 2, 7, 3), rows(0, 1, 5), rows(0, 1, 2, shape=(1,)),
             rows(0, 1, 2, shape=()), rows(0) + rows(1, shape=(1,)) + rows(2), rows(3, 4, 5),
             rows(0, 0, 0), []]
    for writes in cases:
        got = _kept(torch.zeros(6, 3), writes)
        want = _each_trip(torch.zeros(6, 3), writes)
        assert got[0] == want[0] and torch.equal(got[1], want[1]), (writes, got, want)



def test_rows_kept_of_another_dtype_or_sharing_the_buffer_s_memory_are_each_trip_s_writes():
    # `_write_rows` stacks a run straight into the buffer's rows where it can; rows of
    # another dtype (converted by each trip's copy), rows that are views of the buffer
    # (which `stack`'s `out` refuses), 0-d rows and one-row runs take what each trip writes
    g = torch.Generator().manual_seed(1)
    for buffer, rows in [
            (torch.zeros(5, 3), [torch.randint(-9, 9, (3,), generator=g) for _ in range(4)]),
            (torch.zeros(5, dtype=torch.int64), [torch.tensor(7), torch.tensor(-2)]),
            (torch.zeros(5, dtype=torch.int64), [torch.tensor(2.7), torch.tensor(-1.5)]),
            (torch.zeros(6), [torch.tensor(float(i)) for i in range(5)]),
            (torch.zeros(6), [torch.tensor(3.0)])]:
        writes = list(enumerate(rows))
        got = _kept(buffer.clone(), writes)
        want = _each_trip(buffer.clone(), writes)
        assert got[0] == want[0] and got[1].dtype == want[1].dtype, (rows, got, want)
        assert torch.equal(got[1], want[1]), (rows, got, want)
    for _ in range(2):  # rows that are the buffer's own rows, shifted by one
        buffer = torch.arange(12.0).reshape(6, 2)
        writes = [(k, buffer[k + 1]) for k in range(4)]
        want = _each_trip(buffer.clone(), [(k, buffer[k + 1].clone()) for k in range(4)])
        got = _kept(buffer, writes)
        assert torch.equal(got[1][:4], want[1][:4]), (got, want)

def test_a_decoder_s_token_is_read_once_a_trip_for_its_test_and_its_row_bit_for_bit():
    # NOTE [a trip's number read by its test and its body] (python_backend.py)
    with torch.no_grad():
        torch.manual_seed(5)
        model = _Decoder().eval()
        converted = autoconv.autoconv(model)
        for h in torch.randn(6, 32, generator=torch.Generator().manual_seed(5)):
            got, want = converted(h), model(h)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and torch.equal(g, w), (got, want)
        assert converted.trace_count == 1
        source = _source(converted)
        number = re.search(r"(trip\d+_item) = item\(", source).group(1)
        assert re.search(rf"narrow_copy\(\w+, 0, {number}, 1\)", source), source
        assert ".item()" not in source, source


class _Stepper(torch.nn.Module):
    """A token the body changes before it reads the token's row: the row of the new one."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(8, 3)

    def forward(self, token):
        total = torch.zeros(1, 3)
        while token < 6:
            token = token + 1
            total = total + self.embed(token).unsqueeze(0)
        while token > 2:
            total = total * 0.5 + self.embed(token).unsqueeze(0)
            token = token - 2
        return total, token


def test_a_loop_s_row_of_a_token_its_body_changed_first_reads_the_new_token():
    # (the first loop's row is of `token + 1`, the second's of the trip's token: its number
    # the test's; export and compile run no python backend)
    torch.manual_seed(6)
    model = _Stepper().eval()
    with torch.no_grad():
        assert_same_exactly(model, [(torch.tensor(0),), (torch.tensor(4),), (torch.tensor(7),),
                                    (torch.tensor(2),)], export=False, compile=False)
        converted = autoconv.autoconv(model)
        converted(torch.tensor(0))
    source = _source(converted)
    assert len(re.findall(r"narrow_copy\(\w+, 0, trip\d+_item, 1\)", source)) == 1, source
    assert len(re.findall(r"\.item\(\)\) < 8", source)) == 1, source
