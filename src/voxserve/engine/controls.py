"""Per-request synthesis parameters: validation, emotion names, and the mapping onto model controls.

``None`` always means "the voice's default". Ranges are checked here, once, so
every entry point (Python API, CLI, HTTP) reports the same clear error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxserve.errors import InvalidInput, NotFound

EMOTIONS: tuple[str, ...] = ("普通", "生气", "开心", "惊讶", "悲伤", "厌恶", "恐惧")
"""EmotiVoice's seven labels, in its order."""

EMOTION_ALIASES: dict[str, str] = {
    "neutral": "普通",
    "normal": "普通",
    "angry": "生气",
    "anger": "生气",
    "happy": "开心",
    "joy": "开心",
    "surprised": "惊讶",
    "surprise": "惊讶",
    "sad": "悲伤",
    "sadness": "悲伤",
    "disgusted": "厌恶",
    "disgust": "厌恶",
    "fearful": "恐惧",
    "fear": "恐惧",
    "afraid": "恐惧",
}

MAX_INSTRUCTIONS = 4096
"""Longest ``instructions`` text (OpenAI's limit); a style encoder reads at most its own token limit."""

# (low, high) inclusive; speed follows OpenAI's limits.
RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.25, 4.0),
    "pitch": (0.5, 2.0),
    "energy": (0.25, 4.0),
    "volume": (0.0, 4.0),
}


def resolve_emotion(name: str | None) -> str | None:
    """Canonical label for an emotion name or English alias (case-insensitive); None stays None."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidInput("emotion must be a string", param="emotion")
    key = name.strip()
    if key in EMOTIONS:
        return key
    label = EMOTION_ALIASES.get(key.lower())
    if label is None:
        valid = ", ".join(EMOTIONS) + " (or " + ", ".join(sorted(set(EMOTION_ALIASES))) + ")"
        raise NotFound(f"unknown emotion {name!r}; valid: {valid}", param="emotion")
    return label


def _check(name: str, value: float | None) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number", param=name)
    low, high = RANGES[name]
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {value}", param=name)
    return float(value)


@dataclass(frozen=True)
class SynthesisParams:
    """Validated per-request controls. Multipliers: 1.0 is the voice's default.

    speed: tempo multiplier (2.0 = twice as fast), 0.25–4.0.
    pitch: pitch multiplier, 0.5–2.0.
    energy: the model's energy multiplier (loudness and vocal effort), 0.25–4.0.
    volume: output gain, 0.0–4.0 (samples are clipped to [-1, 1]).
    emotion: canonical emotion label or None (neutral).
    instructions: free-text style prompt (e.g. 用开心的语气说) or None; packs whose style comes from a
    prompt (EmotiVoice) read it in preference to ``emotion``; others ignore it.
    """

    speed: float = 1.0
    pitch: float = 1.0
    energy: float = 1.0
    volume: float = 1.0
    emotion: str | None = None
    instructions: str | None = None

    @classmethod
    def create(
        cls,
        speed: float | None = None,
        pitch: float | None = None,
        energy: float | None = None,
        volume: float | None = None,
        emotion: str | None = None,
        instructions: str | None = None,
    ) -> SynthesisParams:
        if instructions is not None and not isinstance(instructions, str):
            raise InvalidInput("instructions must be a string", param="instructions")
        if instructions is not None and len(instructions) > MAX_INSTRUCTIONS:
            raise InvalidInput(
                f"instructions are {len(instructions)} characters; the limit is {MAX_INSTRUCTIONS}",
                param="instructions",
            )
        return cls(
            speed=_check("speed", speed),
            pitch=_check("pitch", pitch),
            energy=_check("energy", energy),
            volume=_check("volume", volume),
            emotion=resolve_emotion(emotion),
            instructions=(instructions or "").strip() or None,
        )

    def model_controls(self, presets: dict[str, dict[str, float]]) -> dict[str, float]:
        """Multipliers for the acoustic model: user controls combined with the emotion's prosody preset."""
        preset = presets.get(self.emotion or "普通", {})
        tempo = self.speed * preset.get("speed", 1.0)
        return {
            "duration": 1.0 / tempo,
            "pitch": self.pitch * preset.get("pitch", 1.0),
            "pitch_range": preset.get("pitch_range", 1.0),
            "energy": self.energy * preset.get("energy", 1.0),
        }
