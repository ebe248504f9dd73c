"""A resumable batch job: a document rendered chapter by chapter into an output directory.

``BatchJob(document, out_dir, settings).run(on_progress, stop, gate)``: validates everything
(markup, voices, emotions, lexicon) before any synthesis, skips chapters that a previous run
finished (``manifest.finished``), renders the others in length-sorted batches (``render``), and
hands each rendered chapter to a small thread pool that encodes and writes its audio and
subtitles atomically while the next chapter renders; the writer rewrites the manifest right after
each chapter's files are in place.

Pipeline (throughput on a GPU is bound by host work, so the run thread does as little as possible):
a planner thread phonemizes every chapter to render, in order, from the start of the run (it never
waits for the renderer); the run thread only forms batches and calls the models; writer threads
encode and write (``batch.encode``: no chapter-sized copies). ``Report.timings`` says where the time went.

Used by the CLI (``voxserve batch``) and by the server's batch jobs. It does not schedule against
interactive traffic by itself: the ``gate`` hook, called before each render batch, lets a caller
hold the job back (it may block).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from voxserve.batch import manifest as mf
from voxserve.batch import markup
from voxserve.batch.documents import Document
from voxserve.batch.encode import chapter_parts, encode_parts
from voxserve.batch.gpu import NvmlSampler
from voxserve.batch.plan import ChapterPlan, Voices, plan_chapter
from voxserve.batch.render import RenderedChapter, chapter_cues, render_sentences
from voxserve.batch.settings import EXTENSIONS, FORMATS, BatchSettings, Progress, Report, Timings, log_line
from voxserve.batch.subtitles import srt, vtt
from voxserve.errors import InvalidInput, NotFound

THROUGHPUT_CUDA = {"max_graph_frames": 65536, "max_graph_tokens": 32768}
"""Graph budgets of the cuda backend for book jobs: batches of 64 long sentences replay graphs."""


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

            # Throughput mode: on the cuda backend, graphs for large batches (memory is not the
            # constraint of a book job, GPU time is), captured once when a voice loads.
            options = THROUGHPUT_CUDA if backend == "cuda" else {}
            tts = TTS(voice=self.settings.voice, backend=backend, device=device, backend_options=options)
            self._warm = backend == "cuda"
        else:
            self._warm = False  # a shared TTS (the server's jobs) is warmed, or not, by its owner
        self.tts = tts
        self.source = source or {"name": document.source}
        self._voices: Voices | None = None
        self._counts: list[int] = []
        self._phonemizer: Any = None  # a phonemes.ProcessPhonemizer while validated and not yet run

    def validate(self) -> None:
        """Check settings, markup, voices, emotions and the lexicon, loading the voices; no synthesis."""
        s = self.settings
        s.validate()
        voices = Voices(self.tts, s.params(), s.lexicon)
        voices.check_emotion(s.voice, s.emotion)  # loads the default voice too
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
        if self._warm:
            for voice, _ in voices.loaded():
                voice.backend.warmup(**voice.warmup_inputs())
            self._warm = False
        if s.frontend_processes and self._phonemizer is None:
            self._start_phonemizer()

    def _start_phonemizer(self) -> None:
        """Worker processes for the frontend, warming up (dictionaries) while the caller goes on."""
        from voxserve.batch.phonemes import ProcessPhonemizer

        voices = cast(Voices, self._voices)
        self._phonemizer = ProcessPhonemizer(voices.recipes(), self.settings.frontend_processes)

    def close(self) -> None:
        """End the frontend's worker processes, if any (``run`` does this when it returns)."""
        if self._phonemizer is not None:
            self._phonemizer.close()
            self._phonemizer = None

    def _manifest(self, entries: dict[int, dict[str, Any]], sample_rate: int) -> dict[str, Any]:
        import platform

        import torch

        from voxserve import __version__

        chapters = [entries[i] for i in sorted(entries)]
        done = [c for c in chapters if c.get("status") in ("done", "empty")]
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
        try:
            return self._run(on_progress, stop, gate)
        finally:
            self.close()

    def _run(
        self,
        on_progress: Callable[[Progress], None] | None,
        stop: threading.Event | None,
        gate: Callable[[], None] | None,
    ) -> Report:
        t0 = time.perf_counter()
        if self._voices is None:
            self.validate()
        elif self.settings.frontend_processes and self._phonemizer is None:
            self._start_phonemizer()
        voices = cast(Voices, self._voices)  # set by validate()
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
        timings = Timings()
        stages: dict[str, float] = {}

        lock = threading.Lock()

        def finish(chapter: RenderedChapter) -> dict[str, Any]:
            # In a writer thread: files first, then the manifest at once, so a crash loses at most
            # the chapters not yet written.
            entry = self._write(chapter, entries[chapter.plan.index]["hash"], voices.params.volume, timings)
            plan = chapter.plan
            del chapter  # the batches' outputs can go now
            with lock, timings.clock("manifest"):
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

        processes = self._phonemizer

        def plan_of(i: int) -> ChapterPlan:
            chapter = self.document.chapters[i - 1]
            # Until the workers have started (~1 s, dictionaries), this process's warm frontends plan.
            phonemize = processes.phonemize if processes is not None and processes.ready() else None
            with timings.clock("plan"):
                return plan_chapter(
                    chapter, i, voices, s.voice, voices.params.emotion, s.speak_titles, phonemize
                )

        with (
            NvmlSampler(self.device) as sampler,
            ThreadPoolExecutor(s.workers, "batch-writer") as pool,
            ThreadPoolExecutor(1, "batch-planner") as planner,
        ):
            # Every chapter is queued for the frontend at once: the planner works through the book
            # while chapters render (voices are loaded by validate(), and frontends are thread-safe).
            # One chapter ahead was too little on a GPU, which renders a chapter faster than the
            # frontend plans one.
            plans = {i: planner.submit(plan_of, i) for i in todo}
            try:
                for i in todo:
                    if stop is not None and stop.is_set():
                        stopped = True
                        break
                    progress.chapter = i
                    with timings.clock("wait_plan"):
                        plan = plans.pop(i).result()
                    if not plan.sentences:  # nothing speakable (only symbols): record it, write no files
                        with lock:
                            entries[i] = {**entries[i], "status": "empty", "duration": 0.0, "sentences": 0}
                            mf.save(self.out_dir, self._manifest(entries, rate))
                        progress.chapters_done += 1
                        continue
                    with timings.clock("render"):
                        sentences = render_sentences(
                            plan, voices, rate, s.batch_size, stop, gate, on_batch, stages
                        )
                    if sentences is None:
                        stopped = True
                        break
                    pending.append(pool.submit(finish, sentences))
                    del sentences  # the writer owns the audio now
                    with timings.clock("wait_writers"):
                        while len(pending) > s.workers:  # bound memory: wait for the oldest write
                            pending[0].result()
                            collect(block=False)
                    collect(block=False)
                progress.chapter = None
                with timings.clock("wait_writers"):
                    collect(block=True)
            finally:
                for f in pending:
                    f.cancel()
                for later in plans.values():
                    later.cancel()
        progress.wall_seconds = time.perf_counter() - t0
        timings.set("model", (stages.get("acoustic", 0.0) + stages.get("vocoder", 0.0)) / 1e3)
        written = sum(entries[i].get("duration", 0.0) for i in todo if entries[i].get("status") == "done")
        return Report(
            out_dir=str(self.out_dir),
            manifest=self._manifest(entries, rate),
            chapters_rendered=rendered,
            chapters_skipped=progress.chapters_skipped,
            audio_seconds=round(written, 3),
            wall_seconds=round(progress.wall_seconds, 3),
            stopped=stopped,
            gpu=sampler.summary(),
            timings=timings.summary(),
        )

    def _write(
        self, chapter: RenderedChapter, chapter_hash: str, volume: float, timings: Timings
    ) -> dict[str, Any]:
        """Encode and write one chapter's files (in a writer thread); its manifest entry.

        The audio is encoded from the sentences and silences as they are (``batch.encode``), the
        same bytes as encoding the assembled chapter, without a chapter-sized copy.
        """
        plan, rate = chapter.plan, chapter.sample_rate
        fmt = self.settings.format
        stem = f"chapter-{plan.index:03d}"
        audio_name = f"{stem}.{EXTENSIONS.get(fmt, fmt)}"
        with timings.clock("cues"):
            cues, length = chapter_cues(plan, chapter.samples, chapter.durations, rate)
        with timings.clock("encode"):
            data = encode_parts(fmt, chapter_parts(plan, chapter.samples, rate, volume), rate)
        with timings.clock("write"):
            mf.atomic_write(self.out_dir / f"{stem}.srt", srt(cues).encode("utf-8"))
            mf.atomic_write(self.out_dir / f"{stem}.vtt", vtt(cues).encode("utf-8"))
            mf.atomic_write(self.out_dir / audio_name, data)
        return {
            "index": plan.index,
            "title": plan.title,
            "hash": chapter_hash,
            "status": "done",
            "audio": {"path": audio_name, "sha256": mf.sha256(data), "bytes": len(data)},
            "subtitles": {"srt": f"{stem}.srt", "vtt": f"{stem}.vtt"},
            "duration": round(length / rate, 3),
            "sentences": len(plan.sentences),
            "characters": plan.characters,
        }


__all__ = ["FORMATS", "BatchJob", "BatchSettings", "Progress", "Report", "log_line"]
