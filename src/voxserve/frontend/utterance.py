"""The language-level description of one sentence, before any model symbol set.

A language frontend (``zh.analysis``) produces an ``Utterance``: words with one
toned pinyin syllable per pronounced character and a prosodic break level after
each word. A symbol-set mapper (``symbols.baker``, later others) turns it into a
``PhoneSequence``. Nothing here knows a symbol set; nothing in a mapper knows
about segmentation, sandhi or normalization.

Break levels follow the Baker corpus convention:

- 0: word boundary inside a prosodic word (no pause);
- 1: prosodic word boundary;
- 2: minor (prosodic) phrase boundary;
- 3: intonation phrase boundary (commas and the like);
- 4: end of the sentence.

``Syllable`` and ``Word`` are named tuples (immutable and cheap to build: a
sentence makes ~100 of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

BREAK_WORD = 0
BREAK_PROSODIC_WORD = 1
BREAK_PHRASE = 2
BREAK_INTONATION = 3
BREAK_SENTENCE = 4


class Syllable(NamedTuple):
    """One pronounced syllable.

    ``pinyin`` is toned pinyin in TONE3 style with ü written ``v`` ("lv4"), tone 5
    for neutral. ``char_index`` is the character of the normalized sentence it
    pronounces. ``erhua`` marks the 儿 of an r-colored syllable: it is pronounced as
    part of the syllable before it, not as a syllable of its own.
    """

    pinyin: str
    char_index: int
    erhua: bool = False


class Word(NamedTuple):
    """A lexical word (or a spelled Latin token) and the break that follows it.

    ``text`` starts at ``start`` in the normalized sentence. ``latin`` is true for a
    Latin-letter token (its syllables are letter names; a mapper with English
    phones may prefer the text). ``break_after`` is one of the ``BREAK_*`` levels.
    """

    text: str
    start: int
    syllables: tuple[Syllable, ...]
    break_after: int
    latin: bool = False


@dataclass(frozen=True, slots=True)
class Utterance:
    """One normalized sentence and its words in order (no word has zero syllables)."""

    text: str
    words: tuple[Word, ...]
