"""Helpers of the cloning tests (a uniquely named module: ``conftest`` names clash across test folders)."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """``samples`` as a file of ``fmt`` (WAV, FLAC, OGG, MP3) in memory."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt)
    return buf.getvalue()
