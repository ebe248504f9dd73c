"""Symbol-set mappers: language-level ``Utterance`` → one model's ``PhoneSequence``.

Adding a symbol set is one module with a mapper class (``name``, ``symbols``,
``covers(pinyin)``, ``map(utterance)``) and one line in ``MAPPERS``; modules are
imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from voxserve.errors import NotFound
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.utterance import Utterance

MAPPERS: dict[str, str] = {
    "baker": "voxserve.frontend.symbols.baker:BakerMapper",
    "emotivoice": "voxserve.frontend.symbols.emotivoice:EmotiVoiceMapper",
}
"""Symbol-set name → "module:class" of its mapper."""


class SymbolMapper(Protocol):
    """What the frontend needs from a symbol set."""

    name: str
    symbols: tuple[str, ...]

    def covers(self, pinyin: str) -> bool:
        """Whether a toned syllable ("zhong1") can be mapped."""
        ...

    def map(self, utterance: Utterance) -> PhoneSequence:
        """Symbols for one utterance; every symbol is in ``symbols``."""
        ...


def get_mapper(name: str) -> SymbolMapper:
    """A new mapper for ``name``; ``NotFound`` lists the known names."""
    target = MAPPERS.get(name)
    if target is None:
        raise NotFound(
            f"unknown symbol set {name!r}; known: {', '.join(sorted(MAPPERS))}", param="symbol_set"
        )
    module_name, class_name = target.split(":")
    mapper: SymbolMapper = getattr(importlib.import_module(module_name), class_name)()
    return mapper
