"""Measure prosody of synthesized audio: pitch level and range, loudness, tempo.

Used to check that controls and emotion presets do what they claim, on the audio
itself rather than on model internals. The pitch tracker is a plain normalized
autocorrelation over voiced frames: good enough to compare two renderings of the
same sentence by the same voice, not a general-purpose F0 estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prosody:
    """Summary of one utterance."""

    f0_median: float
    """Median F0 of voiced frames, Hz."""
    f0_range: float
    """Spread of F0: 90th minus 10th percentile over voiced frames, in semitones."""
    rms_db: float
    """Mean RMS level of voiced frames, dB full scale."""
    duration: float
    """Seconds of audio."""


def f0_track(samples: np.ndarray, sr: int, fmin: float = 70.0, fmax: float = 500.0, frame_s: float = 0.04):
    """Per-frame (f0 Hz, rms) arrays; f0 is NaN where the frame is unvoiced or quiet."""
    x = np.asarray(samples, dtype=np.float64)
    n = int(frame_s * sr)
    hop = n // 2
    if len(x) < n:
        return np.array([np.nan]), np.array([0.0])
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms = np.sqrt((frames**2).mean(axis=1))
    lo, hi = int(sr / fmax), int(sr / fmin)
    spec = np.fft.rfft(frames * np.hanning(n), 2 * n, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : hi + 1]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lag = lo + np.argmax(ac[:, lo : hi + 1], axis=1)
    peak = ac[np.arange(len(ac)), lag]
    voiced = (peak > 0.5) & (rms > 0.1 * np.max(rms))
    f0 = np.where(voiced, sr / lag, np.nan)
    return f0, rms


def measure(samples: np.ndarray, sr: int) -> Prosody:
    """Pitch level/range, level and duration of an utterance."""
    f0, rms = f0_track(samples, sr)
    voiced = ~np.isnan(f0)
    if voiced.sum() < 3:
        return Prosody(float("nan"), float("nan"), float("-inf"), len(samples) / sr)
    semis = 12 * np.log2(f0[voiced])
    return Prosody(
        f0_median=float(np.median(f0[voiced])),
        f0_range=float(np.percentile(semis, 90) - np.percentile(semis, 10)),
        rms_db=float(20 * np.log10(np.mean(rms[voiced]) + 1e-12)),
        duration=len(samples) / sr,
    )
