"""Teacher voices that speak the corpus: what they return and the prosody they are asked for.

A teacher module (``baker``, ``kokoro``, ``piper``) has a class with ``synthesize(text, lang,
prosody, ...) -> Take``. Teachers load their model on first use (never at import) and raise
``TeacherMissing`` naming the package to install when it is absent. ``Prosody`` carries the
multipliers an emotion preset asks for; each teacher applies the ones it can (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxserve.errors import PackError


class TeacherMissing(PackError):
    """A teacher's package is not installed (the message names it)."""


@dataclass(frozen=True)
class Prosody:
    """Multipliers relative to the voice's neutral reading (1.0 = unchanged)."""

    speed: float = 1.0
    """Tempo (2.0 = twice as fast)."""
    pitch: float = 1.0
    """F0 level."""
    pitch_range: float = 1.0
    """F0 excursions around the utterance's mean (in log F0)."""
    energy: float = 1.0
    """Vocal effort / loudness."""

    @classmethod
    def for_emotion(cls, preset: dict[str, float], tempo: float = 1.0) -> Prosody:
        """The preset's multipliers (``controls`` presets) with an extra tempo factor."""
        return cls(
            speed=preset.get("speed", 1.0) * tempo,
            pitch=preset.get("pitch", 1.0),
            pitch_range=preset.get("pitch_range", 1.0),
            energy=preset.get("energy", 1.0),
        )

    def scaled(self, speed: float = 1.0, pitch: float = 1.0, pitch_range: float = 1.0) -> Prosody:
        """These multipliers times a voice's own (a synthetic speaker's rate, F0 level and range)."""
        return Prosody(self.speed * speed, self.pitch * pitch, self.pitch_range * pitch_range, self.energy)


NEUTRAL = Prosody()
"""No change from the voice's own reading."""


@dataclass
class Take:
    """One rendered sentence: mono float32 audio and, where the teacher knows them, the seconds
    each student token lasts (one entry per token of the student's sequence, summing to the audio)."""

    audio: np.ndarray
    sample_rate: int
    token_seconds: np.ndarray | None = None
