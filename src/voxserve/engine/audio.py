"""The result of a synthesis: samples, sample rate, and timings."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Timing:
    """A span of the output audio: what is spoken (a phone symbol or a character) and when, in seconds."""

    text: str
    start: float
    end: float


@dataclass
class Audio:
    """Mono float32 audio in [-1, 1] with per-phone and per-character timings.

    ``phones`` covers every model symbol that lasts at least one frame (silences
    and prosody breaks included); ``chars`` covers each spoken character of the
    normalized text (``sentences``). Times are in seconds on this audio's clock.
    ``stages`` holds wall time in milliseconds per pipeline stage.
    """

    samples: np.ndarray
    sample_rate: int
    phones: list[Timing] = field(default_factory=list)
    chars: list[Timing] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate

    def pcm16(self) -> bytes:
        """Little-endian signed 16-bit PCM, no header."""
        return (np.clip(self.samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()

    def wav(self) -> bytes:
        """A complete 16-bit PCM WAV file."""
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, self.samples, self.sample_rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write a file; the format follows the extension (wav, flac, ogg)."""
        import soundfile as sf

        path = Path(path)
        sf.write(str(path), self.samples, self.sample_rate)
        return path
