"""Cutting normalized Mandarin text into bounded sentences.

Rules, in order:

1. cut after sentence-final punctuation (。！？； and …, runs of them, plus any closing
   quote or bracket right after) and at every newline; the punctuation stays with
   its sentence;
2. a sentence longer than ``max_chars`` is cut after clause punctuation (，、：—),
   packing consecutive clauses greedily up to ``max_chars``;
3. a clause still longer than ``max_chars`` is hard-cut: at the last space in the
   window, else at the last word boundary reported by ``word_boundaries`` (when
   given), else at the last change between CJK and Latin letters, else at
   ``max_chars`` exactly; so any input length works and every piece is bounded;
4. leading punctuation and spaces are stripped; pieces with no CJK character and no
   Latin letter (nothing speakable) are dropped.

Works on normalized text (see ``normalize``) and does not normalize by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from voxserve.frontend.zh.charsets import CJK, CLAUSE_BREAK, CLOSERS, LATIN, SENTENCE_END

WordBoundaries = Callable[[str], Iterable[int]]
"""Given a text, the offsets where a word starts (0 < offset < len(text))."""

_SENTENCE = re.compile(rf"[^{SENTENCE_END}\n]*(?:[{SENTENCE_END}]+[{CLOSERS}]*|\n|$)")
_CLAUSE = re.compile(rf"[^{CLAUSE_BREAK}]*(?:[{CLAUSE_BREAK}]+[{CLOSERS}]*|$)")
_SPEAKABLE = re.compile(rf"[{CJK}{LATIN}]")
# Leading marks that cannot start a sentence (opening quotes and brackets can).
_LEADING = re.compile(rf"^[\s{SENTENCE_END}{CLAUSE_BREAK}{CLOSERS}·]+")
_SCRIPT_CHANGE = re.compile(rf"(?<=[{CJK}])(?=[{LATIN}])|(?<=[{LATIN}])(?=[{CJK}])")


def _hard_cut(text: str, max_chars: int, word_boundaries: WordBoundaries | None) -> list[str]:
    """Cut ``text`` into pieces of at most ``max_chars`` characters, preferring natural places."""
    pieces: list[str] = []
    while len(text) > max_chars:
        window = text[: max_chars + 1]
        floor = max_chars // 2
        cut = window.rfind(" ", floor)
        if cut <= 0 and word_boundaries is not None:
            cut = max((b for b in word_boundaries(window) if floor <= b <= max_chars), default=-1)
        if cut <= 0:
            cut = max((m.start() for m in _SCRIPT_CHANGE.finditer(window, floor)), default=-1)
        if cut <= 0:
            cut = max_chars
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    pieces.append(text)
    return pieces


def _pack_clauses(sentence: str, max_chars: int, word_boundaries: WordBoundaries | None) -> list[str]:
    """Greedily join clauses of a too-long sentence into pieces of at most ``max_chars``."""
    out: list[str] = []
    current = ""
    for clause in _CLAUSE.findall(sentence):
        if not clause:
            continue
        if len(current) + len(clause) <= max_chars:
            current += clause
            continue
        if current:
            out.append(current)
        if len(clause) <= max_chars:
            current = clause
        else:
            *full, current = _hard_cut(clause, max_chars, word_boundaries)
            out.extend(full)
    if current:
        out.append(current)
    return out


def split_sentences(
    text: str, max_chars: int = 60, word_boundaries: WordBoundaries | None = None
) -> list[str]:
    """Normalized text → speakable sentences of at most ``max_chars`` characters each."""
    if max_chars < 2:
        raise ValueError(f"max_chars must be at least 2, got {max_chars}")
    sentences: list[str] = []
    for raw in _SENTENCE.findall(text):
        sentence = _LEADING.sub("", raw).strip()
        if not sentence or _SPEAKABLE.search(sentence) is None:
            continue
        if len(sentence) <= max_chars:
            sentences.append(sentence)
            continue
        for piece in _pack_clauses(sentence, max_chars, word_boundaries):
            piece = _LEADING.sub("", piece).strip()
            if piece and _SPEAKABLE.search(piece) is not None:
                sentences.append(piece)
    return sentences
