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
        t = offset / sample_rate
        char_span: dict[int, list[float]] = {}
        for sym, ci, d in zip(seq.symbols, seq.char_index, r.durations, strict=True):
            if d <= 0:
                continue
            end = t + float(d) * frame
            phones.append(Timing(sym, round(t, 4), round(end, 4)))
            if ci >= 0:
                span = char_span.setdefault(ci, [t, end])
                span[1] = end
            t = end
        chars.extend(
            Timing(seq.text[ci], round(s, 4), round(e, 4)) for ci, (s, e) in sorted(char_span.items())
        )
        parts.append(r.samples)
        offset += len(r.samples)
        if k + 1 < len(seqs):
            pause = SENTENCE_PAUSES.get(seq.text.rstrip()[-1:], SHORT_PAUSE) / params.speed
            gap = np.zeros(int(pause * sample_rate), dtype=np.float32)
            parts.append(gap)
            offset += len(gap)
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if params.volume != 1.0:
        samples = np.clip(samples * params.volume, -1.0, 1.0)
    return Audio(samples.astype(np.float32, copy=False), sample_rate, phones, chars, [s.text for s in seqs])
