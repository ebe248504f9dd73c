"""Helpers for the batch tests: decoding written audio and measuring silences."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of an audio file written by a batch job (any format but pcm)."""
    if path.suffix in (".wav", ".flac"):
        import soundfile as sf

        x, sr = sf.read(str(path), dtype="float32")
        return x, sr
    import av

    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1) for frame in f.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.rate


def longest_quiet_run(x: np.ndarray, sr: int, threshold: float = 0.005) -> float:
    """Seconds of the longest run of samples below ``threshold`` in magnitude."""
    loud = np.flatnonzero(np.abs(x) >= threshold)
    edges = np.concatenate([[-1], loud, [len(x)]])
    return float(np.max(np.diff(edges)) - 1) / sr
