"""Settings, progress and report of a batch job (``runner.BatchJob`` uses them; ``runner`` re-exports them).

``BatchSettings`` is per-job configuration (validated once, before synthesis); ``Progress`` is what
``on_progress`` hears; ``Report`` is what ``run`` returns. No synthesis happens here.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from voxserve.batch.lexicon import Lexicon
from voxserve.engine.controls import SynthesisParams
from voxserve.errors import InvalidInput

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
EXTENSIONS = {"opus": "ogg"}
"""File extension per format where it differs from the format's name (Opus lives in Ogg)."""


@dataclass(frozen=True)
class BatchSettings:
    """What a job renders with; all but ``batch_size``, ``workers``, ``frontend_processes`` enter the chapter hash.

    Controls use None for "the voice's default" like the API; ``emotion`` is the default emotion
    outside markup spans.
    """

    voice: str = "baker"
    """Default voice (also sets every chapter's sample rate)."""
    emotion: str | None = None
    """Default emotion label or English alias; None: neutral."""
    speed: float | None = None
    """Tempo multiplier, 0.25–4.0 (also scales the default pauses, not explicit ones)."""
    pitch: float | None = None
    """Pitch multiplier, 0.5–2.0."""
    energy: float | None = None
    """Energy multiplier, 0.25–4.0."""
    volume: float | None = None
    """Output gain, 0.0–4.0."""
    format: str = "mp3"
    """Audio file format: mp3, opus (.ogg), aac, flac, wav, pcm (s16le, no header)."""
    batch_size: int = 32
    """Sentences per model call (throughput mode: large; limited by memory)."""
    lexicon: Lexicon = field(default_factory=Lexicon)
    """User pronunciations (see ``voxserve.batch.lexicon``)."""
    speak_titles: bool = True
    """Speak each chapter's title before its text."""
    workers: int = 2
    """Threads that encode and write finished chapters while the next one renders."""
    frontend_processes: int = 0
    """Worker processes that phonemize (``batch.phonemes``); 0: a thread of the job's own process."""

    def params(self) -> SynthesisParams:
        """The validated controls (``InvalidInput``/``NotFound`` for bad values)."""
        return SynthesisParams.create(self.speed, self.pitch, self.energy, self.volume, self.emotion)

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise InvalidInput(f"unknown format {self.format!r}; known: {', '.join(FORMATS)}", param="format")
        if not 1 <= self.batch_size <= 4096:
            raise InvalidInput(f"batch_size must be 1-4096, got {self.batch_size}", param="batch_size")
        if not 1 <= self.workers <= 64:
            raise InvalidInput(f"workers must be 1-64, got {self.workers}", param="workers")
        if not 0 <= self.frontend_processes <= 64:
            raise InvalidInput(
                f"frontend_processes must be 0-64, got {self.frontend_processes}", param="frontend_processes"
            )
        self.params()

    def to_dict(self) -> dict[str, Any]:
        p = self.params()
        return {
            "voice": self.voice,
            "emotion": p.emotion,
            "speed": p.speed,
            "pitch": p.pitch,
            "energy": p.energy,
            "volume": p.volume,
            "format": self.format,
            "speak_titles": self.speak_titles,
            "lexicon": self.lexicon.digest() if self.lexicon else None,
            "batch_size": self.batch_size,
        }

    def fingerprint(self) -> str:
        """Hash of the settings that change the output (not batch size, workers or processes)."""
        d = self.to_dict()
        d.pop("batch_size")
        return hashlib.sha256(json.dumps(d, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class Progress:
    """Where a job stands; passed to ``on_progress`` after every batch and chapter."""

    chapters_total: int = 0
    chapters_done: int = 0
    """Finished chapters, skipped ones included."""
    chapters_skipped: int = 0
    sentences_total: int = 0
    """Sentences in chapters to render this run (skipped chapters excluded)."""
    sentences_done: int = 0
    audio_seconds: float = 0.0
    """Audio rendered in this run, seconds."""
    wall_seconds: float = 0.0
    chapter: int | None = None
    """Index of the chapter being rendered (1-based), None between chapters."""

    @property
    def speed(self) -> float:
        """Audio seconds per wall second (× real time) so far."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Remaining wall seconds at the pace so far; None before the first batch."""
        if not self.sentences_done or not self.wall_seconds:
            return None
        left = max(self.sentences_total - self.sentences_done, 0)
        return left * self.wall_seconds / self.sentences_done

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speed": round(self.speed, 2), "eta_seconds": self.eta_seconds}


@dataclass
class Report:
    """The outcome of ``BatchJob.run``."""

    out_dir: str
    manifest: dict[str, Any]
    chapters_rendered: int
    chapters_skipped: int
    audio_seconds: float
    """Duration of the chapter files written by this run (pauses included), seconds."""
    wall_seconds: float
    """From the start of ``run`` to the last file written (validation too when ``validate`` was not called first)."""
    stopped: bool = False
    gpu: dict[str, Any] | None = None
    """NVML summary (``gpu.NvmlSampler.summary``) on CUDA devices with pynvml, else None."""
    timings: dict[str, Any] | None = None
    """Where the time went (``Timings.summary``): seconds per pipeline step, process CPU and page faults."""

    @property
    def realtime_factor(self) -> float:
        """Audio seconds produced per wall second (× real time), files written included."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("manifest")
        d["realtime_factor"] = round(self.realtime_factor, 2)
        d["characters"] = sum(c.get("characters", 0) for c in self.manifest.get("chapters", []))
        d["settings"] = self.manifest.get("settings")
        d["versions"] = self.manifest.get("versions")
        return d


class Timings:
    """Wall seconds per pipeline step, summed over the threads that ran it; thread-safe.

    Steps of a run: ``plan`` (frontend, planner thread), ``render`` (run thread: batching and the
    model calls, ``model`` of it inside ``Voice.render``'s backend calls), ``assemble``, ``encode``,
    ``write``, ``manifest`` (writer threads), ``wait_plan``/``wait_writers`` (the run thread idle).
    Steps overlap across threads, so the sum exceeds the wall time. Also records the process's CPU
    time and minor page faults over the run (from ``resource``, where the platform has it); it does
    not profile (see ``voxserve batch --profile``).
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._usage = _usage()

    @contextmanager
    def clock(self, step: str) -> Iterator[None]:
        """Adds the wall time of the ``with`` block to ``step``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(step, time.perf_counter() - t0)

    def add(self, step: str, seconds: float) -> None:
        with self._lock:
            self._seconds[step] = self._seconds.get(step, 0.0) + seconds

    def set(self, step: str, seconds: float) -> None:
        with self._lock:
            self._seconds[step] = seconds

    def summary(self) -> dict[str, Any]:
        """{"wall": s, "steps": {step: s}, "process": {"user_s", "sys_s", "minor_faults"} or None}."""
        with self._lock:
            steps = {k: round(v, 3) for k, v in sorted(self._seconds.items())}
        now, before = _usage(), self._usage
        process = None
        if now is not None and before is not None:
            process = {
                "user_s": round(now[0] - before[0], 3),
                "sys_s": round(now[1] - before[1], 3),
                "minor_faults": now[2] - before[2],
            }
        return {"wall": round(time.perf_counter() - self._start, 3), "steps": steps, "process": process}


def _usage() -> tuple[float, float, int] | None:
    try:
        import resource
    except ImportError:  # not on this platform (Windows)
        return None
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime, u.ru_minflt


def log_line(progress: Progress) -> str:
    """A one-line progress summary (for logs; the CLI draws a bar)."""
    eta = progress.eta_seconds
    return (
        f"chapters {progress.chapters_done}/{progress.chapters_total}, sentences "
        f"{progress.sentences_done}/{progress.sentences_total}, audio {progress.audio_seconds:.1f} s, "
        f"{progress.speed:.1f}x real time, ETA {'?' if eta is None else f'{eta:.0f} s'}"
    )
