"""The alignment module learned in training: which symbol each mel frame belongs to.

The approach of RAD-TTS and "One TTS Alignment to Rule Them All" (Badlani et al.,
2021), written here from the paper: symbols and frames are each embedded by small
convolution stacks; the soft alignment of frame f to symbol t is a softmax over
symbols of -temperature·‖frame_f - symbol_t‖², multiplied by a beta-binomial prior that
favours the diagonal. It is trained with the forward-sum loss (the CTC likelihood
of visiting every symbol in order) and, once hard alignments exist, a binarization
loss that pulls the soft alignment onto the hard one. Hard alignments come from
monotonic alignment search (Viterbi over the soft alignment's log-probabilities):
each symbol gets at least one frame, in order, and the durations sum to the frame
count. Training-only: inference predicts durations with the acoustic model's
duration predictor.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_NEG = -1e9
"""Stands in for log 0 in the search (finite, so sums stay ordered)."""


class Aligner(nn.Module):
    """Symbols [B, T] and log-mels [B, F, n_mels] → log soft alignment [B, F, T] (prior included).

    ``mel_mean``/``mel_std`` scale the mels to unit range before the convs. Padded
    symbols get log-probability ``-inf``-like values; padded frames are left to the callers
    (losses and search mask them by ``mel_lengths``).
    """

    def __init__(
        self,
        n_vocab: int,
        n_mels: int,
        channels: int = 128,
        temperature: float = 0.0005,
        mel_mean: float = -5.0,
        mel_std: float = 2.0,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.mel_mean, self.mel_std = mel_mean, mel_std
        self.embed = nn.Embedding(n_vocab, channels)
        self.key = nn.Sequential(
            nn.Conv1d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.Conv1d(2 * channels, n_mels, 1)
        )
        self.query = nn.Sequential(
            nn.Conv1d(n_mels, 2 * n_mels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * n_mels, n_mels, 1),
            nn.ReLU(),
            nn.Conv1d(n_mels, n_mels, 1),
        )

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, mel: torch.Tensor, mel_lengths: torch.Tensor
    ) -> torch.Tensor:
        t_mask = torch.arange(ids.size(1), device=ids.device)[None, :] < lengths[:, None]
        keys = self.key((self.embed(ids) * t_mask[..., None]).transpose(1, 2))  # [B, C, T]
        x = ((mel.float() - self.mel_mean) / self.mel_std).transpose(1, 2)
        queries = self.query(x)  # [B, C, F]
        # ‖q - k‖² = ‖q‖² + ‖k‖² - 2 q·k: a matmul, never a [B, C, F, T] difference tensor.
        q, k = queries.transpose(1, 2), keys  # [B, F, C], [B, C, T]
        dist = q.pow(2).sum(-1, keepdim=True) + k.pow(2).sum(1, keepdim=True) - 2 * torch.bmm(q, k)
        scores = (-self.temperature * dist).masked_fill(~t_mask[:, None, :], _NEG)
        log_attn = torch.log_softmax(scores, dim=-1) + beta_binomial_log_prior(
            lengths, mel_lengths, ids.size(1), mel.size(1)
        )
        # Renormalize over symbols after the prior (the prior alone is a distribution per frame).
        return torch.log_softmax(log_attn.masked_fill(~t_mask[:, None, :], _NEG), dim=-1)


def beta_binomial_log_prior(
    lengths: torch.Tensor, mel_lengths: torch.Tensor, t_max: int, f_max: int, scale: float = 1.0
) -> torch.Tensor:
    """[B, F, T] log P(symbol t | frame f): beta-binomial over 0..T-1 with a = scale·(f+1), b = scale·(F-f).

    Padded symbols and frames get ``_NEG``. Favours the diagonal so alignment learning starts sane.
    """
    dev = lengths.device
    n = (lengths - 1).clamp_min(0).double()[:, None, None]  # [B, 1, 1]
    frames = mel_lengths.double()[:, None, None]
    f = torch.arange(f_max, device=dev, dtype=torch.float64)[None, :, None]
    k = torch.arange(t_max, device=dev, dtype=torch.float64)[None, None, :]
    a, b = scale * (f + 1), scale * (frames - f).clamp_min(1e-3)
    lgamma = torch.lgamma
    log_choose = lgamma(n + 1) - lgamma(k + 1) - lgamma((n - k).clamp_min(0) + 1)
    log_beta_num = lgamma(k + a) + lgamma((n - k).clamp_min(0) + b) - lgamma(n + a + b)
    log_beta_den = lgamma(a) + lgamma(b) - lgamma(a + b)
    log_p = log_choose + log_beta_num - log_beta_den
    valid = (k < lengths.double()[:, None, None]) & (f < frames)
    return log_p.masked_fill(~valid, _NEG).float()


def forward_sum_loss(
    log_attn: torch.Tensor, lengths: torch.Tensor, mel_lengths: torch.Tensor, blank_logprob: float = -1.0
) -> torch.Tensor:
    """Mean over items of -log P(visit symbols 1..T in order | frames), as CTC with a fixed blank."""
    b, _, t = log_attn.shape
    t_mask = torch.arange(t, device=log_attn.device)[None, :] < lengths[:, None]
    scores = log_attn.masked_fill(~t_mask[:, None, :], _NEG)
    scores = F.pad(scores, (1, 0), value=blank_logprob)
    log_probs = torch.log_softmax(scores.float(), dim=-1).transpose(0, 1)  # [F, B, T+1]
    targets = torch.arange(1, t + 1, device=log_attn.device)[None, :].expand(b, t)
    loss = F.ctc_loss(log_probs, targets, mel_lengths, lengths, blank=0, reduction="none", zero_infinity=True)
    return (loss / lengths.clamp_min(1)).mean()


@torch.no_grad()
def monotonic_search(
    log_attn: torch.Tensor, lengths: torch.Tensor, mel_lengths: torch.Tensor
) -> torch.Tensor:
    """Durations [B, T] int64 of the most likely monotonic path: every symbol ≥ 1 frame, in order.

    Viterbi: the forward pass runs on the alignment's device, one small step per frame,
    vectorized over the batch and symbols (5 kernels a step: on a GPU it is launch-bound);
    the backtrack runs on the host in numpy (cheaper than as many tiny GPU launches). Each
    item's durations sum to its ``mel_lengths`` (which must be ≥ its ``lengths``).
    """
    b, f_max, t = log_attn.shape
    dev = log_attn.device
    t_mask = torch.arange(t, device=dev)[None, :] < lengths[:, None]
    logp = log_attn.float().masked_fill(~t_mask[:, None, :], _NEG)
    score = torch.full((b, t), _NEG, device=dev)
    score[:, 0] = logp[:, 0, 0]
    moved = torch.zeros(b, f_max, t, dtype=torch.bool, device=dev)
    # Frames past an item's end only change scores the backtrack never reads (the pass is causal).
    for f in range(1, f_max):
        shifted = F.pad(score[:, :-1], (1, 0), value=_NEG)
        torch.gt(shifted, score, out=moved[:, f])
        score = torch.maximum(score, shifted).add_(logp[:, f])
    went = moved.cpu().numpy()
    frames = mel_lengths.cpu().numpy()
    at = np.maximum(lengths.cpu().numpy() - 1, 0)
    rows = np.arange(b)
    durations = np.zeros((b, t), dtype=np.int64)
    for f in range(f_max - 1, -1, -1):
        active = f < frames
        durations[rows, at] += active
        at = np.maximum(at - (went[rows, f, at] & active), 0)
    return torch.from_numpy(durations).to(dev)


def hard_alignment(durations: torch.Tensor, f_max: int) -> torch.Tensor:
    """[B, F, T] bool: frame f belongs to symbol t, from durations [B, T] (frames past the total: none)."""
    ends = durations.cumsum(1)
    frames = torch.arange(f_max, device=durations.device)[None, :].expand(durations.size(0), -1)
    owner = torch.searchsorted(ends, frames.contiguous(), right=True)  # [B, F]
    valid = frames < ends[:, -1:]
    one_hot = F.one_hot(owner.clamp(max=durations.size(1) - 1), durations.size(1)).bool()
    return one_hot & valid[..., None]


def binarization_loss(log_attn: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """-mean log soft alignment on the hard path (pulls the soft alignment onto it)."""
    picked = log_attn.float().clamp_min(-1e4)[hard]
    return -picked.mean() if picked.numel() else log_attn.new_zeros(())
