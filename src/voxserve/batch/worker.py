"""The background worker that runs batch jobs from the ``JobStore``, one at a time, yielding to the engine.

How a job yields to interactive requests (the design, and why):

- The job renders on **its own model instances** (a ``TTS`` of its own, built on first use), not
  on the engine's: the engine's executor thread owns its backends, and some backends (CUDA graphs)
  must not be called from two threads at once. The two share only the device.
- **Every model call of the job waits for an idle engine** (its running + waiting gauges at 0)
  and is **short** (about ``slice_ms``, 50 ms by default): sentences go in slices sized by the
  acoustic model's measured cost, and the vocoder runs on time chunks with receptive-field
  context (yielding.py). A request that arrives during a call waits for at most that call, so
  its time to first audio grows by about ``slice_ms`` at most, on a GPU (tens of sentences per
  call: still large batches) as on two CPU cores (a fraction of a sentence per call).
- Why not submit the book to the engine at a low priority? The scheduler orders items by
  first-chunk, then priority, but a batch takes the best ``max_batch`` items of a queue, so an
  interactive first chunk would ride in a batch with up to ``max_batch - 1`` book sentences (on a
  CPU, 16× its own work); calls are not preemptible, so one large book batch would hold the
  executor; the engine also takes text only, which would lose the job's lexicon and per-span
  plan; and the book would hold admission slots that interactive requests need.
- When the server is idle the job runs back to back; while requests are in flight it waits. A
  book never starves interactive traffic; unbroken interactive traffic can starve a book (by
  design: it goes on in the gaps).

Cancel and shutdown set the running job's stop flag; the job stops before its next model call.
Shutdown puts the job back in the queue; a restarted server resumes it from its last finished
chapter (the chapter runner skips finished chapters, checked by content hash).
It does not parse HTTP, and it does not own the store (the caller opens and closes it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from voxserve.batch.jobs import CANCELLED, DONE, FAILED, QUEUED, JobRecord, JobStore
from voxserve.batch.yielding import DEFAULT_SLICE_MS, MAX_SLICE, Gate, Stopped, YieldingTTS
from voxserve.errors import VoxserveError

log = logging.getLogger("voxserve.batch")

PROGRESS_EVERY_S = 0.5
"""Shortest interval between progress writes to the store (chapter ends are always written)."""


class RunJob(Protocol):
    """Runs one job to completion or until ``stop`` is set; returns a JSON-able summary.

    ``progress`` gets JSON-able dicts (at least ``chapters_done``); ``tts`` is the worker's
    yielding TTS. Raises ``Stopped`` (or returns ``{"stopped": True}``) when stopped, and
    ``VoxserveError`` for bad input or disk problems. The summary's ``progress`` is the last one.
    """

    def __call__(
        self,
        job: JobRecord,
        input_path: Path,
        out_dir: Path,
        tts: Any,
        progress: Callable[[dict[str, Any]], None],
        stop: threading.Event,
    ) -> dict[str, Any]: ...


def run_batch_job(
    job: JobRecord,
    input_path: Path,
    out_dir: Path,
    tts: Any,
    progress: Callable[[dict[str, Any]], None],
    stop: threading.Event,
) -> dict[str, Any]:
    """The real ``RunJob``: the document through ``voxserve.batch.runner.BatchJob`` (resumes by manifest)."""
    from voxserve.batch.documents import read_document
    from voxserve.batch.lexicon import Lexicon, parse_lexicon_text
    from voxserve.batch.manifest import file_sha256
    from voxserve.batch.runner import BatchJob, BatchSettings

    s = job.settings
    lexicon = parse_lexicon_text(s["lexicon"], "lexicon") if s.get("lexicon") else Lexicon()
    settings = BatchSettings(
        voice=s["voice"],
        emotion=s.get("emotion"),
        speed=s.get("speed"),
        pitch=s.get("pitch"),
        energy=s.get("energy"),
        volume=s.get("volume"),
        format=s.get("format", "mp3"),
        lexicon=lexicon,
        speak_titles=s.get("speak_titles", True),
        batch_size=MAX_SLICE,
    )
    document = read_document(input_path, job.input_kind)
    source = {"name": job.input_name, "sha256": file_sha256(input_path)}
    last: dict[str, Any] = {}

    def on_progress(p: Any) -> None:
        last.clear()
        last.update(p.to_dict())
        progress(dict(last))

    runner = BatchJob(document, out_dir, settings, tts=tts, source=source)
    report = runner.run(on_progress=on_progress, stop=stop)
    return {"stopped": report.stopped, "progress": last, "report": report.to_dict()}


class JobWorker:
    """One thread that takes queued jobs from ``store`` and runs them with ``run_job``. See the module doc.

    ``make_tts()`` builds the models jobs render with (called once, on the first job, in the
    worker thread). ``load()`` counts the engine's requests (None: never wait).
    """

    def __init__(
        self,
        store: JobStore,
        run_job: RunJob,
        make_tts: Callable[[], Any],
        load: Callable[[], float] | None = None,
        slice_ms: float = DEFAULT_SLICE_MS,
    ) -> None:
        self.store, self.run_job, self.make_tts = store, run_job, make_tts
        self.gate = Gate(load)
        self.slice_ms = slice_ms
        self._tts: Any = None
        self._cond = threading.Condition()
        self._closing = False
        self._current: tuple[str, threading.Event] | None = None
        self._thread: threading.Thread | None = None

    # --- control (any thread) -------------------------------------------------------------------

    def start(self) -> None:
        """Requeue jobs a previous process left running, then start the thread. Idempotent."""
        if self._thread is not None:
            return
        resumed = self.store.recover()
        if resumed:
            log.info("resuming %d batch job(s): %s", len(resumed), ", ".join(resumed))
        self._thread = threading.Thread(target=self._loop, name="voxserve-batch-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the running job (it goes back to the queue) and the thread; waits up to ``timeout`` s."""
        with self._cond:
            self._closing = True
            if self._current is not None:
                self._current[1].set()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("batch worker did not stop within %s s", timeout)

    def wake(self) -> None:
        """A job was queued: look at the queue now."""
        with self._cond:
            self._cond.notify_all()

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel ``job_id``: a queued job at once, the running one at its next slice. Returns the record."""
        record = self.store.request_cancel(job_id)
        with self._cond:
            if self._current is not None and self._current[0] == job_id:
                self._current[1].set()
        return record

    @property
    def running(self) -> str | None:
        """Id of the job running now, if any."""
        current = self._current
        return current[0] if current is not None else None

    # --- the thread -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
            job = self.store.claim_next()
            if job is None:
                with self._cond:
                    if not self._closing:
                        self._cond.wait(1.0)
                continue
            stop = threading.Event()
            with self._cond:
                self._current = (job.id, stop)
                if self._closing:
                    stop.set()
            try:
                self._run(job, stop)
            finally:
                with self._cond:
                    self._current = None

    def _run(self, job: JobRecord, stop: threading.Event) -> None:
        log.info("batch job %s: %s (run %d)", job.id, job.input_name, job.runs)
        progress = _ProgressWriter(self.store, job.id)

        try:
            if self.store.get(job.id).cancel_requested:
                raise Stopped
            if self._tts is None:
                self._tts = self.make_tts()
            tts = YieldingTTS(self._tts, self.gate, stop, self.slice_ms, on_slice=progress.slice_done)
            report = self.run_job(
                job, self.store.input_path(job), self.store.out_dir(job.id), tts, progress, stop
            )
            if report.get("stopped"):
                raise Stopped
        except Stopped:
            if self.store.get(job.id).cancel_requested:
                self.store.finish(job.id, CANCELLED)
                log.info("batch job %s cancelled", job.id)
            else:
                self.store.finish(job.id, QUEUED)
                log.info("batch job %s stopped for shutdown; it resumes at the next start", job.id)
        except VoxserveError as e:
            log.warning("batch job %s failed: %s", job.id, e)
            self.store.finish(job.id, FAILED, str(e), e.code)
        except Exception as e:  # a bug fails its job, not the worker
            log.exception("batch job %s failed", job.id)
            self.store.finish(job.id, FAILED, f"internal error: {e}", "internal_error")
        else:
            self.store.update_progress(job.id, report.get("progress") or job.progress)
            self.store.finish(job.id, DONE)
            log.info("batch job %s done", job.id)


class _ProgressWriter:
    """Persists a job's progress: the runner's reports, plus the sentences of slices rendered since.

    The runner reports after each of its batches (up to ``MAX_SLICE`` sentences, seconds on a
    CPU); slices make the count move in between. Writes when a chapter ends, else at most once
    per ``PROGRESS_EVERY_S`` (each write is a commit).
    """

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self.base: dict[str, Any] = {}
        self.extra = 0
        self.written_at = 0.0
        self.chapters = -1

    def __call__(self, p: dict[str, Any]) -> None:
        self.base, self.extra = dict(p), 0
        self._write(force=int(p.get("chapters_done", 0)) != self.chapters)

    def slice_done(self, n: int) -> None:
        self.extra += n
        if self.base:
            self._write(force=False)

    def _write(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.written_at < PROGRESS_EVERY_S:
            return
        p = dict(self.base)
        total = int(p.get("sentences_total", 0))
        p["sentences_done"] = min(int(p.get("sentences_done", 0)) + self.extra, total)
        self.written_at, self.chapters = now, int(p.get("chapters_done", 0))
        self.store.update_progress(self.job_id, p)
