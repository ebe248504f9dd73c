"""The encoder's front end: 16 kHz samples to power mel frames (no log), as the GE2E weights expect.

Framing follows the analysis the weights were trained on: a periodic Hann window of ``n_fft``
samples, frames centred on multiples of ``hop_length`` with zero padding at both ends, power
spectrum, Slaney-scale triangular filters normalised to equal area.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from voxserve.models.speaker_encoder.config import Config

_F_SP = 200.0 / 3  # Hz per mel on the linear part of the Slaney scale
_BREAK_HZ = 1000.0  # linear below, logarithmic above
_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    brk = _BREAK_HZ / _F_SP
    return np.where(hz >= _BREAK_HZ, brk + np.log(np.maximum(hz, 1e-10) / _BREAK_HZ) / _LOG_STEP, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    brk = _BREAK_HZ / _F_SP
    return np.where(mel >= brk, _BREAK_HZ * np.exp(_LOG_STEP * (mel - brk)), _F_SP * mel)


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters [n_mels, n_fft // 2 + 1] from 0 Hz to Nyquist, each of unit area."""
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    filters = np.zeros((n_mels, bins.size))
    for m in range(n_mels):
        rising = (bins - edges[m]) / widths[m]
        falling = (edges[m + 2] - bins) / widths[m + 1]
        filters[m] = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return filters.astype(np.float32)


class MelFrontend(nn.Module):
    """Samples [B, N] (float, 16 kHz) to power mel frames [B, 1 + N // hop, n_mels]. Tensor-only."""

    window: torch.Tensor
    filters: torch.Tensor

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.n_fft, self.hop = config.n_fft, config.hop_length
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)
        filters = slaney_mel_filters(config.sample_rate, config.n_fft, config.n_mels)
        self.register_buffer("filters", torch.from_numpy(filters), persistent=False)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            samples,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # [B, bins, frames]
        return torch.matmul(self.filters, power).transpose(1, 2)
