"""The training-time aligner: monotonic search, forward-sum loss, prior, and per-symbol targets."""

from __future__ import annotations

import torch

from voxserve.train.aligner import (
    Aligner,
    beta_binomial_log_prior,
    binarization_loss,
    forward_sum_loss,
    hard_alignment,
    monotonic_search,
)
from voxserve.train.losses import symbol_means


def _log_attn_for(durations: list[list[int]], t_max: int, f_max: int, sharp: float = 4.0) -> torch.Tensor:
    """Log soft alignments peaked on the path the durations describe (rows padded to t_max/f_max)."""
    out = torch.full((len(durations), f_max, t_max), -sharp)
    for b, d in enumerate(durations):
        f = 0
        for t, n in enumerate(d):
            out[b, f : f + n, t] = 0.0
            f += n
    return torch.log_softmax(out, dim=-1)


def test_search_recovers_the_path_and_sums_to_the_frames():
    durations = [[2, 1, 4, 3], [3, 3, 1, 0], [1, 1, 0, 0]]
    lengths = torch.tensor([4, 3, 2])
    mel_lengths = torch.tensor([10, 7, 2])
    found = monotonic_search(_log_attn_for(durations, 4, 10), lengths, mel_lengths)
    assert found.tolist() == durations
    assert torch.equal(found.sum(1), mel_lengths)


def test_search_gives_every_symbol_a_frame_even_against_the_scores():
    # Scores that prefer symbol 0 everywhere: monotonicity still visits every symbol once.
    log_attn = torch.log_softmax(torch.tensor([[[5.0, 0.0, 0.0]] * 6]), dim=-1)
    found = monotonic_search(log_attn, torch.tensor([3]), torch.tensor([6]))
    assert found.tolist() == [[4, 1, 1]]


def test_search_of_a_batch_equals_each_item_alone():
    g = torch.Generator().manual_seed(0)
    log_attn = torch.log_softmax(torch.randn(3, 15, 6, generator=g), dim=-1)
    lengths, mel_lengths = torch.tensor([6, 4, 2]), torch.tensor([15, 9, 5])
    batch = monotonic_search(log_attn, lengths, mel_lengths)
    for i in range(3):
        t, f = int(lengths[i]), int(mel_lengths[i])
        alone = monotonic_search(log_attn[i : i + 1, :f, :t], lengths[i : i + 1], mel_lengths[i : i + 1])
        assert batch[i, :t].tolist() == alone[0].tolist()
        assert int(batch[i].sum()) == f and bool((batch[i, :t] >= 1).all())


def test_forward_sum_prefers_the_true_alignment():
    durations = [[2, 2, 2]]
    good = _log_attn_for(durations, 3, 6)
    bad = _log_attn_for([[4, 1, 1]], 3, 6).flip(-1)  # reversed order: not monotonic
    lengths, mel_lengths = torch.tensor([3]), torch.tensor([6])
    assert forward_sum_loss(good, lengths, mel_lengths) < forward_sum_loss(bad, lengths, mel_lengths)


def test_prior_is_a_distribution_over_real_symbols():
    lengths, mel_lengths = torch.tensor([5, 3]), torch.tensor([12, 7])
    prior = beta_binomial_log_prior(lengths, mel_lengths, 5, 12)
    sums = prior.exp().sum(-1)
    torch.testing.assert_close(sums[0], torch.ones(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(sums[1, :7], torch.ones(7), atol=1e-5, rtol=0)
    assert prior[1, :, 3:].max() < -1e8  # padded symbols
    # The prior favours the diagonal: the first frame sits on the first symbol, the last on the last.
    assert int(prior[0, 0].argmax()) == 0 and int(prior[0, 11].argmax()) == 4


def test_aligner_output_is_normalized_and_trainable():
    torch.manual_seed(0)
    al = Aligner(n_vocab=20, n_mels=8, channels=16)
    ids = torch.randint(1, 20, (2, 5))
    lengths, mel_lengths = torch.tensor([5, 3]), torch.tensor([9, 6])
    mel = torch.randn(2, 9, 8)
    log_attn = al(ids, lengths, mel, mel_lengths)
    torch.testing.assert_close(log_attn.exp().sum(-1), torch.ones(2, 9), atol=1e-4, rtol=0)
    loss = forward_sum_loss(log_attn, lengths, mel_lengths)
    hard = hard_alignment(monotonic_search(log_attn, lengths, mel_lengths), 9)
    (loss + binarization_loss(log_attn, hard)).backward()
    assert all(p.grad is not None for p in al.parameters())


def test_hard_alignment_and_symbol_means():
    d = torch.tensor([[2, 0, 3], [1, 1, 0]])
    hard = hard_alignment(d, 5)
    assert hard[0].long().argmax(-1).tolist() == [0, 0, 2, 2, 2]
    assert hard[1].sum().item() == 2 and not hard[1, 2:].any()
    values = torch.tensor([[1.0, 3.0, 4.0, 5.0, 6.0], [7.0, 9.0, 100.0, 100.0, 100.0]])
    means = symbol_means(values, d)
    torch.testing.assert_close(means, torch.tensor([[2.0, 0.0, 5.0], [7.0, 9.0, 0.0]]))
