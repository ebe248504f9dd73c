"""Letter-to-sound rules: ARPAbet for an English word no dictionary knows.

The last resort of ``english.EnglishG2P``: it never fails and never drops a word.
The rules are a small hand-written table (ours), read left to right, longest
grapheme first, with a few context tests (a following e/i/y softens c and g; a
vowel before consonant+final "e" is long; a final "y" after a consonant is IY0,
or AY1 in a word with no other vowel). Stress: the first vowel gets 1, the rest
0. Expect a plausible pronunciation, not a correct one: English spelling needs a
dictionary (or a trained model) for that. Letters other than a-z are ignored.
"""

from __future__ import annotations

import re

VOWEL_LETTERS = frozenset("aeiouy")
_LONG = {"a": ("EY",), "e": ("IY",), "i": ("AY",), "o": ("OW",), "u": ("UW",), "y": ("AY",)}
_SHORT = {"a": ("AE",), "e": ("EH",), "i": ("IH",), "o": ("AA",), "u": ("AH",), "y": ("IH",)}
_VOWEL_PHONES = frozenset(
    ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
)

# Multi-letter graphemes, tried longest first (single letters are decided by context in _letter).
_GRAPHEMES: dict[str, tuple[str, ...]] = {
    "tion": ("SH", "AH", "N"),
    "sion": ("ZH", "AH", "N"),
    "cian": ("SH", "AH", "N"),
    "ture": ("CH", "ER"),
    "ough": ("AO",),
    "eigh": ("EY",),
    "augh": ("AO",),
    "tch": ("CH",),
    "sch": ("S", "K"),
    "igh": ("AY",),
    "dge": ("JH",),
    "ous": ("AH", "S"),
    "qu": ("K", "W"),
    "ch": ("CH",),
    "sh": ("SH",),
    "th": ("TH",),
    "ph": ("F",),
    "wh": ("W",),
    "ck": ("K",),
    "ng": ("NG",),
    "gh": ("G",),
    "ee": ("IY",),
    "ea": ("IY",),
    "ai": ("EY",),
    "ay": ("EY",),
    "ei": ("EY",),
    "ey": ("EY",),
    "oa": ("OW",),
    "oe": ("OW",),
    "oo": ("UW",),
    "ou": ("AW",),
    "ow": ("OW",),
    "oi": ("OY",),
    "oy": ("OY",),
    "au": ("AO",),
    "aw": ("AO",),
    "eu": ("UW",),
    "ew": ("UW",),
    "ue": ("UW",),
    "ui": ("UW",),
    "ie": ("IY",),
    "ar": ("AA", "R"),
    "er": ("ER",),
    "ir": ("ER",),
    "ur": ("ER",),
    "or": ("AO", "R"),
}
_CONSONANTS = {
    "b": ("B",), "d": ("D",), "f": ("F",), "h": ("HH",), "j": ("JH",), "k": ("K",), "l": ("L",),
    "m": ("M",), "n": ("N",), "p": ("P",), "r": ("R",), "t": ("T",), "v": ("V",), "w": ("W",),
    "x": ("K", "S"), "z": ("Z",), "q": ("K",),
}  # fmt: skip
_SILENT_START = {"kn": "n", "wr": "r", "gn": "n", "ps": "s", "pn": "n"}
_LONGEST = max(len(g) for g in _GRAPHEMES)


def _is_vowel(word: str, i: int) -> bool:
    return 0 <= i < len(word) and word[i] in VOWEL_LETTERS


def _magic_e(word: str, i: int) -> bool:
    """Whether the vowel at ``i`` is lengthened by a consonant + final silent "e" (make, theme)."""
    n = len(word)
    return n >= 4 and i == n - 3 and word[-1] == "e" and not _is_vowel(word, n - 2)


def _rules(word: str) -> list[str]:
    phones: list[str] = []
    for silent, keep in _SILENT_START.items():
        if word.startswith(silent):
            word = keep + word[len(silent) :]
            break
    n = len(word)
    i = 0
    while i < n:
        c = word[i]
        nxt = word[i + 1] if i + 1 < n else ""
        if c == "e" and i == n - 1 and n > 2 and any(ch in VOWEL_LETTERS for ch in word[:-1]):
            break  # final silent e
        if c == "l" and nxt == "e" and i == n - 2 and i > 0 and not _is_vowel(word, i - 1):
            phones += ["AH", "L"]  # table, little
            break
        for size in range(min(_LONGEST, n - i), 1, -1):
            graph = word[i : i + size]
            if graph in _GRAPHEMES and not (graph in ("ie", "ey") and i + size == n):
                phones += _GRAPHEMES[graph]
                i += size
                break
        else:
            phones += _letter(word, i, c, nxt)
            i += 1
            # Doubled consonants sound once (letter, happy).
            if i < n and word[i] == c and c not in VOWEL_LETTERS:
                i += 1
            continue
    return phones


def _letter(word: str, i: int, c: str, nxt: str) -> tuple[str, ...]:
    n = len(word)
    if c in "cg":
        soft = nxt in ("e", "i", "y")
        if c == "c":
            return ("S",) if soft else ("K",)
        return ("JH",) if soft and i > 0 else ("G",)
    if c == "s":
        return (
            ("Z",)
            if (_is_vowel(word, i - 1) and _is_vowel(word, i + 1)) or (i == n - 1 and i > 2)
            else ("S",)
        )
    if c == "y":
        if i == 0 and _is_vowel(word, 1):
            return ("Y",)
        if i == n - 1:
            return ("IY",) if any(ch in "aeiou" for ch in word[:i]) else ("AY",)
        return ("IH",)
    if c in _LONG:
        if _magic_e(word, i):
            return _LONG[c]
        if i == n - 1:
            return {"a": ("AH",), "e": ("IY",), "i": ("IY",), "o": ("OW",), "u": ("UW",)}[c]
        return _SHORT[c]
    return _CONSONANTS.get(c, ())


def _stress(phones: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    stressed = False
    for phone in phones:
        if phone in _VOWEL_PHONES:
            phone += "0" if stressed else "1"
            stressed = True
        out.append(phone)
    return tuple(out)


_NOT_LETTER = re.compile(r"[^a-z]+")


def letter_to_sound(word: str) -> tuple[str, ...]:
    """ARPAbet with stress digits for ``word`` by rule; () only if it has no letter a-z."""
    word = _NOT_LETTER.sub("", word.lower())
    if not word:
        return ()
    phones = _rules(word)
    if not any(p in _VOWEL_PHONES for p in phones):
        phones.insert(1 if phones else 0, "AH")  # every word is at least one syllable
    return _stress(phones)
