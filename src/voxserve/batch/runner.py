"""A resumable batch job: a document rendered chapter by chapter into an output directory.

``BatchJob(document, out_dir, settings).run(on_progress, stop, gate)``: validates everything
(markup, voices, emotions, lexicon) before any synthesis, skips chapters that a previous run
finished (``manifest.finished``), renders the others in length-sorted batches (``render``), and
hands each finished chapter to a small thread pool that encodes and writes its audio and
subtitles atomically while the next chapter renders; the writer rewrites the manifest right after
each chapter's files are in place.

Used by the CLI (``voxserve batch``) and by the server's batch jobs. It does not schedule against
interactive traffic by itself: the ``gate`` hook, called before each render batch, lets a caller
hold the job back (it may block).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxserve.batch import manifest as mf
from voxserve.batch import markup
from voxserve.batch.documents import Document
from voxserve.batch.gpu import NvmlSampler
from voxserve.batch.lexicon import Lexicon
from voxserve.batch.plan import ChapterPlan, Voices, plan_chapter
from voxserve.batch.render import ChapterAudio, render_chapter
from voxserve.batch.subtitles import srt, vtt
from voxserve.engine.controls import SynthesisParams
from voxserve.errors import InvalidInput, NotFound

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
EXTENSIONS = {"opus": "ogg"}
"""File extension per format where it differs from the format's name (Opus lives in Ogg)."""


@dataclass(frozen=True)
class BatchSettings:
    """What a job renders with; everything but ``batch_size`` and ``workers`` enters the chapter hash.

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
        """Hash of the settings that change the output (not batch size or workers)."""
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


class BatchJob:
    """One document into ``out_dir`` with ``settings``; ``tts`` (a ``voxserve.TTS``) may be shared.

    Without ``tts`` the job makes its own (``backend``/``device`` arguments). Not thread-safe: one
    ``run`` at a time.
    """

    def __init__(
        self,
        document: Document,
        out_dir: str | Path,
        settings: BatchSettings | None = None,
        tts: Any = None,
        backend: str = "torch",
        device: str = "cpu",
        source: dict[str, Any] | None = None,
    ) -> None:
        self.document = document
        self.out_dir = Path(out_dir)
        self.settings = settings or BatchSettings()
        self.device = device
        if tts is None:
            from voxserve.engine.tts import TTS

            tts = TTS(voice=self.settings.voice, backend=backend, device=device)
        self.tts = tts
        self.source = source or {"name": document.source}
        self._voices: Voices | None = None
        self._counts: list[int] = []

    def validate(self) -> None:
        """Check settings, markup, voices, emotions and the lexicon, loading the voices; no synthesis."""
        s = self.settings
        s.validate()
        voices = Voices(self.tts, s.params(), s.lexicon)
        voices.get(s.voice)
        counts = []
        for i, chapter in enumerate(self.document.chapters, 1):
            where = f"chapter {i}" + (f" ({chapter.title[:30]!r})" if chapter.title else "")
            try:
                pieces = markup.parse(chapter.text)
            except markup.MarkupError as e:
                raise InvalidInput(f"{where}, {e}", param="input") from None
            n = len(voices.get(s.voice)[1].split(markup.strip(chapter.title))) if chapter.title else 0
            for piece in pieces:
                if isinstance(piece, markup.Pause):
                    continue
                name = piece.voice or s.voice
                try:
                    voices.check_emotion(name, piece.emotion)
                    n += len(voices.get(name)[1].split(piece.text))
                except (InvalidInput, NotFound) as e:
                    line, column = markup.position(
                        chapter.text, piece.start if piece.tag is None else piece.tag
                    )
                    raise type(e)(f"{where}, line {line}, column {column}: {e}", param=e.param) from None
            counts.append(n)
        self._voices, self._counts = voices, counts

    def _manifest(self, entries: dict[int, dict[str, Any]], sample_rate: int) -> dict[str, Any]:
        import platform

        import torch

        from voxserve import __version__

        chapters = [entries[i] for i in sorted(entries)]
        done = [c for c in chapters if c.get("status") == "done"]
        return {
            "format_version": mf.FORMAT_VERSION,
            "title": self.document.title,
            "source": self.source,
            "voice": self.settings.voice,
            "sample_rate": sample_rate,
            "settings": self.settings.to_dict(),
            "versions": {
                "voxserve": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "complete": len(done) == len(chapters),
            "totals": {
                "chapters": len(chapters),
                "finished": len(done),
                "duration": round(sum(c["duration"] for c in done), 3),
                "sentences": sum(c["sentences"] for c in done),
            },
            "chapters": chapters,
        }

    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        stop: threading.Event | None = None,
        gate: Callable[[], None] | None = None,
    ) -> Report:
        """Render every unfinished chapter (see the module docstring); ``stop`` ends it early."""
        t0 = time.perf_counter()
        if self._voices is None:
            self.validate()
        voices = self._voices
        assert voices is not None  # set by validate()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise mf.BatchIOError(f"cannot create {self.out_dir}: {e.strerror or e}") from None
        s = self.settings
        rate = voices.get(s.voice)[0].config.sample_rate
        fingerprint = s.fingerprint()
        old = mf.chapter_entries(mf.load(self.out_dir))
        entries: dict[int, dict[str, Any]] = {}
        todo: list[int] = []
        for i, chapter in enumerate(self.document.chapters, 1):
            h = mf.chapter_hash(chapter, fingerprint)
            if mf.finished(old.get(i), self.out_dir, h):
                entries[i] = old[i]
            else:
                entries[i] = {"index": i, "title": chapter.title, "hash": h, "status": "pending"}
                todo.append(i)
        progress = Progress(
            chapters_total=len(entries),
            chapters_done=len(entries) - len(todo),
            chapters_skipped=len(entries) - len(todo),
            sentences_total=sum(self._counts[i - 1] for i in todo),
        )
        mf.save(self.out_dir, self._manifest(entries, rate))

        def tick() -> None:
            progress.wall_seconds = time.perf_counter() - t0
            if on_progress is not None:
                on_progress(progress)

        def on_batch(sentences: int, seconds: float) -> None:
            progress.sentences_done += sentences
            progress.audio_seconds += seconds
            tick()

        pending: list[Future[dict[str, Any]]] = []
        rendered = 0
        stopped = False

        lock = threading.Lock()

        def finish(plan: ChapterPlan, audio: ChapterAudio) -> dict[str, Any]:
            # In a writer thread: files first, then the manifest at once, so a crash loses at most
            # the chapters not yet written.
            entry = self._write(plan, audio, entries[plan.index]["hash"])
            with lock:
                entries[plan.index] = entry
                mf.save(self.out_dir, self._manifest(entries, rate))
            return entry

        def collect(block: bool) -> None:
            nonlocal rendered
            while pending and (block or pending[0].done()):
                pending.pop(0).result()  # re-raises BatchIOError from the writer
                rendered += 1
                progress.chapters_done += 1
                tick()

        tick()
        with NvmlSampler(self.device) as sampler, ThreadPoolExecutor(s.workers, "batch-writer") as pool:
            try:
                for i in todo:
                    if stop is not None and stop.is_set():
                        stopped = True
                        break
                    chapter = self.document.chapters[i - 1]
                    progress.chapter = i
                    plan = plan_chapter(chapter, i, voices, s.voice, voices.params.emotion, s.speak_titles)
                    audio = render_chapter(plan, voices, rate, s.batch_size, stop, gate, on_batch)
                    if audio is None:
                        stopped = True
                        break
                    pending.append(pool.submit(finish, plan, audio))
                    while len(pending) > s.workers:  # bound memory: wait for the oldest write
                        pending[0].result()
                        collect(block=False)
                    collect(block=False)
                progress.chapter = None
                collect(block=True)
            finally:
                for f in pending:
                    f.cancel()
        progress.wall_seconds = time.perf_counter() - t0
        written = sum(entries[i]["duration"] for i in todo if entries[i].get("status") == "done")
        return Report(
            out_dir=str(self.out_dir),
            manifest=self._manifest(entries, rate),
            chapters_rendered=rendered,
            chapters_skipped=progress.chapters_skipped,
            audio_seconds=round(written, 3),
            wall_seconds=round(progress.wall_seconds, 3),
            stopped=stopped,
            gpu=sampler.summary(),
        )

    def _write(self, plan: ChapterPlan, audio: ChapterAudio, chapter_hash: str) -> dict[str, Any]:
        """Encode and write one chapter's files (in a writer thread); its manifest entry."""
        from voxserve.server.encoding import encode_file

        fmt = self.settings.format
        stem = f"chapter-{plan.index:03d}"
        audio_name = f"{stem}.{EXTENSIONS.get(fmt, fmt)}"
        data = encode_file(fmt, audio.samples, audio.sample_rate)
        mf.atomic_write(self.out_dir / f"{stem}.srt", srt(audio.cues).encode("utf-8"))
        mf.atomic_write(self.out_dir / f"{stem}.vtt", vtt(audio.cues).encode("utf-8"))
        mf.atomic_write(self.out_dir / audio_name, data)
        return {
            "index": plan.index,
            "title": plan.title,
            "hash": chapter_hash,
            "status": "done",
            "audio": {"path": audio_name, "sha256": mf.sha256(data), "bytes": len(data)},
            "subtitles": {"srt": f"{stem}.srt", "vtt": f"{stem}.vtt"},
            "duration": round(audio.duration, 3),
            "sentences": len(plan.sentences),
            "characters": plan.characters,
        }


def log_line(progress: Progress) -> str:
    """A one-line progress summary (for logs; the CLI draws a bar)."""
    eta = progress.eta_seconds
    return (
        f"chapters {progress.chapters_done}/{progress.chapters_total}, sentences "
        f"{progress.sentences_done}/{progress.sentences_total}, audio {progress.audio_seconds:.1f} s, "
        f"{progress.speed:.1f}x real time, ETA {'?' if eta is None else f'{eta:.0f} s'}"
    )
