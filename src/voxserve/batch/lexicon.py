"""Pronunciation lexicon files for batch jobs, and frontends that honour them.

File format (UTF-8): one entry per line, ``word<TAB>reading``; blank lines and lines starting with
``#`` are ignored. The reading is either

- toned pinyin syllables separated by spaces (``重庆\tchong2 qing4``; tone 5 = neutral, ``v`` or
  ``ü`` for ü): one syllable per character for a Chinese word, any number for a word with Latin
  letters (``iPhone\tai1 feng4``); honoured by every Mandarin voice; or
- ARPAbet phones with stress digits for an English word (``voxserve\tV AA1 K S S ER0 V``): honoured
  by voices whose frontend speaks English (EmotiVoice); a voice without English phones rejects it.

Keys match the normalized text (write numbers as characters). A later line for the same word
replaces an earlier one. Errors name the file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxserve.errors import InvalidInput

_ARPABET = re.compile(r"^[A-Z]{1,3}[0-2]?$")


@dataclass(frozen=True)
class Lexicon:
    """User pronunciations: ``pinyin`` (word → toned syllables) and ``phones`` (English word → ARPAbet)."""

    pinyin: dict[str, tuple[str, ...]] = field(default_factory=dict)
    phones: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.pinyin or self.phones)

    def digest(self) -> str:
        """A content hash (changes whenever any entry changes; part of a chapter's settings hash)."""
        blob = json.dumps([sorted(self.pinyin.items()), sorted(self.phones.items())], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pinyin": {k: " ".join(v) for k, v in self.pinyin.items()},
            "phones": {k: " ".join(v) for k, v in self.phones.items()},
        }


def parse_lexicon_text(text: str, name: str = "lexicon") -> Lexicon:
    """Parse lexicon lines (see the module docstring); ``InvalidInput`` names the line."""
    from voxserve.frontend.zh.pinyin import parse_lexicon

    pinyin: dict[str, tuple[str, ...]] = {}
    phones: dict[str, tuple[str, ...]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" not in line:
            raise InvalidInput(f"{name}, line {n}: expected 'word<TAB>reading'", param="lexicon")
        word, reading = (part.strip() for part in line.split("\t", 1))
        items = reading.split()
        if not word or not items:
            raise InvalidInput(f"{name}, line {n}: expected 'word<TAB>reading'", param="lexicon")
        if all(_ARPABET.match(p) for p in items) and word.isascii():
            phones[word.lower()] = tuple(items)
            continue
        try:
            pinyin.update(parse_lexicon({word: items}))
        except InvalidInput as e:
            raise InvalidInput(f"{name}, line {n}: {e}", param="lexicon") from None
    return Lexicon(pinyin, phones)


def read_lexicon(path: str | Path) -> Lexicon:
    """Read a lexicon file; ``InvalidInput`` if it is missing, not UTF-8 or malformed."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"lexicon {path}: no such file", param="lexicon") from None
    except UnicodeDecodeError as e:
        raise InvalidInput(
            f"lexicon {path}: not UTF-8 (bad byte at offset {e.start})", param="lexicon"
        ) from None
    except OSError as e:
        raise InvalidInput(f"lexicon {path}: cannot read ({e.strerror or e})", param="lexicon") from None
    return parse_lexicon_text(text, str(path))


def frontend_with_lexicon(frontend: Any, lexicon: Lexicon, voice: str) -> Any:
    """A frontend like ``frontend`` that honours ``lexicon`` (the same one when the lexicon is empty).

    Uses the frontends' ``with_lexicon`` hook; ``InvalidInput`` when the voice cannot honour an entry
    (a syllable outside its symbol set, English phones for a Mandarin-only voice).
    """
    if not lexicon:
        return frontend
    hook = getattr(frontend, "with_lexicon", None)
    if hook is None:
        raise InvalidInput(f"voice {voice!r}: its frontend does not support a lexicon", param="lexicon")
    try:
        return hook(lexicon.pinyin, english=lexicon.phones or None)
    except InvalidInput as e:
        raise InvalidInput(f"voice {voice!r}: {e}", param="lexicon") from None
