"""A reference clip made ready for the speaker encoder, or refused with a precise 4xx error.

``prepare(data, limits)``: check the size, recognise and decode the format, mix to mono,
resample to 16 kHz, cut silence with an energy voice-activity detector, check the length of
what speech remains, and normalise its loudness. ``check_upload`` checks the count and total
size of several files before any decoding.

The detector is our own and energy-based (30 ms frames, thresholds relative to the clip's own
noise floor and peak, smoothed and dilated so short pauses survive). It finds where something
louder than the background happens; it does not tell speech from music or other sounds. A
signal whose level never varies (steady noise, a tone) is refused as holding no speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxserve.cloning.audio import decode, resample, sniff
from voxserve.cloning.errors import AudioError, CorruptAudio, UnusableAudio, UploadTooLarge
from voxserve.errors import InvalidInput

SAMPLE_RATE = 16000
"""Rate of a prepared reference (Hz): the speaker encoder's."""
FRAME_S = 0.03
"""Detector frame length (seconds)."""
SILENCE_DBFS = -60.0
"""A clip whose loudest frame is quieter than this is silent (dB full scale, RMS)."""
MIN_DYNAMIC_DB = 8.0
"""Least spread between the clip's quiet and loud frames for it to hold speech at all (dB)."""
TARGET_DBFS = -30.0
"""RMS level prepared speech is scaled to (dB full scale): the level the encoder was trained at."""


@dataclass(frozen=True)
class ReferenceLimits:
    """What an upload of reference audio may be. Load-time config; validated on construction."""

    max_file_bytes: int = 10 * 1024 * 1024
    """Largest single file (bytes)."""
    max_files: int = 5
    """Most files in one registration (count)."""
    min_speech_s: float = 3.0
    """Least speech per file after silence is cut (seconds)."""
    max_speech_s: float = 30.0
    """Most speech per file after silence is cut (seconds)."""
    max_audio_s: float = 120.0
    """Longest file before trimming; longer ones are refused before decoding in full (seconds)."""

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"reference limits: {name} must be a positive integer, got {value!r}")
        if not 0 < self.min_speech_s < self.max_speech_s <= self.max_audio_s:
            raise ValueError("reference limits: need 0 < min_speech_s < max_speech_s <= max_audio_s")

    @property
    def max_upload_bytes(self) -> int:
        """Largest request body for one registration: every file at its limit plus form overhead."""
        return self.max_files * self.max_file_bytes + 64 * 1024


@dataclass(frozen=True)
class Reference:
    """One prepared clip: 16 kHz mono float32 speech at ``TARGET_DBFS``, and what it came from."""

    samples: np.ndarray
    format: str
    source_rate: int
    source_seconds: float

    @property
    def speech_seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE


def check_upload(sizes: Sequence[int], limits: ReferenceLimits) -> None:
    """Refuse an upload by its shape alone: no files, too many, an empty or oversized file."""
    if not sizes:
        raise InvalidInput("at least one audio file is required in 'files'", "files")
    if len(sizes) > limits.max_files:
        raise InvalidInput(f"{len(sizes)} files; at most {limits.max_files} per voice", "files")
    for i, size in enumerate(sizes):
        if size > limits.max_file_bytes:
            raise UploadTooLarge(
                f"files[{i}] is {size} bytes; the limit is {limits.max_file_bytes} bytes per file", "files"
            )
        if size == 0:
            raise CorruptAudio(f"files[{i}] is empty", "files")


def prepare(data: bytes, limits: ReferenceLimits | None = None) -> Reference:
    """Decode and clean one clip (see the module docstring); typed ``AudioError`` on anything unusable."""
    limits = limits or ReferenceLimits()
    check_upload([len(data)], limits)
    fmt = sniff(data)
    samples, rate = decode(data, fmt, limits.max_audio_s)
    seconds = samples.size / rate
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    speech = trim_silence(samples)
    length = speech.size / SAMPLE_RATE
    if length < limits.min_speech_s:
        raise UnusableAudio(
            f"only {length:.1f} s of speech after cutting silence; at least {limits.min_speech_s:g} s needed",
            "files",
        )
    if length > limits.max_speech_s:
        raise UnusableAudio(
            f"{length:.1f} s of speech after cutting silence; at most {limits.max_speech_s:g} s accepted",
            "files",
        )
    return Reference(normalize_loudness(speech), fmt, rate, seconds)


def frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS level of each whole frame in dB full scale (digital silence reads -120)."""
    n = samples.size // frame
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def voice_mask(levels: np.ndarray) -> np.ndarray:
    """Which frames hold voice, from their levels: threshold, smooth, then widen by 90 ms each side."""
    if levels.size == 0 or levels.max() < SILENCE_DBFS:
        raise UnusableAudio("the audio is silent", "files")
    floor, peak = np.percentile(levels, 10), np.percentile(levels, 98)
    if peak - floor < MIN_DYNAMIC_DB:
        raise UnusableAudio("no speech found: the level never changes (steady noise or a tone?)", "files")
    # Above the noise floor by a third of the clip's range, and within 40 dB of its loud frames.
    threshold = max(floor + (peak - floor) / 3, peak - 40.0)
    active = (levels > threshold).astype(np.float64)
    # A 5-frame majority vote drops isolated clicks and fills one-frame dropouts.
    smooth = np.convolve(active, np.ones(5) / 5, mode="same") >= 0.5
    # Dilation keeps word onsets, fading ends and short pauses between words.
    widened = np.convolve(smooth.astype(np.float64), np.ones(7), mode="same") > 0
    return widened


def trim_silence(samples: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` with silent stretches removed (only voiced frames, in order). Raises on silence."""
    frame = round(FRAME_S * rate)
    mask = voice_mask(frame_levels(samples, frame))
    if not mask.any():
        raise UnusableAudio("no speech found in the audio", "files")
    keep = np.repeat(mask, frame)
    return samples[: keep.size][keep]


def normalize_loudness(speech: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """``speech`` scaled so its RMS level is ``target_dbfs`` (float32; peaks may exceed 1.0)."""
    rms = float(np.sqrt(np.mean(np.square(speech, dtype=np.float64))))
    if not rms > 0:
        raise UnusableAudio("the audio is silent", "files")
    return (speech * (10.0 ** (target_dbfs / 20.0) / rms)).astype(np.float32)


__all__ = [
    "AudioError",
    "Reference",
    "ReferenceLimits",
    "check_upload",
    "normalize_loudness",
    "prepare",
    "trim_silence",
]
