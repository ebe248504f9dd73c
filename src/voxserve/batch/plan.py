"""A chapter as a plan of sentences: what each says, with which voice and emotion, and the silence after it.

Silences: an explicit ``[pause:…]`` is exactly that long (several in a row add up); otherwise the
gap follows the text: after a chapter's spoken title ``TITLE_PAUSE``, between paragraphs
``PARAGRAPH_PAUSE``, between sentences the punctuation pause (as ``TTS.synthesize`` uses); these
defaults are divided by the job's speed. A chapter's audio starts with its leading pause (0 unless
the text starts with ``[pause:…]``) and ends with its last sentence (no trailing gap).

``Voices`` loads each voice once per job, with the job's lexicon in its frontend; names and
emotions are checked here so that a bad one fails before any synthesis, with its position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from voxserve.batch import markup
from voxserve.batch.documents import Chapter
from voxserve.batch.lexicon import Lexicon, frontend_with_lexicon
from voxserve.engine import tts as tts_pauses
from voxserve.engine.controls import SynthesisParams, resolve_emotion
from voxserve.errors import InvalidInput, NotFound
from voxserve.frontend.interface import PhoneSequence

TITLE_PAUSE = 1.0
"""Seconds after a spoken chapter title (at speed 1)."""
PARAGRAPH_PAUSE = 0.6
"""Seconds between paragraphs (at speed 1)."""
# Sentence pauses are the Python API's (by the sentence's last character, at speed 1).
SENTENCE_PAUSES, SHORT_PAUSE = tts_pauses.SENTENCE_PAUSES, tts_pauses.SHORT_PAUSE


@dataclass(frozen=True)
class Sentence:
    """One sentence to render: normalized text, resolved voice and emotion, symbols, and the gap after it."""

    text: str
    voice: str
    emotion: str | None
    seq: PhoneSequence
    gap_after: float


@dataclass(frozen=True)
class ChapterPlan:
    """Everything to render for one chapter (``index`` counts from 1)."""

    index: int
    title: str
    sentences: tuple[Sentence, ...]
    lead: float

    @property
    def characters(self) -> int:
        return sum(len(s.text) for s in self.sentences)


class Voices:
    """The job's voices, loaded on first use from a ``TTS``, each pack with a lexicon-aware frontend.

    A voice name is anything ``TTS.speaker`` resolves (a pack, ``<pack>:<speaker>``, a registered
    voice); sentences of speakers of one pack share batches (per-row speakers). ``params`` are
    the job's controls (speed, pitch, energy, volume). Not thread-safe (one job uses it at a time).
    """

    def __init__(self, tts: Any, params: SynthesisParams, lexicon: Lexicon) -> None:
        self.tts = tts
        self.params = params
        self.lexicon = lexicon
        self._speakers: dict[str, Any] = {}
        self._packs: dict[str, tuple[Any, Any]] = {}

    def speaker(self, name: str) -> Any:
        """The ``Speaker`` a voice name means; ``NotFound`` for an unknown voice."""
        if name not in self._speakers:
            self._speakers[name] = self.tts.speaker(name)
        return self._speakers[name]

    def get(self, name: str) -> tuple[Any, Any]:
        """(Voice, frontend) rendering voice ``name`` (its pack's); ``NotFound`` for an unknown voice."""
        pack = self.speaker(name).pack
        if pack not in self._packs:
            voice = self.tts.voice(pack)
            frontend = frontend_with_lexicon(voice.frontend, self.lexicon, name)
            warmup = getattr(frontend, "warmup", None)
            if callable(warmup):  # dictionaries load here (validation), not in the first chapter's plan
                warmup()
            self._packs[pack] = (voice, frontend)
        return self._packs[pack]

    def loaded(self) -> list[tuple[Any, Any]]:
        """(Voice, frontend) of every pack loaded so far."""
        return list(self._packs.values())

    def recipes(self) -> dict[str, Any]:
        """Pack name → ``phonemes.Recipe`` of its frontend, for every pack loaded so far."""
        from voxserve.batch.phonemes import Recipe

        return {pack: Recipe.of(fe, self.lexicon, pack) for pack, (_, fe) in self._packs.items()}

    def check_emotion(self, name: str, emotion: str | None) -> str | None:
        """Canonical emotion label, or ``NotFound`` if the voice cannot express it."""
        label = resolve_emotion(emotion)
        if label is None:
            return None
        config = self.get(name)[0].config
        if label not in config.prosody_presets and label not in config.emotions:
            raise NotFound(f"voice {name!r} has no emotion {label!r}", param="emotion")
        return label

    def synthesis_params(self, emotion: str | None) -> SynthesisParams:
        """The job's controls with ``emotion`` (volume is applied to whole chapters, not here)."""
        p = self.params
        return SynthesisParams(p.speed, p.pitch, p.energy, 1.0, emotion)

    def controls(self, name: str, emotion: str | None) -> dict[str, float]:
        """Model control multipliers for ``name`` speaking with ``emotion``."""
        voice = self.get(name)[0]
        return self.synthesis_params(emotion).model_controls(voice.config.prosody_presets)


Phonemize = Callable[[str, list[str]], list[PhoneSequence]]
"""(pack name, sentences) → their symbol sequences, e.g. ``phonemes.ProcessPhonemizer.phonemize``."""

_LATER = PhoneSequence("", (), ())
"""A sentence's sequence until ``phonemize`` fills it in."""


def plan_chapter(
    chapter: Chapter,
    index: int,
    voices: Voices,
    voice: str,
    emotion: str | None,
    speak_title: bool = True,
    phonemize: Phonemize | None = None,
) -> ChapterPlan:
    """Parse the chapter's markup and phonemize it. Errors name the chapter, line and column.

    ``phonemize`` (optional) does the phonemizing elsewhere, one call per pack; if it fails, the
    chapter is planned again with the in-process frontends (which raise the positioned error).
    """
    if phonemize is not None:
        draft = _plan(chapter, index, voices, voice, emotion, speak_title, later=True)
        try:
            return _fill(draft, voices, phonemize)
        except Exception:  # a worker's failure of any kind: plan it here instead, where errors say where
            pass
    return _plan(chapter, index, voices, voice, emotion, speak_title, later=False)


def _fill(plan: ChapterPlan, voices: Voices, phonemize: Phonemize) -> ChapterPlan:
    by_pack: dict[str, list[int]] = {}
    for i, s in enumerate(plan.sentences):
        by_pack.setdefault(voices.speaker(s.voice).pack, []).append(i)
    sentences = list(plan.sentences)
    for pack, members in by_pack.items():
        seqs = phonemize(pack, [sentences[i].text for i in members])
        for i, seq in zip(members, seqs, strict=True):
            sentences[i] = replace(sentences[i], seq=seq)
    return replace(plan, sentences=tuple(sentences))


def _plan(
    chapter: Chapter,
    index: int,
    voices: Voices,
    voice: str,
    emotion: str | None,
    speak_title: bool,
    later: bool,
) -> ChapterPlan:
    where = f"chapter {index}" + (f" ({chapter.title[:30]!r})" if chapter.title else "")
    text = chapter.text
    try:
        pieces = markup.parse(text)
    except markup.MarkupError as e:
        raise InvalidInput(f"{where}, {e}", param="input") from None
    sentences: list[Sentence] = []
    state = _Gaps(voices.params.speed)
    if speak_title and chapter.title:
        try:
            title = markup.strip(chapter.title)
        except markup.MarkupError as e:
            raise InvalidInput(f"{where}, title: {e}", param="input") from None
        _, frontend = voices.get(voice)
        for s in frontend.split(title):
            seq = _LATER if later else frontend.phonemize(s)
            state.add(sentences, Sentence(s, voice, emotion, seq, 0.0))
        state.boundary = TITLE_PAUSE
    for piece in pieces:
        if isinstance(piece, markup.Pause):
            state.explicit = (state.explicit or 0.0) + piece.seconds
            continue
        name = piece.voice or voice
        try:
            label = voices.check_emotion(name, piece.emotion) if piece.emotion else emotion
            _, frontend = voices.get(name)
            for k, paragraph in enumerate(piece.text.split("\n\n")):
                if k and sentences:
                    state.boundary = max(state.boundary or 0.0, PARAGRAPH_PAUSE)
                for s in frontend.split(paragraph):
                    seq = _LATER if later else frontend.phonemize(s)
                    state.add(sentences, Sentence(s, name, label, seq, 0.0))
        except (InvalidInput, NotFound) as e:
            line, column = markup.position(text, piece.start if piece.tag is None else piece.tag)
            raise type(e)(f"{where}, line {line}, column {column}: {e}", param=e.param) from None
    return ChapterPlan(index, chapter.title, tuple(sentences), state.lead)


class _Gaps:
    """Decides the gap before each added sentence (see the module docstring)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.explicit: float | None = None
        self.boundary: float | None = None
        self.lead = 0.0

    def add(self, sentences: list[Sentence], sentence: Sentence) -> None:
        if sentences:
            prev = sentences[-1]
            if self.explicit is not None:
                gap = self.explicit
            elif self.boundary is not None:
                gap = self.boundary / self.speed
            else:
                gap = SENTENCE_PAUSES.get(prev.text.rstrip()[-1:], SHORT_PAUSE) / self.speed
            sentences[-1] = Sentence(prev.text, prev.voice, prev.emotion, prev.seq, gap)
        else:
            self.lead = self.explicit or 0.0
        sentences.append(sentence)
        self.explicit = None
        self.boundary = None
