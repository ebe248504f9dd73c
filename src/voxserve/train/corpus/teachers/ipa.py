"""English and Mandarin text → IPA strings for the ONNX teachers (Kokoro, Piper).

English goes through espeak-ng 1.51 (the ``espeak-english`` package bundles the library) one
clause at a time, so punctuation survives as its own symbol the way Piper's phonemizer keeps
it. ``to_kokoro`` rewrites espeak IPA into the symbols Kokoro v1.0 was trained with (misaki's
American set: diphthongs as single letters A I O W Y, affricates ʤ ʧ, no length marks, flap
T). Mandarin takes the toned pinyin of voxserve's own analysis (same segmentation, polyphones
and sandhi as the student's tokens) and spells each syllable with misaki's pinyin → IPA table
and tone arrows (misaki's legacy Chinese style, which Kokoro v1.0's vocabulary has).
"""

from __future__ import annotations

import functools
import re

from voxserve.train.corpus.teachers import TeacherMissing

_CLAUSE = re.compile(r"([^,.!?;:]+)([,.!?;:]*)")
_PUNCT_ZH = {"，": ",", "、": ",", "。": ".", "！": "!", "？": "?", "；": ";", "：": ":", "…": "…"}

# Longest first; espeak writes diphthongs and affricates as two letters without a tie.
_KOKORO_EN = (
    ("ɜːɹ", "ɜɹ"),
    ("ɜː", "ɜɹ"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("eɪ", "A"),
    ("ɔɪ", "Y"),
    ("oʊ", "O"),
    ("dʒ", "ʤ"),
    ("tʃ", "ʧ"),
    ("ɪə", "iə"),
    ("ɚ", "əɹ"),
    ("e", "A"),
    ("r", "ɹ"),
    ("x", "k"),
    ("ç", "k"),
    ("ɐ", "ə"),
    ("ɬ", "l"),
    ("ɾ", "T"),
    ("ʔ", "t"),
    ("ː", ""),
    ("o", "ɔ"),
)


@functools.cache
def _espeak():  # type: ignore[no-untyped-def]
    try:
        import espeak_english  # type: ignore[import-untyped]
    except ImportError as e:
        raise TeacherMissing(
            "English IPA needs espeak-english==0.1.1 (pip install espeak-english==0.1.1)"
        ) from e
    return espeak_english


def english(text: str) -> str:
    """espeak-ng en-us IPA with stress marks, words separated by spaces, punctuation kept."""
    espeak = _espeak()
    parts = []
    for clause, punct in _CLAUSE.findall(text):
        ipa = espeak.phonemes(clause) if clause.strip() else ""
        if ipa or punct:
            parts.append(ipa + punct[:1])
    return " ".join(p for p in parts if p).strip()


def to_kokoro(ipa: str) -> str:
    """espeak IPA → Kokoro/misaki American symbols (see the module docstring)."""
    for old, new in _KOKORO_EN:
        ipa = ipa.replace(old, new)
    return ipa


@functools.cache
def _pinyin_ipa():  # type: ignore[no-untyped-def]
    try:
        from misaki.zh import ZHG2P  # type: ignore[import-untyped]
    except ImportError as e:
        raise TeacherMissing(
            "Mandarin IPA for Kokoro needs misaki==0.9.4 with cn2an and ordered-set "
            "(pip install --no-deps misaki==0.9.4; pip install cn2an ordered-set)"
        ) from e
    return functools.lru_cache(maxsize=4096)(ZHG2P.py2ipa)


@functools.cache
def _analyzer():  # type: ignore[no-untyped-def]
    from voxserve.frontend.zh.analysis import MandarinAnalyzer

    return MandarinAnalyzer()


def mandarin(text: str) -> str:
    """Kokoro IPA for a normalized sentence of Mandarin, possibly with English words in it."""
    from voxserve.frontend.mixed_text import shadow

    py2ipa = _pinyin_ipa()
    utt = _analyzer().analyze(shadow(text))
    out: list[str] = []
    for i, word in enumerate(utt.words):
        if word.latin:
            out.append(to_kokoro(english(word.text)).rstrip(",.!?;:"))
        else:
            # misaki's legacy style drops the non-syllabic mark (U+032F) from diphthongs.
            out.append("".join(py2ipa(s.pinyin) for s in word.syllables if not s.erhua).replace("\u032f", ""))
        end = word.start + len(word.text)
        nxt = utt.words[i + 1].start if i + 1 < len(utt.words) else len(text)
        between = text[end:nxt]
        punct = next((_PUNCT_ZH.get(c, c) for c in between if _PUNCT_ZH.get(c, c) in ",.!?;:…"), "")
        out.append(punct + " ")
    return "".join(out).strip()
