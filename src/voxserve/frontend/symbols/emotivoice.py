"""The "emotivoice" symbol set (EmotiVoice's released tokenlist): ``Utterance`` → ``PhoneSequence``.

The inventory is ``data/emotivoice_tokens.txt``: the release's ``tokenlist`` (502
symbols, id = line order; provenance in the file header). ``tokens()`` returns it,
``TOKENS`` is the same tuple (read on first access), ``tokenlist_text()`` the
release file byte for byte.

Sequence layout, as EmotiVoice's released frontend feeds its model:

- ``<sos/eos>`` at both ends; no break symbol right before the final one;
- a Mandarin syllable is its initial (none for a zero initial) and final+tone,
  both pointing at the syllable's character; "sp0" between the syllables of a
  word; after a word "sp1", "sp2" or "sp3" by break level (a word boundary is at
  least sp1, punctuation is sp3);
- an English word is its ARPAbet phones in brackets ("[HH]", "[AH0]"), spread
  over the word's letters; "engsp1" after it, "engsp4" at punctuation;
- English followed by Mandarin gets "eng_cn_sp"; Mandarin followed by English
  keeps the Mandarin break (the released frontend never emits "cn_eng_sp");
- an erhua 儿 merges into the syllable before it ("hua4"+儿 → h uar4) when the
  inventory has that r-final, else it is "er5" right after the syllable.

Pinyin is split the way the release's ``split_py`` does (the ``y`` and ``ii``
entries of the tokenlist come from it): y/w spellings become finals (you → iou,
wu → u), ü is "v", ui/iu/un are written uei/iou/uen, zi ci si **ri** take "ii"
and zhi chi shi "iii", and yue/yo keep a "y" initial (y ve4, y o1). Interjections
without a vowel are approximated (n, m → en; ng → eng; hm → h en; hng → h eng;
ê → ei), as is "wong" (→ ueng). A syllable+tone missing from the tokenlist
(e.g. "ueng5") uses the nearest tone it has. Latin words in an ``Utterance``
arrive spelled as pinyin letter names; a frontend with English G2P passes
``Segment`` overrides to ``map`` instead. Nothing here reads text.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import NamedTuple

from voxserve.errors import VoxserveError
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.symbols.baker import load_table
from voxserve.frontend.symbols.pinyin_table import split_syllable
from voxserve.frontend.utterance import BREAK_INTONATION, BREAK_PROSODIC_WORD, Syllable, Utterance

BOUNDARY = "<sos/eos>"
"""Start and end of every sequence."""
ENGLISH_TO_MANDARIN = "eng_cn_sp"
"""Between an English word and a following Mandarin word."""
BREAKS = frozenset({"sp0", "sp1", "sp2", "sp3", "sp4", "engsp0", "engsp1", "engsp2", "engsp4"})
"""Prosodic break symbols (a user's explicit symbols may already end or start with one)."""
ALL_BREAKS = BREAKS | {ENGLISH_TO_MANDARIN, "cn_eng_sp"}

# The release's split differs from the Baker convention in these syllables.
_OVERRIDES = {"ri": ("r", "ii"), "yue": ("y", "ve"), "yo": ("y", "o"), "ng": ("", "eng")}
_TONE_ORDER = "51234"


@functools.cache
def tokens() -> tuple[str, ...]:
    """The 502 EmotiVoice symbols in id order (read once from package data)."""
    text = resources.files("voxserve.frontend").joinpath("data/emotivoice_tokens.txt").read_text("utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def tokenlist_text() -> str:
    """The release's ``tokenlist`` file content: one symbol per line, newline-terminated."""
    return "".join(f"{t}\n" for t in tokens())


def __getattr__(name: str) -> tuple[str, ...]:
    # ``TOKENS`` reads the data file on first access, not at import.
    if name == "TOKENS":
        return tokens()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def split_pinyin(syllable: str) -> tuple[str, str]:
    """Toneless pinyin → (initial or "", final) as the release splits it ("ri" → ("r", "ii"))."""
    if syllable in _OVERRIDES:
        return _OVERRIDES[syllable]
    initial, final = split_syllable(syllable)
    return ("" if initial == "^" else initial), final


def is_english_symbol(symbol: str) -> bool:
    """Whether a symbol is a bracketed English phone ("[AH0]")."""
    return symbol.startswith("[") and symbol != "[LAUGH]"


def _english_at(symbols: tuple[str, ...], end: int) -> bool:
    """Whether the first (end=0) or last (end=-1) symbol that is not a break is an English phone."""
    ordered = symbols if end == 0 else reversed(symbols)
    return next((is_english_symbol(s) for s in ordered if s not in ALL_BREAKS), False)


class Segment(NamedTuple):
    """Symbols a frontend already chose for one word of an ``Utterance`` (English phones, explicit input).

    ``char_index`` has one entry per symbol (-1 for none). Whether its first and
    last symbols are English phones picks the break symbols around it.
    """

    symbols: tuple[str, ...]
    char_index: tuple[int, ...]


class EmotiVoiceMapper:
    """Maps utterances to EmotiVoice symbols; knows nothing about text, segmentation or English spelling."""

    name = "emotivoice"

    def __init__(self) -> None:
        self.symbols: tuple[str, ...] = tokens()
        """All symbols of the set in id order (what a pack's tokenlist must match)."""
        self._valid = frozenset(self.symbols)
        self._toned: dict[str, tuple[str, ...]] = {}
        self._erhua: dict[str, tuple[str, ...]] = {}
        for syllable in load_table()[1]:
            initial, final = split_pinyin(syllable)
            head = (initial,) if initial else ()
            for tone in "12345":
                toned = self._nearest_tone(final, tone)
                if toned is None:
                    raise VoxserveError(
                        f"emotivoice: no final {final!r} in the tokenlist (from {syllable!r})"
                    )
                self._toned[syllable + tone] = (*head, toned)
                if f"{final}r{tone}" in self._valid:
                    self._erhua[syllable + tone] = (*head, f"{final}r{tone}")

    def _nearest_tone(self, final: str, tone: str) -> str | None:
        for t in tone + _TONE_ORDER:
            if final + t in self._valid:
                return final + t
        return None

    def covers(self, pinyin: str) -> bool:
        """Whether a toned syllable ("zhong1") has a mapping."""
        return pinyin in self._toned

    def syllable(self, pinyin: str) -> tuple[str, ...]:
        """Symbols of one toned syllable ("ni3" → ("n", "i3")); ``KeyError`` if not covered."""
        return self._toned[pinyin]

    def map(self, utterance: Utterance, segments: Mapping[int, Segment] | None = None) -> PhoneSequence:
        """Symbols for one utterance; ``segments[i]`` replaces the syllables of word ``i``.

        A word with a segment may have no syllables. Every emitted symbol is checked
        against the tokenlist; a miss is an internal error (``VoxserveError``).
        """
        segments = segments or {}
        symbols = [BOUNDARY]
        index = [-1]
        words = utterance.words
        english_before = False
        last_pinyin: str | None = None  # the syllable whose final is symbols[-1], for erhua
        for wi, word in enumerate(words):
            segment = segments.get(wi)
            first = segment.symbols[0] if segment is not None and segment.symbols else None
            joins = segment is None and bool(word.syllables) and word.syllables[0].erhua
            if wi > 0 and not (joins and last_pinyin is not None):
                english = segment is not None and _english_at(segment.symbols, 0)
                brk = self._break(english_before, english, words[wi - 1].break_after)
                if symbols[-1] not in ALL_BREAKS and first not in BREAKS:
                    symbols.append(brk)
                    index.append(-1)
            if segment is not None:
                symbols.extend(segment.symbols)
                index.extend(segment.char_index)
                last_pinyin = None
            else:
                last_pinyin = self._mandarin(word.syllables, word.text, last_pinyin, symbols, index)
            english_before = segment is not None and _english_at(segment.symbols, -1)
        while symbols[-1] in ALL_BREAKS:
            symbols.pop()
            index.pop()
        symbols.append(BOUNDARY)
        index.append(-1)
        if not self._valid.issuperset(symbols):
            bad = sorted(set(symbols) - self._valid)
            raise VoxserveError(f"emotivoice: emitted symbols outside the tokenlist: {bad}")
        return PhoneSequence(text=utterance.text, symbols=tuple(symbols), char_index=tuple(index))

    @staticmethod
    def _break(english_before: bool, english_after: bool, level: int) -> str:
        if english_before:
            if not english_after:
                return ENGLISH_TO_MANDARIN
            return "engsp4" if level >= BREAK_INTONATION else "engsp1"
        return f"sp{min(max(level, BREAK_PROSODIC_WORD), BREAK_INTONATION)}"

    def _mandarin(
        self,
        syllables: tuple[Syllable, ...],
        text: str,
        last_pinyin: str | None,
        symbols: list[str],
        index: list[int],
    ) -> str | None:
        """Append one word's syllables; returns the pinyin whose final ends ``symbols`` (or None)."""
        for syllable in syllables:
            if syllable.erhua and last_pinyin is not None:
                # 儿 merges into the syllable before it when the tokenlist has that r-final.
                merged = self._erhua.get(last_pinyin)
                if merged is not None:
                    symbols[-1] = merged[-1]
                else:
                    symbols.append("er5")
                    index.append(syllable.char_index)
                last_pinyin = None
                continue
            if symbols[-1] not in ALL_BREAKS and symbols[-1] != BOUNDARY:
                symbols.append("sp0")
                index.append(-1)
            pair = self._toned.get(syllable.pinyin)
            if pair is None:
                raise VoxserveError(f"emotivoice: no symbols for syllable {syllable.pinyin!r} in {text!r}")
            symbols.extend(pair)
            index.extend((syllable.char_index,) * len(pair))
            last_pinyin = syllable.pinyin
        return last_pinyin
