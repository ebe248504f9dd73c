"""Load-time configuration of the GE2E speaker encoder (defaults: the Resemblyzer 0.1.4 weights)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from voxserve.errors import PackError


@dataclass(frozen=True)
class Config:
    """Shape of the d-vector network and of the audio it expects.

    The defaults are the facts of the pretrained GE2E encoder shipped in Resemblyzer: 16 kHz,
    25 ms / 10 ms power mel frames (not log), 40 bands, a 3-layer LSTM of 256, a 256-d output.
    """

    sample_rate: int = 16000
    """Rate of the audio the encoder reads (Hz)."""
    n_fft: int = 400
    """STFT size and Hann window length (samples; 25 ms at 16 kHz)."""
    hop_length: int = 160
    """STFT hop (samples; 10 ms at 16 kHz)."""
    n_mels: int = 40
    """Mel bands per frame (count, Slaney scale and area normalization, 0 Hz to Nyquist)."""
    hidden_size: int = 256
    """LSTM width (units)."""
    num_layers: int = 3
    """Stacked LSTM layers (count)."""
    embedding_size: int = 256
    """Length of the d-vector (count)."""
    partial_frames: int = 160
    """Frames in one partial utterance (count; 160 frames = 1.6 s)."""
    partials_per_second: float = 1.3
    """How often a partial starts (per second of audio; 1.3 gives a 77-frame step, ~52 % overlap)."""
    min_coverage: float = 0.75
    """Keep a last, zero-padded partial only if at least this fraction of it is audio (ratio)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise PackError(f"speaker encoder config: {f.name} must be a positive number, got {value!r}")
        if not 0 < self.min_coverage <= 1:
            raise PackError(
                f"speaker encoder config: min_coverage must be in (0, 1], got {self.min_coverage}"
            )
        if self.frame_step > self.partial_frames:
            raise PackError("speaker encoder config: partials_per_second too low: partials would leave gaps")

    @property
    def frame_step(self) -> int:
        """Frames between the starts of two partials."""
        return max(1, round(self.sample_rate / self.partials_per_second / self.hop_length))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        """Build from a mapping; an unknown key raises ``PackError`` naming it and ``source``."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise PackError(f"{source}: unknown speaker encoder key(s) {', '.join(extra)}")
        return cls(**data)
