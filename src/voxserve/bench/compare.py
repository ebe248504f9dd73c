"""Comparisons with the reference: parity of outputs, speedups, and ASR scores.

:func:`parity` compares per-sentence durations and mels of two runs of the same
requests; :func:`speedups` and :func:`cer_deltas` add the ratios and differences
against the first (reference) entry of a :func:`voxserve.bench.run.bench` result;
:func:`score_asr` has the ASR judge transcribe a backend's audio. None of them
times anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from voxserve.bench.presets import Item, Workload
from voxserve.bench.stages import Rendered

ASR_CLASSES = ("short", "medium")
"""Size classes whose audio the ASR judge scores (long texts cost much judge time and add little)."""


def parity(reference: list[Rendered], other: list[Rendered]) -> dict[str, Any]:
    """Per-sentence agreement of ``other`` with ``reference`` (same requests, same order).

    ``duration_equal_rate``: share of symbols with the same frame count;
    ``mel_length_equal_rate``: share of sentences with the same frame total;
    ``mel_corr_min``/``mel_corr_mean``: Pearson correlation of the mels over their
    common frames; ``mel_max_abs_diff``: largest absolute mel difference there.
    """
    equal = symbols = same_len = sentences = 0
    corrs: list[float] = []
    max_abs = 0.0
    for r, o in zip(reference, other, strict=True):
        for dr, do, mr, mo in zip(r.durations, o.durations, r.mels, o.mels, strict=True):
            symbols += len(dr)
            equal += int((dr == do).sum())
            sentences += 1
            same_len += int(mr.shape == mo.shape)
            f = min(len(mr), len(mo))
            a, b = mr[:f].astype(np.float64).ravel(), mo[:f].astype(np.float64).ravel()
            if np.array_equal(a, b):
                corrs.append(1.0)
            else:
                corrs.append(float(np.corrcoef(a, b)[0, 1]) if f else 0.0)
                max_abs = max(max_abs, float(np.abs(a - b).max()) if f else float("inf"))
    return {
        "sentences": sentences,
        "duration_equal_rate": equal / max(symbols, 1),
        "mel_length_equal_rate": same_len / max(sentences, 1),
        "mel_corr_min": min(corrs, default=float("nan")),
        "mel_corr_mean": float(np.mean(corrs)) if corrs else float("nan"),
        "mel_max_abs_diff": max_abs,
    }


def score_asr(workload: Workload, outputs: dict[str, Rendered], log: Callable[[str], None]) -> dict[str, Any]:
    """Mean CER of the judge's transcripts of ``outputs`` (item name → audio) for :data:`ASR_CLASSES`.

    Returns ``{"cer", "texts"}``, or ``{"skipped": reason}`` when the workload has no
    text or the judge (faster-whisper and its model packages) is not installed.
    """
    if not workload.asr:
        return {"skipped": "the workload has no text (random tokens)"}
    items: list[Item] = [i for c in ASR_CLASSES for i in workload.classes.get(c, []) if i.text]
    try:
        from voxserve.bench.judge import Judge, cer

        judge = Judge()
        scores = [
            cer(i.text or "", judge.transcribe(outputs[i.name].samples, workload.sample_rate)) for i in items
        ]
    except (ImportError, LookupError, OSError) as e:  # judge extras or model packages not installed
        log(f"  ASR skipped: {e}")
        return {"skipped": f"{type(e).__name__}: {e}"}
    return {"cer": float(np.mean(scores)), "texts": len(scores)}


def speedups(entries: list[dict[str, Any]]) -> None:
    """Add ``speedup`` (reference / backend: p50 latency and TTFA per class, RTF, throughput per batch).

    ``entries[0]`` is the reference; nothing is added when it was not measured.
    """
    ref = entries[0]
    if ref["status"] != "ok":
        return
    for e in entries:
        if e["status"] != "ok":
            continue
        e["speedup"] = {
            "latency_p50": {c: ref["latency"][c]["p50_ms"] / v["p50_ms"] for c, v in e["latency"].items()},
            "ttfa_p50": {c: ref["ttfa"][c]["p50_ms"] / v["p50_ms"] for c, v in e["ttfa"].items()},
            "rtf": ref["rtf"] / e["rtf"],
            "throughput": {
                str(p["batch"]): p["audio_s_per_s"] / q["audio_s_per_s"]
                for p, q in zip(e["throughput"], ref["throughput"], strict=False)
                if "audio_s_per_s" in p and "audio_s_per_s" in q
            },
        }


def cer_deltas(entries: list[dict[str, Any]]) -> None:
    """Add ``asr.cer_delta`` (backend CER minus the reference's) where both were scored."""
    ref_cer = entries[0].get("asr", {}).get("cer")
    for e in entries:
        if ref_cer is not None and "cer" in e.get("asr", {}):
            e["asr"]["cer_delta"] = e["asr"]["cer"] - ref_cer
