"""Synthesis of one chapter plan in large length-sorted batches, and its assembly into one waveform.

Throughput mode: the chapter's sentences are grouped by (voice, emotion), each group is sorted by
symbol count and cut into batches of ``batch_size``, and each batch goes through ``Voice.render``
once (similar lengths in a batch waste little padding). Nothing here streams or yields to other
work, except through the ``gate`` hook called before each batch.

Assembly: sentences in text order, each followed by its planned gap. Sentences of a voice with
another sample rate are resampled to the chapter's rate (the job's default voice's). Cues are
sentence-level: a cue starts where the sentence's first spoken character starts (predicted
durations) and ends where its audio ends, just before the gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from voxserve.batch.plan import ChapterPlan, Voices


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``text`` shown from ``start`` to ``end`` seconds."""

    start: float
    end: float
    text: str


@dataclass
class ChapterAudio:
    """A rendered chapter: mono float32 samples, their rate, and sentence cues."""

    samples: np.ndarray
    sample_rate: int
    cues: list[Cue]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


BatchDone = Callable[[int, float], None]
"""Called after each batch with (sentences in it, seconds of audio it produced)."""


@dataclass
class RenderedChapter:
    """A chapter's sentences as the models returned them, in text order, before assembly.

    ``samples[i]`` is sentence i at ``sample_rate`` (possibly a view into its batch's output);
    ``durations[i]`` its per-symbol durations in seconds. ``assemble`` turns it into a ``ChapterAudio``.
    """

    plan: ChapterPlan
    samples: list[np.ndarray]
    durations: list[np.ndarray]
    sample_rate: int


def render_chapter(
    plan: ChapterPlan,
    voices: Voices,
    sample_rate: int,
    batch_size: int,
    stop: threading.Event | None = None,
    gate: Callable[[], None] | None = None,
    on_batch: BatchDone | None = None,
) -> ChapterAudio | None:
    """Render and assemble ``plan``; None when ``stop`` was set before the chapter finished."""
    rendered = render_sentences(plan, voices, sample_rate, batch_size, stop, gate, on_batch)
    return None if rendered is None else assemble_rendered(rendered, voices.params.volume)


def render_sentences(
    plan: ChapterPlan,
    voices: Voices,
    sample_rate: int,
    batch_size: int,
    stop: threading.Event | None = None,
    gate: Callable[[], None] | None = None,
    on_batch: BatchDone | None = None,
    stages: dict[str, float] | None = None,
) -> RenderedChapter | None:
    """Every sentence of ``plan`` through the models, no assembly; None when ``stop`` was set.

    ``stages`` (if given) accumulates the models' wall time in ms (``Voice.render``'s keys).
    """
    # One group per (pack, emotion): rows of one batch share controls but may differ in speaker.
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, s in enumerate(plan.sentences):
        groups.setdefault((voices.speaker(s.voice).pack, s.emotion), []).append(i)
    samples: list[np.ndarray | None] = [None] * len(plan.sentences)
    durations: list[np.ndarray | None] = [None] * len(plan.sentences)
    for (pack, emotion), members in groups.items():
        voice, _ = voices.get(pack)
        if voice.max_batch < batch_size:
            voice.max_batch = batch_size  # render() cuts batches at max_batch; let ours through whole
        params = voices.synthesis_params(emotion)
        controls = voices.controls(pack, emotion)
        members.sort(key=lambda i: len(plan.sentences[i].seq.symbols))
        rate = voice.config.sample_rate
        frame = voice.config.hop_length / rate
        for start in range(0, len(members), batch_size):
            if stop is not None and stop.is_set():
                return None
            if gate is not None:
                gate()
            chunk = [plan.sentences[i] for i in members[start : start + batch_size]]
            speakers = [voice.speaker_value(voices.speaker(s.voice)) for s in chunk]
            styles = [voice.style_vector(params, s.seq.text) for s in chunk]
            rendered = voice.render([s.seq for s in chunk], controls, stages, speakers, styles)
            produced = 0
            for i, r in zip(members[start : start + batch_size], rendered, strict=True):
                wav = r.samples if rate == sample_rate else resample(r.samples, rate, sample_rate)
                samples[i] = wav
                durations[i] = r.durations.astype(np.float64) * frame  # seconds, for the cue start
                produced += len(wav)
            if on_batch is not None:
                on_batch(len(chunk), produced / sample_rate)
    if any(x is None for x in samples) or any(d is None for d in durations):
        raise ValueError("a sentence was not rendered")
    return RenderedChapter(
        plan, cast(list[np.ndarray], samples), cast(list[np.ndarray], durations), sample_rate
    )


def assemble_rendered(rendered: RenderedChapter, volume: float = 1.0) -> ChapterAudio:
    """``assemble`` of a ``RenderedChapter``."""
    r = rendered
    return assemble(r.plan, list(r.samples), list(r.durations), r.sample_rate, volume)


def chapter_cues(
    plan: ChapterPlan, samples: list[np.ndarray], durations: list[np.ndarray], sample_rate: int
) -> tuple[list[Cue], int]:
    """The sentence cues of the assembled chapter and its length in samples (without assembling it)."""
    if len(samples) != len(plan.sentences) or len(durations) != len(plan.sentences):
        raise ValueError("assemble needs every sentence rendered")
    cues: list[Cue] = []
    last = len(plan.sentences) - 1
    offset = round(plan.lead * sample_rate)
    for k, (s, wav, dur) in enumerate(zip(plan.sentences, samples, durations, strict=True)):
        # Lead-in: predicted time before the first spoken symbol (a symbol of a character, with frames).
        spoken = np.flatnonzero((np.asarray(s.seq.char_index) >= 0) & (dur > 0))
        lead_in = float(dur[: spoken[0]].sum()) if len(spoken) else 0.0
        start = offset / sample_rate
        end = (offset + len(wav)) / sample_rate
        cues.append(Cue(round(min(start + lead_in, end), 3), round(end, 3), s.text))
        offset += len(wav) + (round(s.gap_after * sample_rate) if k < last else 0)
    return cues, offset


def assemble(
    plan: ChapterPlan,
    samples: list[np.ndarray | None],
    durations: list[np.ndarray | None],
    sample_rate: int,
    volume: float = 1.0,
) -> ChapterAudio:
    """Join rendered sentences with their gaps; cues from the predicted durations.

    (The runner does not call this: it encodes the pieces directly, see ``batch.encode``.)
    """
    wavs = [w for w in samples if w is not None]
    durs = [d for d in durations if d is not None]
    if len(wavs) != len(samples) or len(durs) != len(durations):
        raise ValueError("assemble needs every sentence rendered")
    cues, total = chapter_cues(plan, wavs, durs, sample_rate)
    out = np.zeros(total, dtype=np.float32)
    offset = round(plan.lead * sample_rate)
    last = len(plan.sentences) - 1
    for k, (s, wav) in enumerate(zip(plan.sentences, wavs, strict=True)):
        out[offset : offset + len(wav)] = wav
        offset += len(wav) + (round(s.gap_after * sample_rate) if k < last else 0)
    if volume != 1.0:
        # In place: the same values as clip(out * volume), without a second chapter-sized array.
        np.multiply(out, volume, out=out)
        np.clip(out, -1.0, 1.0, out=out)
    return ChapterAudio(out, sample_rate, cues)


def resample(x: np.ndarray, source: int, target: int) -> np.ndarray:
    """``x`` at ``source`` Hz resampled to ``target`` Hz (polyphase with scipy if present, else linear)."""
    if source == target or len(x) == 0:
        return x
    try:
        from math import gcd

        from scipy.signal import resample_poly  # type: ignore[import-untyped]

        g = gcd(source, target)
        return resample_poly(x, target // g, source // g).astype(np.float32)
    except ImportError:
        n = round(len(x) * target / source)
        return np.interp(np.arange(n) * (source / target), np.arange(len(x)), x).astype(np.float32)
