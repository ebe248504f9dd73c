"""Chinese word segmentation with jieba, loaded once per process on first use.

jieba's dictionary load (~1 s) is a one-time cost: ``tokenizer()`` builds a
private ``jieba.Tokenizer`` under a lock and keeps it for the process. Its
prefix-dictionary cache goes to voxserve's cache root (``packs.store.home()/jieba``:
``$VOXSERVE_HOME`` or the user cache directory), never the working directory; if
that directory cannot be created jieba falls back to the system temp directory.
jieba's own logger is set to WARNING so loading prints nothing.

``Segmenter`` adds forced words on top without touching the shared tokenizer:
lexicon words and unit names (公里每小时) found in the text are cut out first,
then spelled-out numbers (二零二四, 三点五亿, 百分之二十), and jieba (with its HMM for
unknown words) cuts the rest. It does no part-of-speech tagging.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba  # type: ignore[import-untyped]

_LOCK = threading.Lock()
_TOKENIZER: jieba.Tokenizer | None = None
_N = "零〇一二三四五六七八九十百千万亿两幺"
_D = "零〇一二三四五六七八九"
_NUMBER_RUN = re.compile(
    rf"(?:百分之|千分之|[{_N}]+分之)?(?:[{_N}]+点[{_D}]+(?![十百千])[万亿]*|[{_N}]{{2,}})|[{_N}]+分之[{_N}]+"
)
"""Spelled-out numbers, decimals, fractions, percentages: one word each (jieba cuts 二零二四 as 二零二|四)."""


def cache_dir() -> str:
    """Where jieba's prefix-dictionary cache is written: ``<voxserve home>/jieba``."""
    from voxserve.packs.store import home

    return os.path.join(home(), "jieba")


def tokenizer() -> jieba.Tokenizer:
    """The process-wide jieba tokenizer, initialized on first call (thread-safe)."""
    global _TOKENIZER
    if _TOKENIZER is not None:
        return _TOKENIZER
    with _LOCK:
        if _TOKENIZER is None:
            import jieba  # type: ignore[import-untyped]

            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            try:
                path = cache_dir()
                os.makedirs(path, exist_ok=True)
                tk.tmp_dir = path
            except OSError:
                tk.tmp_dir = None  # jieba then uses the system temp directory
            tk.initialize()
            _TOKENIZER = tk
    return _TOKENIZER


def is_word(text: str) -> bool:
    """Whether ``text`` is an entry of jieba's dictionary."""
    return tokenizer().FREQ.get(text, 0) > 0


def unit_words() -> frozenset[str]:
    """Multi-character unit names that normalization writes (公里每小时, 毫安时): kept whole."""
    from voxserve.frontend.zh.tables import UNITS

    return frozenset(v for v in UNITS.values() if len(v) > 1 and not v.isascii())


def _jieba(text: str) -> list[str]:
    return list(tokenizer().cut(text, HMM=True))


def _cut_around(text: str, pattern: re.Pattern[str], cut_rest: Callable[[str], list[str]]) -> list[str]:
    """Matches of ``pattern`` as whole words, ``cut_rest`` for the text between them."""
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.extend(cut_rest(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    if pos < len(text):
        out.extend(cut_rest(text[pos:]))
    return out


class Segmenter:
    """Cuts runs of CJK characters into words; ``forced`` words always stay whole."""

    def __init__(self, forced: set[str] | frozenset[str] = frozenset()) -> None:
        words = sorted({w for w in forced if w} | unit_words(), key=len, reverse=True)
        self._forced = re.compile("|".join(re.escape(w) for w in words))

    def cut(self, run: str) -> list[str]:
        """Words of ``run`` in order; their concatenation is ``run``."""
        return _cut_around(run, self._forced, self._numbers_then_jieba)

    @staticmethod
    def _numbers_then_jieba(text: str) -> list[str]:
        return _cut_around(text, _NUMBER_RUN, _jieba)

    def boundaries(self, text: str) -> list[int]:
        """Offsets where a word starts inside ``text`` (for hard sentence cuts)."""
        offsets = []
        pos = 0
        for word in tokenizer().cut(text, HMM=False):
            pos += len(word)
            offsets.append(pos)
        return offsets[:-1]
