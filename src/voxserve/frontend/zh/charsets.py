"""Character classes shared by the Mandarin frontend modules (regex fragments and sets)."""

from __future__ import annotations

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3007\U00020000-\U0002fa1f"
"""Regex class body: CJK ideographs (URO, extension A, compatibility, 〇, supplementary planes)."""

LATIN = "A-Za-z"
"""Regex class body: the Latin letters the frontend spells (accents are stripped earlier)."""

SENTENCE_END = "。！？；…"
"""Punctuation that ends a sentence (``split`` cuts after it; newlines cut too)."""

CLAUSE_BREAK = "，、：—"
"""Punctuation that ends a clause inside a sentence (``split`` may cut after it; a #3 break).

The semicolon is in ``SENTENCE_END``: ``split`` cuts there; inside a sentence given
straight to ``phonemize`` it is a #3 break like these."""

BRACKETS = "（）"
"""Parentheses: a #3 break, like a clause end, but never a place to cut a sentence."""

QUOTES = "“”‘’《》·"
"""Punctuation that separates words but adds no pause of its own."""

CLOSERS = "”’）》"
"""Closing marks that stay with the sentence-final punctuation before them."""

KEPT_PUNCT = SENTENCE_END + CLAUSE_BREAK + BRACKETS + QUOTES
"""Every punctuation mark that survives normalization."""

PAUSE_PUNCT = SENTENCE_END + CLAUSE_BREAK + BRACKETS
"""Punctuation that makes a #3 break when it occurs inside a sentence."""

DIGIT_CHARS = frozenset("零一二三四五六七八九")
"""Chinese digits as written by digit-by-digit readings (years, phone numbers, decimals)."""


def word_set(text: str) -> frozenset[str]:
    """A set of words written space-separated (keeps word tables readable)."""
    return frozenset(text.split())
