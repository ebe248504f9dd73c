"""What the text frontend hands to the engine.

Who calls what: the engine calls ``Frontend.split`` once per request to cut the
text into sentences (no length limit: long text only yields more sentences), then
``Frontend.phonemize`` per sentence. Mapping symbols to integer ids uses the
pack's symbol table and happens in the engine, not here. A frontend never
touches tensors or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PhoneSequence:
    """One sentence as model symbols, with the link back to its characters.

    ``text`` is the normalized sentence (what character timings refer to).
    ``symbols`` are the model's symbols in order, including silence, prosody
    breaks and end-of-sequence markers. ``char_index[i]`` is the index in
    ``text`` of the character that symbol ``i`` pronounces, or -1 for symbols
    that pronounce no character (silence, breaks, eos).
    """

    text: str
    symbols: tuple[str, ...]
    char_index: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.symbols) != len(self.char_index):
            raise ValueError("symbols and char_index differ in length")


class Frontend(Protocol):
    """Text → sentences → symbol sequences for one symbol set."""

    symbol_set: str
    """Name of the symbol set this frontend emits (a pack's config names the one it needs)."""

    def split(self, text: str) -> list[str]:
        """Normalize whitespace and cut ``text`` into sentences; empty list if nothing speakable."""
        ...

    def phonemize(self, sentence: str) -> PhoneSequence:
        """One sentence (as returned by ``split``) to symbols."""
        ...
