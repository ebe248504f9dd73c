"""``MandarinFrontend``: the ``Frontend`` for Mandarin text (with Latin letters spelled).

split(text): normalize (``zh.normalize``) then cut into bounded sentences
(``zh.split``); phonemize(sentence): normalize again (a no-op on ``split``'s
output), analyse into a language-level ``Utterance`` (``zh.analysis``) and map it
to the pack's symbol set (``symbols``). ``char_index`` points into the normalized
sentence, which is ``PhoneSequence.text``.

Heavy resources (jieba's dictionary, pypinyin's phrase table) load on first use,
once per process; call ``warmup()`` to pay that cost up front. Instances are
safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voxserve.errors import InvalidInput
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.symbols import get_mapper
from voxserve.frontend.utterance import Utterance
from voxserve.frontend.zh.analysis import MandarinAnalyzer
from voxserve.frontend.zh.normalize import normalize
from voxserve.frontend.zh.pinyin import has_reading, parse_lexicon
from voxserve.frontend.zh.split import split_sentences

DEFAULT_MAX_CHARS = 60
"""Longest sentence ``split`` returns, in characters of normalized text."""


class MandarinFrontend:
    """Mandarin text → sentences → symbols of one symbol set ("baker").

    ``lexicon`` maps words to toned pinyin lists ({"重庆": ["chong2", "qing4"]},
    tone 5 = neutral); it overrides the built-in readings, keeps CJK words whole
    when segmenting, and gives Latin words a reading instead of spelling. Keys are
    matched against normalized text (write numbers as characters). Does not read
    English words as English: they are spelled letter by letter.
    """

    def __init__(
        self,
        symbol_set: str = "baker",
        lexicon: Mapping[str, Sequence[str]] | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        if max_chars < 2:
            raise InvalidInput(f"max_chars must be at least 2, got {max_chars}", param="max_chars")
        self.symbol_set = symbol_set
        self._mapper = get_mapper(symbol_set)
        entries = parse_lexicon(lexicon)
        for word, readings in entries.items():
            for reading in readings:
                if not self._mapper.covers(reading):
                    raise InvalidInput(
                        f"lexicon entry {word!r}: {reading!r} is not a syllable of symbol set {symbol_set!r}",
                        param="lexicon",
                    )
        self._analyzer = MandarinAnalyzer(entries)
        self._lexicon_chars = frozenset("".join(entries))
        self._lexicon = entries
        self.max_chars = max_chars

    def with_lexicon(
        self, lexicon: Mapping[str, Sequence[str]], english: Mapping[str, Sequence[str]] | None = None
    ) -> MandarinFrontend:
        """A new frontend like this one whose user lexicon is this one's plus ``lexicon`` (which wins).

        ``english`` (word → ARPAbet) is rejected: this frontend has no English phones.
        """
        if english:
            raise InvalidInput(
                f"symbol set {self.symbol_set!r} has no English phones for {sorted(english)[0]!r}",
                param="lexicon",
            )
        merged = {**self._lexicon, **parse_lexicon(lexicon)}
        return MandarinFrontend(self.symbol_set, merged, self.max_chars)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this frontend can emit, in the symbol set's id order."""
        return self._mapper.symbols

    def warmup(self) -> None:
        """Load jieba and pypinyin now instead of on the first request."""
        self.phonemize("你好，世界。")

    def split(self, text: str) -> list[str]:
        """Normalized, speakable sentences of at most ``max_chars`` characters; [] if none.

        Every returned sentence has at least one syllable, so ``phonemize`` accepts it.
        """
        pieces = split_sentences(normalize(text), self.max_chars, self._analyzer.segmenter.boundaries)
        return [p for p in pieces if has_reading(p) or not self._lexicon_chars.isdisjoint(p)]

    def analyze(self, sentence: str) -> Utterance:
        """The language-level analysis (words, pinyin, breaks) of one sentence."""
        return self._analyzer.analyze(normalize(sentence))

    def phonemize(self, sentence: str) -> PhoneSequence:
        """Symbols for one sentence; ``InvalidInput`` if it has nothing speakable."""
        utterance = self.analyze(sentence)
        if not utterance.words:
            raise InvalidInput(f"nothing speakable in {sentence[:40]!r}", param="input")
        return self._mapper.map(utterance)
