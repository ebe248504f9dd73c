"""One normalized Mandarin sentence → ``Utterance`` (words, toned pinyin, break levels).

Steps: tokenize into CJK runs, Latin runs, pauses (。！？；，、：—… and brackets:
break level 3), spaces (level 2 between CJK characters, else 1) and other marks
(quotes, 《》, ·: level 1); segment CJK runs into words (``segment``); look up
readings (``pinyin``), reading two neighbouring one-character words as one phrase
when a dictionary knows it (还|钱 → huan2 qian2); then per clause: neutral tones
and 一/不 sandhi, prosodic words and phrase breaks (``prosody``), third-tone
sandhi (``sandhi``). Latin runs are spelled (``letters``) unless the lexicon has
them. Characters without a reading are dropped here (they produce no syllable);
a word left with no syllable is dropped and its break level passes to the word
before it.

Expects normalized input (``normalize``); it does not normalize.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from voxserve.frontend.utterance import (
    BREAK_INTONATION,
    BREAK_PHRASE,
    BREAK_PROSODIC_WORD,
    BREAK_SENTENCE,
    Syllable,
    Utterance,
    Word,
)
from voxserve.frontend.zh import prosody, sandhi
from voxserve.frontend.zh.charsets import CJK, LATIN, PAUSE_PUNCT
from voxserve.frontend.zh.letters import spell
from voxserve.frontend.zh.pinyin import default_reading, is_erhua, phrase_reading
from voxserve.frontend.zh.segment import Segmenter, is_word

_TOKEN = re.compile(rf"([{CJK}]+)|([{LATIN}]+)|([{PAUSE_PUNCT}]+)|( +)|[^{CJK}{LATIN}{PAUSE_PUNCT} ]+")
_IS_CJK = re.compile(rf"[{CJK}]")
_ALL_CJK = re.compile(rf"[{CJK}]+")


@dataclass(slots=True)
class _Draft:
    """A word while its readings are still being changed."""

    text: str
    start: int
    latin: bool
    readings: list[str]
    fixed: bool
    indices: list[int]


class MandarinAnalyzer:
    """Turns normalized sentences into ``Utterance`` objects; holds the lexicon and segmenter.

    ``lexicon`` maps words to toned pinyin (validated by ``pinyin.parse_lexicon``):
    CJK words are kept whole by the segmenter and read as given (no sandhi inside);
    Latin words match case-sensitively first, then lower-cased.
    """

    def __init__(self, lexicon: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self._lexicon = dict(lexicon or {})
        self._latin = {w.lower(): p for w, p in self._lexicon.items() if not _ALL_CJK.fullmatch(w)}
        self.segmenter = Segmenter(frozenset(w for w in self._lexicon if _ALL_CJK.fullmatch(w)))

    def analyze(self, sentence: str) -> Utterance:
        """Words with syllables and break levels; no words if nothing is speakable."""
        clauses: list[tuple[list[_Draft], int]] = []
        current: list[_Draft] = []
        for m in _TOKEN.finditer(sentence):
            cjk, latin, pause, space = m.groups()
            if cjk:
                pos = m.start()
                for word in self.segmenter.cut(cjk):
                    current.append(self._cjk_word(word, pos))
                    pos += len(word)
                continue
            if latin:
                current.append(self._latin_word(latin, m.start()))
                continue
            if pause:
                level = BREAK_INTONATION
            elif space and _between_cjk(sentence, m.start(), m.end()):
                level = BREAK_PHRASE
            else:
                level = BREAK_PROSODIC_WORD
            if current:
                clauses.append((current, level))
                current = []
            elif clauses:
                clauses[-1] = (clauses[-1][0], max(clauses[-1][1], level))
        if current:
            clauses.append((current, BREAK_SENTENCE))
        elif clauses:
            clauses[-1] = (clauses[-1][0], BREAK_SENTENCE)
        words: list[Word] = []
        for drafts, end_level in clauses:
            self._finish_clause(drafts, end_level, words)
        return Utterance(text=sentence, words=tuple(words))

    def _cjk_word(self, word: str, start: int) -> _Draft:
        entry = self._lexicon.get(word)
        readings = list(entry if entry is not None else default_reading(word))
        return _Draft(word, start, False, readings, entry is not None, list(range(start, start + len(word))))

    def _latin_word(self, word: str, start: int) -> _Draft:
        entry = self._lexicon.get(word) or self._latin.get(word.lower())
        if entry is None:
            spelled = spell(word, start)
            return _Draft(word, start, True, [s for s, _ in spelled], True, [i for _, i in spelled])
        # Spread a lexicon reading over the letters so timings stay monotonic.
        n = len(entry)
        indices = [start + (k * len(word)) // n for k in range(n)]
        return _Draft(word, start, True, list(entry), True, indices)

    def _finish_clause(self, drafts: list[_Draft], end_level: int, out: list[Word]) -> None:
        texts = [d.text for d in drafts]
        readings = [d.readings for d in drafts]
        fixed = [d.fixed for d in drafts]
        latin = [d.latin for d in drafts]
        _join_single_characters(texts, readings, fixed, latin)
        sandhi.apply_neutral(texts, readings, fixed)
        sandhi.apply_yi_bu(texts, readings, fixed)
        sizes = [sum(1 for r in d.readings if r) for d in drafts]
        groups = prosody.group_words(texts, sizes, latin)
        levels = prosody.clause_breaks(texts, sizes, groups)
        levels[-1] = end_level
        sandhi.apply_third(texts, readings, fixed, groups, is_word)
        for i, draft in enumerate(drafts):
            syllables = self._syllables(draft, i > 0 and not drafts[i - 1].latin)
            if syllables:
                out.append(Word(draft.text, draft.start, syllables, levels[i], draft.latin))
            elif out and i > 0:
                # A word with nothing to say still ends what it ended.
                prev = out[-1]
                out[-1] = Word(
                    prev.text, prev.start, prev.syllables, max(prev.break_after, levels[i]), prev.latin
                )

    @staticmethod
    def _syllables(draft: _Draft, after_cjk: bool) -> tuple[Syllable, ...]:
        if draft.latin:
            return tuple(Syllable(r, i) for r, i in zip(draft.readings, draft.indices, strict=True))
        out = []
        text = draft.text
        for k, reading in enumerate(draft.readings):
            if not reading:
                continue
            erhua = is_erhua(text, k) if len(text) > 1 else (text == "儿" and after_cjk)
            out.append(Syllable("er5" if erhua else reading, draft.indices[k], erhua))
        if out and out[0].erhua and not after_cjk:
            out[0] = Syllable(out[0].pinyin, out[0].char_index, False)
        return tuple(out)


def _join_single_characters(
    texts: list[str], readings: list[list[str]], fixed: list[bool], latin: list[bool]
) -> None:
    """Read two neighbouring one-character words as a phrase when that phrase is known (还|钱 → huan2 qian2)."""
    i = 0
    last = len(texts) - 1
    while i < last:
        if (
            len(texts[i]) == 1
            and len(texts[i + 1]) == 1
            and not (fixed[i] or fixed[i + 1] or latin[i] or latin[i + 1])
        ):
            reading = phrase_reading(texts[i] + texts[i + 1])
            if reading is not None and all(reading):
                readings[i][0], readings[i + 1][0] = reading
                i += 2
                continue
        i += 1


def _between_cjk(text: str, start: int, end: int) -> bool:
    return (
        start > 0
        and end < len(text)
        and bool(_IS_CJK.match(text[start - 1]))
        and bool(_IS_CJK.match(text[end]))
    )
