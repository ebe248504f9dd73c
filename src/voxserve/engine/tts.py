"""The Python API: ``voxserve.TTS().synthesize(text, ...) -> Audio``.

TTS owns loaded voices (lazily, by name) and turns one text into one Audio:
split into sentences, phonemize, render all sentences in batches, join them with
pauses that follow the punctuation, and compute phone and character timings. It
does not stream or schedule across requests: the server's engine does that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from voxserve.engine.audio import Audio, Timing
from voxserve.engine.controls import SynthesisParams
from voxserve.engine.resolve import resolve_voice
from voxserve.engine.speakers import Speaker, VoiceDirectory
from voxserve.engine.voice import Rendered, Voice
from voxserve.errors import InvalidInput
from voxserve.frontend.interface import PhoneSequence

DEFAULT_VOICE = "baker"
MAX_INPUT_CHARS = 20_000
"""Longest text one call accepts (about an hour of speech); longer documents belong in batch jobs."""

# Pause after a sentence, by its last character, in seconds at speed 1.
SENTENCE_PAUSES = {
    "。": 0.25,
    "！": 0.25,
    "？": 0.25,
    ".": 0.25,
    "!": 0.25,
    "?": 0.25,
    "…": 0.3,
    "；": 0.15,
    ";": 0.15,
}
SHORT_PAUSE = 0.08


class TTS:
    """Text to speech with the packs installed here (the default voice converts on first use).

    ``backend`` names how models run (``torch`` by default); ``device`` is passed
    to it. ``threads`` sets torch's intra-op threads when given. ``directories`` resolve
    voice ids that are not pack or speaker names (registered voices, see ``speakers.py``).
    ``backend_options`` are extra keyword arguments for the backend (e.g. the cuda backend's
    graph budgets). Safe to share across threads: voices load once under a lock; synthesis calls may overlap.
    """

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        backend: str = "torch",
        device: str = "cpu",
        threads: int | None = None,
        directories: Sequence[VoiceDirectory] = (),
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.default_voice = voice
        self.backend_name = backend
        self.device = device
        self.directories = list(directories)
        self.backend_options = dict(backend_options or {})
        self._voices: dict[str, Voice] = {}
        self._lock = threading.Lock()

    def voice(self, name: str | None = None) -> Voice:
        """The loaded voice of pack ``name`` (default voice if None), loading it on first use.

        A ``<pack>:<speaker>`` name gives its pack's voice (the speaker is chosen per call).
        """
        from voxserve.backends.registry import create
        from voxserve.packs import store

        name = (name or self.default_voice).split(":", 1)[0]
        with self._lock:
            if name not in self._voices:
                pack = store.load(name)
                self._voices[name] = Voice(
                    pack, create(self.backend_name, device=self.device, **self.backend_options)
                )
            return self._voices[name]

    def speaker(self, name: str | None = None) -> Speaker:
        """The speaker a voice name means (see ``resolve_voice``), loading its pack if needed."""
        with self._lock:
            loaded = {n: v.pack for n, v in self._voices.items()}
        return resolve_voice(
            name, self.default_voice, loaded, self.directories, load=lambda n: self.voice(n).pack
        )

    def voices(self) -> list[str]:
        """Names of the voices that can be used (installed or convertible)."""
        from voxserve.packs import store

        return store.available()

    def synthesize(
        self,
        text: str,
        voice: str | None = None,
        speed: float | None = None,
        pitch: float | None = None,
        energy: float | None = None,
        volume: float | None = None,
        emotion: str | None = None,
        instructions: str | None = None,
    ) -> Audio:
        """Speak ``text``. Raises InvalidInput/NotFound with a clear message on bad input.

        ``voice``: a pack name, ``<pack>:<speaker>``, a speaker name, or a registered voice id.
        ``instructions``: free-text style for voices styled by prompts (EmotiVoice).
        """
        params = SynthesisParams.create(speed, pitch, energy, volume, emotion, instructions)
        if not isinstance(text, str):
            raise InvalidInput("input must be a string", param="input")
        if not text.strip():
            raise InvalidInput("input is empty", param="input")
        if len(text) > MAX_INPUT_CHARS:
            raise InvalidInput(
                f"input is {len(text)} characters; the limit is {MAX_INPUT_CHARS} per call", param="input"
            )
        who = self.speaker(voice)
        v = self.voice(who.pack)
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        seqs = [v.frontend.phonemize(s) for s in v.frontend.split(text)]
        stages["frontend"] = (time.perf_counter() - t0) * 1e3
        if not seqs:
            raise InvalidInput(
                "input has nothing to speak (only punctuation, symbols or emoji)", param="input"
            )
        t0 = time.perf_counter()
        styles = [v.style_vector(params, seq.text) for seq in seqs]
        if v.style.dim:
            stages["style"] = (time.perf_counter() - t0) * 1e3
        speakers = [v.speaker_value(who)] * len(seqs)
        controls = params.model_controls(v.config.prosody_presets)
        rendered = v.render(seqs, controls, stages, speakers, styles)
        audio = assemble(seqs, rendered, v.config.sample_rate, v.config.hop_length, params)
        audio.stages = stages
        return audio


def sentence_pause(text: str, speed: float, sample_rate: int) -> int:
    """Samples of silence after a sentence: longer after 。！？ than after a comma-like ending."""
    return int(SENTENCE_PAUSES.get(text.rstrip()[-1:], SHORT_PAUSE) / speed * sample_rate)


def char_timings(seq: PhoneSequence, durations: np.ndarray, frame_s: float, start_s: float) -> list[Timing]:
    """Each spoken character's span: from its first voiced symbol's start to its last one's end.

    ``durations`` are frames per symbol of ``seq``; times are seconds from ``start_s`` (the
    sentence's start on the job's clock), rounded to 0.1 ms. Symbols of no duration or of no
    character (pauses, boundaries) add nothing. Vectorized: the streaming engine calls it per
    sentence on its executor thread.
    """
    d = np.asarray(durations, dtype=np.int64)
    ci = np.asarray(seq.char_index, dtype=np.int64)
    ends = np.cumsum(d)
    keep = (d > 0) & (ci >= 0)
    if not keep.any():
        return []
    owner, first_frame, last_frame = ci[keep], (ends - d)[keep], ends[keep]
    order = np.argsort(owner, kind="stable")  # symbol order within each character
    owner = owner[order]
    chars, first = np.unique(owner, return_index=True)
    last = np.append(first[1:], len(owner)) - 1
    starts = np.round(start_s + first_frame[order][first] * frame_s, 4)
    stops = np.round(start_s + last_frame[order][last] * frame_s, 4)
    text = seq.text
    return [
        Timing(text[c], float(a), float(b)) for c, a, b in zip(chars.tolist(), starts, stops, strict=True)
    ]


def assemble(
    seqs: list[PhoneSequence], rendered: list[Rendered], sample_rate: int, hop: int, params: SynthesisParams
) -> Audio:
    """Join sentences with punctuation-dependent pauses, apply volume, and compute timings."""
    parts: list[np.ndarray] = []
    phones: list[Timing] = []
    chars: list[Timing] = []
    offset = 0
    frame = hop / sample_rate
    for k, (seq, r) in enumerate(zip(seqs, rendered, strict=True)):
        start = offset / sample_rate
        frames = 0
        for sym, d in zip(seq.symbols, r.durations, strict=True):
            if d > 0:
                phones.append(
                    Timing(sym, round(start + frames * frame, 4), round(start + (frames + d) * frame, 4))
                )
                frames += int(d)
        chars.extend(char_timings(seq, r.durations, frame, start))
        parts.append(r.samples)
        offset += len(r.samples)
        if k + 1 < len(seqs):
            gap = np.zeros(sentence_pause(seq.text, params.speed, sample_rate), dtype=np.float32)
            parts.append(gap)
            offset += len(gap)
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if params.volume != 1.0:
        samples = np.clip(samples * params.volume, -1.0, 1.0)
    return Audio(samples.astype(np.float32, copy=False), sample_rate, phones, chars, [s.text for s in seqs])
