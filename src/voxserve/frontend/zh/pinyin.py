"""Word → per-character toned pinyin, with lexicons and caching.

Readings come, in order of precedence, from the user lexicon (given to the
frontend), the built-in lexicon (``data/zh_lexicon.tsv``: neutral-tone words and
known pypinyin errors) and pypinyin, called per *word* so its phrase dictionary
picks polyphone readings (银行 hang2, 行走 xing2). Output is TONE3 with ``v`` for ü
and tone 5 for neutral; a character without any reading gets "" (the caller
drops it). Results are cached per word (``functools.lru_cache``), so a word costs
one pypinyin call per process.

Tone sandhi is not applied here (see ``sandhi``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources

from voxserve.errors import InvalidInput
from voxserve.frontend.zh.charsets import word_set

PINYIN_RE = re.compile(r"^(?:[a-z]+|ê)[1-5]$")
"""Shape of one toned syllable: letters (v for ü) and a tone digit 1-5."""

REAL_ER = word_set(
    "女儿 婴儿 孤儿 幼儿 健儿 宠儿 胎儿 男儿 孙儿 少儿 弃儿 乳儿 侄儿 新生儿 混血儿 早产儿 宁馨儿 "
    "儿 儿女 儿童 儿子 儿科 儿歌"
)
"""Words whose 儿 is a full syllable (a child), not the erhua suffix."""


@functools.cache
def builtin_lexicon() -> dict[str, tuple[str, ...]]:
    """The shipped lexicon (read once from package data)."""
    text = resources.files("voxserve.frontend").joinpath("data/zh_lexicon.tsv").read_text(encoding="utf-8")
    entries: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, readings = line.split("\t")
        entries[word] = tuple(readings.split())
    return entries


def parse_lexicon(entries: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """Validate a user lexicon (word → list of toned pinyin) and return it as tuples.

    A word made only of CJK characters needs exactly one syllable per character;
    a word with Latin letters ("iPhone") may have any number (at least one).
    Pinyin is TONE3 ("zhong1", "lv4", tone 5 = neutral); "ü" is accepted as "v".
    Raises ``InvalidInput`` (param "lexicon") naming the bad entry.
    """
    if not entries:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for word, readings in entries.items():
        if not isinstance(word, str) or not word.strip():
            raise InvalidInput(f"lexicon word must be a non-empty string, got {word!r}", param="lexicon")
        if isinstance(readings, str):
            readings = readings.split()
        syllables = tuple(str(r).strip().lower().replace("ü", "v") for r in readings)
        if not syllables:
            raise InvalidInput(f"lexicon entry {word!r} has no pinyin", param="lexicon")
        for syllable in syllables:
            if not PINYIN_RE.match(syllable):
                raise InvalidInput(
                    f"lexicon entry {word!r}: {syllable!r} is not toned pinyin like 'zhong1'", param="lexicon"
                )
        has_latin = any(c.isascii() and c.isalpha() for c in word)
        if not has_latin and len(syllables) != len(word):
            raise InvalidInput(
                f"lexicon entry {word!r} has {len(syllables)} syllables for {len(word)} characters",
                param="lexicon",
            )
        out[word] = syllables
    return out


@functools.lru_cache(maxsize=65536)
def pypinyin_word(word: str) -> tuple[str, ...]:
    """pypinyin's reading of one word, one entry per character ("" where it has none).

    Same result as ``lazy_pinyin(word, Style.TONE3, neutral_tone_with_five=True)``
    (a test checks this), computed from pypinyin's own segmenter and tables
    without its style machinery: about 4-20x faster per new word.
    """
    from pypinyin.seg.simpleseg import seg

    readings: list[str] = []
    for piece in seg(word):
        readings.extend(_piece_reading(piece))
    if len(readings) != len(word):  # defensive: keep the one-per-character contract
        readings = [(_lazy_pinyin(c) or [""])[0] for c in word]
    return tuple(r if PINYIN_RE.match(r) else "" for r in readings)


def _piece_reading(piece: str) -> list[str]:
    """One segment from pypinyin's segmenter: its phrase reading, else the default reading per character."""
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict

    phrase = phrases_dict.get(piece)
    if phrase is not None and len(phrase) == len(piece):
        return [_tone3(p[0]) for p in phrase]
    out = []
    for char in piece:
        entry = pinyin_dict.get(ord(char))
        out.append(_tone3(entry.split(",")[0]) if entry else "")
    return out


@functools.lru_cache(maxsize=4096)
def _tone3(marked: str) -> str:
    """pypinyin's tone-marked syllable ("zhōng", "de") → TONE3 with 5 for neutral."""
    from pypinyin.contrib.tone_convert import to_tone3

    return to_tone3(marked, neutral_tone_with_five=True)


def _lazy_pinyin(text: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    # pypinyin accepts an errors callback returning a list (one item per character);
    # its type stub only admits str.
    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=_no_reading)  # type: ignore[arg-type]


def _no_reading(chars: str) -> list[str]:
    return [""] * len(chars)


@functools.lru_cache(maxsize=65536)
def default_reading(word: str) -> tuple[str, ...]:
    """Built-in lexicon, else pypinyin, with built-in words inside longer unknown words.

    For a word that neither lexicon nor pypinyin's phrase dictionary knows, a
    final 得 is the complement marker de5 (过得), and built-in entries still apply
    to its two halves when it has 4 characters (爸爸妈妈) and otherwise to its last
    3 or 2 characters (小姐姐).
    """
    lexicon = builtin_lexicon()
    entry = lexicon.get(word)
    if entry is not None:
        return entry
    readings = pypinyin_word(word)
    if len(word) < 2 or _in_phrase_dict(word):
        return readings
    if word[-1] == "得" and readings[-1] == "de2":
        readings = (*readings[:-1], "de5")  # 过得, 玩得: verb + complement marker
    if len(word) < 3:
        return readings
    if len(word) == 4:
        head, tail = lexicon.get(word[:2]), lexicon.get(word[2:])
        if head is not None or tail is not None:
            return (head or readings[:2]) + (tail or readings[2:])
    for size in (3, 2):
        tail = lexicon.get(word[-size:])
        if tail is not None:
            return readings[:-size] + tail
    return readings


@functools.lru_cache(maxsize=65536)
def phrase_reading(text: str) -> tuple[str, ...] | None:
    """The reading of ``text`` if a lexicon or pypinyin's phrase dictionary knows it as a phrase, else None.

    Used for neighbouring one-character words that jieba split but that form a
    known phrase (我去|还|钱: 还钱 → huan2 qian2).
    """
    entry = builtin_lexicon().get(text)
    if entry is not None:
        return entry
    if _in_phrase_dict(text):
        return pypinyin_word(text)
    return None


def _in_phrase_dict(word: str) -> bool:
    from pypinyin.phrases_dict import phrases_dict

    return word in phrases_dict


def is_erhua(word: str, position: int) -> bool:
    """Whether the 儿 at ``position`` of ``word`` is the erhua suffix of the character before it."""
    return position > 0 and word[position] == "儿" and position == len(word) - 1 and word not in REAL_ER


def has_reading(text: str) -> bool:
    """Whether ``text`` has a Latin letter or a character pypinyin can read (cheap: stops at the first)."""
    from pypinyin.pinyin_dict import pinyin_dict

    return any(("a" <= c <= "z") or ("A" <= c <= "Z") or ord(c) in pinyin_dict for c in text)
