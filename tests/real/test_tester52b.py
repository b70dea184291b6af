"""Findings of tester 52b (issue 9): inference-time code as practitioners' repositories write
it, run as a new user would: autoconv's replay (traced once, replayed on inputs taking other
paths), a saved and loaded torch.export program and torch.compile(fullgraph=True), against
plain Python. Each function is copied from the repository named above it, adapted only where it
imports the rest of its repository (a small random model stands for the trained one).

- nanoGPT's `GPT.generate` with top-k and an EOS `break` (as user forks add it): refused
  honestly at the loop, `idx` growing by `torch.cat` (a staged loop's carry keeps one shape).
  The same written into a buffer of its final size: right in every mode, EOS early, late, never.
- Greedy decoding into a buffer with `tok = int(...)`, `out[0, n] = tok`, `if tok == EOS: break`:
  refused at `out[0, n] = tok` ("asks Python for the value of a traced tensor"), fixed: NOTE
  [graph numbers written] in runtime/subscripts.py.
- A beam search over a GRU decoder (`seqs = torch.cat([seqs[prev], tok[:, None]], 1)` and an
  all-EOS `break`): refused honestly as nanoGPT's loop.
- cleanrl's GAE (`for t in reversed(range(num_steps))`, `nextnonterminal`), a Kalman filter
  class with its state in `self` and an outlier gate (a local object, and a bound method whose
  object outlives the calls), a batched Viterbi with a masked back-trace, the PyTorch tutorial's
  BiLSTM-CRF `_viterbi_decode` (`.item()` back-pointers in Python lists), an adaptive
  computation time loop, a fixed-size per-class NMS by a keep mask: right in every mode.
- YOLO-style post-processing by index lists (`boxes[scores > thr]`, `for c in
  labels.unique()`, `while order.numel() > 0`): refused honestly (data-dependent sizes).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autoconv
from autoconv_runtime import StagingError
from tests.support import assert_same_result

T = torch.tensor
V, D, EOS, BOS = 7, 8, 0, 1


def _generator():
    return torch.Generator().manual_seed(1)


class TinyLM(nn.Module):
    """A causal language model with nanoGPT's interface: `(logits, loss)` of `idx`."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"block_size": 6})()
        self.wte = nn.Embedding(V, D)
        self.head = nn.Linear(D, V)

    def forward(self, idx):
        x = self.wte(idx)
        x = x.cumsum(1) / torch.arange(1, idx.size(1) + 1).view(1, -1, 1)
        return self.head(x), None


torch.manual_seed(0)
LM = TinyLM().eval()


# karpathy/nanoGPT model.py, `GPT.generate`, with the EOS stop forks add; `self` is LM, and
# `torch.multinomial(probs, 1)` is inverse-CDF sampling on given uniforms `u` (the same
# distribution; deterministic, so that every mode can be compared to Python).
@torch.no_grad()
def generate(idx, u, max_new_tokens=5, temperature=1.0, top_k=3):
    self = LM
    for i in range(max_new_tokens):
        # if the sequence context is growing too long we must crop it at block_size
        idx_cond = idx if idx.size(1) <= self.config.block_size else idx[
            :, -self.config.block_size:]
        logits, _ = self(idx_cond)
        logits = logits[:, -1, :] / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float('Inf')
        probs = F.softmax(logits, dim=-1)
        idx_next = (probs.cumsum(-1) < u[:, i].unsqueeze(-1)).sum(-1, keepdim=True).clamp(
            max=V - 1)
        idx = torch.cat((idx, idx_next), dim=1)
        if (idx_next == EOS).all():
            break
    return idx


@torch.no_grad()
def generate_buffered(idx, u, max_new_tokens=5, temperature=1.0, top_k=3):
    """nanoGPT's `generate` as the refusal asks: the sequence in a buffer of its final size."""
    self = LM
    b, t0 = idx.shape
    out = torch.full((b, t0 + max_new_tokens), EOS)
    out[:, :t0] = idx
    n = t0
    for i in range(max_new_tokens):
        logits, _ = self(out)  # causal: position n - 1 sees only the prefix
        logits = logits[:, n - 1, :] / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float('Inf')
        probs = F.softmax(logits, dim=-1)
        idx_next = (probs.cumsum(-1) < u[:, i].unsqueeze(-1)).sum(-1).clamp(max=V - 1)
        out[:, n] = idx_next
        n += 1
        if (idx_next == EOS).all():
            break
    return out, torch.tensor(n)


def greedy_until_eos(idx, u, max_new_tokens=5):
    """Decoding one sequence with Python ints, as tutorials write it."""
    out = torch.full((1, idx.shape[1] + max_new_tokens), EOS)
    out[:, :idx.shape[1]] = idx
    n = idx.shape[1]
    for i in range(max_new_tokens):
        logits, _ = LM(out)
        tok = int((logits[0, n - 1].softmax(-1).cumsum(-1) < u[0, i]).sum().clamp(max=V - 1))
        out[0, n] = tok
        n += 1
        if tok == EOS:
            break
    return out, torch.tensor(n)


def _prompts_and_uniforms():
    # EOS never (the top token is never 0), at once, or third (u = 0 picks token 0)
    return [(T([[1, 2]]), torch.full((1, 5), 0.99)), (T([[1, 2]]), torch.zeros(1, 5)),
            (T([[3, 4]]), T([[0.99, 0.5, 0.0, 0.5, 0.5]]))]


def test_nanogpt_generate_growing_by_cat_with_an_eos_break_is_refused_at_the_loop():
    with pytest.raises(StagingError, match=r"'idx' is a torch.int64 tensor of shape \(1, 3\) "
                                           r"before an iteration and .* \(1, 4\) after it"):
        autoconv.autoconv(generate)(*_prompts_and_uniforms()[0])


def test_nanogpt_generate_into_a_buffer_stops_at_eos_in_every_mode():
    inputs = _prompts_and_uniforms()
    assert [int(generate_buffered(*args)[1]) for args in inputs] == [7, 3, 5]
    assert torch.equal(generate_buffered(*inputs[1])[0][:, :3], generate(*inputs[1]))
    assert_same_result(generate_buffered, inputs)


def test_greedy_decoding_writes_int_of_a_tensor_at_a_traced_position():
    # (refused at `out[0, n] = tok` until session 52; NOTE [graph numbers written])
    inputs = _prompts_and_uniforms()
    assert [int(greedy_until_eos(*args)[1]) for args in inputs] == [7, 3, 5]
    assert_same_result(greedy_until_eos, inputs)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.cell = nn.GRUCell(D, D)
        self.out = nn.Linear(D, V)


DECODER = Decoder().eval()


@torch.no_grad()
def beam_search(h0, beam=3, max_len=5):
    """Beam search as seq2seq tutorials write it: beams regrown by `torch.cat` each step."""
    self = DECODER
    seqs = torch.full((beam, 1), BOS)
    scores = torch.tensor([0.0] + [-float("inf")] * (beam - 1))
    h = h0.expand(beam, D)
    for step in range(max_len):
        logp = F.log_softmax(self.out(h), -1)
        finished = seqs[:, -1] == EOS
        logp = torch.where(finished[:, None], torch.full_like(logp, -float("inf")), logp)
        logp[:, EOS] = torch.where(finished, torch.zeros_like(logp[:, EOS]), logp[:, EOS])
        top, flat = (scores[:, None] + logp).view(-1).topk(beam)
        prev, tok = flat // V, flat % V
        seqs = torch.cat([seqs[prev], tok[:, None]], 1)
        h = self.cell(self.emb(tok), h[prev])
        scores = top
        if (tok == EOS).all():
            break
    return seqs[scores.argmax()], scores.max()


def test_beam_search_regrowing_its_beams_is_refused_at_the_loop():
    with pytest.raises(StagingError, match=r"'seqs' is a torch.int64 tensor of shape \(3, 2\)"):
        autoconv.autoconv(beam_search)(torch.randn(1, D, generator=_generator()))


# vwxyzjn/cleanrl cleanrl/ppo.py: the advantage computation of the training loop, as a function
def gae(rewards, values, dones, next_value, next_done, gamma=0.99, gae_lambda=0.95):
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    returns = advantages + values
    return advantages, returns


def test_cleanrl_gae_in_every_mode():
    g = _generator()
    r, v = torch.rand(6, 3, generator=g), torch.rand(6, 3, generator=g)
    dones = (torch.rand(6, 3, generator=g) > 0.7).float()
    assert_same_result(gae, [(r, v, dones, torch.rand(3, generator=g), torch.zeros(3)),
                             (r, v, torch.zeros(6, 3), torch.rand(3, generator=g), torch.ones(3))],
                       staged=False)


class Kalman:
    """A constant-velocity Kalman filter with its state in `self` and a chi-square gate, as in
    tracking tutorials (SORT-style trackers hold `self.x`, `self.P` the same way)."""

    def __init__(self, dt=1.0, q=0.01, r=0.5):
        self.F = torch.tensor([[1., dt], [0., 1.]])
        self.H = torch.tensor([[1., 0.]])
        self.Q = q * torch.eye(2)
        self.R = torch.tensor([[r]])
        self.x = torch.zeros(2, 1)
        self.P = torch.eye(2)

    def predict(self):
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + self.Q
        return self.x

    def update(self, z):
        y = z - self.H @ self.x
        S = self.H @ self.P @ self.H.T + self.R
        if (y * y / S).sum() > 9.0:  # gating: an outlier leaves the state
            return self.x
        K = self.P @ self.H.T @ torch.linalg.inv(S)
        self.x = self.x + K @ y
        self.P = (torch.eye(2) - K @ self.H) @ self.P
        return self.x

    def step(self, z):
        self.predict()
        return self.update(z.view(1, 1))


def track(zs):
    kf = Kalman()
    out = []
    for z in zs:
        kf.predict()
        out.append(kf.update(z.view(1, 1)))
    return torch.stack(out), kf.P


def test_kalman_filter_with_an_outlier_gate_in_every_mode():
    assert_same_result(track, [T([1., 2., 3., 4.]), T([1., 50., 3., 4.]), T([0., -40., 40., 1.])])


def test_kalman_filter_state_in_self_outlives_each_call():
    zs = [T(v) for v in (1., 2., 50., 3., -40., 4.)]
    eager = Kalman()
    want = [(eager.step(z).clone(), eager.x.clone(), eager.P.clone()) for z in zs]
    kf = Kalman()
    step = autoconv.autoconv(kf.step)
    for z, (x_out, x, p) in zip(zs, want):
        torch.testing.assert_close(step(z), x_out)
        torch.testing.assert_close(kf.x, x)
        torch.testing.assert_close(kf.P, p)
    assert step.trace_count == 1
    assert kf.x.flatten().tolist() == pytest.approx([4.1022, 0.59904], abs=1e-4)


def viterbi(emissions, transitions, mask):
    """Batched Viterbi with a masked back-trace, as CRF-free NER repositories write it."""
    B, L, K = emissions.shape
    score = emissions[:, 0]
    history = []
    for t in range(1, L):
        next_score = score.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)
        next_score, idx = next_score.max(dim=1)
        score = torch.where(mask[:, t].unsqueeze(1), next_score, score)
        history.append(idx)
    best_last = score.argmax(dim=1)
    lengths = mask.long().sum(1)
    best = torch.zeros(B, L, dtype=torch.long)
    for b in range(B):
        seq_end = lengths[b] - 1
        tag = best_last[b]
        best[b, seq_end] = tag
        for t in range(L - 2, -1, -1):
            if t < seq_end:
                tag = history[t][b][tag]
                best[b, t] = tag
    return best


def test_batched_viterbi_with_a_masked_back_trace_in_every_mode():
    g = _generator()
    em, tr = torch.randn(2, 4, 3, generator=g), torch.randn(3, 3, generator=g)
    assert_same_result(viterbi, [(em, tr, T([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()),
                                 (torch.randn(2, 4, 3, generator=g), tr,
                                  T([[1, 0, 0, 0], [1, 1, 1, 0]]).bool())])


# pytorch/tutorials beginner_source/nlp/advanced_tutorial.py, `BiLSTM_CRF._viterbi_decode`
# and its `argmax` helper (`self.transitions`, `self.tagset_size` as arguments)
START_TAG, STOP_TAG = "<START>", "<STOP>"
tag_to_ix = {"B": 0, "I": 1, "O": 2, START_TAG: 3, STOP_TAG: 4}


def argmax(vec):
    # return the argmax as a python int
    _, idx = torch.max(vec, 1)
    return idx.item()


def _viterbi_decode(feats, transitions, tagset_size=5):
    backpointers = []
    init_vvars = torch.full((1, tagset_size), -10000.)
    init_vvars[0][tag_to_ix[START_TAG]] = 0
    forward_var = init_vvars
    for feat in feats:
        bptrs_t = []
        viterbivars_t = []
        for next_tag in range(tagset_size):
            next_tag_var = forward_var + transitions[next_tag]
            best_tag_id = argmax(next_tag_var)
            bptrs_t.append(best_tag_id)
            viterbivars_t.append(next_tag_var[0][best_tag_id].view(1))
        forward_var = (torch.cat(viterbivars_t) + feat).view(1, -1)
        backpointers.append(bptrs_t)
    terminal_var = forward_var + transitions[tag_to_ix[STOP_TAG]]
    best_tag_id = argmax(terminal_var)
    path_score = terminal_var[0][best_tag_id]
    best_path = [best_tag_id]
    for bptrs_t in reversed(backpointers):
        best_tag_id = bptrs_t[best_tag_id]
        best_path.append(best_tag_id)
    start = best_path.pop()
    assert start == tag_to_ix[START_TAG]  # Sanity check
    best_path.reverse()
    return path_score, torch.tensor(best_path)


def test_pytorch_tutorial_bilstm_crf_viterbi_decode_in_every_mode():
    g = _generator()
    transitions = torch.randn(5, 5, generator=g)
    transitions[tag_to_ix[START_TAG], :] = -10000
    transitions[:, tag_to_ix[STOP_TAG]] = -10000
    assert_same_result(_viterbi_decode, [(torch.randn(4, 5, generator=g), transitions),
                                         (torch.randn(4, 5, generator=g) * 3, transitions),
                                         (-torch.randn(4, 5, generator=g), transitions)],
                       staged=False)


def adaptive_computation(x, w, max_steps=8, eps=0.01):
    """Adaptive computation time (Graves 2016) as Universal Transformer ports write it."""
    halting = torch.zeros(x.shape[0])
    remainders = torch.zeros(x.shape[0])
    n_updates = torch.zeros(x.shape[0])
    prev = torch.zeros_like(x)
    state = x
    while ((halting < 1.0 - eps) & (n_updates < max_steps)).any():
        p = torch.sigmoid(state @ w).squeeze(-1)
        still = (halting < 1.0).float()
        new_halted = (halting + p * still > 1.0 - eps).float() * still
        still = (halting + p * still <= 1.0 - eps).float() * still
        halting = halting + p * still
        remainders = remainders + new_halted * (1 - halting)
        halting = halting + new_halted * remainders
        n_updates = n_updates + still + new_halted
        update_weights = p * still + new_halted * remainders
        state = torch.tanh(state + 0.5)
        prev = state * update_weights.unsqueeze(-1) + prev * (1 - update_weights.unsqueeze(-1))
    return prev, n_updates, remainders


def test_adaptive_computation_time_halts_per_row_in_every_mode():
    g = _generator()
    w = torch.randn(3, 1, generator=g)
    inputs = [(torch.randn(4, 3, generator=g), w), (torch.randn(4, 3, generator=g) * 5, w),
              (torch.randn(4, 3, generator=g), -w * 10)]
    assert len({tuple(adaptive_computation(*args)[1].tolist()) for args in inputs}) == 3
    assert_same_result(adaptive_computation, inputs)


def box_iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms_by_index_lists(boxes, logits, score_thr=0.4, iou_thr=0.5):
    """YOLO-style post-processing: a score threshold, then greedy NMS per class."""
    scores, labels = logits.softmax(-1).max(-1)
    keep = scores > score_thr
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    out = []
    for c in labels.unique():
        m = labels == c
        b, s = boxes[m], scores[m]
        order = s.argsort(descending=True)
        while order.numel() > 0:
            i = order[0]
            out.append(torch.cat([b[i], s[i:i + 1], c.view(1).float()]))
            if order.numel() == 1:
                break
            iou = box_iou(b[i:i + 1], b[order[1:]])[0]
            order = order[1:][iou <= iou_thr]
    return torch.stack(out) if len(out) > 0 else torch.zeros(0, 6)


def nms_by_a_keep_mask(boxes, logits, score_thr=0.4, iou_thr=0.5):
    """The same of a fixed size: a keep mask over the boxes in score order, classes apart by an
    offset (torchvision's batched_nms trick)."""
    scores, labels = logits.softmax(-1).max(-1)
    order = scores.argsort(descending=True)
    boxes, scores, labels = boxes[order], scores[order], labels[order]
    shifted = boxes + labels[:, None].float() * 100.0
    iou = box_iou(shifted, shifted)
    keep = scores > score_thr
    n = boxes.shape[0]
    for i in range(n):
        if keep[i]:
            keep = keep & ~((iou[i] > iou_thr) & (torch.arange(n) > i))
    return order, keep


def _detections():
    g = _generator()
    corners = torch.rand(6, 2, generator=g) * 5
    boxes = torch.cat([corners, corners + 1 + torch.rand(6, 2, generator=g)], 1)
    overlapping = boxes.clone()
    overlapping[1] = overlapping[0] + 0.05
    logits = torch.randn(6, 3, generator=g) * 2
    alike = logits.clone()
    alike[1] = alike[0] - 0.1  # (box 1 of box 0's class, a lower score: suppressed)
    return [(boxes, logits), (overlapping, alike), (boxes, logits * 0)]


def test_nms_by_a_keep_mask_in_every_mode():
    inputs = _detections()
    assert [int(nms_by_a_keep_mask(*args)[1].sum()) for args in inputs] == [6, 5, 0]
    assert_same_result(nms_by_a_keep_mask, inputs)


def test_nms_by_index_lists_is_refused_honestly():
    with pytest.raises(StagingError, match=r"slices a tensor by a number the graph computes"):
        autoconv.autoconv(nms_by_index_lists)(*_detections()[0])
