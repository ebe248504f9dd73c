"""Latin letters inside Mandarin text, spelled as Mandarin syllables.

The Mandarin voices have no English phones, so a Latin word is read letter by
letter, the way Mandarin speakers name letters ("GDP" → ji4 di4 pi1). Each letter
maps to one or more ordinary pinyin syllables (so every symbol set that covers
pinyin covers letters too); case does not matter. Whole English words are spelled
as well unless a lexicon entry gives them a reading.
"""

from __future__ import annotations

LETTER_PINYIN: dict[str, tuple[str, ...]] = {
    "A": ("ei1",),
    "B": ("bi4",),
    "C": ("xi1",),
    "D": ("di4",),
    "E": ("yi4",),
    "F": ("ai4", "fu5"),
    "G": ("ji4",),
    "H": ("ei1", "qi1"),
    "I": ("ai4",),
    "J": ("jie4",),
    "K": ("kei4",),
    "L": ("ai4", "le5"),
    "M": ("ai4", "mu5"),
    "N": ("en1",),
    "O": ("ou1",),
    "P": ("pi1",),
    "Q": ("qiu1",),
    "R": ("a4", "er5"),
    "S": ("ai4", "si5"),
    "T": ("ti4",),
    "U": ("you1",),
    "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"),
    "X": ("ai4", "ke5", "si5"),
    "Y": ("wai1",),
    "Z": ("zei4",),
}
"""Mandarin-style letter names as toned pinyin (tone 5 = neutral)."""


def spell(word: str, start: int = 0) -> list[tuple[str, int]]:
    """Syllables for an ASCII-letter word, each with the index of its letter (offset by ``start``).

    Raises ``KeyError`` for a character that is not an ASCII letter; callers pass
    only runs of ``[A-Za-z]``.
    """
    out: list[tuple[str, int]] = []
    for k, letter in enumerate(word):
        for syllable in LETTER_PINYIN[letter.upper()]:
            out.append((syllable, start + k))
    return out
