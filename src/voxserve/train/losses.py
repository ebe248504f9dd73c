"""Training targets per symbol and the masked losses of the acoustic model.

Pitch and energy targets are averages over each symbol's frames (EmotiVoice's
token-level prosody), normalized with the model's statistics; durations are the
aligner's (or the corpus's). Every loss is a mean over real positions only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from voxserve.models.clone.config import Config


class Targets(NamedTuple):
    """Per-symbol targets [B, T]: durations (int64 frames), normalized pitch and energy."""

    durations: torch.Tensor
    pitch: torch.Tensor
    energy: torch.Tensor


def symbol_means(values: torch.Tensor, durations: torch.Tensor) -> torch.Tensor:
    """[B, F] frame values → [B, T] mean over each symbol's frames (0 for symbols with no frame)."""
    b, f = values.shape
    ends = durations.cumsum(1)
    frames = torch.arange(f, device=values.device)[None, :].expand(b, -1).contiguous()
    owner = torch.searchsorted(ends, frames, right=True).clamp(max=durations.size(1) - 1)
    inside = (frames < ends[:, -1:]).to(values.dtype)
    sums = torch.zeros_like(durations, dtype=values.dtype).scatter_add_(1, owner, values * inside)
    return sums / durations.clamp_min(1).to(values.dtype)


def targets(
    config: Config, durations: torch.Tensor, lf0: torch.Tensor, energy: torch.Tensor, lengths: torch.Tensor
) -> Targets:
    """Normalized per-symbol pitch (ln F0) and energy from frame values and durations."""
    keep = torch.arange(durations.size(1), device=durations.device)[None, :] < lengths[:, None]
    has = (durations > 0) & keep
    p_mean, p_std = config.pitch_stats
    e_mean, e_std = config.energy_stats
    pitch = torch.where(has, (symbol_means(lf0.float(), durations) - p_mean) / p_std, 0.0)
    en = torch.where(has, (symbol_means(energy.float(), durations) - e_mean) / e_std, 0.0)
    return Targets(durations, pitch, en)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` where ``mask`` (broadcast to ``x``) is true; 0 when nothing is."""
    m = mask.to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def mel_loss(pred: torch.Tensor, target: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
    """L1 over real frames and all bins."""
    mask = torch.arange(pred.size(1), device=pred.device)[None, :] < mel_lengths[:, None]
    return masked_mean((pred.float() - target.float()).abs(), mask[..., None])


def variance_losses(
    config: Config,
    log_durations: torch.Tensor,
    pitch: torch.Tensor,
    energy: torch.Tensor,
    t: Targets,
    lengths: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """MSE of log(frames + offset) over real symbols; of pitch and energy over symbols with frames."""
    keep = torch.arange(pitch.size(1), device=pitch.device)[None, :] < lengths[:, None]
    spoken = keep & (t.durations > 0)
    log_target = torch.log(t.durations.float() + config.duration_offset)
    return {
        "duration": masked_mean(F.mse_loss(log_durations.float(), log_target, reduction="none"), keep),
        "pitch": masked_mean(F.mse_loss(pitch.float(), t.pitch, reduction="none"), spoken),
        "energy": masked_mean(F.mse_loss(energy.float(), t.energy, reduction="none"), spoken),
    }
