"""Voice ids and display names: what they may look like, checked before anything touches a store."""

from __future__ import annotations

import re
import secrets
import unicodedata

from voxserve.errors import InvalidInput

VOICE_ID_PREFIX = "voice_"
VOICE_ID = re.compile(r"voice_[0-9a-f]{12}")
"""A registered voice's id: ``voice_`` and 12 lowercase hex digits (48 random bits)."""
VOICE_ID_PATTERN = f"^{VOICE_ID.pattern}$"
MAX_NAME_CHARS = 64
_NAME_PUNCTUATION = frozenset(" -_.,'()&+")
"""Punctuation a name may hold besides letters, marks and digits (no slashes, no control characters)."""


def new_voice_id() -> str:
    """A fresh random voice id."""
    return f"{VOICE_ID_PREFIX}{secrets.token_hex(6)}"


def is_voice_id(text: object) -> bool:
    """True when ``text`` has the shape of a registered voice's id (it may still be unknown)."""
    return isinstance(text, str) and VOICE_ID.fullmatch(text) is not None


def check_voice_id(text: object, param: str = "voice_id") -> str:
    """``text`` if it is shaped like a voice id, else ``InvalidInput`` naming ``param``."""
    if not is_voice_id(text):
        raise InvalidInput(f"{param} must look like voice_ and 12 hex digits, got {str(text)[:40]!r}", param)
    return str(text)


def validate_name(name: object) -> str:
    """A display name, NFC-normalised: 1-64 characters of letters, marks, digits, spaces and ``-_.,'()&+``.

    No leading or trailing space, no leading dot, no ``..``, nothing path-like or invisible.
    Names need not be unique: voices are found by id.
    """
    if not isinstance(name, str):
        raise InvalidInput("name must be a string", "name")
    text = unicodedata.normalize("NFC", name)
    if not text or not text.strip():
        raise InvalidInput("name must not be empty", "name")
    if len(text) > MAX_NAME_CHARS:
        raise InvalidInput(f"name is {len(text)} characters; at most {MAX_NAME_CHARS}", "name")
    if text != text.strip():
        raise InvalidInput("name must not start or end with spaces", "name")
    if text.startswith(".") or ".." in text:
        raise InvalidInput("name must not start with '.' or contain '..'", "name")
    for ch in text:
        if ch in _NAME_PUNCTUATION:
            continue
        if unicodedata.category(ch)[0] not in "LMN":
            raise InvalidInput(f"name may not contain {ch!r} (U+{ord(ch):04X})", "name")
    return text
