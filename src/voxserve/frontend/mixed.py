"""``MixedFrontend``: the ``Frontend`` for Mandarin, English and mixed text (EmotiVoice symbols).

split(text): normalize per language run (``mixed_text.normalize_mixed``), then
cut into bounded sentences with the Mandarin splitter, which reads a same-length
"shadow" of the text (ASCII marks as full-width ones, so "." and "?" end English
sentences too). phonemize(sentence): normalize again (a no-op on ``split``'s
output), analyse the shadow with the Mandarin analysis (words, pinyin, sandhi,
prosodic breaks; Latin words are words there), then give every Latin word its
English phones (``english.EnglishG2P``) and map the whole to symbols
(``symbols.emotivoice``). ``char_index`` points into the normalized sentence,
which is ``PhoneSequence.text``.

Explicit symbols: text in curly braces is a space-separated list of symbols
passed through as written ("{HH AH0 L OW1}", "{n i3 h ao3}", "{[HH] sp1 ni3}").
Each item is a tokenlist symbol, an ARPAbet phone without brackets (AH0), or a
toned pinyin syllable (ni3 → n i3); anything else is ``InvalidInput`` naming the
item. A brace group is one word for the prosodic analysis: break symbols around
it are added as for any word unless the group starts or ends with one itself.
Braces never nest; an unmatched brace is ordinary punctuation.

Heavy resources (jieba, pypinyin, CMUdict) load on first use, once per process;
``warmup()`` pays that up front. Instances are safe to share between threads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from voxserve.errors import InvalidInput, VoxserveError
from voxserve.frontend.english import EnglishG2P, bracketed
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.mandarin import DEFAULT_MAX_CHARS
from voxserve.frontend.mixed_text import BRACES, normalize_mixed, shadow
from voxserve.frontend.symbols import get_mapper
from voxserve.frontend.symbols.emotivoice import EmotiVoiceMapper, Segment
from voxserve.frontend.utterance import BREAK_INTONATION, BREAK_PROSODIC_WORD, Utterance, Word
from voxserve.frontend.zh.analysis import MandarinAnalyzer
from voxserve.frontend.zh.charsets import CJK
from voxserve.frontend.zh.pinyin import has_reading, parse_lexicon
from voxserve.frontend.zh.split import split_sentences

ENGLISH_SYMBOL_SETS = ("emotivoice",)
"""Symbol sets with English phones (the ones ``MixedFrontend`` can target)."""

_ITEM = re.compile(r"\S+")
_CJK = re.compile(rf"[{CJK}]")
# Brace group, Latin word, or run of pause marks (as normalized English text has them).
_EN_TOKEN = re.compile(r"\{[^{}]*\}|[A-Za-z]+(?:'[A-Za-z]+)*(?:(?<=s)')?|([,.!?;:()…]+)")
_LATIN = re.compile(r"[A-Za-z]")
_ALL_CJK = re.compile(rf"[{CJK}]+")


class MixedFrontend:
    """Mandarin/English text → sentences → EmotiVoice symbols (see the module docstring).

    ``lexicon`` gives Mandarin readings (word → toned pinyin, as for
    ``MandarinFrontend``; a Latin word in it is read as that pinyin, not as
    English). ``english_lexicon`` gives English words ARPAbet phones
    ({"voxserve": "V AA1 K S S ER0 V"}) ahead of CMUdict. Does not speak other
    languages: accented letters lose their accents, other scripts are dropped.
    """

    def __init__(
        self,
        symbol_set: str = "emotivoice",
        lexicon: Mapping[str, Sequence[str]] | None = None,
        english_lexicon: Mapping[str, Sequence[str] | str] | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        if symbol_set not in ENGLISH_SYMBOL_SETS:
            raise InvalidInput(
                f"symbol set {symbol_set!r} has no English phones; MixedFrontend supports "
                f"{', '.join(ENGLISH_SYMBOL_SETS)} (use MandarinFrontend for Mandarin-only sets)",
                param="symbol_set",
            )
        if max_chars < 2:
            raise InvalidInput(f"max_chars must be at least 2, got {max_chars}", param="max_chars")
        self.symbol_set = symbol_set
        mapper = get_mapper(symbol_set)
        if not isinstance(mapper, EmotiVoiceMapper):
            raise VoxserveError(f"symbol set {symbol_set!r} did not load an EmotiVoiceMapper")
        self._mapper = mapper
        self._valid = frozenset(mapper.symbols)
        entries = parse_lexicon(lexicon)
        for word, readings in entries.items():
            for reading in readings:
                if not mapper.covers(reading):
                    raise InvalidInput(
                        f"lexicon entry {word!r}: {reading!r} is not a syllable of symbol set {symbol_set!r}",
                        param="lexicon",
                    )
        self._latin_readings = {w.lower() for w in entries if not _ALL_CJK.fullmatch(w)}
        self._lexicon_chars = frozenset("".join(entries))
        self._analyzer = MandarinAnalyzer(entries)
        self._english = EnglishG2P(english_lexicon)
        self._lexicons = (entries, dict(english_lexicon or {}))
        self._bracketed = functools.lru_cache(maxsize=16384)(lambda w: bracketed(self._english.word(w)))
        self.max_chars = max_chars

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this frontend can emit, in the symbol set's id order."""
        return self._mapper.symbols

    def with_lexicon(
        self, lexicon: Mapping[str, Sequence[str]], english: Mapping[str, Sequence[str] | str] | None = None
    ) -> MixedFrontend:
        """A new frontend like this one with ``lexicon`` (pinyin) and ``english`` (ARPAbet) added; new entries win."""
        mandarin, english_before = self._lexicons
        return MixedFrontend(
            self.symbol_set,
            {**mandarin, **parse_lexicon(lexicon)},
            {**english_before, **(english or {})},
            self.max_chars,
        )

    def warmup(self) -> None:
        """Load jieba, pypinyin and CMUdict now instead of on the first request."""
        self._english.warmup()
        self.phonemize("Hello world, 你好世界。")

    def normalize(self, text: str) -> str:
        """The normalized form of ``text`` (what ``split`` cuts and ``PhoneSequence.text`` holds)."""
        return normalize_mixed(text)

    def split(self, text: str) -> list[str]:
        """Normalized, speakable sentences of at most ``max_chars`` characters; [] if none.

        A brace group is never cut: a sentence holding a long one may exceed
        ``max_chars``. Raises ``InvalidInput`` for an unknown explicit symbol.
        """
        norm = normalize_mixed(text)
        for m in BRACES.finditer(norm):
            self._explicit(m[0], m.start())
        view = shadow(norm)
        spans: list[tuple[int, int]] = []
        position = 0
        for piece in split_sentences(view, self.max_chars, self._analyzer.segmenter.boundaries):
            start = view.find(piece, position)
            position = start + len(piece)
            if spans and _inside_group(norm, start):
                spans[-1] = (spans[-1][0], position)  # never cut a brace group
            else:
                spans.append((start, position))
        sentences = [norm[a:b] for a, b in spans]
        return [s for s in sentences if self._speakable(s)]

    def _speakable(self, sentence: str) -> bool:
        return (
            _LATIN.search(sentence) is not None
            or has_reading(sentence)
            or not self._lexicon_chars.isdisjoint(sentence)
        )

    def phonemize(self, sentence: str) -> PhoneSequence:
        """Symbols for one sentence; ``InvalidInput`` if it has nothing speakable or a bad explicit symbol."""
        norm = normalize_mixed(sentence)
        if _CJK.search(norm) is None:
            words = self._english_only(norm)
            if words is not None:
                return self._map_latin(norm, words)
        analysed = self._analyzer.analyze(shadow(norm))
        return self._map_latin(norm, analysed.words)

    def _english_only(self, norm: str) -> list[Word] | None:
        """Words and breaks of a sentence without CJK, without the Mandarin analysis (None: use it)."""
        words: list[Word] = []
        for m in _EN_TOKEN.finditer(norm):
            if m[1] is not None:
                if words:
                    words[-1] = words[-1]._replace(break_after=BREAK_INTONATION)
                continue
            if m[0].lower() in self._latin_readings:
                return None  # the Mandarin lexicon reads this word
            words.append(Word(m[0], m.start(), (), BREAK_PROSODIC_WORD, True))
        return words

    def _map_latin(self, norm: str, analysed: Sequence[Word]) -> PhoneSequence:
        """Give the Latin words and brace groups of ``analysed`` their symbols, then map everything."""
        if not analysed:
            raise InvalidInput(f"nothing speakable in {norm[:40]!r}", param="input")
        words = []
        segments: dict[int, Segment] = {}
        for i, word in enumerate(analysed):
            if word.latin:
                text = norm[word.start : word.start + len(word.text)]
                if text.startswith("{"):
                    segments[i] = self._explicit(text, word.start)
                elif text.lower() not in self._latin_readings:
                    segments[i] = self._english_word(text, word.start)
                word = word._replace(text=text)
            words.append(word)
        return self._mapper.map(Utterance(text=norm, words=tuple(words)), segments)

    def _english_word(self, text: str, start: int) -> Segment:
        phones = self._bracketed(text)
        n = len(phones)
        return Segment(phones, tuple(start + (k * len(text)) // n for k in range(n)))

    def _explicit(self, group: str, start: int) -> Segment:
        """Resolve a brace group ("{HH AH0 ni3}") into symbols; ``InvalidInput`` names a bad item."""
        symbols: list[str] = []
        index: list[int] = []
        for m in _ITEM.finditer(group, 1, len(group) - 1):
            item = m[0]
            if item in self._valid:
                resolved: tuple[str, ...] = (item,)
            elif f"[{item}]" in self._valid:
                resolved = (f"[{item}]",)
            elif self._mapper.covers(item):
                resolved = self._mapper.syllable(item)
            else:
                raise InvalidInput(
                    f"unknown symbol {item!r} in {group!r}: write {self.symbol_set} tokenlist symbols, "
                    "ARPAbet phones with stress (AH0) or toned pinyin (ni3), separated by spaces",
                    param="input",
                )
            symbols.extend(resolved)
            index.extend((start + m.start(),) * len(resolved))
        return Segment(tuple(symbols), tuple(index))


def _inside_group(text: str, position: int) -> bool:
    """Whether ``position`` falls strictly inside a brace group of ``text``."""
    opening = text.rfind("{", 0, position)
    return opening >= 0 and text.find("}", opening) >= position
