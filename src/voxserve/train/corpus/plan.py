"""What the corpus will contain: speakers, and one job per utterance (text, emotion, tempo, split).

The plan is a pure function of the options and the seed, so a stopped build resumes with the
same jobs. Speakers: ``baker`` (zh) and its pitch variants (``baker_pNNN``: the same native
Mandarin reading with the F0 level scaled), ``piper_joe`` (en), the five Kokoro voices, and
Kokoro blends (``blend_NNN``: Dirichlet-weighted mixes of the five packs plus a small constant
offset, each with a voice of its own: an F0 level, an F0 range and a speaking rate drawn per
blend, because five packs, four of them young women, span too little for a d-vector to tell
their mixes apart); the first ``held_out_blends`` blends are held out (eval only). Every teacher voice also gets a
few eval utterances whose texts come from a reserved slice of each sentence list, never used
for training. Jobs are ordered round-robin over speakers (eval jobs first), so a build cut short
by its deadline still covers every speaker evenly.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from voxserve.engine.controls import EMOTIONS
from voxserve.train.corpus import sentences
from voxserve.train.corpus.teachers.kokoro import VOICES

NEUTRAL = EMOTIONS[0]
EMOTION_WEIGHTS = {NEUTRAL: 0.34, **{e: 0.11 for e in EMOTIONS[1:]}}
# Emotions whose Mandarin text is drawn mostly from positive / negative reviews.
_POSITIVE = {"开心", "惊讶"}
_NEGATIVE = {"生气", "厌恶", "悲伤"}
_EVAL_RESERVE = 150
"""Most sentences per list set aside for eval texts (a tenth of a shorter list)."""


@dataclass(frozen=True)
class Options:
    """Build options (what ``voxserve train corpus`` sets)."""

    minutes: float = 75.0
    """Target minutes of training audio over all speakers (before the deadline cuts it)."""
    blends: int = 48
    """Kokoro blends, held-out ones included."""
    held_out_blends: int = 8
    """Blends used only for evaluation."""
    seed: int = 0
    """Seed for blends, text choice, emotions and tempo."""
    shares: tuple[float, float, float, float] = (0.2, 0.12, 0.2, 0.48)
    """Fractions of ``minutes`` for baker (with its variants), piper, the five Kokoro voices, the
    training blends."""
    baker_pitches: tuple[float, ...] = ()
    """F0 multipliers of the baker variants (each a speaker sharing baker's share)."""
    voice_spread: float = 0.0
    """0: blends keep the packs' own F0 and rate. s > 0: each blend draws an F0 level
    log-uniform in [1/(1+s), 1+s], an F0 range in [1-s, 1+s] and a rate in [1-s/3, 1+s/3]."""
    mixed_fraction: float = 0.05
    """Share of Mandarin utterances with English words in them."""


@dataclass(frozen=True)
class Speaker:
    """One corpus speaker. ``blend`` holds its voice: for Kokoro a mix (weights, noise, seed) and,
    for any teacher, optional ``pitch`` / ``pitch_range`` / ``rate`` multipliers; empty for a
    teacher's own voice."""

    name: str
    teacher: str
    lang: str
    held_out: bool = False
    blend: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """The entry written to ``meta.json``."""
        d = {"name": self.name, "teacher": self.teacher, "lang": self.lang, "held_out": self.held_out}
        if self.blend:
            d["blend"] = self.blend
        return d


@dataclass(frozen=True)
class Job:
    """One utterance to render."""

    id: str
    speaker: str
    teacher: str
    lang: str
    text: str
    emotion: str
    tempo: float
    split: str
    clip: bool = False
    """Also write this utterance's audio as an eval reference clip."""

    def record(self) -> dict[str, Any]:
        return asdict(self)


def speakers(opts: Options) -> list[Speaker]:
    """All speakers of the plan, held-out blends included."""
    rng = random.Random(opts.seed * 7919 + 1)
    out = [Speaker("baker", "baker", "zh")]
    out += [
        Speaker(f"baker_p{round(p * 100):03d}", "baker", "zh", blend={"pitch": p}) for p in opts.baker_pitches
    ]
    out.append(Speaker("piper_joe", "piper", "en"))
    out += [Speaker(f"kokoro_{v}", "kokoro", "zh+en", blend={"weights": {v: 1.0}}) for v in VOICES]
    for i in range(opts.blends):
        raw = [rng.gammavariate(0.6, 1.0) for _ in VOICES]
        total = sum(raw)
        weights = {v: round(w / total, 4) for v, w in zip(VOICES, raw, strict=True) if w / total >= 0.005}
        blend = {
            "weights": weights,
            "noise": round(rng.uniform(0.0, 0.15), 3),
            "seed": rng.randrange(1 << 30),
        }
        if opts.voice_spread > 0:
            s = opts.voice_spread
            blend["pitch"] = round(math.exp(rng.uniform(-math.log1p(s), math.log1p(s))), 3)
            blend["pitch_range"] = round(rng.uniform(1 - s, 1 + s), 3)
            blend["rate"] = round(rng.uniform(1 - s / 3, 1 + s / 3), 3)
        out.append(
            Speaker(f"blend_{i:03d}", "kokoro", "zh+en", held_out=i < opts.held_out_blends, blend=blend)
        )
    return out


def _seconds(text: str, lang: str, teacher: str) -> float:
    """Rough spoken length, to size the plan (the deadline, not this, bounds the build)."""
    if lang == "en":
        return 0.36 * len(text.split()) + 0.3
    return (0.19 if teacher == "baker" else 0.26) * len(text) + 0.3


class _Texts:
    """Sentence pools without replacement; eval and train slices never overlap."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed * 31 + 7)
        self.train: dict[str, list[str]] = {}
        self.eval: dict[str, list[str]] = {}
        for name in sentences.LISTS:
            pool = list(sentences.load(name))
            rng.shuffle(pool)
            reserve = min(_EVAL_RESERVE, len(pool) // 10)
            self.eval[name], self.train[name] = pool[:reserve], pool[reserve:]
        held = {t for pool in self.eval.values() for t in pool}
        # The same sentence can sit in two lists (or twice after normalization): eval wins.
        self.train = {name: [t for t in pool if t not in held] for name, pool in self.train.items()}
        self._reuse = {name: tuple(pool) for name, pool in self.train.items()}
        self._rng = rng

    def take(self, name: str, split: str, lo: int = 0, hi: int = 10_000) -> str:
        pool = (self.eval if split == "eval" else self.train)[name]
        for i, s in enumerate(pool):
            size = len(s.split()) if name.startswith("en") else len(s)
            if lo <= size <= hi:
                return pool.pop(i)
        if pool:  # nothing in range: the longest there is
            return pool.pop(max(range(len(pool)), key=lambda i: len(pool[i])))
        # The list ran out: reuse a training sentence (never an eval one).
        return self._rng.choice(self._reuse[name])


def _zh_list(emotion: str, rng: random.Random, mixed_fraction: float) -> str:
    """Which Mandarin list an utterance with this emotion reads from."""
    if rng.random() < mixed_fraction:
        return "zh_en_mixed"
    if emotion in _POSITIVE and rng.random() < 0.6:
        return "zh_reviews_pos"
    if emotion in _NEGATIVE and rng.random() < 0.6:
        return "zh_reviews_neg"
    return "zh_news"


def jobs(opts: Options, speaker_list: list[Speaker] | None = None) -> list[Job]:
    """Every job of the plan, eval jobs first, then training jobs round-robin over speakers."""
    rng = random.Random(opts.seed)
    texts = _Texts(opts.seed)
    spk = speaker_list or speakers(opts)
    eval_jobs: list[Job] = []
    for i, s in enumerate(spk):
        langs = ["zh", "en"] if s.lang == "zh+en" else [s.lang]
        if (s.teacher == "baker" and s.blend) or (s.name.startswith("blend") and not s.held_out):
            continue  # training blends and baker's variants need no eval clips
        n_eval = 4 if s.held_out else 2
        for k in range(n_eval):
            lang = langs[(k + i) % len(langs)]
            name = "zh_news" if lang == "zh" else "en_fortunes"
            if k > 0:
                text = texts.take(name, "eval")
                eval_jobs.append(
                    Job(f"{s.name}_eval{k}", s.name, s.teacher, lang, text, NEUTRAL, 1.0, "eval")
                )
                continue
            # The reference clip: 4-8 s of speech (a cloning request needs at least 3 s).
            lo, hi = (20, 30) if lang == "zh" else (12, 20)
            text = texts.take(name, "eval", lo, hi)
            if lang == "en" and len(text.split()) < 16:  # fortunes are short: two sentences
                text = f"{text} {texts.take(name, 'eval', 6, 12)}"
            eval_jobs.append(Job(f"{s.name}_ref", s.name, s.teacher, lang, text, NEUTRAL, 1.0, "eval", True))
    budget = {
        "baker": opts.shares[0] * opts.minutes * 60 / (1 + len(opts.baker_pitches)),
        "piper": opts.shares[1] * opts.minutes * 60,
        "kokoro_voice": opts.shares[2] * opts.minutes * 60 / len(VOICES),
        "blend": opts.shares[3] * opts.minutes * 60 / max(1, opts.blends - opts.held_out_blends),
    }
    per_speaker: list[list[Job]] = []
    labels, weights = zip(*EMOTION_WEIGHTS.items(), strict=True)
    for s in spk:
        if s.held_out:
            continue
        key = (
            s.teacher
            if s.teacher in ("baker", "piper")
            else ("blend" if s.name.startswith("blend") else "kokoro_voice")
        )
        left = budget[key]
        mine: list[Job] = []
        while left > 0:
            lang = "en" if s.lang == "en" or (s.lang == "zh+en" and len(mine) % 2 == 1) else "zh"
            emotion = NEUTRAL if s.teacher == "piper" else rng.choices(labels, weights)[0]
            # Baker spells Latin letters as pinyin letter names: it gets no mixed sentences.
            mixed = 0.0 if s.teacher == "baker" else opts.mixed_fraction
            name = "en_fortunes" if lang == "en" else _zh_list(emotion, rng, mixed)
            text = texts.take(name, "train")
            tempo = round(rng.uniform(0.92, 1.08), 3)
            mine.append(
                Job(f"{s.name}_{len(mine):04d}", s.name, s.teacher, lang, text, emotion, tempo, "train")
            )
            left -= _seconds(text, lang, s.teacher) / tempo
        per_speaker.append(mine)
    # Baker and Piper render ~20x faster than Kokoro: all of theirs first, then Kokoro round-robin.
    ordered: list[Job] = []
    for group in (("baker", "piper"), ("kokoro",)):
        lists = [m for m in per_speaker if m and m[0].teacher in group]
        for k in range(max((len(m) for m in lists), default=0)):
            ordered += [m[k] for m in lists if k < len(m)]
    return eval_jobs + ordered
