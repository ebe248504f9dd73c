"""Duration, pitch and energy predictors, Gaussian upsampling, and the (training-only) aligner.

Names follow EmotiVoice's ESPnet-derived modules so the checkpoint loads key for
key: a predictor is ``conv.{i}`` = Sequential(Conv1d, ReLU, LayerNorm over
channels) then ``linear``. Unlike the original, padded positions are zeroed
between conv layers, so a padded item predicts what it predicts alone.
"""

from __future__ import annotations

import torch
from torch import nn

from voxserve.models.emotivoice.transformer import LayerNorm


class VariancePredictor(nn.Module):
    """``layers`` × (conv → ReLU → LayerNorm) → linear: one value per symbol.

    Predicts in the model's training units (normalized pitch or energy, or log
    duration); callers convert. Padded positions come out as 0.
    """

    def __init__(self, in_dim: int, layers: int, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(in_dim if i == 0 else channels, channels, kernel, padding=(kernel - 1) // 2),
                nn.ReLU(),
                LayerNorm(channels, dim=1),
            )
            for i in range(layers)
        )
        self.linear = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``x`` [B, T, D], ``keep`` [B, T] float (1 on real symbols) → [B, T]."""
        k = keep[:, None, :]
        h = x.transpose(1, 2) * k
        for block in self.conv:
            h = block(h) * k
        return self.linear(h.transpose(1, 2)).squeeze(-1) * keep


class DurationPredictor(VariancePredictor):
    """A variance predictor in the log domain: frames = round(max(exp(out) - offset, 0) * ratio)."""

    def __init__(self, in_dim: int, layers: int, channels: int, kernel: int, offset: float) -> None:
        super().__init__(in_dim, layers, channels, kernel)
        self.offset = offset

    def frames(self, x: torch.Tensor, keep: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """Integer frames per symbol [B, T] int64, 0 on padding; ``ratio`` [B] stretches them.

        At ratio 1 this equals the original ``clamp(round(exp(out) - offset), min=0)``.
        """
        linear = torch.clamp(self.forward(x, keep).exp() - self.offset, min=0.0)
        return torch.round(linear * ratio[:, None]).long() * keep.long()


def gaussian_upsample(
    h: torch.Tensor, durations: torch.Tensor, token_mask: torch.Tensor, n_frames: int, delta: float
) -> torch.Tensor:
    """Spread symbol states over frames with Gaussian weights centred on each symbol's span.

    ``h`` [B, T, D]; ``durations`` [B, T] (frames, 0 on padding); ``token_mask`` [B, T]
    bool. Frame ``f`` of an item is the softmax over its real symbols of
    ``-delta * (f - centre)²``, centre = cumsum(d) - d/2. Returns [B, n_frames, D];
    frames past an item's total are padding (the caller masks them).
    """
    d = durations.to(h.dtype)
    centre = d.cumsum(dim=-1) - d / 2
    t = torch.arange(n_frames, device=h.device, dtype=h.dtype)
    energy = -delta * (t[None, :, None] - centre[:, None, :]) ** 2
    energy = energy.masked_fill(~token_mask[:, None, :], float("-inf"))
    return torch.matmul(torch.softmax(energy, dim=-1), h)


class AlignmentModule(nn.Module):
    """The training-time aligner (text × mel distance); kept only so the release loads strictly.

    Inference never runs it: durations come from :class:`DurationPredictor`. It
    has no forward.
    """

    def __init__(self, hidden: int, n_mels: int) -> None:
        super().__init__()
        self.t_conv1 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.t_conv2 = nn.Conv1d(hidden, hidden, 1)
        self.f_conv1 = nn.Conv1d(n_mels, hidden, 3, padding=1)
        self.f_conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.f_conv3 = nn.Conv1d(hidden, hidden, 1)
