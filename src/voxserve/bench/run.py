"""``voxserve bench VOICE --backends ...``: every backend against the eager fp32 reference, one run.

:func:`bench` loads one :class:`~voxserve.bench.presets.Workload` and measures the
eager fp32 torch backend on the chosen device first (the reference), then each
requested backend on the same device, one at a time (each is freed before the
next loads, so GPU memory numbers are its own). Per backend:

* latency p50/p95/p99 of whole requests at batch 1 per size class (frontend +
  acoustic + vocoder + WAV encoding), and the real-time factor;
* time to first audio of a stream: through the serving engine for voices with text
  (:func:`~voxserve.bench.stages.engine_first_audio`), else on the simple streaming
  path (:func:`~voxserve.bench.stages.first_audio`);
* model throughput (seconds of audio per second, acoustic + vocoder on padded
  batches of medium requests; frontend and encoding excluded) against batch size;
* the per-stage breakdown (separate runs, synchronized between stages);
* peak GPU memory (torch's allocator only) and process RSS;
* speedup over the reference and parity with it (durations, mel), plus ASR CER
  through :mod:`voxserve.bench.judge` when asked and possible.

A backend that cannot be built or loaded here is reported ``skipped`` with the
reason; one that fails while measured is reported ``failed``. Nothing is printed:
``progress`` receives one line per step.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.bench import stages
from voxserve.bench.compare import cer_deltas, parity, score_asr, speedups
from voxserve.bench.presets import Workload
from voxserve.bench.stages import Rendered, StageTimer

REFERENCE = "torch"
"""Registry name of the eager fp32 backend every other backend is compared with."""

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "onnxruntime-int8": ("onnxruntime", {"int8": True}),
    "cuda-fp32": ("cuda", {"dtype": "fp32"}),
    "cuda-bf16": ("cuda", {"dtype": "bf16"}),
    "cuda-nographs": ("cuda", {"graphs": False}),
    # Half the cell budgets of the default: the graph pool and one call's activations halve.
    "cuda-lean": ("cuda", {"max_graph_frames": 4096, "max_graph_tokens": 2048}),
    "cuda-cl": ("cuda", {"channels_last": True}),
    "cuda-cl-tuned": ("cuda", {"channels_last": True, "cudnn_benchmark": True}),
    "cuda-lean-cl": ("cuda", {"max_graph_frames": 4096, "max_graph_tokens": 2048, "channels_last": True}),
    "cuda-lean-compiled": (
        "cuda",
        {"max_graph_frames": 4096, "max_graph_tokens": 2048, "compile_vocoder": True},
    ),
}
"""Benchmark names for a registered backend with settings (used when the registry lacks the name)."""


@dataclass(frozen=True)
class Plan:
    """How much to measure. :meth:`default` picks sizes for the device and ``--quick``."""

    repeats: int
    """Timed requests per item at batch 1 (latency percentiles, RTF, time to first audio)."""
    warmup: int
    """Untimed requests per item before timing (shape-dependent one-time costs stay out)."""
    batch_sizes: tuple[int, ...]
    """Batch sizes of the throughput sweep (requests per padded batch)."""
    throughput_repeats: int
    """Timed batches per batch size."""
    stage_repeats: int
    """Synchronized requests per item for the per-stage breakdown."""
    stream_first_s: float = 0.4
    """Audio in the first streamed chunk, seconds (time to first audio; the engine's default)."""

    def __post_init__(self) -> None:
        from voxserve.errors import InvalidInput

        for key in ("repeats", "throughput_repeats", "stage_repeats"):
            if getattr(self, key) < 1:
                raise InvalidInput(f"plan.{key} must be >= 1, got {getattr(self, key)}", param=key)
        if self.warmup < 0 or not self.batch_sizes or min(self.batch_sizes) < 1 or self.stream_first_s <= 0:
            raise InvalidInput(f"plan {self} has a negative warm-up, a batch size < 1 or no first chunk")

    @classmethod
    def default(cls, device: str | torch.device, quick: bool = False) -> Plan:
        if torch.device(device).type == "cuda":
            if quick:
                return cls(5, 2, (1, 4, 16, 64), 2, 3)
            return cls(30, 3, (1, 2, 4, 8, 16, 32, 64), 5, 10)
        if quick:
            return cls(3, 1, (1, 2, 4), 1, 1)
        return cls(5, 1, (1, 2, 4, 8), 2, 2)


def bench(
    workload: Workload,
    backends: list[str],
    device: str = "cpu",
    plan: Plan | None = None,
    judge: bool = False,
    progress: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measure the reference and ``backends`` (registry names or :data:`VARIANTS`) on ``workload``.

    Returns a JSON-ready dict. ``backends`` may name the reference; it is measured
    once either way, first. ``threads`` goes to backends that take a thread count
    (torch's own is the process setting, ``torch.set_num_threads``).
    """
    from voxserve.bench.report import machine_info
    from voxserve.errors import InvalidInput

    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(f"device {device!r}: this torch build sees no CUDA device", param="device")
    log = progress or (lambda line: None)
    plan = plan or Plan.default(device, quick=False)
    names = [REFERENCE, *(b for b in dict.fromkeys(backends) if b != REFERENCE)]
    entries: list[dict[str, Any]] = []
    reference: dict[str, Rendered] = {}
    for name in names:
        log(f"{workload.name}: {name} on {device}")
        entry, outputs = _measure(workload, name, device, plan, log, threads)
        if name == REFERENCE and entry["status"] == "ok":
            reference = outputs["first"]
        if entry["status"] == "ok":
            if reference:
                keys = list(reference)
                entry["parity"] = parity([reference[k] for k in keys], [outputs["last"][k] for k in keys])
            if judge:
                entry["asr"] = score_asr(workload, outputs["last"], log)
        entries.append(entry)
    speedups(entries)
    cer_deltas(entries)
    return {
        "schema": 1,
        "workload": {
            "name": workload.name,
            "description": workload.description,
            "sample_rate": workload.sample_rate,
            "hop_length": workload.hop_length,
            "classes": {c: len(items) for c, items in workload.classes.items()},
            "facts": workload.facts,
        },
        "machine": machine_info(device),
        "config": {
            "device": str(device),
            "backends": names,
            "judge": judge,
            "torch_threads": torch.get_num_threads(),
            "threads": threads,
            "plan": asdict(plan),
        },
        "reference": REFERENCE,
        "backends": entries,
    }


def _measure(
    workload: Workload, name: str, device: str, plan: Plan, log: Callable[[str], None], threads: int | None
) -> tuple[dict[str, Any], dict[str, dict[str, Rendered]]]:
    entry: dict[str, Any] = {"name": name, "device": str(device), "status": "ok", "reason": None}
    memory = _Memory(device)
    backend: Backend | None = None
    try:
        t0 = time.perf_counter()
        backend = _create(name, device, threads)
        backend.load(workload.pack)
        entry["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            backend.warmup()
        except ValueError as e:
            # The generic Backend.warmup passes no speaker/style, which a conditioned model
            # rejects; the untimed per-item runs before timing warm those backends up instead.
            if not workload.conditioned:
                raise
            entry["warmup_note"] = f"generic warm-up not possible ({e}); per-item warm-up runs only"
        entry["warmup_s"] = time.perf_counter() - t0
    # A backend that cannot run here (not installed, no GPU, unsupported model) may raise
    # anything from its own stack; the benchmark reports it and goes on with the others.
    except Exception as e:
        entry.update(status="skipped", reason=f"{type(e).__name__}: {e}")
        log(f"  skipped: {entry['reason']}")
        return entry, {}
    finally:
        memory.sample("after_load")
    outputs: dict[str, dict[str, Rendered]] = {"first": {}, "last": {}}
    try:
        entry["latency"], entry["rtf"] = _latency(workload, backend, plan, outputs, log)
        memory.sample("batch1")
        entry["ttfa"] = _ttfa(workload, backend, plan)
        entry["stages_ms"] = _stages(workload, backend, plan, device)
        entry["throughput"] = _throughput(workload, backend, plan, log)
        memory.sample("end")
    except Exception as e:  # same reason as above: report the failure, measure the rest
        entry.update(status="failed", reason=f"{type(e).__name__}: {e}")
        log(f"  failed: {entry['reason']}")
    entry["memory"] = memory.summary()
    del backend
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return entry, outputs


def _create(name: str, device: str, threads: int | None) -> Backend:
    """Build backend ``name`` for ``device``; CPU-only backends (no ``device`` argument) refuse a GPU run."""
    import importlib
    import inspect

    from voxserve.backends import registry

    base, kwargs = (name, {}) if name in registry.BACKENDS else VARIANTS.get(name, (name, {}))
    kwargs = dict(kwargs)
    if base in registry.BACKENDS:
        module, cls = registry.BACKENDS[base].split(":")
        params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
        if "device" in params:
            kwargs["device"] = device
        elif torch.device(device).type != "cpu":
            raise RuntimeError("it runs on the CPU only: benchmark it in a run with --device cpu")
        if "threads" in params and threads is not None:
            kwargs["threads"] = threads  # the same thread count as the torch reference
    else:
        kwargs["device"] = device
    backend = registry.create(base, **kwargs)
    own = getattr(backend, "device", None)
    if own is not None and torch.device(own).type != torch.device(device).type:
        raise RuntimeError(f"it runs on {own}, not {device}: benchmark it in a run with --device {own}")
    return backend


def _latency(
    workload: Workload,
    backend: Backend,
    plan: Plan,
    outputs: dict[str, dict[str, Rendered]],
    log: Callable[[str], None],
) -> tuple[dict[str, Any], float]:
    per_class: dict[str, Any] = {}
    total_wall = total_audio = 0.0
    for cls, items in workload.classes.items():
        wall: list[float] = []
        audio = 0.0
        for item in items:
            for i in range(plan.warmup):
                r = stages.run_request(workload, backend, item)
                if i == 0:
                    outputs["first"][item.name] = r
            for i in range(plan.repeats):
                t0 = time.perf_counter()
                r = stages.run_request(workload, backend, item)
                wall.append(time.perf_counter() - t0)
                audio += r.audio_s(workload.sample_rate)
                if i == 0:
                    outputs["first"].setdefault(item.name, r)
            outputs["last"][item.name] = r
        p50, p95, p99 = np.percentile(np.array(wall) * 1e3, [50, 95, 99]).tolist()
        per_class[cls] = {
            "n": len(wall),
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "mean_ms": float(np.mean(wall) * 1e3),
            "audio_s": audio / len(wall),
            "rtf": sum(wall) / audio,
        }
        total_wall, total_audio = total_wall + sum(wall), total_audio + audio
        log(f"  {cls}: p50 {p50:.1f} ms, RTF {per_class[cls]['rtf']:.4f}")
    return per_class, total_wall / total_audio


def _ttfa(workload: Workload, backend: Backend, plan: Plan) -> dict[str, Any]:
    """Per class: through the serving engine when it can speak the workload, else the simple path."""
    source, note = "engine", None
    try:
        seconds = stages.engine_first_audio(workload, backend, workload.classes, plan.repeats)
    except ImportError as e:
        source, note = "simple", f"no serving engine ({e})"
    except TypeError as e:  # random tokens: the engine needs text
        source, note = "simple", str(e)
    context = _context_frames(workload, backend) if source == "simple" else None
    if context is not None:
        seconds = {
            cls: [
                stages.first_audio(workload, backend, item, plan.stream_first_s, context)[0]
                for item in items
                for _ in range(plan.repeats)
            ]
            for cls, items in workload.classes.items()
        }
    out: dict[str, Any] = {}
    for cls, times in seconds.items():
        p50, p95, p99 = np.percentile(np.array(times) * 1e3, [50, 95, 99]).tolist()
        out[cls] = {"n": len(times), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "source": source}
        if context is not None:
            out[cls]["context_frames"] = context
        if note:
            out[cls]["note"] = note
    return out


def _context_frames(workload: Workload, backend: Backend) -> int:
    """Right-context frames the engine gives a streamed chunk: its vocoder's receptive field."""
    try:
        from voxserve.engine.streaming import receptive_frames
    except ImportError:  # an engine without streaming: chunks get no context
        return 0
    n_mels = int(workload.pack.config.mel.get("n_mels", 80))
    return int(receptive_frames(backend, n_mels))


def _stages(workload: Workload, backend: Backend, plan: Plan, device: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for cls, items in workload.classes.items():
        timer = StageTimer(device)
        for item in items:
            for _ in range(plan.stage_repeats):
                stages.run_request(workload, backend, item, timer)
        n = len(items) * plan.stage_repeats
        out[cls] = {k: timer.ms[k] / n for k in stages.STAGES if k in timer.ms}
    return out


def _throughput(
    workload: Workload, backend: Backend, plan: Plan, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    cls = "medium" if "medium" in workload.classes else next(iter(workload.classes))
    rows = [s for item in workload.classes[cls] for s in workload.sentences(item)]
    points: list[dict[str, Any]] = []
    for b in plan.batch_sizes:
        ids, lengths = stages.pad([rows[i % len(rows)] for i in range(b)])
        try:
            walls, audio = [], 0.0
            for i in range(plan.throughput_repeats + 1):  # the first batch of a shape is a warm-up
                t0 = time.perf_counter()
                ac = stages.acoustic(workload, backend, ids, lengths)
                backend.vocoder(ac.mel[:, : max(1, int(ac.mel_lengths.max()))])
                if i:
                    walls.append(time.perf_counter() - t0)
                    audio += float(ac.mel_lengths.sum()) * workload.hop_length / workload.sample_rate
        except (RuntimeError, MemoryError) as e:  # out of memory ends the sweep, not the run
            points.append({"batch": b, "error": f"{type(e).__name__}: {str(e)[:200]}"})
            log(f"  batch {b}: {points[-1]['error']}")
            break
        points.append(
            {"batch": b, "audio_s_per_s": audio / sum(walls), "batch_ms": float(np.median(walls) * 1e3)}
        )
        log(f"  batch {b}: {points[-1]['audio_s_per_s']:.1f} s of audio per s")
    return points


class _Memory:
    """Peak torch GPU memory since the backend was created, and the process RSS at sampled points."""

    def __init__(self, device: str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.device = device
        self.samples: dict[str, float] = {}
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.samples["before_load_rss_mib"] = _rss_mib()

    def sample(self, point: str) -> None:
        self.samples[f"{point}_rss_mib"] = _rss_mib()
        if self.cuda:
            self.samples[f"{point}_gpu_peak_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            # What the caching allocator held at most: the figure the process really needed from the GPU.
            reserved = torch.cuda.max_memory_reserved(self.device) / 2**20
            self.samples[f"{point}_gpu_reserved_mib"] = reserved

    def summary(self) -> dict[str, Any]:
        rss = [v for k, v in self.samples.items() if k.endswith("rss_mib") and v == v]
        out: dict[str, Any] = dict(self.samples)
        out["rss_peak_mib"] = max(rss) if rss else None
        peaks = [v for k, v in self.samples.items() if k.endswith("gpu_peak_mib")]
        out["gpu_peak_mib"] = max(peaks) if peaks else None
        held = [v for k, v in self.samples.items() if k.endswith("gpu_reserved_mib")]
        out["gpu_reserved_peak_mib"] = max(held) if held else None
        return out


def _rss_mib() -> float:
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return float("nan")
    return float(psutil.Process().memory_info().rss) / 2**20


def with_repeats(plan: Plan, repeats: int | None) -> Plan:
    """``plan`` with ``repeats`` timed requests per item when given (``--repeat``)."""
    return plan if repeats is None else replace(plan, repeats=repeats)
