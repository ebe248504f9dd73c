"""Normalization of mixed Mandarin/English text, and the "shadow" the Mandarin analysis reads.

``normalize_mixed(text)`` cuts the text into runs and normalizes each with its
language's rules:

- English runs: Latin words (with inner apostrophes) and the numbers, spaces,
  symbols and ASCII punctuation between them → ``english_text.normalize_english``;
- Mandarin runs: everything else → ``zh.normalize.normalize``;
- explicit symbols in curly braces ("{n i3 h ao3}") are kept verbatim, with
  their whitespace collapsed and a space between them and any Latin word.

A number is read in the language of its neighbours: Mandarin if a CJK character
is next to it (spaces aside) or a Latin word glued to it is glued to CJK ("5G网络"),
else English if a Latin word is next to it, else the language of the nearest
word, Mandarin when there is none (as the released EmotiVoice frontend reads
bare numbers). A Mandarin number keeps a unit written in letters right after it
("3kg" → 三千克).

A punctuation mark belongs to the run of the word before it (an opening bracket:
the word after it); with no such word, to English if it is ASCII or "…" and to
Mandarin otherwise. Normalized English marks are ASCII and Mandarin ones
full-width, so normalizing again, or cutting a sentence after a mark, changes
nothing. Full-width letters, digits and symbols become ASCII first. The result
is idempotent; ``normalize_runs`` is the same without the shortcuts for plain
Mandarin and plain English text.

``shadow(text)`` returns a string of the same length that the Mandarin analysis
and sentence splitter can read: ASCII marks become their full-width forms, an
apostrophe a letter (so "don't" is one word), a brace group a run of "Q".
"""

from __future__ import annotations

import re

from voxserve.frontend.english_text import normalize_english
from voxserve.frontend.zh.charsets import CJK
from voxserve.frontend.zh.normalize import normalize as normalize_zh
from voxserve.frontend.zh.tables import UNITS

BRACES = re.compile(r"\{[^{}]*\}")
"""An explicit-symbol group in normalized text."""

_TOKEN = re.compile(
    rf"(\{{[^{{}}]*\}})"  # 1 explicit symbols
    r"|([A-Za-z]+(?:['’][A-Za-z]+)*(?:(?<=s)['’](?![A-Za-z]))?)"  # 2 Latin word
    r"|([$£€¥]?\d+(?:[.,:/-]\d+)*(?:%|(?:st|nd|rd|th|s)(?![A-Za-z]))?)"  # 3 number
    rf"|([{CJK}]+)"  # 4 CJK
    r"|(\s+)"  # 5 whitespace
    r"|(.)",  # 6 anything else
    re.DOTALL,
)
_RAW, _EN, _NUM, _ZH, _SPACE, _OTHER = range(6)
_SEP = -1  # whitespace between runs of different languages
# Full-width letters, digits and symbols → ASCII; full-width punctuation stays (it marks Mandarin).
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if chr(c) not in "！，：；？（）"} | {
    0x3000: 0x20
}
_OPENERS = frozenset("([《（【「『")  # not quotes: Mandarin normalization makes both kinds look alike
_SHADOW = str.maketrans(
    {",": "，", ".": "。", "!": "！", "?": "？", ";": "；", ":": "：", "(": "（", ")": "）", "'": "x"}
)
_EMPTY_BRACES = re.compile(r"\{\s*\}")
_LATIN_END = re.compile(r"[A-Za-z}']$")
_LATIN_START = re.compile(r"[A-Za-z{]")
_ENGLISH_QUICK = re.compile(
    r"[^\d{}\n\r\v\f\x00-\x08\x0e-\x1f\x7f]*[A-Za-z][^\d{}\n\r\v\f\x00-\x08\x0e-\x1f\x7f]*"
)
_QUICK = re.compile(rf"[{CJK}，。！？；：、]*")


def _kinds(tokens: list[tuple[int, str]]) -> list[int]:
    """Language of every token: _EN, _ZH, _RAW or _SEP (see the module docstring)."""
    kinds = [kind for kind, _ in tokens]
    for i, (kind, _) in enumerate(tokens):
        if kind == _NUM:
            kinds[i] = _number_language(tokens, i)
            if kinds[i] == _ZH and tokens[i][1].isdigit():
                _claim_unit(tokens, kinds, i + 1)
    # A mark goes with the word before it (an opening bracket: after it), else by its form.
    for i, kind in enumerate(kinds):
        if kind == _OTHER:
            mark = tokens[i][1]
            side = _word_side(kinds, i, 1 if mark in _OPENERS else -1)
            if side is None:
                side = _EN if mark.isascii() or mark == "…" else _ZH
            kinds[i] = side
    for i, kind in enumerate(kinds):
        if kind == _SPACE:
            left, right = _word_side(kinds, i, -1, marks=True), _word_side(kinds, i, 1, marks=True)
            same = left == right and left in (_EN, _ZH) and "\n" not in tokens[i][1]
            kinds[i] = left if same else _SEP  # type: ignore[assignment]
    return kinds


def _claim_unit(tokens: list[tuple[int, str]], kinds: list[int], i: int) -> None:
    """Give a unit written right after a Mandarin number ("kg", "°C", "km/h") to the Mandarin run."""
    for size in (3, 2, 1):
        unit = tokens[i : i + size]
        if (
            len(unit) == size
            and all(k in (_EN, _OTHER) for k, _ in unit)
            and any(k == _EN for k, _ in unit)
            and "".join(t for _, t in unit) in UNITS
        ):
            kinds[i : i + size] = [_ZH] * size
            return


def _word_side(kinds: list[int], i: int, step: int, marks: bool = False) -> int | None:
    """Language (_EN or _ZH) of the nearest word from ``i`` in direction ``step``; None if there is none.

    Skips spaces, explicit symbols and (unless ``marks``) punctuation.
    """
    skip = (_SPACE, _SEP, _RAW) if marks else (_SPACE, _SEP, _RAW, _OTHER)
    j = i + step
    while 0 <= j < len(kinds) and kinds[j] in skip:
        j += step
    return kinds[j] if 0 <= j < len(kinds) and kinds[j] in (_EN, _ZH) else None


def _number_language(tokens: list[tuple[int, str]], i: int) -> int:
    """_ZH or _EN for the number token ``i`` (see the module docstring)."""
    beside = set()
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(tokens) and tokens[j][0] == _SPACE and "\n" not in tokens[j][1]:
            j += step
        if 0 <= j < len(tokens):
            beside.add(tokens[j][0])
    if _ZH in beside or _glued_through_latin(tokens, i):
        return _ZH
    if _EN in beside:
        return _EN
    best: tuple[int, int] | None = None
    for step in (-1, 1):
        j, distance = i + step, 0
        while 0 <= j < len(tokens) and tokens[j][0] not in (_EN, _ZH):
            distance += len(tokens[j][1])
            j += step
        if 0 <= j < len(tokens) and (best is None or distance < best[0]):
            best = (distance, tokens[j][0])
    return _ZH if best is None else best[1]


def _glued_through_latin(tokens: list[tuple[int, str]], i: int) -> bool:
    """Whether a Latin word glued to the number is glued to CJK on its other side ("5G网络")."""
    for step in (-1, 1):
        j = i + step
        if 0 <= j < len(tokens) and tokens[j][0] == _EN:
            k = j + step
            if 0 <= k < len(tokens) and tokens[k][0] == _ZH:
                return True
    return False


def normalize_mixed(text: str) -> str:
    """Normalize mixed Mandarin/English text (see the module docstring)."""
    if _QUICK.fullmatch(text):
        return normalize_zh(text)
    if text.isascii() and _ENGLISH_QUICK.fullmatch(text):
        return normalize_english(text.strip())  # what ``normalize_runs`` gives for plain ASCII English
    return normalize_runs(text)


def normalize_runs(text: str) -> str:
    """``normalize_mixed`` without its shortcuts for all-Mandarin and plain-English text."""
    text = _EMPTY_BRACES.sub("", text.translate(_FULL_WIDTH))
    tokens = [(m.lastindex - 1, m[0]) for m in _TOKEN.finditer(text)]  # type: ignore[operator]
    kinds = _kinds(tokens)
    out: list[str] = []
    gap = ""
    i = 0
    while i < len(tokens):
        kind = kinds[i]
        if kind == _SEP:
            gap = "\n" if "\n" in tokens[i][1] else " "
            i += 1
            continue
        j = i + 1
        if kind != _RAW:
            while j < len(tokens) and kinds[j] == kind:
                j += 1
        chunk = "".join(t for _, t in tokens[i:j])
        if kind == _RAW:
            inner = " ".join(chunk[1:-1].split())
            piece = "{" + inner + "}" if inner else ""
        elif kind == _EN:
            piece = normalize_english(chunk)
        else:
            piece = normalize_zh(chunk)
        if piece:
            glued = out and (_LATIN_END.search(out[-1]) is not None) and _LATIN_START.match(piece) is not None
            if out and (gap or glued):
                out.append(gap or " ")
            out.append(piece)
        gap = ""
        i = j
    return "".join(out).strip()


def shadow(text: str) -> str:
    """Same-length stand-in of normalized text for the Mandarin analysis (see the module docstring)."""
    if "{" in text:
        text = BRACES.sub(lambda m: "Q" * len(m[0]), text)
    return text.translate(_SHADOW)
