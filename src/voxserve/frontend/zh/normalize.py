"""Mandarin text normalization: raw text → characters the frontend can pronounce.

``normalize(text)`` rewrites, in this order:

1. character cleanup: full-width ASCII → half-width, ideographic/odd spaces and tabs →
   space, CR/LF variants → newline, control and zero-width characters removed,
   accented Latin letters → plain letters (café → cafe);
2. numeric expressions (``rules.RULES``): thousands separators, e-mail/URLs, dates,
   years (digit by digit), times, ratios, phone numbers (digit by digit, 1 as 幺),
   money, percentages, ordinals, units after numbers, arithmetic, fractions,
   ranges, digits glued to letters, negative and plain numbers;
3. leftover symbols with a reading (+ = × ÷ # @ & ~ Greek letters ...) → words;
   "/" after a measure word → 每; punctuation variants (「」, ASCII ,!?:; ( ) ...)
   → the simplified-Chinese forms in ``charsets.KEPT_PUNCT``; "..." → "…";
4. **the drop rule**: every character that is not a CJK ideograph, an ASCII letter,
   a space, a newline or a kept punctuation mark is removed (emoji, control
   characters, ★ © ™, stray symbols). Nothing raises on odd input;
5. whitespace: runs collapse to one space, spaces next to punctuation and at line
   ends go, newlines stay (``split`` cuts there).

The result is idempotent: normalizing normalized text returns it unchanged (and
fast: one regex search). Letters are kept as letters (they are spelled later) and
CJK characters are never changed, so polyphone context survives.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from voxserve.frontend.zh.charsets import CJK, KEPT_PUNCT, LATIN
from voxserve.frontend.zh.rules import RULES
from voxserve.frontend.zh.tables import GREEK, PRE_MAP, PUNCT_CANON, SYMBOL_WORDS

_ALPHABET = f"{CJK}{LATIN} \n{KEPT_PUNCT}"
_DIRTY = re.compile(rf"[^{_ALPHABET}]|  |^ | $| \n|\n |\n\n|……|——|。。|[{KEPT_PUNCT}] | [{KEPT_PUNCT}]")
_DROP = re.compile(rf"[^{_ALPHABET}]+")
_NEEDS_RULES = re.compile(r"[\d@]|[A-Za-z0-9-]\.[A-Za-z]")
_ACCENTED = re.compile(r"[\u00c0-\u024f]")
_ELLIPSIS = re.compile(r"\.{3,}|。{3,}|…+|⋯+")
_DASHES = re.compile(r"—{2,}|-{2,}")
_TILDE_CJK = re.compile(rf"(?<=[{CJK}])\s?~\s?(?=[{CJK}])")
_PER = re.compile(rf"(?<=[元块角斤两米克吨升时天月年次人个件份台])/(?=[{CJK}])")
_ABBREV_DOT = re.compile(r"(?<=[A-Za-z])\.(?=[A-Za-z])")
_END_DOT = re.compile(rf"\.(?=\s|$|[{CJK}”’）)\"'])")
_QUOTE = re.compile(r'"')
_SPACES = re.compile(r"[ ]{2,}")
_PUNCT_SPACE = re.compile(rf" ?([{KEPT_PUNCT}]) ?")
_LINE_EDGE = re.compile(r"^ +| +$", re.MULTILINE)
_NEWLINES = re.compile(r"\n{2,}")


@functools.cache
def _pre_table() -> dict[int, str | None]:
    """str.translate table for step 1 (built once, on first use)."""
    table: dict[int, str | None] = {c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
    for src, dst in PRE_MAP.items():
        table[ord(src)] = dst
    for c in [*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0)]:
        table[c] = None
    for c in [0x0B, 0x0C, 0x85, 0x2028, 0x2029]:
        table[c] = "\n"
    for c in [*range(0x2000, 0x200B), 0x202F, 0x205F]:
        table[c] = " "
    for c in [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF, 0x00AD]:
        table[c] = None
    return table


@functools.cache
def _post_table() -> dict[int, str | None]:
    """str.translate table for step 3: symbol words, Greek letters, punctuation forms."""
    table: dict[int, str | None] = {ord(k): v for k, v in SYMBOL_WORDS.items()}
    table.update({ord(k): v for k, v in GREEK.items()})
    table.update({ord(k): v for k, v in PUNCT_CANON.items()})
    for c in "-/~_|\\*^`<>{}'":
        table[ord(c)] = " "
    return table


def _strip_accent(m: re.Match[str]) -> str:
    decomposed = unicodedata.normalize("NFD", m.group(0))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _alternate_quotes(text: str) -> str:
    parts = text.split('"')
    out = [parts[0]]
    for k, part in enumerate(parts[1:]):
        out.append("“" if k % 2 == 0 else "”")
        out.append(part)
    return "".join(out)


def normalize(text: str) -> str:
    """Normalize ``text`` for Mandarin reading (see the module docstring for the rules)."""
    if _DIRTY.search(text) is None:
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_pre_table())
    text = _ACCENTED.sub(_strip_accent, text)
    text = _ELLIPSIS.sub("…", text)
    text = _DASHES.sub("—", text)
    if _NEEDS_RULES.search(text):
        for pattern, rewrite in RULES:
            text = pattern.sub(rewrite, text)
    text = _TILDE_CJK.sub("到", text)
    text = _PER.sub("每", text)
    text = _ABBREV_DOT.sub("", text)
    text = _END_DOT.sub("。", text)
    if '"' in text:
        text = _alternate_quotes(text)
    text = text.translate(_post_table())
    text = _DROP.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _PUNCT_SPACE.sub(r"\1", text)
    text = _LINE_EDGE.sub("", text)
    text = _NEWLINES.sub("\n", text)
    return text.strip("\n")
