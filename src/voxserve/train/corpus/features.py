"""Acoustic features of a teacher's waveform: HiFi-GAN log-mel, frame F0, and audio helpers.

The mel follows the convention of HiFi-GAN V1 (the vocoder the student feeds): 22.05 kHz,
n_fft = win = 1024, hop 256, Hann window, reflect padding of (n_fft - hop) / 2 on both sides
and no centering, *magnitude* spectrum, 80 Slaney-style mel filters (librosa's default:
Slaney mel scale and area normalization) from 0 to 8 kHz, and ``log(max(x, 1e-5))``. With the
audio trimmed to a multiple of the hop, a clip of L samples has exactly L / 256 frames.

F0 is a YIN estimate (cumulative mean normalized difference, absolute threshold, parabolic
refinement) on the same frame grid, in Hz with 0 for unvoiced frames. It is written for clean
synthetic speech; it does not try to be robust to noise or reverberation.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    logstep = math.log(6.4) / 27.0
    lin = f / f_sp
    log = min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log, lin)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, 1000.0 * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters, area-normalized (``librosa.filters.mel`` defaults)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


@dataclass(frozen=True)
class MelSpec:
    """Log-mel front end parameters (defaults: HiFi-GAN V1 universal)."""

    sample_rate: int = 22050
    """Hz of the audio it reads."""
    n_fft: int = 1024
    """FFT size in samples."""
    win_length: int = 1024
    """Hann window length in samples."""
    hop_length: int = 256
    """Samples between frames."""
    n_mels: int = 80
    """Mel bands."""
    fmin: float = 0.0
    """Lowest filter edge, Hz."""
    fmax: float = 8000.0
    """Highest filter edge, Hz."""
    log_floor: float = 1e-5
    """Magnitudes below this are clamped before the natural log."""

    def describe(self) -> dict[str, Any]:
        """The parameters as stored in a corpus's ``meta.json`` (plus the conventions in words)."""
        d = asdict(self)
        d.update(magnitude="abs (not power)", mel_norm="slaney", mel_scale="slaney", log="natural")
        return d

    @functools.cached_property
    def _basis(self) -> torch.Tensor:
        fb = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)
        return torch.from_numpy(fb)

    def __call__(self, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Mono float audio [L] → log-mel [frames, n_mels] (frames = L // hop for L ≥ n_fft - hop)."""
        y = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, 1, -1)
        pad = (self.n_fft - self.hop_length) // 2
        y = torch.nn.functional.pad(y, (pad, pad), mode="reflect").reshape(-1)
        spec = torch.stft(
            y,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=torch.hann_window(self.win_length),
            center=False,
            return_complex=True,
        )
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        mel = self._basis @ mag
        return torch.log(torch.clamp(mel, min=self.log_floor)).T.contiguous()


def yin_f0(
    audio: np.ndarray,
    sample_rate: int = 22050,
    hop: int = 256,
    fmin: float = 60.0,
    fmax: float = 700.0,
    threshold: float = 0.15,
    voicing: float = 0.35,
) -> np.ndarray:
    """F0 per frame (Hz, 0 = unvoiced) on the mel's frame grid (len(audio) // hop frames).

    Frame ``i`` is the 1024-sample window the mel uses for that frame; the YIN integration
    window is 1024 - lag_max samples. A frame is voiced when its best normalized difference is
    below ``voicing`` and it is no more than 45 dB below the loudest frame. Isolated voiced
    frames are dropped and voiced runs are median-smoothed over 3 frames.
    """
    x = np.asarray(audio, dtype=np.float64)
    n_frames = len(x) // hop
    frame = 1024
    if n_frames == 0:
        return np.zeros(0, np.float32)
    pad = (frame - hop) // 2
    xp = np.pad(x, (pad, pad + frame), mode="reflect" if len(x) > pad + frame else "constant")
    idx = np.arange(n_frames)[:, None] * hop + np.arange(frame)[None, :]
    frames = xp[idx]
    frames -= frames.mean(axis=1, keepdims=True)
    tau_max = min(int(sample_rate / fmin), frame // 2)
    tau_min = max(2, int(sample_rate / fmax))
    w = frame - tau_max
    # d(tau) = sum_{j<w} (x_j - x_{j+tau})^2 = e0 + e_tau - 2 r(tau), r by FFT correlation.
    size = 2 * frame
    spec_a = np.fft.rfft(frames[:, :w], size)
    spec_b = np.fft.rfft(frames, size)
    r = np.fft.irfft(np.conj(spec_a) * spec_b, size)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, w][:, None]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)

    search = cmnd[:, tau_min : tau_max + 1]
    below = search < threshold
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    # Walk down to the local minimum after the first crossing.
    best = first.copy()
    rows = np.arange(n_frames)
    for _ in range(tau_max):
        nxt = np.minimum(best + 1, search.shape[1] - 1)
        better = search[rows, nxt] < search[rows, best]
        if not better.any():
            break
        best = np.where(better, nxt, best)
    tau = best + tau_min
    value = cmnd[rows, tau]
    # Parabolic interpolation around tau.
    left = cmnd[rows, np.maximum(tau - 1, 1)]
    right = cmnd[rows, np.minimum(tau + 1, tau_max)]
    denom = left - 2 * value + right
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    period = tau + np.clip(shift, -1, 1)
    f0 = sample_rate / period

    energy = 10 * np.log10(np.mean(frames[:, pad : pad + hop] ** 2, axis=1) + 1e-12)
    voiced = (value < voicing) & (energy > energy.max() - 45.0) & (f0 >= fmin) & (f0 <= fmax)
    isolated = voiced & ~np.r_[False, voiced[:-1]] & ~np.r_[voiced[1:], False]
    voiced &= ~isolated
    out = np.where(voiced, f0, 0.0)
    smooth = out.copy()
    for i in range(1, n_frames - 1):
        if voiced[i - 1] and voiced[i] and voiced[i + 1]:
            smooth[i] = np.median(out[i - 1 : i + 2])
    return fix_octave_jumps(smooth.astype(np.float32))


def fix_octave_jumps(f0: np.ndarray, window: int = 10, jump: float = 1.8) -> np.ndarray:
    """Halve voiced values that sit an octave above their neighbourhood (YIN's typical error).

    A voiced frame more than ``jump`` times the median of the voiced frames within ``window``
    frames either side, whose half is within 25 % of that median, is taken as an octave-up
    error. Smooth rises (a surprised contour) move the local median with them and stay.
    """
    out = np.asarray(f0, dtype=np.float32).copy()
    voiced = np.flatnonzero(out > 0)
    for i in voiced:
        near = out[max(0, i - window) : i + window + 1]
        local = float(np.median(near[near > 0]))
        if out[i] > jump * local and abs(out[i] / 2 - local) < 0.25 * local:
            out[i] /= 2
    return out


def to_corpus_audio(audio: np.ndarray, sample_rate: int, hop: int = 256, target: int = 22050) -> np.ndarray:
    """Resample to ``target`` Hz, peak-normalize to -1 dBFS, and trim to a multiple of ``hop``."""
    from voxserve.cloning.audio import resample

    y = resample(np.asarray(audio, dtype=np.float32), sample_rate, target)
    peak = float(np.abs(y).max()) if y.size else 0.0
    if peak > 0:
        y = y * (10 ** (-1 / 20) / peak)
    n = (len(y) // hop) * hop
    return y[:n].astype(np.float32)


def trim_silence(audio: np.ndarray, sample_rate: int, top_db: float = 40.0, keep: float = 0.05) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``top_db`` below the peak (keeps ``keep`` s)."""
    y = np.asarray(audio, dtype=np.float32)
    win = max(1, int(0.02 * sample_rate))
    n = len(y) // win
    if n == 0:
        return y
    rms = np.sqrt(np.mean(y[: n * win].reshape(n, win) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > -top_db)
    margin = int(keep * sample_rate)
    start = max(0, loud[0] * win - margin)
    end = min(len(y), (loud[-1] + 1) * win + margin)
    return y[start:end]
